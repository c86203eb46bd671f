//! The recorded description of a run's data: what kind of values the model takes, their
//! shape, and how raw files are turned into them. It is written to `model.json` (as
//! `model.input`), the model is built from it, and every later command converts the data
//! it is given through it, so nothing infers the shape from the data a second time.

pub use crate::config::{Background, Color, ColorChoice};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the network's input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSpec {
    /// C×H×W images of 8-bit values, scaled by 1/255 to [0, 1], channel planes one after
    /// another (PyTorch's layout).
    Image(ImageSpec),
}

impl DataSpec {
    /// Values per item: the width of the network's input.
    pub fn values(&self) -> i64 {
        match self {
            DataSpec::Image(s) => s.values(),
        }
    }

    /// "28x28 gray", "64x64 rgb".
    pub fn describe(&self) -> String {
        match self {
            DataSpec::Image(s) => format!("{}x{} {}", s.height, s.width, s.color),
        }
    }
}

/// One 8-bit image value in [0, 1], bit for bit as `data::to_unit_float` computes it on
/// tensors: the image kind's scaling, on the host.
pub fn unit(byte: u8) -> f32 {
    byte as f32 / 255.0
}

/// A value in [0, 1] as the nearest 8-bit level (out-of-range values clamp): the
/// inverse, for images written back out.
pub fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Images of one size and colour: the model's input and the conversion that makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub color: Color,
    pub height: i64,
    pub width: i64,
    /// How transparency is flattened before the colour conversion.
    pub background: Background,
}

impl ImageSpec {
    /// A grayscale spec of `height × width` composited onto white.
    pub fn gray(height: i64, width: i64) -> Self {
        ImageSpec { color: Color::Gray, height, width, background: Background::White }
    }

    pub fn channels(&self) -> i64 {
        self.color.channels()
    }

    /// Values per image: C·H·W.
    pub fn values(&self) -> i64 {
        self.channels() * self.height * self.width
    }

    /// The conversion that turns other image files into this spec's images.
    pub fn request(&self) -> ImageRequest {
        ImageRequest {
            color: ColorChoice::from(self.color),
            size: Some(Size { height: self.height as u32, width: self.width as u32 }),
            background: self.background,
        }
    }
}

/// An image size, written `HxW` (`--resize 64x64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Size {
    pub height: u32,
    pub width: u32,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected HEIGHTxWIDTH in pixels, e.g. 64x64, got '{s}'");
        let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |v: &str| v.trim().parse::<u32>().ok().filter(|&n| (1..=4096).contains(&n));
        match (side(h), side(w)) {
            (Some(height), Some(width)) => Ok(Size { height, width }),
            _ => Err(format!("{}; each side from 1 to 4096", bad())),
        }
    }
}

/// How image files are to be converted: what `load_split` is asked for. A run's flags
/// make one (`auto` colour, the images' own size); a trained run's spec makes a fixed
/// one, so any other files are converted the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageRequest {
    pub color: ColorChoice,
    /// Resize every image to this; `None`: the images' common size (mixed sizes refused).
    pub size: Option<Size>,
    pub background: Background,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("64x32".parse::<Size>().unwrap(), Size { height: 64, width: 32 });
        assert_eq!("7X9".parse::<Size>().unwrap().to_string(), "7x9");
        for bad in ["64", "0x4", "4x", "x4", "5000x5", "-1x4", "axb"] {
            assert!(bad.parse::<Size>().unwrap_err().contains("HEIGHTxWIDTH"), "{bad}");
        }
    }

    #[test]
    fn spec_json_names_its_kind_and_counts_values() {
        let spec = DataSpec::Image(ImageSpec { color: Color::Rgb, ..ImageSpec::gray(64, 32) });
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"image","color":"rgb","height":64,"width":32,"background":"white"}"#
        );
        assert_eq!(serde_json::from_str::<DataSpec>(&text).unwrap(), spec);
        assert_eq!(spec.values(), 3 * 64 * 32);
        assert_eq!(spec.describe(), "64x32 rgb");
        let DataSpec::Image(image) = spec;
        let req = image.request();
        assert_eq!(req.color, ColorChoice::Rgb);
        assert_eq!(req.size, Some(Size { height: 64, width: 32 }));
    }
}
