//! `denoise` on a series run: each file's windows through the model and joined back
//! (overlap-add in the wave domain, resynthesis for a spectral run), written in the
//! file's own form.

use super::*;
use crate::data::spec::SeriesSpec;
use crate::data::spectral::{self, AudioNoise, Stft};
use crate::data::windows::{Piece, Windows};

/// Series runs: each file cut into the run's windows, every window through the model,
/// and the windows joined back by overlap-add (`series::overlap_add`), written in the
/// file's own form: a WAV file as a WAV file of the same sample format and rate, a CSV
/// with the run's value columns replaced step by step and every other column as written.
pub(super) fn denoise_series(
    loaded: &crate::commands::LoadedRun,
    spec: &VectorSpec,
    series: &SeriesSpec,
    args: &DenoiseArgs,
) -> Result<()> {
    let w = series.windowing();
    let mut done = Vec::new();
    for path in &args.inputs {
        if !vectors::is_vector_file(path) {
            bail!(
                "{}: this run takes .wav, .csv or .npy series (it was trained on windows of one)",
                path.display()
            );
        }
        let reading = loaded.reading(args.read.reading());
        let label_column = vectors::label_in(path, spec, &reading);
        let (mut stretch, form) =
            vectors::read_steps(path, label_column, Some(&series.channels), reading)?;
        // A WAV file at another rate than the run's goes through the model at the run's
        // rate and is written back at its own.
        let rates = match (form.map(|f| f.sample_rate), series.sample_rate) {
            (Some(file), Some(run)) if file != run => Some((file, run)),
            _ => None,
        };
        let file_steps = stretch.steps.rows();
        if let Some((file, run)) = rates {
            crate::log::note(format_args!(
                "note: {} is sampled at {file} Hz; resampled to the run's {run} Hz and the \
                 result back to {file} Hz",
                path.display()
            ));
            stretch.steps = vectors::resampled(stretch.steps, file, run)?;
        }
        // --add-noise: Gaussian noise on the steps themselves, in the file's units (σ times
        // the channel's scale), so the noisy series is a file to listen to or plot.
        let clean = match args.add_noise {
            Some(level) => Some(with_noise(&mut stretch, spec, series, level, form.is_some())?),
            None => None,
        };
        let values = reconstructed(loaded, (spec, w), &stretch, path)?;
        let steps = stretch.steps;
        let encode = |values: &[f32]| match (form, rates) {
            (Some(form), Some((file, run))) => {
                let mut back = series::resample(values, run, file)?;
                back.resize(file_steps, 0.0); // the rounding of both lengths: a sample at most
                series::wav_bytes(&back, form)
            }
            (Some(form), None) => series::wav_bytes(values, form),
            (None, _) => {
                let values: Vec<f64> = values.iter().map(|&v| v as f64).collect();
                table_bytes(path, (&steps.ids, &series.channels), &values, true)
            }
        };
        let mut files = vec![("denoised", encode(&values)?)];
        let mut said = None;
        if let (Some(sigma), Some(clean)) = (args.add_noise, clean) {
            files.push(("noisy", encode(&steps.values)?));
            let (noisy, denoised) = (snr_db(&clean, &steps.values), snr_db(&clean, &values));
            let noise = match series.spectral {
                Some(_) => format!("white noise at {sigma} dB"),
                None => format!("noise σ = {sigma} (scaled units)"),
            };
            said = Some(format!(
                "{}: {noise}: SNR {noisy:.2} dB, denoised {denoised:.2} dB ({:+.2} dB)\n",
                path.display(),
                denoised - noisy
            ));
        }
        done.push(Written { input: path, n: file_steps, files, said });
    }
    write_results(&args.output, done, "steps")
}

/// The steps of `stretch` as the model reconstructs them: its windows through the model
/// and joined back by overlap-add, each stretch between gaps on its own; one too short for
/// a window is kept as it is.
fn reconstructed(
    loaded: &crate::commands::LoadedRun,
    (spec, w): (&VectorSpec, series::Windowing),
    stretch: &vectors::Stretch,
    path: &Path,
) -> Result<Vec<f32>> {
    let pieces = stretch.long_pieces(w.window)?;
    if w.spectral.is_none() {
        return overlap_added(loaded, spec, w, stretch, &pieces);
    }
    let count = pieces.iter().map(|r| w.count(r.len())).sum();
    let channels = stretch.steps.width();
    if let Some(too_big) = vectors::window_memory(count, channels, w, crate::host::free_memory()) {
        let problem = format!("{}: denoise a shorter recording", too_big.what);
        return Err(crate::invalid::Invalid::plain(problem)).context(path.display().to_string());
    }
    let table = stretch.windows_in(&pieces, w)?;
    let rows = vectors::vector_set(&table, spec, &spec.classes)
        .with_context(|| format!("reading {}", path.display()))?;
    let rows = Rows::Vectors(rows);
    let windows: Vec<f32> =
        through_model(loaded, &spec.scaling, &rows, None)?.iter().map(|&v| v as f32).collect();
    let steps = &stretch.steps;
    let (width, mut first) = (steps.width(), 0);
    let mut values = steps.values.clone();
    let stft = Stft::new(w.window, w.hop);
    for piece in pieces {
        let (count, size) = (w.count(piece.len()), w.width(width));
        let windows = &windows[first * size..(first + count) * size];
        let noisy = &steps.values[piece.clone()];
        let sp = w.spectral.context("a spectral run")?;
        let joined = spectral::resynthesize(&stft, noisy, windows, sp.context);
        values[piece.start * width..piece.end * width].copy_from_slice(&joined);
        first += count;
    }
    Ok(values)
}

/// The wave-domain `reconstructed`: each piece's windows cut as they go through the model
/// (a part at a time, `data::windows`) and overlap-added as they come back, so no window
/// matrix is held whatever the hop.
fn overlap_added(
    loaded: &crate::commands::LoadedRun,
    spec: &VectorSpec,
    w: series::Windowing,
    stretch: &vectors::Stretch,
    pieces: &[std::ops::Range<usize>],
) -> Result<Vec<f32>> {
    let steps = &stretch.steps;
    let channels = steps.width();
    let mut values = steps.values.clone();
    for piece in pieces {
        let part = Piece {
            values: &steps.values[piece.start * channels..piece.end * channels],
            ids: &steps.ids[piece.clone()],
            labels: None,
            file: None,
        };
        let set = Windows::cut(&[part], channels, w)?.all(&|_| Ok(0))?.scaled(&spec.scaling);
        let mut joined = series::OverlapAdd::new(piece.len(), channels, w);
        for r in set.chunks() {
            let first = r.start;
            let x = set.range_to_device(r, loaded.device);
            let out = data::to_host_f32(&metrics::reconstruct(&loaded.model, &x))?;
            joined.add(first, &spec.scaling.to_units_f32(&out));
        }
        let joined = joined.finish();
        values[piece.start * channels..piece.end * channels].copy_from_slice(&joined);
    }
    Ok(values)
}

/// `--add-noise` on a series: noise on its steps (white noise at `level` dB SNR for a
/// spectral run, else `add_step_noise`); the clean steps.
fn with_noise(
    stretch: &mut vectors::Stretch,
    spec: &VectorSpec,
    series: &SeriesSpec,
    level: f64,
    wav: bool,
) -> Result<Vec<f32>> {
    let clean = stretch.steps.values.clone();
    if series.spectral.is_some() {
        let seed = metrics::EVAL_NOISE_SEED as u64;
        stretch.steps.values = spectral::add_noise(&clean, AudioNoise::White, level, &[], seed)?;
    } else {
        add_step_noise(&mut stretch.steps.values, &spec.scaling, series, level, wav);
    }
    Ok(clean)
}

/// Adds N(0, (σ·scale)²) to every step of `values` (steps × channels), where scale is
/// the mean of the run's scale over the channel's window positions, drawn from a fixed
/// seed; a WAV's samples stay in [-1, 1].
fn add_step_noise(
    values: &mut [f32],
    scaling: &Scaling,
    series: &SeriesSpec,
    sigma: f64,
    wav: bool,
) {
    use rand_xoshiro::rand_core::SeedableRng;
    let (channels, window) = (series.channels.len().max(1), series.window);
    let scale: Vec<f64> = (0..channels)
        .map(|c| scaling.scale[c * window..(c + 1) * window].iter().sum::<f64>() / window as f64)
        .collect();
    let mut z = vec![0f32; values.len()];
    let seed = metrics::EVAL_NOISE_SEED as u64;
    data::normal::fill(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed), &mut z);
    for (k, (v, z)) in values.iter_mut().zip(&z).enumerate() {
        *v += (sigma * scale[k % channels]) as f32 * z;
        if wav {
            *v = v.clamp(-1.0, 1.0);
        }
    }
}

/// 10·log10(Σx² / Σ(x − y)²) of `y` against the reference `x`.
fn snr_db(x: &[f32], y: &[f32]) -> f64 {
    let signal: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
    let noise: f64 = x.iter().zip(y).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    10.0 * (signal / noise).log10()
}
