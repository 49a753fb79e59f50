//! `thresher_loader_*`: create, iterate, feed back, inspect, free.

use std::ffi::c_char;

use super::batch::thresher_batch;
use super::error::{guard, thresher_status};
use super::{out_arg, slice_arg, str_arg};
use thresher_core::scores::Feedback;
use thresher_core::{Config, Loader};
use thresher_core::{Error, Result};

/// A loader: worker threads, prefetched batches, the ScoreBook and the pruning policy.
/// Opaque; created by thresher_loader_new, destroyed by thresher_loader_free.
pub struct thresher_loader {
    inner: Loader,
}

/// Per-sample feedback for one step. All arrays hold `len` elements (`embedding` holds
/// `len * embedding_dim`) and are only read during the call; the caller keeps ownership.
#[repr(C)]
pub struct thresher_feedback {
    /// Number of samples.
    pub len: usize,
    /// Sample ids (from thresher_batch_ids). Required unless len is 0. No id twice per call.
    pub ids: *const u64,
    /// Per-sample loss (finite). Required unless len is 0.
    pub loss: *const f32,
    /// Per-sample gradient norm (finite, >= 0), or NULL.
    pub grad_norm: *const f32,
    /// Per-sample EL2N score ||softmax - onehot||_2 (finite, >= 0), or NULL.
    pub el2n: *const f32,
    /// Per-sample correctness, 1 = right and 0 = wrong, or NULL.
    pub correct: *const u8,
    /// Per-sample gradient embeddings, row-major [len, embedding_dim], or NULL.
    pub embedding: *const f32,
    /// Length of each embedding; 0 when `embedding` is NULL.
    pub embedding_dim: usize,
}

/// A summary of the current epoch's plan (or, right after thresher_loader_next returned
/// THRESHER_END_OF_EPOCH, of the next epoch's plan: made ahead (config `plan_ahead`), or with
/// config `"plan_ahead": false` made by that call).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct thresher_epoch_info {
    /// 0-based epoch number.
    pub epoch: u64,
    /// Batches the epoch delivers on this rank (for LR schedules); the same on every rank.
    pub batches: u64,
    /// Samples the epoch keeps over all ranks (padding not counted).
    pub samples: u64,
    /// Samples in the dataset, N.
    pub dataset_len: u64,
    /// 1 - samples / dataset_len: the realised fraction pruned this epoch.
    pub prune_fraction: f64,
}

/// Digests of a loader's rank-independent state (thresher_loader_digest): equal on ranks that
/// agree. FNV-1a 64-bit hashes, for comparison only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct thresher_digest {
    /// The epoch whose plan was hashed.
    pub epoch: u64,
    /// The epoch number and the global plan's ids and weights, in order.
    pub plan: u64,
    /// The ScoreBook and the policy's state.
    pub scores: u64,
}

/// The epoch report: what the plan kept and what the epoch cost (docs/policies.md, "The epoch
/// report", says what each field means). Scores are NaN when the policy has none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct thresher_epoch_report {
    /// 0-based epoch number.
    pub epoch: u64,
    /// Samples kept this epoch.
    pub samples: u64,
    /// Samples in the dataset, N.
    pub dataset_len: u64,
    /// 1 - samples / dataset_len: the realised fraction pruned this epoch.
    pub prune_fraction: f64,
    /// Cumulative fraction of sample-visits saved against full data over epochs 0..=epoch.
    pub saved_fraction: f64,
    /// Mean loss weight of the kept samples.
    pub mean_weight: f64,
    /// Mean of the policy's score over seen samples (NaN when the policy has no score).
    pub score_mean: f64,
    /// Standard deviation of the policy's score over seen samples (NaN likewise).
    pub score_std: f64,
    /// Batches in the epoch.
    pub batches: u64,
    /// Batches delivered so far.
    pub delivered: u64,
    /// Seconds the consumer waited in thresher_loader_next this epoch.
    pub consumer_wait_s: f64,
    /// Seconds the workers spent filling batches this epoch, summed over workers.
    pub worker_busy_s: f64,
    /// Samples dropped this epoch because they could not be read or decoded (config
    /// `"on_error": "skip"`; always 0 under the default "fail"). Their batches were that much
    /// shorter. Counted as the workers meet them, so mid-epoch it includes prefetched batches.
    pub skipped: u64,
}

pub(crate) unsafe fn loader_ref<'a>(loader: *const thresher_loader) -> Result<&'a Loader> {
    // SAFETY: non-NULL loaders come from thresher_loader_new and are live (documented).
    let l = unsafe { loader.as_ref() }
        .map(|l| &l.inner)
        .ok_or_else(|| Error::invalid("loader is NULL"))?;
    // A child made by fork() gets THRESHER_STATE instead of a call that would block for good.
    l.check_process()?;
    Ok(l)
}

/// Creates a loader from a JSON configuration and starts its worker threads; the first epoch's
/// plan is made at once and prefetching begins.
///
/// `config_json` is a NUL-terminated UTF-8 JSON document (see the README for the keys); it is
/// only read during the call. On success `*out` receives a new loader that the caller owns and
/// must pass to thresher_loader_free exactly once. On failure `*out` is left untouched.
///
/// With `"source": {"kind": "index", "len": N}` the loader runs in index mode, for a pipeline
/// that reads its own samples: no worker threads are started, and batches carry ids, loss
/// weights and padding but no data (thresher_batch_has_data is 0; thresher_batch_data and the
/// DLPack export of data or labels return THRESHER_STATE). Every policy, feedback, report,
/// digest, rank share, checkpoint and score file works as with a data source.
///
/// With `"resume_from": PATH` the loader continues exactly where the loader that wrote the
/// checkpoint PATH (thresher_loader_save_state) was; the config must match its dataset (size
/// and fingerprint), seed, shuffle, drop_last and policy (kind and every parameter); a mismatch
/// is THRESHER_INVALID_ARGUMENT saying which part differs (the dataset, or each policy key)
/// with both values. The checkpoint holds the global plan and how many of its positions were
/// consumed, so batch_size, rank and world_size may differ: the rest of the epoch is laid out
/// anew for them.
///
/// Sizes are checked before anything is allocated: a batch whose data would exceed the config
/// key `max_batch_bytes`, or state that cannot be allocated in this process, is refused with
/// THRESHER_INVALID_ARGUMENT naming the keys.
///
/// Returns THRESHER_OK; THRESHER_INVALID_ARGUMENT for NULL arguments, malformed JSON, an
/// unknown key or a bad value (the message names the key); THRESHER_IO when a dataset or
/// checkpoint file cannot be read; THRESHER_FORMAT when a dataset file or checkpoint is
/// malformed (the message names the path). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_new(
    config_json: *const c_char,
    out: *mut *mut thresher_loader,
) -> thresher_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let text = unsafe { str_arg(config_json, "config_json") }?;
        let config = Config::from_json(text)?;
        let inner = Loader::new(config)?;
        let boxed = Box::into_raw(Box::new(thresher_loader { inner }));
        unsafe { out.write(boxed) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Stops the worker and read-ahead (`io_depth`) threads and frees the loader. Returns within a
/// second whatever they are doing: they stop between samples, and a thread still inside one
/// read, hint or decode by then
/// (a hung network file system, a very large image) is detached — it keeps what it needs alive,
/// exits by itself when that read returns, and nothing it produces is delivered. Also returns
/// promptly mid-epoch and while batches are still lent out: those batches stay valid and must
/// still be released with thresher_batch_release. In a child process made by fork() the
/// parent's loader is neither stopped nor freed (its threads do not exist there): the call
/// returns at once and the child's copy of the memory is left as it is. NULL is a no-op. Must
/// not run concurrently with any other call on the same loader; the loader must not be used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_free(loader: *mut thresher_loader) {
    super::error::guard_value((), || {
        if !loader.is_null() {
            // SAFETY: created by Box::into_raw in thresher_loader_new, freed once (documented).
            drop(unsafe { Box::from_raw(loader) });
        }
    })
}

/// Takes the next batch of the current epoch, in plan order, waiting for the workers when it
/// is not ready yet.
///
/// On THRESHER_OK `*out` receives a batch lent to the caller: its arrays stay valid until
/// thresher_batch_release(batch), which must be called exactly once (also after the loader is
/// freed). On THRESHER_END_OF_EPOCH the epoch is over and `*out` is set to NULL; the next call
/// starts the next epoch. Its plan is fixed by the call that hands out the last batch of this
/// one (with config `"plan_ahead": k`, the k-th batch from the end), from the ScoreBook as it
/// stands then (all feedback but those batches', for a trainer that sends feedback before
/// asking for the next batch): a worker computes it while the trainer goes on, feedback and
/// hand-outs meanwhile are held and booked after it, and workers start filling the next epoch
/// once this one is claimed; with config `"plan_ahead": false` it is made by the call after
/// THRESHER_END_OF_EPOCH, from all the feedback given, and workers wait for it. When a
/// sample fails to load, returns THRESHER_IO or THRESHER_FORMAT with the sample id and path in
/// the message, sets `*out` to NULL and skips that batch: the next call continues with the
/// following one. THRESHER_INVALID_ARGUMENT for NULL arguments.
///
/// Dataset files are opened only when they are regular files: a FIFO, a socket, a device or a
/// directory where an image is expected is THRESHER_FORMAT (a socket THRESHER_IO) naming the
/// path and the sample id, never a read that blocks; with config `"on_error": "skip"` the
/// sample is left out instead.
///
/// Meant to be called from one thread at a time (thresher_loader_feedback and
/// thresher_loader_epoch_info may run concurrently on other threads). Several threads calling
/// it at once are safe and never wait forever: each batch goes to one of them, and a caller
/// still waiting when another takes the last batch of the epoch (or thresher_loader_end_epoch
/// ends it) returns THRESHER_END_OF_EPOCH. In a child process made by fork(), this and every
/// other call on the parent's loader returns THRESHER_STATE.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_next(
    loader: *mut thresher_loader,
    out: *mut *mut thresher_batch,
) -> thresher_status {
    guard(|| {
        if loader.is_null() {
            // Before `out` is touched: a NULL loader leaves it as it was.
            return Err(Error::invalid("loader is NULL"));
        }
        let out = out_arg(out, "out")?;
        // NULL on every path but success, errors included (documented above).
        unsafe { out.write(std::ptr::null_mut()) };
        let l = unsafe { loader_ref(loader) }?;
        match l.next()? {
            Some(batch) => {
                unsafe { out.write(super::batch::into_raw(batch)) };
                Ok(thresher_status::THRESHER_OK)
            }
            None => Ok(thresher_status::THRESHER_END_OF_EPOCH),
        }
    })
}

/// Applies one step's per-sample feedback to the ScoreBook, which the policy reads when the
/// next epoch is planned. The call is validated whole first (ids below the dataset size, no id
/// twice, finite values, consistent lengths, no NULL array with len > 0); when anything is
/// wrong it returns THRESHER_INVALID_ARGUMENT naming the offending index and nothing of the call
/// is applied. `fb` and its arrays are only read during the call.
///
/// Thread-safe: may be called from any thread, also while another thread is in
/// thresher_loader_next. Feedback is booked under the epoch of the most recent plan.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_feedback(
    loader: *mut thresher_loader,
    fb: *const thresher_feedback,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        // SAFETY: NULL checked; the caller gives a readable struct.
        let f = unsafe { fb.as_ref() }.ok_or_else(|| Error::invalid("fb is NULL"))?;
        let n = f.len;
        let opt = |p: *const f32, what: &str| -> Result<Option<&[f32]>> {
            if p.is_null() {
                Ok(None)
            } else {
                unsafe { slice_arg(p, n, what) }.map(Some)
            }
        };
        let embedding = if f.embedding.is_null() {
            None
        } else {
            let total = n.checked_mul(f.embedding_dim).ok_or_else(|| {
                Error::invalid("feedback: len × embedding_dim overflows".to_string())
            })?;
            Some(unsafe { slice_arg(f.embedding, total, "fb->embedding") }?)
        };
        let feedback = Feedback {
            ids: unsafe { slice_arg(f.ids, n, "fb->ids") }?,
            loss: unsafe { slice_arg(f.loss, n, "fb->loss") }?,
            grad_norm: opt(f.grad_norm, "fb->grad_norm")?,
            el2n: opt(f.el2n, "fb->el2n")?,
            correct: if f.correct.is_null() {
                None
            } else {
                Some(unsafe { slice_arg(f.correct, n, "fb->correct") }?)
            },
            embedding,
            embedding_dim: f.embedding_dim,
        };
        l.feedback(&feedback)?;
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Describes the current epoch's plan in `*out`: its number, batches, samples, the dataset size
/// and the realised prune fraction. Right after thresher_loader_next returned
/// THRESHER_END_OF_EPOCH it describes the next epoch's plan (made ahead, config `plan_ahead`;
/// with config `"plan_ahead": false` this call makes and fixes it), so a trainer can learn
/// an epoch's length before its first batch. Returns THRESHER_OK, or
/// THRESHER_INVALID_ARGUMENT for NULL arguments (`*out` untouched). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_epoch_info(
    loader: *const thresher_loader,
    out: *mut thresher_epoch_info,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let i = l.epoch_info();
        let info = thresher_epoch_info {
            epoch: i.epoch,
            batches: i.batches,
            samples: i.samples,
            dataset_len: i.dataset_len,
            prune_fraction: i.prune_fraction,
        };
        unsafe { out.write(info) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Writes the run's total batches on this rank (every rank delivers as many) into `*out`,
/// known before training starts, for learning-rate schedules that need the step count up
/// front (OneCycle, cosine over the run). It is the sum over the policy's `epochs` of each
/// epoch's batch count, exact for every epoch's plan: under the policy key `budget` the
/// per-epoch sample counts are fixed in advance; `full` and `random` need only `epochs`.
/// Index mode and the whole-epoch view deliver the same batches. Returns THRESHER_OK,
/// THRESHER_INVALID_ARGUMENT for NULL arguments, or THRESHER_STATE when the count depends on
/// feedback (a score-based policy without `budget`, or no `epochs`); `*out` is then untouched.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_total_batches(
    loader: *const thresher_loader,
    out: *mut u64,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let total = l.total_batches()?;
        unsafe { out.write(total) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Writes digests of the loader's rank-independent state into `*out`: the current epoch's
/// global plan (or the last one's between epochs: this call never begins an epoch) and the
/// ScoreBook with the policy's state. Ranks that share one global plan (config `rank`,
/// `world_size`) and have been fed the same feedback have equal digests: compare them across
/// ranks (e.g. after every epoch) to catch a rank that missed feedback. Returns THRESHER_OK,
/// or THRESHER_INVALID_ARGUMENT for NULL arguments (`*out` untouched). Thread-safe; it hashes
/// the whole ScoreBook (milliseconds for a million samples), so call it per epoch, not per step.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_digest(
    loader: *const thresher_loader,
    out: *mut thresher_digest,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let d = l.digest();
        unsafe {
            out.write(thresher_digest {
                epoch: d.epoch,
                plan: d.plan,
                scores: d.scores,
            })
        };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Describes in `*out` the current epoch so far, or the epoch that just ended when
/// thresher_loader_next has returned THRESHER_END_OF_EPOCH and no new epoch has begun (this
/// call never begins one). Returns
/// THRESHER_OK, or THRESHER_INVALID_ARGUMENT for NULL arguments (`*out` untouched).
/// Thread-safe: may run while another thread is in thresher_loader_next.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_report(
    loader: *const thresher_loader,
    out: *mut thresher_epoch_report,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let r = l.report();
        let report = thresher_epoch_report {
            epoch: r.epoch,
            samples: r.samples,
            dataset_len: r.dataset_len,
            prune_fraction: r.prune_fraction,
            saved_fraction: r.saved_fraction,
            mean_weight: r.mean_weight,
            score_mean: r.score_mean,
            score_std: r.score_std,
            batches: r.batches,
            delivered: r.delivered,
            consumer_wait_s: r.consumer_wait_s,
            worker_busy_s: r.worker_busy_s,
            skipped: r.skipped,
        };
        unsafe { out.write(report) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// The fraction of an epoch's kept samples that look unlearnable above which the C++, Python
/// and Julia bindings and the reference trainer warn that the labels may be noisy (compare
/// thresher_loader_unlearnable_fraction with it; the C library itself prints nothing).
pub const THRESHER_UNLEARNABLE_WARNING: f64 = 0.15;
const _: () = assert!(THRESHER_UNLEARNABLE_WARNING == thresher_core::policy::UNLEARNABLE_WARNING);

/// Writes into `*out` the fraction of the current epoch's kept samples (or, between epochs,
/// the last epoch's) that look unlearnable: wrong at each of their last `guard_window`
/// correctness reports when the plan was made (the report's `unlearnable_fraction`). Above
/// THRESHER_UNLEARNABLE_WARNING the labels may be noisy and a policy that keeps hard samples
/// may be fitting them. NaN for `full`, `random` and `infobatch`, and until a feedback call
/// carried `correct`. Like thresher_loader_report it never begins an epoch. Returns
/// THRESHER_OK, or THRESHER_INVALID_ARGUMENT for NULL arguments (`*out` untouched).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_unlearnable_fraction(
    loader: *const thresher_loader,
    out: *mut f64,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let f = l.report().unlearnable_fraction;
        unsafe { out.write(f) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Writes the ScoreBook's per-sample scores to the file `path` (NUL-terminated UTF-8), in the
/// versioned, checksummed score-file format that config key `policy.scores_from` and the
/// `thresher scores` command read. The write is atomic: a temporary file beside `path`, fsync,
/// rename; a crash leaves the old file or the new one. Returns THRESHER_OK,
/// THRESHER_INVALID_ARGUMENT for NULL arguments, or THRESHER_IO (the message names the path).
/// Thread-safe: may run while other threads call next and feedback (it sees the ScoreBook
/// between two feedback calls).
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_save_scores(
    loader: *const thresher_loader,
    path: *const c_char,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let path = unsafe { str_arg(path, "path") }?;
        l.save_scores(std::path::Path::new(path))?;
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Writes a checkpoint of the loader to the file `path` (NUL-terminated UTF-8): the ScoreBook,
/// the epoch, the current plan and the position inside it, and the policy's state, in a
/// versioned format with a checksum. The write is atomic (temporary file beside `path`, fsync,
/// rename): a crash leaves the previous checkpoint intact. A loader created with the same
/// config plus `"resume_from": PATH` yields exactly the batches this one would yield next
/// (same ids, order, weights and bytes). Returns THRESHER_OK, THRESHER_INVALID_ARGUMENT for
/// NULL arguments, or THRESHER_IO (the message names the path). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_save_state(
    loader: *const thresher_loader,
    path: *const c_char,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let path = unsafe { str_arg(path, "path") }?;
        l.save_state(std::path::Path::new(path))?;
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Ends the epoch under way now, as if thresher_loader_next had reached its end: the epoch's
/// report is written (config `report`), the batches not yet handed out are abandoned (they
/// count as not visited, and no feedback is expected for them), feedback already booked stays,
/// and the next thresher_loader_next begins the next epoch. For a consumer that leaves an
/// epoch early (a `break`, an early evaluation) or reads it through thresher_loader_epoch_plan.
/// A no-op between epochs. Returns THRESHER_OK, THRESHER_INVALID_ARGUMENT for NULL, or
/// THRESHER_IO when the report line cannot be written (the epoch is ended anyway).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_end_epoch(
    loader: *mut thresher_loader,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        l.end_epoch()?;
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Index mode only: counts `batches` more batches of the epoch under way as handed out, without
/// building them — for a reader that consumed them from thresher_loader_epoch_plan, so that the
/// report (`delivered`, `saved_fraction`) and checkpoints see its real position. Begins the next
/// epoch first when the last one has ended; thresher_loader_next then continues after them
/// (THRESHER_END_OF_EPOCH once none is left). Reaching the epoch's last batch (with config
/// `"plan_ahead": k`, its k-th from the end) hands it out as thresher_loader_next would: the
/// next epoch's plan is made then, so advance only as far as the trainer has consumed. Returns THRESHER_OK, THRESHER_INVALID_ARGUMENT for
/// NULL or when fewer than `batches` are left (nothing changes), or THRESHER_STATE for a loader
/// with data. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_advance(
    loader: *mut thresher_loader,
    batches: u64,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let batches = usize::try_from(batches)
            .map_err(|_| Error::invalid(format!("batches = {batches} is too large")))?;
        l.advance(batches)?;
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Writes a checkpoint like thresher_loader_save_state, but as if only the first `batches`
/// batches of this rank's latest epoch (the one under way or, between epochs, the one that just
/// ended) had been handed out: for consumers that fetch ahead of the trainer (a DataLoader
/// prefetching from a sampler, a DALI pipeline). Resuming from it yields batch `batches` of that
/// epoch next. Returns THRESHER_OK, THRESHER_INVALID_ARGUMENT for NULL arguments or when
/// `batches` exceeds what was handed out, THRESHER_STATE before any epoch, or THRESHER_IO
/// (the message names the path). Nothing is written on failure. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_save_state_at(
    loader: *const thresher_loader,
    path: *const c_char,
    batches: u64,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let path = unsafe { str_arg(path, "path") }?;
        let batches = usize::try_from(batches)
            .map_err(|_| Error::invalid(format!("batches = {batches} is too large")))?;
        l.save_state_at(std::path::Path::new(path), batches)?;
        Ok(thresher_status::THRESHER_OK)
    })
}

// ---- Deprecated names (ABI 2 shipped them; kept so existing binaries and code still link) ----

/// Deprecated since 0.1: the old name of thresher_loader_epoch_info, which it calls; same
/// arguments, result and thread-safety. Kept so programs built against the first header still
/// link; new code uses thresher_loader_epoch_info.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_epoch(
    loader: *const thresher_loader,
    out: *mut thresher_epoch_info,
) -> thresher_status {
    unsafe { thresher_loader_epoch_info(loader, out) }
}

/// Deprecated since 0.1: the old name of thresher_loader_save_state, which it calls; same
/// arguments, result and thread-safety. Kept so programs built against the first header still
/// link; new code uses thresher_loader_save_state.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_state_save(
    loader: *const thresher_loader,
    path: *const c_char,
) -> thresher_status {
    unsafe { thresher_loader_save_state(loader, path) }
}
