//! Build script of the reference trainer (the only crate that links libtorch). It gives the `thresher-train` binary an rpath to libtorch's lib directory so
//! the binary runs without LD_LIBRARY_PATH. torch-sys does publish that directory
//! (`cargo:libtorch_lib`), but Cargo hands such metadata (DEP_TCH_LIBTORCH_LIB) only to crates that
//! depend on torch-sys directly, and this crate depends on it through tch. So the directory is
//! found the way torch-sys itself finds it, from the same environment variables.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_USE_PYTORCH",
        "VIRTUAL_ENV",
        "THRESHER_TORCH_RPATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    match libtorch_lib_dir() {
        Ok(dir) if !dir.join("libtorch_cpu.so").exists() => println!(
            "cargo:warning=no libtorch_cpu.so in {}; thresher-train may need LD_LIBRARY_PATH",
            dir.display()
        ),
        Ok(dir) => {
            // Absolute: the binary is meant to run from target/ on the machine that built it.
            // torch's own libraries carry $ORIGIN-relative rpaths to their CUDA dependencies,
            // so this one entry is enough.
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", dir.display());
            // A CUDA build of torch registers its CUDA backend from libtorch_cuda.so's static
            // initialisers; no symbol of it is referenced, so the default --as-needed drops it
            // and torch reports no GPU. libtorch.so depends on libtorch_cuda.so, so linking
            // libtorch.so unconditionally keeps both (the fix tch-rs's own build.rs uses).
            if dir.join("libtorch_cuda.so").exists() {
                println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch,--as-needed");
            }
        }
        Err(why) => println!(
            "cargo:warning=thresher-train gets no rpath to libtorch ({why}); it will need \
             LD_LIBRARY_PATH at run time. Build with LIBTORCH_USE_PYTORCH=1 and the venv's python \
             on PATH, or set LIBTORCH / LIBTORCH_LIB / THRESHER_TORCH_RPATH."
        ),
    }
}

/// The directory holding libtorch_cpu.so, looked up in torch-sys's order of precedence.
fn libtorch_lib_dir() -> Result<PathBuf, String> {
    // An explicit override first (e.g. for a relocated install).
    if let Some(dir) = env::var_os("THRESHER_TORCH_RPATH") {
        return Ok(PathBuf::from(dir));
    }
    // Only reachable if torch-sys ever becomes a direct dependency; cheap to honour.
    if let Some(dir) = env::var_os("DEP_TCH_LIBTORCH_LIB") {
        return Ok(PathBuf::from(dir));
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        // torch-sys runs `python` inside a virtualenv and `python3` otherwise; do the same so
        // both find the same torch.
        let python = if env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .map_err(|e| format!("could not run {python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{python} could not import torch: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        return Ok(dir);
    }
    if let Some(dir) = env::var_os("LIBTORCH_LIB") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = env::var_os("LIBTORCH") {
        return Ok(PathBuf::from(dir).join("lib"));
    }
    Err(
        "neither LIBTORCH_USE_PYTORCH nor LIBTORCH is set, so torch-sys downloaded libtorch \
         into its own OUT_DIR, which this script cannot see"
            .into(),
    )
}
