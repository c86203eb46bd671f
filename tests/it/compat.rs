//! Run folders written by earlier versions (tests/fixtures/v1, see its README) still load
//! and evaluate to the numbers they recorded.

use crate::util::*;
use std::path::Path;

/// A copy of fixture `name` whose model.json points at this checkout's data/mnist.
fn old_run(name: &str, into: &Path) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1").join(name);
    let run = into.join(name);
    copy_dir(&from, &run);
    let mut manifest = read_json(&run.join("model.json"));
    assert_eq!(manifest["format_version"], 1);
    manifest["data"]["path"] = mnist().to_str().unwrap().into();
    std::fs::write(run.join("model.json"), serde_json::to_string_pretty(&manifest).unwrap())
        .unwrap();
    run
}

#[test]
fn version_1_runs_evaluate_to_their_recorded_numbers() {
    let dir = tempdir();
    for name in ["mlp-denoise", "conv"] {
        let run = old_run(name, dir.path());
        let recorded = read_json(&run.join("model.json"))["outcome"]["test"].clone();
        let args = ["eval", "--run", run.to_str().unwrap(), "--json", "--threads", "1"];
        let now: serde_json::Value =
            serde_json::from_str(&ae(dir.path(), &args).ok().stdout).unwrap();
        let keys = recorded.as_object().unwrap().keys();
        let mut compared = 0;
        for key in keys.filter(|k| *k != "images") {
            let (then, now) = (recorded[key].as_f64().unwrap(), now[key].as_f64().unwrap());
            assert!((now - then).abs() <= 1e-5 * then.abs(), "{name} {key}: {now} vs {then}");
            compared += 1;
        }
        assert!(compared >= 7, "{name}: only {compared} metrics");
        assert_eq!(now["images"], recorded["images"]);
        // The other readers of a run take it too; the file is migrated only in memory.
        let grid = dir.path().join(format!("{name}.png"));
        ae(dir.path(), &["grid", "--run", run.to_str().unwrap(), "-o", grid.to_str().unwrap()])
            .ok();
        assert_eq!(read_json(&run.join("model.json"))["format_version"], 1);
    }
    // Its checkpoint is refused by name and version, not half-read.
    let run = old_run("conv", dir.path());
    ae(dir.path(), &["train", "--resume", run.to_str().unwrap()])
        .fails_with(&["checkpoint.ot: format_version 1", "cannot be resumed"]);
}
