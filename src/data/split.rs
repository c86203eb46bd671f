//! Deterministic train/validation split: a seeded Fisher–Yates shuffle of indices that
//! does not depend on libtorch's RNG, so the split is the same on every device.

/// SplitMix64 (Steele et al. 2014): tiny, fast, and good enough to shuffle indices and to
/// draw the Isolation Forest baseline's samples and cuts.
pub struct SplitMix64(pub u64);

/// SplitMix64's output function: a bijective mix of 64 bits, used to derive independent
/// seeds from (seed, epoch, step).
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        let z = mix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// A permutation of `0..n` determined by `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    shuffle(&mut idx, seed);
    idx
}

/// `permutation` in half the memory (a training epoch's order over millions of windows):
/// the same numbers, as u32.
pub fn permutation32(n: u32, seed: u64) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n).collect();
    shuffle(&mut idx, seed);
    idx
}

/// Fisher–Yates from the end, with draws from `seed`.
fn shuffle<T>(idx: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..idx.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
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

/// Splits `0..labels.len()` into (train, test) index lists, ascending, holding out
/// `fraction` of every class (rounded per class, as scikit-learn's stratified split does
/// up to rounding), each class shuffled by its own stream of `seed`. A class of one row
/// stays in training.
pub fn stratified(labels: &[u8], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (class, rows) in by_class.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
        let perm = permutation(rows.len(), mix64(seed) ^ class as u64);
        let n_test = val_count(rows.len(), fraction);
        test.extend(perm[..n_test].iter().map(|&k| rows[k]));
        train.extend(perm[n_test..].iter().map(|&k| rows[k]));
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
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

    #[test]
    fn stratified_split_keeps_every_class_share() {
        // 900 rows of class 0, 90 of class 1, 10 of class 2, interleaved.
        let class = |i: usize| match i % 100 {
            0..90 => 0,
            90 => 2,
            _ => 1,
        };
        let labels: Vec<u8> = (0..1000).map(class).collect();
        let count = |idx: &[usize], c: u8| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!([0, 1, 2].map(|c| labels.iter().filter(|&&l| l == c).count()), [900, 90, 10]);
        let (train, test) = stratified(&labels, 0.3, 5);
        assert_eq!([0, 1, 2].map(|c| count(&test, c)), [270, 27, 3]);
        assert_eq!(train.len() + test.len(), 1000);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(stratified(&labels, 0.3, 5), (train, test.clone()));
        assert_ne!(stratified(&labels, 0.3, 6).1, test);
    }
}
