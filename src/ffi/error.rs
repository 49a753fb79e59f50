//! Status codes, the thread-local last-error message, and the panic fence every entry point
//! runs inside.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use thresher_core::{Error, ErrorKind};

/// The result of every fallible call. On anything but THRESHER_OK (and
/// THRESHER_END_OF_EPOCH, which is not an error), thresher_last_error() tells why.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum thresher_status {
    /// Success.
    THRESHER_OK = 0,
    /// thresher_loader_next: the epoch has no more batches; the next call starts the next epoch.
    THRESHER_END_OF_EPOCH = 1,
    /// A NULL pointer, a bad config key or value, or bad feedback. Nothing was changed.
    THRESHER_INVALID_ARGUMENT = 2,
    /// The operating system refused a read or write (the message names the path).
    THRESHER_IO = 3,
    /// A file is not in the format it claims (the message names the path, and the sample id
    /// when a sample failed).
    THRESHER_FORMAT = 4,
    /// The call is not valid in the object's current state.
    THRESHER_STATE = 5,
    /// thresher hit an internal bug; the panic was caught and the host is unharmed. Please
    /// report the message.
    THRESHER_PANIC = 6,
}

thread_local! {
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn set_last_error(message: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        // An interior NUL would cut the C string short; show it instead.
        e.extend(message.bytes().map(|b| if b == 0 { b'?' } else { b }));
    });
}

pub(crate) fn status_of(kind: ErrorKind) -> thresher_status {
    match kind {
        ErrorKind::InvalidArgument => thresher_status::THRESHER_INVALID_ARGUMENT,
        ErrorKind::Io => thresher_status::THRESHER_IO,
        ErrorKind::Format => thresher_status::THRESHER_FORMAT,
        ErrorKind::State => thresher_status::THRESHER_STATE,
        ErrorKind::Panic => thresher_status::THRESHER_PANIC,
    }
}

/// Records `err` as this thread's last error and returns its status.
pub(crate) fn fail(err: &Error) -> thresher_status {
    set_last_error(err.message());
    status_of(err.kind())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let mut what = thresher_core::util::panic_text(panic);
    if what.is_empty() {
        what = "unknown panic".into();
    }
    format!("internal error (panic caught at the C boundary): {what}")
}

/// Runs an entry point's body: errors become a status and a last-error message, panics become
/// THRESHER_PANIC. Nothing unwinds into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<thresher_status, Error>) -> thresher_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => fail(&e),
        Err(panic) => {
            set_last_error(&panic_message(&*panic));
            thresher_status::THRESHER_PANIC
        }
    }
}

/// Like `guard` for entry points that return a value rather than a status: `fallback` on panic.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(panic) => {
            set_last_error(&panic_message(&*panic));
            fallback
        }
    }
}

/// Copies this thread's last error message into `buf`.
///
/// The message describes the most recent call on this thread that failed (successful calls do
/// not clear it). At most `len - 1` bytes are copied, cut at a UTF-8 character boundary (so the
/// copy may be a few bytes shorter), and the copy is always NUL-terminated when `len > 0`; `buf` may be NULL when `len` is 0. Returns the message's full length in bytes
/// without the NUL, so a caller can size a buffer (call with len 0 first); 0 when no call on
/// this thread has failed. Thread-safe (each thread has its own message); never fails.
#[no_mangle]
pub unsafe extern "C" fn thresher_last_error(buf: *mut c_char, len: usize) -> usize {
    guard_value(0, || {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            if !buf.is_null() && len > 0 {
                // Cut on a character boundary: a truncated message stays valid UTF-8.
                let mut n = e.len().min(len - 1);
                while n < e.len() && n > 0 && (e[n] & 0xC0) == 0x80 {
                    n -= 1;
                }
                // SAFETY: the caller gives `len` writable bytes at `buf`.
                unsafe {
                    std::ptr::copy_nonoverlapping(e.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            e.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_copies_truncates_and_reports_length() {
        let st = guard(|| Err(Error::invalid("bad thing happened")));
        assert_eq!(st, thresher_status::THRESHER_INVALID_ARGUMENT);
        let mut buf = [1 as c_char; 4];
        let n = unsafe { thresher_last_error(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, 18);
        assert_eq!(buf.map(|c| c as u8), *b"bad\0");
        assert_eq!(unsafe { thresher_last_error(std::ptr::null_mut(), 0) }, 18);
    }

    #[test]
    fn truncation_never_cuts_a_character() {
        // "é" is two bytes and "€" three: every buffer size gives valid UTF-8.
        guard(|| Err(Error::invalid("é€ path: /tmp/données")));
        let full = unsafe { thresher_last_error(std::ptr::null_mut(), 0) };
        for len in 1..=full + 1 {
            let mut buf = vec![1 as c_char; len];
            unsafe { thresher_last_error(buf.as_mut_ptr(), len) };
            let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
            let text = msg
                .to_str()
                .unwrap_or_else(|_| panic!("len {len}: {msg:?}"));
            assert!(
                "é€ path: /tmp/données".starts_with(text),
                "len {len}: {text}"
            );
            assert!(
                text.len() + 4 > len.saturating_sub(1),
                "cut at most one character short"
            );
        }
    }

    #[test]
    fn panics_become_a_status() {
        let st = guard(|| panic!("boom"));
        assert_eq!(st, thresher_status::THRESHER_PANIC);
        let mut buf = [0 as c_char; 128];
        unsafe { thresher_last_error(buf.as_mut_ptr(), buf.len()) };
        let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert!(msg.to_str().unwrap().contains("boom"));
    }
}
