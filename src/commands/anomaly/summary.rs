//! What `anomaly` reports: the summary (the JSON of `--json`) and the table printed
//! without it.

use super::points::{Points, UCR_SLACK};
use super::rule::Rule;
use crate::metrics::detection;
use serde::Serialize;
use std::path::PathBuf;

/// ROC-AUC and average precision of one scorer.
#[derive(Debug, Serialize)]
pub struct Detection {
    roc_auc: Option<f64>,
    average_precision: Option<f64>,
}

impl Detection {
    pub fn of(scores: &[f64], truth: &[bool]) -> Detection {
        Detection {
            roc_auc: detection::roc_auc(scores, truth),
            average_precision: detection::average_precision(scores, truth),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Baselines {
    /// PCA with the model's k, fitted on the run's training rows: squared error.
    pub pca: Detection,
    /// Isolation Forest (100 trees, 256 rows each, the run's seed) on the training rows.
    pub isolation_forest: Detection,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    images: usize,
    threshold: f64,
    #[serde(flatten)]
    rule: Rule,
    /// The percentile rule's parameter, under its name before the other rules existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_percentile: Option<f64>,
    /// Which of the run's rows the threshold was taken from.
    threshold_images: &'static str,
    /// Their scores were the ones recorded when the run was trained (else its rows were read
    /// and scored again: a run made before they were recorded).
    pub threshold_recorded: bool,
    /// "images", "rows" or (series runs) "windows".
    #[serde(skip)]
    noun: &'static str,
    flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normal_classes: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explained: Option<PathBuf>,
    /// Series runs: the window scores spread over the time steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Points>,
}

impl Summary {
    /// The summary of `flagged` (one flag per scored row) under `threshold`, before any
    /// labels are compared; `reference` names the rows the threshold came from, `noun`
    /// what a scored row is.
    pub fn new(
        (rule, threshold, reference): (Rule, f64, &'static str),
        flagged: &[bool],
        noun: &'static str,
        explained: Option<PathBuf>,
    ) -> Summary {
        Summary {
            images: flagged.len(),
            threshold,
            rule,
            threshold_percentile: rule.percentile(),
            threshold_images: reference,
            threshold_recorded: false,
            noun,
            flagged: flagged.iter().filter(|&&f| f).count(),
            normal_classes: None,
            roc_auc: None,
            average_precision: None,
            precision: None,
            recall: None,
            baselines: None,
            explained,
            points: None,
        }
    }

    /// Adds how well `scores` and their `flagged` rows find the anomalies of `truth`.
    pub fn add_detection(&mut self, scores: &[f64], flagged: &[bool], truth: &[bool]) {
        let (precision, recall) = detection::precision_recall(flagged, truth);
        self.roc_auc = detection::roc_auc(scores, truth);
        self.average_precision = detection::average_precision(scores, truth);
        self.precision = Some(precision);
        self.recall = Some(recall);
    }

    /// The summary as the table `anomaly` prints without `--json`.
    pub fn table(&self) -> String {
        let s = self;
        let mut out = format!(
            "{:<12}{}\nthreshold   {:.3} ({}{})\nflagged     {} ({:.1}%)\n",
            s.noun,
            s.images,
            s.threshold,
            s.rule.describe(s.threshold_images, s.noun),
            if s.threshold_recorded { ", scored when the run was trained" } else { "" },
            s.flagged,
            100.0 * s.flagged as f64 / s.images.max(1) as f64
        );
        if let Some(classes) = &s.normal_classes {
            let names: Vec<String> = classes
                .iter()
                .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
                .collect();
            out += &format!("normal      classes {}\n", names.join(", "));
        }
        if let (Some(p), Some(r)) = (s.precision, s.recall) {
            out += &format!("precision   {p:.4}\nrecall      {r:.4}\n");
        }
        if s.roc_auc.is_some() {
            out += &format!("\n{:<20}{:>9}{:>15}\n", "", "roc-auc", "avg precision");
            out += &format!(
                "{:<20}{:>9}{:>15}\n",
                "autoencoder",
                cell(s.roc_auc),
                cell(s.average_precision)
            );
            if let Some(b) = &s.baselines {
                for (name, d) in
                    [("PCA, same k", &b.pca), ("isolation forest", &b.isolation_forest)]
                {
                    out += &format!(
                        "{name:<20}{:>9}{:>15}\n",
                        cell(d.roc_auc),
                        cell(d.average_precision)
                    );
                }
            }
        }
        if let Some(p) = &s.points {
            out += &step_lines(p);
        }
        out
    }
}

/// The per-step lines of the summary table (series runs).
fn step_lines(p: &Points) -> String {
    let mut out = format!(
        "\nper step    {} steps, {} flagged; highest score at {}{}\n",
        p.steps,
        p.flagged,
        match &p.top_time {
            Some(time) => format!("{time} (step {})", p.top_step),
            None => format!("step {}", p.top_step),
        },
        p.top_file.as_ref().map_or_else(String::new, |f| format!(" of {f}"))
    );
    if p.roc_auc.is_some() {
        out += &format!(
            "            roc-auc {}, avg precision {} (the autoencoder, point-wise)\n",
            cell(p.roc_auc),
            cell(p.average_precision)
        );
    }
    if let Some((hits, of)) = p.ucr_hits {
        out += &format!(
            "            UCR rule: hit in {hits} of the {of} series with a labelled anomaly\n"
        );
    }
    if let Some(hit) = p.ucr_hit {
        out += &format!(
                "            UCR rule: {} (the highest step {} within {UCR_SLACK} steps of a labelled anomaly)\n",
                if hit { "hit" } else { "miss" },
                if hit { "lies" } else { "does not lie" }
            );
    }
    out
}

/// A figure of the table: four decimals, or "-" when there is none.
fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}
