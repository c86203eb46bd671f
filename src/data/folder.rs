//! Folders of image files as datasets: found recursively, decoded under explicit
//! `image::Limits`, converted to 8-bit grayscale, and resized to one common size.
//!
//! Layout: `DIR/train/**` and `DIR/test/**` (or `t10k/`) when those folders exist;
//! otherwise every image under `DIR`, with a fixed 20% of them (chosen by a fixed-seed
//! shuffle of the sorted paths) as the test split. Labels come from the first folder
//! level below the split: folder names that are all numbers 0–255 are used as numbers,
//! other names by their sorted position. Images outside any label folder mean no labels.

use super::{split, ImageSet, Split};
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{GrayImage, ImageReader, Limits};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];
/// Largest side a decoded image may have, and the decoder's memory budget.
pub const MAX_SIDE: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 256 << 20;
/// Share of a flat folder held out as its test split, and the seed that picks it.
const TEST_SHARE: f64 = 0.2;
const SPLIT_SEED: u64 = 0xF01D;

/// Decodes one image file into 8-bit grayscale, refusing files whose declared size or
/// decoding memory exceed the limits before anything large is allocated.
pub fn decode_gray(path: &Path) -> Result<GrayImage> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading {}", path.display()))?;
    reader.limits(limits);
    let image =
        reader.decode().with_context(|| format!("{} is not a readable image", path.display()))?;
    Ok(image.to_luma8())
}

/// Resizes to `width × height` when needed (bilinear; images are small).
pub fn resize(image: GrayImage, width: u32, height: u32) -> GrayImage {
    if image.dimensions() == (width, height) {
        image
    } else {
        image::imageops::resize(&image, width, height, FilterType::Triangle)
    }
}

/// True when `dir` holds at least one image file anywhere below it.
pub fn has_images(dir: &Path) -> bool {
    walk(dir).map(|(images, _)| !images.is_empty()).unwrap_or(false)
}

/// Loads one split of an image folder (see the module docs for the layout).
pub fn load_split(dir: &Path, which: Split) -> Result<ImageSet> {
    let train_dir = dir.join("train");
    let (train_files, test_files, root) = if train_dir.is_dir() {
        let test_dir = [dir.join("test"), dir.join("t10k")].into_iter().find(|d| d.is_dir());
        let test = match (&test_dir, which) {
            (Some(d), _) => files(d)?,
            (None, Split::Test) => {
                bail!("{} has a train/ folder but no test/ folder", dir.display())
            }
            (None, Split::Train) => Vec::new(),
        };
        (files(&train_dir)?, test, Some((train_dir, test_dir)))
    } else {
        let all = files(dir)?;
        let n_test = split::val_count(all.len(), TEST_SHARE);
        let mut order = split::permutation(all.len(), SPLIT_SEED);
        let mut test_idx = order.split_off(all.len() - n_test);
        order.sort_unstable();
        test_idx.sort_unstable();
        let pick = |idx: &[usize]| idx.iter().map(|&i| all[i].clone()).collect::<Vec<_>>();
        (pick(&order), pick(&test_idx), None)
    };
    let Some(first) = train_files.first() else {
        bail!("{} holds no training images ({})", dir.display(), IMAGE_EXTENSIONS.join(", "));
    };
    // Every split is resized to the size of the first training image.
    let (width, height) = decode_gray(first)?.dimensions();
    let (chosen, base) = match (which, &root) {
        (Split::Train, Some((t, _))) => (&train_files, t.clone()),
        (Split::Test, Some((_, Some(t)))) => (&test_files, t.clone()),
        (Split::Train, _) => (&train_files, dir.to_path_buf()),
        (Split::Test, _) => (&test_files, dir.to_path_buf()),
    };
    if chosen.is_empty() {
        bail!(
            "{} holds no {} images",
            dir.display(),
            if which == Split::Train { "training" } else { "test" }
        );
    }
    let mut pixels = Vec::with_capacity(chosen.len() * (width * height) as usize);
    for path in chosen.iter() {
        pixels.extend_from_slice(resize(decode_gray(path)?, width, height).as_raw());
    }
    Ok(ImageSet {
        pixels,
        labels: labels(chosen, &base, &label_names(dir, &root)?),
        height: height as usize,
        width: width as usize,
    })
}

/// Image files below `dir`, sorted; other files are listed on stderr and skipped.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (images, skipped) = walk(dir).with_context(|| format!("listing {}", dir.display()))?;
    if !skipped.is_empty() {
        let shown: Vec<String> = skipped.iter().take(5).map(|p| p.display().to_string()).collect();
        let more = if skipped.len() > 5 {
            format!(" and {} more", skipped.len() - 5)
        } else {
            String::new()
        };
        crate::note(format_args!(
            "note: skipped {} file(s) that are not .png/.jpg/.jpeg: {}{more}",
            skipped.len(),
            shown.join(", ")
        ));
    }
    Ok(images)
}

/// (image files, other files) below `dir`, recursively, each list sorted.
fn walk(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut other) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_image(&path) {
                images.push(path);
            } else {
                other.push(path);
            }
        }
    }
    images.sort();
    other.sort();
    Ok((images, other))
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The label folder names of the whole dataset (train and test alike), sorted.
fn label_names(dir: &Path, root: &Option<(PathBuf, Option<PathBuf>)>) -> Result<Vec<String>> {
    let bases: Vec<PathBuf> = match root {
        Some((train, test)) => std::iter::once(train.clone()).chain(test.clone()).collect(),
        None => vec![dir.to_path_buf()],
    };
    let mut names = BTreeSet::new();
    for base in bases {
        for entry in
            std::fs::read_dir(&base).with_context(|| format!("listing {}", base.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                names.insert(path.file_name().unwrap_or_default().to_string_lossy().into_owned());
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// Labels for `files` under `base`, or `None` when any file is outside a label folder or
/// there are more than 256 classes.
fn labels(files: &[PathBuf], base: &Path, names: &[String]) -> Option<Vec<u8>> {
    let numeric: Option<Vec<u8>> = names.iter().map(|n| n.parse::<u8>().ok()).collect();
    if names.is_empty() || names.len() > 256 {
        return None;
    }
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(base).ok()?;
            let mut parts = rel.components();
            let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
            parts.next()?; // the file itself must lie below the label folder
            let pos = names.iter().position(|n| *n == first)?;
            Some(numeric.as_ref().map_or(pos as u8, |num| num[pos]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
    }

    #[test]
    fn flat_folder_splits_and_resizes_to_the_first_image() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            png(&dir.path().join(format!("a{i}.png")), 8 + i, 8, 10 * i as u8);
        }
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let train = load_split(dir.path(), Split::Train).unwrap();
        let test = load_split(dir.path(), Split::Test).unwrap();
        assert_eq!((train.len(), test.len()), (8, 2));
        assert_eq!((train.height, train.width), (8, 8));
        assert_eq!((test.height, test.width), (8, 8));
        assert_eq!(train.labels, None);
    }

    #[test]
    fn label_folders_give_labels_numeric_or_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in [("3", 2), ("7", 3)] {
            for i in 0..n {
                png(&dir.path().join("train").join(class).join(format!("{i}.png")), 4, 4, 0);
                png(&dir.path().join("test").join(class).join(format!("{i}.png")), 4, 4, 0);
            }
        }
        let train = load_split(dir.path(), Split::Train).unwrap();
        assert_eq!(train.labels, Some(vec![3, 3, 7, 7, 7]));
        let names = vec!["cat".to_string(), "dog".to_string()];
        let files = vec![PathBuf::from("/d/dog/1.png"), PathBuf::from("/d/cat/2.png")];
        assert_eq!(labels(&files, Path::new("/d"), &names), Some(vec![1, 0]));
        let loose = vec![PathBuf::from("/d/1.png")];
        assert_eq!(labels(&loose, Path::new("/d"), &names), None);
    }

    #[test]
    fn broken_and_hostile_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("ok.png"), 4, 4, 0);
        std::fs::write(dir.path().join("zero.png"), []).unwrap();
        let both = load_split(dir.path(), Split::Train).and(load_split(dir.path(), Split::Test));
        let err = format!("{:#}", both.unwrap_err());
        assert!(err.contains("zero.png") && err.contains("not a readable image"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("a.txt"), "x").unwrap();
        let err = load_split(empty.path(), Split::Train).unwrap_err().to_string();
        assert!(err.contains("holds no training images"), "{err}");
    }
}
