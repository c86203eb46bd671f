//! A series run's sets as windows cut on demand (`data::windows`): the training,
//! validation and test windows of a new run, of a trained one, and of another file read
//! the run's way. The steps are read once; no window matrix is made. (A spectral run's
//! rows are spectra, computed when the series are read: `series_io::split_series`.)

use super::series_io::{read_series, series_split, window_views};
use super::*;
use crate::data::rows::Rows;
use crate::data::windows::WindowSet;

/// A series run's window columns: `<channel>@<k>`, channel by channel.
pub fn window_columns(channels: &[String], window: usize) -> Vec<String> {
    channels.iter().flat_map(|c| (0..window).map(move |k| format!("{c}@{k}"))).collect()
}

/// All of `windows` as a set, labels coded by `classes`.
fn coded(windows: crate::data::windows::Windows, classes: &[String]) -> Result<WindowSet> {
    windows.all(&|name| Ok(codes(&[name.to_string()], classes)?[0]))
}

/// A fresh series run's sets (see `prepare`): the classes from the windows' labels,
/// `--classes` and `--limit` on the training windows, the scaling fitted on them.
pub(super) fn prepare_windows(
    path: &Path,
    source: &VectorSource,
    (label_column, req): (Option<String>, &VectorRequest),
    series: &SeriesSpec,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    let label = label_column.as_deref();
    let (parts, filled) = series_split(path, source, (label, req.columns), series, cfg.seed)?;
    let w = filled.windowing();
    let (train, test) = (window_views(&parts.train, w)?, window_views(&parts.test, w)?);
    let held_out = parts.held_out;
    drop(parts.train);
    drop(parts.test);
    let names = [train.label_names(), test.label_names()];
    let classes = class_names(names.iter().flatten().flatten().map(|n| n.as_str()))?;
    let codes = req.classes.map(|names| class_codes(names, &classes, "classes")).transpose()?;
    if codes.is_some() && train.label_names().is_none() {
        let problem = "needs labels: name the label column with {label_column}";
        return Err(Invalid::of("classes", problem).into());
    }
    let (train, test) = (coded(train, &classes)?, coded(test, &classes)?);
    let kept = keep_windows(&train, codes.as_deref(), cfg.limit);
    let spec = VectorSpec {
        columns: window_columns(&filled.channels, filled.window),
        label_column,
        classes,
        scaling: kept.fit_scaling(req.scale),
        categories: Vec::new(),
    };
    let sets = finish_windows(kept, test, spec, codes, cfg)?;
    Ok(VectorSets { held_out, series: Some(filled), ..sets })
}

/// A trained series run's sets, from its recorded source, spec and windowing.
pub(super) fn rebuild_windows(
    path: &Path,
    source: &VectorSource,
    spec: &VectorSpec,
    series: &SeriesSpec,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    let how = (spec.label_column.as_deref(), Some(&series.channels[..]));
    let (parts, _) = series_split(path, source, how, series, cfg.seed)?;
    let w = series.windowing();
    let train = coded(window_views(&parts.train, w)?, &spec.classes)?;
    let test = coded(window_views(&parts.test, w)?, &spec.classes)?;
    drop(parts);
    let kept = keep_windows(&train, cfg.classes.as_deref(), cfg.limit);
    let sets = finish_windows(kept, test, spec.clone(), cfg.classes.clone(), cfg)?;
    Ok(VectorSets { series: Some(series.clone()), ..sets })
}

/// Every window of another file (or folder) of series, read and scaled the run's way.
pub(super) fn load_windows(
    path: &Path,
    (spec, series): (&VectorSpec, &SeriesSpec),
    label_column: Option<&str>,
    reading: Reading,
) -> Result<Rows> {
    let channels = Some(&series.channels[..]);
    let (stretches, _) =
        read_series(path, label_column, channels, (reading, series.sample_rate, series.window))?;
    let windows = window_views(&stretches, series.windowing())?;
    drop(stretches);
    let columns = window_columns(&series.channels, series.window);
    if columns != spec.columns {
        bail!("the columns {:?} are not the run's {:?}", columns, spec.columns);
    }
    Ok(Rows::Windows(coded(windows, &spec.classes)?.scaled(&spec.scaling)))
}

/// The training windows of the classes `codes` (all without), cut to the first `limit`.
fn keep_windows(train: &WindowSet, codes: Option<&[u8]>, limit: Option<usize>) -> WindowSet {
    let kept = match (codes, &train.labels) {
        (Some(codes), Some(labels)) => {
            let rows: Vec<usize> =
                (0..labels.len()).filter(|&i| codes.contains(&labels[i])).collect();
            train.select(&rows)
        }
        _ => train.clone(),
    };
    match limit {
        Some(limit) => kept.take(limit),
        None => kept,
    }
}

/// The sets of the kept training windows and the test windows, read through the spec's
/// scaling: validation is the last share of the training windows in time (windows
/// overlap; a shuffled draw would put the same steps on both sides).
fn finish_windows(
    kept: WindowSet,
    test: WindowSet,
    spec: VectorSpec,
    classes: Option<Vec<u8>>,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    let all = kept.scaled(&spec.scaling);
    let cut = all.len() - split::val_count(all.len(), cfg.val_fraction);
    if cut < 2 {
        let problem = format!(
            "{} left after the test split, {{classes}}, {{limit}} and {{val_fraction}}; at \
             least 2 are needed",
            crate::log::counted(cut, "training row")
        );
        return Err(Invalid::plain(problem).into());
    }
    Ok(VectorSets {
        train: Rows::Windows(all.part(0..cut)),
        val: Rows::Windows(all.part(cut..all.len())),
        test: Rows::Windows(test.scaled(&spec.scaling)),
        spec,
        series: None,
        dropped: 0,
        classes,
        held_out: Vec::new(),
    })
}
