//! `ae-tch sample`: draws codes from the VAE prior N(0, I) and decodes them.

use crate::cli::SampleArgs;
use crate::plot::Format;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

pub fn run(args: SampleArgs) -> Result<()> {
    if !(1..=400).contains(&args.n) {
        bail!("-n must be between 1 and 400, got {}", args.n);
    }
    let format = Format::from_path(&args.output)?;
    let loaded = super::open_run(&args.run)?;
    let model = &loaded.manifest.model;
    if !model.variational {
        bail!(
            "sample draws from a VAE's prior; {} is a {} run (train with --arch vae)",
            args.run.dir.display(),
            model.arch_name()
        );
    }
    tch::manual_seed(args.seed as i64);
    let z = Tensor::randn([args.n as i64, model.latent], (Kind::Float, loaded.device));
    let title = format!("{} samples from N(0, I), decoded", args.n);
    super::decode_grid(&loaded, &z, 10, &title, &args.output, format)?;
    super::print(&format!("wrote {}\n", args.output.display()))
}
