//! Training batches: the epoch's order, and each step's clean images and model input.
//!
//! Every random draw of a step — the epoch's shuffle, the noise, a VAE's ε — derives from
//! (seed, epoch, step) alone, so any step can be replayed on its own: that is what lets a
//! run resume exactly from a checkpoint. On the CPU a batch is assembled in one pass over
//! preallocated buffers: gather the rows of the u8 training set, scale to [0, 1], corrupt,
//! clamp, split over libtorch's threads (the batch is the same bits whatever the split).
//! Elsewhere the same happens with libtorch operations on the device.

use super::rows::Rows as RunRows;
use super::split::{mix64, permutation32};
use super::to_unit_float;
use super::windows::WindowSet;
use super::{noise, normal};
use crate::config::{Mode, NoiseKind, TrainConfig};
use crate::host::{self, parallel_for, Disjoint};
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tch::{Device, Kind, Tensor};

/// The step index under which an epoch's shuffle is drawn.
const SHUFFLE: u64 = u64::MAX;
/// Mixed into a step's seed for its mirroring draws, apart from its noise.
const FLIP: u64 = 0x6d69_7272_6f72;

/// The seed of the draws of `step` in `epoch` (1-based) of a run seeded with `seed`.
pub fn stream_seed(seed: u64, epoch: usize, step: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ epoch as u64) ^ step)
}

/// Model inputs made outside the batcher, row for row with the clean training rows: a
/// spectral denoiser's noisy speech, whose noise is added to the recordings before their
/// spectra are taken, drawn afresh every epoch.
pub trait Inputs {
    /// The model inputs of the training rows in `epoch` (1-based), `[N, D]` f32.
    fn training(&self, epoch: usize) -> anyhow::Result<Tensor>;
    /// The validation rows' inputs, drawn once.
    fn validation(&self) -> anyhow::Result<Option<Tensor>>;
}

/// Rows the training loop reads: a tensor on the training device (u8 images, f32
/// features), or windows of series cut a batch (or a chunk) at a time.
pub enum Source {
    Tensor(Tensor),
    Windows(WindowSet, Device),
}

impl Source {
    /// `rows` for training on `device`: windows stay views, other rows become one tensor.
    pub fn of(rows: &RunRows, device: Device) -> Source {
        match rows.windows() {
            Some(w) => Source::Windows(w.clone(), device),
            None => Source::Tensor(rows.to_device(device)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Source::Tensor(t) => t.size()[0] as usize,
            Source::Windows(w, _) => w.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        match self {
            Source::Tensor(t) => t.size()[1] as usize,
            Source::Windows(w, _) => w.width(),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Source::Tensor(t) => t.device(),
            Source::Windows(_, d) => *d,
        }
    }

    /// Whether the rows are 8-bit images.
    pub fn is_bytes(&self) -> bool {
        matches!(self, Source::Tensor(t) if t.kind() == Kind::Uint8)
    }

    /// The ranges of rows a pass over all of them takes at a time (one for a tensor).
    pub fn chunks(&self) -> Vec<std::ops::Range<usize>> {
        match self {
            Source::Tensor(_) if self.is_empty() => Vec::new(),
            Source::Tensor(_) => std::iter::once(0..self.len()).collect(),
            Source::Windows(w, _) => w.chunks(),
        }
    }

    /// Rows `range` as the network's values, `[n, D]` f32 on the device.
    pub fn unit_range(&self, range: std::ops::Range<usize>) -> Tensor {
        match self {
            Source::Tensor(t) => {
                to_unit_float(&t.narrow(0, range.start as i64, range.len() as i64))
            }
            Source::Windows(w, d) => w.range_to_device(range, *d),
        }
    }

    /// The mean row in the network's values, `[D]` f32 on the device.
    pub fn mean(&self) -> Tensor {
        if let Source::Tensor(t) = self {
            let unit = to_unit_float(t).to_kind(Kind::Float);
            return unit.mean_dim(Some([0i64].as_slice()), false, Kind::Float);
        }
        let sum = self.chunks().into_iter().fold(None::<Tensor>, |acc, r| {
            let part = self.unit_range(r).sum_dim_intlist(0, false, Kind::Double);
            Some(acc.map_or_else(|| part.shallow_clone(), |a| a + &part))
        });
        let d = self.width() as i64;
        let sum = sum.unwrap_or_else(|| Tensor::zeros([d], (Kind::Double, self.device())));
        (sum / self.len().max(1) as f64).to_kind(Kind::Float)
    }
}

pub struct Batcher {
    /// The training rows.
    data: Source,
    batch: i64,
    seed: u64,
    corruption: Option<(NoiseKind, f32)>,
    /// Seed libtorch's generator before each step (its draws are part of the step).
    torch_rng: bool,
    epoch: usize,
    /// The epoch's order (u32: an epoch over millions of windows of a series).
    order: Vec<u32>,
    /// The order as an index tensor on the device (device path only).
    order_t: Option<Tensor>,
    /// `[batch, D]` f32 buffers (CPU path only): clean images and model input.
    buffers: Option<(Tensor, Tensor)>,
    /// The random words of a step's Gaussian noise (CPU path only).
    words: Vec<u64>,
    /// `--augment flip`: the images' (channels, height, width), each row of a batch
    /// mirrored left to right or not by a draw from the step's seed.
    flip: Option<(i64, i64, i64)>,
    /// The epoch's model inputs from `Inputs`, on the device (in place of a corruption).
    given: Option<Tensor>,
}

impl Batcher {
    /// `data`: the `[N, D]` u8 training images on the training device. `torch_rng`: the
    /// step also draws from libtorch's generator (a VAE's sampling), which is then
    /// reseeded for every step.
    pub fn new(data: &Source, batch: i64, cfg: &TrainConfig, torch_rng: bool) -> Batcher {
        let d = data.width() as i64;
        let batch = batch.min(data.len() as i64).max(1);
        let host = matches!(data, Source::Tensor(t) if host::is_host(t, Kind::Uint8));
        let buffers = host.then(|| {
            let opts = (Kind::Float, Device::Cpu);
            (Tensor::zeros([batch, d], opts), Tensor::zeros([batch, d], opts))
        });
        let corruption = (cfg.mode == Mode::Denoise).then_some((cfg.noise, cfg.noise_level as f32));
        let data = match data {
            Source::Tensor(t) => Source::Tensor(t.shallow_clone()),
            Source::Windows(w, d) => Source::Windows(w.clone(), *d),
        };
        Batcher {
            data,
            batch,
            seed: cfg.seed,
            corruption,
            torch_rng,
            epoch: 0,
            order: Vec::new(),
            order_t: None,
            buffers,
            words: Vec::new(),
            flip: None,
            given: None,
        }
    }

    /// Takes the model inputs of the current epoch's rows from `inputs` (`[N, D]` f32, row
    /// for row with the training rows) instead of corrupting them.
    pub fn give_inputs(&mut self, inputs: Tensor) -> anyhow::Result<()> {
        let rows = [self.data.len() as i64, self.data.width() as i64];
        if inputs.size() != rows {
            let given = inputs.size();
            anyhow::bail!("model inputs of shape {given:?} for training rows of shape {rows:?}");
        }
        self.given = Some(inputs.to_device(self.data.device()));
        Ok(())
    }

    /// Mirrors each training image of shape (channels, height, width) left to right with
    /// probability 1/2, drawn from the step's seed (so a replayed step mirrors the same
    /// rows).
    pub fn flipping(self, shape: (i64, i64, i64)) -> Batcher {
        Batcher { flip: Some(shape), ..self }
    }

    /// Which rows of a batch of `len` drawn with `seed` are mirrored.
    fn mirrored(&self, seed: u64, len: usize) -> Option<Vec<bool>> {
        self.flip?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ FLIP);
        Some((0..len).map(|_| rng.next_u32() & 1 == 1).collect())
    }

    /// Images per batch (the last batch of an epoch may hold fewer).
    pub fn batch(&self) -> i64 {
        self.batch
    }

    /// Batches per epoch.
    pub fn steps(&self) -> usize {
        self.data.len().div_ceil(self.batch as usize)
    }

    /// Draws the order of `epoch` (1-based).
    pub fn start_epoch(&mut self, epoch: usize) {
        let n = self.data.len();
        self.epoch = epoch;
        let n = u32::try_from(n).expect("fewer than 2^32 training rows");
        self.order = permutation32(n, stream_seed(self.seed, epoch, SHUFFLE));
        if self.buffers.is_none() && matches!(self.data, Source::Tensor(_)) {
            let idx: Vec<i64> = self.order.iter().map(|&i| i as i64).collect();
            self.order_t = Some(Tensor::from_slice(&idx).to_device(self.data.device()));
        }
    }

    /// The positions in the training set of the rows of `step` (0-based) of the current
    /// epoch, in batch order: what a caller gathers labels with.
    pub fn rows(&self, step: usize) -> Vec<usize> {
        let first = (step * self.batch as usize).min(self.order.len());
        let len = (self.batch as usize).min(self.order.len() - first);
        self.order[first..first + len].iter().map(|&i| i as usize).collect()
    }

    /// The clean images and the model input of `step` (0-based) of the current epoch,
    /// `[len, D]` f32. On the CPU they are views of buffers that the next call
    /// overwrites.
    pub fn get(&mut self, step: usize) -> (Tensor, Tensor) {
        let seed = stream_seed(self.seed, self.epoch, step as u64);
        if self.torch_rng || self.buffers.is_none() {
            tch::manual_seed(seed as i64);
        }
        let first = step * self.batch as usize;
        let len = (self.batch as usize).min(self.order.len() - first);
        let mirrored = self.mirrored(seed, len);
        match &self.buffers {
            Some((clean, input)) => {
                let (clean, input) =
                    (clean.narrow(0, 0, len as i64), input.narrow(0, 0, len as i64));
                let rows = self.rows(step);
                let rows = &rows[..];
                // SAFETY: the buffers are private to this Batcher and the views handed out
                // by the previous call are no longer in use (documented above); `data` is
                // only read.
                unsafe {
                    let (clean, input) = (host::f32_mut(&clean), host::f32_mut(&input));
                    let Source::Tensor(data) = &self.data else { unreachable!("u8 rows") };
                    let src = host::u8_ref(data);
                    let width = self.flip.map_or(1, |(_, _, w)| w as usize);
                    let rows = Rows { rows, mirrored: mirrored.as_deref(), width };
                    assemble(src, rows, clean, input, self.corruption, seed, &mut self.words);
                }
                let input = if self.corruption.is_some() { input } else { clean.shallow_clone() };
                (clean, input)
            }
            None => {
                let (idx, mut clean) = match (&self.data, &self.order_t) {
                    (Source::Tensor(data), Some(order)) => {
                        let idx = order.narrow(0, first as i64, len as i64);
                        let clean = to_unit_float(&data.index_select(0, &idx));
                        (idx, clean)
                    }
                    (Source::Windows(w, device), _) => {
                        let rows = self.rows(step);
                        let idx: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
                        (Tensor::from_slice(&idx).to_device(*device), w.rows_on(&rows, *device))
                    }
                    (Source::Tensor(_), None) => unreachable!("start_epoch sets the order"),
                };
                if let (Some(m), Some((c, h, w))) = (&mirrored, self.flip) {
                    let mask = Tensor::from_slice(m).to_device(clean.device()).view([-1, 1]);
                    let flipped = clean.view([-1, c, h, w]).flip([3]).view([-1, c * h * w]);
                    clean = flipped.where_self(&mask, &clean);
                }
                let input = match (&self.given, self.corruption) {
                    (Some(given), _) => given.index_select(0, &idx),
                    // u8 data are images in [0, 1]; f32 data are scaled vector features.
                    (None, Some((kind, level))) => {
                        noise::corrupt(&clean, kind, level as f64, self.data.is_bytes())
                    }
                    (None, None) => clean.shallow_clone(),
                };
                (clean, input)
            }
        }
    }
}

/// The rows of a batch: their positions in the training set and, with `--augment flip`,
/// which are mirrored along image rows of `width` values.
#[derive(Clone, Copy)]
struct Rows<'a> {
    rows: &'a [usize],
    mirrored: Option<&'a [bool]>,
    width: usize,
}

/// Rows `rows` of the u8 images `src` (`[N, D]`) in [0, 1] into `clean`
/// (`[rows.len(), D]`), as `to_unit_float` computes them (mirrored where the rows say),
/// and the model input into `input`
/// when there is a corruption, with draws seeded by `seed`. Split over libtorch's threads
/// at whole noise blocks; Gaussian noise takes its words from one stream drawn first, so
/// the batch is the same whatever the split.
fn assemble(
    src: &[u8],
    rows: Rows<'_>,
    clean: &mut [f32],
    input: &mut [f32],
    corruption: Option<(NoiseKind, f32)>,
    seed: u64,
    words: &mut Vec<u64>,
) {
    // 64 blocks (8,192 values, 32 KiB of output) per range at least.
    const GRAIN: usize = 64;
    let (n, d) = (clean.len(), clean.len() / rows.rows.len().max(1));
    let gaussian = match corruption {
        Some((NoiseKind::Gaussian, level)) => {
            normal::draw_words(&mut Xoshiro256PlusPlus::seed_from_u64(seed), n, words);
            Some(level)
        }
        _ => None,
    };
    let (clean_parts, input_parts) = (Disjoint::new(clean), Disjoint::new(&mut *input));
    parallel_for(n.div_ceil(normal::CHUNK), GRAIN, |lo, hi| {
        let (first, last) = (lo * normal::CHUNK, hi * normal::CHUNK);
        // SAFETY: the ranges of one parallel_for do not overlap.
        let clean = unsafe { clean_parts.part(first, last) };
        gather(src, rows, d, first, clean);
        if let Some(level) = gaussian {
            // SAFETY: as above.
            let input = unsafe { input_parts.part(first, last) };
            let blocks = &words[lo * normal::CHUNK / 2..hi * normal::CHUNK / 2];
            normal::samples(blocks, input);
            input.iter_mut().zip(&*clean).for_each(|(o, &c)| *o = (c + *o * level).clamp(0.0, 1.0));
        }
    });
    // Masking and salt-and-pepper draw per value from one stream, in order.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    match corruption {
        Some((NoiseKind::Masking, level)) => input.iter_mut().zip(&*clean).for_each(|(o, &c)| {
            *o = if unit(&mut rng) >= level { c } else { 0.0 };
        }),
        Some((NoiseKind::SaltPepper, level)) => {
            input.iter_mut().zip(&*clean).for_each(|(o, &c)| {
                let (hit, salt) = (unit(&mut rng) < level, unit(&mut rng) < 0.5);
                *o = match (hit, salt) {
                    (false, _) => c,
                    (true, true) => 1.0,
                    (true, false) => 0.0,
                };
            })
        }
        // Gaussian noise is added above; audio noise comes from `Inputs`.
        _ => {}
    }
}

/// Values `first..first + dst.len()` of the `[rows.len(), D]` batch of rows `rows` of the
/// u8 images `src`, in [0, 1].
fn gather(src: &[u8], rows: Rows<'_>, d: usize, first: usize, dst: &mut [f32]) {
    let (mut at, mut rest) = (first, dst);
    while !rest.is_empty() {
        let (row, col) = (at / d, at % d);
        let take = (d - col).min(rest.len());
        let image = &src[rows.rows[row] * d..][..d];
        let (out, tail) = rest.split_at_mut(take);
        if rows.mirrored.is_some_and(|m| m[row]) {
            // Value x of an image row of width w comes from value w − 1 − x.
            let w = rows.width;
            out.iter_mut().enumerate().for_each(|(i, o)| {
                let j = col + i;
                *o = super::spec::unit(image[j - j % w + (w - 1 - j % w)]);
            });
        } else {
            let from = &image[col..][..take];
            out.iter_mut().zip(from).for_each(|(o, &p)| *o = super::spec::unit(p));
        }
        (rest, at) = (tail, at + take);
    }
}

/// Uniform in [0, 1) from the top 24 bits of a draw: exact f32 values.
fn unit(rng: &mut Xoshiro256PlusPlus) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: i64, d: i64) -> Tensor {
        let v: Vec<u8> = (0..n * d).map(|i| (i * 37 % 256) as u8).collect();
        Tensor::from_slice(&v).view([n, d])
    }

    fn cfg(mode: Mode, noise: NoiseKind, level: f64) -> TrainConfig {
        TrainConfig { mode, noise, noise_level: level, seed: 9, ..Default::default() }
    }

    #[test]
    fn windows_read_a_batch_at_a_time_give_the_batches_of_their_matrix() {
        use crate::data::series::{frame, Windowing};
        use crate::data::spec::ScaleKind;
        use crate::data::windows::{Piece, Windows};
        let series: Vec<f32> = (0..300).map(|i| (i as f32 * 0.1).sin() + i as f32 * 0.01).collect();
        let ids: Vec<usize> = (0..300).collect();
        let w = Windowing { window: 16, hop: 1, spectral: None };
        let piece = Piece { values: &series, ids: &ids, labels: None, file: None };
        let set = Windows::cut(&[piece], 1, w).unwrap().all(&|_| Ok(0)).unwrap();
        let scaling = set.fit_scaling(ScaleKind::Standard);
        let mut matrix = frame(&series, 1, w).unwrap();
        scaling.apply(&mut matrix);
        let matrix = Tensor::from_slice(&matrix).view([-1, 16]);
        let views = Source::Windows(set.scaled(&scaling), Device::Cpu);
        assert_eq!(views.len(), 285);
        assert!(views.mean().allclose(
            &Source::Tensor(matrix.shallow_clone()).mean(),
            1e-6,
            1e-6,
            false
        ));
        let c = cfg(Mode::Denoise, NoiseKind::Gaussian, 0.3);
        let mut a = Batcher::new(&views, 64, &c, false);
        let mut b = Batcher::new(&Source::Tensor(matrix), 64, &c, false);
        for epoch in [1, 2] {
            a.start_epoch(epoch);
            b.start_epoch(epoch);
            for step in 0..a.steps() {
                let ((ca, ia), (cb, ib)) = (a.get(step), b.get(step));
                assert!(ca.equal(&cb) && ia.equal(&ib), "epoch {epoch} step {step}");
            }
        }
    }

    #[test]
    fn an_epoch_visits_every_image_once_and_batches_repeat_from_the_seed() {
        let data = images(10, 6);
        let c = cfg(Mode::Reconstruct, NoiseKind::Gaussian, 0.0);
        let mut b = Batcher::new(&Source::Tensor(data.shallow_clone()), 4, &c, false);
        assert_eq!(b.steps(), 3);
        b.start_epoch(1);
        let rows: Vec<Tensor> = (0..3).map(|s| b.get(s).0.copy()).collect();
        assert_eq!(rows.iter().map(|r| r.size()[0]).collect::<Vec<_>>(), [4, 4, 2]);
        let all = Tensor::cat(&rows, 0);
        let expected = to_unit_float(&data);
        // Every image once: sorting the rows by their first pixel gives the data back.
        let key = |t: &Tensor| t.select(1, 0).argsort(0, false);
        let sorted = all.index_select(0, &key(&all));
        assert!(sorted.equal(&expected.index_select(0, &key(&expected))));
        // A replayed step gives the same rows; another epoch, another order.
        assert!(b.get(1).0.equal(&rows[1]));
        b.start_epoch(2);
        assert!(!b.get(0).0.equal(&rows[0]));
    }

    #[test]
    fn host_noise_has_the_distributions_of_the_tensor_path() {
        let data = Tensor::full([400, 500], 128u8 as i64, (Kind::Uint8, Device::Cpu));
        let grey = 128.0 / 255.0;
        for (kind, level) in
            [(NoiseKind::Gaussian, 0.1), (NoiseKind::Masking, 0.3), (NoiseKind::SaltPepper, 0.2)]
        {
            let c = cfg(Mode::Denoise, kind, level);
            let mut b = Batcher::new(&Source::Tensor(data.shallow_clone()), 400, &c, false);
            b.start_epoch(1);
            let (clean, input) = b.get(0);
            assert!(clean.eq(grey).all().int64_value(&[]) == 1);
            let diff = &input - &clean;
            let changed = diff.ne(0.0).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
            match kind {
                NoiseKind::Gaussian => {
                    let std = diff.std(true).double_value(&[]);
                    assert!((std - 0.1).abs() < 0.002, "σ {std}");
                    assert!((diff.mean(Kind::Double).double_value(&[])).abs() < 0.001);
                }
                // 200k pixels: the standard error of a share is about 0.001.
                NoiseKind::Masking => {
                    assert!((changed - 0.3).abs() < 0.005, "{changed}");
                    assert!(input.ne(0.0).logical_and(&input.ne(grey)).any().int64_value(&[]) == 0);
                }
                NoiseKind::SaltPepper => {
                    assert!((changed - 0.2).abs() < 0.005, "{changed}");
                    let ones = input.eq(1.0).to_kind(Kind::Double).mean(Kind::Double);
                    assert!((ones.double_value(&[]) - 0.1).abs() < 0.004);
                }
                _ => unreachable!("audio noise is made outside the batcher"),
            }
            let again = input.copy();
            assert!(b.get(0).1.equal(&again), "{kind:?}: a step's noise repeats");
        }
    }

    #[test]
    fn a_batch_split_over_threads_is_the_one_pass_batch() {
        // 70 rows of 300 values: 165 noise blocks, a short last one, and ranges that start
        // in the middle of a row; the reference draws and clamps in one pass, in order.
        let (n, d) = (70usize, 300usize);
        let src: Vec<u8> = (0..100 * d).map(|i| (i * 7919 % 251) as u8).collect();
        let rows: Vec<usize> = (0..n).map(|i| (i * 37) % 100).collect();
        let level = 0.3f32;
        let mut noise = vec![0f32; n * d];
        normal::fill(&mut Xoshiro256PlusPlus::seed_from_u64(5), &mut noise);
        let expected_clean: Vec<f32> = rows
            .iter()
            .flat_map(|&r| &src[r * d..(r + 1) * d])
            .map(|&p| super::super::spec::unit(p))
            .collect();
        let expected: Vec<f32> = expected_clean
            .iter()
            .zip(&noise)
            .map(|(&c, &z)| (c + z * level).clamp(0.0, 1.0))
            .collect();
        let (mut clean, mut input, mut words) = (vec![0f32; n * d], vec![0f32; n * d], Vec::new());
        for threads in [1, 2, 3] {
            tch::set_num_threads(threads);
            let gaussian = Some((NoiseKind::Gaussian, level));
            let batch = Rows { rows: &rows, mirrored: None, width: 1 };
            assemble(&src, batch, &mut clean, &mut input, gaussian, 5, &mut words);
            assert!(clean == expected_clean && input == expected, "{threads} threads");
            // The ranges are real: a split at GRAIN blocks puts work on other threads.
            let seen = std::sync::Mutex::new(std::collections::HashSet::new());
            parallel_for(n * d / normal::CHUNK, 64, |_, _| {
                seen.lock().unwrap().insert(std::thread::current().id());
            });
            assert_eq!(seen.into_inner().unwrap().len(), threads as usize, "{threads} threads");
        }
        tch::set_num_threads(2);
    }

    #[test]
    fn the_tensor_path_used_on_gpus_gives_the_same_batches() {
        let _rng = crate::rng_lock();
        let data = images(9, 8);
        // A non-contiguous tensor takes the libtorch path, as data on a GPU does.
        let strided = data.tr().contiguous().tr();
        assert!(!host::is_host(&strided, Kind::Uint8));
        let c = cfg(Mode::Denoise, NoiseKind::Gaussian, 0.2);
        let (mut host_b, mut dev_b) = (
            Batcher::new(&Source::Tensor(data.shallow_clone()), 4, &c, false),
            Batcher::new(&Source::Tensor(strided.shallow_clone()), 4, &c, false),
        );
        host_b.start_epoch(3);
        dev_b.start_epoch(3);
        for step in 0..3 {
            let ((hc, hi), (dc, di)) = (host_b.get(step), dev_b.get(step));
            assert!(hc.equal(&dc), "step {step}: same images in the same order");
            assert!(!di.equal(&dc) && !hi.equal(&hc), "both corrupt");
            assert!(di.min().double_value(&[]) >= 0.0 && di.max().double_value(&[]) <= 1.0);
        }
    }

    #[test]
    fn flipping_mirrors_about_half_the_rows_the_same_way_on_both_paths() {
        let _rng = crate::rng_lock();
        // 40 colour images of 3×2×5, values that differ everywhere.
        let (n, shape) = (40, (3i64, 2i64, 5i64));
        let d = shape.0 * shape.1 * shape.2;
        let data = images(n, d);
        let strided = data.tr().contiguous().tr();
        let c = cfg(Mode::Denoise, NoiseKind::Masking, 0.0);
        let mut host_b =
            Batcher::new(&Source::Tensor(data.shallow_clone()), 16, &c, false).flipping(shape);
        let mut dev_b =
            Batcher::new(&Source::Tensor(strided.shallow_clone()), 16, &c, false).flipping(shape);
        let mut plain = Batcher::new(&Source::Tensor(data.shallow_clone()), 16, &c, false);
        let mut mirrored = 0;
        for b in [&mut host_b, &mut dev_b, &mut plain] {
            b.start_epoch(2);
        }
        for step in 0..3 {
            let (hc, hi) = host_b.get(step);
            let (hc, hi) = (hc.copy(), hi.copy());
            assert!(hi.equal(&hc), "the input is the mirrored image too");
            assert!(dev_b.get(step).0.equal(&hc), "step {step}: the tensor path mirrors alike");
            assert!(host_b.get(step).0.equal(&hc), "a replayed step mirrors the same rows");
            let as_is = plain.get(step).0;
            let flipped = as_is.view([-1, shape.0, shape.1, shape.2]).flip([3]).view([-1, d]);
            for r in 0..hc.size()[0] {
                let row = hc.get(r);
                let same = row.equal(&as_is.get(r));
                assert!(same || row.equal(&flipped.get(r)), "row {r}: as is or mirrored");
                mirrored += usize::from(!same);
            }
        }
        // 40 rows, each mirrored with probability 1/2.
        assert!((10..=30).contains(&mirrored), "{mirrored} of 40 mirrored");
    }

    #[test]
    fn stream_seeds_differ_by_epoch_and_step() {
        let s = |e, t| stream_seed(1, e, t);
        assert_ne!(s(1, 0), s(1, 1));
        assert_ne!(s(1, 0), s(2, 0));
        assert_ne!(s(1, 1), s(2, 0));
        assert_ne!(stream_seed(2, 1, 0), s(1, 0));
    }
}
