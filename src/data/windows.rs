//! Windows of series as views: a run's series are kept once, as their steps, and a window
//! is cut (and scaled) only when a batch or a chunk of rows asks for it. A window matrix
//! at hop 1 is `window` times the size of its series (a 10-minute 16 kHz recording cut
//! into 256-step windows: 9.8 GB), while the steps and a list of which windows a set
//! holds stay the size of the series whatever the hop.
//!
//! `Windows` holds every window of some series: their steps back to back, piece by piece
//! (the stretches between gaps; no window crosses two), each step's row in its file, and
//! each window's label (the highest of its steps', as `vectors::window_table` labels).
//! A `WindowSet` is some of those windows, in order, as ranges of window numbers (a
//! run's training, validation and test windows are runs of consecutive windows), with the
//! scaling its rows are read through and their label codes. `series::frame` is the
//! materialised form: a set's rows are `frame`'s windows, scaled, bit for bit.

use super::series::Windowing;
use super::spec::{ScaleKind, Scaling};
use anyhow::{bail, Result};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Tensor};

/// Rows of a set gathered at once for a chunked pass: about this many values.
pub const CHUNK_VALUES: usize = 1 << 21;

/// One stretch of steps between gaps, as `Windows::cut` takes it.
pub struct Piece<'a> {
    /// `len × channels` values, time-major.
    pub values: &'a [f32],
    /// Each step's row in its file.
    pub ids: &'a [usize],
    /// Each step's label, when the series has a label column.
    pub labels: Option<&'a [String]>,
    /// The file, when the run's series come from a folder.
    pub file: Option<Arc<Path>>,
}

/// Where a piece's steps are kept, and its first window's number.
#[derive(Debug, PartialEq)]
struct Span {
    at: usize,
    len: usize,
    first: usize,
    /// Its first step's row in its file.
    id: usize,
    file: Option<Arc<Path>>,
}

/// Every window of some series, cut on demand (see the module doc).
#[derive(Debug, PartialEq)]
pub struct Windows {
    steps: Vec<f32>,
    /// Each step's row in its file; `None` when they follow one another in every piece.
    ids: Option<Vec<usize>>,
    channels: usize,
    w: Windowing,
    spans: Vec<Span>,
    count: usize,
    /// The distinct step labels, lowest first, and each window's (an index into them).
    labels: Option<(Vec<String>, Vec<u32>)>,
}

impl Windows {
    /// The windows of `pieces` (each at least one window long), one piece after another.
    pub fn cut(pieces: &[Piece<'_>], channels: usize, w: Windowing) -> Result<Windows> {
        let total: usize = pieces.iter().map(|p| p.ids.len()).sum();
        // Rows numbered one after another (a WAV file's samples, a CSV's lines without
        // gaps) are kept as each piece's first; other numbering step by step.
        let consecutive = |p: &Piece| p.ids.iter().enumerate().all(|(k, &id)| id == p.ids[0] + k);
        let mut ids = match pieces.iter().all(consecutive) {
            true => None,
            false => Some(Vec::with_capacity(total)),
        };
        let mut steps = Vec::with_capacity(total * channels);
        let mut spans = Vec::with_capacity(pieces.len());
        let mut count = 0;
        for p in pieces {
            let len = p.ids.len();
            if p.values.len() != len * channels {
                bail!(
                    "a series piece of {} values is not {len} steps of {channels}",
                    p.values.len()
                );
            }
            w.check(len)?;
            let (at, id) = (steps.len() / channels.max(1), p.ids.first().copied().unwrap_or(0));
            spans.push(Span { at, len, first: count, id, file: p.file.clone() });
            steps.extend_from_slice(p.values);
            if let Some(ids) = &mut ids {
                ids.extend_from_slice(p.ids);
            }
            count += w.count(len);
        }
        let mut windows = Windows { steps, ids, channels, w, spans, count, labels: None };
        if pieces.iter().all(|p| p.labels.is_some()) && !pieces.is_empty() {
            windows.labels = Some(window_labels(pieces, &windows));
        }
        Ok(windows)
    }

    /// How many windows there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Values per window.
    pub fn width(&self) -> usize {
        self.w.window * self.channels
    }

    /// The span holding window `i`, and the window's first step in `steps`.
    fn locate(&self, i: usize) -> (&Span, usize) {
        let s = &self.spans[self.spans.partition_point(|s| s.first <= i) - 1];
        (s, s.at + self.w.start(i - s.first, s.len))
    }

    /// Window `i`'s raw values into `out` (`width()` values, channel-major), as
    /// `series::frame` lays them out.
    fn raw_into(&self, i: usize, out: &mut [f32]) {
        let (_, start) = self.locate(i);
        let (c, n) = (self.channels, self.w.window);
        let steps = &self.steps[start * c..(start + n) * c];
        match c {
            1 => out.copy_from_slice(steps),
            _ => (0..c).for_each(|ch| {
                out[ch * n..][..n].iter_mut().enumerate().for_each(|(k, o)| *o = steps[k * c + ch])
            }),
        }
    }

    /// Each window's label name (see `cut`), the distinct ones in use, lowest first.
    pub fn label_names(&self) -> Option<Vec<&String>> {
        let (names, of) = self.labels.as_ref()?;
        let mut used = vec![false; names.len()];
        of.iter().for_each(|&l| used[l as usize] = true);
        Some(names.iter().zip(used).filter(|(_, u)| *u).map(|(n, _)| n).collect())
    }

    /// A set of all these windows, raw (no scaling yet; see `WindowSet::scaled`), labels
    /// coded by `code` (asked for each label name in use); the set's codes then stand in
    /// for the windows' own labels, which are dropped.
    pub fn all(mut self, code: &dyn Fn(&str) -> Result<u8>) -> Result<WindowSet> {
        let used: Vec<String> =
            self.label_names().unwrap_or_default().into_iter().cloned().collect();
        let labels = match self.labels.take() {
            Some((names, of)) => {
                let codes: Vec<u8> = names
                    .iter()
                    .map(|n| if used.contains(n) { code(n) } else { Ok(0) })
                    .collect::<Result<_>>()?;
                Some(of.iter().map(|&l| codes[l as usize]).collect())
            }
            None => None,
        };
        let count = self.count;
        Ok(WindowSet {
            all: Arc::new(self),
            scaling: None,
            pick: std::iter::once(0..count).collect(),
            labels,
        })
    }
}

/// Each window's label: the highest of its steps' (numbers by value, text that is none
/// below them, then as text), as `vectors::window_table` labels a window.
fn window_labels(pieces: &[Piece<'_>], windows: &Windows) -> (Vec<String>, Vec<u32>) {
    let mut names: Vec<&String> = pieces.iter().flat_map(|p| p.labels.unwrap_or(&[])).collect();
    let rank = |l: &String| match l.parse::<f64>() {
        Ok(v) if !v.is_nan() => v,
        _ => f64::NEG_INFINITY,
    };
    names.sort_by(|a, b| rank(a).total_cmp(&rank(b)).then(a.cmp(b)));
    names.dedup();
    let position = |l: &String| {
        names
            .binary_search_by(|n| rank(n).total_cmp(&rank(l)).then(n.as_str().cmp(l.as_str())))
            .unwrap_or(0) as u32
    };
    let steps: Vec<u32> =
        pieces.iter().flat_map(|p| p.labels.unwrap_or(&[]).iter().map(position)).collect();
    let of = (0..windows.count)
        .map(|i| {
            let (_, start) = windows.locate(i);
            *steps[start..start + windows.w.window].iter().max().unwrap_or(&0)
        })
        .collect();
    (names.into_iter().cloned().collect(), of)
}

/// Some of a `Windows`' windows, in order, read through a scaling (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSet {
    all: Arc<Windows>,
    scaling: Option<Arc<Scaling>>,
    /// Window numbers, run after run.
    pick: Vec<Range<usize>>,
    /// Each row's label code, when the series have labels.
    pub labels: Option<Vec<u8>>,
}

impl WindowSet {
    pub fn len(&self) -> usize {
        self.pick.iter().map(|r| r.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.all.width()
    }

    /// The same windows read through `scaling` (fitted on raw windows: `fit_scaling`).
    pub fn scaled(self, scaling: &Scaling) -> WindowSet {
        WindowSet { scaling: Some(Arc::new(scaling.clone())), ..self }
    }

    /// `kind` fitted on these windows' raw values, as `Scaling::fit` fits it on their
    /// matrix (the same numbers), without cutting more than one window at a time.
    pub fn fit_scaling(&self, kind: ScaleKind) -> Scaling {
        let visit = |each: &mut dyn FnMut(&[f32])| {
            let mut row = vec![0f32; self.width()];
            for i in self.pick.iter().flat_map(|r| r.clone()) {
                self.all.raw_into(i, &mut row);
                each(&row);
            }
        };
        Scaling::fit_rows(kind, self.width(), &visit)
    }

    /// The window number of each of `rows` (positions in this set).
    fn numbers(&self, rows: impl Iterator<Item = usize>) -> Vec<usize> {
        let mut ends = Vec::with_capacity(self.pick.len());
        self.pick.iter().fold(0, |at, r| {
            ends.push(at + r.len());
            at + r.len()
        });
        rows.map(|i| {
            let k = ends.partition_point(|&e| e <= i);
            let before = if k == 0 { 0 } else { ends[k - 1] };
            self.pick[k].start + (i - before)
        })
        .collect()
    }

    /// Rows `rows` (positions in this set) as the network's values, row-major.
    pub fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let d = self.width();
        let mut out = vec![0f32; rows.len() * d];
        for (n, o) in self.numbers(rows.iter().copied()).into_iter().zip(out.chunks_mut(d.max(1))) {
            self.all.raw_into(n, o);
            if let Some(s) = &self.scaling {
                o.iter_mut().enumerate().for_each(|(j, v)| *v = s.one(j, *v));
            }
        }
        out
    }

    /// Rows `rows` as an `[n, width]` f32 tensor on `device`.
    pub fn rows_on(&self, rows: &[usize], device: Device) -> Tensor {
        let values = self.gather(rows);
        Tensor::from_slice(&values).view([rows.len() as i64, self.width() as i64]).to_device(device)
    }

    /// Rows `range` as an `[n, width]` f32 tensor on `device`.
    pub fn range_to_device(&self, range: Range<usize>, device: Device) -> Tensor {
        self.rows_on(&range.collect::<Vec<_>>(), device)
    }

    /// Every row at once (`[N, width]`): for sets small enough to hold; the passes over
    /// all of a run's windows go `chunks()` at a time.
    pub fn to_device(&self, device: Device) -> Tensor {
        self.range_to_device(0..self.len(), device)
    }

    /// The ranges of rows a pass takes at a time (about `CHUNK_VALUES` values each).
    pub fn chunks(&self) -> Vec<Range<usize>> {
        let (n, step) = (self.len(), (CHUNK_VALUES / self.width().max(1)).max(1));
        (0..n).step_by(step).map(|a| a..(a + step).min(n)).collect()
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> WindowSet {
        let mut pick: Vec<Range<usize>> = Vec::new();
        for n in self.numbers(indices.iter().copied()) {
            match pick.last_mut() {
                Some(r) if r.end == n => r.end += 1,
                _ => pick.push(n..n + 1),
            }
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        self.with(pick, labels)
    }

    /// The first `n` rows (all of them when there are fewer).
    pub fn take(&self, n: usize) -> WindowSet {
        let mut left = n;
        let mut pick = Vec::new();
        for r in &self.pick {
            let k = r.len().min(left);
            if k > 0 {
                pick.push(r.start..r.start + k);
            }
            left -= k;
        }
        let labels = self.labels.as_ref().map(|l| l[..n.min(l.len())].to_vec());
        self.with(pick, labels)
    }

    /// The rows `range` (positions in this set).
    pub fn part(&self, range: Range<usize>) -> WindowSet {
        let mut pick = Vec::new();
        let mut at = 0;
        for r in &self.pick {
            let (a, b) = (at.max(range.start), (at + r.len()).min(range.end));
            if a < b {
                pick.push(r.start + (a - at)..r.start + (b - at));
            }
            at += r.len();
        }
        self.with(pick, self.labels.as_ref().map(|l| l[range].to_vec()))
    }

    /// Other windows of the same series, read the same way.
    fn with(&self, pick: Vec<Range<usize>>, labels: Option<Vec<u8>>) -> WindowSet {
        WindowSet { all: self.all.clone(), scaling: self.scaling.clone(), pick, labels }
    }

    /// These rows, then `other`'s: windows of the same series (a run's training and
    /// validation windows); an error for windows of other series.
    pub fn concat(&self, other: &WindowSet) -> Result<WindowSet> {
        if !Arc::ptr_eq(&self.all, &other.all) || self.scaling != other.scaling {
            bail!("windows of different series cannot be joined into one set");
        }
        let pick = self.pick.iter().chain(&other.pick).cloned().collect();
        let labels = match (&self.labels, &other.labels) {
            (Some(a), Some(b)) => Some([&a[..], b].concat()),
            _ => None,
        };
        Ok(self.with(pick, labels))
    }

    /// Each row's first step's row in its file.
    pub fn ids(&self) -> Vec<usize> {
        self.pick
            .iter()
            .flat_map(|r| r.clone())
            .map(|i| {
                let (span, start) = self.all.locate(i);
                match &self.all.ids {
                    Some(ids) => ids[start],
                    None => span.id + (start - span.at),
                }
            })
            .collect()
    }

    /// Each row's file, when the series come from a folder.
    pub fn files(&self) -> Option<Vec<Arc<Path>>> {
        self.all.spans.first()?.file.as_ref()?;
        let file = |i: usize| self.all.locate(i).0.file.clone();
        self.pick.iter().flat_map(|r| r.clone()).map(file).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::series::frame;

    fn w(window: usize, hop: usize) -> Windowing {
        Windowing { window, hop, spectral: None }
    }

    /// Two pieces of a two-channel series (a gap between them), labelled per step.
    fn two_pieces() -> (Vec<f32>, Vec<f32>, Vec<usize>, Vec<String>) {
        let a: Vec<f32> = (0..2 * 11).map(|i| (i as f32 * 0.37).sin() * 3.0 + i as f32).collect();
        let b: Vec<f32> = (0..2 * 7).map(|i| (i as f32).cos() * 2.0 - 1.0).collect();
        let ids = (0..18).map(|i| i * 2 + 1).collect();
        let labels = (0..18).map(|i| if i == 13 { "1" } else { "0" }.to_string()).collect();
        (a, b, ids, labels)
    }

    #[test]
    fn a_sets_rows_are_the_framed_windows_scaled_bit_for_bit() {
        let (a, b, ids, labels) = two_pieces();
        let cut = w(4, 3);
        let pieces = [
            Piece { values: &a, ids: &ids[..11], labels: Some(&labels[..11]), file: None },
            Piece { values: &b, ids: &ids[11..], labels: Some(&labels[11..]), file: None },
        ];
        let windows = Windows::cut(&pieces, 2, cut).unwrap();
        let framed = [frame(&a, 2, cut).unwrap(), frame(&b, 2, cut).unwrap()].concat();
        assert_eq!(windows.count(), framed.len() / 8);
        let set = windows.all(&|n| Ok(n.parse::<u8>().unwrap())).unwrap();
        // The scaling fitted on the views is the one fitted on the matrix.
        let scaling = set.fit_scaling(ScaleKind::Standard);
        assert_eq!(scaling, Scaling::fit(ScaleKind::Standard, &framed, 8));
        assert_eq!(set.fit_scaling(ScaleKind::Minmax), Scaling::fit(ScaleKind::Minmax, &framed, 8));
        let set = set.scaled(&scaling);
        let mut expected = framed.clone();
        scaling.apply(&mut expected);
        assert_eq!(set.gather(&(0..set.len()).collect::<Vec<_>>()), expected);
        // Four windows of the first piece (the last moved back to end with it), two of the
        // second; window 4 (the second piece's steps 0–3) holds its step 2, labelled 1.
        // A window's id is its first step's.
        assert_eq!(set.labels.as_deref(), Some(&[0, 0, 0, 0, 1, 0][..]));
        assert_eq!(set.ids(), [1, 7, 13, 15, 23, 29]);
        // Select, take, part and concat keep rows and labels together.
        let picked = set.select(&[4, 1, 2]);
        assert_eq!(picked.gather(&[0]), &expected[32..40]);
        assert_eq!(picked.labels.as_deref(), Some(&[1, 0, 0][..]));
        let (head, tail) = (set.take(2), set.part(2..6));
        let joined = head.concat(&tail).unwrap();
        assert_eq!(joined.gather(&[0, 1, 2, 3, 4, 5]), expected);
        assert_eq!(joined.labels, set.labels);
        assert_eq!(tail.ids(), [13, 15, 23, 29]);
        assert_eq!(set.chunks(), std::iter::once(0..6).collect::<Vec<_>>());
        // Rows numbered one after another are kept as each piece's first.
        let ids: Vec<usize> = (100..118).collect();
        let pieces = [
            Piece { values: &a, ids: &ids[..11], labels: None, file: None },
            Piece { values: &b, ids: &ids[11..], labels: None, file: None },
        ];
        let windows = Windows::cut(&pieces, 2, cut).unwrap();
        assert_eq!(windows.ids, None);
        assert_eq!(windows.all(&|_| Ok(0)).unwrap().ids(), [100, 103, 106, 107, 111, 114]);
    }
}
