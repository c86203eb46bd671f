//! TensorBoard event files: the record framing (length, masked CRC-32C, payload, masked
//! CRC-32C), the few protobuf messages TensorBoard reads (scalars, PNG images, histograms,
//! the hparams plugin's session records), a writer that a resumed run continues without
//! duplicating steps, and a reader for that rewrite and for the tests.
//!
//! One folder holds one run's log (one event file at a time). Every event carries the
//! optimiser step it belongs to; a resumed run first rewrites the folder to the events up
//! to its checkpoint's step (a file cut off mid-record ends at its last whole record), so
//! the steps it trains again are written once.

use anyhow::{Context, Result};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "Kind", tags = "2, 4, 5")]
    pub kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// Bucket `i` counts the values in (bucket_limit[i-1], bucket_limit[i]].
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// The hparams plugin's record (tensorboard/plugins/hparams/plugin_data.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "SessionInfo", tags = "3, 4")]
    pub data: Option<SessionInfo>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SessionInfo {
    #[prost(message, tag = "3")]
    Start(SessionStartInfo),
    #[prost(message, tag = "4")]
    End(SessionEndInfo),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    #[prost(map = "string, message", tag = "1")]
    pub hparams: std::collections::HashMap<String, HValue>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// 1: success, 2: failure.
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`, the kinds an hparam takes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HValue {
    #[prost(oneof = "HKind", tags = "2, 3, 4")]
    pub kind: Option<HKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// TensorBoard's CRC: CRC-32C rotated right by 15 bits plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One framed record: u64 length, its masked CRC, the payload, its masked CRC.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// The payloads of the whole, intact records at the start of `bytes`, and whether every
/// byte belonged to one (false for a file cut off or damaged mid-record).
pub fn records(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 12) else { return (out, false) };
        let (len, len_crc) = head.split_at(8);
        if masked_crc(len).to_le_bytes() != len_crc {
            return (out, false);
        }
        let n = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let Some(body) = bytes.get(at + 12..(at + 12).saturating_add(n).saturating_add(4)) else {
            return (out, false);
        };
        let (payload, crc) = body.split_at(n);
        if masked_crc(payload).to_le_bytes() != crc {
            return (out, false);
        }
        out.push(payload);
        at += 16 + n;
    }
    (out, true)
}

/// The decoded events of one file (up to its first damaged record) and whether it was
/// whole.
pub fn read_events(path: &Path) -> Result<(Vec<Event>, bool)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (recs, whole) = records(&bytes);
    let events = recs.iter().map(|r| Event::decode(*r)).collect::<Result<Vec<_>, _>>();
    Ok((
        events.with_context(|| format!("{}: not a TensorBoard event file", path.display()))?,
        whole,
    ))
}

/// The event files in `dir`, in name order.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.contains("tfevents") && !name.ends_with(".tmp") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Equal-width buckets from the smallest to the largest value (`buckets` of them).
pub fn histogram(values: &[f32], buckets: usize) -> HistogramProto {
    let finite: Vec<f64> = values.iter().map(|&v| v as f64).filter(|v| v.is_finite()).collect();
    let (min, max) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (min, max) = if finite.is_empty() { (0.0, 0.0) } else { (min, max) };
    let buckets = buckets.max(1);
    let width = (max - min) / buckets as f64;
    let mut bucket_limit: Vec<f64> = (1..=buckets).map(|i| min + width * i as f64).collect();
    if let Some(last) = bucket_limit.last_mut() {
        *last = max;
    }
    let mut bucket = vec![0.0; buckets];
    for &v in &finite {
        let i = if width > 0.0 { ((v - min) / width).ceil() as usize } else { 0 };
        bucket[i.saturating_sub(1).min(buckets - 1)] += 1.0;
    }
    HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket,
    }
}

/// Appends events to the one event file of a run's log folder.
pub struct EventWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl EventWriter {
    /// Opens the log in `dir` for a run that writes from scratch (`keep_through` None: any
    /// event files there are replaced — the caller makes sure they are its own), or that resumes after step `keep_through`: the
    /// events up to and including that step are kept (rewritten into one new file), the
    /// rest — steps the resumed run trains again, a damaged tail — are dropped.
    pub fn open(dir: &Path, keep_through: Option<i64>) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let old = event_files(dir)?;
        let mut kept = Vec::new();
        if let Some(last) = keep_through {
            for path in &old {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                for rec in records(&bytes).0 {
                    let Ok(event) = Event::decode(rec) else { break };
                    if event.step <= last && !matches!(event.what, Some(What::FileVersion(_))) {
                        kept.extend_from_slice(&frame(rec));
                    }
                }
            }
        }
        let name =
            format!("events.out.tfevents.{:010}.ae-tch.{}", now() as u64, std::process::id());
        let mut path = dir.join(&name);
        let mut n = 0;
        while old.contains(&path) {
            n += 1;
            path = dir.join(format!("{name}.{n}"));
        }
        let version = Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        };
        let mut head = frame(&version.encode_to_vec());
        head.extend_from_slice(&kept);
        crate::atomic::write_atomic(&path, &head)?;
        for p in old {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(EventWriter { file: std::io::BufWriter::new(file), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: i64, values: Vec<Value>) -> Result<()> {
        let event =
            Event { wall_time: now(), step, what: Some(What::Summary(Summary { value: values })) };
        self.file
            .write_all(&frame(&event.encode_to_vec()))
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Scalars under their tags at `step`.
    pub fn scalars(&mut self, step: i64, scalars: &[(&str, f64)]) -> Result<()> {
        let values = scalars
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.to_string(),
                metadata: None,
                kind: Some(Kind::SimpleValue(v as f32)),
            })
            .collect();
        self.write(step, values)
    }

    /// A PNG image of `height` × `width` with `channels` (1, 3 or 4).
    pub fn image(
        &mut self,
        tag: &str,
        step: i64,
        png: Vec<u8>,
        (height, width, channels): (u32, u32, u32),
    ) -> Result<()> {
        let image = Image {
            height: height as i32,
            width: width as i32,
            colorspace: channels as i32,
            encoded_image_string: png,
        };
        let value = Value { tag: tag.to_string(), metadata: None, kind: Some(Kind::Image(image)) };
        self.write(step, vec![value])
    }

    pub fn histogram(&mut self, tag: &str, step: i64, values: &[f32]) -> Result<()> {
        let histo = histogram(values, HISTOGRAM_BUCKETS);
        let value = Value { tag: tag.to_string(), metadata: None, kind: Some(Kind::Histo(histo)) };
        self.write(step, vec![value])
    }

    /// The hparams plugin's session start (the run's settings) or end (its status).
    pub fn session(&mut self, info: SessionInfo) -> Result<()> {
        let tag = match info {
            SessionInfo::Start(_) => "_hparams_/session_start_info",
            SessionInfo::End(_) => "_hparams_/session_end_info",
        };
        let content = HParamsPluginData { version: 0, data: Some(info) }.encode_to_vec();
        let plugin = PluginData { plugin_name: "hparams".into(), content };
        let value = Value {
            tag: tag.to_string(),
            metadata: Some(SummaryMetadata { plugin_data: Some(plugin) }),
            // The plugin reads the metadata alone.
            kind: None,
        };
        self.write(0, vec![value])
    }

    /// Writes what is buffered through to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Buckets of the latent-code histograms.
pub const HISTOGRAM_BUCKETS: usize = 30;

/// A session start record from (name, value) settings, each a number, text or flag.
pub fn session_start(hparams: Vec<(String, HKind)>, group: &str) -> SessionInfo {
    SessionInfo::Start(SessionStartInfo {
        hparams: hparams.into_iter().map(|(k, v)| (k, HValue { kind: Some(v) })).collect(),
        group_name: group.to_string(),
        start_time_secs: now(),
    })
}

pub fn session_end(success: bool) -> SessionInfo {
    SessionInfo::End(SessionEndInfo { status: if success { 1 } else { 2 }, end_time_secs: now() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3720's CRC-32C check value, and the framing's lengths.
    #[test]
    fn crc_and_framing() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let rec = frame(b"hello");
        assert_eq!(rec.len(), 5 + 16);
        let (got, whole) = records(&rec);
        assert!(whole && got == vec![&b"hello"[..]]);
        let two = [rec.clone(), frame(b"")].concat();
        assert_eq!(records(&two).0.len(), 2);
        for cut in 1..rec.len() {
            let (got, whole) = records(&two[..rec.len() + cut.min(15)]);
            assert!(!whole && got.len() == 1, "cut {cut}");
        }
        let mut bad = rec.clone();
        bad[13] ^= 1;
        assert_eq!(records(&bad), (vec![], false));
    }

    #[test]
    fn histogram_counts_every_value_once() {
        let v: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let h = histogram(&v, 30);
        assert_eq!(h.bucket.iter().sum::<f64>(), 1000.0);
        assert_eq!(h.num, 1000.0);
        assert_eq!(h.bucket_limit.last().copied(), Some(h.max));
        assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));
        let lo = v.iter().filter(|&&x| (x as f64) <= h.bucket_limit[0]).count();
        assert_eq!(h.bucket[0], lo as f64);
        assert_eq!(histogram(&[2.0; 5], 30).bucket[0], 5.0);
    }

    /// A resumed log keeps the events through its step and drops the rest, also from a
    /// file cut off mid-record.
    #[test]
    fn reopening_keeps_the_steps_through_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::open(dir.path(), None).unwrap();
        for step in 1..=6 {
            w.scalars(step * 10, &[("loss", step as f64)]).unwrap();
        }
        w.flush().unwrap();
        let first = w.path().to_path_buf();
        drop(w);
        let bytes = std::fs::read(&first).unwrap();
        std::fs::write(&first, &bytes[..bytes.len() - 7]).unwrap();
        let (events, whole) = read_events(&first).unwrap();
        assert!(!whole && events.len() == 6, "the version record and 5 of 6 scalars");
        let mut w = EventWriter::open(dir.path(), Some(30)).unwrap();
        w.scalars(40, &[("loss", 4.5)]).unwrap();
        w.flush().unwrap();
        assert_eq!(event_files(dir.path()).unwrap(), vec![w.path().to_path_buf()]);
        let (events, whole) = read_events(w.path()).unwrap();
        assert!(whole);
        let steps: Vec<i64> = events.iter().map(|e| e.step).collect();
        assert_eq!(steps, [0, 10, 20, 30, 40]);
    }
}
