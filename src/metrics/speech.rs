//! A spectral denoiser's evaluation (`--domain stft`): the test recordings with the run's
//! audio noise added (seeded, at the middle of its range of ratios), cleaned by the model
//! and by PCA with the same k on the same features, and measured as waves — SNR and
//! segmental SNR against the clean recording, beside the noisy input's — as well as on
//! the scaled features as for any run.

use super::pca::Pca;
use super::{reconstruct, EvalReport, SnrReport, EVAL_NOISE_SEED};
use crate::config::TrainConfig;
use crate::data::spec::{SeriesSpec, VectorSpec};
use crate::data::spectral::{self, Stft};
use crate::data::split::mix64;
use crate::data::vectors::{noisy_copy, scaled_rows};
use anyhow::{bail, Result};
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

/// The ratio (dB) `eval` adds its noise at: the middle of the run's range.
pub fn eval_snr(train: &TrainConfig) -> f64 {
    (train.noise_level + train.noise_level_high.unwrap_or(train.noise_level)) / 2.0
}

/// The cleaned recordings cut into segments of a frame, `[segments, frame]` zero-padded
/// (a padded tail adds nothing to a segment's signal or error), for `super::snr_db`.
fn segments(wave: &[f32], len: usize) -> Tensor {
    let mut padded = wave.to_vec();
    padded.resize(wave.len().div_ceil(len) * len, 0.0);
    Tensor::from_slice(&padded).view([-1, len as i64])
}

/// Evaluates `model` (on `device`) on the clean recordings `clean` of a spectral run
/// described by `input`, beside `pca`.
pub fn evaluate(
    model: &dyn Module,
    pca: &Pca,
    train: &TrainConfig,
    (spec, series): (&VectorSpec, &SeriesSpec),
    clean: &[Vec<f32>],
    device: Device,
) -> Result<EvalReport> {
    let Some(sp) = series.spectral else { bail!("not a spectral run") };
    if clean.is_empty() {
        bail!("no test recording is long enough for one frame ({} samples)", series.window);
    }
    let stft = Stft::new(series.window, series.hop);
    let scaled = |wave: &[f32]| scaled_rows(&stft, wave, sp.context, &spec.scaling);
    let wave_of = |noisy: &[f32], out: &Tensor| -> Result<Vec<f32>> {
        let units =
            spec.scaling.to_units(&Vec::<f32>::try_from(&out.to_device(Device::Cpu).view(-1))?);
        let units: Vec<f32> = units.iter().map(|&v| v as f32).collect();
        Ok(spectral::resynthesize(&stft, noisy, &units, sp.context))
    };
    // Per recording: squared feature errors of the model, PCA and the noisy input (summed),
    // and their waves' segments beside the clean ones'.
    let (mut features, mut rows, mut values) = ([0f64; 3], 0, 0);
    let (mut clean_segments, mut waves) = (Vec::new(), [Vec::new(), Vec::new(), Vec::new()]);
    let snr = eval_snr(train);
    for (i, wave) in clean.iter().enumerate() {
        let seed = mix64(EVAL_NOISE_SEED as u64 ^ i as u64);
        let noisy = noisy_copy(clean, i, (train.noise, snr), seed)?;
        let (target, input) = (scaled(wave)?.to_device(device), scaled(&noisy)?.to_device(device));
        let out = reconstruct(model, &input);
        let pca_out = super::batched(&input, |x| pca.reconstruct(x));
        for (k, o) in [&out, &pca_out, &input].iter().enumerate() {
            features[k] += super::sq_err_per_row(o, &target).sum(Kind::Double).double_value(&[]);
        }
        (rows, values) = (rows + target.size()[0] as usize, values + target.numel());
        let cleaned = [wave_of(&noisy, &out)?, wave_of(&noisy, &pca_out)?, noisy];
        for (k, y) in cleaned.iter().enumerate() {
            waves[k].push(segments(y, series.window));
        }
        clean_segments.push(segments(wave, series.window));
    }
    let x = Tensor::cat(&clean_segments, 0).to_kind(Kind::Double);
    let snrs = waves.map(|w| super::snr_db(&x, &Tensor::cat(&w, 0).to_kind(Kind::Double)));
    Ok(report((features, rows, values), snrs))
}

/// The report from the summed feature errors (`[model, PCA, noisy input]`, over `rows`
/// rows of `values` values) and the waves' (SNR, segmental SNR) in the same order.
fn report((features, rows, values): ([f64; 3], usize, usize), snr: [(f64, f64); 3]) -> EvalReport {
    let mse = |k: usize| features[k] / values as f64;
    let per_row = |k: usize| features[k] / rows as f64;
    EvalReport {
        images: rows,
        mse: mse(0),
        sq_err_per_image: per_row(0),
        psnr_db: None,
        ssim: None,
        noisy_mse: Some(mse(2)),
        noisy_sq_err_per_image: Some(per_row(2)),
        noisy_psnr_db: None,
        noisy_ssim: None,
        pca_mse: mse(1),
        pca_sq_err_per_image: per_row(1),
        pca_psnr_db: None,
        snr: Some(SnrReport {
            snr_db: snr[0].0,
            seg_snr_db: snr[0].1,
            pca_snr_db: snr[1].0,
            pca_seg_snr_db: snr[1].1,
            noisy_snr_db: Some(snr[2].0),
            noisy_seg_snr_db: Some(snr[2].1),
        }),
        // What a listener gets: the waves, not the features.
        worse_than_pca: snr[0].0 < snr[1].0,
        worse_than_noisy: Some(snr[0].0 < snr[2].0),
    }
}
