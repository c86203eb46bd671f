//! Run folders written by earlier versions (tests/fixtures/v1 and later, see their READMEs) still load
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

/// Every fixture folder of format version 2 and later (`scripts/make-fixtures.sh` writes
/// one per kind), copied to `into` with its recorded paths pointed at this checkout.
fn fixtures(into: &Path) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut runs = Vec::new();
    let mut versions: Vec<_> = std::fs::read_dir(root.join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "v1"))
        .collect();
    versions.sort();
    for version in versions {
        let mut names: Vec<_> =
            std::fs::read_dir(&version).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for from in names.into_iter().filter(|p| p.is_dir()) {
            let name = format!(
                "{}-{}",
                version.file_name().unwrap().to_str().unwrap(),
                from.file_name().unwrap().to_str().unwrap()
            );
            let run = into.join(name);
            copy_dir(&from, &run);
            // Recorded paths are relative to the checkout that wrote them: data/... and
            // tests/fixtures/vN/<run> (a classifier's autoencoder run).
            let text = std::fs::read_to_string(run.join("model.json")).unwrap();
            let text = text
                .replace("\"data/", &format!("\"{}/data/", root.display()))
                .replace("\"tests/fixtures/", &format!("\"{}/tests/fixtures/", root.display()));
            std::fs::write(run.join("model.json"), text).unwrap();
            runs.push(run);
        }
    }
    runs
}

/// Asserts `now` equals what was recorded: every number to 1e-5 of itself or, below 1, of
/// 1, every other value exactly, keys that name the version aside. Another CPU's kernels
/// move the last digits: on another machine v5-colour's SSIM (a small difference of large
/// sums) read 0.06324415 against 0.06324427 recorded, and v5-vector's PCA baseline
/// average precision 0.5628884 against 0.5628926 (two nearly tied rows swapped); a change
/// of behaviour moves them by far more. Returns how many numbers it compared.
fn same_numbers(what: &str, recorded: &serde_json::Value, now: &serde_json::Value) -> usize {
    use serde_json::Value;
    match (recorded, now) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .filter(|(k, _)| !k.ends_with("version"))
            .map(|(k, v)| {
                let got = b.get(k).unwrap_or_else(|| panic!("{what}: {k} is gone"));
                same_numbers(&format!("{what}.{k}"), v, got)
            })
            .sum(),
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: length");
            a.iter()
                .zip(b)
                .enumerate()
                .map(|(i, (x, y))| same_numbers(&format!("{what}[{i}]"), x, y))
                .sum()
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{what}: {b} now, {a} recorded");
            1
        }
        (a, b) => {
            assert_eq!(a, b, "{what}");
            0
        }
    }
}

/// Run folders written by the format versions since 2, one per kind (image MLP, conv, VAE,
/// colour, classifier, vector, series), evaluate and score to the numbers they recorded.
#[test]
fn every_versions_runs_evaluate_and_score_to_their_recorded_numbers() {
    let dir = tempdir();
    let d = dir.path();
    let runs = fixtures(d);
    assert!(runs.len() >= 7, "fixtures: {runs:?}");
    let mut compared = 0;
    for run in &runs {
        let name = run.file_name().unwrap().to_str().unwrap().to_string();
        let r = run.to_str().unwrap();
        let eval = ae(d, &["eval", "--run", r, "--json", "--threads", "1"]).ok().stdout;
        let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
        compared += same_numbers(&name, &read_json(&run.join("expected-eval.json")), &eval);
        let expected = run.join("expected-anomaly.json");
        if expected.is_file() {
            let recorded = read_json(&expected);
            let normal = recorded["normal_classes"][0].to_string();
            let args = ["anomaly", "--run", r, "--json", "--threads", "1", "--normal-classes"];
            let now = ae(d, &[&args[..], &[normal.trim_matches('"')]].concat()).ok().stdout;
            let now: serde_json::Value = serde_json::from_str(&now).unwrap();
            compared += same_numbers(&format!("{name} anomaly"), &recorded, &now);
        }
    }
    assert!(compared >= 80, "only {compared} numbers compared");
    // A recorded checkpoint resumes: one more epoch on the conv run.
    let conv = runs.iter().find(|r| r.ends_with("v5-conv")).unwrap();
    let c = conv.to_str().unwrap();
    ae(d, &["train", "--resume", c, "--epochs", "2", "--force", "--threads", "1"]).ok();
    let rows = std::fs::read_to_string(conv.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
}
