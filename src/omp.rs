//! How long libtorch's OpenMP threads spin before they sleep.
//!
//! The wheel's libtorch runs its intra-op pool (and the Rust passes, `host::parallel_for`)
//! on GNU libgomp. Between parallel regions a libgomp thread busy-waits up to
//! `GOMP_SPINCOUNT` rounds (300,000 when neither it nor `OMP_WAIT_POLICY` is set: some
//! milliseconds) before it sleeps. On an idle machine that saves a wake-up per region; on
//! a machine whose cores other processes hold, a spinning thread burns the time slice its
//! partner needs to finish, and every region waits for the scheduler. A table of 3,373
//! rows trained in 1.3 s alone took 5.8–7.0 s beside two libtorch programs at the default
//! threads, against 3.3 s at one thread.
//!
//! libgomp reads the variables once, in its own initialiser, which the dynamic loader runs
//! before `main`: setting them in `main` changes nothing, and neither does `setenv` in an
//! executable's `.preinit_array` (the earliest code the loader runs), because libc's own
//! initialiser then resets the environment to the one the kernel passed. So `limit_spin`,
//! in the binary's `.preinit_array` (see main.rs), executes the binary again once with
//! `SPIN_ENTRY` in its environment, unless the user chose either variable: at that
//! point libraries are loaded and relocated but none has run its initialiser, so the
//! second start costs the loading alone (`ae-tch --version` 0.42 s → 0.47 s here, most of
//! it libtorch's own start). Same process, same arguments; where the exec fails the run goes on
//! with libgomp's default. Checked by the test
//! `threads::libgomp_reads_the_spin_limit_set_before_it_loads` (`OMP_DISPLAY_ENV` prints
//! what libgomp read); measured by `scripts/contention.sh`.

use std::ffi::{c_char, c_int, CStr};

/// How libgomp was told to wait in this process, from its environment (which libgomp
/// read at load): the variables set, with `SPIN_ENTRY` named as ae-tch's.
pub fn wait_setting() -> String {
    let set: Vec<String> = ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"]
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| format!("{name}={v}")))
        .collect();
    match set.as_slice() {
        [] => "libgomp's default (GOMP_SPINCOUNT=300000)".into(),
        [one] if SPIN_ENTRY.to_str().is_ok_and(|ours| ours == one) => {
            format!("{one} (ae-tch's: threads sleep soon where other processes hold the cores)")
        }
        _ => set.join(", "),
    }
}

/// The variables that, set by the user, leave libgomp's spinning as they say.
const USER_CHOICES: [&[u8]; 2] = [b"GOMP_SPINCOUNT=", b"OMP_WAIT_POLICY="];

/// The rounds a libgomp thread spins before it sleeps, as an environment entry (unless the
/// user set `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`). W1 on 2 idle cores, two sessions of runs:
/// 300,000 (libgomp's own) 39.7k–48.0k samples/s, 10,000 38.5k–43.9k, 1,000 25.8k–26.3k,
/// `OMP_WAIT_POLICY=passive` 22.3k–23.5k, one thread 27.6k–29.8k; a third, interleaved:
/// 300,000 38.9k–41.8k, 100,000 40.6k–42.3k, 10,000 40.3k–41.4k, one thread 26.9k–27.5k.
pub const SPIN_ENTRY: &CStr = c"GOMP_SPINCOUNT=10000";

/// The rounds `SPIN_ENTRY` sets.
pub fn spin_count() -> &'static str {
    let entry = SPIN_ENTRY.to_str().unwrap_or_default();
    entry.split_once('=').map_or("", |(_, n)| n)
}

extern "C" {
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
        -> c_int;
}

/// Executes this binary again with `SPIN_ENTRY` added to the environment,
/// unless `envp` holds a user's choice of either variable (after the exec it holds ours).
/// Meant for an executable's `.preinit_array`, where glibc calls it with `argc`, `argv` and
/// `envp` before any library's initialiser; returns only where nothing was done or the
/// exec failed.
///
/// # Safety
/// `argv` and `envp` are null or point to null-terminated arrays of C strings, as the
/// loader passes them.
pub unsafe extern "C" fn limit_spin(
    _argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    if argv.is_null() || envp.is_null() {
        return;
    }
    // SAFETY: the loader's `envp` is a null-terminated array of null-terminated strings.
    let env = unsafe { entries(envp) };
    // SAFETY: as for `envp`.
    let chosen = env.iter().any(|&e| {
        let var = unsafe { CStr::from_ptr(e) }.to_bytes();
        USER_CHOICES.iter().any(|prefix| var.starts_with(prefix))
    });
    // Started through the loader (`ld-linux-x86-64.so.2 ae-tch ...`), /proc/self/exe is the
    // loader, which would read the first argument as the program: leave the spin alone.
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let through_loader = exe.as_ref().and_then(|p| p.file_name()).is_some_and(|name| {
        name.to_string_lossy().starts_with("ld-") || name.to_string_lossy().starts_with("ld.so")
    });
    if chosen || exe.is_none() || through_loader {
        return;
    }
    let mut with_spin = env;
    with_spin.push(SPIN_ENTRY.as_ptr());
    with_spin.push(std::ptr::null());
    // SAFETY: both arrays are null-terminated arrays of C strings that outlive the call
    // (`argv` is the loader's; `with_spin` is alive until execve returns, on failure).
    unsafe { execve(c"/proc/self/exe".as_ptr(), argv, with_spin.as_ptr()) };
}

/// The entries of a null-terminated array of C strings.
///
/// # Safety
/// `list` points to a null-terminated array.
unsafe fn entries(list: *const *const c_char) -> Vec<*const c_char> {
    let mut out = Vec::new();
    let mut at = list;
    // SAFETY: the array ends with a null pointer, read before going past it.
    unsafe {
        while !(*at).is_null() {
            out.push(*at);
            at = at.add(1);
        }
    }
    out
}
