//! `ae-tch interpolate`: decodes the straight path between two test images' codes.

use crate::cli::InterpolateArgs;
use crate::plot::Format;
use anyhow::{bail, Result};
use tch::Tensor;

pub fn run(args: InterpolateArgs) -> Result<()> {
    if !(2..=50).contains(&args.steps) {
        bail!("--steps must be between 2 and 50, got {}", args.steps);
    }
    let format = Format::from_path(&args.output)?;
    let loaded = super::open_run(&args.run)?;
    let images = loaded.test_images(args.data.as_deref())?;
    for (flag, i) in [("--from", args.from), ("--to", args.to)] {
        if i >= images.len() {
            bail!(
                "{flag} {i}: the test split has {} images (0 to {})",
                images.len(),
                images.len() - 1
            );
        }
    }
    let x = images.select(&[args.from, args.to]).to_unit(loaded.device);
    let z = tch::no_grad(|| loaded.model.encode(&x));
    let (a, b) = (z.get(0), z.get(1));
    let path: Vec<Tensor> = (0..args.steps)
        .map(|s| {
            let t = s as f64 / (args.steps - 1) as f64;
            &a * (1.0 - t) + &b * t
        })
        .collect();
    let title =
        format!("from test image {} to {}: decoded codes on the straight path", args.from, args.to);
    super::decode_grid(
        &loaded,
        &Tensor::stack(&path, 0),
        args.steps,
        &title,
        &args.output,
        format,
    )?;
    super::print(&format!("wrote {}\n", args.output.display()))
}
