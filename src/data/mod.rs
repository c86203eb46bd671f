//! Datasets: IDX folders on disk become `ImageSet`s (bytes in host memory), which become
//! u8 tensors on the training device and are scaled to [0, 1] a batch at a time.

pub mod batch;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod kind;
pub mod noise;
pub mod normal;
pub mod record;
pub mod series;
pub mod spec;
pub mod split;
pub mod table;
pub mod vectors;

use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use spec::{DataSpec, ImageRequest, ImageSpec};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The four files of an MNIST-style folder, without the optional `.gz`.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The two halves of an MNIST-style folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `train-*` files
    Train,
    /// `t10k-*` files
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images of one spec (size, colour), each stored as its channel planes of bytes one
/// after another (C×H×W, PyTorch's layout), with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// `len() * spec.values()` bytes.
    pub pixels: Vec<u8>,
    pub labels: Option<Vec<u8>>,
    pub spec: ImageSpec,
    /// For images read from a folder: each image's file, relative to the data folder.
    pub files: Option<Vec<PathBuf>>,
}

impl ImageSet {
    /// These images, then `other`'s (same spec; labels kept only when both have them).
    pub fn concat(&self, other: &ImageSet) -> ImageSet {
        let mut pixels = self.pixels.clone();
        pixels.extend_from_slice(&other.pixels);
        let files = self.files.as_ref().zip(other.files.as_ref());
        ImageSet {
            pixels,
            labels: join_labels(&self.labels, &other.labels),
            spec: self.spec,
            files: files.map(|(a, b)| a.iter().chain(b).cloned().collect()),
        }
    }

    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per image: C·H·W.
    pub fn image_len(&self) -> usize {
        self.spec.values() as usize
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let p = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * p);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * p..(i + 1) * p]);
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        let files = self.files.as_ref().map(|f| indices.iter().map(|&i| f[i].clone()).collect());
        ImageSet { pixels, labels, spec: self.spec, files }
    }

    /// The first `n` images (all of them when there are fewer).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            spec: self.spec,
            files: self.files.as_ref().map(|f| f[..n].to_vec()),
        }
    }

    /// The images whose label is in `classes`. Fails when there are no labels or a class
    /// never occurs.
    pub fn with_classes(&self, classes: &[u8], source: &Path) -> Result<ImageSet> {
        let Some(labels) = &self.labels else {
            bail!("--classes needs labels, but {} has no labels file", source.display());
        };
        let mut present = [false; 256];
        labels.iter().for_each(|&l| present[l as usize] = true);
        if let Some(c) = classes.iter().find(|&&c| !present[c as usize]) {
            let known: Vec<usize> = (0..256).filter(|&l| present[l]).collect();
            bail!("--classes: unknown class {c}; the labels in {} are {known:?}", source.display());
        }
        let keep: Vec<usize> =
            (0..labels.len()).filter(|&i| classes.contains(&labels[i])).collect();
        Ok(self.select(&keep))
    }

    /// The images as a `[N, C*H*W]` f32 tensor in [0, 1] on `device`.
    pub fn to_unit(&self, device: Device) -> Tensor {
        to_unit_float(&self.to_device(device))
    }

    /// The images as a `[N, C*H*W]` u8 tensor on `device`.
    pub fn to_device(&self, device: Device) -> Tensor {
        Tensor::from_slice(&self.pixels)
            .view([self.len() as i64, self.image_len() as i64])
            .to_device(device)
    }
}

/// Two sets' labels one after the other; none when either set has none.
pub fn join_labels(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> Option<Vec<u8>> {
    a.as_ref().zip(b.as_ref()).map(|(a, b)| a.iter().chain(b).copied().collect())
}

/// A run's rows, whichever kind of data it trains on.
#[derive(Clone, Debug, PartialEq)]
pub enum Rows {
    Images(ImageSet),
    Vectors(vectors::VectorSet),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Images(s) => s.len(),
            Rows::Vectors(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each row's label code, when the data have labels.
    pub fn labels(&self) -> Option<&[u8]> {
        match self {
            Rows::Images(s) => s.labels.as_deref(),
            Rows::Vectors(s) => s.labels.as_deref(),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Rows {
        match self {
            Rows::Images(s) => Rows::Images(s.select(indices)),
            Rows::Vectors(s) => Rows::Vectors(s.select(indices)),
        }
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Rows {
        match self {
            Rows::Images(s) => Rows::Images(s.take(n)),
            Rows::Vectors(s) => Rows::Vectors(s.take(n)),
        }
    }

    /// The stored rows as an `[N, D]` tensor on `device` (u8 images, f32 scaled vectors);
    /// `to_unit_float` turns either into the network's values.
    pub fn to_device(&self, device: Device) -> Tensor {
        match self {
            Rows::Images(s) => s.to_device(device),
            Rows::Vectors(s) => s.to_device(device),
        }
    }

    /// The first column of per-row output files: images are numbered by their place in
    /// the split ("index"); vectors by their data row in the file ("row", from 0), so a
    /// result joins back to the record it came from.
    pub fn ids(&self) -> (&'static str, Vec<usize>) {
        match self {
            Rows::Images(s) => ("index", (0..s.len()).collect()),
            Rows::Vectors(s) => ("row", s.ids.clone()),
        }
    }

    /// Each row's file, when the rows came from several (images of a folder, windows of
    /// a folder of series).
    pub fn files(&self) -> Option<Vec<String>> {
        match self {
            Rows::Images(s) => {
                s.files.as_ref().map(|f| f.iter().map(|f| f.display().to_string()).collect())
            }
            Rows::Vectors(s) => {
                s.files.as_ref().map(|f| f.iter().map(|f| f.display().to_string()).collect())
            }
        }
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

    /// The network's values: `[N, D]` f32 on `device`.
    pub fn to_unit(&self, device: Device) -> Tensor {
        to_unit_float(&self.to_device(device))
    }

    /// The images, for what only images have (grids, image files).
    pub fn images(&self) -> Option<&ImageSet> {
        match self {
            Rows::Images(s) => Some(s),
            Rows::Vectors(_) => None,
        }
    }

    /// These rows followed by `other`'s (of the same kind; a mismatch keeps these).
    pub fn concat(&self, other: &Rows) -> Rows {
        match (self, other) {
            (Rows::Vectors(t), Rows::Vectors(v)) => Rows::Vectors(t.concat(v)),
            (Rows::Images(t), Rows::Images(v)) => Rows::Images(t.concat(v)),
            _ => self.clone(),
        }
    }

    /// "images" or "rows", for messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Rows::Images(_) => "images",
            Rows::Vectors(_) => "rows",
        }
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

/// Copies any f32 tensor to the host as a flat vector (row-major).
pub fn to_host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).flatten(0, -1))
        .context("copying a tensor to the host")
}

/// Finds `data/mnist` when `--data` is not given: first under the working directory, then
/// in the checkout the binary was built from.
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from(crate::config::DEFAULT_DATA_DIR);
    if local.is_dir() {
        return local;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::config::DEFAULT_DATA_DIR);
    if built.is_dir() {
        built
    } else {
        local
    }
}

/// The images a run trains and validates on: the training files of `dir` converted as
/// `request` asks, kept to `cfg.classes`, cut to the first `cfg.limit`, split by
/// `cfg.seed`. Training and every later command that needs them (e.g. the PCA baseline,
/// with the run's recorded spec as the request) call this one function.
pub fn training_sets(
    dir: &Path,
    cfg: &TrainConfig,
    request: &ImageRequest,
) -> Result<(ImageSet, ImageSet)> {
    let mut all = load_split(dir, Split::Train, request)?;
    if let Some(classes) = &cfg.classes {
        all = all.with_classes(classes, dir)?;
    }
    if let Some(limit) = cfg.limit {
        all = all.take(limit);
    }
    let (train, val) = split::train_val(all.len(), cfg.val_fraction, cfg.seed);
    if train.len() < 2 {
        bail!(
            "{} leaves {} training image(s) after --classes, --limit and --val-fraction; at least 2 are needed",
            dir.display(),
            train.len()
        );
    }
    Ok((all.select(&train), all.select(&val)))
}

/// Loads one split of a data folder, converted as `request` asks: MNIST-style IDX files
/// when the folder has them (`<prefix>-images-idx3-ubyte[.gz]` and, when present,
/// `<prefix>-labels-idx1-ubyte[.gz]`), else the image files below it (see `folder`).
pub fn load_split(dir: &Path, split: Split, request: &ImageRequest) -> Result<ImageSet> {
    if !dir.is_dir() {
        if dir.exists() {
            bail!("data folder {} is not a folder", dir.display());
        }
        let hint = if dir.ends_with(crate::config::DEFAULT_DATA_DIR) {
            " (run scripts/setup.sh to create it)"
        } else {
            ""
        };
        bail!("data folder {} does not exist{hint}", dir.display());
    }
    let prefix = split.prefix();
    let is_idx = find(dir, Split::Train.prefix(), "images-idx3-ubyte").is_some()
        || find(dir, Split::Test.prefix(), "images-idx3-ubyte").is_some();
    if !is_idx && folder::has_images(dir) {
        return folder::load_split(dir, split, request);
    }
    let images_path = find(dir, prefix, "images-idx3-ubyte").with_context(|| {
        format!(
            "no {prefix} images in {}: expected {prefix}-images-idx3-ubyte.gz or {prefix}-images-idx3-ubyte \
             (or a folder of .png/.jpg images)",
            dir.display()
        )
    })?;
    let images = idx::read_file(&images_path, 3)
        .with_context(|| format!("reading {}", images_path.display()))?;
    let (n, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if n == 0 || height == 0 || width == 0 {
        bail!("{} holds no images (dimensions {:?})", images_path.display(), images.dims);
    }
    let labels = match find(dir, prefix, "labels-idx1-ubyte") {
        None => None,
        Some(path) => {
            let labels =
                idx::read_file(&path, 1).with_context(|| format!("reading {}", path.display()))?;
            if labels.dims[0] != n {
                bail!(
                    "{} holds {} labels but {} holds {n} images",
                    path.display(),
                    labels.dims[0],
                    images_path.display()
                );
            }
            Some(labels.data)
        }
    };
    let stored = ImageSet {
        pixels: images.data,
        labels,
        files: None,
        spec: ImageSpec {
            background: request.background,
            ..ImageSpec::gray(height as i64, width as i64)
        },
    };
    Ok(folder::convert_gray_set(stored, request))
}

/// The first existing file among the accepted spellings of an MNIST file name.
fn find(dir: &Path, prefix: &str, stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen('-', ".", 1); // the original site's `train-images.idx3-ubyte`
    [
        format!("{prefix}-{stem}.gz"),
        format!("{prefix}-{stem}"),
        format!("{prefix}-{dotted}.gz"),
        format!("{prefix}-{dotted}"),
    ]
    .into_iter()
    .map(|name| dir.join(name))
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            pixels: (0..n * 4).map(|i| i as u8).collect(),
            labels: Some((0..n as u8).collect()),
            spec: ImageSpec::gray(2, 2),
            files: None,
        }
    }

    #[test]
    fn select_and_take_keep_images_and_labels_together() {
        let s = set(5);
        let picked = s.select(&[4, 1]);
        assert_eq!(picked.pixels, vec![16, 17, 18, 19, 4, 5, 6, 7]);
        assert_eq!(picked.labels, Some(vec![4, 1]));
        assert_eq!(s.take(2).len(), 2);
        assert_eq!(s.take(99).len(), 5);
    }

    #[test]
    fn class_filter_keeps_only_the_listed_labels() {
        let s = set(6);
        let kept = s.with_classes(&[1, 4], Path::new("d")).unwrap();
        assert_eq!(kept.labels, Some(vec![1, 4]));
        let err = s.with_classes(&[9], Path::new("d")).unwrap_err().to_string();
        assert!(err.contains("unknown class 9") && err.contains("[0, 1, 2, 3, 4, 5]"), "{err}");
        let unlabelled = ImageSet { labels: None, ..s };
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

    #[test]
    fn missing_folder_and_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("nope");
        let err =
            load_split(&gone, Split::Train, &ImageRequest::default()).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("does not exist"), "{err}");
        let err = format!(
            "{:#}",
            load_split(dir.path(), Split::Test, &ImageRequest::default()).unwrap_err()
        );
        assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");
    }

    #[test]
    fn label_count_must_match_image_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            idx::encode(&[2, 1, 1], &[1, 2]),
        )
        .unwrap();
        std::fs::write(dir.path().join("train-labels.idx1-ubyte"), idx::encode(&[3], &[1, 2, 3]))
            .unwrap();
        let err =
            load_split(dir.path(), Split::Train, &ImageRequest::default()).unwrap_err().to_string();
        assert!(err.contains("holds 3 labels") && err.contains("holds 2 images"), "{err}");
    }
}
