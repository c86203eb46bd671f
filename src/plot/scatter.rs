//! Scatter plots of 2-D points coloured by label (the latent codes of `plot-latent`).

use super::figure::{legend, padded_range, plot_err, render, tick, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Tableau's ten categorical colours (Tableau 10, 2016 revision): ten hues told apart at a
/// glance, for the first ten classes; more classes continue with plotters' Palette99.
const CATEGORICAL: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The colour of class `c` in scatter plots.
fn class_colour(c: usize) -> RGBAColor {
    match CATEGORICAL.get(c) {
        Some(colour) => colour.to_rgba(),
        None => Palette99::pick(c).to_rgba(),
    }
}

/// 2-D points coloured by label.
struct Scatter<'a> {
    points: &'a [(f64, f64)],
    labels: Option<&'a [u8]>,
    /// The legend's name of each label code (the code itself when missing).
    names: &'a [String],
    axes: (&'a str, &'a str),
    title: &'a str,
}

/// A scatter plot of `points`, one colour and legend entry per label (named by `names`,
/// indexed by label code).
pub fn scatter(
    points: &[(f64, f64)],
    labels: Option<&[u8]>,
    names: &[String],
    axes: (&str, &str),
    title: &str,
    format: Format,
) -> Result<Vec<u8>> {
    if points.is_empty() || labels.is_some_and(|l| l.len() != points.len()) {
        bail!("nothing to plot, or labels that do not match the points");
    }
    render(&Scatter { points, labels, names, axes, title }, format)
}

impl Figure for Scatter<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                padded_range(self.points.iter().map(|p| p.0)),
                padded_range(self.points.iter().map(|p| p.1)),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.axes.0)
            .y_desc(self.axes.1)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(plot_err)?;
        let mut classes: Vec<Option<u8>> = match self.labels {
            Some(l) => l.iter().map(|&c| Some(c)).collect(),
            None => vec![None],
        };
        classes.sort_unstable();
        classes.dedup();
        for class in classes {
            let color = class_colour(class.map_or(0, |c| c as usize));
            let members =
                self.points.iter().enumerate().filter(|(i, _)| match (class, self.labels) {
                    (Some(c), Some(l)) => l[*i] == c,
                    _ => true,
                });
            let series = chart
                .draw_series(members.map(|(_, &p)| Circle::new(p, 2, color.mix(0.7).filled())))
                .map_err(plot_err)?;
            if let Some(c) = class {
                let name = self.names.get(c as usize).cloned().unwrap_or_else(|| c.to_string());
                series.label(name).legend(move |(x, y)| Circle::new((x + 6, y), 4, color.filled()));
            }
        }
        if self.labels.is_some() {
            legend(&mut chart)?;
        }
        Ok(())
    }
}
