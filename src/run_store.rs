//! The run store: a run folder's files — weights, model.json, metrics.csv, plots and
//! checkpoint.ot (whose format `checkpoint` owns) — every one written to a temporary name
//! in the same folder and renamed into place, so a crash never leaves a half-written
//! artefact under its final name.

use crate::checkpoint::Checkpoint;
use crate::config::{ModelConfig, TrainConfig, WeightsFormat};
use crate::metrics::EvalReport;
use crate::model::{Autoencoder, Classifier};
use crate::train::EpochStats;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tch::{nn, Device, Tensor};

use crate::atomic::{sweep_temp_files, with_temp_file, write_atomic};
use crate::data::record::DataRecord;
use crate::format::{FORMAT_VERSION, OLDEST_UNMIGRATED};
use crate::invalid::Invalid;

pub const MODEL_JSON: &str = "model.json";
pub const WEIGHTS: &str = "model.ot";
pub const WEIGHTS_SAFETENSORS: &str = "model.safetensors";
pub const METRICS_CSV: &str = "metrics.csv";
pub const LOSS_PNG: &str = "loss.png";
pub const GRID_PNG: &str = "grid.png";
/// The files of an image folder that were not read as images, one path per line (an image
/// left out by `--skip-unreadable` with why); written only when there are some.
pub const SKIPPED_TXT: &str = "skipped-files.txt";
/// Weights, optimiser state and progress of a run, to continue it (`train --resume`).
pub const CHECKPOINT: &str = "checkpoint.ot";
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
    /// Autoencoders: metrics on the test split, computed with the saved weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<EvalReport>,
    /// Classifiers: accuracy and confusion matrix on the test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<crate::metrics::probe::ClassReport>,
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

impl RunManifest {
    /// The model.json of a run written now, stamped with this version's format.
    pub fn new(
        model: ModelConfig,
        train: TrainConfig,
        data: DataRecord,
        weights: &str,
        outcome: Option<Outcome>,
    ) -> Self {
        RunManifest {
            format_version: crate::format::FORMAT_VERSION,
            ae_tch_version: env!("CARGO_PKG_VERSION").to_string(),
            model,
            train,
            data,
            weights: weights.to_string(),
            outcome,
        }
    }
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
        // "--out PATH<problem>"
        let out = |problem: String| Invalid::of("out", format!("{}{problem}", path.display()));
        if path.exists() && !path.is_dir() {
            return Err(out(" exists and is not a folder".into()).into());
        }
        std::fs::create_dir_all(path)
            .map_err(|e| out(format!(": cannot create the run folder: {e}")))?;
        let run = RunDir { root: path.to_path_buf() };
        if run.file(MODEL_JSON).exists() && !overwrite {
            let problem =
                " already holds a run (model.json); choose another folder or pass {force}";
            return Err(out(problem.into()).into());
        }
        // A run that fails part-way must not leave the old model.json describing new files.
        if overwrite {
            match std::fs::remove_file(run.file(MODEL_JSON)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    let old = run.file(MODEL_JSON);
                    let problem = format!(": removing the old {}: {e}", old.display());
                    return Err(Invalid::plain(format!("{{force}}{problem}")).into());
                }
                _ => {}
            }
        }
        run.sweep_temp_files();
        // Fail now, not after training, if the folder cannot be written.
        tempfile::NamedTempFile::new_in(path)
            .map_err(|e| out(format!(": folder is not writable: {e}")))?;
        Ok(run)
    }

    /// Opens an existing folder that holds (part of) a run, model.json or not.
    pub fn open_dir(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            bail!("run folder {} does not exist", path.display());
        }
        Ok(RunDir { root: path.to_path_buf() })
    }

    /// Opens an existing run folder.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            bail!("run folder {} does not exist", path.display());
        }
        if !path.is_dir() {
            let problem =
                format!("{} is a file; give the run folder that holds it", path.display());
            return Err(Invalid::of("run", problem).into());
        }
        let run = RunDir { root: path.to_path_buf() };
        if !run.file(MODEL_JSON).is_file() {
            if run.file(CHECKPOINT).is_file() {
                let problem = format!(
                    "{} holds an unfinished run ({CHECKPOINT}, no model.json yet): finish it \
                     with `ae-tch train {{resume}} {}` (`ae-tch finetune {{resume}}` for a \
                     classifier), then use it",
                    path.display(),
                    path.display()
                );
                return Err(Invalid::plain(problem).into());
            }
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
        let invalid = || format!("{} is not a valid ae-tch model.json", path.display());
        let mut value: serde_json::Value = serde_json::from_str(&text).with_context(invalid)?;
        migrate_v1(&mut value);
        let manifest: RunManifest = serde_json::from_value(value).with_context(invalid)?;
        check_format_version(&path, manifest.format_version)?;
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

    /// Saves the weights as `file_name` (format from its extension, see `save_weights`);
    /// once they are in place, weights of the other format (an earlier run's, overwritten
    /// with --force) are removed, so a run folder never holds two sets.
    pub fn save_weights(&self, vs: &nn::VarStore, file_name: &str) -> Result<()> {
        save_weights(vs, &self.file(file_name))?;
        for other in [WEIGHTS, WEIGHTS_SAFETENSORS].into_iter().filter(|w| *w != file_name) {
            match std::fs::remove_file(self.file(other)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| {
                        format!("removing the earlier run's {}", self.file(other).display())
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn write_metrics(&self, rows: &[EpochStats]) -> Result<()> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in rows {
            csv.serialize(row)?;
        }
        write_atomic(&self.file(METRICS_CSV), &csv.into_inner()?)
    }

    /// Writes checkpoint.ot atomically.
    pub fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        Tensor::save_multi_to_stream(&checkpoint.to_tensors()?, &mut bytes)
            .context("serialising the checkpoint")?;
        write_atomic(&self.file(CHECKPOINT), &bytes.into_inner())
    }

    /// Reads checkpoint.ot back, checked (on the CPU).
    pub fn read_checkpoint(&self) -> Result<Checkpoint> {
        let path = self.file(CHECKPOINT);
        if !path.is_file() {
            bail!("{} has no {CHECKPOINT} to resume from", self.root.display());
        }
        let tensors: HashMap<String, Tensor> = Tensor::load_multi(&path)
            .with_context(|| format!("{} is not a readable checkpoint", path.display()))?
            .into_iter()
            .collect();
        Checkpoint::from_tensors(tensors).with_context(|| format!("{}", path.display()))
    }

    /// Removes temporary files that a killed process left behind (`.NAME.XXXXXX.tmp`).
    pub fn sweep_temp_files(&self) {
        sweep_temp_files(&self.root, None, Duration::ZERO);
    }

    /// Rebuilds the model from model.json and loads its weights on `device`.
    /// A classifier run (`finetune`) is refused by name: it has no decoder.
    pub fn load_model(&self, device: Device) -> Result<(RunManifest, nn::VarStore, Autoencoder)> {
        let manifest = self.read_manifest()?;
        if manifest.model.head.is_some() {
            bail!(
                "{} is a classifier run (ae-tch finetune): an encoder and a classification \
                 head, no decoder; this command needs an autoencoder run (eval and export \
                 take classifier runs)",
                self.root.display()
            );
        }
        let mut vs = nn::VarStore::new(device);
        let model = Autoencoder::new(&vs.root(), &manifest.model);
        load_weights(&mut vs, &self.file(&manifest.weights))?;
        vs.freeze();
        Ok((manifest, vs, model))
    }

    /// Rebuilds a classifier run (`finetune`) and loads its weights on `device`.
    pub fn load_classifier(
        &self,
        device: Device,
    ) -> Result<(RunManifest, nn::VarStore, Classifier)> {
        let manifest = self.read_manifest()?;
        if manifest.model.head.is_none() {
            bail!(
                "{} is an autoencoder run, not a classifier (ae-tch finetune)",
                self.root.display()
            );
        }
        let mut vs = nn::VarStore::new(device);
        let model = Classifier::new(&vs.root(), &manifest.model);
        load_weights(&mut vs, &self.file(&manifest.weights))?;
        vs.freeze();
        Ok((manifest, vs, model))
    }

    /// The weights of any run, autoencoder or classifier, in the variables of its network.
    pub fn load_variables(&self, device: Device) -> Result<(RunManifest, nn::VarStore)> {
        if self.read_manifest()?.model.head.is_some() {
            let (manifest, vs, _) = self.load_classifier(device)?;
            return Ok((manifest, vs));
        }
        let (manifest, vs, _) = self.load_model(device)?;
        Ok((manifest, vs))
    }
}

/// Refuses files written in a layout this ae-tch does not read.
fn check_format_version(path: &Path, version: u32) -> Result<()> {
    if !(OLDEST_UNMIGRATED..=FORMAT_VERSION).contains(&version) {
        bail!(
            "{}: format_version {version} is not supported (this ae-tch reads 1 to \
             {FORMAT_VERSION})",
            path.display()
        );
    }
    Ok(())
}

/// Rewrites a format_version 1 model.json in the current version, in place (see
/// `upgrade_model_config`). Any other document is left as it is.
fn migrate_v1(doc: &mut serde_json::Value) {
    if doc.get("format_version") != Some(&serde_json::json!(1)) {
        return;
    }
    if let Some(model) = doc.get_mut("model") {
        upgrade_model_config(model);
    }
    doc["format_version"] = serde_json::json!(FORMAT_VERSION);
}

/// A model config of format_version 1 as version 2: `height` and `width` become `input`,
/// grayscale images whose transparency is dropped (what version 1 did), and the flat
/// `arch`/`backbone`/`hidden`/`channels`/`tied_weights` become `layers` (the kind with its
/// own settings) and `variational`. Configs already in version 2 are left alone.
pub fn upgrade_model_config(model: &mut serde_json::Value) {
    let Some(fields) = model.as_object_mut().filter(|m| !m.contains_key("layers")) else {
        return;
    };
    if let (Some(height), Some(width)) = (fields.remove("height"), fields.remove("width")) {
        fields.insert(
            "input".into(),
            serde_json::json!({
                "kind": "image", "color": "gray", "height": height, "width": width,
                "background": "ignore"
            }),
        );
    }
    let mut take = |key: &str, default: serde_json::Value| fields.remove(key).unwrap_or(default);
    let arch = take("arch", "mlp".into());
    let backbone = take("backbone", "mlp".into());
    let (hidden, channels) =
        (take("hidden", serde_json::json!([])), take("channels", serde_json::json!([])));
    let tied_weights = take("tied_weights", false.into());
    let conv = arch == "conv" || (arch == "vae" && backbone == "conv");
    let layers = if conv {
        serde_json::json!({"kind": "conv", "channels": channels})
    } else {
        serde_json::json!({"kind": "mlp", "hidden": hidden, "tied_weights": tied_weights})
    };
    fields.insert("layers".into(), layers);
    fields.insert("variational".into(), (arch == "vae").into());
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

/// The weights file name for `format`.
pub fn weights_file(format: WeightsFormat) -> &'static str {
    match format {
        WeightsFormat::Ot => WEIGHTS,
        WeightsFormat::Safetensors => WEIGHTS_SAFETENSORS,
    }
}

/// The format of a weights file, from its extension: `.safetensors`, or tch's `.ot`.
pub fn weights_format(path: &Path) -> Result<WeightsFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("safetensors") => Ok(WeightsFormat::Safetensors),
        Some(e) if e.eq_ignore_ascii_case("ot") => Ok(WeightsFormat::Ot),
        _ => bail!("{}: expected a .safetensors or .ot file name", path.display()),
    }
}

/// Writes the variables of `vs` (on the CPU, in name order) to `path`, atomically:
/// safetensors, or tch's .ot (a PyTorch zip archive) — chosen by the extension. The .ot
/// archive is serialised in memory first: saving to a path would record the temporary
/// file's name inside it.
pub fn save_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    match weights_format(path)? {
        WeightsFormat::Safetensors => with_temp_file(path, |tmp| {
            Tensor::write_safetensors(&named, tmp).context("serialising the weights")?;
            Ok(())
        }),
        WeightsFormat::Ot => {
            let mut bytes = std::io::Cursor::new(Vec::new());
            Tensor::save_multi_to_stream(&named, &mut bytes).context("serialising the weights")?;
            write_atomic(path, &bytes.into_inner())
        }
    }
}

/// Copies the tensors of a weights file into `vs`, after checking that the file holds
/// exactly the variables `vs` has, with the same shapes and dtypes. Nothing is copied
/// when anything differs (tch's own `VarStore::load` would broadcast or half-load).
pub fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    if !path.is_file() {
        bail!("weights file {} does not exist", path.display());
    }
    let stored = match weights_format(path)? {
        WeightsFormat::Safetensors => Tensor::read_safetensors(path),
        WeightsFormat::Ot => Tensor::load_multi(path),
    };
    let stored: HashMap<String, Tensor> = stored
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

#[cfg(test)]
mod tests {
    use super::*;

    /// --force over a run keeps the old weights until the new ones replace them, and then
    /// leaves no weights of the other format: an imported run's model.safetensors must not
    /// stay beside the new model.ot.
    #[test]
    fn new_weights_replace_the_old_run_in_either_format() {
        let dir = tempfile::tempdir().unwrap();
        for name in [MODEL_JSON, WEIGHTS_SAFETENSORS] {
            std::fs::write(dir.path().join(name), b"old").unwrap();
        }
        assert!(RunDir::create(dir.path(), false).is_err(), "a run is not overwritten unasked");
        let run = RunDir::create(dir.path(), true).unwrap();
        assert!(!dir.path().join(MODEL_JSON).exists());
        assert!(dir.path().join(WEIGHTS_SAFETENSORS).exists(), "kept until replaced");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().zeros("w", &[2]);
        run.save_weights(&vs, WEIGHTS).unwrap();
        assert!(dir.path().join(WEIGHTS).is_file());
        assert!(!dir.path().join(WEIGHTS_SAFETENSORS).exists(), "the other format is gone");
    }

    use crate::config::{DeviceSpec, Mode};

    #[test]
    fn manifest_round_trips_through_json() {
        let m = RunManifest {
            format_version: FORMAT_VERSION,
            ae_tch_version: "0.1.0".into(),
            model: ModelConfig {
                layers: crate::config::Layers::Conv(crate::config::ConvLayers::plain(vec![8, 16])),
                variational: true,
                ..Default::default()
            },
            train: TrainConfig {
                mode: Mode::Denoise,
                device: DeviceSpec::Cuda(1),
                ..Default::default()
            },
            data: DataRecord { path: "/d".into(), train_images: 9, val_images: 1, vectors: None },
            weights: "model.ot".into(),
            outcome: None,
        };
        let text = serde_json::to_string_pretty(&m).unwrap();
        assert!(text.contains("\"mode\": \"denoise\""), "{text}");
        assert!(text.contains("\"device\": \"cuda:1\""), "{text}");
        assert_eq!(serde_json::from_str::<RunManifest>(&text).unwrap(), m);
    }

    #[test]
    fn version_1_model_json_is_migrated_and_version_1_checkpoints_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir { root: dir.path().to_path_buf() };
        // The model.json of a run written by the previous version, trimmed to its fields.
        let v1 = r#"{"format_version": 1, "ae_tch_version": "0.1.0",
          "model": {"arch": "conv", "height": 12, "width": 9, "hidden": [], "latent": 4,
                    "activation": "relu", "backbone": "mlp", "channels": [8], "tied_weights": false},
          "train": {"mode": "reconstruct", "noise_level": 0.3, "epochs": 1, "batch_size": 8,
                    "lr": 0.001, "seed": 1, "limit": null, "val_fraction": 0.1, "device": "cpu"},
          "data": {"path": "/d", "train_images": 9, "val_images": 1},
          "weights": "model.ot", "outcome": null}"#;
        std::fs::write(run.file(MODEL_JSON), v1).unwrap();
        let m = run.read_manifest().unwrap();
        assert_eq!(m.format_version, FORMAT_VERSION);
        let spec = m.model.input.image().unwrap().clone();
        assert_eq!((spec.channels(), spec.height, spec.width), (1, 12, 9));
        assert_eq!(
            m.model.layers,
            crate::config::Layers::Conv(crate::config::ConvLayers::plain(vec![8]))
        );
        assert!(!m.model.variational);
        // A VAE on an MLP backbone becomes MLP layers with the variational flag.
        let mut vae = serde_json::json!({"arch": "vae", "height": 2, "width": 2, "hidden": [4],
            "latent": 2, "backbone": "mlp", "channels": [], "tied_weights": false});
        upgrade_model_config(&mut vae);
        let vae: ModelConfig = serde_json::from_value(vae).unwrap();
        assert!(vae.variational);
        assert_eq!(vae.layers, crate::config::Layers::Mlp { hidden: vec![4], tied_weights: false });
        assert_eq!(spec.background, crate::data::spec::Background::Ignore);
        let err = check_format_version(&run.file(MODEL_JSON), 7).unwrap_err().to_string();
        assert!(err.contains("format_version 7 is not supported"), "{err}");
    }

    #[test]
    fn version_2_conv_reads_as_the_plain_network_and_writes_as_it_did() {
        use crate::config::{ConvLayers, Layers, Upsample};
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir { root: dir.path().to_path_buf() };
        let layers = r#"{"kind": "conv", "channels": [8, 16]}"#;
        let v2 = format!(
            r#"{{"format_version": 2, "ae_tch_version": "0.1.0",
          "model": {{"input": {{"kind": "image", "color": "gray", "height": 12, "width": 9,
                     "background": "white"}}, "layers": {layers}, "latent": 4}},
          "train": {{"mode": "reconstruct", "noise_level": 0.3, "epochs": 1, "batch_size": 8,
                    "lr": 0.001, "seed": 1, "limit": null, "val_fraction": 0.1, "device": "cpu"}},
          "data": {{"path": "/d", "train_images": 9, "val_images": 1}},
          "weights": "model.ot", "outcome": null}}"#
        );
        std::fs::write(run.file(MODEL_JSON), v2).unwrap();
        let m = run.read_manifest().unwrap();
        assert_eq!(m.format_version, 2);
        assert_eq!(m.model.layers, Layers::Conv(ConvLayers::plain(vec![8, 16])));
        // Written back, the plain network's layers are what version 2 wrote, so a version 2
        // checkpoint's config hash still matches.
        let written: serde_json::Value = serde_json::to_value(&m.model.layers).unwrap();
        assert_eq!(written, serde_json::from_str::<serde_json::Value>(layers).unwrap());
        let rich = ConvLayers {
            blocks: 2,
            groups: 8,
            upsample: Upsample::Resize,
            ..ConvLayers::plain(vec![4])
        };
        let text = serde_json::to_string(&Layers::Conv(rich.clone())).unwrap();
        assert!(
            text.contains(r#""blocks":2"#) && text.contains(r#""upsample":"resize""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Layers>(&text).unwrap(), Layers::Conv(rich));
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
                val_accuracy: None,
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
                val_accuracy: Some(0.75),
            },
        ];
        run.write_metrics(&rows).unwrap();
        let text = std::fs::read_to_string(run.file(METRICS_CSV)).unwrap();
        assert!(text.starts_with("epoch,train_loss,val_loss,seconds,samples_per_s,lr,train_reconstruction,train_kl,val_accuracy\n"), "{text}");
        assert_eq!(read_metrics(&run.file(METRICS_CSV)).unwrap(), rows);
    }
}
