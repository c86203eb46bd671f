//! One module per subcommand, each mapping its arguments onto library calls, plus what
//! several of them share: opening a trained run and its test images.

pub mod anomaly;
pub mod data_fetch;
pub mod data_info;
pub mod denoise;
pub mod doctor;
pub mod encode;
pub mod eval;
pub mod grid;
pub mod interpolate;
pub mod plot_latent;
pub mod plot_loss;
pub mod report;
pub mod sample;
pub mod train;
pub mod weights;

use crate::cli::{Cli, Command, DataCommand, RunArgs};
use crate::config::ModelConfig;
use crate::data::spec::{DataSpec, ImageSpec};
use crate::data::{self, ImageSet, Split};
use crate::device;
use crate::metrics::pca::Pca;
use crate::model::Autoencoder;
use crate::run_store::RunDir;
use crate::run_store::RunManifest;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;
use tch::{nn, Device};

/// Runs `command`; `matches` are the parsed arguments (to tell flags that were given from
/// defaults).
pub fn dispatch(command: Command, matches: &clap::ArgMatches) -> Result<()> {
    match command {
        Command::Train(args) => {
            let sub = matches.subcommand_matches("train");
            let given = |id: &str| {
                sub.and_then(|m| m.try_get_raw(id).ok().flatten().map(|_| m.value_source(id)))
                    .flatten()
                    == Some(clap::parser::ValueSource::CommandLine)
            };
            train::run(args, &given)
        }
        Command::Eval(args) => eval::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Anomaly(args) => anomaly::run(args),
        Command::PlotLatent(args) => plot_latent::run(args),
        Command::Denoise(args) => denoise::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Interpolate(args) => interpolate::run(args),
        Command::PlotLoss(args) => plot_loss::run(args),
        Command::Grid(args) => grid::run(args),
        Command::Export(args) => weights::export(args),
        Command::Import(args) => weights::import(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Data(DataCommand::Fetch(args)) => data_fetch::run(args),
        Command::Data(DataCommand::Info(args)) => data_info::run(args),
        Command::Completions(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "ae-tch", &mut out);
            print(&String::from_utf8_lossy(&out))
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            print(&String::from_utf8_lossy(&out))
        }
    }
}

/// A trained run, rebuilt and ready for inference.
pub struct LoadedRun {
    pub run: RunDir,
    pub manifest: RunManifest,
    pub model: Autoencoder,
    pub device: Device,
    /// Owns the model's variables.
    pub _vs: nn::VarStore,
}

pub fn open_run(args: &RunArgs) -> Result<LoadedRun> {
    device::set_threads(args.runtime.threads)?;
    let device = device::resolve(args.runtime.device)?;
    let run = RunDir::open(&args.dir)?;
    let (manifest, vs, model) = run.load_model(device)?;
    Ok(LoadedRun { run, manifest, model, device, _vs: vs })
}

impl LoadedRun {
    /// The test split of `data` (or of the folder the run was trained on).
    pub fn test_images(&self, data: Option<&Path>) -> Result<ImageSet> {
        self.images(data, Split::Test)
    }

    /// The run's image description (colour, size, background).
    pub fn spec(&self) -> ImageSpec {
        let DataSpec::Image(spec) = self.manifest.model.input;
        spec
    }

    /// One split of `data` (or of the folder the run was trained on), converted to the
    /// run's images: other sizes are resized, colour converted, transparency flattened.
    pub fn images(&self, data: Option<&Path>, split: Split) -> Result<ImageSet> {
        let dir = data.unwrap_or(&self.manifest.data.path);
        data::load_split(dir, split, &self.spec().request())
    }

    /// The run's training and validation images, as it was trained on them.
    pub fn training_sets(&self, why: &str) -> Result<(ImageSet, ImageSet)> {
        let request = self.spec().request();
        data::training_sets(&self.manifest.data.path, &self.manifest.train, &request)
            .with_context(|| format!("{why} needs the run's training images"))
    }

    /// The PCA baseline for this run: refitted on the images the run was trained on.
    pub fn pca_baseline(&self) -> Result<Pca> {
        let (train, _) = self.training_sets("the PCA baseline")?;
        pca_baseline(&train, &self.manifest.model, self.device)
    }
}

/// Decodes codes `z` (`[N, latent]`) and writes them as a grid of `cols` columns.
pub fn decode_grid(
    loaded: &LoadedRun,
    z: &tch::Tensor,
    cols: usize,
    title: &str,
    path: &Path,
    format: crate::plot::Format,
) -> Result<()> {
    let shape = image_shape(&loaded.manifest.model);
    let mut pixels = data::to_host_f32(&tch::no_grad(|| loaded.model.decode(z)))?;
    // A short last row is padded with blank (black) images.
    let row = cols * shape.0 * shape.1 * shape.2;
    pixels.resize(pixels.len().div_ceil(row) * row, 0.0);
    let rows: Vec<crate::plot::GridRow> =
        pixels.chunks(row).map(|images| crate::plot::GridRow { label: "", images }).collect();
    let bytes = crate::plot::image_grid(&rows, shape, title, format)?;
    crate::run_store::write_atomic(path, &bytes)
}

/// The model's input shape (channels, height, width) as `plot::image_grid` takes it.
pub fn image_shape(model: &ModelConfig) -> (usize, usize, usize) {
    let (c, h, w) = model.image_shape();
    (c as usize, h as usize, w as usize)
}

/// PCA with the model's code size, fitted on the model's training images (a strided
/// subset of them for wide images, see `pca::GRAM_ROWS`).
pub fn pca_baseline(train: &ImageSet, model: &ModelConfig, device: Device) -> Result<Pca> {
    let k = model.latent.min(model.input_dim());
    let pca = Pca::fit(&train.to_device(device), k)
        .context("fitting the PCA baseline on the training images")?;
    if pca.fitted_rows < train.len() as i64 {
        crate::note(format_args!(
            "note: the PCA baseline is fitted on {} of the {} training images (every {}th), \
             as {} values per image are too many for the full covariance",
            pca.fitted_rows,
            train.len(),
            train.len().div_ceil(pca.fitted_rows as usize),
            model.input_dim()
        ));
    }
    Ok(pca)
}

/// Writes human-facing results to stdout; a closed pipe surfaces as an error that `main`
/// treats as success.
/// `bar` drawn with `template` on stderr: hidden under --quiet, and by indicatif itself
/// when stderr is not a terminal.
pub fn progress_bar(bar: indicatif::ProgressBar, template: &'static str) -> indicatif::ProgressBar {
    if crate::QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = indicatif::ProgressStyle::with_template(template).expect("static template");
    bar.set_style(style.progress_chars("=> "));
    bar
}

pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
