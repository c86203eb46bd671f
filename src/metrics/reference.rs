//! The anomaly scores of a run's own rows — each training and validation row's score
//! (`detector`'s for a table, else the squared reconstruction error) — recorded when training ends, so that `anomaly` puts its
//! threshold on new data from the run folder alone (the training file may be gone).

use super::detector::Detector;
use super::{reconstruct, sq_err_per_row};
use crate::atomic::write_atomic;
use crate::data::rows::Rows;
use crate::model::Autoencoder;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Device;

/// Where a run keeps them.
pub const FILE: &str = "reference-scores.json";

/// A list of scores longer than this is kept as this many + 1 order statistics.
pub const KEPT_SCORES: usize = 200_000;

/// `scores` as they are, or when there are more than `KEPT_SCORES` (windows of a long
/// series at a small hop: millions), their order statistics at `KEPT_SCORES + 1` evenly
/// spaced ranks, lowest to highest (the lowest and highest among them): what a percentile
/// threshold and the mean and spread read from them change by less than the scores'
/// spacing in rank, at a fixed size on disk.
pub fn order_statistics(mut scores: Vec<f64>) -> Vec<f64> {
    let n = scores.len();
    if n <= KEPT_SCORES + 1 {
        return scores;
    }
    scores.sort_unstable_by(f64::total_cmp);
    kept_ranks(n).map(|i| scores[i]).collect()
}

/// The ranks (0-based) that `order_statistics` keeps of `n` sorted scores.
fn kept_ranks(n: usize) -> impl Iterator<Item = usize> {
    let at = move |i: usize| (i as f64 * (n - 1) as f64 / KEPT_SCORES as f64).round() as usize;
    (0..=KEPT_SCORES).map(move |i| at(i).min(n - 1))
}

/// A list of scores as computed: each row's, or for more than `KEPT_SCORES` rows (the
/// windows of a long series: millions) all of them as f32, sorted.
enum Scores {
    Each(Vec<f64>),
    Sorted(Vec<f32>),
}

impl Scores {
    /// As `ReferenceScores` keeps them: each row's, or their order statistics.
    fn kept(&self) -> Vec<f64> {
        match self {
            Scores::Each(s) => s.clone(),
            Scores::Sorted(s) => kept_ranks(s.len()).map(|i| s[i] as f64).collect(),
        }
    }

    fn as_f32(&self) -> Vec<f32> {
        match self {
            Scores::Each(s) => s.iter().map(|&s| s as f32).collect(),
            Scores::Sorted(s) => s.clone(),
        }
    }
}

/// The scores of `rows` (see `Scores`).
fn kept_scores(
    (model, detector): (&Autoencoder, Option<&Detector>),
    rows: &Rows,
    device: Device,
) -> Result<Scores> {
    if rows.len() <= KEPT_SCORES + 1 {
        return row_scores(model, detector, rows, device).map(Scores::Each);
    }
    let (n, mut all) = (rows.len(), Vec::<f32>::with_capacity(rows.len()));
    let step = (crate::data::windows::CHUNK_VALUES / rows.width().max(1)).clamp(1, 1 << 16);
    for start in (0..n).step_by(step) {
        let part = rows.part(start..(start + step).min(n));
        all.extend(row_scores(model, detector, &part, device)?.iter().map(|&s| s as f32));
    }
    all.sort_unstable_by(f32::total_cmp);
    Ok(Scores::Sorted(all))
}

/// Each training and validation row's score, in the order the run reads its rows (for
/// more than `KEPT_SCORES` rows, their order statistics: `order_statistics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceScores {
    pub training: Vec<f64>,
    pub validation: Vec<f64>,
    /// When either list is kept as order statistics: those of both lists together, each
    /// row counted once (what `--contamination`, whose threshold reads all the run's
    /// rows, takes instead of the two lists joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub both: Option<Vec<f64>>,
}

/// The squared reconstruction error of each of `rows` (clean input, whatever the mode).
pub fn row_errors(model: &Autoencoder, rows: &Rows, device: Device) -> Result<Vec<f64>> {
    if rows.is_empty() {
        return Ok(Vec::new()); // no validation rows (--val-fraction 0, a tiny set)
    }
    let mut all = Vec::with_capacity(rows.len());
    for r in rows.chunks() {
        let x = rows.unit_range(r, device);
        let errors = sq_err_per_row(&reconstruct(model, &x), &x);
        all.extend(Vec::<f64>::try_from(errors.to_device(Device::Cpu))?);
    }
    Ok(all)
}

/// The anomaly score of each of `rows`: the detector's when the run has one, else the
/// squared reconstruction error.
pub fn row_scores(
    model: &Autoencoder,
    detector: Option<&Detector>,
    rows: &Rows,
    device: Device,
) -> Result<Vec<f64>> {
    match detector {
        Some(d) => d.scores(model, rows, device),
        None => row_errors(model, rows, device),
    }
}

impl ReferenceScores {
    /// The scores of the run's `training` and `validation` rows under `model` (and its
    /// detector, when it has one).
    pub fn of(
        (model, detector): (&Autoencoder, Option<&Detector>),
        training: &Rows,
        validation: &Rows,
        device: Device,
    ) -> Result<Self> {
        let scores = |rows: &Rows| kept_scores((model, detector), rows, device);
        let (training, validation) = (scores(training)?, scores(validation)?);
        let both = match (&training, &validation) {
            (Scores::Each(_), Scores::Each(_)) => None,
            _ => {
                let mut all = [training.as_f32(), validation.as_f32()].concat();
                all.sort_unstable_by(f32::total_cmp);
                Some(Scores::Sorted(all).kept())
            }
        };
        Ok(ReferenceScores { training: training.kept(), validation: validation.kept(), both })
    }

    /// Each of `scores` as an outlier probability, PyOD's "unify" scaling: the score
    /// standardised by the mean and standard deviation of the training rows' scores (the
    /// validation rows' when there are no training scores), through the Gauss error
    /// function (libtorch's `erf`), clipped to [0, 1]. A score at or below the training
    /// mean is 0; one three standard deviations above it is 0.9973.
    pub fn probability(&self, scores: &[f64]) -> Result<Vec<f64>> {
        let fit = if self.training.is_empty() { &self.validation } else { &self.training };
        let n = fit.len().max(1) as f64;
        let mean = fit.iter().sum::<f64>() / n;
        let std = (fit.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
        let z = tch::Tensor::from_slice(scores)
            .to_kind(tch::Kind::Double)
            .g_sub_scalar(mean)
            .g_div_scalar(std.max(f64::MIN_POSITIVE) * std::f64::consts::SQRT_2);
        Ok(Vec::<f64>::try_from(z.erf().clamp(0.0, 1.0))?)
    }

    /// Writes them to `path` whole or not at all.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec(self)?)
    }

    /// The scores a run recorded at `path`; `None` for a run made before they were.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let scores = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not the scores a run records", path.display()))?;
        Ok(Some(scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::detection::percentile;

    #[test]
    fn long_score_lists_keep_order_statistics_that_give_the_same_thresholds() {
        let short: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        assert_eq!(order_statistics(short.clone()), short, "short lists are kept as they are");
        // A million scores, skewed (squares of a scrambled ramp).
        let n = 1_000_000u64;
        let long: Vec<f64> =
            (0..n).map(|i| ((i * 104_729 % n) as f64 / n as f64).powi(2)).collect();
        let kept = order_statistics(long.clone());
        assert_eq!(kept.len(), KEPT_SCORES + 1);
        assert!(kept.windows(2).all(|p| p[0] <= p[1]));
        let (lo, hi) = long.iter().fold((f64::MAX, f64::MIN), |(a, b), &s| (a.min(s), b.max(s)));
        assert_eq!((kept[0], kept[KEPT_SCORES]), (lo, hi));
        for p in [50.0, 95.0, 99.0, 99.9] {
            let (full, summary) = (percentile(&long, p).unwrap(), percentile(&kept, p).unwrap());
            assert!((full - summary).abs() < 1e-5, "p{p}: {full} against {summary}");
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean(&long) - mean(&kept)).abs() < 1e-5);
    }
}
