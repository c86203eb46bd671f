//! Whether a series' window matrix fits in the memory free now, before it is cut.

use crate::data::series::Windowing;

/// Copies of a series' window matrix held at once (the windows, their scaled values, the
/// tensor made of them).
const WINDOW_COPIES: u64 = 3;

/// Why windows cannot be cut: what they would take, and what a new run can do about it.
pub struct TooBig {
    pub what: String,
    pub fix: String,
}

/// Why `count` windows of `w.window` steps × `channels` cannot be held in `free` bytes
/// (with `WINDOW_COPIES` copies, within 80% of it), with the hop that would fit; `None`
/// when they fit or the free memory is unknown.
pub fn window_memory(
    count: usize,
    channels: usize,
    w: Windowing,
    free: Option<u64>,
) -> Option<TooBig> {
    let free = free?;
    let need = count as u64 * w.width(channels) as u64 * 4 * WINDOW_COPIES;
    let room = free / 5 * 4;
    if need <= room {
        return None;
    }
    let gb = |b: u64| b as f64 / 1e9;
    let hop = (w.hop as u64 * need).div_ceil(room.max(1)).min(w.window as u64);
    let fix = if hop > w.hop as u64 {
        format!("pass {{hop}} {hop} or more (fewer windows), or a shorter {{window}}")
    } else {
        "pass a shorter {window} or use a smaller part of the series".into()
    };
    let what = format!(
        "{count} windows of {} steps (hop {}) would take {:.1} GB in memory, more than the \
         {:.1} GB free ({} copies of the windows are held while they are prepared)",
        w.window,
        w.hop,
        gb(need),
        gb(free),
        WINDOW_COPIES
    );
    Some(TooBig { what, fix })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten minutes at 16 kHz cut at hop 1 into 256-step windows: 9.6 million windows, 29.5
    /// GB with the copies, refused on a machine with 8 GB free with the hop that fits
    /// (29.5 / 6.4 GB: hop 5); at hop 128 they take 0.2 GB and pass.
    #[test]
    fn windows_that_would_not_fit_in_memory_are_refused_with_a_hop_that_would() {
        let steps = 10 * 60 * 16000;
        let at = |hop| Windowing { window: 256, hop, spectral: None };
        let free = Some(8_000_000_000);
        let problem = window_memory(at(1).count(steps), 1, at(1), free).unwrap();
        let what = &problem.what;
        assert!(what.starts_with("9599745 windows of 256 steps (hop 1) would take 29.5 GB"));
        assert!(what.contains("more than the 8.0 GB free"));
        assert!(problem.fix.contains("{hop} 5 or more"));
        assert!(window_memory(at(128).count(steps), 1, at(128), free).is_none());
        assert!(window_memory(at(1).count(steps), 1, at(1), None).is_none());
    }
}
