//! The samples dropped under `on_error: "skip"`: counted exactly per epoch, the first
//! `MAX_SKIP_RECORDS` kept with their file and reason for `Loader::skipped_samples` and the
//! epoch's report line.

/// A sample dropped under `on_error: "skip"`: which, where from, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSample {
    pub epoch: u64,
    pub id: u64,
    /// The file (or `shard.tar:member`) it comes from; `None` for in-memory sources.
    pub location: Option<String>,
    /// The error that made it skip.
    pub reason: String,
}

/// At most this many skipped samples are kept per epoch (the count in the report is exact).
const MAX_SKIP_RECORDS: usize = 1000;

/// The skipped samples of the current epoch.
#[derive(Default)]
pub(super) struct SkipLog {
    epoch: u64,
    count: u64,
    samples: Vec<SkippedSample>,
}

impl SkipLog {
    /// An empty log for `epoch`.
    pub(super) fn for_epoch(epoch: u64) -> SkipLog {
        SkipLog {
            epoch,
            ..SkipLog::default()
        }
    }

    /// Records a skipped sample of `epoch` (ignored when the log has moved on to another).
    pub(super) fn record(&mut self, sample: SkippedSample) {
        if sample.epoch != self.epoch {
            return;
        }
        self.count += 1;
        if self.samples.len() < MAX_SKIP_RECORDS {
            self.samples.push(sample);
        }
    }

    /// Samples skipped in `epoch` (0 when the log holds another epoch).
    pub(super) fn count(&self, epoch: u64) -> u64 {
        if self.epoch == epoch {
            self.count
        } else {
            0
        }
    }

    /// The recorded samples, sorted by id.
    pub(super) fn sorted(&self) -> Vec<SkippedSample> {
        let mut v = self.samples.clone();
        v.sort_by_key(|s| s.id);
        v
    }

    /// The recorded samples of `epoch` as the report line's `skipped_samples` value; `None`
    /// when there are none.
    pub(super) fn report_value(&self, epoch: u64) -> Option<serde_json::Value> {
        if self.epoch != epoch || self.samples.is_empty() {
            return None;
        }
        Some(
            self.sorted()
                .iter()
                .map(
                    |s| serde_json::json!({"id": s.id, "location": s.location, "reason": s.reason}),
                )
                .collect(),
        )
    }
}
