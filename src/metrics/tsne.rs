//! t-SNE (van der Maaten & Hinton 2008): a 2-D picture of high-dimensional points that
//! keeps neighbours together, the picture users look at for codes.
//!
//! Two ways to the gradient, chosen by the angle θ:
//! - Barnes–Hut (van der Maaten 2014; θ = 0.5 by default, as scikit-learn): affinities only
//!   among each point's ⌊3·perplexity⌋ nearest neighbours (a sparse, symmetrised P), and the
//!   repulsion of a far group of points taken at its centre of mass in a quadtree, "far"
//!   meaning cell width / distance < θ. O(N log N) a pass, so every test row fits.
//! - exact (θ = 0): the whole N×N affinity matrix with libtorch, O(N²) a pass.
//!
//! The schedule is the reference one for both: perplexity-calibrated Gaussian affinities,
//! early exaggeration 12 for the first 250 of 1000 iterations, momentum 0.5 then 0.8, the
//! delta-bar-delta gains, and the learning rate max(N / 12 / 4, 50) (scikit-learn's
//! "auto"). Deterministic on the CPU for a given seed; Barnes–Hut's sums are also the same
//! whatever the thread count.

use crate::invalid::Invalid;
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
    /// Barnes–Hut's θ (0 < θ ≤ MAX_ANGLE), or 0 for exact gradients.
    pub angle: f64,
}

impl Default for Tsne {
    fn default() -> Self {
        Tsne { perplexity: 30.0, iterations: 1000, seed: 0, angle: 0.5 }
    }
}

/// The largest θ: below 1/√2 a quadtree cell that holds the point itself is never far
/// enough to be summarised (its centre of mass lies within √2 · width of the point).
pub const MAX_ANGLE: f64 = 0.7;
const EXAGGERATION: f64 = 12.0;
const EXAGGERATED_ITERATIONS: usize = 250;
/// Input dimensions above this are first reduced by PCA (the usual preprocessing).
const PCA_DIMS: i64 = 50;
/// Bisection steps of each point's precision.
const SEARCH_STEPS: usize = 64;
/// Rows whose distances to all points are computed at once in the neighbour search.
const SEARCH_CHUNK: i64 = 1024;
/// Points per unit of Barnes–Hut work: the split into units, and so every sum, does not
/// depend on the number of threads.
const WORK_UNIT: usize = 256;
/// Quadtree depth beyond which a cell keeps all its points as a leaf (coincident points).
const MAX_DEPTH: usize = 40;

impl Tsne {
    /// The 2-D embedding `[N, 2]` (f32, CPU) of the rows of `x` (`[N, D]`).
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.size()[0];
        if n < 4 {
            bail!("t-SNE needs at least 4 points, got {n}");
        }
        if !(self.perplexity >= 1.0 && self.perplexity < (n - 1) as f64 / 3.0) {
            let problem = format!(
                "must be at least 1 and below a third of the points ({}), got {}",
                (n - 1) / 3,
                self.perplexity
            );
            return Err(Invalid::of("perplexity", problem).into());
        }
        if !(0.0..=MAX_ANGLE).contains(&self.angle) {
            let problem = format!("must be between 0 (exact) and {MAX_ANGLE}, got {}", self.angle);
            return Err(Invalid::of("angle", problem).into());
        }
        let _guard = tch::no_grad_guard();
        let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
        let x = if x.size()[1] > PCA_DIMS {
            let pca = super::pca::Pca::fit(&x.to_kind(Kind::Float), PCA_DIMS)?;
            pca.project(&x.to_kind(Kind::Float)).to_kind(Kind::Double)
        } else {
            x
        };
        let n = n as usize;
        let y = if self.angle > 0.0 {
            let p = sparse_affinities(&x, self.perplexity);
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            self.descend(n, |y, exaggeration, grad| {
                barnes_hut_gradient(&p, y, exaggeration, self.angle, threads, grad)
            })
        } else {
            let p = affinities(&x, self.perplexity).to_kind(Kind::Float);
            self.descend(n, |y, exaggeration, grad| exact_gradient(&p, y, exaggeration, grad))
        };
        Ok(Tensor::from_slice(&y).view([n as i64, 2]).to_kind(Kind::Float))
    }

    /// Gradient descent on KL(P ‖ Q) from a small seeded Gaussian layout; `gradient(y, α,
    /// out)` writes ∂KL/∂y for the affinities P scaled by α (the early exaggeration).
    fn descend(&self, n: usize, mut gradient: impl FnMut(&[f64], f64, &mut [f64])) -> Vec<f64> {
        let mut draws = crate::data::split::SplitMix64(self.seed);
        let mut y: Vec<f64> = (0..n * 2)
            .map(|_| {
                // Box–Muller from two uniform draws, σ = 1e-4.
                let (u, v) = (draws.unit().max(f64::MIN_POSITIVE), draws.unit());
                1e-4 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        let mut update = vec![0.0; n * 2];
        let mut gains = vec![1.0; n * 2];
        let mut grad = vec![0.0; n * 2];
        let lr = (n as f64 / EXAGGERATION / 4.0).max(50.0);
        let sign = |v: f64| (v > 0.0) as i8 - (v < 0.0) as i8;
        for it in 0..self.iterations {
            let (exaggeration, momentum) =
                if it < EXAGGERATED_ITERATIONS { (EXAGGERATION, 0.5) } else { (1.0, 0.8) };
            gradient(&y, exaggeration, &mut grad);
            for (((y, u), g), d) in y.iter_mut().zip(&mut update).zip(&mut gains).zip(&grad) {
                // Delta-bar-delta: grow a gain while the gradient keeps opposing the step.
                let grown: f64 = if sign(*d) == sign(*u) { *g * 0.8 } else { *g + 0.2 };
                *g = grown.max(0.01);
                *u = *u * momentum - *g * d * lr;
                *y += *u;
            }
            for axis in 0..2 {
                let mean = y.iter().skip(axis).step_by(2).sum::<f64>() / n as f64;
                y.iter_mut().skip(axis).step_by(2).for_each(|v| *v -= mean);
            }
        }
        y
    }
}

/// ∂KL/∂y on the dense affinities `p` (`[N, N]`, f32: the N² passes run at single
/// precision): 4 Σⱼ (α pᵢⱼ − qᵢⱼ) numᵢⱼ (yᵢ − yⱼ) with numᵢⱼ = 1 / (1 + |yᵢ − yⱼ|²) and
/// qᵢⱼ = numᵢⱼ / Σ num.
fn exact_gradient(p: &Tensor, y: &[f64], exaggeration: f64, out: &mut [f64]) {
    let n = p.size()[0];
    let y = Tensor::from_slice(y).view([n, 2]).to_kind(Kind::Float);
    let sq = y.square().sum_dim_intlist(1, true, Kind::Float);
    // num = 1 / (1 + |yᵢ − yⱼ|²) off the diagonal, built in place.
    let mut num = y.matmul(&y.tr());
    let _ = num.g_mul_scalar_(-2.0);
    let _ = num.g_add_(&sq);
    let _ = num.g_add_(&sq.tr());
    let _ = num.clamp_min_(0.0);
    let _ = num.g_add_scalar_(1.0);
    let _ = num.reciprocal_();
    let _ = num.fill_diagonal_(0.0, false);
    let z = num.sum(Kind::Float);
    // w = (α p − q) · num, in place.
    let mut w = &num / z;
    let _ = w.g_sub_(&(p * exaggeration)).g_mul_scalar_(-1.0);
    let _ = w.g_mul_(&num);
    let grad = (w.sum_dim_intlist(1, true, Kind::Float) * &y - w.matmul(&y)) * 4.0;
    let grad = grad.to_kind(Kind::Double).contiguous().view([-1]);
    grad.copy_data(out, out.len());
}

/// Symmetrised affinities among nearest neighbours, one row per point (compressed rows).
struct SparseP {
    offsets: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

impl SparseP {
    fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let range = self.offsets[i]..self.offsets[i + 1];
        self.cols[range.clone()].iter().map(|&j| j as usize).zip(self.vals[range].iter().copied())
    }
}

/// The affinities of Barnes–Hut t-SNE: each row's conditional distribution over its
/// ⌊3·perplexity⌋ nearest neighbours, then (P + Pᵀ) / 2N, so they sum to 1.
fn sparse_affinities(x: &Tensor, perplexity: f64) -> SparseP {
    let n = x.size()[0];
    let k = ((3.0 * perplexity) as i64).clamp(1, n - 1);
    let (d2, idx) = nearest(x, k);
    let conditional = calibrate(&d2, &Tensor::ones_like(&d2), perplexity);
    let vals = Vec::<f64>::try_from(conditional.view([-1])).unwrap_or_default();
    let cols = Vec::<i64>::try_from(idx.view([-1])).unwrap_or_default();
    let (n, k) = (n as usize, k as usize);
    let mut pairs: Vec<(u32, u32, f64)> = Vec::with_capacity(2 * n * k);
    for (e, (&j, &v)) in cols.iter().zip(&vals).enumerate() {
        let i = (e / k) as u32;
        pairs.push((i, j as u32, v));
        pairs.push((j as u32, i, v));
    }
    pairs.sort_unstable_by_key(|&(i, j, _)| (i, j));
    let mut p = SparseP { offsets: vec![0; n + 1], cols: vec![], vals: vec![] };
    let norm = 1.0 / (2 * n) as f64;
    for (e, &(i, j, v)) in pairs.iter().enumerate() {
        if e > 0 && pairs[e - 1].0 == i && pairs[e - 1].1 == j {
            *p.vals.last_mut().expect("a previous entry") += v * norm;
        } else {
            p.cols.push(j);
            p.vals.push(v * norm);
            p.offsets[i as usize + 1] = p.cols.len();
        }
    }
    for i in 0..n {
        p.offsets[i + 1] = p.offsets[i + 1].max(p.offsets[i]);
    }
    p
}

/// The `k` nearest other rows of each row of `x` (`[N, D]`): squared L2 distances and
/// indices, `[N, k]` each, nearest first. Exact, computed a chunk of rows at a time.
fn nearest(x: &Tensor, k: i64) -> (Tensor, Tensor) {
    let n = x.size()[0];
    let x = x.to_kind(Kind::Double);
    let sq = x.square().sum_dim_intlist(1, false, Kind::Double);
    let (mut dists, mut indices) = (vec![], vec![]);
    for start in (0..n).step_by(SEARCH_CHUNK as usize) {
        let len = SEARCH_CHUNK.min(n - start);
        let rows = x.narrow(0, start, len);
        let mut d2 = (sq.narrow(0, start, len).unsqueeze(1) + sq.unsqueeze(0)
            - rows.matmul(&x.tr()) * 2.0)
            .clamp_min(0.0);
        let own = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu)).unsqueeze(1);
        let _ = d2.scatter_value_(1, &own, f64::INFINITY);
        let (d, i) = d2.topk(k, 1, false, true);
        dists.push(d);
        indices.push(i);
    }
    (Tensor::cat(&dists, 0), Tensor::cat(&indices, 0))
}

/// Barnes–Hut's ∂KL/∂y: the attraction exactly over the sparse `p` (scaled by α), the
/// repulsion and the normaliser Z through the quadtree of `y`.
fn barnes_hut_gradient(
    p: &SparseP,
    y: &[f64],
    exaggeration: f64,
    angle: f64,
    threads: usize,
    out: &mut [f64],
) {
    let tree = QuadTree::new(y);
    let n = y.len() / 2;
    let units = n.div_ceil(WORK_UNIT);
    // Per unit: its points' attraction and repulsion (4 values a point) and its share of Z.
    let mut forces = vec![0.0; n * 4];
    let mut z = vec![0.0; units];
    let mut work: Vec<(usize, &mut [f64], &mut f64)> = forces
        .chunks_mut(WORK_UNIT * 4)
        .zip(z.iter_mut())
        .enumerate()
        .map(|(u, (f, z))| (u * WORK_UNIT, f, z))
        .collect();
    let run = |jobs: &mut [(usize, &mut [f64], &mut f64)]| {
        let mut stack = Vec::new();
        for (first, f, z) in jobs.iter_mut() {
            for (i, f) in (*first..).zip(f.chunks_exact_mut(4)) {
                let (yx, yy) = (y[2 * i], y[2 * i + 1]);
                let (mut ax, mut ay) = (0.0, 0.0);
                for (j, pij) in p.row(i) {
                    let (dx, dy) = (yx - y[2 * j], yy - y[2 * j + 1]);
                    let q = 1.0 / (1.0 + dx * dx + dy * dy);
                    ax += pij * q * dx;
                    ay += pij * q * dy;
                }
                let (rx, ry, zi) = tree.repulsion(i, y, angle, &mut stack);
                f.copy_from_slice(&[ax * exaggeration, ay * exaggeration, rx, ry]);
                **z += zi;
            }
        }
    };
    let per_thread = units.div_ceil(threads.max(1)).max(1);
    let run = &run;
    std::thread::scope(|s| {
        for jobs in work.chunks_mut(per_thread) {
            s.spawn(move || run(jobs));
        }
    });
    let z: f64 = z.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    for (g, f) in out.chunks_exact_mut(2).zip(forces.chunks_exact(4)) {
        g[0] = 4.0 * (f[0] - f[2] / z);
        g[1] = 4.0 * (f[1] - f[3] / z);
    }
}

/// A quadtree of 2-D points with each cell's centre of mass and count.
struct QuadTree {
    nodes: Vec<Cell>,
    /// Point indices, grouped so that every cell's points are one range.
    order: Vec<u32>,
}

struct Cell {
    /// Width of the (square) cell.
    width: f64,
    mass: (f64, f64),
    count: f64,
    /// Non-empty children; none for a leaf.
    children: Vec<u32>,
    /// The cell's points in `order`.
    points: std::ops::Range<usize>,
}

impl QuadTree {
    fn new(y: &[f64]) -> QuadTree {
        let n = y.len() / 2;
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in y.chunks_exact(2) {
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let half = ((hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0).max(1e-12) * (1.0 + 1e-9);
        let centre = ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0);
        let mut tree =
            QuadTree { nodes: Vec::with_capacity(2 * n), order: (0..n as u32).collect() };
        tree.build(y, 0..n, centre, half, 0);
        tree
    }

    /// Adds the cell of the points `order[range]`, centred at `centre` with half width
    /// `half`, and returns its index.
    fn build(
        &mut self,
        y: &[f64],
        range: std::ops::Range<usize>,
        centre: (f64, f64),
        half: f64,
        depth: usize,
    ) -> u32 {
        let id = self.nodes.len() as u32;
        let points = &mut self.order[range.clone()];
        let count = points.len() as f64;
        let sum = points
            .iter()
            .fold((0.0, 0.0), |s, &i| (s.0 + y[2 * i as usize], s.1 + y[2 * i as usize + 1]));
        let quadrant = |i: &u32| {
            let (px, py) = (y[2 * *i as usize], y[2 * *i as usize + 1]);
            (px >= centre.0) as u8 | ((py >= centre.1) as u8) << 1
        };
        let leaf = points.len() <= 1 || depth >= MAX_DEPTH;
        if !leaf {
            points.sort_unstable_by_key(quadrant);
        }
        let bounds: Vec<usize> = if leaf {
            vec![]
        } else {
            (0..=4u8).map(|q| range.start + points.partition_point(|i| quadrant(i) < q)).collect()
        };
        self.nodes.push(Cell {
            width: 2.0 * half,
            mass: (sum.0 / count, sum.1 / count),
            count,
            children: vec![],
            points: range,
        });
        for q in 0..bounds.len().saturating_sub(1) {
            if bounds[q] == bounds[q + 1] {
                continue;
            }
            let h = half / 2.0;
            let c = (
                centre.0 + if q & 1 == 1 { h } else { -h },
                centre.1 + if q & 2 == 2 { h } else { -h },
            );
            let child = self.build(y, bounds[q]..bounds[q + 1], c, h, depth + 1);
            self.nodes[id as usize].children.push(child);
        }
        id
    }

    /// Point `i`'s repulsion Σⱼ numᵢⱼ² (yᵢ − yⱼ) and its part of Z = Σⱼ numᵢⱼ, with far
    /// cells summarised at their centre of mass.
    fn repulsion(&self, i: usize, y: &[f64], angle: f64, stack: &mut Vec<u32>) -> (f64, f64, f64) {
        let (yx, yy) = (y[2 * i], y[2 * i + 1]);
        let (mut fx, mut fy, mut z) = (0.0, 0.0, 0.0);
        stack.clear();
        stack.push(0);
        while let Some(id) = stack.pop() {
            let cell = &self.nodes[id as usize];
            if cell.children.is_empty() {
                for &j in &self.order[cell.points.clone()] {
                    let j = j as usize;
                    if j == i {
                        continue;
                    }
                    let (dx, dy) = (yx - y[2 * j], yy - y[2 * j + 1]);
                    let q = 1.0 / (1.0 + dx * dx + dy * dy);
                    z += q;
                    fx += q * q * dx;
                    fy += q * q * dy;
                }
                continue;
            }
            let (dx, dy) = (yx - cell.mass.0, yy - cell.mass.1);
            let d2 = dx * dx + dy * dy;
            if cell.width * cell.width < angle * angle * d2 {
                let q = 1.0 / (1.0 + d2);
                z += cell.count * q;
                fx += cell.count * q * q * dx;
                fy += cell.count * q * q * dy;
            } else {
                stack.extend(cell.children.iter().rev());
            }
        }
        (fx, fy, z)
    }
}

/// The symmetrised affinities P (`[N, N]`, summing to 1) of the rows of `x`:
/// (P + Pᵀ) / 2N of the conditional ones.
fn affinities(x: &Tensor, perplexity: f64) -> Tensor {
    let n = x.size()[0];
    let opts = (Kind::Double, Device::Cpu);
    let sq = x.square().sum_dim_intlist(1, true, Kind::Double);
    let d2 = (&sq + sq.tr() - x.matmul(&x.tr()) * 2.0).clamp_min(0.0);
    let p = calibrate(&d2, &(Tensor::ones([n, n], opts) - Tensor::eye(n, opts)), perplexity);
    ((&p + p.tr()) / (2 * n) as f64).clamp_min(1e-12)
}

/// Each row's Gaussian distribution over the entries of `d2` (squared distances, `[N, M]`)
/// where `mask` is 1 (rows summing to 1), its precision found by bisection so that its
/// perplexity e^H (H in nats) is `perplexity`.
fn calibrate(d2: &Tensor, mask: &Tensor, perplexity: f64) -> Tensor {
    let n = d2.size()[0];
    let opts = (Kind::Double, Device::Cpu);
    // Distances relative to each row's nearest neighbour: the entropy does not change, and
    // no row underflows to all zeros.
    let masked: Tensor = d2 + (1.0 - mask) * f64::MAX;
    let d2 = (d2 - masked.amin(&[1i64][..], true)).clamp_min(0.0) * mask;
    let entries = mask.sum(Kind::Double).double_value(&[]);
    let scale = d2.sum(Kind::Double).double_value(&[]) / entries.max(1.0);
    let d2 = d2 / scale.max(f64::MIN_POSITIVE);
    let target = perplexity.ln();
    let mut beta = Tensor::ones([n, 1], opts);
    let mut lo = Tensor::zeros([n, 1], opts);
    let mut hi = Tensor::full([n, 1], f64::INFINITY, opts);
    let conditional = |beta: &Tensor| {
        let p = (-&d2 * beta).exp() * mask;
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
    let k = k.min(n - 1).max(1);
    let (_, idx) = nearest(&xy, k);
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
        let opts = (Kind::Double, Device::Cpu);
        let sq = x.square().sum_dim_intlist(1, true, Kind::Double);
        let d2 = (&sq + sq.tr() - x.matmul(&x.tr()) * 2.0).clamp_min(0.0);
        let c = calibrate(&d2, &(Tensor::ones([n, n], opts) - Tensor::eye(n, opts)), 20.0);
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
        for angle in [0.0, 0.5] {
            let tsne = Tsne { perplexity: 20.0, iterations: 400, seed: 5, angle };
            let y = tsne.embed(&x).unwrap();
            assert_eq!(y.size(), [240, 2]);
            let agreement = neighbour_agreement(&y, &labels, 5);
            assert!(agreement > 0.97, "θ {angle}: 5-NN agreement in 2-D {agreement}");
            assert!(y.equal(&tsne.embed(&x).unwrap()), "θ {angle}: same seed, same layout");
            let other = Tsne { seed: 6, ..tsne }.embed(&x).unwrap();
            assert!(!y.equal(&other), "θ {angle}: the seed changes the layout");
        }
    }

    /// The sparse affinities as a dense matrix.
    fn dense(p: &SparseP, n: usize) -> Tensor {
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for (j, v) in p.row(i) {
                d[i * n + j] = v;
            }
        }
        Tensor::from_slice(&d).view([n as i64, n as i64])
    }

    #[test]
    fn sparse_affinities_are_symmetric_and_keep_the_nearest_neighbours() {
        let (x, _) = clusters(3);
        let x = x.to_kind(Kind::Double);
        let n = x.size()[0] as usize;
        let p = sparse_affinities(&x, 10.0);
        let d = dense(&p, n);
        assert!((d.sum(Kind::Double).double_value(&[]) - 1.0).abs() < 1e-12);
        assert!(d.equal(&d.tr()), "symmetric");
        assert_eq!(d.diagonal(0, 0, 1).abs().max().double_value(&[]), 0.0, "no self-affinity");
        // Every row holds at least its own 30 neighbours (and those that chose it).
        assert!((0..n).all(|i| p.offsets[i + 1] - p.offsets[i] >= 30));
        // The neighbour search agrees with a brute-force sort of one row.
        let (d2, idx) = nearest(&x, 5);
        let row: Vec<f64> = (0..n as i64)
            .map(|j| (x.get(7) - x.get(j)).square().sum(Kind::Double).double_value(&[]))
            .collect();
        let mut order: Vec<usize> = (0..n).filter(|&j| j != 7).collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
        assert_eq!(
            Vec::<i64>::try_from(idx.get(7)).unwrap(),
            order[..5].iter().map(|&j| j as i64).collect::<Vec<_>>()
        );
        assert!((d2.get(7).get(0).double_value(&[]) - row[order[0]]).abs() < 1e-9);
    }

    /// With a small θ every cell is opened and Barnes–Hut's gradient is the exact one (to
    /// the exact path's single precision); at
    /// θ = 0.5 it stays within a few percent.
    #[test]
    fn barnes_hut_gradient_matches_the_exact_one() {
        // Three clusters' worth of points: more than two work units.
        let x = Tensor::cat(&[clusters(4).0, clusters(5).0, clusters(6).0], 0);
        assert!(x.size()[0] as usize > 2 * WORK_UNIT);
        let x = x.to_kind(Kind::Double);
        let n = x.size()[0] as usize;
        let p = sparse_affinities(&x, 10.0);
        let y: Vec<f64> = Vec::try_from(x.narrow(1, 0, 2).contiguous().view([-1])).unwrap();
        let mut exact = vec![0.0; 2 * n];
        exact_gradient(&dense(&p, n).to_kind(Kind::Float), &y, 12.0, &mut exact);
        let norm = exact.iter().map(|g| g * g).sum::<f64>().sqrt();
        for (angle, tolerance) in [(1e-3, 1e-5), (0.5, 0.05)] {
            let mut first: Option<Vec<f64>> = None;
            for threads in [1, 3] {
                let mut bh = vec![0.0; 2 * n];
                barnes_hut_gradient(&p, &y, 12.0, angle, threads, &mut bh);
                let err = exact.iter().zip(&bh).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
                assert!(err <= tolerance * norm, "θ {angle}: relative error {}", err / norm);
                // The same sums in the same order, whatever the thread count.
                assert!(first.get_or_insert_with(|| bh.clone()) == &bh, "{threads} threads");
            }
        }
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
        let x = Tensor::randn([300, 2], (Kind::Float, Device::Cpu));
        let err = Tsne { angle: 0.9, ..Default::default() }.embed(&x).unwrap_err().to_string();
        assert!(err.contains("--angle"), "{err}");
    }
}
