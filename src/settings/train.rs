//! `train`'s flags resolved once into a clap-free value (ripgrep's high arguments): the
//! training settings with the network's defaults for the rest, the model asked for (its
//! layers resolved on the data's input), how images and vector files are to be read, and
//! which flags were given; `commands::train` works from this value alone.

use super::usage;
use crate::cli::TrainArgs;
use crate::config::{
    self, Activation, Arch, ArchDefaults, Backbone, ConvLayers, Layers, ModelConfig, NoiseKind,
    Norm, TrainConfig,
};
use crate::data::spec::{
    DataSpec, Domain, Gap, ImageRequest, Missing, Reading, ScaleKind, SeriesSpec, WindowChoice,
};
use crate::data::vectors::VectorRequest;
use crate::session::tb_log;
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `train`'s flags, resolved.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The clap ids of the flags on the command line.
    given: BTreeSet<String>,
    pub data: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub resume: Option<PathBuf>,
    pub force: bool,
    pub json: bool,
    pub threads: Option<usize>,
    /// Seconds a data-parallel rank waits for the others.
    pub dist_timeout: f64,
    /// The training settings asked for, with the network's defaults for the rest; the
    /// classes are resolved against the data once they are read.
    pub train: TrainConfig,
    /// `--trim` was given (else a vector run without `--classes` chooses it).
    pub trim_given: bool,
    pub model: ModelRequest,
    pub image: ImageRequest,
    pub vectors: VectorRequestFlags,
    /// `--classes`, as named.
    pub classes: Option<Vec<String>>,
    /// The network and its training settings when the data turn out to be images, where
    /// they differ: `--arch` left to the data (and no MLP-only flag given) means the
    /// convolutional family.
    for_images: Option<Box<(ModelRequest, TrainConfig)>>,
    /// The network family is left to the data (no `--arch`, no MLP-only flag).
    pub family_from_data: bool,
}

/// The network the flags ask for, before the data's input is known.
#[derive(Clone, Debug)]
pub struct ModelRequest {
    pub arch: Arch,
    /// Conv layers (`--arch conv`, or `--arch vae --backbone conv`), else MLP ones.
    conv: Option<ConvLayers>,
    /// `--hidden` [default: by the input].
    hidden: Option<Vec<i64>>,
    tied_weights: bool,
    latent: Option<i64>,
    activation: Activation,
    /// `--norm` [default: by the input].
    norm: Option<Norm>,
}

/// How a vector file or a series is to be read (`--label-column` … `--wav-channel`).
#[derive(Clone, Debug)]
pub struct VectorRequestFlags {
    pub label_column: Option<String>,
    pub columns: Option<Vec<String>>,
    pub ignore_columns: Option<Vec<String>>,
    pub missing: Missing,
    pub gap: Gap,
    pub delimiter: Option<char>,
    pub no_header: bool,
    pub skip_rows: usize,
    pub labels: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    pub test_fraction: f64,
    /// `--scale`; `None`: chosen by the data (`TABLE_SCALE`, or standard for a series).
    pub scale: Option<ScaleKind>,
    pub window: Option<WindowChoice>,
    pub hop: Option<usize>,
    pub wav_channel: Option<usize>,
    pub domain: Option<Domain>,
    pub context: Option<usize>,
}

impl VectorRequestFlags {
    /// How the data file is read (its delimiter sniffed unless given).
    pub fn reading(&self) -> Reading {
        Reading {
            missing: Some(self.missing),
            gap: Some(self.gap),
            wav_channel: self.wav_channel,
            delimiter: self.delimiter,
            no_header: Some(self.no_header),
            skip_rows: Some(self.skip_rows),
        }
    }

    /// What a new run asks of a vector file: these flags, the classes to train on and, for
    /// a series, how it is cut.
    pub fn request<'a>(
        &'a self,
        classes: Option<&'a [String]>,
        series: Option<&'a SeriesSpec>,
    ) -> VectorRequest<'a> {
        VectorRequest {
            label_column: self.label_column.as_deref(),
            columns: self.columns.as_deref(),
            ignore_columns: self.ignore_columns.as_deref(),
            scale: self.scale.unwrap_or(match series {
                Some(_) => ScaleKind::Standard,
                None => crate::config::TABLE_SCALE,
            }),
            classes,
            series,
        }
    }
}

impl TrainSettings {
    /// The settings `args` ask for; `given(id)` says whether the flag with clap id `id` was
    /// on the command line.
    pub fn new(args: &TrainArgs, given: &dyn Fn(&str) -> bool) -> Self {
        let ids = crate::settings::command()
            .find_subcommand("train")
            .map(|c| c.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
        // The family the data choose when --arch is not given: the MLP's own flags ask for it.
        let chosen = args.arch.is_none() && !given("hidden") && !given("tied_weights");
        let model = ModelRequest::new(args, args.arch.unwrap_or(Arch::Mlp));
        let for_images = chosen.then(|| {
            let conv = ModelRequest::new(args, Arch::Conv);
            Box::new((conv.clone(), train_config(args, &conv)))
        });
        let v = &args.vectors;
        TrainSettings {
            given: ids.into_iter().filter(|id| given(id)).collect(),
            data: args.data.clone(),
            out: args.out.clone(),
            resume: args.resume.clone(),
            force: args.force,
            json: args.json,
            threads: args.runtime.threads,
            dist_timeout: args.dist_timeout,
            train: train_config(args, &model),
            trim_given: args.trim.is_some(),
            model,
            image: args.image.request(),
            vectors: VectorRequestFlags {
                label_column: v.label_column.clone(),
                columns: v.columns.clone(),
                ignore_columns: v.ignore_columns.clone(),
                missing: v.read.missing.unwrap_or_default(),
                gap: v.read.gap.unwrap_or_default(),
                delimiter: v.read.delimiter,
                no_header: v.read.no_header,
                skip_rows: v.read.skip_rows.unwrap_or(0),
                labels: v.labels.clone(),
                test: v.test.clone(),
                test_labels: v.test_labels.clone(),
                test_fraction: v.test_fraction,
                scale: v.scale,
                window: v.window,
                hop: v.hop,
                wav_channel: v.read.wav_channel,
                domain: v.domain,
                context: v.context,
            },
            classes: args.classes.clone(),
            for_images,
            family_from_data: chosen,
        }
    }

    /// The settings for data that are images (`images`) or not: with `--arch` left to the
    /// data, images get the convolutional family and its training defaults.
    pub fn for_kind(&self, images: bool) -> std::borrow::Cow<'_, TrainSettings> {
        match (&self.for_images, images) {
            (Some(pair), true) => {
                let (model, train) = (**pair).clone();
                std::borrow::Cow::Owned(TrainSettings {
                    model,
                    train,
                    for_images: None,
                    ..self.clone()
                })
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Whether the flag with clap id `id` was on the command line.
    pub fn given(&self, id: &str) -> bool {
        self.given.contains(id)
    }

    /// The training settings, checked (bad usage names the flag).
    pub fn checked_train(&self) -> Result<TrainConfig> {
        self.checked_train_for(false)
    }

    /// The same for a run whose series are spectra (`--domain stft`): a denoiser's noise
    /// is audio noise, mixed at ratios in dB (`DEFAULT_SNR`) unless given; audio noise
    /// anywhere else is bad usage.
    pub fn checked_train_for(&self, spectral: bool) -> Result<TrainConfig> {
        let mut cfg = self.train.clone();
        let denoise = cfg.mode == config::Mode::Denoise;
        let noise = || format!("{} {}", super::flag("train", "noise"), cfg.noise);
        let domain = super::flag("train", "domain");
        if spectral && denoise {
            if self.given("noise") && !cfg.noise.is_audio() {
                let why = format!(
                    "{} corrupts features; {domain} stft adds audio noise: white, pink, babble \
                     or mix",
                    noise()
                );
                return Err(config::Usage(why).into());
            }
            if !self.given("noise") {
                cfg.noise = NoiseKind::Mix;
            }
            if !self.given("noise_level") {
                (cfg.noise_level, cfg.noise_level_high) = (DEFAULT_SNR.0, Some(DEFAULT_SNR.1));
            }
        } else if cfg.noise.is_audio() && denoise {
            let why =
                format!("{} is audio noise: it needs {domain} stft (WAV recordings)", noise());
            return Err(config::Usage(why).into());
        }
        cfg.validate().map_err(|e| usage("train", e))?;
        Ok(cfg)
    }
}

impl ModelRequest {
    fn new(args: &TrainArgs, arch: Arch) -> Self {
        let conv = arch == Arch::Conv || (arch == Arch::Vae && args.backbone == Backbone::Conv);
        ModelRequest {
            arch,
            // The groups are resolved on the input (`layers`): `norm` says which.
            conv: conv.then(|| ConvLayers {
                channels: args.channels.clone(),
                blocks: args.blocks,
                groups: 0,
                upsample: args.upsample,
            }),
            norm: args.norm,
            hidden: args.hidden.clone(),
            tied_weights: args.tied_weights,
            latent: args.latent,
            activation: args.activation,
        }
    }

    /// Whether the network has conv layers.
    pub fn conv(&self) -> bool {
        self.conv.is_some()
    }

    /// The layers on `input` (MLP widths default by the kind of input).
    pub fn layers(&self, input: &DataSpec) -> Layers {
        match &self.conv {
            Some(conv) => {
                let groups = match self.norm.unwrap_or_else(|| config::default_norm(input)) {
                    Norm::Group => config::NORM_GROUPS,
                    Norm::None => 0,
                };
                Layers::Conv(ConvLayers { groups, ..conv.clone() })
            }
            None => {
                let hidden = self.hidden.clone().unwrap_or_else(|| config::default_hidden(input));
                Layers::Mlp { hidden, tied_weights: self.tied_weights }
            }
        }
    }

    /// The model on `input`.
    pub fn build(&self, input: DataSpec) -> Result<ModelConfig> {
        let layers = self.layers(&input);
        if self.tied_weights && self.arch != Arch::Mlp {
            let arch = if self.conv() { "conv" } else { "vae" };
            bail!("--tied-weights works with --arch mlp only, not {arch}");
        }
        Ok(ModelConfig {
            latent: self.latent.unwrap_or_else(|| config::default_latent(&input)),
            input,
            layers,
            activation: self.activation,
            variational: self.arch == Arch::Vae,
            head: None,
            residual: false, // a spectral denoiser's, set once the data are read
        })
    }
}

/// The signal-to-noise ratios (dB) a spectral denoiser trains at unless told: drawn
/// uniformly from this range per recording.
pub const DEFAULT_SNR: (f64, f64) = (0.0, 30.0);

/// The training settings the flags ask for, with the network's defaults for the rest.
fn train_config(args: &TrainArgs, model: &ModelRequest) -> TrainConfig {
    let layers = model.layers(&ModelConfig::default().input);
    let defaults = ArchDefaults::for_network(&layers, model.arch == Arch::Vae);
    TrainConfig {
        mode: args.mode,
        noise: args.noise,
        noise_level: args.noise_level.low,
        noise_level_high: args.noise_level.high,
        epochs: args.epochs,
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed,
        limit: args.limit,
        val_fraction: args.val_fraction,
        device: args.runtime.device,
        // Resolved against the data (image numbers or vector labels) once they are read.
        classes: None,
        loss: args.loss,
        weight_decay: args.weight_decay,
        l1_latent: args.l1_latent,
        trim: args.trim.unwrap_or(0.0),
        tail_score: args.tail_score.unwrap_or(false),
        ensemble: args.ensemble.unwrap_or(1),
        // 0 says "off", as leaving the flag out does.
        early_stop: args.early_stop.filter(|&n| n > 0),
        lr_schedule: args.lr_schedule.unwrap_or(defaults.lr_schedule),
        grad_clip: args.grad_clip,
        beta: args.beta,
        engine: args.engine,
        init: args.init.unwrap_or(defaults.init),
        start: args.start.unwrap_or(defaults.start),
        augment: args.augment.unwrap_or_default(),
        precision: args.precision.unwrap_or_default(),
        checkpoint_every: args.checkpoint_every,
        format: args.format,
        finetune: None,
        tensorboard: match (&args.tensorboard, args.no_tensorboard) {
            (_, true) => None,
            (None, false) => Some(PathBuf::from(tb_log::DEFAULT_DIR)),
            (Some(dir), false) => Some(std::path::absolute(dir).unwrap_or(dir.clone())),
        },
    }
}

/// Checks that the model is valid and works with the (valid) training settings.
pub fn check_combination(cfg: &TrainConfig, model_cfg: &ModelConfig) -> Result<()> {
    model_cfg.validate().map_err(|e| usage("train", e))?;
    if cfg.beta.is_some() && !model_cfg.variational {
        bail!("--beta works with --arch vae only");
    }
    Ok(())
}

/// The model's settings under the names of the flags that set them (the layers a
/// model does not use read as empty), to compare with the flags given on `--resume`.
pub fn model_flags(m: &ModelConfig) -> serde_json::Value {
    let plain = ConvLayers::plain(vec![]);
    let (kind, hidden, conv, tied) = match &m.layers {
        Layers::Mlp { hidden, tied_weights } => ("mlp", hidden.clone(), &plain, *tied_weights),
        Layers::Conv(conv) => ("conv", vec![], conv, false),
    };
    serde_json::json!({
        "arch": if m.variational { "vae" } else { kind },
        "backbone": if m.variational { kind } else { "mlp" },
        "hidden": hidden,
        "channels": conv.channels,
        "blocks": conv.blocks,
        "norm": if conv.groups > 0 { "group" } else { "none" },
        "upsample": conv.upsample,
        "tied_weights": tied,
        "latent": m.latent,
        "activation": m.activation,
    })
}
