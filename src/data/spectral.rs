//! Speech in the spectral domain (`--domain stft`), after Lu, Tsao, Matsuda & Hori's deep
//! denoising autoencoder (Interspeech 2013): the network sees the log power of short-time
//! Fourier frames, several at a time, and maps noisy ones to clean ones; the speech comes
//! back through the noisy frames' phase and overlap-add.
//!
//! - `Stft`: Hann-windowed frames of `frame` samples every `hop` (centred: frame t is
//!   centred on sample t·hop, the ends reflected), `frame / 2 + 1` bins each, and the
//!   inverse (libtorch's `stft`/`istft`, whose overlap-add divides by the summed squared
//!   window, so an unchanged spectrum gives the wave back).
//! - `blocks`: row t of a recording holds the log power of frames t − c … t + c (`context`
//!   = 2c + 1 frames; the edge frames repeated), bins inside frames; `unblock` is its
//!   inverse for predictions, each frame the mean of the `context` rows that hold it.
//! - `Stft::clean_up`: a noisy recording's spectrum with the predicted clean power, as a
//!   gain in [`GAIN_FLOOR`, 1] per bin on the noisy spectrum (the prediction can only take
//!   away), bounded below by a noise-floor rule where the recording is clean.
//! - `add_noise`: the training pairs' noise (white, pink or babble made from other
//!   training speech) at a signal-to-noise ratio in dB over the whole recording.

use super::split::SplitMix64;
use anyhow::{bail, Result};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Added to a bin's power before its logarithm, per sample of the frame (samples are in
/// [-1, 1]; 0.01 for a 512-sample frame: white noise of σ = 0.26 would give this): the
/// quiet bins, where the network could only guess, weigh no more than the speech, and
/// digital silence (synthesized speech has stretches of exact zeros) stays finite. A
/// floor 10⁻⁸ as deep made the network's errors on silence dominate its loss.
pub const POWER_FLOOR: f64 = 0.01 / 512.0;

/// The smallest gain `clean_up` puts on a bin: −20 dB, so no bin is silenced outright
/// (musical noise) and speech the network takes for noise is only made quieter.
pub const GAIN_FLOOR: f64 = 0.1;

/// The network's clean power is raised by e^0.5 (2.2 dB) before its gain: trained on the
/// mean squared error of log power, it estimates the loudest bins low (regression to the
/// mean under noise), and a gain capped at 1 loses nothing when it is high. With the noise
/// floor's bound (`trust_floor`) it lifts STOI on the speech benchmark's held-out speakers
/// at 5 and 10 dB white noise from 0.903 and 0.936 to 0.907 and 0.945 (noisereduce: 0.903,
/// 0.938).
pub const MARGIN: f64 = 0.5;

/// The estimated SNRs (dB) between which the noise floor's gain comes to bound the
/// network's (`trust_floor`).
pub const TRUST_FLOOR: (f64, f64) = (5.0, 15.0);

/// Frames per row when `--context` is not given.
pub const DEFAULT_CONTEXT: usize = 5;

/// A spectral run's features beyond the frame and hop (`SeriesSpec::window`/`hop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spectral {
    /// Frames per row (odd): the frame itself and (context − 1) / 2 on either side.
    pub context: usize,
}

impl Spectral {
    /// Values per row of a frame of `frame` samples.
    pub fn width(self, frame: usize) -> usize {
        self.context * (frame / 2 + 1)
    }
}

/// The short-time Fourier transform of one frame length and hop, on the CPU.
pub struct Stft {
    frame: i64,
    hop: i64,
    window: Tensor,
}

impl Stft {
    pub fn new(frame: usize, hop: usize) -> Stft {
        let window = Tensor::hann_window_periodic(frame as i64, true, (Kind::Float, Device::Cpu));
        Stft { frame: frame as i64, hop: hop as i64, window }
    }

    /// The power added before the logarithm (`POWER_FLOOR` per sample of the frame).
    pub fn floor(&self) -> f64 {
        POWER_FLOOR * self.frame as f64
    }

    /// Each frame's log power, `[frames, bins]`, of the complex spectrum `spec` (`[bins,
    /// frames]`).
    pub fn log_power(&self, spec: &Tensor) -> Tensor {
        (spec.abs().square() + self.floor()).log().transpose(0, 1).contiguous()
    }

    /// The noisy spectrum `noisy` (`[bins, frames]`) cleaned with the predicted clean log
    /// power `clean` (`[frames, bins]`): each bin scaled by the network's gain
    /// √(e^`MARGIN` · clean power / noisy power) (the power floor taken off first), held in
    /// [`GAIN_FLOOR`, 1]; in a recording the noise floor says is clean (`trust_floor`), no
    /// bin is cut below what that floor alone calls for (see `floor_gain`).
    pub fn clean_up(&self, noisy: &Tensor, clean: &Tensor) -> Tensor {
        let noisy_power = noisy.abs().square();
        let clean_power = (clean.transpose(0, 1).exp() - self.floor()).clamp_min(0.0);
        let network = gain(&(&clean_power * MARGIN.exp()), &noisy_power);
        let (by_floor, snr) = floor_gain(&noisy_power, &clean_power);
        let w = trust_floor(snr);
        let kept = network.maximum(&by_floor);
        noisy * (network.log() * (1.0 - w) + kept.log() * w).exp()
    }

    /// Frames of a recording of `len` samples.
    pub fn frames(&self, len: usize) -> usize {
        len / self.hop as usize + 1
    }

    /// The complex spectrum `[bins, frames]` of `wave` (`[len]` f32, len > frame / 2).
    pub fn spectrum(&self, wave: &Tensor) -> Tensor {
        let (f, h, w) = (self.frame, self.hop, Some(&self.window));
        // Centred frames: the ends reflected by half a frame (as `center=True` does).
        let padded = wave.view([1, 1, -1]).reflection_pad1d([f / 2, f / 2]).view(-1);
        padded.stft(f, h, f, w, false, true, true, false)
    }

    /// The wave of `len` samples whose spectrum is `spec` (overlap-add).
    pub fn wave(&self, spec: &Tensor, len: usize) -> Tensor {
        let (f, h, w) = (self.frame, self.hop, Some(&self.window));
        spec.istft(f, h, f, w, true, false, true, len as i64, false)
    }
}

/// The rows of a recording (`[len]` f32): the blocks of its frames' log power,
/// `[frames, context·bins]`.
pub fn rows(stft: &Stft, wave: &Tensor, context: usize) -> Tensor {
    blocks(&stft.log_power(&stft.spectrum(wave)), context)
}

/// √(`clean` / `noisy`) power, held in [`GAIN_FLOOR`, 1].
fn gain(clean: &Tensor, noisy: &Tensor) -> Tensor {
    (clean / noisy.clamp_min(1e-20)).sqrt().clamp(GAIN_FLOOR, 1.0)
}

/// The gain of spectral subtraction with the noise the network removes: per bin, the
/// median over the recording's frames of noisy − predicted clean power (the network's
/// estimates run low on loud bins, but the median of a bin is set by its many quiet
/// frames); and the recording's signal-to-noise ratio in dB that noise gives.
fn floor_gain(noisy: &Tensor, clean: &Tensor) -> (Tensor, f64) {
    let (noise, _) = (noisy - clean).clamp_min(0.0).median_dim(1, true);
    let speech = (noisy - &noise).clamp_min(0.0);
    let frames = noisy.size()[1] as f64;
    let noise_total = noise.sum(Kind::Double).double_value(&[]) * frames;
    let snr = 10.0 * (speech.sum(Kind::Double).double_value(&[]) / noise_total.max(1e-20)).log10();
    (gain(&speech, noisy), snr)
}

/// How far the noise floor's gain bounds the network's, from the recording's estimated
/// SNR: not at all below `TRUST_FLOOR.0` dB, where the network's gain does best, fully
/// above `TRUST_FLOOR.1`, where its low estimates of loud bins would cost more than the
/// noise it removes (SNR out below SNR in at 20 dB: 17.4 dB on white noise without).
fn trust_floor(snr: f64) -> f64 {
    ((snr - TRUST_FLOOR.0) / (TRUST_FLOOR.1 - TRUST_FLOOR.0)).clamp(0.0, 1.0)
}

/// For each frame, the frame `offset` away in `0..frames`, clamped at the ends.
fn shifted(frames: i64, offset: i64) -> Tensor {
    let at: Vec<i64> = (0..frames).map(|t| (t + offset).clamp(0, frames - 1)).collect();
    Tensor::from_slice(&at)
}

/// The rows of `frames` (`[T, bins]`): row t is frames t − c … t + c, `[T, context·bins]`.
pub fn blocks(frames: &Tensor, context: usize) -> Tensor {
    let (t, c) = (frames.size()[0], (context / 2) as i64);
    let parts: Vec<Tensor> = (-c..=c).map(|k| frames.index_select(0, &shifted(t, k))).collect();
    Tensor::cat(&parts, 1)
}

/// The inverse of `blocks` for rows that need not agree: each frame the mean of the
/// `context` rows that hold it (rows past the ends hold the edge frames and do not count
/// for them twice: only the rows whose frame is in range).
pub fn unblock(rows: &Tensor, context: usize) -> Tensor {
    let (t, width) = (rows.size()[0], rows.size()[1]);
    let (c, bins) = ((context / 2) as i64, width / context as i64);
    let mut sum = Tensor::zeros([t, bins], (Kind::Float, rows.device()));
    let mut count = Tensor::zeros([t, 1], (Kind::Float, rows.device()));
    for (j, k) in (-c..=c).enumerate() {
        // Row r predicts frame r + k in columns j·bins…: only where r + k is in range.
        let rows_in: Vec<i64> = (0..t).filter(|r| (0..t).contains(&(r + k))).collect();
        let frames: Vec<i64> = rows_in.iter().map(|r| r + k).collect();
        let (rows_in, frames) = (Tensor::from_slice(&rows_in), Tensor::from_slice(&frames));
        let part = rows.narrow(1, j as i64 * bins, bins).index_select(0, &rows_in);
        let _ = sum.index_add_(0, &frames, &part);
        let ones = Tensor::ones([frames.size()[0], 1], (Kind::Float, rows.device()));
        let _ = count.index_add_(0, &frames, &ones);
    }
    sum / count.clamp_min(1.0)
}

/// `noisy` (`[len]` samples) cleaned by the predicted rows `rows` (`[frames,
/// context·bins]` f32 values, log power, row-major): each frame's predictions averaged
/// (`unblock`), the noisy spectrum scaled toward them (`clean_up`), overlap-added back.
pub fn resynthesize(stft: &Stft, noisy: &[f32], rows: &[f32], context: usize) -> Vec<f32> {
    let wave = Tensor::from_slice(noisy);
    let spec = stft.spectrum(&wave);
    let frames = spec.size()[1];
    let predicted = unblock(&Tensor::from_slice(rows).view([frames, -1]), context);
    let cleaned = stft.wave(&stft.clean_up(&spec, &predicted), noisy.len());
    Vec::<f32>::try_from(&cleaned.contiguous()).expect("f32 samples")
}

/// The noise of a training pair (`--noise`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioNoise {
    White,
    /// 1/f power: white noise shaped in the frequency domain.
    Pink,
    /// Other speech: several other recordings summed, each at the same power.
    Babble,
}

/// Recordings summed into babble (fewer when there are fewer others).
const TALKERS: usize = 4;

/// `clean` with `kind` noise at `snr_db` dB below its power (over the whole recording),
/// drawn from `seed`; `others` are the other recordings babble is made of (babble from
/// `clean` itself, at other offsets, when there are none).
pub fn add_noise(
    clean: &[f32],
    kind: AudioNoise,
    snr_db: f64,
    others: &[&[f32]],
    seed: u64,
) -> Result<Vec<f32>> {
    let n = clean.len();
    let mut rng = SplitMix64(seed);
    let noise = match kind {
        AudioNoise::White => normal(n, seed),
        AudioNoise::Pink => pink(n, seed),
        AudioNoise::Babble => {
            let pool: Vec<&[f32]> = if others.is_empty() { vec![clean] } else { others.to_vec() };
            let mut sum = vec![0f32; n];
            for _ in 0..TALKERS.min(pool.len().max(2)) {
                let talker = pool[rng.below(pool.len() as u64) as usize];
                let rms = power(talker).sqrt().max(1e-12) as f32;
                let start = rng.below(talker.len() as u64) as usize;
                // The talker from a random sample on, wrapping round, at unit power.
                let from = talker.iter().cycle().skip(start);
                sum.iter_mut().zip(from).for_each(|(s, &v)| *s += v / rms);
            }
            sum
        }
    };
    let (signal, noise_power) = (power(clean), power(&noise));
    if signal == 0.0 || noise_power == 0.0 {
        bail!("a silent recording or silent noise: no signal-to-noise ratio can be set");
    }
    let gain = (signal / (noise_power * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    Ok(clean.iter().zip(&noise).map(|(&c, &z)| c + gain * z).collect())
}

/// Mean square of `x`.
fn power(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64
}

fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0f32; n];
    super::normal::fill(&mut Xoshiro256PlusPlus::seed_from_u64(seed), &mut out);
    out
}

/// Pink noise: white noise whose spectrum is scaled by 1/√f (the lowest bin left out).
fn pink(n: usize, seed: u64) -> Vec<f32> {
    let white = Tensor::from_slice(&normal(n, seed));
    let spec = white.fft_rfft(None::<i64>, 0, "backward");
    let bins = spec.size()[0];
    let f = Tensor::arange(bins, (Kind::Float, Device::Cpu)).clamp_min(1.0);
    let shaped = (spec * f.rsqrt()).fft_irfft(Some(n as i64), 0, "backward");
    Vec::<f32>::try_from(&shaped.contiguous()).expect("f32 samples")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (i as f32 * 0.07).sin() + 0.2 * (i as f32 * 0.31).cos()).collect()
    }

    #[test]
    fn the_spectrum_gives_the_wave_back_and_a_full_gain_changes_nothing() {
        let x = Tensor::from_slice(&tone(4000));
        let stft = Stft::new(512, 128);
        let spec = stft.spectrum(&x);
        assert_eq!(spec.size(), [257, stft.frames(4000) as i64]);
        let back = stft.wave(&spec, 4000);
        let err = (&back - &x).abs().max().double_value(&[]);
        assert!(err < 1e-5, "round trip error {err}");
        // Predicting the noisy power itself (or more) keeps every bin: the wave comes back.
        let same = stft.clean_up(&spec, &(stft.log_power(&spec) + 1.0));
        let err = (stft.wave(&same, 4000) - &x).abs().max().double_value(&[]);
        assert!(err < 1e-5, "{err}");
        // Predicting silence scales every bin by the floor.
        let quiet = stft.clean_up(&spec, &stft.log_power(&spec).full_like(-50.0));
        let ratio = stft.wave(&quiet, 4000).norm().double_value(&[]) / x.norm().double_value(&[]);
        assert!((ratio - GAIN_FLOOR).abs() < 1e-3, "{ratio}");
    }

    fn snr(clean: &[f32], x: &Tensor) -> f64 {
        let x = Vec::<f32>::try_from(x).unwrap();
        let s: f64 = clean.iter().map(|&c| (c as f64).powi(2)).sum();
        let e: f64 = clean.iter().zip(&x).map(|(&c, &y)| (c as f64 - y as f64).powi(2)).sum();
        10.0 * (s / e).log10()
    }

    #[test]
    fn the_noise_floor_keeps_a_clean_recording_the_network_underestimates() {
        // A tone that sounds a quarter of the time (a bin's median frame is a quiet one, as
        // in speech), with white noise 30 dB below it.
        let clean: Vec<f32> = (0..16_000)
            .map(|i| if (i / 2000) % 4 == 0 { 0.5 * (i as f32 * 0.05).sin() } else { 0.0 })
            .collect();
        let noisy = add_noise(&clean, AudioNoise::White, 30.0, &[], 3).unwrap();
        let stft = Stft::new(512, 128);
        let spec = stft.spectrum(&Tensor::from_slice(&noisy));
        // A network that puts every bin 3 nats (13 dB) too low would cost 10 dB of SNR with
        // its own gain; the noise floor says the recording is clean and keeps the speech.
        let low = stft.log_power(&spec) - 3.0;
        let (by_floor, estimate) = floor_gain(&spec.abs().square(), &low.transpose(0, 1).exp());
        assert!(estimate > TRUST_FLOOR.1, "estimated SNR {estimate}");
        assert!(by_floor.max().double_value(&[]) <= 1.0);
        let cleaned = stft.wave(&stft.clean_up(&spec, &low), noisy.len());
        let (before, after) = (snr(&clean, &Tensor::from_slice(&noisy)), snr(&clean, &cleaned));
        assert!((before - 30.0).abs() < 0.01 && after > before, "{before} dB → {after} dB");
        // The network's gain alone: far below.
        let alone = &spec * gain(&(low.transpose(0, 1).exp() * MARGIN.exp()), &spec.abs().square());
        assert!(snr(&clean, &stft.wave(&alone, noisy.len())) < before - 5.0);
        assert_eq!((trust_floor(TRUST_FLOOR.0), trust_floor(TRUST_FLOOR.1)), (0.0, 1.0));
    }

    #[test]
    fn blocks_hold_the_neighbouring_frames_and_unblock_averages_them_back() {
        let frames = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([4, 3]);
        let rows = blocks(&frames, 3);
        assert_eq!(rows.size(), [4, 9]);
        // Row 0: frame 0 repeated before it, then frames 0 and 1.
        let first: Vec<f32> = Vec::try_from(&rows.get(0)).unwrap();
        assert_eq!(first, [0., 1., 2., 0., 1., 2., 3., 4., 5.]);
        let last: Vec<f32> = Vec::try_from(&rows.get(3)).unwrap();
        assert_eq!(last, [6., 7., 8., 9., 10., 11., 9., 10., 11.]);
        assert!(unblock(&rows, 3).equal(&frames));
        // Rows that disagree: frame 1 is held by rows 0, 1 and 2 (+0, +10, +20): mean +10.
        let bump = Tensor::from_slice(&[0f32, 10., 20., 30.]).view([4, 1]);
        let back = unblock(&(&rows + bump), 3);
        let row1: Vec<f32> = Vec::try_from(&back.get(1)).unwrap();
        assert_eq!(row1, [13., 14., 15.]);
    }

    #[test]
    fn noise_is_added_at_the_asked_ratio_and_repeats_from_its_seed() {
        let clean = tone(8000);
        let other = tone(3000).iter().map(|v| v * 3.0).collect::<Vec<_>>();
        for kind in [AudioNoise::White, AudioNoise::Pink, AudioNoise::Babble] {
            let noisy = add_noise(&clean, kind, 5.0, &[&other], 7).unwrap();
            let noise: Vec<f32> = noisy.iter().zip(&clean).map(|(a, b)| a - b).collect();
            let snr = 10.0 * (power(&clean) / power(&noise)).log10();
            assert!((snr - 5.0).abs() < 1e-3, "{kind:?}: {snr}");
            assert_eq!(noisy, add_noise(&clean, kind, 5.0, &[&other], 7).unwrap());
            assert_ne!(noisy, add_noise(&clean, kind, 5.0, &[&other], 8).unwrap());
        }
        // Pink noise has more power in its lowest tenth of frequencies than white noise.
        let low = |x: &[f32]| {
            let spec = Tensor::from_slice(x).fft_rfft(None::<i64>, 0, "backward").abs().square();
            let n = spec.size()[0];
            spec.narrow(0, 1, n / 10).sum(Kind::Double).double_value(&[])
                / spec.sum(Kind::Double).double_value(&[])
        };
        let (w, p) = (normal(8000, 1), pink(8000, 1));
        assert!(low(&p) > 3.0 * low(&w), "pink {} white {}", low(&p), low(&w));
        let silent = vec![0f32; 100];
        assert!(add_noise(&silent, AudioNoise::White, 0.0, &[], 1).is_err());
    }
}
