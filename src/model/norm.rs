//! GroupNorm, and the channels-last (NHWC) layout that convolutions on the CPU run
//! fastest in.
//!
//! In bf16 libtorch's oneDNN convolutions turn every NCHW input into channels-last and
//! back; a W2 step without its norms took 36–37 ms with channels-last activations against
//! 56–58 ms in NCHW (PyTorch, a CPU with AMX), and fp32 convolutions too run faster
//! channels-last on the AVX-512 CPUs measured (`nhwc_pays`). But libtorch's GroupNorm
//! reads channels-last tensors about 20 times slower than NCHW ones, so a network on the
//! CPU keeps its activations channels-last and normalises them here: two passes forward
//! (moments, then scale and shift per channel) and two backward, in Rust, tied into
//! autograd by csrc/group_norm.cpp. A ReLU after the norm, and a residual sum before that ReLU, run in
//! the same passes (`Norm::forward_relu`): the ReLU's own passes over the activations and
//! its gradient were about 6% of a bf16 W2 step. Everywhere else (GPUs, fp32 without
//! AVX-512, tracing for export, which keeps NCHW) it is libtorch's GroupNorm (and sum, and
//! ReLU), which compute the same function.

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

    /// `relu(skip + self(x))` in one set of passes where the layout pays (`nhwc_pays`),
    /// else `None`, for the caller to compose.
    pub fn forward_relu(&self, x: &Tensor, skip: Option<&Tensor>) -> Option<Tensor> {
        self.channels_last(x, skip, true)
    }

    /// The norm (with `relu`, then the sum with `skip` and the ReLU) of `x` made
    /// channels-last, where that layout pays; the shim checks the rest (kinds, shapes) and
    /// hands anything else to libtorch.
    fn channels_last(&self, x: &Tensor, skip: Option<&Tensor>, relu: bool) -> Option<Tensor> {
        let (w, b) = (self.gn.ws.as_ref()?, self.gn.bs.as_ref()?);
        nhwc_pays(x).then(|| {
            let (x, skip) = (channels_last(x), skip.map(channels_last));
            group_norm_nhwc(&x, w, b, skip.as_ref(), relu, self.gn.num_groups, self.eps)
        })
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.channels_last(x, None, false).unwrap_or_else(|| self.gn.forward(x))
    }
}

/// Whether `x`, a batch of images, computes faster channels-last: bf16 on the CPU, and
/// fp32 on an x86 CPU with AVX-512, where it was measured. A W2 step gained 1.15–1.32× in
/// bf16 on a VM with AMX, and in fp32 1.07–1.08× there and 0.99–1.6× (median 1.12×, 5
/// interleaved rounds) on one whose flags show no AMX; AVX2-only and ARM CPUs were not
/// measured and keep fp32 NCHW. Never while tracing an export: the exported model would
/// record the layout changes, and libtorch's GroupNorm, which it records, is slow on them.
pub fn nhwc_pays(x: &Tensor) -> bool {
    #[cfg(test)]
    let on = !tests::NCHW_ONLY.get();
    #[cfg(not(test))]
    let on = true;
    let kind_pays = match x.kind() {
        Kind::BFloat16 => true,
        Kind::Float => host::avx512(),
        _ => false,
    };
    on && x.dim() == 4
        && x.device() == Device::Cpu
        && kind_pays
        && x.numel() > 0
        // SAFETY: reads a thread-local flag of libtorch's tracer.
        && unsafe { aet_is_tracing() } == 0
}

/// `x` (`[N, C, H, W]`) with its memory channels-last (strides `[HWC, 1, WC, C]`), copied
/// only when it is not already.
pub fn channels_last(x: &Tensor) -> Tensor {
    let y = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    if y.size()[1] != 1 {
        return y;
    }
    // One channel is both layouts at once, and the copy above keeps NCHW strides, which
    // libtorch reads as NCHW: a grey image's first convolution then gave its output NCHW
    // (oneDNN computing it channels-last and libtorch copying it back), for the norm to
    // copy it channels-last again and its gradient to be copied on the way back. A
    // channel stride of 1 makes libtorch read the batch, and the convolution's output,
    // as channels-last: [N, H, W] with a unit dimension before H, strides [HW, 1, W, 1],
    // through views whose backward is a view again.
    y.squeeze_dim(1).unsqueeze(3).permute([0, 3, 1, 2])
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
    fn aet_is_tracing() -> c_int;
    fn aet_group_norm_kernels(forward: ForwardFn, backward: BackwardFn);
    fn aet_group_norm_nhwc(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        skip: *const C_tensor,
        relu: c_int,
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
    *const c_void,
    c_int,
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
    *const c_void,
    *const f32,
    *const f32,
    *mut c_void,
    *mut c_void,
    *mut f32,
    *mut f32,
    i64,
    i64,
    i64,
    i64,
);

/// GroupNorm of the channels-last `x` through csrc/group_norm.cpp (autograd records it),
/// with `relu` then summed with `skip` (channels-last too) and rectified.
fn group_norm_nhwc(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    skip: Option<&Tensor>,
    relu: bool,
    groups: i64,
    eps: f64,
) -> Tensor {
    static KERNELS: std::sync::Once = std::sync::Once::new();
    // SAFETY: the two functions match the shim's signatures and live for the process.
    KERNELS.call_once(|| unsafe { aet_group_norm_kernels(forward_kernel, backward_kernel) });
    let mut out = std::ptr::null_mut();
    let skip = skip.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: valid tensor handles (or null) for the call; the shim hands back a new tensor.
    let code = unsafe {
        let (x, w, b, relu) = (x.as_ptr(), w.as_ptr(), b.as_ptr(), c_int::from(relu));
        aet_group_norm_nhwc(x, w, b, skip, relu, groups, eps, &mut out)
    };
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
    skip: *const c_void,
    relu: c_int,
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
    #[cfg(test)]
    tests::KERNEL_CALLS.set(tests::KERNEL_CALLS.get() + 1);
    let after = After::new(relu != 0, !skip.is_null());
    // SAFETY: the shim passes contiguous buffers of these sizes and kinds (`skip` null or
    // the batch's size), `y`, `mean` and `rstd` its own fresh ones.
    unsafe {
        let stats = |p: *mut f32| std::slice::from_raw_parts_mut(p, s.n * s.groups);
        let (mean, rstd) = (stats(mean), stats(rstd));
        match kind {
            1 => forward::<Bf16>(s, x, w, b, (after, skip), y, mean, rstd, eps),
            _ => forward::<f32>(s, x, w, b, (after, skip), y, mean, rstd, eps),
        }
    }
}

/// What follows the norm in the forward pass.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    Relu,
    /// A residual sum (of a batch of the norm's size), then a ReLU.
    SumRelu,
}

impl After {
    fn new(relu: bool, skip: bool) -> After {
        match (relu, skip) {
            (false, _) => After::Nothing,
            (true, false) => After::Relu,
            (true, true) => After::SumRelu,
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
    (after, skip): (After, *const c_void),
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
    let skip = match after {
        After::SumRelu => std::slice::from_raw_parts(skip as *const T, s.n * d),
        _ => &[],
    };
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
            match after {
                After::Nothing => scale_shift(x, &scale, &shift, y),
                After::Relu => scale_shift_relu(x, &scale, &shift, y),
                After::SumRelu => scale_shift_sum_relu(x, &skip[i * d..][..d], &scale, &shift, y),
            }
        }
    });
}

host::widest! {
    /// Per channel of the `[pixels, c]` image `x`: Σx into `sums`, Σx² into `squares`.
    fn moments<T: Elem>(x: &[T], sums: &mut [f64], squares: &mut [f64]) = moments_body
}

#[inline(always)]
fn moments_body<T: Elem>(x: &[T], sums: &mut [f64], squares: &mut [f64]) {
    // As `block_sums`, 16 channels at a time with their sums in registers, but in f64
    // throughout: the variance is E[x²] − μ², which f32 partial sums would spoil where the
    // mean is large against the spread.
    let c = sums.len();
    for lo in (0..c).step_by(BLOCK) {
        let w = BLOCK.min(c - lo);
        let (mut s, mut q) = ([0f64; BLOCK], [0f64; BLOCK]);
        if w == BLOCK {
            column_moments(&x[lo..], c, BLOCK, &mut s, &mut q);
        } else {
            column_moments(&x[lo..], c, w, &mut s, &mut q);
        }
        sums[lo..lo + w].copy_from_slice(&s[..w]);
        squares[lo..lo + w].copy_from_slice(&q[..w]);
    }
}

/// Σx and Σx² of the first `w` values of each `stride`-long row of `x`.
#[inline(always)]
fn column_moments<T: Elem>(
    x: &[T],
    stride: usize,
    w: usize,
    s: &mut [f64; BLOCK],
    q: &mut [f64; BLOCK],
) {
    for o in (0..x.len()).step_by(stride) {
        let px = &x[o..o + w];
        for k in 0..w {
            let v = px[k].get() as f64;
            s[k] += v;
            q[k] += v * v;
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

/// ReLU as torch's: NaN stays NaN.
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

host::widest! {
    /// `y = relu(x·scale + shift)` per channel of the `[pixels, c]` image `x`.
    fn scale_shift_relu<T: Elem>(x: &[T], scale: &[f32], shift: &[f32], y: &mut [T])
        = scale_shift_relu_body
}

#[inline(always)]
fn scale_shift_relu_body<T: Elem>(x: &[T], scale: &[f32], shift: &[f32], y: &mut [T]) {
    let c = scale.len();
    for (py, px) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((y, x), a), b) in py.iter_mut().zip(px).zip(scale).zip(shift) {
            *y = T::put(relu(x.get() * a + b));
        }
    }
}

host::widest! {
    /// `y = relu(skip + x·scale + shift)` per channel of the `[pixels, c]` image `x`, the
    /// sum in f32 and rounded once.
    fn scale_shift_sum_relu<T: Elem>(x: &[T], skip: &[T], scale: &[f32], shift: &[f32], y: &mut [T])
        = scale_shift_sum_relu_body
}

#[inline(always)]
fn scale_shift_sum_relu_body<T: Elem>(
    x: &[T],
    skip: &[T],
    scale: &[f32],
    shift: &[f32],
    y: &mut [T],
) {
    let c = scale.len();
    let rows = y.chunks_exact_mut(c).zip(x.chunks_exact(c)).zip(skip.chunks_exact(c));
    for ((py, px), ps) in rows {
        for ((((y, x), r), a), b) in py.iter_mut().zip(px).zip(ps).zip(scale).zip(shift) {
            *y = T::put(relu(r.get() + (x.get() * a + b)));
        }
    }
}

extern "C" fn backward_kernel(
    kind: c_int,
    dy: *const c_void,
    y: *const c_void,
    x: *const c_void,
    w: *const c_void,
    mean: *const f32,
    rstd: *const f32,
    dm: *mut c_void,
    dx: *mut c_void,
    dw: *mut f32,
    db: *mut f32,
    n: i64,
    hw: i64,
    c: i64,
    groups: i64,
) {
    let s = Shape::new(n, hw, c, groups);
    #[cfg(test)]
    tests::KERNEL_CALLS.set(tests::KERNEL_CALLS.get() + 1);
    // SAFETY: the shim passes contiguous buffers of these sizes and kinds (`y` and `dm`
    // both null or both the batch's size), `dm`, `dx`, `dw` and `db` its own fresh ones.
    unsafe {
        let relu = (!y.is_null()).then_some((y, dm));
        let stats = |p: *const f32| std::slice::from_raw_parts(p, s.n * s.groups);
        let (mean, rstd) = (stats(mean), stats(rstd));
        let (dw, db) =
            (std::slice::from_raw_parts_mut(dw, s.c), std::slice::from_raw_parts_mut(db, s.c));
        match kind {
            1 => backward::<Bf16>(s, dy, relu, x, w, mean, rstd, dx, dw, db),
            _ => backward::<f32>(s, dy, relu, x, w, mean, rstd, dx, dw, db),
        }
    }
}

/// # Safety
/// As `backward_kernel`: buffers of `s`'s sizes in `T`; `relu`: the forward's output and
/// where the gradient after the ReLU goes.
#[allow(clippy::too_many_arguments)]
unsafe fn backward<T: Elem>(
    s: Shape,
    dy: *const c_void,
    relu: Option<(*const c_void, *mut c_void)>,
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
    let (y, dm): (&[T], &mut [T]) = match relu {
        Some((y, dm)) => (
            std::slice::from_raw_parts(y as *const T, s.n * d),
            std::slice::from_raw_parts_mut(dm as *mut T, s.n * d),
        ),
        None => (&[], &mut []),
    };
    let dms = Disjoint::new(dm);
    // Each image's share of dγ and dβ, added over the images in order afterwards.
    let (mut dw_parts, mut db_parts) = (vec![0f64; s.n * s.c], vec![0f64; s.n * s.c]);
    let (dxs, dws, dbs) =
        (Disjoint::new(dx), Disjoint::new(&mut dw_parts), Disjoint::new(&mut db_parts));
    parallel_for(s.n, 1, |lo, hi| {
        let (mut k1, mut k2, mut k3) = (vec![0f32; s.c], vec![0f32; s.c], vec![0f32; s.c]);
        for i in lo..hi {
            let (mut dy, x) = (&dy[i * d..][..d], &x[i * d..][..d]);
            // SAFETY: the ranges of one parallel_for do not overlap.
            let (dx, ds, dbeta) = unsafe {
                (
                    dxs.part(i * d, (i + 1) * d),
                    dws.part(i * s.c, (i + 1) * s.c),
                    dbs.part(i * s.c, (i + 1) * s.c),
                )
            };
            // ds: Σ dy·x per channel, dbeta: Σ dy, with dy the gradient after the ReLU.
            if y.is_empty() {
                grad_sums(dy, x, ds, dbeta);
            } else {
                // SAFETY: as above.
                let dm = unsafe { dms.part(i * d, (i + 1) * d) };
                masked_grad_sums(dy, &y[i * d..][..d], x, dm, ds, dbeta);
                dy = dm;
            }
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
    block_sums::<T, false>(Images { dy, y: &[], x, dm: &mut [] }, ds, db);
}

host::widest! {
    /// As `grad_sums`, of the gradient through a ReLU whose output was `y`: `dm` = dy where
    /// y > 0, else 0 (torch's threshold backward: NaN passes).
    fn masked_grad_sums<T: Elem>(dy: &[T], y: &[T], x: &[T], dm: &mut [T], ds: &mut [f64], db: &mut [f64])
        = masked_grad_sums_body
}

#[inline(always)]
fn masked_grad_sums_body<T: Elem>(
    dy: &[T],
    y: &[T],
    x: &[T],
    dm: &mut [T],
    ds: &mut [f64],
    db: &mut [f64],
) {
    block_sums::<T, true>(Images { dy, y, x, dm }, ds, db);
}

/// Channels whose sums stay in registers together: one 512-bit vector of f32.
const BLOCK: usize = 16;
/// Pixels summed in f32 before their sums join the f64 totals.
const SPAN: usize = 64;

/// What the gradient sums read, `[pixels, c]` each: the gradient `dy`, the norm's input
/// `x`, and behind a ReLU its output `y`; and where the masked gradient goes, `dm` (`y`
/// and `dm` empty without the ReLU).
struct Images<'a, T> {
    dy: &'a [T],
    y: &'a [T],
    x: &'a [T],
    dm: &'a mut [T],
}

/// `grad_sums` (and with `MASK`, `masked_grad_sums`): 16 channels at a time down the
/// image, their sums in registers, in f32 over 64 pixels and then added in f64. Summing
/// a whole row of channels into f64 slices instead kept the totals in memory and took 11%
/// of a bf16 W2 step in `perf`.
#[inline(always)]
fn block_sums<T: Elem, const MASK: bool>(mut im: Images<T>, ds: &mut [f64], db: &mut [f64]) {
    let c = ds.len();
    let pixels = im.dy.len() / c;
    for lo in (0..c).step_by(BLOCK) {
        let w = BLOCK.min(c - lo);
        let (mut s64, mut b64) = ([0f64; BLOCK], [0f64; BLOCK]);
        for p0 in (0..pixels).step_by(SPAN) {
            let at = (p0 * c + lo, c, p0.saturating_add(SPAN).min(pixels) - p0);
            let (mut s, mut b) = ([0f32; BLOCK], [0f32; BLOCK]);
            // A constant width for whole blocks, so that they compile to vectors.
            if w == BLOCK {
                span_sums::<T, MASK>(&mut im, at, BLOCK, &mut s, &mut b);
            } else {
                span_sums::<T, MASK>(&mut im, at, w, &mut s, &mut b);
            }
            for k in 0..BLOCK {
                (s64[k], b64[k]) = (s64[k] + s[k] as f64, b64[k] + b[k] as f64);
            }
        }
        ds[lo..lo + w].copy_from_slice(&s64[..w]);
        db[lo..lo + w].copy_from_slice(&b64[..w]);
    }
}

/// `block_sums`' f32 sums of `w` channels over `n` pixels, the first at `start`, `stride`
/// apart: `at` = (start, stride, n).
#[inline(always)]
fn span_sums<T: Elem, const MASK: bool>(
    im: &mut Images<T>,
    at: (usize, usize, usize),
    w: usize,
    s: &mut [f32; BLOCK],
    b: &mut [f32; BLOCK],
) {
    let (start, stride, n) = at;
    for p in 0..n {
        let o = start + p * stride;
        let (pg, px) = (&im.dy[o..o + w], &im.x[o..o + w]);
        let (py, pm): (&[T], &mut [T]) =
            if MASK { (&im.y[o..o + w], &mut im.dm[o..o + w]) } else { (&[], &mut []) };
        for k in 0..w {
            // Both values loaded before the select, so that it compiles to a blend.
            let mut g = pg[k].get();
            if MASK {
                let v = py[k].get();
                g = if v <= 0.0 { 0.0 } else { g };
                // A value of `T` widened and rounded back is itself.
                pm[k] = T::put(g);
            }
            s[k] += g * px[k].get();
            b[k] += g;
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
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Set by a test: batches on this thread keep NCHW and libtorch's modules, to
        /// compare the channels-last path with them.
        pub(crate) static NCHW_ONLY: Cell<bool> = const { Cell::new(false) };
        /// The kernels' calls on this thread (forward and backward each count one).
        pub(crate) static KERNEL_CALLS: Cell<usize> = const { Cell::new(0) };
    }

    /// What follows the norm in a test: nothing, a ReLU, or the sum with a residual (the
    /// batch given) and a ReLU.
    #[derive(Clone, Copy)]
    enum Then<'a> {
        Nothing,
        Relu,
        SumRelu(&'a Tensor),
    }

    /// libtorch's GroupNorm of `x` (NCHW), then `then` in libtorch's operations, and its
    /// gradients (x, γ, β, the residual's) under the upstream `g`, all in f32 from `x`'s
    /// values, next to this one's in `x`'s kind on the channels-last copies, widened to f32.
    /// (libtorch in bf16 rounds the norm before the sum: where the sum is near zero its
    /// ReLU's mask then differs from the exact one, which this one's keeps.)
    fn both(x: &Tensor, g: &Tensor, groups: i64, then: Then) -> [[Tensor; 5]; 2] {
        let c = x.size()[1];
        // The same γ and β (not torch's 1 and 0) for both, values of `x`'s kind.
        let affine = Tensor::randn([2, c], (Kind::Float, Device::Cpu)).to_kind(x.kind());
        let run = |x: &Tensor, nhwc: bool| {
            let vs = nn::VarStore::new(Device::Cpu);
            let norm = Norm::new(vs.root(), groups, c);
            tch::no_grad(|| {
                let (w, b) = (norm.gn.ws.as_ref().unwrap(), norm.gn.bs.as_ref().unwrap());
                w.shallow_clone().copy_(&affine.get(0));
                b.shallow_clone().copy_(&affine.get(1));
            });
            let mut vs = vs;
            let kind = if nhwc { x.kind() } else { Kind::Float };
            vs.set_kind(kind);
            let skip = match then {
                Then::SumRelu(r) => r.to_kind(x.kind()).to_kind(kind),
                _ => x.zeros_like().to_kind(kind),
            }
            .set_requires_grad(true);
            let x = x.to_kind(kind).detach().set_requires_grad(true);
            let (w, b) = (norm.gn.ws.as_ref().unwrap(), norm.gn.bs.as_ref().unwrap());
            let calls = KERNEL_CALLS.get();
            let y = match (nhwc, then) {
                (true, Then::Nothing) => {
                    group_norm_nhwc(&channels_last(&x), w, b, None, false, groups, norm.eps)
                }
                (true, Then::Relu) => {
                    group_norm_nhwc(&channels_last(&x), w, b, None, true, groups, norm.eps)
                }
                (true, Then::SumRelu(_)) => {
                    let r = Some(channels_last(&skip));
                    group_norm_nhwc(&channels_last(&x), w, b, r.as_ref(), true, groups, norm.eps)
                }
                (false, Then::Nothing) => norm.gn.forward(&x),
                (false, Then::Relu) => norm.gn.forward(&x).relu(),
                (false, Then::SumRelu(_)) => (&skip + norm.gn.forward(&x)).relu(),
            };
            (&y * g.to_kind(x.kind())).sum(Kind::Float).backward();
            // ae-tch's kernels ran, forward and backward, not libtorch's operations.
            let ran = KERNEL_CALLS.get() - calls;
            assert_eq!(ran, if nhwc { 2 } else { 0 }, "kernel calls");
            let wide = |t: &Tensor| t.to_kind(Kind::Float);
            let skip_grad = match then {
                Then::SumRelu(_) => wide(&skip.grad()),
                _ => skip.zeros_like().to_kind(Kind::Float),
            };
            [wide(&y), wide(&x.grad()), wide(&w.grad()), wide(&b.grad()), skip_grad]
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
            // Whole blocks of 16 channels, a block and a part, a part alone (`block_sums`),
            // and more pixels than one f32 span of 64.
            let shapes = [(5, 32, 14, 14, 8), (2, 24, 9, 11, 4), (3, 6, 5, 7, 2)];
            for (n, c, h, w, groups) in shapes {
                tch::manual_seed(21);
                let x = (Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)) * 3.0 + 1.0)
                    .to_kind(kind);
                let g = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu));
                let r = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu));
                for (then, name) in
                    [(Then::Nothing, ""), (Then::Relu, "+relu"), (Then::SumRelu(&r), "+sum+relu")]
                {
                    let [theirs, ours] = both(&x, &g, groups, then);
                    assert!(is_channels_last(&ours[0]));
                    // Values within rounding of zero may fall either side of the ReLU: those
                    // must be at most one in 10,000, and the elementwise values are compared
                    // where the masks agree (a flip still moves its group's dx a little,
                    // through the group's sums, within the tolerance).
                    let agree = theirs[0].gt(0.0).eq_tensor(&ours[0].gt(0.0));
                    let flips = x.numel() as i64 - agree.sum(Kind::Int64).int64_value(&[]);
                    assert!(flips <= x.numel() as i64 / 10_000, "{name}: {flips} masks differ");
                    let what = ["output", "dx", "dγ", "dβ", "dskip"];
                    for (what, (t, o)) in what.iter().zip(theirs.iter().zip(&ours)) {
                        let (t, o) = match t.size() == x.size() {
                            true => (t * &agree, o * &agree),
                            false => (t.shallow_clone(), o.shallow_clone()),
                        };
                        let rel = max_rel(&t, &o);
                        assert!(
                            rel < tolerance,
                            "{kind:?} {n}x{c}x{h}x{w}/{groups}{name}: {what} off by {rel}"
                        );
                    }
                }
            }
        }
    }

    /// relu(skip + norm(x)) passes NaN on forward and back, as torch's relu does (a loss
    /// that turns NaN must stay NaN for training to stop on it).
    #[test]
    fn the_fused_relu_keeps_nan() {
        let _rng = crate::rng_lock();
        let x = Tensor::randn([2, 4, 3, 3], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let skip = x.zeros_like();
        let _ = skip.get(1).get(2).fill_(f64::NAN);
        let g = Tensor::randn([2, 4, 3, 3], (Kind::Float, Device::Cpu));
        let [theirs, ours] = both(&x, &g, 2, Then::SumRelu(&skip));
        for (t, o) in theirs.iter().zip(&ours) {
            assert!(
                t.isnan().equal(&o.isnan()),
                "NaN where libtorch has none, or none where it has"
            );
        }
        // Where the output is NaN, the gradient passes to the residual unmasked.
        let nan = ours[0].isnan();
        assert!(nan.any().int64_value(&[]) == 1);
        let passed = g.to_kind(Kind::BFloat16).to_kind(Kind::Float).masked_select(&nan);
        assert!(ours[4].masked_select(&nan).equal(&passed), "the gradient stopped at NaN");
    }

    #[test]
    fn the_same_bits_at_every_thread_count() {
        let _rng = crate::rng_lock();
        tch::manual_seed(22);
        let x = Tensor::randn([7, 32, 9, 9], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let g = Tensor::randn([7, 32, 9, 9], (Kind::Float, Device::Cpu));
        let r = Tensor::randn([7, 32, 9, 9], (Kind::Float, Device::Cpu));
        for then in [Then::Nothing, Then::SumRelu(&r)] {
            let runs: Vec<[Tensor; 5]> = [1, 2, 3]
                .map(|threads| {
                    tch::set_num_threads(threads);
                    tch::manual_seed(23);
                    let [_, ours] = both(&x, &g, 8, then);
                    ours
                })
                .into();
            tch::set_num_threads(2);
            for run in &runs[1..] {
                assert!(run.iter().zip(&runs[0]).all(|(a, b)| a.equal(b)), "the bits change");
            }
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

    /// While an export is traced the layout stays NCHW, so the exported model records no
    /// layout changes and its GroupNorm (libtorch's) reads NCHW.
    #[test]
    fn an_export_trace_keeps_nchw() {
        let x = Tensor::ones([2, 3, 4, 4], (Kind::BFloat16, Device::Cpu));
        assert!(nhwc_pays(&x));
        let mut module = crate::script::ScriptModule::new("T").unwrap();
        let traced = Cell::new(None);
        module
            .trace("forward", &[x], |xs| {
                traced.set(Some(nhwc_pays(&xs[0])));
                vec![channels_last_where_it_pays(xs[0].shallow_clone())]
            })
            .unwrap();
        assert_eq!(traced.get(), Some(false));
        assert!(nhwc_pays(&Tensor::ones([2, 3, 4, 4], (Kind::BFloat16, Device::Cpu))));
    }

    /// A grey batch made channels-last keeps its values, not copied, with a channel stride
    /// of 1, so that a convolution of it (bf16 or fp32) gives a channels-last output (with
    /// the NCHW strides a one-channel batch has, libtorch gave it NCHW, to be copied back).
    #[test]
    fn a_grey_batch_convolves_channels_last() {
        let _rng = crate::rng_lock();
        for kind in [Kind::BFloat16, Kind::Float] {
            let x = Tensor::rand([4, 1, 10, 12], (Kind::Float, Device::Cpu)).to_kind(kind);
            let w = Tensor::randn([8, 1, 3, 3], (Kind::Float, Device::Cpu)).to_kind(kind);
            let conv = |x: &Tensor| x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
            assert!(!is_channels_last(&conv(&x)), "libtorch changed: NCHW strides give NCHW");
            let cl = channels_last(&x);
            assert_eq!(cl.stride(), vec![120, 1, 12, 1]);
            assert_eq!(cl.data_ptr(), x.data_ptr(), "copied");
            assert!(cl.equal(&x));
            let y = conv(&cl);
            assert!(is_channels_last(&y), "{kind:?}");
            let rel = (&y - conv(&x)).abs().max().double_value(&[]);
            assert!(rel < 1e-5, "{kind:?}: {rel}");
        }
    }
}
