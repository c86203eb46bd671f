//! `ae-tch anomaly`: reconstruction error as an anomaly score, thresholded at a percentile
//! of the errors on the run's own validation images.

use crate::cli::AnomalyArgs;
use crate::data::ImageSet;
use crate::metrics::{self, detection};
use crate::plot::{self, Format};
use crate::run_store::write_atomic;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Serialize)]
struct Summary {
    images: usize,
    threshold: f64,
    threshold_percentile: f64,
    /// Which of the run's images the threshold was taken from.
    threshold_images: &'static str,
    flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    normal_classes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<f64>,
}

pub fn run(args: AnomalyArgs) -> Result<()> {
    if !(0.0..=100.0).contains(&args.threshold_percentile) {
        bail!("--threshold-percentile must be in [0, 100], got {}", args.threshold_percentile);
    }
    let plot_format = args.plot.as_deref().map(Format::from_path).transpose()?;
    let loaded = super::open_run(&args.run)?;
    let images = loaded.images(args.data.as_deref(), args.split.into())?;
    // Normal classes: as given, else the classes the run was trained on.
    let normal = args.normal_classes.clone().or_else(|| loaded.manifest.train.classes.clone());
    if args.plot.is_some() && (normal.is_none() || images.labels.is_none()) {
        bail!("--plot needs labels and --normal-classes (or a run trained with --classes)");
    }

    // The threshold comes from images the model never trained on but that are normal by
    // construction: the run's validation split.
    let (train, val) = loaded.training_sets("the threshold")?;
    let (reference, reference_name) = if val.is_empty() {
        crate::note(
            "note: the run has no validation images; the threshold uses its training images",
        );
        (train, "training")
    } else {
        (val, "validation")
    };
    let threshold = detection::percentile(&scores(&loaded, &reference)?, args.threshold_percentile)
        .context("no reference images for the threshold")?;

    let scores = scores(&loaded, &images)?;
    let flagged: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
    let mut summary = Summary {
        images: scores.len(),
        threshold,
        threshold_percentile: args.threshold_percentile,
        threshold_images: reference_name,
        flagged: flagged.iter().filter(|&&f| f).count(),
        normal_classes: None,
        roc_auc: None,
        precision: None,
        recall: None,
    };
    let truth = match (&normal, &images.labels) {
        (Some(classes), Some(labels)) => {
            let known: BTreeSet<u8> = labels.iter().copied().collect();
            if let Some(c) = classes.iter().find(|c| !known.contains(c)) {
                bail!("--normal-classes: unknown class {c}; the labels are {known:?}");
            }
            let truth: Vec<bool> = labels.iter().map(|l| !classes.contains(l)).collect();
            let (precision, recall) = detection::precision_recall(&flagged, &truth);
            summary.normal_classes = Some(classes.clone());
            summary.roc_auc = detection::roc_auc(&scores, &truth);
            summary.precision = Some(precision);
            summary.recall = Some(recall);
            Some(truth)
        }
        (Some(_), None) => bail!("--normal-classes needs labels, and the data has none"),
        (None, _) => None,
    };

    if let Some(path) = &args.output {
        write_scores(path, &scores, &flagged, images.labels.as_deref())?;
    }
    if let (Some(path), Some(format)) = (&args.plot, plot_format) {
        let Some(truth) = &truth else {
            bail!("--plot needs labels and --normal-classes");
        };
        let pick = |want: bool| -> Vec<f64> {
            scores.iter().zip(truth).filter(|(_, &t)| t == want).map(|(&s, _)| s).collect()
        };
        let bytes = plot::score_histogram(&pick(false), &pick(true), threshold, format)?;
        write_atomic(path, &bytes)?;
    }
    super::print(&if args.json { serde_json::to_string(&summary)? + "\n" } else { table(&summary) })
}

/// Squared reconstruction error of each image (clean input, whatever the training mode).
fn scores(loaded: &super::LoadedRun, images: &ImageSet) -> Result<Vec<f64>> {
    let x = images.to_unit(loaded.device);
    let errors = metrics::sq_err_per_row(&metrics::reconstruct(&loaded.model, &x), &x);
    Ok(Vec::<f64>::try_from(errors.to_device(tch::Device::Cpu))?)
}

fn write_scores(
    path: &std::path::Path,
    scores: &[f64],
    flagged: &[bool],
    labels: Option<&[u8]>,
) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["index", "score", "is_anomaly"];
    if labels.is_some() {
        header.insert(1, "label");
    }
    csv.write_record(&header)?;
    for (i, (s, f)) in scores.iter().zip(flagged).enumerate() {
        let mut row = vec![i.to_string(), s.to_string(), (*f as u8).to_string()];
        if let Some(l) = labels {
            row.insert(1, l[i].to_string());
        }
        csv.write_record(&row)?;
    }
    write_atomic(path, &csv.into_inner()?)
}

fn table(s: &Summary) -> String {
    let mut out = format!(
        "images      {}\nthreshold   {:.3} (p{} of the {} images' errors)\nflagged     {} ({:.1}%)\n",
        s.images,
        s.threshold,
        s.threshold_percentile,
        s.threshold_images,
        s.flagged,
        100.0 * s.flagged as f64 / s.images.max(1) as f64
    );
    if let Some(classes) = &s.normal_classes {
        out += &format!("normal      classes {classes:?}\n");
    }
    if let Some(auc) = s.roc_auc {
        out += &format!("roc-auc     {auc:.4}\n");
    }
    if let (Some(p), Some(r)) = (s.precision, s.recall) {
        out += &format!("precision   {p:.4}\nrecall      {r:.4}\n");
    }
    out
}
