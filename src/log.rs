//! The log sink: progress and notes, silenced by `--quiet`. At the bottom of the crate, so
//! that the library's lower floors (data reading) can note what they skip without reaching
//! up to the command layer. The command layer passes the sink in once per process
//! (`install`: the binary's is stderr); until one is installed, lines go to stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// Where log lines go.
pub trait Sink: Send + Sync {
    fn line(&self, line: &str);
}

/// Lines on stderr, as the binary shows them.
pub struct Stderr;

impl Sink for Stderr {
    fn line(&self, line: &str) {
        eprintln!("{line}");
    }
}

static SINK: RwLock<Option<Box<dyn Sink>>> = RwLock::new(None);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sends every later log line to `sink` (the command layer's choice); the sink it replaces.
pub fn install(sink: Box<dyn Sink>) -> Option<Box<dyn Sink>> {
    let mut slot = SINK.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    slot.replace(sink)
}

/// The notes ("note: …") said so far to the installed sink: a file read twice by one
/// command is noted once.
static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Silences (or restores) every later log line: `--quiet`, or a data-parallel rank other
/// than 0.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether log lines are silenced.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A log line (progress, notes) to the installed sink, unless silenced; a note
/// ("note: …") said before is not said again.
pub fn note(line: impl std::fmt::Display) {
    if quiet() {
        return;
    }
    let line = line.to_string();
    if line.starts_with("note: ") {
        let mut said = SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if said.contains(&line) {
            return;
        }
        said.push(line.clone());
    }
    let slot = SINK.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    match slot.as_deref() {
        Some(sink) => sink.line(&line),
        None => Stderr.line(&line),
    }
}

/// "1 row", "3 rows": a count with its noun, for messages.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A sink that keeps its lines, for tests of what the library notes.
    #[derive(Clone, Default)]
    pub(crate) struct Kept(pub Arc<Mutex<Vec<String>>>);

    impl Sink for Kept {
        fn line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    /// The lines `f` notes (and any other test's meanwhile), through a sink installed for it.
    pub(crate) fn lines_of(f: impl FnOnce()) -> Vec<String> {
        let kept = Kept::default();
        let before = install(Box::new(kept.clone()));
        f();
        match before {
            Some(sink) => install(sink),
            None => SINK.write().unwrap().take(),
        };
        let lines = kept.0.lock().unwrap().clone();
        lines
    }

    #[test]
    fn a_note_is_said_once_and_other_lines_every_time() {
        let lines = lines_of(|| {
            for _ in 0..2 {
                note("note: read twice.csv once");
                note("epoch 1 of the log test");
            }
        });
        let ours: Vec<&String> =
            lines.iter().filter(|l| l.contains("once") || l.contains("log test")).collect();
        assert_eq!(
            ours,
            ["note: read twice.csv once", "epoch 1 of the log test", "epoch 1 of the log test"]
        );
    }
}
