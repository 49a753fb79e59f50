//! The engine behind `Loader` in index mode (source `{"kind": "index", "len": N}`): the
//! Planner alone. No worker threads and no data: each batch carries ids, loss weights and
//! padding, for a pipeline that reads its own samples (a torch DataLoader through
//! `thresher.torch.Sampler`, DALI's external source, a C++ reader).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::{Batch, Pool};
use crate::error::Result;
use crate::planner::Planner;

pub(super) struct IndexEngine {
    planner: Mutex<Planner>,
    /// Batch buffers are reused, as the pipeline's are: none is allocated per batch once the
    /// consumer releases what it takes.
    pool: Arc<Pool>,
}

impl IndexEngine {
    pub(super) fn new(planner: Planner) -> IndexEngine {
        IndexEngine {
            planner: Mutex::new(planner),
            pool: Pool::new(8),
        }
    }

    pub(super) fn planner(&self) -> &Mutex<Planner> {
        &self.planner
    }

    /// The next batch's ids, weights and padding; `None` once at the end of each epoch.
    pub(super) fn next(&self) -> Result<Option<Batch>> {
        let mut buf = self.pool.take();
        buf.labels.clear();
        let handed = self.planner.lock().hand_out(&mut buf.ids, &mut buf.weights);
        match handed {
            Ok(Some((epoch, index, padding))) => {
                buf.epoch = epoch;
                buf.index = index;
                buf.padding = padding;
                Ok(Some(Batch::without_data(buf, Arc::clone(&self.pool))))
            }
            other => {
                self.pool.put(buf);
                other.map(|_| None)
            }
        }
    }

    /// Ends the epoch under way now; see `Loader::end_epoch`.
    pub(super) fn end_epoch(&self) -> Result<()> {
        let mut planner = self.planner.lock();
        if let Some(report) = planner.abandon_rest() {
            planner.finish_epoch(report);
            planner.write_report(&report, None)?;
        }
        Ok(())
    }
}
