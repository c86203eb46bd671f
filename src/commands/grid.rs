//! `ae-tch grid`: test images before and after the model.

use crate::cli::GridArgs;
use crate::plot::Format;
use anyhow::{bail, Result};

pub fn run(args: GridArgs) -> Result<()> {
    if args.n == 0 {
        bail!("-n must be at least 1");
    }
    let format = Format::from_path(&args.output)?;
    let loaded = super::open_run(&args.run)?;
    let images = loaded.test_images(args.data.as_deref())?.take(args.n);
    super::report::write_grid(
        &loaded.model,
        &loaded.manifest.train,
        &images,
        loaded.device,
        &args.output,
        format,
    )?;
    super::print(&format!("wrote {}\n", args.output.display()))
}
