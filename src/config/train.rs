//! How a network is trained, as model.json records it (`TrainConfig`), with what a
//! resumed run may change and the values that cannot work.

use super::model::is_default;
use super::*;
use serde::{Deserialize, Serialize};

/// The most autoencoders a table's anomaly score may average (`--ensemble`).
pub const MAX_ENSEMBLE: usize = 16;

fn is_one(n: &usize) -> bool {
    *n == 1
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
    /// Audio noise: the top of the range of signal-to-noise ratios (dB) drawn from, whose
    /// bottom is `noise_level`; none for a single ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_level_high: Option<f64>,
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
    /// Tables: fit `metrics::detector` when training ends (the error weighed per feature
    /// plus the columns' tails), recorded in `detector.safetensors`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tail_score: bool,
    /// Tables: the autoencoders the anomaly score averages — the run's model and
    /// `ensemble - 1` members trained after it from the next seeds, kept in
    /// `detector.safetensors`; 1 (older runs, series, images) is the run's model alone.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub ensemble: usize,
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
    /// Runs made before it existed started at random: absent means that.
    #[serde(default, skip_serializing_if = "is_default")]
    pub start: Start,
    /// Runs made before it existed trained on the images as they are: absent means that.
    #[serde(default, skip_serializing_if = "is_default")]
    pub augment: Augment,
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
    /// Training settings a resumed run may change (with `--force`); every other setting, the
    /// model and the data must stay as they were (`checkpoint::config_hash` leaves these out).
    pub const RESUMABLE: [&'static str; 9] = [
        "epochs",
        "lr",
        "early_stop",
        "lr_schedule",
        "grad_clip",
        "device",
        "engine",
        "checkpoint_every",
        "tensorboard",
    ];

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
            noise_level_high: None,
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
            tail_score: false,
            ensemble: 1,
            early_stop: None,
            lr_schedule: arch.lr_schedule,
            grad_clip: None,
            beta: None,
            engine: Engine::Auto,
            init: arch.init,
            start: arch.start,
            augment: Augment::None,
            precision: Precision::Fp32,
            checkpoint_every: 1,
            tensorboard: None,
            format: WeightsFormat::Ot,
            finetune: None,
        }
    }
}

impl TrainConfig {
    /// Rejects impossible values, naming the setting.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |setting, problem: String| Err(Invalid::of(setting, problem));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if !(1..=1 << 20).contains(&self.batch_size) {
            let most = 1 << 20;
            return bad(
                "batch_size",
                format!("must be between 1 and {most}, got {}", self.batch_size),
            );
        }
        if self.epochs > 1_000_000 {
            return bad("epochs", format!("must be at most 1000000, got {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("must be a positive number, got {}", self.lr));
        }
        self.check_noise()?;
        let non_negative = [("weight_decay", self.weight_decay), ("l1_latent", self.l1_latent)];
        if let Some((setting, v)) = non_negative.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0))
        {
            return bad(setting, format!("must be a non-negative number, got {v}"));
        }
        if !(1..=MAX_ENSEMBLE).contains(&self.ensemble) {
            let got = self.ensemble;
            return bad("ensemble", format!("must be between 1 and {MAX_ENSEMBLE}, got {got}"));
        }
        if !(0.0..1.0).contains(&self.trim) {
            return bad("trim", format!("must be in [0, 1), got {}", self.trim));
        }
        if let Some(c) = self.grad_clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return bad("grad_clip", format!("must be a positive number, got {c}"));
        }
        if let Some(b) = self.beta.filter(|b| !(b.is_finite() && *b >= 0.0)) {
            return bad("beta", format!("must be a non-negative number, got {b}"));
        }
        self.validate_counts()
    }

    /// The noise's level: σ ≥ 0, a probability, or a ratio (or range of ratios) in dB
    /// for audio noise.
    fn check_noise(&self) -> Result<(), Invalid> {
        let (level, high) = (self.noise_level, self.noise_level_high);
        let bad = |problem: String| Err(Invalid::of("noise_level", problem));
        if self.noise.is_audio() {
            let sane = |db: f64| db.is_finite() && (-60.0..=120.0).contains(&db);
            if !sane(level) || high.is_some_and(|h| !sane(h) || h < level) {
                let range = high.map_or(format!("{level}"), |h| format!("{level}:{h}"));
                return bad(format!(
                    "is a signal-to-noise ratio in dB for {} noise: expected a number or a \
                     range LOW:HIGH between -60 and 120 dB, got {range}",
                    self.noise
                ));
            }
            return Ok(());
        }
        if let Some(h) = high {
            return bad(format!(
                "is one number for {} noise, got the range {level}:{h}",
                self.noise
            ));
        }
        if !(level.is_finite() && level >= 0.0) {
            return bad(format!("must be a non-negative number, got {level}"));
        }
        if self.noise != NoiseKind::Gaussian && level > 1.0 {
            return bad(format!(
                "is a probability for {} noise: expected 0 to 1, got {level}",
                self.noise
            ));
        }
        Ok(())
    }

    /// The settings counted in epochs, rows or classes.
    fn validate_counts(&self) -> Result<(), Invalid> {
        let bad = |setting, problem: &str| Err(Invalid::of(setting, problem));
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1 epoch");
        }
        if self.early_stop == Some(0) {
            return bad("early_stop", "must be at least 1 epoch");
        }
        if self.early_stop.is_some() && self.val_fraction == 0.0 {
            return bad("early_stop", "needs validation images: set {val_fraction} above 0");
        }
        if self.limit == Some(0) {
            return bad("limit", "must be at least 1 (it is the number of training images used)");
        }
        if self.classes.as_ref().is_some_and(|c| c.is_empty()) {
            return bad("classes", "needs at least one class");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            let problem = format!("must be in [0, 1), got {}", self.val_fraction);
            return Err(Invalid::of("val_fraction", problem));
        }
        Ok(())
    }
}
