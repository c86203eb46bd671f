//! The training loop: one `fit` for every model, mode, loss and schedule, reporting
//! through events so the caller decides what to show and what to write.

use crate::config::{Engine, Loss, LrSchedule, TrainConfig};
use crate::data::batch::Batcher;
use crate::data::{noise, to_unit_float};
use crate::metrics;
use crate::mlp_step::MlpStep;
use crate::model::Autoencoder;
use crate::optim::FlatAdam;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::nn;
use tch::{Kind, Reduction, Tensor};

/// The running loss is read back from the device every this many steps (for the progress
/// display), not every step: each read is a host synchronisation.
pub const SYNC_EVERY: usize = 25;
/// Epochs without a new best validation loss before `plateau` halves the learning rate.
pub const PLATEAU_PATIENCE: usize = 3;

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
}

/// What a finished `fit` returns.
#[derive(Clone, Debug)]
pub struct Fit {
    pub history: Vec<EpochStats>,
    /// The epoch with the lowest validation loss, and that loss.
    pub best: Option<(usize, f64)>,
    /// Early stopping ended training before the last epoch.
    pub stopped_early: bool,
}

/// The reconstruction loss of `output` against `target`, averaged over elements.
pub fn reconstruction_loss(output: &Tensor, target: &Tensor, loss: Loss) -> Tensor {
    match loss {
        Loss::Mse => output.mse_loss(target, Reduction::Mean),
        Loss::Bce => output.binary_cross_entropy::<Tensor>(target, None, Reduction::Mean),
    }
}

/// The training objective of one batch through autograd, and a VAE's KL term.
fn autograd_loss(
    model: &Autoencoder,
    input: &Tensor,
    x: &Tensor,
    cfg: &TrainConfig,
) -> (Tensor, Option<Tensor>) {
    let out = model.forward_train(input);
    let mut loss = reconstruction_loss(&out.reconstruction, x, cfg.loss);
    if cfg.l1_latent > 0.0 {
        loss = &loss + out.z.abs().mean(Kind::Float) * cfg.l1_latent;
    }
    if let Some(kl) = &out.kl {
        loss = &loss + kl * cfg.beta.unwrap_or(1.0);
    }
    (loss, out.kl.map(|kl| kl.detach()))
}

/// Trains `model` (whose variables live in `vs`) on `train`, u8 images `[N, D]` on the
/// training device, validating on `val` after every epoch. With early stopping the best
/// weights are restored before returning. `on_event` may fail (e.g. while writing
/// metrics), which stops training with its error.
pub fn fit(
    model: &Autoencoder,
    vs: &nn::VarStore,
    train: &Tensor,
    val: Option<&Tensor>,
    cfg: &TrainConfig,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Fit> {
    let n = train.size()[0];
    let mut batches = Batcher::new(train, cfg.batch_size as i64, cfg, model.variational);
    let steps = batches.steps();
    let mut opt = FlatAdam::new(vs, cfg.lr, cfg.weight_decay);
    let mut by_hand = match cfg.engine {
        Engine::Auto => MlpStep::new(vs, &model.config, cfg, &opt, cfg.batch_size as i64),
        Engine::Autograd => None,
    };
    // Validation inputs are corrupted once, so every epoch is measured on the same inputs.
    let val = val.map(|v| {
        let clean = to_unit_float(v);
        (noise::model_input(&clean, cfg), clean)
    });

    let mut history = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut best_weights: Option<Tensor> = None;
    let (mut lr, mut since_best) = (cfg.lr, 0);
    let mut stopped_early = false;
    let device = vs.device();
    for epoch in 1..=cfg.epochs {
        if cfg.lr_schedule == LrSchedule::Cosine {
            let progress = (epoch - 1) as f64 / cfg.epochs as f64;
            lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        }
        opt.lr = lr;
        on_event(Event::EpochStart { epoch, epochs: cfg.epochs, steps })?;
        let start = Instant::now();
        batches.start_epoch(epoch);
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        let mut kl_sum = Tensor::zeros([], (Kind::Float, device));
        let mut seen = 0;
        for step in 0..steps {
            let (x, input) = batches.get(step);
            let len = x.size()[0];
            seen += len;
            let loss = match by_hand.as_mut() {
                Some(by_hand) => by_hand.forward_backward(&input, &x),
                None => {
                    let (loss, kl) = autograd_loss(model, &input, &x, cfg);
                    if let Some(kl) = kl {
                        tch::no_grad(|| kl_sum += kl * len as f64);
                    }
                    opt.backward(&loss);
                    loss
                }
            };
            opt.apply(cfg.grad_clip);
            tch::no_grad(|| loss_sum += &loss * len as f64);
            if (step + 1) % SYNC_EVERY == 0 && step + 1 < steps {
                on_event(Event::Progress {
                    step: step + 1,
                    loss: loss_sum.double_value(&[]) / seen as f64,
                })?;
            }
        }
        // Reading the loss waits for the device, so this times the training steps.
        let train_loss = loss_sum.double_value(&[]) / n as f64;
        let train_seconds = start.elapsed().as_secs_f64();
        let val_loss =
            val.as_ref().map(|(input, clean)| metrics::mean_loss(model, input, clean, cfg.loss));
        let train_kl = model.variational.then(|| kl_sum.double_value(&[]) / n as f64);
        let beta = cfg.beta.unwrap_or(1.0);
        let stats = EpochStats {
            epoch,
            train_loss,
            val_loss,
            train_reconstruction: train_kl.map(|kl| train_loss - beta * kl),
            train_kl,
            seconds: start.elapsed().as_secs_f64(),
            samples_per_s: n as f64 / train_seconds.max(1e-9),
            lr,
        };
        on_event(Event::Progress { step: steps, loss: train_loss })?;
        on_event(Event::EpochEnd(&stats))?;
        let diverged = !train_loss.is_finite() || val_loss.is_some_and(|v| !v.is_finite());
        history.push(stats);
        if diverged {
            bail!(
                "training diverged in epoch {epoch}: train loss {train_loss}, validation loss {}; \
                 try a lower --lr (now {})",
                val_loss.map_or("-".into(), |v| v.to_string()),
                cfg.lr
            );
        }
        let Some(v) = val_loss else { continue };
        if best.is_none_or(|(_, b)| v < b) {
            best = Some((epoch, v));
            since_best = 0;
            if cfg.early_stop.is_some() {
                best_weights = Some(opt.snapshot());
            }
        } else {
            since_best += 1;
            if cfg.lr_schedule == LrSchedule::Plateau && since_best % PLATEAU_PATIENCE == 0 {
                lr *= 0.5;
            }
            if cfg.early_stop.is_some_and(|patience| since_best >= patience) {
                stopped_early = epoch < cfg.epochs;
                break;
            }
        }
    }
    if let Some(weights) = &best_weights {
        opt.restore(weights);
    }
    Ok(Fit { history, best, stopped_early })
}
