//! The training step of a fully connected autoencoder written out by hand: the forward
//! and backward passes as matrix products into preallocated buffers, the gradients
//! written straight into the optimiser's flat gradient. No autograd graph is built and
//! nothing of the batch's size is allocated per step; the arithmetic is what autograd
//! would do (libtorch's own `*_backward` kernels), so the two paths agree to rounding.
//!
//! Used for `--arch mlp` without tied weights (the default and recommended model); every
//! other model trains through autograd.

use crate::config::{Activation, Loss, ModelConfig, Precision, TrainConfig};
use crate::host::{self, parallel_for, Disjoint, Elem};
use crate::optim::{view_at, FlatAdam};
use tch::{nn, Kind, Reduction, Tensor};

/// What follows a layer's matrix product.
#[derive(Clone, Copy, Debug)]
enum Act {
    Hidden(Activation),
    /// The code layer.
    Identity,
    /// The output layer.
    Sigmoid,
}

struct Dense {
    /// What the layer computes in: the step's precision, or fp32 for a small layer of a
    /// bf16 step (see `LOW_PRECISION_FROM`); `host` on the CPU, where the passes in Rust
    /// apply (they read and write the layer's kind, and its bias and bias gradient in fp32:
    /// a bf16 layer's master copies, see `bias32`).
    kind: Kind,
    host: bool,
    w: Tensor,
    b: Tensor,
    /// Views of the optimiser's flat gradient (or of the bf16 copy's).
    gw: Tensor,
    gb: Tensor,
    /// A bf16 layer's views of the fp32 master weights, bias and their gradients: the
    /// weights are cast from them before the step, the gradients widened into them after.
    master: Option<[Tensor; 4]>,
    /// `[batch, in]` in this layer's kind, where the layer before computes in another:
    /// its output cast for the product, and the gradient at it before the cast back.
    cast_in: Option<Tensor>,
    grad_in: Option<Tensor>,
    act: Act,
    /// `[batch, out]`: activations, pre-activations (GELU only), and the gradient
    /// with respect to the output, then (in place) the pre-activation.
    out: Tensor,
    pre: Option<Tensor>,
    delta: Tensor,
}

/// Where a step's layers take their parameters from: the optimiser's flat buffers and, in
/// a bf16 step, bf16 copies of its parameters and gradient; and the buffers' batch size
/// and device.
struct Buffers<'a> {
    opt: &'a FlatAdam,
    low: Option<(Tensor, Tensor)>,
    batch: i64,
    device: tch::Device,
}

impl Dense {
    /// The layer whose weight and bias sit at `slots` (offset and shape) of the flat
    /// buffers, computing in `kind` after a layer that computes in `before`.
    fn new(
        src: &Buffers,
        slots: [(i64, Vec<i64>); 2],
        kind: Kind,
        before: Option<Kind>,
        act: Act,
    ) -> Dense {
        let [(wo, ws), (bo, bs)] = slots;
        let views = |flat: &Tensor, grad: &Tensor| {
            let (w, b) = (view_at(flat, wo, &ws), view_at(flat, bo, &bs));
            [w, b, view_at(grad, wo, &ws), view_at(grad, bo, &bs)]
        };
        let fp32 = views(src.opt.flat(), src.opt.flat_grad());
        let ([w, b, gw, gb], master) = match (&src.low, kind) {
            (Some((flat, grad)), k) if k != Kind::Float => (views(flat, grad), Some(fp32)),
            _ => (fp32, None),
        };
        let (batch, device) = (src.batch, src.device);
        let cross = || before.is_some_and(|k| k != kind);
        let in_buffer = || Tensor::zeros([batch, ws[1]], (kind, device));
        let buffer = || Tensor::zeros([batch, ws[0]], (kind, device));
        Dense {
            kind,
            host: device == tch::Device::Cpu && matches!(kind, Kind::Float | Kind::BFloat16),
            w,
            b,
            gw,
            gb,
            master,
            cast_in: cross().then(in_buffer),
            grad_in: cross().then(in_buffer),
            act,
            out: buffer(),
            pre: matches!(act, Act::Hidden(Activation::Gelu)).then(buffer),
            delta: buffer(),
        }
    }

    /// The fp32 bias and its gradient: the master copies of a bf16 layer. The passes in
    /// Rust read and write these, so a bf16 layer on the CPU writes its bias gradient
    /// straight into the master's.
    fn bias32(&self) -> (&Tensor, &Tensor) {
        match &self.master {
            Some([_, b, _, gb]) => (b, gb),
            None => (&self.b, &self.gb),
        }
    }
}

/// `by_kind!(kind, T => body)`: `body` with `T` the element type of a host layer's kind
/// (`host::Bf16` for bf16, else f32).
macro_rules! by_kind {
    ($kind:expr, $t:ident => $body:expr) => {
        if $kind == Kind::BFloat16 {
            type $t = host::Bf16;
            $body
        } else {
            type $t = f32;
            $body
        }
    };
}

/// In a bf16 step, the layers with at least this many weights compute in bf16 and the
/// smaller ones in fp32: a small bf16 product costs more in oneDNN's set-up (about 20 µs
/// on W1's 256×64 and 64×16 layers) than its arithmetic saves (their fp32 products take
/// 3–25 µs), while a 784×256 one runs 1.5–2.4× faster in bf16.
const LOW_PRECISION_FROM: i64 = 1 << 16;

/// What a layer of `weights` weights computes in, in a step of `kind`.
fn computes_in(kind: Kind, weights: i64) -> Kind {
    if weights >= LOW_PRECISION_FROM {
        kind
    } else {
        Kind::Float
    }
}

pub struct MlpStep {
    layers: Vec<Dense>,
    /// `[batch, D]` copies of the input and the target in the kind of the first and the
    /// last layer, where that is not fp32 (bf16 steps).
    input_copy: Option<Tensor>,
    target_copy: Option<Tensor>,
    /// Index of the layer whose output is the code.
    code: usize,
    loss: Loss,
    l1_latent: f64,
    /// `--trim` (see `loss::kept_rows`).
    trim: f64,
    /// The loss's upstream gradient, 1.
    one: Tensor,
    /// The fused passes' column sums, a row of the widest layer per block of `BLOCK_ROWS`
    /// rows (see `by_blocks`).
    partial: Vec<f32>,
}

impl MlpStep {
    /// The hand-written step for `model` (whose variables live in `vs` and have been
    /// taken over by `opt`), for batches of up to `batch` rows; `None` when the model is
    /// not a plain fully connected autoencoder.
    pub fn new(
        vs: &nn::VarStore,
        model: &ModelConfig,
        train: &TrainConfig,
        opt: &FlatAdam,
        batch: i64,
    ) -> Option<MlpStep> {
        if !model.is_plain_mlp() {
            return None;
        }
        let vars = vs.variables();
        let widths = model.encoder_widths();
        let depth = widths.len() - 1;
        let device = vs.device();
        let kind = match train.precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        };
        // The bf16 copies of the flat parameters and gradient, where a layer is large
        // enough to compute in bf16 (only those layers use their parts).
        let any_low = widths.windows(2).any(|w| computes_in(kind, w[0] * w[1]) != Kind::Float);
        let copy = || any_low.then(|| Tensor::zeros([opt.len()], (kind, device)));
        let src = Buffers { opt, low: copy().zip(copy()), batch, device };
        let mut layers: Vec<Dense> = Vec::with_capacity(2 * depth);
        let mut covered = 0;
        for (part, i) in
            (0..depth).map(|i| ("encoder", i)).chain((0..depth).map(|i| ("decoder", i)))
        {
            // Linear layers sit at even positions of the Sequential (see model/mod.rs).
            let name = |v: &str| format!("{part}.{}.{v}", 2 * i);
            let (w, b) = (vars.get(&name("weight"))?, vars.get(&name("bias"))?);
            covered += w.numel() + b.numel();
            let slots = [opt.slot(w)?, opt.slot(b)?];
            let layer_kind = computes_in(kind, w.numel() as i64);
            let act = match (part, i + 1 == depth) {
                ("encoder", true) => Act::Identity,
                ("decoder", true) if model.input.bounded() => Act::Sigmoid,
                ("decoder", true) => Act::Identity,
                _ => Act::Hidden(model.activation),
            };
            let before = layers.last().map(|l| l.kind);
            layers.push(Dense::new(&src, slots, layer_kind, before, act));
        }
        if covered as i64 != opt.len() {
            return None;
        }
        let widest = layers.iter().map(|l| l.gb.numel()).max().unwrap_or(0);
        let partial = vec![0.0; (batch.max(1) as usize).div_ceil(BLOCK_ROWS) * widest];
        let (first, last) = (layers.first()?.kind, layers.last()?.kind);
        let copy_in = |kind: Kind| {
            (kind != Kind::Float).then(|| Tensor::zeros([batch, model.input_dim()], (kind, device)))
        };
        let (input_copy, target_copy) = (copy_in(first), copy_in(last));
        let one = Tensor::ones([], (last, device));
        Some(MlpStep {
            layers,
            input_copy,
            target_copy,
            code: depth - 1,
            loss: train.loss,
            l1_latent: train.l1_latent,
            trim: train.trim,
            one,
            partial,
        })
    }

    /// Forward and backward for `input` against `target` (`[len, D]`, len ≤ batch):
    /// leaves the gradient in the optimiser's buffer and returns the loss (a scalar on
    /// the device).
    pub fn forward_backward(&mut self, input: &Tensor, target: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let len = input.size()[0];
            let rows = |t: &Tensor| t.narrow(0, 0, len);
            for l in &self.layers {
                if let Some([w, b, _, _]) = &l.master {
                    l.w.shallow_clone().copy_(w);
                    l.b.shallow_clone().copy_(b);
                }
            }
            // The batch in the kinds of the first and the last layer.
            let as_kind = |given: &Tensor, copy: &Option<Tensor>| match copy {
                Some(copy) => {
                    let copy = rows(copy);
                    copy.shallow_clone().copy_(given);
                    copy
                }
                None => given.shallow_clone(),
            };
            let input = as_kind(input, &self.input_copy);
            // The fused output reads the fp32 target whatever the last layer's kind.
            let fused = self.fused(target);
            let full_target = target;
            let target = match fused {
                true => target.shallow_clone(),
                false => as_kind(target, &self.target_copy),
            };
            self.forward(&input, len);
            let mut loss = self.output_gradient(&target, full_target, len, fused);
            self.backward(&input, len, fused, &mut loss);
            for l in &self.layers {
                if let Some([_, _, gw, gb]) = &l.master {
                    gw.shallow_clone().copy_(&l.gw);
                    // A host layer's passes wrote the master's bias gradient already.
                    if !l.host {
                        gb.shallow_clone().copy_(&l.gb);
                    }
                }
            }
            loss
        })
    }

    /// Whether the output layer's loss and gradients take one pass (`mse_after_sigmoid`)
    /// instead of four: the default output (sigmoid, MSE) untrimmed, on the CPU, against
    /// an fp32 `target`.
    fn fused(&self, target: &Tensor) -> bool {
        let last = self.layers.last().expect("at least two layers");
        matches!((last.act, self.loss), (Act::Sigmoid, Loss::Mse))
            && self.trim == 0.0
            && last.host
            && host::is_host(target, Kind::Float)
    }

    /// Each layer's output (and a GELU layer's pre-activation) for the first `len` rows.
    fn forward(&self, input: &Tensor, len: i64) {
        let rows = |t: &Tensor| t.narrow(0, 0, len);
        let mut a = input.shallow_clone();
        for l in &self.layers {
            if let Some(cast) = &l.cast_in {
                let cast = rows(cast);
                cast.shallow_clone().copy_(&a);
                a = cast;
            }
            let out = rows(&l.out);
            let wt = l.w.tr();
            match (l.act, &l.pre) {
                (Act::Hidden(Activation::Gelu), Some(pre)) => {
                    let pre = rows(pre);
                    let _ = l.b.addmm_out(&pre, &a, &wt);
                    let _ = pre.gelu_out(&out, "none");
                }
                (Act::Hidden(Activation::Relu), _) if l.host => {
                    // The product alone, then the bias and the ReLU in one pass (addmm
                    // writes the bias over the output first, and relu_ is a pass of its own).
                    let _ = a.mm_out(&out, &wt);
                    // SAFETY: two distinct buffers of the step; no libtorch operation runs
                    // meanwhile.
                    let b = l.bias32().0;
                    unsafe {
                        by_kind!(l.kind, T => bias_relu(host::slice_mut::<T>(&out), host::f32_ref(b)))
                    };
                }
                (act, _) => {
                    let mut o = l.b.addmm_out(&out, &a, &wt);
                    let _ = match act {
                        Act::Hidden(Activation::Relu) => o.relu_(),
                        Act::Hidden(Activation::LeakyRelu) => o.leaky_relu_(),
                        Act::Hidden(Activation::Tanh) => o.tanh_(),
                        Act::Sigmoid => o.sigmoid_(),
                        Act::Hidden(Activation::Gelu) | Act::Identity => o,
                    };
                }
            }
            a = out;
        }
    }

    /// The loss of the last layer's output against `target` (the working-precision copy;
    /// `full_target` the fp32 one), and its gradient at the output in the last layer's
    /// delta; trimmed with `--trim`. When `fused`, the gradient at the pre-activation
    /// and the bias gradient instead, in one pass (`mse_after_sigmoid`).
    fn output_gradient(
        &mut self,
        target: &Tensor,
        full_target: &Tensor,
        len: i64,
        fused: bool,
    ) -> Tensor {
        let rows = |t: &Tensor| t.narrow(0, 0, len);
        let last = self.layers.last().expect("at least two layers");
        let (output, d) = (rows(&last.out), rows(&last.delta));
        if fused {
            // SAFETY: four distinct buffers (the step's output, gradient and bias gradient,
            // the batch's target); no libtorch operation runs meanwhile.
            let sum = unsafe {
                by_kind!(last.kind, T => {
                    let (y, t) = (host::slice_ref::<T>(&output), host::f32_ref(full_target));
                    let (d, gb) = (host::slice_mut::<T>(&d), host::f32_mut(last.bias32().1));
                    mse_after_sigmoid(y, t, d, gb, &mut self.partial)
                })
            };
            return Tensor::from((sum / output.numel() as f64) as f32);
        }
        let output32 = output.to_kind(Kind::Float);
        let mut loss = match self.loss {
            Loss::Mse => {
                let _ = output.mse_loss_backward_grad_input(&d, &self.one, target, Reduction::Mean);
                output32.mse_loss(full_target, Reduction::Mean)
            }
            Loss::Bce => {
                let _ = output.binary_cross_entropy_backward_grad_input(
                    &d,
                    &self.one,
                    target,
                    None::<Tensor>,
                    Reduction::Mean,
                );
                crate::loss::reconstruction(&output32, full_target, Loss::Bce)
            }
        };
        if self.trim > 0.0 {
            // The mean's gradient is ℓ'/(n·D) per value; the trimmed mean's is
            // mask·ℓ'/(kept·D): scale each row by mask·n/kept.
            let rows_loss = crate::loss::per_row(&output32, full_target, self.loss);
            let kept = crate::loss::kept_rows(len, self.trim);
            let mask = crate::loss::kept_mask(&rows_loss, kept);
            let scale = (&mask * (len as f64 / kept as f64)).to_kind(d.kind()).unsqueeze(1);
            let mut d = d.shallow_clone();
            d *= scale;
            loss = (rows_loss * mask).sum(Kind::Float) / kept as f64;
        }
        loss
    }

    /// Back through the layers from the last one's delta: each pre-activation's gradient
    /// in place, the weight and bias gradients, the L1 term of the code (added to `loss`).
    fn backward(&mut self, input: &Tensor, len: i64, fused: bool, loss: &mut Tensor) {
        let rows = |t: &Tensor| t.narrow(0, 0, len);
        for i in (0..self.layers.len()).rev() {
            let l = &self.layers[i];
            let (out, d) = (rows(&l.out), rows(&l.delta));
            // On the host a ReLU's backward is part of the bias gradient's pass below.
            let relu_on_host = l.host && matches!(l.act, Act::Hidden(Activation::Relu));
            // d: ∂loss/∂output → ∂loss/∂pre-activation, in place.
            let _ = match (l.act, &l.pre) {
                (Act::Sigmoid, _) if fused => d.shallow_clone(),
                _ if relu_on_host => d.shallow_clone(),
                (Act::Sigmoid, _) => Tensor::sigmoid_backward_grad_input(&d, &d, &out),
                (Act::Hidden(Activation::Relu), _) => {
                    out.threshold_backward_grad_input(&d, &d, 0.0)
                }
                (Act::Hidden(Activation::LeakyRelu), _) => {
                    out.leaky_relu_backward_grad_input(&d, &d, 0.01, true)
                }
                (Act::Hidden(Activation::Tanh), _) => {
                    Tensor::tanh_backward_grad_input(&d, &d, &out)
                }
                (Act::Hidden(Activation::Gelu), Some(pre)) => {
                    rows(pre).gelu_backward_grad_input(&d, &d, "none")
                }
                (Act::Hidden(Activation::Gelu), None) => unreachable!("GELU keeps its input"),
                (Act::Identity, _) => {
                    if i == self.code && self.l1_latent > 0.0 {
                        // λ·mean|z|: ∂/∂z = λ·sign(z) / numel.
                        let scale = self.l1_latent / out.numel() as f64;
                        let mut d = d.shallow_clone();
                        d += out.sign() * scale;
                        *loss += out.abs().to_kind(Kind::Float).mean(Kind::Float) * self.l1_latent;
                    }
                    d.shallow_clone()
                }
            };
            let input = match (&l.cast_in, i) {
                (Some(cast), _) => rows(cast),
                (None, 0) => input.shallow_clone(),
                (None, _) => rows(&self.layers[i - 1].out),
            };
            if fused && i + 1 == self.layers.len() {
                // The output's bias gradient came with its loss.
            } else if l.host {
                // SAFETY: three distinct buffers of the step (the layer's output, its
                // gradient, the bias gradient); no libtorch operation runs meanwhile.
                unsafe {
                    by_kind!(l.kind, T => {
                        let relu = relu_on_host.then(|| host::slice_ref::<T>(&out));
                        let (g, gb) = (host::slice_mut::<T>(&d), host::f32_mut(l.bias32().1));
                        backward_with_bias(relu, g, gb, &mut self.partial);
                    })
                }
            } else {
                let _ = d.sum_intlist_out(&l.gb, [0i64].as_slice(), false, l.gb.kind());
            }
            let _ = d.tr().mm_out(&l.gw, &input);
            if i > 0 {
                let before = rows(&self.layers[i - 1].delta);
                match &l.grad_in {
                    Some(grad_in) => {
                        let grad_in = d.mm_out(&rows(grad_in), &l.w);
                        before.shallow_clone().copy_(&grad_in);
                    }
                    None => {
                        let _ = d.mm_out(&before, &l.w);
                    }
                }
            }
        }
    }
}

/// Values per range of the passes in Rust at least: below that, a second thread's
/// wake-up costs more than it saves.
const PASS_GRAIN: usize = 1 << 14;

/// `x ← relu(x + b)` for each row x of the `[n, b.len()]` buffer `out`, split over the
/// threads by rows.
pub fn bias_relu<T: Elem>(out: &mut [T], b: &[f32]) {
    debug_assert!(out.len() % b.len().max(1) == 0, "whole rows of the bias' width");
    let (dim, n) = (b.len().max(1), out.len());
    let parts = Disjoint::new(out);
    parallel_for(n / dim, PASS_GRAIN / dim, |first, last| {
        // SAFETY: the ranges of one parallel_for do not overlap.
        let out = unsafe { parts.part(first * dim, last * dim) };
        bias_relu_rows(out, b);
    });
}

host::widest! {
    /// `bias_relu_body` for the widest vector unit.
    fn bias_relu_rows<T: Elem>(out: &mut [T], b: &[f32]) = bias_relu_body
}

#[inline(always)]
fn bias_relu_body<T: Elem>(out: &mut [T], b: &[f32]) {
    for row in out.chunks_exact_mut(b.len()) {
        // Negative to zero; NaN stays NaN, as with relu_ (a diverging run must show it).
        row.iter_mut().zip(b).for_each(|(x, &b)| {
            let v = x.get() + b;
            *x = T::put(if v < 0.0 { 0.0 } else { v });
        });
    }
}

/// Rows per block of the fused passes: their unit of work and of summation.
pub const BLOCK_ROWS: usize = 8;

/// Runs `block(lo, d, col)` over blocks of `BLOCK_ROWS` rows of the `[n, gb.len()]`
/// gradient `d` (its values `lo..lo + d.len()`), in parallel, each block writing its rows
/// of `d`, its column sums into `col` and returning a partial sum. Then the blocks'
/// column sums go into `gb` and the partial sums' total is returned, both added over the
/// blocks by `pairwise`: the same bits whatever the thread count or its split. `partial`
/// holds a row of column sums per block.
fn by_blocks<T: Elem, F>(d: &mut [T], gb: &mut [f32], partial: &mut [f32], block: F) -> f64
where
    F: Fn(usize, &mut [T], &mut [f32]) -> f64 + Sync,
{
    let (dim, n) = (gb.len(), d.len());
    let size = BLOCK_ROWS * dim;
    let blocks = n.div_ceil(size);
    let mut sums = vec![0f64; blocks];
    let (out, cols, parts) =
        (Disjoint::new(d), Disjoint::new(&mut partial[..blocks * dim]), Disjoint::new(&mut sums));
    parallel_for(blocks, PASS_GRAIN / size, |first, last| {
        // SAFETY: the ranges of one parallel_for do not overlap, nor do their blocks.
        let (d, cols, sums) = unsafe {
            let d = out.part(first * size, (last * size).min(n));
            (d, cols.part(first * dim, last * dim), parts.part(first, last))
        };
        let blocks = d.chunks_mut(size).zip(cols.chunks_exact_mut(dim)).zip(sums);
        for (b, ((d, col), sum)) in blocks.enumerate() {
            *sum = block((first + b) * size, d, col);
        }
    });
    if blocks == 0 {
        gb.fill(0.0);
        return 0.0;
    }
    pairwise(blocks, |i, j| {
        let (to, from) = partial.split_at_mut(j * dim);
        to[i * dim..][..dim].iter_mut().zip(&from[..dim]).for_each(|(t, &f)| *t += f);
    });
    gb.copy_from_slice(&partial[..dim]);
    pairwise(blocks, |i, j| sums[i] += sums[j]);
    sums[0]
}

/// Adds items `0..n` into item 0 as a balanced tree, ((0 + 1) + (2 + 3)) + …, by calling
/// `add(i, j)` for item i += item j. For 2m items with m a power of two, the tree is the
/// sum of the two halves' trees: two data-parallel ranks, each summing m blocks of a
/// batch (batch 128 on two ranks: 8 blocks each), add what one process adds.
fn pairwise(n: usize, mut add: impl FnMut(usize, usize)) {
    let mut width = 1;
    while width < n {
        for i in (0..n - width).step_by(2 * width) {
            add(i, i + width);
        }
        width *= 2;
    }
}

/// The default output layer's loss and gradients in one pass over `[n, D]` buffers: for
/// the output y = sigmoid(pre) against `t`, writes ∂mean((y − t)²)/∂pre =
/// 2(y − t)·y(1 − y)/(n·D) into `d` and its column sums (the bias gradient) into `gb`, and
/// returns Σ(y − t)² (both sums by `by_blocks`).
pub fn mse_after_sigmoid<T: Elem>(
    y: &[T],
    t: &[f32],
    d: &mut [T],
    gb: &mut [f32],
    partial: &mut [f32],
) -> f64 {
    debug_assert!(y.len() == d.len() && t.len() == d.len() && d.len() % gb.len().max(1) == 0);
    let scale = 2.0 / y.len() as f32;
    by_blocks(d, gb, partial, |lo, d, col| {
        let (y, t) = (&y[lo..lo + d.len()], &t[lo..lo + d.len()]);
        mse_after_sigmoid_block(y, t, d, col, scale)
    })
}

/// A layer's bias gradient in one pass over its gradient `d` (`[n, D]`): the column sums
/// of `d` into `gb`. With `relu`, the output of the layer's ReLU, `d` first becomes the
/// gradient at the pre-activation in the same pass (zero where `relu` ≤ 0, as
/// `threshold_backward` has it).
pub fn backward_with_bias<T: Elem>(
    relu: Option<&[T]>,
    d: &mut [T],
    gb: &mut [f32],
    partial: &mut [f32],
) {
    debug_assert!(relu.is_none_or(|o| o.len() == d.len()) && d.len() % gb.len().max(1) == 0);
    by_blocks(d, gb, partial, |lo, d, col| {
        match relu {
            Some(out) => relu_backward_block(&out[lo..lo + d.len()], d, col),
            None => column_sums_block(d, col),
        }
        0.0
    });
}

host::widest! {
    /// `relu_backward_body` for the widest vector unit.
    fn relu_backward_block<T: Elem>(out: &[T], d: &mut [T], col: &mut [f32]) = relu_backward_body
}

host::widest! {
    /// `column_sums_body` for the widest vector unit.
    fn column_sums_block<T: Elem>(d: &[T], col: &mut [f32]) = column_sums_body
}

/// One block of `backward_with_bias` without an activation: `d`'s column sums.
#[inline(always)]
fn column_sums_body<T: Elem>(d: &[T], col: &mut [f32]) {
    col.fill(0.0);
    for d in d.chunks_exact(col.len()) {
        col.iter_mut().zip(d).for_each(|(c, &d)| *c += d.get());
    }
}

/// One block of `backward_with_bias` with a ReLU (whole rows of `col.len()` values).
#[inline(always)]
fn relu_backward_body<T: Elem>(out: &[T], d: &mut [T], col: &mut [f32]) {
    col.fill(0.0);
    for (d, out) in d.chunks_exact_mut(col.len()).zip(out.chunks_exact(col.len())) {
        for ((d, &o), c) in d.iter_mut().zip(out).zip(col.iter_mut()) {
            if o.get() <= 0.0 {
                *d = T::put(0.0);
            }
            *c += d.get();
        }
    }
}

host::widest! {
    /// `mse_after_sigmoid_body` for the widest vector unit.
    fn mse_after_sigmoid_block<T: Elem>(y: &[T], t: &[f32], d: &mut [T], col: &mut [f32], scale: f32)
        -> f64 = mse_after_sigmoid_body
}

/// One block of `mse_after_sigmoid` (whole rows of `col.len()` values): the gradient into `d`,
/// the column sums into `col`, and Σ(y − t)² as `LANES` partial sums added in order (one
/// running sum would make every value wait for the previous one's addition).
#[inline(always)]
fn mse_after_sigmoid_body<T: Elem>(
    y: &[T],
    t: &[f32],
    d: &mut [T],
    col: &mut [f32],
    scale: f32,
) -> f64 {
    const LANES: usize = 16;
    let mut sums = [0f64; LANES];
    col.fill(0.0);
    let dim = col.len();
    let whole = dim / LANES * LANES;
    for ((d, y), t) in d.chunks_exact_mut(dim).zip(y.chunks_exact(dim)).zip(t.chunks_exact(dim)) {
        let (d, rest) = d.split_at_mut(whole);
        let parts = d.chunks_exact_mut(LANES).zip(y.chunks_exact(LANES)).zip(t.chunks_exact(LANES));
        for (((d, y), t), col) in parts.zip(col.chunks_exact_mut(LANES)) {
            // Fixed-length arrays, so that the lanes become one vector.
            let (d, col): (&mut [T; LANES], &mut [f32; LANES]) =
                (d.try_into().expect("LANES"), col.try_into().expect("LANES"));
            let (y, t): (&[T; LANES], &[f32; LANES]) =
                (y.try_into().expect("LANES"), t.try_into().expect("LANES"));
            for k in 0..LANES {
                sums[k] += mse_value(y[k].get(), t[k], scale, &mut d[k], &mut col[k]);
            }
        }
        let tail = rest.iter_mut().zip(&y[whole..]).zip(&t[whole..]).zip(&mut col[whole..]);
        for (k, (((d, &y), &t), col)) in tail.enumerate() {
            sums[k] += mse_value(y.get(), t, scale, d, col);
        }
    }
    sums.iter().sum()
}

/// One value of `mse_after_sigmoid`: its gradient into `d` and added to `col` (unrounded
/// where `d` is bf16); (y − t)².
#[inline(always)]
fn mse_value<T: Elem>(y: f32, t: f32, scale: f32, d: &mut T, col: &mut f32) -> f64 {
    let e = y - t;
    let g = scale * e * (y * (1.0 - y));
    *d = T::put(g);
    *col += g;
    (e * e) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;
    use crate::data::spec::{Color, DataSpec, ImageSpec};
    use crate::model::Autoencoder;
    use tch::{Device, Kind};

    fn mlp(hidden: Vec<i64>) -> Layers {
        Layers::Mlp { hidden, tied_weights: false }
    }

    fn gray(height: i64, width: i64) -> DataSpec {
        DataSpec::Image(ImageSpec::gray(height, width))
    }

    /// One step through autograd and one through `MlpStep` from the same weights: the
    /// losses and every gradient agree.
    fn compare(activation: Activation, loss: Loss, l1_latent: f64, trim: f64) {
        let _rng = crate::rng_lock();
        tch::manual_seed(11);
        // Colour 4×5 images: the step sees only the 60 values per image.
        let input = DataSpec::Image(ImageSpec { color: Color::Rgb, ..ImageSpec::gray(4, 5) });
        let model_cfg = ModelConfig {
            input,
            layers: mlp(vec![12, 7]),
            latent: 3,
            activation,
            ..Default::default()
        };
        let train = TrainConfig { loss, l1_latent, trim, ..Default::default() };
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Autoencoder::new(&vs.root(), &model_cfg);
        let mut opt = FlatAdam::new(&vs, 1e-3, 0.0);
        let x = Tensor::rand([6, 60], (Kind::Float, Device::Cpu));
        let input = (&x + Tensor::randn_like(&x) * 0.2).clamp(0.0, 1.0);

        let (expected, _) = crate::train::autograd_loss(&model, &input, &x, &train);
        opt.backward(&expected);
        let autograd = opt.flat_grad().copy();

        let mut step = MlpStep::new(&vs, &model_cfg, &train, &opt, 8).expect("an MLP");
        let _ = opt.flat_grad().shallow_clone().fill_(f64::NAN);
        let got = step.forward_backward(&input, &x);
        let (a, b) = (expected.double_value(&[]), got.double_value(&[]));
        assert!((a - b).abs() < 1e-6 * a.abs(), "{activation:?} {loss:?}: loss {a} vs {b}");
        let diff = (opt.flat_grad() - &autograd).abs().max().double_value(&[]);
        let scale = autograd.abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale,
            "{activation:?} {loss:?} l1 {l1_latent} trim {trim}: grads differ by {diff}"
        );
    }

    #[test]
    fn gradients_match_autograd_for_every_activation_loss_and_trim() {
        for act in [Activation::Relu, Activation::LeakyRelu, Activation::Tanh, Activation::Gelu] {
            compare(act, Loss::Mse, 0.0, 0.0);
        }
        compare(Activation::Relu, Loss::Bce, 0.0, 0.0);
        compare(Activation::Relu, Loss::Mse, 0.05, 0.0);
        // The trimmed loss: 2 of the 6 rows left out, for both losses and with the L1 term.
        compare(Activation::Relu, Loss::Mse, 0.0, 0.34);
        compare(Activation::Tanh, Loss::Bce, 0.05, 0.34);
    }

    #[test]
    fn the_fused_output_matches_libtorch_and_does_not_depend_on_the_split() {
        let _rng = crate::rng_lock();
        tch::manual_seed(13);
        // 128 × 784, the default batch: 16 blocks of 8 rows, split into several ranges.
        let y = Tensor::rand([128, 784], (Kind::Float, Device::Cpu)).sigmoid();
        let t = Tensor::rand([128, 784], (Kind::Float, Device::Cpu));
        let loss = y.mse_loss(&t, Reduction::Mean).double_value(&[]);
        let d_ref = Tensor::sigmoid_backward(
            &y.mse_loss_backward(&Tensor::from(1f32), &t, Reduction::Mean),
            &y,
        );
        let gb_ref = d_ref.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        let flat = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        let (yv, tv) = (flat(&y), flat(&t));
        let close = |got: &[f32], want: &Tensor, what: &str| {
            let got = Tensor::from_slice(got).view_as(want);
            let diff = (&got - want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]);
            assert!(diff < 1e-5 * scale, "{what} off by {diff} (largest {scale})");
        };
        same_bits_at_1_2_3_threads(|threads| {
            let (mut d, mut gb) = (vec![f32::NAN; yv.len()], vec![f32::NAN; 784]);
            let mut partial = vec![f32::NAN; 16 * 784];
            let sum = mse_after_sigmoid(&yv, &tv, &mut d, &mut gb, &mut partial);
            let mean = sum / yv.len() as f64;
            assert!((mean - loss).abs() < 1e-6 * loss, "{threads} threads: {mean} vs {loss}");
            close(&d, &d_ref, "gradient");
            close(&gb, &gb_ref, "bias gradient");
            (sum.to_bits(), bits(&d), bits(&gb))
        });
    }

    #[test]
    fn pairwise_sums_add_the_halves_of_a_power_of_two_split() {
        // 1e8, 1, −1e8, 3, …: small values that vanish or survive by the order of addition.
        let v: Vec<f32> = (0..16).map(|i| [1e8, 1.0, -1e8, 3.0][i % 4]).collect();
        let tree = |v: &[f32]| {
            let mut v = v.to_vec();
            pairwise(v.len(), |i, j| v[i] += v[j]);
            v[0]
        };
        let whole = tree(&v);
        assert_eq!(whole.to_bits(), (tree(&v[..8]) + tree(&v[8..])).to_bits());
        assert_eq!(tree(&v[..4]).to_bits(), ((v[0] + v[1]) + (v[2] + v[3])).to_bits());
        // Odd and uneven counts: the same tree with the leftover items joining late.
        assert_eq!(tree(&v[..1]).to_bits(), v[0].to_bits());
        assert_eq!(tree(&v[..3]).to_bits(), ((v[0] + v[1]) + v[2]).to_bits());
        let six = ((v[0] + v[1]) + (v[2] + v[3])) + (v[4] + v[5]);
        assert_eq!(tree(&v[..6]).to_bits(), six.to_bits());
        let mut none: Vec<f32> = Vec::new();
        pairwise(0, |i, j| none[i] += none[j]);
        let in_order = v.iter().fold(0f32, |a, &x| a + x);
        assert_ne!(whole.to_bits(), in_order.to_bits(), "the values do not test the order");
    }

    /// The bits of a float slice, to compare exactly.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|v| v.to_bits()).collect()
    }

    /// Runs `run(threads)` at 1, 2 and 3 threads and asserts the same result each time.
    fn same_bits_at_1_2_3_threads<T: PartialEq>(mut run: impl FnMut(i32) -> T) {
        let runs: Vec<T> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                tch::set_num_threads(threads);
                run(threads)
            })
            .collect();
        tch::set_num_threads(2);
        assert!(runs.windows(2).all(|w| w[0] == w[1]), "the bits change with the thread count");
    }

    #[test]
    fn the_relu_pass_matches_libtorch_and_does_not_depend_on_the_split() {
        let _rng = crate::rng_lock();
        tch::manual_seed(14);
        // 100 rows of 256 (a short last block), half of them at or below zero.
        let out = Tensor::randn([100, 256], (Kind::Float, Device::Cpu)).relu();
        let g = Tensor::randn([100, 256], (Kind::Float, Device::Cpu));
        let d_ref = out.threshold_backward(&g, 0.0);
        let gb_ref = d_ref.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        let flat = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        let (o, want_d, want_gb) = (flat(&out), flat(&d_ref), flat(&gb_ref));
        same_bits_at_1_2_3_threads(|threads| {
            let (mut d, mut gb, mut partial) =
                (flat(&g), vec![f32::NAN; 256], vec![f32::NAN; 13 * 256]);
            backward_with_bias(Some(&o), &mut d, &mut gb, &mut partial);
            assert_eq!(d, want_d, "{threads} threads: the gradient is not threshold_backward's");
            let off = gb.iter().zip(&want_gb).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(off < 1e-5, "{threads} threads: bias gradient off by {off}");
            let with_relu = bits(&gb);
            // Without an activation: the column sums alone, the gradient untouched.
            let mut d = flat(&g);
            backward_with_bias(None, &mut d, &mut gb, &mut partial);
            assert_eq!(d, flat(&g), "{threads} threads: the gradient changed");
            let sums = flat(&g.sum_dim_intlist([0i64].as_slice(), false, Kind::Float));
            let off = gb.iter().zip(&sums).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(off < 1e-5, "{threads} threads: column sums off by {off}");
            (with_relu, bits(&gb))
        });
    }

    #[test]
    fn bf16_rounds_as_libtorch_rounds() {
        let _rng = crate::rng_lock();
        tch::manual_seed(15);
        // Random values over many magnitudes, exact ties both ways, zeros, infinities,
        // subnormals and the largest finite value.
        let mut v = Vec::<f32>::try_from(
            Tensor::randn([4096], (Kind::Float, Device::Cpu))
                * Tensor::randint_low(-30, 30, [4096], (Kind::Float, Device::Cpu)).exp2(),
        )
        .unwrap();
        let ties = [0x3F80_8000u32, 0x3F81_8000, 0xBF80_8000, 0x0000_8000, 0x0001_8000];
        v.extend(ties.map(f32::from_bits));
        v.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -3e-39, f32::MAX]);
        let theirs = Tensor::from_slice(&v).to_kind(Kind::BFloat16);
        let theirs_bits = Vec::<i16>::try_from(theirs.view_dtype(Kind::Int16)).unwrap();
        let ours: Vec<host::Bf16> = v.iter().map(|&x| host::Bf16::put(x)).collect();
        for ((x, ours), theirs) in v.iter().zip(&ours).zip(&theirs_bits) {
            assert_eq!(ours.0, *theirs as u16, "{x:e} ({:#010x})", x.to_bits());
        }
        let widened = Vec::<f32>::try_from(theirs.to_kind(Kind::Float)).unwrap();
        assert_eq!(bits(&ours.iter().map(|b| b.get()).collect::<Vec<_>>()), bits(&widened));
        assert!(host::Bf16::put(f32::NAN).get().is_nan());
    }

    #[test]
    fn the_bf16_passes_are_the_fp32_ones_rounded_once() {
        let _rng = crate::rng_lock();
        tch::manual_seed(16);
        let round = |t: Tensor| {
            let v = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
            let b: Vec<host::Bf16> = v.iter().map(|&x| host::Bf16::put(x)).collect();
            (b.iter().map(|b| b.get()).collect::<Vec<f32>>(), b)
        };
        let rounded = |v: &[f32]| v.iter().map(|&x| host::Bf16::put(x).0).collect::<Vec<_>>();
        let raw = |v: &[host::Bf16]| v.iter().map(|b| b.0).collect::<Vec<_>>();
        let (n, dim) = (100usize, 256usize);
        let shape = |a: usize| [a as i64];
        let matrix = [n as i64, dim as i64];
        // Forward: the bias and ReLU over a bf16 product.
        let (x32, mut x16) = round(Tensor::randn(matrix, (Kind::Float, Device::Cpu)));
        let b =
            Vec::<f32>::try_from(Tensor::randn(shape(dim), (Kind::Float, Device::Cpu))).unwrap();
        let mut y32 = x32.clone();
        bias_relu(&mut y32, &b);
        bias_relu(&mut x16, &b);
        assert_eq!(raw(&x16), rounded(&y32), "bias and ReLU");
        // Backward: the ReLU's mask and the bias gradient, summed before rounding.
        let (out32, out16) =
            (y32.iter().map(|&y| host::Bf16::put(y).get()).collect::<Vec<_>>(), x16);
        let (g32, g16) = round(Tensor::randn(matrix, (Kind::Float, Device::Cpu)));
        let mut partial = vec![f32::NAN; 13 * dim];
        for relu in [true, false] {
            let (mut d32, mut d16) = (g32.clone(), g16.clone());
            let (mut gb32, mut gb16) = (vec![f32::NAN; dim], vec![f32::NAN; dim]);
            backward_with_bias(relu.then_some(out32.as_slice()), &mut d32, &mut gb32, &mut partial);
            backward_with_bias(relu.then_some(out16.as_slice()), &mut d16, &mut gb16, &mut partial);
            assert_eq!(raw(&d16), rounded(&d32), "relu {relu}: gradient");
            assert_eq!(bits(&gb16), bits(&gb32), "relu {relu}: bias gradient");
        }
        // The fused output against an fp32 target.
        let (y32, y16) = round(Tensor::rand(matrix, (Kind::Float, Device::Cpu)));
        let t =
            Vec::<f32>::try_from(Tensor::rand(shape(n * dim), (Kind::Float, Device::Cpu))).unwrap();
        let (mut d32, mut d16) = (vec![f32::NAN; n * dim], vec![host::Bf16(0); n * dim]);
        let (mut gb32, mut gb16) = (vec![f32::NAN; dim], vec![f32::NAN; dim]);
        let s32 = mse_after_sigmoid(&y32, &t, &mut d32, &mut gb32, &mut partial);
        let s16 = mse_after_sigmoid(&y16, &t, &mut d16, &mut gb16, &mut partial);
        assert_eq!(s16.to_bits(), s32.to_bits(), "loss");
        assert_eq!(raw(&d16), rounded(&d32), "output gradient");
        assert_eq!(bits(&gb16), bits(&gb32), "output bias gradient");
    }

    /// The loss and flat gradient of one step of `model_cfg` at each precision, from the
    /// same weights (which the steps must leave alone).
    fn fp32_and_bf16_steps(model_cfg: &ModelConfig, base: &TrainConfig) -> Vec<(f64, Tensor)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = crate::model::Autoencoder::new(&vs.root(), model_cfg);
        let opt = FlatAdam::new(&vs, 1e-3, 0.0);
        let x = Tensor::rand([16, model_cfg.input_dim()], (Kind::Float, Device::Cpu));
        let step = |precision| {
            let train = TrainConfig { precision, ..base.clone() };
            let mut step = MlpStep::new(&vs, model_cfg, &train, &opt, 16).unwrap();
            let before = opt.flat().copy();
            // Every gradient must come from this step, not the one before.
            let _ = opt.flat_grad().shallow_clone().fill_(f64::NAN);
            let loss = step.forward_backward(&x, &x);
            assert_eq!(loss.kind(), Kind::Float);
            assert!(opt.flat().equal(&before), "{precision:?}: the step does not update");
            (loss.double_value(&[]), opt.flat_grad().copy())
        };
        [Precision::Fp32, Precision::Bf16].map(step).into()
    }

    #[test]
    fn bf16_step_tracks_the_fp32_gradient_and_leaves_the_master_weights_alone() {
        let _rng = crate::rng_lock();
        tch::manual_seed(12);
        // 256-256-4 mirrored: the two 256×256 layers (65,536 weights) compute in bf16, the
        // two small ones in fp32, so the batch crosses between the kinds both ways.
        let model_cfg = ModelConfig {
            input: gray(16, 16),
            layers: mlp(vec![256]),
            latent: 4,
            ..Default::default()
        };
        // The fused output and ReLU passes in bf16; then the unfused output (cross-entropy,
        // a trimmed loss) and other activations, whose bias sums are the passes in bf16 too.
        let cases = [
            (Activation::Relu, Loss::Mse, 0.0),
            (Activation::Gelu, Loss::Bce, 0.0),
            (Activation::Tanh, Loss::Mse, 0.25),
        ];
        for (activation, loss, trim) in cases {
            let model_cfg = ModelConfig { activation, ..model_cfg.clone() };
            let train = TrainConfig { loss, trim, ..Default::default() };
            let runs = fp32_and_bf16_steps(&model_cfg, &train);
            // bf16 keeps 8 bits of mantissa: agreement to a few percent is the
            // expectation, exact agreement would mean bf16 was not used.
            let rel = |a: f64, b: f64| (a - b).abs() / a.abs();
            let what = format!("{activation:?} {loss:?} trim {trim}");
            assert!(rel(runs[0].0, runs[1].0) < 0.02, "{what}: losses {runs:?}");
            let diff = (&runs[0].1 - &runs[1].1).norm().double_value(&[]);
            let norm = runs[0].1.norm().double_value(&[]);
            assert!(diff / norm < 0.05 && diff > 0.0, "{what}: gradient error {}", diff / norm);
        }

        // A network of small layers only computes all of it in fp32: the same bits.
        let small = ModelConfig { input: gray(8, 8), layers: mlp(vec![32]), ..model_cfg };
        let runs = fp32_and_bf16_steps(&small, &TrainConfig::default());
        assert_eq!(runs[0].0.to_bits(), runs[1].0.to_bits());
        assert!(runs[0].1.equal(&runs[1].1), "a small network's bf16 step is not its fp32 one");
    }

    #[test]
    fn other_models_use_autograd() {
        for cfg in [
            ModelConfig {
                layers: Layers::Mlp { hidden: vec![8], tied_weights: true },
                ..Default::default()
            },
            ModelConfig {
                layers: Layers::Conv(crate::config::ConvLayers::plain(vec![4])),
                ..Default::default()
            },
            ModelConfig { variational: true, ..Default::default() },
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = Autoencoder::new(&vs.root(), &cfg);
            let opt = FlatAdam::new(&vs, 1e-3, 0.0);
            assert!(MlpStep::new(&vs, &cfg, &TrainConfig::default(), &opt, 4).is_none());
        }
    }
}
