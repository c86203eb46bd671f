//! What counts as a diverged run, where the loop stood when it diverged, and the partial
//! metrics row that shows the divergence in metrics.csv.

use super::{EpochStats, Event, Stopped, TrainState, EXPLODED};
use crate::config::TrainConfig;
use crate::optim::FlatAdam;
use anyhow::Result;

/// What counts as a diverged run, and the error that says so.
pub(super) struct Guard<'a> {
    pub(super) cfg: &'a TrainConfig,
    /// The largest |parameter| before training.
    pub(super) scale: f64,
}

impl Guard<'_> {
    /// Refuses parameters that are not finite or grew `EXPLODED` times beyond their
    /// initial scale (a too-high learning rate saturates the network long before anything
    /// overflows).
    pub(super) fn check_params(&self, opt: &FlatAdam) -> Result<(), String> {
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

    pub(super) fn stop(&self, at: At, what: String, last_good: Option<f64>) -> Stopped {
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
pub(super) struct At {
    epoch: usize,
    step: usize,
    /// The last epoch with a checkpoint.
    checkpoint: Option<usize>,
    lr: f64,
}

impl TrainState {
    pub(super) fn at(&self, epoch: usize, step: usize) -> At {
        At { epoch, step, checkpoint: self.checkpointed, lr: self.lr }
    }
}

impl At {
    pub(super) fn epoch(&self) -> usize {
        self.epoch
    }
}

/// Records the partial epoch in which training diverged (its loss non-finite, so the
/// NaN shows in metrics.csv) and returns `stop` as the error.
pub(super) fn nan_row(
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
