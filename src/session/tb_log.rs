//! The TensorBoard log a run writes while it trains (`train`, `finetune`): what goes in
//! it, at which step. Steps are optimiser steps, so every tag shares TensorBoard's x axis:
//!
//! - `train/loss`: the mean training loss of the last `train::SYNC_EVERY` steps;
//! - `epoch/*`: each metrics.csv column of the epoch (train_loss, val_loss, lr,
//!   samples_per_s, and where the run has them train_reconstruction, train_kl,
//!   val_accuracy), at the epoch's last step;
//! - `val/grid` (image runs) and `val/codes` (histogram of the validation codes), per epoch;
//! - the hparams plugin's session records: the run's settings, and at the end its status.

use crate::config::{ModelConfig, TrainConfig};
use crate::run_store::RunDir;
use crate::tensorboard::{self, EventWriter, HKind};
use crate::train::{EpochStats, Event, TrainState};
use anyhow::Result;
use std::path::PathBuf;

/// The TensorBoard log's folder inside the run folder, unless --tensorboard names another.
pub const DEFAULT_DIR: &str = "tb";

/// What the log shows of the model after an epoch: an image grid (PNG bytes, and its
/// height, width and channels) and the validation codes.
pub struct View {
    pub grid: Option<(Vec<u8>, (u32, u32, u32))>,
    pub codes: Vec<f32>,
}

/// Draws the `View` of the model as it stands.
pub type Viewer<'a> = &'a dyn Fn() -> Result<View>;

pub struct TbLog<'a> {
    writer: EventWriter,
    /// Optimiser steps per epoch.
    steps: i64,
    epoch: usize,
    /// The step and running epoch loss of the last progress report in this epoch.
    last: Option<(usize, f64)>,
    /// Resumed in the middle of an epoch: the first epoch's running loss before the
    /// resumed step is not known.
    mid_epoch: bool,
    viewer: Option<Viewer<'a>>,
}

/// Where a run's log goes: the recorded folder, relative paths inside the run folder.
pub fn folder(run: &RunDir, cfg: &TrainConfig) -> Option<PathBuf> {
    cfg.tensorboard.as_ref().map(|d| if d.is_relative() { run.path().join(d) } else { d.clone() })
}

/// Refuses a new run's `--tensorboard` folder outside the run folder that already holds
/// another run's log: one folder is one run to TensorBoard, and another run's log is not
/// ours to replace. Checked before the run folder is made, so a refusal leaves nothing.
pub fn refuse_taken(cfg: &TrainConfig) -> Result<()> {
    let Some(dir) = cfg.tensorboard.as_ref().filter(|d| d.is_absolute()) else { return Ok(()) };
    if !tensorboard::event_files(dir)?.is_empty() {
        anyhow::bail!(
            "--tensorboard {} already holds a TensorBoard log: give each run its own folder \
             (TensorBoard shows the folders under one log folder side by side), or remove \
             that one",
            dir.display()
        );
    }
    Ok(())
}

impl<'a> TbLog<'a> {
    /// Opens the log of `run` (none when the run writes none): a new one, or for a run
    /// resumed at `state` the one it was writing, cut back to the steps already trained.
    pub fn open(
        run: &RunDir,
        (model, cfg): (&ModelConfig, &TrainConfig),
        train_rows: i64,
        resume: Option<&TrainState>,
        viewer: Option<Viewer<'a>>,
    ) -> Result<Option<TbLog<'a>>> {
        let Some(dir) = folder(run, cfg) else { return Ok(None) };
        if resume.is_none() {
            refuse_taken(cfg)?;
        }
        let steps = (train_rows + cfg.batch_size as i64 - 1) / cfg.batch_size as i64;
        let done = resume.map(|s| (s.epoch as i64 - 1) * steps + s.step as i64);
        let mut writer = EventWriter::open(&dir, done)?;
        if resume.is_none() {
            let group = run.path().display().to_string();
            writer.session(tensorboard::session_start(hparams(model, cfg), &group))?;
        }
        writer.flush()?;
        let epoch = resume.map_or(1, |s| s.epoch);
        let mid_epoch = resume.is_some_and(|s| s.step > 0);
        Ok(Some(TbLog { writer, steps, epoch, last: None, mid_epoch, viewer }))
    }

    fn global(&self, epoch: usize, step: usize) -> i64 {
        (epoch as i64 - 1) * self.steps + step as i64
    }

    pub fn on(&mut self, event: &Event<'_>) -> Result<()> {
        match *event {
            Event::EpochStart { epoch, .. } => {
                self.epoch = epoch;
                self.last = (!std::mem::take(&mut self.mid_epoch)).then_some((0, 0.0));
            }
            Event::Progress { step, loss } => {
                // The running mean over the epoch turned into the mean of the last steps.
                if let Some((before, mean)) = self.last.filter(|&(b, _)| step > b) {
                    let window =
                        (loss * step as f64 - mean * before as f64) / (step - before) as f64;
                    let at = self.global(self.epoch, step);
                    self.writer.scalars(at, &[("train/loss", window)])?;
                }
                self.last = Some((step, loss));
            }
            Event::EpochEnd(stats) => self.epoch_end(stats)?,
            Event::Checkpoint(_) => self.writer.flush()?,
        }
        Ok(())
    }

    fn epoch_end(&mut self, s: &EpochStats) -> Result<()> {
        let at = self.global(s.epoch, self.steps as usize);
        let mut scalars = vec![
            ("epoch/train_loss", s.train_loss),
            ("epoch/lr", s.lr),
            ("epoch/samples_per_s", s.samples_per_s),
        ];
        let optional = [
            ("epoch/val_loss", s.val_loss),
            ("epoch/train_reconstruction", s.train_reconstruction),
            ("epoch/train_kl", s.train_kl),
            ("epoch/val_accuracy", s.val_accuracy),
        ];
        scalars.extend(optional.iter().filter_map(|&(tag, v)| v.map(|v| (tag, v))));
        self.writer.scalars(at, &scalars)?;
        if let Some(viewer) = self.viewer {
            let view = viewer()?;
            if let Some((png, shape)) = view.grid {
                self.writer.image("val/grid", at, png, shape)?;
            }
            if !view.codes.is_empty() {
                self.writer.histogram("val/codes", at, &view.codes)?;
            }
        }
        self.last = None;
        self.writer.flush()
    }

    /// The session's end: finished (success) or stopped by an error.
    pub fn finish(mut self, success: bool) -> Result<()> {
        self.writer.session(tensorboard::session_end(success))?;
        self.writer.flush()
    }
}

/// The run's settings as hparams: every field of its model and training configs (nested
/// ones as `a.b`), numbers, text and flags as they are, lists as JSON text.
fn hparams(model: &ModelConfig, cfg: &TrainConfig) -> Vec<(String, HKind)> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, HKind)>) {
        use serde_json::Value as J;
        match v {
            J::Null => {}
            J::Bool(b) => out.push((prefix.to_string(), HKind::Bool(*b))),
            J::Number(n) => {
                out.push((prefix.to_string(), HKind::Number(n.as_f64().unwrap_or(0.0))))
            }
            J::String(t) => out.push((prefix.to_string(), HKind::Text(t.clone()))),
            J::Array(_) => out.push((prefix.to_string(), HKind::Text(v.to_string()))),
            J::Object(fields) => {
                for (k, v) in fields {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&name, v, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    let skip = ["tensorboard", "input", "head"];
    for (prefix, value) in [
        ("model", serde_json::to_value(model).unwrap_or_default()),
        ("train", serde_json::to_value(cfg).unwrap_or_default()),
    ] {
        if let serde_json::Value::Object(fields) = value {
            for (k, v) in fields.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
                flatten(&format!("{prefix}.{k}"), v, &mut out);
            }
        }
    }
    out
}

/// Height, width and channels of a PNG, from its header.
pub fn png_shape(png: &[u8]) -> Option<(u32, u32, u32)> {
    let be = |i: usize| png.get(i..i + 4).map(|b| u32::from_be_bytes(b.try_into().expect("4")));
    let channels = match png.get(25)? {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    Some((be(20)?, be(16)?, channels))
}
