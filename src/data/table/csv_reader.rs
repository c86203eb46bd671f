//! Reading a CSV whose first row names the columns into a `Table`: the header checked
//! and the label and feature columns picked, then every cell of every data row parsed,
//! missing values counted and refused or their rows dropped.

use super::{label_text, CsvOptions, Missing, Table, TableError};
use std::collections::HashMap;

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
    let columns = Columns::from_header(&header, opts)?;
    let mut rows = Rows::new(&columns);
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        rows.push(&record, line, &columns, opts.missing)?;
    }
    rows.finish(columns, opts.missing)
}

/// The header's column names, and which of them are the label and the features.
struct Columns {
    names: Vec<String>,
    label: Option<usize>,
    features: Vec<usize>,
    /// No column was chosen (no `--label-column`, no `--columns`): text in a feature
    /// column of the first row is most often a label, and the error says so.
    hint_labels: bool,
}

impl Columns {
    /// Checks the header (text, no empty or repeated names) and finds the columns `opts`
    /// names: the label's, and the features (`--columns`, else every column but the
    /// label's).
    fn from_header(header: &csv::ByteRecord, opts: &CsvOptions) -> Result<Columns, TableError> {
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
        let find = |setting, name: &str| {
            index.get(name).copied().ok_or_else(|| TableError::UnknownColumn {
                setting,
                name: name.to_string(),
                known: names.clone(),
            })
        };
        let label = opts.label_column.as_deref().map(|n| find("label_column", n)).transpose()?;
        let features: Vec<usize> = match &opts.columns {
            Some(wanted) => wanted
                .iter()
                .map(|n| match find("columns", n)? {
                    i if Some(i) == label => Err(TableError::LabelAsFeature(n.clone())),
                    i => Ok(i),
                })
                .collect::<Result<_, _>>()?,
            None => (0..names.len()).filter(|&i| Some(i) != label).collect(),
        };
        if features.is_empty() {
            return Err(TableError::NoFeatures(names[label.unwrap_or(0)].clone()));
        }
        let hint_labels = label.is_none() && opts.columns.is_none();
        Ok(Columns { names, label, features, hint_labels })
    }
}

/// The data rows kept so far, and the missing values met.
struct Rows {
    values: Vec<f32>,
    labels: Option<Vec<String>>,
    ids: Vec<usize>,
    /// Data rows read, kept or not.
    data_rows: usize,
    missing_cells: usize,
    missing_rows: usize,
    /// The line and column of the first missing value.
    first_missing: Option<(u64, String)>,
    /// The feature values of the row being read.
    row_values: Vec<f32>,
}

impl Rows {
    fn new(columns: &Columns) -> Rows {
        Rows {
            values: Vec::new(),
            labels: columns.label.map(|_| Vec::new()),
            ids: Vec::new(),
            data_rows: 0,
            missing_cells: 0,
            missing_rows: 0,
            first_missing: None,
            row_values: Vec::with_capacity(columns.features.len()),
        }
    }

    /// Reads the data row `record` (at `line`): keeps it when no value is missing,
    /// counts its missing values otherwise.
    fn push(
        &mut self,
        record: &csv::ByteRecord,
        line: u64,
        columns: &Columns,
        missing: Missing,
    ) -> Result<(), TableError> {
        let names = &columns.names;
        self.data_rows += 1;
        if record.len() != names.len() {
            // A blank line in the middle is one empty field; csv skips blank lines itself.
            return Err(TableError::Ragged { line, found: record.len(), expected: names.len() });
        }
        let text =
            |i: usize| std::str::from_utf8(&record[i]).map_err(|_| TableError::NotUtf8 { line });
        self.row_values.clear();
        let mut missing_here = 0;
        for &i in &columns.features {
            let t = text(i)?;
            if is_missing(t) {
                missing_here += 1;
                self.first_missing.get_or_insert((line, names[i].clone()));
                self.row_values.push(f32::NAN);
                continue;
            }
            let first_row = self.data_rows == 1;
            self.row_values
                .push(number(t).map_err(|what| bad_cell(columns, i, t, what, line, first_row))?);
        }
        let row_label = match columns.label {
            Some(i) => {
                let t = text(i)?;
                if t.is_empty() {
                    missing_here += 1;
                    self.first_missing.get_or_insert((line, names[i].clone()));
                }
                Some(label_text(t))
            }
            None => None,
        };
        // Under `Interpolate` gaps in the values stay in as NaN for the series reader to
        // fill; a row without its label is still missing.
        let label_gap = row_label.as_deref() == Some("");
        if missing_here > 0 && (missing != Missing::Interpolate || label_gap) {
            self.missing_cells += missing_here;
            self.missing_rows += 1;
            return Ok(());
        }
        self.values.extend_from_slice(&self.row_values);
        self.ids.push(self.data_rows - 1);
        if let (Some(labels), Some(l)) = (self.labels.as_mut(), row_label) {
            labels.push(l);
        }
        Ok(())
    }

    /// The table of the rows kept, after the `missing` policy: missing values refused
    /// (the default), or their rows dropped as long as some are left.
    fn finish(self, columns: Columns, missing: Missing) -> Result<Table, TableError> {
        if self.values.is_empty() && self.missing_rows == 0 {
            return Err(TableError::NoRows);
        }
        if let Some((line, column)) = self.first_missing {
            match missing {
                Missing::Refuse | Missing::Interpolate if self.missing_rows > 0 => {
                    return Err(TableError::MissingValues {
                        cells: self.missing_cells,
                        rows: self.missing_rows,
                        at: format!("line {line}, column '{column}'"),
                    })
                }
                Missing::Refuse | Missing::Interpolate => {}
                Missing::Drop if self.values.is_empty() => return Err(TableError::AllDropped),
                Missing::Drop => {}
            }
        }
        let names = columns.names;
        let columns = columns.features.iter().map(|&i| names[i].clone()).collect();
        let (values, labels, ids) = (self.values, self.labels, self.ids);
        Ok(Table { values, columns, labels, ids, dropped: self.missing_rows, files: None })
    }
}

/// The error of the cell `text` of column `i` at `line`, which is not `what` it should
/// be; text in the first row of an unchosen column suggests `--label-column`.
fn bad_cell(
    columns: &Columns,
    i: usize,
    text: &str,
    what: &'static str,
    line: u64,
    first_row: bool,
) -> TableError {
    let name = &columns.names[i];
    let hint = if first_row && columns.hint_labels && what == "a number" {
        format!("; if '{name}' holds labels, pass {{label_column}} {name}")
    } else {
        String::new()
    };
    TableError::BadCell { line, column: name.clone(), text: text.to_string(), what, hint }
}

/// A csv error at `line` (or the line it names) as ours.
fn csv_error(e: csv::Error, line: u64) -> TableError {
    let line = e.position().map_or(line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => TableError::NotUtf8 { line },
        _ => TableError::Csv { line, source: e },
    }
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

    /// Text in the first data row of a column nobody chose is most often a label column.
    #[test]
    fn text_in_the_first_row_suggests_a_label_column() {
        let e = csv("a,b\nx,1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "line 2, column 'a': 'x' is not a number; if 'a' holds labels, pass --label-column a"
        );
        // Not on later rows, for chosen columns, or for cells that are numbers of a kind.
        assert!(!csv("a,b\n1,2\nx,1\n").unwrap_err().to_string().contains("--label-column"));
        let e = with("a,b\nx,1\n", None, Some(&["a"])).unwrap_err().to_string();
        assert_eq!(e, "line 2, column 'a': 'x' is not a number");
        let e = csv("a,b\ninf,1\n").unwrap_err().to_string();
        assert_eq!(e, "line 2, column 'a': 'inf' is not a finite number");
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
}
