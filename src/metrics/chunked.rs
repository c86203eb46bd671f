//! `evaluate` on rows read a part at a time (windows of series, `data::windows`): the
//! same report, from sums over the parts. Each part's noise (a denoiser's evaluation) is
//! drawn from its own fixed seed; a set that is one part gets `evaluate`'s numbers.

use super::pca::Pca;
use super::SnrSums;
use super::EVAL_NOISE_SEED;
use super::{batched, evaluate, in_units, reconstruct, sq_err_per_row, EvalReport, SnrReport};
use crate::config::{Mode, ModelConfig, TrainConfig};
use crate::data::{noise, Rows};
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

/// The squared errors and SNR sums of one way of reconstructing the rows.
#[derive(Clone, Copy, Default)]
struct Sums {
    sq: f64,
    snr: SnrSums,
}

impl Sums {
    fn add(&mut self, clean: &Tensor, out: &Tensor, units: &dyn Fn(&Tensor) -> Tensor) {
        self.sq += sq_err_per_row(out, clean).sum(Kind::Double).double_value(&[]);
        self.snr.add(SnrSums::of(&units(clean), &units(out)));
    }
}

/// `evaluate` of `model` on `rows`, beside `pca`, reading them a part at a time.
pub fn evaluate_rows(
    model: &dyn Module,
    config: &ModelConfig,
    train: &TrainConfig,
    rows: &Rows,
    pca: &Pca,
    device: Device,
) -> EvalReport {
    let parts = rows.chunks();
    let bounded = config.input.bounded();
    if parts.len() <= 1 || bounded {
        return evaluate(model, config, train, &rows.to_device(device), pca);
    }
    let series = config.input.series().map(|(v, _)| in_units(&v.scaling, device));
    let units = |t: &Tensor| match &series {
        Some(units) => units(t),
        None => t.to_kind(Kind::Double),
    };
    let (mut model_sums, mut pca_sums, mut noisy_sums) =
        (Sums::default(), Sums::default(), Sums::default());
    let (n, d) = (rows.len(), rows.width());
    for (k, r) in parts.into_iter().enumerate() {
        let clean = rows.unit_range(r, device);
        let inputs = noise::model_input_seeded(&clean, train, EVAL_NOISE_SEED + k as i64, bounded);
        model_sums.add(&clean, &reconstruct(model, &inputs), &units);
        pca_sums.add(&clean, &batched(&inputs, |b| pca.reconstruct(b)), &units);
        noisy_sums.add(&clean, &inputs, &units);
    }
    let values = (n * d).max(1) as f64;
    let (mse, pca_mse) = (model_sums.sq / values, pca_sums.sq / values);
    let noisy = (train.mode == Mode::Denoise).then_some(noisy_sums.sq / values);
    let snr = series.map(|_| {
        let noisy_snr = noisy.map(|_| noisy_sums.snr.db());
        SnrReport::new(model_sums.snr.db(), pca_sums.snr.db(), noisy_snr)
    });
    EvalReport {
        snr,
        images: n,
        mse,
        sq_err_per_image: mse * d as f64,
        psnr_db: None,
        ssim: None,
        noisy_mse: noisy,
        noisy_sq_err_per_image: noisy.map(|m| m * d as f64),
        noisy_psnr_db: None,
        noisy_ssim: None,
        pca_mse,
        pca_sq_err_per_image: pca_mse * d as f64,
        pca_psnr_db: None,
        worse_than_pca: mse > pca_mse,
        worse_than_noisy: noisy.map(|noisy| mse > noisy),
    }
}
