//! The progress bar on stderr while a network trains, and the line each epoch prints.

use crate::train::Event;
use indicatif::ProgressBar;

/// The progress bar on stderr (hidden when stderr is not a terminal) plus one summary
/// line per epoch, which is always printed.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Progress { bar: None }
    }

    pub(super) fn on(&mut self, event: &Event<'_>) {
        match *event {
            Event::EpochStart { epoch, epochs, steps } => {
                let bar = progress_bar(
                    ProgressBar::new(steps as u64),
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg}",
                );
                bar.set_prefix(format!("{epoch}/{epochs}"));
                self.bar = Some(bar);
            }
            Event::Progress { step, loss } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step as u64);
                    bar.set_message(format!("loss {loss:.5}"));
                }
            }
            Event::Checkpoint(_) => {}
            Event::EpochEnd(s) => {
                let line = format!(
                    "epoch {:>3}  train {:.6}  val {}  {:.2} s  {:.0} samples/s",
                    s.epoch,
                    s.train_loss,
                    s.val_loss.map_or("-".to_string(), |v| format!("{v:.6}")),
                    s.seconds,
                    s.samples_per_s
                );
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                crate::log::note(line);
            }
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `bar` drawn with `template` on stderr: hidden under --quiet, and by indicatif itself
/// when stderr is not a terminal.
pub fn progress_bar(bar: indicatif::ProgressBar, template: &'static str) -> indicatif::ProgressBar {
    if crate::log::quiet() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = indicatif::ProgressStyle::with_template(template).expect("static template");
    bar.set_style(style.progress_chars("=> "));
    bar
}
