//! `ae-tch plot-loss`: loss curves from metrics.csv files.

use crate::cli::PlotLossArgs;
use crate::plot::Format;
use crate::run_store;
use anyhow::Result;
use std::path::Path;

pub fn run(args: PlotLossArgs) -> Result<()> {
    let format = Format::from_path(&args.output)?;
    let mut curves = Vec::new();
    for path in &args.metrics {
        curves.push(super::report::loss_curve(&label(path), &run_store::read_metrics(path)?));
    }
    super::report::write_loss_chart(&curves, &args.output, args.log_y, format)?;
    super::print(&format!("wrote {}\n", args.output.display()))
}

/// A run's name: the folder holding its metrics.csv.
fn label(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .or_else(|| path.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}
