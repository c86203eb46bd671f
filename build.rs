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
//! It also compiles csrc/script.cpp (TorchScript modules with several traced methods, for
//! `export -o model.pt`) against the same libtorch headers, with the cc crate.

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
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}

/// csrc/script.cpp against libtorch's headers (the folder beside `lib`), with the flags
/// torch-sys uses for its own shim.
fn compile_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/script.cpp");
    let include = lib.join("../include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/script.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false)
        .compile("aet_script");
}
