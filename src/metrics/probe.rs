//! Linear probe and k-NN: how much of the labels a set of features carries, by the two
//! classifiers representation learning is measured with. Both choose their one setting
//! (the L2 weight, k) on a seeded validation slice of the training rows, then fit on all of
//! them; both are deterministic on the CPU.

use crate::data::split;
use crate::invalid::Invalid;
use anyhow::Result;
use std::collections::VecDeque;
use tch::{Device, Kind, Tensor};

/// L2 weights tried for the logistic regression, and the k tried for k-NN.
pub const L2_GRID: [f64; 4] = [1e-5, 1e-4, 1e-3, 1e-2];
pub const K_GRID: [i64; 5] = [1, 3, 5, 9, 15];
/// Share of the training rows held out to choose the setting.
pub const VALIDATION_SHARE: f64 = 0.1;
/// L-BFGS: the most iterations, the pairs of updates it remembers, and when it has
/// converged (the largest gradient entry, or the relative change of the objective).
const MAX_ITERATIONS: usize = 300;
const HISTORY: usize = 10;
const GRADIENT_TOLERANCE: f64 = 1e-7;
const CHANGE_TOLERANCE: f64 = 1e-9;
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
/// is fitted on): mean softmax cross-entropy + λ‖W‖², minimised to convergence by
/// full-batch L-BFGS from zero weights (the objective is convex, so the minimum is the
/// one scikit-learn's `lbfgs` solver finds). `start`: weights and biases to start from (a
/// fit with a nearby λ), which the minimum does not depend on, only the time to reach it.
fn fit_logreg(x: &Tensor, y: &Tensor, classes: i64, l2: f64, start: Option<&Model>) -> Model {
    let _guard = tch::no_grad_guard();
    let mean = x.mean_dim(0, true, Kind::Float);
    let std = x.std_dim(0, false, true).clamp_min(1e-6);
    // Double precision: the objective is flat along the weights' scale, and float32's
    // rounding would stop the search short of the minimum.
    let xs = ((x - &mean) / &std).to_kind(Kind::Double);
    let (n, d) = (x.size()[0], x.size()[1]);
    let onehot = Tensor::zeros([n, classes], (Kind::Double, Device::Cpu)).scatter_value(
        1,
        &y.view([-1, 1]),
        1.0,
    );
    // θ = [W (d × classes, row-major), b (classes)].
    let objective = |theta: &Tensor| -> (f64, Tensor) {
        let w = theta.narrow(0, 0, d * classes).view([d, classes]);
        let b = theta.narrow(0, d * classes, classes);
        let logits = xs.matmul(&w) + &b;
        let log_p = logits.log_softmax(1, Kind::Double);
        let loss =
            -(&log_p * &onehot).sum(Kind::Double) / n as f64 + w.square().sum(Kind::Double) * l2;
        let residual = (log_p.exp() - &onehot) / n as f64;
        let gw = xs.tr().matmul(&residual) + &w * (2.0 * l2);
        let gb = residual.sum_dim_intlist(0, false, Kind::Double);
        (loss.double_value(&[]), Tensor::cat(&[gw.view([-1]), gb], 0))
    };
    let from = match start {
        Some((w, b, _)) => Tensor::cat(&[w.view([-1]), b.shallow_clone()], 0).to_kind(Kind::Double),
        None => Tensor::zeros([d * classes + classes], (Kind::Double, Device::Cpu)),
    };
    let theta = lbfgs(objective, from).to_kind(Kind::Float);
    let w = theta.narrow(0, 0, d * classes).view([d, classes]);
    let b = theta.narrow(0, d * classes, classes);
    (w, b, Tensor::stack(&[mean, std], 0))
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).sum(Kind::Double).double_value(&[])
}

/// Minimises the smooth function `f` (returning its value and gradient) from `x`: L-BFGS
/// with `HISTORY` pairs and a backtracking (Armijo) line search. Deterministic.
fn lbfgs(f: impl Fn(&Tensor) -> (f64, Tensor), mut x: Tensor) -> Tensor {
    let (mut fx, mut g) = f(&x);
    let mut pairs: VecDeque<(Tensor, Tensor, f64)> = VecDeque::new();
    for iteration in 0..MAX_ITERATIONS {
        if g.abs().max().double_value(&[]) < GRADIENT_TOLERANCE {
            break;
        }
        // Two-loop recursion: r ≈ H⁻¹ g.
        let mut q = g.copy();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q -= y * a;
            alphas.push(a);
        }
        let gamma = pairs.back().map_or(1.0, |(s, y, _)| dot(s, y) / dot(y, y).max(1e-300));
        let mut r = q * gamma;
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &r);
            r += s * (a - beta);
        }
        let mut direction = -r;
        let mut slope = dot(&g, &direction);
        if slope >= 0.0 || slope.is_nan() {
            // Not a descent direction (rounding): start again from the gradient.
            pairs.clear();
            direction = -&g;
            slope = dot(&g, &direction);
        }
        let mut step = if iteration == 0 {
            (1.0 / g.abs().sum(Kind::Double).double_value(&[]).max(1e-300)).min(1.0)
        } else {
            1.0
        };
        let (next, f_next, g_next) = loop {
            let candidate = &x + &direction * step;
            let (f_candidate, g_candidate) = f(&candidate);
            if f_candidate <= fx + 1e-4 * step * slope {
                break (candidate, f_candidate, g_candidate);
            }
            step *= 0.5;
            if step < 1e-12 {
                return x; // no decrease left to find at this precision
            }
        };
        let (s, y) = (&next - &x, &g_next - &g);
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            pairs.push_back((s, y, 1.0 / sy));
            if pairs.len() > HISTORY {
                pairs.pop_front();
            }
        }
        let change = (fx - f_next).abs() / fx.abs().max(1.0);
        (x, fx, g) = (next, f_next, g_next);
        if change < CHANGE_TOLERANCE {
            break;
        }
    }
    x
}

/// A fitted logistic regression: weights `[D, classes]`, biases, and the standardisation
/// (mean and σ stacked, `[2, 1, D]`).
type Model = (Tensor, Tensor, Tensor);

fn logreg_predict(x: &Tensor, (w, b, norm): &Model) -> Tensor {
    let xs = (x - norm.get(0)) / norm.get(1);
    (xs.matmul(w) + b).argmax(1, false)
}

/// Logistic regression: λ chosen on the validation slice, then refitted on every row; the
/// test accuracy and the predicted class of every test row.
pub fn logistic_regression(d: &ProbeData, seed: u64) -> (Score, Tensor) {
    let (fit, val) = holdout(d.train.size()[0], seed);
    let (xf, yf) = (d.train.index_select(0, &fit), d.train_labels.index_select(0, &fit));
    let (xv, yv) = (d.train.index_select(0, &val), d.train_labels.index_select(0, &val));
    // From the strongest λ down, each fit starting where the previous one ended; a tie
    // goes to the stronger λ.
    let mut previous: Option<Model> = None;
    let mut best: Option<(f64, f64, Model)> = None;
    for &l2 in L2_GRID.iter().rev() {
        let model = fit_logreg(&xf, &yf, d.classes, l2, previous.as_ref());
        let score = accuracy(&tch::no_grad(|| logreg_predict(&xv, &model)), &yv);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((
                score,
                l2,
                (model.0.shallow_clone(), model.1.shallow_clone(), model.2.shallow_clone()),
            ));
        }
        previous = Some(model);
    }
    let (_, l2, start) = best.expect("a non-empty grid");
    let model = fit_logreg(d.train, d.train_labels, d.classes, l2, Some(&start));
    let predicted = tch::no_grad(|| logreg_predict(d.test, &model));
    (Score { accuracy: accuracy(&predicted, d.test_labels), setting: l2 }, predicted)
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
            let problem = format!(
                "{{labels_per_class}} {per_class}: class {class} has only {} training rows",
                rows.len()
            );
            return Err(Invalid::plain(problem).into());
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

    /// L-BFGS reaches the minimum: on the blobs its gradient vanishes, and the weights are
    /// the ones PyTorch's L-BFGS finds on the same objective to 1e-4 (float64, strong Wolfe,
    /// tolerances 1e-12), with the venv's torch 2.11 (tch's generator draws the same blobs):
    /// ```python
    /// torch.manual_seed(3); y = torch.arange(300) % 3
    /// x = torch.tensor([[0., 0], [6, 0], [3, 5]])[y] + torch.randn(300, 2)
    /// xs = ((x - x.mean(0)) / x.std(0, correction=0)).double()
    /// W = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True); b = torch.zeros(3, ...)
    /// LBFGS([W, b], line_search_fn="strong_wolfe", max_iter=1000, tolerance_grad=1e-12,
    ///       tolerance_change=1e-15) on cross_entropy(xs @ W + b, y) + 1e-3 * (W ** 2).sum()
    /// ```
    #[test]
    fn logistic_regression_is_fitted_to_its_minimum() {
        let (x, y) = blobs();
        let (w, b, norm) = fit_logreg(&x, &y, 3, 1e-3, None);
        let xs = (&x - norm.get(0)) / norm.get(1);
        let onehot = Tensor::zeros([300, 3], (Kind::Float, Device::Cpu)).scatter_value(
            1,
            &y.view([-1, 1]),
            1.0,
        );
        let residual = ((xs.matmul(&w) + &b).softmax(1, Kind::Float) - onehot) / 300.0;
        let gw = xs.tr().matmul(&residual) + &w * 2e-3;
        let largest = gw.abs().max().double_value(&[]);
        assert!(largest < 1e-5, "gradient {largest}");
        let w_torch = [-2.894313, 2.950039, -0.055726, -1.730522, -1.443924, 3.174446];
        let b_torch = [0.011742, -0.074041, 0.062299];
        let (w, b) =
            (Vec::<f32>::try_from(w.view([-1])).unwrap(), Vec::<f32>::try_from(b).unwrap());
        for (ours, theirs) in w.iter().chain(&b).zip(w_torch.iter().chain(&b_torch)) {
            assert!((*ours as f64 - theirs).abs() < 1e-4, "{w:?} {b:?}");
        }
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
