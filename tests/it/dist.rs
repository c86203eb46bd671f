//! Data-parallel training under the venv's torchrun (c10d Gloo on loopback): two ranks
//! train what one process trains, one rank equals the plain run bit for bit, a killed rank
//! stops its group with the checkpoint intact, and a rank that never arrives is named.

use crate::util::{ae, mnist, quick_train, read_json, tempdir, Run};
use ae_tch::run_store::RunDir;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tch::Device;

fn torchrun() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/torchrun");
    assert!(path.is_file(), "{} is missing: run scripts/setup.sh", path.display());
    path
}

/// `torchrun --standalone --nproc-per-node N ae-tch ARGS` (a free port of its own).
fn launch(cwd: &Path, ranks: usize, args: &[String]) -> Command {
    let mut c = Command::new(torchrun());
    c.args(["--standalone", "--no-python", "--nproc-per-node", &ranks.to_string()])
        .arg(crate::util::bin())
        .args(args)
        .current_dir(cwd);
    c
}

/// The per-epoch (train, validation) losses of a run.
fn losses(run: &Path) -> Vec<(f64, f64)> {
    let rows = ae_tch::run_store::read_metrics(&run.join("metrics.csv")).unwrap();
    rows.iter().map(|r| (r.train_loss, r.val_loss.unwrap())).collect()
}

fn flags(out: &Path) -> Vec<String> {
    // Global batch 128 over 3000 rows: 24 steps an epoch, the last one short (56 rows).
    let mut f = quick_train(&mnist(), out, &["--batch-size", "128", "--epochs", "3"]);
    f.extend(["--no-tensorboard".into(), "--dist-timeout".into(), "30".into()]);
    f
}

/// Two ranks with a global batch of 128 against one process with batch 128, same seed:
/// the per-epoch losses agree to 1e-6 relative and the weights to 1e-5. They need not be
/// equal bit for bit: each rank's gradient is the mean over its 64 rows, and the two
/// halves are then weighted and summed, and wherever that is a different order of float32
/// additions than one process's (the hand-written step sums 8-row blocks as a tree, which
/// keeps two halves of 8 blocks each, as here; the matrix products are libtorch's), the
/// rounding (≈ 1e-7 relative a step) grows over 72 steps of training but stays far below
/// these bounds. Here the train losses came out equal bit for bit. Both run
/// folders load, and `eval` agrees to the same tolerance.
#[test]
fn two_ranks_train_what_one_process_trains() {
    let dir = tempdir();
    let d = dir.path();
    let (one, two) = (d.join("one"), d.join("two"));
    ae(d, &flags(&one)).ok();
    let out = launch(d, 2, &flags(&two)).output().unwrap();
    let run = Run::from(out).ok();
    assert!(
        run.stderr.contains("rank 0 of 2") && run.stderr.contains("c10d Gloo"),
        "{}",
        run.stderr
    );
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 3);
    for ((ta, va), (tb, vb)) in a.iter().zip(&b) {
        assert!((ta - tb).abs() <= 1e-6 * ta, "train {ta} vs {tb}");
        assert!((va - vb).abs() <= 1e-6 * va, "validation {va} vs {vb}");
    }
    let weights = |run: &Path| {
        let (_, vs, _) = RunDir::open(run).unwrap().load_model(Device::Cpu).unwrap();
        let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|x, y| x.0.cmp(&y.0));
        named
    };
    for ((name, wa), (_, wb)) in weights(&one).iter().zip(&weights(&two)) {
        let diff = (wa - wb).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: max |difference| {diff}");
    }
    let mse = |run: &Path| {
        let r = ae(d, &["eval", "--run", run.to_str().unwrap(), "--threads", "1", "--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["mse"].as_f64().unwrap()
    };
    let (ma, mb) = (mse(&one), mse(&two));
    assert!((ma - mb).abs() <= 1e-6 * ma, "test mse {ma} vs {mb}");
    let manifest = read_json(&two.join("model.json"));
    assert_eq!(manifest["data"]["train_images"], 2700);
}

/// World size 1 under torchrun is the plain run, bit for bit: same losses, same weights.
#[test]
fn one_rank_under_torchrun_equals_the_plain_run_bit_for_bit() {
    let dir = tempdir();
    let d = dir.path();
    let (plain, one) = (d.join("plain"), d.join("one"));
    ae(d, &flags(&plain)).ok();
    Run::from(launch(d, 1, &flags(&one)).output().unwrap()).ok();
    assert_eq!(losses(&plain), losses(&one));
    let bytes = |run: &Path| std::fs::read(run.join("model.ot")).unwrap();
    assert!(bytes(&plain) == bytes(&one), "model.ot differs");
}

/// The process ids of ae-tch processes writing `out` with RANK=`rank`.
fn rank_pids(out: &Path, rank: usize) -> Vec<i32> {
    let needle = out.to_str().unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has = |bytes: &[u8], s: &str| bytes.split(|&b| b == 0).any(|part| part == s.as_bytes());
        if has(&cmdline, needle) && has(&environ, &format!("RANK={rank}")) {
            pids.push(pid);
        }
    }
    pids
}

/// A rank killed mid-run: the survivor stops well within --dist-timeout with a message
/// naming the dead rank (or, signalled by torchrun, after its grace period), exits non-zero, and leaves the last checkpoint intact; resumed
/// under torchrun, the run finishes with the losses and weights of the run never killed.
#[test]
fn a_killed_rank_stops_its_group_and_the_run_resumes() {
    let dir = tempdir();
    let d = dir.path();
    let out = d.join("killed");
    let mut args = quick_train(&mnist(), &out, &["--limit", "8000", "--epochs", "40"]);
    args.extend(["--hidden", "512", "--no-tensorboard", "--dist-timeout", "30"].map(String::from));
    let child = launch(d, 2, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !out.join("checkpoint.ot").is_file() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let victims = rank_pids(&out, 1);
    assert_eq!(victims.len(), 1, "one rank-1 process: {victims:?}");
    let killed = Instant::now();
    Command::new("kill").args(["-9", &victims[0].to_string()]).status().unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(30), "the group took {took:?} to stop");
    assert!(run.code.is_some_and(|c| c != 0), "torchrun exit {:?}", run.code);
    // Rank 0 either finds rank 1 gone in the exchange and names it, or torchrun's agent
    // sees the death first and signals rank 0, which then gives its group the grace
    // period and leaves (which one comes first depends on the machine's load).
    let named = run.stderr.contains("rank 0 of 2: rank 1 stopped");
    let signalled = run.stderr.contains("the other ranks did not finish the step within");
    assert!(named || signalled, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!out.join("model.json").exists());
    // The checkpoint is whole: the run resumes from it and finishes.
    let mut again: Vec<String> =
        ["train", "--resume", out.to_str().unwrap(), "--epochs", "3"].map(String::from).to_vec();
    again.extend(["--force", "--threads", "1", "--dist-timeout", "30"].map(String::from));
    let resumed = Run::from(launch(d, 2, &again).output().unwrap()).ok();
    assert!(resumed.stderr.contains("resuming"), "{}", resumed.stderr);
    assert_eq!(losses(&out).len(), 3);
    assert!(out.join("model.json").is_file());
    // Exactly what the group computes without the kill (a constant rate: the run's length
    // does not change its steps).
    let whole = d.join("whole");
    let mut args = quick_train(&mnist(), &whole, &["--limit", "8000", "--epochs", "3"]);
    args.extend(["--hidden", "512", "--no-tensorboard", "--dist-timeout", "30"].map(String::from));
    Run::from(launch(d, 2, &args).output().unwrap()).ok();
    assert_eq!(losses(&out), losses(&whole));
    let bytes = |run: &Path| std::fs::read(run.join("model.ot")).unwrap();
    assert!(bytes(&out) == bytes(&whole), "the resumed run's weights differ");
}

/// A free TCP port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What torchrun would set for `rank` of two on loopback (without its agent store).
fn rank_env(rank: &str, port: &str) -> [(String, String); 4] {
    [("RANK", rank), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", port)]
        .map(|(k, v)| (k.to_string(), v.to_string()))
}

/// Without torchrun's agent, rank 0 serves the store; a rank that never comes is named
/// after --dist-timeout, and ranks started with different settings are told so.
#[test]
fn missing_and_mismatched_ranks_are_named() {
    let dir = tempdir();
    let d = dir.path();
    let port = free_port().to_string();
    let env = |rank: &str| rank_env(rank, &port);
    let out = d.join("alone");
    let mut args = flags(&out);
    args.extend(["--dist-timeout", "2"].map(String::from));
    let started = Instant::now();
    let mut alone = Command::new(crate::util::bin());
    let r = Run::from(alone.args(&args).envs(env("0")).current_dir(d).output().unwrap());
    r.fails_with(&["rank 1 of 2 did not join within 2 s", "--dist-timeout", &port]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!out.join("metrics.csv").exists());

    let port = free_port().to_string();
    let env = |rank: &str| rank_env(rank, &port);
    let out = d.join("mismatch");
    let mut first = flags(&out);
    first.extend(["--dist-timeout", "10"].map(String::from));
    let mut second = first.clone();
    second.extend(["--lr", "0.01"].map(String::from));
    let spawn = |args: &[String], rank: &str| {
        Command::new(crate::util::bin())
            .args(args)
            .envs(env(rank))
            .current_dir(d)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (r0, r1) = (spawn(&first, "0"), spawn(&second, "1"));
    let r1 = Run::from(r1.wait_with_output().unwrap());
    let r0 = Run::from(r0.wait_with_output().unwrap());
    r1.fails_with(&["rank 1's settings differ from rank 0's", "same flags"]);
    assert!(r0.code.is_some_and(|c| c != 0), "rank 0: {:?}\n{}", r0.code, r0.stderr);
}

/// What one process can do and a group cannot yet is refused before the first step.
#[test]
fn a_trimmed_loss_is_refused_across_ranks() {
    let dir = tempdir();
    let d = dir.path();
    let shuttle = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/shuttle/shuttle.csv");
    let out = d.join("trim");
    let mut args = quick_train(&shuttle, &out, &["--epochs", "1", "--label-column", "class"]);
    args.extend(["--no-tensorboard", "--dist-timeout", "30"].map(String::from));
    let r = Run::from(launch(d, 2, &args).output().unwrap());
    r.fails_with(&["--trim 0.2", "pass --trim 0"]);
}
