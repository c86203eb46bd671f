//! Reconstruction quality: MSE, squared error per image and PSNR, on the model and on the
//! corrupted input it was given.

use crate::config::Mode;
use crate::data::{noise, to_unit_float};
use crate::model::Autoencoder;
use serde::{Deserialize, Serialize};
use tch::nn::Module;
use tch::{Kind, Tensor};

/// Seed of the corruption used by `eval` and `grid`, so their numbers repeat.
pub const EVAL_NOISE_SEED: i64 = 0x5EED;
/// Images per forward pass during evaluation (no gradients, so large batches are cheap).
pub const EVAL_BATCH: i64 = 1000;
/// MSE floor for PSNR, so a perfect reconstruction reads 100 dB instead of infinity.
const MSE_FLOOR: f64 = 1e-10;

/// Test-set metrics. `mse` is per pixel, in [0, 1]² units; `psnr_db` is
/// 10·log10(1 / mse) over the whole set (peak value 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub images: usize,
    pub mse: f64,
    /// Squared error summed over an image's pixels, averaged over images.
    pub sq_err_per_image: f64,
    pub psnr_db: f64,
    /// Denoising runs: the same figures for the corrupted input itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_mse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_psnr_db: Option<f64>,
}

/// Peak signal-to-noise ratio for signals in [0, 1].
pub fn psnr(mse: f64) -> f64 {
    -10.0 * mse.max(MSE_FLOOR).log10()
}

/// Sum of squared differences, accumulated in f64 on the tensors' device.
fn sq_err_sum(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).square().sum(Kind::Double)
}

/// Mean squared error per pixel of `model` on `inputs` against `targets` (both `[N, D]`
/// f32), in batches, without gradients. One host synchronisation in all.
pub fn mean_sq_err(model: &Autoencoder, inputs: &Tensor, targets: &Tensor) -> f64 {
    tch::no_grad(|| {
        let n = inputs.size()[0];
        let total = (0..n)
            .step_by(EVAL_BATCH as usize)
            .map(|start| {
                let len = EVAL_BATCH.min(n - start);
                let out = model.forward(&inputs.narrow(0, start, len));
                sq_err_sum(&out, &targets.narrow(0, start, len))
            })
            .fold(Tensor::zeros([], (Kind::Double, inputs.device())), |acc, s| acc + s);
        total.double_value(&[]) / inputs.numel() as f64
    })
}

/// The model's input for clean images `x` (`[N, D]` f32) under `mode`, with fixed-seed
/// corruption so evaluation repeats exactly.
pub fn eval_inputs(x: &Tensor, mode: Mode, sigma: f64) -> Tensor {
    noise::model_input_seeded(x, mode, sigma, EVAL_NOISE_SEED)
}

/// Evaluates `model` on u8 images `[N, D]` already on the model's device.
pub fn evaluate(model: &Autoencoder, images: &Tensor, mode: Mode, sigma: f64) -> EvalReport {
    let clean = to_unit_float(images);
    let inputs = eval_inputs(&clean, mode, sigma);
    let (n, d) = (clean.size()[0], clean.size()[1]);
    let mse = mean_sq_err(model, &inputs, &clean);
    let noisy_mse = match mode {
        Mode::Reconstruct => None,
        Mode::Denoise => Some(sq_err_sum(&inputs, &clean).double_value(&[]) / (n * d) as f64),
    };
    EvalReport {
        images: n as usize,
        mse,
        sq_err_per_image: mse * d as f64,
        psnr_db: psnr(mse),
        noisy_mse,
        noisy_psnr_db: noisy_mse.map(psnr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_matches_hand_computed_values() {
        assert!((psnr(0.01) - 20.0).abs() < 1e-12);
        assert!((psnr(1.0)).abs() < 1e-12);
        assert!((psnr(0.0) - 100.0).abs() < 1e-9);
        // 8-bit convention check: mse of one grey level (1/255)² is 48.13 dB.
        assert!((psnr((1.0f64 / 255.0).powi(2)) - 48.1308).abs() < 1e-3);
    }

    #[test]
    fn eval_report_omits_noisy_fields_for_reconstruction() {
        let r = EvalReport {
            images: 1,
            mse: 0.01,
            sq_err_per_image: 7.84,
            psnr_db: 20.0,
            noisy_mse: None,
            noisy_psnr_db: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("noisy"), "{json}");
        assert_eq!(serde_json::from_str::<EvalReport>(&json).unwrap(), r);
    }
}
