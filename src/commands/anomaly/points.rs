//! `anomaly` on series runs: the window scores spread over the time steps of the series
//! they were cut from, point-wise detection figures and the UCR rule, the per-step file
//! of `-o` and the series plot of `--plot`.

use crate::atomic::write_atomic;
use crate::commands::LoadedRun;
use crate::data::series::{self, Windowing};
use crate::data::spec::{Reading, SeriesSpec, VectorSpec};
use crate::data::table::Table;
use crate::data::vectors::{self, Stretch};
use crate::data::Split;
use crate::metrics::detection;
use crate::plot::{self, Format};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// The UCR archive's tolerance around a labelled anomaly, in steps.
pub const UCR_SLACK: usize = 100;

/// Scores per time step of a series (see `series::point_scores`), with point-wise
/// detection figures and the UCR anomaly archive's rule (Wu & Keogh 2021: a hit when the
/// highest-scoring step lies within `UCR_SLACK` steps of a labelled anomaly).
#[derive(Debug, Serialize)]
pub struct Points {
    pub steps: usize,
    pub flagged: usize,
    /// The id (row number in its file) of the highest-scoring step: the first of equal
    /// scores, as NumPy's argmax (`max` scoring gives a window's steps one score).
    pub top_step: usize,
    /// When that step was taken: its time column's value, or its second in a WAV file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucr_hit: Option<bool>,
    /// Several series (a folder): the file of the highest-scoring step, and the UCR rule
    /// applied to each series with a labelled anomaly (hits, such series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucr_hits: Option<(usize, usize)>,
}

/// The series that `split` (or `data`) scores, when their windows were cut from them in
/// order: the run's test series or another file (or folder). `None` for the training
/// split (its windows are the training and validation windows).
pub fn series_steps(
    loaded: &LoadedRun,
    spec: &VectorSpec,
    series: &SeriesSpec,
    (data, given): (Option<&Path>, Reading),
    split: Split,
) -> Result<Option<Vec<Stretch>>> {
    let label_column = spec.label_column.as_deref();
    let columns = Some(&series.channels[..]);
    if let Some(path) = data {
        let reading = loaded.reading(given);
        let label_column = vectors::label_in(path, spec, &reading);
        let at = (reading, series.sample_rate, series.window);
        let (stretches, _) = vectors::read_series(path, label_column, columns, at)?;
        return Ok(Some(stretches));
    }
    if split != Split::Test {
        return Ok(None);
    }
    let record = &loaded.manifest.data;
    let source = record.vectors.as_ref().context("the run's data record has no vector source")?;
    let seed = loaded.manifest.train.data_selection().seed;
    let parts = vectors::series_parts(&record.path, source, label_column, columns, series, seed)?;
    Ok(Some(parts.test))
}

/// Refuses `--plot` on a series run unless the scored rows are the steps of one series.
pub fn check_plot(stretches: Option<&[Stretch]>) -> Result<()> {
    match stretches {
        None => bail!(
            "--plot on a series run draws one stretch of the series: the test part (--split \
             test) or a --data file, not the training windows"
        ),
        Some(s) if s.len() > 1 => bail!(
            "--plot draws one series, and these data are {} series (a folder): pass one \
             of its files with --data",
            s.len()
        ),
        Some(_) => Ok(()),
    }
}

/// The windows' `scores` spread over the steps of the series they were cut from (each
/// series' windows over its own steps, the series then one after another); `max` takes
/// a step's highest window score instead of the mean.
pub fn spread(scores: &[f64], stretches: &[Stretch], w: Windowing, max: bool) -> Result<Vec<f64>> {
    let count: usize = stretches.iter().map(|s| s.window_count(w)).sum();
    if scores.len() != count {
        bail!("{} windows were scored, but the series make {count}", scores.len());
    }
    let mut point = Vec::new();
    let mut first = 0;
    for piece in stretches.iter().flat_map(|s| s.pieces()) {
        let count = w.count(piece.len());
        point.extend(series::point_scores(&scores[first..first + count], piece.len(), w, max));
        first += count;
    }
    Ok(point)
}

/// Which steps are anomalies: those whose label (one of the run's `classes`) is not one
/// of the `normal` classes; `None` without both.
fn step_truth(
    normal: Option<&[u8]>,
    labels: Option<&[String]>,
    classes: &[String],
) -> Result<Option<Vec<bool>>> {
    match (normal, labels) {
        (Some(normal), Some(labels)) => {
            let codes = vectors::codes(labels, classes)?;
            Ok(Some(codes.iter().map(|c| !normal.contains(c)).collect()))
        }
        _ => Ok(None),
    }
}

/// The position of the highest score, the first of equal ones (NumPy's argmax); 0 when
/// there are none.
pub fn argmax(scores: &[f64]) -> usize {
    (0..scores.len()).fold(0, |best, i| if scores[i] > scores[best] { i } else { best })
}

/// The UCR rule, series by series (`lengths` steps each, one after another in `point`
/// and `truth`): (series whose highest step lies within `UCR_SLACK` steps of one of
/// their labelled anomalies, series with a labelled anomaly).
fn ucr_hits(point: &[f64], truth: &[bool], lengths: &[usize]) -> (usize, usize) {
    let mut start = 0;
    let mut hits = (0, 0);
    for &len in lengths {
        let range = start..start + len;
        start = range.end;
        let (p, t) = (&point[range.clone()], &truth[range]);
        if !t.iter().any(|&a| a) {
            continue;
        }
        let top = argmax(p);
        let (lo, hi) = (top.saturating_sub(UCR_SLACK), (top + UCR_SLACK).min(t.len() - 1));
        hits.0 += t[lo..=hi].iter().any(|&a| a) as usize;
        hits.1 += 1;
    }
    hits
}

/// What a series run's scores are per step, and where they go.
pub struct StepScores<'a> {
    pub spec: &'a VectorSpec,
    pub series: &'a SeriesSpec,
    pub stretches: &'a [Stretch],
    pub threshold: f64,
    pub normal: Option<&'a [u8]>,
    /// `--point-score max`.
    pub max: bool,
    /// `-o`: the per-step file.
    pub output: Option<&'a Path>,
    /// `--plot` and its format.
    pub plot: Option<(&'a Path, Format)>,
}

impl StepScores<'_> {
    /// Spreads the window `scores` over the steps, writes the per-step file and the plot
    /// asked for, and returns the per-step figures of the summary.
    pub fn run(&self, scores: &[f64]) -> Result<Points> {
        let point = spread(scores, self.stretches, self.series.windowing(), self.max)?;
        let steps = vectors::steps_of(self.stretches);
        let clock = Clock::of(self.stretches, &steps, self.series.sample_rate);
        let flags: Vec<bool> = point.iter().map(|&s| s > self.threshold).collect();
        let truth = step_truth(self.normal, steps.labels.as_deref(), &self.spec.classes)?;
        let top = argmax(&point);
        let lengths: Vec<usize> = self.stretches.iter().map(|s| s.steps.rows()).collect();
        let ucr = truth.as_ref().map(|t| ucr_hits(&point, t, &lengths));
        let count = self.stretches.len();
        let points = Points {
            steps: point.len(),
            flagged: flags.iter().filter(|&&f| f).count(),
            top_step: steps.ids[top],
            top_time: clock.as_ref().map(|c| format!("{}{}", c.text[top], c.unit)),
            top_file: steps.files.as_ref().map(|f| f[top].display().to_string()),
            roc_auc: truth.as_ref().and_then(|t| detection::roc_auc(&point, t)),
            average_precision: truth.as_ref().and_then(|t| detection::average_precision(&point, t)),
            ucr_hit: ucr.filter(|&(_, n)| n == 1 && count == 1).map(|(h, _)| h == 1),
            ucr_hits: ucr.filter(|&(_, n)| count > 1 && n > 0),
        };
        if let Some(path) = self.output {
            write_point_scores(path, (&steps, clock.as_ref()), &point, &flags)?;
        }
        if let Some((path, format)) = self.plot {
            let figure = (&point[..], &flags[..], truth.as_deref());
            let x = clock.and_then(|c| c.axis);
            write_atomic(path, &series_figure((&steps, x), figure, self.threshold, format)?)?;
        }
        Ok(points)
    }
}

/// When each scored step was taken, as the data say it: a CSV's time column (as written)
/// or, for WAV files, seconds at the run's sample rate; with the x axis of the series plot
/// when the times are numbers.
struct Clock {
    /// The time column's name, or `seconds`.
    name: String,
    text: Vec<String>,
    /// After a time in a sentence (` s` for seconds).
    unit: &'static str,
    axis: Option<(Vec<f64>, String)>,
}

impl Clock {
    fn of(stretches: &[Stretch], steps: &Table, rate: Option<u32>) -> Option<Clock> {
        if let Some(rate) = rate {
            let seconds: Vec<f64> = steps.ids.iter().map(|&i| i as f64 / rate as f64).collect();
            let text = seconds.iter().map(|s| format!("{s:.4}")).collect();
            let axis = Some((seconds, "seconds".into()));
            return Some(Clock { name: "seconds".into(), text, unit: " s", axis });
        }
        let all: Vec<&vectors::Times> =
            stretches.iter().map(|s| s.times.as_ref()).collect::<Option<_>>()?;
        let times = vectors::Times {
            name: all[0].name.clone(),
            text: all.iter().flat_map(|t| t.text.iter().cloned()).collect(),
            at: all.iter().map(|t| t.at.clone()).collect::<Option<Vec<_>>>().map(|v| v.concat()),
            dates: all.iter().all(|t| t.dates),
            lines: all.iter().flat_map(|t| t.lines.iter().copied()).collect(),
        };
        Some(Clock { name: times.name.clone(), axis: times.axis(), text: times.text, unit: "" })
    }
}

/// The series plot: the steps' values above (across the time axis `x`, else the step
/// numbers), their `(scores, flags, labelled anomalies)` below with the threshold.
fn series_figure(
    (steps, x): (&Table, Option<(Vec<f64>, String)>),
    (scores, flagged, labelled): (&[f64], &[bool], Option<&[bool]>),
    threshold: f64,
    format: Format,
) -> Result<Vec<u8>> {
    let (x, x_desc) =
        x.unwrap_or_else(|| (steps.ids.iter().map(|&i| i as f64).collect(), "step".into()));
    let width = steps.width();
    let values: Vec<Vec<f64>> = (0..width)
        .map(|c| steps.values.iter().skip(c).step_by(width).map(|&v| v as f64).collect())
        .collect();
    let figure = plot::SeriesScores {
        steps: &x,
        x_desc: &x_desc,
        channels: steps
            .columns
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(Vec::as_slice))
            .collect(),
        scores,
        threshold,
        flagged,
        labelled,
    };
    plot::series_scores(&figure, format)
}

/// One row per time step: its id, its time, its values, score, flag and label.
fn write_point_scores(
    path: &Path,
    (steps, clock): (&Table, Option<&Clock>),
    scores: &[f64],
    flagged: &[bool],
) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["step".to_string()];
    header.extend(steps.files.as_ref().map(|_| "file".to_string()));
    header.extend(clock.map(|c| c.name.clone()));
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
        row.extend(clock.map(|c| c.text[i].clone()));
        row.extend(steps.values[i * width..(i + 1) * width].iter().map(|v| v.to_string()));
        row.extend([s.to_string(), (*f as u8).to_string()]);
        if let Some(labels) = &steps.labels {
            row.push(labels[i].clone());
        }
        csv.write_record(&row)?;
    }
    write_atomic(path, &csv.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_scores() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f64::NAN, 1.0]), 0, "NaN never beats the first");
    }

    #[test]
    fn the_ucr_rule_counts_series_whose_top_step_is_near_an_anomaly() {
        let n = 3 * UCR_SLACK;
        // Series 1: anomaly at the top step. Series 2: anomaly just within the slack of
        // the top. Series 3: anomaly one step beyond it. Series 4: no anomaly (not counted).
        let mut point = Vec::new();
        let mut truth = Vec::new();
        for (top, anomaly) in
            [(10, Some(10)), (10, Some(10 + UCR_SLACK)), (10, Some(11 + UCR_SLACK)), (5, None)]
        {
            point.extend((0..n).map(|i| if i == top { 1.0 } else { 0.0 }));
            truth.extend((0..n).map(|i| Some(i) == anomaly));
        }
        assert_eq!(ucr_hits(&point, &truth, &[n; 4]), (2, 3));
        // The window is clipped at the ends of a series.
        let (point, truth) = ([0.0, 0.0, 1.0], [true, false, false]);
        assert_eq!(ucr_hits(&point, &truth, &[3]), (1, 1));
    }

    #[test]
    fn truth_per_step_needs_normal_classes_and_labels() {
        let classes = ["0".to_string(), "1".into()];
        // A label written as another number's form is still its class.
        let labels = ["0".to_string(), "1".into(), "0.0".into()];
        let t = step_truth(Some(&[0]), Some(&labels), &classes).unwrap();
        assert_eq!(t, Some(vec![false, true, false]));
        assert_eq!(step_truth(None, Some(&labels), &classes).unwrap(), None);
        assert_eq!(step_truth(Some(&[0]), None, &classes).unwrap(), None);
        let e = step_truth(Some(&[0]), Some(&["7".to_string()]), &classes).unwrap_err();
        assert!(e.to_string().contains("label '7' is not one of the run's classes"), "{e}");
    }
}
