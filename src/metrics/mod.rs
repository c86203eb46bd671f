//! Reconstruction quality: MSE, squared error per image, PSNR and SSIM, for the model, for
//! the corrupted input it was given, and for a PCA baseline of the same code size.

pub mod chunked;
pub mod detection;
pub mod detector;
pub mod iforest;
pub mod pca;
pub mod probe;
pub mod reference;
pub mod speech;
pub mod ssim;
pub mod tsne;

use crate::config::{Loss, ModelConfig, TrainConfig};
use crate::data::{noise, to_unit_float};
use crate::model::Autoencoder;
use pca::Pca;
use serde::{Deserialize, Serialize};
use tch::nn::Module;
use tch::{Kind, Tensor};

/// Seed of the corruption used by `eval` and `grid`, so their numbers repeat.
pub const EVAL_NOISE_SEED: i64 = 0x5EED;
/// Images per forward pass during evaluation (no gradients, so large batches are cheap).
pub const EVAL_BATCH: i64 = 1000;
/// MSE floor for PSNR, so a perfect reconstruction reads 100 dB instead of infinity.
const MSE_FLOOR: f64 = 1e-10;

/// Test-set metrics. `mse` is per value (per pixel and channel, or per feature), in the
/// network's units ([0, 1] for images, scaled units for vectors); `psnr_db` is
/// 10·log10(1 / mse) over the whole set (peak value 1); `ssim` is the mean SSIM of the
/// 8-bit images. PSNR and SSIM are image measures: vectors have neither.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Test rows (images or vectors).
    pub images: usize,
    pub mse: f64,
    /// Squared error summed over a row's values, averaged over rows.
    pub sq_err_per_image: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub psnr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ssim: Option<f64>,
    /// Denoising runs: the same figures for the corrupted input itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_mse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_sq_err_per_image: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_psnr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_ssim: Option<f64>,
    /// PCA with as many components as the model's code, fitted on the model's training
    /// images and given the same inputs.
    pub pca_mse: f64,
    pub pca_sq_err_per_image: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pca_psnr_db: Option<f64>,
    /// Series runs: signal-to-noise ratios in the file's units over the test windows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snr: Option<SnrReport>,
    /// Whether the model's squared error is above PCA's with the same k: a network that
    /// does worse than the linear baseline has not learnt what it could.
    #[serde(default)]
    pub worse_than_pca: bool,
    /// Denoising runs: whether the output is further from the clean rows than the noisy
    /// input the model was given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub worse_than_noisy: Option<bool>,
}

/// SNR = 10·log10(Σx² / Σ(x − y)²) over every value of the windows, and segmental SNR,
/// the mean over windows of each window's SNR clamped to [−10, 35] dB (the usual speech
/// convention, so silent windows do not dominate), in the file's own units: of the
/// model's output, of PCA's and, for denoising runs, of the noisy input itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnrReport {
    pub snr_db: f64,
    pub seg_snr_db: f64,
    pub pca_snr_db: f64,
    pub pca_seg_snr_db: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_snr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub noisy_seg_snr_db: Option<f64>,
}

impl SnrReport {
    /// From the (SNR, segmental SNR) pairs of the model, PCA and the noisy input.
    fn new(model: (f64, f64), pca: (f64, f64), noisy: Option<(f64, f64)>) -> SnrReport {
        SnrReport {
            snr_db: model.0,
            seg_snr_db: model.1,
            pca_snr_db: pca.0,
            pca_seg_snr_db: pca.1,
            noisy_snr_db: noisy.map(|s| s.0),
            noisy_seg_snr_db: noisy.map(|s| s.1),
        }
    }
}

/// Scaled rows back in the file's units (f64), on `device`.
fn in_units(
    scaling: &crate::data::spec::Scaling,
    device: tch::Device,
) -> impl Fn(&Tensor) -> Tensor {
    let scale = Tensor::from_slice(&scaling.scale).to_kind(Kind::Double).to_device(device);
    let offset = Tensor::from_slice(&scaling.offset).to_kind(Kind::Double).to_device(device);
    move |t: &Tensor| t.to_kind(Kind::Double) * &scale + &offset
}

/// (SNR, segmental SNR) of `y` against `x` (`[N, D]`, rows = windows), in dB.
fn snr_db(x: &Tensor, y: &Tensor) -> (f64, f64) {
    SnrSums::of(x, y).db()
}

/// What SNR and segmental SNR are made of, summed over rows (so parts of a set add up):
/// Σx², Σ(x − y)², the sum of the rows' clamped SNRs, and the rows.
#[derive(Clone, Copy, Debug, Default)]
struct SnrSums {
    signal: f64,
    error: f64,
    segments: f64,
    rows: f64,
}

impl SnrSums {
    fn of(x: &Tensor, y: &Tensor) -> SnrSums {
        let signal = x.square().sum_dim_intlist(1, false, Kind::Double);
        let error = sq_err_per_row(x, y);
        let total = |t: &Tensor| t.sum(Kind::Double).double_value(&[]);
        let per = (&signal / error.clamp_min(1e-300)).log10() * 10.0;
        SnrSums {
            signal: total(&signal),
            error: total(&error),
            segments: total(&per.clamp(-10.0, 35.0)),
            rows: x.size()[0] as f64,
        }
    }

    fn add(&mut self, o: SnrSums) {
        (self.signal, self.error) = (self.signal + o.signal, self.error + o.error);
        (self.segments, self.rows) = (self.segments + o.segments, self.rows + o.rows);
    }

    /// (SNR, segmental SNR) in dB.
    fn db(&self) -> (f64, f64) {
        (10.0 * (self.signal / self.error.max(1e-300)).log10(), self.segments / self.rows.max(1.0))
    }
}

/// Peak signal-to-noise ratio for signals in [0, 1].
pub fn psnr(mse: f64) -> f64 {
    -10.0 * mse.max(MSE_FLOOR).log10()
}

/// Applies `f` to `EVAL_BATCH`-row slices of `x` without gradients and concatenates the
/// results along the first dimension.
pub fn batched(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    tch::no_grad(|| {
        let n = x.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(EVAL_BATCH as usize)
            .map(|start| f(&x.narrow(0, start, EVAL_BATCH.min(n - start))))
            .collect();
        Tensor::cat(&parts, 0)
    })
}

/// The model's reconstructions of `inputs` (`[N, D]` f32), in batches, without gradients.
pub fn reconstruct(model: &dyn Module, inputs: &Tensor) -> Tensor {
    batched(inputs, |x| model.forward(x))
}

/// Squared error of each row, summed over pixels: `[N, D]`, `[N, D]` → `[N]` (f64).
pub fn sq_err_per_row(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).square().sum_dim_intlist(1, false, Kind::Double)
}

/// Mean reconstruction loss per pixel of `model` on `inputs` against `targets`, in
/// batches. One host synchronisation in all.
pub fn mean_loss(model: &Autoencoder, inputs: &Tensor, targets: &Tensor, loss: Loss) -> f64 {
    let output = reconstruct(model, inputs);
    match loss {
        Loss::Mse => mse(&output, targets),
        Loss::Bce => tch::no_grad(|| {
            let (o, t) = (output.to_kind(Kind::Double), targets.to_kind(Kind::Double));
            crate::loss::reconstruction(&o, &t, Loss::Bce).double_value(&[])
        }),
    }
}

fn mse(a: &Tensor, b: &Tensor) -> f64 {
    sq_err_per_row(a, b).sum(Kind::Double).double_value(&[]) / a.numel() as f64
}

/// The model's input for clean rows `x` (`[N, D]` f32) under `mode`, with fixed-seed
/// corruption so evaluation repeats exactly (`bounded`: images in [0, 1]).
pub fn eval_inputs(x: &Tensor, train: &TrainConfig, bounded: bool) -> Tensor {
    noise::model_input_seeded(x, train, EVAL_NOISE_SEED, bounded)
}

/// Evaluates `model` on u8 images `[N, D]` on the model's device, beside `pca`.
pub fn evaluate(
    model: &dyn Module,
    config: &ModelConfig,
    train: &TrainConfig,
    images: &Tensor,
    pca: &Pca,
) -> EvalReport {
    let shape = config.image_shape();
    let clean = to_unit_float(images);
    let inputs = eval_inputs(&clean, train, config.input.bounded());
    let (n, d) = (clean.size()[0], clean.size()[1]);
    let output = reconstruct(model, &inputs);
    let mse_model = mse(&output, &clean);
    let mean_ssim = |x: &Tensor| {
        batched(&Tensor::stack(&[x, &clean], 1), |pair| {
            ssim::ssim(&pair.select(1, 0), &pair.select(1, 1), shape)
        })
        .mean(Kind::Double)
        .double_value(&[])
    };
    let noisy = (train.mode == crate::config::Mode::Denoise).then(|| mse(&inputs, &clean));
    let pca_mse = mse(&batched(&inputs, |x| pca.reconstruct(x)), &clean);
    let image = config.input.bounded();
    let psnr = |m: f64| image.then(|| psnr(m));
    let snr = match config.input.series() {
        Some((v, _)) => {
            let units = in_units(&v.scaling, clean.device());
            let x = units(&clean);
            let model = snr_db(&x, &units(&output));
            let pca = snr_db(&x, &units(&batched(&inputs, |b| pca.reconstruct(b))));
            let noisy_snr = noisy.map(|_| snr_db(&x, &units(&inputs)));
            Some(SnrReport::new(model, pca, noisy_snr))
        }
        None => None,
    };
    EvalReport {
        snr,
        images: n as usize,
        mse: mse_model,
        sq_err_per_image: mse_model * d as f64,
        psnr_db: psnr(mse_model),
        ssim: image.then(|| mean_ssim(&output)),
        noisy_mse: noisy,
        noisy_sq_err_per_image: noisy.map(|m| m * d as f64),
        noisy_psnr_db: noisy.and_then(psnr),
        noisy_ssim: noisy.filter(|_| image).map(|_| mean_ssim(&inputs)),
        pca_mse,
        pca_sq_err_per_image: pca_mse * d as f64,
        pca_psnr_db: psnr(pca_mse),
        worse_than_pca: mse_model > pca_mse,
        worse_than_noisy: noisy.map(|noisy| mse_model > noisy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_matches_hand_computed_values() {
        let _rng = crate::rng_lock();
        assert!((psnr(0.01) - 20.0).abs() < 1e-12);
        assert!((psnr(1.0)).abs() < 1e-12);
        assert!((psnr(0.0) - 100.0).abs() < 1e-9);
        // 8-bit convention check: mse of one grey level (1/255)² is 48.13 dB.
        assert!((psnr((1.0f64 / 255.0).powi(2)) - 48.1308).abs() < 1e-3);
    }

    #[test]
    fn batched_matches_unbatched() {
        let _rng = crate::rng_lock();
        let x = Tensor::rand([2500, 3], (Kind::Float, tch::Device::Cpu));
        assert!(batched(&x, |b| b * 2.0).equal(&(&x * 2.0)));
        let e = sq_err_per_row(&x, &Tensor::zeros_like(&x));
        assert_eq!(e.size(), vec![2500]);
        assert!(
            (e.double_value(&[7]) - x.get(7).square().sum(Kind::Double).double_value(&[])).abs()
                < 1e-12
        );
    }

    #[test]
    fn eval_report_omits_noisy_fields_for_reconstruction() {
        let r = EvalReport {
            images: 1,
            mse: 0.01,
            sq_err_per_image: 7.84,
            psnr_db: Some(20.0),
            ssim: Some(0.9),
            noisy_mse: None,
            noisy_sq_err_per_image: None,
            noisy_psnr_db: None,
            noisy_ssim: None,
            pca_mse: 0.02,
            pca_sq_err_per_image: 15.68,
            pca_psnr_db: Some(17.0),
            snr: None,
            worse_than_pca: false,
            worse_than_noisy: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("noisy"), "{json}");
        assert_eq!(serde_json::from_str::<EvalReport>(&json).unwrap(), r);
    }
}
