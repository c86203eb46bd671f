//! Every kind of bad input ends in one clear message and a non-zero exit, never a panic
//! or a half-written file.

use crate::util::*;
use std::io::Write;
use std::path::{Path, PathBuf};

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";

/// A copy of data/mnist in a temp dir, for tampering.
fn mnist_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let data = dir.path().join("data");
    copy_dir(&mnist(), &data);
    (dir, data)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn train_fails(data: &Path, cwd: &Path, needles: &[&str]) {
    let out = cwd.join("run");
    ae(cwd, &quick_train(data, &out, &[])).fails_with(needles);
    assert!(!out.join("model.ot").exists(), "a failed run must not leave weights");
}

#[test]
fn missing_folder_and_missing_files_are_named() {
    let dir = tempdir();
    train_fails(&dir.path().join("nowhere"), dir.path(), &["nowhere", "does not exist"]);
    let (dir, data) = mnist_copy();
    std::fs::remove_file(data.join("t10k-images-idx3-ubyte.gz")).unwrap();
    train_fails(&data, dir.path(), &["no t10k images in", "t10k-images-idx3-ubyte.gz"]);
}

#[test]
fn corrupt_gzip_is_reported_with_the_file_name() {
    let (dir, data) = mnist_copy();
    let path = data.join(TRAIN_IMAGES);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0xAA);
    std::fs::write(&path, bytes).unwrap();
    train_fails(&data, dir.path(), &[TRAIN_IMAGES, "corrupt gzip data"]);
}

#[test]
fn wrong_magic_truncation_and_huge_headers_are_rejected() {
    let (dir, data) = mnist_copy();
    let path = data.join(TRAIN_IMAGES);
    let raw = {
        let mut d = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        v
    };
    let cases: Vec<(Vec<u8>, &[&str])> = vec![
        (
            {
                let mut b = raw.clone();
                b[2] = 0x0d;
                b
            },
            &["unsupported IDX element type 0x0d"],
        ),
        (
            {
                let mut b = raw.clone();
                b[0] = 0x1f;
                b[1] = 0x00;
                b
            },
            &["not an IDX file"],
        ),
        (raw[..raw.len() - 1000].to_vec(), &["truncated", "6272000 bytes", "6271000"]),
        (raw[..10].to_vec(), &["header is truncated"]),
        (
            {
                let mut b = raw[..16].to_vec();
                b[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
                b
            },
            &["more than the", "limit"],
        ),
    ];
    for (bytes, needles) in cases {
        std::fs::write(&path, gz(&bytes)).unwrap();
        let mut all = vec![TRAIN_IMAGES];
        all.extend_from_slice(needles);
        train_fails(&data, dir.path(), &all);
    }
    // The same checks hold for an uncompressed file.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(data.join("train-images-idx3-ubyte"), &raw[..raw.len() - 1]).unwrap();
    train_fails(&data, dir.path(), &["train-images-idx3-ubyte", "truncated"]);
}

#[test]
fn label_and_image_counts_must_agree() {
    let (dir, data) = mnist_copy();
    let labels = ae_tch::data::idx::encode(&[5], &[1, 2, 3, 4, 5]);
    std::fs::write(data.join(TRAIN_LABELS), gz(&labels)).unwrap();
    train_fails(&data, dir.path(), &[TRAIN_LABELS, "holds 5 labels", "8000 images"]);
}

#[test]
fn impossible_flags_are_named() {
    let dir = tempdir();
    let data = mnist();
    let out = dir.path().join("run");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--limit", "0"], vec!["--limit must be at least 1"]),
        (vec!["--limit", "2"], vec!["leaves 1 training image(s)", "at least 2 are needed"]),
        (vec!["--batch-size", "18446744073709551615"], vec!["--batch-size must be between 1 and"]),
        (vec!["--epochs", "0"], vec!["--epochs"]),
        (vec!["--lr=-1"], vec!["--lr must be a positive number"]),
        (vec!["--val-fraction", "1.5"], vec!["--val-fraction"]),
        (vec!["--latent", "0"], vec!["--latent must be at least 1, got 0"]),
        (vec!["--lr", "-1"], vec!["--lr must be a positive number, got -1"]),
        (vec!["--threads", "0"], vec!["--threads must be at least 1"]),
        (vec!["--device", "tpu"], vec!["unknown device 'tpu'"]),
        (vec!["--mode", "shout"], vec!["invalid value 'shout'"]),
    ];
    for (flags, needles) in cases {
        // Bad usage, as clap's own errors: exit code 2 (docs/guide/run-folder.md, "Exit codes").
        let run = ae(dir.path(), &quick_train(&data, &out, &flags)).fails_with(&needles);
        let usage = !flags.contains(&"2"); // "--limit 2" is a data problem, not usage
        assert_eq!(run.code == Some(2), usage, "{flags:?}: exit {:?}", run.code);
    }
    assert!(!out.exists() || !out.join("model.ot").exists());
}

#[test]
fn cuda_on_a_machine_without_it_is_refused() {
    if tch::Cuda::is_available() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let dir = tempdir();
    let out = dir.path().join("run");
    ae(dir.path(), &quick_train(&mnist(), &out, &["--device", "cuda"]))
        .fails_with(&["--device cuda:0", "CUDA is not available"]);
}

#[test]
fn unwritable_out_and_existing_runs_are_refused() {
    let dir = tempdir();
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    let out = dir.path().join("afile").join("run");
    ae(dir.path(), &quick_train(&mnist(), &out, &[])).fails_with(&[
        "--out",
        "afile/run",
        "cannot create",
    ]);

    let existing = shared_denoise_run();
    let copy = dir.path().join("copy");
    copy_dir(existing, &copy);
    ae(dir.path(), &quick_train(&mnist(), &copy, &[]))
        .fails_with(&["already holds a run", "--force"]);
}

#[test]
fn weights_that_do_not_match_model_json_are_refused() {
    let dir = tempdir();
    let run = dir.path().join("run");
    copy_dir(shared_denoise_run(), &run);
    let eval = |needles: &[&str]| {
        ae(dir.path(), &["eval", "--run", "run"]).fails_with(needles);
    };
    let json_path = run.join("model.json");
    let original = std::fs::read_to_string(&json_path).unwrap();

    // A different latent size: every shape touching the code differs.
    let mut m: serde_json::Value = serde_json::from_str(&original).unwrap();
    m["model"]["latent"] = 5.into();
    std::fs::write(&json_path, m.to_string()).unwrap();
    eval(&["model.ot does not match model.json", "decoder.0.weight", "[128, 5]", "[128, 16]"]);

    // An extra layer: a variable the file does not have.
    m["model"]["latent"] = 16.into();
    m["model"]["layers"]["hidden"] = serde_json::json!([128, 32]);
    std::fs::write(&json_path, m.to_string()).unwrap();
    eval(&["does not match model.json"]);

    // Broken JSON and unknown versions.
    std::fs::write(&json_path, "{ not json").unwrap();
    eval(&["model.json is not a valid ae-tch model.json"]);
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["format_version"] = 99.into();
    std::fs::write(&json_path, v.to_string()).unwrap();
    eval(&["format_version 99 is not supported"]);
    std::fs::write(&json_path, &original).unwrap();

    // A file with one variable too many (weights of a deeper model) is refused by name.
    let weights = run.join("model.ot");
    let good = std::fs::read(&weights).unwrap();
    let mut named = tch::Tensor::load_multi(&weights).unwrap();
    named.push(("encoder.6.weight".into(), tch::Tensor::zeros([2, 2], tch::kind::FLOAT_CPU)));
    tch::Tensor::save_multi(&named, &weights).unwrap();
    eval(&["does not match model.json", "unexpected variable(s) [\"encoder.6.weight\"]"]);
    std::fs::write(&weights, &good).unwrap();

    // Truncated and garbage weights files.
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    eval(&["model.ot is not a readable weights file"]);
    std::fs::write(&weights, b"garbage").unwrap();
    eval(&["model.ot is not a readable weights file"]);
    std::fs::remove_file(&weights).unwrap();
    eval(&["model.ot does not exist"]);

    ae(dir.path(), &["eval", "--run", "nowhere"])
        .fails_with(&["run folder nowhere does not exist"]);
}
