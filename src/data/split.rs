//! Deterministic train/validation split: a seeded Fisher–Yates shuffle of indices that
//! does not depend on libtorch's RNG, so the split is the same on every device.

/// SplitMix64 (Steele et al. 2014): tiny, fast, and good enough to shuffle indices.
struct SplitMix64(u64);

/// SplitMix64's output function: a bijective mix of 64 bits, used to derive independent
/// seeds from (seed, epoch, step).
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        let z = mix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z
    }

    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// A permutation of `0..n` determined by `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
    idx
}

/// Number of validation images for `n` images: `round(n * fraction)`, at least one when
/// the fraction is positive, and never all of them.
pub fn val_count(n: usize, fraction: f64) -> usize {
    if fraction <= 0.0 || n < 2 {
        return 0;
    }
    ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
}

/// Splits `0..n` into (train, validation) index lists, each in ascending order.
pub fn train_val(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let perm = permutation(n, seed);
    let n_val = val_count(n, fraction);
    let mut val = perm[..n_val].to_vec();
    let mut train = perm[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_seeded_permutation() {
        let p = permutation(1000, 7);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(p, permutation(1000, 7));
        assert_ne!(p, permutation(1000, 8));
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn split_is_disjoint_and_sized() {
        let (train, val) = train_val(8000, 0.1, 42);
        assert_eq!((train.len(), val.len()), (7200, 800));
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..8000).collect::<Vec<_>>());
        assert_eq!(val_count(10, 0.0), 0);
        assert_eq!(val_count(10, 0.01), 1);
        assert_eq!(val_count(2, 0.9), 1);
        assert_eq!(val_count(1, 0.5), 0);
    }
}
