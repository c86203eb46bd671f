//! Command-line types only (clap derive): one `*Args` struct per subcommand. Doc comments
//! are the help text; defaults come from `config`.

mod values;

use crate::config::{
    self, Activation, Arch, Backbone, DeviceSpec, Engine, Init, Loss, LrSchedule, Mode, NoiseKind,
    Norm, Precision, Upsample, WeightsFormat,
};
use crate::data::spec::{Background, ColorChoice, ImageRequest, Missing, ScaleKind, Size};
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
    /// IDX folder or folder of images
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub image: ImageArgs,
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
/// equivalent `torch.nn.Sequential`s (`encoder.0.weight`, …; see README)
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

/// How image files become the model's images (recorded in the run, and applied the same
/// way to any data given to it later).
#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// Colour of the images the model sees
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Resize every image to HEIGHTxWIDTH (bilinear) [default: the images' common size;
    /// mixed sizes are refused]
    #[arg(long, value_name = "HxW")]
    pub resize: Option<Size>,
    /// What transparent pixels are flattened onto
    #[arg(long, value_enum, default_value_t = Background::White)]
    pub background: Background,
}

impl ImageArgs {
    pub fn request(&self) -> ImageRequest {
        ImageRequest { color: self.color, size: self.resize, background: self.background }
    }
}

/// How a CSV or .npy file becomes the model's vectors (recorded in the run, so later
/// commands read and split the file the same way).
#[derive(Debug, Clone, Args)]
pub struct VectorArgs {
    /// CSV: the column that holds each row's label (any text; it is not a feature)
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// CSV: the feature columns, in order [default: every column but the label's]
    #[arg(long, value_delimiter = ',', value_name = "A,B,..")]
    pub columns: Option<Vec<String>>,
    /// CSV: rows with a missing value (empty, NA, NaN, null, ?)
    #[arg(long, value_enum, default_value_t = Missing::Refuse)]
    pub missing: Missing,
    /// .npy: a 1-D integer array with one label per row of --data
    #[arg(long, value_name = "FILE.npy")]
    pub labels: Option<PathBuf>,
    /// A separate test file in the same format as --data (for series, a file or a folder
    /// of them) [default: hold out --test-fraction of every class of --data, drawn with
    /// --seed; for series, the last --test-fraction of the series, or of a folder's files
    /// that share drawn whole]
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Share of every class (of a series: of its steps, from the end; of a folder of
    /// series: of its files) held out as the test set when there is no --test file
    #[arg(long, default_value_t = config::DEFAULT_TEST_FRACTION, value_name = "F")]
    pub test_fraction: f64,
    /// How features are scaled, fitted on the training rows only (reconstruction error is
    /// measured in these scaled units)
    #[arg(long, value_enum, default_value_t = ScaleKind::Standard)]
    pub scale: ScaleKind,
    /// Read --data as one long series (a WAV file always is; a CSV then has one row per
    /// time step), or a folder as several, and cut each into windows of N steps: the rows
    /// the network sees
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
    /// Steps between the starts of two windows [default: half the window]
    #[arg(long, value_name = "H")]
    pub hop: Option<usize>,
    /// WAV files with several channels: the one to read, from 0
    #[arg(long, value_name = "N")]
    pub wav_channel: Option<usize>,
}

/// How a series run turns window scores into scores per time step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PointScore {
    Mean,
    Max,
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

/// Train an autoencoder and write a run folder (model.ot, model.json, metrics.csv,
/// loss.png, grid.png).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch train --mode denoise --sigma 0.3 --epochs 20 --out runs/denoise"
)]
pub struct TrainArgs {
    /// Folder with train-/t10k- images and labels as IDX files, .gz or raw, a folder
    /// of PNG/JPEG images, numeric vectors (a CSV with a header row or a 2-D .npy), or
    /// with --window a series (a WAV file, a CSV) or a folder of them [default: data/mnist]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Run folder to write [default: runs/<mode>-<date>-<time>]
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite a run folder that already holds a run (the help that lists what a
    /// resume may change is `settings::command`'s)
    #[arg(long)]
    pub force: bool,
    /// Continue the run in RUN_DIR from its checkpoint (with the flags it was started
    /// with; flags given here must agree, see --force)
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Format of the saved weights
    #[arg(long, value_enum, default_value_t = WeightsFormat::Ot)]
    pub format: WeightsFormat,
    /// Print the finished run's model.json (configs, data, test metrics) instead of the table
    #[arg(long)]
    pub json: bool,
    /// Write the checkpoint (weights, optimiser state, progress) every N epochs
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub checkpoint_every: usize,
    /// Folder for the TensorBoard event files written while training: losses, learning
    /// rate, samples/s, an image grid and a histogram of the validation codes per epoch,
    /// and the settings for TensorBoard's hparams table (`tensorboard --logdir runs`)
    /// [default: RUN_DIR/tb]
    #[arg(long, value_name = "DIR", conflicts_with = "no_tensorboard")]
    pub tensorboard: Option<PathBuf>,
    /// Write no TensorBoard log
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Under torchrun (data-parallel training): how long a rank waits for the others — to
    /// join, and in every exchange of gradients — before it stops with a message naming
    /// the missing ranks
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub dist_timeout: f64,
    /// What the network learns to undo
    #[arg(long, value_enum, default_value_t = Mode::Reconstruct)]
    pub mode: Mode,
    /// Corruption of the inputs in denoise mode
    #[arg(long, value_enum, default_value_t = NoiseKind::Gaussian)]
    pub noise: NoiseKind,
    /// Noise strength: σ for gaussian, the probability p for masking and salt-pepper
    #[arg(long, allow_negative_numbers = true, visible_alias = "sigma", default_value_t = config::DEFAULT_SIGMA, value_name = "F")]
    pub noise_level: f64,
    /// Network family
    #[arg(long, value_enum, default_value_t = Arch::Mlp)]
    pub arch: Arch,
    /// Layers under --arch vae
    #[arg(long, value_enum, default_value_t = Backbone::Mlp)]
    pub backbone: Backbone,
    /// Convolution output channels, input side first (conv layers; each halves the size)
    #[arg(long, action = clap::ArgAction::Set, value_delimiter = ',', default_value = config::DEFAULT_CHANNELS, value_name = "C,C,..")]
    pub channels: Vec<i64>,
    /// Conv: residual blocks (two 3x3 convolutions and a skip) at each level, on both sides
    #[arg(long, default_value_t = config::DEFAULT_BLOCKS, value_name = "N")]
    pub blocks: usize,
    /// Conv: normalisation after each hidden convolution
    #[arg(long, value_enum, default_value_t = Norm::Group)]
    pub norm: Norm,
    /// Conv: how the decoder doubles its resolution
    #[arg(long, value_enum, default_value_t = Upsample::Transpose)]
    pub upsample: Upsample,
    /// MLP: the decoder uses the encoder's weights transposed
    #[arg(long)]
    pub tied_weights: bool,
    /// VAE: weight β of the KL term (β-VAE when not 1) [default: 1]
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub beta: Option<f64>,
    /// Encoder layer widths, input side first; the decoder mirrors them (mlp) [default:
    /// 512,128 for images, 64,32 for vectors]
    #[arg(long, action = clap::ArgAction::Set, value_delimiter = ',', value_name = "W,W,..")]
    pub hidden: Option<Vec<i64>>,
    /// Size k of the latent code z [default: 16 for images; for D features D/2, from 1 to 16]
    #[arg(long, value_name = "K")]
    pub latent: Option<i64>,
    /// Non-linearity between layers
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// Reconstruction loss
    #[arg(long, value_enum, default_value_t = Loss::Mse)]
    pub loss: Loss,
    /// Decoupled weight decay (AdamW)
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0, value_name = "F")]
    pub weight_decay: f64,
    /// λ of an L1 penalty on the code: a sparse autoencoder
    #[arg(long, default_value_t = 0.0, value_name = "λ")]
    pub l1_latent: f64,
    /// Leave this share of each batch's worst-reconstructed rows out of the loss: a
    /// trimmed loss that keeps anomalies in the training data from being learnt [default:
    /// 0.2 for tables trained without --classes, else 0 (series included)]
    #[arg(long, value_name = "F")]
    pub trim: Option<f64>,
    /// Stop after N epochs without a better validation loss and keep the best weights
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<usize>,
    /// Learning-rate schedule [default: warmup-cosine]
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrSchedule>,
    /// Clip the gradient's L2 norm to this value each step
    #[arg(long, value_name = "NORM")]
    pub grad_clip: Option<f64>,
    /// Arithmetic of the training step
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// Weight initialisation [default: kaiming for fully connected layers, torch for
    /// convolutional ones: what trains best on each]
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// How gradients are computed (the result is the same to rounding)
    #[arg(long, value_enum, default_value_t = Engine::Auto)]
    pub engine: Engine,
    /// Passes over the training images
    #[arg(long, default_value_t = config::DEFAULT_EPOCHS, value_name = "N")]
    pub epochs: usize,
    /// Images per optimisation step [default: 64]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam learning rate, the peak of the schedule [default: 3e-3]
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub lr: Option<f64>,
    /// Seed for initialisation, shuffling, noise and the validation split
    #[arg(long, default_value_t = config::DEFAULT_SEED, value_name = "N")]
    pub seed: u64,
    /// Use only the first N training images
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Fraction of the training images held out for per-epoch validation
    #[arg(long, default_value_t = config::DEFAULT_VAL_FRACTION, value_name = "F")]
    pub val_fraction: f64,
    /// Train only on these labels, e.g. the "normal" digits for `ae-tch anomaly` (image
    /// labels are numbers 0-255; vector labels as written in the file)
    #[arg(long, action = clap::ArgAction::Set, value_delimiter = ',', value_name = "C,C,..")]
    pub classes: Option<Vec<String>>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    // Last: a heading applies to every argument after it.
    #[command(flatten, next_help_heading = "Images")]
    pub image: ImageArgs,
    #[command(flatten, next_help_heading = "Vectors (CSV, .npy)")]
    pub vectors: VectorArgs,
}

/// Evaluate a trained run on the test split (t10k files): MSE, squared error per image,
/// PSNR and SSIM, beside PCA with the same k and, for denoising runs, the noisy input.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch eval --run runs/denoise --json")]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Evaluate this TorchScript file (from `export -o FILE.pt`) in place of the run's
    /// weights: its forward on the run's test rows, beside the same baselines
    #[arg(long, value_name = "FILE.pt")]
    pub model: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Which files of a data folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// train-* files
    Train,
    /// t10k-* files
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

/// Write the latent code z of every image: one row per image with index, label (when the
/// data has labels) and z_1..z_k; CSV, or NumPy .npy by extension.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch encode --run runs/demo --split test -o codes.npy")]
pub struct EncodeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
    /// Output file, .csv or .npy
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Write the reconstructions x̂ instead of the codes: one column per pixel (values in
    /// [0, 1]), or for vectors one per feature, named and in the file's own units
    #[arg(long)]
    pub decode: bool,
}

/// Score images or rows by reconstruction error, flag those above a threshold, compare
/// with PCA and an Isolation Forest on the same rows, and explain the worst
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ae-tch train --classes 0,1,2,3,4,5,6,7,8 --out runs/no9    # semi-supervised: never sees a 9\n  \
    ae-tch anomaly --run runs/no9 --plot scores.png -o scores.csv --explain 8\n  \
    ae-tch train --data data/shuttle/shuttle.csv --label-column class --trim 0.1 --out runs/sh\n  \
    ae-tch anomaly --run runs/sh --normal-classes Rad.Flow --contamination 0.07 --explain 20")]
pub struct AnomalyArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
    /// Threshold: this percentile of the validation rows' errors [default: 99, unless
    /// --contamination or --threshold-sigma is given]
    #[arg(long, value_name = "P", group = "rule")]
    pub threshold_percentile: Option<f64>,
    /// Threshold: flag this expected share of anomalies, i.e. the (1 - F) quantile of the
    /// training rows' errors (PyOD's contamination; for data trained on with its anomalies)
    #[arg(long, value_name = "F", group = "rule")]
    pub contamination: Option<f64>,
    /// Threshold: mean + K standard deviations of the validation rows' errors
    #[arg(long, value_name = "K", group = "rule")]
    pub threshold_sigma: Option<f64>,
    /// Labels that count as normal, for ROC-AUC, precision and recall [default: the run's --classes]
    #[arg(long, action = clap::ArgAction::Set, value_delimiter = ',', value_name = "C,C,..")]
    pub normal_classes: Option<Vec<String>>,
    /// Per-row scores: index (images) or row (vectors), label, score, is_anomaly (CSV)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Series runs: a time step's score from the windows that cover it, their taper-
    /// weighted mean or their largest
    #[arg(long, value_enum, default_value_t = PointScore::Mean)]
    pub point_score: PointScore,
    /// Histograms of normal and anomalous scores with the threshold, .png or .svg
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Explain the N highest-scoring rows: for vectors each feature's value, reconstruction
    /// and share of the error (CSV); for images input, reconstruction and per-pixel error
    /// heat map (a sheet)
    #[arg(long, value_name = "N")]
    pub explain: Option<usize>,
    /// Where --explain writes [default: RUN/explain.csv for vectors, RUN/explain.png for
    /// images]
    #[arg(long, value_name = "FILE", requires = "explain")]
    pub explain_out: Option<PathBuf>,
    /// Skip the PCA and Isolation Forest baselines
    #[arg(long)]
    pub no_baselines: bool,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Which classifiers `probe` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMethod {
    /// multinomial logistic regression on standardised features
    Logreg,
    /// k nearest neighbours, L2 distance, majority vote
    Knn,
    Both,
}

/// How much of the labels the codes carry: logistic regression and k-NN fitted on the
/// training split's codes and scored on the test split, beside the raw values and PCA
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ae-tch probe --run runs/demo\n  \
    ae-tch probe --run runs/demo --labels-per-class 100 --json")]
pub struct ProbeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ProbeMethod::Both)]
    pub method: ProbeMethod,
    /// Fit on only this many labelled training rows of each class (a seeded choice)
    #[arg(long, value_name = "N")]
    pub labels_per_class: Option<usize>,
    /// The confusion matrix of the logistic regression on the codes, .png or .svg
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Seed of the validation slice (which chooses λ and k) and of --labels-per-class
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Train a classifier on a trained autoencoder's encoder: a linear head from the code to
/// the classes, cross-entropy on the labelled rows, early stopping on a labelled
/// validation slice. Writes a run folder (model.ot, model.json, metrics.csv, loss.png,
/// confusion.png) that `eval` and `export` read.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ae-tch finetune --run runs/demo --out runs/clf --labels-per-class 100\n  \
    ae-tch finetune --run runs/demo --out runs/clf-scratch --labels-per-class 100 --from-scratch\n  \
    ae-tch finetune --resume runs/clf")]
pub struct FinetuneArgs {
    /// Autoencoder run folder: its encoder, data and train/validation split
    #[arg(long = "run", value_name = "RUN_DIR", required_unless_present = "resume")]
    pub run: Option<PathBuf>,
    /// Folder for the classifier run
    #[arg(long, value_name = "CLF_DIR", required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the classifier run in this folder from its checkpoint
    #[arg(long, value_name = "CLF_DIR", conflicts_with_all = ["run", "out", "labels_per_class", "freeze_encoder", "from_scratch", "lr", "batch_size", "patience", "weight_decay", "seed"])]
    pub resume: Option<PathBuf>,
    /// Labelled rows per class, a seeded choice from the training split; a fifth of them
    /// (at least one) are the validation slice [default: the whole training and
    /// validation splits]
    #[arg(long, value_name = "N")]
    pub labels_per_class: Option<usize>,
    /// Train only the head; the encoder keeps the autoencoder's weights
    #[arg(long)]
    pub freeze_encoder: bool,
    /// Start the encoder from fresh random weights instead (the baseline: the identical
    /// network and labels without pretraining)
    #[arg(long)]
    pub from_scratch: bool,
    /// Epochs at most (an epoch is at least 3,200 rows: a smaller labelled set is
    /// repeated) [default: 50; with --resume, the run's own]
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, allow_negative_numbers = true, default_value_t = config::FINETUNE_LR)]
    pub lr: f64,
    #[arg(long, default_value_t = config::FINETUNE_BATCH_SIZE)]
    pub batch_size: usize,
    /// Stop after this many epochs without a lower validation loss (the best weights are
    /// kept)
    #[arg(long, default_value_t = config::FINETUNE_PATIENCE, value_name = "EPOCHS")]
    pub patience: usize,
    /// AdamW's decoupled weight decay
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Seed of the head's initialisation, the labelled rows and the batch order
    #[arg(long, default_value_t = config::DEFAULT_SEED)]
    pub seed: u64,
    /// Write no TensorBoard log (default: CLF_DIR/tb, as for `train`)
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Replace a classifier run already in --out
    #[arg(long)]
    pub force: bool,
    /// Print model.json instead of a summary
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Scatter the test images' latent codes, coloured by label (PCA to 2-D when k > 2); for
/// k = 2 also decode a lattice of codes into images (`--manifold`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  ae-tch plot-latent --run runs/demo -o latent.png\n  \
    ae-tch train --latent 2 --out runs/k2 && ae-tch plot-latent --run runs/k2 -o z.png --manifold m.png")]
pub struct PlotLatentArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Scatter plot, .png or .svg
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Also write the decoded manifold (k = 2 only), .png or .svg
    #[arg(long, value_name = "FILE")]
    pub manifold: Option<PathBuf>,
    /// Lattice points per axis of the manifold
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub steps: usize,
    /// How codes with k > 2 come down to 2-D: pca (linear, every test row) or tsne
    /// (neighbours kept together, on a seeded sample of --points rows)
    #[arg(long, value_enum, default_value_t = LatentMethod::Pca)]
    pub method: LatentMethod,
    /// t-SNE: rows embedded (a seeded choice among the test rows)
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub points: usize,
    /// t-SNE: Barnes–Hut's θ, between speed (larger) and exact repulsion (smaller), at most
    /// 0.7; 0 computes exact gradients, whose cost grows with the square of --points
    #[arg(long, default_value_t = 0.5, value_name = "θ")]
    pub angle: f64,
    /// t-SNE: the effective number of neighbours of each point
    #[arg(long, default_value_t = 30.0)]
    pub perplexity: f64,
    /// t-SNE: seed of the sample and of the initial layout
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Projections of the codes to 2-D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatentMethod {
    Pca,
    Tsne,
}

/// Whether to flip an image's brightness before the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Invert {
    /// Flip images that are mostly light (dark strokes on a light ground)
    Auto,
    Yes,
    No,
}

/// Denoise your own image files (PNG, JPEG) with a trained run: each is converted as the
/// run's images were (colour, transparency) and resized to the model's input size; the
/// output shows it beside the result.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch denoise --run runs/demo scans/*.png -o cleaned --add-noise 0.3 --grid sheet.png"
)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Image files; for a run trained on vectors, CSV or .npy files
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output folder: per image <name>-denoised.png (the result at the file's size) and
    /// <name>-compare.png (input and result side by side); for vectors
    /// <name>-denoised.csv|npy, the same columns in the file's units
    #[arg(short, long, value_name = "OUT_DIR")]
    pub output: PathBuf,
    /// Corrupt the inputs with Gaussian noise of this σ first (fixed seed), to see the
    /// model at work on clean data; the comparison shows clean, noisy and denoised (for
    /// vectors σ is in scaled units; for series the noise goes on the steps, σ times the
    /// channel's scale, the noisy series is written as <stem>-noisy too and both SNRs
    /// are printed)
    #[arg(long, value_name = "SIGMA")]
    pub add_noise: Option<f64>,
    /// Flip brightness so strokes are light on dark, as in MNIST (grayscale runs only)
    #[arg(long, value_enum, default_value_t = Invert::Auto)]
    pub invert: Invert,
    /// Also write one sheet with every input and result, .png or .svg
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
}

/// Draw codes from a VAE's prior N(0, I) and decode them into a grid of images.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch train --arch vae --latent 8 --out runs/vae && ae-tch sample --run runs/vae -n 40 -o samples.png"
)]
pub struct SampleArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of samples (10 a row)
    #[arg(short, default_value_t = 40, value_name = "N")]
    pub n: usize,
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Output image, .png or .svg
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Decode the straight line between two test images' codes (any architecture).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch interpolate --run runs/demo --from 0 --to 7 --steps 12 -o path.png"
)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Index of the first test image
    #[arg(long, value_name = "I")]
    pub from: usize,
    /// Index of the last test image
    #[arg(long, value_name = "J")]
    pub to: usize,
    /// Points on the path, ends included
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub steps: usize,
    /// Output image, .png or .svg
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Plot train and validation loss per epoch from one or more metrics.csv files.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch plot-loss runs/a/metrics.csv runs/b/metrics.csv -o compare.png"
)]
pub struct PlotLossArgs {
    /// Run folders or their metrics.csv files; several overlay, labelled by their run
    /// folder's name
    #[arg(required = true, value_name = "RUN_DIR|METRICS_CSV")]
    pub metrics: Vec<PathBuf>,
    /// Output image, .png or .svg
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Logarithmic loss axis
    #[arg(long)]
    pub log_y: bool,
    /// Legend name of each run, in the order given (once per run) [default: the run
    /// folder's name, or its path where two names are the same]
    #[arg(long, value_name = "NAME")]
    pub label: Vec<String>,
}

/// Render test images before and after the model: clean / noisy input / reconstruction.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch grid --run runs/denoise -n 12 -o grid.png")]
pub struct GridArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Number of test images (columns)
    #[arg(short, default_value_t = 10, value_name = "N")]
    pub n: usize,
    /// Output image, .png or .svg
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(help("lr").ends_with(&format!("[default: {:e}]", config::DEFAULT_LR)));
        assert!(help("batch_size").ends_with(&format!("[default: {}]", config::DEFAULT_BATCH_SIZE)));
        assert_eq!((t.lr, t.batch_size, t.lr_schedule), (None, None, None));
        assert_eq!((t.latent, t.noise_level, t.mode), (None, 0.3, Mode::Reconstruct));
        let cli = Cli::try_parse_from(["ae-tch", "train", "--sigma", "0.5"]).unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!((t.noise, t.noise_level), (NoiseKind::Gaussian, 0.5));
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
