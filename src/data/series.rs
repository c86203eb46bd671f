//! Long series (audio, sensor records) as windows, and back.
//!
//! A series is `len` time steps of `channels` values, stored time-major (the values of
//! one step together, as a CSV row or an interleaved WAV frame). `frame` cuts it into
//! windows of `window` steps every `hop` steps, each a row of `window × channels` values
//! (channel-major inside the row: all of channel 0, then channel 1, so a row of a
//! one-channel series is just its samples). The last window is moved back to end at the
//! series' last step (it overlaps its neighbour more), so every step lies in a window and
//! no window holds made-up padding, which would score as an anomaly at the end.
//!
//! `overlap_add` is the inverse: each step becomes the weighted mean of the values the
//! windows covering it give it, with a taper that is largest mid-window (sin², never 0)
//! and weights normalised by their own sum at every step. The weights therefore sum to
//! one wherever windows overlap, for any hop, so windows that agree (a perfect model)
//! give back the series itself, up to float rounding, and integer PCM exactly after
//! rounding. `point_scores` turns one score per window into one per step the same way.
//!
//! `read_wav` and `wav_bytes` move series in and out of WAV files (hound).

use crate::invalid::Invalid;
use anyhow::{bail, Context, Result};
use rubato::{FftFixedIn, Resampler};
use std::path::Path;

/// How a series is cut: `window` steps every `hop` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windowing {
    pub window: usize,
    pub hop: usize,
    /// The rows are spectra of frames of `window` samples every `hop` (`data::spectral`).
    pub spectral: Option<super::spectral::Spectral>,
}

impl Windowing {
    /// Checks the settings against a series of `len` steps (the settings named in the
    /// errors).
    pub fn check(self, len: usize) -> Result<(), Invalid> {
        let (window, hop) = (self.window, self.hop);
        if window == 0 {
            return Err(Invalid::of("window", "must be at least 1"));
        }
        if hop == 0 || hop > window {
            let problem = format!("must be between 1 and the window ({window}), got {hop}");
            return Err(Invalid::of("hop", problem));
        }
        if self.spectral.is_some() && (window < 16 || window % 2 == 1) {
            let problem =
                format!("is an STFT frame: an even number of samples, 16 or more, got {window}");
            return Err(Invalid::of("window", problem));
        }
        if len < window {
            let problem = format!("{window} is longer than the series ({len} steps)");
            return Err(Invalid::of("window", problem));
        }
        Ok(())
    }

    /// Values in a row of a series of `channels` channels.
    pub fn width(self, channels: usize) -> usize {
        match self.spectral {
            Some(s) => s.width(self.window),
            None => self.window * channels,
        }
    }

    /// Windows needed to cover `len` steps (a hop of 0, which `check` refuses, counts as 1);
    /// the frames of the STFT for a spectral run.
    pub fn count(self, len: usize) -> usize {
        if self.spectral.is_some() {
            return len / self.hop.max(1) + 1;
        }
        if len <= self.window {
            1
        } else {
            (len - self.window).div_ceil(self.hop.max(1)) + 1
        }
    }

    /// The first step of window `i` of a series of `len` (≥ window) steps.
    pub fn start(self, i: usize, len: usize) -> usize {
        (i * self.hop).min(len - self.window)
    }

    /// The taper of `overlap_add`, one weight per window position:
    /// sin²(π(k + ½)/window), positive at every k.
    fn taper(self) -> Vec<f64> {
        let x = |k: usize| std::f64::consts::PI * (k as f64 + 0.5) / self.window as f64;
        (0..self.window).map(|k| x(k).sin().powi(2)).collect()
    }
}

/// Cuts `series` (`len × channels`, time-major) into `w.count(len)` windows of
/// `w.window × channels` values each, channel-major inside a window.
pub fn frame(series: &[f32], channels: usize, w: Windowing) -> Result<Vec<f32>> {
    if channels == 0 || series.len() % channels != 0 {
        bail!("a series of {} values does not split into {channels} channels", series.len());
    }
    let len = series.len() / channels;
    w.check(len)?;
    let count = w.count(len);
    let mut out = Vec::with_capacity(count * w.window * channels);
    for i in 0..count {
        let start = w.start(i, len);
        for c in 0..channels {
            out.extend((start..start + w.window).map(|t| series[t * channels + c]));
        }
    }
    Ok(out)
}

/// The weighted mean, at each of `len` steps, of what the windows covering it say: the
/// inverse of `frame` for windows that agree.
pub fn overlap_add(windows: &[f32], len: usize, channels: usize, w: Windowing) -> Vec<f32> {
    assert_eq!(windows.len(), w.count(len) * w.window * channels, "windows of another series");
    let mut sum = OverlapAdd::new(len, channels, w);
    sum.add(0, windows);
    sum.finish()
}

/// `overlap_add` taking the windows a part at a time, in any order.
pub struct OverlapAdd {
    sum: Vec<f64>,
    weight: Vec<f64>,
    taper: Vec<f64>,
    len: usize,
    channels: usize,
    w: Windowing,
}

impl OverlapAdd {
    /// For the `w.count(len)` windows of a series of `len` steps of `channels`.
    pub fn new(len: usize, channels: usize, w: Windowing) -> OverlapAdd {
        let (sum, weight) = (vec![0f64; len * channels], vec![0f64; len]);
        OverlapAdd { sum, weight, taper: w.taper(), len, channels, w }
    }

    /// Windows `first`, `first + 1`, … (`windows`: theirs, one after another).
    pub fn add(&mut self, first: usize, windows: &[f32]) {
        let (w, channels) = (self.w, self.channels);
        for (n, row) in windows.chunks_exact(w.window * channels).enumerate() {
            let start = w.start(first + n, self.len);
            for (k, &a) in self.taper.iter().enumerate() {
                let t = start + k;
                self.weight[t] += a;
                for c in 0..channels {
                    self.sum[t * channels + c] += a * row[c * w.window + k] as f64;
                }
            }
        }
    }

    /// Each step's weighted mean.
    pub fn finish(self) -> Vec<f32> {
        let c = self.channels;
        self.sum.iter().enumerate().map(|(j, &s)| (s / self.weight[j / c]) as f32).collect()
    }
}

/// One score per step from one per window: the mean over the windows covering the step,
/// weighted by the same taper as `overlap_add` (so a step counts most for the windows it
/// is central in), or the largest of them.
pub fn point_scores(window_scores: &[f64], len: usize, w: Windowing, max: bool) -> Vec<f64> {
    assert_eq!(window_scores.len(), w.count(len), "scores of another series");
    let mut sum = vec![0f64; len];
    let mut weight = vec![0f64; len];
    let mut top = vec![f64::NEG_INFINITY; len];
    let taper = w.taper();
    for (i, &s) in window_scores.iter().enumerate() {
        // A spectral run's frame i is centred on step i·hop (its ends past the series).
        let first = match w.spectral {
            Some(_) => (i * w.hop) as isize - (w.window / 2) as isize,
            None => w.start(i, len) as isize,
        };
        for (k, &a) in taper.iter().enumerate() {
            let Ok(t) = usize::try_from(first + k as isize) else { continue };
            if t >= len {
                break;
            }
            sum[t] += a * s;
            weight[t] += a;
            top[t] = top[t].max(s);
        }
    }
    if max {
        top
    } else {
        sum.iter().zip(&weight).map(|(s, a)| s / a).collect()
    }
}

/// Input samples per step of the resampler (its FFT works on chunks of about this size).
const RESAMPLE_CHUNK: usize = 1024;

/// A WAV file's samples as one channel in [-1, 1] (integer PCM divided by 2^(bits−1)),
/// with its sample rate and the stored form, to write the result back the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct Wav {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    pub spec: hound::WavSpec,
}

/// Reads one channel of a WAV file: mono files as they are; for more channels,
/// `channel` must say which (from 0).
pub fn read_wav(path: &Path, channel: Option<usize>) -> Result<Wav> {
    let what = || format!("{} is not a readable WAV file", path.display());
    let mut reader = hound::WavReader::open(path).with_context(what)?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if spec.sample_format == hound::SampleFormat::Int && !(1..=32).contains(&spec.bits_per_sample) {
        bail!("{}: {}-bit integer samples are not read", path.display(), spec.bits_per_sample);
    }
    let pick = match (channels, channel) {
        (1, None | Some(0)) => 0,
        (_, Some(c)) if c < channels => c,
        (_, Some(c)) => {
            let problem = format!("{{wav_channel}} {c}, but it has {channels} channel(s)");
            return Err(Invalid::plain(problem)).context(path.display().to_string());
        }
        (_, None) => {
            let problem = format!(
                "{} has {channels} channels: choose one with {{wav_channel}} N (0 to {})",
                path.display(),
                channels - 1
            );
            return Err(Invalid::plain(problem).into());
        }
    };
    let all: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect()
        }
    }
    .with_context(what)?;
    if all.len() % channels != 0 {
        bail!("{}: the data stops in the middle of a frame", path.display());
    }
    let samples: Vec<f32> = all.iter().skip(pick).step_by(channels).copied().collect();
    if samples.is_empty() {
        bail!("{} holds no samples", path.display());
    }
    if let Some(bad) = samples.iter().find(|v| !v.is_finite()) {
        bail!("{} holds a sample that is not a finite number ({bad})", path.display());
    }
    Ok(Wav { samples, sample_rate: spec.sample_rate, spec: hound::WavSpec { channels: 1, ..spec } })
}

/// `samples`, one channel at `from` Hz, at `to` Hz: rubato's FFT resampler (band-limited,
/// so downsampling does not alias), its delay removed, `round(n · to / from)` samples.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let n = samples.len();
    let want = ((n as u64 * to as u64 + from as u64 / 2) / from as u64) as usize;
    // The resampler works in FFT blocks of a whole number of (from / gcd)-sample units,
    // and reports half a block of output as its delay: with an even number of units the
    // half is exact (an odd one would shift the output by half a sample).
    let unit = (from / gcd(from, to)) as usize;
    let chunk = 2 * RESAMPLE_CHUNK.div_ceil(2 * unit) * unit;
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 1, 1)
        .with_context(|| format!("resampling from {from} Hz to {to} Hz"))?;
    let delay = r.output_delay();
    let mut out = Vec::with_capacity(want + delay + 2 * RESAMPLE_CHUNK);
    let mut at = 0;
    while at + r.input_frames_next() <= n {
        let next = at + r.input_frames_next();
        out.extend_from_slice(&r.process(&[&samples[at..next]], None)?[0]);
        at = next;
    }
    if at < n {
        out.extend_from_slice(&r.process_partial(Some(&[&samples[at..]]), None)?[0]);
    }
    while out.len() < want + delay {
        out.extend_from_slice(&r.process_partial::<&[f32]>(None, None)?[0]);
    }
    Ok(out[delay..delay + want].to_vec())
}

/// How many of `samples` sit at the largest magnitude `spec`'s format holds (integer PCM:
/// its top step either way; float: 1 or beyond): clipped samples.
pub fn clipped(samples: &[f32], spec: hound::WavSpec) -> usize {
    let top = match spec.sample_format {
        hound::SampleFormat::Int => 1.0 - 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32,
        hound::SampleFormat::Float => 1.0,
    };
    samples.iter().filter(|v| v.abs() >= top).count()
}

/// The greatest common divisor of two rates.
fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `samples` in [-1, 1] as bytes of a mono WAV file in `spec`'s sample format: integer
/// PCM rounded to the nearest step and clipped to its range.
pub fn wav_bytes(samples: &[f32], spec: hound::WavSpec) -> Result<Vec<u8>> {
    let spec = hound::WavSpec { channels: 1, ..spec };
    if spec.sample_format == hound::SampleFormat::Float && spec.bits_per_sample == 32 {
        return Ok(float_wav_bytes(samples, spec.sample_rate));
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec)?;
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for &s in samples {
                writer.write_sample(s)?;
            }
        }
        hound::SampleFormat::Int => {
            let full = (1u64 << (spec.bits_per_sample - 1)) as f64;
            for &s in samples {
                let v = (s as f64 * full).round().clamp(-full, full - 1.0);
                writer.write_sample(v as i32)?;
            }
        }
    }
    writer.finalize()?;
    Ok(bytes.into_inner())
}

/// A mono 32-bit float WAV in the standard layout (what sox and libsndfile write): a
/// WAVE_FORMAT_IEEE_FLOAT fmt chunk of 18 bytes and a fact chunk with the sample count.
/// hound writes float as WAVE_FORMAT_EXTENSIBLE without a fact chunk, which sox warns about.
fn float_wav_bytes(samples: &[f32], rate: u32) -> Vec<u8> {
    // Sizes past 4 GiB cannot be written in a RIFF header; they saturate rather than wrap.
    let data = u32::try_from(samples.len()).unwrap_or(u32::MAX).saturating_mul(4);
    let mut b = Vec::with_capacity(58 + data as usize);
    let mut put = |bytes: &[u8]| b.extend_from_slice(bytes);
    put(b"RIFF");
    put(&data.saturating_add(50).to_le_bytes()); // everything after these 8 bytes
    put(b"WAVEfmt ");
    put(&18u32.to_le_bytes());
    put(&3u16.to_le_bytes()); // IEEE float
    put(&1u16.to_le_bytes()); // channels
    put(&rate.to_le_bytes());
    put(&rate.saturating_mul(4).to_le_bytes()); // bytes per second
    put(&4u16.to_le_bytes()); // block align
    put(&32u16.to_le_bytes()); // bits per sample
    put(&0u16.to_le_bytes()); // no extension
    put(b"fact");
    put(&4u32.to_le_bytes());
    put(&(data / 4).to_le_bytes());
    put(b"data");
    put(&data.to_le_bytes());
    for s in samples {
        put(&s.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn float_wavs_have_the_standard_header_and_read_back() {
        let samples = [0.0f32, 0.5, -0.25, 1.0, -1.0];
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22050,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let bytes = wav_bytes(&samples, spec).unwrap();
        assert_eq!(bytes.len(), 58 + 4 * samples.len());
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
        // fmt: 18 bytes, format 3 (IEEE float); then the fact chunk with the sample count.
        assert_eq!(
            (&bytes[12..16], &bytes[16..20], &bytes[20..22]),
            (&b"fmt "[..], &[18, 0, 0, 0][..], &[3, 0][..])
        );
        assert_eq!((&bytes[38..42], bytes[46]), (&b"fact"[..], 5));
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec(), spec);
        let back: Vec<f32> = reader.samples::<f32>().map(|s| s.unwrap()).collect();
        assert_eq!(back, samples);
    }

    #[test]
    fn resampling_keeps_a_tone_and_its_length() {
        // A 440 Hz tone at 16 kHz, to 48 kHz and 22.05 kHz and back: away from the ends
        // (the filter's edges), every sample is the tone's value at its own time.
        let tone = |rate: f64, n: usize| -> Vec<f32> {
            (0..n).map(|i| (0.5 * (2.0 * PI * 440.0 * i as f64 / rate).sin()) as f32).collect()
        };
        let x = tone(16000.0, 16000);
        for to in [48000u32, 22050] {
            let y = resample(&x, 16000, to).unwrap();
            assert_eq!(y.len(), to as usize);
            let want = tone(to as f64, to as usize);
            let edge = to as usize / 20;
            let err = (edge..y.len() - edge).map(|i| (y[i] - want[i]).abs()).fold(0.0, f32::max);
            assert!(err < 1e-3, "16000 → {to}: {err}");
            let back = resample(&y, to, 16000).unwrap();
            assert_eq!(back.len(), 16000);
            let err = (800..15200).map(|i| (back[i] - x[i]).abs()).fold(0.0, f32::max);
            assert!(err < 1e-3, "{to} → 16000: {err}");
        }
        // Downsampling removes what the new rate cannot carry: 7 kHz at 48 kHz → 8 kHz
        // (Nyquist 4 kHz) comes out nearly silent instead of folding to 1 kHz.
        let high: Vec<f32> = tone(48000.0, 48000)
            .iter()
            .enumerate()
            .map(|(i, _)| (0.5 * (2.0 * PI * 7000.0 * i as f64 / 48000.0).sin()) as f32)
            .collect();
        let low = resample(&high, 48000, 8000).unwrap();
        let rms = (low[400..7600].iter().map(|v| v * v).sum::<f32>() / 7200.0).sqrt();
        assert!(rms < 0.01, "aliased: rms {rms}");
        assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
    }

    fn wave(len: usize, channels: usize) -> Vec<f32> {
        (0..len * channels).map(|i| ((i as f32) * 0.37).sin() + (i % 7) as f32 * 0.1).collect()
    }

    #[test]
    fn windows_cover_every_step_and_overlap_add_gives_the_series_back() {
        // Lengths that fit the hop and that do not (the last window moved back), one and
        // three channels, hops from 1 to the window.
        for (len, channels, window, hop) in [
            (100, 1, 16, 8),
            (101, 1, 16, 8),
            (57, 3, 10, 3),
            (40, 2, 40, 40),
            (33, 1, 5, 5),
            (20, 1, 4, 1),
        ] {
            let w = Windowing { window, hop, spectral: None };
            let series = wave(len, channels);
            let windows = frame(&series, channels, w).unwrap();
            let count = w.count(len);
            assert_eq!(windows.len(), count * window * channels);
            // The last window ends at the last step, the one before it does not; channel c
            // of window i is the series' channel c from step i·hop.
            assert_eq!(w.start(count - 1, len) + window, len);
            assert!(count == 1 || (count - 2) * hop + window < len);
            let (i, c, k) = (count / 2, channels - 1, window / 2);
            assert_eq!(
                windows[(i * channels + c) * window + k],
                series[(i * hop + k) * channels + c]
            );
            let back = overlap_add(&windows, len, channels, w);
            let err = back.iter().zip(&series).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err <= 4.0 * f32::EPSILON, "{len} {channels} {window} {hop}: off by {err}");
        }
    }

    #[test]
    fn pcm_survives_windows_and_a_wav_round_trip_exactly() {
        // 16-bit PCM through frame → overlap_add → WAV bytes → read: the same integers.
        let ints: Vec<i32> =
            (0..4800).map(|i| ((i as f64 * 0.05).sin() * 20000.0) as i32).collect();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let x: Vec<f32> = ints.iter().map(|&v| v as f32 / 32768.0).collect();
        let w = Windowing { window: 512, hop: 128, spectral: None };
        let back = overlap_add(&frame(&x, 1, w).unwrap(), x.len(), 1, w);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, wav_bytes(&back, spec).unwrap()).unwrap();
        let read = read_wav(&path, None).unwrap();
        assert_eq!((read.sample_rate, read.spec), (48000, spec));
        let got: Vec<i32> = read.samples.iter().map(|&v| (v * 32768.0).round() as i32).collect();
        assert_eq!(got, ints);
        // Every stored form reads back to what was written (24-, 8- and 32-bit, float;
        // 32-bit integers to f32's 24-bit precision).
        for (bits, format) in [
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Int),
            (8, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ] {
            let spec = hound::WavSpec { bits_per_sample: bits, sample_format: format, ..spec };
            std::fs::write(&path, wav_bytes(&x, spec).unwrap()).unwrap();
            let read = read_wav(&path, None).unwrap();
            let step = if format == hound::SampleFormat::Float {
                0.0
            } else {
                1.0 / (1u32 << (bits - 1)) as f32
            };
            let err = read.samples.iter().zip(&x).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err <= step / 2.0 + 1e-7, "{bits}-bit: off by {err}");
        }
    }

    #[test]
    fn the_speech_wavs_read_as_their_data_chunk_says() {
        // data/speech (setup.sh, from Debian's alsa-utils): checked against the file's own
        // bytes, parsed by hand: the "data" chunk's length and its first 16-bit samples.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/speech/Front_Center.wav");
        let bytes = std::fs::read(&path).expect("data/speech is missing: run scripts/setup.sh");
        let at = bytes.windows(4).position(|w| w == b"data").unwrap();
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let first: Vec<f32> = bytes[at + 8..at + 8 + 2000]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .collect();
        let wav = read_wav(&path, None).unwrap();
        assert_eq!(
            (wav.sample_rate, wav.spec.bits_per_sample, wav.samples.len()),
            (48000, 16, size / 2)
        );
        assert_eq!(wav.samples[..1000], first[..]);
        let peak = wav.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.1, "speech, not silence: peak {peak}");
    }

    #[test]
    fn point_scores_spread_window_scores_over_the_steps_they_cover() {
        let w = Windowing { window: 4, hop: 2, spectral: None };
        // 10 steps: windows at 0, 2, 4, 6 (the last ends at step 9).
        let scores = [0.0, 0.0, 8.0, 0.0];
        let max = point_scores(&scores, 10, w, true);
        assert_eq!(max, vec![0.0, 0.0, 0.0, 0.0, 8.0, 8.0, 8.0, 8.0, 0.0, 0.0]);
        let mean = point_scores(&scores, 10, w, false);
        // Steps 4–7 are the high window's; each shares it with one neighbour.
        assert!(mean[..4].iter().chain(&mean[8..]).all(|&v| v == 0.0), "{mean:?}");
        assert!(mean[4..8].iter().all(|&v| v > 0.0 && v < 8.0), "{mean:?}");
        let flat = point_scores(&[3.0; 4], 10, w, false);
        assert!(flat.iter().all(|v| (v - 3.0).abs() < 1e-12), "{flat:?}");
    }

    #[test]
    fn bad_settings_and_bad_files_are_named() {
        let w = |window, hop| Windowing { window, hop, spectral: None };
        assert!(w(8, 0).check(100).unwrap_err().to_string().contains("--hop"));
        assert!(w(8, 9).check(100).unwrap_err().to_string().contains("--hop"));
        assert!(w(0, 1).check(100).unwrap_err().to_string().contains("--window"));
        let long = w(200, 10).check(100).unwrap_err().to_string();
        assert!(long.contains("longer than the series (100 steps)"), "{long}");
        assert!(frame(&[1.0; 10], 3, w(2, 1)).is_err());

        let dir = tempfile::tempdir().unwrap();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let stereo = dir.path().join("stereo.wav");
        let mut writer = hound::WavWriter::create(&stereo, spec).unwrap();
        for i in 0..200 {
            writer.write_sample(i as i16).unwrap();
        }
        writer.finalize().unwrap();
        let err = read_wav(&stereo, None).unwrap_err().to_string();
        assert!(
            err.contains("stereo.wav has 2 channels") && err.contains("--wav-channel"),
            "{err}"
        );
        let right = read_wav(&stereo, Some(1)).unwrap();
        assert_eq!(right.samples.len(), 100);
        assert_eq!(right.samples[3], 7.0 / 32768.0);
        let err = format!("{:#}", read_wav(&stereo, Some(2)).unwrap_err());
        assert!(err.ends_with("stereo.wav: --wav-channel 2, but it has 2 channel(s)"), "{err}");

        // No samples; a header that promises more data than the file holds; not a WAV.
        let mono = hound::WavSpec { channels: 1, ..spec };
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, wav_bytes(&[], mono).unwrap()).unwrap();
        assert!(read_wav(&empty, None)
            .unwrap_err()
            .to_string()
            .contains("empty.wav holds no samples"));
        let mut bytes = wav_bytes(&[0.5; 100], mono).unwrap();
        bytes.truncate(bytes.len() - 60);
        let lying = dir.path().join("lying.wav");
        std::fs::write(&lying, bytes).unwrap();
        let err = format!("{:#}", read_wav(&lying, None).unwrap_err());
        assert!(err.contains("lying.wav is not a readable WAV file"), "{err}");
        let text = dir.path().join("notes.wav");
        std::fs::write(&text, "not a wav").unwrap();
        assert!(read_wav(&text, None).unwrap_err().to_string().contains("notes.wav"));
    }
}
