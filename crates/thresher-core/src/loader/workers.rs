//! The worker threads: each claims the next batch index of the plan under way (at most
//! `prefetch` ahead of the consumer), fills a pooled buffer with its samples read from the
//! source and laid out by the transform, and puts the result into the ordered window.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::data_path::DataPath;
use super::pipeline::Shared;
use super::skips::SkippedSample;
use crate::batch::{BatchBuf, TensorBuf};
use crate::config::OnError;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::source::{self, TensorOut};
use crate::transform::{Dtype, Out, Workspace};
use crate::util::panic_text;

/// How many samples ahead of the one being filled a worker hints the source (`Source::prefetch`):
/// enough to cover a memory access while one sample is transformed, few enough that the hinted
/// lines are still in the cache when they are read.
const PREFETCH_AHEAD: usize = 2;

/// What a worker reuses from sample to sample: the source's read buffers and the transform's.
#[derive(Default)]
struct WorkerScratch {
    read: source::Scratch,
    transform: Workspace,
}

impl Shared {
    /// A worker thread's body: claim, fill, publish, until shutdown.
    pub(super) fn worker(&self) {
        let mut scratch = WorkerScratch::default();
        loop {
            let (plan, k) = {
                let mut state = self.state.lock();
                loop {
                    if self.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    if state.plan_due {
                        // The next plan fell due: make it first (the trainer has the rest of
                        // the epoch to go meanwhile), then claim.
                        self.make_due_plan(&mut state);
                        self.work.notify_all();
                        continue;
                    }
                    // The epoch under way first; then the next one when its plan is made
                    // ahead, within what the epoch under way leaves of the `prefetch` bound.
                    let st = &mut *state;
                    let mut room = self.prefetch;
                    let jobs = [st.job.as_mut(), st.ahead.as_mut()];
                    if let Some(claim) = jobs.into_iter().flatten().find_map(|job| {
                        let limit = job.plan.batches().min(job.delivered + room);
                        room = room.saturating_sub(job.claimed - job.delivered);
                        (job.claimed < limit).then(|| {
                            let k = job.claimed;
                            job.claimed += 1;
                            job.window.push_back(None);
                            (Arc::clone(&job.plan), k)
                        })
                    }) {
                        break claim;
                    }
                    self.work.wait(&mut state);
                }
            };
            let mut buf = self.pool.take();
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.fill(&plan, k, &mut buf, &mut scratch)
            }))
            .unwrap_or_else(|panic| {
                Err(Error::new(
                    ErrorKind::Panic,
                    format!(
                        "worker panicked filling batch {k} of epoch {}: {}",
                        plan.epoch,
                        panic_text(&*panic)
                    ),
                ))
            });
            let busy = started.elapsed();
            let result = match result {
                Ok(()) => Ok(buf),
                Err(e) => {
                    self.pool.put(buf);
                    Err(e)
                }
            };
            let mut guard = self.state.lock();
            let state = &mut *guard;
            // From the moment the next plan falls due to the boundary, the caller is woken
            // for the head alone: the boundary's wait is what `plan_ahead` is there to cut.
            let near_boundary = state.plan_due || state.ahead.is_some();
            let jobs = [state.job.as_mut(), state.ahead.as_mut()];
            // Dropped when its epoch was ended meanwhile (`end_epoch`).
            let job = jobs
                .into_iter()
                .flatten()
                .find(|j| Arc::ptr_eq(&j.plan, &plan) && k >= j.delivered);
            if let Some(job) = job {
                job.window[k - job.delivered] = Some(result);
                job.busy += busy;
                if job.wake_consumer(near_boundary) {
                    self.ready.notify_one();
                }
            }
        }
    }

    /// Reads and transforms the samples of batch `k` into `buf`. Under `on_error: "skip"` a
    /// sample that fails is left out and the batch is that much shorter: it is not refilled
    /// from later in the plan, which would change every later batch's composition (and make
    /// batches depend on which samples failed). A batch left empty is passed over by `next`.
    fn fill(
        &self,
        plan: &Plan,
        k: usize,
        buf: &mut BatchBuf,
        scratch: &mut WorkerScratch,
    ) -> Result<()> {
        let len = plan.batch_len(k);
        buf.epoch = plan.epoch;
        buf.index = k;
        buf.padding = 0;
        buf.ids.clear();
        buf.weights.clear();
        buf.labels.clear();
        let has_labels = self.source.has_labels();
        match &self.path {
            DataPath::Image(t, targets) => {
                buf.data.describe(t.dtype(), len, &t.out_shape())?;
                match targets {
                    Some(t) => buf.targets.describe(t.dtype, len, &t.shape)?,
                    None => buf.targets.clear(),
                }
                buf.mask.clear();
            }
            DataPath::Tensors(spec) => {
                buf.data.describe(spec.data.dtype, len, &spec.data.shape)?;
                match &spec.targets {
                    Some(t) => buf.targets.describe(t.dtype, len, &t.shape)?,
                    None => buf.targets.clear(),
                }
                match &spec.mask {
                    Some(m) => buf.mask.describe(m.dtype, len, &m.shape)?,
                    None => buf.mask.clear(),
                }
            }
        }
        // The source is told a few samples ahead which it will read next (an in-memory source
        // fetches them into the cache meanwhile: the plan's order is random, so the hardware
        // cannot guess it).
        for j in 0..PREFETCH_AHEAD.min(len) {
            self.source.prefetch(plan.entry(k, j).0 as usize);
        }
        for j in 0..len {
            if j + PREFETCH_AHEAD < len {
                self.source
                    .prefetch(plan.entry(k, j + PREFETCH_AHEAD).0 as usize);
            }
            let (id, weight, padding) = plan.entry(k, j);
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(Error::state("the loader is shutting down"));
            }
            let slot = buf.ids.len();
            // A panic in a decoder is this sample's error, not the whole batch's.
            let loaded = catch_unwind(AssertUnwindSafe(|| {
                self.load(plan.epoch, id, slot, buf, scratch)
            }))
            .unwrap_or_else(|panic| {
                Err(Error::new(
                    ErrorKind::Panic,
                    format!("panicked: {}", panic_text(&*panic)),
                ))
            });
            match loaded {
                Ok(()) => {
                    buf.padding += padding as usize;
                    buf.ids.push(id);
                    buf.weights.push(weight);
                    if has_labels {
                        buf.labels.push(self.source.label(id as usize));
                    }
                }
                Err(e) if self.on_error == OnError::Skip => {
                    self.skips.lock().record(SkippedSample {
                        epoch: plan.epoch,
                        id,
                        location: self.source.location(id as usize),
                        reason: e.message().to_string(),
                    });
                }
                Err(e) => {
                    let location = self.source.location(id as usize);
                    return Err(match location {
                        // Source errors name their file already; transform errors do not.
                        Some(loc) if !e.message().contains(loc.as_str()) => {
                            e.context(format!("sample {id} ({loc})"))
                        }
                        _ => e.context(format!("sample {id}")),
                    });
                }
            }
        }
        let kept = buf.ids.len();
        buf.data.set_batch(kept);
        buf.targets.set_batch(kept);
        buf.mask.set_batch(kept);
        Ok(())
    }

    /// Reads sample `id` and writes it, transformed (images) or as it is (tensors), into slot
    /// `slot` of `buf`.
    fn load(
        &self,
        epoch: u64,
        id: u64,
        slot: usize,
        buf: &mut BatchBuf,
        scratch: &mut WorkerScratch,
    ) -> Result<()> {
        match &self.path {
            DataPath::Image(transform, targets) => {
                if let Some(t) = targets {
                    let per = t.bytes();
                    let out = &mut buf.targets.bytes.as_bytes_mut()[slot * per..(slot + 1) * per];
                    self.source.read_targets(id as usize, out)?;
                }
                let per = transform.sample_bytes();
                let want = |h: usize, w: usize| transform.want(h, w, epoch, id);
                let (view, placed) =
                    self.source
                        .read_hinted(id as usize, &mut scratch.read, &want)?;
                let out = match transform.dtype() {
                    Dtype::F32 => {
                        let n = per / 4;
                        Out::F32(&mut buf.data.bytes.as_f32_mut()[slot * n..(slot + 1) * n])
                    }
                    _ => Out::U8(&mut buf.data.bytes.as_bytes_mut()[slot * per..(slot + 1) * per]),
                };
                transform.apply_placed(&view, placed, epoch, id, &mut scratch.transform, out)
            }
            DataPath::Tensors(spec) => {
                fn slice(b: &mut TensorBuf, slot: usize, per: usize) -> &mut [u8] {
                    if b.present {
                        &mut b.bytes.as_bytes_mut()[slot * per..(slot + 1) * per]
                    } else {
                        &mut []
                    }
                }
                let BatchBuf {
                    data,
                    targets,
                    mask,
                    ..
                } = buf;
                let out = TensorOut {
                    data: slice(data, slot, spec.data.bytes()),
                    targets: slice(
                        targets,
                        slot,
                        spec.targets.as_ref().map_or(0, |t| t.bytes()),
                    ),
                    mask: slice(mask, slot, spec.mask.as_ref().map_or(0, |m| m.bytes())),
                };
                self.source.read_tensors(id as usize, out)
            }
        }
    }
}
