//! The flags of the commands that read a trained run: eval, encode, anomaly, probe,
//! plot-latent, denoise, sample, interpolate, plot-loss and grid.

use super::{RunArgs, SplitArg};
use clap::Args;
use std::path::PathBuf;

/// How a series run turns window scores into scores per time step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PointScore {
    Mean,
    Max,
}

/// Evaluate a trained run on its test rows: MSE and squared error per image or row (for
/// images PSNR and SSIM too), beside PCA with the same k and, for
/// denoising runs, the noisy input.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch eval --run runs/denoise --json")]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// Evaluate this TorchScript file (from `export -o FILE.pt`) in place of the run's
    /// weights: its forward on the run's test rows, beside the same baselines
    #[arg(long, value_name = "FILE.pt")]
    pub model: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Write the latent code z of every image or row: one line each with its index (or row),
/// label (when the data has labels) and z_1..z_k; CSV, or NumPy .npy by extension.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ae-tch encode --run runs/demo --split test -o codes.npy")]
pub struct EncodeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub read: super::ReadArgs,
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

/// Score images or rows by reconstruction error (a table's averaged over its ensemble, with
/// how far its values lie in their columns' tails for runs trained with --tail-score), flag
/// those above a threshold,
/// compare with PCA and an Isolation Forest on the same rows, and explain the worst
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
    #[command(flatten)]
    pub read: super::ReadArgs,
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
    /// Threshold: this percentile of the validation rows' scores [default: 99, unless
    /// --contamination or --threshold-sigma is given]
    #[arg(long, value_name = "P", group = "rule")]
    pub threshold_percentile: Option<f64>,
    /// Threshold: flag this expected share of anomalies, i.e. the (1 - F) quantile of the
    /// training rows' scores (PyOD's contamination; for data trained on with its anomalies)
    #[arg(long, value_name = "F", group = "rule")]
    pub contamination: Option<f64>,
    /// Threshold: mean + K standard deviations of the validation rows' scores
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
    /// Histograms of normal and anomalous scores with the threshold (one of every row's
    /// score without labels), .png or .svg; a series run draws the series above its scores
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
    #[command(flatten)]
    pub read: super::ReadArgs,
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

/// Scatter the test rows' latent codes, coloured by label (PCA or t-SNE to 2-D when k > 2);
/// for an image run with k = 2 also decode a lattice of codes into images (`--manifold`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  ae-tch plot-latent --run runs/demo -o latent.png\n  \
    ae-tch train --latent 2 --out runs/k2 && ae-tch plot-latent --run runs/k2 -o z.png --manifold m.png")]
pub struct PlotLatentArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Data folder or vector file [default: the one the run was trained on]
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub read: super::ReadArgs,
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

/// Denoise your own files with a trained run: images (PNG, JPEG, WebP, BMP, TIFF) converted
/// as the run's images were (colour, transparency), resized to the model's input size and
/// shown beside the result; for a vector run CSV or .npy rows, for a series run WAV or CSV
/// series, written back in the file's own form (a WAV at another rate than the run's is
/// resampled to it and the result back to the file's rate).
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
    /// are printed; for a --domain stft run it is white noise at this SNR in dB)
    #[arg(long, value_name = "SIGMA")]
    pub add_noise: Option<f64>,
    /// Flip brightness so strokes are light on dark, as in MNIST (grayscale runs only)
    #[arg(long, value_enum, default_value_t = Invert::Auto)]
    pub invert: Invert,
    /// Also write one sheet with every input and result, .png or .svg
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    #[command(flatten)]
    pub read: super::ReadArgs,
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
