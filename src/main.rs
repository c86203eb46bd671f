//! The `ae-tch` binary: run the library, print the error chain, set the exit code:
//! 0 success, 1 error, 2 bad usage (clap's parse errors, `config::Usage` and an
//! `invalid::Invalid` marked as usage: a flag value
//! or combination that cannot work), 3 training diverged, 130 interrupted (a checkpoint
//! was written).

use ae_tch::train::Stopped;
use std::process::ExitCode;

/// libgomp reads its spin limit in its initialiser, before `main`; the loader runs an
/// executable's preinit functions before any library's (see omp.rs).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".preinit_array"]
static LIMIT_SPIN: unsafe extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = ae_tch::omp::limit_spin;

fn main() -> ExitCode {
    // Before libtorch starts its threads, which inherit the mode (see fpu.rs).
    ae_tch::fpu::flush_denormals();
    ae_tch::host::keep_freed_memory();
    match ae_tch::commands::run() {
        Ok(()) => ExitCode::SUCCESS,
        // `ae-tch eval | head`: a closed pipe is not a failure.
        Err(failure) if is_broken_pipe(&failure.error) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message());
            let e = failure.error;
            let usage = |c: &(dyn std::error::Error + 'static)| {
                c.is::<ae_tch::config::Usage>()
                    || c.downcast_ref::<ae_tch::invalid::Invalid>().is_some_and(|i| i.usage)
            };
            if e.chain().any(usage) {
                return ExitCode::from(2);
            }
            match e.chain().find_map(|c| c.downcast_ref::<Stopped>()) {
                Some(Stopped::Diverged { .. }) => ExitCode::from(3),
                Some(Stopped::Interrupted { .. }) => ExitCode::from(130),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
