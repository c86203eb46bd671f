//! Input corruption for denoising autoencoders: Gaussian, masking and salt-and-pepper.

use crate::config::{Mode, NoiseKind, TrainConfig};
use tch::{Kind, Tensor};

/// Corrupts `x` (any shape) with `kind` noise of strength `level` (σ for Gaussian, the
/// probability p otherwise), drawn from libtorch's generator on x's device. `bounded`:
/// the values are images in [0, 1], and Gaussian noise is clamped back into that range;
/// scaled vector features are not clamped.
pub fn corrupt(x: &Tensor, kind: NoiseKind, level: f64, bounded: bool) -> Tensor {
    match kind {
        NoiseKind::Gaussian if bounded => (x + x.randn_like() * level).clamp(0.0, 1.0),
        NoiseKind::Gaussian => x + x.randn_like() * level,
        NoiseKind::Masking => x * x.rand_like().ge(level).to_kind(x.kind()),
        NoiseKind::SaltPepper => {
            let hit = x.rand_like().lt(level);
            let salt = x.rand_like().lt(0.5).to_kind(x.kind());
            salt.where_self(&hit, x)
        }
        // Audio noise is added to recordings before their spectra are taken
        // (`vectors::SpeechPairs`, and the spectral commands): features pass unchanged.
        NoiseKind::White | NoiseKind::Pink | NoiseKind::Babble | NoiseKind::Mix => {
            x.shallow_clone()
        }
    }
}

/// What the network sees for clean rows `x` under `train`'s mode: `x` itself, or a
/// fresh corruption of it (`bounded` as for `corrupt`).
pub fn model_input(x: &Tensor, train: &TrainConfig, bounded: bool) -> Tensor {
    match train.mode {
        Mode::Reconstruct => x.shallow_clone(),
        Mode::Denoise => corrupt(x, train.noise, train.noise_level, bounded),
    }
}

/// The same with a fixed seed, for numbers that must repeat (evaluation, grids).
/// Reseeds libtorch's global generator: call it outside training.
pub fn model_input_seeded(x: &Tensor, train: &TrainConfig, seed: i64, bounded: bool) -> Tensor {
    tch::manual_seed(seed);
    model_input(x, train, bounded)
}

/// Share of the elements of `a` and `b` that differ.
pub fn changed_share(a: &Tensor, b: &Tensor) -> f64 {
    a.ne_tensor(b).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn grey(n: i64) -> Tensor {
        Tensor::full([n], 0.5, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn gaussian_noise_has_the_requested_spread_and_stays_in_range() {
        let _rng = crate::rng_lock();
        tch::manual_seed(0);
        let x = grey(100_000);
        let y = corrupt(&x, NoiseKind::Gaussian, 0.1, true);
        assert_eq!(y.size(), x.size());
        let std = (&y - &x).std(true).double_value(&[]);
        assert!((std - 0.1).abs() < 0.002, "std {std}");
        let y = corrupt(&x, NoiseKind::Gaussian, 2.0, true);
        assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 1.0);
        // Clamping piles the heavy tails onto 0 and 1.
        assert!(y.eq(0.0).sum(Kind::Int64).int64_value(&[]) > 30_000);
        // Scaled vector features are not clamped: the spread is σ whatever the values.
        let y = corrupt(&x, NoiseKind::Gaussian, 2.0, false);
        let std = (&y - &x).std(true).double_value(&[]);
        assert!((std - 2.0).abs() < 0.04 && y.min().double_value(&[]) < -5.0, "std {std}");
    }

    #[test]
    fn masking_and_salt_pepper_corrupt_the_expected_share_of_pixels() {
        let _rng = crate::rng_lock();
        tch::manual_seed(1);
        let x = grey(200_000);
        // With n = 200k and p = 0.3 the standard error of the share is 0.001.
        let masked = corrupt(&x, NoiseKind::Masking, 0.3, true);
        assert!((changed_share(&masked, &x) - 0.3).abs() < 0.005);
        assert!(masked.ne(0.0).logical_and(&masked.ne(0.5)).sum(Kind::Int64).int64_value(&[]) == 0);
        let sp = corrupt(&x, NoiseKind::SaltPepper, 0.2, true);
        assert!((changed_share(&sp, &x) - 0.2).abs() < 0.005);
        let ones = sp.eq(1.0).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert!((ones - 0.1).abs() < 0.004, "half the hits are salt: {ones}");
        assert!(corrupt(&x, NoiseKind::Masking, 0.0, true).equal(&x));
    }

    #[test]
    fn seeded_noise_repeats_and_reconstruction_is_identity() {
        let _rng = crate::rng_lock();
        let x = Tensor::rand([64], (Kind::Float, Device::Cpu));
        let denoise = TrainConfig { mode: Mode::Denoise, ..Default::default() };
        let a = model_input_seeded(&x, &denoise, 5, true);
        let b = model_input_seeded(&x, &denoise, 5, true);
        assert!(a.equal(&b));
        assert!(!a.equal(&x));
        assert!(corrupt(&x, NoiseKind::Gaussian, 0.0, true).equal(&x));
        assert!(model_input(&x, &TrainConfig::default(), true).equal(&x));
    }
}
