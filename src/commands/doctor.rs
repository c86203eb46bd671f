//! `ae-tch doctor`: what a user needs when something is off — versions, where libtorch
//! was loaded from, whether CUDA is usable and if not why, threads, data folders.

use crate::cli::DoctorArgs;
use crate::config::DEFAULT_DATA_DIR;
use crate::data::{fetch, IDX_FILES};
use crate::device::LIBTORCH_LIB;
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Cuda;

#[derive(Debug, Serialize)]
pub struct Report {
    pub ae_tch_version: String,
    pub tch_version: String,
    /// The libtorch the binary was built against (the wheel's version) and the folder
    /// it was linked from.
    pub libtorch_built: String,
    pub libtorch_build_folder: String,
    /// Where libtorch_cpu.so was actually loaded from in this process.
    pub libtorch_loaded_from: Option<String>,
    pub libtorch_cuda_loaded: bool,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    /// Name and memory of each GPU, from nvidia-smi when it is installed.
    pub gpus: Vec<String>,
    /// Why CUDA is not usable, when it is not.
    pub cuda_reason: Option<String>,
    pub threads: i32,
    pub cpus: usize,
    /// Whether every libtorch thread flushes subnormal numbers to zero (see `fpu`).
    pub denormals_flushed: bool,
    /// How libtorch's OpenMP threads wait, as this process's environment set it for
    /// libgomp (see `omp`): `GOMP_SPINCOUNT=…`, `OMP_WAIT_POLICY=…`, or libgomp's default.
    pub openmp_wait: String,
    /// The CPU's native bf16 arithmetic (`host::native_bf16`: AMX or AVX512-BF16).
    pub cpu_bf16: Option<String>,
    /// Whether that makes bf16 the convolutional networks' default precision on the CPU
    /// (AMX only: `NativeBf16::faster_than_fp32`).
    pub cpu_bf16_default: bool,
    /// The c10d backends data-parallel training (under torchrun) can use in this build.
    pub c10d_backends: Vec<String>,
    pub data_folders: Vec<DataFolder>,
}

#[derive(Debug, Serialize)]
pub struct DataFolder {
    pub path: PathBuf,
    /// The four IDX files, or "missing: ...".
    pub status: String,
}

pub fn run(args: DoctorArgs) -> Result<()> {
    let r = report();
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&r)? + "\n"));
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
    line("ae-tch", r.ae_tch_version.clone());
    line("tch", r.tch_version.clone());
    line("libtorch (built)", format!("{} from {}", r.libtorch_built, r.libtorch_build_folder));
    line("libtorch (loaded)", r.libtorch_loaded_from.clone().unwrap_or("unknown".into()));
    line("libtorch_cuda loaded", yes(r.libtorch_cuda_loaded).into());
    line("CUDA available", format!("{} ({} device(s))", yes(r.cuda_available), r.cuda_devices));
    line("cuDNN available", yes(r.cudnn_available).into());
    for gpu in &r.gpus {
        line("GPU", gpu.clone());
    }
    if let Some(why) = &r.cuda_reason {
        line("why no CUDA", why.clone());
    }
    line("threads", format!("{} (of {} CPUs)", r.threads, r.cpus));
    line("OpenMP waiting", r.openmp_wait.clone());
    line(
        "bf16 on the CPU",
        match &r.cpu_bf16 {
            Some(how) if r.cpu_bf16_default => {
                format!("native ({how}): conv networks train in bf16 on the CPU unless told")
            }
            Some(how) => format!(
                "native ({how}) but no faster than fp32 without AMX: every network trains \
                 in fp32 unless told"
            ),
            None => "not native: every network trains in fp32 unless told".into(),
        },
    );
    line(
        "denormals",
        if r.denormals_flushed {
            "flushed to zero on every libtorch thread".into()
        } else {
            "not flushed on every libtorch thread (slow arithmetic near zero)".into()
        },
    );
    line(
        "c10d backends",
        if r.c10d_backends.is_empty() {
            "none (built without gloo's headers: run scripts/setup.sh and rebuild)".into()
        } else {
            format!("{} (data-parallel training under torchrun)", r.c10d_backends.join(", "))
        },
    );
    for d in &r.data_folders {
        line("data", format!("{}: {}", d.path.display(), d.status));
    }
    super::print(&out)
}

pub fn report() -> Report {
    let bf16 = crate::host::native_bf16();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let loaded = |lib: &str| {
        maps.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| Path::new(p).file_name().is_some_and(|f| f == lib))
            .map(str::to_string)
    };
    let libtorch_cuda_loaded = loaded("libtorch_cuda.so").is_some();
    let cuda_devices = Cuda::device_count();
    let cuda_available = Cuda::is_available();
    let cuda_reason = (!cuda_available).then(|| {
        if !libtorch_cuda_loaded {
            "libtorch_cuda.so is not loaded: this libtorch is a CPU-only build, or the binary \
             was linked without it"
                .to_string()
        } else if !Path::new("/dev/nvidiactl").exists() && !Path::new("/dev/nvidia0").exists() {
            "no NVIDIA device nodes (/dev/nvidia*): this machine (or container) has no GPU \
             passed through"
                .to_string()
        } else if loaded("libcuda.so.1").is_none() {
            "the NVIDIA driver library libcuda.so.1 was not found or not loaded; check the \
             driver installation and LD_LIBRARY_PATH"
                .to_string()
        } else {
            "the driver is present but reports no usable device (driver older than CUDA 13?)"
                .to_string()
        }
    });
    let gpus = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
        .unwrap_or_default();
    Report {
        ae_tch_version: env!("CARGO_PKG_VERSION").to_string(),
        tch_version: "0.24.0".to_string(),
        libtorch_built: option_env!("AE_TCH_LIBTORCH_BUILT").unwrap_or("unknown").to_string(),
        libtorch_build_folder: LIBTORCH_LIB.to_string(),
        libtorch_loaded_from: loaded("libtorch_cpu.so")
            .map(|p| Path::new(&p).parent().map_or(p.clone(), |d| d.display().to_string())),
        libtorch_cuda_loaded,
        cuda_available,
        cuda_devices,
        cudnn_available: Cuda::cudnn_is_available(),
        gpus,
        cuda_reason,
        threads: tch::get_num_threads(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        denormals_flushed: crate::fpu::denormal_share() == 0.0,
        openmp_wait: crate::omp::wait_setting(),
        cpu_bf16: bf16.map(|n| n.name().to_string()),
        cpu_bf16_default: bf16.is_some_and(|n| n.faster_than_fp32()),
        c10d_backends: [("gloo", crate::dist::has_gloo()), ("nccl", crate::dist::has_nccl())]
            .iter()
            .filter(|b| b.1)
            .map(|b| b.0.to_string())
            .collect(),
        data_folders: data_folders(),
    }
}

/// The embedded data/mnist and the folders `data fetch` fills, under the working
/// directory and the checkout.
fn data_folders() -> Vec<DataFolder> {
    let roots = [PathBuf::from("."), PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    data_folders_under(&roots)
}

/// The data folders under `roots`, each listed once however it is reached (a `./data`
/// that links to the checkout's is the same folder).
fn data_folders_under(roots: &[PathBuf]) -> Vec<DataFolder> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for root in roots {
        for name in [DEFAULT_DATA_DIR, fetch::MNIST.default_dir, fetch::FASHION_MNIST.default_dir] {
            let path = root.join(name);
            if !path.is_dir() || !seen.insert(std::fs::canonicalize(&path).unwrap_or(path.clone()))
            {
                continue;
            }
            let missing: Vec<&str> = IDX_FILES
                .iter()
                .filter(|f| !path.join(f).is_file() && !path.join(format!("{f}.gz")).is_file())
                .copied()
                .collect();
            let status = if missing.is_empty() {
                "the four IDX files".to_string()
            } else {
                format!("missing {}", missing.join(", "))
            };
            out.push(DataFolder { path, status });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `./data` linking to the checkout's data: each folder once (it was listed twice).
    #[test]
    fn a_data_folder_reached_through_a_link_is_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        std::fs::create_dir_all(checkout.join(DEFAULT_DATA_DIR)).unwrap();
        let elsewhere = dir.path().join("work");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(checkout.join("data"), elsewhere.join("data")).unwrap();
        let found = data_folders_under(&[elsewhere.clone(), checkout.clone()]);
        assert_eq!(found.len(), 1, "{:?}", found.iter().map(|f| &f.path).collect::<Vec<_>>());
        assert_eq!(found[0].path, elsewhere.join(DEFAULT_DATA_DIR));
    }
}
