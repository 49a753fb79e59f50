//! `thresher_epoch_plan_*`: this rank's whole epoch in one piece, for readers that schedule
//! their own reads.

use super::error::{guard, guard_value, thresher_status};
use super::loader::{loader_ref, thresher_loader};
use super::out_arg;
use thresher_core::EpochPlan;

/// This rank's whole epoch: ids and loss weights of its batches in delivery order, padding
/// last. Opaque; created by thresher_loader_epoch_plan, destroyed by thresher_epoch_plan_free.
/// Immutable: may be read from any thread; its arrays stay valid until it is freed, also after
/// its loader is freed.
pub struct thresher_epoch_plan {
    inner: EpochPlan,
}

unsafe fn plan_ref<'a>(p: *const thresher_epoch_plan) -> Option<&'a EpochPlan> {
    // SAFETY: non-NULL plans come from thresher_loader_epoch_plan and are live (documented).
    unsafe { p.as_ref() }.map(|p| &p.inner)
}

/// Writes to `*out` this rank's whole epoch under way, from its batch 0: what
/// thresher_loader_next hands out batch by batch (the same ids, order, weights and padding), for
/// a reader that schedules its own reads (DALI's external source, FFCV's traversal order, a C++
/// reader with its own threads). Right after thresher_loader_next returned
/// THRESHER_END_OF_EPOCH, it is the next epoch's plan (made ahead, or with config
/// `"plan_ahead": false` made now), like thresher_loader_epoch_info. It does not move the
/// position: in index mode, call thresher_loader_advance as batches are consumed (or
/// thresher_loader_next per batch) so that reports and checkpoints see the reader's position,
/// and thresher_loader_end_epoch to leave the epoch early. Works in both modes.
///
/// On THRESHER_OK `*out` receives a plan the caller owns and must pass to
/// thresher_epoch_plan_free exactly once. THRESHER_INVALID_ARGUMENT for NULL arguments (`*out`
/// untouched). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_loader_epoch_plan(
    loader: *const thresher_loader,
    out: *mut *mut thresher_epoch_plan,
) -> thresher_status {
    guard(|| {
        let l = unsafe { loader_ref(loader) }?;
        let out = out_arg(out, "out")?;
        let plan = Box::new(thresher_epoch_plan {
            inner: l.epoch_plan(),
        });
        unsafe { out.write(Box::into_raw(plan)) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Number of entries (padding included): the length of the ids and weights arrays. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_len(p: *const thresher_epoch_plan) -> usize {
    guard_value(0, || unsafe { plan_ref(p) }.map_or(0, |p| p.ids.len()))
}

/// The epoch's number. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_epoch(p: *const thresher_epoch_plan) -> u64 {
    guard_value(0, || unsafe { plan_ref(p) }.map_or(0, |p| p.epoch))
}

/// Batches on this rank: consecutive runs of the config's batch_size entries (the last may be
/// shorter), the same on every rank. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_batches(p: *const thresher_epoch_plan) -> usize {
    guard_value(0, || unsafe { plan_ref(p) }.map_or(0, |p| p.batches))
}

/// How many trailing entries are padding (weight 0; only with world_size > 1 and without
/// drop_last). 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_padding(p: *const thresher_epoch_plan) -> usize {
    guard_value(0, || unsafe { plan_ref(p) }.map_or(0, |p| p.padding))
}

/// The sample ids, thresher_epoch_plan_len(p) of them, in delivery order. Owned by the plan,
/// valid until it is freed. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_ids(p: *const thresher_epoch_plan) -> *const u64 {
    guard_value(std::ptr::null(), || {
        unsafe { plan_ref(p) }.map_or(std::ptr::null(), |p| p.ids.as_ptr())
    })
}

/// The loss weights, one per id. Owned by the plan, valid until it is freed. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_weights(p: *const thresher_epoch_plan) -> *const f32 {
    guard_value(std::ptr::null(), || {
        unsafe { plan_ref(p) }.map_or(std::ptr::null(), |p| p.weights.as_ptr())
    })
}

/// Frees a plan from thresher_loader_epoch_plan. NULL is a no-op; the plan and its arrays must
/// not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn thresher_epoch_plan_free(p: *mut thresher_epoch_plan) {
    guard_value((), || {
        if !p.is_null() {
            // SAFETY: created by Box::into_raw in thresher_loader_epoch_plan, freed once.
            drop(unsafe { Box::from_raw(p) });
        }
    })
}
