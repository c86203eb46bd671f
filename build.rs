//! Link settings for the `ae-tch` binary and tests.
//!
//! torch-sys compiles its C++ shim against libtorch but the flags it prints only reach its
//! own link; a downstream binary needs two more (see tch-rs' own build.rs):
//! - an rpath to libtorch's lib folder, so `target/release/ae-tch` runs with no
//!   LD_LIBRARY_PATH (torch-sys hands us the folder as DEP_TCH_LIBTORCH_LIB);
//! - `torch_cuda` linked with `--no-as-needed`: nothing in our code references a CUDA
//!   symbol, so an as-needed link drops the library and libtorch then reports no CUDA even
//!   on a GPU machine.
//!
//! It also compiles, against the same libtorch headers with the cc crate:
//! - csrc/script.cpp: TorchScript modules with several traced methods, for
//!   `export -o model.pt`, and csrc/parallel.cpp: libtorch's intra-op thread pool for
//!   the passes written in Rust (`host::parallel_for`);
//! - csrc/dist.cpp: c10d's TCPStore and Gloo process group for data-parallel training
//!   under torchrun. The wheel ships no gloo headers; scripts/setup.sh unpacks Debian's
//!   libgloo-dev into .cache/gloo (or set AE_TCH_GLOO_INCLUDE). Without them the binary
//!   builds without the backend (cfg `c10d` unset) and says so when asked to distribute.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!(
            "cargo:warning=torch-sys did not report libtorch's lib folder; run scripts/setup.sh"
        );
        return;
    };
    // Resolve the .venv/libtorch link so the rpath names the real folder.
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-env=AE_TCH_LIBTORCH_LIB={}", lib.display());
    // The wheel's version.py says which libtorch this binary was built against
    // (`ae-tch doctor` prints it next to the one it loads).
    let version = std::fs::read_to_string(lib.join("../version.py"))
        .ok()
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AE_TCH_LIBTORCH_BUILT={version}");
    compile_shim(&lib);
    compile_dist(&lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}

/// A C++ build against libtorch's headers (the folder beside `lib`), with the flags
/// torch-sys uses for its own shim.
fn libtorch_cpp(lib: &std::path::Path, file: &str) -> cc::Build {
    println!("cargo:rerun-if-changed={file}");
    let include = lib.join("../include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(file)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false);
    build
}

fn compile_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/guarded.h");
    println!("cargo:rerun-if-changed=csrc/parallel.cpp");
    println!("cargo:rerun-if-changed=csrc/group_norm.cpp");
    let mut build = libtorch_cpp(lib, "csrc/script.cpp");
    build.file("csrc/parallel.cpp").file("csrc/group_norm.cpp");
    // at::parallel_for splits through OpenMP pragmas in its header, so the shim is
    // compiled with OpenMP and linked to the wheel's own libgomp (same soname as the
    // system's: one runtime, one thread pool with libtorch). Without it the ranges run
    // one after the other.
    if lib.join("libgomp.so.1").exists() {
        build.flag("-fopenmp");
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim=libgomp.so.1");
    }
    build.compile("aet_script");
}

/// csrc/dist.cpp, when gloo's headers are at hand: AE_TCH_GLOO_INCLUDE, setup.sh's
/// .cache/gloo, or the system's (libgloo-dev installed).
fn compile_dist(lib: &std::path::Path) {
    println!("cargo:rustc-check-cfg=cfg(c10d)");
    println!("cargo:rerun-if-env-changed=AE_TCH_GLOO_INCLUDE");
    let local = PathBuf::from(".cache/gloo/include");
    // Watch where setup.sh will put the headers, so a build after it picks them up.
    for watched in [".cache/gloo", ".cache"] {
        if PathBuf::from(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
            break;
        }
    }
    let candidates = [
        std::env::var_os("AE_TCH_GLOO_INCLUDE").map(PathBuf::from),
        Some(local),
        Some(PathBuf::from("/usr/include")),
    ];
    let Some(gloo) = candidates.into_iter().flatten().find(|d| d.join("gloo/config.h").exists())
    else {
        println!(
            "cargo:warning=gloo headers not found: building without c10d (run scripts/setup.sh)"
        );
        return;
    };
    let mut build = libtorch_cpp(lib, "csrc/dist.cpp");
    build.include(gloo).define("USE_C10D_GLOO", None);
    // NCCL, for data-parallel training on GPUs: the wheel's libtorch_cuda carries it, and
    // the nvidia-* wheels beside torch carry the CUDA and NCCL headers (nvidia-cuda-crt
    // and nvidia-cuda-cccl, which setup.sh adds, complete the CUDA ones).
    let nvidia = lib.join("../../nvidia");
    let cuda = nvidia.join("cu13/include");
    let nccl = nvidia.join("nccl/include");
    for watched in [&cuda, &nccl] {
        if watched.is_dir() {
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
    let has_nccl = lib.join("libtorch_cuda.so").exists()
        && nccl.join("nccl.h").exists()
        && cuda.join("cuda_runtime_api.h").exists()
        && cuda.join("crt/host_defines.h").exists()
        && cuda.join("cccl").is_dir();
    if has_nccl {
        build
            .include(&cuda)
            .include(cuda.join("cccl"))
            .include(&nccl)
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .flag_if_supported("-Wno-interference-size");
        println!("cargo:rustc-cfg=c10d_nccl");
    }
    println!("cargo:rustc-check-cfg=cfg(c10d_nccl)");
    build.compile("aet_dist");
    println!("cargo:rustc-cfg=c10d");
}
