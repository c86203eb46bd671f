//! The layering ARCHITECTURE.md promises, checked on the sources (as rust-analyzer's tidy
//! tests do): the file-level import graph has no circles; the library's lower floors never
//! reach up to the run store, the commands, the command line or the crate root; a command
//! never imports another command; `cli` and `plot` never touch tch; `data` and `model` never
//! touch clap. Test code (`#[cfg(test)]` onwards) and comments are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path inside the crate (`["data", "spec"]`), `[]` for the crate root.
type Module = Vec<String>;

/// Files (by module path) of the crate rooted at `src` and their text, tests cut off.
fn read_crate(src: &Path) -> BTreeMap<Module, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] || module == ["tidy"] {
                if module != ["lib"] {
                    continue;
                }
                module.clear();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code.lines().map(|l| l.split("//").next().unwrap()).collect();
            files.insert(module, code.join("\n"));
        }
    }
    files
}

/// The module paths that `crate::a::b`, `crate::a::{b, c::d}` and `super::b` name in the
/// code of `module`.
fn crate_paths(module: &Module, code: &str) -> Vec<Module> {
    let mut paths = Vec::new();
    for anchor in ["crate::", "super::"] {
        for (at, _) in code.match_indices(anchor) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `my_crate::`, `super::super::`, `x::crate::`: not a path's start
            }
            let base: Module = if anchor == "super::" {
                module[..module.len().saturating_sub(1)].to_vec()
            } else {
                Vec::new()
            };
            let rest = &code[at + anchor.len()..];
            let (prefix, used) = leading_path(rest);
            let join = |tail: Module| [base.clone(), prefix.clone(), tail].concat();
            match rest[used..].strip_prefix('{') {
                Some(group) => paths.extend(group_items(group).into_iter().map(join)),
                None => paths.push(join(Vec::new())),
            }
        }
    }
    paths.retain(|p| !p.is_empty());
    paths
}

/// The items of a `{a::b, c, d::{e, f}}` group (without its opening brace), each as the
/// path of its first segments.
fn group_items(group: &str) -> Vec<Module> {
    let (mut depth, mut item, mut items) = (0, String::new(), Vec::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(segments(&item));
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(segments(&item));
    items
}

/// The leading `a::b::c` identifiers of `text`, and how many bytes they take (with a
/// trailing `::`, so that a group's `{` follows).
fn leading_path(text: &str) -> (Module, usize) {
    let end =
        text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
    let path = text[..end].split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
    (path, end)
}

/// The leading path of a group item (`a::b` of ` a::b as c`).
fn segments(text: &str) -> Module {
    leading_path(text.trim_start()).0
}

/// The file that defines the longest prefix of `path`.
fn owner<'a>(files: &'a BTreeMap<Module, String>, path: &[String]) -> &'a Module {
    (0..=path.len()).rev().find_map(|n| files.get_key_value(&path[..n])).unwrap().0
}

/// Every file's imports of other files.
fn graph(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    files
        .iter()
        .map(|(module, code)| {
            let targets = crate_paths(module, code)
                .iter()
                .map(|p| owner(files, p).clone())
                .filter(|t| t != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// Groups of files that import each other, directly or around a circle.
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let reaches = |from: &Module| {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(m) = stack.pop() {
            for next in &graph[&m] {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&Module, BTreeSet<Module>> =
        graph.keys().map(|m| (m, reaches(m))).collect();
    let mut groups: Vec<Vec<Module>> = Vec::new();
    for m in graph.keys() {
        let group: Vec<Module> = graph
            .keys()
            .filter(|o| *o == m || (reach[m].contains(*o) && reach[*o].contains(m)))
            .cloned()
            .collect();
        if group.len() > 1 && !groups.contains(&group) {
            groups.push(group);
        }
    }
    groups
}

/// A module's first segment: its top-level module ("" for the crate root).
fn top(m: &Module) -> &str {
    m.first().map(String::as_str).unwrap_or("")
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "the crate root".into()
    } else {
        m.join("::")
    }
}

/// Whether `code` uses the external crate `krate` (`krate::` not preceded by an identifier).
fn uses(code: &str, krate: &str) -> bool {
    let pattern = format!("{krate}::");
    code.match_indices(&pattern)
        .any(|(i, _)| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'))
}

/// The flags that `code` spells (`--name` outside comments: in library code, only inside a
/// message), other tools' flags (`cargo build --release`) aside.
fn flag_spellings(code: &str) -> Vec<String> {
    const OTHER_TOOLS: [&str; 1] = ["release"];
    code.match_indices("--")
        .filter(|(i, _)| !code[..*i].ends_with('-'))
        .map(|(i, _)| {
            let rest = &code[i + 2..];
            let end =
                rest.find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|f| f.starts_with(|c: char| c.is_ascii_lowercase()) && !OTHER_TOOLS.contains(f))
        .map(|f| format!("--{f}"))
        .collect()
}

/// Files of `commands/` that serve every command rather than being one.
const COMMAND_SHARED: [&str; 2] = ["report", "shared"];

/// Every broken rule in the crate at `src`, one line each.
pub(crate) fn violations(src: &Path) -> Vec<String> {
    let files = read_crate(src);
    let graph = graph(&files);
    let mut found = Vec::new();
    for group in circles(&graph) {
        let names: Vec<String> = group.iter().map(name).collect();
        found.push(format!("import circle: {}", names.join(" <-> ")));
    }
    let lower = [
        "data",
        "model",
        "train",
        "metrics",
        "loss",
        "mlp_step",
        "optim",
        "atomic",
        "format",
        "log",
        "tensorboard",
        "npy",
        "host",
        "fpu",
        "omp",
        "dist",
        "device",
        "script",
        "plot",
    ];
    let above = ["run_store", "commands", "cli", "session", "settings"];
    // The library below the settings layer names a setting by its id (`invalid::Invalid`);
    // only the command side spells flags.
    let flag_free = [&lower[..], &["config", "invalid", "run_store", "checkpoint"]].concat();
    let command = |m: &Module| {
        top(m) == "commands" && m.len() > 1 && !COMMAND_SHARED.contains(&m[1].as_str())
    };
    for (from, targets) in &graph {
        for to in targets {
            let wrong = if top(from) == "plot" && top(to) != "plot" {
                Some("plot takes plain values and imports nothing else of the crate")
            } else if lower.contains(&top(from)) && (to.is_empty() || above.contains(&top(to))) {
                Some("a lower floor reaches up")
            } else if command(from) && command(to) && from[..2] != to[..2] {
                Some("a command imports another command")
            } else {
                None
            };
            if let Some(why) = wrong {
                found.push(format!("{why}: {} imports {}", name(from), name(to)));
            }
        }
    }
    for (module, code) in &files {
        let (t, rule) = (top(module), |krate: &str| uses(code, krate));
        if (t == "cli" || t == "plot") && rule("tch") {
            found.push(format!("{} uses tch", name(module)));
        }
        if (t == "data" || t == "model") && rule("clap") {
            found.push(format!("{} uses clap", name(module)));
        }
        if flag_free.contains(&t) {
            for flag in flag_spellings(code) {
                found.push(format!("{} spells the flag {flag}", name(module)));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_keeps_its_layers() {
        // AE_TCH_TIDY_SRC checks another tree (an older commit's src/, say) the same way.
        let src = std::env::var_os("AE_TCH_TIDY_SRC")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        let found = violations(&src);
        assert!(found.is_empty(), "{}", found.join("\n"));
        // It read the real tree: the commands reach the run store, nothing reaches main.
        let files = read_crate(&src);
        assert!(files.len() > 40, "{} files", files.len());
        let g = graph(&files);
        assert!(
            g[&vec!["commands".to_string(), "train".into()]].contains(&vec!["run_store".into()])
        );
    }

    /// The check finds each kind of fault in a small tree built to have them.
    #[test]
    fn a_bad_tree_fails_each_rule() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "lib.rs",
            "pub mod a; pub mod data; pub mod commands; pub mod plot; pub fn note() {}",
        );
        write("a.rs", "use crate::data::spec::X;\n// crate::commands::train is a comment");
        write(
            "data/mod.rs",
            "pub mod spec; use crate::note; use clap::Parser;\n\
             fn f() { bail!(\"pass --resize or {resize}\") } // a --comment is fine",
        );
        write("data/spec.rs", "use crate::{a::Y, data};\n#[cfg(test)]\nuse crate::commands::x;");
        write("commands/mod.rs", "pub mod train; pub mod eval; pub mod report;");
        write("commands/train.rs", "use crate::commands::{report, eval::f};");
        write("commands/eval.rs", "fn f() -> crate::data::spec::X { todo!() }");
        write("commands/report.rs", "");
        write("cli.rs", "fn f(_: tch::Tensor) {}");
        write("plot.rs", "use crate::data::spec::X;");
        let mut found = violations(dir.path());
        found.sort();
        assert_eq!(
            found,
            [
                "a command imports another command: commands::train imports commands::eval",
                "a lower floor reaches up: data imports the crate root",
                "cli uses tch",
                "data spells the flag --resize",
                "data uses clap",
                "import circle: a <-> data::spec",
                "plot takes plain values and imports nothing else of the crate: plot imports data::spec",
            ]
        );
        assert!(uses("x: tch::Tensor", "tch") && !uses("data::fetch::run", "tch"));
        assert_eq!(
            flag_spellings("\"--wav-channel N, ---, cargo build --release\""),
            ["--wav-channel"]
        );
    }
}
