//! The C ABI of thresher: `libthresher.so` / `libthresher.a` and the header `include/thresher.h`
//! generated from `ffi` by cbindgen. This crate only translates: the library itself is
//! `thresher-core` (crates/thresher-core), whose public Rust API is all `ffi` can reach.

pub mod ffi;
