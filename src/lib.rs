//! ae-tch: train autoencoders on images with libtorch (through tch) and show what they
//! learned. `main.rs` only parses the command line and calls `run`; everything else lives
//! in the modules below (see ARCHITECTURE.md for the data flow and invariants).

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod fpu;
pub mod host;
pub mod metrics;
pub mod mlp_step;
pub mod model;
pub mod npy;
pub mod optim;
pub mod plot;
pub mod run_store;
pub mod train;

use clap::{CommandFactory, FromArgMatches};

/// Serialises the unit tests that seed libtorch's global generator: tests run on parallel
/// threads, and a draw from another test between `manual_seed` and the draw under test
/// would make the result depend on scheduling.
#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set by `--quiet`: no progress or log lines on stderr.
pub static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A log line on stderr (progress, notes), unless `--quiet`.
pub fn note(line: impl std::fmt::Display) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{line}");
    }
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let matches = cli::Cli::command().get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    commands::dispatch(cli.command, &matches)
}
