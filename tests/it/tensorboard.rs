//! The TensorBoard log of `train`, read back by TensorBoard's own EventAccumulator (the
//! venv's tensorboard package) and compared with what the run folder says.

use crate::resume::with_fault;
use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What tests/clients/tensorboard_client.py reads back from a log folder.
fn read_log(dir: &Path) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/clients/tensorboard_client.py"))
        .arg(dir)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap()
}

/// A metrics.csv column as (epoch, value) pairs.
fn column(run: &Path, name: &str) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == name).unwrap();
    lines
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let v = cells[at];
            (!v.is_empty()).then(|| (cells[0].parse().unwrap(), v.parse().unwrap()))
        })
        .collect()
}

/// (step, value) pairs of one scalar tag.
fn scalar(log: &Value, tag: &str) -> Vec<(i64, f64)> {
    log["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar {tag}: {log}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn steps_per_epoch(train_rows: i64, batch: i64) -> i64 {
    (train_rows + batch - 1) / batch
}

/// Every epoch scalar is metrics.csv's value (as float32, exactly) at the epoch's last
/// step; the image grid has grid.png's size; the histogram counts every validation code;
/// the hparams table has the run's settings and a successful end.
#[test]
fn the_log_says_what_metrics_csv_and_model_json_say() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("run");
    let extra = ["--epochs", "3", "--mode", "denoise", "--arch", "vae"];
    ae(d, &quick_train(&mnist(), &run, &extra)).ok();
    let log = read_log(&run.join("tb"));
    // quick_train: 3,000 images, 10% validation, batches of 32.
    let spe = steps_per_epoch(2700, 32);
    for (tag, col) in [
        ("epoch/train_loss", "train_loss"),
        ("epoch/val_loss", "val_loss"),
        ("epoch/lr", "lr"),
        ("epoch/samples_per_s", "samples_per_s"),
        ("epoch/train_reconstruction", "train_reconstruction"),
        ("epoch/train_kl", "train_kl"),
    ] {
        let want: Vec<(i64, f64)> =
            column(&run, col).into_iter().map(|(e, v)| (e * spe, v as f32 as f64)).collect();
        assert_eq!(scalar(&log, tag), want, "{tag}");
    }
    let losses = scalar(&log, "train/loss");
    assert!(losses.windows(2).all(|w| w[0].0 < w[1].0), "one value per step");
    assert_eq!(losses.last().map(|l| l.0), Some(3 * spe));
    let grid = std::fs::read(run.join("grid.png")).unwrap();
    let be = |i: usize| u32::from_be_bytes(grid[i..i + 4].try_into().unwrap()) as u64;
    let images = log["images"]["val/grid"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for (i, img) in images.iter().enumerate() {
        assert_eq!(img[0].as_i64(), Some((i as i64 + 1) * spe));
        assert_eq!((img[1].as_u64(), img[2].as_u64()), (Some(be(16)), Some(be(20))));
    }
    for h in log["histograms"]["val/codes"].as_array().unwrap() {
        assert_eq!((h[1].as_f64(), h[2].as_f64()), (Some(300.0 * 16.0), Some(300.0 * 16.0)));
    }
    let hp = &log["hparams"];
    assert_eq!((hp["train.lr"].as_f64(), hp["model.latent"].as_f64()), (Some(0.003), Some(16.0)));
    assert_eq!(
        (hp["model.variational"].as_bool(), hp["train.mode"].as_str()),
        (Some(true), Some("denoise"))
    );
    assert_eq!(log["session_end"], 1, "success");

    // --no-tensorboard writes none; --tensorboard DIR writes there.
    ae(d, &quick_train(&mnist(), &d.join("quiet"), &["--epochs", "1", "--no-tensorboard"])).ok();
    assert!(!d.join("quiet/tb").exists());
    ae(d, &quick_train(&mnist(), &d.join("other"), &["--epochs", "1", "--tensorboard", "logs/x"]))
        .ok();
    assert_eq!(scalar(&read_log(&d.join("logs/x")), "epoch/train_loss").len(), 1);
    // Another run pointed at the same folder would mix two runs into one: refused.
    ae(d, &quick_train(&mnist(), &d.join("third"), &["--epochs", "1", "--tensorboard", "logs/x"]))
        .fails_with(&["already holds a TensorBoard log", "logs/x"]);
    assert!(!d.join("third").exists(), "a refused run leaves no run folder behind");
}

/// A run killed in its second checkpoint write, whose event file is then cut off
/// mid-record, resumes into the log the uninterrupted run writes: the same epoch scalars
/// at the same steps, each step once.
#[test]
fn a_resumed_run_continues_its_log_without_repeating_steps() {
    let dir = tempdir();
    let d = dir.path();
    let args = |out: &Path| {
        quick_train(&mnist(), out, &["--epochs", "4", "--limit", "2000", "--hidden", "64"])
    };
    let (whole, killed) = (d.join("whole"), d.join("killed"));
    ae(d, &args(&whole)).ok();
    assert_eq!(with_fault(d, &args(&killed), "abort:checkpoint.ot:2").code, None);
    let files: Vec<PathBuf> = std::fs::read_dir(killed.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() - 9]).unwrap();
    // The reader takes the whole records before the cut.
    let cut = read_log(&killed.join("tb"));
    assert_eq!(scalar(&cut, "epoch/train_loss").len(), 2, "epochs 1 and 2 before the kill");

    ae(d, &["train", "--resume", killed.to_str().unwrap()]).ok();
    let (a, b) = (read_log(&whole.join("tb")), read_log(&killed.join("tb")));
    for tag in ["epoch/train_loss", "epoch/val_loss", "epoch/lr"] {
        assert_eq!(scalar(&a, tag), scalar(&b, tag), "{tag}");
    }
    let steps =
        |log: &Value| scalar(log, "train/loss").into_iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(steps(&a), steps(&b));
    assert_eq!(b["session_end"], 1);
}
