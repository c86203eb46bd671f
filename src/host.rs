//! Direct access to the memory of CPU tensors, for the few loops that are faster as one
//! pass in Rust than as a chain of libtorch operations (batch assembly, the Adam update).

use tch::{Device, Kind, Tensor};

/// `widest!(fn name(args) -> ret = body);` defines `name`, which runs `body` (an
/// `#[inline(always)]` function of the same arguments) compiled for the widest vector unit
/// the CPU has: AVX-512, else AVX2, else the baseline, chosen at run time in one binary.
/// Rust never fuses a multiply and an add on its own, so every width gives the same bits.
/// `fn name<T: Elem>(…)` makes it generic over the element type.
macro_rules! widest {
    ($(#[$m:meta])* fn $name:ident $(<$g:ident: $bound:path>)? ($($arg:ident: $ty:ty),* $(,)?)
        $(-> $ret:ty)? = $body:ident) => {
        $(#[$m])*
        fn $name $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use widest;

/// Whether `t` can be viewed as a host slice of `kind`.
pub fn is_host(t: &Tensor, kind: Kind) -> bool {
    t.device() == Device::Cpu && t.kind() == kind && t.is_contiguous()
}

/// An element type of the passes in Rust: f32, or bf16 read as f32 and rounded back once
/// per value written.
pub trait Elem: Copy + Send + Sync + 'static {
    /// The tensors' kind whose storage holds these.
    const KIND: Kind;
    fn get(self) -> f32;
    fn put(v: f32) -> Self;
}

impl Elem for f32 {
    const KIND: Kind = Kind::Float;
    #[inline(always)]
    fn get(self) -> f32 {
        self
    }
    #[inline(always)]
    fn put(v: f32) -> f32 {
        v
    }
}

/// A bfloat16 value: the top half of an f32's bits.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct Bf16(pub u16);

impl Elem for Bf16 {
    const KIND: Kind = Kind::BFloat16;
    #[inline(always)]
    fn get(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
    /// Rounded to the nearest, ties to even, NaN to a quiet NaN: libtorch's rounding
    /// (c10's `round_to_nearest_even`), so a pass gives the bits its operations would.
    #[inline(always)]
    fn put(v: f32) -> Bf16 {
        let u = v.to_bits();
        let rounded = (u.wrapping_add(0x7FFF + ((u >> 16) & 1)) >> 16) as u16;
        Bf16(if v.is_nan() { 0x7FC0 } else { rounded })
    }
}

/// The elements of a contiguous CPU tensor of `T` as a mutable slice.
///
/// # Safety
/// While the slice lives, nothing else may read or write the tensor's storage (through
/// any handle, including views and shallow clones): libtorch does not know about the
/// borrow.
// The memory is libtorch's storage, not something borrowed from the handle.
#[allow(clippy::mut_from_ref)]
pub unsafe fn slice_mut<T: Elem>(t: &Tensor) -> &mut [T] {
    assert!(is_host(t, T::KIND), "a contiguous {:?} CPU tensor is needed", T::KIND);
    let n = t.numel();
    if n == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n)
}

/// The elements of a contiguous CPU tensor of `T`, read only.
///
/// # Safety
/// While the slice lives, nothing may write the tensor's storage.
pub unsafe fn slice_ref<T: Elem>(t: &Tensor) -> &[T] {
    slice_mut(t)
}

/// `slice_mut` for f32.
///
/// # Safety
/// As `slice_mut`.
#[allow(clippy::mut_from_ref)]
pub unsafe fn f32_mut(t: &Tensor) -> &mut [f32] {
    slice_mut(t)
}

/// `slice_ref` for f32.
///
/// # Safety
/// As `slice_ref`.
pub unsafe fn f32_ref(t: &Tensor) -> &[f32] {
    slice_mut(t)
}

/// The elements of a contiguous u8 CPU tensor.
///
/// # Safety
/// While the slice lives, nothing may write the tensor's storage.
pub unsafe fn u8_ref(t: &Tensor) -> &[u8] {
    assert!(is_host(t, Kind::Uint8), "u8_ref needs a contiguous u8 CPU tensor");
    let n = t.numel();
    if n == 0 {
        return &[];
    }
    std::slice::from_raw_parts(t.data_ptr() as *const u8, n)
}

extern "C" {
    fn aet_parallel_for(
        n: i64,
        grain: i64,
        body: extern "C" fn(*mut std::ffi::c_void, i64, i64),
        ctx: *mut std::ffi::c_void,
    );
}

/// How a CPU computes bf16 products itself (`native_bf16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeBf16 {
    /// Matrix tiles, which oneDNN's bf16 convolutions and products use.
    Amx,
    /// Dot-product instructions only.
    Avx512Bf16,
}

impl NativeBf16 {
    pub fn name(self) -> &'static str {
        match self {
            NativeBf16::Amx => "AMX",
            NativeBf16::Avx512Bf16 => "AVX512-BF16",
        }
    }

    /// Whether bf16 trains faster than fp32 here: with AMX only. A bf16 dot product
    /// instruction does twice an FMA's arithmetic at half its rate (one port against two),
    /// so AVX512-BF16 alone gains nothing, and oneDNN's bf16 kernels without AMX ran
    /// slower than its fp32 ones: on a 2-core Xeon VM (model 207) that hides AMX, a 64→64
    /// convolution at 7×7 took 2.5 ms forward and 3.6 ms for its weight gradient in bf16
    /// against 1.6 and 1.65 in fp32, a 2048² product 146 GFLOP/s against 228, and W2
    /// 952 samples/s in bf16 against 1,292 in fp32.
    pub fn faster_than_fp32(self) -> bool {
        self == NativeBf16::Amx
    }
}

/// Whether this CPU has AVX-512 (the F set, which `widest!` picks its widest code by).
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// How this CPU computes bf16 products natively, or `None` where libtorch widens every
/// bf16 value to fp32 and gains nothing.
pub fn native_bf16() -> Option<NativeBf16> {
    #[cfg(target_arch = "x86_64")]
    {
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = flags.lines().find(|l| l.starts_with("flags")).unwrap_or_default();
        if flags.split_whitespace().any(|f| f == "amx_bf16") {
            return Some(NativeBf16::Amx);
        }
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            return Some(NativeBf16::Avx512Bf16);
        }
    }
    None
}

/// The memory the system could give this process now (Linux's MemAvailable), in bytes;
/// `None` where that is not known.
pub fn free_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `body(lo, hi)` over contiguous ranges that cover `0..n` once, on libtorch's
/// intra-op threads (at most `--threads` ranges; one inline call when `n ≤ grain` or one
/// thread is set). Those threads inherit the flush-to-zero mode `main` sets. Passes that
/// only write what their range owns give the same result whatever the split.
pub fn parallel_for<F: Fn(usize, usize) + Sync>(n: usize, grain: usize, body: F) {
    extern "C" fn call<F: Fn(usize, usize) + Sync>(ctx: *mut std::ffi::c_void, lo: i64, hi: i64) {
        // SAFETY: `ctx` is the `F` below, alive for the whole (synchronous) call.
        let body = unsafe { &*(ctx as *const F) };
        // Unwinding into C++ is undefined: a panic in a range ends the process.
        let run = std::panic::AssertUnwindSafe(|| body(lo as usize, hi as usize));
        if std::panic::catch_unwind(run).is_err() {
            std::process::abort();
        }
    }
    if n == 0 {
        return;
    }
    let ctx = &body as *const F as *mut std::ffi::c_void;
    // SAFETY: `call::<F>` matches the callback's signature and `ctx` outlives the call.
    unsafe { aet_parallel_for(n as i64, grain.max(1) as i64, call::<F>, ctx) }
}

/// A mutable slice whose disjoint parts the ranges of a `parallel_for` write.
pub struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: parts handed to different threads never overlap (the contract of `part`).
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        Disjoint { ptr: slice.as_mut_ptr(), len: slice.len(), _slice: std::marker::PhantomData }
    }

    /// Elements `lo..hi` (clamped to the slice's end).
    ///
    /// # Safety
    /// No two live parts may overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, lo: usize, hi: usize) -> &'a mut [T] {
        let hi = hi.min(self.len);
        assert!(lo <= hi, "part {lo}..{hi} of {}", self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(lo), hi - lo)
    }
}

/// Tensors freed by one step stay with the process for the next (glibc's allocator).
///
/// A training step allocates and frees the same large tensors each time (W2's
/// activations are 3.2 MB each). glibc serves them from its heap once its adaptive mmap
/// threshold has grown past them, but then gives the heap's free top back to the kernel
/// whenever it exceeds twice that threshold, and the next step faults every page in
/// again: `perf` put 16.6% of W2's time in the kernel's page faults, against 2.8% for the
/// same loop in PyTorch. Fixing the thresholds (up to 32 MiB from the heap, the most glibc
/// allows; the free top kept up to 1 GiB) took W2 from 1,410–1,434 to 1,601–1,656
/// samples/s. Setting only the trim threshold halves the speed instead (it also fixes the
/// mmap threshold at its 128 KiB start), so both are set, first thing in `main`. Memory a
/// run freed stays its own until it exits, as PyTorch's caching allocators keep theirs.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // <malloc.h>: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt only changes the allocator's parameters; called before the
        // process starts other threads, and harmless after.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}
