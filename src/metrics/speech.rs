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
use anyhow::{bail, Result};
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

/// The ratio (dB) `eval` adds its noise at: the middle of the run's range.
pub fn eval_snr(train: &TrainConfig) -> f64 {
    (train.noise_level + train.noise_level_high.unwrap_or(train.noise_level)) / 2.0
}

/// Running sums over the recordings: squared errors of the features and of the waves.
#[derive(Default)]
struct Sums {
    rows: usize,
    values: usize,
    /// Feature squared error of the model, PCA and the noisy input.
    features: [f64; 3],
    /// Σ clean², then the wave squared error of the model, PCA and the noisy input.
    signal: f64,
    waves: [f64; 3],
    /// Segmental SNR of each, summed over segments.
    segments: usize,
    seg: [f64; 3],
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
    let scaled = |wave: &[f32]| -> Result<Tensor> {
        let rows = spectral::rows(&stft, &Tensor::from_slice(wave), sp.context);
        let mut values = Vec::<f32>::try_from(&rows.view(-1))?;
        spec.scaling.apply(&mut values);
        Ok(Tensor::from_slice(&values).view(rows.size().as_slice()))
    };
    let wave_of = |noisy: &[f32], out: &Tensor| -> Result<Vec<f32>> {
        let units =
            spec.scaling.to_units(&Vec::<f32>::try_from(&out.to_device(Device::Cpu).view(-1))?);
        let units: Vec<f32> = units.iter().map(|&v| v as f32).collect();
        Ok(spectral::resynthesize(&stft, noisy, &units, sp.context))
    };
    let mut sums = Sums::default();
    let snr = eval_snr(train);
    for (i, wave) in clean.iter().enumerate() {
        let seed = mix64(EVAL_NOISE_SEED as u64 ^ i as u64);
        let others: Vec<&[f32]> =
            clean.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, c)| &c[..]).collect();
        let noisy = spectral::add_noise(
            wave,
            crate::data::vectors::audio_noise(train.noise, seed),
            snr,
            &others,
            seed,
        )?;
        let (target, input) = (scaled(wave)?, scaled(&noisy)?);
        let input_d = input.to_device(device);
        let out = reconstruct(model, &input_d);
        let pca_out = super::batched(&input_d, |x| pca.reconstruct(x));
        let outputs = [&out, &pca_out, &input_d];
        let target_d = target.to_device(device);
        for (k, o) in outputs.iter().enumerate() {
            sums.features[k] +=
                super::sq_err_per_row(o, &target_d).sum(Kind::Double).double_value(&[]);
        }
        sums.rows += target.size()[0] as usize;
        sums.values += target.numel();
        let waves = [wave_of(&noisy, &out)?, wave_of(&noisy, &pca_out)?, noisy.clone()];
        sums.signal += wave.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        for (k, y) in waves.iter().enumerate() {
            let err: f64 = wave.iter().zip(y).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
            sums.waves[k] += err;
            sums.seg[k] += segmental(wave, y, series.window);
        }
        sums.segments += wave.len().div_ceil(series.window);
    }
    Ok(report(&sums))
}

/// Σ over segments of `len` samples of each segment's SNR of `y` against `x`, clamped to
/// [−10, 35] dB.
fn segmental(x: &[f32], y: &[f32], len: usize) -> f64 {
    x.chunks(len)
        .zip(y.chunks(len))
        .map(|(a, b)| {
            let signal: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum();
            let err: f64 = a.iter().zip(b).map(|(&p, &q)| (p as f64 - q as f64).powi(2)).sum();
            (10.0 * (signal.max(1e-300) / err.max(1e-300)).log10()).clamp(-10.0, 35.0)
        })
        .sum()
}

fn report(s: &Sums) -> EvalReport {
    let mse = |k: usize| s.features[k] / s.values as f64;
    let per_row = |k: usize| s.features[k] / s.rows as f64;
    let snr = |k: usize| 10.0 * (s.signal / s.waves[k].max(1e-300)).log10();
    let seg = |k: usize| s.seg[k] / s.segments as f64;
    EvalReport {
        images: s.rows,
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
            snr_db: snr(0),
            seg_snr_db: seg(0),
            pca_snr_db: snr(1),
            pca_seg_snr_db: seg(1),
            noisy_snr_db: Some(snr(2)),
            noisy_seg_snr_db: Some(seg(2)),
        }),
        // What a listener gets: the waves, not the features.
        worse_than_pca: snr(0) < snr(1),
        worse_than_noisy: Some(snr(0) < snr(2)),
    }
}
