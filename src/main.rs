//! The `ae-tch` binary: run the library, print the error chain, set the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ae_tch::run() {
        Ok(()) => ExitCode::SUCCESS,
        // `ae-tch eval | head`: a closed pipe is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
