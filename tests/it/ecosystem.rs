//! ae-tch and PyTorch exchange weights both ways (the project's venv PyTorch and
//! safetensors as the real client), and the import/export commands refuse what does not
//! fit.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Runs python/ae_tch_torch.py and returns the difference it reports.
pub fn client(args: &[&str]) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ae_tch_torch.py");
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
    let out = ae(d, &["export", "--run", s(&run), "-o", "ae.ot", "--json"]).ok().stdout;
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tensors = report["tensors"].as_array().unwrap();
    // The layer sizes model.json records (the later --hidden replaces quick_train's).
    let model = &read_json(&json)["model"];
    let mut sizes = vec![784];
    sizes.extend(model["layers"]["hidden"].as_array().unwrap().iter().map(|h| h.as_i64().unwrap()));
    sizes.push(model["latent"].as_i64().unwrap());
    assert_eq!(sizes, [784, 64, 32, 8]);
    let first = tensors.iter().find(|t| t["name"] == "encoder.0.weight").expect(&out);
    assert_eq!(
        (&first["shape"], &first["dtype"]),
        (&serde_json::json!([64, 784]), &"float32".into())
    );
    let mut expected = 0;
    for w in sizes.windows(2) {
        expected += 2 * w[0] * w[1] + w[0] + w[1]; // encoder and decoder weights and biases
    }
    assert_eq!((tensors.len(), report["parameters"].as_i64()), (12, Some(expected)));
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

#[test]
fn doctor_names_libtorch_and_explains_missing_cuda() {
    let dir = tempdir();
    let text = ae(dir.path(), &["doctor"]).ok().stdout;
    let json: serde_json::Value =
        serde_json::from_str(&ae(dir.path(), &["doctor", "--json"]).ok().stdout).unwrap();
    let loaded = json["libtorch_loaded_from"].as_str().unwrap().to_string();
    assert!(loaded.ends_with("torch/lib") && text.contains(&loaded), "{text}");
    assert_eq!(json["libtorch_built"].as_str().unwrap().split('+').next(), Some("2.11.0"));
    assert_eq!(json["tch_version"], "0.24.0");
    assert_eq!(json["libtorch_cuda_loaded"], true, "build.rs links torch_cuda");
    if tch::Cuda::is_available() {
        assert_eq!(json["cuda_available"], true);
    } else {
        assert_eq!(json["cuda_available"], false);
        assert!(json["cuda_reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(
            text.contains("CUDA available        no") && text.contains("why no CUDA"),
            "{text}"
        );
    }
    assert!(json["threads"].as_i64().unwrap() >= 1);
    // libgomp's spin limit, as the binary set it before libgomp loaded (see omp.rs).
    let spin = format!("GOMP_SPINCOUNT={}", ae_tch::omp::spin_count());
    let wait = json["openmp_wait"].as_str().unwrap();
    let user_set =
        ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"].iter().any(|v| std::env::var_os(v).is_some());
    assert!(wait.starts_with(&spin) || user_set, "{wait}");
    assert!(text.contains(&format!("OpenMP waiting        {wait}")), "{text}");
    // main sets the flush mode before libtorch starts its pool: every thread inherits it.
    assert_eq!(json["denormals_flushed"], true, "{text}");
    assert!(text.contains("flushed to zero on every libtorch thread"), "{text}");
}

#[test]
fn completions_man_page_quiet_json_and_data_info() {
    let dir = tempdir();
    let d = dir.path();
    for shell in ["bash", "zsh", "fish"] {
        let out = ae(d, &["completions", shell]).ok().stdout;
        assert!(out.contains("ae-tch") && out.contains("doctor") && out.len() > 1000, "{shell}");
    }
    ae(d, &["completions", "tcsh"]).fails_with(&["invalid value 'tcsh'"]);
    let man = ae(d, &["man"]).ok().stdout;
    assert!(man.contains(".TH ae-tch 1") && man.contains("train"));
    // The pages the top-level one points at exist: --all writes one per subcommand.
    let out = ae(d, &["man", "--all", "man1"]).ok().stdout;
    assert!(out.contains("man pages to man1"), "{out}");
    for page in ["ae-tch.1", "ae-tch-train.1", "ae-tch-eval.1", "ae-tch-data-fetch.1"] {
        let text = std::fs::read_to_string(d.join("man1").join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}: {}", &text[..80]);
    }
    let train = std::fs::read_to_string(d.join("man1/ae-tch-train.1")).unwrap();
    assert!(train.contains("dist\\-timeout"), "the train page lists its flags");
    let commands = ["train", "eval", "encode", "anomaly", "plot-latent", "denoise", "sample"];
    let more = ["interpolate", "plot-loss", "grid", "export", "import", "doctor", "data", "man"];
    for c in commands.iter().chain(&more).chain(&["completions"]) {
        let help = ae(d, &[c, "--help"]).ok().stdout;
        assert!(help.contains("\nExample"), "`ae-tch {c} --help` shows no example:\n{help}");
    }

    // --quiet --json: nothing on stderr, the run's model.json on stdout.
    let run = d.join("run");
    let mut a = quick_train(&mnist(), &run, &["--epochs", "1", "--json"]);
    a.push("--quiet".into());
    let out = ae(d, &a).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["outcome"]["epochs_run"], 1);
    assert!(json["outcome"]["test"]["psnr_db"].as_f64().unwrap() > 10.0);

    let info = ae(d, &["data", "info", mnist().to_str().unwrap(), "--json"]).ok().stdout;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!((info[0]["images"].as_u64(), info[1]["images"].as_u64()), (Some(8000), Some(2000)));
    // The well-known MNIST statistics: mean 0.1307, std 0.3081.
    let mean = info[0]["pixel_mean"].as_f64().unwrap();
    assert!((mean - 0.1307).abs() < 0.001, "{mean}");
    let counts: u64 =
        info[0]["labels"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counts, 8000);
    ae(d, &["data", "info", "nowhere"]).fails_with(&["data folder nowhere does not exist"]);
}

/// Colour only on a terminal, and never with NO_COLOR set: help and usage errors are run
/// under a pseudo-terminal (util-linux `script`) with and without NO_COLOR, and piped.
#[test]
fn colour_only_on_a_terminal_without_no_color() {
    const ESC: char = '\u{1b}';
    let piped = ae(Path::new("."), &["train", "--bogus"]);
    assert!(!piped.stderr.contains(ESC) && !piped.stdout.contains(ESC), "{}", piped.stderr);
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped the terminal half: util-linux `script` is not installed");
        return;
    }
    let on_tty = |no_color: bool, args: &str| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &format!("{} {args}", bin()), "/dev/null"]).env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("run script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in ["--help", "train --bogus"] {
        assert!(on_tty(false, args).contains(ESC), "no colour on a terminal for {args}");
        let plain = on_tty(true, args);
        assert!(!plain.contains(ESC) && plain.contains("Usage"), "NO_COLOR ignored: {plain}");
    }
}

/// The guide's PyTorch snippet (docs/guide/export.md) runs as written (in a folder laid out
/// as the guide's: runs/demo, demo.safetensors, the checkout's python/ and data/), and its
/// `x_hat` is ae-tch's reconstruction of the same test images. (tests/it/guide.rs runs it
/// too; this checks what it computes.)
#[test]
fn the_guides_pytorch_snippet_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/guide/export.md")).unwrap();
    let snippet = page
        .split("```python\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .find(|block| block.contains("x_hat = model(x)"))
        .expect("docs/guide/export.md has a ```python block with `x_hat = model(x)`");
    let dir = tempdir();
    let d = dir.path();
    let run = d.join("runs/demo");
    ae(d, &quick_train(&mnist(), &run, &["--epochs", "1"])).ok();
    ae(d, &["export", "--run", "runs/demo", "-o", "demo.safetensors"]).ok();
    for link in ["python", "data"] {
        std::os::unix::fs::symlink(root.join(link), d.join(link)).unwrap();
    }
    let script = format!("{snippet}\nnp.save('x_hat.npy', x_hat.numpy())\n");
    std::fs::write(d.join("snippet.py"), script).unwrap();
    let out = Command::new(python()).arg("snippet.py").current_dir(d).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ae(d, &["encode", "--run", "runs/demo", "--decode", "-o", "ae.npy"]).ok();
    let diff = client(&["diff", s(&d.join("x_hat.npy")), s(&d.join("ae.npy"))]);
    assert!(diff <= 1e-5, "the snippet's x_hat against ae-tch's: {diff}");
}
