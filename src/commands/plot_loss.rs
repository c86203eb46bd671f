//! `ae-tch plot-loss`: loss curves from metrics.csv files.

use crate::cli::PlotLossArgs;
use crate::plot::Format;
use crate::run_store::{self, RunDir};
use anyhow::{bail, Result};
use std::path::Path;

pub fn run(args: PlotLossArgs) -> Result<()> {
    let format = Format::from_path(&args.output)?;
    let mut curves = Vec::new();
    let mut losses = std::collections::BTreeSet::new();
    for given in &args.metrics {
        // A run folder stands for its metrics.csv.
        let path = if given.is_dir() { given.join(run_store::METRICS_CSV) } else { given.clone() };
        if given.is_dir() && !path.is_file() {
            bail!(
                "{} holds no {}: give a run folder written by `ae-tch train` or a metrics.csv file",
                given.display(),
                run_store::METRICS_CSV
            );
        }
        curves.push(super::report::loss_curve(&label(&path), &run_store::read_metrics(&path)?));
        // What the loss is, from the run's model.json when there is one beside it.
        let manifest = path.parent().and_then(|dir| RunDir::open(dir).ok()?.read_manifest().ok());
        losses.insert(manifest.map(|m| super::report::loss_description(&m.model, &m.train)));
    }
    let loss = match (losses.len(), losses.first()) {
        (1, Some(Some(loss))) => loss.clone(),
        _ => "as each run computes it".to_string(),
    };
    super::report::write_loss_chart(&curves, &args.output, &loss, args.log_y, format)?;
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
