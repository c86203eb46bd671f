//! The training loop: one `fit` for every model, mode, loss and schedule, reporting
//! through events so the caller decides what to show and what to write.
//!
//! Everything `fit` needs to continue a run is in `TrainState` plus the optimiser's
//! tensors; every random draw of a step derives from (seed, epoch, step). A run resumed
//! from a checkpoint therefore computes exactly what the uninterrupted run computes.

use crate::config::ModelConfig;
use crate::config::{LrSchedule, TrainConfig};
use crate::data::batch::Source;
use crate::loss;
use crate::metrics;
use crate::model::{Autoencoder, Classifier};
use crate::optim::OptimState;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;
use tch::nn::Module;
use tch::{Kind, Tensor};

mod exchange;
mod guard;
mod run;

pub use run::fit;

/// What `fit` trains on: the training rows, the validation rows and, for a spectral
/// denoiser, the model inputs made for them (`Inputs`; else the rows are corrupted as
/// the mode says).
#[derive(Clone, Copy)]
pub struct Data<'a> {
    pub train: &'a Source,
    pub val: Option<&'a Source>,
    pub inputs: Option<&'a dyn crate::data::batch::Inputs>,
}

/// The running loss is read back from the device every this many steps (for the progress
/// display and, off the CPU, the divergence check), not every step: each read is a host
/// synchronisation.
pub const SYNC_EVERY: usize = 25;
/// Epochs without a new best validation loss before `plateau` halves the learning rate.
pub const PLATEAU_PATIENCE: usize = 3;
/// Parameters that grow this many times beyond their initial scale have exploded (a
/// too-high learning rate saturates the network long before anything overflows).
pub const EXPLODED: f64 = 1e4;
/// The "step" under which the fixed corruption of the validation images is drawn.
const VALIDATION_DRAW: u64 = u64::MAX - 1;

/// Set (by a Ctrl-C / SIGTERM handler) to ask `fit` to stop after the current step with
/// a checkpoint.
pub static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Set once the checkpoint an interrupt asked for is written (what a second Ctrl-C is told).
pub static INTERRUPT_SAVED: AtomicBool = AtomicBool::new(false);

/// Why training stopped before its last epoch, as errors a caller can tell apart (the
/// binary maps them to distinct exit codes).
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("{}", self.words(&crate::invalid::dashed))]
    Diverged {
        epoch: usize,
        step: usize,
        what: String,
        last_good: Option<f64>,
        checkpoint: Option<usize>,
        lr: f64,
        clipped: bool,
    },
    /// `resume`: the command that continues the run, once the caller knows it (else empty).
    #[error(
        "interrupted in epoch {epoch} after step {step} of {steps}; a checkpoint was \
         written{}",
        if resume.is_empty() { String::new() } else { format!("; continue with: {resume}") }
    )]
    Interrupted { epoch: usize, step: usize, steps: usize, resume: String },
}

impl Stopped {
    /// The message, the settings it suggests named by `name` (the command's flags).
    pub fn words(&self, name: &dyn Fn(&str) -> String) -> String {
        let Stopped::Diverged { epoch, step, what, last_good, checkpoint, lr, clipped } = self
        else {
            return self.to_string();
        };
        let last = last_good.map_or(String::new(), |l| format!(" (last finite loss {l:.6})"));
        let kept = checkpoint.map_or("no checkpoint was written yet".to_string(), |e| {
            format!("the checkpoint after epoch {e} is kept")
        });
        // Four significant digits: a warm-up's rate is no round number.
        let lr: f64 = format!("{lr:.3e}").parse().unwrap_or(*lr);
        let clip = if *clipped { String::new() } else { format!(" or {}", name("grad_clip")) };
        format!(
            "training diverged in epoch {epoch}, step {step}: {what}{last}; {kept}; try a \
             lower {} (now {lr}){clip}",
            name("lr")
        )
    }
}

/// One row of metrics.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    /// Mean training objective over the epoch's batches (on corrupted inputs in denoise
    /// mode; penalties included).
    pub train_loss: f64,
    /// Reconstruction loss on the held-out images after the epoch (fixed corruption in
    /// denoise mode).
    pub val_loss: Option<f64>,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Training images per second of the training steps alone.
    pub samples_per_s: f64,
    /// Learning rate used in the epoch.
    #[serde(default)]
    pub lr: f64,
    /// VAE: the reconstruction and KL terms of `train_loss` (per pixel).
    #[serde(default)]
    pub train_reconstruction: Option<f64>,
    #[serde(default)]
    pub train_kl: Option<f64>,
    /// Classifiers: the share of validation rows classified correctly.
    #[serde(default)]
    pub val_accuracy: Option<f64>,
}

/// Where a run stands: with the optimiser's tensors, all a checkpoint needs to continue
/// exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The epoch in progress, or the next to run (1-based).
    pub epoch: usize,
    /// The first step of `epoch` not yet run (0 at an epoch boundary).
    pub step: usize,
    /// Images trained on so far in `epoch`, and the seconds that took.
    pub seen: i64,
    pub seconds: f64,
    /// Every finished epoch's metrics row.
    pub history: Vec<EpochStats>,
    pub best: Option<(usize, f64)>,
    pub lr: f64,
    pub since_best: usize,
    pub stopped_early: bool,
    /// The last epoch after which a checkpoint was written.
    pub checkpointed: Option<usize>,
    /// The largest |parameter| before training: the scale divergence is measured against.
    #[serde(default)]
    pub param_scale: Option<f64>,
}

impl TrainState {
    pub fn new(cfg: &TrainConfig) -> Self {
        TrainState {
            epoch: 1,
            step: 0,
            seen: 0,
            seconds: 0.0,
            history: Vec::new(),
            best: None,
            lr: cfg.lr,
            since_best: 0,
            stopped_early: false,
            checkpointed: None,
            param_scale: None,
        }
    }

    /// True when there is nothing left to train.
    pub fn finished(&self, cfg: &TrainConfig) -> bool {
        self.stopped_early || self.epoch > cfg.epochs
    }

    /// Books `epoch`'s validation loss: a new best, or one more epoch without (which
    /// `plateau` and early stopping count). True for a new best.
    fn end_epoch(&mut self, cfg: &TrainConfig, epoch: usize, val_loss: Option<f64>) -> bool {
        let Some(v) = val_loss else { return false };
        if self.best.is_none_or(|(_, b)| v < b) {
            self.best = Some((epoch, v));
            self.since_best = 0;
            return true;
        }
        self.since_best += 1;
        if cfg.lr_schedule == LrSchedule::Plateau && self.since_best % PLATEAU_PATIENCE == 0 {
            self.lr *= 0.5;
        }
        if cfg.early_stop.is_some_and(|patience| self.since_best >= patience) {
            self.stopped_early = epoch < cfg.epochs;
        }
        false
    }
}

/// What a checkpoint needs from the loop: the state, the optimiser's tensors, the best
/// weights under early stopping, and mid-epoch the epoch's running loss and KL sums.
pub struct Snapshot<'a> {
    pub state: &'a TrainState,
    pub optim: OptimState,
    pub best: Option<Tensor>,
    pub sums: Option<(Tensor, Tensor)>,
}

/// A checkpoint read back, to continue from (the fields of a `Snapshot`).
pub struct Resume {
    pub state: TrainState,
    pub optim: OptimState,
    pub best: Option<Tensor>,
    pub sums: Option<(Tensor, Tensor)>,
    /// Ranks of the group that wrote the checkpoint.
    pub world_size: usize,
}

/// What `fit` reports as it goes.
pub enum Event<'a> {
    EpochStart {
        epoch: usize,
        epochs: usize,
        steps: usize,
    },
    /// `loss` is the epoch's running mean loss so far.
    Progress {
        step: usize,
        loss: f64,
    },
    EpochEnd(&'a EpochStats),
    /// Time to write a checkpoint (every `checkpoint_every` epochs, at the end, and when
    /// interrupted).
    Checkpoint(Snapshot<'a>),
}

/// What a finished `fit` returns.
#[derive(Clone, Debug)]
pub struct Fit {
    pub history: Vec<EpochStats>,
    /// The epoch with the lowest validation loss, and that loss.
    pub best: Option<(usize, f64)>,
    /// Early stopping ended training before the last epoch.
    pub stopped_early: bool,
    /// In a data-parallel group: seconds spent exchanging gradients and the steps that
    /// exchanged them.
    pub exchanged: Option<(f64, usize)>,
}

/// The training objective of one batch through autograd, and a VAE's KL term.
pub(crate) fn autograd_loss(
    model: &Autoencoder,
    input: &Tensor,
    x: &Tensor,
    cfg: &TrainConfig,
) -> (Tensor, Option<Tensor>) {
    let mut out = model.forward_train(input);
    // A network computing in bf16 (`FlatAdam::compute_in`) is scored in fp32.
    if out.reconstruction.kind() != Kind::Float {
        out.reconstruction = out.reconstruction.to_kind(Kind::Float);
    }
    let mut loss = if cfg.trim > 0.0 {
        loss::trimmed(&out.reconstruction, x, cfg.loss, cfg.trim)
    } else {
        loss::reconstruction(&out.reconstruction, x, cfg.loss)
    };
    if cfg.l1_latent > 0.0 {
        loss = &loss + out.z.abs().mean(Kind::Float) * cfg.l1_latent;
    }
    if let Some(kl) = &out.kl {
        loss = &loss + kl * cfg.beta.unwrap_or(1.0);
    }
    (loss, out.kl.map(|kl| kl.detach()))
}

/// What `fit` trains: the network's objective on one batch and on the validation rows.
/// An autoencoder reconstructs; a classifier (`Classification`) adds nothing to the loop
/// but its loss.
pub trait Objective {
    /// The network's configuration.
    fn config(&self) -> &ModelConfig;
    /// The step draws from libtorch's generator and has a KL term (a VAE).
    fn variational(&self) -> bool;
    /// The hand-written MLP step may stand in for autograd (plain MLP autoencoders).
    fn by_hand(&self) -> bool;
    /// One batch's training objective through autograd, and a VAE's KL term: `x` the
    /// clean rows, `input` what the network sees, `rows` their positions in the training
    /// set.
    fn batch_loss(
        &self,
        x: &Tensor,
        input: &Tensor,
        rows: &[usize],
        cfg: &TrainConfig,
    ) -> (Tensor, Option<Tensor>);
    /// The validation loss on `input` (clean rows `clean`), and a classifier's accuracy.
    fn validate(&self, input: &Tensor, clean: &Tensor, cfg: &TrainConfig) -> (f64, Option<f64>);
    /// `validate` reports an accuracy.
    fn validate_accuracy(&self) -> bool {
        false
    }
}

impl Objective for Autoencoder {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn variational(&self) -> bool {
        self.variational
    }

    fn by_hand(&self) -> bool {
        // `MlpStep` computes a plain MLP's output; a residual one goes through autograd.
        !self.config.residual
    }

    fn batch_loss(
        &self,
        x: &Tensor,
        input: &Tensor,
        _rows: &[usize],
        cfg: &TrainConfig,
    ) -> (Tensor, Option<Tensor>) {
        autograd_loss(self, input, x, cfg)
    }

    fn validate(&self, input: &Tensor, clean: &Tensor, cfg: &TrainConfig) -> (f64, Option<f64>) {
        (metrics::mean_loss(self, input, clean, cfg.loss), None)
    }
}

/// A classifier's objective: cross-entropy of its logits against the label codes.
pub struct Classification<'a> {
    pub model: &'a Classifier,
    /// `[N]` i64 label codes of the training rows and of the validation rows (CPU).
    pub train_labels: Tensor,
    pub val_labels: Option<Tensor>,
}

impl Objective for Classification<'_> {
    fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    fn variational(&self) -> bool {
        false // the code is μ: nothing is sampled
    }

    fn by_hand(&self) -> bool {
        false
    }

    fn batch_loss(
        &self,
        _x: &Tensor,
        input: &Tensor,
        rows: &[usize],
        _cfg: &TrainConfig,
    ) -> (Tensor, Option<Tensor>) {
        let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let labels = self
            .train_labels
            .index_select(0, &Tensor::from_slice(&index))
            .to_device(input.device());
        (self.model.forward(input).cross_entropy_for_logits(&labels), None)
    }

    fn validate_accuracy(&self) -> bool {
        self.val_labels.is_some()
    }

    fn validate(&self, input: &Tensor, _clean: &Tensor, _cfg: &TrainConfig) -> (f64, Option<f64>) {
        let Some(labels) = &self.val_labels else { return (f64::NAN, None) };
        let logits = metrics::batched(input, |x| self.model.forward(x));
        let labels = labels.to_device(logits.device());
        tch::no_grad(|| {
            let loss = logits.cross_entropy_for_logits(&labels).double_value(&[]);
            let right =
                logits.argmax(1, false).eq_tensor(&labels).sum(Kind::Int64).int64_value(&[]);
            (loss, Some(right as f64 / labels.size()[0].max(1) as f64))
        })
    }
}
