//! One module per subcommand, each mapping its arguments onto library calls, plus what
//! several of them share: opening a trained run and its test images.

pub mod anomaly;
pub mod data_fetch;
pub mod data_info;
pub mod denoise;
pub mod doctor;
pub mod encode;
pub mod eval;
pub mod finetune;
pub mod grid;
pub mod interpolate;
pub mod plot_latent;
pub mod plot_loss;
pub mod probe;
pub mod report;
pub mod sample;
pub mod train;
pub mod weights;

use crate::cli::{Cli, Command, DataCommand, RunArgs};
use crate::config::ModelConfig;
use crate::data::record::DataRecord;
use crate::data::spec::{ImageSpec, Reading};
use crate::data::{self, ImageSet, Rows, Split};
use crate::device;
use crate::metrics::pca::Pca;
use crate::model::Autoencoder;
use crate::run_store::{RunDir, RunManifest};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use tch::{nn, Device};

/// A subcommand that failed: its error, and which subcommand it was (the flags its
/// message names are that subcommand's).
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub subcommand: Option<String>,
}

impl Failure {
    /// The error chain in words, settings named by the subcommand's flags.
    pub fn message(&self) -> String {
        crate::settings::message(&self.error, self.subcommand.as_deref())
    }
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> Result<(), Failure> {
    use clap::FromArgMatches;
    let matches = crate::settings::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    crate::log::install(Box::new(crate::log::Stderr));
    crate::log::set_quiet(cli.quiet);
    let subcommand = matches.subcommand_name().map(str::to_string);
    dispatch(cli.command, &matches).map_err(|error| Failure { error, subcommand })
}

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
        Command::Probe(args) => probe::run(args),
        Command::Finetune(args) => finetune::run(args),
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
            clap_complete::generate(
                args.shell,
                &mut crate::settings::command(),
                "ae-tch",
                &mut out,
            );
            print(&String::from_utf8_lossy(&out))
        }
        Command::Man(args) => match args.all {
            None => {
                let mut out = Vec::new();
                clap_mangen::Man::new(crate::settings::command()).render(&mut out)?;
                print(&String::from_utf8_lossy(&out))
            }
            Some(dir) => {
                let written = write_man_pages(&dir)?;
                print(&format!("wrote {written} man pages to {}\n", dir.display()))
            }
        },
    }
}

/// Every man page (the top level and each subcommand, recursively, as clap_mangen names
/// them) into `dir`, each written atomically; how many.
fn write_man_pages(dir: &std::path::Path) -> Result<usize> {
    fn pages(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            pages(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut bytes = Vec::new();
        man.render(&mut bytes)?;
        out.push((man.get_filename(), bytes));
        Ok(())
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--all {}: cannot create the folder", dir.display()))?;
    let mut cmd = crate::settings::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    pages(cmd, &mut out)?;
    for (name, bytes) in &out {
        crate::atomic::write_atomic(&dir.join(name), bytes)?;
    }
    Ok(out.len())
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
    /// The test split of `data` (or of the data the run was trained on), read with the
    /// run's recorded reading and the command's flags over it.
    pub fn test_rows(&self, data: (Option<&Path>, Reading)) -> Result<Rows> {
        self.rows(data, Split::Test)
    }

    /// How this command reads another file: the run's recorded reading with the flags
    /// `given` over it.
    pub fn reading(&self, given: Reading) -> Reading {
        given.over(self.manifest.model.input.recorded_reading(&self.manifest.data))
    }

    /// The test images, for commands that work on images only.
    pub fn test_images(&self, data: Option<&Path>) -> Result<ImageSet> {
        self.images(data, Split::Test)
    }

    /// The run's image description (colour, size, background); an error naming `what`
    /// for a run trained on vectors.
    pub fn spec(&self) -> Result<ImageSpec> {
        let input = &self.manifest.model.input;
        input.image().cloned().with_context(|| {
            format!(
                "this works on images, and {} was trained on {}",
                self.run.path().display(),
                input.describe_kind()
            )
        })
    }

    /// One split of `data` (or of the data the run was trained on): see `split_rows`.
    pub fn rows(&self, data: (Option<&Path>, Reading), split: Split) -> Result<Rows> {
        split_rows(&self.manifest, data, split)
    }

    /// `rows` for commands that work on images only.
    pub fn images(&self, data: Option<&Path>, split: Split) -> Result<ImageSet> {
        let dir = data.unwrap_or(&self.manifest.data.path);
        data::load_split(dir, split, &self.spec()?.request())
    }

    /// The run's training and validation rows, as it was trained on them.
    pub fn training_sets(&self, why: &str) -> Result<(Rows, Rows)> {
        let (train, val, _) = self
            .manifest
            .model
            .input
            .rebuild(&self.manifest.data, &self.manifest.train)
            .with_context(|| format!("{why} needs the run's training data"))?;
        Ok((train, val))
    }

    /// The PCA baseline for this run: refitted on the rows the run was trained on.
    pub fn pca_baseline(&self) -> Result<Pca> {
        let (train, _) = self.training_sets("the PCA baseline")?;
        pca_baseline(&train, &self.manifest.model, self.device)
    }
}

/// One split of `data` (or of the data the run was trained on), converted the way the
/// run converts its own (`DataSpec::rows_of`).
pub fn split_rows(
    manifest: &RunManifest,
    data: (Option<&Path>, Reading),
    split: Split,
) -> Result<Rows> {
    let selection = manifest.train.data_selection();
    manifest.model.input.rows_of(&manifest.data, &selection, data, split)
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
    loaded.spec()?;
    let shape = image_shape(&loaded.manifest.model);
    let mut pixels = data::to_host_f32(&tch::no_grad(|| loaded.model.decode(z)))?;
    // A short last row is padded with blank (black) images.
    let row = cols * shape.0 * shape.1 * shape.2;
    pixels.resize(pixels.len().div_ceil(row) * row, 0.0);
    let rows: Vec<crate::plot::GridRow> =
        pixels.chunks(row).map(|images| crate::plot::GridRow { label: "", images }).collect();
    let bytes = crate::plot::image_grid(&rows, shape, title, format)?;
    crate::atomic::write_atomic(path, &bytes)
}

/// The model's input shape (channels, height, width) as `plot::image_grid` takes it.
pub fn image_shape(model: &ModelConfig) -> (usize, usize, usize) {
    let (c, h, w) = model.image_shape();
    (c as usize, h as usize, w as usize)
}

/// PCA with the model's code size, fitted on the model's training rows (a strided
/// subset of them for wide images, see `pca::GRAM_ROWS`).
pub fn pca_baseline(train: &Rows, model: &ModelConfig, device: Device) -> Result<Pca> {
    let k = model.latent.min(model.input_dim());
    let pca = match train.windows() {
        // Windows of series are read a part at a time, never as one matrix.
        Some(w) if w.width() as i64 > crate::metrics::pca::COVARIANCE_MAX_DIM => {
            // The Gram fit takes evenly strided rows: those alone are cut.
            let stride = w.len().div_ceil(crate::metrics::pca::GRAM_ROWS as usize).max(1);
            let rows: Vec<usize> = (0..w.len()).step_by(stride).collect();
            Pca::fit(&w.select(&rows).to_device(device), k)
        }
        Some(w) => {
            let visit = |each: &mut dyn FnMut(tch::Tensor)| {
                w.chunks().into_iter().for_each(|r| each(w.range_to_device(r, device)))
            };
            Pca::fit_parts(&visit, (w.len() as i64, w.width() as i64, device), k)
        }
        None => Pca::fit(&train.to_device(device), k),
    };
    let pca =
        pca.with_context(|| format!("fitting the PCA baseline on the training {}", train.noun()))?;
    if pca.fitted_rows < train.len() as i64 {
        crate::log::note(format_args!(
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

/// The classifier's accuracy and confusion matrix on `rows`.
pub fn classify(
    model: &crate::model::Classifier,
    rows: &Rows,
    cfg: &ModelConfig,
    device: Device,
) -> crate::metrics::probe::ClassReport {
    let parts: Vec<tch::Tensor> = rows
        .chunks()
        .into_iter()
        .map(|r| {
            let x = rows.unit_range(r, device);
            crate::metrics::batched(&x, |b| tch::nn::Module::forward(model, b).argmax(1, false))
                .to_device(tch::Device::Cpu)
        })
        .collect();
    let predicted = match parts.is_empty() {
        true => tch::Tensor::zeros([0], (tch::Kind::Int64, tch::Device::Cpu)),
        false => tch::Tensor::cat(&parts, 0),
    };
    let truth: Vec<i64> = rows.labels().unwrap_or_default().iter().map(|&c| c as i64).collect();
    let names = cfg.head.as_ref().map(|h| h.classes.clone()).unwrap_or_default();
    crate::metrics::probe::ClassReport::new(
        &tch::Tensor::from_slice(&truth),
        &predicted.to_kind(tch::Kind::Int64),
        names,
    )
}

/// What to say when a classifier's rows cannot be rebuilt for `what` (a command): its
/// autoencoder run's data.
pub fn data_needed(what: &str, data: &DataRecord) -> String {
    format!("{what} needs the autoencoder run's data where they were ({})", data.path.display())
}

/// Writes human-facing results to stdout; a closed pipe surfaces as an error that `main`
/// treats as success.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
