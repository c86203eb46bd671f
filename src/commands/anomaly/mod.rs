//! `ae-tch anomaly`: reconstruction error as an anomaly score (for a table, through
//! `metrics::detector`, which averages the ensemble's models and, with the tail score,
//! adds the columns' tails), a threshold from the run's
//! own rows (a percentile or mean + kσ of the validation errors, or the expected share
//! of anomalies among the training rows), ROC-AUC and average precision beside PCA with
//! the same k and an Isolation Forest on the same rows, and explanations of the rows that
//! score highest. This file runs the command and scores the rows; `rule` owns the
//! threshold, `points` the per-step scores of series runs, `explain` the `--explain`
//! output and `summary` what is printed.

mod explain;
mod points;
mod rule;
mod summary;

use crate::atomic::write_atomic;
use crate::cli::{AnomalyArgs, PointScore};
use crate::data::spec::{DataSpec, SeriesSpec, VectorSpec};
use crate::data::vectors::resolve_classes;
use crate::data::Rows;
use crate::metrics;
use crate::metrics::detector::{self, Detector};
use crate::metrics::iforest::IsolationForest;
use crate::metrics::reference::{self, row_scores, ReferenceScores};
use crate::plot::{self, Format};
use anyhow::{bail, Context, Result};
pub use points::UCR_SLACK;
use points::{Points, StepScores};
use rule::Rule;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use summary::{Baselines, Detection, Summary};
use tch::Device;

/// Where the chosen threshold is stored in the run folder.
pub const THRESHOLD_FILE: &str = "anomaly.json";

/// Scores the rows `args` names, flags those above the run's threshold and reports how
/// well the scores find the anomalies (see the module docs).
pub fn run(args: AnomalyArgs) -> Result<()> {
    let rule = Rule::from_args(&args)?;
    let plot_format = args.plot.as_deref().map(Format::from_path).transpose()?;
    if args.explain == Some(0) {
        bail!("--explain needs at least 1 row");
    }
    let loaded = super::open_run(&args.run)?;
    let input = &loaded.manifest.model.input;
    let (explain_out, explain_format) = explain_target(&args, &loaded)?;
    let images = loaded.rows((args.data.as_deref(), args.read.reading()), args.split.into())?;
    // Normal classes: as given, else — when the rows have labels — the classes the run was
    // trained on. New rows without labels are scored and flagged, not measured.
    let normal = match &args.normal_classes {
        Some(names) => Some(resolve_classes(names, input, "normal_classes")?),
        None => loaded.manifest.train.classes.clone().filter(|_| images.labels().is_some()),
    };
    let series = input.series();

    let detector =
        Detector::read(&loaded.run.file(detector::FILE), &loaded.manifest.model, loaded.device)?;
    let (recorded_scores, recorded) = run_scores(&loaded, detector.as_ref())?;
    let (reference, reference_name) = reference_scores(rule, &recorded_scores, images.noun());
    let threshold = rule
        .threshold(&reference)
        .with_context(|| format!("no reference {} for the threshold", images.noun()))?;

    let scores = row_scores(&loaded.model, detector.as_ref(), &images, loaded.device)?;
    let flagged: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
    let noun = if series.is_some() { "windows" } else { images.noun() };
    let mut summary =
        Summary::new((rule, threshold, reference_name), &flagged, noun, explain_out.clone());
    summary.threshold_recorded = recorded;
    let truth = truth(normal.as_deref(), images.labels(), input)?;
    if let (Some(truth), Some(classes)) = (&truth, &normal) {
        summary.normal_classes = Some(classes.iter().map(|&c| input.class_value(c)).collect());
        summary.add_detection(&scores, &flagged, truth);
        if !args.no_baselines {
            let (train, _) = loaded.training_sets("the baselines (--no-baselines skips them)")?;
            summary.baselines = Some(baselines(&loaded, &train, &images, truth)?);
        }
    }
    let record = loaded.run.file(THRESHOLD_FILE);
    rule::store(&record, rule, threshold, (reference_name, reference.len()))?;

    summary.points = match series {
        Some(series) => {
            let per_step = (threshold, normal.as_deref(), plot_format);
            step_scores(&args, &loaded, series, per_step, &scores)?
        }
        None => None,
    };
    if let (None, Some(path)) = (&summary.points, &args.output) {
        let probability = recorded_scores.probability(&scores)?;
        write_scores(path, images.key_columns(input), (&scores, &probability), &flagged)?;
    }
    if let (Some(path), Some(format), None) = (&args.plot, plot_format, series) {
        let item = if images.images().is_some() { "image" } else { "row" };
        let truth = truth.as_deref();
        write_atomic(path, &histogram(&scores, truth, threshold, item, format)?)?;
    }
    let mut text =
        if args.json { serde_json::to_string(&summary)? + "\n" } else { summary.table() };
    if let (Some(n), Some(path)) = (args.explain, &explain_out) {
        let top = explain::highest(&scores, n);
        let shown = explain::explain(
            &loaded,
            &images,
            &top,
            (&scores, detector.as_ref()),
            path,
            explain_format,
        )?;
        if !args.json {
            text += &shown;
        }
    }
    super::print(&text)
}

/// Series runs whose scored windows were cut from series in order (the test split or
/// `--data`): the scores per step, after writing `-o`'s per-step file and `--plot`'s
/// series plot; `None` for the training windows (refused with `--plot`).
fn step_scores(
    args: &AnomalyArgs,
    loaded: &super::LoadedRun,
    (spec, series): (&VectorSpec, &SeriesSpec),
    (threshold, normal, plot_format): (f64, Option<&[u8]>, Option<Format>),
    scores: &[f64],
) -> Result<Option<Points>> {
    let data = (args.data.as_deref(), args.read.reading());
    let stretches = points::series_steps(loaded, spec, series, data, args.split.into())?;
    if args.plot.is_some() {
        points::check_plot(stretches.as_deref())?;
    }
    let Some(stretches) = &stretches else {
        return Ok(None);
    };
    let steps = StepScores {
        spec,
        series,
        stretches,
        threshold,
        normal,
        max: args.point_score == PointScore::Max,
        output: args.output.as_deref(),
        plot: args.plot.as_deref().zip(plot_format),
    };
    Ok(Some(steps.run(scores)?))
}

/// Where `--explain` writes (`--explain-out`, else `explain.csv` or `explain.png` in the
/// run) and, for images, the figure's format; `None`s without `--explain`.
fn explain_target(
    args: &AnomalyArgs,
    loaded: &super::LoadedRun,
) -> Result<(Option<PathBuf>, Option<Format>)> {
    let input = &loaded.manifest.model.input;
    // Images are explained as a picture, rows as a table.
    let image = input.image().is_some();
    let out = args.explain.map(|_| match &args.explain_out {
        Some(path) => path.clone(),
        None => loaded.run.file(if image { "explain.png" } else { "explain.csv" }),
    });
    let format = match &out {
        Some(path) if image => Some(Format::from_path(path)?),
        _ => None,
    };
    Ok((out, format))
}

/// The scores of the run's training and validation rows: those training recorded
/// (`metrics::reference`); a run made before that has its rows read and scored again (the
/// flag says which).
fn run_scores(
    loaded: &super::LoadedRun,
    detector: Option<&Detector>,
) -> Result<(ReferenceScores, bool)> {
    match ReferenceScores::read(&loaded.run.file(reference::FILE))? {
        Some(scores) => Ok((scores, true)),
        None => {
            let (train, val) = loaded.training_sets("the threshold")?;
            let scored = (&loaded.model, detector);
            Ok((ReferenceScores::of(scored, &train, &val, loaded.device)?, false))
        }
    }
}

/// The scores the threshold comes from, and the name of their rows: the validation split
/// (never trained on, normal by construction when the run was trained on normal classes),
/// or for `--contamination` all the rows it was trained on; the training rows, with a
/// note, when the run has no validation rows (`noun`: what a row is).
fn reference_scores(rule: Rule, run: &ReferenceScores, noun: &str) -> (Vec<f64>, &'static str) {
    let (training, validation) = (&run.training, &run.validation);
    match rule {
        Rule::Contamination(_) => match &run.both {
            Some(both) => (both.clone(), "training"),
            None => ([&training[..], validation].concat(), "training"),
        },
        _ if validation.is_empty() => {
            crate::log::note(format_args!(
                "note: the run has no validation {noun}; the threshold uses its training {noun}"
            ));
            (training.clone(), "training")
        }
        _ => (validation.clone(), "validation"),
    }
}

/// Which rows are anomalies: those whose label is not one of the `normal` classes;
/// `None` without normal classes. A normal class that no scored row has gets a note when
/// the run names its classes (the name was checked against them), and is refused when the
/// labels are bare numbers (a typo would make every row anomalous), as are normal classes
/// without labels.
fn truth(
    normal: Option<&[u8]>,
    labels: Option<&[u8]>,
    input: &DataSpec,
) -> Result<Option<Vec<bool>>> {
    match (normal, labels) {
        (Some(classes), Some(labels)) => {
            let known: BTreeSet<u8> = labels.iter().copied().collect();
            let absent: Vec<String> = classes
                .iter()
                .filter(|c| !known.contains(c))
                .map(|&c| input.class_name(c))
                .collect();
            if !absent.is_empty() && !input.classes().is_empty() {
                crate::log::note(format_args!(
                    "note: no scored row has the normal {} {}",
                    if absent.len() == 1 { "class" } else { "classes" },
                    absent.join(", ")
                ));
            } else if let Some(&c) = classes.iter().find(|c| !known.contains(c)) {
                let known: Vec<String> = known.iter().map(|&k| input.class_name(k)).collect();
                bail!(
                    "--normal-classes: unknown class {}: it does not occur in the data; the labels \
                     are {known:?}",
                    input.class_name(c)
                );
            }
            Ok(Some(labels.iter().map(|l| !classes.contains(l)).collect()))
        }
        (Some(_), None) => bail!("--normal-classes needs labels, and the data has none"),
        (None, _) => Ok(None),
    }
}

/// The histogram of the normal and the anomalous rows' scores (`truth` says which is
/// which) with the threshold.
fn histogram(
    scores: &[f64],
    truth: Option<&[bool]>,
    threshold: f64,
    item: &str,
    format: Format,
) -> Result<Vec<u8>> {
    let Some(truth) = truth else {
        // No labels, or no normal classes to read them by: every row as one group.
        let every = format!("every {item}");
        return plot::score_histogram(&[(&every, scores)], threshold, item, format);
    };
    let pick = |want: bool| -> Vec<f64> {
        scores.iter().zip(truth).filter(|(_, &t)| t == want).map(|(&s, _)| s).collect()
    };
    let (normal, anomalous) = (pick(false), pick(true));
    let groups: [(&str, &[f64]); 2] = [("normal", &normal), ("anomalous", &anomalous)];
    plot::score_histogram(&groups, threshold, item, format)
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
    let width = loaded.manifest.model.input_dim() as usize;
    let host = |r: &Rows, range| crate::data::to_host_f32(&r.unit_range(range, Device::Cpu));
    let gather = |at: &[usize]| host(&train.select(at), 0..at.len());
    let forest =
        IsolationForest::fit_rows((train.len(), width), loaded.manifest.train.seed, &gather)?;
    let (mut pca_scores, mut forest_scores) = (Vec::new(), Vec::new());
    for r in rows.chunks() {
        let x = rows.unit_range(r.clone(), loaded.device);
        let scores = metrics::sq_err_per_row(&pca.reconstruct(&x), &x).to_device(Device::Cpu);
        pca_scores.extend(Vec::<f64>::try_from(scores)?);
        forest_scores.extend(forest.score(&host(rows, r)?, width));
    }
    Ok(Baselines {
        pca: Detection::of(&pca_scores, truth),
        isolation_forest: Detection::of(&forest_scores, truth),
    })
}

/// `-o` for rows (not steps): each row's key columns, its score, flag and outlier
/// probability (`ReferenceScores::probability`).
fn write_scores(
    path: &Path,
    (key_names, keys): (Vec<&str>, Vec<Vec<String>>),
    (scores, probability): (&[f64], &[f64]),
    flagged: &[bool],
) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(key_names.iter().chain(&["score", "is_anomaly", "probability"]))?;
    for (((key, s), f), p) in keys.into_iter().zip(scores).zip(flagged).zip(probability) {
        let fields = [s.to_string(), (*f as u8).to_string(), format!("{p:.6}")];
        csv.write_record(key.into_iter().chain(fields))?;
    }
    write_atomic(path, &csv.into_inner()?)
}
