//! The score of a table's rows when the run keeps more than its autoencoder. Each model
//! (the run's, and the members of an ensemble trained after it from the next seeds) gives
//! each row its mean squared error — with `tail_score`, each feature's squared error
//! divided by its median over the training rows, so that a column the model rebuilds
//! closely counts more when it misses — put on that model's training-row scale: the log,
//! less its median, over its interquartile range. The score is the mean of those over the
//! models, plus, with `tail_score`, how far the row's values lie in their columns' tails
//! (ECOD: the empirical tail probability of each value, summed as −log over the columns) on
//! the same kind of scale. Fitted when training ends and kept in `detector.safetensors`;
//! runs without the file (one model without tails, images, series) score by the plain
//! squared error.

use super::reconstruct;
use crate::atomic::with_temp_file;
use crate::config::ModelConfig;
use crate::data::rows::Rows;
use crate::model::Autoencoder;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

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
/// A member's weights are stored under this prefix and its number.
const MEMBER: &str = "member";

/// An autoencoder of an ensemble besides the run's own, with the store of its weights.
pub struct Member {
    pub vs: nn::VarStore,
    pub model: Autoencoder,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Member")
    }
}

/// The columns' tails: each feature's kept training values and the side of its skew.
#[derive(Debug)]
struct Tails {
    /// `[D, M]`: each feature's values on the kept training rows, sorted.
    reference: Tensor,
    /// `[D]`: 1 where the feature's training values are skewed left, else 0.
    left: Tensor,
}

/// What a table run's score needs besides the model.
#[derive(Debug)]
pub struct Detector {
    /// The ensemble's models after the run's own.
    members: Vec<Member>,
    /// `[K, D]`: each model's weight of each feature's squared error (1 without tails:
    /// 1 / (the feature's median squared error on the training rows + floor) with them).
    weights: Tensor,
    tails: Option<Tails>,
    /// `[2K + 2]`: the median and interquartile range of each model's log error over the
    /// training rows, then of the log tail score (0 and 1 without tails).
    scale: Tensor,
}

impl Detector {
    /// Fits the detector of `model` and `members` on the training `rows`, with the columns'
    /// tails when `tail_score`.
    pub fn fit(
        (model, members): (&Autoencoder, Vec<Member>),
        rows: &Rows,
        tail_score: bool,
        device: Device,
    ) -> Result<Detector> {
        if rows.is_empty() {
            bail!("no training rows to fit the anomaly score on");
        }
        let x = rows.to_unit(device).to_kind(Kind::Double);
        let n = x.size()[0];
        let weights: Vec<Tensor> = std::iter::once(model)
            .chain(members.iter().map(|m| &m.model))
            .map(|m| match tail_score {
                true => (squared_errors(m, &x).median_dim(0, false).0 + ERROR_FLOOR).reciprocal(),
                false => Tensor::ones([x.size()[1]], (Kind::Double, device)),
            })
            .collect();
        let tails = tail_score.then(|| {
            let kept =
                Tensor::linspace(0.0, (n - 1) as f64, n.min(TAIL_ROWS), (Kind::Double, device))
                    .round()
                    .to_kind(Kind::Int64);
            let reference = x.index_select(0, &kept).transpose(0, 1).sort(1, false).0.contiguous();
            let centred = &x - x.mean_dim(0, true, Kind::Double);
            let left = centred.pow_tensor_scalar(3).sum_dim_intlist(0, false, Kind::Double).lt(0.0);
            Tails { reference, left: left.to_kind(Kind::Double) }
        });
        let mut detector = Detector {
            members,
            weights: Tensor::stack(&weights, 0),
            tails,
            scale: Tensor::zeros([0], (Kind::Double, device)),
        };
        let models = detector.models(model);
        let mut scale = Vec::new();
        for (k, m) in models.iter().enumerate() {
            let (median, spread) = spread(&detector.log_error(k, m, &x))?;
            scale.extend([median, spread]);
        }
        scale.extend(match &detector.tails {
            Some(t) => {
                let (median, spread) = spread(&log_tails(t, &x))?;
                [median, spread]
            }
            None => [0.0, 1.0],
        });
        detector.scale = Tensor::from_slice(&scale).to_device(device);
        Ok(detector)
    }

    /// The run's model, then the members'.
    fn models<'a>(&'a self, model: &'a Autoencoder) -> Vec<&'a Autoencoder> {
        std::iter::once(model).chain(self.members.iter().map(|m| &m.model)).collect()
    }

    /// The autoencoders the score averages.
    pub fn count(&self) -> usize {
        1 + self.members.len()
    }

    /// Each of `rows`' score (see the module docs).
    pub fn scores(&self, model: &Autoencoder, rows: &Rows, device: Device) -> Result<Vec<f64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let x = rows.to_unit(device).to_kind(Kind::Double);
        let s = |i: usize| self.scale.double_value(&[i as i64]);
        let models = self.models(model);
        let mut score = Tensor::zeros([x.size()[0]], (Kind::Double, device));
        for (k, m) in models.iter().enumerate() {
            score += (self.log_error(k, m, &x) - s(2 * k)) / s(2 * k + 1);
        }
        score /= models.len() as f64;
        if let Some(t) = &self.tails {
            let k = models.len();
            score += (log_tails(t, &x) - s(2 * k)) / s(2 * k + 1);
        }
        Ok(Vec::<f64>::try_from(score.to_device(Device::Cpu))?)
    }

    /// The log of model `k`'s weighted mean squared error on each of `x`'s rows (`[N, D]`
    /// f64 → `[N]`).
    fn log_error(&self, k: usize, model: &Autoencoder, x: &Tensor) -> Tensor {
        let err = (squared_errors(model, x) * self.weights.get(k as i64)).mean_dim(
            1,
            false,
            Kind::Double,
        );
        (err + LOG_FLOOR).log()
    }

    /// Each feature's weight in the run's model's error term, `[D]` on the CPU, when the
    /// score weighs them (with tails).
    pub fn weights(&self) -> Result<Option<Vec<f64>>> {
        if self.tails.is_none() {
            return Ok(None);
        }
        Ok(Some(Vec::<f64>::try_from(self.weights.get(0).to_device(Device::Cpu))?))
    }

    /// For each value of `x` (`[N, D]`, scaled), the share of the kept training rows whose
    /// value lies at least as far out on the same side (the smaller tail probability),
    /// `[N, D]` f64 on the CPU, row after row; none without tails.
    pub fn tail_shares(&self, x: &Tensor) -> Result<Option<Vec<f64>>> {
        let Some(t) = &self.tails else { return Ok(None) };
        let x = x.to_device(t.reference.device()).to_kind(Kind::Double);
        let (low, high) = tail_probabilities(&t.reference, &x);
        let share = low.minimum(&high).transpose(0, 1).contiguous().view([-1]);
        Ok(Some(Vec::<f64>::try_from(share.to_device(Device::Cpu))?))
    }

    /// Writes it to `path` whole or not at all.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vec![
            ("weights".into(), self.weights.shallow_clone()),
            ("scale".into(), self.scale.shallow_clone()),
        ];
        if let Some(t) = &self.tails {
            named.push(("reference".into(), t.reference.shallow_clone()));
            named.push(("left".into(), t.left.shallow_clone()));
        }
        for (i, m) in self.members.iter().enumerate() {
            for (name, var) in m.vs.variables() {
                named.push((format!("{MEMBER}{}.{name}", i + 1), var));
            }
        }
        let named: Vec<(&str, Tensor)> = named
            .iter()
            .map(|(n, t)| (n.as_str(), t.to_device(Device::Cpu).contiguous()))
            .collect();
        with_temp_file(path, |tmp| {
            Tensor::write_safetensors(&named, tmp).context("serialising the anomaly detector")?;
            Ok(())
        })
    }

    /// The detector a run of `model` keeps at `path`, on `device`; `None` when the run has
    /// none. Runs that kept the tails before ensembles (`weights` `[D]`, `scale` `[4]`) read
    /// as one model with tails.
    pub fn read(path: &Path, model: &ModelConfig, device: Device) -> Result<Option<Detector>> {
        if !path.is_file() {
            return Ok(None);
        }
        let bad = || format!("{} is not an anomaly detector ae-tch wrote", path.display());
        let mut named: HashMap<String, Tensor> =
            Tensor::read_safetensors(path).with_context(bad)?.into_iter().collect();
        let mut take = |name: &str| -> Result<Option<Tensor>> {
            match named.remove(name) {
                Some(t) if t.kind() == Kind::Double => Ok(Some(t.to_device(device))),
                Some(_) => Err(anyhow::anyhow!("{}: tensor '{name}' is not f64", bad())),
                None => Ok(None),
            }
        };
        let missing = |name: &str| anyhow::anyhow!("{}: tensor '{name}' missing", bad());
        let weights = take("weights")?.ok_or_else(|| missing("weights"))?;
        let weights = if weights.dim() == 1 { weights.unsqueeze(0) } else { weights };
        let scale = take("scale")?.ok_or_else(|| missing("scale"))?;
        let tails = match (take("reference")?, take("left")?) {
            (Some(reference), Some(left)) => Some(Tails { reference, left }),
            (None, None) => None,
            _ => bail!("{}: one of the tails' tensors is missing", bad()),
        };
        // A scalar where a matrix belongs reads as no models, and is refused below.
        let (w, k) = (model.input_dim(), weights.size().first().copied().unwrap_or(0));
        let fits = weights.dim() == 2
            && weights.size()[1] == w
            && k >= 1
            && scale.size() == [2 * k + 2]
            && tails.as_ref().is_none_or(|t| {
                t.left.size() == [w]
                    && t.reference.dim() == 2
                    && t.reference.size()[0] == w
                    && t.reference.size()[1] > 0
            });
        if !fits {
            bail!("{}: its shapes do not fit the run's {w} features", bad());
        }
        let members = (1..k)
            .map(|i| {
                let vs = nn::VarStore::new(device);
                let member = Autoencoder::new(&vs.root(), model);
                tch::no_grad(|| -> Result<()> {
                    for (name, mut var) in vs.variables() {
                        let key = format!("{MEMBER}{i}.{name}");
                        let stored = named.get(&key).ok_or_else(|| missing(&key))?;
                        if stored.size() != var.size() {
                            bail!("{}: tensor '{key}' does not fit the run's network", bad());
                        }
                        var.f_copy_(stored)?;
                    }
                    Ok(())
                })?;
                Ok(Member { vs, model: member })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Detector { members, weights, tails, scale }))
    }
}

/// Each feature's squared error of `model` on `x` (`[N, D]` f64 → `[N, D]` f64).
fn squared_errors(model: &Autoencoder, x: &Tensor) -> Tensor {
    (reconstruct(model, &x.to_kind(Kind::Float)).to_kind(Kind::Double) - x).square()
}

/// The log tail score of each of `x`'s rows.
fn log_tails(t: &Tails, x: &Tensor) -> Tensor {
    (tails(&t.reference, &t.left, x) + LOG_FLOOR).log()
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
    use crate::config::{Layers, ModelConfig};
    use crate::data::rows::{Features, VectorSet};
    use crate::data::spec::{DataSpec, ScaleKind, Scaling, VectorSpec};

    /// A 5-feature MLP autoencoder and its store, drawn from `seed`.
    fn member(cfg: &ModelConfig, seed: i64) -> Member {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Autoencoder::new(&vs.root(), cfg);
        Member { vs, model }
    }

    /// The median and interquartile range of `v` by sorting (linear interpolation).
    fn by_hand(v: &[f64]) -> (f64, f64) {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        (at(0.5), at(0.75) - at(0.25))
    }

    #[test]
    fn an_ensemble_scores_the_mean_of_its_models_log_errors_and_reads_back_the_same() {
        let _rng = crate::rng_lock();
        let width = 5;
        let input = DataSpec::Vector(VectorSpec {
            columns: (0..width).map(|i| format!("x{i}")).collect(),
            label_column: None,
            classes: vec![],
            categories: vec![],
            scaling: Scaling::fit(ScaleKind::Minmax, &[0.0; 5], width),
        });
        let layers = Layers::Mlp { hidden: vec![8], tied_weights: false };
        let cfg = ModelConfig { input, layers, latent: 2, ..Default::default() };
        tch::manual_seed(11);
        let values =
            Vec::<f32>::try_from(Tensor::rand([40 * 5], (Kind::Float, Device::Cpu))).unwrap();
        let set = |v: &[f32]| {
            let shape = Features(width);
            Rows::Vectors(VectorSet {
                values: v.to_vec(),
                shape,
                labels: None,
                ids: None,
                files: None,
            })
        };
        let (train, new) = (set(&values[..30 * 5]), set(&values[30 * 5..]));
        let run = member(&cfg, 1);
        let members = vec![member(&cfg, 2), member(&cfg, 3)];
        // Each model's plain mean squared error, by hand from its reconstructions.
        let errors = |m: &Autoencoder, rows: &Rows| -> Vec<f64> {
            let x = rows.to_unit(Device::Cpu);
            let xhat = Vec::<f32>::try_from(reconstruct(m, &x).view([-1])).unwrap();
            let x = Vec::<f32>::try_from(x.view([-1])).unwrap();
            let sq: Vec<f64> =
                x.iter().zip(&xhat).map(|(a, b)| (*b as f64 - *a as f64).powi(2)).collect();
            sq.chunks(width).map(|r| r.iter().sum::<f64>() / width as f64).collect()
        };
        let models: Vec<&Autoencoder> =
            std::iter::once(&run.model).chain(members.iter().map(|m| &m.model)).collect();
        let mut want = vec![0.0; 10];
        for m in &models {
            let log = |rows: &Rows| -> Vec<f64> {
                errors(m, rows).iter().map(|e| (e + LOG_FLOOR).ln()).collect()
            };
            let (median, iqr) = by_hand(&log(&train));
            for (w, l) in want.iter_mut().zip(log(&new)) {
                *w += (l - median) / (iqr + SPREAD_FLOOR) / 3.0;
            }
        }
        let detector = Detector::fit((&run.model, members), &train, false, Device::Cpu).unwrap();
        assert_eq!(detector.count(), 3);
        let got = detector.scores(&run.model, &new, Device::Cpu).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{got:?} against {want:?}");
        }
        // Written and read back (members rebuilt from their stored weights): the same.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        detector.write(&path).unwrap();
        let back = Detector::read(&path, &cfg, Device::Cpu).unwrap().unwrap();
        assert_eq!(back.count(), 3);
        assert_eq!(back.scores(&run.model, &new, Device::Cpu).unwrap(), got);
        assert!(back.weights().unwrap().is_none(), "no per-feature weights without tails");
        // Another network's shapes are named, not read.
        let wider = ModelConfig { latent: 3, ..cfg.clone() };
        let e = Detector::read(&path, &wider, Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("member1.") && e.contains("does not fit"), "{e}");
        // A damaged file whose weights are a scalar is refused, not indexed.
        let scalar = Tensor::scalar_tensor(1.0, (Kind::Double, Device::Cpu));
        let named = [
            ("weights", scalar.shallow_clone()),
            ("scale", Tensor::ones([4], (Kind::Double, Device::Cpu))),
        ];
        Tensor::write_safetensors(&named, &path).unwrap();
        let e = Detector::read(&path, &cfg, Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("do not fit the run's 5 features"), "{e}");
    }

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
