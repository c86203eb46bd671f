//! What every figure shares: the output format, the embedded font, the legend, a padded
//! axis range, and the rendering of a `Figure` to PNG or SVG bytes.

use anyhow::{anyhow, bail, Result};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, embedded so text renders the same on a machine with no fonts installed.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the embedded font is registered under.
pub const FAMILY: &str = "sans-serif";

/// A tick's label: the value to six decimals at most, without trailing zeros, and never
/// "-0" (a tick at -1e-17, as a range's steps produce, is 0).
pub fn tick(v: &f64) -> String {
    // Rounded to 6 decimals where that cannot overflow (a value past 1e12 is whole anyway).
    let rounded = if v.abs() < 1e12 { (v * 1e6).round() / 1e6 } else { *v };
    if rounded == 0.0 {
        "0".into()
    } else {
        format!("{rounded}")
    }
}

/// The width in pixels of `text` in the embedded font at `size` points (an estimate from
/// the average glyph when the font cannot measure it): figures are made at least as wide
/// as their titles, so no title is cut.
pub fn text_width(text: &str, size: u32) -> u32 {
    register_font();
    let font: FontDesc = (FAMILY, size as f64).into_font();
    font.box_size(text).map_or((text.chars().count() as u32 * size * 3).div_ceil(5), |(w, _)| w)
}

/// Registers the embedded font with plotters, once per process.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would show as missing text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Output encodings, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format a file name asks for: `.png` or `.svg`, in any case.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => bail!(
                "{}: unsupported plot format, expected a .png or .svg file name",
                path.display()
            ),
        }
    }
}

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on `root`, which has `size()` pixels.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// A plotters error as ours.
pub fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// The legend every chart uses: upper right, framed, on a translucent white ground.
pub fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

/// `fig` drawn and encoded as `format`.
pub fn render(fig: &impl Figure, format: Format) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = fig.size();
    match format {
        Format::Png => {
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                fig.draw(&root)?;
                root.present().map_err(plot_err)?;
            }
            let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| anyhow!("bad buffer"))?;
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png)?;
            Ok(png.into_inner())
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                fig.draw(&root)?;
                root.present().map_err(plot_err)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// `(min, max)` of finite values, widened by 5% (and never empty).
pub fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
    let pad = ((hi - lo) * 0.05).max(1e-9);
    lo - pad..hi + pad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::from_path(Path::new("b.svg")).unwrap(), Format::Svg);
        assert!(Format::from_path(Path::new("b.jpg"))
            .unwrap_err()
            .to_string()
            .contains(".png or .svg"));
    }
}
