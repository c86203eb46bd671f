//! `finetune`: a classifier head on a trained encoder, through the same loop as `train`;
//! `eval` and `export` of classifier runs; `plot-latent --method tsne`.

use crate::resume::{assert_same_run, with_fault};
use crate::util::*;
use std::path::Path;
use tch::Tensor;

/// A small autoencoder on data/mnist (about a second on one thread).
fn autoencoder(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("ae");
    ae(dir, &quick_train(&mnist(), &out, &["--epochs", "4", "--mode", "denoise"])).ok();
    out
}

fn finetune(ae_run: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["finetune", "--threads", "1", "--device", "cpu", "--epochs", "4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--run".into(), ae_run.display().to_string()]);
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The variables of a run's model.ot whose names start with `prefix`, sorted by name.
fn tensors(run: &Path, prefix: &str) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = Tensor::load_multi(run.join("model.ot"))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb))
}

fn accuracy(run: &Path) -> f64 {
    read_json(&run.join("model.json"))["outcome"]["classification"]["accuracy"].as_f64().unwrap()
}

/// 20 labels per digit lift the classifier far above chance (0.1); the same seed gives the
/// same weights; `--freeze-encoder` keeps the autoencoder's encoder bit for bit, and with
/// `--from-scratch` the frozen encoder is a fresh one (so the flag really re-initialises);
/// `eval` and `export` read the classifier run, commands that need a decoder refuse it.
#[test]
fn finetune_learns_from_few_labels_and_the_flags_do_what_they_say() {
    let dir = tempdir();
    let d = dir.path();
    let pre = autoencoder(d);
    let run = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut flags = vec!["--labels-per-class", "20"];
        flags.extend_from_slice(extra);
        ae(d, &finetune(&pre, &out, &flags)).ok();
        out
    };
    let clf = run("clf", &[]);
    for f in ["model.ot", "model.json", "metrics.csv", "loss.png", "confusion.png"] {
        assert!(clf.join(f).is_file(), "{f}");
    }
    let acc = accuracy(&clf);
    assert!(acc > 0.6, "20 labels per digit: {acc}");
    let csv = std::fs::read_to_string(clf.join("metrics.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with("val_accuracy") && csv.lines().count() == 5);
    let again = run("again", &[]);
    assert!(same(&tensors(&clf, ""), &tensors(&again, "")), "same seed, same weights");

    let encoder = tensors(&pre, "encoder.");
    assert!(!encoder.is_empty());
    assert!(!same(&tensors(&clf, "encoder."), &encoder), "finetuning trains the encoder");
    let frozen = run("frozen", &["--freeze-encoder"]);
    assert!(same(&tensors(&frozen, "encoder."), &encoder), "frozen: the autoencoder's encoder");
    let scratch = run("scratch", &["--freeze-encoder", "--from-scratch"]);
    let fresh = tensors(&scratch, "encoder.");
    assert!(fresh.len() == encoder.len() && !same(&fresh, &encoder), "re-initialised");
    let json = read_json(&scratch.join("model.json"));
    assert_eq!(json["train"]["finetune"]["from_scratch"], true);
    assert_eq!(json["model"]["head"]["classes"].as_array().unwrap().len(), 10);

    // eval reproduces the recorded accuracy; export names the head as PyTorch would.
    let e = ae(d, &["eval", "--run", "clf", "--json", "--threads", "1"]).ok().stdout;
    let e: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
    assert_eq!(e["accuracy"].as_f64(), Some(acc));
    let rows: u64 = e["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(rows, 2000, "every test row once in the confusion matrix");
    ae(d, &["export", "--run", "clf", "-o", "clf.safetensors"]).ok();
    let exported = Tensor::read_safetensors(d.join("clf.safetensors")).unwrap();
    let names: Vec<&str> = exported.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"head.weight") && names.contains(&"encoder.0.weight"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("decoder.")));
    ae(d, &["encode", "--run", "clf", "-o", "z.csv"]).fails_with(&["clf is a classifier run"]);
    ae(d, &["export", "--run", "clf", "-o", "clf.pt"])
        .fails_with(&["clf is a classifier run", ".safetensors"]);
    ae(d, &["finetune", "--run", "clf", "--out", "x"]).fails_with(&["already a classifier run"]);
    ae(d, &["train", "--resume", "clf"]).fails_with(&["finetune --resume"]);
}

/// Killed inside its second checkpoint write, a finetune run resumes to the uninterrupted
/// run: the same metrics rows and bit-identical weights.
#[test]
fn finetune_resumes_exactly() {
    let dir = tempdir();
    let d = dir.path();
    let pre = autoencoder(d);
    let (whole, killed) = (d.join("whole"), d.join("killed"));
    let args = |out: &Path| finetune(&pre, out, &["--labels-per-class", "10"]);
    ae(d, &args(&whole)).ok();
    assert_eq!(with_fault(d, &args(&killed), "abort:checkpoint.ot:2").code, None);
    assert!(!killed.join("model.json").exists());
    let resumed = ae(d, &["finetune", "--resume", killed.to_str().unwrap()]).ok();
    assert!(resumed.stderr.contains("resuming a classifier"), "{}", resumed.stderr);
    assert_same_run(&whole, &killed);
    ae(d, &["finetune", "--resume", killed.to_str().unwrap()]).fails_with(&["has finished"]);
}

/// Refusals name what is wrong: a run without labels, more labels per class than a class
/// has, and a probe or finetune whose autoencoder's data folder has moved.
#[test]
fn finetune_and_probe_refuse_what_they_cannot_do() {
    let dir = tempdir();
    let d = dir.path();
    let csv: String = std::iter::once("a,b,c\n".to_string())
        .chain((0..60).map(|i| format!("{},{},{}\n", i % 7, i % 5, i % 3)))
        .collect();
    std::fs::write(d.join("plain.csv"), csv).unwrap();
    ae(d, &["train", "--data", "plain.csv", "--out", "v", "--epochs", "1", "--threads", "1"]).ok();
    ae(d, &finetune(&d.join("v"), &d.join("c"), &[])).fails_with(&["finetune needs labels"]);

    // A copy of data/mnist that then moves away.
    let data = d.join("digits");
    copy_dir(&mnist(), &data);
    let pre = d.join("ae");
    ae(d, &quick_train(&data, &pre, &["--epochs", "1", "--limit", "500"])).ok();
    ae(d, &finetune(&pre, &d.join("c"), &["--labels-per-class", "5000"]))
        .fails_with(&["--labels-per-class 5000", "has only"]);
    ae(d, &finetune(&pre, &d.join("c"), &["--labels-per-class", "1"])).fails_with(&["at least 2"]);
    std::fs::rename(&data, d.join("moved")).unwrap();
    let folder = data.display().to_string();
    ae(d, &finetune(&pre, &d.join("c"), &[])).fails_with(&["finetune needs", &folder]);
    ae(d, &["probe", "--run", "ae"]).fails_with(&[&folder]);
    assert!(!d.join("c").exists(), "nothing written by the refused runs");
}

/// `plot-latent --method tsne` draws neighbourhoods that PCA's projection smears: the
/// 5-NN label agreement it prints is higher for t-SNE than for PCA on the same run.
#[test]
fn tsne_keeps_classes_apart_better_than_pca() {
    let run = shared_denoise_run();
    let dir = tempdir();
    let agreement = |method: &str| -> f64 {
        let out = dir.path().join(format!("{method}.png"));
        let args = ["plot-latent", "--run", run.to_str().unwrap(), "--method", method];
        let r = ae(
            dir.path(),
            &args
                .iter()
                .copied()
                .chain(["--points", "600", "-o", out.to_str().unwrap(), "--threads", "1"])
                .collect::<Vec<_>>(),
        )
        .ok();
        assert!(out.is_file());
        let line = r.stdout.lines().chain(r.stderr.lines()).find(|l| l.contains("label agreement"));
        let line = line.unwrap_or_else(|| panic!("{method}: {}{}", r.stdout, r.stderr)).to_string();
        line.split(": ").nth(1).and_then(|v| v.split_whitespace().next()).unwrap().parse().unwrap()
    };
    let (tsne, pca) = (agreement("tsne"), agreement("pca"));
    assert!(tsne > pca + 0.1 && tsne > 0.7, "t-SNE {tsne}, PCA {pca}");
}
