//! ae-tch: train autoencoders on images with libtorch (through tch) and show what they
//! learned. `main.rs` only parses the command line and calls `run`; everything else lives
//! in the modules below (see ARCHITECTURE.md for the data flow and invariants).

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod optim;
pub mod plot;
pub mod train;

use clap::Parser;

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    commands::dispatch(cli.command)
}
