//! The run session: what every command that trains a network does around `train::fit` —
//! opening a run and its checkpoint to resume, keeping the run folder current while the
//! loop runs (metrics.csv after each epoch, checkpoint.ot when the loop asks, the
//! TensorBoard log, the progress bar), the interrupt handler, and what a finished fit
//! records. `train` and `finetune` use it; commands never import each other.

mod progress;
pub mod tb_log;

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::record::DataRecord;
use crate::dist::Dist;
use crate::run_store::{Outcome, RunDir};
use crate::train::{self, EpochStats, Event};
use anyhow::{bail, Context, Result};
pub use progress::progress_bar;
use progress::Progress;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tb_log::TbLog;
use tch::nn;

/// What a finished fit records in model.json (the test figures are the caller's).
pub fn outcome(fit: &train::Fit, train_seconds: f64) -> Result<Outcome> {
    let last = fit.history.last().context("training ran no epoch")?;
    Ok(Outcome {
        epochs_run: fit.history.len(),
        best_epoch: fit.best.map(|b| b.0),
        best_val_loss: fit.best.map(|b| b.1),
        stopped_early: fit.stopped_early,
        final_train_loss: last.train_loss,
        final_val_loss: last.val_loss,
        train_seconds,
        test: None,
        classification: None,
    })
}

/// The run in `dir` and its checkpoint, to resume: temporary files of an interrupted
/// write swept, the kind of run checked (`classifier` or an autoencoder; the other kind is
/// pointed to its own command), and without `--threads` the thread count it trained on.
pub fn open_checkpoint(
    dir: &Path,
    classifier: bool,
    threads: Option<usize>,
) -> Result<(RunDir, Checkpoint)> {
    let run = RunDir::open_dir(dir)?;
    run.sweep_temp_files();
    let checkpoint = run.read_checkpoint()?;
    if checkpoint.meta.train.finetune.is_some() != classifier {
        let (kind, command) = if classifier {
            ("an autoencoder run", "train")
        } else {
            ("a classifier run", "finetune")
        };
        bail!(
            "{} is {kind}: continue it with `ae-tch {command} --resume {}`",
            dir.display(),
            dir.display()
        );
    }
    if threads.is_none() {
        tch::set_num_threads(checkpoint.meta.threads.max(1));
    }
    Ok((run, checkpoint))
}

/// What a run trains, as its checkpoints record it.
#[derive(Clone, Copy)]
pub struct Trained<'a> {
    pub model: &'a ModelConfig,
    pub cfg: &'a TrainConfig,
    pub data: &'a DataRecord,
    pub threads: i32,
    /// The data-parallel group this process trains in, if any.
    pub dist: Option<&'a Dist>,
}

/// A run folder for a new run at `out` (one that already holds a run only with `force`),
/// without the checkpoint of an earlier run there, which must not be resumed into this one.
pub fn create_run(out: &Path, force: bool) -> Result<RunDir> {
    let run = RunDir::create(out, force)?;
    match std::fs::remove_file(run.file(crate::run_store::CHECKPOINT)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context("--force: removing the old checkpoint")
        }
        _ => Ok(run),
    }
}

/// Trains `net` (variables in `vs`) on `(train, validation)` rows on the training device
/// and keeps `run` current meanwhile: metrics.csv after every epoch, checkpoint.ot when
/// the loop asks for one; Ctrl-C stops with a checkpoint and says how to continue. The
/// fit and the seconds it took.
pub fn fit_into_run(
    run: &RunDir,
    net: &dyn train::Objective,
    vs: &nn::VarStore,
    data: train::Data<'_>,
    what: Trained<'_>,
    resume: Option<train::Resume>,
    viewer: Option<tb_log::Viewer<'_>>,
) -> Result<(train::Fit, f64)> {
    install_interrupt_handler(what.dist.is_some());
    // Ranks other than 0 neither log nor show progress nor write the run.
    let main = what.dist.is_none_or(|d| d.is_main());
    let state = resume.as_ref().map(|r| &r.state);
    let rows_n = data.train.len() as i64;
    let log = match main {
        true => TbLog::open(run, (what.model, what.cfg), rows_n, state, viewer)?,
        false => None,
    };
    let history = resume.as_ref().map(|r| r.state.history.clone()).unwrap_or_default();
    let mut keeper = Keeper { run, what, log, history, bar: Progress::new(), warned: false };
    let started = Instant::now();
    let fit = train::fit(net, vs, data, what.cfg, resume, what.dist, &mut |event| {
        if main {
            keeper.on(event)?;
        }
        Ok(())
    });
    keeper.bar.finish();
    if let Some(log) = keeper.log {
        end_log(log, &fit)?;
    }
    let fit = fit.map_err(|e| continue_hint(e, run, what))?;
    say_how_it_ended(&fit);
    Ok((fit, started.elapsed().as_secs_f64()))
}

/// What rank 0 keeps current while the loop runs: the progress bar, the TensorBoard log,
/// metrics.csv and the checkpoint.
struct Keeper<'a> {
    run: &'a RunDir,
    what: Trained<'a>,
    log: Option<TbLog<'a>>,
    history: Vec<EpochStats>,
    bar: Progress,
    /// The rising loss was reported (once a run).
    warned: bool,
}

impl Keeper<'_> {
    fn on(&mut self, event: Event<'_>) -> Result<()> {
        self.bar.on(&event);
        if let Some(log) = self.log.as_mut() {
            log.on(&event)?;
        }
        match event {
            Event::EpochEnd(stats) => {
                self.history.push(stats.clone());
                if let (false, Some(rise)) = (self.warned, rising(&self.history)) {
                    self.warned = true;
                    crate::log::note(rise.words(self.what.cfg));
                }
                self.run.write_metrics(&self.history)
            }
            Event::Checkpoint(snap) => {
                let Trained { model, cfg, data, threads, dist } = self.what;
                let world_size = dist.map_or(1, |d| d.world);
                let meta = CheckpointMeta::new(model, cfg, data, (threads, world_size), &snap);
                let (optim, best, sums) = (snap.optim, snap.best, snap.sums);
                self.run.write_checkpoint(&Checkpoint { meta, optim, best, sums })
            }
            _ => Ok(()),
        }
    }
}

/// Epochs in a row whose loss rose, after warm-up, before training says so.
const RISING_EPOCHS: usize = 3;

/// A loss that kept rising: which one, from which epoch and value to which.
#[derive(Debug, PartialEq)]
struct Rise {
    what: &'static str,
    from: (usize, f64),
    to: (usize, f64),
}

impl Rise {
    fn words(&self, cfg: &TrainConfig) -> String {
        let stop = match cfg.early_stop {
            Some(_) => String::new(),
            None => ", or --early-stop N to keep the best epoch's weights".into(),
        };
        format!(
            "note: the {} has risen for {} epochs in a row ({:.6} after epoch {}, {:.6} \
             after epoch {}): the steps are likely too large; try a lower --lr (now {}){stop}",
            self.what,
            self.to.0 - self.from.0,
            self.from.1,
            self.from.0,
            self.to.1,
            self.to.0,
            cfg.lr
        )
    }
}

/// The validation loss (the training loss without validation rows) when it rose in each
/// of the last `RISING_EPOCHS` epochs, none of them in the warm-up (while the learning
/// rate still climbs).
fn rising(history: &[EpochStats]) -> Option<Rise> {
    let n = history.len();
    let last = history.get(n.checked_sub(RISING_EPOCHS + 1)?..)?;
    let warming = last.windows(2).any(|w| w[1].lr > w[0].lr);
    let loss = |e: &EpochStats| e.val_loss.unwrap_or(e.train_loss);
    let rose = last.windows(2).all(|w| loss(&w[1]) > loss(&w[0]));
    if warming || !rose {
        return None;
    }
    let what = if last[0].val_loss.is_some() { "validation loss" } else { "training loss" };
    let (first, end) = (&last[0], &last[RISING_EPOCHS]);
    Some(Rise { what, from: (first.epoch, loss(first)), to: (end.epoch, loss(end)) })
}

/// Ends the TensorBoard session, unless the run was interrupted (it is continued later).
/// A log that cannot be ended must not hide why training stopped: a divergence keeps its
/// exit code.
fn end_log(log: TbLog<'_>, fit: &Result<train::Fit>) -> Result<()> {
    let stopped = fit.as_ref().err().and_then(|e| e.downcast_ref::<train::Stopped>());
    if matches!(stopped, Some(train::Stopped::Interrupted { .. })) {
        return Ok(());
    }
    let ended = log.finish(fit.is_ok());
    if fit.is_ok() {
        ended?;
    }
    Ok(())
}

/// An interrupted fit's error, with the command that continues it.
fn continue_hint(e: anyhow::Error, run: &RunDir, what: Trained<'_>) -> anyhow::Error {
    let (epoch, step, steps) = match e.downcast_ref::<train::Stopped>() {
        Some(&train::Stopped::Interrupted { epoch, step, steps, .. }) => (epoch, step, steps),
        _ => return e,
    };
    let again = if what.cfg.finetune.is_some() { "finetune" } else { "train" };
    let dir = run.path().display();
    let resume = match what.dist {
        Some(d) if !d.is_main() => {
            return e.context(format!(
                "rank {}: stopped with its group (rank 0 wrote the checkpoint)",
                d.rank
            ))
        }
        Some(d) => format!(
            "torchrun --no-python --nproc-per-node {} {} {again} --resume {dir}",
            d.world,
            std::env::args().next().unwrap_or_else(|| "ae-tch".into()),
        ),
        None => format!("ae-tch {again} --resume {dir}"),
    };
    train::Stopped::Interrupted { epoch, step, steps, resume }.into()
}

/// Notes the gradient exchange's share of the time and an early stop.
fn say_how_it_ended(fit: &train::Fit) {
    if let Some((seconds, steps)) = fit.exchanged.filter(|e| e.1 > 0) {
        let total = fit.history.iter().map(|e| e.seconds).sum::<f64>();
        crate::log::note(format_args!(
            "gradient exchange: {:.3} ms a step ({:.1}% of the training time)",
            1e3 * seconds / steps as f64,
            100.0 * seconds / total.max(1e-9)
        ));
    }
    if let (true, Some((epoch, loss))) = (fit.stopped_early, fit.best) {
        crate::log::note(format_args!(
            "early stop after epoch {}: best validation loss {loss:.6} in epoch {epoch}, \
             weights restored",
            fit.history.len()
        ));
    }
}

/// The first Ctrl-C (or SIGTERM, SIGHUP) asks training to stop after its step with a
/// checkpoint; a second one exits at once. In a data-parallel group the step may never
/// finish (torchrun signals the survivors when a rank dies, and they may be waiting for
/// it): after `DIST_GRACE` the process exits anyway, leaving the last checkpoint as it is
/// (checkpoints are replaced by a rename, never rewritten in place).
fn install_interrupt_handler(distributed: bool) {
    let _ = ctrlc::set_handler(move || {
        if train::INTERRUPT.swap(true, Ordering::SeqCst) {
            if train::INTERRUPT_SAVED.load(Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting now (the checkpoint is already written)");
            } else {
                eprintln!(
                    "\ninterrupted again: exiting without waiting for the checkpoint (the \
                     previous one, if any, is kept)"
                );
            }
            std::process::exit(130);
        }
        crate::log::note(
            "\ninterrupt: finishing the step and writing a checkpoint (again to quit now)",
        );
        if distributed {
            std::thread::spawn(|| {
                std::thread::sleep(DIST_GRACE);
                eprintln!(
                    "interrupt: the other ranks did not finish the step within {} s; exiting \
                     with the last checkpoint as it was",
                    DIST_GRACE.as_secs()
                );
                std::process::exit(130);
            });
        }
    });
}

/// How long a signalled rank waits for its group to finish the step and checkpoint.
const DIST_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(losses: &[(f64, Option<f64>)], lrs: &[f64]) -> Vec<EpochStats> {
        losses
            .iter()
            .zip(lrs)
            .enumerate()
            .map(|(i, (&(train_loss, val_loss), &lr))| EpochStats {
                epoch: i + 1,
                train_loss,
                val_loss,
                seconds: 1.0,
                samples_per_s: 1.0,
                lr,
                train_reconstruction: None,
                train_kl: None,
                val_accuracy: None,
            })
            .collect()
    }

    #[test]
    fn a_loss_that_keeps_rising_after_warm_up_is_named_once_it_has_for_three_epochs() {
        let val = |v: &[f64]| v.iter().map(|&v| (0.5, Some(v))).collect::<Vec<_>>();
        let flat = [1e-3; 6];
        // Falling, or rising for only two epochs: nothing to say.
        assert_eq!(rising(&epochs(&val(&[0.5, 0.4, 0.3, 0.2]), &flat)), None);
        assert_eq!(rising(&epochs(&val(&[0.5, 0.1, 0.2, 0.3]), &flat)), None);
        let rise = rising(&epochs(&val(&[0.5, 0.1, 0.2, 0.3, 0.4]), &flat)).unwrap();
        assert_eq!(rise, Rise { what: "validation loss", from: (2, 0.1), to: (5, 0.4) });
        let cfg = TrainConfig { lr: 0.01, early_stop: None, ..Default::default() };
        assert_eq!(
            rise.words(&cfg),
            "note: the validation loss has risen for 3 epochs in a row (0.100000 after epoch \
             2, 0.400000 after epoch 5): the steps are likely too large; try a lower --lr \
             (now 0.01), or --early-stop N to keep the best epoch's weights"
        );
        // While the learning rate still climbs (warm-up), a rise is expected.
        let warm = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4];
        assert_eq!(rising(&epochs(&val(&[0.5, 0.1, 0.2, 0.3, 0.4]), &warm)), None);
        // Without validation rows the training loss is watched.
        let train: Vec<_> = [0.1, 0.2, 0.3, 0.4].iter().map(|&t| (t, None)).collect();
        assert_eq!(rising(&epochs(&train, &flat)).unwrap().what, "training loss");
    }
}
