//! `ae-tch train`: fills the configs from the flags, trains, and writes the run folder.

use crate::checkpoint::{self, RunDir};
use crate::checkpoint::{DataRecord, Outcome, RunManifest, FORMAT_VERSION};
use crate::cli::TrainArgs;
use crate::commands::{eval, grid, plot_loss};
use crate::config::{Arch, Engine, Init, ModelConfig, Precision, TrainConfig};
use crate::data::{self, Split};
use crate::plot::Format;
use crate::train::{self, EpochStats, Event};
use crate::{device, metrics};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;
use tch::nn;

/// Images shown in the run's grid.png.
const GRID_IMAGES: usize = 10;

pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig {
        mode: args.mode,
        noise: args.noise,
        noise_level: args.noise_level,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        limit: args.limit,
        val_fraction: args.val_fraction,
        device: args.runtime.device,
        classes: args.classes.clone(),
        loss: args.loss,
        weight_decay: args.weight_decay,
        l1_latent: args.l1_latent,
        early_stop: args.early_stop,
        lr_schedule: args.lr_schedule,
        grad_clip: args.grad_clip,
        beta: args.beta,
        engine: args.engine,
        init: args.init,
        precision: args.precision,
    };
    cfg.validate().map_err(|e| anyhow!(e))?;
    device::set_threads(args.runtime.threads)?;
    let device = device::resolve(cfg.device)?;

    let data_dir = args.data.clone().unwrap_or_else(data::default_dir);
    let (train_set, val_set) = data::training_sets(&data_dir, &cfg)?;
    let (height, width) = (train_set.height, train_set.width);
    let model_cfg = model_config(&args, height, width);
    model_cfg.validate().map_err(|e| anyhow!("{e}"))?;
    let by_hand = model_cfg.arch == Arch::Mlp && !model_cfg.tied_weights;
    if cfg.precision == Precision::Bf16 && !(by_hand && cfg.engine == Engine::Auto) {
        bail!(
            "--precision bf16 is implemented in the hand-written MLP step: it needs --arch mlp \
             without --tied-weights, and --engine auto"
        );
    }
    if cfg.beta.is_some() && args.arch != Arch::Vae {
        bail!("--beta works with --arch vae only");
    }
    let test = data::load_split(&data_dir, Split::Test)?;
    super::check_image_size(&test, &model_cfg, &data_dir)?;

    let out = args.out.clone().unwrap_or_else(|| default_out(&cfg));
    let run = RunDir::create(&out, args.force)?;

    eprintln!(
        "training {} autoencoder {:?} on {} ({} train / {} validation images, {}x{}) on {:?}",
        cfg.mode,
        model_cfg.encoder_widths(),
        data_dir.display(),
        train_set.len(),
        val_set.len(),
        height,
        width,
        device
    );
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = crate::model::Autoencoder::new(&vs.root(), &model_cfg);
    if cfg.init == Init::Torch {
        crate::model::torch_init(&vs);
    }
    let train_t = train_set.to_device(device);
    let val_t = (!val_set.is_empty()).then(|| val_set.to_device(device));

    let started = Instant::now();
    let mut rows: Vec<EpochStats> = Vec::new();
    let mut bar = Progress::new();
    let fit = train::fit(&model, &vs, &train_t, val_t.as_ref(), &cfg, &mut |event| {
        bar.on(&event);
        if let Event::EpochEnd(stats) = event {
            rows.push(stats.clone());
            run.write_metrics(&rows)?;
        }
        Ok(())
    })?;
    bar.finish();
    let history = &fit.history;
    if let (true, Some((epoch, loss))) = (fit.stopped_early, fit.best) {
        eprintln!("early stop after epoch {}: best validation loss {loss:.6} in epoch {epoch}, weights restored", history.len());
    }
    let train_seconds = started.elapsed().as_secs_f64();

    run.save_weights(&vs)?;
    let pca = super::pca_baseline(&train_set, &model_cfg, device)?;
    let report = metrics::evaluate(&model, &model_cfg, &cfg, &test.to_device(device), &pca);
    plot_loss::write(
        &[plot_loss::curve("train", history)],
        &run.file(checkpoint::LOSS_PNG),
        false,
        Format::Png,
    )?;
    grid::write(
        &model,
        &cfg,
        &test.take(GRID_IMAGES),
        device,
        &run.file(checkpoint::GRID_PNG),
        Format::Png,
    )?;
    let last = history.last().context("training ran no epoch")?;
    let manifest = RunManifest {
        format_version: FORMAT_VERSION,
        ae_tch_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model_cfg,
        train: cfg.clone(),
        data: DataRecord {
            path: std::fs::canonicalize(&data_dir).unwrap_or(data_dir.clone()),
            train_images: train_set.len(),
            val_images: val_set.len(),
        },
        weights: checkpoint::WEIGHTS.to_string(),
        outcome: Some(Outcome {
            epochs_run: history.len(),
            best_epoch: fit.best.map(|b| b.0),
            best_val_loss: fit.best.map(|b| b.1),
            stopped_early: fit.stopped_early,
            final_train_loss: last.train_loss,
            final_val_loss: last.val_loss,
            train_seconds,
            test: report.clone(),
        }),
    };
    run.write_manifest(&manifest)?;

    let dir = run.path().display();
    super::print(&format!(
        "trained {} epochs in {:.1} s\n\n{}\nrun folder  {dir}\nloss plot   {dir}/{}\ngrid        {dir}/{}\n",
        history.len(),
        train_seconds,
        eval::table(&report, &cfg),
        checkpoint::LOSS_PNG,
        checkpoint::GRID_PNG,
    ))
}

fn model_config(args: &TrainArgs, height: usize, width: usize) -> ModelConfig {
    let mut cfg = ModelConfig {
        arch: args.arch,
        height: height as i64,
        width: width as i64,
        hidden: args.hidden.clone(),
        latent: args.latent,
        activation: args.activation,
        backbone: args.backbone,
        channels: args.channels.clone(),
        tied_weights: args.tied_weights,
    };
    // Record only the layers this architecture uses.
    if cfg.is_conv() {
        cfg.hidden.clear();
    } else {
        cfg.channels.clear();
    }
    cfg
}

/// `runs/<mode>-<YYYYMMDD>-<HHMMSS>` in UTC.
fn default_out(cfg: &TrainConfig) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{}", cfg.mode, utc_stamp(secs)))
}

/// `YYYYMMDD-HHMMSS` for a Unix time (Howard Hinnant's days-to-civil algorithm).
fn utc_stamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The progress bar on stderr (hidden when stderr is not a terminal) plus one summary
/// line per epoch, which is always printed.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        Progress { bar: None }
    }

    fn on(&mut self, event: &Event<'_>) {
        match *event {
            Event::EpochStart { epoch, epochs, steps } => {
                let bar = ProgressBar::new(steps as u64);
                bar.set_style(
                    ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("{epoch}/{epochs}"));
                self.bar = Some(bar);
            }
            Event::Progress { step, loss } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step as u64);
                    bar.set_message(format!("loss {loss:.5}"));
                }
            }
            Event::EpochEnd(s) => {
                let line = format!(
                    "epoch {:>3}  train {:.6}  val {}  {:.2} s  {:.0} img/s",
                    s.epoch,
                    s.train_loss,
                    s.val_loss.map_or("-".to_string(), |v| format!("{v:.6}")),
                    s.seconds,
                    s.samples_per_s
                );
                match self.bar.take() {
                    Some(bar) => {
                        bar.finish_and_clear();
                        eprintln!("{line}");
                    }
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_796_026_530), "20261130-081530");
    }
}
