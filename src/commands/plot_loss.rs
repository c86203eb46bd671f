//! `ae-tch plot-loss`: loss curves from metrics.csv files.

use crate::checkpoint::{self, write_atomic};
use crate::cli::PlotLossArgs;
use crate::plot::{self, Format, LossCurve};
use crate::train::EpochStats;
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(args: PlotLossArgs) -> Result<()> {
    let format = Format::from_path(&args.output)?;
    let mut curves = Vec::new();
    for path in &args.metrics {
        curves.push(curve(&label(path), &checkpoint::read_metrics(path)?));
    }
    write(&curves, &args.output, args.log_y, format)?;
    super::print(&format!("wrote {}\n", args.output.display()))
}

/// The curve of one run's metrics.
pub fn curve(label: &str, rows: &[EpochStats]) -> LossCurve {
    LossCurve {
        label: label.to_string(),
        epochs: rows.iter().map(|r| r.epoch as f64).collect(),
        train: rows.iter().map(|r| r.train_loss).collect(),
        val: rows.iter().map(|r| r.val_loss).collect(),
    }
}

/// Renders and writes a loss chart atomically.
pub fn write(curves: &[LossCurve], path: &Path, log_y: bool, format: Format) -> Result<()> {
    let bytes = plot::loss_chart(curves, "loss per epoch", log_y, format)
        .with_context(|| format!("plotting {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// A run's name: the folder holding its metrics.csv.
fn label(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .or_else(|| path.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}
