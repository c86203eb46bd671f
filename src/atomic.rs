//! Atomic writes: every artefact is written to a temporary file in its folder, synced and
//! renamed over its final name, so a crash leaves the old file or the new one, never half of
//! one (`AE_TCH_FAULT` injects an abort before the rename, or a full disk, for the tests).

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    with_temp_file(path, |tmp| {
        let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(tmp)?;
        f.write_all(bytes)?;
        Ok(())
    })
}

/// Removes the temporary files [`with_temp_file`] left in `dir` when its process was
/// killed: those for the targets in `names` (all when `None`) untouched for longer than
/// `min_age` (a nonzero age spares the files of another process still writing them).
pub fn sweep_temp_files(dir: &Path, names: Option<&[&str]>, min_age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(target) = name.strip_prefix('.').filter(|_| name.ends_with(".tmp")) else {
            continue;
        };
        let ours = names.is_none_or(|ns| ns.iter().any(|n| target.starts_with(&format!("{n}."))));
        let age = || entry.metadata().and_then(|m| m.modified()).ok()?.elapsed().ok();
        if ours && (min_age.is_zero() || age().is_some_and(|a| a > min_age)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Lets `write` fill a temporary file next to `path`, then syncs it and renames it over
/// `path`, and returns what `write` returned. On any error the temporary file is removed
/// and `path` is untouched.
pub fn with_temp_file<T>(path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("writing {}: folder {} does not exist", path.display(), dir.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| {
            format!("writing {}: cannot create a file in {}", path.display(), dir.display())
        })?;
    let fault = fault(&name);
    if fault == Some(Fault::WriteError) {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        return Err(full).with_context(|| format!("writing {}", path.display()));
    }
    let written = write(tmp.path()).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(tmp.path())
        .and_then(|f| {
            // tempfile creates files private (0600); artefacts are ordinary files.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
            f.sync_all()
        })
        .with_context(|| format!("writing {}", path.display()))?;
    if fault == Some(Fault::Abort) {
        std::process::abort();
    }
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    // The rename itself survives a power loss only once the folder is synced.
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(written)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Abort,
    WriteError,
}

/// Fault injection for the tests, from `AE_TCH_FAULT`: `abort:FILE:N` aborts the process
/// (like kill -9) on the N-th write of FILE, after the temporary file is complete and
/// synced and before it is renamed into place; `enospc:FILE` fails every write of FILE
/// as a full disk would.
fn fault(name: &str) -> Option<Fault> {
    static WRITES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let spec = std::env::var("AE_TCH_FAULT").ok()?;
    let mut parts = spec.split(':');
    let (kind, file) = (parts.next()?, parts.next()?);
    if file != name {
        return None;
    }
    match kind {
        "enospc" => Some(Fault::WriteError),
        "abort" => {
            let nth: usize = parts.next()?.parse().ok()?;
            let mut writes = WRITES.lock().unwrap_or_else(|e| e.into_inner());
            writes.push(name.to_string());
            (writes.iter().filter(|w| *w == name).count() == nth).then_some(Fault::Abort)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_the_named_and_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = [".a.gz.X1.tmp", ".ab.gz.X2.tmp", ".b.gz.X3.tmp", "a.gz", ".a.gz.keep"];
        for f in files {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let left = || {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        // Just written: younger than the minimum age, so another process may own them.
        sweep_temp_files(dir.path(), Some(&["a.gz"]), Duration::from_secs(600));
        assert_eq!(left().len(), files.len());
        sweep_temp_files(dir.path(), Some(&["a.gz"]), Duration::ZERO);
        assert_eq!(left(), [".a.gz.keep", ".ab.gz.X2.tmp", ".b.gz.X3.tmp", "a.gz"]);
        sweep_temp_files(dir.path(), None, Duration::ZERO);
        assert_eq!(left(), [".a.gz.keep", "a.gz"]);
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let failed = with_temp_file(&p, |_| -> Result<()> { bail!("disk full") });
        assert!(format!("{:#}", failed.unwrap_err()).contains("disk full"));
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
