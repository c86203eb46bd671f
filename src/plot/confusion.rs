//! Confusion matrices: true classes down, predicted across, cells shaded by their share
//! of the true class's rows.

use super::figure::{plot_err, render, text_width, Figure, Format, FAMILY};
use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A confusion matrix: `counts[t * n + p]` test rows of true class `t` predicted as `p`.
struct Confusion<'a> {
    counts: &'a [u64],
    names: &'a [String],
    title: &'a str,
}

/// Cell size and the margin for class names, in pixels.
const CELL: u32 = 44;
const NAME_W: u32 = 130;

/// The confusion matrix of `names.len()` classes, rows the true class and columns the
/// predicted one, each cell shaded by its share of the row and labelled with its count.
pub fn confusion_matrix(
    counts: &[u64],
    names: &[String],
    title: &str,
    format: Format,
) -> Result<Vec<u8>> {
    let n = names.len();
    if n == 0 || counts.len() != n * n {
        bail!("a confusion matrix needs n × n counts for n classes");
    }
    render(&Confusion { counts, names, title }, format)
}

impl Figure for Confusion<'_> {
    fn size(&self) -> (u32, u32) {
        let n = self.names.len() as u32;
        let title = text_width(self.title, 18) + 20;
        ((NAME_W + n * CELL + 20).max(title), 60 + NAME_W + n * CELL)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let n = self.names.len();
        let text = |size| TextStyle::from((FAMILY, size).into_font()).color(&BLACK);
        root.draw_text(self.title, &text(18), (10, 10)).map_err(plot_err)?;
        let (x0, y0) = (NAME_W as i32, 60 + NAME_W as i32);
        root.draw_text("predicted →", &text(14), (x0, 36)).map_err(plot_err)?;
        root.draw_text("true ↓", &text(14), (10, y0 - 20)).map_err(plot_err)?;
        for (i, name) in self.names.iter().enumerate() {
            let short: String = name.chars().take(14).collect();
            let at = i as i32 * CELL as i32;
            root.draw_text(&short, &text(13), (8, y0 + at + 14)).map_err(plot_err)?;
            let vertical = text(13).transform(FontTransform::Rotate270);
            root.draw_text(&short, &vertical, (x0 + at + 14, y0 - 6)).map_err(plot_err)?;
        }
        for t in 0..n {
            let row = &self.counts[t * n..(t + 1) * n];
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &c) in row.iter().enumerate() {
                let share = c as f64 / total;
                // White → blue by the share of the true class's rows.
                let colour = RGBColor(
                    (255.0 * (1.0 - 0.8 * share)) as u8,
                    (255.0 * (1.0 - 0.6 * share)) as u8,
                    255,
                );
                let (x, y) = (x0 + (p as u32 * CELL) as i32, y0 + (t as u32 * CELL) as i32);
                let cell = [(x, y), (x + CELL as i32 - 1, y + CELL as i32 - 1)];
                root.draw(&Rectangle::new(cell, colour.filled())).map_err(plot_err)?;
                let ink = if share > 0.6 { WHITE } else { BLACK };
                let style = TextStyle::from((FAMILY, 13).into_font()).color(&ink);
                root.draw_text(&c.to_string(), &style, (x + 6, y + 15)).map_err(plot_err)?;
            }
        }
        Ok(())
    }
}
