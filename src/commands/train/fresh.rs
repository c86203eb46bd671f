//! A new run from `train`'s flags: the data read by their kind (images, or vectors and
//! series), the flags that do not apply refused, the run folder made.

use super::{default_out, Setup};
use crate::config::{self, Augment, Mode, ModelConfig, Norm, Precision, Sized, TrainConfig};
use crate::data;
use crate::data::kind::{Kind, NewRun, Prepared};
use crate::data::record::DataRecord;
use crate::data::spec::{AutoWindow, Domain, SeriesSpec, WindowChoice};
use crate::data::spectral::{self, Spectral};
use crate::data::vectors::VectorSource;
use crate::device;
use crate::run_store;
use crate::settings::{self, check_combination, refuse_flags, refuse_inapplicable, TrainSettings};
use crate::settings::{IMAGE_FLAGS, VECTOR_FLAGS};
use anyhow::{bail, Result};
use clap::ValueEnum;
use std::path::Path;

/// A new run from the flags.
/// `scratch`: the folder a data-parallel rank other than 0 writes instead of --out.
pub(super) fn fresh(s: &TrainSettings, scratch: Option<&Path>) -> Result<Setup> {
    let data_dir = s.data.clone().unwrap_or_else(data::default_dir);
    let kind = data::kind::sniff(&data_dir, s.vectors.window, &s.vectors.reading());
    let s = &*s.for_kind(kind == Kind::Images);
    let given = &|id: &str| s.given(id);
    refuse_inapplicable(given, s.model.arch, s.model.conv(), s.train.mode == Mode::Denoise)?;
    let spectral = spectral_of(s, kind, &data_dir)?;
    let mut cfg = s.checked_train_for(spectral.is_some())?;
    device::resolve(cfg.device)?;
    let (series, source) = check_kind(s, kind, &cfg, spectral)?;
    default_trim(s, &mut cfg, kind);
    let vectors = s.vectors.request(s.classes.as_deref(), series.as_ref());
    let new = NewRun { image: &s.image, source: &source, vectors };
    let prepared = kind.prepare(&data_dir, &new, &cfg)?;
    say_what_was_left_out(&prepared, s.vectors.test_fraction);
    // The classes to train on, as codes: the data's labels resolve their names.
    cfg.classes = prepared.classes;
    let Prepared { input, train: train_set, val: val_set, test, source, .. } = prepared;
    let mut model_cfg = s.model.build(input)?;
    // A spectral denoiser learns the correction to the noisy frames (see `residual`).
    model_cfg.residual = spectral.is_some() && cfg.mode == Mode::Denoise && !model_cfg.variational;
    check_combination(&cfg, &model_cfg)?;
    let mut sized = Sized::choose(&model_cfg, train_set.len(), val_set.len(), given, &cfg);
    let on_cpu = crate::device::resolve(cfg.device)? == tch::Device::Cpu;
    let bf16_pays = crate::host::native_bf16().is_some_and(|n| n.faster_than_fp32());
    sized.choose_precision(&model_cfg, given, on_cpu && bf16_pays);
    sized.apply(&mut cfg);
    if on_cpu && cfg.precision == Precision::Bf16 && !bf16_pays {
        note_slow_bf16();
    }
    crate::device::set_threads(sized.threads)?;
    let chosen = chosen_words(s, &model_cfg, &sized);
    let out = match scratch {
        Some(dir) => dir.to_path_buf(),
        None => s.out.clone().unwrap_or_else(|| default_out(&cfg)),
    };
    let unfinished =
        out.join(run_store::CHECKPOINT).is_file() && !out.join(run_store::MODEL_JSON).is_file();
    if unfinished && !s.force {
        bail!(
            "--out {} holds an unfinished run ({}): continue it with \
             `ae-tch train --resume {}`, or pass --force to start over",
            out.display(),
            run_store::CHECKPOINT,
            out.display()
        );
    }
    crate::session::tb_log::refuse_taken(&cfg)?;
    let skipped = image_folder_notes(s, &data_dir, kind)?;
    let run = crate::session::create_run(&out, s.force)?;
    if !skipped.is_empty() {
        let list: String = skipped.iter().map(|line| format!("{line}\n")).collect();
        crate::atomic::write_atomic(&run.file(run_store::SKIPPED_TXT), list.as_bytes())?;
    }
    let data = DataRecord {
        path: std::fs::canonicalize(&data_dir).unwrap_or(data_dir.clone()),
        train_images: train_set.len(),
        val_images: val_set.len(),
        vectors: source,
    };
    Ok(Setup { run, cfg, model_cfg, data, train_set, val_set, test, resume: None, chosen })
}

/// The note for `--precision bf16` on a CPU where bf16 trains slower than fp32: one
/// without AMX (`host::NativeBf16::faster_than_fp32`; W1 and W2 at 0.63× and 0.73× of
/// fp32's speed on AVX512-BF16 alone), or without bf16 arithmetic at all.
fn note_slow_bf16() {
    let how = match crate::host::native_bf16() {
        Some(n) => format!("computes bf16 with {} but has no AMX", n.name()),
        None => "has no bf16 arithmetic of its own".to_string(),
    };
    crate::log::note(format_args!(
        "note: --precision bf16: this CPU {how}, so bf16 trains slower than fp32 here \
         (`ae-tch doctor`)"
    ));
}

/// A new run on a folder of images: its files that are not images (and with
/// `--skip-unreadable` the images that cannot be read), named once — later commands read
/// the folder without a word — as the lines the run folder lists them in, and a note when
/// `--resize` stretches the images to another aspect ratio.
fn image_folder_notes(s: &TrainSettings, dir: &Path, kind: Kind) -> Result<Vec<String>> {
    if kind != Kind::Images || !data::folder::has_images(dir) {
        return Ok(Vec::new());
    }
    let stretched =
        s.image.size.and_then(|size| Some((size, data::folder::stretched_by(dir, size)?)));
    if let Some((size, (file, own))) = stretched {
        crate::log::note(format_args!(
            "note: --resize {size} stretches images of another shape, such as {} ({own}, \
             height x width): the aspect ratio is not kept; crop them first to keep it",
            file.display()
        ));
    }
    let skipped = data::folder::skipped_files(dir)?;
    let mut lines: Vec<String> = skipped.iter().map(|f| f.display().to_string()).collect();
    if s.image.skip_unreadable {
        let unreadable = data::folder::unreadable_files(dir)?;
        lines.extend(
            unreadable.iter().map(|(f, why)| format!("{} (unreadable: {why})", f.display())),
        );
    }
    Ok(lines)
}

/// The settings the data chose, as the flags that would choose them (a capped number of
/// epochs with what the steps asked for).
fn chosen_words(s: &TrainSettings, model: &ModelConfig, sized: &Sized) -> Option<String> {
    let mut words = Vec::new();
    if s.family_from_data {
        let arch = s.model.arch.to_possible_value().map(|v| v.get_name().to_string());
        words.push(format!("--arch {}", arch.unwrap_or_default()));
    }
    if s.model.conv() && !s.given("norm") && config::default_norm(&model.input) == Norm::None {
        words.push("--norm none".into());
    }
    if let Some(b) = sized.batch_size.filter(|&b| b != config::DEFAULT_BATCH_SIZE) {
        words.push(format!("--batch-size {b}"));
    }
    if let Some(lr) = sized.lr {
        let spectral = model.input.series().is_some_and(|(_, s)| s.spectral.is_some());
        let why = if spectral { "for spectra" } else { "lower for a wide input" };
        words.push(format!("--lr {lr:.1e} ({why})"));
    }
    match (sized.epochs, sized.capped_from) {
        (Some(e), Some(wanted)) => words.push(format!(
            "--epochs {e} (not {wanted}: the defaults keep a run near {:.0e} multiply-adds, some \
             3 minutes on 2 CPU cores; give --epochs to train longer)",
            config::WORK
        )),
        (Some(e), None) if e != config::DEFAULT_EPOCHS => words.push(format!("--epochs {e}")),
        _ => {}
    }
    if let Some(Some(p)) = sized.early_stop {
        words.push(format!("--early-stop {p}"));
    }
    if sized.loss == Some(config::Loss::Bce) {
        words.push("--loss bce".into());
    }
    if sized.tail_score == Some(true) {
        words.push("--tail-score".into());
    }
    if let Some(k) = sized.ensemble.filter(|&k| k > 1) {
        words.push(format!("--ensemble {k}"));
    }
    if sized.augment == Some(Augment::Flip) {
        words.push("--augment flip".into());
    }
    if let Some(t) = sized.threads {
        words.push(format!("--threads {t}"));
    }
    if sized.precision == Some(config::Precision::Bf16) {
        words.push("--precision bf16".into());
    }
    (!words.is_empty()).then(|| words.join(", "))
}

/// Refuses the flags that do not apply to `kind` and the settings that cannot work on it;
/// for vectors and series, how a series is cut and how the file is to be read and split.
fn check_kind(
    s: &TrainSettings,
    kind: Kind,
    cfg: &TrainConfig,
    spectral: Option<Spectral>,
) -> Result<(Option<SeriesSpec>, VectorSource)> {
    let given = &|id: &str| s.given(id);
    let v = &s.vectors;
    if kind == Kind::Images {
        refuse_flags(given, &VECTOR_FLAGS, "is for vector data (a .csv or .npy --data file)")?;
    } else {
        refuse_flags(given, &IMAGE_FLAGS, "is for images; --data holds vectors or series")?;
        if cfg.mode == Mode::Denoise && cfg.noise == crate::config::NoiseKind::SaltPepper {
            bail!(
                "--noise salt-pepper sets values to 0 or 1, which has no meaning for scaled \
                 features; use gaussian (σ in scaled units) or masking (a feature set to its \
                 mean)"
            );
        }
        if let Some(f) = ["tail_score", "ensemble"].into_iter().find(|f| s.given(f)) {
            if kind == Kind::Series {
                let why = "scores a table's rows; windows of a series are scored by their error";
                return Err(config::Usage(format!("{} {why}", settings::flag("train", f))).into());
            }
        }
        if !(v.test_fraction > 0.0 && v.test_fraction < 1.0) {
            bail!("--test-fraction must be between 0 and 1 (exclusive), got {}", v.test_fraction);
        }
    }
    let source = VectorSource {
        labels: v.labels.clone(),
        test: v.test.clone(),
        test_labels: v.test_labels.clone(),
        test_fraction: v.test_fraction,
        missing: v.missing,
        gap: Some(v.gap),
        delimiter: v.delimiter,
        no_header: v.no_header,
        skip_rows: v.skip_rows,
        held_out: Vec::new(),
        folder_files: Vec::new(),
    };
    let mut series = series_request(s, kind, cfg.mode == Mode::Denoise)?;
    if let Some(series) = &mut series {
        series.spectral = spectral;
    }
    Ok((series, source))
}

/// `--domain` (stft for WAV recordings under `--mode denoise`, else wave) and
/// `--context`: the spectral rows of a series run, if any.
fn spectral_of(s: &TrainSettings, kind: Kind, data: &Path) -> Result<Option<Spectral>> {
    let v = &s.vectors;
    if kind != Kind::Series {
        return Ok(None); // check_kind refuses --domain and --context on tables
    }
    let wav = data::vectors::series_files(data)
        .is_ok_and(|files| files.iter().any(|f| data::vectors::is_wav(f)));
    let denoise = s.train.mode == Mode::Denoise;
    let domain = v.domain.unwrap_or(if wav && denoise { Domain::Stft } else { Domain::Wave });
    if domain == Domain::Wave {
        let given = &|id: &str| s.given(id);
        refuse_flags(given, &["context"], "is for --domain stft")?;
        return Ok(None);
    }
    let context = v.context.unwrap_or(spectral::DEFAULT_CONTEXT);
    if context % 2 == 0 || !(1..=31).contains(&context) {
        let why = format!("--context must be odd, 1 to 31 frames, got {context}");
        return Err(config::Usage(why).into());
    }
    Ok(Some(Spectral { context }))
}

/// What reading the data left out of a new run, said once: rows with a missing value
/// (`--missing drop`), the files of a folder of series held out for testing.
fn say_what_was_left_out(prepared: &Prepared, test_fraction: f64) {
    if prepared.dropped > 0 {
        let rows = crate::log::counted(prepared.dropped, "row");
        crate::log::note(format_args!("--missing drop: dropped {rows} with a missing value"));
    }
    let held_out = prepared.source.as_ref().map_or(&[][..], |s| &s.held_out[..]);
    if !held_out.is_empty() {
        crate::log::note(format_args!(
            "held out for testing (--test-fraction {test_fraction} of the files): {}",
            held_out.join(", ")
        ));
    }
}

/// How `--window` (`auto` unless given), `--hop` and `--wav-channel` cut a series (a
/// `denoise` run's automatic hop is shorter); on a table, `--hop`, `--wav-channel` or
/// `--gap` is a usage error.
fn series_request(s: &TrainSettings, kind: Kind, denoise: bool) -> Result<Option<SeriesSpec>> {
    let v = &s.vectors;
    if kind != Kind::Series {
        let given = &|id: &str| s.given(id);
        refuse_flags(given, &["hop", "wav_channel", "gap"], "needs --window (a series)")?;
        return Ok(None);
    }
    let (window, hop, auto) = match v.window.unwrap_or(WindowChoice::Auto) {
        WindowChoice::Steps(n) => (n, v.hop.unwrap_or((n / 2).max(1)), None),
        WindowChoice::Auto => (0, 0, Some(AutoWindow { hop: v.hop, denoise })),
        WindowChoice::Table => {
            let why = "--window none reads a CSV as a table; WAV files are always series";
            return Err(config::Usage(why.into()).into());
        }
    };
    let (channels, sample_rate, wav_channel) = (Vec::new(), None, v.wav_channel);
    let spectral = None; // set by check_kind
    Ok(Some(SeriesSpec { window, hop, auto, channels, sample_rate, wav_channel, spectral }))
}

/// Rows not named normal by `--classes` may hold anomalies: without `--trim` they train
/// robustly. Not windows of a series: trimming drops the hardest windows (a heartbeat's
/// peak) every batch, so the model never learns them and flags every one (UCR
/// InternalBleeding16: with 20% trimmed 3 of 5 seeds found the anomaly, untrimmed 5 of 5).
fn default_trim(s: &TrainSettings, cfg: &mut TrainConfig, kind: Kind) {
    if !s.trim_given && s.classes.is_none() && kind == Kind::Vectors {
        cfg.trim = crate::config::VECTOR_TRIM;
        crate::log::note(format_args!(
            "--trim {}: each batch's worst-reconstructed {:.0}% is left out of the loss, so \
             anomalies among the training rows are not learnt (--trim 0 for the plain mean)",
            cfg.trim,
            100.0 * cfg.trim
        ));
    }
}
