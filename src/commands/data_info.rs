//! `ae-tch data info DIR`: what a data folder holds — per split the image count and
//! size, the label histogram, and the pixel mean and standard deviation.

use crate::cli::DataInfoArgs;
use crate::data::{self, Split};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct SplitInfo {
    pub split: &'static str,
    pub images: usize,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    /// Images per label (absent for unlabelled data).
    pub labels: Option<BTreeMap<u8, usize>>,
    /// Of the pixels scaled to [0, 1].
    pub pixel_mean: f64,
    pub pixel_std: f64,
}

pub fn run(args: DataInfoArgs) -> Result<()> {
    let mut splits = Vec::new();
    // As training does: the test split is converted to what the training split became.
    let mut request = args.image.request();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = data::load_split(&args.dir, split, &request)?;
        request = set.shape.request();
        let (mut sum, mut sq) = (0f64, 0f64);
        for &p in &set.values {
            let v = crate::data::spec::unit(p) as f64;
            sum += v;
            sq += v * v;
        }
        let n = set.values.len().max(1) as f64;
        let mean = sum / n;
        let labels = set.labels.as_ref().map(|l| {
            let mut h = BTreeMap::new();
            for &c in l {
                *h.entry(c).or_insert(0) += 1;
            }
            h
        });
        splits.push(SplitInfo {
            split: name,
            images: set.len(),
            channels: set.shape.channels(),
            height: set.shape.height,
            width: set.shape.width,
            labels,
            pixel_mean: mean,
            pixel_std: (sq / n - mean * mean).max(0.0).sqrt(),
        });
    }
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&splits)? + "\n"));
    }
    let mut out = format!("{}\n", args.dir.display());
    for s in &splits {
        out += &format!(
            "{:<6} {:>6} images {}x{} {}  pixel mean {:.4}  std {:.4}\n",
            s.split,
            s.images,
            s.height,
            s.width,
            if s.channels == 1 { "gray" } else { "rgb" },
            s.pixel_mean,
            s.pixel_std
        );
        if let Some(h) = &s.labels {
            let parts: Vec<String> = h.iter().map(|(c, k)| format!("{c}:{k}")).collect();
            out += &format!("       labels {}\n", parts.join(" "));
        }
    }
    super::print(&out)
}
