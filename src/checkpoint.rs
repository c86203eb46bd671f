//! The checkpoint format: one type owns checkpoint.ot's tensor names and its JSON meta.
//! The training loop hands it values and the run store writes its tensors; neither knows
//! a name.

use crate::config::{ModelConfig, TrainConfig};
use crate::data::record::DataRecord;
use crate::format::{FORMAT_VERSION, OLDEST_UNMIGRATED};
use crate::optim::OptimState;
use crate::train::TrainState;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

/// The checkpoint's JSON part, stored as a u8 tensor so the file is one archive that is
/// renamed into place in one step.
const META: &str = "meta";

/// The JSON part of checkpoint.ot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub ae_tch_version: String,
    /// `config_hash` of the model, training settings and data below.
    pub config_hash: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub data: DataRecord,
    pub adam_step: i64,
    /// libtorch's intra-op threads: reductions sum in per-thread chunks, so a resumed run
    /// uses the same count (unless --threads says otherwise) to repeat the numbers exactly.
    pub threads: i32,
    /// Ranks of the data-parallel group that trained it (1: one process; checkpoints
    /// from before data-parallel training have none).
    #[serde(default = "one_rank")]
    pub world_size: usize,
    pub state: TrainState,
}

fn one_rank() -> usize {
    1
}

impl CheckpointMeta {
    /// The meta of a checkpoint written now, stamped with this version's format, for the
    /// run of `model`, `train` and `data` trained on `threads` in a group of `world_size`.
    pub fn new(
        model: &ModelConfig,
        train: &TrainConfig,
        data: &DataRecord,
        (threads, world_size): (i32, usize),
        snap: &crate::train::Snapshot<'_>,
    ) -> Self {
        CheckpointMeta {
            format_version: FORMAT_VERSION,
            ae_tch_version: env!("CARGO_PKG_VERSION").to_string(),
            config_hash: config_hash(model, train, &data.path),
            model: model.clone(),
            train: train.clone(),
            data: data.clone(),
            adam_step: snap.optim.step,
            threads,
            world_size,
            state: snap.state.clone(),
        }
    }
}

/// FNV-1a (64-bit, hex) of what a resumed run must share with the run it continues: the
/// model, the training settings outside `RESUMABLE`, and the data folder.
pub fn config_hash(model: &ModelConfig, train: &TrainConfig, data: &Path) -> String {
    let mut train = serde_json::to_value(train).expect("configs serialise");
    if let Some(fields) = train.as_object_mut() {
        fields.retain(|k, _| !TrainConfig::RESUMABLE.contains(&k.as_str()));
    }
    fnv_hex(&serde_json::to_string(&(model, train, data)).expect("configs serialise"))
}

/// FNV-1a (64-bit, hex) of everything a run trains with, resumable settings included: what
/// the ranks of a data-parallel group must agree on.
pub fn settings_hash(model: &ModelConfig, train: &TrainConfig, data: &Path) -> String {
    fnv_hex(&serde_json::to_string(&(model, train, data)).expect("configs serialise"))
}

fn fnv_hex(text: &str) -> String {
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

const PARAMS: &str = "params";
const ADAM_M: &str = "adam.m";
const ADAM_V: &str = "adam.v";
/// The best weights so far (early stopping).
const BEST: &str = "best_params";
/// The epoch's running loss and KL sums (a checkpoint written mid-epoch).
const LOSS_SUM: &str = "epoch.loss_sum";
const KL_SUM: &str = "epoch.kl_sum";

/// Everything checkpoint.ot holds: all `train --resume` needs to continue exactly.
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// Parameters and Adam moments; `optim.step` is also `meta.adam_step`.
    pub optim: OptimState,
    /// The weights of the best validation epoch, kept under early stopping.
    pub best: Option<Tensor>,
    /// The running loss and KL sums of an epoch interrupted part-way.
    pub sums: Option<(Tensor, Tensor)>,
}

impl Checkpoint {
    /// The named tensors of the file, on the CPU so a checkpoint written on a GPU
    /// resumes on any machine; the meta is JSON stored as a u8 tensor so the file is one
    /// archive renamed into place in one step.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let meta = CheckpointMeta { adam_step: self.optim.step, ..self.meta.clone() };
        let o = &self.optim;
        let mut named = vec![(PARAMS, &o.params), (ADAM_M, &o.m), (ADAM_V, &o.v)];
        named.extend(self.best.iter().map(|b| (BEST, b)));
        if let Some((loss, kl)) = &self.sums {
            named.extend([(LOSS_SUM, loss), (KL_SUM, kl)]);
        }
        let mut tensors: Vec<(String, Tensor)> =
            named.into_iter().map(|(n, t)| (n.to_string(), t.to_device(Device::Cpu))).collect();
        tensors.push((META.to_string(), Tensor::from_slice(&serde_json::to_vec(&meta)?)));
        Ok(tensors)
    }

    /// The checkpoint in `tensors` (a file's contents), checked: its version, its
    /// configuration against its hash, its model and its progress.
    pub fn from_tensors(mut tensors: HashMap<String, Tensor>) -> Result<Checkpoint> {
        let meta = tensors.remove(META).context("not an ae-tch checkpoint (no meta)")?;
        let bytes = Vec::<u8>::try_from(&meta).context("unreadable meta")?;
        let meta: serde_json::Value =
            serde_json::from_slice(&bytes).context("its meta is not valid")?;
        let version = meta.get("format_version").and_then(|v| v.as_u64());
        check_version(version.context("its meta is not valid")?)?;
        let meta: CheckpointMeta = serde_json::from_value(meta).context("its meta is not valid")?;
        if meta.config_hash != config_hash(&meta.model, &meta.train, &meta.data.path) {
            bail!("its configuration does not match its config_hash");
        }
        meta.model.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        if meta.state.epoch == 0 || meta.train.epochs == 0 {
            bail!("its progress is invalid (epoch 0)");
        }
        let mut take =
            |name: &str| tensors.remove(name).with_context(|| format!("it lacks tensor {name}"));
        let optim = OptimState {
            step: meta.adam_step,
            params: take(PARAMS)?,
            m: take(ADAM_M)?,
            v: take(ADAM_V)?,
        };
        let best = tensors.remove(BEST);
        let sums = match (tensors.remove(LOSS_SUM), tensors.remove(KL_SUM)) {
            (Some(loss), Some(kl)) => Some((loss, kl)),
            _ => None,
        };
        Ok(Checkpoint { meta, optim, best, sums })
    }
}

/// Refuses checkpoints of another layout; version 1 (before colour images) by name.
fn check_version(version: u64) -> Result<()> {
    if version == 1 {
        bail!(
            "format_version 1 was written by an older ae-tch (before colour images) and cannot \
             be resumed by this one; its model.json and weights still load for eval, encode \
             and the other commands"
        );
    }
    if !(OLDEST_UNMIGRATED as u64..=FORMAT_VERSION as u64).contains(&version) {
        bail!(
            "format_version {version} is not supported (this ae-tch resumes \
             {OLDEST_UNMIGRATED} to {FORMAT_VERSION})"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use tch::Kind;

    #[test]
    fn tensors_round_trip_and_old_or_altered_checkpoints_are_refused() {
        let t = |v: f32| Tensor::full([3], v as f64, (Kind::Float, Device::Cpu));
        let (model, train) = (ModelConfig::default(), TrainConfig::default());
        let data = DataRecord { path: "/d".into(), train_images: 9, val_images: 1, vectors: None };
        let meta = CheckpointMeta {
            format_version: FORMAT_VERSION,
            ae_tch_version: "0".into(),
            config_hash: config_hash(&model, &train, &data.path),
            model,
            train: train.clone(),
            data,
            adam_step: 0,
            threads: 1,
            world_size: 2,
            state: TrainState::new(&train),
        };
        let optim = OptimState { step: 7, params: t(1.0), m: t(2.0), v: t(3.0) };
        let ckpt = Checkpoint { meta, optim, best: Some(t(4.0)), sums: Some((t(5.0), t(6.0))) };
        let tensors: HashMap<String, Tensor> = ckpt.to_tensors().unwrap().into_iter().collect();
        let back = Checkpoint::from_tensors(
            tensors.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(),
        )
        .unwrap();
        assert_eq!(back.meta, CheckpointMeta { adam_step: 7, ..ckpt.meta.clone() });
        assert_eq!(back.optim.step, 7);
        let same = |a: &Tensor, b: &Tensor| a.equal(b);
        assert!(same(&back.optim.params, &t(1.0)) && same(&back.optim.v, &t(3.0)));
        assert!(same(back.best.as_ref().unwrap(), &t(4.0)));
        assert!(same(&back.sums.as_ref().unwrap().1, &t(6.0)));

        let altered = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut meta = serde_json::to_value(&ckpt.meta).unwrap();
            f(&mut meta);
            let mut tensors: HashMap<String, Tensor> =
                tensors.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
            tensors.insert(META.into(), Tensor::from_slice(&serde_json::to_vec(&meta).unwrap()));
            format!("{:#}", Checkpoint::from_tensors(tensors).err().expect("refused"))
        };
        let old = altered(&|m| m["format_version"] = 1.into());
        assert!(old.contains("format_version 1") && old.contains("cannot be resumed"), "{old}");
        let edited = altered(&|m| m["train"]["seed"] = 9.into());
        assert!(edited.contains("config_hash"), "{edited}");
        let mut missing = tensors;
        missing.remove(ADAM_V);
        let err = format!("{:#}", Checkpoint::from_tensors(missing).err().expect("refused"));
        assert!(err.contains("lacks tensor adam.v"), "{err}");
    }
}
