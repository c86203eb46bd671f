//! Adam (with decoupled weight decay, i.e. AdamW) over one flat parameter buffer.
//!
//! At construction every trainable variable is re-pointed (`set_data`) at a slice of one
//! contiguous buffer, so the update is a handful of tensor ops over that buffer instead of
//! a loop of small ops per variable, and the whole optimiser state is three tensors and a
//! step count that a checkpoint can save.

use crate::host::{self, parallel_for, Disjoint};
use tch::{nn, Kind, Tensor};

#[derive(Debug)]
pub struct FlatAdam {
    params: Vec<Tensor>,
    /// Where each of `params` starts in the flat buffers.
    offsets: Vec<i64>,
    /// `[P]`: every parameter, in `params` order.
    flat: Tensor,
    /// First and second moment estimates, `[P]` each.
    m: Tensor,
    v: Tensor,
    /// The gradient of every parameter, flattened in the same order.
    grad: Tensor,
    /// Work buffer for the update's denominator (device path).
    denom: Tensor,
    step: i64,
    /// Update with the Rust loop (CPU buffers) rather than tensor operations.
    host: bool,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    /// The first this many parameters are held fixed (`freeze_first`).
    frozen: i64,
    /// A low-precision copy of `flat` that autograd steps compute with (`compute_in`).
    low: Option<Low>,
}

/// The weights in a narrower format for a step's forward and backward: `flat` cast into
/// `copy` before the step (`lower`), the variables pointed at its slices for the step and
/// back at the fp32 ones after it (`raise`). The gradients come back in the narrow format
/// and are widened into the fp32 flat gradient; the update stays fp32 (the master copy).
#[derive(Debug)]
struct Low {
    copy: Tensor,
    /// `params`' slices of `copy`, and of `flat`.
    narrow: Vec<Tensor>,
    wide: Vec<Tensor>,
}

impl FlatAdam {
    /// Takes over the trainable variables of `vs` (their values are kept).
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64) -> Self {
        let mut params = vs.trainable_variables();
        let flat = tch::no_grad(|| {
            Tensor::cat(&params.iter().map(|p| p.detach().reshape([-1])).collect::<Vec<_>>(), 0)
        });
        let mut offsets = Vec::with_capacity(params.len());
        let mut offset = 0;
        for p in params.iter_mut() {
            let n = p.numel() as i64;
            let size = p.size();
            p.set_data(&view_at(&flat, offset, &size));
            offsets.push(offset);
            offset += n;
        }
        FlatAdam {
            params,
            offsets,
            m: flat.zeros_like(),
            v: flat.zeros_like(),
            grad: flat.zeros_like(),
            denom: flat.zeros_like(),
            host: host::is_host(&flat, Kind::Float),
            flat,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            frozen: 0,
            low: None,
        }
    }

    /// Steps through autograd compute in `kind` (bf16) from now on: `lower` before the
    /// forward pass, `raise` after `backward`. `Kind::Float` undoes it.
    pub fn compute_in(&mut self, kind: Kind) {
        self.low = (kind != Kind::Float).then(|| {
            let copy = self.flat.to_kind(kind);
            let slices = |flat: &Tensor| -> Vec<Tensor> {
                let sizes = self.params.iter().map(|p| p.size());
                self.offsets.iter().zip(sizes).map(|(&o, s)| view_at(flat, o, &s)).collect()
            };
            Low { narrow: slices(&copy), wide: slices(&self.flat), copy }
        });
    }

    /// The kind steps compute in.
    pub fn compute_kind(&self) -> Kind {
        self.low.as_ref().map_or(Kind::Float, |l| l.copy.kind())
    }

    /// Before a step's forward pass: the weights cast into the narrow copy, which the
    /// variables now point at (nothing without `compute_in`).
    pub fn lower(&mut self) {
        if let Some(low) = &mut self.low {
            tch::no_grad(|| low.copy.copy_(&self.flat));
            for (p, narrow) in self.params.iter_mut().zip(&low.narrow) {
                p.set_data(narrow);
            }
        }
    }

    /// After a step's `backward`: the variables point at the fp32 weights again.
    pub fn raise(&mut self) {
        if let Some(low) = &self.low {
            for (p, wide) in self.params.iter_mut().zip(&low.wide) {
                p.set_data(wide);
            }
        }
    }

    /// Holds the first `n` parameters of the flat buffer (the variables created first)
    /// fixed: updates, weight decay included, touch only the rest. Their gradients may be
    /// left uncomputed (variables without `requires_grad`).
    pub fn freeze_first(&mut self, n: i64) {
        self.frozen = n.clamp(0, self.len());
    }

    /// Number of scalar parameters.
    pub fn len(&self) -> i64 {
        self.flat.numel() as i64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of the flat gradient that belongs to `param` (one of the variables taken
    /// over, or a shallow clone of one), shaped like it: code that computes gradients
    /// itself writes them there and then calls `apply`.
    pub fn grad_view(&self, param: &Tensor) -> Option<Tensor> {
        self.slot(param).map(|(offset, size)| view_at(&self.grad, offset, &size))
    }

    /// Where `param` lives in the flat buffers: its offset and shape.
    pub fn slot(&self, param: &Tensor) -> Option<(i64, Vec<i64>)> {
        let i = self.params.iter().position(|p| p.data_ptr() == param.data_ptr())?;
        Some((self.offsets[i], self.params[i].size()))
    }

    /// Back-propagates `loss` and applies one update; see `apply` for `clip`.
    pub fn backward_step(&mut self, loss: &Tensor, clip: Option<f64>) -> Result<(), f64> {
        self.backward(loss);
        self.apply(clip)
    }

    /// The state a checkpoint saves (tensors shared, not copied).
    pub fn state(&self) -> OptimState {
        OptimState {
            step: self.step,
            params: self.flat.shallow_clone(),
            m: self.m.shallow_clone(),
            v: self.v.shallow_clone(),
        }
    }

    /// Continues from a saved state: parameters, moments and step count.
    pub fn load_state(&mut self, state: &OptimState) -> anyhow::Result<()> {
        for (name, t) in [("params", &state.params), ("adam.m", &state.m), ("adam.v", &state.v)] {
            if t.size() != self.flat.size() || t.kind() != self.flat.kind() {
                anyhow::bail!(
                    "checkpoint tensor {name} is {:?} {:?}, the model needs {:?} {:?}",
                    t.kind(),
                    t.size(),
                    self.flat.kind(),
                    self.flat.size()
                );
            }
        }
        tch::no_grad(|| {
            self.flat.copy_(&state.params);
            self.m.copy_(&state.m);
            self.v.copy_(&state.v);
        });
        self.step = state.step;
        Ok(())
    }

    /// Back-propagates `loss` into the flat gradient.
    pub fn backward(&mut self, loss: &Tensor) {
        // The gradients are taken from autograd as it computes them, not accumulated into
        // each variable's `.grad` (which would need them zeroed first and summed into):
        // about 150 small operations a step fewer. `run_backward` starts from ones and
        // skips a root without a gradient, which `backward` refused: a loss that is not one
        // differentiable value is a bug, not zero gradients.
        assert!(loss.requires_grad() && loss.numel() == 1, "the loss is one differentiable value");
        let live: Vec<&Tensor> = self.params.iter().filter(|p| p.requires_grad()).collect();
        let mut taken = Tensor::run_backward(&[loss], &live, false, false).into_iter();
        tch::no_grad(|| {
            // A variable the loss does not reach (or one frozen without gradients) has no
            // gradient: its slot is zero.
            let grads: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| match p.requires_grad().then(|| taken.next()).flatten() {
                    Some(g) if g.defined() => g.reshape([-1]),
                    _ => p.zeros_like().reshape([-1]),
                })
                .collect();
            let _ = Tensor::cat_out(&self.grad, &grads, 0);
        });
    }

    /// The flat gradient, `[P]`.
    pub fn flat_grad(&self) -> &Tensor {
        &self.grad
    }

    /// One AdamW update from the flat gradient; with `clip`, the gradient's L2 norm is
    /// first scaled down to at most that value, and a non-finite norm is refused (`Err`
    /// with the norm, nothing updated). On the CPU this is one pass in Rust over the four
    /// buffers; elsewhere a handful of in-place tensor operations. No tensor of the
    /// parameters' size is allocated per step either way.
    pub fn apply(&mut self, clip: Option<f64>) -> Result<(), f64> {
        let norm = match clip {
            Some(_) if self.host => {
                // SAFETY: no libtorch operation runs while the slice lives.
                Some(norm(unsafe { host::f32_mut(&self.grad) }))
            }
            Some(_) => Some(tch::no_grad(|| self.grad.norm().double_value(&[]))),
            None => None,
        };
        if let Some(n) = norm.filter(|n| !n.is_finite()) {
            return Err(n);
        }
        self.step += 1;
        let h = Hyper {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            decay: 1.0 - self.lr * self.weight_decay,
            bc1: 1.0 - self.beta1.powi(self.step as i32),
            bc2: 1.0 - self.beta2.powi(self.step as i32),
        };
        let f = self.frozen as usize;
        if self.host {
            // SAFETY: the four buffers are distinct allocations owned by this optimiser; no
            // libtorch operation runs while the slices live.
            unsafe {
                let g = &host::f32_mut(&self.grad)[f..];
                let scale = clip.zip(norm).map_or(1.0, |(max, n)| clip_scale(n, max));
                let (p, m, v) =
                    (host::f32_mut(&self.flat), host::f32_mut(&self.m), host::f32_mut(&self.v));
                adamw_host(&mut p[f..], g, &mut m[f..], &mut v[f..], scale as f32, &h);
            }
            return Ok(());
        }
        let live = |t: &Tensor| t.narrow(0, self.frozen, self.len() - self.frozen);
        let (mut flat, mut m, mut v, denom) =
            (live(&self.flat), live(&self.m), live(&self.v), live(&self.denom));
        tch::no_grad(|| {
            let mut g = live(&self.grad);
            if let Some((max, n)) = clip.zip(norm) {
                g *= clip_scale(n, max);
            }
            if self.weight_decay > 0.0 {
                let _ = flat.g_mul_scalar_(h.decay);
            }
            // m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²  (g scaled in place by √(1−β2))
            let _ = m.lerp_(&g, 1.0 - h.beta1);
            let _ = g.g_mul_scalar_((1.0 - h.beta2).sqrt());
            let _ = v.g_mul_scalar_(h.beta2);
            let _ = v.addcmul_(&g, &g);
            // θ ← θ − lr/bc1 · m / (√v/√bc2 + ε), the scalars folded into the denominator.
            let mut d = v.sqrt_out(&denom);
            let _ = d.g_mul_scalar_(1.0 / h.bc2.sqrt());
            let _ = d.g_add_scalar_(h.eps);
            let _ = d.g_mul_scalar_(-h.bc1 / h.lr);
            let _ = flat.addcdiv_(&m, &d);
        });
        Ok(())
    }

    /// The largest |parameter| (NaN when any is NaN): one pass, no host copy of the
    /// buffer.
    pub fn max_abs(&self) -> f64 {
        if self.host {
            // SAFETY: only read, and no libtorch operation runs meanwhile.
            let p = unsafe { host::f32_mut(&self.flat) };
            return p.iter().fold(0f32, |m, &x| if x.abs() > m || x.is_nan() { x.abs() } else { m })
                as f64;
        }
        tch::no_grad(|| {
            let (lo, hi) = (self.flat.min().double_value(&[]), self.flat.max().double_value(&[]));
            if lo.is_nan() || hi.is_nan() {
                f64::NAN
            } else {
                lo.abs().max(hi.abs())
            }
        })
    }

    /// The flat parameter buffer.
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// A copy of every parameter, for `restore`.
    pub fn snapshot(&self) -> Tensor {
        tch::no_grad(|| self.flat.copy())
    }

    /// Puts back the parameters of a `snapshot`.
    pub fn restore(&mut self, snapshot: &Tensor) {
        tch::no_grad(|| self.flat.copy_(snapshot));
    }
}

/// What a checkpoint keeps of the optimiser.
pub struct OptimState {
    pub step: i64,
    pub params: Tensor,
    pub m: Tensor,
    pub v: Tensor,
}

/// The `size`-shaped view of the flat `buffer` starting at `offset`.
pub fn view_at(buffer: &Tensor, offset: i64, size: &[i64]) -> Tensor {
    buffer.narrow(0, offset, size.iter().product()).view(size)
}

/// The scalars of one update.
struct Hyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// 1 − lr·weight_decay.
    decay: f64,
    /// Bias corrections 1 − β^t.
    bc1: f64,
    bc2: f64,
}

/// min(1, max / (‖g‖ + 1e-6)), as `clip_grad_norm_` computes it.
fn clip_scale(norm: f64, max: f64) -> f64 {
    (max / (norm + 1e-6)).min(1.0)
}

/// ‖g‖₂, accumulated in f64.
fn norm(g: &[f32]) -> f64 {
    g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt()
}

/// AdamW over host slices in one pass, split over libtorch's threads: every element is
/// updated on its own, so the split cannot change a bit of the result.
fn adamw_host(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], scale: f32, h: &Hyper) {
    // ~16k parameters (256 KiB over the four buffers) per range at least: below that a
    // thread's wake-up costs more than it saves.
    const GRAIN: usize = 1 << 14;
    let (p, m, v) = (Disjoint::new(p), Disjoint::new(m), Disjoint::new(v));
    parallel_for(g.len(), GRAIN, |lo, hi| {
        // SAFETY: the ranges of one parallel_for do not overlap.
        let (p, m, v) = unsafe { (p.part(lo, hi), m.part(lo, hi), v.part(lo, hi)) };
        adamw_widest(p, &g[lo..hi], m, v, scale, h)
    });
}

host::widest! {
    /// `adamw_body` for the widest vector unit (the arithmetic is element by element).
    fn adamw_widest(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], scale: f32, h: &Hyper)
        = adamw_body
}

#[inline(always)]
fn adamw_body(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], scale: f32, h: &Hyper) {
    let (b1, b2) = (h.beta1 as f32, h.beta2 as f32);
    let (w1, w2) = (1.0 - b1, 1.0 - b2);
    let sqrt_bc2 = h.bc2.sqrt() as f32;
    let step = (h.lr / h.bc1) as f32;
    let (eps, decay) = (h.eps as f32, h.decay as f32);
    // Operation for operation what torch.optim.AdamW (single-tensor) computes.
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g * scale;
        *m += w1 * (g - *m);
        *v = *v * b2 + w2 * g * g;
        *p = *p * decay - step * (*m / (v.sqrt() / sqrt_bc2 + eps));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{Module, OptimizerConfig};
    use tch::{Device, Kind};

    /// Trains the same tiny network with tch's Adam/AdamW and with FlatAdam.
    /// `flat`: None for tch's AdamW, Some(host) for FlatAdam with the Rust loop or the
    /// tensor operations.
    fn losses(flat: Option<bool>, wd: f64, clip: Option<f64>) -> (Vec<f64>, Tensor) {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = nn::seq()
            .add(nn::linear(vs.root() / "a", 6, 5, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(vs.root() / "b", 5, 6, Default::default()));
        let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
        let mut out = Vec::new();
        if let Some(host) = flat {
            let mut opt = FlatAdam::new(&vs, 0.01, wd);
            opt.host = host;
            for _ in 0..50 {
                let loss = net.forward(&x).mse_loss(&x, tch::Reduction::Mean);
                opt.backward_step(&loss, clip).unwrap();
                out.push(loss.double_value(&[]));
            }
        } else {
            let mut opt = nn::AdamW { wd, ..Default::default() }.build(&vs, 0.01).unwrap();
            for _ in 0..50 {
                let loss = net.forward(&x).mse_loss(&x, tch::Reduction::Mean);
                match clip {
                    Some(c) => opt.backward_step_clip_norm(&loss, c),
                    None => opt.backward_step(&loss),
                }
                out.push(loss.double_value(&[]));
            }
        }
        let w = vs.variables()["a.weight"].copy();
        (out, w)
    }

    #[test]
    fn matches_libtorch_adamw_step_for_step() {
        let _rng = crate::rng_lock();
        for (wd, clip) in [(0.0, None), (0.05, None), (0.0, Some(0.1))] {
            let (a, wa) = losses(None, wd, clip);
            for host in [true, false] {
                let (b, wb) = losses(Some(host), wd, clip);
                // Clipping scales by 0.1/‖g‖, and ‖g‖ is summed in a different order (f64 here,
                // f32 per tensor in tch): a few ulps per step, which 50 steps grow to ~1e-5.
                let tol = if clip.is_some() { 5e-5 } else { 1e-5 };
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (x - y).abs() <= tol * x.abs().max(1e-3),
                        "host {host} wd {wd} clip {clip:?} step {i}: {x} vs {y}"
                    );
                }
                assert!(a[49] < a[0] * 0.8, "the loss falls");
                let diff = (&wa - wb).abs().max().double_value(&[]);
                assert!(diff < 1e-4, "weights differ by {diff}");
            }
        }
    }

    #[test]
    fn a_non_finite_gradient_norm_is_refused_before_anything_changes() {
        let _rng = crate::rng_lock();
        for host in [true, false] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = nn::linear(vs.root() / "l", 3, 2, Default::default());
            let mut opt = FlatAdam::new(&vs, 0.1, 0.0);
            opt.host = host;
            let before = opt.flat().copy();
            let _ = opt.flat_grad().shallow_clone().fill_(f64::INFINITY);
            assert_eq!(opt.apply(Some(1.0)), Err(f64::INFINITY), "host {host}");
            assert!(opt.flat().equal(&before) && opt.state().step == 0);
            let _ = opt.flat_grad().shallow_clone().fill_(0.5);
            assert_eq!(opt.apply(Some(1.0)), Ok(()));
            assert!(!opt.flat().equal(&before) && opt.max_abs().is_finite());
        }
    }

    #[test]
    fn the_update_is_the_same_bits_at_every_vector_width_and_thread_count() {
        // 100k parameters: split over the threads (GRAIN 16k), odd length for the tails.
        let n = 100_003;
        let wave = |k: f32| (0..n).map(move |i| (i as f32 * k).sin() * 0.1).collect::<Vec<_>>();
        let (g, p0, m0) = (wave(0.37), wave(0.11), wave(0.23));
        let v0: Vec<f32> = wave(0.05).iter().map(|x| x * x).collect();
        let h = Hyper {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decay: 1.0 - 1e-3 * 0.01,
            bc1: 1.0 - 0.9f64.powi(3),
            bc2: 1.0 - 0.999f64.powi(3),
        };
        type Update<'a> = &'a dyn Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]);
        let run = |f: Update| {
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            f(&mut p, &g, &mut m, &mut v);
            [p, m, v].map(|x| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>())
        };
        let scalar = run(&|p, g, m, v| adamw_body(p, g, m, v, 0.7, &h));
        assert_eq!(run(&|p, g, m, v| adamw_widest(p, g, m, v, 0.7, &h)), scalar);
        for threads in [1, 2, 3] {
            tch::set_num_threads(threads);
            assert_eq!(run(&|p, g, m, v| adamw_host(p, g, m, v, 0.7, &h)), scalar, "{threads}");
        }
        tch::set_num_threads(2);
    }

    /// Every slot of the flat gradient is written by `backward`: the gradient where the loss
    /// reaches a variable, zero where it does not or the variable is frozen, nothing left
    /// from before.
    #[test]
    fn backward_writes_every_slot() {
        let _rng = crate::rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let used = root.var("used", &[3], nn::Init::Const(1.0));
        let frozen = root.var("frozen", &[2], nn::Init::Const(1.0));
        let unreached = root.var("unreached", &[2], nn::Init::Const(1.0));
        let mut opt = FlatAdam::new(&vs, 0.1, 0.0);
        tch::no_grad(|| {
            let _ = opt.flat_grad().shallow_clone().fill_(7.0);
        });
        let _ = frozen.set_requires_grad(false);
        opt.backward(&((&used * 2.0).sum(Kind::Float) + (&frozen * 3.0).sum(Kind::Float)));
        let slot = |p: &Tensor| Vec::<f32>::try_from(opt.grad_view(p).unwrap()).unwrap();
        assert_eq!(slot(&used), vec![2.0; 3]);
        assert_eq!(slot(&frozen), vec![0.0; 2]);
        assert_eq!(slot(&unreached), vec![0.0; 2]);
        let detached = (&used * 2.0).sum(Kind::Float).detach();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            opt.backward(&detached);
        }));
        assert!(refused.is_err(), "a loss without a gradient is refused");
    }

    #[test]
    fn variables_become_views_of_one_buffer() {
        let _rng = crate::rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "l", 3, 2, Default::default());
        let before: f64 =
            vs.variables().values().map(|v| v.sum(Kind::Double).double_value(&[])).sum();
        let opt = FlatAdam::new(&vs, 0.1, 0.0);
        assert_eq!(opt.len(), 3 * 2 + 2);
        let after: f64 =
            vs.variables().values().map(|v| v.sum(Kind::Double).double_value(&[])).sum();
        assert!((before - after).abs() < 1e-9, "values are kept");
        tch::no_grad(|| {
            let _ = opt.flat().shallow_clone().fill_(1.0);
        });
        assert!(
            vs.variables().values().all(|v| v.min().double_value(&[]) == 1.0),
            "the variables see the buffer"
        );
    }
}
