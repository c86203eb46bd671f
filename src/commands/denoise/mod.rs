//! `ae-tch denoise`: runs a trained model on the user's own files: images (PNG/JPEG) for
//! image runs, CSV/.npy for vector runs (the same format out, in the file's own units),
//! WAV/CSV series for series runs (windowed, denoised, joined back by overlap-add).

use crate::atomic::write_atomic;
use crate::cli::{DenoiseArgs, Invert};
use crate::config::NoiseKind;
use crate::data::spec::Reading;
use crate::data::spec::{to_byte, Color, ImageSpec, Scaling, Size, VectorSpec};
use crate::data::Rows;
use crate::data::{self, folder, noise, series, vectors};
use crate::metrics;
use crate::plot::{self, Format, GridRow};
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tch::Tensor;

mod signal;

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
    if let Some(spec) = loaded.manifest.model.input.vector() {
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
    let sizes: Vec<Size> =
        args.inputs.iter().map(|p| folder::declared_size(p)).collect::<Result<_>>()?;
    let per = spec.values() as usize;
    let inverted = flip_light_grounds(&mut pixels, per, spec.color, args.invert);
    let n = args.inputs.len() as i64;
    let clean = data::to_unit_float(
        &Tensor::from_slice(&pixels).view([n, per as i64]).to_device(loaded.device),
    );
    let noisy = args.add_noise.map(|sigma| {
        tch::manual_seed(metrics::EVAL_NOISE_SEED);
        noise::corrupt(&clean, NoiseKind::Gaussian, sigma, true)
    });
    let output = metrics::reconstruct(&loaded.model, noisy.as_ref().unwrap_or(&clean));
    for (path, size) in args.inputs.iter().zip(&sizes) {
        if let Some(note) = shape_note(path, *size, &spec) {
            crate::log::note(format_args!("{note}"));
        }
    }
    for note in unlike_training(&loaded, &args.inputs, &clean, &spec) {
        crate::log::note(format_args!("{note}"));
    }
    let noisy = noisy.as_ref().map(data::to_host_f32).transpose()?;
    let (clean, output) = (data::to_host_f32(&clean)?, data::to_host_f32(&output)?);

    let images = Denoised { clean: &clean, noisy: noisy.as_deref(), output: &output, per };
    let mut written = images.write_files(&args, &spec, &inverted, &sizes)?;
    if let (Some(path), Some(format)) = (&args.grid, grid_format) {
        let mut rows = vec![GridRow { label: "input", images: &clean }];
        rows.extend(noisy.as_ref().map(|v| GridRow { label: "+ noise", images: v }));
        rows.push(GridRow { label: "denoised", images: &output });
        let title = format!("{} image(s) through {}", n, args.run.dir.display());
        let shape = super::image_shape(&loaded.manifest.model);
        write_atomic(path, &plot::image_grid(&rows, shape, &title, format)?)?;
        written.push(path.clone());
    }
    let list: String = written.iter().map(|p| format!("wrote {}\n", p.display())).collect();
    super::print(&list)
}

/// Flips the gray images of `per` values each in `pixels` that `invert` asks to: a gray
/// model saw light strokes on a dark ground (as in MNIST), so `auto` flips mostly light
/// (dark-on-light) images. Colour images are never flipped. Returns which were.
fn flip_light_grounds(pixels: &mut [u8], per: usize, color: Color, invert: Invert) -> Vec<bool> {
    pixels
        .chunks_exact_mut(per)
        .map(|img| {
            let mean = img.iter().map(|&v| v as f64).sum::<f64>() / per as f64 / 255.0;
            let flip = color == Color::Gray
                && match invert {
                    Invert::Auto => mean > 0.5,
                    Invert::Yes => true,
                    Invert::No => false,
                };
            if flip {
                img.iter_mut().for_each(|v| *v = 255 - *v);
            }
            flip
        })
        .collect()
}

/// The images through the model, in [0, 1], `per` values each: the inputs, the noisy
/// inputs (`--add-noise`) and the outputs.
struct Denoised<'a> {
    clean: &'a [f32],
    noisy: Option<&'a [f32]>,
    output: &'a [f32],
    per: usize,
}

impl Denoised<'_> {
    /// Writes, for each input file, `<stem>-denoised.png` (the output at the file's own
    /// size and polarity) and `<stem>-compare.png` (input, noisy input, output side by
    /// side) into `-o`; returns the files written.
    fn write_files(
        &self,
        args: &DenoiseArgs,
        spec: &ImageSpec,
        inverted: &[bool],
        sizes: &[Size],
    ) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&args.output).with_context(|| {
            format!("-o {}: cannot create the output folder", args.output.display())
        })?;
        let mut written = Vec::new();
        let mut taken = HashSet::new();
        for (i, path) in args.inputs.iter().enumerate() {
            let range = i * self.per..(i + 1) * self.per;
            let result = at_file_size(&self.output[range.clone()], spec, inverted[i], sizes[i]);
            let out = output_path(&args.output, path, ("denoised", "png"), &mut taken);
            write_atomic(&out, &png(&result)?)?;
            written.push(out);
            let mut columns = vec![&self.clean[range.clone()]];
            columns.extend(self.noisy.map(|v| &v[range.clone()]));
            columns.push(&self.output[range]);
            let sheet = side_by_side(&columns, spec, inverted[i]);
            let out = output_path(&args.output, path, ("compare", "png"), &mut taken);
            write_atomic(&out, &png(&DynamicImage::ImageRgb8(sheet))?)?;
            written.push(out);
        }
        Ok(written)
    }
}

/// `image` encoded as PNG.
fn png(image: &DynamicImage) -> Result<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// A note when a file's shape is not the model's: it is stretched to the model's aspect
/// ratio going in, and back to its own coming out.
fn shape_note(path: &Path, size: Size, spec: &ImageSpec) -> Option<String> {
    let (w, h) = (size.width as f64, size.height as f64);
    let aspect = (w / h) / (spec.width as f64 / spec.height as f64);
    ((aspect - 1.0).abs() > 0.01).then(|| {
        format!(
            "note: {} is {size} (height x width) and the model takes {}x{}: it was \
             stretched to that shape (aspect ratio not kept) and the result back to {size}; \
             crop it to the model's shape first for an undistorted result",
            path.display(),
            spec.height,
            spec.width
        )
    })
}

/// Share of the reference errors at or below the file's for `files` to be called unlike
/// the training data.
const UNLIKE_RANK: f64 = 0.99;

/// Notes for the files whose own reconstruction error (the model given the clean file)
/// is above `UNLIKE_RANK` of the run's test images: the model has not seen anything
/// like them, so their result says little. Nothing when the test images cannot be read.
fn unlike_training(
    loaded: &super::LoadedRun,
    files: &[PathBuf],
    clean: &Tensor,
    spec: &ImageSpec,
) -> Vec<String> {
    let Ok(test) = loaded.rows((None, Reading::default()), data::Split::Test) else {
        return Vec::new();
    };
    let values = spec.values() as f64;
    let errors = |x: &Tensor| -> Option<Vec<f64>> {
        let err = metrics::sq_err_per_row(&metrics::reconstruct(&loaded.model, x), x);
        Vec::<f64>::try_from(err.to_device(tch::Device::Cpu)).ok()
    };
    let (Some(mut reference), Some(own)) = (errors(&test.to_unit(loaded.device)), errors(clean))
    else {
        return Vec::new();
    };
    reference.sort_by(f64::total_cmp);
    let median = reference[reference.len() / 2] / values;
    files
        .iter()
        .zip(own)
        .filter_map(|(path, e)| {
            let rank = reference.partition_point(|&r| r <= e) as f64 / reference.len() as f64;
            (rank > UNLIKE_RANK).then(|| {
                format!(
                    "note: {} looks unlike the run's training data: its reconstruction error \
                     ({:.4} per value) is above {:.1}% of the run's {} test images (median \
                     {median:.4}), so expect a poor result",
                    path.display(),
                    e / values,
                    100.0 * rank,
                    reference.len()
                )
            })
        })
        .collect()
}

/// The model's output as an image of the file's own size and polarity: gray for gray
/// runs, RGB for colour ones, resized bilinearly.
fn at_file_size(output: &[f32], spec: &ImageSpec, inverted: bool, size: Size) -> DynamicImage {
    let area = (spec.width * spec.height) as usize;
    let level = |v: f32| if inverted { 255 - to_byte(v) } else { to_byte(v) };
    let (w, h) = (spec.width as u32, spec.height as u32);
    let image = match spec.color {
        Color::Gray => DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
            image::Luma([level(output[(y * w + x) as usize])])
        })),
        Color::Rgb => DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let p = (y * w + x) as usize;
            image::Rgb([level(output[p]), level(output[area + p]), level(output[2 * area + p])])
        })),
    };
    if (size.width, size.height) == (w, h) {
        image
    } else {
        image.resize_exact(size.width, size.height, FilterType::Triangle)
    }
}

/// `OUT_DIR/<stem>-<what>.<ext>`, numbered when two inputs share a stem.
fn output_path(
    dir: &Path,
    input: &Path,
    (what, ext): (&str, &str),
    taken: &mut HashSet<String>,
) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let mut name = format!("{stem}-{what}.{ext}");
    let mut k = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem}-{what}-{k}.{ext}");
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
    if let Some((_, series)) = loaded.manifest.model.input.series() {
        return signal::denoise_series(loaded, spec, series, args);
    }
    let mut done = Vec::new();
    for path in &args.inputs {
        if !vectors::is_vector_file(path) {
            bail!(
                "{}: this run takes .csv or .npy files (it was trained on vectors)",
                path.display()
            );
        }
        let rows = vectors::load_all(path, spec, None, loaded.reading(args.read.reading()))?;
        let values = through_model(loaded, &spec.scaling, &rows, args.add_noise)?;
        let (_, ids) = rows.ids();
        let (columns, values) = numeric_part(spec, &values);
        let bytes = table_bytes(path, (&ids, &columns), &values, false)?;
        done.push(Written {
            input: path,
            n: rows.len(),
            files: vec![("denoised", bytes)],
            said: None,
        });
    }
    write_results(&args.output, done, "rows")
}

/// The number features and their values, row by row: what denoising writes back (a text
/// column, one-hot encoded for the model, is written as it was).
fn numeric_part(spec: &VectorSpec, values: &[f64]) -> (Vec<String>, Vec<f64>) {
    let groups = spec.groups();
    let keep: Vec<usize> =
        groups.iter().filter(|g| g.category.is_none()).map(|g| g.features.start).collect();
    let columns = keep.iter().map(|&j| spec.columns[j].clone()).collect();
    let rows = values.chunks_exact(spec.columns.len().max(1));
    (columns, rows.flat_map(|row| keep.iter().map(move |&j| row[j])).collect())
}

/// `rows` (scaled) through the model, optionally after Gaussian noise of σ `add_noise`
/// in scaled units (fixed seed): the output in the file's units.
fn through_model(
    loaded: &super::LoadedRun,
    scaling: &Scaling,
    rows: &Rows,
    add_noise: Option<f64>,
) -> Result<Vec<f64>> {
    let clean = rows.to_device(loaded.device);
    let input = match add_noise {
        Some(sigma) => {
            tch::manual_seed(metrics::EVAL_NOISE_SEED);
            noise::corrupt(&clean, NoiseKind::Gaussian, sigma, false)
        }
        None => clean,
    };
    let values = data::to_host_f32(&metrics::reconstruct(&loaded.model, &input))?;
    Ok(scaling.to_units(&values))
}

/// `values` (`n × columns.len()`) in `path`'s own table format: a .npy array, or the CSV
/// with `columns` replaced and every other cell as written.
fn table_bytes(
    path: &Path,
    (ids, columns): (&[usize], &[String]),
    values: &[f64],
    as_written: bool,
) -> Result<Vec<u8>> {
    let original = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let written = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        // Every row of the array: those read replaced, those left out (NaN) as they were.
        crate::data::table::read_npy(&original).map_err(anyhow::Error::from).map(|mut array| {
            let d = columns.len();
            for (row, &id) in values.chunks_exact(d.max(1)).zip(ids) {
                array.values[id * d..(id + 1) * d].copy_from_slice(row);
            }
            crate::npy::encode_f64(array.values.len() / d.max(1), d, &array.values)
        })
    } else {
        replace_columns(&original, (columns, ids), values, as_written)
    };
    written.with_context(|| format!("writing the denoised {}", path.display()))
}

/// One input's results: its path, how many rows or steps it has, the files to write
/// (`<stem>-<what>.<its extension>`: "denoised", and for series with --add-noise "noisy"),
/// and a line to print after them.
struct Written<'a> {
    input: &'a PathBuf,
    n: usize,
    files: Vec<(&'static str, Vec<u8>)>,
    said: Option<String>,
}

/// Writes each input's results into `dir`, once every input has been read, and lists them.
fn write_results(dir: &Path, done: Vec<Written>, unit: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("-o {}: cannot create the output folder", dir.display()))?;
    let mut taken = HashSet::new();
    let mut list = String::new();
    for Written { input, n, files, said } in done {
        let ext = input.extension().map_or("csv".into(), |e| e.to_string_lossy().to_lowercase());
        for (what, bytes) in files {
            let out = output_path(dir, input, (what, &ext), &mut taken);
            write_atomic(&out, &bytes)?;
            list += &format!("wrote {} ({n} {unit})\n", out.display());
        }
        list.extend(said);
    }
    super::print(&list)
}

/// The CSV `bytes` with the cells of `columns` replaced, row by row, by `values`
/// (`rows × columns.len()`, row-major) and every other cell kept as written. `ids` are the
/// data rows `values` hold, as `vectors::load_all` read them; a row left out (a missing
/// value, `--missing drop`) is written as it was. With `as_written` (a series) each value has
/// as many decimals as the most precise cell of its column in the file (full precision
/// when a cell is written with an exponent or is not a number).
fn replace_columns(
    bytes: &[u8],
    (columns, ids): (&[String], &[usize]),
    values: &[f64],
    as_written: bool,
) -> Result<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = reader.headers()?.clone();
    let at = columns
        .iter()
        .map(|name| header.iter().position(|h| h == name).context("a run column is missing"))
        .collect::<Result<Vec<_>>>()?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header)?;
    let records = reader.records().collect::<Result<Vec<_>, _>>()?;
    let places: Vec<Option<usize>> = at
        .iter()
        .map(|&i| match as_written {
            true => records
                .iter()
                .try_fold(0, |most, r| decimals(r.get(i).unwrap_or_default()).map(|d| most.max(d))),
            false => None,
        })
        .collect();
    let mut rows = values.chunks_exact(columns.len().max(1)).zip(ids).peekable();
    for (index, record) in records.iter().enumerate() {
        let mut cells: Vec<String> = record.iter().map(str::to_string).collect();
        if let Some((row, _)) = rows.next_if(|(_, &id)| id == index) {
            for ((&i, v), places) in at.iter().zip(row).zip(&places) {
                cells[i] = match places {
                    Some(d) => {
                        let text = format!("{v:.d$}");
                        // A value that rounds to zero is written without a sign.
                        match text.parse::<f64>() {
                            Ok(0.0) => text.trim_start_matches('-').to_string(),
                            _ => text,
                        }
                    }
                    None => v.to_string(),
                };
            }
        }
        out.write_record(&cells)?;
    }
    if rows.next().is_some() {
        bail!("more rows read than CSV records");
    }
    Ok(out.into_inner()?)
}

/// The decimals a CSV cell is written with: 0 for "45", 3 for "19.607"; `None` (full
/// precision) for a number with an exponent ("1e-3"); 0 for a cell that is no number (an
/// empty or "NA" gap), which says nothing about the column's precision.
fn decimals(cell: &str) -> Option<usize> {
    let digits = cell.trim_start_matches(['-', '+']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if plain(whole) && plain(fraction) {
        return Some(fraction.len());
    }
    match cell.parse::<f64>() {
        Ok(_) if cell.contains(['e', 'E']) => None,
        _ => Some(0),
    }
}

/// The images of `columns` (input, noisy input, denoised) side by side at `SCALE`×
/// magnification, in the polarity of the user's file.
fn side_by_side(columns: &[&[f32]], spec: &ImageSpec, inverted: bool) -> RgbImage {
    let (w, h) = (spec.width as u32, spec.height as u32);
    let area = (w * h) as usize;
    let level = |v: f32| if inverted { 255 - to_byte(v) } else { to_byte(v) };
    // Gray images read their one plane for all three colours.
    let plane = |c: usize| if spec.color == Color::Gray { 0 } else { c * area };
    RgbImage::from_fn(columns.len() as u32 * w * SCALE, h * SCALE, |x, y| {
        let (px, py) = (x / SCALE, y / SCALE);
        let image = columns[(px / w) as usize];
        let p = (py * w + px % w) as usize;
        image::Rgb([
            level(image[plane(0) + p]),
            level(image[plane(1) + p]),
            level(image[plane(2) + p]),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_csv_is_written_with_its_own_decimals() {
        assert_eq!(
            ["45", "19.607", "-0.5", "1e-3", "", "NA", "+2.10"].map(decimals),
            [Some(0), Some(3), Some(1), None, Some(0), Some(0), Some(2)]
        );
        let csv = b"time,v,w,label\n1,19.607,3,a\n2,19.61,4,b\n3,NA,5,c\n";
        let values = [19.607751846313477, 2.6, -0.0004, 4.4, 19.2, 5.0];
        let (columns, ids) = (["v".to_string(), "w".to_string()], [0, 1, 2]);
        let out = replace_columns(csv, (&columns, &ids), &values, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "time,v,w,label\n1,19.608,3,a\n2,0.000,4,b\n3,19.200,5,c\n"
        );
        // Rows of a table keep the precision the network carries.
        let out = replace_columns(csv, (&columns, &ids), &values, false).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("1,19.607751846313477,2.6,a"));
    }

    #[test]
    fn gray_images_on_a_light_ground_are_flipped() {
        // Two gray 1×2 images: mostly light, mostly dark.
        let original = [255u8, 100, 0, 10];
        let mut p = original;
        assert_eq!(flip_light_grounds(&mut p, 2, Color::Gray, Invert::Auto), [true, false]);
        assert_eq!(p, [0, 155, 0, 10]);
        let mut p = original;
        assert_eq!(flip_light_grounds(&mut p, 2, Color::Gray, Invert::Yes), [true, true]);
        assert_eq!(p, [0, 155, 255, 245]);
        let mut p = original;
        assert_eq!(flip_light_grounds(&mut p, 2, Color::Gray, Invert::No), [false, false]);
        assert_eq!(p, original);
        // Colour images keep their colours, whatever is asked.
        let mut p = original;
        assert_eq!(flip_light_grounds(&mut p, 2, Color::Rgb, Invert::Yes), [false, false]);
        assert_eq!(p, original);
    }
}
