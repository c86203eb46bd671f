//! `ae-tch export` and `ae-tch import`: weights in and out of run folders, in the formats
//! PyTorch users have (safetensors) with the names of the equivalent `torch.nn`
//! modules.

use crate::cli::{ExportArgs, ImportArgs};
use crate::config::{ModelConfig, TrainConfig, WeightsFormat};
use crate::data;
use crate::data::record::DataRecord;
use crate::data::vectors::VectorSource;
use crate::model::Autoencoder;
use crate::run_store::{self, RunDir, RunManifest};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::Module;
use tch::{nn, Device};

/// One tensor of an exported state dict, as PyTorch will see it.
#[derive(Debug, Serialize)]
struct TensorInfo {
    name: String,
    shape: Vec<i64>,
    dtype: String,
}

#[derive(Debug, Serialize)]
struct ExportReport<'a> {
    output: &'a Path,
    format: WeightsFormat,
    parameters: i64,
    tensors: Vec<TensorInfo>,
}

pub fn export(args: ExportArgs) -> Result<()> {
    if is_torchscript(&args.output) {
        return export_torchscript(&args);
    }
    let format = run_store::weights_format(&args.output)
        .map_err(|e| anyhow!("{e}, or .pt for TorchScript"))?;
    let run = RunDir::open(&args.run)?;
    let (_, vs) = run.load_variables(Device::Cpu)?;
    run_store::save_weights(&vs, &args.output)?;
    let mut tensors: Vec<TensorInfo> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| TensorInfo { name, shape: t.size(), dtype: dtype_name(t.kind()) })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let parameters = tensors.iter().map(|t| t.shape.iter().product::<i64>()).sum();
    let report = ExportReport { output: &args.output, format, parameters, tensors };
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&report)? + "\n"));
    }
    super::print(&format!(
        "wrote {} tensors ({parameters} parameters) to {}\n",
        report.tensors.len(),
        args.output.display()
    ))
}

/// A `.pt` output: the whole model as TorchScript.
fn is_torchscript(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("pt"))
}

/// The module attribute holding the run's description (`model.ae_tch` in Python).
pub const SCRIPT_ATTRIBUTE: &str = "ae_tch";

/// What a TorchScript user needs to call the module right, as JSON: the model config
/// (its `input` says the shape, colour and, for vectors, the features and their scaling)
/// and how inputs and outputs are laid out.
fn script_description(manifest: &RunManifest) -> Result<String> {
    let m = &manifest.model;
    let output = if m.input.image().is_some() { "" } else { " and returns scaled features" };
    let layout = format!(
        "forward and encode take float32 [N, {}]: {}; decode takes [N, {}]{output}",
        m.input_dim(),
        m.input.row_layout(),
        m.latent
    );
    let about = serde_json::json!({
        "ae_tch_version": env!("CARGO_PKG_VERSION"),
        "layout": layout,
        "variational": m.variational,
        "model": m,
    });
    Ok(serde_json::to_string(&about)?)
}

/// `export -o model.pt`: `forward`, `encode` and `decode` traced into one TorchScript
/// module (the VAE's mean path), with the run's description as a string attribute.
fn export_torchscript(args: &ExportArgs) -> Result<()> {
    let run = RunDir::open(&args.run)?;
    if run.read_manifest()?.model.head.is_some() {
        anyhow::bail!(
            "{} is a classifier run: TorchScript export (.pt) is for autoencoders; write its \
             weights with -o FILE.safetensors or -o FILE.ot",
            args.run.display()
        );
    }
    let (manifest, _vs, model) = run.load_model(Device::Cpu)?;
    let cfg = &manifest.model;
    let x = tch::Tensor::rand([2, cfg.input_dim()], (tch::Kind::Float, Device::Cpu));
    let z = tch::Tensor::randn([2, cfg.latent], (tch::Kind::Float, Device::Cpu));
    let bytes = tch::no_grad(|| -> Result<Vec<u8>> {
        let mut module = crate::script::ScriptModule::new("AeTch")?;
        module.trace("forward", std::slice::from_ref(&x), |t| vec![model.forward(&t[0])])?;
        module.trace("encode", std::slice::from_ref(&x), |t| vec![model.encode(&t[0])])?;
        module.trace("decode", std::slice::from_ref(&z), |t| vec![model.decode(&t[0])])?;
        module.set_string(SCRIPT_ATTRIBUTE, &script_description(&manifest)?)?;
        module.to_bytes()
    })?;
    crate::atomic::write_atomic(&args.output, &bytes)?;
    if args.json {
        let report = serde_json::json!({
            "output": args.output,
            "format": "torchscript",
            "methods": ["forward", "encode", "decode"],
            "attribute": SCRIPT_ATTRIBUTE,
            "bytes": bytes.len(),
        });
        return super::print(&(serde_json::to_string_pretty(&report)? + "\n"));
    }
    super::print(&format!(
        "wrote TorchScript (forward, encode, decode; description in .{SCRIPT_ATTRIBUTE}) to {}\n",
        args.output.display()
    ))
}

/// PyTorch's name for a tensor dtype (`torch.float32` without the module).
fn dtype_name(kind: tch::Kind) -> String {
    match kind {
        tch::Kind::Float => "float32".into(),
        tch::Kind::Double => "float64".into(),
        tch::Kind::Half => "float16".into(),
        tch::Kind::BFloat16 => "bfloat16".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// What `import` reads from `--config`: a run's model.json (the model, its training
/// settings and data record) or a bare model config (default settings, no record).
struct ImportedConfig {
    model: ModelConfig,
    train: TrainConfig,
    /// The recorded data path.
    data: Option<PathBuf>,
    /// Vector runs: the recorded file and split.
    vectors: Option<VectorSource>,
}

pub fn import(args: ImportArgs) -> Result<()> {
    let format = run_store::weights_format(&args.from)?;
    let ImportedConfig { model, train, data: recorded_data, vectors: vector_source } =
        read_config(&args.config)?;
    model.validate().map_err(|e| anyhow!("{}: {e}", args.config.display()))?;
    let (dir, train_rows, val_rows) =
        training_rows(&args, (&model, &train), recorded_data, vector_source.as_ref())?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _ = Autoencoder::new(&vs.root(), &model);
    run_store::load_weights(&mut vs, &args.from)?;
    let run = crate::session::create_run(&args.out, args.force)?;
    let weights = run_store::weights_file(format);
    run.save_weights(&vs, weights)?;
    let data = DataRecord {
        path: std::fs::canonicalize(&dir).unwrap_or(dir),
        train_images: train_rows,
        val_images: val_rows,
        vectors: vector_source,
    };
    let manifest = RunManifest::new(model, train, data, weights, None);
    run.write_manifest(&manifest)?;
    if args.json {
        let report = serde_json::json!({
            "from": args.from,
            "format": format,
            "run": args.out,
            "parameters": vs.variables().values().map(|t| t.numel()).sum::<usize>(),
            "train_images": manifest.data.train_images,
            "data": manifest.data.path,
        });
        return super::print(&(serde_json::to_string_pretty(&report)? + "\n"));
    }
    super::print(&format!(
        "imported {} into {} ({} weights); try: ae-tch eval --run {}\n",
        args.from.display(),
        args.out.display(),
        if format == WeightsFormat::Safetensors { "safetensors" } else { "ot" },
        args.out.display()
    ))
}

/// Reads `--config` (a model.json or a bare model config, from any format version,
/// upgraded to this one).
fn read_config(path: &Path) -> Result<ImportedConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    // A model.json, or a bare model config, from any version.
    match value.get_mut("model") {
        Some(m) => run_store::upgrade_model_config(m),
        None => run_store::upgrade_model_config(&mut value),
    }
    let not_config = || format!("{}: no valid \"model\" description", path.display());
    Ok(match value.get("model") {
        Some(m) => ImportedConfig {
            model: serde_json::from_value::<ModelConfig>(m.clone()).with_context(not_config)?,
            train: value
                .get("train")
                .and_then(|t| serde_json::from_value::<TrainConfig>(t.clone()).ok())
                .unwrap_or_default(),
            data: value.pointer("/data/path").and_then(|p| p.as_str()).map(PathBuf::from),
            vectors: value
                .pointer("/data/vectors")
                .and_then(|v| serde_json::from_value::<VectorSource>(v.clone()).ok()),
        },
        None => ImportedConfig {
            model: serde_json::from_value(value).with_context(not_config)?,
            train: TrainConfig::default(),
            data: None,
            vectors: None,
        },
    })
}

/// The imported run's data folder or file (`--data`, else the recorded one) and its
/// training and validation row counts, rebuilt the way the run was trained so `eval`
/// and `anomaly` find the same rows.
fn training_rows(
    args: &ImportArgs,
    (model, train): (&ModelConfig, &TrainConfig),
    recorded_data: Option<PathBuf>,
    vector_source: Option<&VectorSource>,
) -> Result<(PathBuf, usize, usize)> {
    let image = model.input.image().is_some();
    // A vector model's rows come from the file and split the run recorded (or --data, read
    // the same way), so eval and anomaly rebuild the same test rows.
    if !image && vector_source.is_none() {
        bail!(
            "{}: a vector model needs the run's model.json (its \"data\" record says which file \
             and split it was trained on), not a bare model description",
            args.config.display()
        );
    }
    let path = match args.data.clone().or(recorded_data) {
        Some(path) => path,
        None if image => data::default_dir(),
        None => bail!("no data path recorded"),
    };
    let record =
        DataRecord { path, train_images: 0, val_images: 0, vectors: vector_source.cloned() };
    let (train_rows, val_rows) =
        model.input.training_rows(&record, train).with_context(|| match image {
            true => {
                format!("the run's evaluation needs its data folder ({})", record.path.display())
            }
            false => format!("the run's evaluation needs {}", record.path.display()),
        })?;
    Ok((record.path, train_rows.len(), val_rows.len()))
}
