//! The README and the guide (docs/guide/) as tests: every ```sh, ```bash and ```python block
//! not marked `no-run` runs, page by page and in order, in a fresh folder laid out as the
//! guide assumes; every `ae-tch` command written in any block uses flags its --help lists;
//! every page is in SUMMARY.md and every relative link and picture points at something.
//!
//! A page's folder holds links to the checkout's data/, tests/ and .venv/ and to the binary
//! under test as target/release/ae-tch; PATH starts with the
//! folder of the binary under test (so `ae-tch` is it) and the venv's bin/ (`python`,
//! `python3`); OMP_NUM_THREADS=1, so the pages share the cores and runs repeat. Blocks run
//! with `bash -euo pipefail`, each under a time limit, and a page stops at its first failing
//! block, naming the file, the block's line and its stderr.

use crate::util::{bin, tempdir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The kinds a fence may name. sh, bash and python run unless marked `no-run`; console
/// (a transcript with `$ ` prompts), text (what a command prints) and json never run.
const KINDS: [&str; 6] = ["sh", "bash", "python", "console", "text", "json"];
const RUNNABLE: [&str; 3] = ["sh", "bash", "python"];

/// Seconds one block may take before it counts as failed (the blocks take a few seconds;
/// this only catches one that would run for minutes).
const BLOCK_LIMIT_S: u32 = 120;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One fenced block of a Markdown page.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    kind: String,
    no_run: bool,
    code: String,
}

impl Block {
    fn runs(&self) -> bool {
        RUNNABLE.contains(&self.kind.as_str()) && !self.no_run
    }
}

/// The info string of a line that opens or closes a fenced block (three backticks, then
/// no backtick: a line that starts with inline code such as ```` ```sh ```` is text).
fn fence(line: &str) -> Option<&str> {
    let info = line.trim_start().strip_prefix("```")?.trim();
    (!info.contains('`')).then_some(info)
}

/// The fenced blocks of `text`; every fence must name one of `KINDS` and close.
fn blocks(text: &str, file: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let Some(info) = fence(line) else { continue };
        let mut words = info.split_whitespace();
        let kind = words.next().unwrap_or("").to_string();
        let no_run = words.any(|w| w == "no-run");
        assert!(
            KINDS.contains(&kind.as_str()),
            "{file}:{}: a block opens with ```{info}: name its kind, one of {KINDS:?} \
             (sh, bash and python run unless marked no-run)",
            i + 1
        );
        let mut code = String::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            if fence(l) == Some("") {
                closed = true;
                break;
            }
            code.push_str(l.get(indent.min(l.len() - l.trim_start().len())..).unwrap_or(l));
            code.push('\n');
        }
        assert!(closed, "{file}:{}: the block never closes", i + 1);
        out.push(Block { line: i + 1, kind, no_run, code });
    }
    out
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The last `n` lines of `s`, for failure messages.
fn tail(s: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(s);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `file`'s runnable blocks in order in one fresh folder; at least `at_least` must run.
fn run_page(file: &str, at_least: usize) {
    let text = read(file);
    let dir = tempdir();
    let d = dir.path();
    for link in ["data", "tests", "python", ".venv"] {
        std::os::unix::fs::symlink(root().join(link), d.join(link)).unwrap();
    }
    std::fs::create_dir_all(d.join("target/release")).unwrap();
    std::os::unix::fs::symlink(bin(), d.join("target/release/ae-tch")).unwrap();
    let bin_dir = Path::new(bin()).parent().unwrap();
    let venv_bin = root().join(".venv/bin");
    assert!(
        venv_bin.join("python3").exists(),
        "{} is missing: run scripts/setup.sh",
        venv_bin.display()
    );
    let path = std::env::join_paths(
        [bin_dir.to_path_buf(), venv_bin]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let start = Instant::now();
    let mut ran = 0;
    for block in blocks(&text, file).iter().filter(|b| b.runs()) {
        let (program, flags): (&str, &[&str]) = match block.kind.as_str() {
            "python" => ("python3", &["-c"]),
            _ => ("bash", &["-euo", "pipefail", "-c"]),
        };
        let t = Instant::now();
        let out = Command::new("timeout")
            .args(["-k", "5", &BLOCK_LIMIT_S.to_string(), program])
            .args(flags)
            .arg(&block.code)
            .current_dir(d)
            .env("PATH", &path)
            .env("OMP_NUM_THREADS", "1")
            .env("NO_COLOR", "1")
            .output()
            .expect("run timeout(1)");
        let code = out.status.code();
        let why = match code {
            Some(124) | Some(137) => format!("ran past {BLOCK_LIMIT_S} s"),
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        };
        assert!(
            out.status.success(),
            "{file}:{}: the ```{} block failed ({why}):\n{}--- stderr (last lines)\n{}\n--- stdout (last lines)\n{}",
            block.line,
            block.kind,
            block.code,
            tail(&out.stderr, 30),
            tail(&out.stdout, 10),
        );
        eprintln!("{file}:{}: ran in {:.1} s", block.line, t.elapsed().as_secs_f64());
        ran += 1;
    }
    eprintln!("{file}: {ran} blocks ran in {:.1} s", start.elapsed().as_secs_f64());
    assert!(
        ran >= at_least,
        "{file}: {ran} blocks ran, at least {at_least} expected: were blocks marked no-run or removed?"
    );
}

/// One test per page (cargo runs them side by side) and the list of pages.
macro_rules! pages {
    ($($test:ident: $file:literal at least $n:literal;)*) => {
        const PAGES: &[&str] = &[$($file),*];
        $(#[test] fn $test() { run_page($file, $n); })*
    };
}

pages! {
    readme: "README.md" at least 5;
    summary: "docs/guide/SUMMARY.md" at least 0;
    intro: "docs/guide/intro.md" at least 1;
    images: "docs/guide/images.md" at least 9;
    colour: "docs/guide/colour.md" at least 3;
    vectors: "docs/guide/vectors.md" at least 7;
    signals: "docs/guide/signals.md" at least 3;
    representation: "docs/guide/representation.md" at least 6;
    export: "docs/guide/export.md" at least 7;
    tensorboard: "docs/guide/tensorboard.md" at least 2;
    scaling: "docs/guide/scaling.md" at least 1;
    speed: "docs/guide/speed.md" at least 1;
    quality: "docs/guide/quality.md" at least 0;
    troubleshooting: "docs/guide/troubleshooting.md" at least 2;
    run_folder: "docs/guide/run-folder.md" at least 4;
    commands: "docs/guide/commands.md" at least 3;
}

/// Every page of docs/guide has its test above and a line in SUMMARY.md; every relative
/// link and picture of a page names a file that exists, and a `#part` a heading there.
#[test]
fn every_page_is_tested_and_every_link_lands() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("docs/guide"))
        .unwrap()
        .map(|e| format!("docs/guide/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".md"))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> =
        PAGES.iter().filter(|p| p.starts_with("docs/guide/")).map(|p| p.to_string()).collect();
    tested.sort();
    assert_eq!(on_disk, tested, "docs/guide's pages against the pages guide.rs runs");
    let summary = read("docs/guide/SUMMARY.md");
    for page in &on_disk {
        let name = page.trim_start_matches("docs/guide/");
        assert!(
            name == "SUMMARY.md" || summary.contains(&format!("]({name})")),
            "SUMMARY.md does not list {name}"
        );
    }
    let mut links = 0;
    for page in PAGES {
        let text = read(page);
        let here = root().join(page).parent().unwrap().to_path_buf();
        for (line, target) in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file: PathBuf = if path.is_empty() { root().join(page) } else { here.join(path) };
            assert!(file.exists(), "{page}:{line}: the link {target} names no file");
            if !anchor.is_empty() {
                let headings = read_headings(&file);
                assert!(
                    headings.iter().any(|h| h == anchor),
                    "{page}:{line}: no heading of {path} makes #{anchor}; there are {headings:?}"
                );
            }
            links += 1;
        }
    }
    assert!(links > 50, "only {links} links checked");
}

/// (line, target) of every `](target)` outside fenced blocks.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        if fence(line).is_some() {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((i + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// The anchors GitHub makes of a Markdown file's headings: lower case, spaces to hyphens,
/// punctuation other than `-` and `_` dropped.
fn read_headings(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut in_block = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if fence(line).is_some() {
            in_block = !in_block;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.push(slug);
    }
    out
}

/// Every `ae-tch` command in a ```sh, ```bash or ```console block of the pages — those
/// that run and those marked no-run — uses only flags that its `--help` lists.
#[test]
fn the_commands_in_the_docs_use_real_flags() {
    let mut help: HashMap<Vec<String>, String> = HashMap::new();
    let mut checked = 0;
    for page in PAGES {
        let text = read(page);
        for block in blocks(&text, page) {
            if !["sh", "bash", "console"].contains(&block.kind.as_str()) {
                continue;
            }
            let joined = block.code.replace("\\\n", " ");
            for line in joined.lines() {
                let line = if block.kind == "console" {
                    match line.strip_prefix("$ ") {
                        Some(l) => l,
                        None => continue,
                    }
                } else {
                    line
                };
                if line.trim_start().starts_with('#') {
                    continue;
                }
                let line = line.split(" #").next().unwrap();
                for segment in line.split(['|', ';', '&', '>', '<', '(', ')']) {
                    let words: Vec<&str> = segment.split_whitespace().collect();
                    let Some(at) =
                        words.iter().position(|w| *w == "ae-tch" || w.ends_with("/ae-tch"))
                    else {
                        continue;
                    };
                    let mut command: Vec<String> = Vec::new();
                    for w in &words[at + 1..] {
                        if command.is_empty() && w.starts_with('-') {
                            continue; // a global flag before the command (--quiet)
                        }
                        if w.starts_with('-') || command.len() == 2 {
                            break;
                        }
                        if command.first().is_some_and(|c| c != "data") {
                            break;
                        }
                        command.push(w.to_string());
                    }
                    let text = help.entry(command.clone()).or_insert_with(|| {
                        let out =
                            Command::new(bin()).args(&command).arg("--help").output().unwrap();
                        assert!(
                            out.status.success(),
                            "{page}:{}: `ae-tch {}` is no command",
                            block.line,
                            command.join(" ")
                        );
                        String::from_utf8_lossy(&out.stdout).into_owned()
                    });
                    for w in &words[at + 1..] {
                        let Some(flag) = w.strip_prefix("--") else { continue };
                        let flag = format!("--{}", flag.split('=').next().unwrap());
                        let listed = text.match_indices(&flag).any(|(i, _)| {
                            !text[i + flag.len()..]
                                .starts_with(|c: char| c.is_alphanumeric() || c == '-')
                        });
                        assert!(
                            listed,
                            "{page}:{}: `ae-tch {}` has no flag {flag} (in: {})",
                            block.line,
                            command.join(" "),
                            segment.trim()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} flags checked");
}
