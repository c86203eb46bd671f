//! `ae-tch data fetch mnist|fashion-mnist`: downloads a dataset's four IDX files from
//! its public mirrors (or `--mirror`), verifies them and reports what it did per file.

use crate::cli::{DataFetchArgs, FetchDataset};
use crate::data::fetch::{self, Dataset, FileSpec, Matched};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// What happened to one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: &'static str,
    /// "present" (already there and valid), "downloaded" or "failed".
    pub status: &'static str,
    pub bytes: Option<u64>,
    pub matched: Option<Matched>,
    pub url: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    dataset: &'static str,
    dir: &'a Path,
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
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    sweep_partial_downloads(&dir, set);

    let agent = fetch::agent();
    // Why each mirror is unreachable, once it is: it is not asked for the other files.
    let mut down: Vec<Option<String>> = vec![None; mirrors.len()];
    let files: Vec<FileReport> =
        set.files.iter().map(|spec| fetch_one(&agent, &mirrors, &mut down, &dir, spec)).collect();

    if args.json {
        let report = Report { dataset: set.name, dir: &dir, files: &files };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        super::print(&human(set, &dir, &files))?;
    }
    let failed: Vec<String> =
        files.iter().filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.file))).collect();
    if !failed.is_empty() && down.iter().all(Option::is_some) {
        let why: Vec<String> = mirrors
            .iter()
            .zip(&down)
            .map(|(m, e)| format!("{m}: {}", e.as_deref().unwrap_or("")))
            .collect();
        bail!(
            "{} of {} files of {} could not be fetched into {}: no mirror could be reached \
             (offline? --mirror URL downloads from another copy):\n  {}",
            failed.len(),
            files.len(),
            set.name,
            dir.display(),
            why.join("\n  ")
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} files of {} could not be fetched into {}:\n  {}",
            failed.len(),
            files.len(),
            set.name,
            dir.display(),
            failed.join("\n  ")
        );
    }
    Ok(())
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
        status: "failed",
        bytes: None,
        matched: None,
        url: None,
        error: None,
    };
    if dest.exists() {
        match fetch::verify(&dest, spec, None) {
            Ok(matched) => {
                report.status = "present";
                report.bytes = std::fs::metadata(&dest).ok().map(|m| m.len());
                report.matched = Some(matched);
                return report;
            }
            Err(e) => crate::note(format!(
                "{}: present but fails its check ({e:#}); downloading it again",
                dest.display()
            )),
        }
    }
    let mut errors = Vec::new();
    for (i, base) in mirrors.iter().enumerate() {
        if down[i].is_some() {
            continue;
        }
        let url = fetch::file_url(base, spec.name);
        let bar = progress_bar(spec.name);
        let result = fetch::download(agent, &url, &dest, spec, &mut |received, total| {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(received);
        });
        bar.finish_and_clear();
        match result {
            Ok((bytes, matched)) => {
                report.status = "downloaded";
                report.bytes = Some(bytes);
                report.matched = Some(matched);
                report.url = Some(url);
                return report;
            }
            Err(e) => {
                if let Some(why) = e.downcast_ref::<fetch::Unreachable>() {
                    down[i] = Some(why.to_string());
                }
                let line = format!("{url}: {e:#}");
                if down[i + 1..].iter().any(Option::is_none) {
                    crate::note(format!("{line}; trying the next mirror"));
                }
                errors.push(line);
            }
        }
    }
    if errors.is_empty() {
        errors.push("no mirror could be reached".to_string());
    }
    report.error = Some(errors.join("; "));
    report
}

/// A byte-counting bar on stderr; hidden under --quiet and when stderr is not a terminal.
fn progress_bar(name: &str) -> ProgressBar {
    let bar = ProgressBar::no_length();
    if crate::QUIET.load(Ordering::Relaxed) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}

/// Temporary files a killed earlier fetch left behind (`.NAME.XXXXXX.tmp`, see
/// `checkpoint::with_temp_file`), for this dataset's files only.
fn sweep_partial_downloads(dir: &Path, set: &Dataset) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = set.files.iter().any(|f| name.starts_with(&format!(".{}.", f.name)));
        if ours && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn human(set: &Dataset, dir: &Path, files: &[FileReport]) -> String {
    let mut out = format!("{} in {}\n", set.name, dir.display());
    for f in files {
        let size = f.bytes.map_or(String::new(), |b| format!("{:.1} MB", b as f64 / 1e6));
        let how = match f.matched {
            Some(Matched::Archive) => "archive SHA-256 ok",
            Some(Matched::Content) => "content SHA-256 ok",
            None => "",
        };
        let what = match (f.status, &f.url) {
            ("downloaded", Some(url)) => format!("downloaded from {url}, {how}"),
            ("present", _) => format!("present, {how}"),
            _ => "FAILED".to_string(),
        };
        out += &format!("  {:<28} {size:>9}  {what}\n", f.file);
    }
    out
}
