//! `ae-tch finetune`: a classifier on a trained autoencoder's encoder (or, with
//! `--from-scratch`, on the identical encoder freshly initialised), trained through the same
//! loop as `train` with cross-entropy as its loss; and the evaluation of classifier runs
//! that `eval` hands over.

use crate::checkpoint::Checkpoint;
use crate::cli::FinetuneArgs;
use crate::config::{Engine, Finetune, Head, Init, LrSchedule, Mode, ModelConfig, TrainConfig};
use crate::data::batch::Source;
use crate::data::record::DataRecord;
use crate::data::Rows;
use crate::device;
use crate::log::counted;
use crate::metrics::probe::{self, ClassReport};
use crate::model::Classifier;
use crate::plot::{self, Format};
use crate::run_store::{self, Outcome, RunDir, RunManifest};
use crate::session::{self, fit_into_run, Trained};
use crate::settings;
use crate::train::{Classification, Resume};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::nn;
use tch::{Device, Tensor};

/// The confusion-matrix plot in a classifier run folder.
pub const CONFUSION_PNG: &str = "confusion.png";

/// A classifier run's rows: labelled training and validation rows, and the test rows.
struct Labelled {
    train: Rows,
    val: Rows,
    test: Rows,
}

/// What a classifier run needs before its first step, fresh or resumed.
struct Setup {
    run: RunDir,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: DataRecord,
    resume: Option<Resume>,
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    device::set_threads(args.runtime.threads)?;
    if crate::dist::Launch::from_env()?.is_some_and(|l| l.world > 1) {
        bail!("finetune trains in one process: start it without torchrun (or with one rank)");
    }
    let setup = match &args.resume {
        None => fresh(&args)?,
        Some(dir) => resumed(&args, dir)?,
    };
    let Setup { run, cfg, model_cfg, data, resume } = setup;
    let tune = cfg.finetune.clone().context("a classifier run records how it was finetuned")?;
    let sets = labelled_rows(&data, &model_cfg, &cfg)?;
    let device = device::resolve(cfg.device)?;
    let threads = tch::get_num_threads();
    crate::log::note(format_args!(
        "{} a classifier on the {} encoder {:?} of {} ({} train / {} validation labelled {}, \
         {} classes{}) on {:?}",
        if resume.is_some() { "resuming" } else { "training" },
        if tune.from_scratch { "freshly initialised" } else { "pretrained" },
        model_cfg.encoder_widths(),
        tune.run.display(),
        sets.train.len(),
        sets.val.len(),
        sets.train.noun(),
        model_cfg.head.as_ref().map_or(0, |h| h.classes.len()),
        if tune.freeze_encoder { ", encoder frozen" } else { "" },
        device
    ));
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = Classifier::new(&vs.root(), &model_cfg);
    prepare_weights(&vs, &cfg, &tune, resume.is_none())?;
    let (objective, train_rows) = objective(&model, &sets);
    let train_t = Source::of(&train_rows, device);
    let val_t = (!sets.val.is_empty()).then(|| Source::of(&sets.val, device));
    let what = Trained { model: &model_cfg, cfg: &cfg, data: &data, threads, dist: None };
    let (fit, train_seconds) = fit_into_run(
        &run,
        &objective,
        &vs,
        crate::train::Data { train: &train_t, val: val_t.as_ref(), inputs: None },
        what,
        resume,
        None,
    )?;
    drop((train_t, val_t));

    let (manifest, report) = write_run(
        &run,
        &vs,
        &model,
        (model_cfg, cfg, data),
        &sets.test,
        (&fit, train_seconds),
        device,
    )?;
    let history = &fit.history;
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&manifest)? + "\n"));
    }
    let dir = run.path().display();
    super::print(&format!(
        "trained {} in {:.1} s\n\n{}\nrun folder  {dir}\nloss plot   {dir}/{}\nconfusion   {dir}/{CONFUSION_PNG}\n",
        counted(history.len(), "epoch"),
        train_seconds,
        super::report::class_table(&report),
        run_store::LOSS_PNG,
    ))
}

/// A new classifier's weights: initialised as the flags ask and with the autoencoder's
/// encoder copied in (unless `--from-scratch`), or as the checkpoint left them; the
/// encoder frozen with `--freeze-encoder`.
fn prepare_weights(
    vs: &nn::VarStore,
    cfg: &TrainConfig,
    tune: &Finetune,
    fresh: bool,
) -> Result<()> {
    if fresh {
        if cfg.init == Init::Torch {
            crate::model::init::torch_init(vs);
        }
        if !tune.from_scratch {
            copy_encoder(vs, &tune.run)?;
        }
    }
    if tune.freeze_encoder {
        for (name, t) in vs.variables() {
            if name.starts_with("encoder.") {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    Ok(())
}

/// The classifier's objective and the training rows it sees: a small labelled set is
/// repeated so that an epoch (one validation, one early-stopping count) is at least
/// `EPOCH_ROWS` rows.
fn objective<'m>(model: &'m Classifier, sets: &Labelled) -> (Classification<'m>, Rows) {
    let label_tensor = |rows: &Rows| {
        let codes: Vec<i64> = rows.labels().unwrap_or_default().iter().map(|&c| c as i64).collect();
        Tensor::from_slice(&codes)
    };
    let reps = EPOCH_ROWS.div_ceil(sets.train.len().max(1)).max(1);
    let tiled: Vec<usize> = (0..reps).flat_map(|_| 0..sets.train.len()).collect();
    let train_rows = if reps > 1 { sets.train.select(&tiled) } else { sets.train.clone() };
    let objective = Classification {
        model,
        train_labels: label_tensor(&train_rows),
        val_labels: (!sets.val.is_empty()).then(|| label_tensor(&sets.val)),
    };
    (objective, train_rows)
}

/// Writes the trained classifier's run folder: weights, loss chart, confusion matrix on
/// the test rows and model.json; model.json's contents and the test report.
fn write_run(
    run: &RunDir,
    vs: &nn::VarStore,
    model: &Classifier,
    (model_cfg, cfg, data): (ModelConfig, TrainConfig, DataRecord),
    test: &Rows,
    (fit, train_seconds): (&crate::train::Fit, f64),
    device: Device,
) -> Result<(RunManifest, ClassReport)> {
    let weights = run_store::weights_file(cfg.format);
    run.save_weights(vs, weights)?;
    let report = super::classify(model, test, &model_cfg, device);
    super::report::write_loss_chart(
        &[super::report::loss_curve("cross-entropy", &fit.history, 0.0)],
        &run.file(run_store::LOSS_PNG),
        &super::report::loss_description(&model_cfg, &cfg),
        false,
        Format::Png,
    )?;
    write_confusion(&report, &run.file(CONFUSION_PNG), Format::Png)?;
    let outcome = session::outcome(fit, train_seconds)?;
    let outcome = Outcome { classification: Some(report.clone()), ..outcome };
    let manifest = RunManifest::new(model_cfg, cfg, data, weights, Some(outcome));
    run.write_manifest(&manifest)?;
    Ok((manifest, report))
}

/// A new classifier run on the autoencoder run `args.run`.
fn fresh(args: &FinetuneArgs) -> Result<Setup> {
    let (Some(source), Some(out)) = (&args.run, &args.out) else {
        bail!("finetune needs --run RUN_DIR and --out CLF_DIR (or --resume CLF_DIR)");
    };
    let pre = RunDir::open(source)?.read_manifest()?;
    if pre.model.head.is_some() {
        bail!(
            "{} is already a classifier run; give the autoencoder run it was finetuned from",
            source.display()
        );
    }
    let cfg = finetune_config(args, source, &pre.train)?;
    cfg.validate().map_err(|e| settings::usage("finetune", e))?;
    device::resolve(cfg.device)?;
    // Classes and their names come from the labels the data have.
    let (train, val, test) = pre
        .model
        .input
        .rebuild(&pre.data, &cfg.data_selection())
        .with_context(|| super::data_needed("finetune", &pre.data))?;
    let classes = class_count(source, [&train, &val, &test])?;
    let names = (0..classes).map(|c| pre.model.input.class_name(c as u8)).collect();
    let model_cfg = ModelConfig { head: Some(Head { classes: names }), ..pre.model.clone() };
    model_cfg.validate().map_err(|e| settings::usage("finetune", e))?;
    // Refuse an impossible --labels-per-class before creating anything.
    labelled_rows(&pre.data, &model_cfg, &cfg)?;
    let run = session::create_run(out, args.force)?;
    Ok(Setup { run, cfg, model_cfg, data: pre.data, resume: None })
}

/// The training settings of a classifier on the autoencoder run `source` (trained with
/// `trained`), from the flags: its rows are those the autoencoder run was trained,
/// validated and tested on.
fn finetune_config(
    args: &FinetuneArgs,
    source: &Path,
    trained: &TrainConfig,
) -> Result<TrainConfig> {
    if args.labels_per_class.is_some_and(|n| n < 2) {
        bail!("--labels-per-class must be at least 2 (a fifth, at least one, is the validation slice)");
    }
    let epochs = args.epochs.unwrap_or(crate::config::FINETUNE_EPOCHS);
    if epochs == 0 || args.batch_size == 0 || args.patience == 0 {
        bail!("--epochs, --batch-size and --patience must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive number, got {}", args.lr);
    }
    if !(args.weight_decay.is_finite() && args.weight_decay >= 0.0) {
        bail!("--weight-decay must be zero or more, got {}", args.weight_decay);
    }
    let run_path = std::fs::canonicalize(source).unwrap_or(source.to_path_buf());
    let finetune = Finetune {
        run: run_path,
        from_scratch: args.from_scratch,
        freeze_encoder: args.freeze_encoder,
        labels_per_class: args.labels_per_class,
        split_seed: trained.seed,
    };
    Ok(TrainConfig {
        mode: Mode::Reconstruct,
        epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        weight_decay: args.weight_decay,
        l1_latent: 0.0,
        trim: 0.0,
        tail_score: false,
        ensemble: 1,
        early_stop: Some(args.patience),
        lr_schedule: LrSchedule::Constant,
        grad_clip: None,
        beta: None,
        engine: Engine::Autograd,
        // A classifier's head is not started at a mean.
        start: crate::config::Start::Random,
        precision: crate::config::Precision::Fp32,
        checkpoint_every: 1,
        device: args.runtime.device,
        finetune: Some(finetune),
        tensorboard: (!args.no_tensorboard)
            .then(|| std::path::PathBuf::from(session::tb_log::DEFAULT_DIR)),
        ..trained.clone()
    })
}

/// The number of classes among the labels of the autoencoder run `source`'s rows (the
/// largest code + 1); refused without labels or with fewer than two training classes.
fn class_count(source: &Path, [train, val, test]: [&Rows; 3]) -> Result<usize> {
    let no_labels = || {
        format!(
            "finetune needs labels, and the data of {} have none (a folder of images needs \
             label folders; a vector file, train with --label-column or --labels)",
            source.display()
        )
    };
    let mut classes = 0;
    for rows in [train, val, test] {
        let labels = rows.labels().with_context(no_labels)?;
        classes = classes.max(labels.iter().map(|&c| c as usize + 1).max().unwrap_or(0));
    }
    let seen: std::collections::BTreeSet<u8> =
        train.labels().unwrap_or_default().iter().copied().collect();
    if seen.len() < 2 {
        bail!(
            "finetune needs at least two classes among the training rows of {}, found {}",
            source.display(),
            seen.len()
        );
    }
    Ok(classes)
}

/// The classifier run in `dir`, continued from its checkpoint (`--epochs` may change).
fn resumed(args: &FinetuneArgs, dir: &Path) -> Result<Setup> {
    let (run, Checkpoint { meta, optim, best, sums }) =
        session::open_checkpoint(dir, true, args.runtime.threads)?;
    let mut cfg = meta.train.clone();
    cfg.epochs = args.epochs.unwrap_or(meta.train.epochs);
    cfg.device = args.runtime.device;
    let state = meta.state.clone();
    let complete = run.file(run_store::MODEL_JSON).is_file();
    if complete && (state.stopped_early || state.finished(&cfg)) {
        bail!(
            "{} has finished ({} epochs{}): there is nothing to resume",
            dir.display(),
            state.epoch - 1,
            if state.stopped_early { ", stopped early" } else { "" }
        );
    }
    if cfg.epochs < state.epoch.saturating_sub(1) {
        bail!(
            "--epochs {} is fewer than the {} epochs the run has already trained",
            cfg.epochs,
            state.epoch - 1
        );
    }
    device::resolve(cfg.device)?;
    let resume = Resume { state, optim, best, sums, world_size: meta.world_size };
    Ok(Setup { run, cfg, model_cfg: meta.model, data: meta.data, resume: Some(resume) })
}

/// The labelled rows of a classifier run, rebuilt from what it records: the autoencoder
/// run's splits, and with `labels_per_class` N rows of each class from its training split
/// (a seeded choice), a fifth of them (at least one) the validation slice.
fn labelled_rows(data: &DataRecord, model: &ModelConfig, cfg: &TrainConfig) -> Result<Labelled> {
    let (train, val, test) = model
        .input
        .rebuild(data, &cfg.data_selection())
        .with_context(|| super::data_needed("finetune", data))?;
    let Some(n) = cfg.finetune.as_ref().and_then(|f| f.labels_per_class) else {
        return Ok(Labelled { train, val, test });
    };
    let labels = train.labels().context("the run's training rows have no labels")?;
    let kept = probe::labels_per_class(labels, n, cfg.seed)?;
    let kept_labels: Vec<u8> = kept.iter().map(|&i| labels[i]).collect();
    let held = probe::labels_per_class(&kept_labels, (n / 5).max(1), cfg.seed ^ VAL_SLICE)?;
    let mut is_val = vec![false; kept.len()];
    for &h in &held {
        is_val[h] = true;
    }
    let pick = |val: bool| -> Vec<usize> {
        kept.iter().zip(&is_val).filter(|(_, &v)| v == val).map(|(&i, _)| i).collect()
    };
    Ok(Labelled { train: train.select(&pick(false)), val: train.select(&pick(true)), test })
}

/// The fewest rows an epoch of `finetune` trains on (smaller labelled sets are repeated).
pub const EPOCH_ROWS: usize = 3200;

/// Mixed into the seed of the validation slice's choice.
const VAL_SLICE: u64 = 0x5e1f_51ce;

/// Copies the encoder weights of the autoencoder run `source` into `vs` (checked: every
/// encoder variable by name, shape and dtype).
fn copy_encoder(vs: &nn::VarStore, source: &Path) -> Result<()> {
    let (_, pre_vs, _) = RunDir::open(source)
        .and_then(|r| r.load_model(Device::Cpu))
        .with_context(|| format!("loading the pretrained encoder of {}", source.display()))?;
    let pre = pre_vs.variables();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if !name.starts_with("encoder.") {
                continue;
            }
            let src = pre.get(&name).with_context(|| {
                format!("{}: the autoencoder has no variable {name}", source.display())
            })?;
            if src.size() != t.size() || src.kind() != t.kind() {
                bail!(
                    "{}: {name} is {:?} {:?}, the classifier needs {:?} {:?}",
                    source.display(),
                    src.kind(),
                    src.size(),
                    t.kind(),
                    t.size()
                );
            }
            t.copy_(src);
        }
        Ok(())
    })
}

fn write_confusion(report: &ClassReport, path: &Path, format: Format) -> Result<()> {
    let counts: Vec<u64> = report.confusion.iter().flatten().copied().collect();
    let title = format!("classifier on the test rows: accuracy {:.4}", report.accuracy);
    crate::atomic::write_atomic(
        path,
        &plot::confusion_matrix(&counts, &report.classes, &title, format)?,
    )
}
