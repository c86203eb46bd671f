//! Figures rendered with plotters from plain slices (no tch, no data types here): loss
//! curves, scatters, score histograms, series with their step scores, image grids and
//! confusion matrices, as PNG or SVG bytes. Writing them to disk is the caller's job.
//! `figure` owns what every figure shares (the output format, the embedded font, the
//! legend, the rendering); each figure has its own file.

mod confusion;
mod figure;
mod grid;
mod histogram;
mod loss;
mod scatter;
mod series;

pub use confusion::confusion_matrix;
pub use figure::Format;
pub use grid::{image_grid, GridLayout, GridRow};
pub use histogram::{histogram, score_histogram};
pub use loss::{loss_chart, LossCurve};
pub use scatter::scatter;
pub use series::{series_scores, SeriesScores};
