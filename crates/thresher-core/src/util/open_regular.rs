//! Opening a file thresher reads as data (a dataset file, a manifest, a shard, an encoded image,
//! a checkpoint): only a regular file is accepted. The open is non-blocking, because `open()` of
//! a FIFO without a writer blocks forever, and the type is then checked on the opened handle
//! (`fstat`), so a path swapped between a check and the open cannot slip through. A FIFO, a
//! socket, a device such as /dev/zero (which never ends) or a directory is refused with a
//! FORMAT error naming the path and what it is. Symbolic links are followed: the file they
//! lead to is what must be regular.

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The regular file `path`, opened for reading, and its size in bytes; `what` names the file's
/// role in errors (e.g. "image file", "CIFAR batch file").
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Only for the open: on a regular file O_NONBLOCK changes nothing, and anything else
        // is refused below before a byte is read.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, &e))?;
    let t = meta.file_type();
    if !t.is_file() {
        let is = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else {
            "a special file"
        };
        return Err(Error::format(format!(
            "{}: not a usable {what}: it is {is}, not a regular file",
            path.display()
        )));
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.jpg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, needle) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = open_regular(path, "image file").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Format, "{e}");
            assert!(
                e.message().contains(needle)
                    && e.message().contains(&path.display().to_string())
                    && e.message().contains("image file"),
                "{e}"
            );
        }
        let file = dir.path().join("x");
        std::fs::write(&file, b"abc").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(open_regular(&link, "image file").unwrap().1, 3);
        let e = open_regular(&dir.path().join("missing"), "image file").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
    }
}
