//! Long series as data (issue 20, first part): windows of a CSV or WAV series train like
//! vectors, split in time order, and bad series are refused by name.

use crate::util::*;
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel);
    assert!(file.is_file(), "{} is missing: run scripts/setup.sh", file.display());
    file
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const BLEEDING: &str = "series/135_UCR_Anomaly_InternalBleeding16_TEST.csv";

#[test]
fn a_heart_rate_series_trains_as_windows_split_in_time_order() {
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("hb");
    // The UCR file is the whole series; its first 1,200 points are the anomaly-free
    // training part, so the last 84% (6,301 points) is the test part.
    let csv = data(BLEEDING);
    let mut args = vec!["train", "--data", s(&csv), "--columns", "value"];
    args.extend(["--label-column", "is_anomaly", "--window", "64", "--hop", "4"]);
    args.extend(["--test-fraction", "0.84", "--epochs", "8", "--threads", "1", "--seed", "3"]);
    args.extend(["--out", s(&run), "--no-tensorboard", "--lr", "0.003"]);
    ae(d, &args).ok();
    let manifest = read_json(&run.join("model.json"));
    assert_eq!(
        manifest["model"]["input"]["series"],
        serde_json::json!({"window": 64, "hop": 4, "channels": ["value"]})
    );
    // Windows of the first 1,200 steps: (1200 − 64)/4 + 1 = 285, the last 10% in time for
    // validation; the test windows cover steps 1,200–7,500: ⌈(6301 − 64)/4⌉ + 1 = 1,561.
    let (train, val) =
        (manifest["data"]["train_images"].as_u64(), manifest["data"]["val_images"].as_u64());
    assert_eq!((train, val), (Some(256), Some(29)));
    assert_eq!(manifest["outcome"]["test"]["images"], 1561);
    let losses: Vec<f64> = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(losses[7] < 0.5 * losses[0], "the loss does not fall: {losses:?}");
    // Reloaded, the run evaluates its test windows to what training recorded.
    let eval = ae(d, &["eval", "--run", s(&run), "--json", "--threads", "1"]).ok().stdout;
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(eval["mse"], manifest["outcome"]["test"]["mse"]);
    // Window scores: each row is a window, named by its first step; windows touching the
    // labelled anomaly are labelled 1.
    let out = ae(d, &["anomaly", "--run", s(&run), "--normal-classes", "0", "-o", "w.csv"]).ok();
    assert!(out.stdout.contains("roc-auc"), "{}", out.stdout);
    let rows = std::fs::read_to_string(d.join("w.csv")).unwrap();
    let mut lines = rows.lines();
    assert_eq!(lines.next(), Some("row,label,score,is_anomaly"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[..2], ["1200", "0"]);
    assert!(rows.lines().filter(|l| l.split(',').nth(1) == Some("1")).count() >= 12);
}

#[test]
fn a_wav_file_trains_as_windows_and_bad_series_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let wav = data("speech/Front_Center.wav");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--data", s(&wav), "--epochs", "1", "--threads", "1"];
        args.extend(["--out", "w", "--force", "--no-tensorboard"]);
        args.extend(extra);
        ae(d, &args)
    };
    train(&["--window", "256", "--hop", "256", "--hidden", "64", "--latent", "8"]).ok();
    let input = read_json(&d.join("w/model.json"))["model"]["input"].clone();
    assert_eq!(
        input["series"],
        serde_json::json!({"window": 256, "hop": 256, "channels": ["amplitude"], "sample_rate": 48000})
    );
    assert_eq!(input["columns"][255], "amplitude@255");

    // A WAV file without --window, --hop without --window: bad usage.
    let run = train(&[]).fails_with(&["Front_Center.wav is a WAV file, a series", "--window N"]);
    assert_eq!(run.code, Some(2));
    let csv = data(BLEEDING);
    let mut args = vec!["train", "--data", s(&csv), "--hop", "4", "--out", "x"];
    let run = ae(d, &args).fails_with(&["--hop needs --window"]);
    assert_eq!(run.code, Some(2));
    // A window longer than the part it cuts, a hop of 0 or beyond the window.
    args[3] = "--window";
    args[4] = "7000";
    ae(d, &args).fails_with(&["the training part of", "--window 7000 is longer than the series"]);
    train(&["--window", "64", "--hop", "0"])
        .fails_with(&["--hop must be between 1 and the window (64)"]);
    train(&["--window", "64", "--hop", "65"]).fails_with(&["--hop must be between 1"]);
    // A stereo file without a channel, a file with no samples, a header that promises
    // more than the file holds.
    let stereo = d.join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&stereo, spec).unwrap();
    (0..4000).for_each(|i| writer.write_sample((i % 300) as i16).unwrap());
    writer.finalize().unwrap();
    let go = |file: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", s(file), "--window", "64", "--out", "y"];
        args.extend(extra);
        ae(d, &args)
    };
    go(&stereo, &[]).fails_with(&["stereo.wav has 2 channels", "--wav-channel"]);
    let empty = d.join("empty.wav");
    hound::WavWriter::create(&empty, hound::WavSpec { channels: 1, ..spec })
        .unwrap()
        .finalize()
        .unwrap();
    go(&empty, &[]).fails_with(&["empty.wav holds no samples"]);
    let mut bytes = std::fs::read(&wav).unwrap();
    bytes.truncate(bytes.len() / 2);
    let cut = d.join("cut.wav");
    std::fs::write(&cut, bytes).unwrap();
    go(&cut, &[]).fails_with(&["cut.wav is not a readable WAV file"]);
    assert!(!d.join("y").exists(), "a refused series left a run folder");
}
