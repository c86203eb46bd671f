//! The settings layer between the command line and the library (ripgrep's low and high
//! arguments, uv's settings): the clap command with its generated help, the one place that
//! spells a flag for a message (read from the clap definitions, so a renamed flag renames
//! every message), which recorded settings a `--resume` compares with the flags given and
//! which of them `--force` may change, and the rule that a flag which would do nothing is
//! refused rather than ignored. The library takes plain values; only this layer and the
//! commands know flags.

mod train;

pub use train::{check_combination, model_flags, ModelRequest, TrainSettings, VectorRequestFlags};

use crate::cli::Cli;
use crate::config::{self, TrainConfig};
use anyhow::Result;
use clap::CommandFactory;
use serde_json::Value;
use std::collections::BTreeSet;

/// Recorded training settings (`TrainConfig`'s fields in model.json) that no flag sets.
#[cfg(test)]
const NOT_FLAGS: [&str; 1] = ["finetune"];

/// The command line, with the help that is generated from the settings below.
pub fn command() -> clap::Command {
    Cli::command()
        .mut_subcommand("train", |train| train.mut_arg("force", |force| force.help(force_help())))
}

/// `train --force`'s help: what it overwrites, and every setting a resume may change.
fn force_help() -> String {
    let flags: Vec<String> = TrainConfig::RESUMABLE.iter().map(|k| flag("train", k)).collect();
    let (last, rest) = flags.split_last().expect("settings a resume may change");
    format!(
        "Overwrite a run folder that already holds a run; with --resume, accept new {} or {last}",
        rest.join(", ")
    )
}

/// How a message spells the flag with clap id `id` of `subcommand`: `--noise-level
/// (--sigma)` for one with a visible alias. An id that is no flag is spelled as its name.
pub fn flag(subcommand: &str, id: &str) -> String {
    let cli = Cli::command();
    let arg = cli
        .find_subcommand(subcommand)
        .and_then(|c| c.get_arguments().find(|a| a.get_id() == id))
        .and_then(|a| Some((a.get_long()?.to_string(), a.get_visible_aliases())));
    match arg {
        Some((long, Some(aliases))) if !aliases.is_empty() => {
            let aliases: Vec<String> = aliases.iter().map(|a| format!("--{a}")).collect();
            format!("--{long} ({})", aliases.join(", "))
        }
        Some((long, _)) => format!("--{long}"),
        None => format!("--{}", id.replace('_', "-")),
    }
}

/// An error chain as the binary prints it (each link after the one before, joined by
/// ": ", as anyhow's `{:#}` does), with every setting a library error names (`Invalid`,
/// and the errors that carry one) spelled as the flag of `subcommand` that sets it.
pub fn message(e: &anyhow::Error, subcommand: Option<&str>) -> String {
    let name = |id: &str| match subcommand {
        Some(sub) => flag(sub, id),
        None => crate::invalid::dashed(id),
    };
    let link = |c: &(dyn std::error::Error + 'static)| {
        if let Some(invalid) = c.downcast_ref::<crate::invalid::Invalid>() {
            invalid.words(&name)
        } else if let Some(table) = c.downcast_ref::<crate::data::table::TableError>() {
            table.words(&name)
        } else if let Some(stopped) = c.downcast_ref::<crate::train::Stopped>() {
            stopped.words(&name)
        } else {
            c.to_string()
        }
    };
    e.chain().map(link).collect::<Vec<_>>().join(": ")
}

/// A setting that cannot work, as bad usage (exit 2) worded with the flags of
/// `subcommand`.
pub fn usage(subcommand: &str, e: crate::invalid::Invalid) -> config::Usage {
    config::Usage(e.words(&|id| flag(subcommand, id)))
}

/// What `--resume` makes of the flags given beside it: the changes `--force` accepts
/// (`RESUMABLE` settings), those that cannot change mid-run, and the recorded training
/// settings with the accepted changes applied.
#[derive(Debug, Default)]
pub struct Changes {
    pub forced: Vec<String>,
    pub refused: Vec<String>,
    pub merged: Value,
}

impl Changes {
    /// Compares each pair of (recorded, asked) settings, keyed by the clap id of the flag
    /// that sets them, over the flags `given` on the command line; `merged` starts as the
    /// recorded training settings `train`. A setting left out at its default counts as
    /// null on either side.
    pub fn between(
        pairs: &[(Value, Value)],
        train: Value,
        given: &dyn Fn(&str) -> bool,
    ) -> Changes {
        let mut changes = Changes { merged: train, ..Default::default() };
        for (recorded, asked) in pairs {
            let (Some(recorded), Some(asked)) = (recorded.as_object(), asked.as_object()) else {
                continue;
            };
            let keys: BTreeSet<&String> = recorded.keys().chain(asked.keys()).collect();
            for key in keys {
                let (old, new) = (
                    recorded.get(key).unwrap_or(&Value::Null),
                    asked.get(key).unwrap_or(&Value::Null),
                );
                if !given(key) || new == old {
                    continue;
                }
                let change = format!("{} {new} (the run has {old})", flag("train", key));
                if TrainConfig::RESUMABLE.contains(&key.as_str()) {
                    changes.merged[key] = new.clone();
                    changes.forced.push(change);
                } else {
                    changes.refused.push(change);
                }
            }
        }
        changes
    }
}

/// Flags of `train` that apply to one kind of data only: refused with the other.
pub const IMAGE_FLAGS: [&str; 5] = ["color", "resize", "background", "augment", "skip_unreadable"];
pub const VECTOR_FLAGS: [&str; 20] = [
    "label_column",
    "columns",
    "ignore_columns",
    "missing",
    "gap",
    "delimiter",
    "no_header",
    "skip_rows",
    "labels",
    "test",
    "test_labels",
    "test_fraction",
    "scale",
    "window",
    "hop",
    "wav_channel",
    "domain",
    "context",
    "tail_score",
    "ensemble",
];

/// A flag of `train` given where it would do nothing is refused (exit 2), never silently
/// ignored: the first of `flags` that was `given`, with `why`.
pub fn refuse_flags(given: &dyn Fn(&str) -> bool, flags: &[&str], why: &str) -> Result<()> {
    match flags.iter().find(|f| given(f)) {
        Some(f) => Err(config::Usage(format!("{} {why}", flag("train", f))).into()),
        None => Ok(()),
    }
}

/// The same rule for the flags that apply to one mode or one architecture only, for a
/// run of architecture `arch` with conv layers or not, denoising or not (a fresh run's
/// flags, or the recorded run on `--resume`).
pub fn refuse_inapplicable(
    given: &dyn Fn(&str) -> bool,
    arch: config::Arch,
    conv: bool,
    denoise: bool,
) -> Result<()> {
    let checks: [(&[&str], bool, &str); 5] = [
        (&["noise", "noise_level"], !denoise, "applies to --mode denoise only"),
        (&["hidden"], conv, "sets MLP layers; conv layers take --channels and --blocks"),
        (
            &["channels", "blocks", "norm", "upsample"],
            !conv,
            "sets conv layers: add --arch conv (or --arch vae --backbone conv)",
        ),
        (&["backbone", "beta"], arch != config::Arch::Vae, "applies to --arch vae only"),
        (&["tied_weights"], arch != config::Arch::Mlp, "works with --arch mlp only"),
    ];
    for (flags, refused, why) in checks {
        if refused {
            refuse_flags(given, flags, why)?;
        }
    }
    Ok(())
}

/// Whether `id` names a flag of `train`.
#[cfg(test)]
fn is_train_flag(id: &str) -> bool {
    let cli = Cli::command();
    let found =
        cli.find_subcommand("train").is_some_and(|t| t.get_arguments().any(|a| a.get_id() == id));
    found
}

/// Every recorded training setting is set by the flag whose clap id is its name, or is
/// listed in `NOT_FLAGS`: the resume comparison relies on it.
#[cfg(test)]
fn check_recorded_names() -> Result<(), String> {
    let recorded = serde_json::to_value(TrainConfig::default()).map_err(|e| e.to_string())?;
    let keys = recorded.as_object().map(|o| o.keys().cloned().collect()).unwrap_or(Vec::new());
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    all.extend(TrainConfig::RESUMABLE);
    all.extend(VECTOR_FLAGS.iter().chain(&IMAGE_FLAGS));
    match all.iter().find(|k| !NOT_FLAGS.contains(k) && !is_train_flag(k)) {
        Some(k) => Err(format!("the recorded setting {k} is no flag of train")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_settings_are_named_as_their_flags() {
        check_recorded_names().unwrap();
        assert!(!is_train_flag("no_such_setting"));
    }

    /// `train --force`'s help names every setting a resume may change.
    #[test]
    fn the_force_help_lists_every_resumable_setting() {
        let cli = command();
        let train = cli.find_subcommand("train").unwrap();
        let force = train.get_arguments().find(|a| a.get_id() == "force").unwrap();
        let help = force.get_help().unwrap().to_string();
        for key in TrainConfig::RESUMABLE {
            let flag = format!("--{}", key.replace('_', "-"));
            assert!(help.contains(&flag), "--force's help lacks {flag}: {help}");
        }
        assert!(help.ends_with("--checkpoint-every or --tensorboard"), "{help}");
    }

    #[test]
    fn invalid_settings_are_worded_with_their_flags() {
        let cfg = TrainConfig { noise_level: -1.0, ..TrainConfig::default() };
        let e = usage("train", cfg.validate().unwrap_err());
        assert_eq!(e.0, "--noise-level (--sigma) must be a non-negative number, got -1");
        let cfg = TrainConfig { early_stop: Some(2), val_fraction: 0.0, ..TrainConfig::default() };
        let e = usage("train", cfg.validate().unwrap_err());
        assert_eq!(e.0, "--early-stop needs validation images: set --val-fraction above 0");
        // Off is expressible: --early-stop 0 is no early stopping, and then no validation
        // rows are needed.
        let argv = ["ae-tch", "train", "--early-stop", "0", "--val-fraction", "0"];
        use clap::Parser;
        let crate::cli::Command::Train(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let s = TrainSettings::new(&args, &|id| ["early_stop", "val_fraction"].contains(&id));
        let cfg = s.checked_train().unwrap();
        assert_eq!((cfg.early_stop, cfg.val_fraction), (None, 0.0));
    }

    /// `--norm` left out: colour images train without a norm, grayscale ones with GroupNorm;
    /// given, it stands on either.
    #[test]
    fn the_norm_is_chosen_by_the_images_colour_unless_given() {
        use crate::data::spec::{Color, DataSpec, ImageSpec};
        use clap::Parser;
        let groups = |extra: &[&str], color: Color| {
            let argv = [&["ae-tch", "train", "--arch", "conv"], extra].concat();
            let crate::cli::Command::Train(args) = Cli::try_parse_from(argv).unwrap().command
            else {
                unreachable!()
            };
            let s = TrainSettings::new(&args, &|id| id == "arch" || extra.contains(&"--norm"));
            let input = DataSpec::Image(ImageSpec { color, ..ImageSpec::gray(32, 32) });
            match s.model.layers(&input) {
                crate::config::Layers::Conv(conv) => conv.groups,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(groups(&[], Color::Rgb), 0);
        assert_eq!(groups(&[], Color::Gray), crate::config::NORM_GROUPS);
        assert_eq!(groups(&["--norm", "group"], Color::Rgb), crate::config::NORM_GROUPS);
        assert_eq!(groups(&["--norm", "none"], Color::Gray), 0);
    }

    #[test]
    fn flags_are_spelled_as_clap_defines_them() {
        assert_eq!(flag("train", "noise_level"), "--noise-level (--sigma)");
        assert_eq!(flag("train", "lr_schedule"), "--lr-schedule");
        assert_eq!(flag("train", "no_flag_here"), "--no-flag-here");
    }

    #[test]
    fn library_errors_are_worded_with_the_failing_commands_flags() {
        use crate::invalid::{name_settings, Invalid};
        // A refusal deep in the library, under context, names the command's flag.
        let e = anyhow::Error::new(Invalid::of("noise_level", "must be at least 0"))
            .context("reading data/x.csv");
        assert_eq!(
            message(&e, Some("train")),
            "reading data/x.csv: --noise-level (--sigma) must be at least 0"
        );
        assert_eq!(format!("{e:#}"), "reading data/x.csv: --noise-level must be at least 0");
        // Typed errors that carry a setting: a table's, and a divergence's advice.
        let table = crate::data::table::TableError::UnknownColumn {
            setting: "label_column",
            name: "y".into(),
            known: vec!["a".into()],
        };
        let e = anyhow::Error::new(table);
        assert_eq!(message(&e, None), "--label-column: no column named 'y'; the columns are 'a'");
        let stopped = crate::train::Stopped::Diverged {
            epoch: 2,
            step: 7,
            what: "loss is NaN".into(),
            last_good: None,
            checkpoint: Some(1),
            lr: 0.000123456789,
            clipped: false,
        };
        let text = message(&anyhow::Error::new(stopped), Some("train"));
        assert!(text.ends_with("try a lower --lr (now 0.0001235) or --grad-clip"), "{text}");
        // Braces that hold no setting id (a path, a column) are kept as written.
        let name = |id: &str| format!("<{id}>");
        assert_eq!(name_settings("{a_b} {Data} {1x} {x y} {", &name), "<a_b> {Data} {1x} {x y} {");
        assert!(Invalid::of("threads", "must be at least 1").as_usage().usage);
    }

    #[test]
    fn a_resume_sorts_changes_into_forced_and_refused() {
        let recorded = serde_json::json!({"epochs": 3, "lr": 0.1, "seed": 1, "trim": null});
        let asked = serde_json::json!({"epochs": 5, "lr": 0.1, "seed": 2});
        let given = |id: &str| id != "lr";
        let c = Changes::between(&[(recorded.clone(), asked)], recorded, &given);
        assert_eq!(c.forced, ["--epochs 5 (the run has 3)"]);
        assert_eq!(c.refused, ["--seed 2 (the run has 1)"]);
        assert_eq!(c.merged["epochs"], 5);
        assert_eq!(c.merged["seed"], 1);
    }
}
