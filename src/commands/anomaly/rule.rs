//! The threshold rule of `anomaly`: which flag chose it, its parameter checked, the
//! threshold it puts on the reference rows' scores, and the record of it stored in the run.

use crate::atomic::write_atomic;
use crate::cli::AnomalyArgs;
use crate::metrics::detection;
use anyhow::{bail, Result};
use serde::Serialize;

/// How the threshold is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", content = "parameter", rename_all = "kebab-case")]
pub enum Rule {
    /// This percentile of the validation scores.
    Percentile(f64),
    /// The (1 − F) quantile of the training rows' scores.
    Contamination(f64),
    /// Mean + K σ of the validation scores.
    Sigma(f64),
}

impl Rule {
    /// The rule the flags ask for (`--contamination`, else `--threshold-sigma`, else
    /// `--threshold-percentile`, 99 by default), its parameter checked.
    pub fn from_args(args: &AnomalyArgs) -> Result<Rule> {
        Rule::from_flags(args.threshold_percentile, args.contamination, args.threshold_sigma)
    }

    /// `from_args` on the three flags' values.
    fn from_flags(
        percentile: Option<f64>,
        contamination: Option<f64>,
        sigma: Option<f64>,
    ) -> Result<Rule> {
        Ok(match (percentile, contamination, sigma) {
            (_, Some(f), _) => {
                if !(f > 0.0 && f < 0.5) {
                    bail!(
                        "--contamination is the expected share of anomalies: in (0, 0.5), got {f}"
                    );
                }
                Rule::Contamination(f)
            }
            (_, _, Some(k)) => {
                if !k.is_finite() {
                    bail!("--threshold-sigma must be a number, got {k}");
                }
                Rule::Sigma(k)
            }
            (p, _, _) => {
                let p = p.unwrap_or(99.0);
                if !(0.0..=100.0).contains(&p) {
                    bail!("--threshold-percentile must be in [0, 100], got {p}");
                }
                Rule::Percentile(p)
            }
        })
    }

    /// The rule in words, for the summary table: "p99 of the validation rows' scores".
    pub fn describe(&self, reference: &str, noun: &str) -> String {
        match self {
            Rule::Percentile(p) => format!("p{p} of the {reference} {noun}' scores"),
            Rule::Contamination(f) => {
                format!(
                    "contamination {f}: the p{} of the {reference} {noun}' scores",
                    100.0 * (1.0 - f)
                )
            }
            Rule::Sigma(k) => format!("mean + {k}σ of the {reference} {noun}' scores"),
        }
    }

    /// The threshold this rule puts on the reference rows' `scores`; `None` when there
    /// are none.
    pub fn threshold(&self, scores: &[f64]) -> Option<f64> {
        match *self {
            Rule::Percentile(p) => detection::percentile(scores, p),
            Rule::Contamination(f) => detection::percentile(scores, 100.0 * (1.0 - f)),
            Rule::Sigma(k) => {
                if scores.is_empty() {
                    return None;
                }
                let n = scores.len() as f64;
                let mean = scores.iter().sum::<f64>() / n;
                let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
                Some(mean + k * var.sqrt())
            }
        }
    }

    /// The percentile rule's parameter, which the JSON summary also gives under its name
    /// from before the other rules existed.
    pub fn percentile(&self) -> Option<f64> {
        match *self {
            Rule::Percentile(p) => Some(p),
            _ => None,
        }
    }
}

/// What `anomaly` stores in the run: the threshold and how it was chosen.
#[derive(Debug, Serialize)]
struct StoredThreshold<'a> {
    #[serde(flatten)]
    rule: Rule,
    threshold: f64,
    /// Which of the run's rows the threshold was taken from.
    reference: &'a str,
    reference_rows: usize,
    ae_tch_version: &'static str,
}

/// Writes the threshold and its rule to `record` (the run's `anomaly.json`). A run folder
/// the user cannot write (shared, read-only) still scores: storing the threshold is a
/// record, not the result, so a failure to write is a note.
pub fn store(
    record: &std::path::Path,
    rule: Rule,
    threshold: f64,
    (reference, reference_rows): (&str, usize),
) -> Result<()> {
    let stored = StoredThreshold {
        rule,
        threshold,
        reference,
        reference_rows,
        ae_tch_version: env!("CARGO_PKG_VERSION"),
    };
    let text = serde_json::to_string_pretty(&stored)? + "\n";
    if let Err(e) = write_atomic(record, text.as_bytes()) {
        crate::log::note(format_args!("note: the threshold was not stored ({e:#})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_rule_and_their_ranges_are_checked() {
        assert_eq!(Rule::from_flags(None, None, None).unwrap(), Rule::Percentile(99.0));
        assert_eq!(Rule::from_flags(Some(95.0), None, None).unwrap(), Rule::Percentile(95.0));
        // --contamination wins over the others, then --threshold-sigma.
        let first = Rule::from_flags(Some(95.0), Some(0.1), Some(3.0)).unwrap();
        assert_eq!(first, Rule::Contamination(0.1));
        assert_eq!(Rule::from_flags(Some(95.0), None, Some(3.0)).unwrap(), Rule::Sigma(3.0));
        let err = |p, f, k| Rule::from_flags(p, f, k).unwrap_err().to_string();
        assert!(err(Some(101.0), None, None).contains("[0, 100], got 101"));
        assert!(err(None, Some(0.5), None).contains("in (0, 0.5), got 0.5"));
        assert!(err(None, Some(0.0), None).contains("in (0, 0.5), got 0"));
        assert!(err(None, None, Some(f64::NAN)).contains("must be a number, got NaN"));
    }

    #[test]
    fn thresholds_follow_the_rule() {
        // Mean 2.5, population σ √1.25.
        let scores = [1.0, 2.0, 3.0, 4.0];
        let sigma = Rule::Sigma(2.0).threshold(&scores).unwrap();
        assert!((sigma - (2.5 + 2.0 * 1.25f64.sqrt())).abs() < 1e-12, "{sigma}");
        assert_eq!(Rule::Sigma(0.0).threshold(&scores), Some(2.5));
        // Contamination F is the p(100 (1 − F)) of the same scores.
        let p = Rule::Percentile(80.0).threshold(&scores);
        assert_eq!(Rule::Contamination(0.2).threshold(&scores), p);
        assert_eq!(Rule::Percentile(100.0).threshold(&scores), Some(4.0));
        for rule in [Rule::Percentile(99.0), Rule::Contamination(0.1), Rule::Sigma(3.0)] {
            assert_eq!(rule.threshold(&[]), None, "{rule:?}");
        }
        assert_eq!(Rule::Percentile(97.5).percentile(), Some(97.5));
        assert_eq!(Rule::Sigma(1.0).percentile(), None);
    }

    #[test]
    fn rules_read_as_words_and_store_as_tagged_json() {
        let c = Rule::Contamination(0.25).describe("training", "rows");
        assert_eq!(c, "contamination 0.25: the p75 of the training rows' scores");
        let s = Rule::Sigma(3.0).describe("validation", "windows");
        assert_eq!(s, "mean + 3σ of the validation windows' scores");
        let json = serde_json::to_value(Rule::Percentile(99.0)).unwrap();
        assert_eq!(json, serde_json::json!({"rule": "percentile", "parameter": 99.0}));
    }
}
