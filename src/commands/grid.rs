//! `ae-tch grid`: test images before and after the model.

use crate::checkpoint::write_atomic;
use crate::cli::GridArgs;
use crate::config::{Mode, TrainConfig};
use crate::data::{self, ImageSet};
use crate::metrics;
use crate::model::Autoencoder;
use crate::plot::{self, Format, GridRow};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::nn::Module;
use tch::Device;

pub fn run(args: GridArgs) -> Result<()> {
    if args.n == 0 {
        bail!("-n must be at least 1");
    }
    let format = Format::from_path(&args.output)?;
    let loaded = super::open_run(&args.run)?;
    let images = loaded.test_images(args.data.as_deref())?.take(args.n);
    write(&loaded.model, &loaded.manifest.train, &images, loaded.device, &args.output, format)?;
    super::print(&format!("wrote {}\n", args.output.display()))
}

/// Renders rows clean / noisy input / reconstruction (reconstruct runs: clean /
/// reconstruction) for `images` and writes them atomically to `path`.
pub fn write(
    model: &Autoencoder,
    train: &TrainConfig,
    images: &ImageSet,
    device: Device,
    path: &Path,
    format: Format,
) -> Result<()> {
    let clean = images.to_unit(device);
    let input = metrics::eval_inputs(&clean, train);
    let output = tch::no_grad(|| model.forward(&input));
    let host = data::to_host_f32;
    let (clean, input, output) = (host(&clean)?, host(&input)?, host(&output)?);
    let noisy_label = format!("noisy ({})", super::eval::noise_label(train));
    let rows = match train.mode {
        Mode::Reconstruct => vec![
            GridRow { label: "original", images: &clean },
            GridRow { label: "reconstruction", images: &output },
        ],
        Mode::Denoise => vec![
            GridRow { label: "clean", images: &clean },
            GridRow { label: &noisy_label, images: &input },
            GridRow { label: "denoised", images: &output },
        ],
    };
    let title = format!("{} run: {} test images", train.mode, images.len());
    let shape = super::image_shape(&model.config);
    let bytes = plot::image_grid(&rows, shape, &title, format)
        .with_context(|| format!("drawing {}", path.display()))?;
    write_atomic(path, &bytes)
}
