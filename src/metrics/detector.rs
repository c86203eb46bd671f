//! The score of a table's rows: the autoencoder's reconstruction error, each feature's
//! squared error divided by its median over the training rows (a column the model rebuilds
//! closely counts more when it misses), plus how far the row's values lie in their columns'
//! tails (ECOD: the empirical tail probability of each value, summed as −log over the
//! columns). Each term is put on the training rows' scale — its log, less the median, over
//! the interquartile range — and the two are added. Fitted when training ends for a table
//! run that asks for it (`tail_score`) and kept in `detector.safetensors`; runs without the
//! file (the default, images, series) score by the plain squared error.

use super::reconstruct;
use crate::atomic::with_temp_file;
use crate::data::rows::Rows;
use crate::model::Autoencoder;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Where a table run keeps its detector.
pub const FILE: &str = "detector.safetensors";
/// Training rows kept for the tails: an evenly spaced subsample. On ADBench's tables 2,048
/// rows give the same ROC-AUC as every row (0.7302 against 0.7297 for the tail term alone).
const TAIL_ROWS: i64 = 2048;
/// Added to each feature's median squared error (scaled units, so a residual of 1e-4).
const ERROR_FLOOR: f64 = 1e-8;
/// Added before a log so that a zero error has one.
const LOG_FLOOR: f64 = 1e-12;
/// Added to an interquartile range so that constant scores divide.
const SPREAD_FLOOR: f64 = 1e-9;

/// What a table run's score needs besides the model.
#[derive(Debug)]
pub struct Detector {
    /// `[D]`: 1 / (the feature's median squared error on the training rows + floor).
    weights: Tensor,
    /// `[D, M]`: each feature's values on the kept training rows, sorted.
    reference: Tensor,
    /// `[D]`: 1 where the feature's training values are skewed left, else 0.
    left: Tensor,
    /// `[4]`: median and interquartile range of the log error, then of the log tail score,
    /// over the training rows.
    scale: Tensor,
}

impl Detector {
    /// Fits the detector on the training `rows` under `model`.
    pub fn fit(model: &Autoencoder, rows: &Rows, device: Device) -> Result<Detector> {
        if rows.is_empty() {
            bail!("no training rows to fit the anomaly score on");
        }
        let x = rows.to_unit(device).to_kind(Kind::Double);
        let n = x.size()[0];
        let error =
            (reconstruct(model, &x.to_kind(Kind::Float)).to_kind(Kind::Double) - &x).square();
        let weights = (error.median_dim(0, false).0 + ERROR_FLOOR).reciprocal();
        let kept = Tensor::linspace(0.0, (n - 1) as f64, n.min(TAIL_ROWS), (Kind::Double, device))
            .round()
            .to_kind(Kind::Int64);
        let reference = x.index_select(0, &kept).transpose(0, 1).sort(1, false).0.contiguous();
        let centred = &x - x.mean_dim(0, true, Kind::Double);
        let left = centred.pow_tensor_scalar(3).sum_dim_intlist(0, false, Kind::Double).lt(0.0);
        let mut detector = Detector {
            weights,
            reference,
            left: left.to_kind(Kind::Double),
            scale: Tensor::from_slice(&[0.0, 1.0, 0.0, 1.0]).to_device(device),
        };
        let (err, tail) = detector.terms(model, &x);
        let (e, t) = (spread(&err)?, spread(&tail)?);
        detector.scale = Tensor::from_slice(&[e.0, e.1, t.0, t.1]).to_device(device);
        Ok(detector)
    }

    /// Each of `rows`' score (see the module docs).
    pub fn scores(&self, model: &Autoencoder, rows: &Rows, device: Device) -> Result<Vec<f64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let x = rows.to_unit(device).to_kind(Kind::Double);
        let (err, tail) = self.terms(model, &x);
        let s = |i: i64| self.scale.double_value(&[i]);
        let score = (err - s(0)) / s(1) + (tail - s(2)) / s(3);
        Ok(Vec::<f64>::try_from(score.to_device(Device::Cpu))?)
    }

    /// The log weighted error and the log tail score of each of `x`'s rows (`[N, D]` f64
    /// → two `[N]`).
    fn terms(&self, model: &Autoencoder, x: &Tensor) -> (Tensor, Tensor) {
        let xhat = reconstruct(model, &x.to_kind(Kind::Float)).to_kind(Kind::Double);
        let err = ((xhat - x).square() * &self.weights).mean_dim(1, false, Kind::Double);
        let tail = tails(&self.reference, &self.left, x);
        ((err + LOG_FLOOR).log(), (tail + LOG_FLOOR).log())
    }

    /// Each feature's weight in the error term, `[D]` on the CPU.
    pub fn weights(&self) -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(self.weights.to_device(Device::Cpu))?)
    }

    /// For each value of `x` (`[N, D]`, scaled), the share of the kept training rows whose
    /// value lies at least as far out on the same side (the smaller tail probability),
    /// `[N, D]` f64 on the CPU, row after row.
    pub fn tail_shares(&self, x: &Tensor) -> Result<Vec<f64>> {
        let x = x.to_device(self.reference.device()).to_kind(Kind::Double);
        let (low, high) = tail_probabilities(&self.reference, &x);
        let share = low.minimum(&high).transpose(0, 1).contiguous().view([-1]);
        Ok(Vec::<f64>::try_from(share.to_device(Device::Cpu))?)
    }

    /// Writes it to `path` whole or not at all.
    pub fn write(&self, path: &Path) -> Result<()> {
        let named = [
            ("weights", &self.weights),
            ("reference", &self.reference),
            ("left", &self.left),
            ("scale", &self.scale),
        ];
        let named: Vec<(&str, Tensor)> =
            named.iter().map(|(n, t)| (*n, t.to_device(Device::Cpu).contiguous())).collect();
        with_temp_file(path, |tmp| {
            Tensor::write_safetensors(&named, tmp).context("serialising the anomaly detector")?;
            Ok(())
        })
    }

    /// The detector a run keeps at `path` for `width` features, on `device`; `None` when the
    /// run has none.
    pub fn read(path: &Path, width: usize, device: Device) -> Result<Option<Detector>> {
        if !path.is_file() {
            return Ok(None);
        }
        let bad = || format!("{} is not an anomaly detector ae-tch wrote", path.display());
        let mut named: HashMap<String, Tensor> =
            Tensor::read_safetensors(path).with_context(bad)?.into_iter().collect();
        let mut take = |name: &str, dims: usize| -> Result<Tensor> {
            match named.remove(name) {
                Some(t) if t.dim() == dims && t.kind() == Kind::Double => Ok(t.to_device(device)),
                _ => Err(anyhow::anyhow!("{}: tensor '{name}' missing or malformed", bad())),
            }
        };
        let detector = Detector {
            weights: take("weights", 1)?,
            reference: take("reference", 2)?,
            left: take("left", 1)?,
            scale: take("scale", 1)?,
        };
        let w = width as i64;
        let fits = detector.weights.size() == [w]
            && detector.left.size() == [w]
            && detector.reference.size()[0] == w
            && detector.reference.size()[1] > 0
            && detector.scale.size() == [4];
        if !fits {
            bail!("{}: its shapes do not fit the run's {width} features", bad());
        }
        Ok(Some(detector))
    }
}

/// The median and interquartile range (floored) of `v`, `[N]` f64.
fn spread(v: &Tensor) -> Result<(f64, f64)> {
    let q = Tensor::from_slice(&[0.25, 0.5, 0.75]).to_kind(Kind::Double).to_device(v.device());
    let q = Vec::<f64>::try_from(v.f_quantile(&q, 0, false, "linear")?.to_device(Device::Cpu))?;
    Ok((q[1], q[2] - q[0] + SPREAD_FLOOR))
}

/// For each value of `x` (`[N, D]`), the empirical probability, among the sorted training
/// values `reference` (`[D, M]`), of a value at least as low and of one at least as high,
/// each at least 1/(M+1): two `[D, N]`.
fn tail_probabilities(reference: &Tensor, x: &Tensor) -> (Tensor, Tensor) {
    let m = reference.size()[1] as f64;
    let values = x.transpose(0, 1).contiguous();
    let count = |right: bool| {
        let side = if right { "right" } else { "left" };
        values.searchsorted(reference, false, right, side, None::<Tensor>).to_kind(Kind::Double)
    };
    let prob = |c: Tensor| (c / (m + 1.0)).clamp(1.0 / (m + 1.0), 1.0);
    (prob(count(true)), prob(-count(false) + m))
}

/// ECOD's score of each row of `x` (`[N, D]`): per feature the −log of both tail
/// probabilities (`tail_probabilities`); the score is the largest of the low-tail sum, the
/// high-tail sum and the sum taking each feature's tail on the side of its skew (`left`,
/// `[D]`).
fn tails(reference: &Tensor, left: &Tensor, x: &Tensor) -> Tensor {
    let (low, high) = tail_probabilities(reference, x);
    let (low, high) = (low.log().neg(), high.log().neg());
    let skewed = left.unsqueeze(1);
    let chosen = &low * &skewed + &high * (-&skewed + 1.0);
    let sums = [&low, &high, &chosen].map(|t| t.sum_dim_intlist(0, false, Kind::Double));
    sums[0].maximum(&sums[1]).maximum(&sums[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_scores_match_ecod_by_hand() {
        // Two features over five training rows (M = 5, so probabilities are counts / 6);
        // feature 0 is skewed right, feature 1 left. Worked by hand:
        let reference =
            Tensor::from_slice(&[0.0, 0.0, 1.0, 1.0, 10.0, -10.0, 0.0, 1.0, 1.0, 1.0]).view([2, 5]);
        let left = Tensor::from_slice(&[0.0, 1.0]);
        let x = Tensor::from_slice(&[1.0, 1.0, 20.0, -20.0]).view([2, 2]);
        let got = Vec::<f64>::try_from(tails(&reference, &left, &x)).unwrap();
        let l = |k: f64| -(k / 6.0f64).ln();
        // Row 0: feature 0 at 1 has 4 values at or below it and 3 at or above; feature 1
        // at 1 has 5 and 3. Left sum, right sum, skew sides (right for 0, left for 1).
        let row0 = (l(4.0) + l(5.0)).max(l(3.0) + l(3.0)).max(l(3.0) + l(5.0));
        // Row 1: 20 is above all of feature 0 (5 at or below, none at or above: floored to
        // 1), −20 below all of feature 1 (none at or below, 5 at or above).
        let row1 = (l(5.0) + l(1.0)).max(l(1.0) + l(5.0)).max(l(1.0) + l(1.0));
        assert!((got[0] - row0).abs() < 1e-12, "{got:?} vs {row0}");
        assert!((got[1] - row1).abs() < 1e-12, "{got:?} vs {row1}");
    }
}
