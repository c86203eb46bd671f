//! The run folder: weights, model.json, metrics.csv and plots, every file written to a
//! temporary name in the same folder and renamed into place, so a crash never leaves a
//! half-written artefact under its final name.

use crate::config::{ModelConfig, TrainConfig};
use crate::metrics::EvalReport;
use crate::model::Autoencoder;
use crate::train::EpochStats;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// Version of the `model.json` layout; bumped when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;
pub const MODEL_JSON: &str = "model.json";
pub const WEIGHTS: &str = "model.ot";
pub const METRICS_CSV: &str = "metrics.csv";
pub const LOSS_PNG: &str = "loss.png";
pub const GRID_PNG: &str = "grid.png";

/// The data a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Absolute path of the data folder.
    pub path: PathBuf,
    pub train_images: usize,
    pub val_images: usize,
}

/// What a finished run reports about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub epochs_run: usize,
    /// The epoch with the lowest validation loss (the weights saved with early stopping).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    #[serde(default)]
    pub best_val_loss: Option<f64>,
    #[serde(default)]
    pub stopped_early: bool,
    pub final_train_loss: f64,
    pub final_val_loss: Option<f64>,
    pub train_seconds: f64,
    /// Metrics on the test split, computed with the saved weights.
    pub test: EvalReport,
}

/// The contents of `model.json`: all that is needed to rebuild and reuse the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub format_version: u32,
    pub ae_tch_version: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub data: DataRecord,
    /// File name of the weights inside the run folder.
    pub weights: String,
    pub outcome: Option<Outcome>,
}

/// A folder holding one training run.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates (or reuses) `path` for a new run. A folder that already holds a run is
    /// refused unless `overwrite` is set.
    pub fn create(path: &Path, overwrite: bool) -> Result<Self> {
        if path.exists() && !path.is_dir() {
            bail!("--out {} exists and is not a folder", path.display());
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("--out {}: cannot create the run folder", path.display()))?;
        let run = RunDir { root: path.to_path_buf() };
        if run.file(MODEL_JSON).exists() && !overwrite {
            bail!(
                "--out {} already holds a run (model.json); choose another folder or pass --force",
                path.display()
            );
        }
        // A run that fails part-way must not leave the old model.json describing new files.
        if overwrite {
            match std::fs::remove_file(run.file(MODEL_JSON)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e)
                        .with_context(|| format!("--force: removing the old {MODEL_JSON}"));
                }
                _ => {}
            }
        }
        // Fail now, not after training, if the folder cannot be written.
        tempfile::NamedTempFile::new_in(path)
            .with_context(|| format!("--out {}: folder is not writable", path.display()))?;
        Ok(run)
    }

    /// Opens an existing run folder.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            bail!("run folder {} does not exist", path.display());
        }
        if !path.is_dir() {
            bail!("--run {} is a file; give the run folder that holds it", path.display());
        }
        let run = RunDir { root: path.to_path_buf() };
        if !run.file(MODEL_JSON).is_file() {
            bail!("{} is not a run folder: it has no model.json", path.display());
        }
        Ok(run)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn read_manifest(&self) -> Result<RunManifest> {
        let path = self.file(MODEL_JSON);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let manifest: RunManifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid ae-tch model.json", path.display()))?;
        if manifest.format_version != FORMAT_VERSION {
            bail!(
                "{}: format_version {} is not supported (this ae-tch reads {FORMAT_VERSION})",
                path.display(),
                manifest.format_version
            );
        }
        manifest.model.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if Path::new(&manifest.weights).file_name() != Some(std::ffi::OsStr::new(&manifest.weights))
        {
            bail!(
                "{}: weights must name a file inside the run folder, got {:?}",
                path.display(),
                manifest.weights
            );
        }
        Ok(manifest)
    }

    pub fn write_manifest(&self, manifest: &RunManifest) -> Result<()> {
        let mut text = serde_json::to_string_pretty(manifest)?;
        text.push('\n');
        write_atomic(&self.file(MODEL_JSON), text.as_bytes())
    }

    /// Saves the weights (tch's .ot format, a PyTorch zip archive), variables in name
    /// order. Serialised in memory first: saving to a path would record the temporary
    /// file's name inside the archive.
    pub fn save_weights(&self, vs: &nn::VarStore) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut bytes = std::io::Cursor::new(Vec::new());
        Tensor::save_multi_to_stream(&named, &mut bytes).context("serialising the weights")?;
        write_atomic(&self.file(WEIGHTS), &bytes.into_inner())
    }

    pub fn write_metrics(&self, rows: &[EpochStats]) -> Result<()> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in rows {
            csv.serialize(row)?;
        }
        write_atomic(&self.file(METRICS_CSV), &csv.into_inner()?)
    }

    /// Rebuilds the model from model.json and loads its weights on `device`.
    pub fn load_model(&self, device: Device) -> Result<(RunManifest, nn::VarStore, Autoencoder)> {
        let manifest = self.read_manifest()?;
        let mut vs = nn::VarStore::new(device);
        let model = Autoencoder::new(&vs.root(), &manifest.model);
        load_weights(&mut vs, &self.file(&manifest.weights))?;
        vs.freeze();
        Ok((manifest, vs, model))
    }
}

/// Reads a metrics.csv written by `train`.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochStats>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Result<Vec<EpochStats>, _> = reader.deserialize().collect();
    let rows = rows.with_context(|| format!("{} is not an ae-tch metrics.csv", path.display()))?;
    if rows.is_empty() {
        bail!("{} has no epochs", path.display());
    }
    Ok(rows)
}

/// Copies the tensors of a weights file into `vs`, after checking that the file holds
/// exactly the variables `vs` has, with the same shapes and dtypes. Nothing is copied
/// when anything differs (tch's own `VarStore::load` would broadcast or half-load).
pub fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    if !path.is_file() {
        bail!("weights file {} does not exist", path.display());
    }
    let stored: HashMap<String, Tensor> = Tensor::load_multi(path)
        .with_context(|| format!("{} is not a readable weights file", path.display()))?
        .into_iter()
        .collect();
    let vars = vs.variables();
    let mismatch =
        |what: String| anyhow::anyhow!("{} does not match model.json: {what}", path.display());
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let Some(t) = stored.get(name) else {
            return Err(mismatch(format!("variable {name} is missing")));
        };
        if t.size() != var.size() || t.kind() != var.kind() {
            return Err(mismatch(format!(
                "variable {name} is {:?} {:?} in the file, the model needs {:?} {:?}",
                t.kind(),
                t.size(),
                var.kind(),
                var.size()
            )));
        }
    }
    let mut extra: Vec<&String> = stored.keys().filter(|k| !vars.contains_key(*k)).collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(mismatch(format!("unexpected variable(s) {extra:?}")));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            var.f_copy_(&stored[&name])?;
        }
        Ok::<_, tch::TchError>(())
    })
    .with_context(|| format!("copying weights from {}", path.display()))
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_temp_file(path, |tmp| {
        let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(tmp)?;
        f.write_all(bytes)?;
        Ok(())
    })
}

/// Lets `write` fill a temporary file next to `path`, then syncs it and renames it over
/// `path`. On any error the temporary file is removed and `path` is untouched.
pub fn with_temp_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("writing {}: folder {} does not exist", path.display(), dir.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| {
            format!("writing {}: cannot create a file in {}", path.display(), dir.display())
        })?;
    write(tmp.path()).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(tmp.path())
        .and_then(|f| {
            // tempfile creates files private (0600); artefacts are ordinary files.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
            f.sync_all()
        })
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceSpec, Mode};

    #[test]
    fn manifest_round_trips_through_json() {
        let m = RunManifest {
            format_version: FORMAT_VERSION,
            ae_tch_version: "0.1.0".into(),
            model: ModelConfig {
                arch: crate::config::Arch::Mlp,
                height: 28,
                width: 28,
                hidden: vec![256, 64],
                latent: 16,
                activation: crate::config::Activation::Relu,
                backbone: crate::config::Backbone::Mlp,
                channels: vec![],
                tied_weights: false,
            },
            train: TrainConfig {
                mode: Mode::Denoise,
                device: DeviceSpec::Cuda(1),
                ..Default::default()
            },
            data: DataRecord { path: "/d".into(), train_images: 9, val_images: 1 },
            weights: "model.ot".into(),
            outcome: None,
        };
        let text = serde_json::to_string_pretty(&m).unwrap();
        assert!(text.contains("\"mode\": \"denoise\""), "{text}");
        assert!(text.contains("\"device\": \"cuda:1\""), "{text}");
        assert_eq!(serde_json::from_str::<RunManifest>(&text).unwrap(), m);
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let failed = with_temp_file(&p, |_| bail!("disk full"));
        assert!(format!("{:#}", failed.unwrap_err()).contains("disk full"));
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn metrics_round_trip_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir { root: dir.path().to_path_buf() };
        let rows = vec![
            EpochStats {
                epoch: 1,
                train_loss: 0.1,
                val_loss: Some(0.09),
                seconds: 1.5,
                samples_per_s: 10.0,
                lr: 0.001,
                train_reconstruction: None,
                train_kl: None,
            },
            EpochStats {
                epoch: 2,
                train_loss: 0.05,
                val_loss: None,
                seconds: 1.25,
                samples_per_s: 12.0,
                lr: 0.0005,
                train_reconstruction: Some(0.04),
                train_kl: Some(0.01),
            },
        ];
        run.write_metrics(&rows).unwrap();
        let text = std::fs::read_to_string(run.file(METRICS_CSV)).unwrap();
        assert!(text.starts_with("epoch,train_loss,val_loss,seconds,samples_per_s,lr,train_reconstruction,train_kl\n"), "{text}");
        assert_eq!(read_metrics(&run.file(METRICS_CSV)).unwrap(), rows);
    }
}
