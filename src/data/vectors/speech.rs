//! A spectral denoiser's training pairs (`--domain stft --mode denoise`): the clean rows
//! are the run's own; the noisy ones come from the same recordings with audio noise added
//! before the spectrum is taken (white, pink or babble made of the other training
//! recordings, at a ratio in dB drawn per recording), afresh every epoch and seeded by
//! (seed, epoch, recording), so a resumed run draws the same noise.

use super::series_io::{series_parts, Stretch};
use super::VectorSource;
use crate::config::{NoiseKind, TrainConfig};
use crate::data::batch::{stream_seed, Inputs};
use crate::data::series::Windowing;
use crate::data::spec::{Scaling, SeriesSpec, VectorSpec};
use crate::data::spectral::{self, AudioNoise, Stft};
use crate::data::split::{mix64, SplitMix64};
use crate::invalid::Invalid;
use anyhow::{bail, Result};
use std::path::Path;
use tch::Tensor;

/// What `--noise mix` draws from, one per recording and epoch: white or pink. Babble is
/// left out: trained on babble made of other speech, the network learns that speech may
/// be noise and takes away the speaker's own (a PyTorch prototype of this network, 10
/// epochs, on the speech benchmark's held-out speakers in babble at 20 dB: 9.9 dB out with
/// babble in the mix against 17.4 dB without, and STOI lower at every SNR, 0.915 against
/// 0.973 at 20 dB); `--noise babble` asks for it.
pub const MIX: [AudioNoise; 2] = [AudioNoise::White, AudioNoise::Pink];

/// The noise a recording gets under `--noise` `noise` (mix: drawn from `seed`).
pub fn audio_noise(noise: NoiseKind, seed: u64) -> AudioNoise {
    match noise {
        NoiseKind::White => AudioNoise::White,
        NoiseKind::Pink => AudioNoise::Pink,
        NoiseKind::Babble => AudioNoise::Babble,
        _ => MIX[SplitMix64(mix64(seed ^ 0x006e_6f69_7365)).below(MIX.len() as u64) as usize],
    }
}

/// The "epoch" under which the validation rows' noise is drawn (training epochs count
/// from 1).
const VALIDATION: usize = 0;

/// The training recordings (piece by piece between gaps, in the order the run's rows
/// come in) and how their noisy rows are made.
pub struct SpeechPairs {
    pieces: Vec<Vec<f32>>,
    stft: Stft,
    context: usize,
    scaling: Scaling,
    noise: NoiseKind,
    /// The range of signal-to-noise ratios in dB.
    snr: (f64, f64),
    seed: u64,
    /// Training rows; the rest of the rows validate.
    train: usize,
}

impl SpeechPairs {
    /// The pairs of a run trained on `path` as `source` and `series` say, scaled by
    /// `spec`, whose first `train` of `rows` rows train (the rest validate).
    pub fn new(
        path: &Path,
        source: &VectorSource,
        (spec, series): (&VectorSpec, &SeriesSpec),
        cfg: &TrainConfig,
        (train, rows): (usize, usize),
    ) -> Result<SpeechPairs> {
        let Some(sp) = series.spectral else { bail!("not a spectral run") };
        let parts = series_parts(path, source, None, Some(&series.channels), series, cfg.seed)?;
        let pieces = clean_pieces(&parts.train, series.window);
        let w = series.windowing();
        let count: usize = pieces.iter().map(|p| w.count(p.len())).sum();
        if count != rows {
            // `--limit` keeps some rows only; the noisy rows must match the clean ones.
            let problem = format!(
                "cannot be used with a spectral denoiser ({count} frames, {rows} rows kept)"
            );
            return Err(Invalid::of("limit", problem).into());
        }
        Ok(SpeechPairs {
            pieces,
            stft: Stft::new(series.window, series.hop),
            context: sp.context,
            scaling: spec.scaling.clone(),
            noise: cfg.noise,
            snr: (cfg.noise_level, cfg.noise_level_high.unwrap_or(cfg.noise_level)),
            seed: cfg.seed,
            train,
        })
    }

    /// Every row's noisy input for `epoch`, scaled as the clean rows are.
    fn inputs(&self, epoch: usize) -> Result<Tensor> {
        let mut parts = Vec::with_capacity(self.pieces.len());
        for i in 0..self.pieces.len() {
            let seed = stream_seed(self.seed, epoch, i as u64);
            let mut rng = SplitMix64(mix64(seed ^ 0x0073_6e72));
            let snr = self.snr.0 + (self.snr.1 - self.snr.0) * rng.unit();
            let noisy = noisy_copy(&self.pieces, i, (self.noise, snr), seed)?;
            parts.push(scaled_rows(&self.stft, &noisy, self.context, &self.scaling)?);
        }
        Ok(Tensor::cat(&parts, 0))
    }
}

/// Recording `i` of `recordings` with `noise` at `snr` dB, drawn from `seed` (babble from
/// the other recordings).
pub fn noisy_copy(
    recordings: &[Vec<f32>],
    i: usize,
    (noise, snr): (NoiseKind, f64),
    seed: u64,
) -> Result<Vec<f32>> {
    let others: Vec<&[f32]> =
        recordings.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, r)| &r[..]).collect();
    spectral::add_noise(&recordings[i], audio_noise(noise, seed), snr, &others, seed)
}

/// The rows of `wave` (`spectral::rows`) scaled as the run's rows are.
pub fn scaled_rows(stft: &Stft, wave: &[f32], context: usize, scaling: &Scaling) -> Result<Tensor> {
    let rows = spectral::rows(stft, &Tensor::from_slice(wave), context);
    let mut values = Vec::<f32>::try_from(&rows.view(-1))?;
    scaling.apply(&mut values);
    Ok(Tensor::from_slice(&values).view(rows.size().as_slice()))
}

impl Inputs for SpeechPairs {
    fn training(&self, epoch: usize) -> Result<Tensor> {
        Ok(self.inputs(epoch)?.narrow(0, 0, self.train as i64))
    }

    fn validation(&self) -> Result<Option<Tensor>> {
        let all = self.inputs(VALIDATION)?;
        let n = all.size()[0];
        Ok((n > self.train as i64).then(|| all.narrow(0, self.train as i64, n - self.train as i64)))
    }
}

/// The clean test recordings of a spectral run, piece by piece: `other`'s (read the run's
/// way), or the run's own test part (`path` read as `source` records).
pub fn test_recordings(
    (path, source): (&Path, &VectorSource),
    series: &SeriesSpec,
    seed: u64,
    other: Option<(&Path, crate::data::spec::Reading)>,
) -> Result<Vec<Vec<f32>>> {
    let channels = Some(&series.channels[..]);
    let stretches = match other {
        Some((file, reading)) => {
            super::read_series(file, None, channels, (reading, series.sample_rate, series.window))?
                .0
        }
        None => series_parts(path, source, None, channels, series, seed)?.test,
    };
    Ok(clean_pieces(&stretches, series.window))
}

/// The samples of each piece (between gaps) of `stretches` that makes rows, in row order.
fn clean_pieces(stretches: &[Stretch], window: usize) -> Vec<Vec<f32>> {
    let w = Windowing { window, hop: 1, spectral: None };
    stretches
        .iter()
        .flat_map(|s| {
            s.pieces()
                .into_iter()
                .filter(move |r| w.check(r.len()).is_ok())
                .map(move |r| s.steps.values[r].to_vec())
        })
        .collect()
}
