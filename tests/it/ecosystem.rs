//! ae-tch and PyTorch exchange weights both ways (the project's venv PyTorch and
//! safetensors as the real client), and the import/export commands refuse what does not
//! fit.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Runs tests/clients/pytorch_client.py and returns the difference it reports.
fn client(args: &[&str]) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pytorch_client.py");
    let out = Command::new(python()).arg(script).args(args).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("max_abs_diff "))
        .map(|v| v.parse().unwrap())
        .unwrap_or(f64::NAN)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn weights_round_trip_between_ae_tch_and_pytorch() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("run");
    let mut extra = vec!["--epochs", "2", "--hidden", "64,32", "--activation", "tanh"];
    extra.extend(["--latent", "8"]);
    ae(d, &quick_train(&mnist(), &run, &extra)).ok();
    let json = run.join("model.json");

    // ae-tch → PyTorch: torch.nn loads the exported state dict (strict) and reconstructs
    // the 2000 test images as ae-tch does.
    let exported = d.join("ae.safetensors");
    ae(d, &["export", "--run", s(&run), "-o", s(&exported)]).ok();
    ae(d, &["encode", "--run", s(&run), "--decode", "-o", "ae.npy"]).ok();
    let diff = client(&["check", s(&json), s(&exported), s(&d.join("ae.npy"))]);
    eprintln!("ae-tch → PyTorch: max abs difference {diff:e}");
    assert!(diff <= 1e-5, "ae-tch → PyTorch: max abs difference {diff}");

    // PyTorch → ae-tch: a state dict made by torch (its own initialisation) becomes a run
    // that reconstructs as torch does.
    let made = d.join("torch.safetensors");
    client(&["make", s(&json), s(&made), s(&d.join("torch.npy")), "3"]);
    let imported = d.join("imported");
    ae(d, &["import", "--from", s(&made), "--config", s(&json), "--out", s(&imported)]).ok();
    assert!(imported.join("model.safetensors").is_file());
    ae(d, &["encode", "--run", s(&imported), "--decode", "-o", "back.npy"]).ok();
    let diff = client(&["diff", s(&d.join("torch.npy")), s(&d.join("back.npy"))]);
    eprintln!("PyTorch → ae-tch: max abs difference {diff:e}");
    assert!(diff <= 1e-5, "PyTorch → ae-tch: max abs difference {diff}");
    ae(d, &["eval", "--run", s(&imported)]).ok();

    // An .ot export imports too, and training can write safetensors directly.
    ae(d, &["export", "--run", s(&run), "-o", "ae.ot"]).ok();
    ae(d, &["import", "--from", "ae.ot", "--config", s(&json), "--out", "from-ot"]).ok();
    let st = d.join("st");
    ae(d, &quick_train(&mnist(), &st, &["--epochs", "1", "--format", "safetensors"])).ok();
    assert!(st.join("model.safetensors").is_file() && !st.join("model.ot").exists());
    ae(d, &["eval", "--run", s(&st)]).ok();
}

#[test]
fn import_and_export_refuse_what_does_not_fit() {
    let dir = tempdir();
    let d = dir.path();
    let run = shared_denoise_run();
    let json = run.join("model.json");
    ae(d, &["export", "--run", s(run), "-o", "w.bin"])
        .fails_with(&["w.bin", ".safetensors or .ot"]);
    ae(d, &["export", "--run", s(run), "-o", "w.safetensors"]).ok();
    // A config whose latent size differs: the shapes are named, nothing is written.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    m["model"]["latent"] = 5.into();
    std::fs::write(d.join("other.json"), m.to_string()).unwrap();
    ae(d, &["import", "--from", "w.safetensors", "--config", "other.json", "--out", "bad"])
        .fails_with(&["w.safetensors does not match", "[128, 5]"]);
    assert!(!d.join("bad").exists());
    std::fs::write(d.join("garbage.safetensors"), b"not a safetensors file").unwrap();
    ae(d, &["import", "--from", "garbage.safetensors", "--config", s(&json), "--out", "bad"])
        .fails_with(&["garbage.safetensors is not a readable weights file"]);
    std::fs::write(d.join("broken.json"), "{").unwrap();
    ae(d, &["import", "--from", "w.safetensors", "--config", "broken.json", "--out", "bad"])
        .fails_with(&["broken.json is not JSON"]);
}
