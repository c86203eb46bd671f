//! How the binary sets up libtorch's threads before its libraries start.

use crate::util::{ae, bin};
use std::process::Command;

/// What libgomp read at load, as `OMP_DISPLAY_ENV=verbose` prints it, for the binary
/// started with `env` (and without any spin setting of the test's own environment).
fn libgomp_spin(env: &[(&str, &str)]) -> String {
    let out = Command::new(bin())
        .arg("--version")
        .env_remove("GOMP_SPINCOUNT")
        .env_remove("OMP_WAIT_POLICY")
        .env("OMP_DISPLAY_ENV", "verbose")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ae-tch "));
    let shown = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = shown.lines().find(|l| l.trim_start().starts_with("GOMP_SPINCOUNT = "));
    line.unwrap_or_else(|| panic!("no GOMP_SPINCOUNT in:\n{shown}")).trim().to_string()
}

#[test]
fn libgomp_reads_the_spin_limit_set_before_it_loads() {
    let ours = format!("GOMP_SPINCOUNT = '{}'", ae_tch::omp::spin_count());
    assert_eq!(libgomp_spin(&[]), ours);
    // A user's choice of either variable stands.
    assert_eq!(libgomp_spin(&[("GOMP_SPINCOUNT", "1234")]), "GOMP_SPINCOUNT = '1234'");
    assert_ne!(libgomp_spin(&[("OMP_WAIT_POLICY", "active")]), ours);
    assert_eq!(libgomp_spin(&[("OMP_WAIT_POLICY", "passive")]), "GOMP_SPINCOUNT = '0'");
}

#[test]
fn a_network_too_small_to_share_takes_one_thread_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut table = String::from("a,b,c\n");
    for i in 0..60 {
        table += &format!("{},{},{}\n", i % 7, (i * 3) % 5, i % 2);
    }
    std::fs::write(d.join("t.csv"), table).unwrap();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "t.csv", "--out", out, "--epochs", "1"];
        args.extend(["--ensemble", "1", "--device", "cpu"]);
        args.extend(extra);
        ae(d, &args).ok().stderr
    };
    // 3 features through 64-32: every tensor of a step is far below libtorch's grain.
    let chosen = train("one", &[]);
    assert!(chosen.contains(", --threads 1"), "{chosen}");
    let told = train("two", &["--threads", "2"]);
    assert!(!told.contains("--threads 1"), "{told}");
}
