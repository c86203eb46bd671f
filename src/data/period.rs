//! `--window auto`: a series' dominant period from its autocorrelation, and the window and
//! hop it gives.
//!
//! The autocorrelation r(k) of a series (each channel less its mean, averaged over the
//! channels, r(0) = 1) is computed with a real FFT of the series padded to twice its
//! length, O(n log n). The period is the lag of its highest local maximum between
//! `MIN_PERIOD` and a third of the length (at most `MAX_PERIOD`), or the first local
//! maximum at least 0.9 of that height when an earlier one is (noise can lift a multiple
//! of the period a little above the period itself). Below `MIN_CORRELATION` the series
//! has no repeating shape and no period.

use realfft::RealFftPlanner;

/// The shortest and longest periods looked for, in steps.
pub const MIN_PERIOD: usize = 4;
pub const MAX_PERIOD: usize = 4096;
/// The autocorrelation a period needs: below it the series does not repeat.
pub const MIN_CORRELATION: f64 = 0.2;
/// At most this many steps are looked at (the first of the longest stretch).
const MAX_STEPS: usize = 1 << 20;
/// The window when no period is found.
pub const FALLBACK_WINDOW: usize = 64;
/// The windows `auto` chooses lie in this range.
pub const MIN_WINDOW: usize = 16;
pub const MAX_WINDOW: usize = 1024;
/// `auto`'s hop when scoring: the smallest that keeps an epoch's training windows under
/// this many values (an epoch's time grows with them; memory does not, as windows are
/// cut a batch at a time), and never over a quarter of the window.
const WINDOW_VALUES: usize = 1 << 24;

/// The autocorrelation of `values` (`len × channels`, time-major) at lags 0 to `max_lag`.
pub fn autocorrelation(values: &[f32], channels: usize, max_lag: usize) -> Vec<f64> {
    let len = values.len() / channels.max(1);
    let n = (2 * len).max(2);
    let mut planner = RealFftPlanner::<f64>::new();
    let (forward, inverse) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let mut sum = vec![0.0; max_lag.min(len.saturating_sub(1)) + 1];
    for c in 0..channels {
        let column = values.iter().skip(c).step_by(channels).map(|&v| v as f64);
        let mean = column.clone().sum::<f64>() / len.max(1) as f64;
        let mut padded: Vec<f64> = column.map(|v| v - mean).collect();
        padded.resize(n, 0.0);
        let mut spectrum = forward.make_output_vec();
        if forward.process(&mut padded, &mut spectrum).is_err() {
            continue;
        }
        for x in &mut spectrum {
            *x = realfft::num_complex::Complex::new(x.norm_sqr(), 0.0);
        }
        let mut r = inverse.make_output_vec();
        if inverse.process(&mut spectrum, &mut r).is_err() || r[0] <= 0.0 {
            continue; // a constant channel has no shape to repeat
        }
        for (s, v) in sum.iter_mut().zip(&r) {
            *s += v / r[0];
        }
    }
    let first = sum.first().copied().unwrap_or(0.0);
    sum.iter().map(|s| if first > 0.0 { s / first } else { 0.0 }).collect()
}

/// The dominant period of `values` (`len × channels`) and its autocorrelation, if the
/// series repeats (see the module's notes).
pub fn dominant_period(values: &[f32], channels: usize) -> Option<(usize, f64)> {
    let values = &values[..values.len().min(MAX_STEPS * channels)];
    let len = values.len() / channels.max(1);
    let max_lag = (len / 3).min(MAX_PERIOD);
    if max_lag <= MIN_PERIOD {
        return None;
    }
    let r = autocorrelation(values, channels, max_lag + 1);
    let peaks: Vec<usize> =
        (MIN_PERIOD..=max_lag).filter(|&k| r[k - 1] < r[k] && r[k] >= r[k + 1]).collect();
    let best = peaks.iter().copied().max_by(|&a, &b| r[a].total_cmp(&r[b]))?;
    let first = peaks.into_iter().find(|&k| r[k] >= 0.9 * r[best]).unwrap_or(best);
    (r[first] >= MIN_CORRELATION).then_some((first, r[first]))
}

/// What `--window auto` chose, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoCut {
    pub window: usize,
    pub hop: usize,
    /// The period and its autocorrelation, when one was found.
    pub period: Option<(usize, f64)>,
}

/// The window and hop for a series whose training part is `train` (`len × channels`, its
/// longest stretch) of `total` steps in all: half the dominant period (the windows then
/// place an anomaly within half a beat; a whole period blurred it over the next one on the
/// UCR heart rate), within `MIN_WINDOW`..`MAX_WINDOW`, or `FALLBACK_WINDOW`; the hop
/// `given`, else a quarter of the window for a denoiser (overlap-add averages four
/// windows), else for scoring the smallest that keeps the training windows under
/// `WINDOW_VALUES` values.
pub fn auto_cut(
    train: &[f32],
    channels: usize,
    total: usize,
    (given, denoise): (Option<usize>, bool),
) -> AutoCut {
    let period = dominant_period(train, channels);
    let window = match period {
        Some((p, _)) => p.div_ceil(2).clamp(MIN_WINDOW, MAX_WINDOW),
        None => FALLBACK_WINDOW,
    };
    let hop = given.unwrap_or_else(|| {
        let quarter = (window / 4).max(1);
        if denoise {
            return quarter;
        }
        let values = |hop: usize| (total / hop + 1) * window * channels;
        (1..quarter).find(|&h| values(h) <= WINDOW_VALUES).unwrap_or(quarter)
    });
    AutoCut { window, hop, period }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The autocorrelation matches NumPy's `np.correlate(x - x.mean(), x - x.mean(),
    /// 'full')[n-1:] / its first value` (by hand here: a direct sum).
    #[test]
    fn autocorrelation_is_the_direct_sum_and_finds_the_period() {
        let x: Vec<f32> =
            (0..500).map(|i| ((i as f32) * std::f32::consts::TAU / 37.0).sin() + 0.1).collect();
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / 500.0;
        let d: Vec<f64> = x.iter().map(|&v| v as f64 - mean).collect();
        let direct = |k: usize| (0..500 - k).map(|i| d[i] * d[i + k]).sum::<f64>();
        let r = autocorrelation(&x, 1, 100);
        for k in [0, 1, 18, 37, 74, 100] {
            assert!((r[k] - direct(k) / direct(0)).abs() < 1e-9, "lag {k}");
        }
        let (period, height) = dominant_period(&x, 1).unwrap();
        assert_eq!(period, 37);
        assert!(height > 0.8, "{height}");
        // Two channels, one of them constant: the other one's period.
        let two: Vec<f32> = x.iter().flat_map(|&v| [v, 3.0]).collect();
        assert_eq!(dominant_period(&two, 2).map(|p| p.0), Some(37));
        // Noise has none (a fixed LCG).
        let mut state = 12345u64;
        let noise: Vec<f32> = (0..5000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        assert_eq!(dominant_period(&noise, 1), None);
        let cut = auto_cut(&noise, 1, 5000, (None, false));
        assert_eq!((cut.window, cut.hop, cut.period), (FALLBACK_WINDOW, 1, None));
    }

    /// The UCR heart rate's first 1,200 steps (its training part in the guide): NumPy's
    /// `np.correlate(d, d, 'full')[n-1:] / r[0]` gives r(183) = 0.847947, the highest peak.
    #[test]
    fn the_heart_rate_repeats_every_183_steps_as_numpy_finds() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/series/135_UCR_Anomaly_InternalBleeding16_TEST.csv"
        );
        let text = std::fs::read_to_string(path).expect("data/series: run scripts/setup.sh");
        let x: Vec<f32> = text
            .lines()
            .skip(1)
            .take(1200)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        let (period, height) = dominant_period(&x, 1).unwrap();
        assert_eq!(period, 183);
        assert!((height - 0.847947).abs() < 1e-5, "{height}");
        assert_eq!(auto_cut(&x, 1, 1200, (None, false)).window, 92);
    }

    #[test]
    fn the_window_is_half_a_period_and_the_hop_fits_the_task() {
        let x: Vec<f32> =
            (0..3000).map(|i| ((i as f32) * std::f32::consts::TAU / 90.0).sin()).collect();
        let cut = auto_cut(&x, 1, 3000, (None, false));
        assert_eq!((cut.window, cut.hop), (45, 1));
        assert_eq!(auto_cut(&x, 1, 3000, (None, true)).hop, 11);
        assert_eq!(auto_cut(&x, 1, 3000, (Some(5), false)).hop, 5);
        // Ten million steps: the hop that keeps 45-step windows under 2^24 values.
        assert_eq!(auto_cut(&x, 1, 10_000_000, (None, false)).hop, 11);
        let fast: Vec<f32> =
            (0..3000).map(|i| ((i as f32) * std::f32::consts::TAU / 6.0).sin()).collect();
        assert_eq!(auto_cut(&fast, 1, 3000, (None, false)).window, MIN_WINDOW);
    }
}
