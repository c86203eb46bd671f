//! What `train` and the commands that report on a run show: the evaluation table, the
//! image grid, the loss chart. Shared here so no command borrows from a sibling.

use crate::atomic::write_atomic;
use crate::config::{Loss, Mode, ModelConfig, NoiseKind, TrainConfig};
use crate::data::{self, ImageSet};
use crate::metrics::{self, EvalReport};
use crate::model::Autoencoder;
use crate::plot::{self, Format, GridRow, LossCurve};
use crate::train::EpochStats;
use anyhow::{Context, Result};
use std::path::Path;
use tch::nn::Module;
use tch::Device;

/// The human-readable form of a report of `model`'s run, with the line `shortfall` adds
/// when the model does worse than its baseline.
pub fn eval_table(r: &EvalReport, model: &ModelConfig, train: &TrainConfig) -> String {
    let mode = train.mode;
    let row = |name: &str, model: String, pca: String, noisy: Option<String>| {
        let noisy = noisy.map(|n| format!("  {n:>11}")).unwrap_or_default();
        format!("{name:<20} {model:>10}  {pca:>11}{noisy}\n")
    };
    let image = r.psnr_db.is_some();
    let (rows, value, row_name) = if image {
        ("test images", "mse per value", "sq. error per image")
    } else {
        ("test rows", "mse per feature", "sq. error per row")
    };
    let mut s = format!("{rows:<20} {}\n", r.images);
    let noisy_header = (mode == Mode::Denoise).then(|| "noisy input".to_string());
    s += &row("", "model".into(), "PCA, same k".into(), noisy_header);
    s += &row(
        value,
        format!("{:.6}", r.mse),
        format!("{:.6}", r.pca_mse),
        r.noisy_mse.map(|v| format!("{v:.6}")),
    );
    s += &row(
        row_name,
        format!("{:.3}", r.sq_err_per_image),
        format!("{:.3}", r.pca_sq_err_per_image),
        r.noisy_sq_err_per_image.map(|v| format!("{v:.3}")),
    );
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    if image {
        s += &row(
            "psnr (dB)",
            opt(r.psnr_db, 2),
            opt(r.pca_psnr_db, 2),
            r.noisy_psnr_db.map(|v| format!("{v:.2}")),
        );
        s += &row("ssim", opt(r.ssim, 4), "-".into(), r.noisy_ssim.map(|v| format!("{v:.4}")));
    }
    if let Some(snr) = &r.snr {
        let db = |v: Option<f64>| v.map(|v| format!("{v:.2}"));
        s += &row(
            "snr (dB)",
            format!("{:.2}", snr.snr_db),
            format!("{:.2}", snr.pca_snr_db),
            db(snr.noisy_snr_db),
        );
        s += &row(
            "segmental snr (dB)",
            format!("{:.2}", snr.seg_snr_db),
            format!("{:.2}", snr.pca_seg_snr_db),
            db(snr.noisy_seg_snr_db),
        );
        if let Some(noisy) = snr.noisy_snr_db {
            s += &format!(
                "snr gain             {:+.2} dB over the noisy input (PCA {:+.2} dB)\n",
                snr.snr_db - noisy,
                snr.pca_snr_db - noisy
            );
        }
    }
    if mode == Mode::Denoise {
        s += &format!("noise                {}\n", noise_label(train));
    }
    if let Some(line) = shortfall(r, model, train) {
        s += &format!("\n{line}\n");
    }
    s
}

/// One plain line when the model does worse than the baseline it is shown beside — the
/// noisy input it was given (denoising), else PCA with as many components — by how much,
/// and the likeliest remedy for the run. A trimmed loss (`--trim`) leaves the hardest rows
/// out on purpose, to rank anomalies rather than reconstruct every row, so PCA is not its
/// yardstick and the line is left out for it.
pub fn shortfall(r: &EvalReport, model: &ModelConfig, train: &TrainConfig) -> Option<String> {
    let item = if r.psnr_db.is_some() { "image" } else { "row" };
    let (baseline, theirs) = if r.worse_than_noisy == Some(true) {
        ("the noisy input it was given".to_string(), r.noisy_sq_err_per_image?)
    } else if r.worse_than_pca && train.trim == 0.0 {
        (format!("PCA with the same k = {}", model.latent), r.pca_sq_err_per_image)
    } else {
        return None;
    };
    if let (Some(snr), true) =
        (&r.snr, model.input.series().is_some_and(|(_, s)| s.spectral.is_some()))
    {
        let theirs = match r.worse_than_noisy {
            Some(true) => snr.noisy_snr_db?,
            _ => snr.pca_snr_db,
        };
        return Some(format!(
            "warning: the model's recordings are further from the clean ones than {baseline} \
             (SNR {:.2} dB against {theirs:.2} dB); {}",
            snr.snr_db,
            remedy(model, train)
        ));
    }
    let ratio = r.sq_err_per_image / theirs.max(f64::MIN_POSITIVE);
    Some(format!(
        "warning: the model reconstructs the test {item}s worse than {baseline} ({:.3} \
         against {theirs:.3} squared error per {item}, {ratio:.2}x); {}",
        r.sq_err_per_image,
        remedy(model, train)
    ))
}

/// What most likely makes `model`'s run do better: a rate far below the network's default
/// or a handful of epochs first (the run did not train), then another family on images, a
/// lighter KL weight for a VAE, else more training or a gentler step.
fn remedy(model: &ModelConfig, train: &TrainConfig) -> String {
    use crate::config::{ArchDefaults, Layers};
    let image = model.input.image().is_some();
    let default_lr = ArchDefaults::for_layers(&model.layers).lr;
    if train.lr < default_lr / 10.0 {
        return format!(
            "--lr {} is far below the default {default_lr}: the network barely moved",
            train.lr
        );
    }
    if train.epochs < 5 {
        return format!("{} epoch(s) are few: try more --epochs", train.epochs);
    }
    match (&model.layers, model.variational) {
        (_, true) => format!(
            "a VAE trades reconstruction for a smooth code: try a lower --beta (now {})",
            train.beta.unwrap_or(1.0)
        ),
        (Layers::Mlp { .. }, false) if image => {
            "a convolutional network usually does better on images: try --arch conv".into()
        }
        _ => format!("try more --epochs (now {}) or a lower --lr (now {})", train.epochs, train.lr),
    }
}

/// "σ = 0.3" or "masking, p = 0.2".
pub fn noise_label(train: &TrainConfig) -> String {
    match train.noise {
        NoiseKind::Gaussian => format!("σ = {}", train.noise_level),
        kind if kind.is_audio() => {
            let trained = match train.noise_level_high {
                Some(h) => format!("trained at {} to {h} dB", train.noise_level),
                None => format!("trained at {} dB", train.noise_level),
            };
            let at = crate::metrics::speech::eval_snr(train);
            format!("{kind} at {at} dB SNR ({trained})")
        }
        kind => format!("{kind}, p = {}", train.noise_level),
    }
}

/// Renders rows clean / noisy input / reconstruction (reconstruct runs: clean /
/// reconstruction) for `images` and writes them atomically to `path`.
pub fn write_grid(
    model: &Autoencoder,
    train: &TrainConfig,
    images: &ImageSet,
    device: Device,
    path: &Path,
    format: Format,
) -> Result<()> {
    let bytes = grid(model, train, images, device, format)
        .with_context(|| format!("drawing {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// The grid `write_grid` writes, as PNG or SVG bytes.
pub fn grid(
    model: &Autoencoder,
    train: &TrainConfig,
    images: &ImageSet,
    device: Device,
    format: Format,
) -> Result<Vec<u8>> {
    let clean = images.to_unit(device);
    let input = metrics::eval_inputs(&clean, train, true);
    let output = tch::no_grad(|| model.forward(&input));
    let host = data::to_host_f32;
    let (clean, input, output) = (host(&clean)?, host(&input)?, host(&output)?);
    let noisy_label = format!("noisy ({})", noise_label(train));
    let kinds: Vec<(&str, &[f32])> = match train.mode {
        Mode::Reconstruct => vec![("original", &clean), ("reconstruction", &output)],
        Mode::Denoise => vec![("clean", &clean), (&noisy_label, &input), ("denoised", &output)],
    };
    // At most GRID_COLUMNS images a row: more wrap into further bands of rows, the last
    // band padded with blank (white) cells.
    let shape = super::image_shape(&model.config);
    let pixels = shape.0 * shape.1 * shape.2;
    let n = images.len();
    let cols = n.clamp(1, GRID_COLUMNS);
    let mut bands: Vec<(&str, Vec<f32>)> = Vec::new();
    for start in (0..n).step_by(cols) {
        let end = (start + cols).min(n);
        for (label, values) in &kinds {
            let mut row = values[start * pixels..end * pixels].to_vec();
            row.resize(cols * pixels, 1.0);
            bands.push((label, row));
        }
    }
    let rows: Vec<GridRow> =
        bands.iter().map(|(label, images)| GridRow { label, images }).collect();
    let title = format!("{} run: {} test images", train.mode, images.len());
    plot::image_grid(&rows, shape, &title, format)
}

/// Images a grid row holds before it wraps.
pub const GRID_COLUMNS: usize = 20;
/// The most images `grid` draws.
pub const GRID_MAX: usize = 200;

/// The curve of one run's metrics, whose training loss left out the `trimmed` share of
/// each batch (`--trim`; 0 for none).
pub fn loss_curve(label: &str, rows: &[EpochStats], trimmed: f64) -> LossCurve {
    LossCurve {
        label: label.to_string(),
        trimmed,
        epochs: rows.iter().map(|r| r.epoch as f64).collect(),
        train: rows.iter().map(|r| r.train_loss).collect(),
        val: rows.iter().map(|r| r.val_loss).collect(),
    }
}

/// Renders and writes a loss chart atomically.
/// What a run's loss is, as its loss chart's axis says: the reconstruction loss per
/// value, plus β·KL for a VAE, or a classifier's cross-entropy.
pub fn loss_description(model: &ModelConfig, cfg: &TrainConfig) -> String {
    if cfg.finetune.is_some() {
        return "cross-entropy".into();
    }
    let per_value = match cfg.loss {
        Loss::Mse => "MSE per value",
        Loss::Bce => "BCE per value",
    };
    if model.variational {
        format!("{per_value} + β·KL")
    } else {
        per_value.into()
    }
}

/// Writes the loss chart of `curves`; `loss` says what the loss is (`loss_description`).
pub fn write_loss_chart(
    curves: &[LossCurve],
    path: &Path,
    loss: &str,
    log_y: bool,
    format: Format,
) -> Result<()> {
    let bytes = plot::loss_chart(curves, "loss per epoch", loss, log_y, format)
        .with_context(|| format!("plotting {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Accuracy, then the confusion matrix as text (rows: true class, columns: predicted).
pub fn class_table(r: &crate::metrics::probe::ClassReport) -> String {
    let width = r.classes.iter().map(|c| c.chars().count()).max().unwrap_or(1).max(5) + 1;
    let mut out =
        format!("test accuracy  {:.4}  ({} rows)\n\ntrue \\ predicted\n", r.accuracy, r.rows);
    out += &format!("{:>width$}", "");
    for c in &r.classes {
        out += &format!("{c:>width$}");
    }
    out += "\n";
    for (name, row) in r.classes.iter().zip(&r.confusion) {
        out += &format!("{name:>width$}");
        for n in row {
            out += &format!("{n:>width$}");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_is_described_as_each_run_computes_it() {
        let (mut model, mut cfg) = (ModelConfig::default(), TrainConfig::default());
        assert_eq!(loss_description(&model, &cfg), "MSE per value");
        cfg.loss = Loss::Bce;
        assert_eq!(loss_description(&model, &cfg), "BCE per value");
        model.variational = true;
        assert_eq!(loss_description(&model, &cfg), "BCE per value + β·KL");
        cfg.finetune = Some(crate::config::Finetune {
            run: "/r".into(),
            from_scratch: false,
            freeze_encoder: false,
            labels_per_class: None,
            split_seed: 0,
        });
        assert_eq!(loss_description(&model, &cfg), "cross-entropy");
    }

    #[test]
    fn a_model_worse_than_its_baseline_is_said_to_be_with_a_remedy() {
        let (model, mut cfg) = (ModelConfig::default(), TrainConfig::default());
        let report = |mse: f64, noisy: Option<f64>| EvalReport {
            images: 10,
            mse,
            sq_err_per_image: mse * 784.0,
            psnr_db: Some(20.0),
            ssim: None,
            noisy_mse: noisy,
            noisy_sq_err_per_image: noisy.map(|n| n * 784.0),
            noisy_psnr_db: None,
            noisy_ssim: None,
            pca_mse: 0.02,
            pca_sq_err_per_image: 0.02 * 784.0,
            pca_psnr_db: Some(17.0),
            snr: None,
            worse_than_pca: mse > 0.02,
            worse_than_noisy: noisy.map(|n| mse > n),
        };
        assert_eq!(shortfall(&report(0.01, None), &model, &cfg), None);
        let line = shortfall(&report(0.03, None), &model, &cfg).unwrap();
        assert_eq!(
            line,
            "warning: the model reconstructs the test images worse than PCA with the same k = \
             16 (23.520 against 15.680 squared error per image, 1.50x); a convolutional \
             network usually does better on images: try --arch conv"
        );
        let slow = TrainConfig { lr: 1e-5, ..cfg.clone() };
        let line = shortfall(&report(0.03, None), &model, &slow).unwrap();
        assert!(
            line.ends_with("--lr 0.00001 is far below the default 0.003: the network barely moved")
        );
        let short = TrainConfig { epochs: 2, ..cfg.clone() };
        let line = shortfall(&report(0.03, None), &model, &short).unwrap();
        assert!(line.ends_with("2 epoch(s) are few: try more --epochs"), "{line}");
        let line = shortfall(&report(0.03, None), &model, &cfg).unwrap();
        assert!(eval_table(&report(0.03, None), &model, &cfg).ends_with(&format!("\n{line}\n")));
        // Denoising: the noisy input is the first yardstick.
        let line = shortfall(&report(0.01, Some(0.005)), &model, &cfg).unwrap();
        assert!(line.contains("worse than the noisy input it was given (7.840 against 3.920"));
        // A trimmed loss ranks anomalies: PCA is not its yardstick.
        cfg.trim = 0.2;
        assert_eq!(shortfall(&report(0.03, None), &model, &cfg), None);
        let vae = ModelConfig { variational: true, ..model };
        cfg.trim = 0.0;
        assert!(shortfall(&report(0.03, None), &vae, &cfg).unwrap().ends_with("(now 1)"));
    }
}
