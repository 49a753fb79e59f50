//! Asking the kernel to read part of a file into the page cache in the background
//! (`posix_fadvise(POSIX_FADV_WILLNEED)`): the read-ahead along the plan (config `io_depth`).

use std::fs::File;
use std::os::unix::io::AsRawFd;

/// Starts reading `len` bytes of `file` from `offset` into the page cache and returns without
/// waiting for them. A hint: errors are ignored (the real read meets them).
pub(crate) fn will_need(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: a valid open descriptor; the call only schedules reads into the page cache.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}
