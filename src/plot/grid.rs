//! Image grids: labelled rows of images (gray or RGB, values in [0, 1]) magnified into
//! cells, and the pixel geometry of that layout.

use super::figure::{plot_err, render, text_width, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The title's size in points.
const TITLE_SIZE: u32 = 20;

/// One labelled row of a grid: `images` holds `n` images of `C*H*W` values in [0, 1], each
/// its channel planes one after another (gray: one plane; RGB: red, green, blue).
#[derive(Clone, Debug)]
pub struct GridRow<'a> {
    pub label: &'a str,
    pub images: &'a [f32],
}

/// Pixel geometry of an image grid: a label column, then one cell per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridLayout {
    pub rows: u32,
    pub cols: u32,
    /// Width and height of one cell in output pixels.
    pub cell_w: u32,
    pub cell_h: u32,
    /// Output pixels per image pixel.
    pub scale: u32,
    pub label_w: u32,
    pub title_h: u32,
    pub pad: u32,
}

impl GridLayout {
    pub fn new(rows: u32, cols: u32, height: u32, width: u32) -> Self {
        // Small images are magnified so a 28x28 digit is 84 px; large ones are not.
        let scale = (84 / height.max(width)).clamp(1, 4);
        GridLayout {
            rows,
            cols,
            cell_w: width * scale,
            cell_h: height * scale,
            scale,
            label_w: 150,
            title_h: 36,
            pad: 4,
        }
    }

    /// Total size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            self.label_w + self.cols * (self.cell_w + self.pad) + self.pad,
            self.title_h + self.rows * (self.cell_h + self.pad) + self.pad,
        )
    }

    /// Top-left pixel of the cell at (`row`, `col`).
    pub fn origin(&self, row: u32, col: u32) -> (u32, u32) {
        (
            self.label_w + self.pad + col * (self.cell_w + self.pad),
            self.title_h + self.pad + row * (self.cell_h + self.pad),
        )
    }
}

/// A value in [0, 1] as a colour level 0..=255 (clamped, rounded), as images are stored.
fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The figure `image_grid` draws.
struct Grid<'a> {
    rows: &'a [GridRow<'a>],
    channels: usize,
    height: u32,
    width: u32,
    layout: GridLayout,
    title: &'a str,
}

/// Renders rows of images (e.g. clean / noisy / reconstruction) with their labels;
/// `(channels, height, width)` is the shape of one image, 1 or 3 channels.
pub fn image_grid(
    rows: &[GridRow<'_>],
    (channels, height, width): (usize, usize, usize),
    title: &str,
    format: Format,
) -> Result<Vec<u8>> {
    let pixels = channels * height * width;
    if rows.is_empty() || pixels == 0 {
        bail!("nothing to draw: no rows or empty images");
    }
    if channels != 1 && channels != 3 {
        bail!("images must have 1 or 3 channels to be drawn, got {channels}");
    }
    let cols = rows[0].images.len() / pixels;
    if cols == 0 || rows.iter().any(|r| r.images.len() != cols * pixels) {
        bail!("every grid row must hold the same number of {height}x{width} images");
    }
    let mut layout = GridLayout::new(rows.len() as u32, cols as u32, height as u32, width as u32);
    if rows.iter().all(|r| r.label.is_empty()) {
        layout.label_w = 0;
    }
    let grid = Grid { rows, channels, height: height as u32, width: width as u32, layout, title };
    render(&grid, format)
}

impl Figure for Grid<'_> {
    fn size(&self) -> (u32, u32) {
        let (w, h) = self.layout.size();
        let title = text_width(self.title, TITLE_SIZE) + self.layout.pad + 12;
        (w.max(title), h)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let l = &self.layout;
        root.fill(&WHITE).map_err(plot_err)?;
        let title_style = TextStyle::from((FAMILY, TITLE_SIZE).into_font()).color(&BLACK);
        root.draw_text(self.title, &title_style, (l.pad as i32 + 4, 8)).map_err(plot_err)?;
        let label_style = TextStyle::from((FAMILY, 16).into_font()).color(&BLACK);
        let area = (self.height * self.width) as usize;
        // Gray images read their one plane three times.
        let plane = |c: usize| if self.channels == 1 { 0 } else { c * area };
        for (r, row) in self.rows.iter().enumerate() {
            let (_, y) = l.origin(r as u32, 0);
            let text_y = (y + l.cell_h / 2) as i32 - 8;
            root.draw_text(row.label, &label_style, (8, text_y)).map_err(plot_err)?;
            for (c, image) in row.images.chunks_exact(self.channels * area).enumerate() {
                let (x0, y0) = l.origin(r as u32, c as u32);
                for p in 0..area {
                    let level = |c: usize| to_byte(image[plane(c) + p]);
                    let (px, py) = (p as u32 % self.width, p as u32 / self.width);
                    let x = (x0 + px * l.scale) as i32;
                    let y = (y0 + py * l.scale) as i32;
                    let s = l.scale as i32;
                    root.draw(&Rectangle::new(
                        [(x, y), (x + s, y + s)],
                        RGBColor(level(0), level(1), level(2)).filled(),
                    ))
                    .map_err(plot_err)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_clamped_and_rounded() {
        let levels = [-0.5, 0.0, 0.5, 1.0, 2.0].map(to_byte);
        assert_eq!(levels, [0, 0, 128, 255, 255]);
        assert_eq!(to_byte(1.0 / 255.0 * 0.49), 0);
        assert_eq!(to_byte(f32::NAN), 0);
    }

    #[test]
    fn grid_layout_cells_tile_without_overlap() {
        let l = GridLayout::new(3, 10, 28, 28);
        assert_eq!((l.scale, l.cell_w, l.cell_h), (3, 84, 84));
        assert_eq!(l.size(), (150 + 10 * 88 + 4, 36 + 3 * 88 + 4));
        assert_eq!(l.origin(0, 0), (154, 40));
        assert_eq!(l.origin(2, 9), (154 + 9 * 88, 40 + 2 * 88));
        // The last cell ends exactly one pad before the right and bottom edges.
        let (x, y) = l.origin(2, 9);
        assert_eq!((x + l.cell_w + l.pad, y + l.cell_h + l.pad), l.size());
        // Neighbouring cells are exactly one pad apart.
        assert_eq!(l.origin(0, 1).0 - (l.origin(0, 0).0 + l.cell_w), l.pad);
        assert_eq!(l.origin(1, 0).1 - (l.origin(0, 0).1 + l.cell_h), l.pad);
        // Large images are not magnified.
        assert_eq!(GridLayout::new(1, 1, 200, 100).scale, 1);
    }

    #[test]
    fn grid_png_has_the_layout_size_and_the_pixels() {
        let white = vec![1.0f32; 2 * 4];
        let black = vec![0.0f32; 2 * 4];
        let rows = [
            GridRow { label: "white", images: &white },
            GridRow { label: "black", images: &black },
        ];
        let png = image_grid(&rows, (1, 2, 2), "t", Format::Png).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let l = GridLayout::new(2, 2, 2, 2);
        assert_eq!(img.dimensions(), l.size());
        let (x, y) = l.origin(1, 1);
        assert_eq!(img.get_pixel(x, y).0, [0, 0, 0]);
        let (x, y) = l.origin(0, 1);
        assert_eq!(img.get_pixel(x + l.cell_w - 1, y + l.cell_h - 1).0, [255, 255, 255]);
        let err =
            image_grid(&[GridRow { label: "x", images: &[0.0; 3] }], (1, 2, 2), "t", Format::Png);
        assert!(err.is_err());
        // Colour: planes R, G, B of one 1×2 image: a red pixel, then a cyan one.
        let colour = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
        let png =
            image_grid(&[GridRow { label: "", images: &colour }], (3, 1, 2), "t", Format::Png)
                .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let mut l = GridLayout::new(1, 1, 1, 2);
        l.label_w = 0;
        let (x, y) = l.origin(0, 0);
        assert_eq!(img.get_pixel(x, y).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(x + l.scale, y).0, [0, 255, 255]);
        // A title wider than the images widens the sheet (it was cut at the right edge);
        // the cells stay where the layout puts them.
        let title =
            "The 2 highest-scoring 2x2 images, highest first (error: each image's own scale)";
        let png = image_grid(&rows, (1, 2, 2), title, Format::Png).unwrap();
        let (w, h) = image::load_from_memory(&png).unwrap().to_rgb8().dimensions();
        let l = GridLayout::new(2, 2, 2, 2);
        assert!(w >= text_width(title, TITLE_SIZE) && w > l.size().0 && h == l.size().1, "{w}x{h}");
        let wide = super::super::confusion_matrix(
            &[3, 1, 0, 4],
            &["a".into(), "b".into()],
            title,
            Format::Png,
        );
        let (w, _) = image::load_from_memory(&wide.unwrap()).unwrap().to_rgb8().dimensions();
        assert!(w > text_width(title, 18), "{w}");
    }
}
