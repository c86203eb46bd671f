//! The log sink: progress and notes on stderr, silenced by `--quiet`. At the bottom of the
//! crate, so that the library's lower floors (data reading) can note what they skip without
//! reaching up to the command layer, which sets the sink once per process.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences (or restores) every later log line: `--quiet`, or a data-parallel rank other
/// than 0.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether log lines are silenced.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A log line on stderr (progress, notes), unless silenced.
pub fn note(line: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("{line}");
    }
}
