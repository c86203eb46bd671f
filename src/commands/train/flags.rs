//! What `train`'s flags ask for, resolved once: the training settings with the network's
//! defaults for the rest, the layers and the model on the data's input, the model's
//! settings under the flags' names (what `--resume` compares), and the combinations that
//! cannot work.

use crate::cli::TrainArgs;
use crate::config::{
    self, Arch, ArchDefaults, Backbone, ConvLayers, Engine, Layers, ModelConfig, Norm, Precision,
    TrainConfig,
};
use crate::data::spec::DataSpec;
use crate::session::tb_log;
use crate::settings;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// The training settings the flags ask for, with the network's defaults for the rest.
pub(super) fn train_config(args: &TrainArgs) -> TrainConfig {
    let defaults = ArchDefaults::for_layers(&layers(args, &ModelConfig::default().input));
    TrainConfig {
        mode: args.mode,
        noise: args.noise,
        noise_level: args.noise_level,
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
        early_stop: args.early_stop,
        lr_schedule: args.lr_schedule.unwrap_or(defaults.lr_schedule),
        grad_clip: args.grad_clip,
        beta: args.beta,
        engine: args.engine,
        init: args.init.unwrap_or(defaults.init),
        precision: args.precision,
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
pub(super) fn check_combination(cfg: &TrainConfig, model_cfg: &ModelConfig) -> Result<()> {
    model_cfg.validate().map_err(|e| settings::usage("train", e))?;
    if cfg.precision == Precision::Bf16 && !(model_cfg.is_plain_mlp() && cfg.engine == Engine::Auto)
    {
        bail!(
            "--precision bf16 is implemented in the hand-written MLP step: it needs --arch mlp \
             without --tied-weights, and --engine auto"
        );
    }
    if cfg.beta.is_some() && !model_cfg.variational {
        bail!("--beta works with --arch vae only");
    }
    Ok(())
}

/// The layers `--arch`, `--backbone` and their settings ask for, on `input`.
pub(super) fn layers(args: &TrainArgs, input: &DataSpec) -> Layers {
    if args.arch == Arch::Conv || (args.arch == Arch::Vae && args.backbone == Backbone::Conv) {
        Layers::Conv(ConvLayers {
            channels: args.channels.clone(),
            blocks: args.blocks,
            groups: match args.norm {
                Norm::Group => config::NORM_GROUPS,
                Norm::None => 0,
            },
            upsample: args.upsample,
        })
    } else {
        let hidden = args.hidden.clone().unwrap_or_else(|| config::default_hidden(input));
        Layers::Mlp { hidden, tied_weights: args.tied_weights }
    }
}

/// The model the flags ask for, on `input`.
pub(super) fn model_config(args: &TrainArgs, input: DataSpec) -> Result<ModelConfig> {
    let layers = layers(args, &input);
    if args.tied_weights && args.arch != Arch::Mlp {
        let arch = if matches!(layers, Layers::Conv(_)) { "conv" } else { "vae" };
        bail!("--tied-weights works with --arch mlp only, not {arch}");
    }
    Ok(ModelConfig {
        latent: args.latent.unwrap_or_else(|| config::default_latent(&input)),
        input,
        layers,
        activation: args.activation,
        variational: args.arch == Arch::Vae,
        head: None,
    })
}

/// The model's settings under the names of the flags that set them (the layers a
/// model does not use read as empty), to compare with the flags given on `--resume`.
pub(super) fn model_flags(m: &ModelConfig) -> serde_json::Value {
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
