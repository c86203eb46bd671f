//! GroupNorm, and the channels-last (NHWC) layout that bf16 convolutions on the CPU run
//! fastest in.
//!
//! In bf16 libtorch's oneDNN convolutions turn every NCHW input into channels-last and
//! back; a W2 step without its norms took 36–37 ms with channels-last activations against
//! 56–58 ms in NCHW (PyTorch, this machine). But libtorch's GroupNorm reads channels-last
//! tensors about 20 times slower than NCHW ones, so a bf16 network on the CPU keeps its
//! activations channels-last and normalises them here: two passes forward (moments, then
//! scale and shift per channel) and two backward, in Rust, tied into autograd by
//! csrc/group_norm.cpp. Everywhere else (fp32, GPUs, tracing for export) it is libtorch's
//! GroupNorm, which computes the same function.

use crate::host::{self, parallel_for, Bf16, Disjoint, Elem};
use std::ffi::{c_char, c_int, c_void, CStr};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// A GroupNorm layer (torch's parameters `weight` and `bias`).
#[derive(Debug)]
pub struct Norm {
    gn: nn::GroupNorm,
    eps: f64,
}

impl Norm {
    pub fn new(p: nn::Path, groups: i64, channels: i64) -> Norm {
        let config = nn::GroupNormConfig::default();
        Norm { eps: config.eps, gn: nn::group_norm(p, groups, channels, config) }
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Tensor {
        // The shim checks the rest (kinds, shapes) and hands anything else to libtorch.
        match (&self.gn.ws, &self.gn.bs) {
            (Some(w), Some(b)) if nhwc_pays(x) => {
                group_norm_nhwc(&channels_last(x), w, b, self.gn.num_groups, self.eps)
            }
            _ => self.gn.forward(x),
        }
    }
}

/// Whether `x`, a batch of images, computes faster channels-last: bf16 on the CPU (the
/// default there only where the CPU computes bf16 itself). In fp32 a W2 step gained only
/// 1.07–1.08× here and was not measured on the CPUs that train conv networks in fp32 by
/// default (those without AVX512-BF16 or AMX), so fp32 keeps NCHW.
pub fn nhwc_pays(x: &Tensor) -> bool {
    x.dim() == 4 && x.device() == Device::Cpu && x.kind() == Kind::BFloat16 && x.numel() > 0
}

/// `x` (`[N, C, H, W]`) with its memory channels-last (strides `[HWC, 1, WC, C]`), copied
/// only when it is not already.
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether `x` is a dense channels-last `[N, C, H, W]` tensor.
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    size.len() == 4 && {
        let (c, h, w) = (size[1], size[2], size[3]);
        let want = [h * w * c, 1, w * c, c];
        // Dimensions of size 1 may carry any stride.
        (0..4).all(|d| size[d] == 1 || stride[d] == want[d])
    }
}

/// Channels-last where it pays (`nhwc_pays`), else `x` as it is.
pub fn channels_last_where_it_pays(x: Tensor) -> Tensor {
    if nhwc_pays(&x) {
        channels_last(&x)
    } else {
        x
    }
}

extern "C" {
    fn aet_norm_last_error() -> *const c_char;
    fn aet_group_norm_kernels(forward: ForwardFn, backward: BackwardFn);
    fn aet_group_norm_nhwc(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        groups: i64,
        eps: f64,
        out: *mut *mut C_tensor,
    ) -> c_int;
}

type ForwardFn = extern "C" fn(
    c_int,
    *const c_void,
    *const c_void,
    *const c_void,
    *mut c_void,
    *mut f32,
    *mut f32,
    i64,
    i64,
    i64,
    i64,
    f64,
);
type BackwardFn = extern "C" fn(
    c_int,
    *const c_void,
    *const c_void,
    *const c_void,
    *const f32,
    *const f32,
    *mut c_void,
    *mut f32,
    *mut f32,
    i64,
    i64,
    i64,
    i64,
);

/// GroupNorm of the channels-last `x` through csrc/group_norm.cpp (autograd records it).
fn group_norm_nhwc(x: &Tensor, w: &Tensor, b: &Tensor, groups: i64, eps: f64) -> Tensor {
    static KERNELS: std::sync::Once = std::sync::Once::new();
    // SAFETY: the two functions match the shim's signatures and live for the process.
    KERNELS.call_once(|| unsafe { aet_group_norm_kernels(forward_kernel, backward_kernel) });
    let mut out = std::ptr::null_mut();
    // SAFETY: valid tensor handles for the call; the shim hands back a new tensor.
    let code =
        unsafe { aet_group_norm_nhwc(x.as_ptr(), w.as_ptr(), b.as_ptr(), groups, eps, &mut out) };
    if code != 0 {
        // As tch's own operations do on a libtorch error.
        let msg = unsafe { CStr::from_ptr(aet_norm_last_error()) }.to_string_lossy();
        panic!("GroupNorm (channels-last): {msg}");
    }
    // SAFETY: a tensor the shim allocated for us to own.
    unsafe { Tensor::from_ptr(out) }
}

/// A batch's sizes: `n` images of `hw` pixels of `c` channels in `groups` groups.
#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    hw: usize,
    c: usize,
    groups: usize,
}

impl Shape {
    fn new(n: i64, hw: i64, c: i64, groups: i64) -> Shape {
        Shape { n: n as usize, hw: hw as usize, c: c as usize, groups: groups as usize }
    }

    fn image(&self) -> usize {
        self.hw * self.c
    }
}

extern "C" fn forward_kernel(
    kind: c_int,
    x: *const c_void,
    w: *const c_void,
    b: *const c_void,
    y: *mut c_void,
    mean: *mut f32,
    rstd: *mut f32,
    n: i64,
    hw: i64,
    c: i64,
    groups: i64,
    eps: f64,
) {
    let s = Shape::new(n, hw, c, groups);
    // SAFETY: the shim passes contiguous buffers of these sizes and kinds, `y`, `mean` and
    // `rstd` its own fresh ones.
    unsafe {
        let stats = |p: *mut f32| std::slice::from_raw_parts_mut(p, s.n * s.groups);
        let (mean, rstd) = (stats(mean), stats(rstd));
        match kind {
            1 => forward::<Bf16>(s, x, w, b, y, mean, rstd, eps),
            _ => forward::<f32>(s, x, w, b, y, mean, rstd, eps),
        }
    }
}

/// # Safety
/// As `forward_kernel`: buffers of `s`'s sizes in `T`.
#[allow(clippy::too_many_arguments)]
unsafe fn forward<T: Elem>(
    s: Shape,
    x: *const c_void,
    w: *const c_void,
    b: *const c_void,
    y: *mut c_void,
    mean: &mut [f32],
    rstd: &mut [f32],
    eps: f64,
) {
    let d = s.image();
    let x = std::slice::from_raw_parts(x as *const T, s.n * d);
    let (w, b) = (
        std::slice::from_raw_parts(w as *const T, s.c),
        std::slice::from_raw_parts(b as *const T, s.c),
    );
    let y = std::slice::from_raw_parts_mut(y as *mut T, s.n * d);
    let (ys, means, rstds) = (Disjoint::new(y), Disjoint::new(mean), Disjoint::new(rstd));
    parallel_for(s.n, 1, |lo, hi| {
        let (mut sums, mut squares) = (vec![0f64; s.c], vec![0f64; s.c]);
        let (mut scale, mut shift) = (vec![0f32; s.c], vec![0f32; s.c]);
        for i in lo..hi {
            let x = &x[i * d..][..d];
            // SAFETY: the ranges of one parallel_for do not overlap.
            let (y, mean, rstd) = unsafe {
                let g = s.groups;
                (
                    ys.part(i * d, (i + 1) * d),
                    means.part(i * g, (i + 1) * g),
                    rstds.part(i * g, (i + 1) * g),
                )
            };
            moments(x, &mut sums, &mut squares);
            let (count, per) = ((s.hw * s.c / s.groups) as f64, s.c / s.groups);
            for g in 0..s.groups {
                let part = g * per..(g + 1) * per;
                let mu = sums[part.clone()].iter().sum::<f64>() / count;
                let var = (squares[part.clone()].iter().sum::<f64>() / count - mu * mu).max(0.0);
                let r = 1.0 / (var + eps).sqrt();
                (mean[g], rstd[g]) = (mu as f32, r as f32);
                // y = (x − μ)·r·γ + β = x·a + (β − μ·a), a = r·γ, in f32 as libtorch has it.
                for ch in part {
                    let a = r as f32 * w[ch].get();
                    (scale[ch], shift[ch]) = (a, b[ch].get() - mu as f32 * a);
                }
            }
            scale_shift(x, &scale, &shift, y);
        }
    });
}

host::widest! {
    /// Per channel of the `[pixels, c]` image `x`: Σx into `sums`, Σx² into `squares`.
    fn moments<T: Elem>(x: &[T], sums: &mut [f64], squares: &mut [f64]) = moments_body
}

#[inline(always)]
fn moments_body<T: Elem>(x: &[T], sums: &mut [f64], squares: &mut [f64]) {
    sums.fill(0.0);
    squares.fill(0.0);
    for px in x.chunks_exact(sums.len()) {
        for ((s, q), v) in sums.iter_mut().zip(squares.iter_mut()).zip(px) {
            let v = v.get() as f64;
            *s += v;
            *q += v * v;
        }
    }
}

host::widest! {
    /// `y = x·scale + shift` per channel of the `[pixels, c]` image `x`.
    fn scale_shift<T: Elem>(x: &[T], scale: &[f32], shift: &[f32], y: &mut [T]) = scale_shift_body
}

#[inline(always)]
fn scale_shift_body<T: Elem>(x: &[T], scale: &[f32], shift: &[f32], y: &mut [T]) {
    let c = scale.len();
    for (py, px) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((y, x), a), b) in py.iter_mut().zip(px).zip(scale).zip(shift) {
            *y = T::put(x.get() * a + b);
        }
    }
}

extern "C" fn backward_kernel(
    kind: c_int,
    dy: *const c_void,
    x: *const c_void,
    w: *const c_void,
    mean: *const f32,
    rstd: *const f32,
    dx: *mut c_void,
    dw: *mut f32,
    db: *mut f32,
    n: i64,
    hw: i64,
    c: i64,
    groups: i64,
) {
    let s = Shape::new(n, hw, c, groups);
    // SAFETY: the shim passes contiguous buffers of these sizes and kinds, `dx`, `dw` and
    // `db` its own fresh ones.
    unsafe {
        let stats = |p: *const f32| std::slice::from_raw_parts(p, s.n * s.groups);
        let (mean, rstd) = (stats(mean), stats(rstd));
        let (dw, db) =
            (std::slice::from_raw_parts_mut(dw, s.c), std::slice::from_raw_parts_mut(db, s.c));
        match kind {
            1 => backward::<Bf16>(s, dy, x, w, mean, rstd, dx, dw, db),
            _ => backward::<f32>(s, dy, x, w, mean, rstd, dx, dw, db),
        }
    }
}

/// # Safety
/// As `backward_kernel`: buffers of `s`'s sizes in `T`.
#[allow(clippy::too_many_arguments)]
unsafe fn backward<T: Elem>(
    s: Shape,
    dy: *const c_void,
    x: *const c_void,
    w: *const c_void,
    mean: &[f32],
    rstd: &[f32],
    dx: *mut c_void,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let d = s.image();
    let dy = std::slice::from_raw_parts(dy as *const T, s.n * d);
    let x = std::slice::from_raw_parts(x as *const T, s.n * d);
    let w = std::slice::from_raw_parts(w as *const T, s.c);
    let dx = std::slice::from_raw_parts_mut(dx as *mut T, s.n * d);
    // Each image's share of dγ and dβ, added over the images in order afterwards.
    let (mut dw_parts, mut db_parts) = (vec![0f64; s.n * s.c], vec![0f64; s.n * s.c]);
    let (dxs, dws, dbs) =
        (Disjoint::new(dx), Disjoint::new(&mut dw_parts), Disjoint::new(&mut db_parts));
    parallel_for(s.n, 1, |lo, hi| {
        let (mut k1, mut k2, mut k3) = (vec![0f32; s.c], vec![0f32; s.c], vec![0f32; s.c]);
        for i in lo..hi {
            let (dy, x) = (&dy[i * d..][..d], &x[i * d..][..d]);
            // SAFETY: the ranges of one parallel_for do not overlap.
            let (dx, ds, dbeta) = unsafe {
                (
                    dxs.part(i * d, (i + 1) * d),
                    dws.part(i * s.c, (i + 1) * s.c),
                    dbs.part(i * s.c, (i + 1) * s.c),
                )
            };
            // ds: Σ dy·x per channel, dbeta: Σ dy.
            grad_sums(dy, x, ds, dbeta);
            let per = s.c / s.groups;
            let count = (s.hw * per) as f64;
            for g in 0..s.groups {
                let (mu, r) = (mean[i * s.groups + g] as f64, rstd[i * s.groups + g] as f64);
                let part = g * per..(g + 1) * per;
                let gamma = |ch: usize| w[ch].get() as f64;
                let sum_dyx: f64 = part.clone().map(|ch| gamma(ch) * ds[ch]).sum();
                let sum_dy: f64 = part.clone().map(|ch| gamma(ch) * dbeta[ch]).sum();
                // dx = γ·r·dy + c2·x + c3 (libtorch's GroupNorm backward).
                let c2 = (sum_dy * mu - sum_dyx) * r * r * r / count;
                let c3 = -c2 * mu - sum_dy * r / count;
                for ch in part {
                    (k1[ch], k2[ch], k3[ch]) = ((gamma(ch) * r) as f32, c2 as f32, c3 as f32);
                    // This image's dγ: Σ dy·(x − μ)·r.
                    ds[ch] = (ds[ch] - mu * dbeta[ch]) * r;
                }
            }
            input_grad(dy, x, &k1, &k2, &k3, dx);
        }
    });
    for (ch, (dw, db)) in dw.iter_mut().zip(db.iter_mut()).enumerate() {
        let column = |parts: &[f64]| (0..s.n).map(|i| parts[i * s.c + ch]).sum::<f64>() as f32;
        (*dw, *db) = (column(&dw_parts), column(&db_parts));
    }
}

host::widest! {
    /// Per channel of the `[pixels, c]` images `dy` and `x`: Σdy·x into `ds`, Σdy into `db`.
    fn grad_sums<T: Elem>(dy: &[T], x: &[T], ds: &mut [f64], db: &mut [f64]) = grad_sums_body
}

#[inline(always)]
fn grad_sums_body<T: Elem>(dy: &[T], x: &[T], ds: &mut [f64], db: &mut [f64]) {
    ds.fill(0.0);
    db.fill(0.0);
    let c = ds.len();
    for (pg, px) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
        for (((s, b), g), x) in ds.iter_mut().zip(db.iter_mut()).zip(pg).zip(px) {
            let g = g.get() as f64;
            *s += g * x.get() as f64;
            *b += g;
        }
    }
}

host::widest! {
    /// `dx = k1·dy + k2·x + k3` per channel.
    fn input_grad<T: Elem>(dy: &[T], x: &[T], k1: &[f32], k2: &[f32], k3: &[f32], dx: &mut [T])
        = input_grad_body
}

#[inline(always)]
fn input_grad_body<T: Elem>(dy: &[T], x: &[T], k1: &[f32], k2: &[f32], k3: &[f32], dx: &mut [T]) {
    let c = k1.len();
    let rows = dx.chunks_exact_mut(c).zip(dy.chunks_exact(c)).zip(x.chunks_exact(c));
    for ((pd, pg), px) in rows {
        let ks = k1.iter().zip(k2).zip(k3);
        for ((((d, g), x), ((k1, k2), k3)), _) in pd.iter_mut().zip(pg).zip(px).zip(ks).zip(0..c) {
            *d = T::put(k1 * g.get() + k2 * x.get() + k3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtorch's GroupNorm of `x` (NCHW) and its gradients under the upstream `g`, next to
    /// this one's on the channels-last copy of `x`, all widened to f32.
    fn both(x: &Tensor, g: &Tensor, groups: i64) -> [[Tensor; 4]; 2] {
        let c = x.size()[1];
        // The same γ and β (not torch's 1 and 0) for both.
        let affine = Tensor::randn([2, c], (Kind::Float, Device::Cpu));
        let run = |x: &Tensor, nhwc: bool| {
            let vs = nn::VarStore::new(Device::Cpu);
            let norm = Norm::new(vs.root(), groups, c);
            tch::no_grad(|| {
                let (w, b) = (norm.gn.ws.as_ref().unwrap(), norm.gn.bs.as_ref().unwrap());
                w.shallow_clone().copy_(&affine.get(0));
                b.shallow_clone().copy_(&affine.get(1));
            });
            let mut vs = vs;
            vs.set_kind(x.kind());
            let x = x.detach().set_requires_grad(true);
            let y = if nhwc {
                let (w, b) = (norm.gn.ws.as_ref().unwrap(), norm.gn.bs.as_ref().unwrap());
                group_norm_nhwc(&channels_last(&x), w, b, groups, norm.eps)
            } else {
                norm.gn.forward(&x)
            };
            (&y * g.to_kind(x.kind())).sum(Kind::Float).backward();
            let wide = |t: &Tensor| t.to_kind(Kind::Float);
            let (w, b) = (norm.gn.ws.as_ref().unwrap(), norm.gn.bs.as_ref().unwrap());
            [wide(&y), wide(&x.grad()), wide(&w.grad()), wide(&b.grad())]
        };
        [run(x, false), run(x, true)]
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let diff = (a - b).abs().max().double_value(&[]);
        diff / a.abs().max().double_value(&[]).max(1e-12)
    }

    #[test]
    fn matches_libtorch_forward_and_backward_in_fp32_and_bf16() {
        let _rng = crate::rng_lock();
        for (kind, tolerance) in [(Kind::Float, 1e-5), (Kind::BFloat16, 2e-2)] {
            for (n, c, h, w, groups) in [(5, 32, 14, 14, 8), (3, 6, 5, 7, 2)] {
                tch::manual_seed(21);
                let x = (Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)) * 3.0 + 1.0)
                    .to_kind(kind);
                let g = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu));
                let [theirs, ours] = both(&x, &g, groups);
                assert!(is_channels_last(&ours[0]));
                for (what, (t, o)) in
                    ["output", "dx", "dγ", "dβ"].iter().zip(theirs.iter().zip(&ours))
                {
                    let rel = max_rel(t, o);
                    assert!(
                        rel < tolerance,
                        "{kind:?} {n}x{c}x{h}x{w}/{groups}: {what} off by {rel}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_same_bits_at_every_thread_count() {
        let _rng = crate::rng_lock();
        tch::manual_seed(22);
        let x = Tensor::randn([7, 32, 9, 9], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let g = Tensor::randn([7, 32, 9, 9], (Kind::Float, Device::Cpu));
        let runs: Vec<[Tensor; 4]> = [1, 2, 3]
            .map(|threads| {
                tch::set_num_threads(threads);
                tch::manual_seed(23);
                let [_, ours] = both(&x, &g, 8);
                ours
            })
            .into();
        tch::set_num_threads(2);
        for run in &runs[1..] {
            assert!(run.iter().zip(&runs[0]).all(|(a, b)| a.equal(b)), "the bits change");
        }
    }

    #[test]
    fn a_bf16_norm_takes_nchw_crops_and_empty_batches() {
        let _rng = crate::rng_lock();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let norm = Norm::new(vs.root(), 2, 6);
        vs.set_kind(Kind::BFloat16);
        let x = Tensor::randn([3, 6, 8, 8], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        // An NCHW crop: made channels-last and dense, the same values as libtorch's.
        let crop = x.narrow(2, 0, 5);
        let (ours, theirs) = (norm.forward(&crop), norm.gn.forward(&crop));
        assert!(is_channels_last(&ours));
        let diff = max_rel(&theirs.to_kind(Kind::Float), &ours.to_kind(Kind::Float));
        assert!(diff < 2e-2, "crop off by {diff}");
        let empty = norm.forward(&x.narrow(0, 0, 0));
        assert_eq!(empty.size(), vec![0, 6, 8, 8]);
    }

    #[test]
    fn channels_last_is_told_by_the_strides() {
        let x = Tensor::zeros([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x));
        let cl = channels_last(&x);
        assert!(is_channels_last(&cl) && cl.size() == x.size());
        assert_eq!(cl.stride(), vec![60, 1, 15, 3]);
        assert_eq!(channels_last(&cl).data_ptr(), cl.data_ptr(), "copied again");
        // A crop is a view with its parent's strides: not dense.
        assert!(!is_channels_last(&cl.narrow(2, 0, 3)));
        // One channel: both layouts at once.
        assert!(is_channels_last(&Tensor::zeros([2, 1, 4, 5], (Kind::Float, Device::Cpu))));
    }
}
