//! Reading a whole state file whose size the caller can bound: only a regular file (a FIFO or
//! a device such as /dev/zero would block or never end), and only when its size is within the
//! bound the format implies — checked before a byte is read or allocated.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The bytes of the regular file `path`, at most `max` of them; `what` names the file's role
/// in errors (e.g. "checkpoint").
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    // Non-blocking open, then fstat: a FIFO must not block the open itself.
    let (mut file, len) = super::open_regular(path, what)?;
    if len > max {
        return Err(Error::format(format!(
            "{}: not a usable {what}: {len} bytes, more than the {max} a {what} of this size can hold",
            path.display(),
        )));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len as usize)
        .map_err(|_| Error::format(format!("{}: {what} too large to load", path.display())))?;
    // `take`: a file that grew since the check still yields at most `max` bytes.
    (&mut file)
        .take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, &e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused_before_reading() {
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "checkpoint").unwrap_err();
        assert!(e.message().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_bounded(dir.path(), 1 << 20, "checkpoint").unwrap_err();
        assert!(e.message().contains("a directory"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 4096]).unwrap();
        let e = read_bounded(&big, 100, "checkpoint").unwrap_err();
        assert!(
            e.message().contains("4096 bytes") && e.message().contains("big"),
            "{e}"
        );
        assert_eq!(read_bounded(&big, 4096, "checkpoint").unwrap().len(), 4096);
    }
}
