//! The training settings a new run's data choose where the flags leave them: the batch
//! size and epochs by the number of training rows (small sets take smaller batches or more
//! epochs, large ones a capped number of epochs), a fully connected network's rate by the
//! input's width, early stopping, a table's ensemble and tail score, and for images the cross-entropy loss and mirroring for
//! small sets.

use super::{Augment, Layers, Loss, ModelConfig, Precision, TrainConfig};
use super::{DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS};
use super::{ENSEMBLE_ROWS, TABLE_ENSEMBLE, TAIL_WIDTH};

/// Steps an epoch should have at least: smaller batches until it does (down to
/// `SMALLEST_BATCH`).
pub const STEPS_PER_EPOCH: usize = 64;
pub const SMALLEST_BATCH: usize = 16;
/// Steps a run should take at least: more epochs until it does.
pub const LEAST_STEPS: usize = 1500;
/// Multiply-adds of the forward passes a run's defaults may ask for: about 3 minutes on 2
/// CPU cores (the conv default on data/mnist's 7,200 training images, 20 epochs: 2.4e12,
/// 156 s). More epochs than that are capped; `--epochs` asks for any number.
pub const WORK: f64 = 3.0e12;
/// Early stopping's patience, in epochs without a new best validation loss.
pub const PATIENCE: usize = 5;
/// Colour image sets with fewer training images than this train on mirrored copies too
/// (data/emoji, conv, 20 epochs: 364 → 345 squared error per test image). Not grayscale
/// sets, whose digits, letters and scans are not mirror images of each other (held-out 0s
/// of data/mnist lost ROC-AUC to the model that learnt mirrored 1–9s), and not a run on
/// chosen classes, whose model is meant to reconstruct exactly those.
pub const FLIP_BELOW: usize = 5000;
/// A fully connected network on an input wider than this takes a rate scaled down by
/// width: Adam moves each of the first layer's weights by about the rate, so the change of
/// a unit's input grows with the number of weights it sums (data/emoji, 12,288 values, the
/// MLP at 3e-3: 476 squared error per test image against PCA's 375; at 3e-4: 367).
pub const RATE_WIDTH: i64 = 1024;
/// The rate of a network on spectra (`--domain stft`): the one the speech benchmark's
/// table was measured at (and its PyTorch prototype trained at); the width rule's 2.4e-3
/// was not compared once early stopping was off.
pub const SPECTRAL_LR: f64 = 1e-3;
/// Smaller batches only pay where an item's forward work dwarfs the step's update of the
/// weights (convolutions: about 110 multiply-adds a weight on 64×64 colour images); a
/// fully connected network, at about 2, keeps its batches and takes more epochs instead.
pub const WORK_PER_WEIGHT: f64 = 16.0;
/// Images train on the cross-entropy of their values in [0, 1], which weighs the errors
/// near 0 and 1 (edges, flat backgrounds) more than squared error does; test squared error
/// per image, 20 epochs: data/mnist conv 6.44 → 6.12, MLP 9.70 → 9.32; data/emoji conv
/// 345 → 339.
pub const IMAGE_LOSS: Loss = Loss::Bce;

/// Elements below which libtorch's `at::parallel_for` keeps an operation on one thread
/// (`at::internal::GRAIN_SIZE`). A fully connected network whose every batch-wide tensor
/// and whose weights all stay below it gains nothing from a second thread, whose OpenMP
/// regions then only cost (a 3,373-row table of 5 features, 2 idle cores: 1.38 s at two
/// threads, 1.34 s at one; tables of 21 to 166 features likewise; Fashion-MNIST through
/// 784-16-8-4, 50,176 values a batch: 1.42x faster at two), and which is slowed most when
/// other processes hold the cores: such a run takes one thread unless `--threads` says.
pub const GRAIN: usize = 32_768;

/// What the data chose, as settings: each is `None` where the flag was given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sized {
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub epochs: Option<usize>,
    /// The epochs the steps asked for when `WORK` capped them.
    pub capped_from: Option<usize>,
    pub early_stop: Option<Option<usize>>,
    pub augment: Option<Augment>,
    pub loss: Option<Loss>,
    /// A table's autoencoders (`TABLE_ENSEMBLE`, fewer for many rows).
    pub ensemble: Option<usize>,
    /// A table's tail score: on up to `TAIL_WIDTH` features.
    pub tail_score: Option<bool>,
    /// One thread for a fully connected network below `GRAIN` (`None`: libtorch's count).
    pub threads: Option<usize>,
    /// bf16 for a convolutional network on a CPU that computes it natively
    /// (`choose_precision`).
    pub precision: Option<Precision>,
}

impl Sized {
    /// The defaults for `rows` training rows on `model`; `given(id)` says which flags set
    /// their own (clap ids), and `val_rows` whether there is a validation set to stop on.
    pub fn choose(
        model: &ModelConfig,
        rows: usize,
        val_rows: usize,
        given: &dyn Fn(&str) -> bool,
        cfg: &TrainConfig,
    ) -> Sized {
        let rows = rows.max(1);
        let per_item = model.multiply_adds() / model.parameter_count().max(1) as f64;
        let batch_size = match given("batch_size") {
            true => cfg.batch_size,
            false if per_item < WORK_PER_WEIGHT => DEFAULT_BATCH_SIZE,
            false => {
                let fit = (rows / STEPS_PER_EPOCH).max(1);
                // The largest power of two at most `fit`, within the two bounds.
                let pow2 = 1usize << (usize::BITS - 1 - fit.leading_zeros());
                pow2.clamp(SMALLEST_BATCH, DEFAULT_BATCH_SIZE)
            }
        };
        let (epochs, capped_from) = match given("epochs") {
            true => (None, None),
            false => {
                let steps = rows.div_ceil(batch_size);
                let wanted = DEFAULT_EPOCHS.max(LEAST_STEPS.div_ceil(steps));
                let affordable = (WORK / (model.multiply_adds() * rows as f64)).floor();
                let most = (affordable as usize).max(1);
                match wanted > most {
                    true => (Some(most), Some(wanted)),
                    false => (Some(wanted), None),
                }
            }
        };
        let width = model.input_dim();
        let spectral = model.input.series().is_some_and(|(_, s)| s.spectral.is_some());
        let lr = match spectral {
            true => (!given("lr")).then_some(SPECTRAL_LR),
            false => {
                (!given("lr") && matches!(model.layers, Layers::Mlp { .. }) && width > RATE_WIDTH)
                    .then(|| cfg.lr * RATE_WIDTH as f64 / width as f64)
            }
        };
        // A spectral denoiser's noise is drawn afresh each epoch, one ratio per recording,
        // so its losses swing from epoch to epoch (0.41 to 0.60 on the speech benchmark)
        // and patience would stop it at random: it trains its epochs out.
        let patience = (val_rows > 0 && !spectral).then_some(PATIENCE);
        let early_stop = (!given("early_stop")).then_some(patience);
        let (image, colour) = match model.input.image() {
            Some(spec) => (true, spec.channels() > 1),
            None => (false, false),
        };
        let flip = colour && rows < FLIP_BELOW && cfg.classes.is_none();
        let augment =
            (!given("augment")).then_some(if flip { Augment::Flip } else { Augment::None });
        let loss = (!given("loss")).then_some(if image { IMAGE_LOSS } else { Loss::Mse });
        let table = model.input.table().is_some();
        let ensemble =
            (!given("ensemble") && table).then(|| (ENSEMBLE_ROWS / rows).clamp(1, TABLE_ENSEMBLE));
        let tail_score = (!given("tail_score") && table).then_some(width <= TAIL_WIDTH);
        let threads = (!given("threads") && below_grain(model, batch_size)).then_some(1);
        Sized {
            precision: None,
            threads,
            ensemble,
            tail_score,
            loss,
            batch_size: (!given("batch_size")).then_some(batch_size),
            lr,
            epochs,
            capped_from,
            early_stop,
            augment,
        }
    }

    /// `cfg` with the chosen settings.
    pub fn apply(&self, cfg: &mut TrainConfig) {
        cfg.batch_size = self.batch_size.unwrap_or(cfg.batch_size);
        cfg.lr = self.lr.unwrap_or(cfg.lr);
        cfg.epochs = self.epochs.unwrap_or(cfg.epochs);
        cfg.early_stop = self.early_stop.unwrap_or(cfg.early_stop);
        cfg.augment = self.augment.unwrap_or(cfg.augment);
        cfg.loss = self.loss.unwrap_or(cfg.loss);
        cfg.ensemble = self.ensemble.unwrap_or(cfg.ensemble);
        cfg.tail_score = self.tail_score.unwrap_or(cfg.tail_score);
        cfg.precision = self.precision.unwrap_or(cfg.precision);
    }

    /// bf16 where the flags leave the precision, the network is convolutional (a VAE's
    /// too) and it trains on a CPU whose bf16 arithmetic is faster than its fp32 (`cpu_bf16`:
    /// AMX, `host::NativeBf16::faster_than_fp32`). There a step
    /// runs 1.5–1.9× faster (`scripts/bench.sh`, W2: 1,643 → 3,152 samples/s; the conv
    /// defaults on data/mnist, data/emoji and Fashion-MNIST, and the conv VAE on the first
    /// two: 1.52–1.75×), its training loss within 1.1% of fp32's and its test error within
    /// 2.1%. Fully connected networks gain 1.05–1.2× on their hand-written step and stay
    /// fp32, and so do GPUs, where it was not measured.
    pub fn choose_precision(
        &mut self,
        model: &ModelConfig,
        given: &dyn Fn(&str) -> bool,
        cpu_bf16: bool,
    ) {
        let conv = matches!(model.layers, Layers::Conv(_));
        self.precision = (!given("precision") && conv && cpu_bf16).then_some(Precision::Bf16);
    }
}

/// Whether every tensor a step of `model` at `batch` rows computes on, its weights
/// included, is smaller than `GRAIN` (fully connected networks only).
fn below_grain(model: &ModelConfig, batch: usize) -> bool {
    let Layers::Mlp { hidden, .. } = &model.layers else { return false };
    let widest = hidden.iter().copied().chain([model.input_dim()]).max().unwrap_or(0).max(0);
    (widest as usize).saturating_mul(batch) < GRAIN && (model.parameter_count() as usize) < GRAIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConvLayers, Upsample};
    use crate::data::spec::{Color, DataSpec, ImageSpec};

    fn conv_on(color: Color, side: i64) -> ModelConfig {
        let upsample = Upsample::Transpose;
        let layers =
            Layers::Conv(ConvLayers { channels: vec![32, 64], blocks: 1, groups: 8, upsample });
        let input = DataSpec::Image(ImageSpec { color, ..ImageSpec::gray(side, side) });
        ModelConfig { input, layers, ..Default::default() }
    }

    fn mlp_on(color: Color, side: i64) -> ModelConfig {
        let layers = Layers::Mlp { hidden: vec![512, 128], tied_weights: false };
        ModelConfig { layers, ..conv_on(color, side) }
    }

    fn chosen(model: &ModelConfig, rows: usize, given: &[&str]) -> Sized {
        let cfg = TrainConfig { batch_size: 7, epochs: 3, lr: 1e-2, ..Default::default() };
        Sized::choose(model, rows, rows / 9, &|id| given.contains(&id), &cfg)
    }

    #[test]
    fn the_data_size_chooses_batches_epochs_and_mirroring() {
        let (mnist, emoji) = (conv_on(Color::Gray, 28), conv_on(Color::Rgb, 64));
        // data/mnist's 7,200 training images: the settings every earlier run had.
        let s = chosen(&mnist, 7200, &[]);
        assert_eq!((s.batch_size, s.epochs, s.capped_from), (Some(64), Some(20), None));
        assert_eq!((s.early_stop, s.augment, s.lr), (Some(Some(5)), Some(Augment::None), None));
        assert_eq!(s.loss, Some(Loss::Bce));
        // data/emoji's 1,350: batches of 16 (84 steps an epoch), mirrored.
        let s = chosen(&emoji, 1350, &[]);
        assert_eq!((s.batch_size, s.epochs, s.augment), (Some(16), Some(20), Some(Augment::Flip)));
        // 576: batches stop at 16, epochs grow to 1,500 steps (36 an epoch: 42 epochs).
        let s = chosen(&emoji, 576, &[]);
        assert_eq!((s.batch_size, s.epochs, s.capped_from), (Some(16), Some(42), None));
        // 54,000 (data/fashion-mnist): 3 epochs of the 20 wanted fit the work budget.
        let s = chosen(&mnist, 54_000, &[]);
        assert_eq!((s.batch_size, s.epochs, s.capped_from), (Some(64), Some(3), Some(20)));
        // Grayscale, or a run on chosen classes: not mirrored.
        assert_eq!(chosen(&conv_on(Color::Gray, 64), 1350, &[]).augment, Some(Augment::None));
        let cfg = TrainConfig { classes: Some(vec![1]), ..Default::default() };
        let s = Sized::choose(&emoji, 1350, 150, &|_| false, &cfg);
        assert_eq!(s.augment, Some(Augment::None));
        // So large that one epoch is over budget: still one epoch.
        assert_eq!(chosen(&emoji, 10_000_000, &[]).epochs, Some(1));
    }

    #[test]
    fn an_mlp_keeps_its_batches_and_a_wide_one_takes_a_lower_rate() {
        let s = chosen(&mlp_on(Color::Rgb, 64), 1350, &[]);
        // 1,350 rows in batches of 64: 22 steps an epoch, 69 epochs to 1,500 steps.
        assert_eq!((s.batch_size, s.epochs), (Some(64), Some(69)));
        // 12,288 inputs: the flags' rate times 1,024 / 12,288.
        assert!((s.lr.unwrap() - 1e-2 / 12.0).abs() < 1e-12, "{:?}", s.lr);
        assert_eq!(chosen(&mlp_on(Color::Gray, 28), 1350, &[]).lr, None, "784 inputs");
    }

    #[test]
    fn a_network_whose_tensors_stay_below_the_grain_takes_one_thread() {
        let narrow = |side: i64, hidden: Vec<i64>| ModelConfig {
            layers: Layers::Mlp { hidden, tied_weights: false },
            ..conv_on(Color::Gray, side)
        };
        // 9 inputs, 64-32: batches of 64 are 64 x 64 = 4,096 values, 5,709 weights.
        let table = narrow(3, vec![64, 32]);
        assert_eq!(chosen(&table, 3000, &[]).threads, Some(1));
        assert_eq!(chosen(&table, 3000, &["threads"]).threads, None, "--threads stands");
        // A given batch counts: 512 rows of 64 values reach the grain.
        let big_batch = TrainConfig { batch_size: 512, ..Default::default() };
        let s = Sized::choose(&table, 3000, 300, &|id| id == "batch_size", &big_batch);
        assert_eq!(s.threads, None);
        // 784 inputs through 16-8: 64 x 784 = 50,176 values a batch.
        assert_eq!(chosen(&narrow(28, vec![16, 8]), 3000, &[]).threads, None);
        // 9 inputs but 40,000 weights in 200-200.
        assert_eq!(chosen(&narrow(3, vec![200, 200]), 3000, &[]).threads, None);
        assert_eq!(chosen(&conv_on(Color::Gray, 8), 3000, &[]).threads, None, "convolutions");
    }

    #[test]
    fn given_flags_stand_and_no_validation_means_no_early_stop() {
        let all = ["batch_size", "epochs", "early_stop", "augment", "lr", "loss"];
        let s = chosen(&mlp_on(Color::Rgb, 64), 500, &all);
        assert_eq!(s, Sized::default());
        let mut cfg = TrainConfig { batch_size: 7, epochs: 3, ..Default::default() };
        s.apply(&mut cfg);
        assert_eq!((cfg.batch_size, cfg.epochs, cfg.early_stop), (7, 3, None));
        // The epochs follow the given batch size.
        let s = chosen(&conv_on(Color::Rgb, 64), 1350, &["batch_size"]);
        assert_eq!((s.batch_size, s.epochs), (None, Some(20)));
        let s = chosen(&conv_on(Color::Rgb, 64), 140, &["batch_size"]);
        assert_eq!(s.epochs, Some(75), "140 rows in batches of 7: 20 steps an epoch");
        let cfg = TrainConfig::default();
        let none = Sized::choose(&conv_on(Color::Gray, 28), 1000, 0, &|_| false, &cfg);
        assert_eq!(none.early_stop, Some(None));
    }

    #[test]
    fn conv_autoencoders_take_bf16_where_the_cpu_computes_it() {
        let pick = |model: &ModelConfig, given: &[&str], cpu_bf16: bool| {
            let mut s = Sized::default();
            s.choose_precision(model, &|id| given.contains(&id), cpu_bf16);
            let mut cfg = TrainConfig::default();
            s.apply(&mut cfg);
            (s.precision, cfg.precision)
        };
        let conv = conv_on(Color::Rgb, 64);
        assert_eq!(pick(&conv, &[], true), (Some(Precision::Bf16), Precision::Bf16));
        assert_eq!(pick(&conv, &[], false), (None, Precision::Fp32), "no native bf16");
        assert_eq!(pick(&conv, &["precision"], true), (None, Precision::Fp32), "--precision");
        let vae = ModelConfig { variational: true, ..conv.clone() };
        assert_eq!(pick(&vae, &[], true), (Some(Precision::Bf16), Precision::Bf16));
        assert_eq!(pick(&mlp_on(Color::Gray, 28), &[], true), (None, Precision::Fp32));
    }
}
