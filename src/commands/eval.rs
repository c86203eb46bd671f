//! `ae-tch eval`: test-set metrics of a trained run.

use crate::cli::EvalArgs;
use crate::metrics;
use anyhow::Result;

pub fn run(args: EvalArgs) -> Result<()> {
    if crate::run_store::RunDir::open(&args.run.dir)?.read_manifest()?.model.head.is_some() {
        return super::finetune::eval(&args);
    }
    let loaded = super::open_run(&args.run)?;
    let images = loaded.test_rows(args.data.as_deref())?;
    let (manifest, device) = (&loaded.manifest, loaded.device);
    let pca = loaded.pca_baseline()?;
    let report = metrics::evaluate(
        &loaded.model,
        &manifest.model,
        &manifest.train,
        &images.to_device(device),
        &pca,
    );
    let train = &manifest.train;
    let text = if args.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        super::report::eval_table(&report, train)
    };
    super::print(&text)
}
