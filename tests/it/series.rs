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
    args.extend(["--label-column", "is_anomaly", "--window", "64", "--hop", "1"]);
    args.extend(["--test-fraction", "0.84", "--epochs", "40", "--threads", "1", "--seed", "3"]);
    args.extend(["--out", s(&run), "--no-tensorboard", "--lr", "0.003"]);
    ae(d, &args).ok();
    let manifest = read_json(&run.join("model.json"));
    assert_eq!(
        manifest["model"]["input"]["series"],
        serde_json::json!({"window": 64, "hop": 1, "channels": ["value"]})
    );
    // Windows of the first 1,200 steps: 1200 − 64 + 1 = 1,137, the last 10% in time for
    // validation; the test windows cover steps 1,200–7,500: 6301 − 64 + 1 = 6,238.
    let (train, val) =
        (manifest["data"]["train_images"].as_u64(), manifest["data"]["val_images"].as_u64());
    assert_eq!((train, val), (Some(1023), Some(114)));
    assert_eq!(manifest["outcome"]["test"]["images"], 6238);
    // Series are not trimmed by default (trimming drops their hardest windows).
    assert_eq!(manifest["train"]["trim"].as_f64().unwrap_or(0.0), 0.0);
    let losses: Vec<f64> = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(losses[39] < 0.2 * losses[0], "the loss does not fall: {losses:?}");
    // Reloaded, the run evaluates its test windows to what training recorded.
    let eval = ae(d, &["eval", "--run", s(&run), "--json", "--threads", "1"]).ok().stdout;
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(eval["mse"], manifest["outcome"]["test"]["mse"]);
    // Window scores spread over the test part's 6,301 steps: one row per step, and the
    // UCR rule and top step agree with the rows written.
    for how in ["mean", "max"] {
        let mut args = vec!["anomaly", "--run", s(&run), "--normal-classes", "0", "-o", "p.csv"];
        args.extend(["--point-score", how, "--json", "--plot", "p.png"]);
        let out = ae(d, &args).ok();
        let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let points = &summary["points"];
        assert_eq!(points["steps"], 6301);
        let rows = std::fs::read_to_string(d.join("p.csv")).unwrap();
        let mut lines = rows.lines();
        assert_eq!(lines.next(), Some("step,timestamp,value,score,is_anomaly,label"));
        let rows: Vec<(usize, f64, bool)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                // The file's timestamps are its row numbers.
                assert_eq!(f[0], f[1]);
                (f[0].parse().unwrap(), f[3].parse().unwrap(), f[5] == "1")
            })
            .collect();
        assert_eq!((rows.len(), rows[0].0, rows[6300].0), (6301, 1200, 7500));
        assert_eq!(rows.iter().filter(|r| r.2).count(), 12, "the one labelled anomaly");
        // The first of equal highest scores (NumPy's argmax): max-scoring ties by design.
        let top = (0..rows.len())
            .max_by(|&a, &b| rows[a].1.total_cmp(&rows[b].1).then(b.cmp(&a)))
            .unwrap();
        assert_eq!(points["top_step"], rows[top].0);
        let near = rows[top.saturating_sub(100)..(top + 101).min(rows.len())].iter().any(|r| r.2);
        assert_eq!(points["ucr_hit"], near, "{how}");
        let auc = points["roc_auc"].as_f64().unwrap();
        eprintln!("{how}: point-wise ROC-AUC {auc:.4}, UCR hit {near}");
        // The labelled anomaly is found (UCR rule) by both scorings; 5 of 5 seeds did.
        assert!(near && auc > 0.95, "{how}: point-wise ROC-AUC {auc}, top step {}", rows[top].0);
        // The series above its scores, without labels needed.
        assert_eq!(image::image_dimensions(d.join("p.png")).unwrap(), (1200, 600));
    }
    ae(d, &["anomaly", "--run", s(&run), "--plot", "q.svg"]).ok();
    assert!(std::fs::read_to_string(d.join("q.svg")).unwrap().contains("score per step"));
    // A new stretch without the label column (issue 35) is scored, flagged, plotted and
    // denoised; its steps score as the same steps with labels do.
    let original = std::fs::read_to_string(&csv).unwrap();
    let head: Vec<&str> = original.lines().take(601).collect();
    let unlabelled: String =
        head.iter().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect();
    std::fs::write(d.join("new.csv"), &unlabelled).unwrap();
    std::fs::write(d.join("labelled.csv"), head.join("\n") + "\n").unwrap();
    let scores = |file: &str| {
        let args = ["anomaly", "--run", s(&run), "--data", file, "-o", "n.csv", "--plot", "n.png"];
        ae(d, &args).ok();
        let rows = std::fs::read_to_string(d.join("n.csv")).unwrap();
        rows.lines().map(|l| l.split(',').nth(3).unwrap().to_string()).collect::<Vec<_>>()
    };
    let (new, labelled) = (scores("new.csv"), scores("labelled.csv"));
    assert_eq!((new.len(), &new[0]), (601, &"score".to_string()));
    assert_eq!(new, labelled);
    ae(d, &["denoise", "--run", s(&run), "new.csv", "-o", "dn-new"]).ok();
    assert!(d.join("dn-new/new-denoised.csv").is_file());
    // The training windows are not one stretch of the series: no plot, said so.
    ae(d, &["anomaly", "--run", s(&run), "--split", "train", "--plot", "t.png"])
        .fails_with(&["--plot on a series run draws one stretch"]);
    assert!(!d.join("t.png").exists());

    // denoise on the CSV series: every step back, the value column replaced by the
    // overlap-added reconstruction, the other columns as written.
    ae(d, &["denoise", "--run", s(&run), s(&csv), "-o", "dn"]).ok();
    let name = csv.file_stem().unwrap().to_str().unwrap();
    let out = std::fs::read_to_string(d.join("dn").join(format!("{name}-denoised.csv"))).unwrap();
    let original = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(out.lines().count(), original.lines().count());
    let mut err = 0f64;
    for (a, b) in out.lines().zip(original.lines()).skip(1) {
        let (a, b): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
        assert_eq!((a[0], a[2]), (b[0], b[2]), "timestamp and label are kept");
        err = err.max((a[1].parse::<f64>().unwrap() - b[1].parse::<f64>().unwrap()).abs());
    }
    assert!(err > 0.0 && err < 40.0, "values 45–95 reconstructed within {err}");
}

/// A 16-bit mono WAV of `samples` (integers) at 48 kHz.
fn write_wav(path: &Path, samples: &[f64]) {
    write_wav_at(path, samples, 48000)
}

/// A 16-bit mono WAV of `samples` (integers) at `rate` Hz.
fn write_wav_at(path: &Path, samples: &[f64], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    samples
        .iter()
        .for_each(|&v| w.write_sample(v.round().clamp(-32768.0, 32767.0) as i16).unwrap());
    w.finalize().unwrap();
}

/// A folder mixing 16, 22.05 and 48 kHz recordings trains at its first file's rate, each
/// other file resampled (with a note); a file at another rate than the run's is denoised at
/// the run's rate and written back at its own, the same length.
#[test]
fn wav_files_at_other_rates_are_resampled() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir(d.join("mixed")).unwrap();
    // Two tones, a second long, the same sound at each rate.
    let tone = |rate: u32| -> Vec<f64> {
        let t = |i: usize| i as f64 / rate as f64;
        let w = |f: f64, i: usize| (2.0 * std::f64::consts::PI * f * t(i)).sin();
        (0..rate as usize).map(|i| 8000.0 * w(440.0, i) + 4000.0 * w(660.0, i)).collect()
    };
    for (name, rate) in [("a.wav", 16000), ("b.wav", 22050), ("c.wav", 48000)] {
        write_wav_at(&d.join("mixed").join(name), &tone(rate), rate);
    }
    let args = ["train", "--data", "mixed", "--window", "64", "--hop", "16", "--epochs", "4"];
    let run = ae(d, &[&args[..], &["--out", "run"]].concat()).ok();
    for (file, rate) in [("b.wav", 22050), ("c.wav", 48000)] {
        let note = format!("{file} is sampled at {rate} Hz; resampled to 16000 Hz");
        assert!(run.stderr.contains(&note), "{}", run.stderr);
    }
    let manifest = read_json(&d.join("run/model.json"));
    assert_eq!(manifest["model"]["input"]["series"]["sample_rate"], 16000);

    // A silent recording is refused by name; a clipped one trains, with a note.
    write_wav_at(&d.join("silent.wav"), &[0.0; 4000], 16000);
    let silent = ["train", "--data", "silent.wav", "--window", "64", "--out", "s"];
    ae(d, &silent).fails_with(&["silent.wav: every sample is 0 (silence)"]);
    let loud: Vec<f64> = tone(16000).iter().map(|v| v * 8.0).collect();
    write_wav_at(&d.join("loud.wav"), &loud, 16000);
    let loud = ["train", "--data", "loud.wav", "--window", "64", "--epochs", "1", "--out", "l"];
    let run = ae(d, &loud).ok();
    assert!(run.stderr.contains("loud.wav: 6"), "{}", run.stderr);
    assert!(run.stderr.contains("% of the samples are at full scale (clipped)"), "{}", run.stderr);

    let b = d.join("mixed/b.wav");
    let out = ae(d, &["denoise", "--run", "run", s(&b), "-o", "dn"]).ok();
    assert!(out.stderr.contains("resampled to the run's 16000 Hz"), "{}", out.stderr);
    let written = hound::WavReader::open(d.join("dn/b-denoised.wav")).unwrap();
    assert_eq!(written.spec().sample_rate, 22050);
    let (x, y) = (read_wav(&b), read_wav(&d.join("dn/b-denoised.wav")));
    assert_eq!(x.len(), y.len());
    // Still the same sound, in time with the input: 37 dB measured; the input itself
    // shifted by one 22 kHz sample reads 17.1 dB against it.
    let snr = snr_db(&x[500..21500], &y[500..21500]);
    assert!(snr > 25.0, "SNR of the result against its input: {snr:.1} dB");
}

#[test]
fn a_speech_denoiser_raises_the_snr_of_a_word_it_never_heard() {
    let dir = tempdir();
    let d = dir.path();
    // A folder of six spoken words, each its own series: the run holds two of them out
    // whole for testing; a seventh word is never seen.
    let words =
        ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Side_Left", "Side_Right"];
    std::fs::create_dir(d.join("words")).unwrap();
    for w in words {
        std::fs::copy(data(&format!("speech/{w}.wav")), d.join(format!("words/{w}.wav"))).unwrap();
    }
    let clean = read_wav(&data("speech/Rear_Left.wav"));
    // White Gaussian noise at 5 dB SNR (Box–Muller on a fixed LCG).
    let power = clean.iter().map(|c| c * c).sum::<f64>() / clean.len() as f64;
    let sigma = (power / 10f64.powf(0.5)).sqrt();
    let mut state = 12345u64;
    let mut uniform = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let noisy: Vec<f64> = clean
        .iter()
        .map(|c| {
            let (u, v) = (uniform(), uniform());
            c + sigma * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect();
    write_wav(&d.join("noisy.wav"), &noisy);
    let mut args = vec!["train", "--data", "words", "--domain", "wave", "--window", "256"];
    args.extend(["--hop", "32", "--mode", "denoise", "--sigma", "0.6", "--trim", "0"]);
    args.extend(["--epochs", "6"]);
    args.extend(["--hidden", "512,256", "--latent", "64", "--threads", "2", "--out", "dn"]);
    args.extend(["--no-tensorboard"]);
    let said = ae(d, &args).ok().stderr;
    // 30% of six files, rounded: two words held out whole, named in the run and said.
    let manifest = read_json(&d.join("dn/model.json"));
    let held: Vec<String> =
        serde_json::from_value(manifest["data"]["vectors"]["held_out"].clone()).unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        said.contains(&format!(
            "held out for testing (--test-fraction 0.3 of the files): {}",
            held.join(", ")
        )),
        "{said}"
    );
    // Windows never cross two files: each file's windows are counted on its own, and the
    // test windows name their file and restart their step ids at 0.
    let windows = |name: &str| {
        let n = read_wav(&d.join("words").join(name)).len();
        if n <= 256 {
            1
        } else {
            (n - 256).div_ceil(32) + 1
        }
    };
    let expect: usize = held.iter().map(|h| windows(h)).sum();
    assert_eq!(manifest["outcome"]["test"]["images"], expect);
    let training: usize = words
        .iter()
        .map(|w| format!("{w}.wav"))
        .filter(|w| !held.contains(w))
        .map(|w| windows(&w))
        .sum();
    let (t, v) =
        (manifest["data"]["train_images"].as_u64(), manifest["data"]["val_images"].as_u64());
    assert_eq!(t.unwrap() + v.unwrap(), training as u64);
    ae(d, &["encode", "--run", "dn", "-o", "z.csv"]).ok();
    let z = std::fs::read_to_string(d.join("z.csv")).unwrap();
    let keys: Vec<(usize, String)> = z
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), Path::new(f[1]).file_name().unwrap().to_string_lossy().into())
        })
        .collect();
    assert!(z.starts_with("row,file,z_1,"));
    assert_eq!(keys.len(), expect);
    assert_eq!((keys[0].0, &keys[0].1), (0, &held[0]));
    let second = keys.iter().position(|k| k.1 == held[1]).unwrap();
    assert_eq!((second, keys[second].0), (windows(&held[0]), 0));
    // eval: SNR in the file's units on the test windows, beside PCA and the noisy input,
    // the same figures training recorded.
    let eval = ae(d, &["eval", "--run", "dn", "--json", "--threads", "2"]).ok().stdout;
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let snr = &eval["snr"];
    assert_eq!(*snr, read_json(&d.join("dn/model.json"))["outcome"]["test"]["snr"]);
    let db = |k: &str| snr[k].as_f64().unwrap();
    eprintln!("test windows: {snr}");
    assert!(db("snr_db") > db("noisy_snr_db") + 3.0, "{snr}");
    assert!(db("seg_snr_db") > db("noisy_seg_snr_db"), "{snr}");
    let table = ae(d, &["eval", "--run", "dn"]).ok().stdout;
    assert!(table.contains("snr gain") && table.contains("segmental snr (dB)"), "{table}");
    ae(d, &["denoise", "--run", "dn", "noisy.wav", "-o", "out"]).ok();
    let out = read_wav(&d.join("out/noisy-denoised.wav"));
    assert_eq!(out.len(), clean.len());
    let (before, after) = (snr_db(&clean, &noisy), snr_db(&clean, &out));
    eprintln!("held-out word at {before:.2} dB SNR: {after:.2} dB after denoising");
    assert!((before - 5.0).abs() < 0.2, "{before}");
    assert!(after > before + 5.0, "{before:.2} dB → {after:.2} dB");
    // --add-noise on a series: the noisy series is written beside the denoised one, and
    // the SNRs printed are those of the files against the clean word.
    let clean_word = data("speech/Rear_Left.wav");
    let out =
        ae(d, &["denoise", "--run", "dn", s(&clean_word), "--add-noise", "0.6", "-o", "an"]).ok();
    let noisy = read_wav(&d.join("an/Rear_Left-noisy.wav"));
    let denoised = read_wav(&d.join("an/Rear_Left-denoised.wav"));
    let (a, b) = (snr_db(&clean, &noisy), snr_db(&clean, &denoised));
    let said = format!("SNR {a:.2} dB, denoised {b:.2} dB");
    assert!(out.stdout.contains(&said), "{said} not in {}", out.stdout);
    assert!(a > 3.0 && a < 8.0 && b > a + 5.0, "{said}");
    // The run reads the files it was made with: one gone from the folder is named.
    std::fs::remove_file(d.join("words").join(&held[1])).unwrap();
    let gone = format!("no longer there: {}; new: none", held[1]);
    ae(d, &["eval", "--run", "dn"]).fails_with(&["the folder has changed", &gone]);
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
    // Steps of a WAV file are named by their second as well.
    let scored = ae(d, &["anomaly", "--run", "w", "--split", "test", "--json"]).ok().stdout;
    let points = &serde_json::from_str::<serde_json::Value>(&scored).unwrap()["points"];
    let top = points["top_step"].as_f64().unwrap();
    assert_eq!(points["top_time"].as_str(), Some(&*format!("{:.4} s", top / 48000.0)));

    // A WAV file without --window: --window auto, from the recording's period, said and
    // recorded as numbers.
    let auto = train(&["--out", "auto", "--hidden", "64", "--latent", "8"]).ok();
    assert!(
        auto.stderr.contains("--window auto: the training series repeats every"),
        "{}",
        auto.stderr
    );
    let series = &read_json(&d.join("auto/model.json"))["model"]["input"]["series"];
    let (window, hop) = (series["window"].as_u64().unwrap(), series["hop"].as_u64().unwrap());
    assert!((16..=1024).contains(&window) && hop == 1, "{series}");
    assert!(auto.stderr.contains(&format!("window {window} (half of that), hop 1")));
    // A CSV whose time column increases is a series too: --tail-score and --ensemble are
    // refused on it;
    // --hop on a table (no time column) needs --window.
    let csv = data(BLEEDING);
    let tails = ["train", "--data", s(&csv), "--tail-score", "--out", "x"];
    let run = ae(d, &tails).fails_with(&["--tail-score scores a table's rows"]);
    assert_eq!(run.code, Some(2));
    let ensemble = ["train", "--data", s(&csv), "--ensemble", "3", "--out", "x"];
    ae(d, &ensemble).fails_with(&["--ensemble scores a table's rows"]);
    std::fs::write(d.join("table.csv"), "a,b\n1,2\n3,4\n5,6\n").unwrap();
    let run = ae(d, &["train", "--data", "table.csv", "--hop", "4", "--out", "x"]);
    assert_eq!(run.fails_with(&["--hop needs --window"]).code, Some(2));
    // A window longer than the part it cuts, a hop of 0 or beyond the window.
    let args = ["train", "--data", s(&csv), "--window", "7000", "--out", "x"];
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

    // A CSV series: its time column is not a value by default, and must increase.
    let mut text = String::from("timestamp,value,is_anomaly\n");
    (0..300).for_each(|t| text += &format!("{t},{},0\n", (t as f64 * 0.1).sin()));
    std::fs::write(d.join("ok.csv"), &text).unwrap();
    let ok = d.join("ok.csv");
    go(&ok, &["--label-column", "is_anomaly", "--epochs", "1", "--out", "z"]).ok();
    let input = &read_json(&d.join("z/model.json"))["model"]["input"];
    assert_eq!(input["series"]["channels"], serde_json::json!(["value"]));
    // Several value columns make a multichannel series: each window holds every
    // channel's steps, and denoise writes both channels back in place.
    let mut two = String::from("time,a,b\n");
    let wave = |t: f64| ((t * 0.1).sin(), (t * 0.07).cos());
    (0..4000).for_each(|t| two += &format!("{t},{},{}\n", wave(t as f64).0, wave(t as f64).1));
    std::fs::write(d.join("two.csv"), &two).unwrap();
    let args = ["--window", "32", "--hop", "8", "--epochs", "100", "--out", "m", "--threads", "1"];
    go(&d.join("two.csv"), &args).ok();
    let input = &read_json(&d.join("m/model.json"))["model"]["input"];
    assert_eq!(input["series"]["channels"], serde_json::json!(["a", "b"]));
    let (a31, b0) = (input["columns"][31].as_str(), input["columns"][32].as_str());
    assert_eq!((a31, b0), (Some("a@31"), Some("b@0")));
    ae(d, &["denoise", "--run", "m", "two.csv", "-o", "md"]).ok();
    let back = std::fs::read_to_string(d.join("md/two-denoised.csv")).unwrap();
    assert_eq!(back.lines().next(), Some("time,a,b"));
    assert_eq!(back.lines().count(), 4001);
    // Every step of both channels near the clean waves (0.19 at most here; 1.3 after 10
    // epochs, so this fails for a model that has not learnt both channels).
    for (i, line) in back.lines().skip(1).enumerate() {
        let row: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let (a, b) = wave(i as f64);
        assert_eq!(row[0], i as f64);
        assert!((row[1] - a).abs() < 0.35 && (row[2] - b).abs() < 0.35, "step {i}: {row:?}");
    }
    // A folder mixing kinds of series is refused by name.
    std::fs::create_dir(d.join("mixed")).unwrap();
    std::fs::copy(&wav, d.join("mixed/a.wav")).unwrap();
    std::fs::copy(d.join("two.csv"), d.join("mixed/b.csv")).unwrap();
    go(&d.join("mixed"), &[])
        .fails_with(&["a folder of series holds files of one kind", "a.wav and b.csv"]);
    std::fs::write(d.join("back.csv"), text.replace("\n151,", "\n149,")).unwrap();
    go(&d.join("back.csv"), &["--label-column", "is_anomaly"]).fails_with(&[
        "back.csv: the timestamp column must increase",
        "line 153 (149) does not come after line 152 (150)",
    ]);
}

#[test]
fn several_series_score_each_on_its_own_and_the_folder_is_held_to_its_files() {
    let dir = tempdir();
    let d = dir.path();
    // The heart-rate series cut into files: its anomaly-free first 1,200 steps to train
    // on, and two test files, the anomaly (near step 4,200) in the second.
    let text = std::fs::read_to_string(data(BLEEDING)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let write = |path: &str, range: std::ops::Range<usize>| {
        let body: String = rows[range].iter().map(|r| format!("{r}\n")).collect();
        std::fs::create_dir_all(d.join(path).parent().unwrap()).unwrap();
        std::fs::write(d.join(path), format!("{header}\n{body}")).unwrap();
    };
    write("train/first.csv", 0..1200);
    write("test/a.csv", 1200..4000);
    write("test/b.csv", 4000..7501);
    let mut args = vec!["train", "--data", "train", "--test", "test", "--columns", "value"];
    args.extend(["--label-column", "is_anomaly", "--window", "64", "--hop", "1"]);
    args.extend(["--epochs", "40", "--threads", "1", "--out", "r", "--no-tensorboard"]);
    ae(d, &args).ok();
    let manifest = read_json(&d.join("r/model.json"));
    // Windows per file: 2800 − 63 and 3501 − 63.
    assert_eq!(manifest["outcome"]["test"]["images"], 2737 + 3438);
    assert_eq!(manifest["data"]["vectors"]["folder_files"], serde_json::json!(["first.csv"]));

    let mut args = vec!["anomaly", "--run", "r", "--normal-classes", "0", "--json"];
    args.extend(["-o", "all.csv", "--explain", "2"]);
    let out = ae(d, &args).ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let points = &summary["points"];
    assert_eq!(points["steps"], 6301);
    assert!(points["top_file"].as_str().unwrap().ends_with("b.csv"), "{points}");
    // The UCR rule series by series: only b has a labelled anomaly, and it is found.
    assert_eq!(points["ucr_hits"], serde_json::json!([1, 1]), "{points}");
    assert!(points.get("ucr_hit").is_none());
    let all = std::fs::read_to_string(d.join("all.csv")).unwrap();
    assert!(all.starts_with("step,file,timestamp,value,score,is_anomaly,label\n"));
    let scores = |csv: &str, score_at: usize| -> Vec<(String, f64)> {
        csv.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[score_at].parse().unwrap())
            })
            .collect()
    };
    let all = scores(&all, 4);
    assert_eq!((all[0].0.as_str(), all[2800].0.as_str(), all.len()), ("0", "0", 6301));
    // Each file's step scores are what that file alone scores: no window crosses the two.
    let mut alone = Vec::new();
    for f in ["a", "b"] {
        let csv = format!("{f}-points.csv");
        let file = format!("test/{f}.csv");
        ae(d, &["anomaly", "--run", "r", "--data", &file, "-o", &csv]).ok();
        alone.extend(scores(&std::fs::read_to_string(d.join(&csv)).unwrap(), 3));
    }
    assert_eq!(alone, all);
    // explain.csv names each window's file.
    let explain = std::fs::read_to_string(d.join("r/explain.csv")).unwrap();
    assert!(explain.starts_with("rank,row,file,label,score,feature,"), "{explain:.80}");
    // One plot draws one series.
    ae(d, &["anomaly", "--run", "r", "--plot", "p.png"])
        .fails_with(&["--plot draws one series", "2 series"]);
    assert!(!d.join("p.png").exists());
    // The training folder gains a file: the run's sets would change, so it is refused.
    write("train/second.csv", 1200..2000);
    ae(d, &["eval", "--run", "r"]).fails_with(&[
        "the folder has changed since the run was made",
        "no longer there: none; new: second.csv",
    ]);
}

fn has(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no '{needle}' in:\n{text}");
    }
}

/// A log with 1-minute steps and three 2-hour holes (before rows 400, 410 and 800), a
/// 40-minute wave and a spike at rows 1100–1109 labelled 1, its times in ISO 8601.
fn gapped_log() -> String {
    let mut text = String::from("timestamp,value,label\n");
    let mut minute = 0;
    for i in 0..1200 {
        if [400, 410, 800].contains(&i) {
            minute += 120;
        }
        let (day, hour, min) = (1 + minute / 1440, minute / 60 % 24, minute % 60);
        let spike = (1100..1110).contains(&i);
        let v = (std::f64::consts::TAU * i as f64 / 40.0).sin() + if spike { 2.0 } else { 0.0 };
        text += &format!("2024-01-{day:02}T{hour:02}:{min:02},{v:.3},{}\n", spike as u8);
        minute += 1;
    }
    text
}

/// Issue 37 §4: a gap in a series' time column splits it (no window crosses one, a stretch
/// too short for a window is left out, said in notes), or is refused naming its lines
/// with `--gap refuse`; reports give the time column's values beside the step numbers,
/// denoise writes a stretch too short for a window as it was, and a run made before gaps
/// were looked for still reads across them.
#[test]
fn a_gap_in_the_time_column_splits_the_series_or_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("log.csv"), gapped_log()).unwrap();
    let mut args = vec!["train", "--data", "log.csv", "--label-column", "label", "--classes"];
    args.extend(["0", "--window", "40", "--hop", "4", "--epochs", "2", "--threads", "1"]);
    args.extend(["--no-tensorboard", "--out", "r"]);
    let run = ae(d, &args).ok();
    has(
        &run.stderr,
        &[
            "log.csv: 3 gaps in the timestamp column",
            "from 2024-01-01T17:19 (line 801) to 2024-01-01T19:20 (line 802): 2.02 h where the \
         usual step is 1 min",
            "1 stretch between gaps is shorter than the window (40 steps): 10 steps left out",
        ],
    );
    // 1190 steps in pieces of 400, 390 and 400; the last 357 (0.3) are the test part.
    // Training: 91 + 89 windows and 2 over steps 790–832; across the gaps it would be 201.
    has(&run.stderr, &["(164 train / 18 validation rows"]);
    let manifest = read_json(&d.join("r/model.json"));
    assert_eq!(manifest["data"]["vectors"]["gap"], "split");

    // The whole file scored: windows piece by piece (91 + 89 + 91), one score per kept
    // step; the top step is named by its time, and -o has the time column.
    let scored =
        ae(d, &["anomaly", "--run", "r", "--data", "log.csv", "-o", "steps.csv", "--json"]);
    let summary = serde_json::from_str::<serde_json::Value>(&scored.ok().stdout).unwrap();
    assert_eq!(summary["images"], 271);
    let points = &summary["points"];
    assert_eq!(points["steps"], 1190);
    let top = points["top_step"].as_u64().unwrap() as usize;
    let line = gapped_log().lines().nth(top + 1).unwrap().to_string();
    assert_eq!(points["top_time"].as_str(), line.split(',').next());
    assert!((1100..1110 + 40).contains(&top), "top step {top}");
    let steps = std::fs::read_to_string(d.join("steps.csv")).unwrap();
    assert!(steps.starts_with("step,timestamp,value,score,is_anomaly,label\n"), "{steps}");
    let source = gapped_log();
    for row in steps.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        let step: usize = cells[0].parse().unwrap();
        assert!(!(400..410).contains(&step), "step {step} of the short stretch was scored");
        let file: Vec<&str> = source.lines().nth(step + 1).unwrap().split(',').collect();
        let value = |v: &str| v.parse::<f64>().unwrap();
        assert_eq!(cells[1], file[0], "step {step}");
        assert!((value(cells[2]) - value(file[1])).abs() < 1e-6, "step {step}");
    }
    let table = ae(d, &["anomaly", "--run", "r", "--data", "log.csv"]).ok().stdout;
    let at = format!("highest score at {} (step {top})", line.split(',').next().unwrap());
    assert!(table.contains(&at), "{table}");

    // denoise: the 10 steps between gaps are written as they were, every line kept.
    let denoised = ae(d, &["denoise", "--run", "r", "log.csv", "-o", "dn"]).ok();
    let kept = "1 stretch between gaps shorter than the window (40 steps) kept as they are";
    has(&denoised.stderr, &[kept]);
    let back = std::fs::read_to_string(d.join("dn/log-denoised.csv")).unwrap();
    assert_eq!(back.lines().count(), 1201);
    let (a, b): (Vec<&str>, Vec<&str>) = (source.lines().collect(), back.lines().collect());
    assert_eq!(a[403..411], b[403..411], "rows 401–408 of the short stretch");
    assert!(a[1..402] != b[1..402], "the first stretch went through the model");

    // --gap refuse names the first irregular step; --gap on a table is bad usage.
    let last = args.len() - 1;
    args[last] = "refused";
    args.extend(["--gap", "refuse"]);
    ae(d, &args).fails_with(&[
        "log.csv: the timestamp column jumps from 2024-01-01T06:39 (line 401) to \
         2024-01-01T08:40 (line 402): 2.02 h where the usual step is 1 min",
        "one of 3 steps",
        "--gap split",
    ]);
    assert!(!d.join("refused").exists());
    std::fs::write(d.join("table.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let bare = ["train", "--data", "table.csv", "--gap", "refuse", "--out", "x"];
    assert_eq!(ae(d, &bare).fails_with(&["--gap needs --window"]).code, Some(2));

    // --window none reads the same file as a table; --missing drop, which a series cannot
    // take, says so; a WAV file has no table to be.
    let table =
        ["train", "--data", "log.csv", "--window", "none", "--columns", "value", "--out", "t"];
    ae(d, &table).ok();
    assert!(read_json(&d.join("t/model.json"))["model"]["input"].get("series").is_none());
    let drop = ["train", "--data", "log.csv", "--missing", "drop", "--out", "u"];
    let holes: String = gapped_log()
        .lines()
        .map(|l| {
            if l.starts_with("2024-01-01T00:05,") {
                "2024-01-01T00:05,,0\n".into()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(d.join("holes.csv"), holes).unwrap();
    let drop = drop.map(|a| if a == "log.csv" { "holes.csv" } else { a });
    ae(d, &drop).fails_with(&["drop does not apply", "--window none reads a CSV as a table"]);
    let wav = data("speech/Front_Center.wav");
    let run = ae(d, &["train", "--data", s(&wav), "--window", "none", "--out", "v"]);
    assert_eq!(run.fails_with(&["--window none reads a CSV as a table"]).code, Some(2));

    // --window auto (the default here) leaves the short stretch out before the time-order
    // cut, as every later command does: eval rebuilds the test windows training measured.
    let auto = ["train", "--data", "log.csv", "--label-column", "label", "--epochs", "1"];
    let trained = ae(d, &[&auto[..], &["--threads", "1", "--out", "a"]].concat()).ok();
    has(&trained.stderr, &["--window auto: the training series repeats every 40 steps"]);
    let rows = |text: &str| text.lines().find(|l| l.starts_with("test rows")).map(String::from);
    let evaluated = ae(d, &["eval", "--run", "a"]).ok();
    assert!(rows(&trained.stdout).is_some());
    assert_eq!(rows(&trained.stdout), rows(&evaluated.stdout), "{}", evaluated.stdout);

    // A run recorded before gaps were looked for reads across them: 291 windows.
    let path = d.join("r/model.json");
    let mut old = read_json(&path);
    old["data"]["vectors"].as_object_mut().unwrap().remove("gap");
    std::fs::write(&path, serde_json::to_string(&old).unwrap()).unwrap();
    let scored = ae(d, &["anomaly", "--run", "r", "--data", "log.csv", "--json"]).ok().stdout;
    let summary = serde_json::from_str::<serde_json::Value>(&scored).unwrap();
    assert_eq!(
        (summary["images"].as_u64(), summary["points"]["steps"].as_u64()),
        (Some(291), Some(1200))
    );
}

/// The peak resident memory, in MB, of `ae-tch ARGS` run in `cwd` (the venv's Python
/// reads the child's maximum resident set from `getrusage`); panics if it fails.
fn peak_mb(cwd: &Path, args: &[&str]) -> f64 {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let measure = "import resource, subprocess, sys\n\
                   r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n\
                   sys.stderr.write(r.stderr)\n\
                   print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                   sys.exit(r.returncode)";
    let out = std::process::Command::new(python)
        .args(["-c", measure, bin()])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("spawn the venv's python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap() / 1024.0
}

/// Windows are views into the series (issue 37): 25 s at 16 kHz cut into 1,024-step
/// windows at hop 1 would be a 1.6 GB matrix, yet training (on the first 2,000 windows,
/// scored on all 120,000 test windows) and scoring every step take within 300 MB of what
/// they take at hop 256; every test step gets its score.
#[test]
fn windows_at_hop_1_are_cut_as_they_are_read_not_held_as_a_matrix() {
    let dir = tempdir();
    let d = dir.path();
    let samples: Vec<f64> = (0..400_000)
        .map(|i| {
            let t = i as f64;
            9000.0 * (t * 0.0863).sin() + 1500.0 * (t * 0.0011).sin() + 700.0 * (t * 0.37).sin()
        })
        .collect();
    write_wav_at(&d.join("long.wav"), &samples, 16000);
    let mut peaks = Vec::new();
    for hop in ["256", "1"] {
        let run = format!("r{hop}");
        let train = [
            "train", "--data", "long.wav", "--window", "1024", "--hop", hop, "--limit", "2000",
            "--epochs", "1", "--out", &run, "--quiet",
        ];
        let steps = format!("{run}/steps.csv");
        let anomaly = ["anomaly", "--run", &run, "-o", &steps, "--quiet"];
        peaks.push((peak_mb(d, &train), peak_mb(d, &anomaly)));
        let scored = std::fs::read_to_string(d.join(&steps)).unwrap().lines().count();
        assert_eq!(scored, 1 + 120_000, "a header and the test part's steps, hop {hop}");
    }
    let [(train_256, anomaly_256), (train_1, anomaly_1)] = peaks[..] else { unreachable!() };
    assert!(train_1 < train_256 + 300.0, "train: {train_1:.0} MB at hop 1, {train_256:.0} at 256");
    assert!(
        anomaly_1 < anomaly_256 + 300.0,
        "anomaly: {anomaly_1:.0} MB at hop 1, {anomaly_256:.0} at 256"
    );
}
