//! A series above its scores per step: flagged steps shaded, labelled anomalies marked,
//! the threshold drawn (`anomaly --plot` on series runs).

use super::figure::{legend, padded_range, plot_err, render, tick, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;

/// A series and its scores per step: the values above (one line per channel), the
/// scores below with the threshold, flagged steps shaded in both, labelled anomalies
/// marked along the top.
pub struct SeriesScores<'a> {
    /// Where each step is on the x axis (step numbers, seconds, the file's times), and
    /// the axis' name.
    pub steps: &'a [f64],
    pub x_desc: &'a str,
    /// One list of values per channel, named.
    pub channels: Vec<(&'a str, &'a [f64])>,
    pub scores: &'a [f64],
    pub threshold: f64,
    pub flagged: &'a [bool],
    /// Steps labelled anomalous, if the series has labels.
    pub labelled: Option<&'a [bool]>,
}

/// The series plot of `fig`; refused when there are no steps or no finite scores.
pub fn series_scores(fig: &SeriesScores, format: Format) -> Result<Vec<u8>> {
    if fig.steps.is_empty() || fig.scores.iter().all(|v| !v.is_finite()) {
        bail!("nothing to plot: no finite scores");
    }
    render(fig, format)
}

/// Runs of consecutive `true` in `marks`, as (first, last) indices.
fn runs(marks: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &m) in marks.iter().chain([&false]).enumerate() {
        match (m, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A chart of the series plot: steps across, values or scores up.
type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl Figure for SeriesScores<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(330);
        self.panel(&top, true)?;
        self.panel(&bottom, false)
    }
}

impl SeriesScores<'_> {
    /// One panel, both with the flagged steps shaded: the series' channels (`values`) or
    /// the scores with the threshold.
    fn panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, values: bool) -> Result<()> {
        let (first, last) = (self.steps[0], self.steps[self.steps.len() - 1]);
        let x = first..if last > first { last } else { first + 1.0 };
        let shade = Palette99::pick(0).to_rgba().mix(0.18);
        let y = if values {
            padded_range(self.channels.iter().flat_map(|(_, v)| v.iter().copied()))
        } else {
            padded_range(self.scores.iter().copied().chain([self.threshold]))
        };
        let mut chart = ChartBuilder::on(area)
            .caption(
                if values {
                    "the series (flagged steps shaded, labelled anomalies marked above)"
                } else {
                    "score per step"
                },
                (FAMILY, 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .draw()
            .map_err(plot_err)?;
        let at = |i: usize| self.steps[i];
        // Half a step either side of a flagged run (the mean step of the axis).
        let half = (x.end - x.start) / (2.0 * (self.steps.len().max(2) - 1) as f64);
        chart
            .draw_series(runs(self.flagged).into_iter().map(|(a, b)| {
                Rectangle::new([(at(a) - half, y.start), (at(b) + half, y.end)], shade.filled())
            }))
            .map_err(plot_err)?;
        if values {
            self.draw_channels(&mut chart, y)?;
        } else {
            self.draw_scores(&mut chart, x)?;
        }
        legend(&mut chart)
    }

    /// A line per channel and, along the top of the `y` range, the labelled anomalies.
    fn draw_channels<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut Panel<'a, DB>,
        y: Range<f64>,
    ) -> Result<()> {
        let at = |i: usize| self.steps[i];
        for (c, (name, v)) in self.channels.iter().enumerate() {
            let colour = Palette99::pick(4 + c).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    v.iter().enumerate().map(|(i, &v)| (at(i), v)),
                    colour.stroke_width(1),
                ))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        if let Some(labelled) = self.labelled {
            let label_mark = Palette99::pick(0).to_rgba();
            let band = (y.end - y.start) * 0.04;
            chart
                .draw_series(runs(labelled).into_iter().map(|(a, b)| {
                    Rectangle::new(
                        [(at(a) - 0.5, y.end - band), (at(b) + 0.5, y.end)],
                        label_mark.filled(),
                    )
                }))
                .map_err(plot_err)?
                .label("labelled anomaly")
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 14, y + 4)], label_mark.filled())
                });
        }
        Ok(())
    }

    /// The scores as a line and the threshold across the `x` range.
    fn draw_scores<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut Panel<'a, DB>,
        x: Range<f64>,
    ) -> Result<()> {
        chart
            .draw_series(LineSeries::new(
                self.scores.iter().enumerate().map(|(i, &s)| (self.steps[i], s)),
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("score")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        let red = Palette99::pick(0).to_rgba();
        chart
            .draw_series(LineSeries::new(
                [(x.start, self.threshold), (x.end, self.threshold)],
                red.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(format!("threshold {:.3}", self.threshold))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_first_and_last_of_each_stretch_of_marks() {
        assert_eq!(runs(&[true, true, false, true, false, false, true]), [(0, 1), (3, 3), (6, 6)]);
        assert!(runs(&[false, false]).is_empty());
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn series_plot_draws_both_panels() {
        let steps = [0.0, 1.0, 2.0, 3.0];
        let values = [0.1, 0.2, 0.9, 0.1];
        let fig = SeriesScores {
            steps: &steps,
            x_desc: "seconds",
            channels: vec![("value", &values)],
            scores: &[0.1, 0.2, 2.0, 0.1],
            threshold: 1.0,
            flagged: &[false, false, true, false],
            labelled: Some(&[false, false, true, true]),
        };
        let svg = String::from_utf8(series_scores(&fig, Format::Svg).unwrap()).unwrap();
        for text in ["score per step", "labelled anomaly", "threshold 1.000", "value", "seconds"] {
            assert!(svg.contains(text), "{text}");
        }
        let png = series_scores(&fig, Format::Png).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 1200);
    }
}
