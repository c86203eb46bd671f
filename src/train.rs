//! The training loop: one `fit` for every model and mode, reporting through events so the
//! caller decides what to show and what to write.

use crate::config::TrainConfig;
use crate::data::{noise, to_unit_float};
use crate::metrics;
use crate::model::Autoencoder;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Kind, Reduction, Tensor};

/// The running loss is read back from the device every this many steps (for the progress
/// display), not every step: each read is a host synchronisation.
pub const SYNC_EVERY: usize = 25;

/// One row of metrics.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    /// Mean MSE over the epoch's training batches (on corrupted inputs in denoise mode).
    pub train_loss: f64,
    /// MSE on the held-out images, after the epoch (fixed corruption in denoise mode).
    pub val_loss: Option<f64>,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
    /// Training images per second of the training steps alone.
    pub samples_per_s: f64,
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

/// Trains `model` (whose variables live in `vs`) on `train`, u8 images `[N, D]` on the
/// training device, validating on `val` after every epoch. `on_event` may fail (e.g. while
/// writing metrics), which stops training with its error.
pub fn fit(
    model: &Autoencoder,
    vs: &nn::VarStore,
    train: &Tensor,
    val: Option<&Tensor>,
    cfg: &TrainConfig,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Vec<EpochStats>> {
    let device = vs.device();
    let n = train.size()[0];
    let bs = cfg.batch_size as i64;
    let steps = ((n + bs - 1) / bs) as usize;
    let mut opt = nn::Adam::default().build(vs, cfg.lr)?;
    // Validation inputs are corrupted once, so every epoch is measured on the same inputs.
    let val = val.map(|v| {
        let clean = to_unit_float(v);
        (noise::model_input(&clean, cfg.mode, cfg.sigma), clean)
    });

    let mut history = Vec::new();
    for epoch in 1..=cfg.epochs {
        on_event(Event::EpochStart { epoch, epochs: cfg.epochs, steps })?;
        let start = Instant::now();
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        for step in 0..steps {
            let first = step as i64 * bs;
            let len = bs.min(n - first);
            let x = to_unit_float(&train.index_select(0, &order.narrow(0, first, len)));
            let input = noise::model_input(&x, cfg.mode, cfg.sigma);
            let loss = model.forward(&input).mse_loss(&x, Reduction::Mean);
            opt.backward_step(&loss);
            tch::no_grad(|| loss_sum += &loss * len as f64);
            if (step + 1) % SYNC_EVERY == 0 && step + 1 < steps {
                let seen = (first + len) as f64;
                on_event(Event::Progress {
                    step: step + 1,
                    loss: loss_sum.double_value(&[]) / seen,
                })?;
            }
        }
        // Reading the loss waits for the device, so this times the training steps.
        let train_loss = loss_sum.double_value(&[]) / n as f64;
        let train_seconds = start.elapsed().as_secs_f64();
        let val_loss = val.as_ref().map(|(input, clean)| metrics::mean_sq_err(model, input, clean));
        let stats = EpochStats {
            epoch,
            train_loss,
            val_loss,
            seconds: start.elapsed().as_secs_f64(),
            samples_per_s: n as f64 / train_seconds.max(1e-9),
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
    }
    Ok(history)
}
