//! Datasets: IDX folders and image folders on disk become `ImageSet`s, vector files
//! `VectorSet`s (both `rows::RowSet`s in host memory), which become tensors on the
//! training device; images are scaled to [0, 1] a batch at a time.

pub mod batch;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod kind;
pub mod noise;
pub mod normal;
pub mod period;
pub mod record;
pub mod rows;
pub mod series;
pub mod spec;
pub mod spectral;
pub mod split;
pub mod table;
pub mod vectors;
pub mod windows;

use crate::config::TrainConfig;
use crate::invalid::Invalid;
use anyhow::{bail, Context, Result};
pub use rows::{to_unit_float, ImageSet, Rows};
use spec::{ImageRequest, ImageSpec};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

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
        let problem = format!(
            "{} leaves {} training image(s) after {{classes}}, {{limit}} and {{val_fraction}}; \
             at least 2 are needed",
            dir.display(),
            train.len()
        );
        return Err(Invalid::plain(problem).into());
    }
    Ok((all.select(&train), all.select(&val)))
}

/// Whether `dir` is a folder of image files rather than MNIST-style IDX files.
fn is_image_folder(dir: &Path) -> bool {
    let is_idx = find(dir, Split::Train.prefix(), "images-idx3-ubyte").is_some()
        || find(dir, Split::Test.prefix(), "images-idx3-ubyte").is_some();
    !is_idx && folder::has_images(dir)
}

/// The class names a new run on the images in `dir` records: an image folder's label
/// folders unless they are numbered; none for IDX files, whose labels are numbers.
pub fn image_class_names(dir: &Path) -> Result<Vec<String>> {
    if is_image_folder(dir) {
        folder::class_names(dir)
    } else {
        Ok(Vec::new())
    }
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
    if is_image_folder(dir) {
        return folder::load_split(dir, split, request);
    }
    let images_path = find(dir, prefix, "images-idx3-ubyte").with_context(|| {
        format!(
            "no {prefix} images in {}: expected {prefix}-images-idx3-ubyte.gz or {prefix}-images-idx3-ubyte \
             (or a folder of {} images)",
            dir.display(),
            folder::extensions_named()
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
        values: images.data,
        shape: ImageSpec {
            background: request.background,
            ..ImageSpec::gray(height as i64, width as i64)
        },
        labels,
        ids: None,
        files: None,
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
