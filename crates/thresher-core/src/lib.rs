//! thresher: a data loader that reads and decodes samples on its own threads, prefetches
//! minibatches in a deterministic order, takes per-sample feedback after every step, and prunes
//! each epoch from running importance scores. The Rust API below is the real API; `ffi` is the
//! C ABI's thin translation of it (see `include/thresher.h`).
//!
//! Data flows one way: `source` → `transform` (in `loader`'s workers) → `Batch` → trainer →
//! feedback → `scores` → `policy` → `plan` → `loader`.

mod batch;
mod codec;
pub mod config;
mod dtype;
mod error;
mod loader;
pub mod plan;
pub mod planner;
pub mod policy;
mod rng;
pub mod scorefile;
pub mod scores;
mod section;
mod sketch;
pub mod source;
pub mod transform;
pub mod util;

pub use batch::Batch;
pub use config::{Config, OnError, PlanAhead};
pub use dtype::{Dtype, TensorView, MAX_NDIM};
pub use error::{Error, ErrorKind, Result};
pub use loader::{Loader, SkippedSample};
pub use planner::{Digest, EpochInfo, EpochPlan, EpochReport, IndexBatch, Planner};
pub use rng::{Rng, Stream};
pub use scores::{Feedback, ScoreBook, ScoreFields};

/// The crate's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
