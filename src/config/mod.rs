//! Plain configuration structs: the single home of defaults. The CLI fills them,
//! `run_store::RunManifest` records them in `model.json`, and every later command rebuilds
//! the model from them.

use crate::data::spec::{DataSpec, ScaleKind};
use crate::invalid::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

mod model;
mod sized;
mod train;

pub use model::*;
pub use sized::*;
pub use train::*;

/// Encoder widths, as the `--hidden` flag spells them.
pub const DEFAULT_HIDDEN: &str = "512,128";
pub const DEFAULT_LATENT: i64 = 16;
/// The MLP's widths for vectors when `--hidden` is not given: PyOD's AutoEncoder default.
pub const VECTOR_HIDDEN: [i64; 2] = [64, 32];

/// `--hidden` when not given: `DEFAULT_HIDDEN` for images, `VECTOR_HIDDEN` for vectors.
pub fn default_hidden(input: &DataSpec) -> Vec<i64> {
    if is_spectral(input) {
        return SPECTRAL_HIDDEN.to_vec();
    }
    match input {
        DataSpec::Image(_) => DEFAULT_HIDDEN.split(',').filter_map(|w| w.parse().ok()).collect(),
        DataSpec::Vector(_) | DataSpec::Series(..) => VECTOR_HIDDEN.to_vec(),
    }
}

/// The layers and code of a network on spectra (`--domain stft`): some 1,300 log powers
/// a row (5 frames of 257 bins at 16 kHz) that a narrow code would flatten; measured on
/// the speech benchmark's training speakers (scripts/speech-table.sh).
pub const SPECTRAL_HIDDEN: [i64; 2] = [1024, 512];
pub const SPECTRAL_LATENT: i64 = 128;

fn is_spectral(input: &DataSpec) -> bool {
    input.series().is_some_and(|(_, s)| s.spectral.is_some())
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
    if is_spectral(input) {
        return SPECTRAL_LATENT;
    }
    match input {
        DataSpec::Image(_) => DEFAULT_LATENT,
        DataSpec::Vector(v) | DataSpec::Series(v, _) => {
            (v.columns.len() as i64 / 2).clamp(1, DEFAULT_LATENT)
        }
    }
}
/// `--norm` when not given: none for colour images, GroupNorm otherwise. GroupNorm scales
/// each image's features to a common mean and spread, so the colours and brightness that
/// tell one colour image from another must be rebuilt from what is left. Test squared
/// error per image against PCA's at k = 16 (conv default, 20 epochs), GroupNorm → none:
/// data/emoji 339.0 → 328.3 (seed 42), 350.9 → 329.6 (seed 2); the conv VAE on data/emoji
/// 515 → 358 (10 epochs). Grayscale sets keep it: data/mnist 6.16 → 6.27 without, the conv
/// VAE 10.1 → 11.0 (5 epochs); data/fashion-mnist 7.92 → 7.60 is the one grayscale gain.
pub fn default_norm(input: &DataSpec) -> Norm {
    match input.image() {
        Some(spec) if spec.channels() > 1 => Norm::None,
        _ => Norm::Group,
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
/// `--ensemble` for a table: the run's autoencoder and four members trained from the next
/// seeds, their scores averaged. One autoencoder's ranking of the same rows swings with its
/// seed: on ADBench's 43 Classical sets (`scripts/adbench.sh`, seed 1's split) five seeds
/// gave mean ROC-AUC 0.737 to 0.779, and a set's ROC-AUC moved by 0.061 on average between
/// two seeds (optdigits 0.98 and 0.52), by 0.034 between two ensembles. The mean: 0.761
/// against 0.762 on seeds 1–3, 0.761 against 0.753 on seeds 4–6.
pub const TABLE_ENSEMBLE: usize = 5;
/// Training rows the members of a table's ensemble may take in all: fewer members above
/// `ENSEMBLE_ROWS / TABLE_ENSEMBLE` rows (at least the run's own model), where a larger
/// sample already steadies one model and five would take minutes.
pub const ENSEMBLE_ROWS: usize = 250_000;
/// A table of at most this many features (one-hot levels counted) is scored with the tail
/// score by default (`metrics::detector`: each feature's error weighed by its training
/// median, plus ECOD's tails). On ADBench's 43 Classical sets (seeds 1–3, one model) the
/// tail score lifts mean ROC-AUC from 0.762 to 0.778 but lowers it on the widest ones
/// (InternetAds, 1,555 columns: 0.781 → 0.740; mnist, 100: 0.855 → 0.843) and on 512- and
/// 768-wide image and text embeddings (0.760 → 0.723); on only the tables up to 64
/// features 0.779 (any bound from 10 to 100 gives 0.777–0.782).
pub const TAIL_WIDTH: i64 = 64;
/// `--scale` for a table (rows of features, not windows of a series): min–max keeps a
/// nearly constant or rarely set column in [0, 1] where standard scaling blows its rare
/// values up to tens of units, so they swamp every row's error. ADBench's 43 Classical
/// sets in its protocol (`scripts/adbench.sh`), mean AP 0.443 against 0.400 (seed 1) and
/// 0.427 against 0.405 (seeds 2–3), ROC-AUC 0.779 against 0.757 and 0.753 against 0.756;
/// optdigits 0.98 and 0.79 against 0.49 and 0.51. Standard with its σ floored at a sixth
/// of the range measured 0.761/0.754 and was left out.
pub const TABLE_SCALE: ScaleKind = ScaleKind::Minmax;
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
    /// audio (--domain stft): white noise at a signal-to-noise ratio in dB
    White,
    /// audio (--domain stft): pink (1/f) noise at a signal-to-noise ratio in dB
    Pink,
    /// audio (--domain stft): babble made of other training recordings, at a ratio in dB
    Babble,
    /// audio (--domain stft): white or pink, one drawn per recording and epoch
    Mix,
}

impl NoiseKind {
    /// Noise added to audio before its spectrum is taken, at a ratio in dB.
    pub fn is_audio(self) -> bool {
        matches!(self, NoiseKind::White | NoiseKind::Pink | NoiseKind::Babble | NoiseKind::Mix)
    }
}

impl fmt::Display for NoiseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoiseKind::Gaussian => "gaussian",
            NoiseKind::Masking => "masking",
            NoiseKind::SaltPepper => "salt-pepper",
            NoiseKind::White => "white",
            NoiseKind::Pink => "pink",
            NoiseKind::Babble => "babble",
            NoiseKind::Mix => "mix",
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

/// What the untrained network puts out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// whatever the initialisation gives (every run before `--start` existed)
    #[default]
    Random,
    /// the training rows' mean: the output layer's weights start at zero and its bias at
    /// the mean (its logit under a sigmoid; per channel for a convolutional decoder)
    Mean,
}

/// What each training batch's images go through before the network sees them (the
/// validation and test images never do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// the images as they are (every run before `--augment` existed)
    #[default]
    None,
    /// each image mirrored left to right with probability 1/2, drawn per step from the seed
    Flip,
}

/// The training settings that depend on the network, used where the flags do not set them.
/// Chosen from `scripts/sweep.sh levers` (docs/guide/quality.md, "Defaults and the sweep behind them").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchDefaults {
    pub lr: f64,
    pub batch_size: usize,
    pub lr_schedule: LrSchedule,
    pub init: Init,
    pub start: Start,
}

impl ArchDefaults {
    /// Batches of 64 and a warm-up + cosine schedule peaking at 3e-3 for every network (they
    /// reach further in the same epochs than 128 at a constant 1e-3); Kaiming init for MLPs
    /// (the demo's MLP: 9.39 against 11.10 with torch.nn's), torch.nn's for convolutional
    /// nets (10.72 → 8.38 at 10 epochs). MLPs start at the training mean (test squared
    /// error per image, 20 epochs: data/mnist 9.97 → 9.70, data/fashion-mnist 7.39 → 7.35,
    /// data/emoji 530 → 476, and at --limit 640 11.73 → 13.21 dB, where a random start
    /// collapses to the mean image); convolutional nets do not gain (data/emoji 387 → 397).
    pub fn for_layers(layers: &Layers) -> Self {
        let (init, start) = match layers {
            Layers::Mlp { .. } => (Init::Kaiming, Start::Mean),
            Layers::Conv(_) => (Init::Torch, Start::Random),
        };
        ArchDefaults {
            lr: DEFAULT_LR,
            batch_size: DEFAULT_BATCH_SIZE,
            lr_schedule: LrSchedule::WarmupCosine,
            init,
            start,
        }
    }
    /// The defaults of `layers`, as a VAE when `variational`: a VAE starts at random, since
    /// a decoder that starts by ignoring the code lets the KL term pull every code to the
    /// prior before the decoder learns to read it (data/mnist, k = 30, 3 epochs: 43.88
    /// squared error per image from the mean against 34.66 at random).
    pub fn for_network(layers: &Layers, variational: bool) -> Self {
        let defaults = ArchDefaults::for_layers(layers);
        match variational {
            true => ArchDefaults { start: Start::Random, ..defaults },
            false => defaults,
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
    /// bf16 weights, activations and gradients with an fp32 master copy and fp32 loss and
    /// Adam (the hand-written MLP step keeps its own bf16 copy; other networks compute
    /// through autograd on one, `FlatAdam::compute_in`); for GPUs and CPUs with AMX
    /// (others emulate it slowly, and AVX512-BF16 alone computes it no faster than fp32)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spec::ImageSpec;

    fn model() -> ModelConfig {
        ModelConfig::default()
    }

    fn mlp(hidden: Vec<i64>) -> ModelConfig {
        ModelConfig { layers: Layers::Mlp { hidden, tied_weights: false }, ..model() }
    }

    #[test]
    fn multiply_adds_count_every_layer_at_its_size() {
        // MNIST's MLP: each weight once on each side.
        let w = 784 * 512 + 512 * 128 + 128 * 16;
        assert_eq!(mlp(vec![512, 128]).multiply_adds(), 2.0 * w as f64);
        // The conv default on 28×28: 3×3 kernels, 14×14 then 7×7, one residual block of two
        // convolutions a level on each side, transposed convolutions reading the small map,
        // and the dense layers to and from 64×7×7.
        let upsample = Upsample::Transpose;
        let conv = ConvLayers { channels: vec![32, 64], blocks: 1, groups: 8, upsample };
        let m = ModelConfig { layers: Layers::Conv(conv.clone()), ..model() };
        let level1 = 9 * 32 * 196 + 4 * 9 * 32 * 32 * 196 + 9 * 32 * 196;
        let level2 = 9 * 32 * 64 * 49 + 4 * 9 * 64 * 64 * 49 + 9 * 64 * 32 * 49;
        assert_eq!(m.multiply_adds(), (level1 + level2 + 2 * 3136 * 16) as f64);
        assert_eq!(m.multiply_adds(), 16_470_272.0);
        // Resizing up works at the large map: 4× the transposed convolutions' work.
        let resize = ConvLayers { upsample: Upsample::Resize, ..conv };
        let r = ModelConfig { layers: Layers::Conv(resize), ..model() };
        let more = 3.0 * (9 * 32 * 196 + 9 * 64 * 32 * 49) as f64;
        assert_eq!(r.multiply_adds(), m.multiply_adds() + more);
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
        let latent = ModelConfig { latent: 0, ..model() }.validate().unwrap_err();
        assert_eq!(latent.setting, Some("latent"));
        assert_eq!(latent.to_string(), "--latent must be at least 1, got 0");
        assert!(mlp(vec![0]).validate().is_err());
        let huge_image = DataSpec::Image(ImageSpec::gray(1 << 32, 1 << 32));
        assert!(ModelConfig { input: huge_image, ..model() }.validate().is_err());
        let huge = mlp(vec![65536, 65536]).validate().unwrap_err();
        assert!(huge.to_string().contains("parameters"), "{huge}");
        // Photos at 512x512 need 805 million parameters in the default MLP: the message
        // names a size that works, and that size validates.
        let photos =
            ImageSpec { color: crate::data::spec::Color::Rgb, ..ImageSpec::gray(512, 384) };
        let big = ModelConfig { input: DataSpec::Image(photos.clone()), ..model() };
        let e = big.validate().unwrap_err().to_string();
        assert!(e.ends_with("; pass --resize 128x96 (37922064 parameters)"), "{e}");
        let fits = ImageSpec { height: 128, width: 96, ..photos };
        let fits = ModelConfig { input: DataSpec::Image(fits), ..model() };
        assert_eq!((fits.validate(), fits.parameter_count()), (Ok(()), 37922064));
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
            (TrainConfig { noise_level: -1.0, ..t.clone() }, "--noise-level"),
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
        let flag = |id: &str| format!("--{}", id.replace('_', "-"));
        for (cfg, want) in cases {
            let words = cfg.validate().unwrap_err().words(&flag);
            assert!(words.contains(want), "{want}: {words}");
        }
        let e = TrainConfig { early_stop: Some(2), val_fraction: 0.0, ..t.clone() };
        assert_eq!(
            e.validate().unwrap_err().words(&flag),
            "--early-stop needs validation images: set --val-fraction above 0"
        );
    }
}
