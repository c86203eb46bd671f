//! clap's `ValueEnum` for the plain enums of the data description (`data::spec`), which
//! must not depend on clap: the command line offers them here, with their help, and the
//! library receives the same values.

use crate::data::spec::{Background, ColorChoice, Domain, Gap, Missing, ScaleKind, WindowChoice};
use clap::builder::PossibleValue;

/// `impl clap::ValueEnum for T`: each variant's name on the command line and its help.
macro_rules! value_enum {
    ($ty:ident { $($variant:ident => $name:literal $(: $help:literal)?),+ $(,)? }) => {
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($ty::$variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($ty::$variant => PossibleValue::new($name)$(.help($help))?),+
                })
            }
        }
    };
}

value_enum!(ColorChoice {
    Auto => "auto": "RGB if any training image has colour, else gray",
    Gray => "gray",
    Rgb => "rgb",
});

value_enum!(Background {
    White => "white": "composited onto white",
    Black => "black": "composited onto black",
    Ignore => "ignore": "the alpha channel is dropped, leaving the colour under it (runs made \
        before format_version 2 did this)",
});

value_enum!(Domain {
    Wave => "wave": "windows of the samples themselves",
    Stft => "stft": "log power spectra of short Hann frames (--window and --hop are the frame \
        and hop in samples), several frames a row; a denoiser keeps the noisy phase",
});

value_enum!(Missing {
    Refuse => "refuse": "stop with a count of the missing values",
    Drop => "drop": "leave the rows out (and say how many); tables",
    Interpolate => "interpolate": "fill each gap linearly from the steps on either side; \
        series, whose steps cannot be left out",
});

/// `--gap`: not `Gap::Across`, which only runs made before gaps were looked for read with.
impl clap::ValueEnum for Gap {
    fn value_variants<'a>() -> &'a [Self] {
        &[Gap::Split, Gap::Refuse]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Gap::Split => Some(PossibleValue::new("split").help(
                "cut the series at each gap; the stretches train and are scored apart, and no \
                 window crosses one",
            )),
            Gap::Refuse => Some(
                PossibleValue::new("refuse")
                    .help("stop at the first irregular step, naming its lines"),
            ),
            Gap::Across => None,
        }
    }
}

/// `--noise-level`: one number, or a range `LOW:HIGH` (signal-to-noise ratios in dB for
/// audio noise, drawn from uniformly).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub low: f64,
    pub high: Option<f64>,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.high {
            Some(h) => write!(f, "{}:{h}", self.low),
            None => write!(f, "{}", self.low),
        }
    }
}

pub fn level(text: &str) -> Result<Level, String> {
    let number = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    let bad = || format!("'{text}' is not a noise level: a number, or a range LOW:HIGH in dB");
    match text.split_once(':') {
        None => number(text).map(|low| Level { low, high: None }).ok_or_else(bad),
        Some((a, b)) => match (number(a), number(b)) {
            (Some(low), Some(high)) => Ok(Level { low, high: Some(high) }),
            _ => Err(bad()),
        },
    }
}

/// `--window`: `auto` or a number of steps.
pub fn window(text: &str) -> Result<WindowChoice, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(WindowChoice::Auto),
        "none" => Ok(WindowChoice::Table),
        n => n.parse().map(WindowChoice::Steps).map_err(|_| {
            format!(
                "'{text}' is not a window: a number of steps, auto (from the series' period) \
                 or none (a table)"
            )
        }),
    }
}

/// `--delimiter`: a name (comma, semicolon, tab, space) or one ASCII character.
pub fn delimiter(text: &str) -> Result<char, String> {
    let c = match text.to_ascii_lowercase().as_str() {
        "comma" => ',',
        "semicolon" => ';',
        "tab" | "\\t" => '\t',
        "space" => ' ',
        _ => match text.chars().collect::<Vec<_>>()[..] {
            [c] if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => c,
            _ => {
                return Err(format!(
                    "'{text}' is not a delimiter: comma, semicolon, tab, space or one ASCII \
                     character (not a quote or a line break)"
                ))
            }
        },
    };
    Ok(c)
}

value_enum!(ScaleKind {
    Standard => "standard": "zero mean and unit standard deviation per column (population σ)",
    Minmax => "minmax": "each column's training range onto [0, 1]",
});

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The names offered on the command line are the names written to model.json.
    #[test]
    fn command_line_names_are_the_recorded_names() {
        fn check<T: ValueEnum + serde::Serialize>() {
            for v in T::value_variants() {
                let name = v.to_possible_value().unwrap().get_name().to_string();
                assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::from(name.clone()));
                assert!(T::from_str(&name, false).is_ok());
            }
        }
        check::<Background>();
        check::<Missing>();
        check::<Gap>();
        check::<ScaleKind>();
        for (choice, name) in [(ColorChoice::Auto, "auto"), (ColorChoice::Rgb, "rgb")] {
            assert_eq!(choice.to_possible_value().unwrap().get_name(), name);
        }
    }
}
