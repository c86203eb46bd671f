//! `ae-tch data fetch mnist|fashion-mnist`: downloads a dataset's four IDX files from
//! its public mirrors (or `--mirror`), verifies them and reports what it did per file.

use crate::cli::{DataFetchArgs, FetchDataset};
use crate::data::fetch::{self, Dataset, FileSpec, Matched};
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file's error when every mirror it could come from gave no response.
const UNREACHABLE: &str = "no mirror could be reached";

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Already there and valid: not downloaded.
    Present,
    Downloaded,
    Failed,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: &'static str,
    pub status: Status,
    pub bytes: Option<u64>,
    pub matched: Option<Matched>,
    pub url: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    dataset: &'static str,
    dir: String,
    files: &'a [FileReport],
}

pub fn run(args: DataFetchArgs) -> Result<()> {
    let set = match args.dataset {
        FetchDataset::Mnist => &fetch::MNIST,
        FetchDataset::FashionMnist => &fetch::FASHION_MNIST,
    };
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(set.default_dir));
    let mirrors: Vec<String> = if args.mirror.is_empty() {
        set.mirrors.iter().map(|m| m.to_string()).collect()
    } else {
        for m in &args.mirror {
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                bail!("--mirror {m}: expected an http:// or https:// URL");
            }
        }
        args.mirror
    };
    // A folder this command creates is removed again if nothing lands in it.
    let created = !dir.exists();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Partial downloads of a killed fetch; not those of a fetch running beside this one,
    // which keeps writing (a read stalls out after 60 s).
    let names = set.files.map(|f| f.name);
    crate::atomic::sweep_temp_files(&dir, Some(&names), Duration::from_secs(600));

    let agent = fetch::agent();
    // Why each mirror is unreachable, once it is: it is not asked for the other files.
    let mut down: Vec<Option<String>> = vec![None; mirrors.len()];
    let files: Vec<FileReport> =
        set.files.iter().map(|spec| fetch_one(&agent, &mirrors, &mut down, &dir, spec)).collect();

    if args.json {
        let report =
            Report { dataset: set.name, dir: dir.to_string_lossy().into_owned(), files: &files };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        super::print(&human(set, &dir, &files))?;
    }
    let failed = files.iter().filter(|f| f.status == Status::Failed).count();
    if failed == 0 {
        return Ok(());
    }
    if created {
        let _ = std::fs::remove_dir(&dir); // only when empty
    }
    // The errors of servers that answered, per file; then, if every mirror is down, why.
    let mut lines: Vec<String> = files
        .iter()
        .filter_map(|f| f.error.as_ref().filter(|e| *e != UNREACHABLE).map(|e| (f.file, e)))
        .map(|(file, e)| format!("{file}: {e}"))
        .collect();
    let mut headline = "";
    if down.iter().all(Option::is_some) {
        headline =
            ": no mirror could be reached (offline? --mirror URL downloads from another copy)";
        let why = down.iter().map(|e| e.as_deref().unwrap_or_default());
        lines.extend(mirrors.iter().zip(why).map(|(m, e)| format!("{m}: {e}")));
    }
    bail!(
        "{failed} of {} files of {} could not be fetched into {}{headline}:\n  {}",
        files.len(),
        set.name,
        dir.display(),
        lines.join("\n  ")
    )
}

/// Keeps a present, valid file; otherwise tries each mirror until one gives a file that
/// verifies.
fn fetch_one(
    agent: &ureq::Agent,
    mirrors: &[String],
    down: &mut [Option<String>],
    dir: &Path,
    spec: &FileSpec,
) -> FileReport {
    let dest = dir.join(spec.name);
    let mut report = FileReport {
        file: spec.name,
        status: Status::Failed,
        bytes: None,
        matched: None,
        url: None,
        error: None,
    };
    if dest.exists() {
        if let Some(matched) = verify_present(&dest, spec) {
            report.status = Status::Present;
            report.bytes = std::fs::metadata(&dest).ok().map(|m| m.len());
            report.matched = Some(matched);
            return report;
        }
    }
    let mut errors = Vec::new();
    for (i, base) in mirrors.iter().enumerate() {
        if down[i].is_some() {
            continue;
        }
        let url = fetch::file_url(base, spec.name);
        match download(agent, &url, &dest, spec) {
            Ok((bytes, matched)) => {
                report.status = Status::Downloaded;
                report.bytes = Some(bytes);
                report.matched = Some(matched);
                report.url = Some(url);
                return report;
            }
            Err(e) => {
                let next = down[i + 1..].iter().any(Option::is_none);
                match e.downcast_ref::<fetch::Unreachable>() {
                    // Said once for the mirror, which is not asked for the other files.
                    Some(why) => {
                        if next {
                            crate::log::note(format!(
                                "{base}: no response ({why}); trying the next mirror"
                            ));
                        }
                        down[i] = Some(why.to_string());
                    }
                    None => {
                        let line = format!("{url}: {e:#}");
                        if next {
                            crate::log::note(format!("{line}; trying the next mirror"));
                        }
                        errors.push(line);
                    }
                }
            }
        }
    }
    report.error =
        Some(if errors.is_empty() { UNREACHABLE.to_string() } else { errors.join("; ") });
    report
}

/// How a file already at `dest` verifies; `None`, with a note, when it fails its check
/// (it is then downloaded again).
fn verify_present(dest: &Path, spec: &FileSpec) -> Option<Matched> {
    match fetch::verify(dest, spec, None) {
        Ok(matched) => Some(matched),
        Err(e) => {
            crate::log::note(format!(
                "{}: present but fails its check ({e:#}); downloading it again",
                dest.display()
            ));
            None
        }
    }
}

/// Downloads `url` to `dest` and verifies it, with a progress bar while it runs.
fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    spec: &FileSpec,
) -> Result<(u64, Matched)> {
    let bar = crate::session::progress_bar(
        ProgressBar::no_length(),
        "{prefix:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    bar.set_prefix(spec.name);
    let result = fetch::download(agent, url, dest, spec, &mut |received, total| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(received);
    });
    bar.finish_and_clear();
    result
}

/// 9,912,422 bytes as "9.9 MB", 28,881 as "28.9 kB", 8 as "8 B".
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

fn human(set: &Dataset, dir: &Path, files: &[FileReport]) -> String {
    let mut out = format!("{} in {}\n", set.name, dir.display());
    for f in files {
        let size = f.bytes.map_or(String::new(), human_size);
        let how = match f.matched {
            Some(Matched::Archive) => "archive SHA-256 ok",
            Some(Matched::Content) => "content SHA-256 ok",
            None => "",
        };
        let what = match f.status {
            Status::Downloaded => {
                format!("downloaded from {}, {how}", f.url.as_deref().unwrap_or(""))
            }
            Status::Present => format!("present, {how}"),
            Status::Failed => "FAILED".to_string(),
        };
        out += &format!("  {:<28} {size:>9}  {what}\n", f.file);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label files are kilobytes: "0.0 MB" said nothing.
    #[test]
    fn sizes_read_in_their_own_unit() {
        assert_eq!(human_size(9_912_422), "9.9 MB");
        assert_eq!(human_size(28_881), "28.9 kB");
        assert_eq!(human_size(8), "8 B");
    }
}
