//! Input corruption for denoising autoencoders.

use crate::config::Mode;
use tch::Tensor;

/// clamp(x + σ·ε, 0, 1) with ε ~ N(0, I) drawn from libtorch's generator on x's device.
/// Shape and dtype follow `x`.
pub fn gaussian(x: &Tensor, sigma: f64) -> Tensor {
    (x + x.randn_like() * sigma).clamp(0.0, 1.0)
}

/// What the network sees for clean images `x` under `mode`: `x` itself, or a fresh
/// corruption of it.
pub fn model_input(x: &Tensor, mode: Mode, sigma: f64) -> Tensor {
    match mode {
        Mode::Reconstruct => x.shallow_clone(),
        Mode::Denoise => gaussian(x, sigma),
    }
}

/// The same corruption with a fixed seed, for numbers that must repeat (evaluation,
/// grids). Reseeds libtorch's global generator: call it outside training.
pub fn model_input_seeded(x: &Tensor, mode: Mode, sigma: f64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    model_input(x, mode, sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn noise_has_the_requested_spread_and_stays_in_range() {
        tch::manual_seed(0);
        let x = Tensor::full([100_000], 0.5, (Kind::Float, Device::Cpu));
        let y = gaussian(&x, 0.1);
        assert_eq!(y.size(), x.size());
        let std = (&y - &x).std(true).double_value(&[]);
        assert!((std - 0.1).abs() < 0.002, "std {std}");
        let y = gaussian(&x, 2.0);
        assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 1.0);
        // Clamping piles the heavy tails onto 0 and 1.
        assert!(y.eq(0.0).sum(Kind::Int64).int64_value(&[]) > 30_000);
    }

    #[test]
    fn seeded_noise_repeats_and_zero_sigma_is_identity() {
        let x = Tensor::rand([64], (Kind::Float, Device::Cpu));
        let a = model_input_seeded(&x, Mode::Denoise, 0.3, 5);
        let b = model_input_seeded(&x, Mode::Denoise, 0.3, 5);
        assert!(a.equal(&b));
        assert!(!a.equal(&x));
        assert!(gaussian(&x, 0.0).equal(&x));
        assert!(model_input(&x, Mode::Reconstruct, 0.3).equal(&x));
    }
}
