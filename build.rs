//! Build script of the C ABI crate: the library's version, from this manifest, as the constants
//! `ffi` exports (THRESHER_VERSION, its parts, and the C string `thresher_version` returns), so
//! the version is typed once, in Cargo.toml. The header's matching macros are written by the
//! header generator from the same manifest (tests/header.rs).

use std::env;
use std::path::Path;

fn main() {
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let part = |name: &str| -> u32 {
        env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not a number"))
    };
    let code = format!(
        "/// The library version, equal to Cargo.toml's (a test checks it).\n\
         pub const THRESHER_VERSION: &str = \"{version}\";\n\
         pub const THRESHER_VERSION_MAJOR: u32 = {};\n\
         pub const THRESHER_VERSION_MINOR: u32 = {};\n\
         pub const THRESHER_VERSION_PATCH: u32 = {};\n\
         static VERSION_C: &std::ffi::CStr = c\"{version}\";\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    );
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("version.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}
