//! Folders of image files as datasets, and the one conversion of decoded images into a
//! spec's values: files are decoded under explicit `image::Limits`, transparency is
//! flattened onto the spec's background, the colour is converted (gray: luma with
//! Rec. 709 weights, computed before resizing as earlier versions did), the image resized
//! to the spec's size (bilinear), and stored as channel planes.
//!
//! Layout: `DIR/train/**` and `DIR/test/**` (or `t10k/`) when those folders exist;
//! otherwise every image under `DIR`, with a fixed 20% of them (chosen by a fixed-seed
//! shuffle of the sorted paths) as the test split. Labels come from the first folder
//! level below the split: folder names that are all numbers 0–255 are used as numbers,
//! other names by their sorted position, and those names are recorded as the run's class
//! names (`ImageSpec::classes`): a run's later folders are coded by that list, so a folder
//! holding only some of the classes gets the same codes. Images outside any label folder
//! mean no labels, as does a folder name a run does not know (with a note).

use super::spec::{Background, Color, ColorChoice, ImageRequest, ImageSpec, Size};
use super::{split, ImageSet, Split};
use crate::invalid::Invalid;
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageReader, Limits, RgbImage};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"];

/// The extensions as a message names them: ".png/.jpg/…".
pub fn extensions_named() -> String {
    IMAGE_EXTENSIONS.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join("/")
}
/// Largest side a decoded image may have, and the decoder's memory budget.
pub const MAX_SIDE: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 256 << 20;
/// Share of a flat folder held out as its test split, and the seed that picks it.
const TEST_SHARE: f64 = 0.2;
const SPLIT_SEED: u64 = 0xF01D;

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
    ImageReader::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading {}", path.display()))
}

/// Decodes one image file, refusing files whose declared size or decoding memory exceed
/// the limits before anything large is allocated.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = reader(path)?;
    reader.limits(limits);
    reader.decode().with_context(|| {
        format!(
            "{} is not a readable image (read: PNG/JPEG up to {MAX_SIDE} pixels a side and {} MiB decoded)",
            path.display(),
            MAX_DECODE_BYTES >> 20
        )
    })
}

/// The size an image file declares, read from its header alone.
pub fn declared_size(path: &Path) -> Result<Size> {
    let (width, height) = reader(path)?
        .into_dimensions()
        .with_context(|| format!("{} is not a readable image", path.display()))?;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        bail!(
            "{} declares {width}x{height} pixels (width x height); sides from 1 to {MAX_SIDE} are read",
            path.display()
        );
    }
    Ok(Size { height, width })
}

/// The one size of `files`, or an error listing the sizes found and the `--resize` that
/// would make them one.
/// With `skip_unreadable`, a file whose header cannot be read is left out.
fn common_size<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a PathBuf>,
    skip_unreadable: bool,
) -> Result<Size> {
    let mut sizes: BTreeMap<Size, (usize, &PathBuf)> = BTreeMap::new();
    for f in files {
        match declared_size(f) {
            Ok(size) => sizes.entry(size).or_insert((0, f)).0 += 1,
            Err(_) if skip_unreadable => {}
            Err(e) => return Err(e),
        }
    }
    let mut by_count: Vec<(Size, usize, &PathBuf)> =
        sizes.into_iter().map(|(s, (n, f))| (s, n, f)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    match by_count.as_slice() {
        [] => bail!("{} holds no images ({})", dir.display(), IMAGE_EXTENSIONS.join(", ")),
        [(size, _, _)] => Ok(*size),
        [(most, ..), ..] => {
            let listed: Vec<String> = by_count
                .iter()
                .take(5)
                .map(|(s, n, f)| format!("{s}: {n} (e.g. {})", f.display()))
                .collect();
            // The most common size, unless it is too large to train on here.
            let suggested = most.within(super::spec::PRACTICAL_SIDE);
            let why = match suggested == *most {
                true => String::new(),
                false => {
                    format!(" (the most common, {most}, makes a large network that trains slowly)")
                }
            };
            let problem = format!(
                "{} holds images of {} sizes (height x width: {}{}); pass {{resize}} \
                 {suggested} to convert them all to one size{why}",
                dir.display(),
                by_count.len(),
                listed.join(", "),
                if by_count.len() > 5 { ", ..." } else { "" }
            );
            Err(Invalid::plain(problem).into())
        }
    }
}

/// `image` with its transparency flattened onto `background`: an 8-bit gray or RGB image.
fn flatten(image: DynamicImage, background: Background) -> DynamicImage {
    let colour = image.color().has_color();
    let Some(bg) = background.level().filter(|_| image.color().has_alpha()) else {
        return if colour {
            DynamicImage::ImageRgb8(image.to_rgb8())
        } else {
            DynamicImage::ImageLuma8(image.to_luma8())
        };
    };
    let blend = |c: u8, a: u8| {
        let (c, a, bg) = (c as u32, a as u32, bg as u32);
        ((c * a + bg * (255 - a) + 127) / 255) as u8
    };
    if colour {
        let rgba = image.to_rgba8();
        DynamicImage::ImageRgb8(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            image::Rgb([blend(r, a), blend(g, a), blend(b, a)])
        }))
    } else {
        let la = image.to_luma_alpha8();
        DynamicImage::ImageLuma8(GrayImage::from_fn(la.width(), la.height(), |x, y| {
            let [l, a] = la.get_pixel(x, y).0;
            image::Luma([blend(l, a)])
        }))
    }
}

/// True when some pixel of a flattened image is not gray.
fn has_colour(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]),
        _ => false,
    }
}

/// Resizes to `size` when needed (bilinear).
fn resize<P: image::Pixel<Subpixel = u8> + 'static>(
    image: image::ImageBuffer<P, Vec<u8>>,
    size: Size,
) -> image::ImageBuffer<P, Vec<u8>> {
    if image.dimensions() == (size.width, size.height) {
        image
    } else {
        image::imageops::resize(&image, size.width, size.height, FilterType::Triangle)
    }
}

/// One converted image: its gray planes, and its RGB planes when it has colour and the
/// request may need them.
struct Converted {
    gray: Vec<u8>,
    rgb: Option<Vec<u8>>,
}

fn convert(image: DynamicImage, request: &ImageRequest, size: Size) -> Converted {
    // Where no transparency is composited, luma comes from the decoded image itself, at
    // its own bit depth, as versions before the data description computed it.
    let composite = image.color().has_alpha() && request.background.level().is_some();
    let direct_gray = (!composite && request.color != ColorChoice::Rgb).then(|| image.to_luma8());
    let flat = flatten(image, request.background);
    let want_rgb = request.color != ColorChoice::Gray && has_colour(&flat);
    let rgb = want_rgb.then(|| {
        let rgb = resize(flat.to_rgb8(), size);
        // Interleaved RGB → three planes.
        (0..3).flat_map(|c| rgb.as_raw().iter().skip(c).step_by(3).copied()).collect()
    });
    let gray = if request.color == ColorChoice::Rgb && rgb.is_some() {
        Vec::new() // not needed
    } else {
        resize(direct_gray.unwrap_or_else(|| flat.to_luma8()), size).into_raw()
    };
    Converted { gray, rgb }
}

/// Joins converted images into one buffer of `color` planes.
fn assemble(images: Vec<Converted>, color: Color) -> Vec<u8> {
    let mut out = Vec::new();
    for c in images {
        match (color, c.rgb) {
            (Color::Rgb, Some(rgb)) => out.extend_from_slice(&rgb),
            (Color::Rgb, None) => (0..3).for_each(|_| out.extend_from_slice(&c.gray)),
            (Color::Gray, _) => out.extend_from_slice(&c.gray),
        }
    }
    out
}

/// Decodes and converts `files` as `request` asks (`request.size` must be set), all or
/// nothing: the first unreadable file stops it, named.
pub fn convert_files(files: &[PathBuf], request: &ImageRequest) -> Result<(Vec<u8>, ImageSpec)> {
    let request = ImageRequest { skip_unreadable: false, ..request.clone() };
    convert_kept(files, &request).map(|(values, spec, _)| (values, spec))
}

/// `convert_files`, with the files that cannot be decoded left out when
/// `request.skip_unreadable` says so: the values, the spec and the files kept.
fn convert_kept(
    files: &[PathBuf],
    request: &ImageRequest,
) -> Result<(Vec<u8>, ImageSpec, Vec<PathBuf>)> {
    let size = request.size.context("converting images needs a target size")?;
    let (mut converted, mut kept) = (Vec::new(), Vec::new());
    for f in files {
        match decode(f) {
            Ok(image) => {
                converted.push(convert(image, request, size));
                kept.push(f.clone());
            }
            Err(_) if request.skip_unreadable => {}
            Err(e) => return Err(e),
        }
    }
    let color = match request.color {
        ColorChoice::Gray => Color::Gray,
        ColorChoice::Rgb => Color::Rgb,
        ColorChoice::Auto if converted.iter().any(|c| c.rgb.is_some()) => Color::Rgb,
        ColorChoice::Auto => Color::Gray,
    };
    let spec = ImageSpec {
        color,
        height: size.height as i64,
        width: size.width as i64,
        background: request.background,
        skip_unreadable: request.skip_unreadable,
        classes: request.classes.clone(),
    };
    Ok((assemble(converted, color), spec, kept))
}

/// Converts grayscale images (an IDX split) as `request` asks: unchanged when the size
/// and colour already fit, else resized and, for RGB, the gray plane repeated.
pub fn convert_gray_set(set: ImageSet, request: &ImageRequest) -> ImageSet {
    let spec = set.shape.clone();
    let size =
        request.size.unwrap_or(Size { height: spec.height as u32, width: spec.width as u32 });
    let same_size = (size.height as i64, size.width as i64) == (spec.height, spec.width);
    let color = if request.color == ColorChoice::Rgb { Color::Rgb } else { Color::Gray };
    if same_size && color == Color::Gray {
        return set;
    }
    let (w, h) = (spec.width as u32, spec.height as u32);
    let converted = set
        .values
        .chunks_exact(set.width())
        .map(|image| {
            let gray = GrayImage::from_raw(w, h, image.to_vec()).expect("sizes agree");
            Converted { gray: resize(gray, size).into_raw(), rgb: None }
        })
        .collect();
    let spec = ImageSpec {
        color,
        height: size.height as i64,
        width: size.width as i64,
        background: request.background,
        skip_unreadable: request.skip_unreadable,
        classes: request.classes.clone(),
    };
    let values = assemble(converted, color);
    ImageSet { values, shape: spec, labels: set.labels, ids: None, files: set.files }
}

/// True when `dir` holds at least one image file anywhere below it.
pub fn has_images(dir: &Path) -> bool {
    walk(dir).map(|(images, _)| !images.is_empty()).unwrap_or(false)
}

/// Loads one split of an image folder (see the module docs for the layout), converted as
/// `request` asks. Without a requested size every image of the folder (both splits) must
/// have the same one.
pub fn load_split(dir: &Path, which: Split, request: &ImageRequest) -> Result<ImageSet> {
    let (train_files, test_files, root) = if let Some((train_dir, test_dir)) = split_folders(dir) {
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
    if train_files.is_empty() {
        bail!("{} holds no training images ({})", dir.display(), IMAGE_EXTENSIONS.join(", "));
    }
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
    let size = match request.size {
        Some(size) => size,
        None => common_size(dir, train_files.iter().chain(&test_files), request.skip_unreadable)
            .map_err(|e| skip_hint(e, request))?,
    };
    let (pixels, spec, kept) =
        convert_kept(chosen, &ImageRequest { size: Some(size), ..request.clone() })
            .map_err(|e| skip_hint(e, request))?;
    if kept.is_empty() {
        bail!("{} holds no readable images", dir.display());
    }
    let (labels, classes) = labels(&kept, &base, &label_names(dir, &root)?, &request.classes);
    let files = kept.iter().map(|f| f.strip_prefix(dir).unwrap_or(f).into()).collect();
    let shape = ImageSpec { classes, ..spec };
    Ok(ImageSet { values: pixels, shape, labels, ids: None, files: Some(files) })
}

/// `DIR/train` and `DIR/test` (or `t10k`), when the folder is laid out in splits.
fn split_folders(dir: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let train_dir = dir.join("train");
    let test_dir = [dir.join("test"), dir.join("t10k")].into_iter().find(|d| d.is_dir());
    train_dir.is_dir().then_some((train_dir, test_dir))
}

/// The class names a new run on the image folder `dir` records (its label folders,
/// sorted); none when the folders are numbered.
pub fn class_names(dir: &Path) -> Result<Vec<String>> {
    let names = label_names(dir, &split_folders(dir))?;
    let numbered = names.iter().all(|n| n.parse::<u8>().is_ok());
    Ok(if numbered || names.len() > 256 { Vec::new() } else { names })
}

/// A file that stopped reading a folder, with the flag that leaves such files out (a
/// refusal of mixed sizes, or an error while they are left out, is passed on as it is).
fn skip_hint(e: anyhow::Error, request: &ImageRequest) -> anyhow::Error {
    if request.skip_unreadable || e.downcast_ref::<Invalid>().is_some() {
        return e;
    }
    let problem = format!("{e:#}; train with {{skip_unreadable}} to leave such files out");
    Invalid::plain(problem).into()
}

/// Image files below `dir`, sorted. Other files are passed over here without a word:
/// `train` names them once (`skipped_files`) and lists them in the run folder. Hidden files
/// and folders (`.DS_Store`, `.git`) are passed over as well.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (images, _) = walk(dir).with_context(|| format!("listing {}", dir.display()))?;
    Ok(images)
}

/// The files below the image folder `dir` that are not images (hidden ones aside), sorted,
/// with a note naming the first few.
pub fn skipped_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let (_, skipped) = walk(dir).with_context(|| format!("listing {}", dir.display()))?;
    if !skipped.is_empty() {
        let shown: Vec<String> = skipped.iter().take(5).map(|p| p.display().to_string()).collect();
        let more = if skipped.len() > 5 {
            format!(" and {} more", skipped.len() - 5)
        } else {
            String::new()
        };
        crate::log::note(format_args!(
            "note: skipped {} that {} not {}: {}{more}",
            crate::log::counted(skipped.len(), "file"),
            if skipped.len() == 1 { "is" } else { "are" },
            extensions_named(),
            shown.join(", ")
        ));
    }
    Ok(skipped)
}

/// The image files below `dir` that cannot be decoded, each with why, and a note naming
/// the first few: what `--skip-unreadable` leaves out.
pub fn unreadable_files(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let (images, _) = walk(dir).with_context(|| format!("listing {}", dir.display()))?;
    let bad: Vec<(PathBuf, String)> = images
        .into_iter()
        .filter_map(|f| decode(&f).err().map(|e| (f, format!("{e:#}"))))
        .collect();
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(5).map(|(p, _)| p.display().to_string()).collect();
        crate::log::note(format_args!(
            "note: left out {} that cannot be read: {}{}",
            crate::log::counted(bad.len(), "image file"),
            shown.join(", "),
            if bad.len() > 5 { format!(" and {} more", bad.len() - 5) } else { String::new() }
        ));
    }
    Ok(bad)
}

/// The first image below `dir` whose shape `size` stretches (aspect ratio off by more than
/// 1%), with its own size: for a note when `--resize` distorts the images.
pub fn stretched_by(dir: &Path, size: Size) -> Option<(PathBuf, Size)> {
    let (images, _) = walk(dir).ok()?;
    images.into_iter().take(1000).find_map(|file| {
        let own = declared_size(&file).ok()?;
        let ratio = |s: Size| s.width as f64 / s.height as f64;
        ((ratio(own) / ratio(size) - 1.0).abs() > 0.01).then_some((file, own))
    })
}

/// (image files, other files) below `dir`, recursively, each list sorted.
fn walk(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut other) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
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

/// The label folder names of the whole dataset (train and test alike; hidden folders
/// such as `.ipynb_checkpoints` aside), sorted.
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
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') {
                names.insert(name);
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// The label folder of each of `files` under `base`, or `None` when any file lies outside
/// one.
fn label_folders(files: &[PathBuf], base: &Path) -> Option<Vec<String>> {
    files
        .iter()
        .map(|f| {
            let mut parts = f.strip_prefix(base).ok()?.components();
            let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
            parts.next()?; // the file itself must lie below the label folder
            Some(first)
        })
        .collect()
}

/// Labels for `files` under `base` and the class names they index. With a run's class
/// names (`recorded`) a folder is coded by its place among them, and a folder they lack
/// leaves the images unlabelled (with a note). Without, the folders `names` (all of the
/// dataset's) are numbers used as such, or names coded by their sorted place and returned.
/// No labels when a file lies outside a label folder or there are more than 256 classes.
fn labels(
    files: &[PathBuf],
    base: &Path,
    names: &[String],
    recorded: &[String],
) -> (Option<Vec<u8>>, Vec<String>) {
    let Some(folders) = label_folders(files, base) else {
        return (None, recorded.to_vec());
    };
    if !recorded.is_empty() {
        let codes: Result<Vec<u8>, &String> = folders
            .iter()
            .map(|f| recorded.iter().position(|c| c == f).map(|i| i as u8).ok_or(f))
            .collect();
        if let Err(unknown) = &codes {
            crate::log::note(format_args!(
                "note: the folder '{unknown}' in {} is not one of the run's classes ({}); the \
                 images are read without labels",
                base.display(),
                recorded.join(", ")
            ));
        }
        return (codes.ok(), recorded.to_vec());
    }
    if names.is_empty() || names.len() > 256 {
        return (None, Vec::new());
    }
    let numeric: Option<Vec<u8>> = names.iter().map(|n| n.parse::<u8>().ok()).collect();
    let code = |f: &String| -> Option<u8> {
        let pos = names.iter().position(|n| n == f)?;
        Some(numeric.as_ref().map_or(pos as u8, |num| num[pos]))
    };
    let classes = if numeric.is_some() { Vec::new() } else { names.to_vec() };
    (folders.iter().map(code).collect(), classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
    }

    fn load(dir: &Path, which: Split, request: &ImageRequest) -> Result<ImageSet> {
        load_split(dir, which, request)
    }

    #[test]
    fn mixed_sizes_are_refused_unless_resized() {
        // Earlier versions resized silently to the first image's size; now the user
        // chooses the size.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            png(&dir.path().join(format!("a{i}.png")), if i < 7 { 8 } else { 12 }, 8, 10 * i as u8);
        }
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let mut err = String::new();
        let mut listed = Vec::new();
        let lines = crate::log::tests::lines_of(|| {
            let e = load(dir.path(), Split::Train, &ImageRequest::default()).unwrap_err();
            err = e.to_string();
            listed = skipped_files(dir.path()).unwrap();
        });
        // The file that is no image is passed over by reading and named by `skipped_files`,
        // through the installed sink.
        let skipped = "note: skipped 1 file that is not .png/.jpg/.jpeg/.webp/.bmp/.tif/.tiff: ";
        let noted = lines.iter().filter(|l| l.starts_with(skipped) && l.ends_with("notes.txt"));
        assert_eq!((noted.count(), listed.len()), (1, 1), "{lines:?}");
        // --resize to another shape: the first image it stretches.
        let square = Size { height: 8, width: 8 };
        let (file, own) = stretched_by(dir.path(), square).unwrap();
        assert_eq!((file.file_name().unwrap().to_str(), own.width), (Some("a7.png"), 12));
        assert!(stretched_by(dir.path(), Size { height: 4, width: 6 }).is_some());
        assert!(
            err.contains("2 sizes") && err.contains("8x8: 7") && err.contains("8x12: 3"),
            "{err}"
        );
        assert!(err.contains("--resize 8x8"), "{err}");
        // Photos: the suggestion is a size a network trains on, not the most common one.
        let photos = tempfile::tempdir().unwrap();
        for (i, w) in [384, 384, 300].into_iter().enumerate() {
            png(&photos.path().join(format!("p{i}.png")), w, 512, 0);
        }
        let err = load(photos.path(), Split::Train, &ImageRequest::default()).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "pass --resize 128x96 to convert them all to one size (the most common, \
                 512x384, makes a large network that trains slowly)"
            ),
            "{err}"
        );
        let resized =
            ImageRequest { size: Some(Size { height: 6, width: 5 }), ..Default::default() };
        let train = load(dir.path(), Split::Train, &resized).unwrap();
        let test = load(dir.path(), Split::Test, &resized).unwrap();
        assert_eq!((train.len(), test.len()), (8, 2));
        assert_eq!((train.shape.height, train.shape.width, train.shape.color), (6, 5, Color::Gray));
        assert_eq!(test.values.len(), 2 * 30);
        assert_eq!(train.labels, None);
    }

    fn rgba(path: &Path, w: u32, h: u32, px: [u8; 4]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbaImage::from_pixel(w, h, image::Rgba(px)).save(path).unwrap();
    }

    #[test]
    fn colour_is_detected_kept_as_planes_and_transparency_flattened() {
        let dir = tempfile::tempdir().unwrap();
        rgba(&dir.path().join("train/a.png"), 2, 2, [200, 10, 0, 255]);
        // A black mark on a transparent ground: half-transparent black over white.
        rgba(&dir.path().join("train/b.png"), 2, 2, [0, 0, 0, 128]);
        png(&dir.path().join("test/c.png"), 2, 2, 77);
        let auto = load(dir.path(), Split::Train, &ImageRequest::default()).unwrap();
        assert_eq!(auto.shape.color, Color::Rgb);
        // Planes: RRRR GGGG BBBB, then the flattened gray image repeated in each plane.
        let mut want = [[200u8; 4], [10; 4], [0; 4]].concat();
        want.extend([127u8; 12]); // (0·128 + 255·127 + 127) / 255
        assert_eq!(auto.values, want);
        // The test split follows the training spec: gray files become three equal planes.
        let test = load(dir.path(), Split::Test, &auto.shape.request()).unwrap();
        assert_eq!((test.shape, test.values.clone()), (auto.shape.clone(), vec![77; 12]));
        let black = ImageRequest { background: Background::Black, ..auto.shape.request() };
        let on_black = load(dir.path(), Split::Train, &black).unwrap();
        assert_eq!(&on_black.values[12..], &[0u8; 12]);
        let ignore = ImageRequest { background: Background::Ignore, ..auto.shape.request() };
        assert_eq!(&load(dir.path(), Split::Train, &ignore).unwrap().values[12..], &[0u8; 12]);
        // Gray: Rec. 709 luma of (200, 10, 0) = 42.5 + 7.2 → 50.
        let gray = ImageRequest { color: ColorChoice::Gray, ..Default::default() };
        let gray = load(dir.path(), Split::Train, &gray).unwrap();
        assert_eq!(gray.shape.color, Color::Gray);
        assert_eq!(gray.values, [[50u8; 4], [127; 4]].concat());
    }

    #[test]
    fn gray_of_a_deep_colour_image_is_its_own_luma() {
        // 16-bit colour: luma at 16 bits, then 8 (as before the data description), not
        // luma of the 8-bit channels, which differs by a level for about half the pixels.
        let dir = tempfile::tempdir().unwrap();
        let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(6, 5, |x, y| {
            image::Rgb([x as u16 * 9000 + 5745, y as u16 * 7000 + 2870, 26108])
        });
        deep.save(dir.path().join("deep.png")).unwrap();
        let want = DynamicImage::ImageRgb16(deep).to_luma8().into_raw();
        let gray = ImageRequest { color: ColorChoice::Gray, ..Default::default() };
        let (train, test) = (Split::Train, Split::Test);
        let got = load(dir.path(), train, &gray).or_else(|_| load(dir.path(), test, &gray));
        assert_eq!(got.unwrap().values, want);
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
        let train = load(dir.path(), Split::Train, &ImageRequest::default()).unwrap();
        assert_eq!(train.labels, Some(vec![3, 3, 7, 7, 7]));
        let names = vec!["cat".to_string(), "dog".to_string()];
        let files = vec![PathBuf::from("/d/dog/1.png"), PathBuf::from("/d/cat/2.png")];
        assert_eq!(train.shape.classes, Vec::<String>::new(), "numbers need no names");
        let d = Path::new("/d");
        assert_eq!(labels(&files, d, &names, &[]), (Some(vec![1, 0]), names.clone()));
        let loose = vec![PathBuf::from("/d/1.png")];
        assert_eq!(labels(&loose, d, &names, &[]).0, None);
        // A run's recorded names code the folders; one it lacks means no labels.
        let recorded = ["ant", "dog", "cat"].map(String::from);
        assert_eq!(labels(&files, d, &names, &recorded).0, Some(vec![1, 2]));
        let fox = vec![PathBuf::from("/d/fox/1.png")];
        assert_eq!(labels(&fox, d, &names, &recorded), (None, recorded.to_vec()));
    }

    #[test]
    fn broken_and_hostile_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("ok.png"), 4, 4, 0);
        std::fs::write(dir.path().join("zero.png"), []).unwrap();
        let any = ImageRequest { size: Some(Size { height: 4, width: 4 }), ..Default::default() };
        let both = load(dir.path(), Split::Train, &any).and(load(dir.path(), Split::Test, &any));
        let err = format!("{:#}", both.unwrap_err());
        assert!(err.contains("zero.png") && err.contains("not a readable image"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("a.txt"), "x").unwrap();
        let err =
            load(empty.path(), Split::Train, &ImageRequest::default()).unwrap_err().to_string();
        assert!(err.contains("holds no training images"), "{err}");
    }
}
