//! Helpers that run the real `ae-tch` binary in temp folders, like ripgrep's tests/util.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ae-tch")
}

/// The embedded dataset made by scripts/setup.sh.
pub fn mnist() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    assert!(
        dir.join("train-images-idx3-ubyte.gz").is_file(),
        "{} is missing: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// The result of one run of the binary.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The subcommand it ran (`ae` fills it in), whose flags a failure's hints must name.
    pub subcommand: Option<String>,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "ae-tch failed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a clean failure: non-zero exit, no panic, and `needles` in the message.
    pub fn fails_with(self, needles: &[&str]) -> Run {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected failure, got {:?}\nstderr: {}",
            self.code,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panicked:\n{}", self.stderr);
        for needle in needles {
            assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        }
        if let Some(sub) = &self.subcommand {
            let wrong = unknown_flags(sub, &self.stderr);
            assert!(wrong.is_empty(), "`{sub}` has no {wrong:?}, which it names:\n{}", self.stderr);
        }
        self
    }
}

/// The flags `text` (a message of `ae-tch SUBCOMMAND`) names that the command they belong
/// to lacks: each `--flag` belongs to the subcommand named last before it in the text
/// (`ae-tch train --resume R`, "train with --latent 2"), else to `subcommand`. A hint must name a flag that exists
/// where it points.
pub fn unknown_flags(subcommand: &str, text: &str) -> Vec<String> {
    use clap::CommandFactory;
    let cli = ae_tch::cli::Cli::command();
    let longs = |sub: &str| -> Vec<String> {
        let mut out = vec!["help".to_string(), "version".into()];
        for a in cli.get_arguments().chain(cli.find_subcommand(sub).into_iter().flat_map(|c| {
            c.get_arguments().chain(c.get_subcommands().flat_map(|s| s.get_arguments()))
        })) {
            out.extend(a.get_long().map(str::to_string));
            out.extend(a.get_all_aliases().into_iter().flatten().map(str::to_string));
        }
        out
    };
    let subs: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
    let mut wrong = Vec::new();
    let mut owner = subcommand.to_string();
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || "(),;:'\"`[]".contains(c)).collect();
    for (i, word) in words.iter().enumerate() {
        // "ae-tch train --x" and "train with --x" name another command's flag.
        let named = (i > 0 && words[i - 1] == "ae-tch")
            || words.get(i + 1).is_some_and(|next| *next == "with");
        if named && subs.iter().any(|s| s == word) {
            owner = word.to_string();
        }
        let Some(flag) = word.strip_prefix("--") else { continue };
        let flag = flag.split('=').next().unwrap_or(flag).trim_end_matches('.');
        let is_flag = !flag.is_empty()
            && flag.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if is_flag && !longs(&owner).iter().any(|l| l == flag) {
            wrong.push(format!("--{flag}"));
        }
    }
    wrong
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            subcommand: None,
        }
    }
}

/// Runs `ae-tch ARGS` in `cwd`.
pub fn ae<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Run {
    let run: Run =
        Command::new(bin()).args(args).current_dir(cwd).output().expect("spawn ae-tch").into();
    let first = args.iter().map(|a| a.as_ref().to_string_lossy()).find(|a| !a.starts_with('-'));
    Run { subcommand: first.map(|s| s.into_owned()), ..run }
}

/// Short, deterministic training flags used across the tests: one thread, a subset of
/// the data, a small network, a constant rate (a few epochs of warm-up + cosine leave too
/// little at the full rate for the tests' short runs).
pub fn quick_train(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--limit",
        "3000",
        "--epochs",
        "6",
        "--latent",
        "16",
        "--batch-size",
        "32",
        "--lr",
        "0.003",
        "--lr-schedule",
        "constant",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--data".into());
    args.push(data.display().to_string());
    args.push("--out".into());
    args.push(out.display().to_string());
    // A small MLP unless the run has conv layers (which --hidden does not apply to).
    if !extra.contains(&"conv") {
        args.extend(["--hidden", "128"].map(String::from));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// One denoising run trained once and shared by the tests that only read it.
pub fn shared_denoise_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = RUN.get_or_init(|| {
        let dir = tempdir();
        let out = dir.path().join("denoise");
        ae(dir.path(), &quick_train(&mnist(), &out, &["--mode", "denoise", "--sigma", "0.4"])).ok();
        (dir, out)
    });
    path
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies a folder's files (flat) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A 16-bit WAV file's samples, as they are stored.
pub fn read_wav(path: &Path) -> Vec<f64> {
    let mut r = hound::WavReader::open(path).unwrap();
    assert_eq!(r.spec().bits_per_sample, 16);
    r.samples::<i16>().map(|v| v.unwrap() as f64).collect()
}

/// 10·log10(Σ clean² / Σ (clean − x)²).
pub fn snr_db(clean: &[f64], x: &[f64]) -> f64 {
    let signal: f64 = clean.iter().map(|c| c * c).sum();
    let noise: f64 = clean.iter().zip(x).map(|(c, x)| (c - x) * (c - x)).sum();
    10.0 * (signal / noise).log10()
}
