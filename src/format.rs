//! The format version of a run folder's `model.json` and `checkpoint.ot`, at the bottom of
//! the crate so that the run store and the checkpoint both read it from here.

/// Version of the `model.json` and checkpoint layout; bumped when a field changes
/// meaning. 2: the model's input is a recorded data description (`model.input`) instead
/// of `model.height`/`model.width`; version 1 model.json files are migrated on reading.
/// 3: convolutional layers may have residual blocks, GroupNorm and resize upsampling, which
/// an older ae-tch would silently drop; version 2 files read unchanged (as plain conv).
/// 4: the input may be numeric vectors (`model.input.kind` "vector", with their scaling,
/// and `data.vectors`, how the file was read and split), whose test metrics have no PSNR
/// or SSIM; versions 2 and 3 read unchanged.
/// 5: a run may be a classifier (`finetune`: `model.head`, `train.finetune`,
/// `outcome.classification`, no `outcome.test`), which an older ae-tch would try to build
/// as an autoencoder; versions 2 to 4 read unchanged.
pub const FORMAT_VERSION: u32 = 5;
/// The oldest version read without migration.
pub const OLDEST_UNMIGRATED: u32 = 2;
