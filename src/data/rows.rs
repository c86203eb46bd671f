//! A run's rows in host memory, one type for every kind of data: `width` values per row
//! (an image's bytes, channel planes one after another; or a row's scaled f32 features),
//! with the labels, ids and files that travel with them. `Rows` holds either kind for
//! code that does not care which; what only images have (grids, image files) asks for
//! `Rows::images`.

use super::spec::{DataSpec, ImageSpec};
use super::windows::WindowSet;
use crate::invalid::Invalid;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// How wide a row is, and what else its kind knows about it.
pub trait Shape: Clone + std::fmt::Debug + PartialEq {
    /// Values per row.
    fn width(&self) -> usize;
}

/// An image's spec: its C·H·W bytes are a row.
impl Shape for ImageSpec {
    fn width(&self) -> usize {
        self.values() as usize
    }
}

/// Numeric features: how many a row has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features(pub usize);

impl Shape for Features {
    fn width(&self) -> usize {
        self.0
    }
}

/// Rows of `shape.width()` values of type `V`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct RowSet<V, S> {
    /// `len() * shape.width()` values.
    pub values: Vec<V>,
    pub shape: S,
    /// Each row's label code, when the data have labels.
    pub labels: Option<Vec<u8>>,
    /// Each row's place among the data rows of its file (vectors: `Table::ids`); `None`
    /// for images, which are numbered by their place in the set.
    pub ids: Option<Vec<usize>>,
    /// Each row's file, when the rows come from several (an image folder's files,
    /// relative to it; a folder of series).
    pub files: Option<Vec<Arc<Path>>>,
}

/// Images of one spec (size, colour), stored as bytes.
pub type ImageSet = RowSet<u8, ImageSpec>;

/// Rows of scaled features, labels coded by the run's class list.
pub type VectorSet = RowSet<f32, Features>;

impl<V: tch::kind::Element + Copy, S: Shape> RowSet<V, S> {
    pub fn width(&self) -> usize {
        self.shape.width()
    }

    pub fn len(&self) -> usize {
        self.values.len() / self.width().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let d = self.width();
        let mut values = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            values.extend_from_slice(&self.values[i * d..(i + 1) * d]);
        }
        fn pick<T: Copy>(v: &[T], indices: &[usize]) -> Vec<T> {
            indices.iter().map(|&i| v[i]).collect()
        }
        RowSet {
            values,
            shape: self.shape.clone(),
            labels: self.labels.as_ref().map(|l| pick(l, indices)),
            ids: self.ids.as_ref().map(|l| pick(l, indices)),
            files: self.files.as_ref().map(|f| indices.iter().map(|&i| f[i].clone()).collect()),
        }
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Self {
        self.select(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// These rows, then `other`'s (same shape; labels, ids and files kept only when both
    /// have them).
    pub fn concat(&self, other: &Self) -> Self {
        let mut values = self.values.clone();
        values.extend_from_slice(&other.values);
        fn join<T: Clone>(a: &Option<Vec<T>>, b: &Option<Vec<T>>) -> Option<Vec<T>> {
            a.as_ref().zip(b.as_ref()).map(|(a, b)| [&a[..], b].concat())
        }
        RowSet {
            values,
            shape: self.shape.clone(),
            labels: join(&self.labels, &other.labels),
            ids: join(&self.ids, &other.ids),
            files: join(&self.files, &other.files),
        }
    }

    /// The rows as stored, an `[N, width]` tensor on `device` (u8 images, f32 features);
    /// `to_unit_float` turns either into the network's values.
    pub fn to_device(&self, device: Device) -> Tensor {
        Tensor::from_slice(&self.values)
            .view([self.len() as i64, self.width() as i64])
            .to_device(device)
    }

    /// The network's values: `[N, width]` f32 on `device`.
    pub fn to_unit(&self, device: Device) -> Tensor {
        to_unit_float(&self.to_device(device))
    }

    /// Rows `range` as stored, an `[n, width]` tensor on `device`.
    pub fn range_to_device(&self, range: std::ops::Range<usize>, device: Device) -> Tensor {
        let d = self.width();
        Tensor::from_slice(&self.values[range.start * d..range.end * d])
            .view([range.len() as i64, d as i64])
            .to_device(device)
    }
}

/// The network's values of stored rows: `[N, D]` u8 images → f32 in [0, 1] (the one
/// scaling of 8-bit values, on tensors); vectors are stored already scaled (f32) and come
/// back as they are.
pub fn to_unit_float(rows: &Tensor) -> Tensor {
    match rows.kind() {
        Kind::Uint8 => rows.to_kind(Kind::Float) / 255.0,
        _ => rows.shallow_clone(),
    }
}

/// A run's rows, whichever kind of data it trains on.
#[derive(Clone, Debug, PartialEq)]
pub enum Rows {
    Images(ImageSet),
    Vectors(VectorSet),
    /// Windows of series, cut when they are read (`data::windows`).
    Windows(WindowSet),
}

/// `$body` with `$set` bound to the row set of either kind.
macro_rules! each {
    ($rows:expr, $set:ident => $body:expr) => {
        match $rows {
            Rows::Images($set) => $body,
            Rows::Vectors($set) => $body,
            Rows::Windows($set) => $body,
        }
    };
}

/// `$body` (a row set of the same kind) with `$set` bound to the row set of either kind.
macro_rules! map {
    ($rows:expr, $set:ident => $body:expr) => {
        match $rows {
            Rows::Images($set) => Rows::Images($body),
            Rows::Vectors($set) => Rows::Vectors($body),
            Rows::Windows($set) => Rows::Windows($body),
        }
    };
}

impl ImageSet {
    /// The images whose label is in `classes`. Fails when there are no labels or a class
    /// has no image; `source` names the data in the message.
    pub fn with_classes(&self, classes: &[u8], source: &Path) -> Result<Self> {
        let Some(labels) = &self.labels else {
            let problem = format!("needs labels, but {} has no labels file", source.display());
            return Err(Invalid::of("classes", problem).into());
        };
        let mut present = [false; 256];
        labels.iter().for_each(|&l| present[l as usize] = true);
        let name = |c: usize| self.shape.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
        if let Some(&c) = classes.iter().find(|&&c| !present[c as usize]) {
            let known: Vec<String> = (0..256).filter(|&l| present[l]).map(name).collect();
            let problem = if (c as usize) < self.shape.classes.len() {
                format!("no training image has class '{}'", name(c as usize))
            } else {
                format!("unknown class {c}")
            };
            let problem = format!(
                "{{classes}}: {problem}; the labels in {} are [{}]",
                source.display(),
                known.join(", ")
            );
            return Err(Invalid::plain(problem).into());
        }
        let keep: Vec<usize> =
            (0..labels.len()).filter(|&i| classes.contains(&labels[i])).collect();
        Ok(self.select(&keep))
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        each!(self, s => s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each row's label code, when the data have labels.
    pub fn labels(&self) -> Option<&[u8]> {
        each!(self, s => s.labels.as_deref())
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Rows {
        map!(self, s => s.select(indices))
    }

    /// Rows `range`, in order.
    pub fn part(&self, range: std::ops::Range<usize>) -> Rows {
        match self {
            Rows::Windows(s) => Rows::Windows(s.part(range)),
            _ => self.select(&range.collect::<Vec<_>>()),
        }
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Rows {
        map!(self, s => s.take(n))
    }

    /// The stored rows as an `[N, D]` tensor on `device` (u8 images, f32 scaled vectors);
    /// `to_unit_float` turns either into the network's values.
    pub fn to_device(&self, device: Device) -> Tensor {
        each!(self, s => s.to_device(device))
    }

    /// The network's values: `[N, D]` f32 on `device`.
    pub fn to_unit(&self, device: Device) -> Tensor {
        to_unit_float(&self.to_device(device))
    }

    /// The first column of per-row output files: images are numbered by their place in
    /// the split ("index"); vectors by their data row in the file ("row", from 0), so a
    /// result joins back to the record it came from.
    pub fn ids(&self) -> (&'static str, Vec<usize>) {
        let (len, ids) = match self {
            Rows::Images(s) => (s.len(), s.ids.clone()),
            Rows::Vectors(s) => (s.len(), s.ids.clone()),
            Rows::Windows(s) => (s.len(), Some(s.ids())),
        };
        match ids {
            Some(ids) => ("row", ids),
            None => ("index", (0..len).collect()),
        }
    }

    /// Each row's file, when the rows came from several (images of a folder, windows of
    /// a folder of series).
    pub fn files(&self) -> Option<Vec<String>> {
        let files = match self {
            Rows::Images(s) => s.files.clone(),
            Rows::Vectors(s) => s.files.clone(),
            Rows::Windows(s) => s.files(),
        };
        files.map(|f| f.iter().map(|f| f.display().to_string()).collect())
    }

    /// The columns that open each line of a per-row output file: the id (see `ids`), the
    /// row's file when the rows came from several (images of a folder, windows of a
    /// folder of series), and the label's name when there are labels. Names, then one
    /// list of values per row.
    pub fn key_columns(&self, input: &DataSpec) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let (id_name, ids) = self.ids();
        let files = self.files();
        let labels = self.labels();
        let mut names = vec![id_name];
        names.extend(files.as_ref().map(|_| "file"));
        names.extend(labels.map(|_| "label"));
        let rows = (0..self.len())
            .map(|i| {
                let mut row = vec![ids[i].to_string()];
                row.extend(files.as_ref().map(|f| f[i].clone()));
                row.extend(labels.map(|l| input.class_name(l[i])));
                row
            })
            .collect();
        (names, rows)
    }

    /// The images, for what only images have (grids, image files).
    pub fn images(&self) -> Option<&ImageSet> {
        match self {
            Rows::Images(s) => Some(s),
            Rows::Vectors(_) | Rows::Windows(_) => None,
        }
    }

    /// These rows followed by `other`'s (of the same kind; a mismatch keeps these).
    pub fn concat(&self, other: &Rows) -> Rows {
        match (self, other) {
            (Rows::Vectors(t), Rows::Vectors(v)) => Rows::Vectors(t.concat(v)),
            (Rows::Images(t), Rows::Images(v)) => Rows::Images(t.concat(v)),
            (Rows::Windows(t), Rows::Windows(v)) => {
                Rows::Windows(t.concat(v).unwrap_or_else(|_| t.clone()))
            }
            _ => self.clone(),
        }
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        each!(self, s => s.width())
    }

    /// The ranges of rows that a pass over all of them takes at a time: windows of series
    /// a few megabytes at a time (they are cut as they are read); rows held in memory at
    /// once, as they are already there.
    pub fn chunks(&self) -> Vec<std::ops::Range<usize>> {
        match self {
            Rows::Windows(s) => s.chunks(),
            _ if self.is_empty() => Vec::new(),
            _ => std::iter::once(0..self.len()).collect(),
        }
    }

    /// Rows `range` as the network's values, `[n, D]` f32 on `device`.
    pub fn unit_range(&self, range: std::ops::Range<usize>, device: Device) -> Tensor {
        match self {
            Rows::Windows(s) => s.range_to_device(range, device),
            _ => to_unit_float(&each!(self, s => s.range_to_device(range, device))),
        }
    }

    /// The windows of series, when these rows are.
    pub fn windows(&self) -> Option<&WindowSet> {
        match self {
            Rows::Windows(s) => Some(s),
            _ => None,
        }
    }

    /// "images" or "rows", for messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Rows::Images(_) => "images",
            Rows::Vectors(_) | Rows::Windows(_) => "rows",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        RowSet {
            values: (0..n * 4).map(|i| i as u8).collect(),
            shape: ImageSpec::gray(2, 2),
            labels: Some((0..n as u8).collect()),
            ids: None,
            files: None,
        }
    }

    #[test]
    fn select_take_and_concat_keep_rows_labels_ids_and_files_together() {
        let s = set(5);
        let picked = s.select(&[4, 1]);
        assert_eq!(picked.values, vec![16, 17, 18, 19, 4, 5, 6, 7]);
        assert_eq!(picked.labels, Some(vec![4, 1]));
        assert_eq!(s.take(2).len(), 2);
        assert_eq!(s.take(99).len(), 5);
        let rows = Rows::Images(picked.clone());
        assert_eq!(rows.ids(), ("index", vec![0, 1]));
        // Vectors keep their rows' places in the file through select and concat.
        let file: Arc<Path> = Path::new("a.csv").into();
        let v: VectorSet = RowSet {
            values: vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
            shape: Features(2),
            labels: None,
            ids: Some(vec![3, 7, 9]),
            files: Some(vec![file.clone(); 3]),
        };
        let joined = v.select(&[2]).concat(&v.take(1));
        assert_eq!(joined.values, [4.5, 5.5, 0.5, 1.5]);
        let rows = Rows::Vectors(joined);
        assert_eq!(rows.ids(), ("row", vec![9, 3]));
        assert_eq!(rows.files(), Some(vec!["a.csv".to_string(); 2]));
        assert_eq!(rows.labels(), None);
        assert_eq!(rows.to_device(Device::Cpu).size(), [2, 2]);
        // Labels survive a concat only when both sides have them.
        assert_eq!(set(2).concat(&RowSet { labels: None, ..set(1) }).labels, None);
        assert_eq!(set(2).concat(&set(1)).labels, Some(vec![0, 1, 0]));
    }

    #[test]
    fn class_filter_keeps_only_the_listed_labels() {
        let s = set(6);
        let kept = s.with_classes(&[1, 4], Path::new("d")).unwrap();
        assert_eq!(kept.labels, Some(vec![1, 4]));
        let err = s.with_classes(&[9], Path::new("d")).unwrap_err().to_string();
        assert!(err.contains("unknown class 9") && err.contains("[0, 1, 2, 3, 4, 5]"), "{err}");
        let unlabelled = RowSet { labels: None, ..s };
        assert!(unlabelled.with_classes(&[1], Path::new("d")).is_err());
    }

    #[test]
    fn tensors_have_the_documented_shape_and_scale() {
        let t = set(3).to_device(Device::Cpu);
        assert_eq!(t.size(), vec![3, 4]);
        assert_eq!(t.kind(), Kind::Uint8);
        let f = to_unit_float(&t);
        assert_eq!(f.kind(), Kind::Float);
        assert!((f.double_value(&[2, 3]) - 11.0 / 255.0).abs() < 1e-7);
    }
}
