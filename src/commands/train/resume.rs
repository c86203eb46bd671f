//! A run continued from its checkpoint: the flags given beside `--resume` compared with
//! the recorded run (`--force` accepts the resumable changes), the rows rebuilt and checked.

use super::Setup;
use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::config::{Arch, Layers, Mode, TrainConfig};
use crate::data::spec::{ImageSpec, Size};
use crate::data::vectors;
use crate::run_store;
use crate::session::open_checkpoint;
use crate::settings::{self, check_combination, model_flags, refuse_inapplicable, Changes};
use crate::settings::{TrainSettings, IMAGE_FLAGS, VECTOR_FLAGS};
use crate::{device, train};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use std::path::Path;

/// The run in `dir`, continued from its checkpoint. Flags given on the command line must
/// agree with the recorded run; `--force` lets the `RESUMABLE` ones change.
pub(super) fn resumed(s: &TrainSettings, dir: &Path) -> Result<Setup> {
    let (run, Checkpoint { meta, optim, best, sums }) = open_checkpoint(dir, false, s.threads)?;
    let s = &*s.for_kind(meta.model.input.image().is_some());
    let given = &|id: &str| s.given(id);
    let conv = matches!(meta.model.layers, Layers::Conv(_));
    let arch = match (meta.model.variational, conv) {
        (true, _) => Arch::Vae,
        (false, true) => Arch::Conv,
        (false, false) => Arch::Mlp,
    };
    refuse_inapplicable(given, arch, conv, meta.train.mode == Mode::Denoise)?;
    let cfg = settings_to_resume(s, &meta, dir)?;
    let model_cfg = meta.model.clone();
    cfg.validate().map_err(|e| settings::usage("train", e))?;
    check_combination(&cfg, &model_cfg)?;
    let mut state = meta.state.clone();
    if given("lr") && cfg.lr != meta.train.lr {
        state.lr = cfg.lr;
    }
    check_resumable(&cfg, &meta, &state, &run.file(run_store::MODEL_JSON), dir)?;
    device::resolve(cfg.device)?;
    let (train_set, val_set, test) = meta
        .model
        .input
        .rebuild(&meta.data, &cfg)
        .context("resuming needs the run's training data where they were")?;
    if train_set.len() != meta.data.train_images || val_set.len() != meta.data.val_images {
        bail!(
            "{} now gives {} train / {} validation {}, the run was trained on {} / {}",
            meta.data.path.display(),
            train_set.len(),
            val_set.len(),
            train_set.noun(),
            meta.data.train_images,
            meta.data.val_images
        );
    }
    let resume = train::Resume { state, optim, best, sums, world_size: meta.world_size };
    let data = meta.data;
    let resume = Some(resume);
    Ok(Setup { run, cfg, model_cfg, data, train_set, val_set, test, resume, chosen: None })
}

/// The recorded training settings with the changes the flags ask for: refused when a
/// setting cannot change mid-run, accepted with `--force` when it may.
fn settings_to_resume(s: &TrainSettings, meta: &CheckpointMeta, dir: &Path) -> Result<TrainConfig> {
    let given = &|id: &str| s.given(id);
    let input = &meta.model.input;
    let mut asked = s.train.clone();
    if let Some(names) = &s.classes {
        asked.classes = Some(vectors::resolve_classes(names, input, "classes")?);
    }
    let pairs = [
        (model_flags(&meta.model), model_flags(&s.model.build(input.clone())?)),
        (serde_json::to_value(&meta.train)?, serde_json::to_value(&asked)?),
    ];
    let mut changes = Changes::between(&pairs, serde_json::to_value(&meta.train)?, given);
    match input.image() {
        Some(spec) => compare_image_flags(s, spec, &mut changes.refused),
        None => {
            for id in VECTOR_FLAGS.iter().chain(&IMAGE_FLAGS).filter(|f| given(f)) {
                let flag = settings::flag("train", id);
                changes.refused.push(format!("{flag} (the run's data are read as recorded)"));
            }
        }
    }
    if let Some(asked_dir) = &s.data {
        let asked_dir = std::fs::canonicalize(asked_dir).unwrap_or(asked_dir.clone());
        if asked_dir != meta.data.path {
            let had = meta.data.path.display();
            changes.refused.push(format!("--data {} (the run has {had})", asked_dir.display()));
        }
    }
    if !changes.refused.is_empty() {
        bail!(
            "cannot resume {}: these flags differ from the run and cannot change mid-run: {}",
            dir.display(),
            changes.refused.join("; ")
        );
    }
    if changes.forced.is_empty() {
        return Ok(meta.train.clone());
    }
    if !s.force {
        bail!(
            "resuming {} with changed settings: {}; pass --force to accept",
            dir.display(),
            changes.forced.join("; ")
        );
    }
    Ok(serde_json::from_value(changes.merged)?)
}

/// Refuses a resume that cannot go on: fewer epochs than trained, early stopping turned
/// on late, or a run that has finished (unless it was killed before writing `model_json`).
fn check_resumable(
    cfg: &TrainConfig,
    meta: &CheckpointMeta,
    state: &train::TrainState,
    model_json: &Path,
    dir: &Path,
) -> Result<()> {
    if cfg.epochs < meta.state.epoch.saturating_sub(1) {
        bail!(
            "--epochs {} is fewer than the {} epochs the run has already trained",
            cfg.epochs,
            meta.state.epoch - 1
        );
    }
    if cfg.early_stop.is_some() && meta.train.early_stop.is_none() && state.best.is_some() {
        bail!(
            "--early-stop cannot be turned on when resuming: the run did not keep its best \
             weights; train a new run with it"
        );
    }
    // A run killed after its last checkpoint but before model.json: finish its artefacts.
    let complete = model_json.is_file();
    if state.stopped_early && complete {
        bail!(
            "{} stopped early after epoch {}: there is nothing to resume",
            dir.display(),
            state.epoch - 1
        );
    }
    if state.finished(cfg) && complete {
        bail!(
            "{} has already trained all {} epochs; to train further pass --epochs N --force",
            dir.display(),
            cfg.epochs
        );
    }
    Ok(())
}

/// Refuses image flags given on `--resume` that differ from the run's images.
fn compare_image_flags(s: &TrainSettings, spec: &ImageSpec, refused: &mut Vec<String>) {
    let recorded = spec.request();
    let asked_image = &s.image;
    let name = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| {
        v().map_or(String::new(), |p| p.get_name().to_string())
    };
    let size = |s: Option<Size>| s.map_or("the images' size".into(), |s| s.to_string());
    for (flag, differs, asked, had) in [
        (
            "color",
            asked_image.color != recorded.color,
            name(&|| asked_image.color.to_possible_value()),
            spec.color.to_string(),
        ),
        ("resize", asked_image.size != recorded.size, size(asked_image.size), size(recorded.size)),
        (
            "background",
            asked_image.background != recorded.background,
            name(&|| asked_image.background.to_possible_value()),
            name(&|| spec.background.to_possible_value()),
        ),
    ] {
        if s.given(flag) && differs {
            refused.push(format!("--{flag} {asked} (the run has {had})"));
        }
    }
}
