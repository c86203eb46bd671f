//! Figures rendered with plotters from plain slices (no tch here): loss curves and image
//! grids, as PNG or SVG bytes. Writing them to disk is the caller's job.

use crate::data::spec::to_byte;
use anyhow::{anyhow, bail, Result};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, embedded so text renders the same on a machine with no fonts installed.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would show as missing text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Output encodings, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => bail!(
                "{}: unsupported plot format, expected a .png or .svg file name",
                path.display()
            ),
        }
    }
}

/// Something that can draw itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// The legend every chart uses: upper right, framed, on a translucent white ground.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

fn render(fig: &impl Figure, format: Format) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = fig.size();
    match format {
        Format::Png => {
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                fig.draw(&root)?;
                root.present().map_err(plot_err)?;
            }
            let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| anyhow!("bad buffer"))?;
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png)?;
            Ok(png.into_inner())
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                fig.draw(&root)?;
                root.present().map_err(plot_err)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Loss per epoch of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct LossCurve {
    pub label: String,
    pub epochs: Vec<f64>,
    pub train: Vec<f64>,
    pub val: Vec<Option<f64>>,
}

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

        // One run needs no run name in its legend; several are told apart by it.
        let name = |curve: &LossCurve, what: &str| match self.curves.len() {
            1 => what.to_string(),
            _ => format!("{} {what}", curve.label),
        };
        for (i, curve) in self.curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            // A lone run gets a second colour for validation; several runs keep one
            // colour each and tell train from validation by the dashes.
            let val_color = match self.curves.len() {
                1 => Palette99::pick(1).to_rgba(),
                _ => color,
            };
            let train: Vec<(f64, f64)> =
                curve.epochs.iter().copied().zip(curve.train.iter().copied()).collect();
            chart
                .draw_series(LineSeries::new(train.clone(), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name(curve, "train"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(train.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
            let val: Vec<(f64, f64)> = curve
                .epochs
                .iter()
                .zip(&curve.val)
                .filter_map(|(&e, v)| v.map(|v| (e, v)))
                .collect();
            if !val.is_empty() {
                chart
                    .draw_series(DashedLineSeries::new(
                        val.clone(),
                        8,
                        5,
                        val_color.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label(name(curve, "validation"))
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
                    .label(format!("{} {epoch:.0} ({loss:.5})", name(curve, "best validation:")))
                    .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
            }
        }
        legend(&mut chart)?;
        Ok(())
    }
}

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

/// `(min, max)` of finite values, widened by 5% (and never empty).
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
    let pad = ((hi - lo) * 0.05).max(1e-9);
    lo - pad..hi + pad
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

/// Anomaly scores of the normal and the anomalous images, and the decision threshold.
struct ScoreHistogram<'a> {
    normal: &'a [f64],
    anomalous: &'a [f64],
    threshold: f64,
    bins: usize,
}

/// Overlaid histograms (share of each group per bin) of the normal and anomalous scores,
/// with the threshold as a vertical line.
pub fn score_histogram(
    normal: &[f64],
    anomalous: &[f64],
    threshold: f64,
    format: Format,
) -> Result<Vec<u8>> {
    if normal.iter().chain(anomalous).all(|v| !v.is_finite()) {
        bail!("nothing to plot: no finite scores");
    }
    render(&ScoreHistogram { normal, anomalous, threshold, bins: 40 }, format)
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
        let all = || self.normal.iter().chain(self.anomalous).copied().chain([self.threshold]);
        let lo = all().filter(|v| v.is_finite()).fold(f64::MAX, f64::min);
        let hi = all().filter(|v| v.is_finite()).fold(f64::MIN, f64::max).max(lo + 1e-9);
        let width = (hi - lo) / self.bins as f64;
        let groups = [
            ("normal", self.normal, Palette99::pick(4).to_rgba()),
            ("anomalous", self.anomalous, Palette99::pick(0).to_rgba()),
        ];
        let shares: Vec<Vec<f64>> =
            groups.iter().map(|g| histogram(g.1, lo, hi, self.bins)).collect();
        let top = shares.iter().flatten().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption("anomaly scores: reconstruction error per image", (FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("squared error per image")
            .y_desc("share of the group")
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

/// A series and its scores per step: the values above (one line per channel), the
/// scores below with the threshold, flagged steps shaded in both, labelled anomalies
/// marked along the top.
pub struct SeriesScores<'a> {
    /// Step numbers (x axis).
    pub steps: &'a [f64],
    /// One list of values per channel, named.
    pub channels: Vec<(&'a str, &'a [f64])>,
    pub scores: &'a [f64],
    pub threshold: f64,
    pub flagged: &'a [bool],
    /// Steps labelled anomalous, if the series has labels.
    pub labelled: Option<&'a [bool]>,
}

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

impl Figure for SeriesScores<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(330);
        let x = self.steps[0]..self.steps[self.steps.len() - 1].max(self.steps[0] + 1.0);
        let shade = Palette99::pick(0).to_rgba().mix(0.18);
        let label_mark = Palette99::pick(0).to_rgba();
        let panels: [(&DrawingArea<DB, Shift>, bool); 2] = [(&top, true), (&bottom, false)];
        for (area, values) in panels {
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
                .x_desc("step")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FAMILY, 13))
                .axis_desc_style((FAMILY, 14))
                .draw()
                .map_err(plot_err)?;
            let at = |i: usize| self.steps[i];
            chart
                .draw_series(runs(self.flagged).into_iter().map(|(a, b)| {
                    Rectangle::new([(at(a) - 0.5, y.start), (at(b) + 0.5, y.end)], shade.filled())
                }))
                .map_err(plot_err)?;
            if values {
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
            } else {
                chart
                    .draw_series(LineSeries::new(
                        self.scores.iter().enumerate().map(|(i, &s)| (at(i), s)),
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
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2))
                    });
            }
            legend(&mut chart)?;
        }
        Ok(())
    }
}

/// One labelled row of a grid: `images` holds `n` images of `C*H*W` values in [0, 1], each
/// its channel planes one after another (gray: one plane; RGB: red, green, blue).
#[derive(Clone, Debug)]
pub struct GridRow<'a> {
    pub label: &'a str,
    pub images: &'a [f32],
}

/// Pixel geometry of an image grid: a label column, then one cell per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridLayout {
    pub rows: u32,
    pub cols: u32,
    /// Width and height of one cell in output pixels.
    pub cell_w: u32,
    pub cell_h: u32,
    /// Output pixels per image pixel.
    pub scale: u32,
    pub label_w: u32,
    pub title_h: u32,
    pub pad: u32,
}

impl GridLayout {
    pub fn new(rows: u32, cols: u32, height: u32, width: u32) -> Self {
        // Small images are magnified so a 28x28 digit is 84 px; large ones are not.
        let scale = (84 / height.max(width)).clamp(1, 4);
        GridLayout {
            rows,
            cols,
            cell_w: width * scale,
            cell_h: height * scale,
            scale,
            label_w: 150,
            title_h: 36,
            pad: 4,
        }
    }

    /// Total size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            self.label_w + self.cols * (self.cell_w + self.pad) + self.pad,
            self.title_h + self.rows * (self.cell_h + self.pad) + self.pad,
        )
    }

    /// Top-left pixel of the cell at (`row`, `col`).
    pub fn origin(&self, row: u32, col: u32) -> (u32, u32) {
        (
            self.label_w + self.pad + col * (self.cell_w + self.pad),
            self.title_h + self.pad + row * (self.cell_h + self.pad),
        )
    }
}

struct Grid<'a> {
    rows: &'a [GridRow<'a>],
    channels: usize,
    height: u32,
    width: u32,
    layout: GridLayout,
    title: &'a str,
}

/// Renders rows of images (e.g. clean / noisy / reconstruction) with their labels;
/// `(channels, height, width)` is the shape of one image, 1 or 3 channels.
pub fn image_grid(
    rows: &[GridRow<'_>],
    (channels, height, width): (usize, usize, usize),
    title: &str,
    format: Format,
) -> Result<Vec<u8>> {
    let pixels = channels * height * width;
    if rows.is_empty() || pixels == 0 {
        bail!("nothing to draw: no rows or empty images");
    }
    if channels != 1 && channels != 3 {
        bail!("images must have 1 or 3 channels to be drawn, got {channels}");
    }
    let cols = rows[0].images.len() / pixels;
    if cols == 0 || rows.iter().any(|r| r.images.len() != cols * pixels) {
        bail!("every grid row must hold the same number of {height}x{width} images");
    }
    let mut layout = GridLayout::new(rows.len() as u32, cols as u32, height as u32, width as u32);
    if rows.iter().all(|r| r.label.is_empty()) {
        layout.label_w = 0;
    }
    let grid = Grid { rows, channels, height: height as u32, width: width as u32, layout, title };
    render(&grid, format)
}

impl Figure for Grid<'_> {
    fn size(&self) -> (u32, u32) {
        self.layout.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let l = &self.layout;
        root.fill(&WHITE).map_err(plot_err)?;
        let title_style = TextStyle::from((FAMILY, 20).into_font()).color(&BLACK);
        root.draw_text(self.title, &title_style, (l.pad as i32 + 4, 8)).map_err(plot_err)?;
        let label_style = TextStyle::from((FAMILY, 16).into_font()).color(&BLACK);
        let area = (self.height * self.width) as usize;
        // Gray images read their one plane three times.
        let plane = |c: usize| if self.channels == 1 { 0 } else { c * area };
        for (r, row) in self.rows.iter().enumerate() {
            let (_, y) = l.origin(r as u32, 0);
            let text_y = (y + l.cell_h / 2) as i32 - 8;
            root.draw_text(row.label, &label_style, (8, text_y)).map_err(plot_err)?;
            for (c, image) in row.images.chunks_exact(self.channels * area).enumerate() {
                let (x0, y0) = l.origin(r as u32, c as u32);
                for p in 0..area {
                    let level = |c: usize| to_byte(image[plane(c) + p]);
                    let (px, py) = (p as u32 % self.width, p as u32 / self.width);
                    let x = (x0 + px * l.scale) as i32;
                    let y = (y0 + py * l.scale) as i32;
                    let s = l.scale as i32;
                    root.draw(&Rectangle::new(
                        [(x, y), (x + s, y + s)],
                        RGBColor(level(0), level(1), level(2)).filled(),
                    ))
                    .map_err(plot_err)?;
                }
            }
        }
        Ok(())
    }
}

/// A confusion matrix: `counts[t * n + p]` test rows of true class `t` predicted as `p`.
struct Confusion<'a> {
    counts: &'a [u64],
    names: &'a [String],
    title: &'a str,
}

/// Cell size and the margin for class names, in pixels.
const CELL: u32 = 44;
const NAME_W: u32 = 130;

/// The confusion matrix of `names.len()` classes, rows the true class and columns the
/// predicted one, each cell shaded by its share of the row and labelled with its count.
pub fn confusion_matrix(
    counts: &[u64],
    names: &[String],
    title: &str,
    format: Format,
) -> Result<Vec<u8>> {
    let n = names.len();
    if n == 0 || counts.len() != n * n {
        bail!("a confusion matrix needs n × n counts for n classes");
    }
    render(&Confusion { counts, names, title }, format)
}

impl Figure for Confusion<'_> {
    fn size(&self) -> (u32, u32) {
        let n = self.names.len() as u32;
        (NAME_W + n * CELL + 20, 60 + NAME_W + n * CELL)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let n = self.names.len();
        let text = |size| TextStyle::from((FAMILY, size).into_font()).color(&BLACK);
        root.draw_text(self.title, &text(18), (10, 10)).map_err(plot_err)?;
        let (x0, y0) = (NAME_W as i32, 60 + NAME_W as i32);
        root.draw_text("predicted →", &text(14), (x0, 36)).map_err(plot_err)?;
        root.draw_text("true ↓", &text(14), (10, y0 - 20)).map_err(plot_err)?;
        for (i, name) in self.names.iter().enumerate() {
            let short: String = name.chars().take(14).collect();
            let at = i as i32 * CELL as i32;
            root.draw_text(&short, &text(13), (8, y0 + at + 14)).map_err(plot_err)?;
            let vertical = text(13).transform(FontTransform::Rotate270);
            root.draw_text(&short, &vertical, (x0 + at + 14, y0 - 6)).map_err(plot_err)?;
        }
        for t in 0..n {
            let row = &self.counts[t * n..(t + 1) * n];
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &c) in row.iter().enumerate() {
                let share = c as f64 / total;
                // White → blue by the share of the true class's rows.
                let colour = RGBColor(
                    (255.0 * (1.0 - 0.8 * share)) as u8,
                    (255.0 * (1.0 - 0.6 * share)) as u8,
                    255,
                );
                let (x, y) = (x0 + (p as u32 * CELL) as i32, y0 + (t as u32 * CELL) as i32);
                let cell = [(x, y), (x + CELL as i32 - 1, y + CELL as i32 - 1)];
                root.draw(&Rectangle::new(cell, colour.filled())).map_err(plot_err)?;
                let ink = if share > 0.6 { WHITE } else { BLACK };
                let style = TextStyle::from((FAMILY, 13).into_font()).color(&ink);
                root.draw_text(&c.to_string(), &style, (x + 6, y + 15)).map_err(plot_err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_cells_tile_without_overlap() {
        let l = GridLayout::new(3, 10, 28, 28);
        assert_eq!((l.scale, l.cell_w, l.cell_h), (3, 84, 84));
        assert_eq!(l.size(), (150 + 10 * 88 + 4, 36 + 3 * 88 + 4));
        assert_eq!(l.origin(0, 0), (154, 40));
        assert_eq!(l.origin(2, 9), (154 + 9 * 88, 40 + 2 * 88));
        // The last cell ends exactly one pad before the right and bottom edges.
        let (x, y) = l.origin(2, 9);
        assert_eq!((x + l.cell_w + l.pad, y + l.cell_h + l.pad), l.size());
        // Neighbouring cells are exactly one pad apart.
        assert_eq!(l.origin(0, 1).0 - (l.origin(0, 0).0 + l.cell_w), l.pad);
        assert_eq!(l.origin(1, 0).1 - (l.origin(0, 0).1 + l.cell_h), l.pad);
        // Large images are not magnified.
        assert_eq!(GridLayout::new(1, 1, 200, 100).scale, 1);
    }

    #[test]
    fn grid_png_has_the_layout_size_and_the_pixels() {
        let white = vec![1.0f32; 2 * 4];
        let black = vec![0.0f32; 2 * 4];
        let rows = [
            GridRow { label: "white", images: &white },
            GridRow { label: "black", images: &black },
        ];
        let png = image_grid(&rows, (1, 2, 2), "t", Format::Png).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let l = GridLayout::new(2, 2, 2, 2);
        assert_eq!(img.dimensions(), l.size());
        let (x, y) = l.origin(1, 1);
        assert_eq!(img.get_pixel(x, y).0, [0, 0, 0]);
        let (x, y) = l.origin(0, 1);
        assert_eq!(img.get_pixel(x + l.cell_w - 1, y + l.cell_h - 1).0, [255, 255, 255]);
        let err =
            image_grid(&[GridRow { label: "x", images: &[0.0; 3] }], (1, 2, 2), "t", Format::Png);
        assert!(err.is_err());
        // Colour: planes R, G, B of one 1×2 image: a red pixel, then a cyan one.
        let colour = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
        let png =
            image_grid(&[GridRow { label: "", images: &colour }], (3, 1, 2), "t", Format::Png)
                .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let mut l = GridLayout::new(1, 1, 1, 2);
        l.label_w = 0;
        let (x, y) = l.origin(0, 0);
        assert_eq!(img.get_pixel(x, y).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(x + l.scale, y).0, [0, 255, 255]);
    }

    #[test]
    fn loss_chart_renders_png_and_svg() {
        let curve = LossCurve {
            label: "run".into(),
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
            let curve = LossCurve {
                label: "run".into(),
                epochs: (1..=epochs).map(|e| e as f64).collect(),
                train: (1..=epochs).map(|e| 0.12 / e as f64 + 0.03).collect(),
                val: vec![None; epochs],
            };
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

    #[test]
    fn histogram_shares_sum_to_one_and_clip_to_the_edges() {
        let h = histogram(&[0.0, 0.1, 0.5, 0.99, 1.0, 7.0, f64::NAN], 0.0, 1.0, 4);
        assert_eq!(h, vec![2.0 / 6.0, 0.0, 1.0 / 6.0, 3.0 / 6.0]);
        let png = score_histogram(&[1.0, 2.0, 2.5], &[5.0, 6.0], 3.0, Format::Png).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 800);
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::from_path(Path::new("b.svg")).unwrap(), Format::Svg);
        assert!(Format::from_path(Path::new("b.jpg"))
            .unwrap_err()
            .to_string()
            .contains(".png or .svg"));
    }
}
