//! The training loop: one `fit` for every model, mode, loss and schedule, reporting
//! through events so the caller decides what to show and what to write.
//!
//! Everything `fit` needs to continue a run is in `TrainState` plus the optimiser's
//! tensors; every random draw of a step derives from (seed, epoch, step). A run resumed
//! from a checkpoint therefore computes exactly what the uninterrupted run computes.

use crate::config::ModelConfig;
use crate::config::{Engine, LrSchedule, TrainConfig};
use crate::data::batch::{stream_seed, Batcher};
use crate::data::{noise, to_unit_float};
use crate::dist::{self, Dist};
use crate::loss;
use crate::metrics;
use crate::mlp_step::MlpStep;
use crate::model::{Autoencoder, Classifier};
use crate::optim::{FlatAdam, OptimState};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

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
    #[error(
        "training diverged in epoch {epoch}, step {step}: {what}{}; {}; try a lower --lr (now {lr}){}",
        last_good.map_or(String::new(), |l| format!(" (last finite loss {l:.6})")),
        checkpoint.map_or("no checkpoint was written yet".to_string(),
            |e| format!("the checkpoint after epoch {e} is kept")),
        if *clipped { "" } else { " or --grad-clip" }
    )]
    Diverged {
        epoch: usize,
        step: usize,
        what: String,
        last_good: Option<f64>,
        checkpoint: Option<usize>,
        lr: f64,
        clipped: bool,
    },
    #[error("interrupted in epoch {epoch} after step {step} of {steps}; a checkpoint was written")]
    Interrupted { epoch: usize, step: usize, steps: usize },
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
    let out = model.forward_train(input);
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
        true
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

/// Trains `model` (whose variables live in `vs`) on `train`, u8 images `[N, D]` on the
/// training device, validating on `val` after every epoch; continues from `resume` when
/// given. With early stopping the best weights are restored before returning.
/// `on_event` may fail (e.g. while writing metrics), which stops training with its
/// error. A non-finite loss or gradient norm stops with `Stopped::Diverged`, a set
/// `INTERRUPT` with `Stopped::Interrupted` after a checkpoint.
///
/// With `dist`, this process is one rank of a data-parallel group: it computes its share
/// of every batch and of the validation rows, and the ranks exchange what makes them take
/// the same step (`Exchange`).
///
/// This is the driver; the parts that each do one thing are below it: the step
/// (`train_step`), the exchange between ranks (`Exchange`), the divergence guard
/// (`Guard`), the schedule (`step_lr`, `TrainState::end_epoch`), the epoch's metrics row
/// (`epoch_stats`) and the snapshot (`Snapshot`, when `checkpoint_due`).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &dyn Objective,
    vs: &nn::VarStore,
    train: &Tensor,
    val: Option<&Tensor>,
    cfg: &TrainConfig,
    resume: Option<Resume>,
    dist: Option<&Dist>,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Fit> {
    let n = train.size()[0];
    let mut batches = Batcher::new(train, cfg.batch_size as i64, cfg, model.variational());
    let steps = batches.steps();
    let mut opt = FlatAdam::new(vs, cfg.lr, cfg.weight_decay);
    if let Some(frozen) = frozen_parameters(vs) {
        opt.freeze_first(frozen);
    }
    let mut by_hand = match cfg.engine {
        Engine::Auto if model.by_hand() => {
            MlpStep::new(vs, model.config(), cfg, &opt, batches.batch())
        }
        _ => None,
    };
    let device = vs.device();
    let zero = || Tensor::zeros([], (Kind::Float, device));
    let (mut st, mut best_weights, mut sums) = match resume {
        None => (TrainState::new(cfg), None, None),
        Some(r) => {
            opt.load_state(&r.optim)?;
            let sums = r
                .sums
                .filter(|_| r.state.step > 0)
                .map(|(l, k)| (l.to_device(device), k.to_device(device)));
            (r.state, r.best.map(|t| t.to_device(device)), sums)
        }
    };
    // Validation inputs are corrupted once, with a fixed draw, so every epoch (and a
    // resumed run) is measured on the same inputs.
    let val = val.map(|v| {
        let clean = to_unit_float(v);
        let seed = stream_seed(cfg.seed, 0, VALIDATION_DRAW) as i64;
        (noise::model_input_seeded(&clean, cfg, seed, model.config().input.bounded()), clean)
    });
    // On the CPU reading a scalar costs nothing, so divergence is caught at the very step.
    let check_every = if device == Device::Cpu { 1 } else { SYNC_EVERY };
    let guard =
        Guard { cfg, scale: *st.param_scale.get_or_insert_with(|| opt.max_abs().max(1e-3)) };
    let exchange = Exchange { dist, seconds: Default::default(), steps: Default::default() };
    if let Some(d) = dist {
        d.check_flat(opt.flat_grad())?;
    }

    while !st.finished(cfg) {
        let epoch = st.epoch;
        st.lr = step_lr(cfg, (epoch, 0, steps), st.lr);
        opt.lr = st.lr;
        on_event(Event::EpochStart { epoch, epochs: cfg.epochs, steps })?;
        let start = Instant::now();
        batches.start_epoch(epoch);
        let (mut loss_sum, mut kl_sum) = sums.take().unwrap_or_else(|| (zero(), zero()));
        let mut last_good = None;
        for step in st.step..steps {
            let (x, input) = batches.get(step);
            let len = x.size()[0];
            opt.lr = step_lr(cfg, (epoch, step, steps), st.lr);
            // This rank's rows of the batch (all of them in one process, with no new views).
            let (offset, share) = exchange.share(len as usize);
            let (x, input) = match dist {
                Some(_) => (
                    x.narrow(0, offset as i64, share as i64),
                    input.narrow(0, offset as i64, share as i64),
                ),
                None => (x, input),
            };
            let rows = &batches.rows(step)[offset..offset + share];
            let batch = Batch { x: &x, input: &input, rows };
            // In a group the step's KL term is summed over the ranks before it counts.
            let mut kl_step = dist.map(|_| zero());
            let loss = if share > 0 {
                let kl = kl_step.as_mut().unwrap_or(&mut kl_sum);
                train_step(model, by_hand.as_mut(), &mut opt, cfg, batch, kl)
            } else {
                let _ = opt.flat_grad().shallow_clone().zero_();
                zero()
            };
            let (loss, stop_asked) =
                exchange.step(&opt, loss, kl_step.as_mut(), share, len as usize)?;
            if let Some(kl) = kl_step.filter(|_| model.variational()) {
                tch::no_grad(|| kl_sum += &kl);
            }
            let value = ((step + 1) % check_every == 0).then(|| loss.double_value(&[]));
            let at = st.at(epoch, step + 1);
            let stop = |what: String, last_good| guard.stop(at, what, last_good);
            if let Some(v) = value.filter(|v| !v.is_finite()) {
                let e = stop(format!("the loss is {v}"), last_good);
                return Err(nan_row(&mut st, epoch, v, on_event, e));
            }
            if let Err(norm) = opt.apply(cfg.grad_clip) {
                let e = stop(format!("the gradient norm is {norm}"), value.or(last_good));
                return Err(nan_row(&mut st, epoch, f64::NAN, on_event, e));
            }
            if step == 0 || (step + 1) % SYNC_EVERY == 0 || step + 1 == steps {
                if let Err(what) = guard.check_params(&opt) {
                    let e = stop(what, value.or(last_good));
                    return Err(nan_row(&mut st, epoch, f64::NAN, on_event, e));
                }
            }
            last_good = value.or(last_good);
            tch::no_grad(|| loss_sum += &loss * len as f64);
            st.seen += len;
            if (step + 1) % SYNC_EVERY == 0 && step + 1 < steps {
                let running = loss_sum.double_value(&[]) / st.seen as f64;
                if !running.is_finite() {
                    let e = stop(format!("the running loss is {running}"), last_good);
                    return Err(nan_row(&mut st, epoch, running, on_event, e));
                }
                on_event(Event::Progress { step: step + 1, loss: running })?;
            }
            if stop_asked && step + 1 < steps {
                // Never let a checkpoint replace good weights with broken ones.
                if let Err(what) = guard.check_params(&opt) {
                    let e = stop(what, last_good);
                    return Err(nan_row(&mut st, epoch, f64::NAN, on_event, e));
                }
                st.step = step + 1;
                st.seconds += start.elapsed().as_secs_f64();
                let (best, sums) = (best_weights, Some((loss_sum, kl_sum)));
                on_event(Event::Checkpoint(Snapshot {
                    state: &st,
                    optim: opt.state(),
                    best,
                    sums,
                }))?;
                INTERRUPT_SAVED.store(true, Ordering::SeqCst);
                return Err(Stopped::Interrupted { epoch, step: step + 1, steps }.into());
            }
        }
        let mut validate = || {
            val.as_ref()
                .map(|(input, clean)| exchange.validate(model, cfg, input, clean))
                .transpose()
        };
        let stats =
            epoch_stats(model, cfg, &st, epoch, n, &loss_sum, &kl_sum, start, &mut validate)?;
        on_event(Event::Progress { step: steps, loss: stats.train_loss })?;
        st.history.push(stats);
        let stats = st.history.last().expect("just pushed");
        on_event(Event::EpochEnd(stats))?;
        if !stats.train_loss.is_finite() || stats.val_loss.is_some_and(|v| !v.is_finite()) {
            let what = format!(
                "train loss {}, validation loss {}",
                stats.train_loss,
                stats.val_loss.map_or("-".into(), |v| v.to_string())
            );
            return Err(guard.stop(st.at(epoch, steps), what, None).into());
        }
        let val_loss = stats.val_loss;
        (st.epoch, st.step, st.seen, st.seconds) = (epoch + 1, 0, 0, 0.0);
        if st.end_epoch(cfg, epoch, val_loss) && cfg.early_stop.is_some() {
            best_weights = Some(opt.snapshot());
        }
        let interrupted = exchange.stop_asked()? && !st.finished(cfg);
        if checkpoint_due(cfg, &st, epoch) || interrupted {
            st.checkpointed = Some(epoch);
            let best = best_weights.as_ref().map(|b| b.shallow_clone());
            let snap = Snapshot { state: &st, optim: opt.state(), best, sums: None };
            on_event(Event::Checkpoint(snap))?;
        }
        if interrupted {
            INTERRUPT_SAVED.store(true, Ordering::SeqCst);
            return Err(Stopped::Interrupted { epoch, step: steps, steps }.into());
        }
    }
    if let Some(weights) = &best_weights {
        opt.restore(weights);
    }
    let exchanged = dist.map(|_| (exchange.seconds.get(), exchange.steps.get()));
    Ok(Fit { history: st.history, best: st.best, stopped_early: st.stopped_early, exchanged })
}

/// One step's loss, with its gradients in the optimiser's flat gradient (not yet
/// applied): the hand-written MLP step when there is one, else autograd (a VAE's KL term
/// is added to `kl_sum`, weighted by the batch size).
fn train_step(
    model: &dyn Objective,
    by_hand: Option<&mut MlpStep>,
    opt: &mut FlatAdam,
    cfg: &TrainConfig,
    batch: Batch<'_>,
    kl_sum: &mut Tensor,
) -> Tensor {
    let Batch { x, input, rows } = batch;
    if let Some(by_hand) = by_hand {
        return by_hand.forward_backward(input, x);
    }
    let (loss, kl) = model.batch_loss(x, input, rows, cfg);
    if let Some(kl) = kl {
        tch::no_grad(|| *kl_sum += kl * x.size()[0] as f64);
    }
    opt.backward(&loss);
    loss
}

/// What the ranks of a data-parallel group exchange so that they stay one run; in one
/// process (`dist` None) each part is what that process has.
struct Exchange<'a> {
    dist: Option<&'a Dist>,
    /// Time spent in the per-step exchanges, and their number.
    seconds: std::cell::Cell<f64>,
    steps: std::cell::Cell<usize>,
}

impl Exchange<'_> {
    /// This rank's rows `(offset, len)` of `rows` (a batch or the validation set).
    fn share(&self, rows: usize) -> (usize, usize) {
        self.dist.map_or((0, rows), |d| dist::share(rows, d.rank, d.world))
    }

    /// After a step on `share` of the batch's `len` rows: sums the flat gradients, each
    /// weighted by its share (so every rank holds the whole batch's mean gradient), the
    /// weighted losses and KL terms, and the ranks' stop requests. The batch's loss and
    /// whether any rank was asked to stop.
    fn step(
        &self,
        opt: &FlatAdam,
        loss: Tensor,
        kl_step: Option<&mut Tensor>,
        share: usize,
        len: usize,
    ) -> Result<(Tensor, bool)> {
        let (Some(d), Some(kl_step)) = (self.dist, kl_step) else {
            return Ok((loss, INTERRUPT.load(Ordering::SeqCst)));
        };
        let started = Instant::now();
        let weight = share as f64 / len.max(1) as f64;
        let grad = opt.flat_grad();
        if weight != 1.0 {
            tch::no_grad(|| {
                let _ = grad.shallow_clone().g_mul_scalar_(weight);
            });
        }
        d.all_sum(grad)?;
        let stop = INTERRUPT.load(Ordering::SeqCst);
        let mut v = [loss.double_value(&[]) * weight, kl_step.double_value(&[]), stop as u8 as f64];
        d.all_sum_f64(&mut v)?;
        let device = loss.device();
        self.seconds.set(self.seconds.get() + started.elapsed().as_secs_f64());
        self.steps.set(self.steps.get() + 1);
        *kl_step = Tensor::from(v[1]).to_kind(Kind::Float).to_device(device);
        Ok((Tensor::from(v[0]).to_kind(Kind::Float).to_device(device), v[2] > 0.0))
    }

    /// Whether any rank was asked to stop (a signal); every rank gets the same answer.
    fn stop_asked(&self) -> Result<bool> {
        let stop = INTERRUPT.load(Ordering::SeqCst);
        let Some(d) = self.dist else { return Ok(stop) };
        let mut v = [stop as u8 as f64];
        d.all_sum_f64(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// The validation loss (and accuracy) of `model`: each rank measures its share of the
    /// rows and the means are combined weighted by the shares.
    fn validate(
        &self,
        model: &dyn Objective,
        cfg: &TrainConfig,
        input: &Tensor,
        clean: &Tensor,
    ) -> Result<(f64, Option<f64>)> {
        let Some(d) = self.dist.filter(|d| d.world > 1) else {
            return Ok(model.validate(input, clean, cfg));
        };
        let rows = input.size()[0] as usize;
        let (offset, n) = self.share(rows);
        let (o, n64) = (offset as i64, n as i64);
        let (loss, accuracy) = if n > 0 {
            model.validate(&input.narrow(0, o, n64), &clean.narrow(0, o, n64), cfg)
        } else {
            (0.0, None)
        };
        let mut v = [loss * n as f64, accuracy.unwrap_or(0.0) * n as f64];
        d.all_sum_f64(&mut v)?;
        let total = rows.max(1) as f64;
        let classifies = model.validate_accuracy();
        Ok((v[0] / total, classifies.then(|| v[1] / total)))
    }
}

/// One step's rows: clean, as the network sees them, and their positions in the training
/// set.
#[derive(Clone, Copy)]
struct Batch<'a> {
    x: &'a Tensor,
    input: &'a Tensor,
    rows: &'a [usize],
}

/// The number of leading parameters of `vs` that do not train (variables without
/// `requires_grad`, which a model creates first: a frozen encoder), or None when every
/// parameter trains.
fn frozen_parameters(vs: &nn::VarStore) -> Option<i64> {
    let params = vs.trainable_variables();
    let frozen: Vec<bool> = params.iter().map(|p| !p.requires_grad()).collect();
    let leading = frozen.iter().take_while(|&&f| f).count();
    (leading > 0).then(|| params[..leading].iter().map(|p| p.numel() as i64).sum())
}

/// What counts as a diverged run, and the error that says so.
struct Guard<'a> {
    cfg: &'a TrainConfig,
    /// The largest |parameter| before training.
    scale: f64,
}

impl Guard<'_> {
    /// Refuses parameters that are not finite or grew `EXPLODED` times beyond their
    /// initial scale (a too-high learning rate saturates the network long before anything
    /// overflows).
    fn check_params(&self, opt: &FlatAdam) -> Result<(), String> {
        let largest = opt.max_abs();
        if largest.is_nan() || largest > EXPLODED * self.scale {
            return Err(format!(
                "the parameters exploded (largest |θ| {largest:.3e}, more than {EXPLODED:.0e} \
                 times their initial scale {:.3})",
                self.scale
            ));
        }
        Ok(())
    }

    fn stop(&self, at: At, what: String, last_good: Option<f64>) -> Stopped {
        Stopped::Diverged {
            epoch: at.epoch,
            step: at.step,
            what,
            last_good,
            checkpoint: at.checkpoint,
            lr: at.lr,
            clipped: self.cfg.grad_clip.is_some(),
        }
    }
}

/// Where training stands, for an error that says where it stopped.
#[derive(Clone, Copy)]
struct At {
    epoch: usize,
    step: usize,
    /// The last epoch with a checkpoint.
    checkpoint: Option<usize>,
    lr: f64,
}

impl TrainState {
    fn at(&self, epoch: usize, step: usize) -> At {
        At { epoch, step, checkpoint: self.checkpointed, lr: self.lr }
    }
}

/// The learning rate at `(epoch, step, steps per epoch)`: `cosine` follows its curve by
/// epoch, `warmup-cosine` by step; the others keep `lr` (which `plateau` lowers at epoch
/// ends). A function of the position alone, so a resumed run gets the same rates.
fn step_lr(cfg: &TrainConfig, (epoch, step, steps): (usize, usize, usize), lr: f64) -> f64 {
    let cosine = |progress: f64| cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    match cfg.lr_schedule {
        LrSchedule::Cosine => cosine((epoch - 1) as f64 / cfg.epochs as f64),
        LrSchedule::WarmupCosine => {
            let total = (cfg.epochs * steps) as f64;
            let warmup = (total * WARMUP_SHARE).ceil().max(1.0);
            let t = ((epoch - 1) * steps + step) as f64;
            if t < warmup {
                cfg.lr * (t + 1.0) / warmup
            } else {
                cosine((t - warmup) / (total - warmup).max(1.0))
            }
        }
        LrSchedule::Constant | LrSchedule::Plateau => lr,
    }
}

/// The share of all steps `warmup-cosine` spends raising the rate from 0.
const WARMUP_SHARE: f64 = 0.05;

/// A checkpoint is written every `checkpoint_every` epochs and after the last.
fn checkpoint_due(cfg: &TrainConfig, st: &TrainState, epoch: usize) -> bool {
    epoch % cfg.checkpoint_every.max(1) == 0 || st.finished(cfg)
}

/// The metrics row of a finished epoch: its mean loss, the validation loss, timings.
#[allow(clippy::too_many_arguments)]
fn epoch_stats(
    model: &dyn Objective,
    cfg: &TrainConfig,
    st: &TrainState,
    epoch: usize,
    n: i64,
    loss_sum: &Tensor,
    kl_sum: &Tensor,
    start: Instant,
    validate: &mut dyn FnMut() -> Result<Option<(f64, Option<f64>)>>,
) -> Result<EpochStats> {
    // Reading the loss waits for the device, so this times the training steps alone
    // (samples/s); validation runs after it.
    let train_loss = loss_sum.double_value(&[]) / n as f64;
    let train_seconds = st.seconds + start.elapsed().as_secs_f64();
    let validated = validate()?;
    let (val_loss, val_accuracy) = (validated.map(|v| v.0), validated.and_then(|v| v.1));
    let train_kl = model.variational().then(|| kl_sum.double_value(&[]) / n as f64);
    let beta = cfg.beta.unwrap_or(1.0);
    Ok(EpochStats {
        epoch,
        train_loss,
        val_loss,
        train_reconstruction: train_kl.map(|kl| train_loss - beta * kl),
        train_kl,
        seconds: st.seconds + start.elapsed().as_secs_f64(),
        samples_per_s: n as f64 / train_seconds.max(1e-9),
        lr: st.lr,
        val_accuracy,
    })
}

/// Records the partial epoch in which training diverged (its loss non-finite, so the
/// NaN shows in metrics.csv) and returns `stop` as the error.
fn nan_row(
    st: &mut TrainState,
    epoch: usize,
    loss: f64,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
    stop: Stopped,
) -> anyhow::Error {
    st.history.push(EpochStats {
        epoch,
        train_loss: if loss.is_finite() { f64::NAN } else { loss },
        val_loss: None,
        seconds: 0.0,
        samples_per_s: 0.0,
        lr: st.lr,
        train_reconstruction: None,
        train_kl: None,
        val_accuracy: None,
    });
    match on_event(Event::EpochEnd(st.history.last().expect("just pushed"))) {
        Ok(()) => stop.into(),
        Err(e) => e.context(stop.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_rises_over_five_percent_of_the_steps_then_decays_to_zero() {
        let cfg = TrainConfig {
            epochs: 4,
            lr: 0.01,
            lr_schedule: LrSchedule::WarmupCosine,
            ..Default::default()
        };
        let steps = 50; // 200 in all: 10 of warm-up
        let at = |epoch, step| step_lr(&cfg, (epoch, step, steps), 0.0);
        assert!((at(1, 0) - 0.001).abs() < 1e-12, "{}", at(1, 0));
        assert!((at(1, 9) - 0.01).abs() < 1e-12, "the peak closes the warm-up");
        assert!((at(1, 10) - 0.01).abs() < 1e-12, "the decay starts from the peak");
        // Half-way through the decay (step 10 + 95 = epoch 3, step 5) it is half the peak.
        assert!((at(3, 5) - 0.005).abs() < 1e-12, "{}", at(3, 5));
        let last = at(4, 49);
        assert!(last > 0.0 && last < 1e-5, "{last}");
        let rates: Vec<f64> =
            (1..=4).flat_map(|e| (0..steps).map(move |s| (e, s))).map(|(e, s)| at(e, s)).collect();
        assert!(rates[10..].windows(2).all(|w| w[1] <= w[0]), "not decreasing after the warm-up");
        // The other schedules keep the rate they are given within an epoch.
        let constant = TrainConfig { lr_schedule: LrSchedule::Constant, ..cfg };
        assert_eq!(step_lr(&constant, (2, 7, steps), 0.123), 0.123);
    }
}
