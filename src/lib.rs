//! ae-tch: train autoencoders on images with libtorch (through tch) and show what they
//! learned. `main.rs` only calls `commands::run` and maps its error to an exit code;
//! everything else lives in the modules below (see ARCHITECTURE.md for the data flow and invariants).

pub mod atomic;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod format;
pub mod fpu;
pub mod host;
pub mod invalid;
pub mod log;
pub mod loss;
pub mod metrics;
pub mod mlp_step;
pub mod model;
pub mod npy;
pub mod omp;
pub mod optim;
pub mod plot;
pub mod run_store;
pub mod script;
pub mod session;
pub mod settings;
pub mod tensorboard;
pub mod train;

/// Serialises the unit tests that seed libtorch's global generator: tests run on parallel
/// threads, and a draw from another test between `manual_seed` and the draw under test
/// would make the result depend on scheduling.
#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tidy;
