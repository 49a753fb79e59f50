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

/// The skipped samples of the current epoch, and of the next one when workers already fill it
/// (its plan made ahead) before the current one's report is written.
#[derive(Default)]
pub(super) struct SkipLog {
    epoch: u64,
    count: u64,
    samples: Vec<SkippedSample>,
    next: Option<Box<SkipLog>>,
}

impl SkipLog {
    /// An empty log for `epoch`.
    pub(super) fn for_epoch(epoch: u64) -> SkipLog {
        SkipLog {
            epoch,
            ..SkipLog::default()
        }
    }

    /// The log of `epoch` when it begins: what workers already met in it while it was the next
    /// epoch is kept.
    pub(super) fn begin(&mut self, epoch: u64) {
        *self = match self.next.take() {
            Some(next) if next.epoch == epoch => *next,
            _ => SkipLog::for_epoch(epoch),
        };
    }

    /// Records a skipped sample of the current epoch or the next (ignored for any other).
    pub(super) fn record(&mut self, sample: SkippedSample) {
        if sample.epoch == self.epoch + 1 {
            let epoch = sample.epoch;
            return self
                .next
                .get_or_insert_with(|| Box::new(SkipLog::for_epoch(epoch)))
                .record(sample);
        }
        if sample.epoch != self.epoch {
            return;
        }
        self.count += 1;
        if self.samples.len() < MAX_SKIP_RECORDS {
            self.samples.push(sample);
        }
    }

    /// Samples skipped in `epoch` (0 when the log holds neither it nor it as the next).
    pub(super) fn count(&self, epoch: u64) -> u64 {
        match &self.next {
            _ if self.epoch == epoch => self.count,
            Some(next) if next.epoch == epoch => next.count,
            _ => 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(epoch: u64, id: u64) -> SkippedSample {
        SkippedSample {
            epoch,
            id,
            location: None,
            reason: "bad".into(),
        }
    }

    #[test]
    fn the_next_epochs_skips_wait_for_it_without_touching_this_one() {
        let mut log = SkipLog::for_epoch(3);
        log.record(skipped(3, 7));
        log.record(skipped(4, 9));
        log.record(skipped(5, 1));
        log.record(skipped(2, 1));
        assert_eq!((log.count(3), log.count(4), log.count(5)), (1, 1, 0));
        assert_eq!(log.sorted(), vec![skipped(3, 7)]);
        assert!(log.report_value(3).is_some());
        log.begin(4);
        assert_eq!((log.count(3), log.count(4)), (0, 1));
        assert_eq!(log.sorted(), vec![skipped(4, 9)]);
        log.begin(6);
        assert_eq!((log.count(4), log.count(6)), (0, 0));
    }
}
