//! `fit`: the one training loop for every objective, architecture and mode, put together
//! from parts that each do one thing.

use super::exchange::Exchange;
use super::guard::{nan_row, At, Guard};
use super::{
    EpochStats, Event, Fit, Objective, Resume, Snapshot, Stopped, TrainState, INTERRUPT_SAVED,
    SYNC_EVERY, VALIDATION_DRAW,
};
use crate::config::{Augment, Engine, LrSchedule, Precision, TrainConfig};
use crate::data::batch::{stream_seed, Batcher, Source};
use crate::data::noise;
use crate::dist::Dist;
use crate::mlp_step::MlpStep;
use crate::optim::FlatAdam;
use anyhow::Result;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// Reports the loop's progress; failing stops training with that error.
type OnEvent<'e> = dyn FnMut(Event<'_>) -> Result<()> + 'e;

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
/// This is the driver; the parts that each do one thing are below it: the set-up
/// (`Loop::start`), an epoch (`Loop::run_epoch`), a step (`Loop::step`, `train_step`), the
/// exchange between ranks (`Exchange`), the divergence checks (`Loop::diverged` within an epoch, with
/// `Guard`, and `end_epoch`'s check of its metrics row), the schedule (`step_lr`, `TrainState::end_epoch`), the epoch's metrics row
/// (`epoch_stats`) and the snapshot (`Loop::snapshot`, when `checkpoint_due`).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &dyn Objective,
    vs: &nn::VarStore,
    data: super::Data<'_>,
    cfg: &TrainConfig,
    resume: Option<Resume>,
    dist: Option<&Dist>,
    on_event: &mut OnEvent<'_>,
) -> Result<Fit> {
    let mut run = Loop::start(model, vs, data, cfg, resume, dist)?;
    while !run.st.finished(cfg) {
        run.run_epoch(on_event)?;
    }
    if let Some(weights) = &run.best_weights {
        run.opt.restore(weights);
    }
    let exchanged = dist.map(|_| (run.exchange.seconds.get(), run.exchange.steps.get()));
    let st = run.st;
    Ok(Fit { history: st.history, best: st.best, stopped_early: st.stopped_early, exchanged })
}

/// The validation rows: held whole (the network's inputs, drawn once, and the clean
/// rows), or windows of series read a chunk at a time, each chunk's inputs drawn from its
/// own seed (the first chunk's is the whole set's).
enum Validation<'a> {
    Whole(Tensor, Tensor),
    Chunked(&'a Source),
}

impl Validation<'_> {
    /// The validation loss (and accuracy, for a classifier) over all the rows.
    fn loss(
        &self,
        model: &dyn Objective,
        cfg: &TrainConfig,
        exchange: &Exchange,
    ) -> Result<(f64, Option<f64>)> {
        let rows = match self {
            Validation::Whole(input, clean) => return exchange.validate(model, cfg, input, clean),
            Validation::Chunked(rows) => rows,
        };
        let (mut loss, mut accuracy) = (0.0, None::<f64>);
        for (k, r) in rows.chunks().into_iter().enumerate() {
            let n = r.len() as f64;
            let clean = rows.unit_range(r);
            let input = validation_input(&clean, cfg, model, k);
            let (l, a) = exchange.validate(model, cfg, &input, &clean)?;
            loss += l * n;
            accuracy = a.map(|a| accuracy.unwrap_or(0.0) + a * n);
        }
        let total = rows.len().max(1) as f64;
        Ok((loss / total, accuracy.map(|a| a / total)))
    }
}

/// The network's input for validation rows `clean`, drawn once for chunk `chunk` (the
/// whole set is chunk 0), so every epoch and a resumed run are measured on the same.
fn validation_input(
    clean: &Tensor,
    cfg: &TrainConfig,
    model: &dyn Objective,
    chunk: usize,
) -> Tensor {
    let seed = stream_seed(cfg.seed, chunk, VALIDATION_DRAW) as i64;
    noise::model_input_seeded(clean, cfg, seed, model.config().input.bounded())
}

/// What the loop sets up once and its parts read or advance.
struct Loop<'a> {
    model: &'a dyn Objective,
    cfg: &'a TrainConfig,
    dist: Option<&'a Dist>,
    batches: Batcher,
    opt: FlatAdam,
    by_hand: Option<MlpStep>,
    st: TrainState,
    /// The weights of the best epoch so far (early stopping).
    best_weights: Option<Tensor>,
    /// A resumed epoch's running loss and KL sums.
    sums: Option<(Tensor, Tensor)>,
    /// The validation rows.
    val: Option<Validation<'a>>,
    guard: Guard<'a>,
    exchange: Exchange<'a>,
    /// A spectral denoiser's model inputs, made each epoch.
    inputs: Option<&'a dyn crate::data::batch::Inputs>,
    device: Device,
    /// Training rows, and steps per epoch.
    rows: i64,
    steps: usize,
    /// Steps between reads of the loss for the divergence check.
    check_every: usize,
}

/// An epoch's running sums of the (batch-weighted) loss and KL term, on the device.
struct Sums {
    loss: Tensor,
    kl: Tensor,
}

impl<'a> Loop<'a> {
    /// The batcher, the optimiser (with a frozen encoder left alone), the hand-written MLP
    /// step where it applies, the state (fresh or resumed), the validation inputs and the
    /// divergence guard.
    fn start(
        model: &'a dyn Objective,
        vs: &nn::VarStore,
        data: super::Data<'a>,
        cfg: &'a TrainConfig,
        resume: Option<Resume>,
        dist: Option<&'a Dist>,
    ) -> Result<Self> {
        let train = data.train;
        let mut batches = Batcher::new(train, cfg.batch_size as i64, cfg, model.variational());
        if cfg.augment == Augment::Flip {
            batches = batches.flipping(model.config().image_shape());
        }
        let (mut opt, by_hand) = optimiser(model, vs, cfg, batches.batch());
        let device = vs.device();
        let (mut st, best_weights, sums) = match resume {
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
        let given = data.inputs.map(|i| i.validation()).transpose()?.flatten();
        let val = data.val.map(|v| match (v, &given) {
            // A classifier's accuracy reads its labels whole: its rows are too.
            (Source::Windows(..), None) if !model.validate_accuracy() => Validation::Chunked(v),
            _ => {
                let clean = v.unit_range(0..v.len());
                let input = match &given {
                    Some(input) => input.to_device(clean.device()),
                    None => validation_input(&clean, cfg, model, 0),
                };
                Validation::Whole(input, clean)
            }
        });
        // On the CPU reading a scalar costs nothing, so divergence is caught at the step.
        let check_every = if device == Device::Cpu { 1 } else { SYNC_EVERY };
        let scale = *st.param_scale.get_or_insert_with(|| opt.max_abs().max(1e-3));
        let exchange = Exchange { dist, seconds: Default::default(), steps: Default::default() };
        if let Some(d) = dist {
            d.check_flat(opt.flat_grad())?;
        }
        let (rows, steps) = (train.len() as i64, batches.steps());
        Ok(Loop {
            model,
            cfg,
            dist,
            batches,
            opt,
            by_hand,
            st,
            best_weights,
            sums,
            val,
            guard: Guard { cfg, scale },
            exchange,
            inputs: data.inputs,
            device,
            rows,
            steps,
            check_every,
        })
    }

    fn zero(&self) -> Tensor {
        Tensor::zeros([], (Kind::Float, self.device))
    }

    /// One epoch from where the state stands (a resumed run may start mid-epoch), then its
    /// end: metrics row, schedule, checkpoint.
    fn run_epoch(&mut self, on_event: &mut OnEvent<'_>) -> Result<()> {
        let (cfg, epoch, steps) = (self.cfg, self.st.epoch, self.steps);
        self.st.lr = step_lr(cfg, (epoch, 0, steps), self.st.lr);
        self.opt.lr = self.st.lr;
        on_event(Event::EpochStart { epoch, epochs: cfg.epochs, steps })?;
        let start = Instant::now();
        self.batches.start_epoch(epoch);
        if let Some(inputs) = self.inputs {
            self.batches.give_inputs(inputs.training(epoch)?)?;
        }
        let (loss, kl) = self.sums.take().unwrap_or_else(|| (self.zero(), self.zero()));
        let mut sums = Sums { loss, kl };
        let mut last_good = None;
        for step in self.st.step..steps {
            last_good = self.step((epoch, step), &mut sums, last_good, start, on_event)?;
        }
        self.end_epoch(epoch, &sums, start, on_event)
    }

    /// One step: this rank's share of the batch through the network, the exchange between
    /// ranks, the divergence checks, the update, and an interrupt's checkpoint. The last
    /// loss read that was finite.
    fn step(
        &mut self,
        (epoch, step): (usize, usize),
        sums: &mut Sums,
        last_good: Option<f64>,
        start: Instant,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Option<f64>> {
        let (cfg, steps) = (self.cfg, self.steps);
        let (x, input) = self.batches.get(step);
        let len = x.size()[0];
        self.opt.lr = step_lr(cfg, (epoch, step, steps), self.st.lr);
        // This rank's rows of the batch (all of them in one process, with no new views).
        let (offset, share) = self.exchange.share(len as usize);
        let (x, input) = match self.dist {
            Some(_) => (
                x.narrow(0, offset as i64, share as i64),
                input.narrow(0, offset as i64, share as i64),
            ),
            None => (x, input),
        };
        let rows = &self.batches.rows(step)[offset..offset + share];
        let batch = Batch { x: &x, input: &input, rows };
        // In a group the step's KL term is summed over the ranks before it counts.
        let mut kl_step = self.dist.map(|_| self.zero());
        let loss = if share > 0 {
            let kl = kl_step.as_mut().unwrap_or(&mut sums.kl);
            train_step(self.model, self.by_hand.as_mut(), &mut self.opt, cfg, batch, kl)
        } else {
            let _ = self.opt.flat_grad().shallow_clone().zero_();
            self.zero()
        };
        let (loss, stop_asked) =
            self.exchange.step(&self.opt, loss, kl_step.as_mut(), share, len as usize)?;
        if let Some(kl) = kl_step.filter(|_| self.model.variational()) {
            tch::no_grad(|| sums.kl += &kl);
        }
        let value = ((step + 1) % self.check_every == 0).then(|| loss.double_value(&[]));
        let at = self.st.at(epoch, step + 1);
        if let Some(v) = value.filter(|v| !v.is_finite()) {
            return Err(self.diverged(at, format!("the loss is {v}"), last_good, v, on_event));
        }
        if let Err(norm) = self.opt.apply(cfg.grad_clip) {
            let what = format!("the gradient norm is {norm}");
            return Err(self.diverged(at, what, value.or(last_good), f64::NAN, on_event));
        }
        if step == 0 || (step + 1) % SYNC_EVERY == 0 || step + 1 == steps {
            if let Err(what) = self.guard.check_params(&self.opt) {
                return Err(self.diverged(at, what, value.or(last_good), f64::NAN, on_event));
            }
        }
        let last_good = value.or(last_good);
        tch::no_grad(|| sums.loss += &loss * len as f64);
        self.st.seen += len;
        if (step + 1) % SYNC_EVERY == 0 && step + 1 < steps {
            let running = sums.loss.double_value(&[]) / self.st.seen as f64;
            if !running.is_finite() {
                let what = format!("the running loss is {running}");
                return Err(self.diverged(at, what, last_good, running, on_event));
            }
            on_event(Event::Progress { step: step + 1, loss: running })?;
        }
        if stop_asked && step + 1 < steps {
            // Never let a checkpoint replace good weights with broken ones.
            if let Err(what) = self.guard.check_params(&self.opt) {
                return Err(self.diverged(at, what, last_good, f64::NAN, on_event));
            }
            self.st.step = step + 1;
            self.st.seconds += start.elapsed().as_secs_f64();
            let sums = Some((sums.loss.shallow_clone(), sums.kl.shallow_clone()));
            let best = self.best_weights.take();
            on_event(Event::Checkpoint(self.snapshot(best, sums)))?;
            INTERRUPT_SAVED.store(true, Ordering::SeqCst);
            let resume = String::new();
            return Err(Stopped::Interrupted { epoch, step: step + 1, steps, resume }.into());
        }
        Ok(last_good)
    }

    /// The one divergence check's end: the partial epoch recorded (its loss `loss`, NaN
    /// unless non-finite) and the error that says where and why training stopped.
    fn diverged(
        &mut self,
        at: At,
        what: String,
        last_good: Option<f64>,
        loss: f64,
        on_event: &mut OnEvent<'_>,
    ) -> anyhow::Error {
        let stop = self.guard.stop(at, what, last_good);
        nan_row(&mut self.st, at.epoch(), loss, on_event, stop)
    }

    /// What a checkpoint takes of the loop now.
    fn snapshot(&self, best: Option<Tensor>, sums: Option<(Tensor, Tensor)>) -> Snapshot<'_> {
        Snapshot { state: &self.st, optim: self.opt.state(), best, sums }
    }

    /// The end of an epoch: its metrics row (with the validation loss), a non-finite one
    /// refused, the schedule and early stopping advanced, a checkpoint when due or asked.
    fn end_epoch(
        &mut self,
        epoch: usize,
        sums: &Sums,
        start: Instant,
        on_event: &mut OnEvent<'_>,
    ) -> Result<()> {
        let (cfg, steps) = (self.cfg, self.steps);
        let (model, val, exchange) = (self.model, &self.val, &self.exchange);
        let mut validate = || val.as_ref().map(|v| v.loss(model, cfg, exchange)).transpose();
        let stats =
            epoch_stats(model, cfg, &self.st, epoch, self.rows, sums, start, &mut validate)?;
        on_event(Event::Progress { step: steps, loss: stats.train_loss })?;
        self.st.history.push(stats);
        let stats = self.st.history.last().expect("just pushed");
        on_event(Event::EpochEnd(stats))?;
        if !stats.train_loss.is_finite() || stats.val_loss.is_some_and(|v| !v.is_finite()) {
            let what = format!(
                "train loss {}, validation loss {}",
                stats.train_loss,
                stats.val_loss.map_or("-".into(), |v| v.to_string())
            );
            return Err(self.guard.stop(self.st.at(epoch, steps), what, None).into());
        }
        let val_loss = stats.val_loss;
        let st = &mut self.st;
        (st.epoch, st.step, st.seen, st.seconds) = (epoch + 1, 0, 0, 0.0);
        if st.end_epoch(cfg, epoch, val_loss) && cfg.early_stop.is_some() {
            self.best_weights = Some(self.opt.snapshot());
        }
        let interrupted = self.exchange.stop_asked()? && !self.st.finished(cfg);
        if checkpoint_due(cfg, &self.st, epoch) || interrupted {
            self.st.checkpointed = Some(epoch);
            let best = self.best_weights.as_ref().map(|b| b.shallow_clone());
            on_event(Event::Checkpoint(self.snapshot(best, None)))?;
        }
        if interrupted {
            INTERRUPT_SAVED.store(true, Ordering::SeqCst);
            let resume = String::new();
            return Err(Stopped::Interrupted { epoch, step: steps, steps, resume }.into());
        }
        Ok(())
    }
}

/// The optimiser over `vs` (a frozen encoder left alone), the hand-written MLP step where
/// it applies, and with `--precision bf16` on autograd's path the optimiser's bf16 copy
/// (the hand-written step keeps its own).
fn optimiser(
    model: &dyn Objective,
    vs: &nn::VarStore,
    cfg: &TrainConfig,
    batch: i64,
) -> (FlatAdam, Option<MlpStep>) {
    let mut opt = FlatAdam::new(vs, cfg.lr, cfg.weight_decay);
    if let Some(frozen) = frozen_parameters(vs) {
        opt.freeze_first(frozen);
    }
    let by_hand = match cfg.engine {
        Engine::Auto if model.by_hand() => MlpStep::new(vs, model.config(), cfg, &opt, batch),
        _ => None,
    };
    if cfg.precision == Precision::Bf16 && by_hand.is_none() {
        opt.compute_in(Kind::BFloat16);
    }
    (opt, by_hand)
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
    // With --precision bf16 the network computes on a bf16 copy of the weights and input;
    // the loss and the update stay fp32.
    opt.lower();
    let narrow = opt.compute_kind();
    let input = if narrow == Kind::Float { input.shallow_clone() } else { input.to_kind(narrow) };
    let (loss, kl) = model.batch_loss(x, &input, rows, cfg);
    if let Some(kl) = kl {
        tch::no_grad(|| *kl_sum += kl * x.size()[0] as f64);
    }
    opt.backward(&loss);
    opt.raise();
    loss
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
    sums: &Sums,
    start: Instant,
    validate: &mut dyn FnMut() -> Result<Option<(f64, Option<f64>)>>,
) -> Result<EpochStats> {
    // Reading the loss waits for the device, so this times the training steps alone
    // (samples/s); validation runs after it.
    let train_loss = sums.loss.double_value(&[]) / n as f64;
    let train_seconds = st.seconds + start.elapsed().as_secs_f64();
    let validated = validate()?;
    let (val_loss, val_accuracy) = (validated.map(|v| v.0), validated.and_then(|v| v.1));
    let train_kl = model.variational().then(|| sums.kl.double_value(&[]) / n as f64);
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
