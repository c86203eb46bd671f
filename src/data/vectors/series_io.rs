//! Series as files: which files a folder of series holds, reading a WAV channel or a CSV's
//! value columns (the time column checked) into steps, a file or folder into `Stretch`es,
//! their windows (none crossing two files), and the split of a run's series into training
//! and test parts.

use super::clock;
use super::memory::window_memory;
use super::spectral_rows::{spectral_frame, spectral_table};
use super::*;
use crate::data::period;
use crate::data::series::{self, Windowing};
use crate::data::spec::AutoWindow;
use crate::data::table::Table;
use crate::data::windows::{Piece, Windows};

/// Whether `path` is a WAV file (always a series).
pub fn is_wav(path: &Path) -> bool {
    extension(path).as_deref() == Some("wav")
}

/// Whether `path` may be one series of a folder: a .wav, .csv or .npy file (an .npz
/// archive is a table, never a series).
fn is_series_file(path: &Path) -> bool {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(ext.as_deref(), Some("wav" | "csv" | "npy"))
}

/// The series files `path` names: itself, or the .wav, .csv or .npy files directly in a
/// folder (all of one kind), in name order; each file is a series of its own.
pub fn series_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let file = entry.with_context(|| format!("reading {}", path.display()))?.path();
        let hidden = file.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if file.is_file() && is_series_file(&file) && !hidden {
            files.push(file);
        }
    }
    files.sort();
    let Some(first) = files.first() else {
        bail!("{}: no .wav, .csv or .npy files in this folder of series", path.display());
    };
    if let Some(other) = files.iter().find(|f| extension(f) != extension(first)) {
        bail!(
            "{}: a folder of series holds files of one kind, but it has {} and {}",
            path.display(),
            file_name(first),
            file_name(other)
        );
    }
    Ok(files)
}

/// The names of the series files in the folder `path` (see `series_files`); empty for a
/// file.
pub fn folder_names(path: &Path) -> Result<Vec<String>> {
    if !path.is_dir() {
        return Ok(Vec::new());
    }
    Ok(series_files(path)?.iter().map(|f| file_name(f)).collect())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}

/// One series: a file's time steps or a stretch of them, what to call it in errors, its
/// file when the run's series come from a folder (so its windows name it), its time
/// column's values, and the steps where a gap splits it into pieces (windows never cross
/// one).
#[derive(Clone, Debug)]
pub struct Stretch {
    pub steps: Table,
    pub file: Option<Arc<Path>>,
    what: String,
    pub times: Option<Times>,
    /// The first step of each piece after the first.
    breaks: Vec<usize>,
}

impl Stretch {
    fn new(steps: Table, what: String) -> Stretch {
        Stretch { steps, file: None, what, times: None, breaks: Vec::new() }
    }

    /// The steps of each piece between gaps, in order.
    pub fn pieces(&self) -> Vec<std::ops::Range<usize>> {
        let starts = std::iter::once(0).chain(self.breaks.iter().copied());
        let ends = self.breaks.iter().copied().chain([self.steps.rows()]);
        starts.zip(ends).map(|(a, b)| a..b).collect()
    }

    /// Steps `range` of the stretch (with their times and gaps), called `what`.
    fn range(&self, range: std::ops::Range<usize>, what: String) -> Stretch {
        self.select(&range.collect::<Vec<_>>(), what)
    }

    /// The steps `at` (increasing) of the stretch, with their times; a gap stays where
    /// it was, and leaving steps out makes none.
    fn select(&self, at: &[usize], what: String) -> Stretch {
        let piece = |i: usize| self.breaks.partition_point(|&b| b <= i);
        let breaks = (1..at.len()).filter(|&k| piece(at[k]) != piece(at[k - 1])).collect();
        Stretch {
            steps: self.steps.select(at),
            file: self.file.clone(),
            what,
            times: self.times.as_ref().map(|t| t.select(at)),
            breaks,
        }
    }

    /// The stretch without its pieces shorter than `window` (they make no window), said
    /// in a note; as it is when none is, or when no piece is long enough.
    pub fn without_short(self, window: usize) -> Stretch {
        let pieces = self.pieces();
        let short = pieces.iter().filter(|r| r.len() < window).count();
        if short == 0 || short == pieces.len() {
            return self;
        }
        let steps: usize = pieces.iter().filter(|r| r.len() < window).map(|r| r.len()).sum();
        crate::log::note(format_args!(
            "note: {}: {} between gaps {} shorter than the window ({window} steps): {} left out",
            self.what,
            crate::log::counted(short, "stretch"),
            if short == 1 { "is" } else { "are" },
            crate::log::counted(steps, "step")
        ));
        let keep: Vec<usize> = pieces.into_iter().filter(|r| r.len() >= window).flatten().collect();
        self.select(&keep, self.what.clone())
    }

    /// The stretch cut into windows (see `window_table`) piece by piece, each naming the
    /// stretch's file.
    pub fn windows(&self, w: Windowing) -> Result<Table> {
        self.windows_in(&self.pieces(), w)
    }

    /// The windows of the steps `pieces`, one piece after another.
    pub fn windows_in(&self, pieces: &[std::ops::Range<usize>], w: Windowing) -> Result<Table> {
        let what = || self.what.clone();
        let mut table = match pieces {
            [whole] if whole.len() == self.steps.rows() => window_table(&self.steps, w, &what)?,
            _ => concat_tables(
                pieces
                    .iter()
                    .map(|r| window_table(&step_range(&self.steps, r.clone()), w, &what))
                    .collect::<Result<_>>()?,
            ),
        };
        table.files = self.file.as_ref().map(|f| vec![f.clone(); table.rows()]);
        Ok(table)
    }

    /// The pieces at least `window` steps long (a note counts the others); an error when
    /// there are none.
    pub fn long_pieces(&self, window: usize) -> Result<Vec<std::ops::Range<usize>>> {
        let (long, short): (Vec<_>, Vec<_>) =
            self.pieces().into_iter().partition(|r| r.len() >= window);
        if long.is_empty() && short.len() == 1 {
            Windowing { window, hop: 1, spectral: None }
                .check(short[0].len())
                .with_context(|| self.what.clone())?;
        } else if long.is_empty() {
            bail!(
                "{}: every one of its {} stretches between gaps is shorter than the window \
                 ({window} steps)",
                self.what,
                short.len()
            );
        } else if !short.is_empty() {
            crate::log::note(format_args!(
                "note: {}: {} between gaps shorter than the window ({window} steps) kept as \
                 they are",
                self.what,
                crate::log::counted(short.len(), "stretch")
            ));
        }
        Ok(long)
    }

    /// How many windows `windows` cuts.
    pub fn window_count(&self, w: Windowing) -> usize {
        self.pieces().into_iter().map(|r| w.count(r.len())).sum()
    }
}

/// Every series `path` holds (a file, or a folder of them, see `series_files`), read with
/// the same value columns (`columns`, else the first file's), and the sample rate they
/// share (WAV files): `rate` (the run's), else the first file's. A WAV file at another rate
/// is resampled to it, with a note; WAV files and tables do not mix. The stretches between
/// gaps shorter than `window` are left out (see `Stretch::without_short`).
pub fn read_series(
    path: &Path,
    label_column: Option<&str>,
    columns: Option<&[String]>,
    (reading, rate, window): (Reading, Option<u32>, usize),
) -> Result<(Vec<Stretch>, Option<u32>)> {
    let folder = path.is_dir();
    let mut stretches: Vec<Stretch> = Vec::new();
    let mut shared = rate;
    for file in series_files(path)? {
        let columns = stretches.first().map_or(columns, |s| Some(&s.steps.columns[..]));
        let (mut stretch, form) = read_steps(&file, label_column, columns, reading)?;
        let file_rate = form.map(|f| f.sample_rate);
        let first = stretches.first();
        match (first, file_rate, shared) {
            (None, _, None) => shared = file_rate,
            (_, Some(from), Some(to)) if from != to => {
                let whose = first.filter(|_| rate.is_none()).map_or("the run's", |s| &s.what);
                crate::log::note(format_args!(
                    "note: {} is sampled at {from} Hz; resampled to {to} Hz ({whose} rate)",
                    file.display()
                ));
                stretch.steps = resampled(stretch.steps, from, to)?;
            }
            (Some(first), _, _) if rate.is_none() && file_rate.is_some() != shared.is_some() => {
                bail!(
                    "{} is {} and {} {}: the series of a run are all WAV files or all tables",
                    file.display(),
                    hertz(file_rate),
                    first.what,
                    hertz(shared)
                )
            }
            _ => {}
        }
        stretch.file = folder.then(|| Arc::from(file.as_path()));
        stretches.push(stretch.without_short(window));
    }
    Ok((stretches, shared))
}

/// A WAV file's steps (one amplitude column) resampled from `from` to `to` Hz.
pub fn resampled(steps: Table, from: u32, to: u32) -> Result<Table> {
    let values = series::resample(&steps.values, from, to)?;
    Ok(Table { ids: (0..values.len()).collect(), values, ..steps })
}

fn hertz(rate: Option<u32>) -> String {
    rate.map_or_else(|| "a table".into(), |r| format!("a WAV file at {r} Hz"))
}

/// `parts`' rows one after another (labels kept when every part has them, files when
/// every part names them).
fn concat_tables(parts: Vec<Table>) -> Table {
    let mut all = Table {
        values: Vec::new(),
        columns: parts.first().map(|t| t.columns.clone()).unwrap_or_default(),
        labels: parts.iter().all(|t| t.labels.is_some()).then(Vec::new),
        ids: Vec::new(),
        dropped: 0,
        files: parts.iter().all(|t| t.files.is_some()).then(Vec::new),
        categories: Vec::new(),
        unseen: None,
    };
    for t in parts {
        all.values.extend(t.values);
        all.ids.extend(t.ids);
        all.dropped += t.dropped;
        if let (Some(a), Some(l)) = (&mut all.labels, t.labels) {
            a.extend(l);
        }
        if let (Some(a), Some(f)) = (&mut all.files, t.files) {
            a.extend(f);
        }
    }
    all
}

/// The steps of `stretches`, one after another, each naming its stretch's file (when
/// the stretches come from a folder).
pub fn steps_of(stretches: &[Stretch]) -> Table {
    concat_tables(
        stretches
            .iter()
            .map(|s| Table {
                files: s.file.as_ref().map(|f| vec![f.clone(); s.steps.rows()]),
                ..s.steps.clone()
            })
            .collect(),
    )
}

/// The windows of `stretches`, one stretch after another (no window crosses two); refused
/// before anything is cut when they would not fit in the memory free now (`training`: the
/// hop can still be chosen).
pub fn windows_of(stretches: &[Stretch], w: Windowing, training: bool) -> Result<Table> {
    w.check(usize::MAX)?; // the window and hop themselves, before what they would take
    let count = stretches.iter().map(|s| s.window_count(w)).sum();
    let channels = stretches.first().map_or(1, |s| s.steps.width());
    if let Some(too_big) = window_memory(count, channels, w, crate::host::free_memory()) {
        let fix = match training {
            true => too_big.fix,
            false => {
                "score a shorter part of the series (the run's window and hop are fixed)".into()
            }
        };
        return Err(Invalid::plain(format!("{}: {fix}", too_big.what)).into());
    }
    Ok(concat_tables(stretches.iter().map(|s| s.windows(w)).collect::<Result<_>>()?))
}

/// The windows of `stretches` as views (`data::windows`), one stretch after another,
/// piece by piece between gaps: the same windows, in the same order, as `windows_of`.
pub fn window_views(stretches: &[Stretch], w: Windowing) -> Result<Windows> {
    let mut pieces = Vec::new();
    for s in stretches {
        for r in s.pieces() {
            w.check(r.len()).with_context(|| s.what.clone())?;
            let c = s.steps.width();
            pieces.push(Piece {
                values: &s.steps.values[r.start * c..r.end * c],
                ids: &s.steps.ids[r.clone()],
                labels: s.steps.labels.as_ref().map(|l| &l[r.clone()]),
                file: s.file.clone(),
            });
        }
    }
    let channels = stretches.first().map_or(1, |s| s.steps.width());
    Windows::cut(&pieces, channels, w)
}

/// A series file's time steps (a table of one row per step, one column per channel; for a
/// CSV with a time column its values, and the gaps `reading` splits at) and, for a WAV
/// file, its stored form (sample rate, sample format): a WAV file's one channel
/// (`amplitude`), or a CSV/.npy read as a table.
pub fn read_steps(
    path: &Path,
    label_column: Option<&str>,
    columns: Option<&[String]>,
    reading: Reading,
) -> Result<(Stretch, Option<hound::WavSpec>)> {
    if !is_wav(path) {
        if reading.wav_channel.is_some() {
            let problem = format!("is for WAV files; {} is a table", path.display());
            return Err(Invalid::of("wav_channel", problem).into());
        }
        let reading = Reading { delimiter: delimiter_of(path, &reading), ..reading };
        // A CSV's time column is checked, and is not a value column unless asked for.
        let time = match extension(path).as_deref() {
            Some("csv") => clock::time_column(path, &reading)?,
            _ => None,
        };
        let others: Vec<String>;
        let columns = match (columns, &time) {
            (None, Some((times, header))) => {
                others = header
                    .iter()
                    .filter(|h| **h != times.name && Some(h.as_str()) != label_column)
                    .cloned()
                    .collect();
                Some(&others[..])
            }
            _ => columns,
        };
        let gaps = Reading { missing: Some(Missing::Interpolate), ..reading };
        let mut table =
            read_gaps(path, (label_column, columns), &TextColumns::Refused, None, &gaps)?;
        fill_gaps(&mut table, reading.missing())
            .with_context(|| format!("reading {}", path.display()))?;
        let mut stretch = Stretch::new(table, path.display().to_string());
        if let Some((times, _)) = time {
            if stretch.steps.ids.iter().any(|&i| i >= times.text.len()) {
                bail!("{}: the time column has fewer rows than the values", path.display());
            }
            let times = times.select(&stretch.steps.ids);
            stretch.breaks = clock::gaps(&times, reading.gap(), path)?;
            stretch.times = Some(times);
        }
        return Ok((stretch, None));
    }
    if label_column.is_some() {
        let problem = format!("is for CSV series; {} is a WAV file", path.display());
        return Err(Invalid::of("label_column", problem).into());
    }
    let wav = series::read_wav(path, reading.wav_channel)?;
    let n = wav.samples.len();
    let clipped = series::clipped(&wav.samples, wav.spec);
    if clipped * 1000 > n {
        crate::log::note(format_args!(
            "note: {}: {:.1}% of the samples are at full scale (clipped); the model learns the \
             flattened peaks as they are",
            path.display(),
            100.0 * clipped as f64 / n as f64
        ));
    }
    let table = Table {
        values: wav.samples,
        columns: vec!["amplitude".into()],
        labels: None,
        ids: (0..n).collect(),
        dropped: 0,
        files: None,
        categories: Vec::new(),
        unseen: None,
    };
    Ok((Stretch::new(table, path.display().to_string()), Some(wav.spec)))
}

/// The missing values of a series' steps (NaN, as `read_gaps` keeps them) under the
/// `missing` policy: refused with a count and the first place, or filled linearly from the
/// steps on either side (a gap at either end takes the nearest value). A series cannot
/// leave steps out, so `Missing::Drop` is refused as well.
pub fn fill_gaps(table: &mut Table, missing: Missing) -> Result<()> {
    let (d, n) = (table.width(), table.rows());
    let cells = table.values.iter().filter(|v| v.is_nan()).count();
    let Some(first) = table.values.iter().position(|v| v.is_nan()) else { return Ok(()) };
    if missing != Missing::Interpolate {
        let (row, column) = (table.ids[first / d] + 1, &table.columns[first % d]);
        let drop = if missing == Missing::Drop {
            " (a series cannot leave time steps out, so drop does not apply; {window} none reads \
             a CSV as a table)"
        } else {
            ""
        };
        let problem = format!(
            "{}, the first in data row {row}, column '{column}'{drop}; pass {{missing}} \
             interpolate to fill each gap from the steps on either side",
            crate::log::counted(cells, "missing value"),
        );
        return Err(Invalid::plain(problem).into());
    }
    for c in 0..d {
        let known: Vec<usize> = (0..n).filter(|&r| !table.values[r * d + c].is_nan()).collect();
        let (Some(&lo), Some(&hi)) = (known.first(), known.last()) else {
            let problem = format!("column '{}' has no values at all", table.columns[c]);
            return Err(Invalid::plain(problem).into());
        };
        let at = |r: usize| table.values[r * d + c];
        let mut filled = Vec::new();
        for r in 0..n {
            if !at(r).is_nan() {
                continue;
            }
            let value = if r < lo {
                at(lo)
            } else if r > hi {
                at(hi)
            } else {
                // The known steps on either side: the last before r and the first after it.
                let next = known.partition_point(|&k| k < r);
                let (before, after) = (known[next - 1], known[next]);
                let t = (r - before) as f32 / (after - before) as f32;
                at(before) + t * (at(after) - at(before))
            };
            filled.push((r, value));
        }
        for (r, value) in filled {
            table.values[r * d + c] = value;
        }
    }
    crate::log::note(format_args!(
        "note: filled {} by linear interpolation between the steps on either side",
        crate::log::counted(cells, "missing value")
    ));
    Ok(())
}

/// The rows of a series run: `steps` cut into windows (see `series::frame`), columns
/// `<channel>@<k>`. A window's id is its first step's; its label, when the steps have
/// labels, the highest among its steps (numerically when they are numbers), so a window
/// that touches an anomaly labelled 1 is labelled 1.
pub fn window_table(steps: &Table, w: Windowing, what: &dyn Fn() -> String) -> Result<Table> {
    w.check(steps.rows()).with_context(what)?;
    if let Some(spectral) = w.spectral {
        return spectral_table(steps, w, spectral).with_context(what);
    }
    let values = series::frame(&steps.values, steps.width(), w)?;
    let columns =
        steps.columns.iter().flat_map(|c| (0..w.window).map(move |k| format!("{c}@{k}"))).collect();
    let (len, count) = (steps.rows(), w.count(steps.rows()));
    let labels = steps.labels.as_ref().map(|labels| {
        // Numbers by value (text that is none, NaN included, below them), then as text.
        let rank = |l: &String| match l.parse::<f64>() {
            Ok(v) if !v.is_nan() => v,
            _ => f64::NEG_INFINITY,
        };
        let order = |a: &&String, b: &&String| rank(a).total_cmp(&rank(b)).then(a.cmp(b));
        (0..count)
            .map(|i| {
                let span = &labels[w.start(i, len)..][..w.window];
                span.iter().max_by(order).unwrap().clone()
            })
            .collect()
    });
    let ids = (0..count).map(|i| steps.ids[w.start(i, len)]).collect();
    let (categories, unseen) = (Vec::new(), None);
    Ok(Table { values, columns, labels, ids, dropped: 0, files: None, categories, unseen })
}

/// Steps `range` of `steps`, in order.
fn step_range(steps: &Table, range: std::ops::Range<usize>) -> Table {
    steps.select(&range.collect::<Vec<_>>())
}

pub(super) fn split_series(
    path: &Path,
    source: &VectorSource,
    label_column: Option<&str>,
    columns: Option<&[String]>,
    series: &SeriesSpec,
    seed: u64,
) -> Result<Parts> {
    let (parts, filled) = series_split(path, source, (label_column, columns), series, seed)?;
    let w = filled.windowing();
    let train = windows_of(&parts.train, w, true)?;
    let test = windows_of(&parts.test, w, true)?;
    Ok(Parts { train, test, dropped: 0, series: Some(filled), held_out: parts.held_out })
}

/// A series run's training and test series (see `series_parts`) and its spec with the
/// window `--window auto` chose, the channel names and the sample rate filled in.
pub(super) fn series_split(
    path: &Path,
    source: &VectorSource,
    (label_column, columns): (Option<&str>, Option<&[String]>),
    series: &SeriesSpec,
    seed: u64,
) -> Result<(SeriesParts, SeriesSpec)> {
    let mut parts = series_parts(path, source, label_column, columns, series, seed)?;
    let series = &match series.auto {
        // The window comes from the training series; the parts are then read again as
        // every later command reads them (stretches too short for it left out before the
        // time-order cut), so the run's sets are the ones they rebuild.
        Some(auto) => {
            let chosen = match series.spectral {
                Some(_) => spectral_frame(series, parts.rate, auto),
                None => auto_window(series, &parts.train, auto),
            };
            parts = series_parts(path, source, label_column, columns, &chosen, seed)?;
            chosen
        }
        None => series.clone(),
    };
    let filled = SeriesSpec {
        channels: parts.train[0].steps.columns.clone(),
        sample_rate: parts.rate,
        ..series.clone()
    };
    Ok((parts, filled))
}

/// `series` with the window and hop `--window auto` chooses from the training series (the
/// longest stretch between gaps), said in a note.
fn auto_window(series: &SeriesSpec, train: &[Stretch], auto: AutoWindow) -> SeriesSpec {
    let pieces = train.iter().flat_map(|s| s.pieces().into_iter().map(move |r| (s, r)));
    let total = train.iter().map(|s| s.steps.rows()).sum();
    let cut = match pieces.max_by_key(|(_, r)| r.len()) {
        Some((s, r)) => {
            let width = s.steps.width();
            let values = &s.steps.values[r.start * width..r.end * width];
            period::auto_cut(values, width, total, (auto.hop, auto.denoise))
        }
        None => period::auto_cut(&[], 1, total, (auto.hop, auto.denoise)),
    };
    let why = match cut.period {
        Some((p, r)) => format!(
            "the training series repeats every {p} steps (autocorrelation {r:.2}): window {} \
             (half of that)",
            cut.window
        ),
        None => format!(
            "no period in the training series (no autocorrelation peak of {}): window {}",
            period::MIN_CORRELATION,
            cut.window
        ),
    };
    let hop = match (auto.hop, auto.denoise) {
        (Some(_), _) => "as given",
        (None, true) => "a quarter of the window, for a denoiser",
        (None, false) if cut.hop == 1 => "every step, for scores per step",
        (None, false) => "the least that keeps an epoch to 2^24 window values",
    };
    crate::log::note(format_args!(
        "{} auto: {why}, hop {} ({hop}); pass {} N to choose",
        crate::invalid::dashed("window"),
        cut.hop,
        crate::invalid::dashed("window")
    ));
    SeriesSpec { window: cut.window, hop: cut.hop, auto: None, ..series.clone() }
}

/// A series run's training and test series (before windowing), their sample rate, and
/// the names of a folder's files held out whole for testing.
pub struct SeriesParts {
    pub train: Vec<Stretch>,
    pub test: Vec<Stretch>,
    pub rate: Option<u32>,
    pub held_out: Vec<String>,
}

/// The training and test series of a run: `--test`'s series against all of `path`'s;
/// for a folder of several series, whole files held out (`source.held_out` as recorded,
/// else `test_fraction` of them drawn with `seed`); for one series, its last
/// `test_fraction` (time order kept: a shuffled split of overlapping windows would put
/// the same steps on both sides).
pub fn series_parts(
    path: &Path,
    source: &VectorSource,
    label_column: Option<&str>,
    columns: Option<&[String]>,
    series: &SeriesSpec,
    seed: u64,
) -> Result<SeriesParts> {
    if source.labels.is_some() {
        let problem = "is for .npy tables; a series takes its labels from {label_column}";
        return Err(Invalid::of("labels", problem).into());
    }
    check_folder_unchanged(path, &source.folder_files)?;
    let reading = source.reading(series.wav_channel);
    let window = series.window;
    let (mut data, rate) = read_series(path, label_column, columns, (reading, None, window))?;
    if let Some(silent) =
        data.iter().find(|s| rate.is_some() && s.steps.values.iter().all(|&v| v == 0.0))
    {
        bail!("{}: every sample is 0 (silence): there is nothing to learn from it", silent.what);
    }
    if let Some(t) = &source.test {
        let columns = Some(&data[0].steps.columns[..]);
        let (mut test, test_rate) = read_series(t, label_column, columns, (reading, rate, window))?;
        if test_rate.is_some() != rate.is_some() {
            bail!(
                "{} is {} and {} {}: a run's series are all WAV files or all tables",
                t.display(),
                hertz(test_rate),
                path.display(),
                hertz(rate)
            );
        }
        for s in &mut test {
            s.what = format!("the test series {}", s.what);
        }
        return Ok(SeriesParts { train: data, test, rate, held_out: Vec::new() });
    }
    if data.len() > 1 {
        return hold_out_files(path, source, data, rate, seed);
    }
    let whole = data.remove(0);
    let (what, n) = (&whole.what, whole.steps.rows());
    let n_test = ((n as f64 * source.test_fraction).round() as usize).min(n);
    let cut = n - n_test;
    let part = |range, what| whole.range(range, what).without_short(window);
    Ok(SeriesParts {
        train: vec![part(0..cut, format!("the training part of {what} (its first {cut} steps)"))],
        test: vec![part(
            cut..n,
            format!(
                "the test part of {what} (its last {n_test} steps, a {} share)",
                source.test_fraction
            ),
        )],
        rate,
        held_out: Vec::new(),
    })
}

/// Refuses a folder of series whose files are no longer the `recorded` ones (a run's sets
/// come from the files it was made with); nothing to check for a single file.
fn check_folder_unchanged(path: &Path, recorded: &[String]) -> Result<()> {
    if recorded.is_empty() {
        return Ok(());
    }
    let now = folder_names(path)?;
    let gone: Vec<&String> = recorded.iter().filter(|f| !now.contains(f)).collect();
    let new: Vec<&String> = now.iter().filter(|f| !recorded.contains(f)).collect();
    if !gone.is_empty() || !new.is_empty() {
        let list = |l: &[&String]| l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        bail!(
            "{}: the folder has changed since the run was made (no longer there: {}; new: \
             {}); the run's sets come from the files it was made with",
            path.display(),
            if gone.is_empty() { "none".into() } else { list(&gone) },
            if new.is_empty() { "none".into() } else { list(&new) }
        );
    }
    Ok(())
}

/// A folder's series split by whole files: those the run recorded as held out, else
/// `source.test_fraction` of them drawn with `seed`.
fn hold_out_files(
    path: &Path,
    source: &VectorSource,
    data: Vec<Stretch>,
    rate: Option<u32>,
    seed: u64,
) -> Result<SeriesParts> {
    let names: Vec<String> =
        data.iter().map(|s| s.file.as_deref().map(file_name).unwrap_or_default()).collect();
    let held: Vec<usize> = if source.held_out.is_empty() {
        split::train_val(data.len(), source.test_fraction, seed).1
    } else {
        let find = |name: &String| {
            names.iter().position(|n| n == name).with_context(|| {
                format!(
                    "{}: the run held out {name} for testing, and the folder no longer has it",
                    path.display()
                )
            })
        };
        source.held_out.iter().map(find).collect::<Result<_>>()?
    };
    let held_out = held.iter().map(|&i| names[i].clone()).collect();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, s) in data.into_iter().enumerate() {
        if held.contains(&i) {
            test.push(Stretch { what: format!("the held-out test series {}", s.what), ..s });
        } else {
            train.push(s);
        }
    }
    Ok(SeriesParts { train, test, rate, held_out })
}
