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

/// Each training and validation row's score, in the order the run reads its rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceScores {
    pub training: Vec<f64>,
    pub validation: Vec<f64>,
}

/// The squared reconstruction error of each of `rows` (clean input, whatever the mode).
pub fn row_errors(model: &Autoencoder, rows: &Rows, device: Device) -> Result<Vec<f64>> {
    if rows.is_empty() {
        return Ok(Vec::new()); // no validation rows (--val-fraction 0, a tiny set)
    }
    let x = rows.to_unit(device);
    let errors = sq_err_per_row(&reconstruct(model, &x), &x);
    Ok(Vec::<f64>::try_from(errors.to_device(Device::Cpu))?)
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
        Ok(ReferenceScores {
            training: row_scores(model, detector, training, device)?,
            validation: row_scores(model, detector, validation, device)?,
        })
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
