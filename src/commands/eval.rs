//! `ae-tch eval`: test-set metrics of a trained run.

use crate::cli::EvalArgs;
use crate::config::ModelConfig;
use crate::run_store::RunDir;
use crate::{device, metrics};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::nn::Module;
use tch::{CModule, Device, Kind, Tensor};

/// A TorchScript autoencoder (from `export -o FILE.pt`) checked to map the run's rows to
/// rows of the same width.
#[derive(Debug)]
struct Script(CModule);

impl Script {
    fn load(path: &Path, cfg: &ModelConfig, device: Device) -> Result<Script> {
        let module = CModule::load_on_device(path, device).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a TorchScript file torch can load: {}",
                path.display(),
                torch_message(e)
            )
        })?;
        let d = cfg.input_dim();
        let probe = Tensor::zeros([2, d], (Kind::Float, device));
        let out = tch::no_grad(|| module.forward_ts(&[probe])).map_err(|e| {
            anyhow::anyhow!(
                "{}: its forward does not take [N, {d}] rows: {}",
                path.display(),
                torch_message(e)
            )
        })?;
        if out.size() != [2, d] {
            bail!(
                "{}: its forward maps [2, {d}] to {:?}, not to [2, {d}]: a model of another run?",
                path.display(),
                out.size()
            );
        }
        Ok(Script(module))
    }
}

/// The first line of a libtorch error (its C++ backtrace follows).
fn torch_message(e: tch::TchError) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().trim_start_matches("Internal torch error: ").to_string()
}

impl Module for Script {
    fn forward(&self, xs: &Tensor) -> Tensor {
        // Checked in `load` to take and give rows of the run's width.
        self.0.forward_ts(&[xs]).expect("TorchScript forward checked on load")
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    if crate::run_store::RunDir::open(&args.run.dir)?.read_manifest()?.model.head.is_some() {
        return classifier(&args);
    }
    let loaded = super::open_run(&args.run)?;
    let (manifest, device) = (&loaded.manifest, loaded.device);
    let pca = loaded.pca_baseline()?;
    let script =
        args.model.as_deref().map(|p| Script::load(p, &manifest.model, device)).transpose()?;
    let model: &dyn Module = match &script {
        Some(s) => s,
        None => &loaded.model,
    };
    let report = match manifest.model.input.series().filter(|(_, s)| s.spectral.is_some()) {
        Some(input) => speech_report(&loaded, model, &pca, input, &args)?,
        None => {
            let rows = loaded.test_rows((args.data.as_deref(), args.read.reading()))?;
            let (config, train) = (&manifest.model, &manifest.train);
            metrics::chunked::evaluate_rows(model, config, train, &rows, &pca, device)
        }
    };
    let train = &manifest.train;
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        super::report::eval_table(&report, &manifest.model, train)
    };
    super::print(&text)
}

/// `eval` on a spectral run: its test recordings (or `--data`'s) with its noise added,
/// cleaned and measured as waves (`metrics::speech`).
fn speech_report(
    loaded: &super::LoadedRun,
    model: &dyn Module,
    pca: &crate::metrics::pca::Pca,
    input: (&crate::data::spec::VectorSpec, &crate::data::spec::SeriesSpec),
    args: &EvalArgs,
) -> Result<metrics::EvalReport> {
    let manifest = &loaded.manifest;
    let Some(source) = &manifest.data.vectors else { bail!("the run records no data source") };
    let other = args.data.as_deref().map(|p| (p, loaded.reading(args.read.reading())));
    let clean = crate::data::vectors::test_recordings(
        (&manifest.data.path, source),
        input.1,
        manifest.train.seed,
        other,
    )
    .with_context(|| super::data_needed("eval", &manifest.data))?;
    metrics::speech::evaluate(model, pca, &manifest.train, input, &clean, loaded.device)
}

/// `eval` on a classifier run: accuracy and the confusion matrix on the test rows (of
/// `data`, read the run's way, or of the run's own data).
fn classifier(args: &EvalArgs) -> Result<()> {
    device::set_threads(args.run.runtime.threads)?;
    let device = device::resolve(args.run.runtime.device)?;
    let run = RunDir::open(&args.run.dir)?;
    let (manifest, _vs, model) = run.load_classifier(device)?;
    let test = super::split_rows(
        &manifest,
        (args.data.as_deref(), args.read.reading()),
        crate::data::Split::Test,
    )
    .with_context(|| super::data_needed("eval of a classifier", &manifest.data))?;
    if test.labels().is_none() {
        bail!("eval of a classifier needs labelled test rows, and these have none");
    }
    let report = super::classify(&model, &test, &manifest.model, device);
    if args.json {
        return super::print(&(serde_json::to_string(&report)? + "\n"));
    }
    super::print(&super::report::class_table(&report))
}
