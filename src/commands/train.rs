//! `ae-tch train`: fills the configs from the flags, trains, and writes the run folder.

use crate::checkpoint::{self, Checkpoint};
use crate::cli::TrainArgs;
use crate::commands::report;
use crate::config::{
    self, Arch, ArchDefaults, Backbone, ConvLayers, Engine, Init, Layers, Mode, ModelConfig, Norm,
    Precision, TrainConfig,
};
use crate::data::spec::{DataSpec, ImageSpec, SeriesSpec, Size};
use crate::data::vectors::{self, VectorRequest, VectorSource};
use crate::data::{self, Rows, Split};
use crate::dist::{self, Dist};
use crate::plot::Format;
use crate::run_store::{self, RunDir};
use crate::run_store::{DataRecord, Outcome, RunManifest};
use crate::session::{self, fit_into_run, open_checkpoint, tb_log, Trained};
use crate::train;
use crate::{device, metrics};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use std::path::Path;
use std::path::PathBuf;
use tch::nn;


/// Images shown in the run's grid.png.
const GRID_IMAGES: usize = 10;

/// What a run needs before its first step, fresh or resumed.
struct Setup {
    run: RunDir,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: DataRecord,
    train_set: Rows,
    val_set: Rows,
    test: Rows,
    resume: Option<train::Resume>,
}

/// `given(id)`: whether the flag with clap id `id` was on the command line (with
/// `--resume`, only those are compared with the recorded run).
pub fn run(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> Result<()> {
    device::set_threads(args.runtime.threads)?;
    // Under torchrun this process is one rank of a data-parallel group.
    let mut dist = join_group(&args)?;
    let scratch = dist.as_ref().and_then(|d| d.scratch());
    let setup = match &args.resume {
        None => fresh(&args, given, scratch)?,
        Some(dir) => resumed(&args, dir, given)?,
    };
    let Setup { mut run, cfg, model_cfg, data: data_record, train_set, val_set, test, resume } =
        setup;
    let threads = tch::get_num_threads();
    let mut device = device::resolve(cfg.device)?;
    if let Some(d) = dist.as_mut() {
        // One GPU per rank: the one torchrun's LOCAL_RANK names.
        if device.is_cuda() {
            device = device::resolve(config::DeviceSpec::Cuda(d.local_rank))
                .context("each rank trains on cuda:LOCAL_RANK")?;
        }
        d.start(device)?;
        crate::note(format_args!(
            "rank {} of {}: c10d {} on {device:?}",
            d.rank,
            d.world,
            d.backend()
        ));
        // Only rank 0 writes the run folder; the others write theirs where nobody looks.
        if let Some(scratch) = d.scratch() {
            run = RunDir::create(scratch, true)?;
        }
        check_data_parallel(d, &cfg)?;
        let at = resume.as_ref().map_or((1, 0), |r| (r.state.epoch, r.state.step));
        let fingerprint =
            checkpoint::settings_hash(&model_cfg, &cfg, &data_record.path) + &format!("@{at:?}");
        d.agree("settings", &fingerprint)?;
        if let Some(recorded) = resume.as_ref().map(|r| r.world_size).filter(|&w| w != d.world) {
            crate::note(format_args!(
                "the checkpoint was written by {recorded} rank(s), this group has {}: the run \
                 continues equal to it up to rounding, not bit for bit",
                d.world
            ));
        }
    }
    let data_dir = data_record.path.clone();
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = crate::model::Autoencoder::new(&vs.root(), &model_cfg);
    let parameters: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    crate::note(format_args!(
        "{} {} autoencoder: {}, {} parameters, on {} ({} train / {} validation {}, {}) on {:?}",
        if resume.is_some() { "resuming" } else { "training" },
        cfg.mode,
        model_cfg.shape_summary(),
        thousands(parameters),
        data_dir.display(),
        train_set.len(),
        val_set.len(),
        train_set.noun(),
        model_cfg.input.describe(),
        device
    ));
    if cfg.init == Init::Torch && resume.is_none() {
        crate::model::torch_init(&vs);
    }
    let train_t = train_set.to_device(device);
    let val_t = (!val_set.is_empty()).then(|| val_set.to_device(device));

    let what =
        Trained { model: &model_cfg, cfg: &cfg, data: &data_record, threads, dist: dist.as_ref() };
    let viewer = || view(&model, &cfg, &val_set, device);
    let rows = (&train_t, val_t.as_ref());
    let done_before = resume.as_ref().map_or(0, |r| r.state.history.len());
    let (fit, train_seconds) = fit_into_run(&run, &model, &vs, rows, what, resume, Some(&viewer))?;
    if dist.as_ref().is_some_and(|d| !d.is_main()) {
        return Ok(()); // rank 0 evaluates and writes the run
    }
    let history = &fit.history;

    let weights = run_store::weights_file(cfg.format);
    run.save_weights(&vs, weights)?;
    let pca = super::pca_baseline(&train_set, &model_cfg, device)?;
    drop((train_t, val_t));
    let report = metrics::evaluate(&model, &model_cfg, &cfg, &test.to_device(device), &pca);
    report::write_loss_chart(
        &[report::loss_curve("train", history)],
        &run.file(run_store::LOSS_PNG),
        &report::loss_description(&model_cfg, &cfg),
        false,
        Format::Png,
    )?;
    if let Some(images) = test.images() {
        report::write_grid(
            &model,
            &cfg,
            &images.take(GRID_IMAGES),
            device,
            &run.file(run_store::GRID_PNG),
            Format::Png,
        )?;
    }
    let outcome = Outcome { test: Some(report.clone()), ..session::outcome(&fit, train_seconds)? };
    let manifest =
        RunManifest::new(model_cfg, cfg.clone(), data_record.clone(), weights, Some(outcome));
    run.write_manifest(&manifest)?;

    if args.json {
        return super::print(&(serde_json::to_string_pretty(&manifest)? + "\n"));
    }
    let dir = run.path().display();
    let grid = match test.images() {
        Some(_) => format!("grid        {dir}/{}\n", run_store::GRID_PNG),
        None => String::new(),
    };
    super::print(&format!(
        "{}\n\n{}\nrun folder  {dir}\nloss plot   {dir}/{}\n{grid}",
        trained_line(done_before, history.len(), train_seconds),
        report::eval_table(&report, &cfg),
        run_store::LOSS_PNG,
    ))
}

/// 1234567 as "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// "trained 6 epochs in 4.2 s", or for a resumed run what this session trained.
fn trained_line(done_before: usize, total: usize, seconds: f64) -> String {
    match total.saturating_sub(done_before) {
        _ if done_before == 0 => format!("trained {total} epochs in {seconds:.1} s"),
        0 => format!("resumed after epoch {done_before}: no epochs left to train"),
        1 => format!("trained epoch {total} in {seconds:.1} s (resumed after epoch {done_before})"),
        _ => format!(
            "trained epochs {}–{total} in {seconds:.1} s (resumed after epoch {done_before})",
            done_before + 1
        ),
    }
}

/// What the TensorBoard log shows of the autoencoder after an epoch: the grid of
/// `GRID_IMAGES` validation images and the codes of every validation row.
fn view(
    model: &crate::model::Autoencoder,
    cfg: &TrainConfig,
    val: &Rows,
    device: tch::Device,
) -> Result<tb_log::View> {
    let grid = match val.images() {
        Some(images) if !images.is_empty() => {
            let png = report::grid(model, cfg, &images.take(GRID_IMAGES), device, Format::Png)?;
            tb_log::png_shape(&png).map(|shape| (png, shape))
        }
        _ => None,
    };
    let codes = if val.is_empty() {
        Vec::new()
    } else {
        let x = val.to_unit(device);
        let z = crate::metrics::batched(&x, |b| model.encode(b));
        data::to_host_f32(&z)?
    };
    Ok(tb_log::View { grid, codes })
}

/// The training settings the flags ask for, with the network's defaults for the rest.
fn train_config(args: &TrainArgs) -> TrainConfig {
    let defaults = ArchDefaults::for_layers(&layers(args, &ModelConfig::default().input));
    TrainConfig {
        mode: args.mode,
        noise: args.noise,
        noise_level: args.noise_level,
        epochs: args.epochs,
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed,
        limit: args.limit,
        val_fraction: args.val_fraction,
        device: args.runtime.device,
        // Resolved against the data (image numbers or vector labels) once they are read.
        classes: None,
        loss: args.loss,
        weight_decay: args.weight_decay,
        l1_latent: args.l1_latent,
        trim: args.trim.unwrap_or(0.0),
        early_stop: args.early_stop,
        lr_schedule: args.lr_schedule.unwrap_or(defaults.lr_schedule),
        grad_clip: args.grad_clip,
        beta: args.beta,
        engine: args.engine,
        init: args.init.unwrap_or(defaults.init),
        precision: args.precision,
        checkpoint_every: args.checkpoint_every,
        format: args.format,
        finetune: None,
        tensorboard: match (&args.tensorboard, args.no_tensorboard) {
            (_, true) => None,
            (None, false) => Some(PathBuf::from(tb_log::DEFAULT_DIR)),
            (Some(dir), false) => Some(std::path::absolute(dir).unwrap_or(dir.clone())),
        },
    }
}

/// Checks that the model and training settings work together.
fn check_combination(cfg: &TrainConfig, model_cfg: &ModelConfig) -> Result<()> {
    cfg.validate().map_err(config::Usage)?;
    model_cfg.validate().map_err(config::Usage)?;
    if cfg.precision == Precision::Bf16 && !(model_cfg.is_plain_mlp() && cfg.engine == Engine::Auto)
    {
        bail!(
            "--precision bf16 is implemented in the hand-written MLP step: it needs --arch mlp \
             without --tied-weights, and --engine auto"
        );
    }
    if cfg.beta.is_some() && !model_cfg.variational {
        bail!("--beta works with --arch vae only");
    }
    Ok(())
}

/// A new run from the flags.
/// `scratch`: the folder a data-parallel rank other than 0 writes instead of --out.
fn fresh(args: &TrainArgs, given: &dyn Fn(&str) -> bool, scratch: Option<&Path>) -> Result<Setup> {
    let conv = matches!(layers(args, &ModelConfig::default().input), Layers::Conv(_));
    refuse_inapplicable(given, args.arch, conv, args.mode == Mode::Denoise)?;
    let mut cfg = train_config(args);
    cfg.validate().map_err(config::Usage)?;
    device::resolve(cfg.device)?;
    let data_dir = args.data.clone().unwrap_or_else(data::default_dir);
    // A folder with --window is a folder of series; otherwise a folder holds images.
    let series_folder = args.vectors.window.is_some() && data_dir.is_dir();
    // A folder of WAV files is series whatever else it holds (a CSV could be a label list).
    let wavs = data_dir.is_dir()
        && vectors::series_files(&data_dir).is_ok_and(|f| f.iter().any(|f| vectors::is_wav(f)));
    if wavs && !series_folder {
        return Err(config::Usage(format!(
            "--data {} holds WAV files, series: cut them into windows with --window N (and \
             --hop H)",
            data_dir.display()
        ))
        .into());
    }
    let loaded = if series_folder || vectors::is_vector_file(&data_dir) {
        fresh_vectors(args, given, &data_dir, &mut cfg)?
    } else {
        fresh_images(args, given, &data_dir, &mut cfg)?
    };
    let (input, train_set, val_set, test, source) = loaded;
    let model_cfg = model_config(args, input)?;
    check_combination(&cfg, &model_cfg)?;
    let out = match scratch {
        Some(dir) => dir.to_path_buf(),
        None => args.out.clone().unwrap_or_else(|| default_out(&cfg)),
    };
    let unfinished =
        out.join(run_store::CHECKPOINT).is_file() && !out.join(run_store::MODEL_JSON).is_file();
    if unfinished && !args.force {
        bail!(
            "--out {} holds an unfinished run ({}): continue it with \
             `ae-tch train --resume {}`, or pass --force to start over",
            out.display(),
            run_store::CHECKPOINT,
            out.display()
        );
    }
    let run = RunDir::create(&out, args.force)?;
    // Checkpoints of an earlier run in this folder must not be resumed into this one.
    match std::fs::remove_file(run.file(run_store::CHECKPOINT)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("--force: removing the old checkpoint");
        }
        _ => {}
    }
    let data = DataRecord {
        path: std::fs::canonicalize(&data_dir).unwrap_or(data_dir.clone()),
        train_images: train_set.len(),
        val_images: val_set.len(),
        vectors: source,
    };
    Ok(Setup { run, cfg, model_cfg, data, train_set, val_set, test, resume: None })
}

/// What a fresh run reads: the input description, training, validation and test rows,
/// and for vectors how the file was read.
type Loaded = (DataSpec, Rows, Rows, Rows, Option<VectorSource>);

/// Flags that apply to one kind of data only: refused with the other.
const IMAGE_FLAGS: [&str; 3] = ["color", "resize", "background"];
const VECTOR_FLAGS: [&str; 10] = [
    "label_column",
    "columns",
    "missing",
    "labels",
    "test",
    "test_fraction",
    "scale",
    "window",
    "hop",
    "wav_channel",
];

/// A flag given where it would do nothing is refused (exit 2), never silently ignored.
fn refuse_flags(given: &dyn Fn(&str) -> bool, flags: &[&str], why: &str) -> Result<()> {
    match flags.iter().find(|f| given(f)) {
        Some(&"noise_level") => Err(config::Usage(format!("--noise-level (--sigma) {why}")).into()),
        Some(f) => Err(config::Usage(format!("--{} {why}", f.replace('_', "-"))).into()),
        None => Ok(()),
    }
}

/// The same rule for the flags that apply to one mode or one architecture only, for a
/// run of architecture `arch` with conv layers or not, denoising or not (a fresh run's
/// flags, or the recorded run on `--resume`).
fn refuse_inapplicable(
    given: &dyn Fn(&str) -> bool,
    arch: Arch,
    conv: bool,
    denoise: bool,
) -> Result<()> {
    let checks: [(&[&str], bool, &str); 5] = [
        (&["noise", "noise_level"], !denoise, "applies to --mode denoise only"),
        (&["hidden"], conv, "sets MLP layers; conv layers take --channels and --blocks"),
        (
            &["channels", "blocks", "norm", "upsample"],
            !conv,
            "sets conv layers: add --arch conv (or --arch vae --backbone conv)",
        ),
        (&["backbone", "beta"], arch != Arch::Vae, "applies to --arch vae only"),
        (&["tied_weights"], arch != Arch::Mlp, "works with --arch mlp only"),
    ];
    for (flags, refused, why) in checks {
        if refused {
            refuse_flags(given, flags, why)?;
        }
    }
    Ok(())
}

fn fresh_images(
    args: &TrainArgs,
    given: &dyn Fn(&str) -> bool,
    dir: &Path,
    cfg: &mut TrainConfig,
) -> Result<Loaded> {
    refuse_flags(given, &VECTOR_FLAGS, "is for vector data (a .csv or .npy --data file)")?;
    cfg.classes = args
        .classes
        .as_ref()
        .map(|names| vectors::image_class_codes(names, "--classes"))
        .transpose()?;
    let (train_set, val_set) = data::training_sets(dir, cfg, &args.image.request())?;
    let test = data::load_split(dir, Split::Test, &train_set.spec.request())?;
    let input = DataSpec::Image(train_set.spec);
    Ok((input, Rows::Images(train_set), Rows::Images(val_set), Rows::Images(test), None))
}

fn fresh_vectors(
    args: &TrainArgs,
    given: &dyn Fn(&str) -> bool,
    path: &Path,
    cfg: &mut TrainConfig,
) -> Result<Loaded> {
    refuse_flags(given, &IMAGE_FLAGS, "is for images; --data holds vectors or series")?;
    if cfg.mode == crate::config::Mode::Denoise && cfg.noise == crate::config::NoiseKind::SaltPepper
    {
        bail!(
            "--noise salt-pepper sets values to 0 or 1, which has no meaning for scaled \
             features; use gaussian (σ in scaled units) or masking (a feature set to its mean)"
        );
    }
    let v = &args.vectors;
    if !(v.test_fraction > 0.0 && v.test_fraction < 1.0) {
        bail!("--test-fraction must be between 0 and 1 (exclusive), got {}", v.test_fraction);
    }
    let mut source = VectorSource {
        labels: v.labels.clone(),
        test: v.test.clone(),
        test_fraction: v.test_fraction,
        missing: v.missing,
        held_out: Vec::new(),
        folder_files: vectors::folder_names(path)?,
    };
    let series = match v.window {
        Some(window) => Some(SeriesSpec {
            window,
            hop: v.hop.unwrap_or((window / 2).max(1)),
            channels: Vec::new(),
            sample_rate: None,
            wav_channel: v.wav_channel,
        }),
        None if vectors::is_wav(path) => {
            return Err(config::Usage(format!(
                "--data {} is a WAV file, a series: cut it into windows with --window N \
                 (and --hop H)",
                path.display()
            ))
            .into())
        }
        None => {
            refuse_flags(given, &["hop", "wav_channel"], "needs --window (a series)")?;
            None
        }
    };
    let req = VectorRequest {
        label_column: v.label_column.as_deref(),
        columns: v.columns.as_deref(),
        scale: v.scale,
        classes: args.classes.as_deref(),
        series: series.as_ref(),
    };
    let sets = vectors::prepare(path, &source, &req, cfg)?;
    if sets.dropped > 0 {
        let rows = crate::data::table::counted(sets.dropped, "row");
        crate::note(format_args!("--missing drop: dropped {rows} with a missing value"));
    }
    cfg.classes = sets.classes;
    if !sets.held_out.is_empty() {
        crate::note(format_args!(
            "held out for testing (--test-fraction {} of the files): {}",
            v.test_fraction,
            sets.held_out.join(", ")
        ));
        source.held_out = sets.held_out;
    }
    // Rows not named normal by --classes may hold anomalies: train robustly. Not for
    // windows of a series: trimming drops the hardest windows (a heartbeat's peak) every
    // batch, so the model never learns them and flags every one (UCR InternalBleeding16:
    // with 20% trimmed 3 of 5 seeds found the anomaly, untrimmed 5 of 5).
    if args.trim.is_none() && cfg.classes.is_none() && series.is_none() {
        cfg.trim = crate::config::VECTOR_TRIM;
        crate::note(format_args!(
            "--trim {}: each batch's worst-reconstructed {:.0}% is left out of the loss, so \
             anomalies among the training rows are not learnt (--trim 0 for the plain mean)",
            cfg.trim,
            100.0 * cfg.trim
        ));
    }
    let (train, val, test) =
        (Rows::Vectors(sets.train), Rows::Vectors(sets.val), Rows::Vectors(sets.test));
    Ok((DataSpec::Vector(sets.spec), train, val, test, Some(source)))
}

/// The run in `dir`, continued from its checkpoint. Flags given on the command line must
/// agree with the recorded run; `--force` lets the `RESUMABLE` ones change.
fn resumed(args: &TrainArgs, dir: &Path, given: &dyn Fn(&str) -> bool) -> Result<Setup> {
    let (run, Checkpoint { meta, optim, best, sums }) =
        open_checkpoint(dir, false, args.runtime.threads)?;
    let input = meta.model.input.clone();
    let conv = matches!(meta.model.layers, Layers::Conv(_));
    let arch = match (meta.model.variational, conv) {
        (true, _) => Arch::Vae,
        (false, true) => Arch::Conv,
        (false, false) => Arch::Mlp,
    };
    refuse_inapplicable(given, arch, conv, meta.train.mode == Mode::Denoise)?;
    let mut asked = train_config(args);
    if let Some(names) = &args.classes {
        asked.classes = Some(vectors::resolve_classes(names, &input, "--classes")?);
    }
    let mut cfg = meta.train.clone();
    let mut refused = Vec::new();
    let mut forced = Vec::new();
    let pairs = [
        (model_flags(&meta.model), model_flags(&model_config(args, input.clone())?)),
        (serde_json::to_value(&meta.train)?, serde_json::to_value(&asked)?),
    ];
    let mut merged = serde_json::to_value(&meta.train)?;
    for (recorded, wanted) in &pairs {
        let (Some(recorded), Some(wanted)) = (recorded.as_object(), wanted.as_object()) else {
            continue;
        };
        // Fields left out at their defaults (e.g. `trim`) count as null on either side.
        let keys: std::collections::BTreeSet<&String> =
            recorded.keys().chain(wanted.keys()).collect();
        for key in keys {
            let (old, new) = (
                recorded.get(key).unwrap_or(&serde_json::Value::Null),
                wanted.get(key).unwrap_or(&serde_json::Value::Null),
            );
            if !given(key) || new == old {
                continue;
            }
            let change = format!("--{} {} (the run has {})", key.replace('_', "-"), new, old);
            if checkpoint::RESUMABLE.contains(&key.as_str()) {
                merged[key] = new.clone();
                forced.push(change);
            } else {
                refused.push(change);
            }
        }
    }
    match &input {
        DataSpec::Image(spec) => compare_image_flags(args, spec, given, &mut refused),
        DataSpec::Vector(_) => {
            for flag in VECTOR_FLAGS.iter().chain(&IMAGE_FLAGS).filter(|f| given(f)) {
                refused.push(format!(
                    "--{} (the run's data are read as recorded)",
                    flag.replace('_', "-")
                ));
            }
        }
    }
    if let Some(asked_dir) = &args.data {
        let asked_dir = std::fs::canonicalize(asked_dir).unwrap_or(asked_dir.clone());
        if asked_dir != meta.data.path {
            refused.push(format!(
                "--data {} (the run has {})",
                asked_dir.display(),
                meta.data.path.display()
            ));
        }
    }
    if !refused.is_empty() {
        bail!(
            "cannot resume {}: these flags differ from the run and cannot change mid-run: {}",
            dir.display(),
            refused.join("; ")
        );
    }
    if !forced.is_empty() {
        if !args.force {
            bail!(
                "resuming {} with changed settings: {}; pass --force to accept",
                dir.display(),
                forced.join("; ")
            );
        }
        cfg = serde_json::from_value(merged)?;
    }
    if cfg.epochs < meta.state.epoch.saturating_sub(1) {
        bail!(
            "--epochs {} is fewer than the {} epochs the run has already trained",
            cfg.epochs,
            meta.state.epoch - 1
        );
    }
    let model_cfg = meta.model.clone();
    check_combination(&cfg, &model_cfg)?;
    let mut state = meta.state.clone();
    if forced.iter().any(|f| f.starts_with("--lr ")) {
        state.lr = cfg.lr;
    }
    if cfg.early_stop.is_some() && meta.train.early_stop.is_none() && state.best.is_some() {
        bail!(
            "--early-stop cannot be turned on when resuming: the run did not keep its best \
             weights; train a new run with it"
        );
    }
    // A run killed after its last checkpoint but before model.json: finish its artefacts.
    let complete = run.file(run_store::MODEL_JSON).is_file();
    if state.stopped_early && complete {
        bail!(
            "{} stopped early after epoch {}: there is nothing to resume",
            dir.display(),
            state.epoch - 1
        );
    }
    if state.finished(&cfg) && complete {
        bail!(
            "{} has already trained all {} epochs; to train further pass --epochs N --force",
            dir.display(),
            cfg.epochs
        );
    }
    device::resolve(cfg.device)?;
    let data_dir = meta.data.path.clone();
    let (train_set, val_set, test) = super::run_rows(&meta.data, &input, &cfg)
        .context("resuming needs the run's training data where they were")?;
    if train_set.len() != meta.data.train_images || val_set.len() != meta.data.val_images {
        bail!(
            "{} now gives {} train / {} validation {}, the run was trained on {} / {}",
            data_dir.display(),
            train_set.len(),
            val_set.len(),
            train_set.noun(),
            meta.data.train_images,
            meta.data.val_images
        );
    }
    let resume = train::Resume { state, optim, best, sums, world_size: meta.world_size };
    Ok(Setup {
        run,
        cfg,
        model_cfg,
        data: meta.data,
        train_set,
        val_set,
        test,
        resume: Some(resume),
    })
}

/// Refuses image flags given on `--resume` that differ from the run's images.
fn compare_image_flags(
    args: &TrainArgs,
    spec: &ImageSpec,
    given: &dyn Fn(&str) -> bool,
    refused: &mut Vec<String>,
) {
    let recorded = spec.request();
    let asked_image = args.image.request();
    let name = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| {
        v().map_or(String::new(), |p| p.get_name().to_string())
    };
    let size = |s: Option<Size>| s.map_or("the images' size".into(), |s| s.to_string());
    for (flag, differs, asked, had) in [
        (
            "color",
            asked_image.color != recorded.color,
            name(&|| args.image.color.to_possible_value()),
            spec.color.to_string(),
        ),
        ("resize", asked_image.size != recorded.size, size(asked_image.size), size(recorded.size)),
        (
            "background",
            asked_image.background != recorded.background,
            name(&|| args.image.background.to_possible_value()),
            name(&|| spec.background.to_possible_value()),
        ),
    ] {
        if given(flag) && differs {
            refused.push(format!("--{flag} {asked} (the run has {had})"));
        }
    }
}

/// Joins the data-parallel group torchrun describes, if it does.
fn join_group(args: &TrainArgs) -> Result<Option<Dist>> {
    let Some(launch) = dist::Launch::from_env()? else { return Ok(None) };
    if !(args.dist_timeout > 0.0 && args.dist_timeout.is_finite()) {
        bail!("--dist-timeout must be a positive number of seconds, got {}", args.dist_timeout);
    }
    let timeout = std::time::Duration::from_secs_f64(args.dist_timeout);
    let d = Dist::join(&launch, timeout)?;
    crate::note(format_args!(
        "rank {} of {} (local rank {}), store at {}:{}{}",
        d.rank,
        d.world,
        d.local_rank,
        launch.master_addr,
        launch.master_port,
        if launch.agent_store { " (torchrun's agent)" } else { "" }
    ));
    if !d.is_main() {
        // Rank 0 speaks for the group; the others only report their errors.
        crate::log::set_quiet(true);
    }
    Ok(Some(d))
}

/// What data-parallel training cannot do (yet), refused before the first step.
fn check_data_parallel(d: &Dist, cfg: &TrainConfig) -> Result<()> {
    if d.world > 1 && cfg.trim > 0.0 {
        bail!(
            "--trim {} chooses the rows it leaves out over the whole batch, which the ranks \
             of a data-parallel group do not share: pass --trim 0, or train in one process",
            cfg.trim
        );
    }
    Ok(())
}

/// The layers `--arch`, `--backbone` and their settings ask for, on `input`.
fn layers(args: &TrainArgs, input: &DataSpec) -> Layers {
    if args.arch == Arch::Conv || (args.arch == Arch::Vae && args.backbone == Backbone::Conv) {
        Layers::Conv(ConvLayers {
            channels: args.channels.clone(),
            blocks: args.blocks,
            groups: match args.norm {
                Norm::Group => config::NORM_GROUPS,
                Norm::None => 0,
            },
            upsample: args.upsample,
        })
    } else {
        let hidden = args.hidden.clone().unwrap_or_else(|| config::default_hidden(input));
        Layers::Mlp { hidden, tied_weights: args.tied_weights }
    }
}

/// The model the flags ask for, on `input`.
fn model_config(args: &TrainArgs, input: DataSpec) -> Result<ModelConfig> {
    let layers = layers(args, &input);
    if args.tied_weights && args.arch != Arch::Mlp {
        let arch = if matches!(layers, Layers::Conv(_)) { "conv" } else { "vae" };
        bail!("--tied-weights works with --arch mlp only, not {arch}");
    }
    Ok(ModelConfig {
        latent: args.latent.unwrap_or_else(|| config::default_latent(&input)),
        input,
        layers,
        activation: args.activation,
        variational: args.arch == Arch::Vae,
        head: None,
    })
}

/// The model's settings under the names of the flags that set them (the layers a
/// model does not use read as empty), to compare with the flags given on `--resume`.
fn model_flags(m: &ModelConfig) -> serde_json::Value {
    let plain = ConvLayers::plain(vec![]);
    let (kind, hidden, conv, tied) = match &m.layers {
        Layers::Mlp { hidden, tied_weights } => ("mlp", hidden.clone(), &plain, *tied_weights),
        Layers::Conv(conv) => ("conv", vec![], conv, false),
    };
    serde_json::json!({
        "arch": if m.variational { "vae" } else { kind },
        "backbone": if m.variational { kind } else { "mlp" },
        "hidden": hidden,
        "channels": conv.channels,
        "blocks": conv.blocks,
        "norm": if conv.groups > 0 { "group" } else { "none" },
        "upsample": conv.upsample,
        "tied_weights": tied,
        "latent": m.latent,
        "activation": m.activation,
    })
}

/// `runs/<mode>-<YYYYMMDD>-<HHMMSS>` in UTC.
fn default_out(cfg: &TrainConfig) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{}", cfg.mode, utc_stamp(secs)))
}

/// `YYYYMMDD-HHMMSS` for a Unix time (Howard Hinnant's days-to-civil algorithm).
fn utc_stamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_and_shapes_read_well() {
        assert_eq!(
            (thousands(0), thousands(999), thousands(1000)),
            ("0".into(), "999".into(), "1,000".into())
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        let mlp = ModelConfig::default();
        assert_eq!(mlp.shape_summary(), format!("mlp 784-512-128-{}", mlp.latent));
        let conv = ModelConfig {
            layers: Layers::Conv(ConvLayers {
                channels: vec![32, 64],
                blocks: 1,
                groups: 8,
                upsample: Default::default(),
            }),
            latent: 30,
            ..ModelConfig::default()
        };
        assert_eq!(
            conv.shape_summary(),
            "conv 1×28×28 → channels 32,64 (1 residual block a level, GroupNorm) → 30"
        );
        let vae = ModelConfig { variational: true, ..ModelConfig::default() };
        assert!(vae.shape_summary().starts_with("vae 784-512-128-"));
    }

    #[test]
    fn a_resumed_run_says_what_this_session_trained() {
        assert_eq!(trained_line(0, 6, 4.24), "trained 6 epochs in 4.2 s");
        assert_eq!(
            trained_line(2, 25, 4.2),
            "trained epochs 3–25 in 4.2 s (resumed after epoch 2)"
        );
        assert_eq!(trained_line(5, 6, 1.0), "trained epoch 6 in 1.0 s (resumed after epoch 5)");
        assert_eq!(trained_line(4, 4, 0.0), "resumed after epoch 4: no epochs left to train");
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_796_026_530), "20261130-081530");
    }
}
