//! Small helpers shared across the crate, each in one place: atomic file writes, opening only
//! regular files, bounded reads of state files, the FNV digest, prefetch hints (memory and page
//! cache), the text of a caught panic, and `widest!` (a loop compiled for the widest vector
//! unit the CPU has).

mod atomic_write;
mod fnv;
pub(crate) mod huge;
mod open_regular;
mod panic;
mod prefetch;
mod read_bounded;
mod widest;
mod will_need;

pub use atomic_write::write_atomic;
pub use fnv::Fnv;
pub use open_regular::open_regular;
pub use panic::panic_text;
pub(crate) use prefetch::prefetch;
pub use read_bounded::read_bounded;
pub(crate) use widest::widest;
pub(crate) use will_need::{is_cached, will_need};
