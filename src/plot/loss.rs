//! Loss per epoch: train and validation curves of one run or several, on a linear or
//! logarithmic axis, with each run's best validation epoch marked.

use super::figure::{legend, plot_err, render, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Loss per epoch of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct LossCurve {
    pub label: String,
    /// The share of each batch's worst rows left out of the training loss (`--trim`): the
    /// legend says so, as the validation loss keeps every row and reads higher.
    pub trimmed: f64,
    pub epochs: Vec<f64>,
    pub train: Vec<f64>,
    pub val: Vec<Option<f64>>,
}

/// The figure `loss_chart` draws.
struct LossChart<'a> {
    curves: &'a [LossCurve],
    title: &'a str,
    /// What the loss is, for the y axis ("MSE per value", "cross-entropy", …).
    loss: &'a str,
    log_y: bool,
}

/// Train (solid) and validation (dashed) loss per epoch, with each run's best validation
/// epoch marked; several runs overlay in different colours, labelled in the legend.
pub fn loss_chart(
    curves: &[LossCurve],
    title: &str,
    loss: &str,
    log_y: bool,
    format: Format,
) -> Result<Vec<u8>> {
    if curves.iter().all(|c| c.epochs.is_empty()) {
        bail!("nothing to plot: no epochs");
    }
    render(&LossChart { curves, title, loss, log_y }, format)
}

impl LossCurve {
    /// The epoch with the lowest validation loss, and that loss.
    pub fn best_val(&self) -> Option<(f64, f64)> {
        self.epochs
            .iter()
            .zip(&self.val)
            .filter_map(|(&e, v)| v.filter(|v| v.is_finite()).map(|v| (e, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

impl Figure for LossChart<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let values = || {
            self.curves
                .iter()
                .flat_map(|c| c.train.iter().copied().chain(c.val.iter().flatten().copied()))
                .filter(|v| v.is_finite() && (!self.log_y || *v > 0.0))
        };
        let (lo, hi) = values().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi { (1e-3, 1.0) } else { (lo, hi) };
        let last = self.curves.iter().flat_map(|c| c.epochs.iter().copied()).fold(1.0, f64::max);
        let x = 0.5..last + 0.5;
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(self.title, (FAMILY, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        if self.log_y {
            let (lo, hi) = (lo / 1.15, hi * 1.15);
            let y = (lo..hi).log_scale().with_key_points(log_ticks(lo, hi));
            self.draw_on(
                builder.build_cartesian_2d(x, y).map_err(plot_err)?,
                &format!("loss ({}, log scale)", self.loss),
            )
        } else {
            let margin = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
            let y = (lo - margin).max(0.0)..hi + margin;
            self.draw_on(
                builder.build_cartesian_2d(x, y).map_err(plot_err)?,
                &format!("loss ({})", self.loss),
            )
        }
    }
}

/// The training curve's legend entry: "train", or for a trimmed loss what it leaves out.
fn train_name(trimmed: f64) -> String {
    if trimmed > 0.0 {
        format!("train (trimmed: worst {:.0}% of each batch left out)", trimmed * 100.0)
    } else {
        "train".into()
    }
}

/// `x` as a whole number when it is one (to rounding).
fn whole_tick(x: f64) -> Option<i64> {
    ((x - x.round()).abs() < 1e-6).then(|| x.round() as i64)
}

/// Ticks of a logarithmic axis over `lo..hi`: 1, 2 and 5 times the powers of ten inside it,
/// or every m·10ᵏ (m = 1..9) when that leaves fewer than three, so a range within one decade
/// still shows several labels.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return vec![];
    }
    let ticks = |mantissas: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|t| (lo..=hi).contains(t))
            .collect()
    };
    let coarse = ticks(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        coarse
    } else {
        ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

impl LossChart<'_> {
    /// Draws the mesh, curves, best-epoch markers and legend on a chart whose y axis is
    /// linear or logarithmic.
    fn draw_on<'a, DB, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        y_desc: &str,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            // Epochs are whole: ticks between them stay unlabelled (no "2 2").
            .x_label_formatter(&|x| whole_tick(*x).map_or(String::new(), |e| e.to_string()))
            .y_label_formatter(&|y| format!("{y:.4}"))
            .draw()
            .map_err(plot_err)?;

        for (i, curve) in self.curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            // A lone run gets a second colour for validation; several runs keep one
            // colour each and tell train from validation by the dashes.
            let val_color = match self.curves.len() {
                1 => Palette99::pick(1).to_rgba(),
                _ => color,
            };
            self.draw_train(&mut chart, curve, color)?;
            self.draw_validation(&mut chart, curve, val_color)?;
        }
        legend(&mut chart)?;
        Ok(())
    }

    /// A curve's legend entry: `what` it shows, after the run's name when there are
    /// several runs (one run needs no name; several are told apart by it).
    fn name(&self, curve: &LossCurve, what: &str) -> String {
        match self.curves.len() {
            1 => what.to_string(),
            _ => format!("{} {what}", curve.label),
        }
    }

    /// The training loss: a solid line with a dot per epoch.
    fn draw_train<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        curve: &LossCurve,
        color: RGBAColor,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let train: Vec<(f64, f64)> =
            curve.epochs.iter().copied().zip(curve.train.iter().copied()).collect();
        chart
            .draw_series(LineSeries::new(train.clone(), color.stroke_width(2)))
            .map_err(plot_err)?
            .label(self.name(curve, &train_name(curve.trimmed)))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(train.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(plot_err)?;
        Ok(())
    }

    /// The validation loss, where there is one: a dashed line with a triangle per epoch,
    /// and a cross on the best epoch.
    fn draw_validation<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        curve: &LossCurve,
        val_color: RGBAColor,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let val: Vec<(f64, f64)> =
            curve.epochs.iter().zip(&curve.val).filter_map(|(&e, v)| v.map(|v| (e, v))).collect();
        if !val.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(val.clone(), 8, 5, val_color.stroke_width(2)))
                .map_err(plot_err)?
                .label(self.name(curve, "validation"))
                .legend(move |(x, y)| {
                    // Dashed, as the curve is drawn.
                    let style = val_color.stroke_width(2);
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (8, 0)], style)
                        + PathElement::new(vec![(12, 0), (20, 0)], style)
                });
            chart
                .draw_series(val.iter().map(|&p| TriangleMarker::new(p, 4, val_color.filled())))
                .map_err(plot_err)?;
        }
        if let Some((epoch, loss)) = curve.best_val() {
            chart
                .draw_series([Cross::new((epoch, loss), 8, BLACK.stroke_width(2))])
                .map_err(plot_err)?
                .label(format!("{} {epoch:.0} ({loss:.5})", self.name(curve, "best validation:")))
                .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_chart_renders_png_and_svg() {
        let curve = LossCurve {
            label: "run".into(),
            trimmed: 0.0,
            epochs: vec![1.0, 2.0, 3.0],
            train: vec![0.09, 0.05, 0.04],
            val: vec![Some(0.08), Some(0.05), None],
        };
        assert_eq!(curve.best_val(), Some((2.0, 0.05)));
        let png =
            loss_chart(std::slice::from_ref(&curve), "loss", "MSE per value", false, Format::Png)
                .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (800, 500));
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 100)).count();
        assert!(dark > 500, "axes and text should draw dark pixels, found {dark}");
        let other = LossCurve { label: "other".into(), ..curve.clone() };
        let svg = loss_chart(&[curve, other], "loss", "MSE per value", true, Format::Svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..200]);
        assert!(svg.contains("run train") && svg.contains("other validation"));
        assert!(svg.contains("log scale") && svg.contains("best validation: 2 (0.05000)"));
        // A trimmed training loss says what it leaves out (it reads below validation).
        let trimmed = LossCurve { trimmed: 0.2, ..curve_of(3) };
        let svg = loss_chart(&[trimmed], "loss", "MSE per value", false, Format::Svg).unwrap();
        let texts = svg_texts(&String::from_utf8(svg).unwrap());
        assert!(texts.contains(&"train (trimmed: worst 20% of each batch left out)".into()));
        // Tick labels never read "-0" (a step of a range can land at -1e-17).
        assert_eq!(
            [-1e-17, 0.30000000000000004, -2.5, 1234.0, 3e300]
                .map(|v| super::super::figure::tick(&v)),
            ["0", "0.3", "-2.5", "1234", &format!("{}", 3e300)]
        );
    }

    fn curve_of(epochs: usize) -> LossCurve {
        LossCurve {
            label: "run".into(),
            trimmed: 0.0,
            epochs: (1..=epochs).map(|e| e as f64).collect(),
            train: (1..=epochs).map(|e| 0.12 / e as f64 + 0.03).collect(),
            val: vec![None; epochs],
        }
    }

    /// The texts of an SVG's `<text>` elements.
    fn svg_texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text")?.0.trim().to_string()))
            .collect()
    }

    /// Each epoch is labelled once ("0 1 2 2 3 4 4 5" was what a 5-epoch run showed), the
    /// axis says what the loss is, and a logarithmic axis over less than a decade still
    /// has several labels (it had one).
    #[test]
    fn epoch_ticks_are_whole_and_a_narrow_log_axis_has_several_labels() {
        assert_eq!((whole_tick(2.0), whole_tick(2.5), whole_tick(-0.0)), (Some(2), None, Some(0)));
        let narrow = log_ticks(0.03, 0.12);
        assert_eq!(narrow.len(), 8, "{narrow:?}"); // 0.03 … 0.09, 0.1
        assert_eq!(log_ticks(0.0009, 1.1).len(), 10, "1, 2, 5 × 10^-3 … 10^0");
        for epochs in [3usize, 5, 9] {
            let curve = curve_of(epochs);
            for log_y in [false, true] {
                let svg = loss_chart(
                    std::slice::from_ref(&curve),
                    "t",
                    "BCE per value",
                    log_y,
                    Format::Svg,
                )
                .unwrap();
                let texts = svg_texts(&String::from_utf8(svg).unwrap());
                for e in 1..=epochs {
                    let n = texts.iter().filter(|t| **t == e.to_string()).count();
                    assert_eq!(n, 1, "{epochs} epochs: tick {e} {n} times: {texts:?}");
                }
                assert!(texts.iter().any(|t| t.starts_with("loss (BCE per value")), "{texts:?}");
                let y_labels = texts.iter().filter(|t| t.starts_with("0.")).count();
                assert!(y_labels >= 3, "{epochs} epochs, log {log_y}: {texts:?}");
            }
        }
    }
}
