//! The network a run trains, as model.json records it: the input (the data description),
//! the layers (a tagged architecture), the latent size, the activation, a classifier's
//! head; its shape, parameter count and validation.

use super::{Activation, DEFAULT_LATENT};
use crate::data::spec::{DataSpec, ImageSpec};
use crate::invalid::Invalid;
use serde::{Deserialize, Serialize};

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

pub(super) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
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
    /// The network adds its input to its output, so it learns the correction to what it
    /// is given and starts as the identity (a spectral denoiser: `--domain stft --mode
    /// denoise`, where the noisy frames are mostly right and only the noise is to go).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub residual: bool,
}

/// The classification head of a `finetune` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Class names, in label-code order (one logit each).
    pub classes: Vec<String>,
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
            residual: false,
        }
    }
}

/// The widest layer (and latent) a network may have.
const MAX_LAYER_WIDTH: i64 = 1 << 16;

impl ModelConfig {
    pub fn input_dim(&self) -> i64 {
        self.input.values()
    }

    /// The input's image shape (channels, height, width); vectors of D features read as
    /// one 1×D strip.
    pub fn image_shape(&self) -> (i64, i64, i64) {
        match &self.input {
            DataSpec::Image(s) => (s.channels(), s.height, s.width),
            DataSpec::Vector(v) | DataSpec::Series(v, _) => (1, 1, v.columns.len() as i64),
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

    /// Multiply-adds of one item's forward pass through encoder and decoder (convolutions
    /// and dense layers; norms and activations left out): what sizes a run's work.
    pub fn multiply_adds(&self) -> f64 {
        let dense = |i: i64, o: i64| (i * o) as f64;
        match &self.layers {
            Layers::Conv(conv) => {
                let n = conv.channels.len();
                let sizes = self.conv_sizes(n);
                let mut chans = vec![self.image_shape().0];
                chans.extend(&conv.channels);
                let at = |(h, w): (i64, i64)| (h * w) as f64;
                let conv3 = |i: i64, o: i64, size: f64| 9.0 * (i * o) as f64 * size;
                let levels: f64 = (0..n)
                    .map(|l| {
                        let (c0, c1, small) = (chans[l], chans[l + 1], at(sizes[l + 1]));
                        // Up: a transposed convolution reads the small map; a resize and
                        // convolution work at the large one.
                        let up = match conv.upsample {
                            Upsample::Transpose => conv3(c1, c0, small),
                            Upsample::Resize => conv3(c1, c0, at(sizes[l])),
                        };
                        let blocks = 2.0 * 2.0 * conv.blocks as f64 * conv3(c1, c1, small);
                        conv3(c0, c1, small) + blocks + up
                    })
                    .sum();
                let flat = chans[n] * sizes[n].0 * sizes[n].1;
                levels + dense(flat, self.encoder_out()) + dense(self.latent, flat)
            }
            Layers::Mlp { .. } => {
                let w = self.encoder_widths();
                2.0 * w.windows(2).map(|p| dense(p[0], p[1])).sum::<f64>()
            }
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

    /// The input's size and a vector input's scaling; conv layers need images.
    fn validate_input(&self) -> Result<(), Invalid> {
        const MAX_SIDE: i64 = 4096;
        const MAX_FEATURES: i64 = 1 << 20;
        match &self.input {
            DataSpec::Image(s) => {
                let (height, width) = (s.height, s.width);
                if !(1..=MAX_SIDE).contains(&height) || !(1..=MAX_SIDE).contains(&width) {
                    return Err(Invalid::plain(format!(
                        "image size {height}x{width} must be between 1 and {MAX_SIDE} pixels a side"
                    )));
                }
            }
            DataSpec::Vector(v) | DataSpec::Series(v, _) => {
                let d = v.columns.len() as i64;
                if !(1..=MAX_FEATURES).contains(&d) {
                    return Err(Invalid::plain(format!(
                        "vectors must have 1 to {MAX_FEATURES} features, got {d}"
                    )));
                }
                let s = &v.scaling;
                if s.offset.len() != v.columns.len() || s.scale.len() != v.columns.len() {
                    return Err(Invalid::plain(format!(
                        "the scaling has {} offsets and {} scales for {d} features",
                        s.offset.len(),
                        s.scale.len()
                    )));
                }
                if s.offset.iter().chain(&s.scale).any(|x| !x.is_finite())
                    || s.scale.iter().any(|&x| x <= 0.0)
                {
                    return Err(Invalid::plain(
                        "the scaling holds a non-finite offset or a scale ≤ 0",
                    ));
                }
                if matches!(self.layers, Layers::Conv(_)) {
                    return Err(Invalid::of(
                        "arch",
                        format!(
                            "{} needs images; for vectors ({d} features) use {{arch}} mlp or \
                             {{arch}} vae (with the mlp backbone)",
                            self.arch_name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The layers' widths, channels and blocks.
    fn validate_layers(&self) -> Result<(), Invalid> {
        match &self.layers {
            Layers::Mlp { hidden, tied_weights } => {
                if let Some(w) = hidden.iter().find(|&&w| w < 1) {
                    return Err(Invalid::plain(format!(
                        "hidden widths must be at least 1, got {w}"
                    )));
                }
                if *tied_weights && self.variational {
                    return Err(Invalid::of("tied_weights", "works with {arch} mlp only, not vae"));
                }
                if let Some(w) = hidden.iter().find(|&&w| w > MAX_LAYER_WIDTH) {
                    return Err(Invalid::plain(format!(
                        "layer width {w} is larger than the supported {MAX_LAYER_WIDTH}"
                    )));
                }
            }
            Layers::Conv(ConvLayers { channels, blocks, groups, .. }) => {
                if *blocks > 16 {
                    return Err(Invalid::of("blocks", format!("must be at most 16, got {blocks}")));
                }
                if *groups < 0 {
                    return Err(Invalid::plain(format!(
                        "GroupNorm groups must be 0 or more, got {groups}"
                    )));
                }
                if channels.is_empty() {
                    return Err(Invalid::of("channels", "needs at least one convolutional layer"));
                }
                if let Some(c) = channels.iter().find(|&&c| !(1..=4096).contains(&c)) {
                    return Err(Invalid::of(
                        "channels",
                        format!("must be between 1 and 4096, got {c}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks what the CLI or a hand-edited model.json could get wrong.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_input()?;
        if self.latent < 1 {
            return Err(Invalid::of("latent", format!("must be at least 1, got {}", self.latent)));
        }
        self.validate_layers()?;
        if self.latent > MAX_LAYER_WIDTH {
            return Err(Invalid::plain(format!(
                "layer width {} is larger than the supported {MAX_LAYER_WIDTH}",
                self.latent
            )));
        }
        // 2^28 parameters is 1 GiB of f32 weights, before Adam's two moments.
        const MAX_PARAMETERS: i64 = 1 << 28;
        let n = self.parameter_count();
        if n > MAX_PARAMETERS {
            return Err(Invalid::plain(format!(
                "the network would have {n} parameters, more than the supported \
                 {MAX_PARAMETERS}{}",
                self.smaller_input(MAX_PARAMETERS)
            )));
        }
        Ok(())
    }

    /// For an image input too large for the network: "; pass {resize} HxW (N parameters)"
    /// naming a size (longer side at most `PRACTICAL_SIDE`) whose network stays within
    /// `limit`; empty when none does or the input is no image.
    fn smaller_input(&self, limit: i64) -> String {
        use crate::data::spec::{Size, PRACTICAL_SIDE};
        let Some(spec) = self.input.image() else { return String::new() };
        let size = Size { height: spec.height as u32, width: spec.width as u32 };
        let smaller = size.within(PRACTICAL_SIDE);
        let (height, width) = (smaller.height as i64, smaller.width as i64);
        let input = DataSpec::Image(crate::data::spec::ImageSpec { height, width, ..spec.clone() });
        let n = ModelConfig { input, ..self.clone() }.parameter_count();
        match n <= limit && smaller != size {
            true => format!("; pass {{resize}} {smaller} ({n} parameters)"),
            false => String::new(),
        }
    }
}
