//! The crate's one error type. Every error carries the kind the C ABI maps to a status code and
//! a message that names its cause (the config key, the file path, the sample id, the index).

use std::fmt;

/// What went wrong, in the categories a caller can act on. Mirrors `thresher_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad argument or configuration value: fix the call.
    InvalidArgument,
    /// The operating system refused a read or write (missing file, permissions).
    Io,
    /// A file's bytes are not what its format promises (bad magic, truncated, lying header).
    Format,
    /// The call is not valid in the object's current state.
    State,
    /// A bug inside thresher panicked; the panic was caught.
    Panic,
}

/// An error with its kind and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn format(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Format, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::State, message)
    }
    /// An I/O error on `path`, keeping the OS's reason.
    pub fn io(path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{}: {}", path.display(), err))
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The same error with `context` put in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
