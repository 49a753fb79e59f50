//! Small helpers shared across the crate, each in one place: atomic file writes, the FNV digest,
//! a prefetch hint, and the text of a caught panic.

mod atomic_write;
mod fnv;
mod panic;
mod prefetch;

pub use atomic_write::write_atomic;
pub use fnv::Fnv;
pub use panic::panic_text;
pub(crate) use prefetch::prefetch;
