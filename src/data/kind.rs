//! The seam between a run and its kind of data: which kind a path holds (`sniff`), a new
//! run's data read and described (`Kind::prepare`), and for a trained run's recorded
//! description, its rows rebuilt (`DataSpec::rebuild`, or the training and validation rows
//! alone, `DataSpec::training_rows`) and other data read its way (`DataSpec::rows_of`).
//! Commands call these instead of matching on the kind; a new kind adds its arm here and
//! in `spec`.

use super::record::DataRecord;
use super::spec::{DataSpec, ImageRequest, Reading, WindowChoice};
use super::vectors::{self, VectorRequest, VectorSource};
use super::{Rows, Split};
use crate::config::TrainConfig;
use crate::invalid::Invalid;
use anyhow::{Context, Result};
use std::path::Path;

/// What a `--data` path holds, for a new run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A folder of IDX files or of PNG/JPEG images.
    Images,
    /// A table of numeric rows (CSV, .npy, .npz).
    Vectors,
    /// A long series (WAV, CSV) or a folder of them, cut into windows.
    Series,
}

/// The kind of data at `path` for a run's `--window` (`window`): a folder is images unless
/// windowed (a folder of series) or holding WAV files (series); a file is a series when
/// windowed, a WAV file, or a CSV whose time column increases (read with `reading`) unless
/// the window is `none`, else a table (CSV, .npy, .npz); any other path is images.
pub fn sniff(path: &Path, window: Option<WindowChoice>, reading: &Reading) -> Kind {
    let windowed = matches!(window, Some(WindowChoice::Auto | WindowChoice::Steps(_)));
    let table = window == Some(WindowChoice::Table);
    if path.is_dir() {
        // A folder of WAV files is series whatever else it holds (a CSV could be labels).
        let wavs = vectors::series_files(path).is_ok_and(|f| f.iter().any(|f| vectors::is_wav(f)));
        return if windowed || wavs { Kind::Series } else { Kind::Images };
    }
    if !vectors::is_vector_file(path) {
        return Kind::Images; // and the images' loader names what it cannot read
    }
    if windowed || vectors::is_wav(path) || (!table && vectors::is_timed_csv(path, reading)) {
        Kind::Series
    } else {
        Kind::Vectors
    }
}

/// What a new run asks of its data, as plain values (the settings layer fills it in from
/// the flags; each kind reads the part that concerns it).
#[derive(Clone, Copy, Debug)]
pub struct NewRun<'a> {
    /// How image files become the run's images.
    pub image: &'a ImageRequest,
    /// How a vector file or series is read and split (`held_out` and `folder_files` are
    /// filled in here).
    pub source: &'a VectorSource,
    /// Which columns, how scaled, which classes, how a series is cut.
    pub vectors: VectorRequest<'a>,
}

/// A new run's data: the description the model is built from, its training, validation
/// and test rows, how a vector file was read (recorded in the run's data record), the
/// classes to train on as codes (the data's own labels resolve their names), and the rows
/// left out for missing values.
#[derive(Debug)]
pub struct Prepared {
    pub input: DataSpec,
    pub train: Rows,
    pub val: Rows,
    pub test: Rows,
    pub source: Option<VectorSource>,
    pub classes: Option<Vec<u8>>,
    pub dropped: usize,
}

impl Kind {
    /// Reads `path` for a new run as `new` asks, with the split, limit and seed of `cfg`.
    pub fn prepare(self, path: &Path, new: &NewRun, cfg: &TrainConfig) -> Result<Prepared> {
        match self {
            Kind::Images => {
                let classes = match new.vectors.classes {
                    Some(given) => {
                        let known = super::image_class_names(path)?;
                        Some(vectors::image_class_codes(given, &known, "classes")?)
                    }
                    None => None,
                };
                let cfg = TrainConfig { classes: classes.clone(), ..cfg.clone() };
                let (train, val) = super::training_sets(path, &cfg, new.image)?;
                let test = super::load_split(path, Split::Test, &train.shape.request())?;
                Ok(Prepared {
                    input: DataSpec::Image(train.shape.clone()),
                    train: Rows::Images(train),
                    val: Rows::Images(val),
                    test: Rows::Images(test),
                    source: None,
                    classes,
                    dropped: 0,
                })
            }
            Kind::Vectors | Kind::Series => {
                // The delimiter the flags give, else the file's, sniffed once and recorded.
                let first = vectors::series_files(path)?.remove(0);
                let reading =
                    Reading { delimiter: new.source.delimiter, ..new.source.reading(None) };
                let source = VectorSource {
                    folder_files: vectors::folder_names(path)?,
                    delimiter: vectors::delimiter_of(&first, &reading),
                    ..new.source.clone()
                };
                let sets = vectors::prepare(path, &source, &new.vectors, cfg)?;
                Ok(Prepared {
                    input: sets.input(),
                    train: sets.train,
                    val: sets.val,
                    test: sets.test,
                    source: Some(VectorSource { held_out: sets.held_out, ..source }),
                    classes: sets.classes,
                    dropped: sets.dropped,
                })
            }
        }
    }
}

impl DataSpec {
    /// A trained run's training, validation and test rows, rebuilt from its `record` and
    /// the training settings `cfg` (the split, classes and limit).
    pub fn rebuild(&self, record: &DataRecord, cfg: &TrainConfig) -> Result<(Rows, Rows, Rows)> {
        match self {
            DataSpec::Image(spec) => {
                let (train, val) = self.training_rows(record, cfg)?;
                let test = super::load_split(&record.path, Split::Test, &spec.request())?;
                Ok((train, val, Rows::Images(test)))
            }
            DataSpec::Vector(_) | DataSpec::Series(..) => {
                let sets = self.vector_sets(record, cfg)?;
                Ok((sets.train, sets.val, sets.test))
            }
        }
    }

    /// A trained run's training and validation rows alone (no test split is read), rebuilt
    /// from `record` and `cfg`.
    pub fn training_rows(&self, record: &DataRecord, cfg: &TrainConfig) -> Result<(Rows, Rows)> {
        match self {
            DataSpec::Image(spec) => {
                let (train, val) = super::training_sets(&record.path, cfg, &spec.request())?;
                Ok((Rows::Images(train), Rows::Images(val)))
            }
            DataSpec::Vector(_) | DataSpec::Series(..) => {
                let sets = self.vector_sets(record, cfg)?;
                Ok((sets.train, sets.val))
            }
        }
    }

    /// One split of `data` (or of the run's own data in `record`), converted the way the
    /// run converts its own: images resized, colour converted, transparency flattened;
    /// vectors read with the run's columns and scaled with its scaling. Another vector
    /// file is read whole; the run's own file gives its held-out test rows (`Test`) or
    /// its training and validation rows (`Train`), chosen as `selection` chose them.
    /// `given` (a command's `--missing`, `--wav-channel`) goes over the run's recorded
    /// reading for another file; the run's own file is read as it was recorded.
    pub fn rows_of(
        &self,
        record: &DataRecord,
        selection: &TrainConfig,
        (data, given): (Option<&Path>, Reading),
        split: Split,
    ) -> Result<Rows> {
        if let Some(id) = given.first_given() {
            let problem = match (self.image(), data) {
                (Some(_), _) => Some("is for tables and series; this run was trained on images"),
                (None, None) => Some(
                    "applies to the files given with {data}; the run's own data are read as it \
                     recorded",
                ),
                (None, Some(_)) => None,
            };
            if let Some(problem) = problem {
                return Err(Invalid::of(id, problem).as_usage().into());
            }
        }
        match self {
            DataSpec::Image(spec) => {
                let dir = data.unwrap_or(&record.path);
                super::load_split(dir, split, &spec.request()).map(Rows::Images)
            }
            DataSpec::Vector(spec) | DataSpec::Series(spec, _) => {
                if let Some(path) = data {
                    let series = self.series().map(|(_, s)| s);
                    let reading = given.over(self.recorded_reading(record));
                    return vectors::load_all(path, spec, series, reading);
                }
                let sets = self.vector_sets(record, selection)?;
                Ok(match split {
                    Split::Test => sets.test,
                    Split::Train => sets.training_rows(),
                })
            }
        }
    }

    /// How the run read its own files (missing values, WAV channel, header and skipped
    /// lines): how it reads others unless a command's flags say otherwise. The delimiter
    /// is left out: each other file's is sniffed.
    pub fn recorded_reading(&self, record: &DataRecord) -> Reading {
        let wav_channel = self.series().and_then(|(_, s)| s.wav_channel);
        match &record.vectors {
            Some(source) => Reading { delimiter: None, ..source.reading(wav_channel) },
            None => Reading { wav_channel, ..Reading::default() },
        }
    }

    /// A vector or series run's sets, rebuilt from the source its record keeps.
    fn vector_sets(&self, record: &DataRecord, cfg: &TrainConfig) -> Result<vectors::VectorSets> {
        let source =
            record.vectors.as_ref().context("the run's data record has no vector source")?;
        let (spec, series) = match self {
            DataSpec::Vector(spec) => (spec, None),
            DataSpec::Series(spec, series) => (spec, Some(series)),
            DataSpec::Image(_) => anyhow::bail!("an image run has no vector sets"),
        };
        vectors::rebuild(&record.path, source, spec, series, cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sniffed_by_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(d.join("b.wav"), b"RIFF").unwrap();
        // A time column makes a series when it increases; else the file is a table.
        std::fs::write(d.join("t.csv"), "Time,x\n0,1\n1,2\n3,1\n").unwrap();
        std::fs::write(d.join("u.csv"), "Time,x\n0,1\n0,2\n3,1\n").unwrap();
        let r = &Reading::default();
        let (w, none) = (Some(WindowChoice::Steps(8)), Some(WindowChoice::Table));
        assert_eq!(sniff(&d.join("a.csv"), None, r), Kind::Vectors);
        assert_eq!(sniff(&d.join("a.csv"), w, r), Kind::Series);
        assert_eq!(sniff(&d.join("b.wav"), None, r), Kind::Series);
        assert_eq!(sniff(&d.join("b.wav"), none, r), Kind::Series);
        assert_eq!(sniff(&d.join("t.csv"), None, r), Kind::Series);
        assert_eq!(sniff(&d.join("t.csv"), none, r), Kind::Vectors);
        assert_eq!(sniff(&d.join("u.csv"), None, r), Kind::Vectors);
        // A folder of WAV files is series; with a window any folder is a folder of series.
        let words = d.join("words");
        std::fs::create_dir(&words).unwrap();
        std::fs::write(words.join("w.wav"), b"RIFF").unwrap();
        assert_eq!(sniff(&words, None, r), Kind::Series);
        let images = d.join("images");
        std::fs::create_dir(&images).unwrap();
        assert_eq!(sniff(&images, None, r), Kind::Images);
        assert_eq!(sniff(&images, w, r), Kind::Series);
    }
}
