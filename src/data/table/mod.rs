//! Numeric vectors from files: a CSV with a header row, or a 2-D `.npy` array (with an
//! optional 1-D `.npy` of labels), read into a `Table` of f32 rows. Every cell and every
//! size is checked before it is trusted; errors name the row and column (the caller adds
//! the file).

use super::idx::MAX_PAYLOAD_BYTES;
pub use crate::config::Missing;
use std::collections::HashMap;
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
}

impl Table {
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
        Table { values, columns: self.columns.clone(), labels, ids, dropped: 0, files }
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
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
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
    #[error("{flag}: no column named '{name}'; the columns are {}", list(.known))]
    UnknownColumn { flag: &'static str, name: String, known: Vec<String> },
    #[error("--columns names '{0}', which is the label column")]
    LabelAsFeature(String),
    #[error("no feature columns: the only column is the label column '{0}'")]
    NoFeatures(String),
    #[error("line {line}: {found} fields, the header has {expected}")]
    Ragged { line: u64, found: usize, expected: usize },
    #[error("line {line}, column '{column}': '{text}' is not {what}{hint}")]
    BadCell { line: u64, column: String, text: String, what: &'static str, hint: String },
    #[error(
        "{} in {}, the first at line {line}, column '{column}'; pass --missing drop to \
         leave those rows out",
        counted(*.cells, "missing value"),
        counted(*.rows, "row")
    )]
    MissingValues { cells: usize, rows: usize, line: u64, column: String },
    #[error("every row has a missing value: nothing is left after --missing drop")]
    AllDropped,
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

/// "1 row", "3 rows": a count with its noun, for messages.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{n}'")).collect();
    if names.len() > SHOWN {
        out.push(format!("... ({} in all)", names.len()));
    }
    out.join(", ")
}

/// Texts that mean "no value" in the CSVs people export (R's NA, pandas' NaN, empty).
fn is_missing(text: &str) -> bool {
    text.is_empty()
        || ["na", "nan", "n/a", "null", "none", "?"].iter().any(|m| text.eq_ignore_ascii_case(m))
}

/// A cell as a finite f32; `Err` says what it is not.
fn number(text: &str) -> Result<f32, &'static str> {
    match text.parse::<f64>() {
        Err(_) => Err("a number"),
        Ok(v) if !v.is_finite() => Err("a finite number"),
        Ok(v) if v.abs() > f32::MAX as f64 => Err("within float32 range"),
        Ok(v) => Ok(v as f32),
    }
}

/// Reads a CSV whose first row names the columns.
pub fn read_csv(bytes: &[u8], opts: &CsvOptions) -> Result<Table, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader.byte_headers().map_err(|e| csv_error(e, 1))?.clone();
    if header.is_empty() {
        return Err(TableError::Empty);
    }
    let names = header
        .iter()
        .map(|f| std::str::from_utf8(f).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TableError::NotUtf8 { line: 1 })?;
    let mut index = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() && names.len() > 1 {
            return Err(TableError::EmptyColumnName(i + 1));
        }
        if index.insert(name.as_str(), i).is_some() {
            return Err(TableError::DuplicateColumn(name.clone()));
        }
    }
    let find = |flag, name: &str| {
        index.get(name).copied().ok_or_else(|| TableError::UnknownColumn {
            flag,
            name: name.to_string(),
            known: names.clone(),
        })
    };
    let label = opts.label_column.as_deref().map(|n| find("--label-column", n)).transpose()?;
    let features: Vec<usize> = match &opts.columns {
        Some(wanted) => wanted
            .iter()
            .map(|n| match find("--columns", n)? {
                i if Some(i) == label => Err(TableError::LabelAsFeature(n.clone())),
                i => Ok(i),
            })
            .collect::<Result<_, _>>()?,
        None => (0..names.len()).filter(|&i| Some(i) != label).collect(),
    };
    if features.is_empty() {
        return Err(TableError::NoFeatures(names[label.unwrap_or(0)].clone()));
    }

    let mut values = Vec::new();
    let mut labels = label.map(|_| Vec::new());
    let mut ids = Vec::new();
    let mut data_row = 0;
    let (mut missing_cells, mut missing_rows, mut first_missing) = (0, 0, None);
    let mut row_values = Vec::with_capacity(features.len());
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        data_row += 1;
        if record.len() != names.len() {
            // A blank line in the middle is one empty field; csv skips blank lines itself.
            return Err(TableError::Ragged { line, found: record.len(), expected: names.len() });
        }
        let text =
            |i: usize| std::str::from_utf8(&record[i]).map_err(|_| TableError::NotUtf8 { line });
        row_values.clear();
        let mut missing_here = 0;
        for &i in &features {
            let t = text(i)?;
            if is_missing(t) {
                missing_here += 1;
                first_missing.get_or_insert((line, names[i].clone()));
                continue;
            }
            let v = number(t).map_err(|what| {
                // Text in the first row of an unchosen column is most often a label.
                let labels_here = data_row == 1 && label.is_none() && opts.columns.is_none();
                let hint = if labels_here && what == "a number" {
                    format!("; if '{}' holds labels, pass --label-column {0}", names[i])
                } else {
                    String::new()
                };
                TableError::BadCell {
                    line,
                    column: names[i].clone(),
                    text: t.to_string(),
                    what,
                    hint,
                }
            })?;
            row_values.push(v);
        }
        let row_label = match label {
            Some(i) => {
                let t = text(i)?;
                if t.is_empty() {
                    missing_here += 1;
                    first_missing.get_or_insert((line, names[i].clone()));
                }
                Some(label_text(t))
            }
            None => None,
        };
        if missing_here > 0 {
            missing_cells += missing_here;
            missing_rows += 1;
            continue;
        }
        values.extend_from_slice(&row_values);
        ids.push(data_row - 1);
        if let (Some(labels), Some(l)) = (labels.as_mut(), row_label) {
            labels.push(l);
        }
    }
    if values.is_empty() && missing_rows == 0 {
        return Err(TableError::NoRows);
    }
    if let Some((line, column)) = first_missing {
        match opts.missing {
            Missing::Refuse => {
                return Err(TableError::MissingValues {
                    cells: missing_cells,
                    rows: missing_rows,
                    line,
                    column,
                })
            }
            Missing::Drop if values.is_empty() => return Err(TableError::AllDropped),
            Missing::Drop => {}
        }
    }
    let columns = features.iter().map(|&i| names[i].clone()).collect();
    Ok(Table { values, columns, labels, ids, dropped: missing_rows, files: None })
}

fn csv_error(e: csv::Error, line: u64) -> TableError {
    let line = e.position().map_or(line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => TableError::NotUtf8 { line },
        _ => TableError::Csv { line, source: e },
    }
}

/// A `.npy` array of numbers: its shape and its values in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<u64>,
    pub values: Vec<f64>,
}

/// The element types read: (descr without byte order, bytes per element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    F16,
    Int(u8),
    Uint(u8),
    Bool,
}

impl Elem {
    fn parse(descr: &str) -> Option<(Elem, bool)> {
        let (order, code) = descr.split_at(descr.len().min(1));
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let elem = match code {
            "f2" => Elem::F16,
            "f4" => Elem::F32,
            "f8" => Elem::F64,
            "i1" | "i2" | "i4" | "i8" => Elem::Int(code[1..].parse().ok()?),
            "u1" | "u2" | "u4" | "u8" => Elem::Uint(code[1..].parse().ok()?),
            "b1" => Elem::Bool,
            _ => return None,
        };
        Some((elem, big))
    }

    fn size(self) -> usize {
        match self {
            Elem::F16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
            Elem::Int(n) | Elem::Uint(n) => n as usize,
            Elem::Bool => 1,
        }
    }

    fn value(self, b: &[u8]) -> f64 {
        let mut le = [0u8; 8];
        le[..b.len()].copy_from_slice(b);
        let raw = u64::from_le_bytes(le);
        match self {
            Elem::F16 => f16_to_f64(raw as u16),
            Elem::F32 => f32::from_bits(raw as u32) as f64,
            Elem::F64 => f64::from_bits(raw),
            Elem::Uint(_) => raw as f64,
            Elem::Int(n) => {
                let shift = 64 - 8 * n as u32;
                ((raw << shift) as i64 >> shift) as f64
            }
            Elem::Bool => (raw != 0) as u8 as f64,
        }
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Parses a `.npy` file (format 1.0–3.0) of a numeric type, C or Fortran order, either
/// byte order; the values come back row-major.
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, TableError> {
    if bytes.len() < 8 || &bytes[..6] != b"\x93NUMPY" {
        return Err(TableError::NotNpy);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => return Err(TableError::NpyVersion(major, minor)),
    };
    let start = 8 + len_bytes;
    let header_len = match bytes.get(8..start) {
        Some(b) if len_bytes == 2 => u16::from_le_bytes([b[0], b[1]]) as usize,
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        None => return Err(TableError::NpyTruncatedHeader),
    };
    let header = bytes.get(start..start + header_len).ok_or(TableError::NpyTruncatedHeader)?;
    let header = match (std::str::from_utf8(header), utf8) {
        (Ok(h), true) => h,
        (Ok(h), false) if h.is_ascii() => h,
        _ => return Err(TableError::NpyHeader("it is not text".into())),
    };
    let header = Header::parse(header).map_err(TableError::NpyHeader)?;
    let (elem, big) = Elem::parse(&header.descr).ok_or(TableError::NpyType(header.descr))?;
    let count = header.shape.iter().try_fold(1u128, |n, &d| n.checked_mul(d as u128));
    let data_bytes = count.and_then(|n| n.checked_mul(elem.size() as u128)).unwrap_or(u128::MAX);
    if data_bytes > MAX_PAYLOAD_BYTES as u128 {
        return Err(TableError::NpyTooLarge {
            shape: header.shape,
            bytes: data_bytes,
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let data = &bytes[start + header_len..];
    if data.len() as u128 != data_bytes {
        return Err(TableError::NpyLength {
            shape: header.shape,
            expected: data_bytes as u64,
            found: data.len() as u64,
        });
    }
    let size = elem.size();
    let mut values: Vec<f64> = data
        .chunks_exact(size)
        .map(|c| {
            if big {
                let mut r = c.to_vec();
                r.reverse();
                elem.value(&r)
            } else {
                elem.value(c)
            }
        })
        .collect();
    if header.fortran_order && header.shape.len() == 2 {
        let (r, c) = (header.shape[0] as usize, header.shape[1] as usize);
        let mut t = vec![0.0; values.len()];
        for (k, v) in values.iter().enumerate() {
            t[(k % r) * c + k / r] = *v;
        }
        values = t;
    } else if header.fortran_order && header.shape.len() > 2 {
        return Err(TableError::NpyRank { expected: "1-D or 2-D", found: header.shape });
    }
    Ok(NpyArray { shape: header.shape, values })
}

/// The `.npy` header: a Python dict literal with exactly these three keys.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

impl Header {
    fn parse(text: &str) -> Result<Header, String> {
        let body = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}'));
        let body = body.ok_or("it is not a {...} dictionary")?;
        let quoted = |key: &str| -> Result<&str, String> {
            let at = body.find(&format!("'{key}'")).ok_or(format!("no '{key}' key"))?;
            let rest = body[at + key.len() + 2..].trim_start();
            rest.strip_prefix(':').map(str::trim_start).ok_or(format!("no value for '{key}'"))
        };
        let descr = quoted("descr")?;
        let descr = match descr.strip_prefix('\'').and_then(|d| d.split_once('\'')) {
            Some((d, _)) => d.to_string(),
            // A structured dtype is a list of fields.
            None => descr.chars().take_while(|&c| c != ',').collect(),
        };
        let fortran = quoted("fortran_order")?;
        let fortran_order = if fortran.starts_with("True") {
            true
        } else if fortran.starts_with("False") {
            false
        } else {
            return Err("fortran_order is neither True nor False".into());
        };
        let shape = quoted("shape")?;
        let inner = shape
            .strip_prefix('(')
            .and_then(|s| s.split_once(')'))
            .map(|(s, _)| s)
            .ok_or("the shape is not a tuple")?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("the shape ({inner}) is not a tuple of sizes"))?;
        Ok(Header { descr, fortran_order, shape })
    }
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

/// A 2-D `.npy` array as a table (columns `x0`, `x1`, ...), with labels from a 1-D
/// integer array of the same length.
pub fn npy_table(data: NpyArray, labels: Option<NpyArray>) -> Result<Table, TableError> {
    let [rows, cols] = data.shape[..] else {
        return Err(TableError::NpyRank { expected: "2-D (rows × features)", found: data.shape });
    };
    if rows == 0 || cols == 0 {
        return Err(TableError::NpyRank { expected: "non-empty 2-D", found: data.shape });
    }
    let mut values = Vec::with_capacity(data.values.len());
    for (k, &v) in data.values.iter().enumerate() {
        if !v.is_finite() || v.abs() > f32::MAX as f64 {
            let (row, column) = (k / cols as usize, k % cols as usize);
            return Err(TableError::NpyNotFinite { row, column, value: v });
        }
        values.push(v as f32);
    }
    let labels = match labels {
        None => None,
        Some(l) => {
            if l.shape != [rows] {
                return Err(TableError::NpyRank {
                    expected: "1-D label array with one label per data row",
                    found: l.shape,
                });
            }
            let text = l.values.iter().enumerate().map(|(index, &value)| {
                if value.fract() == 0.0 && value.abs() < 2f64.powi(53) {
                    Ok(format!("{}", value as i64))
                } else {
                    Err(TableError::NpyLabel { index, value })
                }
            });
            Some(text.collect::<Result<Vec<_>, _>>()?)
        }
    };
    let columns = (0..cols).map(|i| format!("x{i}")).collect();
    let ids = (0..rows as usize).collect();
    Ok(Table { values, columns, labels, ids, dropped: 0, files: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Table, TableError> {
        read_csv(text.as_bytes(), &CsvOptions::default())
    }

    fn with(
        text: &str,
        label: Option<&str>,
        columns: Option<&[&str]>,
    ) -> Result<Table, TableError> {
        let opts = CsvOptions {
            label_column: label.map(str::to_string),
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
            missing: Missing::Refuse,
        };
        read_csv(text.as_bytes(), &opts)
    }

    #[test]
    fn csv_reads_numbers_labels_and_chosen_columns() {
        let text = "a, b ,class,c\n1,2.5,x,-3e2\n4,5,y,6\n";
        let t = with(text, Some("class"), None).unwrap();
        assert_eq!(t.columns, ["a", "b", "c"]);
        assert_eq!(t.values, [1.0, 2.5, -300.0, 4.0, 5.0, 6.0]);
        assert_eq!(t.labels.as_deref(), Some(&["x".to_string(), "y".to_string()][..]));
        assert_eq!(t.rows(), 2);
        // Integers in a float's form are the integers; other text stays as written.
        let t = "v,l\n1,0.0\n2,1E0\n3,007\n4,0.5\n5,-2.00\n6,inf\n7,+1\n8,NaN\n9,-0.0\n";
        let t = with(t, Some("l"), None).unwrap();
        assert_eq!(t.labels.unwrap(), ["0", "1", "007", "0.5", "-2", "inf", "1", "NaN", "0"]);
        let t = with(text, Some("class"), Some(&["c", "a"])).unwrap();
        assert_eq!(t.values, [-300.0, 1.0, 6.0, 4.0]);
        // Quoted fields and CRLF line ends are CSV, too.
        let t = csv("\"p\",\"q\"\r\n\"1\",2\r\n").unwrap();
        assert_eq!(t.values, [1.0, 2.0]);
        assert_eq!(t.select(&[0, 0]).values, [1.0, 2.0, 1.0, 2.0]);
    }

    #[test]
    fn csv_errors_name_the_line_column_and_text() {
        let e = csv("a,b\n1,2\n3,x7\n").unwrap_err().to_string();
        assert_eq!(e, "line 3, column 'b': 'x7' is not a number");
        let e = csv("a,b\n1,inf\n").unwrap_err().to_string();
        assert_eq!(e, "line 2, column 'b': 'inf' is not a finite number");
        let e = csv("a,b\n1,1e39\n").unwrap_err().to_string();
        assert!(e.contains("within float32 range"), "{e}");
        let e = csv("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert_eq!(e, "line 3: 1 fields, the header has 2");
        let e = csv("a,b\n1,2,3\n").unwrap_err().to_string();
        assert_eq!(e, "line 2: 3 fields, the header has 2");
        assert!(matches!(csv(""), Err(TableError::Empty)));
        assert!(matches!(csv("a,b\n"), Err(TableError::NoRows)));
        assert!(matches!(csv("a,a\n1,2\n"), Err(TableError::DuplicateColumn(c)) if c == "a"));
        let e = with("a,b\n1,2\n", Some("label"), None).unwrap_err().to_string();
        assert_eq!(e, "--label-column: no column named 'label'; the columns are 'a', 'b'");
        let e = with("a,b\n1,2\n", Some("a"), Some(&["a"])).unwrap_err().to_string();
        assert_eq!(e, "--columns names 'a', which is the label column");
        let e = with("a\n1\n", Some("a"), None).unwrap_err().to_string();
        assert!(e.contains("no feature columns"), "{e}");
        let e = read_csv(b"a,b\n1,\xff\n", &CsvOptions::default()).unwrap_err().to_string();
        assert_eq!(e, "line 2: not valid UTF-8 text");
    }

    #[test]
    fn missing_values_are_counted_or_their_rows_dropped() {
        let text = "a,b,label\n1,2,x\n,3,y\nNA,NaN,z\n4,5,\n6,7,w\n";
        let e = with(text, Some("label"), None).unwrap_err().to_string();
        assert_eq!(
            e,
            "4 missing values in 3 rows, the first at line 3, column 'a'; \
             pass --missing drop to leave those rows out"
        );
        let opts = CsvOptions {
            label_column: Some("label".into()),
            missing: Missing::Drop,
            ..Default::default()
        };
        let t = read_csv(text.as_bytes(), &opts).unwrap();
        assert_eq!((t.values.as_slice(), t.dropped), (&[1.0, 2.0, 6.0, 7.0][..], 3));
        assert_eq!(t.labels.unwrap(), ["x", "w"]);
        let opts = CsvOptions { missing: Missing::Drop, ..Default::default() };
        assert!(matches!(read_csv(b"a\n?\n", &opts), Err(TableError::AllDropped)));
    }

    /// A `.npy` file as numpy writes it (format 1.0, header padded to 64 bytes).
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    #[test]
    fn npy_reads_every_numeric_type_and_order() {
        let f4 = bytes(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], f32::to_le_bytes);
        let a = read_npy(&npy("<f4", false, "(2, 3)", &f4)).unwrap();
        assert_eq!(
            (a.shape.as_slice(), a.values.as_slice()),
            (&[2, 3][..], &[1., 2., 3., 4., 5., 6.][..])
        );
        // Fortran order: the same matrix stored column by column.
        let cols = bytes(&[1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0], f64::to_le_bytes);
        let b = read_npy(&npy("<f8", true, "(2, 3)", &cols)).unwrap();
        assert_eq!(b.values, a.values);
        let be = bytes(&[-2i16, 300], i16::to_be_bytes);
        assert_eq!(read_npy(&npy(">i2", false, "(2,)", &be)).unwrap().values, [-2.0, 300.0]);
        let u = read_npy(&npy("|u1", false, "(3,)", &[0, 7, 255])).unwrap();
        assert_eq!(u.values, [0.0, 7.0, 255.0]);
        let i8s = bytes(&[-5i64, 9], i64::to_le_bytes);
        assert_eq!(read_npy(&npy("<i8", false, "(2,)", &i8s)).unwrap().values, [-5.0, 9.0]);
        let h = bytes(&[0x3c00u16, 0xc000], u16::to_le_bytes); // 1.0, -2.0 in float16
        assert_eq!(read_npy(&npy("<f2", false, "(2,)", &h)).unwrap().values, [1.0, -2.0]);
        let t = npy_table(a, Some(read_npy(&npy("|u1", false, "(2,)", &[3, 1])).unwrap())).unwrap();
        assert_eq!(t.columns, ["x0", "x1", "x2"]);
        assert_eq!(t.labels.unwrap(), ["3", "1"]);
    }

    #[test]
    fn npy_refuses_what_it_cannot_trust() {
        let f4 = bytes(&[1.0f32, 2.0], f32::to_le_bytes);
        let err = |b: Vec<u8>| read_npy(&b).unwrap_err().to_string();
        assert!(err(b"PK\x03\x04 a zip".to_vec()).contains("not a .npy file"));
        assert!(err(npy("|O", false, "(2,)", &f4)).contains("'|O' is not supported"));
        assert!(err(npy("<U3", false, "(2,)", &f4)).contains("'<U3' is not supported"));
        let e = err(npy("<f4", false, "(1000000000, 1000000000)", &f4));
        assert!(e.contains("more than the"), "{e}");
        let e = err(npy("<f4", false, "(3,)", &f4));
        assert_eq!(e, ".npy: shape [3] needs 12 bytes of data, the file holds 8");
        let mut cut = npy("<f4", false, "(2,)", &f4);
        cut.truncate(20);
        assert_eq!(err(cut), ".npy: the file ends inside its header");
        let one_d = read_npy(&npy("<f4", false, "(2,)", &f4)).unwrap();
        let e = npy_table(one_d.clone(), None).unwrap_err().to_string();
        assert!(
            e.contains("expected a 2-D (rows × features) array, the file holds shape [2]"),
            "{e}"
        );
        let nan = bytes(&[1.0f32, f32::NAN], f32::to_le_bytes);
        let two = read_npy(&npy("<f4", false, "(1, 2)", &nan)).unwrap();
        let e = npy_table(two, None).unwrap_err().to_string();
        assert_eq!(e, ".npy: row 0, column 1: NaN is not a finite float32 value");
        let ok = read_npy(&npy("<f4", false, "(1, 2)", &f4)).unwrap();
        let e = npy_table(ok.clone(), Some(one_d)).unwrap_err().to_string();
        assert!(e.contains("one label per data row"), "{e}");
        let half = read_npy(&npy("<f4", false, "(1,)", &bytes(&[0.5f32], f32::to_le_bytes)));
        let e = npy_table(ok, Some(half.unwrap())).unwrap_err().to_string();
        assert_eq!(e, ".npy: labels must be integers, element 0 is 0.5");
    }
}
