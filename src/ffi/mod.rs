#![allow(non_camel_case_types)]
// Each entry point's safety contract (what may be NULL, how long pointers live) is written
// for C readers in its doc comment, which cbindgen copies into the header; a Rust-style
// "# Safety" heading there would only repeat it.
#![allow(clippy::missing_safety_doc)]
//! The C ABI: a thin translation of the Rust API. Every entry point is a plain
//! `extern "C" fn` (so cbindgen sees its signature) whose body runs inside `guard`, which
//! catches panics and turns errors into a status plus this thread's last-error message.
//! No logic lives here.

mod batch;
mod dlpack;
mod error;
mod loader;
mod plan;

pub use batch::*;
pub use dlpack::*;
pub use error::*;
pub use loader::*;
pub use plan::*;

use std::ffi::{c_char, CStr};

use thresher_core::{Error, Result};

/// The version of the C ABI this header describes. A breaking change bumps it.
pub const THRESHER_ABI_VERSION: u32 = 3;

// THRESHER_VERSION and its parts, from Cargo.toml (build.rs).
include!(concat!(env!("OUT_DIR"), "/version.rs"));

/// Returns THRESHER_ABI_VERSION of the library actually linked; compare it with the header's
/// macro to detect a mismatched library at run time. Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn thresher_abi_version() -> u32 {
    THRESHER_ABI_VERSION
}

/// Returns the library's version as a static NUL-terminated string such as "0.1.0" (equal to
/// THRESHER_VERSION). The string is owned by the library and valid forever; do not free it.
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn thresher_version() -> *const c_char {
    VERSION_C.as_ptr()
}

/// Turns a C string into &str, naming `what` on failure.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string (documented in the header).
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| Error::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// A slice from a C pointer and length; NULL is allowed only for length 0.
pub(crate) unsafe fn slice_arg<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL but len = {len}")));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::invalid(format!("{what}: len = {len} is too large")));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::invalid(format!("{what} is not aligned")));
    }
    // SAFETY: non-null, aligned, and the caller promises `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An out-parameter, checked for NULL before any work so that a refused call changes nothing,
/// and written once at the end, on success only (the header's "outputs are written only on
/// success").
pub(crate) struct OutPtr<T>(*mut T);

/// Checks the out-parameter `out` (named `what` in the error).
pub(crate) fn out_arg<T>(out: *mut T, what: &str) -> Result<OutPtr<T>> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    Ok(OutPtr(out))
}

impl<T> OutPtr<T> {
    /// Writes `value` through the pointer (not reading or dropping what was there: C memory).
    pub(crate) unsafe fn write(&self, value: T) {
        // SAFETY: non-NULL (checked by out_arg); the caller promises a writable, aligned T.
        unsafe { self.0.write(value) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_agree_with_cargo() {
        let v = super::THRESHER_VERSION;
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(v, thresher_core::VERSION);
        let c = unsafe { std::ffi::CStr::from_ptr(super::thresher_version()) };
        assert_eq!(c.to_str().unwrap(), v);
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(
            parts,
            [
                super::THRESHER_VERSION_MAJOR,
                super::THRESHER_VERSION_MINOR,
                super::THRESHER_VERSION_PATCH
            ]
        );
    }
}
