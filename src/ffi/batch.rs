//! `thresher_batch_*`: read a lent batch and release it.

use std::ffi::c_void;
use std::sync::Arc;

use super::error::{guard, guard_value, thresher_status};
use super::out_arg;
use thresher_core::transform::Dtype;
use thresher_core::Batch;
use thresher_core::Error;

/// One minibatch lent to the caller by thresher_loader_next. Opaque. Its arrays stay valid and
/// unchanged until thresher_batch_release; the batch may be read from any thread, and released
/// from any thread, also after its loader was freed.
pub struct thresher_batch {
    /// Shared with the DLPack tensors exported from it: the memory lives until the handle is
    /// released and every such tensor's deleter has run.
    pub(crate) inner: Arc<Batch>,
}

/// Element type of a batch's data.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum thresher_dtype {
    /// uint8_t
    THRESHER_U8 = 0,
    /// float (IEEE 754 binary32, native byte order)
    THRESHER_F32 = 1,
}

/// A view of a batch's data: contiguous, row-major, `ndim` dimensions in `shape`
/// ([B, C, H, W] for layout "nchw", [B, H, W, C] for "nhwc"). `data` is 64-byte aligned and
/// owned by the batch: valid until the batch is released. Unused `shape` entries are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct thresher_tensor {
    pub data: *mut c_void,
    pub dtype: thresher_dtype,
    pub ndim: u32,
    pub shape: [i64; 4],
}

pub(crate) fn into_raw(batch: Batch) -> *mut thresher_batch {
    Box::into_raw(Box::new(thresher_batch {
        inner: Arc::new(batch),
    }))
}

unsafe fn batch_ref<'a>(b: *const thresher_batch) -> Option<&'a Batch> {
    // SAFETY: non-NULL batches come from thresher_loader_next and are live (documented).
    unsafe { b.as_ref() }.map(|b| &*b.inner)
}

/// Number of samples in the batch (the last batch of an epoch may be short). 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_len(b: *const thresher_batch) -> usize {
    guard_value(0, || unsafe { batch_ref(b) }.map_or(0, |b| b.len()))
}

/// How many of the batch's trailing samples are padding. Only with config `world_size` > 1 and
/// without `drop_last`: the last batch of an epoch is filled up with repeats of ids from the
/// start of the global plan, weight 0, so that every rank yields as many full batches. Their
/// feedback is not needed (thresher.torch.distributed.all_gather_feedback leaves it out); the
/// first thresher_batch_len(b) − padding samples are the real ones. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_padding(b: *const thresher_batch) -> usize {
    guard_value(0, || unsafe { batch_ref(b) }.map_or(0, |b| b.padding()))
}

/// The batch's sample ids, thresher_batch_len(b) of them, in plan order: pass them back in
/// thresher_feedback. Owned by the batch, valid until it is released. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_ids(b: *const thresher_batch) -> *const u64 {
    guard_value(std::ptr::null(), || {
        unsafe { batch_ref(b) }.map_or(std::ptr::null(), |b| b.ids().as_ptr())
    })
}

/// The batch's labels, thresher_batch_len(b) of them, from the dataset. Owned by the batch,
/// valid until it is released. NULL for NULL, and for a batch without data (index mode: see
/// thresher_batch_has_data).
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_labels(b: *const thresher_batch) -> *const i64 {
    guard_value(std::ptr::null(), || match unsafe { batch_ref(b) } {
        Some(b) if b.has_data() => b.labels().as_ptr(),
        _ => std::ptr::null(),
    })
}

/// 1 when the batch carries samples and labels; 0 for a batch of a loader in index mode
/// (config source `{"kind": "index", "len": N}`), which has ids, weights and padding only, and
/// for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_has_data(b: *const thresher_batch) -> i32 {
    guard_value(0, || {
        unsafe { batch_ref(b) }.map_or(0, |b| b.has_data() as i32)
    })
}

/// The error of a call that needs data on a batch without (index mode).
pub(crate) fn no_data() -> Error {
    Error::state(
        "this batch has no data: its loader runs in index mode (source kind `index`), where \
         your own pipeline reads the samples; use its ids and weights",
    )
}

/// The per-sample loss weights the policy assigned, thresher_batch_len(b) of them: minimise
/// mean(w_i * loss_i) over the batch. All 1 for the `full` policy. Owned by the batch, valid
/// until it is released. NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_weights(b: *const thresher_batch) -> *const f32 {
    guard_value(std::ptr::null(), || {
        unsafe { batch_ref(b) }.map_or(std::ptr::null(), |b| b.weights().as_ptr())
    })
}

/// Describes the batch's data in `*out` (pointer, dtype, shape). The memory is owned by the
/// batch and valid until it is released; the caller may read it (and write it in place) but
/// not free it. Returns THRESHER_OK, THRESHER_INVALID_ARGUMENT for NULL arguments, or
/// THRESHER_STATE for a batch without data (index mode); `*out` is untouched on failure.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_data(
    b: *const thresher_batch,
    out: *mut thresher_tensor,
) -> thresher_status {
    guard(|| {
        let b = unsafe { batch_ref(b) }.ok_or_else(|| Error::invalid("batch is NULL"))?;
        let out = out_arg(out, "out")?;
        if !b.has_data() {
            return Err(no_data());
        }
        let s = b.shape();
        let t = thresher_tensor {
            data: b.data_ptr() as *mut c_void,
            dtype: match b.dtype() {
                Dtype::U8 => thresher_dtype::THRESHER_U8,
                Dtype::F32 => thresher_dtype::THRESHER_F32,
            },
            ndim: 4,
            shape: s.map(|d| d as i64),
        };
        unsafe { out.write(t) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// Releases the caller's handle. The batch's memory returns to the loader's pool (or is freed
/// when the loader is gone) once the handle and every DLPack tensor exported from it are
/// released. Call exactly once per batch from thresher_loader_next; the handle and the pointers
/// obtained from thresher_batch_ids/labels/weights/data are invalid afterwards (DLPack tensors
/// stay valid until their deleter runs). NULL is a no-op. Thread-safe for distinct batches.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_release(b: *mut thresher_batch) {
    guard_value((), || {
        if !b.is_null() {
            // SAFETY: created by Box::into_raw in into_raw, released once (documented).
            drop(unsafe { Box::from_raw(b) });
        }
    })
}
