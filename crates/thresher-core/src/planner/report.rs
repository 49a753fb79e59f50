//! What the Planner tells about an epoch: `EpochInfo` (the plan, known before its first batch),
//! `EpochReport` (the plan's numbers and what the epoch cost, one JSON line per epoch in the
//! config's `report` file) and `Digest` (what ranks compare). docs/policies.md, "The epoch
//! report", says what each field means.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// What `epoch_info` reports: the current epoch's plan (or the next one's, made on the spot,
/// when the previous epoch has ended).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochInfo {
    pub epoch: u64,
    pub batches: u64,
    pub samples: u64,
    pub dataset_len: u64,
    /// 1 − samples / dataset_len.
    pub prune_fraction: f64,
    /// Batches of this epoch already delivered.
    pub delivered: u64,
    /// Time the consumer has spent waiting for a batch in this epoch (zero when nothing loads
    /// the data: a Planner on its own).
    pub consumer_wait: Duration,
}

/// The epoch report: the plan's numbers and what the epoch cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct EpochReport {
    pub epoch: u64,
    /// Samples the plan delivers this epoch over all ranks: after `drop_last`, padding not
    /// counted; samples skipped under `on_error: "skip"` still count.
    pub samples: u64,
    pub dataset_len: u64,
    /// Realised fraction pruned this epoch: 1 − samples / N.
    pub prune_fraction: f64,
    /// Cumulative fraction of sample-visits saved against full data over epochs 0..=epoch.
    pub saved_fraction: f64,
    /// Mean loss weight of the policy's selection (before `drop_last` truncation).
    pub mean_weight: f64,
    /// Mean and standard deviation of the policy's score over seen samples (NaN/null when the
    /// policy has none).
    pub score_mean: f64,
    pub score_std: f64,
    /// Fraction of the epoch's kept samples that look unlearnable (wrong at each of their last
    /// `guard_window` correctness reports) when the plan was made; NaN for policies without
    /// the noise guard's streaks or when no correctness was reported.
    pub unlearnable_fraction: f64,
    pub batches: u64,
    pub delivered: u64,
    /// Seconds the consumer waited for batches this epoch.
    pub consumer_wait_s: f64,
    /// Seconds the workers spent filling batches this epoch (summed over workers).
    pub worker_busy_s: f64,
    /// Samples dropped this epoch under `on_error: "skip"` (counted as workers meet them, so
    /// mid-epoch it includes prefetched batches). `Loader::skipped_samples` lists them.
    pub skipped: u64,
}

/// What `digest` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The epoch of the plan digested.
    pub epoch: u64,
    /// FNV-1a 64 of the epoch and the global order with its weights.
    pub plan: u64,
    /// FNV-1a 64 of the ScoreBook and the policy's state.
    pub scores: u64,
}

/// The config's `report` file, opened (append) when the Planner is made so a bad path fails
/// early. One JSON object per line, one line per epoch.
pub(crate) struct ReportFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl ReportFile {
    pub(crate) fn open(path: &Path) -> Result<ReportFile> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let ctx = |e: std::io::Error| Error::io(path, &e).context("config key `report`");
        // Non-blocking for the open: opening a FIFO without a reader for writing would block
        // forever; so it fails at once instead (ENXIO). Writes then block as usual.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(ctx)?;
        // SAFETY: fcntl on a descriptor this function owns.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        if flags < 0
            || unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) }
                < 0
        {
            return Err(ctx(std::io::Error::last_os_error()));
        }
        Ok(ReportFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends `report` as one line, with `extra` fields merged in (the loader's skipped
    /// samples).
    pub(crate) fn append(
        &self,
        report: &EpochReport,
        extra: Option<(&str, serde_json::Value)>,
    ) -> Result<()> {
        let mut value = serde_json::to_value(report).expect("a report serialises");
        if let Some((key, v)) = extra {
            value[key] = v;
        }
        let mut line = value.to_string();
        line.push('\n');
        self.file
            .lock()
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.path, &e))
    }
}
