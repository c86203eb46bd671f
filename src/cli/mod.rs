//! Command-line types only (clap derive): one `*Args` struct per subcommand. Doc comments
//! are the help text; defaults come from `config`.

mod inspect;
mod tools;
mod train;
mod values;

pub use inspect::*;
pub use tools::*;
pub use train::*;

use crate::config::DeviceSpec;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Train autoencoders on images and numeric vectors with libtorch, and show what they learned.
#[derive(Debug, Parser)]
#[command(name = "ae-tch", version, propagate_version = true, args_override_self = true)]
pub struct Cli {
    /// No progress or log lines on stderr (results still go to stdout, errors to stderr)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (train's flags) costs nothing.

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    Train(TrainArgs),
    Eval(EvalArgs),
    Encode(EncodeArgs),
    Anomaly(AnomalyArgs),
    Probe(ProbeArgs),
    Finetune(FinetuneArgs),
    PlotLatent(PlotLatentArgs),
    Denoise(DenoiseArgs),
    Sample(SampleArgs),
    Interpolate(InterpolateArgs),
    PlotLoss(PlotLossArgs),
    Grid(GridArgs),
    Export(ExportArgs),
    Import(ImportArgs),
    Doctor(DoctorArgs),
    #[command(
        subcommand,
        after_help = "Example:\n  ae-tch data fetch fashion-mnist\n  ae-tch data info data/fashion-mnist"
    )]
    Data(DataCommand),
    Completions(CompletionsArgs),
    /// Print the man page (roff), generated from the same definitions as --help; with
    /// --all, write every page (ae-tch.1 and one per subcommand) into a folder
    #[command(
        after_help = "Example:\n  ae-tch man > ae-tch.1 && man ./ae-tch.1\n  ae-tch man --all man1 && man ./man1/ae-tch-train.1"
    )]
    Man(ManArgs),
}

/// How table and series files are read. `train` records these; a later command reads
/// every file the same way unless they are given to it (for the files it is given).
#[derive(Debug, Clone, Default, Args)]
pub struct ReadArgs {
    /// Cells with a missing value (empty, NA, NaN, null, ?; NaN in a .npy) [default:
    /// refuse; after train: what the run recorded]
    #[arg(long, value_enum)]
    pub missing: Option<crate::data::spec::Missing>,
    /// Series CSVs with a time column: a step over three usual ones is a gap [default:
    /// split; after train: what the run recorded]
    #[arg(long, value_enum)]
    pub gap: Option<crate::data::spec::Gap>,
    /// WAV files with several channels: the one to read, from 0 [after train: the run's]
    #[arg(long, value_name = "N")]
    pub wav_channel: Option<usize>,
    /// CSV: the character between fields: comma, semicolon, tab, space, or any one ASCII
    /// character [default: sniffed from the file's first lines]
    #[arg(long, value_name = "C", value_parser = values::delimiter)]
    pub delimiter: Option<char>,
    /// CSV: the file has no header line; its columns are named x0, x1, ... [after train:
    /// the run's]
    #[arg(long)]
    pub no_header: bool,
    /// CSV: lines to pass over before the header (or the first data row) [default: 0;
    /// after train: the run's]
    #[arg(long, value_name = "N")]
    pub skip_rows: Option<usize>,
}

impl ReadArgs {
    pub fn reading(&self) -> crate::data::spec::Reading {
        crate::data::spec::Reading {
            missing: self.missing,
            gap: self.gap,
            wav_channel: self.wav_channel,
            delimiter: self.delimiter,
            no_header: self.no_header.then_some(true),
            skip_rows: self.skip_rows,
        }
    }
}

/// A trained run to load, and where to compute with it.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run folder written by `ae-tch train`
    #[arg(long = "run", value_name = "RUN_DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Where and how tensors are computed.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// auto (CUDA when available), cpu, cuda or cuda:N
    #[arg(long, default_value_t = DeviceSpec::Auto, value_name = "DEVICE")]
    pub device: DeviceSpec,
    /// CPU threads for libtorch [default: libtorch's choice]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Which files of a data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// the rows the run trained on (training and validation)
    Train,
    /// the rows held out for testing (an IDX folder's t10k-* files)
    Test,
}

impl From<SplitArg> for crate::data::Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => crate::data::Split::Train,
            SplitArg::Test => crate::data::Split::Test,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Mode, NoiseKind};
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every example in every --help parses: flags renamed later cannot leave a stale one.
    #[test]
    fn help_examples_parse() {
        fn walk(cmd: &clap::Command, found: &mut Vec<String>) {
            if let Some(text) = cmd.get_after_help() {
                for line in text.to_string().lines() {
                    let Some(example) = line.trim().strip_prefix("ae-tch ") else { continue };
                    // The command ends where the shell takes over.
                    let end = example.find(['|', '>', '#']).unwrap_or(example.len());
                    let end = example.find("&&").map_or(end, |a| a.min(end));
                    found.push(example[..end].trim().to_string());
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, found);
            }
        }
        let mut examples = Vec::new();
        walk(&Cli::command(), &mut examples);
        assert!(examples.len() > 20, "{examples:?}");
        for example in examples {
            let argv = std::iter::once("ae-tch").chain(example.split_whitespace());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("the help example `ae-tch {example}` does not parse: {e}");
            }
        }
    }

    #[test]
    fn train_defaults_come_from_config() {
        let cli = Cli::try_parse_from(["ae-tch", "train"]).unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        let crate::config::Layers::Mlp { hidden, .. } = config::ModelConfig::default().layers
        else {
            panic!("the default network is an MLP")
        };
        let image = config::ModelConfig::default().input;
        assert_eq!((t.hidden, hidden.clone()), (None, config::default_hidden(&image)));
        assert_eq!(hidden, [512, 128]);
        // Defaults resolved per network are stated in the help text from config's values.
        let train = Cli::command().find_subcommand("train").unwrap().clone();
        let help = |id: &str| {
            let arg = train.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_help().unwrap().to_string()
        };
        assert!(help("hidden").ends_with(&format!(
            "[default: {} for images, {} for vectors]",
            config::DEFAULT_HIDDEN,
            config::VECTOR_HIDDEN.map(|w| w.to_string()).join(",")
        )));
        assert!(help("lr").contains(&format!(
            "[default: {:e}; an MLP on more than {}",
            config::DEFAULT_LR,
            "1,024"
        )));
        assert_eq!(config::RATE_WIDTH, 1024);
        assert!(help("batch_size").contains(&format!("[default: {};", config::DEFAULT_BATCH_SIZE)));
        assert!(help("batch_size").contains(&format!("down to {}", config::SMALLEST_BATCH)));
        assert!(help("epochs").contains(&format!("[default: {};", config::DEFAULT_EPOCHS)));
        assert!(help("epochs").contains(&format!("{} steps", "1,500")));
        assert_eq!(config::LEAST_STEPS, 1500);
        assert!(help("early_stop").contains(&format!("[default: {};", config::PATIENCE)));
        assert!(help("augment").contains(&format!("{} colour training images", "5,000")));
        assert_eq!(config::FLIP_BELOW, 5000);
        assert_eq!((t.lr, t.batch_size, t.lr_schedule), (None, None, None));
        assert_eq!((t.latent, t.noise_level.low, t.mode), (None, 0.3, Mode::Reconstruct));
        let cli = Cli::try_parse_from(["ae-tch", "train", "--sigma", "0.5"]).unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!((t.noise, t.noise_level.low), (NoiseKind::Gaussian, 0.5));
        let cli = Cli::try_parse_from(["ae-tch", "train", "--noise-level", "-5:20"]).unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!((t.noise_level.low, t.noise_level.high), (-5.0, Some(20.0)));
        assert!(Cli::try_parse_from(["ae-tch", "train", "--noise-level", "5:x"]).is_err());
        let cli =
            Cli::try_parse_from(["ae-tch", "train", "--hidden", "32,8", "--device", "cuda:1"])
                .unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!((t.hidden, t.runtime.device), (Some(vec![32, 8]), DeviceSpec::Cuda(1)));
        // A repeated list flag replaces the earlier one, like every other flag.
        let cli = Cli::try_parse_from(["ae-tch", "train", "--hidden", "128", "--hidden", "64,32"])
            .unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!(t.hidden, Some(vec![64, 32]));
        let err =
            Cli::try_parse_from(["ae-tch", "train", "--device", "tpu"]).unwrap_err().to_string();
        assert!(err.contains("unknown device 'tpu'"), "{err}");
    }
}
