//! Histograms of anomaly scores: the normal and the anomalous rows overlaid (or, without
//! labels, every row as one group), with the threshold.

use super::figure::{legend, plot_err, render, tick, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Anomaly scores of the items (images, rows) in named groups, and the decision threshold.
struct ScoreHistogram<'a> {
    groups: &'a [(&'a str, &'a [f64])],
    threshold: f64,
    bins: usize,
    item: &'a str,
}

/// Overlaid histograms (share of each group per bin) of the `groups`' scores — normal and
/// anomalous, or every item as one group when there are no labels — each the squared error
/// of one `item` ("image", "row"), with the threshold as a vertical line.
pub fn score_histogram(
    groups: &[(&str, &[f64])],
    threshold: f64,
    item: &str,
    format: Format,
) -> Result<Vec<u8>> {
    if groups.iter().flat_map(|g| g.1).all(|v| !v.is_finite()) {
        bail!("nothing to plot: no finite scores");
    }
    render(&ScoreHistogram { groups, threshold, bins: 40, item }, format)
}

/// Shares of `values` in `bins` equal bins over `[lo, hi]`.
pub fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    for v in &finite {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    counts.iter().map(|c| c / finite.len().max(1) as f64).collect()
}

impl Figure for ScoreHistogram<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let all = || self.groups.iter().flat_map(|g| g.1).copied().chain([self.threshold]);
        let lo = all().filter(|v| v.is_finite()).fold(f64::MAX, f64::min);
        let hi = all().filter(|v| v.is_finite()).fold(f64::MIN, f64::max).max(lo + 1e-9);
        let width = (hi - lo) / self.bins as f64;
        // Normal (or unlabelled) rows in blue, anomalous ones in red.
        let colours = [Palette99::pick(4).to_rgba(), Palette99::pick(0).to_rgba()];
        let groups: Vec<_> =
            self.groups.iter().zip(colours.iter().cycle()).map(|(g, &c)| (g.0, g.1, c)).collect();
        let shares: Vec<Vec<f64>> =
            groups.iter().map(|g| histogram(g.1, lo, hi, self.bins)).collect();
        let top = shares.iter().flatten().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("anomaly scores: reconstruction error per {}", self.item),
                (FAMILY, 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // Half a bin of room on the right, so the last bar is not drawn on the frame.
            .build_cartesian_2d(lo..hi + width / 2.0, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(format!("squared error per {}", self.item))
            .y_desc("share of the group")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(plot_err)?;
        for ((name, values, color), share) in groups.iter().zip(&shares) {
            if values.is_empty() {
                continue;
            }
            let color = *color;
            chart
                .draw_series(share.iter().enumerate().map(|(b, &s)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, s)], color.mix(0.45).filled())
                }))
                .map_err(plot_err)?
                .label(format!("{name} ({})", values.len()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.6).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                [(self.threshold, 0.0), (self.threshold, top)],
                BLACK.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(format!("threshold {:.2}", self.threshold))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        legend(&mut chart)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_shares_sum_to_one_and_clip_to_the_edges() {
        let h = histogram(&[0.0, 0.1, 0.5, 0.99, 1.0, 7.0, f64::NAN], 0.0, 1.0, 4);
        assert_eq!(h, vec![2.0 / 6.0, 0.0, 1.0 / 6.0, 3.0 / 6.0]);
        let groups: [(&str, &[f64]); 2] =
            [("normal", &[1.0, 2.0, 2.5]), ("anomalous", &[5.0, 6.0])];
        let png = score_histogram(&groups, 3.0, "row", Format::Png).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 800);
    }
}
