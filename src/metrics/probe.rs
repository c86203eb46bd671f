//! Linear probe and k-NN: how much of the labels a set of features carries, by the two
//! classifiers representation learning is measured with. Both choose their one setting
//! (the L2 weight, k) on a seeded validation slice of the training rows, then fit on all of
//! them; both are deterministic on the CPU.

use crate::data::split;
use anyhow::{bail, Result};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// L2 weights tried for the logistic regression, and the k tried for k-NN.
pub const L2_GRID: [f64; 4] = [1e-5, 1e-4, 1e-3, 1e-2];
pub const K_GRID: [i64; 5] = [1, 3, 5, 9, 15];
/// Share of the training rows held out to choose the setting.
pub const VALIDATION_SHARE: f64 = 0.1;
/// Full-batch Adam steps of the logistic regression.
const STEPS: i64 = 300;
/// Test rows compared with all training rows at a time in k-NN.
const KNN_CHUNK: i64 = 512;

/// Features and integer labels of the training and test rows.
pub struct ProbeData<'a> {
    pub train: &'a Tensor,
    pub train_labels: &'a Tensor,
    pub test: &'a Tensor,
    pub test_labels: &'a Tensor,
    pub classes: i64,
}

/// A fitted classifier's test accuracy and the setting chosen.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Score {
    pub accuracy: f64,
    pub setting: f64,
}

/// Training rows split into (fit, validation) index tensors, seeded.
fn holdout(n: i64, seed: u64) -> (Tensor, Tensor) {
    let (fit, val) = split::train_val(n as usize, VALIDATION_SHARE, seed);
    let t = |v: Vec<usize>| Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>());
    (t(fit), t(val))
}

fn accuracy(predicted: &Tensor, labels: &Tensor) -> f64 {
    predicted.eq_tensor(labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

/// Multinomial logistic regression on standardised features (mean and σ of the rows it
/// is fitted on), softmax cross-entropy + λ‖W‖², full-batch Adam from zero weights.
fn fit_logreg(x: &Tensor, y: &Tensor, classes: i64, l2: f64) -> (Tensor, Tensor, Tensor) {
    let mean = x.mean_dim(0, true, Kind::Float);
    let std = x.std_dim(0, false, true).clamp_min(1e-6);
    let xs = (x - &mean) / &std;
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().zeros("w", &[x.size()[1], classes]);
    let b = vs.root().zeros("b", &[classes]);
    let mut opt = nn::Adam::default().build(&vs, 0.05).expect("Adam on CPU variables");
    for _ in 0..STEPS {
        let logits = xs.matmul(&w) + &b;
        let loss = logits.cross_entropy_for_logits(y) + w.square().sum(Kind::Float) * l2;
        opt.backward_step(&loss);
    }
    (w.detach(), b.detach(), Tensor::stack(&[mean, std], 0))
}

fn logreg_predict(x: &Tensor, (w, b, norm): &(Tensor, Tensor, Tensor)) -> Tensor {
    let xs = (x - norm.get(0)) / norm.get(1);
    (xs.matmul(w) + b).argmax(1, false)
}

/// Logistic regression: λ chosen on the validation slice, then refitted on every row; the
/// test accuracy and the predicted class of every test row.
pub fn logistic_regression(d: &ProbeData, seed: u64) -> (Score, Tensor) {
    let (fit, val) = holdout(d.train.size()[0], seed);
    let (xf, yf) = (d.train.index_select(0, &fit), d.train_labels.index_select(0, &fit));
    let (xv, yv) = (d.train.index_select(0, &val), d.train_labels.index_select(0, &val));
    let best = L2_GRID
        .iter()
        .map(|&l2| {
            let model = fit_logreg(&xf, &yf, d.classes, l2);
            (accuracy(&tch::no_grad(|| logreg_predict(&xv, &model)), &yv), l2)
        })
        .fold((f64::MIN, L2_GRID[0]), |a, b| if b.0 > a.0 { b } else { a });
    let model = fit_logreg(d.train, d.train_labels, d.classes, best.1);
    let predicted = tch::no_grad(|| logreg_predict(d.test, &model));
    (Score { accuracy: accuracy(&predicted, d.test_labels), setting: best.1 }, predicted)
}

/// The labels of the `k` nearest (L2) rows of `reference` for each row of `query`:
/// `[N, k]`, nearest first.
fn neighbours(query: &Tensor, reference: &Tensor, labels: &Tensor, k: i64) -> Tensor {
    let n = query.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(KNN_CHUNK as usize)
        .map(|start| {
            let q = query.narrow(0, start, KNN_CHUNK.min(n - start));
            let dist = Tensor::cdist(&q, reference, 2.0, None::<i64>);
            let (_, idx) = dist.topk(k, 1, false, true);
            labels.index_select(0, &idx.flatten(0, -1)).view([-1, k])
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Majority vote of the first `k` neighbour labels; a tie goes to the nearest of the tied.
fn vote(neigh: &Tensor, k: i64, classes: i64) -> Tensor {
    let first = neigh.narrow(1, 0, k);
    let counts = Tensor::zeros([first.size()[0], classes], (Kind::Float, Device::Cpu)).scatter_add(
        1,
        &first,
        &Tensor::ones_like(&first).to_kind(Kind::Float),
    );
    // Break ties towards nearer neighbours: each neighbour adds a tiny weight by rank.
    let rank = Tensor::arange(k, (Kind::Float, Device::Cpu)).neg().exp2() * 1e-3;
    let bonus = Tensor::zeros_like(&counts).scatter_add(
        1,
        &first,
        &rank.expand([first.size()[0], k], false).contiguous(),
    );
    (counts + bonus).argmax(1, false)
}

/// k-NN (L2 distance, majority vote): k chosen on the validation slice.
pub fn knn(d: &ProbeData, seed: u64) -> Score {
    let _guard = tch::no_grad_guard();
    let (fit, val) = holdout(d.train.size()[0], seed);
    let kmax = *K_GRID.iter().max().unwrap_or(&1);
    let kmax = kmax.min(fit.size()[0]);
    let reference = d.train.index_select(0, &fit);
    let neigh = neighbours(
        &d.train.index_select(0, &val),
        &reference,
        &d.train_labels.index_select(0, &fit),
        kmax,
    );
    let yv = d.train_labels.index_select(0, &val);
    let best = K_GRID
        .iter()
        .filter(|&&k| k <= kmax)
        .map(|&k| (accuracy(&vote(&neigh, k, d.classes), &yv), k))
        .fold((f64::MIN, 1), |a, b| if b.0 > a.0 { b } else { a });
    let k = best.1.min(d.train.size()[0]);
    let neigh = neighbours(d.test, d.train, d.train_labels, k);
    Score { accuracy: accuracy(&vote(&neigh, k, d.classes), d.test_labels), setting: k as f64 }
}

/// `counts[t * classes + p]`: test rows of true class `t` predicted as `p`.
pub fn confusion(truth: &Tensor, predicted: &Tensor, classes: i64) -> Vec<u64> {
    let cells = (truth * classes + predicted).bincount::<Tensor>(None, classes * classes);
    Vec::<i64>::try_from(cells).unwrap_or_default().into_iter().map(|c| c as u64).collect()
}

/// A classifier's results on labelled rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassReport {
    pub accuracy: f64,
    pub rows: usize,
    /// Class names, in label-code order.
    pub classes: Vec<String>,
    /// Counts, row = true class, column = predicted class.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassReport {
    /// The report of `predicted` against `truth` (`[N]` i64 codes below `classes.len()`).
    pub fn new(truth: &Tensor, predicted: &Tensor, classes: Vec<String>) -> ClassReport {
        let k = classes.len();
        let cells = confusion(truth, predicted, k as i64);
        let confusion: Vec<Vec<u64>> = cells.chunks(k.max(1)).map(|r| r.to_vec()).collect();
        let right: u64 = (0..k).map(|i| confusion.get(i).map_or(0, |r| r[i])).sum();
        let rows = truth.size()[0] as usize;
        ClassReport { accuracy: right as f64 / rows.max(1) as f64, rows, classes, confusion }
    }
}

/// Keeps `per_class` training rows of every class (a seeded choice); refuses a class
/// with fewer rows.
pub fn labels_per_class(labels: &[u8], per_class: usize, seed: u64) -> Result<Vec<usize>> {
    let mut by_class: std::collections::BTreeMap<u8, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut kept = Vec::new();
    for (class, rows) in by_class {
        if rows.len() < per_class {
            bail!(
                "--labels-per-class {per_class}: class {class} has only {} training rows",
                rows.len()
            );
        }
        let perm = split::permutation(rows.len(), split::mix64(seed) ^ class as u64);
        kept.extend(perm[..per_class].iter().map(|&k| rows[k]));
    }
    kept.sort_unstable();
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well-separated Gaussian blobs and a third class between them.
    fn blobs() -> (Tensor, Tensor) {
        let _rng = crate::rng_lock();
        tch::manual_seed(3);
        let centres = Tensor::from_slice(&[0.0f32, 0.0, 6.0, 0.0, 3.0, 5.0]).view([3, 2]);
        let y = Tensor::arange(300, (Kind::Int64, Device::Cpu)).remainder(3);
        let x = centres.index_select(0, &y) + Tensor::randn([300, 2], (Kind::Float, Device::Cpu));
        (x, y)
    }

    #[test]
    fn both_probes_separate_blobs_and_repeat() {
        let (x, y) = blobs();
        let (xt, yt) = (x.narrow(0, 0, 200), y.narrow(0, 0, 200));
        let (xs, ys) = (x.narrow(0, 200, 100), y.narrow(0, 200, 100));
        let d =
            ProbeData { train: &xt, train_labels: &yt, test: &xs, test_labels: &ys, classes: 3 };
        let (lr, nn) = (logistic_regression(&d, 1).0, knn(&d, 1));
        assert!(lr.accuracy > 0.9 && nn.accuracy > 0.9, "{lr:?} {nn:?}");
        assert_eq!(lr, logistic_regression(&d, 1).0);
        assert_eq!(nn, knn(&d, 1));
        // Shuffled labels carry nothing: near chance (1/3).
        let shuffled = yt.index_select(0, &Tensor::randperm(200, (Kind::Int64, Device::Cpu)));
        let d = ProbeData { train_labels: &shuffled, ..d };
        assert!(knn(&d, 1).accuracy < 0.55);
    }

    #[test]
    fn confusion_counts_true_rows_against_predicted_columns() {
        let truth = Tensor::from_slice(&[0i64, 0, 1, 2, 2]);
        let predicted = Tensor::from_slice(&[0i64, 1, 1, 2, 0]);
        assert_eq!(confusion(&truth, &predicted, 3), [1, 1, 0, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn vote_breaks_ties_towards_the_nearest() {
        let neigh = Tensor::from_slice(&[2i64, 1, 1, 2]).view([1, 4]);
        assert_eq!(vote(&neigh, 4, 3).int64_value(&[0]), 2);
        assert_eq!(vote(&neigh, 3, 3).int64_value(&[0]), 1);
    }

    #[test]
    fn labels_per_class_keeps_that_many_of_each() {
        let labels: Vec<u8> = (0..100).map(|i| (i % 4) as u8).collect();
        let kept = labels_per_class(&labels, 5, 7).unwrap();
        assert_eq!(kept.len(), 20);
        for c in 0..4 {
            assert_eq!(kept.iter().filter(|&&i| labels[i] == c).count(), 5);
        }
        assert_eq!(kept, labels_per_class(&labels, 5, 7).unwrap());
        let e = labels_per_class(&labels, 26, 7).unwrap_err().to_string();
        assert!(e.contains("class 0 has only 25"), "{e}");
    }
}
