//! Adam (with decoupled weight decay, i.e. AdamW) over one flat parameter buffer.
//!
//! At construction every trainable variable is re-pointed (`set_data`) at a slice of one
//! contiguous buffer, so the update is a handful of tensor ops over that buffer instead of
//! a loop of small ops per variable, and the whole optimiser state is three tensors and a
//! step count that a checkpoint can save.

use tch::{nn, Tensor};

#[derive(Debug)]
pub struct FlatAdam {
    params: Vec<Tensor>,
    /// `[P]`: every parameter, in `params` order.
    flat: Tensor,
    /// First and second moment estimates, `[P]` each.
    m: Tensor,
    v: Tensor,
    /// Work buffers: the flattened gradient and the update's denominator.
    grad: Tensor,
    denom: Tensor,
    step: i64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl FlatAdam {
    /// Takes over the trainable variables of `vs` (their values are kept).
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64) -> Self {
        let mut params = vs.trainable_variables();
        let flat = tch::no_grad(|| {
            Tensor::cat(&params.iter().map(|p| p.detach().reshape([-1])).collect::<Vec<_>>(), 0)
        });
        let mut offset = 0;
        for p in params.iter_mut() {
            let n = p.numel() as i64;
            let size = p.size();
            p.set_data(&flat.narrow(0, offset, n).view(size.as_slice()));
            offset += n;
        }
        FlatAdam {
            params,
            m: flat.zeros_like(),
            v: flat.zeros_like(),
            grad: flat.zeros_like(),
            denom: flat.zeros_like(),
            flat,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// Number of scalar parameters.
    pub fn len(&self) -> i64 {
        self.flat.numel() as i64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Back-propagates `loss` and applies one update; with `clip`, the gradient's L2 norm
    /// is first scaled down to at most that value (on the device, no host round trip).
    /// Works in preallocated buffers: no tensor of the parameters' size is allocated per
    /// step.
    pub fn backward_step(&mut self, loss: &Tensor, clip: Option<f64>) {
        for p in self.params.iter_mut() {
            p.zero_grad();
        }
        loss.backward();
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self.params.iter().map(|p| p.grad().reshape([-1])).collect();
            let mut g = Tensor::cat_out(&self.grad, &grads, 0);
            if let Some(max) = clip {
                let scale = (g.norm() + 1e-6).reciprocal().multiply_scalar(max).clamp_max(1.0);
                g *= scale;
            }
            self.step += 1;
            let bc1 = 1.0 - self.beta1.powi(self.step as i32);
            let bc2 = 1.0 - self.beta2.powi(self.step as i32);
            if self.weight_decay > 0.0 {
                let _ = self.flat.g_mul_scalar_(1.0 - self.lr * self.weight_decay);
            }
            // m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²  (g scaled in place by √(1−β2))
            let _ = self.m.lerp_(&g, 1.0 - self.beta1);
            let _ = g.g_mul_scalar_((1.0 - self.beta2).sqrt());
            let _ = self.v.g_mul_scalar_(self.beta2);
            let _ = self.v.addcmul_(&g, &g);
            // θ ← θ − lr/bc1 · m / (√v/√bc2 + ε), the scalars folded into the denominator.
            let mut d = self.v.sqrt_out(&self.denom);
            let _ = d.g_mul_scalar_(1.0 / bc2.sqrt());
            let _ = d.g_add_scalar_(self.eps);
            let _ = d.g_mul_scalar_(-bc1 / self.lr);
            let _ = self.flat.addcdiv_(&self.m, &d);
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{Module, OptimizerConfig};
    use tch::{Device, Kind};

    /// Trains the same tiny network with tch's Adam/AdamW and with FlatAdam.
    fn losses(flat: bool, wd: f64, clip: Option<f64>) -> (Vec<f64>, Tensor) {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = nn::seq()
            .add(nn::linear(vs.root() / "a", 6, 5, Default::default()))
            .add_fn(|x| x.tanh())
            .add(nn::linear(vs.root() / "b", 5, 6, Default::default()));
        let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
        let mut out = Vec::new();
        if flat {
            let mut opt = FlatAdam::new(&vs, 0.01, wd);
            for _ in 0..50 {
                let loss = net.forward(&x).mse_loss(&x, tch::Reduction::Mean);
                opt.backward_step(&loss, clip);
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
            let (a, wa) = losses(false, wd, clip);
            let (b, wb) = losses(true, wd, clip);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                    "wd {wd} clip {clip:?} step {i}: {x} vs {y}"
                );
            }
            assert!(a[49] < a[0] * 0.8, "the loss falls");
            let diff = (wa - wb).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "weights differ by {diff}");
        }
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
