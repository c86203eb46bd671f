//! `ae-tch eval`: test-set metrics of a trained run.

use crate::cli::EvalArgs;
use crate::config::Mode;
use crate::metrics::{self, EvalReport};
use anyhow::Result;

pub fn run(args: EvalArgs) -> Result<()> {
    let loaded = super::open_run(&args.run, &args.runtime)?;
    let images = loaded.test_images(args.data.as_deref())?;
    let train = &loaded.manifest.train;
    let report =
        metrics::evaluate(&loaded.model, &images.to_device(loaded.device), train.mode, train.sigma);
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        table(&report, train.mode, train.sigma)
    };
    super::print(&text)
}

/// The human-readable form of a report.
pub fn table(r: &EvalReport, mode: Mode, sigma: f64) -> String {
    let mut s = format!(
        "test images          {}\nmse per pixel        {:.6}\nsq. error per image  {:.3}\npsnr                 {:.2} dB\n",
        r.images, r.mse, r.sq_err_per_image, r.psnr_db
    );
    if let (Mode::Denoise, Some(noisy)) = (mode, r.noisy_psnr_db) {
        s += &format!("noisy input psnr     {noisy:.2} dB (σ = {sigma})\n");
    }
    s
}
