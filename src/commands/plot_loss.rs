//! `ae-tch plot-loss`: loss curves from metrics.csv files.

use crate::cli::PlotLossArgs;
use crate::plot::Format;
use crate::run_store::{self, RunDir};
use anyhow::{bail, Result};
use std::path::Path;

pub fn run(args: PlotLossArgs) -> Result<()> {
    let format = Format::from_path(&args.output)?;
    if !args.label.is_empty() && args.label.len() != args.metrics.len() {
        return Err(crate::config::Usage(format!(
            "--label was given {} time(s) for {} run(s): give one per run, in order",
            args.label.len(),
            args.metrics.len()
        ))
        .into());
    }
    let names = if args.label.is_empty() { labels(&args.metrics) } else { args.label.clone() };
    let mut curves = Vec::new();
    let mut losses = std::collections::BTreeSet::new();
    for (given, name) in args.metrics.iter().zip(&names) {
        // A run folder stands for its metrics.csv.
        let path = if given.is_dir() { given.join(run_store::METRICS_CSV) } else { given.clone() };
        if given.is_dir() && !path.is_file() {
            bail!(
                "{} holds no {}: give a run folder written by `ae-tch train` or a metrics.csv file",
                given.display(),
                run_store::METRICS_CSV
            );
        }
        // What the loss is, from the run's model.json when there is one beside it.
        let manifest = path.parent().and_then(|dir| RunDir::open(dir).ok()?.read_manifest().ok());
        let trimmed = manifest.as_ref().map_or(0.0, |m| m.train.trim);
        curves.push(super::report::loss_curve(name, &run_store::read_metrics(&path)?, trimmed));
        losses.insert(manifest.map(|m| super::report::loss_description(&m.model, &m.train)));
    }
    let loss = match (losses.len(), losses.first()) {
        (1, Some(Some(loss))) => loss.clone(),
        _ => "as each run computes it".to_string(),
    };
    super::report::write_loss_chart(&curves, &args.output, &loss, args.log_y, format)?;
    super::print(&format!("wrote {}\n", args.output.display()))
}

/// The runs' names: each one's folder (the folder holding its metrics.csv), or the path as
/// given where two folders have the same name.
fn labels(given: &[std::path::PathBuf]) -> Vec<String> {
    let short: Vec<String> = given
        .iter()
        .map(|g| if g.is_dir() { label(&g.join(run_store::METRICS_CSV)) } else { label(g) })
        .collect();
    short
        .iter()
        .zip(given)
        .map(|(name, path)| {
            let shared = short.iter().filter(|n| *n == name).count() > 1;
            let folder = match path.file_name() {
                Some(f) if f == run_store::METRICS_CSV => path.parent().unwrap_or(path),
                _ => path,
            };
            if shared {
                folder.display().to_string().trim_end_matches('/').to_string()
            } else {
                name.clone()
            }
        })
        .collect()
}

/// A run's name: the folder holding its metrics.csv.
fn label(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .or_else(|| path.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}
