//! `ae-tch grid`: test images before and after the model.

use crate::cli::GridArgs;
use crate::plot::Format;
use anyhow::Result;

pub fn run(args: GridArgs) -> Result<()> {
    if !(1..=super::report::GRID_MAX).contains(&args.n) {
        return Err(crate::config::Usage(format!(
            "-n must be between 1 and {} (rows wrap after {} images), got {}",
            super::report::GRID_MAX,
            super::report::GRID_COLUMNS,
            args.n
        ))
        .into());
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
