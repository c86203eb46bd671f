//! t-SNE (van der Maaten & Hinton 2008): a 2-D picture of high-dimensional points that
//! keeps neighbours together, the picture users look at for codes.
//!
//! Exact gradients with libtorch on the whole N×N affinity matrix — O(N²) per iteration,
//! which `plot-latent` keeps cheap by embedding a seeded sample of at most a few thousand
//! points (Barnes–Hut pays off beyond that; no crate for it is kept up well enough to take
//! on). The schedule is the reference one: perplexity-calibrated Gaussian affinities,
//! early exaggeration 12 for the first 250 of 1000 iterations, momentum 0.5 then 0.8, the
//! delta-bar-delta gains, and the learning rate max(N / 12 / 4, 50) (scikit-learn's
//! "auto"). Deterministic on the CPU for a given seed.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// Settings of one embedding.
#[derive(Clone, Copy, Debug)]
pub struct Tsne {
    /// The effective number of neighbours each point's affinities spread over.
    pub perplexity: f64,
    pub iterations: usize,
    /// Seed of the initial layout.
    pub seed: u64,
}

impl Default for Tsne {
    fn default() -> Self {
        Tsne { perplexity: 30.0, iterations: 1000, seed: 0 }
    }
}

const EXAGGERATION: f64 = 12.0;
const EXAGGERATED_ITERATIONS: usize = 250;
/// Input dimensions above this are first reduced by PCA (the usual preprocessing).
const PCA_DIMS: i64 = 50;
/// Bisection steps of each point's precision.
const SEARCH_STEPS: usize = 64;

impl Tsne {
    /// The 2-D embedding `[N, 2]` (f32, CPU) of the rows of `x` (`[N, D]`).
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.size()[0];
        if n < 4 {
            bail!("t-SNE needs at least 4 points, got {n}");
        }
        if !(self.perplexity >= 1.0 && self.perplexity < (n - 1) as f64 / 3.0) {
            bail!(
                "--perplexity must be at least 1 and below a third of the points ({}), got {}",
                (n - 1) / 3,
                self.perplexity
            );
        }
        let _guard = tch::no_grad_guard();
        let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
        let x = if x.size()[1] > PCA_DIMS {
            let pca = super::pca::Pca::fit(&x.to_kind(Kind::Float), PCA_DIMS)?;
            pca.project(&x.to_kind(Kind::Float)).to_kind(Kind::Double)
        } else {
            x
        };
        let p = affinities(&x, self.perplexity);
        Ok(self.optimise(&p.to_kind(Kind::Float)))
    }

    /// Gradient descent on KL(P ‖ Q) from a small seeded Gaussian layout.
    fn optimise(&self, p: &Tensor) -> Tensor {
        let n = p.size()[0];
        let opts = (Kind::Float, Device::Cpu);
        let mut draws = crate::data::split::SplitMix64(self.seed);
        let start: Vec<f32> = (0..n * 2)
            .map(|_| {
                // Box–Muller from two uniform draws, σ = 1e-4.
                let (u, v) = (draws.unit().max(f64::MIN_POSITIVE), draws.unit());
                (1e-4 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect();
        let mut y = Tensor::from_slice(&start).view([n, 2]);
        let mut update = Tensor::zeros([n, 2], opts);
        let mut gains = Tensor::ones([n, 2], opts);
        let lr = (n as f64 / EXAGGERATION / 4.0).max(50.0);
        let exaggerated = p * EXAGGERATION;
        for it in 0..self.iterations {
            let (p, momentum) =
                if it < EXAGGERATED_ITERATIONS { (&exaggerated, 0.5) } else { (p, 0.8) };
            // num = 1 / (1 + |yᵢ − yⱼ|²) off the diagonal, built in place (N² work a pass).
            let sq = y.square().sum_dim_intlist(1, true, Kind::Float);
            let mut num = y.matmul(&y.tr());
            let _ = num.g_mul_scalar_(-2.0);
            let _ = num.g_add_(&sq);
            let _ = num.g_add_(&sq.tr());
            let _ = num.clamp_min_(0.0);
            let _ = num.g_add_scalar_(1.0);
            let _ = num.reciprocal_();
            let _ = num.fill_diagonal_(0.0, false);
            // ∂KL/∂yᵢ = 4 Σⱼ (pᵢⱼ − qᵢⱼ) numᵢⱼ (yᵢ − yⱼ), with qᵢⱼ = numᵢⱼ / Σ num.
            let z = num.sum(Kind::Float);
            let mut w = &num / z;
            let _ = w.g_sub_(p).g_mul_scalar_(-1.0);
            let _ = w.g_mul_(&num);
            let grad = (w.sum_dim_intlist(1, true, Kind::Float) * &y - w.matmul(&y)) * 4.0;
            let same_sign = grad.sign().eq_tensor(&update.sign());
            gains = (&gains + 0.2).where_self(&same_sign.logical_not(), &(&gains * 0.8));
            gains = gains.clamp_min(0.01);
            update = &update * momentum - &gains * &grad * lr;
            y = &y + &update;
            y = &y - y.mean_dim(0, true, Kind::Float);
        }
        y
    }
}

/// The symmetrised affinities P (`[N, N]`, summing to 1) of the rows of `x`:
/// (P + Pᵀ) / 2N of the conditional ones.
fn affinities(x: &Tensor, perplexity: f64) -> Tensor {
    let p = conditional_affinities(x, perplexity);
    ((&p + p.tr()) / (2 * x.size()[0]) as f64).clamp_min(1e-12)
}

/// Each row's Gaussian distribution over the other rows (`[N, N]`, rows summing to 1),
/// its precision found by bisection so that its perplexity e^H (H in nats) is `perplexity`.
fn conditional_affinities(x: &Tensor, perplexity: f64) -> Tensor {
    let n = x.size()[0];
    let opts = (Kind::Double, Device::Cpu);
    let sq = x.square().sum_dim_intlist(1, true, Kind::Double);
    let d2 = (&sq + sq.tr() - x.matmul(&x.tr()) * 2.0).clamp_min(0.0);
    let off_diagonal = Tensor::ones([n, n], opts) - Tensor::eye(n, opts);
    // Distances relative to each row's nearest neighbour: the entropy does not change, and
    // no row underflows to all zeros.
    let masked = &d2 + Tensor::eye(n, opts) * f64::MAX;
    let d2 = (&d2 - masked.amin(&[1i64][..], true)).clamp_min(0.0) * &off_diagonal;
    let scale = d2.sum(Kind::Double).double_value(&[]) / (n * (n - 1)) as f64;
    let d2 = d2 / scale.max(f64::MIN_POSITIVE);
    let target = perplexity.ln();
    let mut beta = Tensor::ones([n, 1], opts);
    let mut lo = Tensor::zeros([n, 1], opts);
    let mut hi = Tensor::full([n, 1], f64::INFINITY, opts);
    let conditional = |beta: &Tensor| {
        let p = (-&d2 * beta).exp() * &off_diagonal;
        let sum = p.sum_dim_intlist(1, true, Kind::Double).clamp_min(1e-300);
        let entropy = sum.log() + beta * (&d2 * &p).sum_dim_intlist(1, true, Kind::Double) / &sum;
        (p / sum, entropy)
    };
    for _ in 0..SEARCH_STEPS {
        let (_, entropy) = conditional(&beta);
        // Too flat (entropy above the target): sharpen, i.e. raise β.
        let raise = entropy.gt(target);
        let up = (&beta * 2.0).where_self(&hi.isinf(), &((&beta + &hi) / 2.0));
        let down = (&beta + &lo) / 2.0;
        let next = up.where_self(&raise, &down);
        lo = beta.where_self(&raise, &lo);
        hi = hi.where_self(&raise, &beta);
        beta = next;
    }
    conditional(&beta).0
}

/// Leave-one-out k-NN accuracy of the points `xy` (`[N, d]`) with labels `labels`: the
/// share of points whose `k` nearest others mostly share their label (ties to the lower
/// label). How well a 2-D picture keeps the classes apart, as a number.
pub fn neighbour_agreement(xy: &Tensor, labels: &[u8], k: i64) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = xy.size()[0];
    let xy = xy.to_device(Device::Cpu).to_kind(Kind::Double);
    let sq = xy.square().sum_dim_intlist(1, true, Kind::Double);
    let d2 = &sq + sq.tr() - xy.matmul(&xy.tr()) * 2.0
        + Tensor::eye(n, (Kind::Double, Device::Cpu)) * f64::MAX;
    let k = k.min(n - 1).max(1);
    let (_, idx) = d2.topk(k, 1, false, true);
    let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let classes = labels.iter().map(|&l| l as i64 + 1).max().unwrap_or(1);
    let neighbour_labels = y.index_select(0, &idx.view([-1])).view([n, k]);
    let votes = Tensor::zeros([n, classes], (Kind::Int64, Device::Cpu)).scatter_add(
        1,
        &neighbour_labels,
        &Tensor::ones([n, k], (Kind::Int64, Device::Cpu)),
    );
    let predicted = votes.argmax(1, false);
    predicted.eq_tensor(&y).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four Gaussian clusters in 20-D, close enough that the first two principal axes
    /// of the overall cloud do not separate them all.
    fn clusters(seed: i64) -> (Tensor, Vec<u8>) {
        let _rng = crate::rng_lock();
        tch::manual_seed(seed);
        let n = 240;
        let centres = Tensor::randn([4, 20], (Kind::Float, Device::Cpu)) * 3.0;
        let labels: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
        let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        let x = centres.index_select(0, &y) + Tensor::randn([n, 20], (Kind::Float, Device::Cpu));
        (x, labels)
    }

    #[test]
    fn calibrated_affinities_have_the_asked_perplexity() {
        let (x, _) = clusters(1);
        let x = x.to_kind(Kind::Double);
        let n = x.size()[0];
        let c = conditional_affinities(&x, 20.0);
        // exp of each row's entropy (in nats) is its perplexity.
        let entropy = -(&c * c.clamp_min(1e-300).log()).sum_dim_intlist(1, false, Kind::Double);
        let perplexity = Vec::<f64>::try_from(entropy.exp()).unwrap();
        assert!(perplexity.iter().all(|p| (p - 20.0).abs() < 1e-3), "{perplexity:?}");
        assert_eq!(c.diagonal(0, 0, 1).abs().max().double_value(&[]), 0.0, "no self-affinity");
        let p = affinities(&x, 20.0);
        assert!((p.sum(Kind::Double).double_value(&[]) - 1.0).abs() < 1e-6);
        assert!(p.allclose(&p.tr(), 1e-12, 1e-15, false));
        assert_eq!(p.size(), [n, n]);
    }

    #[test]
    fn embedding_keeps_clusters_apart_and_repeats_with_its_seed() {
        let (x, labels) = clusters(2);
        let tsne = Tsne { perplexity: 20.0, iterations: 400, seed: 5 };
        let y = tsne.embed(&x).unwrap();
        assert_eq!(y.size(), [240, 2]);
        let agreement = neighbour_agreement(&y, &labels, 5);
        assert!(agreement > 0.97, "5-NN agreement in 2-D {agreement}");
        assert!(y.equal(&tsne.embed(&x).unwrap()), "same seed, same layout");
        let other = Tsne { seed: 6, ..tsne }.embed(&x).unwrap();
        assert!(!y.equal(&other), "the seed changes the layout");
    }

    #[test]
    fn neighbour_agreement_counts_majorities() {
        // Two tight pairs far apart, one point of each pair mislabelled: with k = 1 every
        // point's only neighbour is its partner.
        let xy = Tensor::from_slice(&[0.0f32, 0.0, 0.1, 0.0, 10.0, 0.0, 10.1, 0.0]).view([4, 2]);
        assert_eq!(neighbour_agreement(&xy, &[0, 0, 1, 1], 1), 1.0);
        assert_eq!(neighbour_agreement(&xy, &[0, 1, 1, 1], 1), 0.5);
    }

    #[test]
    fn too_few_points_or_a_too_large_perplexity_is_refused() {
        let x = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        assert!(Tsne::default().embed(&x).is_err());
        let x = Tensor::randn([30, 2], (Kind::Float, Device::Cpu));
        let err = Tsne::default().embed(&x).unwrap_err().to_string();
        assert!(err.contains("--perplexity"), "{err}");
    }
}
