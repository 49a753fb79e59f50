//! Read-ahead along the plan (config `io_depth`): a few I/O threads walk the epoch's plan, in
//! plan order and ahead of the workers, and tell the source which samples will be read soon
//! (`Source::will_read`). A source that reads a file per sample opens it and asks the kernel to
//! bring its bytes into the page cache (`posix_fadvise(WILLNEED)`), so when a worker reaches the
//! sample its open and read find everything cached. On a cold dataset those reads are bound by
//! latency, not bandwidth: the I/O depth is then what sets the pace, and these threads make it
//! independent of the number of decode workers.
//!
//! A hint changes only *when* bytes come from the disk, never which samples are read, in what
//! batch or with what result: the workers read and decode exactly as without it, so every error
//! (a missing, corrupt or special file) is still met — and reported, or skipped — by the worker,
//! naming the sample and its path. A hint's own failure is ignored.
//!
//! On cached data the hints are wasted work (an open each), so a thread that finds 64 samples
//! in a row cached already hints only one claimed sample in 8 from then on, until one of those
//! probes finds a sample that is not (the data has gone cold: a new part of the dataset, or
//! memory pressure), and it hints every sample again.
//!
//! Bounds: the threads hint only samples of batches the workers may claim (`prefetch` ahead of
//! the consumer) and one batch more, so what they bring into the page cache is at most
//! `(prefetch + 1) × batch_size` files of at most the source's `max_bytes` each; nothing is
//! allocated per sample. They check the shutdown flag between samples and are stopped with the
//! workers when the loader is dropped (and detached after the same wait if stuck in an open).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::pipeline::Shared;
use crate::plan::Plan;

/// Where the I/O threads are in the plan, shared by them.
#[derive(Default)]
pub(super) struct ReadAhead {
    cursor: Mutex<Cursor>,
    /// Signalled when the consumer takes a batch (the window moves), an epoch begins, or the
    /// loader shuts down.
    moved: Condvar,
}

#[derive(Default)]
struct Cursor {
    /// The epoch the position is in; a new plan restarts the walk at the consumer's batch.
    epoch: Option<u64>,
    /// The next sample to hint: batch `k`, entry `j`.
    k: usize,
    j: usize,
    /// Counts `wake` calls, so a thread that looked at the window before a move does not sleep
    /// through it.
    moves: u64,
}

/// After this many hints in a row found their sample cached, a thread only probes.
const WARM_STREAK: u32 = 64;
/// While probing, a thread hints one claimed sample in this many.
const PROBE_EVERY: u32 = 8;

/// One I/O thread's view of whether the data is cached already (see the module's comment).
#[derive(Default)]
struct Backoff {
    /// Hints in a row that found their sample cached.
    streak: u32,
    /// Claimed samples passed over since the last probe.
    passed: u32,
}

impl Backoff {
    /// Whether to hint the sample just claimed.
    fn hint(&mut self) -> bool {
        if self.streak < WARM_STREAK {
            return true;
        }
        self.passed += 1;
        if self.passed < PROBE_EVERY {
            return false;
        }
        self.passed = 0;
        true
    }

    /// What a hint found.
    fn found(&mut self, cached: bool) {
        self.streak = if cached {
            self.streak.saturating_add(1)
        } else {
            0
        };
    }
}

/// The longest a waiting I/O thread sleeps before it looks at the plan again, in case a move
/// was signalled while it was not yet waiting (a belt to the `moves` count's braces).
const RECHECK: Duration = Duration::from_millis(50);

impl ReadAhead {
    /// The window has moved (or the loader is shutting down): waiting I/O threads look again.
    pub(super) fn wake(&self) {
        let mut c = self.cursor.lock();
        c.moves = c.moves.wrapping_add(1);
        self.moved.notify_all();
    }
}

impl Shared {
    /// An I/O thread's body: claim the next sample of the read-ahead window in plan order, hint
    /// it to the source, until shutdown.
    pub(super) fn read_ahead(&self) {
        let ra = &self.readahead;
        let mut backoff = Backoff::default();
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            let moves = ra.cursor.lock().moves;
            // The plan under way and the consumer's position in it. Taken under the state lock
            // alone (never with the cursor's: `next` takes state, then calls `wake`).
            // Once the epoch's last batch is out, the next epoch's plan (made ahead, see
            // `plan_ahead`) is the one the workers fill.
            let view = {
                let state = self.state.lock();
                let job = match (&state.job, &state.ahead) {
                    (Some(job), Some(ahead)) if job.delivered == job.plan.batches() => Some(ahead),
                    (None, ahead) => ahead.as_ref(),
                    (job, _) => job.as_ref(),
                };
                job.map(|job| (Arc::clone(&job.plan), job.delivered))
            };
            let claimed = view.as_ref().and_then(|(plan, delivered)| {
                let mut c = ra.cursor.lock();
                claim(&mut c, plan, *delivered, self.prefetch + 1)
            });
            match (claimed, view) {
                (Some((k, j)), Some((plan, _))) => {
                    if backoff.hint() {
                        let (id, _, _) = plan.entry(k, j);
                        backoff.found(self.source.will_read(id as usize));
                    }
                }
                _ => {
                    let mut c = ra.cursor.lock();
                    if c.moves == moves && !self.shutdown.load(Ordering::Acquire) {
                        ra.moved.wait_for(&mut c, RECHECK);
                    }
                }
            }
        }
    }
}

/// The next sample to hint in `plan`, whose batch `delivered` is the consumer's next, looking at
/// most `window` batches ahead of it; `None` when the window is done.
fn claim(c: &mut Cursor, plan: &Plan, delivered: usize, window: usize) -> Option<(usize, usize)> {
    if c.epoch != Some(plan.epoch) {
        *c = Cursor {
            epoch: Some(plan.epoch),
            k: delivered,
            j: 0,
            moves: c.moves,
        };
    }
    // Batches the consumer has already taken are not worth reading.
    if c.k < delivered {
        (c.k, c.j) = (delivered, 0);
    }
    let end = plan.batches().min(delivered.saturating_add(window));
    while c.k < end && c.j >= plan.batch_len(c.k) {
        (c.k, c.j) = (c.k + 1, 0);
    }
    if c.k >= end {
        return None;
    }
    let at = (c.k, c.j);
    c.j += 1;
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanOptions;

    fn plan(epoch: u64, n: u64, batch_size: usize) -> Plan {
        let opts = PlanOptions {
            seed: 0,
            shuffle: false,
            batch_size,
            drop_last: false,
            rank: 0,
            world_size: 1,
        };
        let ids: Vec<u64> = (0..n).collect();
        let weights = vec![1.0; ids.len()];
        Plan::from_global(epoch, ids, weights, &opts, n as usize, 0)
    }

    #[test]
    fn cached_data_is_only_probed_and_a_cold_probe_hints_everything_again() {
        let mut b = Backoff::default();
        for _ in 0..WARM_STREAK {
            assert!(b.hint());
            b.found(true);
        }
        // Warm: one sample in PROBE_EVERY is hinted.
        let hinted = (0..10 * PROBE_EVERY).filter(|_| b.hint()).count();
        assert_eq!(hinted, 10);
        // A probe finds a cold sample: every sample is hinted again.
        while !b.hint() {}
        b.found(false);
        assert!((0..3 * PROBE_EVERY).all(|_| b.hint()));
        // Cached hints not all in a row do not make a streak.
        let mut b = Backoff::default();
        for i in 0..10 * WARM_STREAK {
            assert!(b.hint());
            b.found(i % WARM_STREAK != 0);
        }
    }

    #[test]
    fn claims_walk_the_plan_in_order_within_the_window() {
        // 10 ids in batches of 4: 4, 4, 2.
        let p = plan(7, 10, 4);
        let mut c = Cursor::default();
        let mut got = Vec::new();
        while let Some(at) = claim(&mut c, &p, 0, 2) {
            got.push(at);
        }
        let want: Vec<_> = (0..2).flat_map(|k| (0..4).map(move |j| (k, j))).collect();
        assert_eq!(got, want, "two batches ahead of the consumer at most");
        // The consumer takes batch 0: one more batch opens, the short last one.
        assert_eq!(claim(&mut c, &p, 1, 2), Some((2, 0)));
        assert_eq!(claim(&mut c, &p, 1, 2), Some((2, 1)));
        assert_eq!(claim(&mut c, &p, 1, 2), None, "the plan has ended");
    }

    #[test]
    fn a_new_epoch_or_a_consumer_ahead_restarts_at_the_consumer() {
        let p = plan(0, 12, 4);
        let mut c = Cursor::default();
        assert_eq!(claim(&mut c, &p, 0, 1), Some((0, 0)));
        // The consumer is at batch 2 already: batches 0 and 1 are skipped.
        assert_eq!(claim(&mut c, &p, 2, 1), Some((2, 0)));
        let next = plan(1, 12, 4);
        assert_eq!(
            claim(&mut c, &next, 0, 1),
            Some((0, 0)),
            "epoch 1 starts over"
        );
    }
}
