//! `DataRecord`: what a run records about the data it was trained on (`model.json`'s
//! `data`), read back to rebuild the same rows.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The data a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Absolute path of the data folder, or of the vector file.
    pub path: PathBuf,
    /// Training and validation rows (images or vectors).
    pub train_images: usize,
    pub val_images: usize,
    /// Vector data: how the file was read and split (absent for images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<crate::data::vectors::VectorSource>,
}
