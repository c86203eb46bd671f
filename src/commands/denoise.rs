//! `ae-tch denoise`: runs a trained model on the user's own files: images (PNG/JPEG) for
//! image runs, CSV/.npy for vector runs (the same format out, in the file's own units).

use crate::cli::{DenoiseArgs, Invert};
use crate::config::NoiseKind;
use crate::data::spec::{to_byte, Color, DataSpec, ImageSpec, VectorSpec};
use crate::data::{self, folder, noise, vectors};
use crate::metrics;
use crate::plot::{self, Format, GridRow};
use crate::run_store::write_atomic;
use anyhow::{bail, Context, Result};
use image::{ImageFormat, RgbImage};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
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
    if let DataSpec::Vector(spec) = &loaded.manifest.model.input {
        return denoise_vectors(&loaded, spec, &args);
    }
    let spec = loaded.spec()?;
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
            noise::corrupt(&clean, NoiseKind::Gaussian, sigma, true)
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
        let out = output_path(&args.output, path, "png", &mut taken);
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

/// `OUT_DIR/<stem>-denoised.<ext>`, numbered when two inputs share a stem.
fn output_path(dir: &Path, input: &Path, ext: &str, taken: &mut HashSet<String>) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let mut name = format!("{stem}-denoised.{ext}");
    let mut k = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem}-denoised-{k}.{ext}");
        k += 1;
    }
    dir.join(name)
}

/// Vector runs: each CSV or .npy through the model, written in the same format with the
/// same columns in the same order and the file's own units (a CSV keeps its other
/// columns, labels included, as written). Every file is read before anything is written.
fn denoise_vectors(loaded: &super::LoadedRun, spec: &VectorSpec, args: &DenoiseArgs) -> Result<()> {
    if args.grid.is_some() || args.invert != Invert::Auto {
        bail!(
            "--grid and --invert are for image runs; {} was trained on vectors",
            args.run.dir.display()
        );
    }
    let mut done = Vec::new();
    for path in &args.inputs {
        if !vectors::is_vector_file(path) {
            bail!(
                "{}: this run takes .csv or .npy files (it was trained on vectors)",
                path.display()
            );
        }
        let rows = vectors::load_all(path, None, spec)?;
        let clean = rows.to_device(loaded.device);
        let input = match args.add_noise {
            Some(sigma) => {
                tch::manual_seed(metrics::EVAL_NOISE_SEED);
                noise::corrupt(&clean, NoiseKind::Gaussian, sigma, false)
            }
            None => clean,
        };
        let values = data::to_host_f32(&metrics::reconstruct(&loaded.model, &input))?;
        let values = spec.scaling.to_units(&values);
        let bytes = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
            crate::npy::encode_f64(rows.len(), spec.columns.len(), &values)
        } else {
            let original =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            replace_columns(&original, &spec.columns, &values)
                .with_context(|| format!("writing the denoised {}", path.display()))?
        };
        done.push((path, rows.len(), bytes));
    }
    std::fs::create_dir_all(&args.output).with_context(|| {
        format!("-o {}: cannot create the output folder", args.output.display())
    })?;
    let mut taken = HashSet::new();
    let mut list = String::new();
    for (path, n, bytes) in done {
        let ext = path.extension().map_or("csv".into(), |e| e.to_string_lossy().to_lowercase());
        let out = output_path(&args.output, path, &ext, &mut taken);
        write_atomic(&out, &bytes)?;
        list += &format!("wrote {} ({n} rows)\n", out.display());
    }
    super::print(&list)
}

/// The CSV `bytes` with the cells of `columns` replaced, row by row, by `values`
/// (`rows × columns.len()`, row-major) and every other cell kept as written. The rows
/// are all the file's data rows, as `vectors::load_all` read them.
fn replace_columns(bytes: &[u8], columns: &[String], values: &[f64]) -> Result<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = reader.headers()?.clone();
    let at = columns
        .iter()
        .map(|name| header.iter().position(|h| h == name).context("a run column is missing"))
        .collect::<Result<Vec<_>>>()?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header)?;
    let mut rows = values.chunks_exact(columns.len().max(1));
    for record in reader.records() {
        let record = record?;
        let row = rows.next().context("more CSV records than rows read")?;
        let mut cells: Vec<String> = record.iter().map(str::to_string).collect();
        for (&i, v) in at.iter().zip(row) {
            cells[i] = v.to_string();
        }
        out.write_record(&cells)?;
    }
    Ok(out.into_inner()?)
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
