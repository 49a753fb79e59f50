//! What the tests of the C ABI share: the calling thread's last error message as a `String`,
//! and `thresher_loader_new` from a config string.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};

use thresher::ffi::*;

/// `thresher_last_error` of this thread (empty when there is none).
pub fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    unsafe { thresher_last_error(buf.as_mut_ptr(), buf.len()) };
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// `thresher_loader_new(config)`: the status and the loader (NULL unless it succeeded).
pub fn new(config: &str) -> (thresher_status, *mut thresher_loader) {
    let c = CString::new(config).unwrap();
    let mut l = std::ptr::null_mut();
    let st = unsafe { thresher_loader_new(c.as_ptr(), &mut l) };
    (st, l)
}
