//! Speech in the spectral domain (issue 37 §1): a WAV denoiser trains on log power spectra
//! with audio noise added to its recordings each epoch, resumes to the same numbers,
//! evaluates and cleans as waves, and refuses the settings that cannot work.

use crate::util::*;
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel);
    assert!(file.is_file(), "{} is missing: run scripts/setup.sh", file.display());
    file
}

/// The loss columns of a run's metrics.csv.
fn losses(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').take(3).collect::<Vec<_>>().join(",")).collect()
}

#[test]
fn a_spectral_denoiser_trains_on_noisy_recordings_resumes_and_cleans_as_waves() {
    let dir = tempdir();
    let d = dir.path();
    let words = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Side_Left"];
    std::fs::create_dir(d.join("words")).unwrap();
    for w in words {
        std::fs::copy(data(&format!("speech/{w}.wav")), d.join(format!("words/{w}.wav"))).unwrap();
    }
    let train = |out: &str, epochs: &str| {
        let mut args = vec!["train", "--data", "words", "--mode", "denoise", "--epochs", epochs];
        args.extend(["--hidden", "128", "--latent", "32", "--threads", "2", "--out", out]);
        args.push("--no-tensorboard");
        ae(d, &args).ok()
    };
    // WAV files under --mode denoise: the spectral domain by default, frames of about 32 ms
    // (2048 samples at 48 kHz), white or pink noise at 0 to 30 dB.
    let said = train("a", "3").stderr;
    assert!(
        said.contains("--window auto: STFT frames of 2048 samples (43 ms at 48000 Hz), hop 512")
    );
    let m = read_json(&d.join("a/model.json"));
    let series = &m["model"]["input"]["series"];
    assert_eq!((series["window"].as_u64(), series["hop"].as_u64()), (Some(2048), Some(512)));
    assert_eq!(series["spectral"]["context"], 5);
    assert_eq!(m["model"]["input"]["columns"].as_array().unwrap().len(), 5 * 1025);
    assert_eq!(
        (m["train"]["noise"].as_str(), m["train"]["noise_level"].as_f64()),
        (Some("mix"), Some(0.0))
    );
    assert_eq!(m["train"]["noise_level_high"], 30.0);
    // One row per STFT frame of every training recording (len / hop + 1).
    let held: Vec<String> =
        serde_json::from_value(m["data"]["vectors"]["held_out"].clone()).unwrap();
    let frames = |w: &str| read_wav(&d.join("words").join(w)).len() / 512 + 1;
    let rows: usize = words
        .iter()
        .map(|w| format!("{w}.wav"))
        .filter(|w| !held.contains(w))
        .map(|w| frames(&w))
        .sum();
    let (t, v) =
        (m["data"]["train_images"].as_u64().unwrap(), m["data"]["val_images"].as_u64().unwrap());
    assert_eq!((t + v) as usize, rows);
    let l = losses(&d.join("a"));
    let loss = |row: &str| row.split(',').nth(1).unwrap().parse::<f64>().unwrap();
    assert!(loss(&l[2]) < loss(&l[0]), "the loss does not fall: {l:?}");

    // The noise is drawn per (seed, epoch, recording): killed inside its second checkpoint
    // and resumed, the run sees the same noisy rows and ends with the same numbers and
    // bit-identical weights.
    let mut args: Vec<String> = ["train", "--data", "words", "--mode", "denoise", "--epochs", "3"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(
        ["--hidden", "128", "--latent", "32", "--threads", "2", "--out", "b"].map(String::from),
    );
    args.push("--no-tensorboard".into());
    let killed = crate::resume::with_fault(d, &args, "abort:checkpoint.ot:2");
    assert_eq!(killed.code, None, "killed by a signal");
    ae(d, &["train", "--resume", "b"]).ok();
    crate::resume::assert_same_run(&d.join("a"), &d.join("b"));
    assert_eq!(losses(&d.join("b")), l);

    // eval: the held-out recordings with the run's noise at the middle of its range
    // (15 dB), cleaned, measured as waves beside PCA and the noisy input.
    let eval = ae(d, &["eval", "--run", "a", "--json", "--threads", "2"]).ok().stdout;
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let snr = &eval["snr"];
    let noisy = snr["noisy_snr_db"].as_f64().unwrap();
    assert!((noisy - 15.0).abs() < 0.01, "{snr}");
    for k in ["snr_db", "seg_snr_db", "pca_snr_db", "noisy_seg_snr_db"] {
        assert!(snr[k].as_f64().unwrap().is_finite(), "{k}: {snr}");
    }
    let table = ae(d, &["eval", "--run", "a"]).ok().stdout;
    assert!(table.contains("mix at 15 dB SNR (trained at 0 to 30 dB)"), "{table}");
    // The TorchScript module is the network on rows of scaled features, its skip
    // connection included: eval through it gives the same waves.
    ae(d, &["export", "--run", "a", "-o", "a.pt"]).ok();
    let eval_args = ["eval", "--run", "a", "--model", "a.pt", "--json", "--threads", "2"];
    let scripted: serde_json::Value = serde_json::from_str(&ae(d, &eval_args).ok().stdout).unwrap();
    assert_eq!(scripted["snr"], *snr);

    // denoise --add-noise: white noise at 10 dB on a word the run never heard, both files
    // written at the input's length, the SNRs printed those of the files.
    let word = data("speech/Rear_Left.wav");
    let out =
        ae(d, &["denoise", "--run", "a", word.to_str().unwrap(), "--add-noise", "10", "-o", "o"])
            .ok();
    let clean = read_wav(&word);
    let (noisy, denoised) =
        (read_wav(&d.join("o/Rear_Left-noisy.wav")), read_wav(&d.join("o/Rear_Left-denoised.wav")));
    assert_eq!((noisy.len(), denoised.len()), (clean.len(), clean.len()));
    let said = format!(
        "white noise at 10 dB: SNR {:.2} dB, denoised {:.2} dB",
        snr_db(&clean, &noisy),
        snr_db(&clean, &denoised)
    );
    assert!(out.stdout.contains(&said), "{said} not in {}", out.stdout);
    assert!((snr_db(&clean, &noisy) - 10.0).abs() < 0.05);

    // Trained to reconstruct on spectra, a run scores every sample of its held-out words:
    // each frame's score spread over the samples it covers.
    let mut args = vec!["train", "--data", "words", "--domain", "stft", "--epochs", "1"];
    args.extend(["--hidden", "32", "--latent", "8", "--threads", "2", "--out", "r"]);
    args.push("--no-tensorboard");
    ae(d, &args).ok();
    let m = read_json(&d.join("r/model.json"));
    assert_eq!(m["model"]["input"]["series"]["spectral"]["context"], 5);
    assert!(m["model"].get("residual").is_none(), "only a denoiser adds its input");
    ae(d, &["anomaly", "--run", "r", "-o", "points.csv", "--threads", "2"]).ok();
    let held: Vec<String> =
        serde_json::from_value(m["data"]["vectors"]["held_out"].clone()).unwrap();
    let steps: usize = held.iter().map(|w| read_wav(&d.join("words").join(w)).len()).sum();
    let points = std::fs::read_to_string(d.join("points.csv")).unwrap();
    assert_eq!(points.lines().count(), steps + 1);
    assert!(points.starts_with("step,file,seconds,amplitude,score,is_anomaly\n"));
    let finite = |l: &str| l.split(',').nth(4).unwrap().parse::<f64>().unwrap().is_finite();
    assert!(points.lines().skip(1).all(finite));
}

#[test]
fn spectral_settings_that_cannot_work_are_refused_by_name() {
    let dir = tempdir();
    let d = dir.path();
    let word = data("speech/Front_Center.wav");
    let w = word.to_str().unwrap();
    let base = ["train", "--data", w, "--mode", "denoise", "--out", "x"];
    let with = |extra: &[&'static str]| -> Vec<&str> { [&base[..], extra].concat() };
    let refused = [
        (
            vec!["--noise", "gaussian"],
            "--noise gaussian corrupts features; --domain stft adds audio noise",
        ),
        (vec!["--context", "4"], "--context must be odd, 1 to 31 frames, got 4"),
        (vec!["--domain", "wave", "--context", "3"], "--context is for --domain stft"),
        (
            vec!["--domain", "wave", "--noise", "white"],
            "--noise white is audio noise: it needs --domain stft",
        ),
    ];
    for (extra, message) in refused {
        let run = ae(d, &with(&extra)).fails_with(&[message]);
        assert_eq!(run.code, Some(2), "{extra:?}");
    }
    ae(d, &with(&["--noise-level", "30:10"])).fails_with(&["noise-level", "30:10"]);
    ae(d, &with(&["--window", "1001"]))
        .fails_with(&["an even number of samples, 16 or more, got 1001"]);
    assert!(!d.join("x").exists());
}
