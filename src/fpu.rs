//! Floating-point mode of the process: denormal (subnormal) numbers flushed to zero.
//!
//! Training drives many activations and Adam moments towards zero; once they turn
//! subnormal every operation on them takes a slow microcode path, and a loop loses half
//! its speed by the fourth epoch. `torch.set_flush_denormal(True)` is PyTorch's cure: it
//! sets two bits of the calling thread's floating-point control register. We set the same
//! bits first thing in `main`, before libtorch starts its threads: on Linux a new thread
//! starts with a copy of its creator's register, so libtorch's pool and every Rust pass
//! (AdamW, noise, batch assembly) run under it. No result changes beyond what a value
//! below 1.2e-38 can carry.
//!
//! A deliberate exception to Rust's floating-point model, as PyTorch makes it: Rust
//! assumes the default mode, so a float operation the compiler folds at build time keeps
//! subnormals that the same operation at run time flushes. Nothing here depends on
//! subnormal results, and `doctor` checks the mode on libtorch's threads at run time.

/// Sets flush-to-zero and denormals-are-zero on the calling thread. Returns false where
/// the processor has no such mode (then nothing changes).
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // MXCSR bit 15 (FTZ: results that would be subnormal become 0) and bit 6 (DAZ:
        // subnormal inputs read as 0). SSE2 is part of x86-64 and every x86-64 processor
        // made since 2003 has DAZ.
        const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr only read and write the SSE control register of this
        // thread through a pointer to a local; the value written is the current one with
        // two mode bits set, which cannot fault.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
        }
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        // FPCR bit 24 (FZ) flushes subnormal inputs and results to zero.
        let mut fpcr: u64;
        // SAFETY: reads and writes this thread's floating-point control register only.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            fpcr |= 1 << 24;
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
        }
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Share of a large libtorch product that saw subnormal numbers as numbers: 0 when every
/// thread of libtorch's pool flushes them, 1 when none does. `doctor` reports it.
pub fn denormal_share() -> f64 {
    use tch::{Kind, Tensor};
    // Large enough for libtorch to split the work across all its threads. The subnormal
    // is written from its bits: converting 1e-40 on this (flushing) thread would already
    // give 0, and the check could not fail.
    let n = 1 << 22;
    let tiny = Tensor::from_slice(&vec![f32::from_bits(0x0001_1c6a); n]);
    let kept = (tiny * 1e30).ne(0.0).sum(Kind::Int64).int64_value(&[]);
    kept as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_vanish_on_this_thread_and_on_threads_it_starts() {
        let tiny = |x: f32| std::hint::black_box(x) * std::hint::black_box(1e-3f32);
        // Each test runs on its own thread, so the mode is set here for this thread only.
        std::thread::spawn(move || {
            assert!(tiny(1e-36) > 0.0, "1e-39 is representable as a subnormal f32");
            if flush_denormals() {
                assert_eq!(tiny(1e-36), 0.0);
                // Inherited by a thread started afterwards.
                let child = std::thread::spawn(move || tiny(1e-36)).join().unwrap();
                assert_eq!(child, 0.0);
                // Normal numbers are untouched.
                assert_eq!(tiny(1.0), 1e-3);
            }
        })
        .join()
        .unwrap();
    }
}
