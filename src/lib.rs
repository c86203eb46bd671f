//! ae-tch: train autoencoders on images with libtorch (through tch) and show what they
//! learned. `main.rs` only parses the command line and calls `run`; everything else lives
//! in the modules below (see ARCHITECTURE.md for the data flow and invariants).

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod fpu;
pub mod host;
pub mod metrics;
pub mod mlp_step;
pub mod model;
pub mod npy;
pub mod optim;
pub mod plot;
pub mod run_store;
pub mod script;
pub mod tensorboard;
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

/// The layering ARCHITECTURE.md promises, checked on the sources (as rust-analyzer's tidy
/// tests do): `cli` and `plot` never touch tch, `data` and `model` never touch clap.
#[cfg(test)]
mod tidy {
    fn sources(path: &str) -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(path);
        let files: Vec<std::path::PathBuf> = if root.is_dir() {
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect()
        } else {
            vec![root]
        };
        files
            .into_iter()
            .map(|f| (f.display().to_string(), std::fs::read_to_string(&f).unwrap()))
            .collect()
    }

    #[test]
    fn layers_import_only_what_they_may() {
        // A path that starts with `krate::` (not `fetch::` for `tch`), outside comments.
        let uses = |text: &str, krate: &str| {
            let pattern = format!("{krate}::");
            text.lines().filter(|l| !l.trim_start().starts_with("//")).any(|l| {
                l.match_indices(&pattern)
                    .any(|(i, _)| !l[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
        };
        for (file, text) in sources("cli.rs").into_iter().chain(sources("plot.rs")) {
            assert!(!uses(&text, "tch"), "{file} uses tch");
        }
        for (file, text) in sources("data").into_iter().chain(sources("model.rs")) {
            assert!(!uses(&text, "clap"), "{file} uses clap");
        }
        // The check itself must see an import.
        assert!(uses("use tch::Tensor;", "tch") && uses("x: tch::Tensor", "tch"));
        assert!(!uses("// tch::x", "tch") && !uses("data::fetch::run", "tch"));
    }
}
