//! `ae-tch train`: from the resolved flags (`settings::TrainSettings`) a new or resumed
//! run, trained through the run session, evaluated, and its run folder written.

use crate::checkpoint;
use crate::cli::TrainArgs;
use crate::commands::report;
use crate::config::{self, Init, ModelConfig, TrainConfig};
use crate::data::batch::Source;
use crate::data::record::DataRecord;
use crate::data::{self, Rows};
use crate::dist::{self, Dist};
use crate::log::counted;
use crate::metrics::detector::{self, Detector, Member};
use crate::metrics::reference::{self, ReferenceScores};
use crate::plot::Format;
use crate::run_store::{self, RunDir};
use crate::run_store::{Outcome, RunManifest};
use crate::session::{self, fit_into_run, tb_log, Trained};
use crate::settings::TrainSettings;
use crate::train;
use crate::{device, metrics};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tch::nn;

/// Images shown in the run's grid.png.
const GRID_IMAGES: usize = 10;

mod fresh;
mod members;
mod resume;

/// What a run needs before its first step, fresh or resumed.
pub(super) struct Setup {
    run: RunDir,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    data: DataRecord,
    train_set: Rows,
    val_set: Rows,
    test: Rows,
    resume: Option<train::Resume>,
    /// The settings the data chose, in flag words, for the first line (new runs).
    chosen: Option<String>,
}

/// `given(id)`: whether the flag with clap id `id` was on the command line (with
/// `--resume`, only those are compared with the recorded run).
pub fn run(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> Result<()> {
    let s = TrainSettings::new(&args, given);
    device::set_threads(s.threads)?;
    // Under torchrun this process is one rank of a data-parallel group.
    let mut dist = join_group(s.dist_timeout)?;
    let scratch = dist.as_ref().and_then(|d| d.scratch());
    let mut setup = match &s.resume {
        None => fresh::fresh(&s, scratch)?,
        Some(dir) => resume::resumed(&s, dir)?,
    };
    let threads = tch::get_num_threads();
    let mut device = device::resolve(setup.cfg.device)?;
    if let Some(d) = dist.as_mut() {
        device = start_group(d, device, &mut setup)?;
    }
    let Setup { run, cfg, model_cfg, data: data_record, train_set, val_set, test, resume, chosen } =
        setup;
    let train_t = Source::of(&train_set, device);
    let (vs, model) = network(&model_cfg, &cfg, &train_t, device, resume.is_none())?;
    let parameters: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    crate::log::note(format_args!(
        "{} {} autoencoder: {}, {} parameters, on {} ({} train / {} validation {}, {}) on {:?}{}",
        if resume.is_some() { "resuming" } else { "training" },
        cfg.mode,
        model_cfg.shape_summary(),
        thousands(parameters),
        data_record.path.display(),
        train_set.len(),
        val_set.len(),
        train_set.noun(),
        model_cfg.input.describe(),
        device,
        chosen.map_or(String::new(), |c| format!("; chosen by the data: {c}"))
    ));
    let val_t = (!val_set.is_empty()).then(|| Source::of(&val_set, device));
    let what =
        Trained { model: &model_cfg, cfg: &cfg, data: &data_record, threads, dist: dist.as_ref() };
    let viewer = || view(&model, &cfg, &val_set, device);
    let pairs = speech_pairs(&model_cfg, &cfg, &data_record, (train_set.len(), val_set.len()))?;
    let inputs = pairs.as_ref().map(|p| p as &dyn crate::data::batch::Inputs);
    let rows = train::Data { train: &train_t, val: val_t.as_ref(), inputs };
    let done_before = resume.as_ref().map_or(0, |r| r.state.history.len());
    let (fit, train_seconds) = fit_into_run(&run, &model, &vs, rows, what, resume, Some(&viewer))?;
    if dist.as_ref().is_some_and(|d| !d.is_main()) {
        return Ok(()); // rank 0 evaluates and writes the run
    }
    let rows = train::Data { train: &train_t, val: val_t.as_ref(), inputs: None };
    let members = members::train(&model_cfg, &cfg, rows, device)?;
    drop((train_t, val_t));
    let mut trained =
        Finished { run, vs, model, model_cfg, cfg, data: data_record, fit, train_seconds, members };
    let manifest = trained.write((&train_set, &val_set), &test, device)?;
    if s.json {
        return super::print(&(serde_json::to_string_pretty(&manifest)? + "\n"));
    }
    let dir = trained.run.path().display();
    let grid = match test.images() {
        Some(_) => format!("grid        {dir}/{}\n", run_store::GRID_PNG),
        None => String::new(),
    };
    let report = manifest.outcome.as_ref().and_then(|o| o.test.as_ref()).context("test report")?;
    super::print(&format!(
        "{}\n\n{}\nrun folder  {dir}\nloss plot   {dir}/{}\n{grid}",
        trained_line(done_before, trained.fit.history.len(), trained.train_seconds),
        report::eval_table(report, &manifest.model, &trained.cfg),
        run_store::LOSS_PNG,
    ))
}

/// A network of `model_cfg` drawn from `cfg.seed`; when `fresh`, initialised and started as
/// `cfg` says (a resumed run's weights come from its checkpoint instead). The run's model
/// and the members of a table's ensemble are made here.
fn network(
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    train: &Source,
    device: tch::Device,
    fresh: bool,
) -> Result<(nn::VarStore, crate::model::Autoencoder)> {
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = crate::model::Autoencoder::new(&vs.root(), model_cfg);
    if fresh && cfg.init == Init::Torch {
        crate::model::init::torch_init(&vs);
    }
    if fresh && cfg.start == config::Start::Mean {
        crate::model::init::start_at_the_mean(&vs, model_cfg, train)?;
    }
    Ok((vs, model))
}

/// Starts this rank's part of the data-parallel group on its device (one GPU per rank:
/// the one torchrun's LOCAL_RANK names), points ranks other than 0 at their scratch
/// folder, and checks that every rank trains the same settings from the same point.
fn start_group(d: &mut Dist, device: tch::Device, setup: &mut Setup) -> Result<tch::Device> {
    let device = match device.is_cuda() {
        true => device::resolve(config::DeviceSpec::Cuda(d.local_rank))
            .context("each rank trains on cuda:LOCAL_RANK")?,
        false => device,
    };
    d.start(device)?;
    crate::log::note(format_args!(
        "rank {} of {}: c10d {} on {device:?}",
        d.rank,
        d.world,
        d.backend()
    ));
    // Only rank 0 writes the run folder; the others write theirs where nobody looks.
    if let Some(scratch) = d.scratch() {
        setup.run = RunDir::create(scratch, true)?;
    }
    check_data_parallel(d, &setup.cfg)?;
    let resume = setup.resume.as_ref();
    let at = resume.map_or((1, 0), |r| (r.state.epoch, r.state.step));
    let hash = checkpoint::settings_hash(&setup.model_cfg, &setup.cfg, &setup.data.path);
    d.agree("settings", &(hash + &format!("@{at:?}")))?;
    if let Some(recorded) = resume.map(|r| r.world_size).filter(|&w| w != d.world) {
        crate::log::note(format_args!(
            "the checkpoint was written by {recorded} rank(s), this group has {}: the run \
             continues equal to it up to rounding, not bit for bit",
            d.world
        ));
    }
    Ok(device)
}

/// A trained autoencoder, before its run folder is complete.
struct Finished {
    run: RunDir,
    vs: nn::VarStore,
    model: crate::model::Autoencoder,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: DataRecord,
    fit: train::Fit,
    train_seconds: f64,
    /// A table's ensemble beyond `model`, which the detector takes.
    members: Vec<Member>,
}

impl Finished {
    /// Writes the weights, the training and validation rows' anomaly scores, the loss
    /// chart, the test grid and model.json with the test metrics (beside the PCA baseline
    /// fitted on the training rows); model.json's contents.
    fn write(
        &mut self,
        (train_set, val_set): (&Rows, &Rows),
        test: &Rows,
        device: tch::Device,
    ) -> Result<RunManifest> {
        let (run, cfg, model_cfg) = (&self.run, &self.cfg, &self.model_cfg);
        let weights = run_store::weights_file(cfg.format);
        run.save_weights(&self.vs, weights)?;
        let members = std::mem::take(&mut self.members);
        let detector = match model_cfg.input.table() {
            Some(_) if cfg.tail_score || !members.is_empty() => {
                Some(Detector::fit((&self.model, members), train_set, cfg.tail_score, device)?)
            }
            _ => None,
        };
        if let Some(detector) = &detector {
            detector.write(&run.file(detector::FILE))?;
        }
        let scored = (&self.model, detector.as_ref());
        let scores = ReferenceScores::of(scored, train_set, val_set, device)?;
        scores.write(&run.file(reference::FILE))?;
        let pca = super::pca_baseline(train_set, model_cfg, device)?;
        let report = match model_cfg.input.series().filter(|(_, s)| s.spectral.is_some()) {
            // A spectral denoiser is measured as waves: its test recordings, noise added.
            Some(input) => {
                let source =
                    self.data.vectors.as_ref().context("a series run records its source")?;
                let clean = data::vectors::test_recordings(
                    (&self.data.path, source),
                    input.1,
                    cfg.seed,
                    None,
                )?;
                metrics::speech::evaluate(&self.model, &pca, cfg, input, &clean, device)?
            }
            None => {
                metrics::chunked::evaluate_rows(&self.model, model_cfg, cfg, test, &pca, device)
            }
        };
        report::write_loss_chart(
            &[report::loss_curve("train", &self.fit.history, cfg.trim)],
            &run.file(run_store::LOSS_PNG),
            &report::loss_description(model_cfg, cfg),
            false,
            Format::Png,
        )?;
        if let Some(images) = test.images() {
            let grid = images.take(GRID_IMAGES);
            let path = run.file(run_store::GRID_PNG);
            report::write_grid(&self.model, cfg, &grid, device, &path, Format::Png)?;
        }
        let outcome = session::outcome(&self.fit, self.train_seconds)?;
        let outcome = Outcome { test: Some(report), ..outcome };
        let manifest = RunManifest::new(
            model_cfg.clone(),
            cfg.clone(),
            self.data.clone(),
            weights,
            Some(outcome),
        );
        run.write_manifest(&manifest)?;
        Ok(manifest)
    }
}

/// 1234567 as "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// "trained 6 epochs in 4.2 s", or for a resumed run what this session trained.
fn trained_line(done_before: usize, total: usize, seconds: f64) -> String {
    match total.saturating_sub(done_before) {
        _ if done_before == 0 => format!("trained {} in {seconds:.1} s", counted(total, "epoch")),
        0 => format!("resumed after epoch {done_before}: no epochs left to train"),
        1 => format!("trained epoch {total} in {seconds:.1} s (resumed after epoch {done_before})"),
        _ => format!(
            "trained epochs {}–{total} in {seconds:.1} s (resumed after epoch {done_before})",
            done_before + 1
        ),
    }
}

/// The most validation rows of a series run whose codes TensorBoard's histogram shows.
const HISTOGRAM_ROWS: usize = 1 << 16;

/// What the TensorBoard log shows of the autoencoder after an epoch: the grid of
/// `GRID_IMAGES` validation images and the codes of every validation row (of evenly
/// strided ones, for the windows of a long series).
fn view(
    model: &crate::model::Autoencoder,
    cfg: &TrainConfig,
    val: &Rows,
    device: tch::Device,
) -> Result<tb_log::View> {
    let grid = match val.images() {
        Some(images) if !images.is_empty() => {
            let png = report::grid(model, cfg, &images.take(GRID_IMAGES), device, Format::Png)?;
            tb_log::png_shape(&png).map(|shape| (png, shape))
        }
        _ => None,
    };
    let codes = if val.is_empty() {
        Vec::new()
    } else {
        // Windows of series (millions at a small hop) show the codes of evenly strided
        // rows, at most `HISTOGRAM_ROWS` of them.
        let strided;
        let val = match val.windows() {
            Some(w) if w.len() > HISTOGRAM_ROWS => {
                let stride = w.len().div_ceil(HISTOGRAM_ROWS);
                strided =
                    Rows::Windows(w.select(&(0..w.len()).step_by(stride).collect::<Vec<_>>()));
                &strided
            }
            _ => val,
        };
        let mut codes = Vec::new();
        for r in val.chunks() {
            let x = val.unit_range(r, device);
            codes.extend(data::to_host_f32(&crate::metrics::batched(&x, |b| model.encode(b)))?);
        }
        codes
    };
    Ok(tb_log::View { grid, codes })
}

/// Joins the data-parallel group torchrun describes, if it does.
fn join_group(dist_timeout: f64) -> Result<Option<Dist>> {
    let Some(launch) = dist::Launch::from_env()? else { return Ok(None) };
    if !(dist_timeout > 0.0 && dist_timeout.is_finite()) {
        bail!("--dist-timeout must be a positive number of seconds, got {dist_timeout}");
    }
    let timeout = std::time::Duration::from_secs_f64(dist_timeout);
    let d = Dist::join(&launch, timeout)?;
    crate::log::note(format_args!(
        "rank {} of {} (local rank {}), store at {}:{}{}",
        d.rank,
        d.world,
        d.local_rank,
        launch.master_addr,
        launch.master_port,
        if launch.agent_store { " (torchrun's agent)" } else { "" }
    ));
    if !d.is_main() {
        // Rank 0 speaks for the group; the others only report their errors.
        crate::log::set_quiet(true);
    }
    Ok(Some(d))
}

/// What data-parallel training cannot do (yet), refused before the first step.
fn check_data_parallel(d: &Dist, cfg: &TrainConfig) -> Result<()> {
    if d.world > 1 && cfg.trim > 0.0 {
        bail!(
            "--trim {} chooses the rows it leaves out over the whole batch, which the ranks \
             of a data-parallel group do not share: pass --trim 0, or train in one process",
            cfg.trim
        );
    }
    Ok(())
}

/// `runs/<mode>-<YYYYMMDD>-<HHMMSS>` in UTC.
pub(super) fn default_out(cfg: &TrainConfig) -> PathBuf {
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

/// A spectral denoiser's noisy training rows, made from its recordings each epoch; none
/// for other runs.
fn speech_pairs(
    model: &config::ModelConfig,
    cfg: &config::TrainConfig,
    data: &DataRecord,
    (train, val): (usize, usize),
) -> Result<Option<crate::data::vectors::SpeechPairs>> {
    let (Some((spec, series)), Some(source)) = (model.input.series(), &data.vectors) else {
        return Ok(None);
    };
    if series.spectral.is_none() || cfg.mode != config::Mode::Denoise {
        return Ok(None);
    }
    let pairs = crate::data::vectors::SpeechPairs::new(
        &data.path,
        source,
        (spec, series),
        cfg,
        (train, train + val),
    )?;
    Ok(Some(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConvLayers, Layers};

    #[test]
    fn parameter_counts_and_shapes_read_well() {
        assert_eq!(
            (thousands(0), thousands(999), thousands(1000)),
            ("0".into(), "999".into(), "1,000".into())
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(trained_line(0, 1, 2.0), "trained 1 epoch in 2.0 s");
        assert_eq!(trained_line(0, 3, 2.0), "trained 3 epochs in 2.0 s");
        let mlp = ModelConfig::default();
        assert_eq!(mlp.shape_summary(), format!("mlp 784-512-128-{}", mlp.latent));
        let conv = ModelConfig {
            layers: Layers::Conv(ConvLayers {
                channels: vec![32, 64],
                blocks: 1,
                groups: 8,
                upsample: Default::default(),
            }),
            latent: 30,
            ..ModelConfig::default()
        };
        assert_eq!(
            conv.shape_summary(),
            "conv 1×28×28 → channels 32,64 (1 residual block a level, GroupNorm) → 30"
        );
        let vae = ModelConfig { variational: true, ..ModelConfig::default() };
        assert!(vae.shape_summary().starts_with("vae 784-512-128-"));
    }

    #[test]
    fn a_resumed_run_says_what_this_session_trained() {
        assert_eq!(trained_line(0, 6, 4.24), "trained 6 epochs in 4.2 s");
        assert_eq!(
            trained_line(2, 25, 4.2),
            "trained epochs 3–25 in 4.2 s (resumed after epoch 2)"
        );
        assert_eq!(trained_line(5, 6, 1.0), "trained epoch 6 in 1.0 s (resumed after epoch 5)");
        assert_eq!(trained_line(4, 4, 0.0), "resumed after epoch 4: no epochs left to train");
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_796_026_530), "20261130-081530");
    }
}
