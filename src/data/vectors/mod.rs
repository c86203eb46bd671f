//! Numeric vectors as a run uses them: a CSV or .npy file read into a `Table`, its labels
//! coded by the run's recorded class list, split into training and test rows by a seeded
//! stratified draw (or a separate test file), and scaled with the scaling fitted on the
//! training rows. Everything needed to rebuild the same sets is recorded (`VectorSource`
//! in the run's data record, `VectorSpec` in model.json). Long series (`--window`) are
//! read here too: a file or a folder of them as `Stretch`es, split in time order or by
//! whole files, and cut into the windows that are a series run's rows.

use super::rows::{Features, Rows, VectorSet};
use super::spec::{DataSpec, Gap, Reading, ScaleKind, Scaling, SeriesSpec, VectorSpec};
use super::split;
use super::table::{self, CsvOptions, Missing, Table, TextColumns};
use crate::config::TrainConfig;
use crate::invalid::Invalid;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod classes;
mod clock;
mod memory;
mod series_io;
mod spectral_rows;
mod speech;
mod window_sets;

pub use classes::*;
pub use clock::{is_timed_csv, iso_seconds, Times, GAP_STEPS};
pub use memory::{window_memory, TooBig};
pub use series_io::*;
pub use speech::{audio_noise, noisy_copy, scaled_rows, test_recordings, SpeechPairs, MIX};
pub use window_sets::window_columns;

/// How a run's vector data were read and split, recorded so every later command rebuilds
/// exactly the same rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorSource {
    /// Labels for .npy data (`--labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// A separate test file (`--test`); without one, `test_fraction` of the rows of every
    /// class are held out, drawn with the run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// Labels for a .npy test file (`--test-labels`), as `labels` are for the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_labels: Option<PathBuf>,
    pub test_fraction: f64,
    #[serde(default)]
    pub missing: Missing,
    /// Series with a time column: what a gap does (`--gap`); absent in runs made before
    /// gaps were looked for, which read across them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
    /// CSV: the delimiter the run's file was read with (given, or sniffed when the run
    /// was made); absent: a comma. Other files are sniffed unless a command is given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// CSV: the file has no header line (`--no-header`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_header: bool,
    /// CSV: lines passed over before the header (`--skip-rows`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip_rows: usize,
    /// A folder of series without `--test`: the files held out whole for testing (their
    /// names in the folder), drawn with the run's seed when the run was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out: Vec<String>,
    /// A folder of series: the names of its files when the run was made; a later
    /// command refuses the folder if they have changed (the sets would silently differ).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folder_files: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl VectorSource {
    /// How the run read its own file(s), for a series with the WAV channel `wav_channel`:
    /// with the recorded delimiter, a comma for a run made before delimiters were recorded
    /// (never sniffed again, so the rows stay the run's).
    pub fn reading(&self, wav_channel: Option<usize>) -> Reading {
        Reading {
            missing: Some(self.missing),
            gap: Some(self.gap.unwrap_or(Gap::Across)),
            wav_channel,
            delimiter: Some(self.delimiter.unwrap_or(',')),
            no_header: Some(self.no_header),
            skip_rows: Some(self.skip_rows),
        }
    }
}

/// The CSV layout `reading` gives (the delimiter left to sniffing when it names none).
fn csv_format(reading: &Reading) -> table::CsvFormat {
    table::CsvFormat {
        delimiter: reading.delimiter.map(|c| c as u8),
        no_header: reading.no_header.unwrap_or(false),
        skip_rows: reading.skip_rows.unwrap_or(0),
    }
}

/// The delimiter of the CSV `path` under `reading`: the one it names, else sniffed from the
/// file (see `delimiter_in`). `None` for a file that is not a CSV or cannot be read
/// (reading it proper says what is wrong).
pub fn delimiter_of(path: &Path, reading: &Reading) -> Option<char> {
    if reading.delimiter.is_some() || extension(path).as_deref() != Some("csv") {
        return reading.delimiter;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(delimiter_in(path, &bytes, reading))
}

/// The delimiter of the CSV `path`, whose text is `bytes`: the one `reading` names, else
/// sniffed (see `table::sniff_delimiter`) with a note when that is not a comma.
fn delimiter_in(path: &Path, bytes: &[u8], reading: &Reading) -> char {
    if let Some(given) = reading.delimiter {
        return given;
    }
    let (_, _, sniffed) = table::csv_reader(bytes, &csv_format(reading));
    let sniffed = sniffed as char;
    if sniffed != ',' {
        let name = match sniffed {
            ';' => "semicolon".to_string(),
            '\t' => "tab".into(),
            ' ' => "space".into(),
            c => format!("'{c}'"),
        };
        crate::log::note(format_args!(
            "note: {} is read as {name}-separated (sniffed; {} chooses)",
            path.display(),
            crate::invalid::dashed("delimiter")
        ));
    }
    sniffed
}

/// Whether `path` names a vector file (by its extension) rather than an image folder: a
/// table (.csv, .npy) or a series (.wav, or a table read with `--window`).
pub fn is_vector_file(path: &Path) -> bool {
    matches!(extension(path).as_deref(), Some("csv" | "npy" | "npz" | "wav"))
}

fn extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// A table read from an array (.npy, .npz), whose columns are its positions: the run's
/// `columns`, when given, fix only the width.
fn same_width(
    table: Result<Table, table::TableError>,
    columns: Option<&[String]>,
    path: &Path,
) -> Result<Result<Table, table::TableError>> {
    match (table, columns) {
        (Ok(t), Some(want)) if t.columns.len() != want.len() => bail!(
            "{}: {} columns, but the run was trained on {}",
            path.display(),
            t.columns.len(),
            want.len()
        ),
        (table, _) => Ok(table),
    }
}

/// Reads `path` (.csv, .npy or .npz) with the columns and labels `spec` names (for a fresh
/// run, the flags' choices: `columns` empty means all), its text columns one-hot encoded
/// as `text` says (with a note naming those found, and one counting values a run did not
/// see). A table's rows are not in time order: `Missing::Interpolate` is refused (it is
/// for series, see `read_steps`).
pub fn read(
    path: &Path,
    (label_column, columns): (Option<&str>, Option<&[String]>),
    text: &TextColumns,
    labels: Option<&Path>,
    reading: &Reading,
) -> Result<Table> {
    if reading.missing() == Missing::Interpolate {
        let problem = "interpolate is for series ({window}), whose steps are in time order; \
                       the rows of a table with a missing value can be left out with {missing} drop";
        return Err(Invalid::of("missing", problem)).context(path.display().to_string());
    }
    let table = read_gaps(path, (label_column, columns), text, labels, reading)?;
    if *text == TextColumns::Found {
        for c in &table.categories {
            let shown: Vec<&str> = c.levels.iter().take(8).map(String::as_str).collect();
            crate::log::note(format_args!(
                "note: {}: text column '{}' is one-hot encoded as {} ({}{}); if it holds \
                 labels, pass {} {}",
                path.display(),
                c.column,
                crate::log::counted(c.levels.len(), "feature"),
                shown.join(", "),
                if c.levels.len() > 8 { ", …" } else { "" },
                crate::invalid::dashed("label_column"),
                crate::invalid::shell_word(&c.column)
            ));
        }
    }
    if let Some((n, column, value)) = &table.unseen {
        crate::log::note(format_args!(
            "note: {}: {} of text columns the run did not see (the first: '{value}' in '{column}'); \
             their one-hot features are all 0",
            path.display(),
            crate::log::counted(*n, "value"),
        ));
    }
    Ok(table)
}

/// `read`, where `Missing::Interpolate` keeps each missing value as NaN.
fn read_gaps(
    path: &Path,
    (label_column, columns): (Option<&str>, Option<&[String]>),
    text: &TextColumns,
    labels: Option<&Path>,
    reading: &Reading,
) -> Result<Table> {
    let missing = reading.missing();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let table = match extension(path).as_deref() {
        Some("csv") => {
            if labels.is_some() {
                let problem = "is for .npy data; a CSV names its label column with {label_column}";
                return Err(Invalid::of("labels", problem).into());
            }
            let delimiter = Some(delimiter_in(path, &bytes, reading));
            let format = csv_format(&Reading { delimiter, ..*reading });
            note_numeric_header(path, &bytes, &format);
            let opts = CsvOptions {
                label_column: label_column.map(str::to_string),
                columns: columns.map(<[String]>::to_vec),
                missing,
                format,
                text: text.clone(),
            };
            table::read_csv(&bytes, &opts)
        }
        Some("npy") => {
            if label_column.is_some() {
                let problem = "is for CSV files; a .npy holds only features (labels come from \
                               {labels} FILE.npy)";
                return Err(Invalid::of("label_column", problem))
                    .context(path.display().to_string());
            }
            let labels = match labels {
                None => None,
                Some(l) => {
                    let b = std::fs::read(l).with_context(|| format!("reading {}", l.display()))?;
                    Some(table::read_npy(&b).with_context(|| format!("reading {}", l.display()))?)
                }
            };
            let table = table::read_npy(&bytes).and_then(|d| table::npy_table(d, labels, missing));
            same_width(table, columns, path)?
        }
        Some("npz") => {
            if label_column.is_some() || labels.is_some() {
                let problem = "a .npz names its labels itself (an array y, or arr_1 beside \
                               arr_0), not with {label_column} or {labels}";
                return Err(Invalid::plain(problem)).context(path.display().to_string());
            }
            let table = table::read_npz(&bytes).and_then(|(x, y)| table::npy_table(x, y, missing));
            same_width(table, columns, path)?
        }
        _ => bail!("{}: expected a .csv, .npy or .npz file", path.display()),
    }
    .with_context(|| format!("reading {}", path.display()))?;
    Ok(table)
}

/// A note when the header line of the CSV `bytes` has a name that is a number (a first
/// line of data, or a preamble such as scikit-learn's `150,4,setosa,...`): it names the
/// options that read such files.
fn note_numeric_header(path: &Path, bytes: &[u8], format: &table::CsvFormat) {
    if format.no_header {
        return;
    }
    let Ok(names) = table::csv_header(bytes, format) else { return };
    let numbers: Vec<&String> = names.iter().filter(|n| n.parse::<f64>().is_ok()).collect();
    if let Some(first) = numbers.first() {
        let line = 1 + format.skip_rows;
        crate::log::note(format_args!(
            "note: {}: line {line}, read as the header, names columns with numbers ('{first}'{}): \
             if that line is data, pass {}; if it comes before the header, {} {line}",
            path.display(),
            if numbers.len() > 1 { ", …" } else { "" },
            crate::invalid::dashed("no_header"),
            crate::invalid::dashed("skip_rows"),
        ));
    }
}

/// Scales `table`'s rows with `spec` and codes its labels by `classes`.
pub fn vector_set(table: &Table, spec: &VectorSpec, classes: &[String]) -> Result<VectorSet> {
    if table.columns != spec.columns {
        bail!("the columns {:?} are not the run's {:?}", table.columns, spec.columns);
    }
    let mut values = table.values.clone();
    spec.scaling.apply(&mut values);
    let labels = table.labels.as_ref().map(|l| codes(l, classes)).transpose()?;
    Ok(VectorSet {
        values,
        shape: Features(table.width()),
        labels,
        ids: Some(table.ids.clone()),
        files: table.files.clone(),
    })
}

/// The (training, test) rows of a fresh run: `table` split by `source` (stratified by
/// label when there are labels) with `seed`, or `table` and the separate test file.
pub fn split_rows(table: &Table, test: Option<Table>, fraction: f64, seed: u64) -> (Table, Table) {
    if let Some(test) = test {
        return (table.clone(), test);
    }
    let (train, held) = match &table.labels {
        Some(labels) => {
            // Codes by first appearance are enough to stratify; the order does not matter.
            let mut seen: Vec<&String> = Vec::new();
            let coded: Vec<u8> = labels
                .iter()
                .map(|l| match seen.iter().position(|s| *s == l) {
                    Some(i) => i as u8,
                    None => {
                        seen.push(l);
                        (seen.len() - 1) as u8
                    }
                })
                .collect();
            split::stratified(&coded, fraction, seed)
        }
        None => split::train_val(table.rows(), fraction, seed),
    };
    (table.select(&train), table.select(&held))
}

/// Fits the run's scaling on the training rows.
pub fn fit_spec(train: &Table, label_column: Option<String>, kind: ScaleKind) -> VectorSpec {
    VectorSpec {
        columns: train.columns.clone(),
        label_column,
        classes: Vec::new(),
        scaling: Scaling::fit(kind, &train.values, train.width()),
        categories: train.categories.clone(),
    }
}

/// What a fresh run asks of a vector file (its flags).
#[derive(Clone, Copy, Debug)]
pub struct VectorRequest<'a> {
    pub label_column: Option<&'a str>,
    /// `None`: every column but the label's.
    pub columns: Option<&'a [String]>,
    /// `--ignore-columns`: columns left out of the features.
    pub ignore_columns: Option<&'a [String]>,
    pub scale: ScaleKind,
    /// `--classes`: the names of the classes to train on.
    pub classes: Option<&'a [String]>,
    /// `--window` and friends: the file is a series cut into windows (channel names and
    /// sample rate are filled in from the file).
    pub series: Option<&'a SeriesSpec>,
}

/// A vector run's rows: training, validation and test, scaled by `spec`.
#[derive(Debug)]
pub struct VectorSets {
    pub spec: VectorSpec,
    /// For windows of series: how they were cut (the channel names and sample rate filled
    /// in from the files).
    pub series: Option<SeriesSpec>,
    pub train: Rows,
    pub val: Rows,
    pub test: Rows,
    /// Rows dropped for missing values (`--missing drop`), test file included.
    pub dropped: usize,
    /// `--classes` as codes into `spec.classes`.
    pub classes: Option<Vec<u8>>,
    /// A folder of series: the files held out whole for testing (`VectorSource::held_out`).
    pub held_out: Vec<String>,
}

impl VectorSets {
    /// The training and validation rows together (the non-test part of the data, after
    /// `--classes` and `--limit`).
    pub fn training_rows(&self) -> Rows {
        self.train.concat(&self.val)
    }

    /// The run's description of its input: vectors, or windows of series.
    pub fn input(&self) -> DataSpec {
        DataSpec::vectors(self.spec.clone(), self.series.clone())
    }
}

/// A fresh run's sets: reads `path` (and the test file), holds out the test rows, keeps
/// `--classes` and `--limit`, fits the scaling on what is left and splits off validation.
pub fn prepare(
    path: &Path,
    source: &VectorSource,
    req: &VectorRequest,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    let first = series_files(path)?.remove(0);
    if extension(&first).as_deref() == Some("npy") && req.columns.is_some() {
        let problem = "is for CSV files; a .npy is used whole (slice it in NumPy)";
        return Err(Invalid::of("columns", problem)).context(path.display().to_string());
    }
    let label_column = label_column_of(&first, req, &source.reading(None));
    if let Some(series) = req.series.filter(|s| s.spectral.is_none()) {
        if req.ignore_columns.is_some_and(|c| !c.is_empty()) {
            let problem = "is for tables; a series takes its value columns from {columns}";
            return Err(Invalid::of("ignore_columns", problem).into());
        }
        return window_sets::prepare_windows(path, source, (label_column, req), series, cfg);
    }
    let label = label_column.as_deref();
    let ignored = req.ignore_columns.unwrap_or(&[]);
    let columns = Columns { chosen: req.columns, ignored, text: &TextColumns::Found };
    let Parts { train, test, dropped, series, held_out } =
        split_tables(path, source, label, columns, cfg.seed, req.series)?;
    if train.width() == 1 && series.is_none() {
        crate::log::note(format_args!(
            "note: {} has one feature column ('{}'): a code of k = 1 can hold it whole, so \
             reconstruction errors measure only what the network fails to copy",
            path.display(),
            train.columns[0]
        ));
    }
    let classes = class_list(&[&train, &test])?;
    let codes = req.classes.map(|names| class_codes(names, &classes, "classes")).transpose()?;
    if codes.is_some() && train.labels.is_none() {
        let problem = "needs labels: name the label column with {label_column} (CSV) or pass \
                       {labels} (.npy)";
        return Err(Invalid::of("classes", problem).into());
    }
    let kept = keep(&train, codes.as_deref(), &classes, cfg.limit)?;
    let mut spec = fit_spec(&kept, label_column, req.scale);
    spec.classes = classes;
    let sets = finish(&kept, &test, spec, series.as_ref(), codes, dropped, cfg)?;
    Ok(VectorSets { held_out, series, ..sets })
}

/// The same sets for a trained run, from its recorded source, spec (and windowing, for a
/// series run) and settings.
pub fn rebuild(
    path: &Path,
    source: &VectorSource,
    spec: &VectorSpec,
    series: Option<&SeriesSpec>,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    if let Some(series) = series.filter(|s| s.spectral.is_none()) {
        return window_sets::rebuild_windows(path, source, spec, series, cfg);
    }
    let columns = match series {
        Some(series) => series.channels.clone(),
        None => spec.file_columns(),
    };
    let label_column = spec.label_column.as_deref();
    let text = TextColumns::Given(spec.categories.clone());
    let columns = Columns { chosen: Some(&columns), ignored: &[], text: &text };
    let Parts { train, test, dropped, .. } =
        split_tables(path, source, label_column, columns, cfg.seed, series)?;
    let kept = keep(&train, cfg.classes.as_deref(), &spec.classes, cfg.limit)?;
    let sets = finish(&kept, &test, spec.clone(), series, cfg.classes.clone(), dropped, cfg)?;
    Ok(VectorSets { series: series.cloned(), ..sets })
}

/// Every row of another file, read the way the run reads its own (same columns and
/// scaling, and windowing for a series run): for `eval --data` and friends. The run's label
/// column is read when the file has it; new data to score need not carry labels.
/// `reading` is the run's recorded reading with the command's flags over it.
pub fn load_all(
    path: &Path,
    spec: &VectorSpec,
    series: Option<&SeriesSpec>,
    reading: Reading,
) -> Result<Rows> {
    let label_column = label_in(path, spec, &reading);
    if let Some(series) = series.filter(|s| s.spectral.is_none()) {
        return window_sets::load_windows(path, (spec, series), label_column, reading);
    }
    let table = match series {
        Some(series) => {
            let channels = Some(&series.channels[..]);
            let (stretches, _) = read_series(
                path,
                label_column,
                channels,
                (reading, series.sample_rate, series.window),
            )?;
            windows_of(&stretches, series.windowing(), false)?
        }
        None => {
            if reading.wav_channel.is_some() {
                let problem = "is for WAV series; this run was trained on a table";
                return Err(Invalid::of("wav_channel", problem).into());
            }
            let columns = spec.file_columns();
            let text = TextColumns::Given(spec.categories.clone());
            read(path, (label_column, Some(&columns)), &text, None, &reading)?
        }
    };
    if table.dropped > 0 {
        crate::log::note(format_args!(
            "note: {} left out of {} for missing values",
            crate::log::counted(table.dropped, "row"),
            path.display()
        ));
    }
    let set = vector_set(&table, spec, &spec.classes);
    set.map(Rows::Vectors).with_context(|| format!("reading {}", path.display()))
}

/// The run's label column, when the file (or folder of series) `path` has it: another file
/// read the way the run reads its own — new data to score — need not carry labels.
pub fn label_in<'a>(path: &Path, spec: &'a VectorSpec, reading: &Reading) -> Option<&'a str> {
    spec.label_column.as_deref().filter(|&name| has_column(path, name, reading))
}

/// Whether the CSV file `path` (or any CSV file of the folder of series `path`) names the
/// column `name` in its header. A file that is not a CSV, or cannot be read, says yes, so
/// that reading it proper reports what is wrong with it.
fn has_column(path: &Path, name: &str, reading: &Reading) -> bool {
    let header_has = |file: &Path| {
        if extension(file).as_deref() != Some("csv") {
            return true;
        }
        let Ok(bytes) = std::fs::read(file) else { return true };
        let format = csv_format(reading);
        match table::csv_header(&bytes, &format) {
            Ok(header) => header.iter().any(|h| h == name),
            Err(_) => true,
        }
    };
    match series_files(path) {
        Ok(files) => files.iter().any(|f| header_has(f)),
        Err(_) => true,
    }
}

/// Names that mark a column of labels when `--label-column` is not given (any case).
const LABEL_NAMES: [&str; 7] =
    ["label", "class", "target", "y", "is_anomaly", "anomaly", "outlier"];

/// The label column of a new run on the file `first`: the one `req` names (`none`: no
/// labels), else, when no columns are chosen, the one `label_column_in` finds.
fn label_column_of(first: &Path, req: &VectorRequest, reading: &Reading) -> Option<String> {
    match req.columns {
        Some(_) if req.label_column.is_none() => None,
        _ => label_column_in(first, req.label_column, reading),
    }
}

/// The label column of the table `first`: `given` (`none`: no labels), else the CSV's
/// column named as labels are (`LABEL_NAMES`, the earlier name first: `class` beside a
/// feature `y`), with a note.
pub fn label_column_in(first: &Path, given: Option<&str>, reading: &Reading) -> Option<String> {
    match given {
        Some(name) if name.eq_ignore_ascii_case("none") => return None,
        Some(name) => return Some(name.to_string()),
        None if extension(first).as_deref() != Some("csv") => return None,
        None => {}
    }
    let bytes = std::fs::read(first).ok()?;
    let header = table::csv_header(&bytes, &csv_format(reading)).ok()?;
    let name =
        LABEL_NAMES.iter().find_map(|&l| header.iter().find(|h| h.to_lowercase() == l))?.clone();
    crate::log::note(format_args!(
        "note: column '{name}' of {} is taken as the labels, not a feature ({} none reads it \
         as a feature)",
        first.display(),
        crate::invalid::dashed("label_column")
    ));
    Some(name)
}

/// The feature columns asked for: `chosen` (`None`: every column but the label's), less
/// those `ignored` and, when none are chosen, an identifier column (see `without_ids`).
#[derive(Clone, Copy)]
struct Columns<'a> {
    chosen: Option<&'a [String]>,
    ignored: &'a [String],
    /// Text columns: found (a fresh run) or the run's.
    text: &'a TextColumns,
}

/// `table` without the columns `ignored` (each must be one of its columns) and, when the
/// columns were not chosen, without a column named id or index (any case) whose values are
/// distinct integers, with a note: a row number is no feature.
fn without_ids(table: Table, columns: Columns, path: &Path) -> Result<Table> {
    check_ignored(&table.columns, columns.ignored, path)?;
    let n = table.rows();
    let is_id = |j: usize| {
        let mut seen: Vec<f32> = (0..n).map(|r| table.values[r * table.width() + j]).collect();
        seen.sort_by(f32::total_cmp);
        let integers = seen.iter().all(|v| v.fract() == 0.0);
        integers && seen.windows(2).all(|w| w[0] != w[1])
    };
    let mut drop: Vec<usize> =
        (0..table.width()).filter(|&j| columns.ignored.contains(&table.columns[j])).collect();
    if columns.chosen.is_none() {
        for j in 0..table.width() {
            let name = table.columns[j].to_lowercase();
            if (name == "id" || name == "index") && !drop.contains(&j) && is_id(j) {
                crate::log::note(format_args!(
                    "note: column '{}' of {} is left out: distinct integers, a row identifier \
                     ({} chooses the columns)",
                    table.columns[j],
                    path.display(),
                    crate::invalid::dashed("columns")
                ));
                drop.push(j);
            }
        }
    }
    if drop.len() == table.width() {
        let problem = "leaves no feature column";
        return Err(Invalid::of("ignore_columns", problem)).context(path.display().to_string());
    }
    Ok(table.without_columns(&drop))
}

/// Refuses a name in `ignored` that is none of the `known` columns.
fn check_ignored(known: &[String], ignored: &[String], path: &Path) -> Result<()> {
    match ignored.iter().find(|name| !known.contains(name)) {
        Some(name) => {
            let known: Vec<String> = known.iter().map(|c| format!("'{c}'")).collect();
            let problem = format!("no column named '{name}'; the columns are {}", known.join(", "));
            Err(Invalid::of("ignore_columns", problem)).context(path.display().to_string())
        }
        None => Ok(()),
    }
}

/// The feature columns of the CSV `path` when `ignored` are left out: every column of its
/// header but the label's and those (read so, a text column left out is never parsed).
fn features_without(
    path: &Path,
    reading: &Reading,
    label_column: Option<&str>,
    ignored: &[String],
) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let delimiter = Some(delimiter_in(path, &bytes, reading));
    let format = csv_format(&Reading { delimiter, ..*reading });
    let header = table::csv_header(&bytes, &format)
        .with_context(|| format!("reading {}", path.display()))?;
    check_ignored(&header, ignored, path)?;
    Ok(header
        .into_iter()
        .filter(|h| Some(h.as_str()) != label_column && !ignored.contains(h))
        .collect())
}

/// What `split_tables` gives: the training and test rows, how many rows were dropped,
/// and for a series the spec filled in and the files held out.
struct Parts {
    train: Table,
    test: Table,
    dropped: usize,
    series: Option<SeriesSpec>,
    held_out: Vec<String>,
}

/// The training part and test part of the data, and how many rows were dropped. For a
/// series (`series` set), the parts are windows of the training and test series (see
/// `series_parts`), and the spec (with the channel names and sample rate filled in) comes
/// back with the files held out whole.
fn split_tables(
    path: &Path,
    source: &VectorSource,
    label_column: Option<&str>,
    columns: Columns,
    seed: u64,
    series: Option<&SeriesSpec>,
) -> Result<Parts> {
    if let Some(series) = series {
        if !columns.ignored.is_empty() {
            let problem = "is for tables; a series takes its value columns from {columns}";
            return Err(Invalid::of("ignore_columns", problem).into());
        }
        return split_series(path, source, label_column, columns.chosen, series, seed);
    }
    let labels = source.labels.as_deref();
    let reading = source.reading(None);
    let csv = extension(path).as_deref() == Some("csv");
    let table = if csv && columns.chosen.is_none() && !columns.ignored.is_empty() {
        let kept = features_without(path, &reading, label_column, columns.ignored)?;
        let table = read(path, (label_column, Some(&kept)), columns.text, labels, &reading)?;
        without_ids(table, Columns { ignored: &[], ..columns }, path)?
    } else {
        let table = read(path, (label_column, columns.chosen), columns.text, labels, &reading)?;
        without_ids(table, columns, path)?
    };
    let test = match &source.test {
        Some(t) => {
            let test_labels = source.test_labels.as_deref();
            if labels.is_some() && test_labels.is_none() {
                let problem = "with .npy data and {labels} needs the test file's labels too: \
                               pass {test_labels} FILE.npy (or split one file with \
                               {test_fraction})";
                return Err(Invalid::of("test", problem).into());
            }
            if test_labels.is_some() && extension(t).as_deref() != Some("npy") {
                let problem = "is for a .npy {test} file; a CSV names its label column, and a \
                               .npz holds its labels";
                return Err(Invalid::of("test_labels", problem).into());
            }
            let reading = Reading { delimiter: None, ..reading };
            let (columns, text) =
                (table.file_columns(), TextColumns::Given(table.categories.clone()));
            Some(read(t, (label_column, Some(&columns)), &text, test_labels, &reading)?)
        }
        None => None,
    };
    let dropped = table.dropped + test.as_ref().map_or(0, |t| t.dropped);
    if source.test.is_none() && table.rows() < 2 {
        bail!(
            "{} has {}; at least 2 are needed to hold out a test set",
            path.display(),
            crate::log::counted(table.rows(), "row")
        );
    }
    let (train, test) = split_rows(&table, test, source.test_fraction, seed);
    Ok(Parts { train, test, dropped, series: None, held_out: Vec::new() })
}

/// The training rows of the classes `codes` (all without), cut to the first `limit`.
fn keep(
    train: &Table,
    codes: Option<&[u8]>,
    classes: &[String],
    limit: Option<usize>,
) -> Result<Table> {
    let mut rows: Vec<usize> = (0..train.rows()).collect();
    if let (Some(codes), Some(labels)) = (codes, &train.labels) {
        let coded = self::codes(labels, classes)?;
        rows.retain(|&i| codes.contains(&coded[i]));
    }
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    Ok(train.select(&rows))
}

fn finish(
    kept: &Table,
    test: &Table,
    spec: VectorSpec,
    series: Option<&SeriesSpec>,
    classes: Option<Vec<u8>>,
    dropped: usize,
    cfg: &TrainConfig,
) -> Result<VectorSets> {
    let all = vector_set(kept, &spec, &spec.classes)?;
    let (train, val) = match series {
        // Windows overlap: validation is the last share in time, not a shuffled draw.
        Some(_) => {
            let cut = all.len() - split::val_count(all.len(), cfg.val_fraction);
            ((0..cut).collect(), (cut..all.len()).collect())
        }
        None => split::train_val(all.len(), cfg.val_fraction, cfg.seed),
    };
    if train.len() < 2 {
        let problem = format!(
            "{} left after the test split, {{classes}}, {{limit}} and {{val_fraction}}; at \
             least 2 are needed",
            crate::log::counted(train.len(), "training row")
        );
        return Err(Invalid::plain(problem).into());
    }
    let test = vector_set(test, &spec, &spec.classes)?;
    Ok(VectorSets {
        train: Rows::Vectors(all.select(&train)),
        val: Rows::Vectors(all.select(&val)),
        test: Rows::Vectors(test),
        spec,
        series: None,
        dropped,
        classes,
        held_out: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(values: Vec<f32>, labels: Option<Vec<&str>>) -> Table {
        let columns = vec!["a".to_string(), "b".to_string()];
        let labels = labels.map(|l| l.into_iter().map(str::to_string).collect());
        let ids = (0..values.len() / 2).collect();
        Table {
            values,
            columns,
            labels,
            ids,
            dropped: 0,
            files: None,
            categories: vec![],
            unseen: None,
        }
    }

    #[test]
    fn classes_sort_numerically_and_code_labels() {
        let t = table(vec![0.0; 8], Some(vec!["10", "9", "10", "2"]));
        let classes = class_list(&[&t]).unwrap();
        assert_eq!(classes, ["2", "9", "10"]);
        assert_eq!(codes(t.labels.as_ref().unwrap(), &classes).unwrap(), [2, 1, 2, 0]);
        let words = table(vec![0.0; 4], Some(vec!["b", "a"]));
        assert_eq!(class_list(&[&words]).unwrap(), ["a", "b"]);
        let e = codes(&["c".to_string()], &classes).unwrap_err().to_string();
        assert!(e.contains("label 'c' is not one of the run's classes"), "{e}");
        let ids: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        let many = Table { labels: Some(ids), ..table(vec![0.0; 600], None) };
        assert!(class_list(&[&many]).unwrap_err().to_string().contains("300 distinct"));
        // A run that recorded labels as written ("0.0") reads the normalised "0"; an exact
        // match comes first (an older run with both "0" and "0.0").
        let old: Vec<String> = vec!["0.0".into(), "1.0".into()];
        assert_eq!(codes(&["1".into(), "0".into()], &old).unwrap(), [1, 0]);
        assert_eq!(class_codes(&["0".into()], &old, "normal_classes").unwrap(), [0]);
        let both: Vec<String> = vec!["0".into(), "0.0".into(), "1".into()];
        assert_eq!(class_codes(&["0.0".into(), "0".into()], &both, "classes").unwrap(), [1, 0]);
    }

    /// A run recorded before delimiters were (no `delimiter` in its data record) reads its
    /// own file with commas, never sniffed; a recorded one is kept; other files are
    /// sniffed unless a command names one.
    #[test]
    fn a_run_reads_its_own_file_with_the_recorded_delimiter() {
        let old: VectorSource = serde_json::from_str(r#"{"test_fraction": 0.3}"#).unwrap();
        assert_eq!(
            (old.reading(None).delimiter, old.reading(None).skip_rows),
            (Some(','), Some(0))
        );
        let semi = VectorSource { delimiter: Some(';'), ..old };
        assert_eq!(semi.reading(None).delimiter, Some(';'));
        let text = serde_json::to_value(&semi).unwrap();
        assert_eq!((&text["delimiter"], text.get("no_header")), (&serde_json::json!(";"), None));
    }

    #[test]
    fn split_scale_and_select_rows() {
        let values: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let labels = vec!["n", "n", "n", "n", "n", "n", "n", "x", "x", "x"];
        let t = table(values, Some(labels));
        let (train, test) = split_rows(&t, None, 0.3, 1);
        assert_eq!((train.rows(), test.rows()), (7, 3));
        let anomalies = |t: &Table| t.labels.as_ref().unwrap().iter().filter(|l| *l == "x").count();
        assert_eq!((anomalies(&train), anomalies(&test)), (2, 1));
        let spec = fit_spec(&train, Some("class".into()), ScaleKind::Standard);
        let classes = class_list(&[&train, &test]).unwrap();
        let set = vector_set(&train, &spec, &classes).unwrap();
        let mean: f32 = set.values.iter().step_by(2).sum::<f32>() / 7.0;
        assert!(mean.abs() < 1e-6, "training columns are centred: {mean}");
        assert_eq!(set.to_device(tch::Device::Cpu).size(), [7, 2]);
        assert_eq!(set.take(2).values, set.values[..4]);
        assert_eq!(set.select(&[1]).labels, Some(vec![set.labels.as_ref().unwrap()[1]]));
        let other = Table { columns: vec!["a".into(), "c".into()], ..train.clone() };
        assert!(vector_set(&other, &spec, &classes).is_err());
    }
}
