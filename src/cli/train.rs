//! The flags of `train` (with its image and vector groups) and `finetune`.

use super::{values, RuntimeArgs};
use crate::config::{
    self, Activation, Arch, Augment, Backbone, Engine, Init, Loss, LrSchedule, Mode, NoiseKind,
    Norm, Precision, Start, Upsample, WeightsFormat,
};
use crate::data::spec::{
    Background, ColorChoice, Domain, ImageRequest, ScaleKind, Size, WindowChoice,
};
use clap::Args;
use std::path::PathBuf;

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
    /// Leave out image files that cannot be read (listed once, and in the run folder)
    /// instead of stopping at the first
    #[arg(long)]
    pub skip_unreadable: bool,
}

impl ImageArgs {
    pub fn request(&self) -> ImageRequest {
        ImageRequest {
            color: self.color,
            size: self.resize,
            background: self.background,
            skip_unreadable: self.skip_unreadable,
            classes: Vec::new(),
        }
    }
}

/// How a CSV or .npy file becomes the model's vectors (recorded in the run, so later
/// commands read and split the file the same way).
#[derive(Debug, Clone, Args)]
pub struct VectorArgs {
    /// CSV: the column that holds each row's label (any text; it is not a feature); none:
    /// no labels [default: a column named label, class, target, y, is_anomaly, anomaly or
    /// outlier (any case), when --columns is not given]
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// CSV: the feature columns, in order [default: every column but the label's, less a
    /// column named id or index that holds distinct integers]
    #[arg(long, value_delimiter = ',', value_name = "A,B,..")]
    pub columns: Option<Vec<String>>,
    /// CSV: columns to leave out of the features (the others are used)
    #[arg(long, value_delimiter = ',', value_name = "A,B,..", conflicts_with = "columns")]
    pub ignore_columns: Option<Vec<String>>,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// .npy: a 1-D integer array with one label per row of --data
    #[arg(long, value_name = "FILE.npy")]
    pub labels: Option<PathBuf>,
    /// A separate test file in the same format as --data (for series, a file or a folder
    /// of them) [default: hold out --test-fraction of every class of --data, drawn with
    /// --seed; for series, the last --test-fraction of the series, or of a folder's files
    /// that share drawn whole]
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// .npy: a 1-D integer array with one label per row of the --test file
    #[arg(long, value_name = "FILE.npy", requires = "test")]
    pub test_labels: Option<PathBuf>,
    /// Share of every class (of a series: of its steps, from the end; of a folder of
    /// series: of its files) held out as the test set when there is no --test file
    #[arg(long, default_value_t = config::DEFAULT_TEST_FRACTION, value_name = "F")]
    pub test_fraction: f64,
    /// How features are scaled, fitted on the training rows only (reconstruction error is
    /// measured in these scaled units) [default: minmax for a table, standard for windows
    /// of a series]
    #[arg(long, value_enum)]
    pub scale: Option<ScaleKind>,
    /// Read --data as one long series (a CSV then has one row per time step), or a folder
    /// as several, and cut each into windows of N steps, the rows the network sees; auto:
    /// half the period of the training part's autocorrelation; none: a CSV is a table
    /// [default: auto for WAV files and for a CSV whose time or timestamp column
    /// increases; else a table]
    #[arg(long, value_name = "N|auto|none", value_parser = values::window)]
    pub window: Option<WindowChoice>,
    /// Steps between the starts of two windows [default: half a given window; with auto, 1
    /// for scoring (more when the windows would not fit in memory), a quarter of the
    /// window for --mode denoise]
    #[arg(long, value_name = "H")]
    pub hop: Option<usize>,
    /// What a series' rows hold [default: stft for WAV files under --mode denoise (frame
    /// 512, hop 128 at 16 kHz, scaled with the rate), else wave]
    #[arg(long, value_enum)]
    pub domain: Option<Domain>,
    /// --domain stft: frames per row, odd (the frame and (N - 1) / 2 on either side)
    /// [default: 5]
    #[arg(long, value_name = "N")]
    pub context: Option<usize>,
}

/// Train an autoencoder and write a run folder (model.ot, model.json, metrics.csv,
/// loss.png, grid.png).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ae-tch train --mode denoise --sigma 0.3 --epochs 20 --out runs/denoise"
)]
pub struct TrainArgs {
    /// Folder with train-/t10k- images and labels as IDX files, .gz or raw, a folder
    /// of PNG/JPEG/WebP/BMP/TIFF images, numeric vectors (a CSV with a header row or a
    /// 2-D .npy), or with --window a series (a WAV file, a CSV) or a folder of them [default: data/mnist]
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
    /// Noise strength: σ for gaussian, the probability p for masking and salt-pepper; for
    /// audio noise a signal-to-noise ratio in dB, or a range LOW:HIGH drawn from per
    /// recording [default: 0.3; -5:20 for audio noise]
    #[arg(long, allow_hyphen_values = true, visible_alias = "sigma", default_value_t = values::Level { low: config::DEFAULT_SIGMA, high: None }, hide_default_value = true, value_parser = values::level, value_name = "F|LOW:HIGH")]
    pub noise_level: values::Level,
    /// Network family [default: conv for images, mlp for vectors and series; mlp when
    /// --hidden or --tied-weights is given]
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Layers under --arch vae
    #[arg(long, value_enum, default_value_t = Backbone::Mlp)]
    pub backbone: Backbone,
    /// Convolution output channels, input side first (conv layers; each halves the size)
    #[arg(long, action = clap::ArgAction::Set, value_delimiter = ',', default_value = config::DEFAULT_CHANNELS, value_name = "C,C,..")]
    pub channels: Vec<i64>,
    /// Conv: residual blocks (two 3x3 convolutions and a skip) at each level, on both sides
    #[arg(long, default_value_t = config::DEFAULT_BLOCKS, value_name = "N")]
    pub blocks: usize,
    /// Conv: normalisation after each hidden convolution [default: none for colour images,
    /// whose per-image colour and brightness a per-image norm would wash out; group
    /// otherwise]
    #[arg(long, value_enum)]
    pub norm: Option<Norm>,
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
    /// Reconstruction loss [default: bce for images, mse for vectors and series]
    #[arg(long, value_enum, default_value_t = Loss::Mse, hide_default_value = true)]
    pub loss: Loss,
    /// Decoupled weight decay (AdamW)
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0, value_name = "F")]
    pub weight_decay: f64,
    /// λ of an L1 penalty on the code: a sparse autoencoder
    #[arg(long, default_value_t = 0.0, value_name = "λ")]
    pub l1_latent: f64,
    /// Tables only: score rows also by how far their values lie in their columns' tails
    /// (ECOD), with each feature's error weighed by its median over the training rows;
    /// `--tail-score false` leaves it out [default: on for a table of at most 64 features,
    /// off for wider ones, where it lowers ROC-AUC (docs/guide/vectors.md)]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tail_score: Option<bool>,
    /// Tables only: score rows by K autoencoders, the run's and K - 1 trained after it from
    /// the next seeds, averaging each one's log error on its own training rows' scale
    /// [default: 5, fewer above 50,000 training rows (250,000 rows trained in all)]
    #[arg(long, value_name = "K")]
    pub ensemble: Option<usize>,
    /// Leave this share of each batch's worst-reconstructed rows out of the loss: a
    /// trimmed loss that keeps anomalies in the training data from being learnt [default:
    /// 0.2 for tables trained without --classes, else 0 (series included)]
    #[arg(long, value_name = "F")]
    pub trim: Option<f64>,
    /// Stop after N epochs without a better validation loss and keep the best weights
    /// (0: off, train every epoch) [default: 5; off with --val-fraction 0]
    #[arg(long, value_name = "PATIENCE")]
    pub early_stop: Option<usize>,
    /// Learning-rate schedule [default: warmup-cosine]
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrSchedule>,
    /// Clip the gradient's L2 norm to this value each step
    #[arg(long, value_name = "NORM")]
    pub grad_clip: Option<f64>,
    /// Arithmetic of the training step [default: bf16 for a convolutional network on
    /// a CPU with AMX, which computes bf16 faster than fp32 (`ae-tch doctor` says), fp32
    /// elsewhere]
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Weight initialisation [default: kaiming for fully connected layers, torch for
    /// convolutional ones: what trains best on each]
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// What the untrained network puts out: the training rows' mean (the output layer's
    /// weights at zero, its bias at the mean) or what the initialisation gives [default:
    /// mean for fully connected networks, random for convolutional ones]
    #[arg(long, value_enum)]
    pub start: Option<Start>,
    /// What each training batch's images go through: as they are, or each mirrored left
    /// to right with probability 1/2 [default: flip for fewer than 5,000 colour training
    /// images without --classes, else none]
    #[arg(long, value_enum)]
    pub augment: Option<Augment>,
    /// How gradients are computed (the result is the same to rounding)
    #[arg(long, value_enum, default_value_t = Engine::Auto)]
    pub engine: Engine,
    /// Passes over the training images [default: 20; more for a small set, to take 1,500
    /// steps; fewer where they would pass about 3e12 multiply-adds (some 3 minutes on 2
    /// CPU cores), which the first line says]
    #[arg(long, default_value_t = config::DEFAULT_EPOCHS, value_name = "N", hide_default_value = true)]
    pub epochs: usize,
    /// Images per optimisation step [default: 64; for a convolutional network on a small set,
    /// down to 16 so that an epoch takes 64 steps]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam learning rate, the peak of the schedule [default: 3e-3; an MLP on more than 1,024
    /// input values takes 3e-3 · 1,024 / their number]
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
    #[command(flatten, next_help_heading = "Vectors (CSV, .npy, .npz)")]
    pub vectors: VectorArgs,
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
