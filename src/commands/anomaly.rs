//! `ae-tch anomaly`: reconstruction error as an anomaly score, a threshold from the run's
//! own rows (a percentile or mean + kσ of the validation errors, or the expected share
//! of anomalies among the training rows), ROC-AUC and average precision beside PCA with
//! the same k and an Isolation Forest on the same rows, and explanations of the rows that
//! score highest.

use crate::cli::{AnomalyArgs, PointScore};
use crate::data::series;
use crate::data::spec::{DataSpec, SeriesSpec, VectorSpec};
use crate::data::table::Table;
use crate::data::vectors::{self, resolve_classes};
use crate::data::Rows;
use crate::metrics::iforest::IsolationForest;
use crate::metrics::{self, detection};
use crate::plot::{self, Format};
use crate::run_store::write_atomic;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Where the chosen threshold is stored in the run folder.
pub const THRESHOLD_FILE: &str = "anomaly.json";
/// Features printed per explained row, and rows printed.
const EXPLAIN_FEATURES: usize = 3;
const EXPLAIN_PRINTED: usize = 5;

/// How the threshold is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", content = "parameter", rename_all = "kebab-case")]
pub enum Rule {
    /// This percentile of the validation errors.
    Percentile(f64),
    /// The (1 − F) quantile of the training rows' errors.
    Contamination(f64),
    /// Mean + K σ of the validation errors.
    Sigma(f64),
}

impl Rule {
    fn from_args(args: &AnomalyArgs) -> Result<Rule> {
        Ok(match (args.threshold_percentile, args.contamination, args.threshold_sigma) {
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

    fn describe(&self, reference: &str, noun: &str) -> String {
        match self {
            Rule::Percentile(p) => format!("p{p} of the {reference} {noun}' errors"),
            Rule::Contamination(f) => {
                format!(
                    "contamination {f}: the p{} of the {reference} {noun}' errors",
                    100.0 * (1.0 - f)
                )
            }
            Rule::Sigma(k) => format!("mean + {k}σ of the {reference} {noun}' errors"),
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

/// ROC-AUC and average precision of one scorer.
#[derive(Debug, Serialize)]
struct Detection {
    roc_auc: Option<f64>,
    average_precision: Option<f64>,
}

impl Detection {
    fn of(scores: &[f64], truth: &[bool]) -> Detection {
        Detection {
            roc_auc: detection::roc_auc(scores, truth),
            average_precision: detection::average_precision(scores, truth),
        }
    }
}

#[derive(Debug, Serialize)]
struct Baselines {
    /// PCA with the model's k, fitted on the run's training rows: squared error.
    pca: Detection,
    /// Isolation Forest (100 trees, 256 rows each, the run's seed) on the training rows.
    isolation_forest: Detection,
}

#[derive(Debug, Serialize)]
struct Summary {
    images: usize,
    threshold: f64,
    #[serde(flatten)]
    rule: Rule,
    /// The percentile rule's parameter, under its name before the other rules existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_percentile: Option<f64>,
    /// Which of the run's rows the threshold was taken from.
    threshold_images: &'static str,
    /// "images", "rows" or (series runs) "windows".
    #[serde(skip)]
    noun: &'static str,
    flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    normal_classes: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baselines: Option<Baselines>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explained: Option<PathBuf>,
    /// Series runs: the window scores spread over the time steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    points: Option<Points>,
}

/// Scores per time step of a series (see `series::point_scores`), with point-wise
/// detection figures and the UCR anomaly archive's rule (Wu & Keogh 2021: a hit when the
/// highest-scoring step lies within `UCR_SLACK` steps of a labelled anomaly).
#[derive(Debug, Serialize)]
struct Points {
    steps: usize,
    flagged: usize,
    /// The id (row number in its file) of the highest-scoring step: the first of equal
    /// scores, as NumPy's argmax (`max` scoring gives a window's steps one score).
    top_step: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ucr_hit: Option<bool>,
    /// Several series (a folder): the file of the highest-scoring step, and the UCR rule
    /// applied to each series with a labelled anomaly (hits, such series).
    #[serde(skip_serializing_if = "Option::is_none")]
    top_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ucr_hits: Option<(usize, usize)>,
}

/// The UCR archive's tolerance around a labelled anomaly, in steps.
pub const UCR_SLACK: usize = 100;

pub fn run(args: AnomalyArgs) -> Result<()> {
    let rule = Rule::from_args(&args)?;
    let plot_format = args.plot.as_deref().map(Format::from_path).transpose()?;
    if args.explain == Some(0) {
        bail!("--explain needs at least 1 row");
    }
    let loaded = super::open_run(&args.run)?;
    let input = &loaded.manifest.model.input;
    let explain_out = args.explain.map(|_| match (&args.explain_out, input) {
        (Some(path), _) => path.clone(),
        (None, DataSpec::Vector(_)) => loaded.run.file("explain.csv"),
        (None, DataSpec::Image(_)) => loaded.run.file("explain.png"),
    });
    let explain_format = match (&explain_out, input) {
        (Some(path), DataSpec::Image(_)) => Some(Format::from_path(path)?),
        _ => None,
    };
    let images = loaded.rows(args.data.as_deref(), args.split.into())?;
    // Normal classes: as given, else the classes the run was trained on.
    let normal = match &args.normal_classes {
        Some(names) => Some(resolve_classes(names, input, "--normal-classes")?),
        None => loaded.manifest.train.classes.clone(),
    };
    // Series runs: the spec with its windowing (scores per step, the series plot).
    let series = match input {
        DataSpec::Vector(v) => v.series.as_ref().map(|s| (v, s)),
        DataSpec::Image(_) => None,
    };
    if args.plot.is_some() && series.is_none() && (normal.is_none() || images.labels().is_none()) {
        bail!("--plot needs labels and --normal-classes (or a run trained with --classes)");
    }

    // The threshold comes from the run's own rows: the validation split (never trained
    // on, normal by construction when the run was trained on normal classes), or for
    // --contamination all the rows it was trained on.
    let (train, val) = loaded.training_sets("the threshold")?;
    let (reference, reference_name) = match rule {
        Rule::Contamination(_) => (join(&train, &val), "training"),
        _ if val.is_empty() => {
            crate::note(format_args!(
                "note: the run has no validation {}; the threshold uses its training {0}",
                train.noun()
            ));
            (train.clone(), "training")
        }
        _ => (val, "validation"),
    };
    let reference_scores = scores(&loaded, &reference)?;
    let threshold = threshold(&rule, &reference_scores)
        .with_context(|| format!("no reference {} for the threshold", reference.noun()))?;

    let scores = scores(&loaded, &images)?;
    let flagged: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
    let mut summary = Summary {
        images: scores.len(),
        threshold,
        rule,
        threshold_percentile: match rule {
            Rule::Percentile(p) => Some(p),
            _ => None,
        },
        threshold_images: reference_name,
        noun: if series.is_some() { "windows" } else { images.noun() },
        flagged: flagged.iter().filter(|&&f| f).count(),
        normal_classes: None,
        roc_auc: None,
        average_precision: None,
        precision: None,
        recall: None,
        baselines: None,
        explained: explain_out.clone(),
        points: None,
    };
    let truth = match (&normal, images.labels()) {
        (Some(classes), Some(labels)) => {
            let known: BTreeSet<u8> = labels.iter().copied().collect();
            if let Some(&c) = classes.iter().find(|c| !known.contains(c)) {
                let known: Vec<String> = known.iter().map(|&k| input.class_name(k)).collect();
                bail!(
                    "--normal-classes: unknown class {}: it does not occur in the data; the labels \
                     are {known:?}",
                    input.class_name(c)
                );
            }
            let truth: Vec<bool> = labels.iter().map(|l| !classes.contains(l)).collect();
            let (precision, recall) = detection::precision_recall(&flagged, &truth);
            summary.normal_classes = Some(classes.iter().map(|&c| input.class_value(c)).collect());
            summary.roc_auc = detection::roc_auc(&scores, &truth);
            summary.average_precision = detection::average_precision(&scores, &truth);
            summary.precision = Some(precision);
            summary.recall = Some(recall);
            if !args.no_baselines {
                summary.baselines = Some(baselines(&loaded, &train, &images, &truth)?);
            }
            Some(truth)
        }
        (Some(_), None) => bail!("--normal-classes needs labels, and the data has none"),
        (None, _) => None,
    };

    let stored = StoredThreshold {
        rule,
        threshold,
        reference: reference_name,
        reference_rows: reference.len(),
        ae_tch_version: env!("CARGO_PKG_VERSION"),
    };
    // A run folder the user cannot write (shared, read-only) still scores: storing the
    // threshold is a record, not the result.
    let record = loaded.run.file(THRESHOLD_FILE);
    let text = serde_json::to_string_pretty(&stored)? + "\n";
    if let Err(e) = write_atomic(&record, text.as_bytes()) {
        crate::note(format_args!("note: the threshold was not stored ({e:#})"));
    }
    let stretches = match series {
        Some((spec, series)) => {
            series_steps(&loaded, spec, series, args.data.as_deref(), args.split.into())?
        }
        None => None,
    };
    if series.is_some() && args.plot.is_some() {
        match &stretches {
            None => bail!(
                "--plot on a series run draws one stretch of the series: the test part (--split \
                 test) or a --data file, not the training windows"
            ),
            Some(s) if s.len() > 1 => bail!(
                "--plot draws one series, and these data are {} series (a folder): pass one \
                 of its files with --data",
                s.len()
            ),
            Some(_) => {}
        }
    }
    if let (Some(stretches), Some((spec, series))) = (&stretches, series) {
        let w = series.windowing();
        let counts: Vec<usize> = stretches.iter().map(|s| w.count(s.steps.rows())).collect();
        if scores.len() != counts.iter().sum::<usize>() {
            bail!(
                "{} windows were scored, but the series make {}",
                scores.len(),
                counts.iter().sum::<usize>()
            );
        }
        let max = args.point_score == PointScore::Max;
        // Each series' windows spread over its own steps; the series then follow each other.
        let mut point = Vec::new();
        let mut first = 0;
        for (s, &count) in stretches.iter().zip(&counts) {
            point.extend(series::point_scores(
                &scores[first..first + count],
                s.steps.rows(),
                w,
                max,
            ));
            first += count;
        }
        let steps = vectors::steps_of(stretches);
        let point_flags: Vec<bool> = point.iter().map(|&s| s > threshold).collect();
        let truth = match (&normal, &steps.labels) {
            (Some(normal), Some(labels)) => {
                let codes = vectors::codes(labels, &spec.classes)?;
                Some(codes.iter().map(|c| !normal.contains(c)).collect::<Vec<bool>>())
            }
            _ => None,
        };
        let top = argmax(&point);
        // The UCR rule, series by series: each one's highest step near one of its anomalies.
        let ucr = truth.as_ref().map(|t| {
            let mut start = 0;
            let mut hits = (0, 0);
            for s in stretches {
                let range = start..start + s.steps.rows();
                start = range.end;
                let (p, t) = (&point[range.clone()], &t[range]);
                if !t.iter().any(|&a| a) {
                    continue;
                }
                let top = argmax(p);
                let (lo, hi) = (top.saturating_sub(UCR_SLACK), (top + UCR_SLACK).min(t.len() - 1));
                hits.0 += t[lo..=hi].iter().any(|&a| a) as usize;
                hits.1 += 1;
            }
            hits
        });
        summary.points = Some(Points {
            steps: point.len(),
            flagged: point_flags.iter().filter(|&&f| f).count(),
            top_step: steps.ids[top],
            top_file: steps.files.as_ref().map(|f| f[top].display().to_string()),
            roc_auc: truth.as_ref().and_then(|t| detection::roc_auc(&point, t)),
            average_precision: truth.as_ref().and_then(|t| detection::average_precision(&point, t)),
            ucr_hit: ucr.filter(|&(_, n)| n == 1 && stretches.len() == 1).map(|(h, _)| h == 1),
            ucr_hits: ucr.filter(|&(_, n)| stretches.len() > 1 && n > 0),
        });
        if let Some(path) = &args.output {
            write_point_scores(path, &steps, &point, &point_flags)?;
        }
        if let (Some(path), Some(format)) = (&args.plot, plot_format) {
            let x: Vec<f64> = steps.ids.iter().map(|&i| i as f64).collect();
            let width = steps.width();
            let values: Vec<Vec<f64>> = (0..width)
                .map(|c| steps.values.iter().skip(c).step_by(width).map(|&v| v as f64).collect())
                .collect();
            let labelled = truth.as_deref();
            let figure = plot::SeriesScores {
                steps: &x,
                channels: steps
                    .columns
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(Vec::as_slice))
                    .collect(),
                scores: &point,
                threshold,
                flagged: &point_flags,
                labelled,
            };
            write_atomic(path, &plot::series_scores(&figure, format)?)?;
        }
    } else if let Some(path) = &args.output {
        write_scores(path, images.key_columns(input), &scores, &flagged)?;
    }
    if let (Some(path), Some(format), None) = (&args.plot, plot_format, series) {
        let Some(truth) = &truth else {
            bail!("--plot needs labels and --normal-classes");
        };
        let pick = |want: bool| -> Vec<f64> {
            scores.iter().zip(truth).filter(|(_, &t)| t == want).map(|(&s, _)| s).collect()
        };
        let bytes = plot::score_histogram(&pick(false), &pick(true), threshold, format)?;
        write_atomic(path, &bytes)?;
    }
    let mut text =
        if args.json { serde_json::to_string(&summary)? + "\n" } else { table(&summary) };
    if let (Some(n), Some(path)) = (args.explain, &explain_out) {
        let top = highest(&scores, n);
        let shown = explain(&loaded, &images, &top, &scores, path, explain_format)?;
        if !args.json {
            text += &shown;
        }
    }
    super::print(&text)
}

/// The threshold `rule` puts on the reference rows' `scores`.
fn threshold(rule: &Rule, scores: &[f64]) -> Option<f64> {
    match *rule {
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

/// The training and validation rows together.
fn join(train: &Rows, val: &Rows) -> Rows {
    match (train, val) {
        (Rows::Vectors(t), Rows::Vectors(v)) => Rows::Vectors(t.concat(v)),
        (Rows::Images(t), Rows::Images(v)) => Rows::Images(t.concat(v)),
        _ => train.clone(),
    }
}

/// Squared reconstruction error of each row (clean input, whatever the training mode).
fn scores(loaded: &super::LoadedRun, images: &Rows) -> Result<Vec<f64>> {
    let x = images.to_unit(loaded.device);
    let errors = metrics::sq_err_per_row(&metrics::reconstruct(&loaded.model, &x), &x);
    Ok(Vec::<f64>::try_from(errors.to_device(Device::Cpu))?)
}

/// PCA with the model's k and an Isolation Forest, both fitted on the run's training
/// rows, scoring the same rows as the model.
fn baselines(
    loaded: &super::LoadedRun,
    train: &Rows,
    rows: &Rows,
    truth: &[bool],
) -> Result<Baselines> {
    let pca = super::pca_baseline(train, &loaded.manifest.model, loaded.device)?;
    let x = rows.to_unit(loaded.device);
    let pca_scores = metrics::sq_err_per_row(&pca.reconstruct(&x), &x).to_device(Device::Cpu);
    let pca_scores = Vec::<f64>::try_from(pca_scores)?;
    let width = loaded.manifest.model.input_dim() as usize;
    let host = |r: &Rows| crate::data::to_host_f32(&r.to_unit(Device::Cpu));
    let forest = IsolationForest::fit(&host(train)?, width, loaded.manifest.train.seed);
    let forest_scores = forest.score(&host(rows)?, width);
    Ok(Baselines {
        pca: Detection::of(&pca_scores, truth),
        isolation_forest: Detection::of(&forest_scores, truth),
    })
}

/// The indices of the `n` highest scores, highest first (ties by position).
fn highest(scores: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(n);
    order
}

/// The position of the highest score, the first of equal ones (NumPy's argmax); 0 when
/// there are none.
fn argmax(scores: &[f64]) -> usize {
    (0..scores.len()).fold(0, |best, i| if scores[i] > scores[best] { i } else { best })
}

/// Writes the explanation of the rows `top` to `path`; returns what to print.
fn explain(
    loaded: &super::LoadedRun,
    rows: &Rows,
    top: &[usize],
    scores: &[f64],
    path: &Path,
    format: Option<Format>,
) -> Result<String> {
    let index = Tensor::from_slice(&top.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let x = rows.to_unit(Device::Cpu).index_select(0, &index).to_device(loaded.device);
    let xhat = metrics::reconstruct(&loaded.model, &x);
    let (x, xhat) = (crate::data::to_host_f32(&x)?, crate::data::to_host_f32(&xhat)?);
    let input = &loaded.manifest.model.input;
    match input {
        DataSpec::Vector(spec) => {
            let (_, ids) = rows.ids();
            let labels = rows.labels();
            // Each row's key: its number, its file (windows of a folder), its label.
            let (key_names, keys) = rows.key_columns(input);
            let width = spec.columns.len();
            let (value, recon) = (spec.scaling.to_units(&x), spec.scaling.to_units(&xhat));
            let mut csv = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["rank"];
            header.extend(&key_names);
            header.extend(["score", "feature", "value", "reconstruction", "share"]);
            csv.write_record(&header)?;
            let mut printed = String::new();
            for (rank, &i) in top.iter().enumerate() {
                let at = |v: &[f32], j: usize| v[rank * width + j] as f64;
                let units = |v: &[f64], j: usize| v[rank * width + j];
                let err: Vec<f64> =
                    (0..width).map(|j| (at(&x, j) - at(&xhat, j)).powi(2)).collect();
                let total = err.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                let mut order: Vec<usize> = (0..width).collect();
                order.sort_by(|&a, &b| err[b].total_cmp(&err[a]).then(a.cmp(&b)));
                let label = labels.map(|l| input.class_name(l[i]));
                for &j in &order {
                    let mut record = vec![(rank + 1).to_string()];
                    record.extend(keys[i].iter().cloned());
                    record.extend([
                        scores[i].to_string(),
                        spec.columns[j].clone(),
                        units(&value, j).to_string(),
                        units(&recon, j).to_string(),
                        format!("{:.6}", err[j] / total),
                    ]);
                    csv.write_record(&record)?;
                }
                if rank < EXPLAIN_PRINTED {
                    let features: Vec<String> = order
                        .iter()
                        .take(EXPLAIN_FEATURES)
                        .map(|&j| {
                            format!(
                                "{} {:.0}% ({} → {})",
                                spec.columns[j],
                                100.0 * err[j] / total,
                                short(units(&value, j)),
                                short(units(&recon, j))
                            )
                        })
                        .collect();
                    let label = label.map(|l| format!(", {l}")).unwrap_or_default();
                    printed += &format!(
                        "  row {}{label}, score {:.3}: {}\n",
                        ids[i],
                        scores[i],
                        features.join(", ")
                    );
                }
            }
            write_atomic(path, &csv.into_inner()?)?;
            Ok(format!(
                "explained   the {} highest-scoring rows in {} (value → reconstruction, \
                 share of the error)\n{printed}",
                top.len(),
                path.display()
            ))
        }
        DataSpec::Image(spec) => {
            let format = format.context("--explain-out needs a .png or .svg name for images")?;
            let (c, h, w) = super::image_shape(&loaded.manifest.model);
            let area = h * w;
            // Every row in RGB so the heat map can be in colour.
            let rgb = |v: &[f32]| -> Vec<f32> {
                v.chunks(c * area)
                    .flat_map(|img| {
                        (0..3).flat_map(move |ch| img[(ch % c) * area..][..area].to_vec())
                    })
                    .collect()
            };
            let mut heat = Vec::with_capacity(top.len() * 3 * area);
            for (img, rec) in x.chunks(c * area).zip(xhat.chunks(c * area)) {
                let err: Vec<f32> = (0..area)
                    .map(|p| {
                        (0..c).map(|ch| (img[ch * area + p] - rec[ch * area + p]).powi(2)).sum()
                    })
                    .collect();
                let peak = err.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
                let colours: Vec<[f32; 3]> = err.iter().map(|e| hot(e / peak)).collect();
                for ch in 0..3 {
                    heat.extend(colours.iter().map(|rgb| rgb[ch]));
                }
            }
            let (inputs, recons) = (rgb(&x), rgb(&xhat));
            let grid = [
                plot::GridRow { label: "input", images: &inputs },
                plot::GridRow { label: "reconstruction", images: &recons },
                plot::GridRow { label: "error", images: &heat },
            ];
            let title = format!(
                "The {} highest-scoring {}x{} images, highest first (error: each image's own scale)",
                top.len(),
                spec.height,
                spec.width
            );
            let bytes = plot::image_grid(&grid, (3, h, w), &title, format)?;
            write_atomic(path, &bytes)?;
            let files = match rows {
                Rows::Images(set) => set.files.as_deref(),
                Rows::Vectors(_) => None,
            };
            let list: Vec<String> = top
                .iter()
                .take(EXPLAIN_PRINTED)
                .map(|&i| match files {
                    Some(f) => format!("{i} {} ({:.3})", f[i].display(), scores[i]),
                    None => format!("{i} ({:.3})", scores[i]),
                })
                .collect();
            Ok(format!(
                "explained   the {} highest-scoring images in {}; first: {}\n",
                top.len(),
                path.display(),
                list.join(", ")
            ))
        }
    }
}

/// A value in few characters.
fn short(v: f64) -> String {
    if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// A black → red → yellow → white ramp for t in [0, 1].
fn hot(t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0) * 3.0;
    [t.min(1.0), (t - 1.0).clamp(0.0, 1.0), (t - 2.0).clamp(0.0, 1.0)]
}

/// The series that `split` (or `data`) scores, when their windows were cut from them in
/// order: the run's test series or another file (or folder). `None` for the training
/// split (its windows are the training and validation windows).
fn series_steps(
    loaded: &super::LoadedRun,
    spec: &VectorSpec,
    series: &SeriesSpec,
    data: Option<&Path>,
    split: crate::data::Split,
) -> Result<Option<Vec<vectors::Stretch>>> {
    let label_column = spec.label_column.as_deref();
    let columns = Some(&series.channels[..]);
    if let Some(path) = data {
        let missing = crate::data::table::Missing::Refuse;
        let (stretches, _) =
            vectors::read_series(path, label_column, columns, series.wav_channel, missing)?;
        return Ok(Some(stretches));
    }
    if split != crate::data::Split::Test {
        return Ok(None);
    }
    let record = &loaded.manifest.data;
    let source = record.vectors.as_ref().context("the run's data record has no vector source")?;
    let seed = loaded.manifest.train.data_selection().seed;
    let parts = vectors::series_parts(&record.path, source, label_column, columns, series, seed)?;
    Ok(Some(parts.test))
}

/// One row per time step: its id, its values, score, flag and label.
fn write_point_scores(path: &Path, steps: &Table, scores: &[f64], flagged: &[bool]) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["step".to_string()];
    header.extend(steps.files.as_ref().map(|_| "file".to_string()));
    header.extend(steps.columns.iter().cloned());
    header.extend(["score".into(), "is_anomaly".into()]);
    if steps.labels.is_some() {
        header.push("label".into());
    }
    csv.write_record(&header)?;
    let width = steps.width();
    for (i, (s, f)) in scores.iter().zip(flagged).enumerate() {
        let mut row = vec![steps.ids[i].to_string()];
        row.extend(steps.files.as_ref().map(|f| f[i].display().to_string()));
        row.extend(steps.values[i * width..(i + 1) * width].iter().map(|v| v.to_string()));
        row.extend([s.to_string(), (*f as u8).to_string()]);
        if let Some(labels) = &steps.labels {
            row.push(labels[i].clone());
        }
        csv.write_record(&row)?;
    }
    write_atomic(path, &csv.into_inner()?)
}

fn write_scores(
    path: &Path,
    (key_names, keys): (Vec<&str>, Vec<Vec<String>>),
    scores: &[f64],
    flagged: &[bool],
) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(key_names.iter().chain(&["score", "is_anomaly"]))?;
    for ((key, s), f) in keys.into_iter().zip(scores).zip(flagged) {
        csv.write_record(key.into_iter().chain([s.to_string(), (*f as u8).to_string()]))?;
    }
    write_atomic(path, &csv.into_inner()?)
}

fn table(s: &Summary) -> String {
    let mut out = format!(
        "{:<12}{}\nthreshold   {:.3} ({})\nflagged     {} ({:.1}%)\n",
        s.noun,
        s.images,
        s.threshold,
        s.rule.describe(s.threshold_images, s.noun),
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
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    if s.roc_auc.is_some() {
        out += &format!("\n{:<20}{:>9}{:>15}\n", "", "roc-auc", "avg precision");
        out += &format!(
            "{:<20}{:>9}{:>15}\n",
            "autoencoder",
            cell(s.roc_auc),
            cell(s.average_precision)
        );
        if let Some(b) = &s.baselines {
            for (name, d) in [("PCA, same k", &b.pca), ("isolation forest", &b.isolation_forest)] {
                out +=
                    &format!("{name:<20}{:>9}{:>15}\n", cell(d.roc_auc), cell(d.average_precision));
            }
        }
    }
    if let Some(p) = &s.points {
        out += &format!(
            "\nper step    {} steps, {} flagged; highest score at step {}{}\n",
            p.steps,
            p.flagged,
            p.top_step,
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
    }
    out
}
