//! Numeric vectors from files: a CSV with a header row, or a 2-D `.npy` array (with an
//! optional 1-D `.npy` of labels), read into a `Table` of f32 rows. Every cell and every
//! size is checked before it is trusted; errors name the row and column (the caller adds
//! the file). This file owns the `Table`, the errors and the label text; `csv_reader`
//! and `npy` read the two formats.

mod csv_reader;
mod npy;

pub use super::spec::{Category, Missing, MAX_LEVELS};
pub use csv_reader::{csv_header, csv_reader, read_csv, sniff_delimiter, CsvFormat, Lines};
pub use npy::{npy_table, read_npy, read_npz, NpyArray};
use std::path::Path;
use std::sync::Arc;

/// Rows of numeric features with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// `rows × columns.len()` values, row-major.
    pub values: Vec<f32>,
    /// The feature names, in order (for `.npy` data: `x0`, `x1`, ...).
    pub columns: Vec<String>,
    /// One label per row, as written in the file (integers as decimal text, "1.0" as "1").
    pub labels: Option<Vec<String>>,
    /// Each row's place among the data rows of its file, from 0 (the header is not a
    /// data row; dropped rows keep their numbers), so results can be joined back.
    pub ids: Vec<usize>,
    /// Rows left out because a value was missing (`Missing::Drop`).
    pub dropped: usize,
    /// Each row's file, for rows gathered from several (the windows of a folder of
    /// series); `None` for rows of one file.
    pub files: Option<Vec<Arc<Path>>>,
    /// The text columns one-hot encoded among `columns` (see `Category`).
    pub categories: Vec<Category>,
    /// Values of those columns that are none of their levels (each row's features for it
    /// are all 0): how many, and the first's column and text.
    pub unseen: Option<(usize, String, String)>,
}

impl Table {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.columns.len().max(1)
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        let d = self.width();
        let mut values = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            values.extend_from_slice(&self.values[i * d..(i + 1) * d]);
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i].clone()).collect());
        let ids = indices.iter().map(|&i| self.ids[i]).collect();
        let files = self.files.as_ref().map(|f| indices.iter().map(|&i| f[i].clone()).collect());
        let (columns, categories) = (self.columns.clone(), self.categories.clone());
        Table { values, columns, labels, ids, dropped: 0, files, categories, unseen: None }
    }

    /// The file columns the features come from (a one-hot group is its text column).
    pub fn file_columns(&self) -> Vec<String> {
        let groups = super::spec::feature_groups(&self.columns, &self.categories);
        groups.into_iter().map(|g| g.name).collect()
    }
}

impl Table {
    /// The table without the columns at `drop`.
    pub fn without_columns(&self, drop: &[usize]) -> Table {
        let d = self.width();
        let keep: Vec<usize> = (0..d).filter(|j| !drop.contains(j)).collect();
        let values =
            self.values.chunks(d.max(1)).flat_map(|row| keep.iter().map(|&j| row[j])).collect();
        let columns: Vec<String> = keep.iter().map(|&j| self.columns[j].clone()).collect();
        let categories = (self.categories.iter())
            .filter(|c| c.features().all(|f| columns.contains(&f)))
            .cloned()
            .collect();
        Table { values, columns, categories, ..self.clone() }
    }
}

/// How a CSV is to be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// The column holding each row's label (any text); it is not a feature.
    pub label_column: Option<String>,
    /// The feature columns, in this order; `None`: every column but the label's.
    pub columns: Option<Vec<String>>,
    pub missing: Missing,
    pub format: CsvFormat,
    pub text: TextColumns,
}

/// What a feature column holding text becomes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TextColumns {
    /// Nothing: every feature is a number, and text is an error naming the cell.
    #[default]
    Refused,
    /// A fresh run's: each feature column with text is one-hot encoded, its levels the
    /// distinct values (at most `MAX_LEVELS`, else an error naming the column).
    Found,
    /// A trained run's: these columns with these levels.
    Given(Vec<Category>),
}

/// Why a file could not be read as a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the file is empty: expected a header row naming the columns")]
    Empty,
    #[error("the file has a header row but no data rows")]
    NoRows,
    #[error("line {line}: {source}")]
    Csv { line: u64, source: csv::Error },
    #[error("line {line}: not valid UTF-8 text")]
    NotUtf8 { line: u64 },
    #[error("the header names column '{0}' twice")]
    DuplicateColumn(String),
    #[error("the header has an empty column name (column {0})")]
    EmptyColumnName(usize),
    /// `setting` (the id of the flag that names columns) names a column the file lacks.
    #[error("{}", self.words(&crate::invalid::dashed))]
    UnknownColumn { setting: &'static str, name: String, known: Vec<String> },
    #[error("{}", self.words(&crate::invalid::dashed))]
    LabelAsFeature(String),
    #[error("no feature columns: the only column is the label column '{0}'")]
    NoFeatures(String),
    /// `first`: the first data row, where a header that is not one shows.
    #[error("{}", self.words(&crate::invalid::dashed))]
    Ragged { line: u64, found: usize, expected: usize, first: bool },
    /// `hint` may name a setting as `{id}` (see `words`).
    #[error("{}", self.words(&crate::invalid::dashed))]
    BadCell { line: u64, column: String, text: String, what: &'static str, hint: String },
    #[error("{}", self.words(&crate::invalid::dashed))]
    MissingValues { cells: usize, rows: usize, at: String },
    #[error("{}", self.words(&crate::invalid::dashed))]
    AllDropped,
    /// A text column with more distinct values than can be one-hot encoded, or (`distinct`:
    /// how many) whose values all differ.
    #[error("{}", self.words(&crate::invalid::dashed))]
    TooManyLevels { column: String, line: u64, text: String, distinct: Option<usize> },
    #[error("not a .npy file: it does not start with the bytes \\x93NUMPY")]
    NotNpy,
    #[error(".npy: unsupported format version {0}.{1}")]
    NpyVersion(u8, u8),
    #[error(".npy: the file ends inside its header")]
    NpyTruncatedHeader,
    #[error(".npy: cannot read the header: {0}")]
    NpyHeader(String),
    #[error(
        ".npy: element type '{0}' is not supported; save a numeric array \
         (float32/float64 or an integer type)"
    )]
    NpyType(String),
    #[error(".npy: expected a {expected} array, the file holds shape {found:?}")]
    NpyRank { expected: &'static str, found: Vec<u64> },
    #[error(
        ".npy: shape {shape:?} declares {bytes} bytes of data, more than the {limit}-byte limit"
    )]
    NpyTooLarge { shape: Vec<u64>, bytes: u128, limit: u64 },
    #[error(".npy: shape {shape:?} needs {expected} bytes of data, the file holds {found}")]
    NpyLength { shape: Vec<u64>, expected: u64, found: u64 },
    #[error(".npy: row {row}, column {column}: {value} is not a finite float32 value")]
    NpyNotFinite { row: usize, column: usize, value: f64 },
    #[error(".npy: labels must be integers, element {index} is {value}")]
    NpyLabel { index: usize, value: f64 },
}

impl TableError {
    /// The message, each setting it names (which column flag, `--missing`) worded by
    /// `name`: the command's flags when a command prints it.
    pub fn words(&self, name: &dyn Fn(&str) -> String) -> String {
        match self {
            TableError::UnknownColumn { setting, name: column, known } => {
                format!(
                    "{}: no column named '{column}'; the columns are {}",
                    name(setting),
                    list(known)
                )
            }
            TableError::LabelAsFeature(column) => {
                format!("{} names '{column}', which is the label column", name("columns"))
            }
            TableError::BadCell { line, column, text, what, hint } => {
                let hint = crate::invalid::name_settings(hint, name);
                format!("line {line}, column '{column}': '{text}' is not {what}{hint}")
            }
            TableError::MissingValues { cells, rows, at } => format!(
                "{} in {}, the first at {at}; pass {} drop to leave those rows out",
                crate::log::counted(*cells, "missing value"),
                crate::log::counted(*rows, "row"),
                name("missing")
            ),
            TableError::Ragged { line, found, expected, first } => {
                let hint = if *first {
                    format!(
                        "; if the line above it is not the header, pass {} 1 (and {} if the \
                         file has no header)",
                        name("skip_rows"),
                        name("no_header")
                    )
                } else {
                    String::new()
                };
                format!("line {line}: {found} fields, the header has {expected}{hint}")
            }
            TableError::TooManyLevels { column, line, text, distinct } => format!(
                "column '{column}' holds text (line {line}: '{text}') {}: an identifier or free \
                 text, not a category to one-hot encode; pass {} {} to leave it out",
                match distinct {
                    Some(n) => format!("whose {n} values all differ"),
                    None => format!("with more than {MAX_LEVELS} distinct values"),
                },
                name("ignore_columns"),
                crate::invalid::shell_word(column)
            ),
            TableError::AllDropped => format!(
                "every row has a missing value: nothing is left after {} drop",
                name("missing")
            ),
            other => other.to_string(),
        }
    }
}

/// Column names quoted, for messages: the first 12, then how many there are in all.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{n}'")).collect();
    if names.len() > SHOWN {
        out.push(format!("... ({} in all)", names.len()));
    }
    out.join(", ")
}

/// A label cell as the table keeps it, and the key labels are matched by: a whole number
/// written in another number's form ("0.0", "1e0", "+1", "250.00") as the plain integer
/// ("0", "1", "1", "250"), so files that write the same class differently (a training
/// file of 0.0 beside a test file of 0) agree; any other text, leading zeros included
/// ("007"), as written.
pub fn label_text(cell: &str) -> String {
    let plain = cell.strip_prefix('-').unwrap_or(cell);
    let integer = !plain.is_empty() && plain.bytes().all(|b| b.is_ascii_digit());
    match cell.parse::<f64>() {
        Ok(v) if !integer && v.fract() == 0.0 && v.abs() < 9.0e15 => format!("{}", v as i64),
        _ => cell.to_string(),
    }
}
