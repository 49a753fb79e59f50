//! Reading a whole state file whose size the caller can bound: only a regular file (a FIFO or
//! a device such as /dev/zero would block or never end), and only when its size is within the
//! bound the format implies — checked before a byte is read or allocated.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The bytes of the regular file `path`, at most `max` of them; `what` names the file's role
/// in errors (e.g. "checkpoint").
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let (mut file, meta) = open_regular(path, what)?;
    if meta.len() > max {
        return Err(Error::format(format!(
            "{}: not a usable {what}: {} bytes, more than the {max} a {what} of this size can hold",
            path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(meta.len() as usize)
        .map_err(|_| Error::format(format!("{}: {what} too large to load", path.display())))?;
    // `take`: a file that grew since the check still yields at most `max` bytes.
    (&mut file)
        .take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, &e))?;
    Ok(bytes)
}

/// Opens `path` for reading only when it is a regular file, with its metadata. The open is
/// non-blocking, so a FIFO is refused instead of waiting for a writer; the check is made on the
/// opened file (`fstat`), so what is read is what was checked.
pub fn open_regular(path: &Path, what: &str) -> Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, &e))?;
    if !meta.is_file() {
        return Err(Error::format(format!(
            "{}: not a usable {what}: not a regular file",
            path.display()
        )));
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused_before_reading() {
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "checkpoint").unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_bounded(dir.path(), 1 << 20, "checkpoint").unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 4096]).unwrap();
        let e = read_bounded(&big, 100, "checkpoint").unwrap_err();
        assert!(
            e.message().contains("4096 bytes") && e.message().contains("big"),
            "{e}"
        );
        assert_eq!(read_bounded(&big, 4096, "checkpoint").unwrap().len(), 4096);
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_bounded(&fifo, 1 << 20, "checkpoint").unwrap_err();
        assert!(e.message().contains("not a regular file"), "{e}");
    }
}
