//! `ae-tch denoise`: runs a trained model on the user's own image files.

use crate::cli::{DenoiseArgs, Invert};
use crate::config::NoiseKind;
use crate::data::spec::{to_byte, Color, ImageSpec};
use crate::data::{self, folder, noise};
use crate::metrics;
use crate::plot::{self, Format, GridRow};
use crate::run_store::write_atomic;
use anyhow::{bail, Context, Result};
use image::{ImageFormat, RgbImage};
use std::collections::HashSet;
use std::path::PathBuf;
use tch::Tensor;

/// Output pixels per model pixel in the side-by-side PNGs.
const SCALE: u32 = 4;

pub fn run(args: DenoiseArgs) -> Result<()> {
    if let Some(s) = args.add_noise {
        if !(s.is_finite() && s >= 0.0) {
            bail!("--add-noise must be a non-negative number, got {s}");
        }
    }
    let grid_format = args.grid.as_deref().map(Format::from_path).transpose()?;
    let loaded = super::open_run(&args.run)?;
    let spec = loaded.spec();
    if spec.color != Color::Gray && args.invert == Invert::Yes {
        bail!(
            "--invert yes applies to grayscale runs; {} takes {} images",
            args.run.dir.display(),
            spec.color
        );
    }

    // Decode everything first: a bad file stops the command before anything is written.
    let (mut pixels, _) = folder::convert_files(&args.inputs, &spec.request())?;
    let per = spec.values() as usize;
    let inverted: Vec<bool> = pixels
        .chunks_exact_mut(per)
        .map(|img| {
            // A gray model saw light strokes on a dark ground (as in MNIST): flip
            // dark-on-light input.
            let mean = img.iter().map(|&v| v as f64).sum::<f64>() / per as f64 / 255.0;
            let invert = spec.color == Color::Gray
                && match args.invert {
                    Invert::Auto => mean > 0.5,
                    Invert::Yes => true,
                    Invert::No => false,
                };
            if invert {
                img.iter_mut().for_each(|v| *v = 255 - *v);
            }
            invert
        })
        .collect();
    let n = args.inputs.len() as i64;
    let clean = data::to_unit_float(
        &Tensor::from_slice(&pixels).view([n, per as i64]).to_device(loaded.device),
    );
    let input = match args.add_noise {
        Some(sigma) => {
            tch::manual_seed(metrics::EVAL_NOISE_SEED);
            noise::corrupt(&clean, NoiseKind::Gaussian, sigma)
        }
        None => clean,
    };
    let output = metrics::reconstruct(&loaded.model, &input);
    let (input, output) = (data::to_host_f32(&input)?, data::to_host_f32(&output)?);

    std::fs::create_dir_all(&args.output).with_context(|| {
        format!("-o {}: cannot create the output folder", args.output.display())
    })?;
    let mut written = Vec::new();
    let mut taken = HashSet::new();
    for (i, path) in args.inputs.iter().enumerate() {
        let range = i * per..(i + 1) * per;
        let sheet = side_by_side(&input[range.clone()], &output[range], spec, inverted[i]);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let mut name = format!("{stem}-denoised.png");
        let mut k = 2;
        while !taken.insert(name.clone()) {
            name = format!("{stem}-denoised-{k}.png");
            k += 1;
        }
        let out: PathBuf = args.output.join(name);
        let mut png = std::io::Cursor::new(Vec::new());
        sheet.write_to(&mut png, ImageFormat::Png)?;
        write_atomic(&out, &png.into_inner())?;
        written.push(out);
    }
    if let (Some(path), Some(format)) = (&args.grid, grid_format) {
        let rows = [
            GridRow { label: "input", images: &input },
            GridRow { label: "denoised", images: &output },
        ];
        let title = format!("{} image(s) through {}", n, args.run.dir.display());
        let shape = super::image_shape(&loaded.manifest.model);
        write_atomic(path, &plot::image_grid(&rows, shape, &title, format)?)?;
        written.push(path.clone());
    }
    let list: String = written.iter().map(|p| format!("wrote {}\n", p.display())).collect();
    super::print(&list)
}

/// `[input | denoised]` at `SCALE`× magnification, in the polarity of the user's file.
fn side_by_side(input: &[f32], output: &[f32], spec: ImageSpec, inverted: bool) -> RgbImage {
    let (w, h) = (spec.width as u32, spec.height as u32);
    let area = (w * h) as usize;
    let level = |v: f32| {
        let g = to_byte(v);
        if inverted {
            255 - g
        } else {
            g
        }
    };
    // Gray images read their one plane for all three colours.
    let plane = |c: usize| if spec.color == Color::Gray { 0 } else { c * area };
    RgbImage::from_fn(2 * w * SCALE, h * SCALE, |x, y| {
        let (px, py) = (x / SCALE, y / SCALE);
        let (image, px) = if px < w { (input, px) } else { (output, px - w) };
        let p = (py * w + px) as usize;
        image::Rgb([
            level(image[plane(0) + p]),
            level(image[plane(1) + p]),
            level(image[plane(2) + p]),
        ])
    })
}
