//! The recorded description of a run's data: what kind of values the model takes, their
//! shape, and how raw files are turned into them. It is written to `model.json` (as
//! `model.input`), the model is built from it, and every later command converts the data
//! it is given through it, so nothing infers the shape from the data a second time.

use crate::log::counted;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the network's input is. In model.json a series run is written as a vector run
/// with a `series` entry (as every version has written it; see `StoredSpec`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSpec", into = "StoredSpec")]
pub enum DataSpec {
    /// C×H×W images of 8-bit values, scaled by 1/255 to [0, 1], channel planes one after
    /// another (PyTorch's layout).
    Image(ImageSpec),
    /// Rows of numeric features (a CSV's columns or a 2-D .npy), scaled per column with
    /// statistics of the training rows.
    Vector(VectorSpec),
    /// Windows cut from long series (WAV or CSV): each row is a window's steps, channel by
    /// channel, as the features of the vector spec, scaled like a vector run's.
    Series(VectorSpec, SeriesSpec),
}

/// How model.json writes a `DataSpec`: tagged by `kind`, a series run as a vector run whose
/// `series` entry says how its windows were cut.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum StoredSpec {
    Image(ImageSpec),
    Vector(StoredVector),
}

#[derive(Serialize, Deserialize)]
struct StoredVector {
    #[serde(flatten)]
    features: VectorSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    series: Option<Box<SeriesSpec>>,
}

impl From<StoredSpec> for DataSpec {
    fn from(stored: StoredSpec) -> DataSpec {
        match stored {
            StoredSpec::Image(s) => DataSpec::Image(s),
            StoredSpec::Vector(v) => DataSpec::vectors(v.features, v.series.map(|s| *s)),
        }
    }
}

impl From<DataSpec> for StoredSpec {
    fn from(spec: DataSpec) -> StoredSpec {
        match spec {
            DataSpec::Image(s) => StoredSpec::Image(s),
            DataSpec::Vector(features) => {
                StoredSpec::Vector(StoredVector { features, series: None })
            }
            DataSpec::Series(features, s) => {
                StoredSpec::Vector(StoredVector { features, series: Some(Box::new(s)) })
            }
        }
    }
}

impl DataSpec {
    /// A vector run's description, or a series run's when `series` says how the windows
    /// were cut.
    pub fn vectors(features: VectorSpec, series: Option<SeriesSpec>) -> DataSpec {
        match series {
            Some(s) => DataSpec::Series(features, s),
            None => DataSpec::Vector(features),
        }
    }

    /// Values per item: the width of the network's input.
    pub fn values(&self) -> i64 {
        match self {
            DataSpec::Image(s) => s.values(),
            DataSpec::Vector(v) | DataSpec::Series(v, _) => v.columns.len() as i64,
        }
    }

    /// "28x28 gray", "64x64 rgb", "9 features, standard scaling".
    pub fn describe(&self) -> String {
        match self {
            DataSpec::Image(s) => format!("{}x{} {}", s.height, s.width, s.color),
            DataSpec::Vector(v) | DataSpec::Series(v, _) => {
                format!("{}, {} scaling", counted(v.columns.len(), "feature"), v.scaling.kind)
            }
        }
    }

    /// "vectors (9 features)", "images (28x28 gray)": what a run was trained on, in words.
    pub fn describe_kind(&self) -> String {
        match self {
            DataSpec::Image(_) => format!("images ({})", self.describe()),
            DataSpec::Vector(v) | DataSpec::Series(v, _) => {
                format!("vectors ({})", counted(v.columns.len(), "feature"))
            }
        }
    }

    /// The vector spec, when the rows are numeric features (a table's rows or windows of a
    /// series).
    pub fn vector(&self) -> Option<&VectorSpec> {
        match self {
            DataSpec::Vector(v) | DataSpec::Series(v, _) => Some(v),
            DataSpec::Image(_) => None,
        }
    }

    /// The vector spec, when the rows are a table's (numeric features, not windows).
    pub fn table(&self) -> Option<&VectorSpec> {
        match self {
            DataSpec::Vector(v) => Some(v),
            DataSpec::Image(_) | DataSpec::Series(..) => None,
        }
    }

    /// The vector spec and its windowing, when the rows are windows cut from series.
    pub fn series(&self) -> Option<(&VectorSpec, &SeriesSpec)> {
        match self {
            DataSpec::Series(v, s) => Some((v, s)),
            DataSpec::Image(_) | DataSpec::Vector(_) => None,
        }
    }

    /// How a row is laid out as the network's float32 input `[N, values]`, in words (the
    /// TorchScript export's description).
    pub fn row_layout(&self) -> String {
        match self {
            DataSpec::Image(s) => format!(
                "images flattened channel-major from [N, {}, {}, {}], values in [0, 1] (bytes / 255)",
                s.channels(),
                s.height,
                s.width
            ),
            DataSpec::Vector(_) | DataSpec::Series(..) => {
                "the features in model.input.columns order, scaled as model.input.scaling says \
                 (a text column one-hot, as model.input.categories lists)"
                    .into()
            }
        }
    }

    /// The image spec, when the data are images.
    pub fn image(&self) -> Option<&ImageSpec> {
        match self {
            DataSpec::Image(s) => Some(s),
            DataSpec::Vector(_) | DataSpec::Series(..) => None,
        }
    }

    /// The class names a label code indexes: a vector run's labels, an image folder's
    /// label folders; empty when the codes are the labels themselves (numbered folders,
    /// IDX files, runs made before image class names were recorded).
    pub fn classes(&self) -> &[String] {
        match self {
            DataSpec::Vector(v) | DataSpec::Series(v, _) => &v.classes,
            DataSpec::Image(s) => &s.classes,
        }
    }

    /// The name of label code `code`: the recorded class name, else the number itself.
    pub fn class_name(&self, code: u8) -> String {
        match self.classes().get(code as usize) {
            Some(name) => name.clone(),
            None => code.to_string(),
        }
    }

    /// A class for JSON output: its name when the run records class names; numbered image
    /// labels (digits) stay numbers, as they always were.
    pub fn class_value(&self, code: u8) -> serde_json::Value {
        match self {
            DataSpec::Image(s) if s.classes.is_empty() => code.into(),
            _ => self.class_name(code).into(),
        }
    }

    /// Whether the network's outputs are values in [0, 1] (a sigmoid output layer), as
    /// for images; scaled features are unbounded and get a linear output layer.
    pub fn bounded(&self) -> bool {
        matches!(self, DataSpec::Image(_))
    }
}

/// Numeric features: which columns, in order, and how each is scaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorSpec {
    /// The feature names (for .npy data `x0`, `x1`, ...).
    pub columns: Vec<String>,
    /// The column the labels were read from, if any (CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// The distinct labels of the data (training and test rows): a label's position is
    /// its code (`--classes` and `--normal-classes` name them). Empty without labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    pub scaling: Scaling,
    /// The text columns one-hot encoded, each in `columns` as one feature per level (see
    /// `Category`). Empty when every column is a number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
}

impl VectorSpec {
    /// The file columns the features come from, in order: a one-hot group is its column.
    pub fn file_columns(&self) -> Vec<String> {
        feature_groups(&self.columns, &self.categories).into_iter().map(|g| g.name).collect()
    }

    /// The file columns with the features each spans.
    pub fn groups(&self) -> Vec<FeatureGroup<'_>> {
        feature_groups(&self.columns, &self.categories)
    }
}

/// A text column one-hot encoded: in place of the column, one feature per level (levels
/// sorted), named `column=level`, 1 for the row's level and 0 for the others. A value the
/// run did not see gives 0 in every one of them (the row is still scored; a note counts
/// such values). Scaled like any other feature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub column: String,
    pub levels: Vec<String>,
}

/// The most levels a text column may have to be one-hot encoded; one with more is refused
/// (an identifier or free text, not a category).
pub const MAX_LEVELS: usize = 50;

impl Category {
    /// The feature names of the levels, in order.
    pub fn features(&self) -> impl Iterator<Item = String> + '_ {
        self.levels.iter().map(|l| format!("{}={l}", self.column))
    }
}

/// A file column and the features that come from it: one, or a one-hot group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureGroup<'a> {
    pub name: String,
    pub features: std::ops::Range<usize>,
    pub category: Option<&'a Category>,
}

/// `features` grouped by the file column each comes from: the `categories`' one-hot
/// features (consecutive, in level order) are one group each.
pub fn feature_groups<'a>(
    features: &[String],
    categories: &'a [Category],
) -> Vec<FeatureGroup<'a>> {
    let mut groups = Vec::new();
    let mut j = 0;
    while j < features.len() {
        let group = categories.iter().find(|c| {
            c.levels.len() <= features.len() - j
                && c.features().zip(&features[j..]).all(|(a, b)| a == *b)
        });
        let (name, n) = match group {
            Some(c) => (c.column.clone(), c.levels.len().max(1)),
            None => (features[j].clone(), 1),
        };
        groups.push(FeatureGroup { name, features: j..j + n, category: group });
        j += n;
    }
    groups
}

/// How a long series became the rows of a run: `window` steps every `hop` steps of the
/// value columns `channels` (a WAV file's one channel reads as `amplitude`). A row's
/// columns are `<channel>@<k>`, channel by channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesSpec {
    pub window: usize,
    pub hop: usize,
    /// A new run's `--window auto`, before its data are read: `window` and `hop` are then
    /// 0, chosen from the training part (`data::period`) and recorded as numbers.
    #[serde(skip)]
    pub auto: Option<AutoWindow>,
    pub channels: Vec<String>,
    /// Samples per second, for WAV files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// The WAV channel read (`--wav-channel`), for files with several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wav_channel: Option<usize>,
    /// `--domain stft`: the rows are log power spectra of frames of `window` samples
    /// every `hop` (`data::spectral`); none: windows of the samples themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectral: Option<super::spectral::Spectral>,
}

impl SeriesSpec {
    pub fn windowing(&self) -> super::series::Windowing {
        super::series::Windowing { window: self.window, hop: self.hop, spectral: self.spectral }
    }
}

/// `--domain`: what a series' rows hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Windows of the samples.
    Wave,
    /// Log power spectra of short frames, several at a time.
    Stft,
}

/// `--window`: a number of steps, `auto`, or `none` (a CSV read as a table even when its
/// time column would make it a series).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowChoice {
    Auto,
    Steps(usize),
    Table,
}

/// What `--window auto` needs besides the data: the hop given, if any, and whether the
/// run denoises (the hop it chooses depends on the task).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AutoWindow {
    pub hop: Option<usize>,
    pub denoise: bool,
}

/// Hands each of a set's rows to the callback, in order (`Scaling::fit_rows`).
pub type RowVisitor<'a> = &'a dyn Fn(&mut dyn FnMut(&[f32]));

/// How raw feature values become the network's: `(x - offset) / scale` per column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub kind: ScaleKind,
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaling {
    /// Fits `kind` on `rows` of `width` values (row-major). A constant column gets scale
    /// 1, so it becomes 0 (standard) or 0 (minmax), never a division by zero.
    pub fn fit(kind: ScaleKind, values: &[f32], width: usize) -> Scaling {
        Scaling::fit_rows(kind, width, &|each| values.chunks(width.max(1)).for_each(&mut *each))
    }

    /// `fit` on rows that `rows` hands to its callback one at a time, in order (as often as
    /// the fit needs: twice for `standard`); each column's sums run over the rows in that
    /// order, so the result is `fit`'s on the same rows bit for bit.
    pub fn fit_rows(kind: ScaleKind, width: usize, rows: RowVisitor<'_>) -> Scaling {
        let mut count = 0usize;
        let (offset, spread) = match kind {
            ScaleKind::Standard => {
                // -0.0, as `Iterator::sum` starts (an all -0.0 column keeps its sign).
                let mut sum = vec![-0.0f64; width];
                rows(&mut |r| {
                    count += 1;
                    sum.iter_mut().zip(r).for_each(|(s, &v)| *s += v as f64);
                });
                let n = count.max(1) as f64;
                let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
                let mut dev = vec![-0.0f64; width];
                rows(&mut |r| {
                    dev.iter_mut().zip(r).zip(&mean).for_each(|((d, &v), m)| {
                        *d += (v as f64 - m).powi(2);
                    })
                });
                let spread: Vec<f64> = dev.iter().map(|d| (d / n).sqrt()).collect();
                (mean, spread)
            }
            ScaleKind::Minmax => {
                let (mut lo, mut hi) = (vec![f64::INFINITY; width], vec![f64::NEG_INFINITY; width]);
                rows(&mut |r| {
                    for (j, &v) in r.iter().enumerate() {
                        (lo[j], hi[j]) = (lo[j].min(v as f64), hi[j].max(v as f64));
                    }
                });
                let spread: Vec<f64> = lo.iter().zip(&hi).map(|(l, h)| h - l).collect();
                (lo, spread)
            }
        };
        // A spread this small is a constant column measured in float32.
        let scale = offset
            .iter()
            .zip(spread)
            .map(|(o, s): (&f64, f64)| match s.is_nan() || s <= 1e-12 * o.abs().max(1.0) {
                true => 1.0,
                false => s,
            })
            .collect();
        Scaling { kind, offset, scale }
    }

    /// One raw value of column `j` → the network's, as `apply` computes it.
    pub fn one(&self, j: usize, v: f32) -> f32 {
        ((v as f64 - self.offset[j]) / self.scale[j]) as f32
    }

    /// Raw rows → the network's values, in place.
    pub fn apply(&self, values: &mut [f32]) {
        let w = self.offset.len();
        for (k, v) in values.iter_mut().enumerate() {
            *v = ((*v as f64 - self.offset[k % w]) / self.scale[k % w]) as f32;
        }
    }

    /// The network's values → the file's units (reconstructions, denoised rows), each
    /// rounded to the last decimal that a float32 in scaled units carries (a millionth of
    /// the column's scale, times the scaled value when that is above 1), so a 6 written in
    /// the file comes back as 6, not 6.000001.
    pub fn to_units(&self, values: &[f32]) -> Vec<f64> {
        let w = self.offset.len();
        values
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let (raw, rounded, quantum) = self.rounded(k % w, v);
                // Round through text so the decimal is exact (0.1 + 0.2 style residue).
                let digits = (-quantum.log10()).max(0.0) as usize;
                format!("{rounded:.digits$}").parse().unwrap_or(raw)
            })
            .collect()
    }

    /// `to_units` as float32, without its text step (which float32 does not keep):
    /// for the many values of windows that are averaged next (overlap-add).
    pub fn to_units_f32(&self, values: &[f32]) -> Vec<f32> {
        let w = self.offset.len();
        values.iter().enumerate().map(|(k, &v)| self.rounded(k % w, v).1 as f32).collect()
    }

    /// Value `v` of column `j` in the file's units: as computed, rounded to the last
    /// decimal it carries (see `to_units`), and that decimal's quantum.
    fn rounded(&self, j: usize, v: f32) -> (f64, f64, f64) {
        let raw = v as f64 * self.scale[j] + self.offset[j];
        let carried = self.scale[j] * (v as f64).abs().max(1.0) * 1e-6;
        let quantum = 10f64.powf(carried.log10().floor());
        (raw, (raw / quantum).round() * quantum, quantum)
    }
}

/// One 8-bit image value in [0, 1], bit for bit as `data::to_unit_float` computes it on
/// tensors: the image kind's scaling, on the host.
pub fn unit(byte: u8) -> f32 {
    byte as f32 / 255.0
}

/// A value in [0, 1] as the nearest 8-bit level (out-of-range values clamp): the
/// inverse, for images written back out.
pub fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Images of one size and colour: the model's input and the conversion that makes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub color: Color,
    pub height: i64,
    pub width: i64,
    /// How transparency is flattened before the colour conversion.
    pub background: Background,
    /// A folder's files that cannot be read as images are left out (and listed by
    /// `train`) instead of stopping the command (`--skip-unreadable`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_unreadable: bool,
    /// The label folders' names, a label's position its code, when the folders are not
    /// named by numbers (numbered folders, and IDX files, give the number as the code).
    /// Runs made before it was recorded have none and show codes as numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

impl ImageSpec {
    /// A grayscale spec of `height × width` composited onto white.
    pub fn gray(height: i64, width: i64) -> Self {
        ImageSpec {
            color: Color::Gray,
            height,
            width,
            background: Background::White,
            skip_unreadable: false,
            classes: Vec::new(),
        }
    }

    pub fn channels(&self) -> i64 {
        self.color.channels()
    }

    /// Values per image: C·H·W.
    pub fn values(&self) -> i64 {
        self.channels() * self.height * self.width
    }

    /// The conversion that turns other image files into this spec's images.
    pub fn request(&self) -> ImageRequest {
        ImageRequest {
            color: ColorChoice::from(self.color),
            size: Some(Size { height: self.height as u32, width: self.width as u32 }),
            background: self.background,
            skip_unreadable: self.skip_unreadable,
            classes: self.classes.clone(),
        }
    }
}

/// An image size, written `HxW` (`--resize 64x64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Size {
    pub height: u32,
    pub width: u32,
}

/// The longest side a suggested `--resize` names: 128x128 RGB is 49,152 values a row,
/// about 25 million parameters in the default MLP, which trains on a laptop.
pub const PRACTICAL_SIDE: u32 = 128;

impl Size {
    /// This size scaled down, aspect kept, until its longer side is at most `side` (itself
    /// when it already is; no side below 1).
    pub fn within(self, side: u32) -> Size {
        let longer = self.height.max(self.width);
        if longer <= side {
            return self;
        }
        let scale =
            |v: u32| ((v as u64 * side as u64 + longer as u64 / 2) / longer as u64).max(1) as u32;
        Size { height: scale(self.height), width: scale(self.width) }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected HEIGHTxWIDTH in pixels, e.g. 64x64, got '{s}'");
        let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |v: &str| v.trim().parse::<u32>().ok().filter(|&n| (1..=4096).contains(&n));
        match (side(h), side(w)) {
            (Some(height), Some(width)) => Ok(Size { height, width }),
            _ => Err(format!("{}; each side from 1 to 4096", bad())),
        }
    }
}

/// How image files are to be converted: what `load_split` is asked for. A run's flags
/// make one (`auto` colour, the images' own size); a trained run's spec makes a fixed
/// one, so any other files are converted the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRequest {
    pub color: ColorChoice,
    /// Resize every image to this; `None`: the images' common size (mixed sizes refused).
    pub size: Option<Size>,
    pub background: Background,
    /// Leave out a folder's files that cannot be read as images (see `ImageSpec`).
    pub skip_unreadable: bool,
    /// A run's class names: label folders are coded by their place among these. Empty
    /// for a new run, whose folders are coded by their own (sorted) names.
    pub classes: Vec<String>,
}

/// Colour of the images as the model sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Color {
    /// one channel (luma, Rec. 709 weights)
    Gray,
    /// three channels: red, green, blue
    Rgb,
}

impl Color {
    pub fn channels(self) -> i64 {
        match self {
            Color::Gray => 1,
            Color::Rgb => 3,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Color::Gray => "gray",
            Color::Rgb => "rgb",
        })
    }
}

/// What transparent pixels become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Background {
    /// composited onto white
    #[default]
    White,
    /// composited onto black
    Black,
    /// the alpha channel is dropped, leaving the colour under it (runs made before
    /// format_version 2 did this)
    Ignore,
}

impl Background {
    /// The 8-bit value transparent pixels blend towards, if any.
    pub fn level(self) -> Option<u8> {
        match self {
            Background::White => Some(255),
            Background::Black => Some(0),
            Background::Ignore => None,
        }
    }
}

/// The colour a run asks for (`--color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// RGB if any training image has colour, else gray
    #[default]
    Auto,
    Gray,
    Rgb,
}

impl From<Color> for ColorChoice {
    fn from(c: Color) -> Self {
        match c {
            Color::Gray => ColorChoice::Gray,
            Color::Rgb => ColorChoice::Rgb,
        }
    }
}

/// `--scale`: how features are scaled, fitted on the training rows only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleKind {
    /// zero mean and unit standard deviation per column (population σ)
    #[default]
    Standard,
    /// each column's training range onto [0, 1]
    Minmax,
}

impl fmt::Display for ScaleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScaleKind::Standard => "standard",
            ScaleKind::Minmax => "minmax",
        })
    }
}

/// What to do with a row that lacks a value (`--missing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// stop with a count of the missing values
    #[default]
    Refuse,
    /// leave the rows out (and say how many)
    Drop,
    /// series: fill each gap from the steps on either side of it (a table reader keeps
    /// the gaps as NaN for the series reader to fill)
    Interpolate,
}

/// Where the time column of a series CSV jumps by more than a few usual steps (`--gap`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gap {
    /// cut the series there: the stretches train and are scored apart, no window crosses
    #[default]
    Split,
    /// stop at the first irregular step, naming its lines
    Refuse,
    /// read on as if the steps were regular: runs made before gaps were looked for
    Across,
}

/// How a file's values are read beyond its columns: what a run recorded (its `--missing`
/// and WAV channel), or what a later command's flags put over that for the files it reads.
/// `None`: not given (the run's, or the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub missing: Option<Missing>,
    /// Series with a time column: what a gap does.
    pub gap: Option<Gap>,
    pub wav_channel: Option<usize>,
    /// CSV: the delimiter (`None`: sniffed from each file).
    pub delimiter: Option<char>,
    /// CSV: `Some(true)`: no header line; the columns are `x0`, `x1`, ...
    pub no_header: Option<bool>,
    /// CSV: lines before the header (or the first data row) to pass over.
    pub skip_rows: Option<usize>,
}

impl Reading {
    /// These choices, with `recorded`'s where none is given.
    pub fn over(self, recorded: Reading) -> Reading {
        Reading {
            missing: self.missing.or(recorded.missing),
            gap: self.gap.or(recorded.gap),
            wav_channel: self.wav_channel.or(recorded.wav_channel),
            delimiter: self.delimiter.or(recorded.delimiter),
            no_header: self.no_header.or(recorded.no_header),
            skip_rows: self.skip_rows.or(recorded.skip_rows),
        }
    }

    /// The id of the first setting given, if any (for a message refusing it).
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.missing.is_some(), "missing"),
            (self.gap.is_some(), "gap"),
            (self.wav_channel.is_some(), "wav_channel"),
            (self.delimiter.is_some(), "delimiter"),
            (self.no_header.is_some(), "no_header"),
            (self.skip_rows.is_some(), "skip_rows"),
        ]
        .into_iter()
        .find_map(|(given, id)| given.then_some(id))
    }

    /// The missing-value policy (refuse when none is given).
    pub fn missing(&self) -> Missing {
        self.missing.unwrap_or_default()
    }

    /// What a gap in a series' time column does (split when none is given).
    pub fn gap(&self) -> Gap {
        self.gap.unwrap_or_default()
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::Refuse => "refuse",
            Missing::Drop => "drop",
            Missing::Interpolate => "interpolate",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("64x32".parse::<Size>().unwrap(), Size { height: 64, width: 32 });
        assert_eq!("7X9".parse::<Size>().unwrap().to_string(), "7x9");
        for bad in ["64", "0x4", "4x", "x4", "5000x5", "-1x4", "axb"] {
            assert!(bad.parse::<Size>().unwrap_err().contains("HEIGHTxWIDTH"), "{bad}");
        }
    }

    #[test]
    fn spec_json_names_its_kind_and_counts_values() {
        let spec = DataSpec::Image(ImageSpec { color: Color::Rgb, ..ImageSpec::gray(64, 32) });
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"image","color":"rgb","height":64,"width":32,"background":"white"}"#
        );
        assert_eq!(serde_json::from_str::<DataSpec>(&text).unwrap(), spec);
        assert_eq!(spec.values(), 3 * 64 * 32);
        assert_eq!(spec.describe(), "64x32 rgb");
        let req = spec.image().unwrap().request();
        assert_eq!(req.color, ColorChoice::Rgb);
        assert_eq!(req.size, Some(Size { height: 64, width: 32 }));
    }

    #[test]
    fn a_size_is_scaled_within_a_side_keeping_its_aspect() {
        let size = |height, width| Size { height, width };
        assert_eq!(size(512, 384).within(128), size(128, 96));
        assert_eq!(size(28, 28).within(128), size(28, 28));
        assert_eq!(size(4000, 3).within(128), size(128, 1));
    }

    /// Expected values from NumPy: `x.mean(0)`, `x.std(0)` (ddof 0), `x.min(0)`, `np.ptp(x, 0)`.
    #[test]
    fn scaling_fits_on_training_rows_and_keeps_constant_columns_at_zero() {
        let rows = [1.0f32, 5.0, 7.0, 3.0, 5.0, -1.0, 8.0, 5.0, 3.0];
        let s = Scaling::fit(ScaleKind::Standard, &rows, 3);
        assert_eq!(s.offset, [4.0, 5.0, 3.0]);
        assert!((s.scale[0] - 2.943920288775949).abs() < 1e-12, "{}", s.scale[0]);
        assert_eq!(s.scale[1], 1.0, "constant column");
        let mut x = rows;
        s.apply(&mut x);
        assert_eq!(&x[..3], &[-1.0190493, 0.0, 1.2247449]);
        assert!(x.iter().skip(1).step_by(3).all(|&v| v == 0.0));
        // Back to the file's units, exactly as written (to a millionth of the scale).
        assert_eq!(s.to_units(&x), rows.map(f64::from));
        let m = Scaling::fit(ScaleKind::Minmax, &rows, 3);
        assert_eq!(
            (m.offset.as_slice(), m.scale.as_slice()),
            (&[1.0, 5.0, -1.0][..], &[7.0, 1.0, 8.0][..])
        );
        let mut x = rows;
        m.apply(&mut x);
        assert_eq!(x, [0.0, 0.0, 1.0, 2.0 / 7.0, 0.0, 0.0, 1.0, 0.0, 0.5]);
        let spec = DataSpec::Vector(VectorSpec {
            columns: vec!["a".into(), "b".into(), "c".into()],
            label_column: None,
            classes: vec![],
            scaling: s,
            categories: vec![],
        });
        let text = serde_json::to_string(&spec).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"vector","columns":["a","b","c"],"scaling":"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<DataSpec>(&text).unwrap(), spec);
        assert_eq!((spec.values(), spec.describe()), (3, "3 features, standard scaling".into()));
        let DataSpec::Vector(v) = &spec else { unreachable!() };
        let one = DataSpec::Vector(VectorSpec { columns: vec!["a".into()], ..v.clone() });
        assert_eq!(one.describe_kind(), "vectors (1 feature)");
        assert!(!spec.bounded() && spec.image().is_none());
        // A series run is written as every version wrote it: a vector run with a `series`
        // entry after its scaling; it reads back as its own kind.
        let DataSpec::Vector(features) = spec else { unreachable!() };
        let windows = SeriesSpec {
            window: 4,
            hop: 2,
            auto: None,
            channels: vec!["amplitude".into()],
            sample_rate: Some(8000),
            wav_channel: None,
            spectral: None,
        };
        let series = DataSpec::vectors(features.clone(), Some(windows.clone()));
        let text = serde_json::to_string(&series).unwrap();
        assert!(text.starts_with(r#"{"kind":"vector","columns":["#), "{text}");
        assert!(
            text.ends_with(
                r#"]},"series":{"window":4,"hop":2,"channels":["amplitude"],"sample_rate":8000}}"#
            ),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<DataSpec>(&text).unwrap(), series);
        assert_eq!(series.series(), Some((&features, &windows)));
        assert_eq!(series.vector(), Some(&features));
        assert_eq!(DataSpec::vectors(features.clone(), None).series(), None);
    }
}
