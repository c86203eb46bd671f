//! `anomaly --explain N`: why the N highest-scoring rows score high. Vector rows get
//! each feature's share of the squared error (weighted as the table's detector weighs it)
//! and, for a table, how rare its value is in its column (a CSV, the first rows printed);
//! images get
//! their input, reconstruction and error heat map side by side (a PNG or SVG grid).

use crate::atomic::write_atomic;
use crate::commands::LoadedRun;
use crate::data::spec::{Category, DataSpec, FeatureGroup, ImageSpec, VectorSpec};
use crate::data::{self, Rows};
use crate::metrics;
use crate::metrics::detector::Detector;
use crate::plot::{self, Format};
use anyhow::{Context, Result};
use std::path::Path;

/// Features printed per explained row, and rows printed.
const EXPLAIN_FEATURES: usize = 3;
const EXPLAIN_PRINTED: usize = 5;

/// The indices of the `n` highest scores, highest first (ties by position).
pub fn highest(scores: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(n);
    order
}

/// The explained rows `top` of `rows` (their scores in `scores`) and the model's
/// reconstructions of them.
pub struct Explained<'a> {
    pub rows: &'a Rows,
    pub top: &'a [usize],
    pub scores: &'a [f64],
    /// The rows' values in [0, 1] (images) or scaled (vectors), row after row.
    x: Vec<f32>,
    xhat: Vec<f32>,
    /// A table run's detector: each feature's weight in the error, and each explained
    /// value's share of training rows at least as far out (row after row).
    detector: Option<(Vec<f64>, Vec<f64>)>,
}

/// Writes the explanation of the rows `top` to `path`; returns what to print.
pub fn explain(
    loaded: &LoadedRun,
    rows: &Rows,
    top: &[usize],
    (scores, detector): (&[f64], Option<&Detector>),
    path: &Path,
    format: Option<Format>,
) -> Result<String> {
    let x = rows.select(top).to_unit(loaded.device);
    let xhat = metrics::reconstruct(&loaded.model, &x);
    let detector = match detector {
        Some(d) => match (d.weights()?, d.tail_shares(&x)?) {
            (Some(weights), Some(tails)) => Some((weights, tails)),
            _ => None,
        },
        None => None,
    };
    let (x, xhat) = (data::to_host_f32(&x)?, data::to_host_f32(&xhat)?);
    let rows = Explained { rows, top, scores, x, xhat, detector };
    let input = &loaded.manifest.model.input;
    if let Some(spec) = input.vector() {
        return rows.vectors(input, spec, path);
    }
    let spec = loaded.spec()?;
    let format = format.context("--explain-out needs a .png or .svg name for images")?;
    let shape = crate::commands::image_shape(&loaded.manifest.model);
    rows.images(&spec, shape, path, format)
}

/// One row's squared error per feature, the total (never 0, so shares are defined) and
/// the features by error, largest first (ties by position).
#[derive(Debug, PartialEq)]
struct FeatureErrors {
    err: Vec<f64>,
    total: f64,
    order: Vec<usize>,
}

impl FeatureErrors {
    /// The errors of the input `x` reconstructed as `xhat`, computed in f64, each times its
    /// feature's weight when there are `weights`.
    fn of(x: &[f32], xhat: &[f32], weights: Option<&[f64]>) -> FeatureErrors {
        let weight = |j: usize| weights.map_or(1.0, |w| w[j]);
        let err: Vec<f64> = x
            .iter()
            .zip(xhat)
            .enumerate()
            .map(|(j, (&a, &b))| (a as f64 - b as f64).powi(2) * weight(j))
            .collect();
        let total = err.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut order: Vec<usize> = (0..err.len()).collect();
        order.sort_by(|&a, &b| err[b].total_cmp(&err[a]).then(a.cmp(&b)));
        FeatureErrors { err, total, order }
    }

    /// Feature `j`'s share of the row's error, in [0, 1].
    fn share(&self, j: usize) -> f64 {
        self.err[j] / self.total
    }

    /// The errors per file column: a one-hot group's features summed.
    fn grouped(&self, groups: &[FeatureGroup]) -> FeatureErrors {
        let err: Vec<f64> =
            groups.iter().map(|g| self.err[g.features.clone()].iter().sum()).collect();
        let mut order: Vec<usize> = (0..err.len()).collect();
        order.sort_by(|&a, &b| err[b].total_cmp(&err[a]).then(a.cmp(&b)));
        FeatureErrors { err, total: self.total, order }
    }
}

/// A one-hot group's values (in the file's units) as the level they stand for: the
/// highest; for an input (`input`, values 0 or 1), "(unseen)" when none is 1 (a level the
/// run did not see).
fn level_of(category: &Category, values: &[f64], input: bool) -> String {
    let best = (0..values.len()).max_by(|&a, &b| values[a].total_cmp(&values[b]));
    match best {
        Some(k) if !input || values[k] >= 0.5 => category.levels[k].clone(),
        _ => "(unseen)".into(),
    }
}

impl Explained<'_> {
    /// Vector rows: one CSV record per (row, file column), columns by their share of the
    /// row's error (a one-hot text column's features summed, its value and reconstruction
    /// the level set and the level reconstructed highest); prints the first rows' largest.
    fn vectors(&self, input: &DataSpec, spec: &VectorSpec, path: &Path) -> Result<String> {
        let (_, ids) = self.rows.ids();
        let labels = self.rows.labels();
        // Each row's key: its number, its file (windows of a folder), its label.
        let (key_names, keys) = self.rows.key_columns(input);
        let width = spec.columns.len();
        let groups = spec.groups();
        let (value, recon) = (spec.scaling.to_units(&self.x), spec.scaling.to_units(&self.xhat));
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["rank"];
        header.extend(&key_names);
        header.extend(["score", "feature", "value", "reconstruction", "share"]);
        if self.detector.is_some() {
            header.push("as_extreme");
        }
        csv.write_record(&header)?;
        let mut printed = String::new();
        for (rank, &i) in self.top.iter().enumerate() {
            let row = rank * width..(rank + 1) * width;
            let weights = self.detector.as_ref().map(|d| &d.0[..]);
            let errors = FeatureErrors::of(&self.x[row.clone()], &self.xhat[row.clone()], weights)
                .grouped(&groups);
            // Column j: the share of training rows as far out (a group's rarest feature).
            let extreme = |j: usize| {
                let tail = &self.detector.as_ref()?.1[row.clone()];
                groups[j].features.clone().map(|f| tail[f]).reduce(f64::min)
            };
            let (value, recon) = (&value[row.clone()], &recon[row.clone()]);
            // Column j of the input (`is_input`) or the reconstruction `v`, as text.
            let shown = |v: &[f64], is_input: bool, j: usize, text: fn(f64) -> String| {
                let group = &groups[j];
                match group.category {
                    Some(c) => level_of(c, &v[group.features.clone()], is_input),
                    None => text(v[group.features.start]),
                }
            };
            for &j in &errors.order {
                let mut record = vec![(rank + 1).to_string()];
                record.extend(keys[i].iter().cloned());
                record.extend([
                    self.scores[i].to_string(),
                    groups[j].name.clone(),
                    shown(value, true, j, |v| v.to_string()),
                    shown(recon, false, j, |v| v.to_string()),
                    format!("{:.6}", errors.share(j)),
                ]);
                record.extend(extreme(j).map(|t| format!("{t:.6}")));
                csv.write_record(&record)?;
            }
            if rank < EXPLAIN_PRINTED {
                let features: Vec<String> = errors
                    .order
                    .iter()
                    .take(EXPLAIN_FEATURES)
                    .map(|&j| {
                        let (name, share) = (&groups[j].name, 100.0 * errors.share(j));
                        let (v, r) = (shown(value, true, j, short), shown(recon, false, j, short));
                        let rare = extreme(j).map(|t| format!("; {:.2}%", 100.0 * t));
                        format!("{name} {share:.0}% ({v} → {r}{})", rare.unwrap_or_default())
                    })
                    .collect();
                let label = labels.map(|l| format!(", {}", input.class_name(l[i])));
                printed += &format!(
                    "  row {}{}, score {:.3}: {}\n",
                    ids[i],
                    label.unwrap_or_default(),
                    self.scores[i],
                    features.join(", ")
                );
            }
        }
        write_atomic(path, &csv.into_inner()?)?;
        Ok(self.vectors_written(path, &printed))
    }

    /// What `vectors` prints after writing `path`: where, what the numbers are, and the
    /// `printed` rows.
    fn vectors_written(&self, path: &Path, printed: &str) -> String {
        let tails = if self.detector.is_some() { "; training rows as far out" } else { "" };
        format!(
            "explained   the {} highest-scoring rows in {}: feature, share of the error \
             (value → reconstruction{tails})\n{printed}",
            self.top.len(),
            path.display(),
        )
    }

    /// Images: a grid of the inputs, reconstructions and error heat maps, each row of
    /// images in RGB; prints the first images' numbers (and files) with their scores.
    fn images(
        &self,
        spec: &ImageSpec,
        (c, h, w): (usize, usize, usize),
        path: &Path,
        format: Format,
    ) -> Result<String> {
        let (inputs, recons) = (rgb(&self.x, c, h * w), rgb(&self.xhat, c, h * w));
        let heat = heat_maps(&self.x, &self.xhat, c, h * w);
        let grid = [
            plot::GridRow { label: "input", images: &inputs },
            plot::GridRow { label: "reconstruction", images: &recons },
            plot::GridRow { label: "error", images: &heat },
        ];
        let title = format!(
            "The {} highest-scoring {}x{} images, highest first (error: each image's own scale)",
            self.top.len(),
            spec.height,
            spec.width
        );
        let bytes = plot::image_grid(&grid, (3, h, w), &title, format)?;
        write_atomic(path, &bytes)?;
        let files = self.rows.files();
        let list: Vec<String> = self
            .top
            .iter()
            .take(EXPLAIN_PRINTED)
            .map(|&i| match &files {
                Some(f) => format!("{i} {} ({:.3})", f[i], self.scores[i]),
                None => format!("{i} ({:.3})", self.scores[i]),
            })
            .collect();
        Ok(format!(
            "explained   the {} highest-scoring images in {}; first: {}\n",
            self.top.len(),
            path.display(),
            list.join(", ")
        ))
    }
}

/// Images of `c` channel planes of `area` values each, as RGB (a gray plane read three
/// times), so they sit in one grid with the coloured heat maps.
fn rgb(v: &[f32], c: usize, area: usize) -> Vec<f32> {
    v.chunks(c * area)
        .flat_map(|img| (0..3).flat_map(move |ch| img[(ch % c) * area..][..area].to_vec()))
        .collect()
}

/// Each image's squared error per pixel (summed over its `c` channels), on the image's
/// own scale (its largest error is white), coloured by `hot`, as RGB planes.
fn heat_maps(x: &[f32], xhat: &[f32], c: usize, area: usize) -> Vec<f32> {
    let mut heat = Vec::with_capacity(x.len() / c.max(1) * 3);
    for (img, rec) in x.chunks(c * area).zip(xhat.chunks(c * area)) {
        let err: Vec<f32> = (0..area)
            .map(|p| (0..c).map(|ch| (img[ch * area + p] - rec[ch * area + p]).powi(2)).sum())
            .collect();
        let peak = err.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
        let colours: Vec<[f32; 3]> = err.iter().map(|e| hot(e / peak)).collect();
        for ch in 0..3 {
            heat.extend(colours.iter().map(|rgb| rgb[ch]));
        }
    }
    heat
}

/// A value in few characters.
fn short(v: f64) -> String {
    if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// A black → red → yellow → white ramp for t in [0, 1].
fn hot(t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0) * 3.0;
    [t.min(1.0), (t - 1.0).clamp(0.0, 1.0), (t - 2.0).clamp(0.0, 1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_scores_come_first_and_ties_keep_their_order() {
        assert_eq!(highest(&[0.5, 2.0, 1.0, 2.0], 3), [1, 3, 2]);
        assert_eq!(highest(&[0.5, 2.0], 5), [1, 0]);
        assert!(highest(&[], 2).is_empty());
    }

    #[test]
    fn feature_shares_are_of_the_rows_squared_error() {
        // Errors 0.25, 1, 0.25, 0 of total 1.5: the largest first, ties by position.
        let e = FeatureErrors::of(&[0.5, 1.0, 0.0, 0.3], &[0.0, 0.0, 0.5, 0.3], None);
        assert_eq!(e.err, [0.25, 1.0, 0.25, 0.0]);
        assert_eq!(e.order, [1, 0, 2, 3]);
        assert!((e.share(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!(((0..4).map(|j| e.share(j)).sum::<f64>() - 1.0).abs() < 1e-12);
        // A perfect reconstruction has shares of 0, not NaN.
        let perfect = FeatureErrors::of(&[1.0, 2.0], &[1.0, 2.0], None);
        assert_eq!((perfect.share(0), perfect.order), (0.0, vec![0, 1]));
        // A table's detector weighs each feature: the order follows the weighted errors.
        let weighted = [1.0, 0.1, 4.0, 1.0];
        let w = FeatureErrors::of(&[0.5, 1.0, 0.0, 0.3], &[0.0, 0.0, 0.5, 0.3], Some(&weighted));
        assert_eq!((w.err, w.order), (vec![0.25, 0.1, 1.0, 0.0], vec![2, 0, 1, 3]));
    }

    #[test]
    fn short_values_and_the_heat_ramp() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1.23456), "1.235");
        assert_eq!(short(-250.0), "-250");
        assert_eq!(short(123456.0), "1.235e5");
        assert_eq!(short(0.0001234), "1.234e-4");
        assert_eq!(hot(0.0), [0.0, 0.0, 0.0]);
        assert_eq!(hot(0.5), [1.0, 0.5, 0.0]);
        assert_eq!(hot(1.0), [1.0, 1.0, 1.0]);
        assert_eq!(hot(7.0), hot(1.0));
    }

    #[test]
    fn heat_maps_are_rgb_on_each_images_own_scale() {
        // Two gray 1×2 images: errors (0.25, 1) and (0, 0.01) → peaks at the second pixel.
        let x = [0.5, 1.0, 0.0, 0.1];
        let xhat = [0.0, 0.0, 0.0, 0.0];
        let heat = heat_maps(&x, &xhat, 1, 2);
        assert_eq!(heat.len(), 2 * 3 * 2);
        // Image 1, planes R, G, B: pixel 1 at a quarter of the peak, pixel 2 white.
        assert_eq!(&heat[..6], &[0.75, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(&heat[6..], &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // Gray images become three equal planes; colour ones stay as they are.
        assert_eq!(rgb(&[0.1, 0.2], 1, 2), [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]);
        assert_eq!(rgb(&[1.0, 2.0, 3.0], 3, 1), [1.0, 2.0, 3.0]);
    }
}
