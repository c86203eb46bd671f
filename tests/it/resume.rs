//! Nothing lost: checkpoints, exact resume after kill -9 or Ctrl-C, refused resumes,
//! divergence, and output folders that cannot be written.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run small enough to train in about a second on one thread.
fn args(out: &Path, epochs: &str) -> Vec<String> {
    quick_train(
        &mnist(),
        out,
        &[
            "--epochs",
            epochs,
            "--limit",
            "2000",
            "--hidden",
            "64",
            "--latent",
            "8",
            "--mode",
            "denoise",
            "--early-stop",
            "0",
        ],
    )
}

/// metrics.csv without its timing columns (seconds, samples_per_s).
fn metrics_without_timing(run: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 4)
                .map(|(_, v)| v.to_string())
                .collect()
        })
        .collect()
}

fn weights(run: &Path) -> Vec<(String, tch::Tensor)> {
    let mut named = tch::Tensor::load_multi(run.join("model.ot")).unwrap();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The resumed run is the uninterrupted run: same metrics rows, bit-identical weights.
pub fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(metrics_without_timing(a), metrics_without_timing(b));
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.len(), wb.len());
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert!(na == nb && ta.equal(tb), "{na} differs after resuming");
    }
}

/// Runs `ae-tch ARGS` with the fault injection `AE_TCH_FAULT=fault`.
pub fn with_fault(cwd: &Path, args: &[String], fault: &str) -> Run {
    Command::new(bin())
        .args(args)
        .env("AE_TCH_FAULT", fault)
        .current_dir(cwd)
        .output()
        .unwrap()
        .into()
}

fn temp_files(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn kill_during_a_checkpoint_write_keeps_the_last_one_and_resume_is_exact() {
    let dir = tempdir();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    ae(dir.path(), &args(&whole, "4")).ok();
    // Abort (as kill -9 would) inside the second checkpoint write, after the temporary
    // file is complete and before the rename.
    let out = with_fault(dir.path(), &args(&killed, "4"), "abort:checkpoint.ot:2");
    assert_eq!(out.code, None, "killed by a signal");
    assert!(!killed.join("model.json").exists() && !killed.join("model.ot").exists());
    assert_eq!(temp_files(&killed).len(), 1, "the unfinished write is only a temporary file");
    // Starting over in the folder by accident is refused; reading it says how to finish it.
    ae(dir.path(), &args(&killed, "4")).fails_with(&["holds an unfinished run", "--resume"]);
    let k = killed.to_str().unwrap();
    ae(dir.path(), &["eval", "--run", k])
        .fails_with(&["holds an unfinished run", &format!("ae-tch train --resume {k}")]);
    let run = ae(dir.path(), &["train", "--resume", killed.to_str().unwrap()]).ok();
    assert!(run.stderr.contains("resuming denoise autoencoder"), "{}", run.stderr);
    assert!(temp_files(&killed).is_empty(), "stale temporary files are swept");
    assert_same_run(&whole, &killed);

    // Killed after the last checkpoint, while writing the weights: resuming writes the
    // missing artefacts without training again.
    let late = dir.path().join("late");
    assert_eq!(with_fault(dir.path(), &args(&late, "4"), "abort:model.ot:1").code, None);
    assert!(!late.join("model.json").exists());
    ae(dir.path(), &["train", "--resume", late.to_str().unwrap()]).ok();
    assert_same_run(&whole, &late);
    ae(dir.path(), &["train", "--resume", late.to_str().unwrap()])
        .fails_with(&["already trained all 4 epochs"]);
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_the_resumed_run_is_exact() {
    let dir = tempdir();
    let (whole, stopped) = (dir.path().join("whole"), dir.path().join("stopped"));
    // Big enough that a SIGINT sent after the first epoch lands well before the end.
    let long = |out: &Path| {
        quick_train(&mnist(), out, &["--epochs", "6", "--hidden", "256", "--mode", "denoise"])
    };
    ae(dir.path(), &long(&whole)).ok();
    let stderr = stop_after_first_epoch(dir.path(), &long(&stopped), "-INT");
    assert!(stderr.contains(&format!("ae-tch train --resume {}", stopped.display())), "{stderr}");
    ae(dir.path(), &["train", "--resume", stopped.to_str().unwrap()]).ok();
    assert_same_run(&whole, &stopped);
    // SIGTERM (a supervisor stopping the job) is handled the same way.
    let termed = dir.path().join("termed");
    stop_after_first_epoch(dir.path(), &long(&termed), "-TERM");
    assert!(termed.join("checkpoint.ot").is_file());
}

/// Starts `ae-tch ARGS`, sends `signal` once its first epoch is in metrics.csv, and checks
/// the interrupted exit; returns stderr.
fn stop_after_first_epoch(cwd: &Path, args: &[String], signal: &str) -> String {
    let out_dir =
        Path::new(&args[args.iter().position(|a| a == "--out").unwrap() + 1]).to_path_buf();
    let child = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let csv = cwd.join(&out_dir).join("metrics.csv");
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "the first epoch never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
    // The error says what happened first, then what to do.
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
    assert!(line.starts_with("error: interrupted in epoch"), "{stderr}");
    assert!(line.contains("; a checkpoint was written; continue with: ae-tch train --resume "));
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn resuming_with_a_different_model_or_data_is_refused_and_more_epochs_need_force() {
    let dir = tempdir();
    let run = dir.path().join("run");
    ae(dir.path(), &args(&run, "2")).ok();
    let resume = |extra: &[&str]| {
        let mut a = vec!["train", "--resume", run.to_str().unwrap()];
        a.extend_from_slice(extra);
        ae(dir.path(), &a)
    };
    resume(&["--latent", "9"]).fails_with(&["cannot resume", "--latent 9 (the run has 8)"]);
    resume(&["--color", "rgb"]).fails_with(&["--color rgb (the run has gray)"]);
    resume(&["--resize", "14x14"]).fails_with(&["--resize 14x14 (the run has 28x28)"]);
    resume(&["--mode", "reconstruct", "--force"]).fails_with(&["--mode \"reconstruct\""]);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    resume(&["--data", other.to_str().unwrap()]).fails_with(&["--data", "(the run has"]);
    resume(&[]).fails_with(&["already trained all 2 epochs", "--epochs N --force"]);
    resume(&["--epochs", "3"]).fails_with(&["--epochs 3 (the run has 2)", "pass --force"]);
    resume(&["--epochs", "1", "--force"]).fails_with(&["fewer than the 2 epochs"]);
    resume(&["--epochs", "3", "--force", "--early-stop", "2"])
        .fails_with(&["--early-stop cannot be turned on when resuming"]);
    // Flags for layers the run does not have are refused, as on a first command line.
    resume(&["--epochs", "3", "--force", "--channels", "8"])
        .fails_with(&["--channels sets conv layers"]);
    // Flags that match the run are fine; more epochs with --force train on.
    resume(&["--epochs", "3", "--force", "--latent", "8", "--threads", "1"]).ok();
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 4, "three epochs:\n{rows}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(json["train"]["epochs"], 3);
    assert_eq!(json["outcome"]["epochs_run"], 3);
    ae(dir.path(), &["train", "--resume", "nowhere"]).fails_with(&["nowhere does not exist"]);
    let bare = dir.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    resume_in(dir.path(), &bare).fails_with(&["has no checkpoint.ot"]);
    std::fs::write(bare.join("checkpoint.ot"), b"garbage").unwrap();
    resume_in(dir.path(), &bare).fails_with(&["is not a readable checkpoint"]);
}

fn resume_in(cwd: &Path, run: &Path) -> Run {
    ae(cwd, &["train", "--resume", run.to_str().unwrap()])
}

#[test]
fn divergence_exits_with_code_3_shows_the_nan_and_keeps_the_last_checkpoint() {
    let dir = tempdir();
    let run = dir.path().join("run");
    ae(dir.path(), &args(&run, "2")).ok();
    let before = std::fs::read(run.join("checkpoint.ot")).unwrap();
    let out = ae(
        dir.path(),
        &["train", "--resume", run.to_str().unwrap(), "--epochs", "3", "--lr", "1e6", "--force"],
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let out =
        out.fails_with(&["training diverged in epoch 3, step", "try a lower --lr (now 1000000)"]);
    assert!(out.stderr.contains("the checkpoint after epoch 2 is kept"), "{}", out.stderr);
    assert_eq!(std::fs::read(run.join("checkpoint.ot")).unwrap(), before, "checkpoint untouched");
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last = rows.lines().last().unwrap();
    assert!(last.starts_with("3,NaN") || last.starts_with("3,inf"), "{rows}");
    // A fresh run that diverges before any checkpoint says so.
    let fresh = dir.path().join("fresh");
    let mut a = args(&fresh, "2");
    a.extend(["--lr", "1e6", "--grad-clip", "1"].map(String::from));
    let out = ae(dir.path(), &a);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    out.fails_with(&["diverged in epoch 1", "no checkpoint was written yet"]);
}

#[test]
fn a_full_disk_or_read_only_folder_is_a_clean_error_and_keeps_good_files() {
    let dir = tempdir();
    let run = dir.path().join("run");
    ae(dir.path(), &args(&run, "1")).ok();
    let model = std::fs::read(run.join("model.ot")).unwrap();
    // ENOSPC on the weights file: the error names it, the old weights stay whole.
    let mut a = args(&run, "1");
    a.push("--force".into());
    let out = with_fault(dir.path(), &a, "enospc:model.ot");
    out.fails_with(&["writing", "model.ot", "No space left on device"]);
    assert_eq!(std::fs::read(run.join("model.ot")).unwrap(), model);
    assert!(temp_files(&run).is_empty());
    // --force removed the old model.json before training, so the folder never pairs it
    // with new weights; a complete run goes back in for the next case.
    assert!(!run.join("model.json").exists());
    ae(dir.path(), &a).ok();
    let model = std::fs::read(run.join("model.ot")).unwrap();

    // A read-only run folder, as a user without write permission sees it (root ignores
    // permissions, so as root the binary runs as nobody through setpriv).
    use std::os::unix::fs::PermissionsExt;
    let perm = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    perm(dir.path(), 0o755).unwrap();
    perm(&run, 0o555).unwrap();
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    let out: Run = cmd.args(&a).current_dir(dir.path()).output().unwrap().into();
    perm(&run, 0o755).unwrap();
    let out = out.fails_with(&[run.join("model.json").to_str().unwrap()]);
    assert!(
        out.stderr.contains("Permission denied") || out.stderr.contains("not writable"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(run.join("model.ot")).unwrap(), model, "weights untouched");
    assert!(run.join("model.json").is_file(), "model.json untouched");
}
