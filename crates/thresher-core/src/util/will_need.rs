//! Asking the kernel to read part of a file into the page cache in the background
//! (`posix_fadvise(POSIX_FADV_WILLNEED)`), and asking whether it is there already: the
//! read-ahead along the plan (config `io_depth`).

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

/// Whether the byte of `file` at `offset` is in the page cache: a one-byte read that the kernel
/// refuses rather than wait for the disk (`preadv2` with `RWF_NOWAIT`). False when it cannot
/// tell (a kernel or file system without `RWF_NOWAIT`, an error) and for an offset at or past
/// the end (a read of nothing says nothing).
pub(crate) fn is_cached(file: &File, offset: u64) -> bool {
    let Ok(offset) = libc::off_t::try_from(offset) else {
        return false;
    };
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: one iovec over a live one-byte buffer; a valid open descriptor.
    let got = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    got == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_just_written_is_cached_and_its_end_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let f = File::open(&path).unwrap();
        // Written through the page cache a moment ago, so its pages are there; unless this
        // kernel or file system cannot say (then `is_cached` is false, which is safe).
        if !is_cached(&f, 0) {
            let e = std::io::Error::last_os_error().raw_os_error();
            assert!(
                matches!(
                    e,
                    Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENOSYS)
                ),
                "{e:?}"
            );
            return;
        }
        assert!(!is_cached(&f, 3), "past the end there is nothing to find");
        will_need(&f, 0, 3);
        will_need(&f, u64::MAX, 1);
    }
}
