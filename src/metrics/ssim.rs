//! Structural similarity (Wang et al. 2004) on 8-bit images: 11×11 Gaussian window with
//! σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, computed over the window's valid positions as in
//! the authors' reference `ssim.m`. Colour images are scored per channel and the channels
//! averaged (as scikit-image's `channel_axis` does).

use tch::{Kind, Tensor};

const WINDOW: i64 = 11;
const SIGMA: f64 = 1.5;
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// The normalised 1-D Gaussian window of `size` taps as the `[n - size + 1, n]` band
/// matrix that applies it at every valid position of a length-`n` signal (f64). The 2-D
/// window is the outer product of two such windows, so blurring an `H × W` image is
/// `band(H) · X · band(W)ᵀ`: two small matrix products instead of an 11×11 convolution,
/// whose im2col buffers cost far more than the arithmetic.
fn band(size: i64, n: i64, device: tch::Device) -> Tensor {
    let c = (size - 1) as f64 / 2.0;
    let g: Vec<f64> =
        (0..size).map(|i| (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp()).collect();
    let total: f64 = g.iter().sum();
    let rows = n - size + 1;
    let mut m = vec![0.0; (rows * n) as usize];
    for r in 0..rows {
        for (t, v) in g.iter().enumerate() {
            m[(r * n + r + t as i64) as usize] = v / total;
        }
    }
    Tensor::from_slice(&m).view([rows, n]).to_device(device)
}

/// Mean SSIM of each image pair. `a`, `b`: `[N, C*H*W]` in [0, 1], quantised to 8 bits
/// first; each channel is scored alone and the C scores averaged; returns `[N]` (f64).
/// Images smaller than the window use the largest odd window that fits.
pub fn ssim(a: &Tensor, b: &Tensor, (channels, height, width): (i64, i64, i64)) -> Tensor {
    let n = a.size()[0];
    let per_channel = |x: &Tensor| x.reshape([n * channels, height * width]);
    ssim_gray(&per_channel(a), &per_channel(b), height, width).view([n, channels]).mean_dim(
        1,
        false,
        Kind::Double,
    )
}

fn ssim_gray(a: &Tensor, b: &Tensor, height: i64, width: i64) -> Tensor {
    let size = WINDOW.min(height.min(width) - (1 - height.min(width) % 2)).max(1);
    let (bh, bw) = (band(size, height, a.device()), band(size, width, a.device()).tr());
    let to8 = |x: &Tensor| {
        (x.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Double).view([-1, height, width])
    };
    let (x, y) = (to8(a), to8(b));
    let blur = |t: &Tensor| bh.matmul(t).matmul(&bw);
    let (mx, my) = (blur(&x), blur(&y));
    let (mx2, my2, mxy) = (mx.square(), my.square(), &mx * &my);
    let vx = blur(&x.square()) - &mx2;
    let vy = blur(&y.square()) - &my2;
    let cov = blur(&(&x * &y)) - &mxy;
    let map = ((mxy * 2.0 + C1) * (cov * 2.0 + C2)) / ((mx2 + my2 + C1) * (vx + vy + C2));
    map.flatten(1, -1).mean_dim(1, false, Kind::Double)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn img(v: f64) -> Tensor {
        Tensor::full([1, 28 * 28], v, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn identical_images_score_one() {
        let _rng = crate::rng_lock();
        let x = Tensor::rand([3, 784], (Kind::Float, Device::Cpu));
        let s = ssim(&x, &x, (1, 28, 28));
        assert!((s - 1.0).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn constant_images_match_the_closed_form() {
        let _rng = crate::rng_lock();
        // With no variance SSIM reduces to (2ab + C1) / (a² + b² + C1) in 8-bit units.
        let (a, b) = (100.0, 150.0);
        let expected = (2.0 * a * b + C1) / (a * a + b * b + C1);
        let s = ssim(&img(a / 255.0), &img(b / 255.0), (1, 28, 28)).double_value(&[0]);
        assert!((s - expected).abs() < 1e-9, "{s} vs {expected}");
    }

    #[test]
    fn matches_the_independent_loop_reference() {
        let _rng = crate::rng_lock();
        // scripts/reference/ssim_reference.py: explicit loops over every window → 0.0558666629.
        let pattern = |mul: usize, add: usize| -> Vec<f32> {
            (0..784).map(|i| ((i * mul + add) % 256) as f32 / 255.0).collect()
        };
        let a = Tensor::from_slice(&pattern(7, 0)).view([1, 784]);
        let b = Tensor::from_slice(&pattern(13, 5)).view([1, 784]);
        let s = ssim(&a, &b, (1, 28, 28)).double_value(&[0]);
        assert!((s - 0.0558666629).abs() < 1e-9, "{s}");
    }

    #[test]
    fn noise_lowers_ssim_and_the_score_is_symmetric() {
        let _rng = crate::rng_lock();
        tch::manual_seed(3);
        let x = Tensor::rand([4, 784], (Kind::Float, Device::Cpu));
        let noisy = (&x + Tensor::randn_like(&x) * 0.2).clamp(0.0, 1.0);
        let s = ssim(&x, &noisy, (1, 28, 28));
        assert!(s.max().double_value(&[]) < 0.95);
        assert!((s - ssim(&noisy, &x, (1, 28, 28))).abs().max().double_value(&[]) < 1e-12);
        // Windows shrink to fit small images.
        assert_eq!(ssim(&x.narrow(1, 0, 25), &x.narrow(1, 0, 25), (1, 5, 5)).size(), vec![4]);
    }

    #[test]
    fn colour_is_the_mean_of_the_channels() {
        let _rng = crate::rng_lock();
        tch::manual_seed(5);
        let x = Tensor::rand([2, 3 * 64], (Kind::Float, Device::Cpu));
        let y = (&x + Tensor::randn_like(&x) * 0.1).clamp(0.0, 1.0);
        let colour = ssim(&x, &y, (3, 8, 8));
        for i in 0..2 {
            let planes = |t: &Tensor| t.get(i).view([3, 64]);
            let mean = ssim(&planes(&x), &planes(&y), (1, 8, 8)).mean(Kind::Double);
            assert!((colour.double_value(&[i]) - mean.double_value(&[])).abs() < 1e-12);
        }
    }
}
