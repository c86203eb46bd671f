//! `ae-tch denoise`: runs a trained model on the user's own image files.

use crate::checkpoint::write_atomic;
use crate::cli::{DenoiseArgs, Invert};
use crate::config::NoiseKind;
use crate::data::{self, folder, noise};
use crate::metrics;
use crate::plot::{self, Format, GridRow};
use anyhow::{bail, Context, Result};
use image::{GrayImage, ImageFormat};
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
    let (w, h) = (loaded.manifest.model.width as u32, loaded.manifest.model.height as u32);

    // Decode everything first: a bad file stops the command before anything is written.
    let mut pixels = Vec::with_capacity(args.inputs.len() * (w * h) as usize);
    let mut inverted = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        let img = folder::resize(folder::decode_gray(path)?, w, h);
        let mean = img.as_raw().iter().map(|&v| v as f64).sum::<f64>() / (w * h) as f64 / 255.0;
        // The model saw light strokes on a dark ground (as in MNIST); flip dark-on-light input.
        let invert = match args.invert {
            Invert::Auto => mean > 0.5,
            Invert::Yes => true,
            Invert::No => false,
        };
        pixels.extend(img.as_raw().iter().map(|&v| if invert { 255 - v } else { v }));
        inverted.push(invert);
    }
    let n = args.inputs.len() as i64;
    let clean = data::to_unit_float(
        &Tensor::from_slice(&pixels).view([n, (w * h) as i64]).to_device(loaded.device),
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
    let per = (w * h) as usize;
    for (i, path) in args.inputs.iter().enumerate() {
        let range = i * per..(i + 1) * per;
        let sheet = side_by_side(&input[range.clone()], &output[range], w, h, inverted[i]);
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
        write_atomic(path, &plot::image_grid(&rows, h as usize, w as usize, &title, format)?)?;
        written.push(path.clone());
    }
    let list: String = written.iter().map(|p| format!("wrote {}\n", p.display())).collect();
    super::print(&list)
}

/// `[input | denoised]` at `SCALE`× magnification, in the polarity of the user's file.
fn side_by_side(input: &[f32], output: &[f32], w: u32, h: u32, inverted: bool) -> GrayImage {
    let level = |v: f32| {
        let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        if inverted {
            255 - g
        } else {
            g
        }
    };
    GrayImage::from_fn(2 * w * SCALE, h * SCALE, |x, y| {
        let (px, py) = (x / SCALE, y / SCALE);
        let v =
            if px < w { input[(py * w + px) as usize] } else { output[(py * w + px - w) as usize] };
        image::Luma([level(v)])
    })
}
