//! A setting whose value cannot work, as a typed error that names the setting by its id
//! (the clap id of the flag that sets it, also its key in model.json). Library modules
//! refuse values with it and never spell a flag; the command layer words it with the
//! flags of the command that failed (`settings::message`). On its own it reads
//! `--id-with-dashes`. A floor of its own, below `config` and `data`, so that both can
//! return it.

/// A setting named by its id, as a message shows it when no command words it:
/// `--id-with-dashes`.
pub fn dashed(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// A value as a shell word in a hint to type: as it is when it is plain, else in single
/// quotes (`'Chins Situps Jumps'`).
pub fn shell_word(value: &str) -> String {
    let plain =
        !value.is_empty() && value.chars().all(|c| c.is_alphanumeric() || "-_.,:=/+@%".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Replaces each `{id}` in `text` (an id is lower-case letters, digits and `_`; anything
/// else between braces, as in a path, is kept as written) by `name(id)`.
pub fn name_settings(text: &str, name: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('{') {
        out += before;
        let id = after.split_once('}').filter(|(id, _)| {
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
        match id {
            Some((id, tail)) => {
                out += &name(id);
                rest = tail;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out + rest
}

/// A setting whose value cannot work, named by the clap id of the flag that sets it (also
/// its name in model.json where it is recorded): the command layer spells the flag as clap
/// defines it (`settings::usage`, `settings::message`); shown on its own (a hand-edited
/// model.json) it reads `--id-with-dashes`. `{id}` in `problem` names another setting the
/// same way. Library modules that refuse a setting's value say so with this, never with a
/// flag's spelling.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.words(&dashed))]
pub struct Invalid {
    pub setting: Option<&'static str>,
    pub problem: String,
    /// The value was wrong on the command line itself (the binary exits 2, as for clap's
    /// parse errors), not wrong for the data it met.
    pub usage: bool,
}

impl Invalid {
    /// `setting`'s value is wrong: `problem` says how ("must be at least 1, got 0").
    pub fn of(setting: &'static str, problem: impl Into<String>) -> Self {
        Invalid { setting: Some(setting), problem: problem.into(), usage: false }
    }

    /// The same refusal, as bad usage.
    pub fn as_usage(self) -> Self {
        Invalid { usage: true, ..self }
    }

    /// A problem of no one setting.
    pub fn plain(problem: impl Into<String>) -> Self {
        Invalid { setting: None, problem: problem.into(), usage: false }
    }

    /// The message, each setting named by `name` (its flag, or its field).
    pub fn words(&self, name: &dyn Fn(&str) -> String) -> String {
        let text = name_settings(&self.problem, name);
        match self.setting {
            Some(setting) => format!("{} {text}", name(setting)),
            None => text,
        }
    }
}
