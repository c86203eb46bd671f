//! Reading a CSV whose first row names the columns into a `Table`: the header checked
//! and the label and feature columns picked, then every cell of every data row parsed,
//! missing values counted and refused or their rows dropped, and text columns one-hot
//! encoded when the options ask (found in a first pass for a fresh run).

use super::MAX_LEVELS;
use super::{label_text, Category, CsvOptions, Missing, Table, TableError, TextColumns};
use std::collections::{BTreeSet, HashMap};

/// Texts that mean "no value" in the CSVs people export (R's NA, pandas' NaN, empty).
fn is_missing(text: &str) -> bool {
    text.is_empty()
        || ["na", "nan", "n/a", "null", "none", "?"].iter().any(|m| text.eq_ignore_ascii_case(m))
}

/// A cell as a finite f32; `Err` says what it is not. With `decimal_comma` (a file whose
/// fields are not separated by commas) one comma may stand for the decimal point, as
/// spreadsheets write numbers in much of Europe: `1,5` is 1.5.
fn number(text: &str, decimal_comma: bool) -> Result<f32, &'static str> {
    let pointed;
    let text = if decimal_comma && text.matches(',').count() == 1 && !text.contains('.') {
        pointed = text.replace(',', ".");
        &pointed
    } else {
        text
    };
    match text.parse::<f64>() {
        Err(_) => Err("a number"),
        Ok(v) if !v.is_finite() => Err("a finite number"),
        Ok(v) if v.abs() > f32::MAX as f64 => Err("within float32 range"),
        Ok(v) => Ok(v as f32),
    }
}

/// How a CSV's text is laid out: the delimiter (`None`: sniffed), whether a header line
/// names the columns (without one they are `x0`, `x1`, ...), and how many lines come
/// before the header (or the first data row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvFormat {
    pub delimiter: Option<u8>,
    pub no_header: bool,
    pub skip_rows: usize,
}

/// The delimiters sniffed, in the order a tie is broken.
const DELIMITERS: [u8; 5] = [b',', b';', b'\t', b'|', b' '];

/// The bytes after the first `n` lines.
fn after_lines(bytes: &[u8], n: usize) -> &[u8] {
    let mut rest = bytes;
    for _ in 0..n {
        rest = rest.iter().position(|&b| b == b'\n').map_or(&[][..], |i| &rest[i + 1..]);
    }
    rest
}

/// The delimiter of `bytes` (a CSV's lines from its header on), as Python's `csv.Sniffer`
/// finds one: the candidate that splits the first lines (up to 20, quotes respected) into
/// the same number of fields, more than one, the most fields winning and ties going to
/// the earlier of comma, semicolon, tab, bar and space; comma when none does.
pub fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let counts = |delimiter: u8| -> Vec<usize> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes);
        reader.byte_records().take(20).map_while(Result::ok).map(|r| r.len()).collect()
    };
    let mut best = (b',', 1);
    for delimiter in DELIMITERS {
        let n = counts(delimiter);
        let fields = n.first().copied().unwrap_or(0);
        if fields > best.1 && n.iter().all(|&c| c == fields) {
            best = (delimiter, fields);
        }
    }
    best.0
}

/// A reader of `bytes` laid out as `format` says (its delimiter resolved; every line a
/// record, the header too), and the number of lines skipped before what it reads.
pub fn csv_reader<'a>(bytes: &'a [u8], format: &CsvFormat) -> (csv::Reader<&'a [u8]>, u64, u8) {
    let text = after_lines(bytes, format.skip_rows);
    let delimiter = format.delimiter.unwrap_or_else(|| sniff_delimiter(text));
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(text);
    (reader, format.skip_rows as u64, delimiter)
}

/// Line numbers in a CSV's text (after the lines skipped), counted from its newlines: the
/// csv crate's own count falls one behind after a CRLF line end.
pub struct Lines<'a> {
    text: &'a [u8],
    /// The line of the text's first byte (the file's numbering, skipped lines included).
    first: u64,
    /// The byte offset counted up to, and its line.
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    pub fn new(bytes: &'a [u8], format: &CsvFormat) -> Lines<'a> {
        let text = after_lines(bytes, format.skip_rows);
        let first = 1 + format.skip_rows as u64;
        Lines { text, first, at: 0, line: first }
    }

    /// The line of the byte at `position` (positions come in order; an earlier one is
    /// counted again from the start).
    pub fn of(&mut self, position: &csv::Position) -> u64 {
        // After a CRLF the csv crate starts the next record at the LF.
        let mut byte = (position.byte() as usize).min(self.text.len());
        if self.text.get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte < self.at {
            (self.at, self.line) = (0, self.first);
        }
        self.line += self.text[self.at..byte].iter().filter(|&&b| b == b'\n').count() as u64;
        self.at = byte;
        self.line
    }

    /// A csv error as ours, at the line it names or else at `fallback`.
    fn error(&mut self, e: csv::Error, fallback: &csv::Position) -> TableError {
        let line = match e.position() {
            Some(p) => self.of(p),
            None => self.of(fallback),
        };
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => TableError::NotUtf8 { line },
            _ => TableError::Csv { line, source: e },
        }
    }
}

/// The column names of a CSV laid out as `format` says: its header line, or `x0`, `x1`,
/// ... for as many fields as the first line has.
pub fn csv_header(bytes: &[u8], format: &CsvFormat) -> Result<Vec<String>, TableError> {
    let (mut reader, skipped, _) = csv_reader(bytes, format);
    let mut first = csv::ByteRecord::new();
    match reader.read_byte_record(&mut first) {
        Ok(true) => names_of(&first, format, skipped),
        Ok(false) => Err(TableError::Empty),
        Err(e) => Err(Lines::new(bytes, format).error(e, &csv::Position::new())),
    }
}

/// The names of the columns, from the first record read: the header's, or numbered.
fn names_of(
    first: &csv::ByteRecord,
    format: &CsvFormat,
    skipped: u64,
) -> Result<Vec<String>, TableError> {
    if format.no_header {
        return Ok((0..first.len()).map(|i| format!("x{i}")).collect());
    }
    first
        .iter()
        .map(|f| std::str::from_utf8(f).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TableError::NotUtf8 { line: 1 + skipped })
}

/// Reads a CSV laid out as `opts.format` says.
pub fn read_csv(bytes: &[u8], opts: &CsvOptions) -> Result<Table, TableError> {
    if opts.text == TextColumns::Found {
        let found = TextColumns::Given(find_categories(bytes, opts)?);
        return read_csv(bytes, &CsvOptions { text: found, ..opts.clone() });
    }
    let (mut reader, skipped, delimiter) = csv_reader(bytes, &opts.format);
    let mut lines = Lines::new(bytes, &opts.format);
    let mut record = csv::ByteRecord::new();
    let mut header = csv::ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err(TableError::Empty),
        Err(e) => return Err(lines.error(e, &csv::Position::new())),
    }
    let names = names_of(&header, &opts.format, skipped)?;
    let mut columns = Columns::from_header(names, opts)?;
    columns.decimal_comma = delimiter != b',';
    let mut rows = Rows::new(&columns);
    if opts.format.no_header {
        rows.push(&header, 1 + skipped, &columns, opts.missing)?;
    }
    loop {
        let before = reader.position().clone();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(lines.error(e, &before)),
        }
        let line = lines.of(record.position().unwrap_or(&before));
        rows.push(&record, line, &columns, opts.missing)?;
    }
    rows.finish(columns, opts.missing)
}

/// The feature columns of a CSV that are text (more than half their values neither a
/// number nor missing), each with its distinct values, sorted, as the levels of a one-hot
/// encoding; a column of numbers with a stray word in it stays a number column, for the
/// reader to name the cell. A text column with more than `MAX_LEVELS` values, or whose
/// values never repeat (10 rows or more), is an identifier or free text: an error naming
/// it. A file the reader proper refuses (a ragged row, bad UTF-8) is passed over here for
/// it to say why.
fn find_categories(bytes: &[u8], opts: &CsvOptions) -> Result<Vec<Category>, TableError> {
    let (mut reader, skipped, delimiter) = csv_reader(bytes, &opts.format);
    let mut record = csv::ByteRecord::new();
    if !matches!(reader.read_byte_record(&mut record), Ok(true)) {
        return Ok(Vec::new());
    }
    let refused = CsvOptions { text: TextColumns::Refused, ..opts.clone() };
    let Ok(columns) = names_of(&record, &opts.format, skipped)
        .and_then(|names| Columns::from_header(names, &refused))
    else {
        return Ok(Vec::new());
    };
    let mut seen = vec![Tally::default(); columns.features.len()];
    let mut look = |record: &csv::ByteRecord, line: u64| {
        for (p, &i) in columns.features.iter().enumerate() {
            let Some(t) = record.get(i).and_then(|f| std::str::from_utf8(f).ok()) else {
                continue;
            };
            if is_missing(t) {
                continue;
            }
            let tally = &mut seen[p];
            tally.values += 1;
            let is_number = number(t, delimiter != b',').is_ok();
            tally.numbers += is_number as usize;
            if tally.distinct.len() <= MAX_LEVELS {
                tally.distinct.insert(t.to_string());
            }
            if tally.text.is_none() && !is_number {
                tally.text = Some((line, t.to_string()));
            }
        }
    };
    if opts.format.no_header {
        look(&record, 1 + skipped);
    }
    let mut lines = Lines::new(bytes, &opts.format);
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let line = record.position().map_or(lines.line + 1, |p| lines.of(p));
        look(&record, line);
    }
    let mut found = Vec::new();
    for (Tally { distinct, values, numbers, text }, &i) in seen.into_iter().zip(&columns.features) {
        let Some((line, text)) = text else { continue };
        if numbers * 2 >= values {
            continue;
        }
        let column = columns.names[i].clone();
        let all_differ = values >= 10 && distinct.len() == values;
        if distinct.len() > MAX_LEVELS || all_differ {
            let distinct = all_differ.then_some(values);
            return Err(TableError::TooManyLevels { column, line, text, distinct });
        }
        found.push(Category { column, levels: distinct.into_iter().collect() });
    }
    Ok(found)
}

/// What `find_categories` saw of one feature column: its distinct values (kept to one past
/// `MAX_LEVELS`), how many values it has and how many are numbers, and its first text
/// cell with the line.
#[derive(Clone, Default)]
struct Tally {
    distinct: BTreeSet<String>,
    values: usize,
    numbers: usize,
    text: Option<(u64, String)>,
}

/// The header's column names, and which of them are the label and the features.
struct Columns {
    names: Vec<String>,
    label: Option<usize>,
    features: Vec<usize>,
    /// For each feature, the levels it is one-hot encoded by, if it is a text column.
    encode: Vec<Option<Category>>,
    /// No column was chosen (no `--label-column`, no `--columns`): text in a feature
    /// column of the first row is most often a label, and the error says so.
    hint_labels: bool,
    /// A cell may write its decimal point as a comma (see `number`).
    decimal_comma: bool,
}

impl Columns {
    /// Checks the header (text, no empty or repeated names) and finds the columns `opts`
    /// names: the label's, and the features (`--columns`, else every column but the
    /// label's).
    fn from_header(names: Vec<String>, opts: &CsvOptions) -> Result<Columns, TableError> {
        if names.is_empty() {
            return Err(TableError::Empty);
        }
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
        let given = match &opts.text {
            TextColumns::Given(categories) => &categories[..],
            TextColumns::Refused | TextColumns::Found => &[],
        };
        let encode = features
            .iter()
            .map(|&i| given.iter().find(|c| c.column == names[i]).cloned())
            .collect();
        Ok(Columns { names, label, features, encode, hint_labels, decimal_comma: false })
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
    /// Text values that are none of their column's levels, and the first's column and text.
    unseen: usize,
    first_unseen: Option<(String, String)>,
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
            unseen: 0,
            first_unseen: None,
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
            let (found, expected, first) = (record.len(), names.len(), self.data_rows == 1);
            return Err(TableError::Ragged { line, found, expected, first });
        }
        let text =
            |i: usize| std::str::from_utf8(&record[i]).map_err(|_| TableError::NotUtf8 { line });
        self.row_values.clear();
        let mut missing_here = 0;
        for (&i, encode) in columns.features.iter().zip(&columns.encode) {
            let t = text(i)?;
            let width = encode.as_ref().map_or(1, |c| c.levels.len());
            if is_missing(t) {
                missing_here += 1;
                self.first_missing.get_or_insert((line, names[i].clone()));
                self.row_values.extend(std::iter::repeat_n(f32::NAN, width));
                continue;
            }
            if let Some(category) = encode {
                let level = category.levels.iter().position(|l| l == t);
                if level.is_none() {
                    self.unseen += 1;
                    self.first_unseen.get_or_insert((names[i].clone(), t.to_string()));
                }
                self.row_values.extend((0..width).map(|k| (Some(k) == level) as u8 as f32));
                continue;
            }
            let first_row = self.data_rows == 1;
            self.row_values.push(
                number(t, columns.decimal_comma)
                    .map_err(|what| bad_cell(columns, i, t, what, line, first_row))?,
            );
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
        let mut features = Vec::new();
        for (&i, encode) in columns.features.iter().zip(&columns.encode) {
            match encode {
                Some(category) => features.extend(category.features()),
                None => features.push(names[i].clone()),
            }
        }
        let unseen = self.first_unseen.map(|(column, text)| (self.unseen, column, text));
        Ok(Table {
            values: self.values,
            columns: features,
            labels: self.labels,
            ids: self.ids,
            dropped: self.missing_rows,
            files: None,
            categories: columns.encode.into_iter().flatten().collect(),
            unseen,
        })
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
            format: CsvFormat::default(),
            text: TextColumns::Refused,
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
        assert!(e.starts_with("line 2: 3 fields, the header has 2; if the line above"), "{e}");
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

    /// Line numbers count the file's lines whatever ends them (the csv crate's own count
    /// falls behind after CRLF), quoted newlines and skipped lines included.
    #[test]
    fn line_numbers_hold_for_crlf_and_quoted_newlines() {
        assert_eq!(
            csv("a,b\r\n1,2\r\n3,x7\r\n").unwrap_err().to_string(),
            "line 3, column 'b': 'x7' is not a number"
        );
        let e = csv("a,b\n\"1\n\",2\n3,x7\n").unwrap_err().to_string();
        assert_eq!(e, "line 4, column 'b': 'x7' is not a number");
        let format = CsvFormat { skip_rows: 2, ..Default::default() };
        let e = read_csv(b"#\r\n#\r\na,b\r\n1,\r\n", &CsvOptions { format, ..Default::default() });
        assert!(e.unwrap_err().to_string().contains("line 4, column 'b'"));
    }

    /// A fresh run finds its text columns and one-hot encodes them by their sorted levels; a
    /// run's levels code a later file, a value it lacks as zeros, counted.
    #[test]
    fn text_columns_are_found_and_one_hot_encoded() {
        let found = CsvOptions { text: TextColumns::Found, ..Default::default() };
        let t = read_csv(
            b"a,c,b\n1,x,2\n3,y,4\n5,x,\n",
            &CsvOptions { missing: Missing::Drop, ..found.clone() },
        )
        .unwrap();
        assert_eq!(t.columns, ["a", "c=x", "c=y", "b"]);
        assert_eq!(t.values, [1.0, 1.0, 0.0, 2.0, 3.0, 0.0, 1.0, 4.0]);
        let levels = vec![Category { column: "c".into(), levels: vec!["x".into(), "y".into()] }];
        assert_eq!(t.categories, levels);
        let given = CsvOptions { text: TextColumns::Given(levels), ..Default::default() };
        let t = read_csv(b"a,c,b\n1,z,2\n3,y,4\n", &given).unwrap();
        assert_eq!(t.values, [1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 1.0, 4.0]);
        assert_eq!(t.unseen, Some((1, "c".into(), "z".into())));
        // Numbers in a text column are levels too; a number column stays one, and a word in
        // a column of numbers is a bad cell, not a level.
        let t = read_csv(b"n,c\n1,a\n2,3\n3,b\n", &found).unwrap();
        assert_eq!(t.columns, ["n", "c=3", "c=a", "c=b"]);
        let e = read_csv(b"n,c\n1,2\n2,x7\n", &found).unwrap_err().to_string();
        assert_eq!(e, "line 3, column 'c': 'x7' is not a number");
        // Free text: too many levels, or values that never repeat.
        let many: String = (0..60).map(|i| format!("{i},v{}\n", i % 55)).collect();
        let e = read_csv(format!("n,c\n{many}").as_bytes(), &found).unwrap_err().to_string();
        assert!(e.contains("with more than 50 distinct values"), "{e}");
        let ids: String = (0..12).map(|i| format!("{i},v{i}\n")).collect();
        let e = read_csv(format!("n,c\n{ids}").as_bytes(), &found).unwrap_err().to_string();
        assert!(
            e.starts_with("column 'c' holds text (line 2: 'v0') whose 12 values all differ"),
            "{e}"
        );
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

    #[test]
    fn layouts_are_sniffed_and_read_as_told() {
        // The delimiter: the candidate that splits every sampled line alike, quotes kept.
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2;3\n4;5;6\n"), b';');
        assert_eq!(sniff_delimiter(b"Chins Situps Jumps\n5 162 60\n"), b' ');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\"x;y\",b\n\"1;2\",3\n"), b',');
        assert_eq!(sniff_delimiter(b"one column\n1\n"), b',');
        let read = |text: &str, format: CsvFormat| {
            read_csv(text.as_bytes(), &CsvOptions { format, ..Default::default() })
        };
        let semi = CsvFormat { delimiter: Some(b';'), ..Default::default() };
        // Beside semicolons a comma may be the decimal point (never beside commas).
        assert_eq!(read("a;b\n1,5;-2\n", semi).unwrap().values, [1.5, -2.0]);
        // A byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
        assert_eq!(read("\u{feff}a;b\n1;2\n", semi).unwrap().columns, ["a", "b"]);
        let e = read("a;b\n1,5,0;2\n", semi).unwrap_err().to_string();
        assert!(e.starts_with("line 2, column 'a': '1,5,0' is not a number"), "{e}");
        // No header: the columns are numbered and the first line is data; skipped lines
        // count in the line numbers of errors.
        let bare = CsvFormat { no_header: true, skip_rows: 1, ..Default::default() };
        let t = read("150,4,setosa\n5.1,3.5,0\n4.9,3.0,1\n", bare).unwrap();
        assert_eq!(
            (t.columns, t.values.len(), t.ids),
            (vec!["x0".into(), "x1".into(), "x2".into()], 6, vec![0, 1])
        );
        let e = read("150,4,setosa\n5.1,3.5,0\n4.9,x,1\n", bare).unwrap_err().to_string();
        assert_eq!(e, "line 3, column 'x1': 'x' is not a number");
        assert_eq!(
            csv_header(
                b"# made by hand\nu v\n1 2\n",
                &CsvFormat { skip_rows: 1, ..Default::default() }
            )
            .unwrap(),
            ["u", "v"]
        );
        // A first data row longer than the header: the header is likely a preamble.
        let e = csv("178,13,class_0\n1,2,3,4\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "line 2: 4 fields, the header has 3; if the line above it is not the header, pass \
             --skip-rows 1 (and --no-header if the file has no header)"
        );
        assert_eq!(
            csv("a,b\n1,2\n1\n").unwrap_err().to_string(),
            "line 3: 1 fields, the header has 2"
        );
    }
}
