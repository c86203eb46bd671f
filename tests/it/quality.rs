//! The autoencoder against its baselines (PCA, the noisy input), and its codes.

use crate::util::*;
use ae_tch::data::{load_split, to_unit_float, Split};
use ae_tch::metrics::pca::Pca;
use std::process::Command;
use tch::{Device, Kind};

#[test]
fn pca_at_k30_matches_the_pytorch_reference_and_the_published_figure() {
    let train = load_split(&mnist(), Split::Train, &Default::default()).unwrap();
    let test = load_split(&mnist(), Split::Test, &Default::default()).unwrap();
    let x = to_unit_float(&train.to_device(Device::Cpu));
    let t = to_unit_float(&test.to_device(Device::Cpu));
    let pca = Pca::fit(&x, 30).unwrap();
    let err =
        (pca.reconstruct(&t) - &t).square().sum(Kind::Double).double_value(&[]) / test.len() as f64;
    // scripts/reference/pca_mnist.py (torch.linalg.svd in f64): 14.023. The published
    // full-MNIST figure is 13.87; data/mnist is a 10k-image subset.
    assert!((err - 14.023).abs() < 0.01, "PCA k=30 squared error per image {err}");
}

/// Issue 13: with nothing but `--arch` and `--latent 30` (and a budget: 3 epochs on all
/// 8,000 images), the MLP and conv defaults beat PCA at k = 30 on data/mnist by more than
/// 10%; the VAE, which trades reconstruction for its prior, is reported beside them.
#[test]
fn mlp_and_conv_defaults_beat_pca_at_k30() {
    let dir = tempdir();
    let d = dir.path();
    let mut errors = Vec::new();
    for arch in ["mlp", "conv", "vae"] {
        let out = d.join(arch);
        let mut args = vec!["train", "--device", "cpu", "--arch", arch, "--latent", "30"];
        args.extend(["--epochs", "3", "--json", "--out", out.to_str().unwrap()]);
        let m: serde_json::Value = serde_json::from_str(&ae(d, &args).ok().stdout).unwrap();
        let t = &m["outcome"]["test"];
        let (err, pca) = (t["sq_err_per_image"].as_f64().unwrap(), &t["pca_sq_err_per_image"]);
        eprintln!("{arch} defaults, 3 epochs: {err:.2} squared error per image (PCA {pca})");
        errors.push((arch, err, pca.as_f64().unwrap()));
    }
    let [(_, mlp, pca), (_, conv, _), _] = errors[..] else { unreachable!() };
    assert!((pca - 14.03).abs() < 0.01, "PCA at k = 30: {pca}");
    // Both beat PCA by more than 10% (the MLP, started at the mean, is ahead of the conv
    // net after 3 epochs: 10.17 against 11.32).
    assert!(mlp < 0.9 * pca && conv < 0.9 * pca, "{errors:?}");
}

#[test]
fn eval_reports_pca_and_ssim_and_the_model_beats_both_baselines() {
    let run = shared_denoise_run();
    let eval = ae(run, &["eval", "--threads", "1", "--device", "cpu", "--run", ".", "--json"]).ok();
    let r: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert!(f("mse") < f("pca_mse"), "autoencoder no better than PCA: {r}");
    assert!(f("psnr_db") > f("noisy_psnr_db") + 2.0, "{r}");
    assert!(f("ssim") > f("noisy_ssim") && f("ssim") < 1.0 && f("noisy_ssim") > 0.0, "{r}");
    assert_eq!((&r["worse_than_pca"], &r["worse_than_noisy"]), (&false.into(), &false.into()));
    let table = ae(run, &["eval", "--run", "."]).ok().stdout;
    assert!(table.contains("PCA, same k") && table.contains("ssim"), "{table}");
    assert!(!table.contains("warning"), "{table}");
}

/// A run that learnt almost nothing (one epoch of 300 digits at a tiny rate) is told that
/// PCA does better, by how much and what to try, by `train` and `eval`, and `--json` says
/// so for scripts.
#[test]
fn a_run_worse_than_pca_says_so() {
    let dir = tempdir();
    let out = dir.path().join("weak");
    let args = quick_train(&mnist(), &out, &["--limit", "300", "--epochs", "1", "--lr", "1e-5"]);
    let trained = ae(dir.path(), &args).ok().stdout;
    let said =
        "warning: the model reconstructs the test images worse than PCA with the same k = 16";
    assert!(trained.contains(said), "{trained}");
    let why = "x); --lr 0.00001 is far below the default 0.003: the network barely moved";
    assert!(trained.contains(why), "{trained}");
    let r = out.to_str().unwrap();
    let eval = ae(dir.path(), &["eval", "--run", r, "--json", "--threads", "1"]).ok().stdout;
    let json: serde_json::Value = serde_json::from_str(eval.trim()).unwrap();
    assert_eq!(json["worse_than_pca"], true, "{json}");
    let ratio =
        json["sq_err_per_image"].as_f64().unwrap() / json["pca_sq_err_per_image"].as_f64().unwrap();
    assert!(ratio > 1.0 && trained.contains(&format!("{ratio:.2}x")), "{ratio}: {trained}");
    let table = ae(dir.path(), &["eval", "--run", r, "--threads", "1"]).ok().stdout;
    assert!(table.contains(said), "{table}");
    let recorded = read_json(&out.join("model.json"));
    assert_eq!(recorded["outcome"]["test"]["worse_than_pca"], true);
}

#[test]
fn encode_writes_one_row_per_image_as_csv_and_npy() {
    let run = shared_denoise_run();
    let dir = tempdir();
    let r = run.to_str().unwrap();
    ae(dir.path(), &["encode", "--run", r, "-o", "z.csv"]).ok();
    let text = std::fs::read_to_string(dir.path().join("z.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2001);
    assert!(
        lines[0].starts_with("index,label,z_1,") && lines[0].ends_with(",z_16"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1].split(',').count(), 18);

    ae(dir.path(), &["encode", "--run", r, "--split", "train", "-o", "z.npy"]).ok();
    // NumPy itself is the judge of the file format.
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(python)
        .current_dir(dir.path())
        .args(["-c", "import numpy as n; a = n.load('z.npy'); print(a.shape, a[:, 1].min(), a[:, 1].max(), a[-1, 0])"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "(8000, 18) 0.0 9.0 7999.0", "{out:?}");

    ae(dir.path(), &["encode", "--run", r, "-o", "z.txt"]).fails_with(&["z.txt", ".csv or .npy"]);
}

#[test]
fn anomaly_detection_finds_a_held_out_digit() {
    let dir = tempdir();
    let out = dir.path().join("no0");
    // Train on the digits 1-9 only; the 0s of the test set are the anomalies.
    ae(dir.path(), &quick_train(&mnist(), &out, &["--classes", "1,2,3,4,5,6,7,8,9"])).ok();
    let manifest = read_json(&out.join("model.json"));
    assert_eq!(manifest["train"]["classes"], serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9]));

    let run =
        ae(dir.path(), &["anomaly", "--run", "no0", "-o", "s.csv", "--plot", "h.png", "--json"])
            .ok();
    let s: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let auc = s["roc_auc"].as_f64().unwrap();
    // Measured 0.924 with this configuration; chance is 0.5.
    assert!(auc > 0.85, "ROC-AUC {auc} for held-out 0s: {s}");
    assert_eq!(s["normal_classes"], serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert!(s["precision"].as_f64().unwrap() > 0.5, "{s}");

    let csv = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "index,label,score,is_anomaly,probability");
    assert_eq!(rows.len(), 2001);
    let flagged = rows[1..].iter().filter(|r| r.split(',').nth(3) == Some("1")).count();
    assert_eq!(flagged as u64, s["flagged"].as_u64().unwrap());
    let img = image::open(dir.path().join("h.png")).unwrap();
    assert_eq!((img.width(), img.height()), (800, 500));

    // The baselines on the same images: PCA with the same k and an Isolation Forest.
    let pca = s["baselines"]["pca"]["roc_auc"].as_f64().unwrap();
    let forest = s["baselines"]["isolation_forest"]["roc_auc"].as_f64().unwrap();
    assert!(pca > 0.6 && forest > 0.5, "{s}");
    assert!(s["average_precision"].as_f64().unwrap() > 0.2, "{s}");

    // A lower percentile flags more; the table names the figures; --explain draws the 4
    // highest-scoring images over 3 rows (input, reconstruction, error heat map).
    let args = ["anomaly", "--run", "no0", "--threshold-percentile", "90", "--explain", "4"];
    let table = ae(dir.path(), &args).ok().stdout;
    assert!(table.contains("roc-auc") && table.contains("p90"), "{table}");
    assert!(table.contains("isolation forest") && table.contains("explained"), "{table}");
    let sheet = image::open(out.join("explain.png")).unwrap().to_rgb8();
    let coloured = sheet.pixels().filter(|p| p[0] > p[2].saturating_add(60)).count();
    assert!(coloured > 100, "the heat map is drawn in colour");
    ae(dir.path(), &["anomaly", "--run", "no0", "--normal-classes", "1,42"])
        .fails_with(&["--normal-classes: unknown class 42"]);
    ae(dir.path(), &["anomaly", "--run", "no0", "--threshold-percentile", "101"])
        .fails_with(&["--threshold-percentile must be in [0, 100]"]);
    ae(dir.path(), &quick_train(&mnist(), &dir.path().join("x"), &["--classes", "3,11"]))
        .fails_with(&["--classes: unknown class 11", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"]);
}

/// `probe`: logistic regression and k-NN on the codes, the raw pixels and PCA with the same
/// k, all well above chance (0.1), repeatable with a seed; `--labels-per-class` keeps that
/// many labelled rows of each digit; a run without labels and too many labels per class
/// are refused by name.
#[test]
fn probe_scores_codes_beside_raw_pixels_and_pca() {
    let dir = tempdir();
    let d = dir.path();
    ae(d, &quick_train(&mnist(), &d.join("run"), &[])).ok();
    let args = ["probe", "--run", "run", "--json", "--labels-per-class", "50", "--threads", "1"];
    let first = ae(d, &args).ok().stdout;
    let p: serde_json::Value = serde_json::from_str(first.trim()).unwrap();
    assert_eq!((p["train_rows"].as_u64(), p["test_rows"].as_u64()), (Some(500), Some(2000)));
    let rows = p["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["features"].as_str().unwrap()).collect();
    assert_eq!(names, ["raw pixels", "PCA, same k", "autoencoder code"]);
    assert_eq!(rows[2]["dims"], 16);
    for r in rows {
        for method in ["logreg", "knn"] {
            let acc = r[method]["accuracy"].as_f64().unwrap();
            assert!(acc > 0.6, "{method} on {}: {acc}", r["features"]);
        }
    }
    assert_eq!(ae(d, &args).ok().stdout, first, "same seed, same figures");
    ae(d, &["probe", "--run", "run", "--method", "logreg", "--plot", "cm.svg"]).ok();
    let svg = std::fs::read_to_string(d.join("cm.svg")).unwrap();
    assert!(svg.contains("predicted") && svg.matches("<rect").count() >= 100, "10 × 10 cells");
    ae(d, &["probe", "--run", "run", "--labels-per-class", "5000"])
        .fails_with(&["--labels-per-class 5000", "has only"]);

    let csv: String = std::iter::once("a,b,c\n".to_string())
        .chain((0..60).map(|i| format!("{},{},{}\n", i % 7, i % 5, i % 3)))
        .collect();
    std::fs::write(d.join("plain.csv"), csv).unwrap();
    ae(d, &["train", "--data", "plain.csv", "--out", "v", "--epochs", "1", "--threads", "1"]).ok();
    ae(d, &["probe", "--run", "v"]).fails_with(&["probe needs labels"]);
}
