//! The flags of the commands around the runs: man, data fetch and info, completions,
//! doctor, export and import.

use super::ImageArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Where the man pages go.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write ae-tch.1 and a page for every subcommand (ae-tch-train.1, ae-tch-data-fetch.1,
    /// …) into DIR instead of printing the top-level page
    #[arg(long, value_name = "DIR")]
    pub all: Option<PathBuf>,
}

/// Data folders
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    Fetch(DataFetchArgs),
    Info(DataInfoArgs),
}

/// The datasets `data fetch` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FetchDataset {
    /// The full MNIST: 60,000 train and 10,000 test digits
    Mnist,
    /// Fashion-MNIST: 60,000 train and 10,000 test clothing images
    FashionMnist,
}

/// Download a dataset's four IDX files, verified against SHA-256 values kept in ae-tch
///
/// Files already present and valid are skipped; a present file that fails its check is
/// downloaded again and replaced only once the new copy verifies. Each file is written
/// to a temporary file and renamed into place, so an interrupted download leaves nothing
/// half-written.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch data fetch fashion-mnist\n  \
    ae-tch train --data data/fashion-mnist --epochs 20 --out runs/fashion\n  \
    ae-tch data fetch mnist --dir /datasets/mnist --mirror https://my.mirror/mnist/")]
pub struct DataFetchArgs {
    #[arg(value_enum)]
    pub dataset: FetchDataset,
    /// Folder to put the files in [default: data/mnist-full or data/fashion-mnist]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Base URL to download from instead of the standard public mirrors (repeat to give
    /// several, tried in order)
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<String>,
    /// Print what was done as JSON
    #[arg(long)]
    pub json: bool,
}

/// Counts, image size, label histogram and pixel mean/std of a data folder's splits
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch data info data/fashion-mnist")]
pub struct DataInfoArgs {
    /// IDX folder or folder of images, or a table (.csv, .npy, .npz)
    #[arg(value_name = "DIR|FILE")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub image: ImageArgs,
    /// A table's column of labels (any text): counted per label, not summed as a number
    /// [default: a column named label, class, target, y, is_anomaly, anomaly or outlier;
    /// `none` for no labels]
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// Print the figures as JSON
    #[arg(long)]
    pub json: bool,
}

/// Print a shell completion script
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch completions bash > ~/.local/share/bash-completion/completions/ae-tch\n  \
    ae-tch completions zsh > ~/.zfunc/_ae-tch"
)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Versions, where libtorch was loaded from, CUDA (and why not), threads, data folders
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch doctor\n  ae-tch doctor --json | jq .cuda_available")]
pub struct DoctorArgs {
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// Write a run's weights for PyTorch: safetensors (or .ot) with the names of the
/// equivalent `torch.nn.Sequential`s (`encoder.0.weight`, …; see docs/guide/export.md)
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch export --run runs/demo -o demo.safetensors")]
pub struct ExportArgs {
    /// Run folder written by `ae-tch train`
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Output file: .safetensors or .ot (the weights), or .pt (the whole model as
    /// TorchScript: forward, encode and decode, loadable with torch.jit.load)
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Print the file written and every tensor's name, shape and dtype as JSON
    #[arg(long)]
    pub json: bool,
}

/// Make a run folder from weights trained elsewhere (a PyTorch state dict saved as
/// safetensors, or an .ot file) and a model.json that describes the network
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch import --from torch_ae.safetensors --config runs/demo/model.json --out runs/imported\n  ae-tch eval --run runs/imported"
)]
pub struct ImportArgs {
    /// Weights file, .safetensors or .ot
    #[arg(long = "from", value_name = "FILE")]
    pub from: PathBuf,
    /// A model.json (of any run), or a JSON object with just its "model" part
    #[arg(long, value_name = "JSON")]
    pub config: PathBuf,
    /// Run folder to create
    #[arg(long, value_name = "RUN_DIR")]
    pub out: PathBuf,
    /// Data folder the run's evaluation uses [default: the config's, else data/mnist]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Replace a run already in RUN_DIR
    #[arg(long)]
    pub force: bool,
    /// Print what was imported as JSON
    #[arg(long)]
    pub json: bool,
}
