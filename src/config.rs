//! Plain configuration structs: the single home of defaults. The CLI fills them,
//! `run_store::RunManifest` records them in `model.json`, and every later command rebuilds
//! the model from them.

use crate::data::spec::{DataSpec, ImageSpec};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Encoder widths, as the `--hidden` flag spells them.
pub const DEFAULT_HIDDEN: &str = "512,128";
pub const DEFAULT_LATENT: i64 = 16;
/// The MLP's widths for vectors when `--hidden` is not given: PyOD's AutoEncoder default.
pub const VECTOR_HIDDEN: [i64; 2] = [64, 32];

/// `--hidden` when not given: `DEFAULT_HIDDEN` for images, `VECTOR_HIDDEN` for vectors.
pub fn default_hidden(input: &DataSpec) -> Vec<i64> {
    match input {
        DataSpec::Image(_) => DEFAULT_HIDDEN.split(',').filter_map(|w| w.parse().ok()).collect(),
        DataSpec::Vector(_) => VECTOR_HIDDEN.to_vec(),
    }
}

/// A flag's value, or a combination of flags, that cannot work: bad usage, which the
/// binary reports with exit code 2 as it does clap's own parse errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// `--latent` when not given: `DEFAULT_LATENT` for images; for D features D/2 (at least 1,
/// at most `DEFAULT_LATENT`), so the code is always narrower than the input, which is
/// what makes reconstruction error an anomaly score.
pub fn default_latent(input: &DataSpec) -> i64 {
    match input {
        DataSpec::Image(_) => DEFAULT_LATENT,
        DataSpec::Vector(v) => (v.columns.len() as i64 / 2).clamp(1, DEFAULT_LATENT),
    }
}
pub const DEFAULT_SIGMA: f64 = 0.3;
pub const DEFAULT_EPOCHS: usize = 20;
/// Batch size and peak rate of the warm-up + cosine schedule, for every network (see
/// `ArchDefaults`).
pub const DEFAULT_BATCH_SIZE: usize = 64;
pub const DEFAULT_LR: f64 = 3e-3;
pub const DEFAULT_SEED: u64 = 42;
/// `finetune`'s defaults: Adam at a constant rate, stopped early on the validation loss.
pub const FINETUNE_EPOCHS: usize = 50;
pub const FINETUNE_LR: f64 = 1e-3;
pub const FINETUNE_BATCH_SIZE: usize = 64;
pub const FINETUNE_PATIENCE: usize = 5;
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;
/// `--trim` for vector data trained without `--classes` (so possibly with anomalies among
/// its rows): on data/shuttle, unsupervised, 20 epochs, 3 seeds, ROC-AUC 0.998 against
/// 0.78 untrimmed (0.1: 0.89; 0.15: 0.98; 0.3: 0.997).
pub const VECTOR_TRIM: f64 = 0.2;
/// Share of a vector file's rows held out for testing when no test file is given: the
/// 70/30 split of ADBench (Han et al. 2022).
pub const DEFAULT_TEST_FRACTION: f64 = 0.3;
/// The data folder used when `--data` is not given (relative to the working directory,
/// then to the source checkout the binary was built from).
pub const DEFAULT_DATA_DIR: &str = "data/mnist";

/// What the network is asked to undo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// x → x̂: plain reconstruction
    #[default]
    Reconstruct,
    /// corrupted x → x̂ ≈ x: the corruption `--noise` names (Gaussian by default), drawn
    /// afresh every step
    Denoise,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Reconstruct => "reconstruct",
            Mode::Denoise => "denoise",
        })
    }
}

/// How denoising inputs are corrupted; `noise_level` is σ or p.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseKind {
    /// clamp(x + σ·ε, 0, 1), ε ~ N(0, 1)
    #[default]
    Gaussian,
    /// each pixel zeroed with probability p (Vincent et al. 2008)
    Masking,
    /// each pixel set to 0 or 1 (equally likely) with probability p
    SaltPepper,
}

impl fmt::Display for NoiseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoiseKind::Gaussian => "gaussian",
            NoiseKind::Masking => "masking",
            NoiseKind::SaltPepper => "salt-pepper",
        })
    }
}

/// The reconstruction loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// mean squared error per pixel
    #[default]
    Mse,
    /// binary cross-entropy on the sigmoid outputs, per pixel
    Bce,
}

/// How the weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// tch's defaults: Kaiming-uniform weights (trains MLPs faster)
    #[default]
    Kaiming,
    /// torch.nn's defaults, uniform in ±1/√fan_in: the same model a PyTorch script builds
    /// (trains convolutional nets faster)
    Torch,
}

/// The training settings that depend on the network, used where the flags do not set them.
/// Chosen from `scripts/sweep.sh levers` (README, "Defaults and the sweep behind them").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchDefaults {
    pub lr: f64,
    pub batch_size: usize,
    pub lr_schedule: LrSchedule,
    pub init: Init,
}

impl ArchDefaults {
    /// Batches of 64 and a warm-up + cosine schedule peaking at 3e-3 for every network (they
    /// reach further in the same epochs than 128 at a constant 1e-3); Kaiming init for MLPs
    /// (the demo's MLP: 9.39 against 11.10 with torch.nn's), torch.nn's for convolutional
    /// nets (10.72 → 8.38 at 10 epochs).
    pub fn for_layers(layers: &Layers) -> Self {
        let init = match layers {
            Layers::Mlp { .. } => Init::Kaiming,
            Layers::Conv(_) => Init::Torch,
        };
        ArchDefaults {
            lr: DEFAULT_LR,
            batch_size: DEFAULT_BATCH_SIZE,
            lr_schedule: LrSchedule::WarmupCosine,
            init,
        }
    }
}

/// How weights are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsFormat {
    /// tch's VarStore file (a PyTorch zip archive): model.ot
    #[default]
    Ot,
    /// safetensors, loadable with `safetensors.torch.load_file`: model.safetensors
    Safetensors,
}

/// The number format of a training step's arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    #[default]
    Fp32,
    /// bf16 weights, activations and gradients with an fp32 master copy and fp32 Adam
    /// (MLPs; meant for GPUs; CPUs without bf16 units emulate it slowly)
    Bf16,
}

/// How a training step computes its gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// the hand-written forward and backward for plain MLPs, autograd for the rest
    #[default]
    Auto,
    /// libtorch autograd for every model (the reference the hand-written step is tested
    /// against)
    Autograd,
}

/// The non-linearity between layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    #[default]
    Relu,
    /// slope 0.01 below zero
    LeakyRelu,
    Tanh,
    Gelu,
}

/// How the learning rate moves over the epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    #[default]
    Constant,
    /// lr · (1 + cos(π·(epoch−1)/epochs)) / 2
    Cosine,
    /// linear warm-up over the first 5% of the steps, then a cosine decay to 0 by the
    /// last step (set per step)
    WarmupCosine,
    /// halve the rate after 3 epochs without a new best validation loss
    Plateau,
}

/// The network family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// fully connected: --hidden widths, mirrored
    #[default]
    Mlp,
    /// stride-2 3x3 convolutions (--channels), a dense code, mirrored transposed convolutions
    Conv,
    /// variational: the encoder gives μ and log σ², trained on reconstruction + β·KL
    Vae,
}

/// The layers under a VAE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backbone {
    #[default]
    Mlp,
    Conv,
}

pub const DEFAULT_CHANNELS: &str = "32,64";
pub const DEFAULT_BLOCKS: usize = 1;

/// Where tensors live. Parsed from `auto`, `cpu`, `cuda` or `cuda:N`; resolved against
/// what libtorch sees by `device::resolve`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The first CUDA device when there is one, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("unknown device '{s}': expected auto, cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The layers between the input and the code, each kind with only the settings it uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Layers {
    /// Fully connected: encoder widths, input side first; the decoder mirrors them.
    Mlp {
        hidden: Vec<i64>,
        /// The decoder reuses the encoder's transposed weights.
        #[serde(default)]
        tied_weights: bool,
    },
    /// Stride-2 3×3 convolutions, optionally with GroupNorm and residual blocks, a dense
    /// code, and the mirror image upsampling back.
    Conv(ConvLayers),
}

/// The convolutional family. A run written before `blocks`, `groups` and `upsample`
/// existed (format_version 2) reads as the plain network it was: no blocks, no
/// normalisation, transposed convolutions. Those values are left out when written, so the
/// plain network's config (and a version 2 checkpoint's config hash) reads as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayers {
    /// Output channels of each stride-2 level, input side first.
    pub channels: Vec<i64>,
    /// Residual blocks (two 3×3 convolutions and a skip) after each downsampling, and
    /// before each upsampling in the decoder.
    #[serde(default, skip_serializing_if = "is_default")]
    pub blocks: usize,
    /// GroupNorm after every hidden convolution, with gcd(groups, channels) groups;
    /// 0: no normalisation.
    #[serde(default, skip_serializing_if = "is_default")]
    pub groups: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub upsample: Upsample,
}

impl ConvLayers {
    /// The plain stride-2 network with these channels.
    pub fn plain(channels: Vec<i64>) -> Self {
        ConvLayers { channels, blocks: 0, groups: 0, upsample: Upsample::Transpose }
    }

    /// GroupNorm groups for a layer of `channels` (0: none).
    pub fn groups_for(&self, channels: i64) -> i64 {
        if self.groups == 0 {
            0
        } else {
            gcd(self.groups, channels)
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// How the convolutional decoder doubles its resolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Upsample {
    /// stride-2 3x3 transposed convolutions, cropped where the size was odd
    #[default]
    Transpose,
    /// nearest-neighbour resize to the encoder's size, then a 3x3 convolution (no
    /// checkerboard artefacts)
    Resize,
}

/// Normalisation of the hidden convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Norm {
    /// GroupNorm with 8 groups (fewer when the channels are not a multiple of 8)
    #[default]
    Group,
    None,
}

/// Groups of `--norm group`.
pub const NORM_GROUPS: i64 = 8;

/// Everything needed to rebuild the network, and nothing about how it was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// What the network takes: for images C×H×W, seen as `C*H*W` values.
    pub input: DataSpec,
    pub layers: Layers,
    /// Size k of the code z.
    pub latent: i64,
    #[serde(default)]
    pub activation: Activation,
    /// The encoder gives μ and log σ² and the code is sampled from them (a VAE).
    #[serde(default)]
    pub variational: bool,
    /// A classifier (`finetune`): the encoder followed by a linear layer from the code to
    /// one logit per class, in place of the decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
}

/// The classification head of a `finetune` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Class names, in label-code order (one logit each).
    pub classes: Vec<String>,
}

/// How a classifier run (`finetune`) started and chose its labelled rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finetune {
    /// The autoencoder run whose architecture and data the classifier takes, and (unless
    /// `from_scratch`) whose encoder weights it starts from.
    pub run: std::path::PathBuf,
    /// The encoder was freshly initialised instead (`--from-scratch`).
    #[serde(default)]
    pub from_scratch: bool,
    /// Only the head trained; the encoder kept its starting weights.
    #[serde(default)]
    pub freeze_encoder: bool,
    /// Labelled rows per class (`--labels-per-class`), a fifth of them (at least one) the
    /// validation slice; absent: the run's whole training and validation splits.
    #[serde(default)]
    pub labels_per_class: Option<usize>,
    /// The autoencoder run's seed, which drew its train/validation (and vector test)
    /// split: the classifier sees the same rows in the same roles.
    pub split_seed: u64,
}

/// The CLI's defaults: an MLP for 28×28 grayscale images.
impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            input: DataSpec::Image(ImageSpec::gray(28, 28)),
            layers: Layers::Mlp { hidden: vec![512, 128], tied_weights: false },
            latent: DEFAULT_LATENT,
            activation: Activation::Relu,
            variational: false,
            head: None,
        }
    }
}

impl ModelConfig {
    pub fn input_dim(&self) -> i64 {
        self.input.values()
    }

    /// The input's image shape (channels, height, width); vectors of D features read as
    /// one 1×D strip.
    pub fn image_shape(&self) -> (i64, i64, i64) {
        match &self.input {
            DataSpec::Image(s) => (s.channels(), s.height, s.width),
            DataSpec::Vector(v) => (1, 1, v.columns.len() as i64),
        }
    }

    /// The architecture as `--arch` (and `--backbone`) name it: "mlp", "conv", "vae",
    /// "vae on conv".
    pub fn arch_name(&self) -> &'static str {
        match (&self.layers, self.variational) {
            (Layers::Mlp { .. }, false) => "mlp",
            (Layers::Conv(_), false) => "conv",
            (Layers::Mlp { .. }, true) => "vae",
            (Layers::Conv(_), true) => "vae on conv",
        }
    }

    /// The architecture and its shape in a few words: "mlp 784-512-128-16", "vae
    /// 784-256-64-16", "conv 1×28×28 → channels 32,64 (1 residual block a level,
    /// GroupNorm) → 30".
    pub fn shape_summary(&self) -> String {
        let widths = || {
            let w: Vec<String> = self.encoder_widths().iter().map(|w| w.to_string()).collect();
            w.join("-")
        };
        match &self.layers {
            Layers::Mlp { tied_weights, .. } => {
                let tied = if *tied_weights { ", tied weights" } else { "" };
                format!("{} {}{tied}", self.arch_name(), widths())
            }
            Layers::Conv(c) => {
                let (ch, h, w) = self.image_shape();
                let channels: Vec<String> = c.channels.iter().map(|c| c.to_string()).collect();
                let mut extras = Vec::new();
                if c.blocks > 0 {
                    let s = if c.blocks == 1 { "" } else { "s" };
                    extras.push(format!("{} residual block{s} a level", c.blocks));
                }
                if c.groups > 0 {
                    extras.push("GroupNorm".to_string());
                }
                let extras = if extras.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", extras.join(", "))
                };
                format!(
                    "{} {ch}×{h}×{w} → channels {}{extras} → {}",
                    self.arch_name(),
                    channels.join(","),
                    self.latent
                )
            }
        }
    }

    /// True for a plain fully connected autoencoder (what the hand-written step does).
    pub fn is_plain_mlp(&self) -> bool {
        matches!(self.layers, Layers::Mlp { tied_weights: false, .. }) && !self.variational
    }

    /// Layer widths from input to code: `[C*H*W, hidden.., latent]` (MLP layers; conv
    /// layers have none between the input and the code).
    pub fn encoder_widths(&self) -> Vec<i64> {
        let mut widths = vec![self.input_dim()];
        if let Layers::Mlp { hidden, .. } = &self.layers {
            widths.extend(hidden);
        }
        widths.push(self.latent);
        widths
    }

    /// Width of the encoder's output: the code, or μ and log σ² side by side.
    pub fn encoder_out(&self) -> i64 {
        if self.variational {
            2 * self.latent
        } else {
            self.latent
        }
    }

    /// Spatial sizes through `channels.len()` stride-2 convolutions:
    /// `[(h, w), (⌈h/2⌉, ⌈w/2⌉), …]`.
    pub fn conv_sizes(&self, layers: usize) -> Vec<(i64, i64)> {
        let (_, h, w) = self.image_shape();
        let mut sizes = vec![(h, w)];
        for _ in 0..layers {
            let (h, w) = sizes[sizes.len() - 1];
            sizes.push(((h + 1) / 2, (w + 1) / 2));
        }
        sizes
    }

    /// Number of weights and biases the network will have: checked against the built
    /// model in the tests, and computed before building so `validate` can refuse a
    /// network too large to allocate.
    pub fn parameter_count(&self) -> i64 {
        let dense = |i: i64, o: i64| i * o + o;
        let (encoder, decoder) = self.part_counts();
        match &self.head {
            Some(head) => encoder + dense(self.latent, head.classes.len() as i64),
            None => encoder + decoder,
        }
    }

    /// Parameters of the encoder and of the decoder.
    fn part_counts(&self) -> (i64, i64) {
        let dense = |i: i64, o: i64| i * o + o;
        match &self.layers {
            Layers::Conv(conv) => {
                let channels = &conv.channels;
                let (h, w) = self.conv_sizes(channels.len())[channels.len()];
                let flat = channels.last().copied().unwrap_or(1) * h * w;
                let mut chans = vec![self.image_shape().0];
                chans.extend(channels);
                let conv3 = |i: i64, o: i64| 9 * i * o + o;
                let norm = |c: i64| if conv.groups_for(c) > 0 { 2 * c } else { 0 };
                // Down and up between each pair of levels, a norm after each but the
                // decoder's last, and `blocks` residual blocks on both sides of each level.
                let levels: i64 = chans
                    .windows(2)
                    .map(|c| {
                        let block = 2 * (conv3(c[1], c[1]) + norm(c[1]));
                        conv3(c[0], c[1]) + conv3(c[1], c[0]) + 2 * conv.blocks as i64 * block
                    })
                    .sum();
                let norms: i64 = channels.iter().map(|&c| norm(c)).sum::<i64>()
                    + chans[1..chans.len() - 1].iter().map(|&c| norm(c)).sum::<i64>();
                // Encoder: each level's down conv, its norm and its blocks; the decoder has
                // the rest.
                let encoder: i64 = chans
                    .windows(2)
                    .map(|c| {
                        let block = 2 * (conv3(c[1], c[1]) + norm(c[1]));
                        conv3(c[0], c[1]) + conv.blocks as i64 * block + norm(c[1])
                    })
                    .sum::<i64>()
                    + dense(flat, self.encoder_out());
                let total =
                    levels + norms + dense(flat, self.encoder_out()) + dense(self.latent, flat);
                (encoder, total - encoder)
            }
            Layers::Mlp { tied_weights, .. } => {
                let w = self.encoder_widths();
                let encoder: i64 = w.windows(2).map(|p| dense(p[0], p[1])).sum::<i64>()
                    - dense(w[w.len() - 2], self.latent)
                    + dense(w[w.len() - 2], self.encoder_out());
                let decoder: i64 = if *tied_weights {
                    w[..w.len() - 1].iter().sum()
                } else {
                    w.windows(2).map(|p| dense(p[1], p[0])).sum()
                };
                (encoder, decoder)
            }
        }
    }

    /// Checks what the CLI or a hand-edited model.json could get wrong.
    pub fn validate(&self) -> Result<(), String> {
        const MAX_SIDE: i64 = 4096;
        const MAX_FEATURES: i64 = 1 << 20;
        match &self.input {
            DataSpec::Image(s) => {
                let (height, width) = (s.height, s.width);
                if !(1..=MAX_SIDE).contains(&height) || !(1..=MAX_SIDE).contains(&width) {
                    return Err(format!(
                        "image size {height}x{width} must be between 1 and {MAX_SIDE} pixels a side"
                    ));
                }
            }
            DataSpec::Vector(v) => {
                let d = v.columns.len() as i64;
                if !(1..=MAX_FEATURES).contains(&d) {
                    return Err(format!("vectors must have 1 to {MAX_FEATURES} features, got {d}"));
                }
                let s = &v.scaling;
                if s.offset.len() != v.columns.len() || s.scale.len() != v.columns.len() {
                    return Err(format!(
                        "the scaling has {} offsets and {} scales for {d} features",
                        s.offset.len(),
                        s.scale.len()
                    ));
                }
                if s.offset.iter().chain(&s.scale).any(|x| !x.is_finite())
                    || s.scale.iter().any(|&x| x <= 0.0)
                {
                    return Err("the scaling holds a non-finite offset or a scale ≤ 0".into());
                }
                if matches!(self.layers, Layers::Conv(_)) {
                    return Err(format!(
                        "--arch {} needs images; for vectors ({d} features) use --arch mlp or                          --arch vae (with the mlp backbone)",
                        self.arch_name()
                    ));
                }
            }
        }
        if self.latent < 1 {
            return Err(format!(
                "the latent size (--latent) must be at least 1, got {}",
                self.latent
            ));
        }
        const MAX_WIDTH: i64 = 1 << 16;
        match &self.layers {
            Layers::Mlp { hidden, tied_weights } => {
                if let Some(w) = hidden.iter().find(|&&w| w < 1) {
                    return Err(format!("hidden widths must be at least 1, got {w}"));
                }
                if *tied_weights && self.variational {
                    return Err("--tied-weights works with --arch mlp only, not vae".into());
                }
                if let Some(w) = hidden.iter().find(|&&w| w > MAX_WIDTH) {
                    return Err(format!(
                        "layer width {w} is larger than the supported {MAX_WIDTH}"
                    ));
                }
            }
            Layers::Conv(ConvLayers { channels, blocks, groups, .. }) => {
                if *blocks > 16 {
                    return Err(format!("--blocks must be at most 16, got {blocks}"));
                }
                if *groups < 0 {
                    return Err(format!("GroupNorm groups must be 0 or more, got {groups}"));
                }
                if channels.is_empty() {
                    return Err("--channels needs at least one convolutional layer".into());
                }
                if let Some(c) = channels.iter().find(|&&c| !(1..=4096).contains(&c)) {
                    return Err(format!("--channels must be between 1 and 4096, got {c}"));
                }
            }
        }
        if self.latent > MAX_WIDTH {
            return Err(format!(
                "layer width {} is larger than the supported {MAX_WIDTH}",
                self.latent
            ));
        }
        // 2^28 parameters is 1 GiB of f32 weights, before Adam's two moments.
        const MAX_PARAMETERS: i64 = 1 << 28;
        let n = self.parameter_count();
        if n > MAX_PARAMETERS {
            return Err(format!(
                "the network would have {n} parameters, more than the supported {MAX_PARAMETERS}"
            ));
        }
        Ok(())
    }
}

/// How the network is trained. Recorded in model.json so a run can be explained and
/// repeated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub mode: Mode,
    /// The corruption in denoise mode.
    #[serde(default)]
    pub noise: NoiseKind,
    /// σ of Gaussian noise, or p of masking and salt-and-pepper noise.
    #[serde(alias = "sigma")]
    pub noise_level: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Only the first N training images are used, when set.
    pub limit: Option<usize>,
    /// Fraction of the training images held out for per-epoch validation.
    pub val_fraction: f64,
    pub device: DeviceSpec,
    /// Train only on images with these labels (e.g. the "normal" digits for anomaly
    /// detection); all images when absent.
    #[serde(default)]
    pub classes: Option<Vec<u8>>,
    #[serde(default)]
    pub loss: Loss,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    #[serde(default)]
    pub weight_decay: f64,
    /// λ of an L1 penalty on the code (a sparse autoencoder); 0 is none.
    #[serde(default)]
    pub l1_latent: f64,
    /// Share of each batch's worst-reconstructed rows left out of the loss (a trimmed
    /// loss, robust to anomalies in the training data); 0 is the plain mean.
    #[serde(default, skip_serializing_if = "is_default")]
    pub trim: f64,
    /// Stop after this many epochs without a new best validation loss, keeping the best
    /// weights.
    #[serde(default)]
    pub early_stop: Option<usize>,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Largest L2 norm of the gradient per step.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// VAE only: weight of the KL term (β-VAE when not 1).
    #[serde(default)]
    pub beta: Option<f64>,
    #[serde(default)]
    pub engine: Engine,
    #[serde(default)]
    pub init: Init,
    #[serde(default)]
    pub precision: Precision,
    /// Write the run's checkpoint every this many epochs (and after the last).
    #[serde(default = "one")]
    pub checkpoint_every: usize,
    /// Format of the saved weights.
    #[serde(default)]
    pub format: WeightsFormat,
    /// Classifier runs: how the labelled rows were chosen and the encoder started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<Finetune>,
    /// Folder of the TensorBoard event files written while training (a relative path is
    /// inside the run folder); none: no log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<std::path::PathBuf>,
}

impl TrainConfig {
    /// The settings that choose a run's rows (split seed included): a classifier's are
    /// its autoencoder run's.
    pub fn data_selection(&self) -> TrainConfig {
        match &self.finetune {
            Some(f) => TrainConfig { seed: f.split_seed, finetune: None, ..self.clone() },
            None => self.clone(),
        }
    }
}

fn one() -> usize {
    1
}

/// The CLI's defaults for `ModelConfig::default()`'s network.
impl Default for TrainConfig {
    fn default() -> Self {
        let arch = ArchDefaults::for_layers(&ModelConfig::default().layers);
        TrainConfig {
            mode: Mode::default(),
            noise: NoiseKind::default(),
            noise_level: DEFAULT_SIGMA,
            epochs: DEFAULT_EPOCHS,
            batch_size: arch.batch_size,
            lr: arch.lr,
            seed: DEFAULT_SEED,
            limit: None,
            val_fraction: DEFAULT_VAL_FRACTION,
            device: DeviceSpec::default(),
            classes: None,
            loss: Loss::default(),
            weight_decay: 0.0,
            l1_latent: 0.0,
            trim: 0.0,
            early_stop: None,
            lr_schedule: arch.lr_schedule,
            grad_clip: None,
            beta: None,
            engine: Engine::Auto,
            init: arch.init,
            precision: Precision::Fp32,
            checkpoint_every: 1,
            tensorboard: None,
            format: WeightsFormat::Ot,
            finetune: None,
        }
    }
}

impl TrainConfig {
    /// Rejects impossible values, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("--epochs must be at least 1".into());
        }
        if !(1..=1 << 20).contains(&self.batch_size) {
            return Err(format!(
                "--batch-size must be between 1 and {}, got {}",
                1 << 20,
                self.batch_size
            ));
        }
        if self.epochs > 1_000_000 {
            return Err(format!("--epochs must be at most 1000000, got {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("--lr must be a positive number, got {}", self.lr));
        }
        let level = self.noise_level;
        if !(level.is_finite() && level >= 0.0) {
            return Err(format!(
                "--noise-level (--sigma) must be a non-negative number, got {level}"
            ));
        }
        if self.noise != NoiseKind::Gaussian && level > 1.0 {
            return Err(format!(
                "--noise-level is a probability for {} noise: expected 0 to 1, got {level}",
                self.noise
            ));
        }
        let non_negative = [("--weight-decay", self.weight_decay), ("--l1-latent", self.l1_latent)];
        if let Some((flag, v)) = non_negative.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!("{flag} must be a non-negative number, got {v}"));
        }
        if !(0.0..1.0).contains(&self.trim) {
            return Err(format!("--trim must be in [0, 1), got {}", self.trim));
        }
        if let Some(c) = self.grad_clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(format!("--grad-clip must be a positive number, got {c}"));
        }
        if let Some(b) = self.beta.filter(|b| !(b.is_finite() && *b >= 0.0)) {
            return Err(format!("--beta must be a non-negative number, got {b}"));
        }
        if self.checkpoint_every == 0 {
            return Err("--checkpoint-every must be at least 1 epoch".into());
        }
        if self.early_stop == Some(0) {
            return Err("--early-stop must be at least 1 epoch".into());
        }
        if self.early_stop.is_some() && self.val_fraction == 0.0 {
            return Err("--early-stop needs validation images: set --val-fraction above 0".into());
        }
        if self.limit == Some(0) {
            return Err(
                "--limit must be at least 1 (it is the number of training images used)".into()
            );
        }
        if self.classes.as_ref().is_some_and(|c| c.is_empty()) {
            return Err("--classes needs at least one class".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(format!("--val-fraction must be in [0, 1), got {}", self.val_fraction));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelConfig {
        ModelConfig::default()
    }

    fn mlp(hidden: Vec<i64>) -> ModelConfig {
        ModelConfig { layers: Layers::Mlp { hidden, tied_weights: false }, ..model() }
    }

    #[test]
    fn device_spec_parses_and_prints() {
        for (text, spec) in [
            ("auto", DeviceSpec::Auto),
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec);
        }
        assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(err.contains("expected auto, cpu, cuda or cuda:N"), "{err}");
        }
    }

    #[test]
    fn encoder_widths_run_input_to_code() {
        assert_eq!(model().encoder_widths(), vec![784, 512, 128, 16]);
        let no_hidden = mlp(vec![]);
        assert_eq!(no_hidden.encoder_widths(), vec![784, 16]);
    }

    #[test]
    fn validation_names_the_flag() {
        assert!(model().validate().is_ok());
        assert!(ModelConfig { latent: 0, ..model() }.validate().unwrap_err().contains("latent"));
        assert!(mlp(vec![0]).validate().is_err());
        let huge_image = DataSpec::Image(ImageSpec::gray(1 << 32, 1 << 32));
        assert!(ModelConfig { input: huge_image, ..model() }.validate().is_err());
        let huge = mlp(vec![65536, 65536]).validate().unwrap_err();
        assert!(huge.contains("parameters"), "{huge}");
        // 784·512 + 512 + 512·128 + 128 + 128·16 + 16, and the mirror image.
        assert_eq!(
            model().parameter_count(),
            2 * (784 * 512 + 512 * 128 + 128 * 16) + 2 * (512 + 128) + 16 + 784
        );
        let t = TrainConfig::default();
        assert!(t.validate().is_ok());
        let cases = [
            (TrainConfig { limit: Some(0), ..t.clone() }, "--limit"),
            (TrainConfig { epochs: 0, ..t.clone() }, "--epochs"),
            (TrainConfig { batch_size: 0, ..t.clone() }, "--batch-size"),
            (TrainConfig { batch_size: usize::MAX, ..t.clone() }, "--batch-size"),
            (TrainConfig { epochs: usize::MAX, ..t.clone() }, "--epochs"),
            (TrainConfig { lr: f64::NAN, ..t.clone() }, "--lr"),
            (TrainConfig { noise_level: -1.0, ..t.clone() }, "--sigma"),
            (
                TrainConfig { noise: NoiseKind::Masking, noise_level: 1.5, ..t.clone() },
                "probability",
            ),
            (TrainConfig { weight_decay: -1.0, ..t.clone() }, "--weight-decay"),
            (TrainConfig { grad_clip: Some(0.0), ..t.clone() }, "--grad-clip"),
            (TrainConfig { early_stop: Some(0), ..t.clone() }, "--early-stop"),
            (TrainConfig { early_stop: Some(2), val_fraction: 0.0, ..t.clone() }, "--val-fraction"),
            (TrainConfig { val_fraction: 1.0, ..t.clone() }, "--val-fraction"),
        ];
        for (cfg, flag) in cases {
            assert!(cfg.validate().unwrap_err().contains(flag), "{flag}");
        }
    }
}
