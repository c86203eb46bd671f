//! Turns a `DeviceSpec` into a libtorch device, refusing what this machine cannot do.

use crate::config::DeviceSpec;
use crate::invalid::Invalid;
use anyhow::Result;
use tch::{Cuda, Device};

/// Folder libtorch was linked from at build time (empty when unknown).
pub const LIBTORCH_LIB: &str = match option_env!("AE_TCH_LIBTORCH_LIB") {
    Some(p) => p,
    None => "",
};

pub fn resolve(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(index) => {
            let count = Cuda::device_count().max(0) as usize;
            if count == 0 {
                let problem = format!(
                    "{spec}: CUDA is not available (libtorch from {} sees no CUDA device); use \
                     {{device}} cpu",
                    if LIBTORCH_LIB.is_empty() { "an unknown folder" } else { LIBTORCH_LIB }
                );
                return Err(Invalid::of("device", problem).into());
            }
            if index >= count {
                let problem =
                    format!("{spec}: this machine has {count} CUDA device(s), numbered from 0");
                return Err(Invalid::of("device", problem).into());
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Applies `--threads` (libtorch's intra-op thread count).
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    match threads {
        None => Ok(()),
        Some(0) => Err(Invalid::of("threads", "must be at least 1").as_usage().into()),
        Some(n) => {
            tch::set_num_threads(n.min(i32::MAX as usize) as i32);
            Ok(())
        }
    }
}
