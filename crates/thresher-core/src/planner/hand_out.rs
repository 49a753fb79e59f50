//! Handing out batches: one at a time (`next_batch`, and `hand_out` for the loader), counted
//! without building them (`advance`, `advance_by`), or this rank's whole epoch at once
//! (`epoch_plan`) for readers that schedule their own reads.

use std::sync::Arc;

use super::Planner;
use crate::error::{Error, Result};

/// This rank's whole epoch in one piece, for readers that schedule their own reads (DALI's
/// external source, FFCV's traversal order, a C++ reader with its own threads): the ids and
/// weights of batches 0.. in delivery order, padding (weight 0) last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochPlan {
    pub epoch: u64,
    /// Batches on this rank; `batch_size` consecutive entries make one (the last may be short).
    pub batches: usize,
    pub batch_size: usize,
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    /// Trailing entries that are padding.
    pub padding: usize,
}

/// One batch of a Planner driven on its own: ids, loss weights, and how many trailing entries
/// are padding (weight 0, repeated ids that make every rank's batch count equal).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexBatch {
    pub epoch: u64,
    /// This batch's index in the epoch, on this rank.
    pub index: usize,
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    pub padding: usize,
}

impl Planner {
    /// Counts one more batch of the epoch under way as handed out (making the next epoch's plan
    /// when it was the last, with `plan_ahead`).
    pub fn advance(&mut self) {
        if let Some(c) = self.current.as_mut() {
            debug_assert!(c.delivered < c.plan.batches());
            c.delivered += 1;
        }
        self.plan_ahead_if_done();
    }

    /// Counts `batches` more batches of the epoch under way as handed out without building
    /// them: for a reader of the whole-epoch view, which consumed them from `epoch_plan`, so
    /// that reports, `saved_fraction` and checkpoints see its real position. Begins the next
    /// epoch first when the last one has ended. Refused (changing nothing) past the epoch's end.
    pub fn advance_by(&mut self, batches: usize) -> Result<()> {
        self.begin_epoch();
        let c = self.current.as_mut().expect("begin_epoch sets it");
        let left = c.plan.batches() - c.delivered;
        if batches > left {
            return Err(Error::invalid(format!(
                "advance: batches = {batches} but epoch {} has {left} of its {} batches left",
                c.plan.epoch,
                c.plan.batches()
            )));
        }
        c.delivered += batches;
        self.plan_ahead_if_done();
        Ok(())
    }

    /// The next batch of a Planner driven on its own (no loader): begins the next epoch when
    /// the last one has ended, and returns `None` once at the end of each epoch (writing its
    /// report line), like `Loader::next`.
    pub fn next_batch(&mut self) -> Result<Option<IndexBatch>> {
        let mut batch = IndexBatch::default();
        Ok(self
            .hand_out(&mut batch.ids, &mut batch.weights)?
            .map(|(epoch, index, padding)| IndexBatch {
                epoch,
                index,
                padding,
                ..batch
            }))
    }

    /// `next_batch` into caller-owned arrays (cleared first, reused from batch to batch):
    /// `Some((epoch, index, padding))`, or `None` at the end of the epoch. A failed report
    /// write is returned once; the epoch is closed first, so the next call begins the next one.
    pub(crate) fn hand_out(
        &mut self,
        ids: &mut Vec<u64>,
        weights: &mut Vec<f32>,
    ) -> Result<Option<(u64, usize, usize)>> {
        ids.clear();
        weights.clear();
        self.begin_epoch();
        if self.epoch_done() {
            let report = self.report();
            self.finish_epoch(report);
            self.write_report(&report, None)?;
            return Ok(None);
        }
        let c = self.current.as_mut().expect("begin_epoch sets it");
        let k = c.delivered;
        let mut padding = 0;
        for j in 0..c.plan.batch_len(k) {
            let (id, w, pad) = c.plan.entry(k, j);
            ids.push(id);
            weights.push(w);
            padding += pad as usize;
        }
        c.delivered += 1;
        let epoch = c.plan.epoch;
        self.plan_ahead_if_done();
        Ok(Some((epoch, k, padding)))
    }

    /// This rank's whole epoch under way (made now when the last one has ended), from its batch
    /// 0: what `next_batch` hands out batch by batch. It does not move the cursor.
    pub fn epoch_plan(&mut self) -> EpochPlan {
        let plan = Arc::clone(self.begin_epoch());
        let batches = plan.batches();
        let total = plan.local_samples();
        let mut out = EpochPlan {
            epoch: plan.epoch,
            batches,
            batch_size: plan.batch_size,
            ids: Vec::with_capacity(total),
            weights: Vec::with_capacity(total),
            padding: 0,
        };
        if plan.world_size == 1 {
            // One rank: its share is a contiguous run of the global order, never padded.
            let run = plan.start..plan.start + total;
            out.ids.extend_from_slice(&plan.ids[run.clone()]);
            out.weights.extend_from_slice(&plan.weights[run]);
            return out;
        }
        for k in 0..batches {
            for j in 0..plan.batch_len(k) {
                let (id, w, pad) = plan.entry(k, j);
                out.ids.push(id);
                out.weights.push(w);
                out.padding += pad as usize;
            }
        }
        out
    }
}
