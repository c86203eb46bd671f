//! `ae-tch eval`: test-set metrics of a trained run.

use crate::cli::EvalArgs;
use crate::config::{Mode, NoiseKind, TrainConfig};
use crate::metrics::{self, EvalReport};
use anyhow::Result;

pub fn run(args: EvalArgs) -> Result<()> {
    let loaded = super::open_run(&args.run)?;
    let images = loaded.test_images(args.data.as_deref())?;
    let (manifest, device) = (&loaded.manifest, loaded.device);
    let pca = loaded.pca_baseline()?;
    let report = metrics::evaluate(
        &loaded.model,
        &manifest.model,
        &manifest.train,
        &images.to_device(device),
        &pca,
    );
    let train = &manifest.train;
    let text =
        if args.json { serde_json::to_string(&report)? + "\n" } else { table(&report, train) };
    super::print(&text)
}

/// The human-readable form of a report.
pub fn table(r: &EvalReport, train: &TrainConfig) -> String {
    let mode = train.mode;
    let row = |name: &str, model: String, pca: String, noisy: Option<String>| {
        let noisy = noisy.map(|n| format!("  {n:>11}")).unwrap_or_default();
        format!("{name:<20} {model:>10}  {pca:>11}{noisy}\n")
    };
    let mut s = format!("test images          {}\n", r.images);
    let noisy_header = (mode == Mode::Denoise).then(|| "noisy input".to_string());
    s += &row("", "model".into(), "PCA, same k".into(), noisy_header);
    s += &row(
        "mse per pixel",
        format!("{:.6}", r.mse),
        format!("{:.6}", r.pca_mse),
        r.noisy_mse.map(|v| format!("{v:.6}")),
    );
    s += &row(
        "sq. error per image",
        format!("{:.3}", r.sq_err_per_image),
        format!("{:.3}", r.pca_sq_err_per_image),
        r.noisy_sq_err_per_image.map(|v| format!("{v:.3}")),
    );
    s += &row(
        "psnr (dB)",
        format!("{:.2}", r.psnr_db),
        format!("{:.2}", r.pca_psnr_db),
        r.noisy_psnr_db.map(|v| format!("{v:.2}")),
    );
    s +=
        &row("ssim", format!("{:.4}", r.ssim), "-".into(), r.noisy_ssim.map(|v| format!("{v:.4}")));
    if mode == Mode::Denoise {
        s += &format!("noise                {}\n", noise_label(train));
    }
    s
}

/// "σ = 0.3" or "masking, p = 0.2".
pub fn noise_label(train: &TrainConfig) -> String {
    match train.noise {
        NoiseKind::Gaussian => format!("σ = {}", train.noise_level),
        kind => format!("{kind}, p = {}", train.noise_level),
    }
}
