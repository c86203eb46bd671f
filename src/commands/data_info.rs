//! `ae-tch data info DIR|FILE`: what a data folder holds — per split the image count and
//! size, the label histogram, and the pixel mean and standard deviation — or a table
//! (.csv, .npy, .npz) holds: its rows and each column's mean, spread and range.

use crate::cli::DataInfoArgs;
use crate::data::spec::Reading;
use crate::data::table::{Missing, TextColumns};
use crate::data::vectors;
use crate::data::{self, Split};
use crate::invalid::dashed;
use crate::log::counted;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct SplitInfo {
    pub split: &'static str,
    pub images: usize,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    /// Images per label (absent for unlabelled data).
    pub labels: Option<BTreeMap<u8, usize>>,
    /// The label folders' names, a label's position its code (absent when the folders
    /// are numbered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Of the pixels scaled to [0, 1].
    pub pixel_mean: f64,
    pub pixel_std: f64,
}

/// One column of a table, over the rows kept.
#[derive(Debug, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// A table file: its rows (those with a missing value counted apart) and columns.
#[derive(Debug, Serialize)]
pub struct TableInfo {
    pub rows: usize,
    pub dropped_with_missing_values: usize,
    pub columns: Vec<ColumnInfo>,
    /// Rows per label (`--label-column`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, usize>>,
}

pub fn run(args: DataInfoArgs) -> Result<()> {
    if args.dir.is_file() {
        return table_info(&args);
    }
    if args.label_column.is_some() {
        anyhow::bail!(
            "--label-column is for a table (.csv); an image folder's labels are its sub-folders"
        );
    }
    if let Some(id) = args.read.reading().first_given() {
        anyhow::bail!("{} is for a table file (.csv, .npy, .npz), not an image folder", dashed(id));
    }
    let mut splits = Vec::new();
    // As training does: the test split is converted to what the training split became.
    let mut request = args.image.request();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = data::load_split(&args.dir, split, &request)?;
        request = set.shape.request();
        let (mut sum, mut sq) = (0f64, 0f64);
        for &p in &set.values {
            let v = crate::data::spec::unit(p) as f64;
            sum += v;
            sq += v * v;
        }
        let n = set.values.len().max(1) as f64;
        let mean = sum / n;
        let labels = set.labels.as_ref().map(|l| {
            let mut h = BTreeMap::new();
            for &c in l {
                *h.entry(c).or_insert(0) += 1;
            }
            h
        });
        splits.push(SplitInfo {
            split: name,
            images: set.len(),
            channels: set.shape.channels(),
            height: set.shape.height,
            width: set.shape.width,
            labels,
            classes: set.shape.classes.clone(),
            pixel_mean: mean,
            pixel_std: (sq / n - mean * mean).max(0.0).sqrt(),
        });
    }
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&splits)? + "\n"));
    }
    let mut out = format!("{}\n", args.dir.display());
    for s in &splits {
        out += &format!(
            "{:<6} {:>6} images {}x{} {}  pixel mean {:.4}  std {:.4}\n",
            s.split,
            s.images,
            s.height,
            s.width,
            if s.channels == 1 { "gray" } else { "rgb" },
            s.pixel_mean,
            s.pixel_std
        );
        if let Some(h) = &s.labels {
            let name = |c: u8| s.classes.get(c as usize).cloned().unwrap_or(c.to_string());
            let parts: Vec<String> = h.iter().map(|(&c, k)| format!("{}:{k}", name(c))).collect();
            out += &format!("       labels {}\n", parts.join(" "));
        }
    }
    super::print(&out)
}

/// `data info` on a file: a table's rows and columns (every column a number; a row with a
/// missing value is counted, not read).
fn table_info(args: &DataInfoArgs) -> Result<()> {
    let path = &args.dir;
    if vectors::is_wav(path) || !vectors::is_vector_file(path) {
        anyhow::bail!(
            "{}: data info reads a folder of images or IDX files, or a table (.csv, .npy, .npz)",
            path.display()
        );
    }
    // Rows with a missing value are counted apart unless --missing says otherwise.
    let given = args.read.reading();
    let reading = Reading { missing: Some(given.missing.unwrap_or(Missing::Drop)), ..given };
    let label_column = vectors::label_column_in(path, args.label_column.as_deref(), &reading);
    let columns = (label_column.as_deref(), None);
    let table = vectors::read(path, columns, &TextColumns::Found, None, &reading)?;
    let width = table.columns.len();
    let rows = table.rows();
    let columns = table
        .columns
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let values = || table.values.iter().skip(j).step_by(width).map(|&v| v as f64);
            let n = rows.max(1) as f64;
            let mean = values().sum::<f64>() / n;
            let var = values().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            ColumnInfo {
                name: name.clone(),
                mean,
                std: var.sqrt(),
                min: values().fold(f64::INFINITY, f64::min),
                max: values().fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect();
    let labels = table.labels.as_ref().map(|l| {
        let mut h = BTreeMap::new();
        for label in l {
            *h.entry(label.clone()).or_insert(0) += 1;
        }
        h
    });
    let info = TableInfo { rows, dropped_with_missing_values: table.dropped, columns, labels };
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&info)? + "\n"));
    }
    let mut out =
        format!("{}\n{}, {}", path.display(), counted(rows, "row"), counted(width, "column"));
    if info.dropped_with_missing_values > 0 {
        out += &format!(" ({} more with missing values)", info.dropped_with_missing_values);
    }
    out +=
        &format!("\n{:<16} {:>12} {:>12} {:>12} {:>12}\n", "column", "mean", "std", "min", "max");
    for c in &info.columns {
        out += &format!(
            "{:<16} {:>12.4} {:>12.4} {:>12.4} {:>12.4}\n",
            c.name, c.mean, c.std, c.min, c.max
        );
    }
    if let Some(h) = &info.labels {
        let parts: Vec<String> = h.iter().map(|(c, k)| format!("{c}:{k}")).collect();
        out += &format!("labels {}\n", parts.join(" "));
    }
    super::print(&out)
}
