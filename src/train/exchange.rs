//! What the ranks of a data-parallel group exchange after each step and at validation, so
//! that they stay one run; in one process each part is what that process has.

use super::{Objective, INTERRUPT};
use crate::config::TrainConfig;
use crate::dist::{self, Dist};
use crate::optim::FlatAdam;
use anyhow::Result;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::{Kind, Tensor};

/// What the ranks of a data-parallel group exchange so that they stay one run; in one
/// process (`dist` None) each part is what that process has.
pub(super) struct Exchange<'a> {
    pub(super) dist: Option<&'a Dist>,
    /// Time spent in the per-step exchanges, and their number.
    pub(super) seconds: std::cell::Cell<f64>,
    pub(super) steps: std::cell::Cell<usize>,
}

impl Exchange<'_> {
    /// This rank's rows `(offset, len)` of `rows` (a batch or the validation set).
    pub(super) fn share(&self, rows: usize) -> (usize, usize) {
        self.dist.map_or((0, rows), |d| dist::share(rows, d.rank, d.world))
    }

    /// After a step on `share` of the batch's `len` rows: sums the flat gradients, each
    /// weighted by its share (so every rank holds the whole batch's mean gradient), the
    /// weighted losses and KL terms, and the ranks' stop requests. The batch's loss and
    /// whether any rank was asked to stop.
    pub(super) fn step(
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
    pub(super) fn stop_asked(&self) -> Result<bool> {
        let stop = INTERRUPT.load(Ordering::SeqCst);
        let Some(d) = self.dist else { return Ok(stop) };
        let mut v = [stop as u8 as f64];
        d.all_sum_f64(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// The validation loss (and accuracy) of `model`: each rank measures its share of the
    /// rows and the means are combined weighted by the shares.
    pub(super) fn validate(
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
