//! A spectral run's rows (`--domain stft`, `data::spectral`): a recording's STFT frames
//! cut into rows, and the frame chosen when `--window` is left to the data.

use crate::data::series::Windowing;
use crate::data::spec::{AutoWindow, SeriesSpec};
use crate::data::spectral::{self, Spectral, Stft};
use crate::data::table::Table;
use crate::invalid::Invalid;
use anyhow::Result;
use tch::Tensor;

/// The rows of a spectral run (`data::spectral`): one per STFT frame, the log power of
/// it and its neighbours, columns `<k>@<bin>` (k the frame's offset); a row's id and label
/// are its frame's middle step's.
pub(super) fn spectral_table(steps: &Table, w: Windowing, spectral: Spectral) -> Result<Table> {
    if steps.width() != 1 {
        let problem = format!("stft takes one channel, got {}", steps.width());
        return Err(Invalid::of("domain", problem).into());
    }
    let stft = Stft::new(w.window, w.hop);
    let rows = spectral::rows(&stft, &Tensor::from_slice(&steps.values), spectral.context);
    let values = Vec::<f32>::try_from(&rows.contiguous().view(-1))?;
    let (c, bins) = ((spectral.context / 2) as i64, w.window / 2 + 1);
    let columns = (-c..=c).flat_map(|k| (0..bins).map(move |b| format!("{k}@{b}"))).collect();
    let (len, count) = (steps.rows(), rows.size()[0] as usize);
    let middle = |i: usize| (i * w.hop).min(len - 1);
    let labels = steps.labels.as_ref().map(|l| (0..count).map(|i| l[middle(i)].clone()).collect());
    let ids = (0..count).map(|i| steps.ids[middle(i)]).collect();
    let (categories, unseen) = (Vec::new(), None);
    Ok(Table { values, columns, labels, ids, dropped: 0, files: None, categories, unseen })
}

/// A spectral run's frame when `--window` is left to the data: about 32 ms (the power
/// of two nearest it: 512 samples at 16 kHz), hop a quarter of it unless given; said in
/// a note.
pub(super) fn spectral_frame(
    series: &SeriesSpec,
    rate: Option<u32>,
    auto: AutoWindow,
) -> SeriesSpec {
    let samples = rate.unwrap_or(16_000) as f64 * 0.032;
    let frame = 1usize << (samples.log2().round().max(4.0) as u32);
    let hop = auto.hop.unwrap_or(frame / 4);
    crate::log::note(format_args!(
        "{} auto: STFT frames of {frame} samples ({:.0} ms at {}), hop {hop}; pass {} N to \
         choose",
        crate::invalid::dashed("window"),
        frame as f64 * 1000.0 / rate.unwrap_or(16_000) as f64,
        rate.map_or("16 kHz".into(), |r| format!("{r} Hz")),
        crate::invalid::dashed("window")
    ));
    SeriesSpec { window: frame, hop, auto: None, ..series.clone() }
}
