//! Standard normal samples in bulk for the CPU batch path: Box–Muller on one 64-bit draw
//! per pair, with polynomial logarithm, sine and cosine written so the compiler
//! vectorises the loop (AVX-512 or AVX2, whichever the CPU has, chosen at run time; the
//! bits are the same either way). The words are drawn from one stream first
//! (`draw_words`), so the arithmetic (`samples`) can be split over threads at block
//! boundaries without changing a sample. A batch of 128 Fashion-MNIST images needs 100k
//! draws per step: 0.13 ms on one thread this way (AVX-512), against 0.51 ms with
//! rand_distr's ziggurat and 0.69 ms with libtorch's `normal_`.
//!
//! Accuracy: the polynomials are good to about 1e-7 relative, below f32's resolution of
//! the noise that is added to pixels. The radius uses a 24-bit uniform in (0, 1], so
//! samples are bounded by √(2·24·ln 2) ≈ 5.77: the mass beyond that is 8e-9.

use rand_xoshiro::rand_core::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Pairs computed per block: the random words are drawn first, then the arithmetic runs
/// over the block without branches.
const BLOCK: usize = 64;

/// Samples one block of words gives: the block's x values, then its y values.
pub const CHUNK: usize = 2 * BLOCK;

/// Draws from `rng` the words that `n` samples take (whole blocks), into `words`.
pub fn draw_words(rng: &mut Xoshiro256PlusPlus, n: usize, words: &mut Vec<u64>) {
    words.clear();
    words.extend((0..n.div_ceil(CHUNK) * BLOCK).map(|_| rng.next_u64()));
}

/// Turns `words` (whole blocks, as `draw_words` gives them) into the N(0, 1) samples
/// `out` (up to `CHUNK` per block; a short last chunk takes its first samples). A part
/// of the words, cut at a block, gives the same part of the samples.
pub fn samples(words: &[u64], out: &mut [f32]) {
    let (mut lo, mut hi) = ([0u32; BLOCK], [0u32; BLOCK]);
    let (mut xs, mut ys) = ([0f32; BLOCK], [0f32; BLOCK]);
    for (block, chunk) in words.chunks_exact(BLOCK).zip(out.chunks_mut(CHUNK)) {
        for ((l, h), &w) in lo.iter_mut().zip(hi.iter_mut()).zip(block) {
            (*l, *h) = (w as u32, (w >> 32) as u32);
        }
        transform(&lo, &hi, &mut xs, &mut ys);
        let (first, second) = chunk.split_at_mut(chunk.len().min(BLOCK));
        first.copy_from_slice(&xs[..first.len()]);
        second.copy_from_slice(&ys[..second.len()]);
    }
}

/// Fills `out` with independent N(0, 1) samples drawn from `rng`.
pub fn fill(rng: &mut Xoshiro256PlusPlus, out: &mut [f32]) {
    let mut words = Vec::new();
    draw_words(rng, out.len(), &mut words);
    samples(&words, out);
}

crate::host::widest! {
    /// `transform_body` for the widest vector unit.
    fn transform(lo: &[u32; BLOCK], hi: &[u32; BLOCK], xs: &mut [f32; BLOCK], ys: &mut [f32; BLOCK])
        = transform_body
}

#[inline(always)]
fn transform_body(
    lo: &[u32; BLOCK],
    hi: &[u32; BLOCK],
    xs: &mut [f32; BLOCK],
    ys: &mut [f32; BLOCK],
) {
    const TWO_24: f32 = 1.0 / (1u32 << 24) as f32;
    for i in 0..BLOCK {
        // lo bits 0–23: the radius' uniform in (0, 1]; hi bits 0–23: the angle within a
        // quadrant; hi bits 24, 25: the quadrant.
        let u = ((lo[i] & 0xFF_FFFF) as i32 + 1) as f32 * TWO_24;
        let v = (hi[i] & 0xFF_FFFF) as i32 as f32 * TWO_24 - 0.5;
        let r = (-2.0 * ln(u)).sqrt();
        let (s, c) = sin_cos(v * std::f32::consts::FRAC_PI_2); // angle in [-π/4, π/4)
                                                               // Turning by a random multiple of π/2 makes the angle uniform on the circle.
        let swap = (hi[i] >> 24) & 1 == 1;
        let r = if (hi[i] >> 25) & 1 == 1 { -r } else { r };
        xs[i] = r * if swap { -s } else { c };
        ys[i] = r * if swap { c } else { s };
    }
}

/// Natural logarithm of a positive normal f32: exponent times ln 2 plus an odd series in
/// t = (m − 1)/(m + 1) for the mantissa m in [√½, √2), |t| ≤ 0.172.
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    let big = (bits & 0x7F_FFFF) > 0x35_04F3; // mantissa above √2
    let e = ((bits >> 23) & 0xFF) - 127 + big as i32;
    let m = f32::from_bits(((bits & 0x7F_FFFF) | 0x3F80_0000) as u32) * if big { 0.5 } else { 1.0 };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    const C: [f32; 4] = [1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0];
    let series = 1.0 + t2 * (C[0] + t2 * (C[1] + t2 * (C[2] + t2 * C[3])));
    e as f32 * std::f32::consts::LN_2 + 2.0 * t * series
}

/// Sine and cosine on [-π/4, π/4] by their Taylor series (errors below 4e-8).
#[inline(always)]
fn sin_cos(a: f32) -> (f32, f32) {
    const S: [f32; 4] = [1.0 / 6.0, 1.0 / 120.0, 1.0 / 5040.0, 1.0 / 362_880.0];
    const K: [f32; 4] = [0.5, 1.0 / 24.0, 1.0 / 720.0, 1.0 / 40_320.0];
    let a2 = a * a;
    let s = a * (1.0 - a2 * (S[0] - a2 * (S[1] - a2 * (S[2] - a2 * S[3]))));
    let c = 1.0 - a2 * (K[0] - a2 * (K[1] - a2 * (K[2] - a2 * K[3])));
    (s, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::SeedableRng;

    #[test]
    fn polynomials_match_the_library_functions() {
        for i in 1..=10_000 {
            let x = i as f32 / 10_000.0;
            assert!((ln(x) - x.ln()).abs() <= 2e-7 * x.ln().abs().max(1.0), "ln {x}");
            let a = (x - 0.5) * std::f32::consts::FRAC_PI_2;
            let (s, c) = sin_cos(a);
            assert!((s - a.sin()).abs() < 1e-7 && (c - a.cos()).abs() < 1e-7, "sincos {a}");
        }
        assert!((ln(1.0 / (1u32 << 24) as f32) + 24.0 * std::f32::consts::LN_2).abs() < 1e-5);
    }

    /// Φ(k) − Φ(−k) for k = 1, 2, 3.
    const WITHIN: [f64; 3] = [0.682_689_5, 0.954_499_7, 0.997_300_2];

    #[test]
    fn every_vector_width_gives_the_same_samples() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        for _ in 0..50 {
            let (mut lo, mut hi) = ([0u32; BLOCK], [0u32; BLOCK]);
            lo.iter_mut().chain(hi.iter_mut()).for_each(|w| *w = rng.next_u32());
            let (mut a, mut b) = (([0f32; BLOCK], [0f32; BLOCK]), ([0f32; BLOCK], [0f32; BLOCK]));
            transform(&lo, &hi, &mut a.0, &mut a.1);
            transform_body(&lo, &hi, &mut b.0, &mut b.1);
            let bits = |x: &[f32; BLOCK]| x.map(f32::to_bits);
            assert!(bits(&a.0) == bits(&b.0) && bits(&a.1) == bits(&b.1));
        }
    }

    #[test]
    fn samples_have_the_moments_and_quantiles_of_a_standard_normal() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        // An odd length also checks the unpaired last sample.
        let mut x = vec![f32::NAN; 1_000_001];
        fill(&mut rng, &mut x);
        assert!(x.iter().all(|v| v.is_finite() && v.abs() < 5.8));
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let moment = |k: i32| x.iter().map(|&v| (v as f64 - mean).powi(k)).sum::<f64>() / n;
        let var = moment(2);
        // Standard errors for n = 1e6: mean 0.001, variance 0.0014, skew 0.0024,
        // kurtosis 0.005; quantile shares ≤ 0.0005.
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.007, "variance {var}");
        let skew = moment(3) / var.powf(1.5);
        let kurt = moment(4) / (var * var);
        assert!(skew.abs() < 0.012 && (kurt - 3.0).abs() < 0.025, "skew {skew} kurtosis {kurt}");
        for (k, expected) in WITHIN.iter().enumerate() {
            let share = x.iter().filter(|v| v.abs() < (k + 1) as f32).count() as f64 / n;
            assert!((share - expected).abs() < 0.0025, "within {}σ: {share}", k + 1);
        }
        // The two samples of a pair (BLOCK apart) are independent: uncorrelated, and so are
        // their squares.
        let pairs = x
            .chunks_exact(2 * BLOCK)
            .flat_map(|c| c[..BLOCK].iter().zip(&c[BLOCK..]))
            .map(|(&u, &v)| (u as f64, v as f64));
        let (xy, x2y2) = pairs.fold((0.0, 0.0), |(a, b), (u, v)| (a + u * v, b + u * u * v * v));
        let m = (x.len() / (2 * BLOCK) * BLOCK) as f64;
        let (xy, x2y2) = (xy / m, x2y2 / m);
        assert!(xy.abs() < 0.006 && (x2y2 - 1.0).abs() < 0.02, "E[xy] {xy}, E[x²y²] {x2y2}");
        // Both halves of each pair, and the two signs, are used evenly.
        let positive = x.iter().step_by(2).filter(|&&v| v > 0.0).count() as f64 / (n / 2.0);
        assert!((positive - 0.5).abs() < 0.003, "{positive}");
    }
}
