//! `thresher_batch_*`: read a lent batch and release it.

use std::ffi::c_void;
use std::sync::Arc;

use super::error::{guard, guard_value, thresher_status};
use super::out_arg;
use thresher_core::Batch;
use thresher_core::Error;
use thresher_core::{Dtype, TensorView};

/// One minibatch lent to the caller by thresher_loader_next. Opaque. Its arrays stay valid and
/// unchanged until thresher_batch_release; the batch may be read from any thread, and released
/// from any thread, also after its loader was freed.
pub struct thresher_batch {
    /// Shared with the DLPack tensors exported from it: the memory lives until the handle is
    /// released and every such tensor's deleter has run.
    pub(crate) inner: Arc<Batch>,
}

/// Element type of a tensor of a batch. Values are in native byte order (the bytes of a
/// little-endian file, unchanged, on the little-endian machines thresher runs on).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum thresher_dtype {
    /// uint8_t
    THRESHER_U8 = 0,
    /// float (IEEE 754 binary32)
    THRESHER_F32 = 1,
    /// int8_t
    THRESHER_I8 = 2,
    /// uint16_t
    THRESHER_U16 = 3,
    /// int16_t
    THRESHER_I16 = 4,
    /// uint32_t
    THRESHER_U32 = 5,
    /// int32_t
    THRESHER_I32 = 6,
    /// int64_t
    THRESHER_I64 = 7,
    /// IEEE 754 binary16 (half), 2 bytes
    THRESHER_F16 = 8,
    /// bfloat16 (the upper 16 bits of a float), 2 bytes
    THRESHER_BF16 = 9,
    /// double (IEEE 754 binary64)
    THRESHER_F64 = 10,
}

/// The most dimensions a thresher_tensor has, the batch axis included: a sample has at most
/// THRESHER_MAX_NDIM - 1.
pub const THRESHER_MAX_NDIM: usize = 8;

/// A view of a tensor of a batch (data, targets or mask): contiguous, row-major, `ndim`
/// dimensions in `shape`, the first the batch axis ([B, C, H, W] for images with layout
/// "nchw", [B, H, W, C] for "nhwc", [B, ...] as in the file for npy and tokens sources).
/// `data` is 64-byte aligned and owned by the batch: valid until the batch is released.
/// Unused `shape` entries are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct thresher_tensor {
    pub data: *mut c_void,
    pub dtype: thresher_dtype,
    pub ndim: u32,
    pub shape: [i64; THRESHER_MAX_NDIM],
}

/// The C value of a dtype.
pub(crate) fn c_dtype(d: Dtype) -> thresher_dtype {
    use thresher_dtype::*;
    match d {
        Dtype::U8 => THRESHER_U8,
        Dtype::I8 => THRESHER_I8,
        Dtype::U16 => THRESHER_U16,
        Dtype::I16 => THRESHER_I16,
        Dtype::U32 => THRESHER_U32,
        Dtype::I32 => THRESHER_I32,
        Dtype::I64 => THRESHER_I64,
        Dtype::F16 => THRESHER_F16,
        Dtype::BF16 => THRESHER_BF16,
        Dtype::F32 => THRESHER_F32,
        Dtype::F64 => THRESHER_F64,
    }
}

/// `shape` padded with zeros to THRESHER_MAX_NDIM entries (a batch's shapes never exceed it:
/// sources refuse samples of more than THRESHER_MAX_NDIM - 1 dimensions).
pub(crate) fn padded_shape(shape: &[usize]) -> [i64; THRESHER_MAX_NDIM] {
    let mut out = [0i64; THRESHER_MAX_NDIM];
    for (o, &d) in out.iter_mut().zip(shape) {
        *o = d as i64;
    }
    out
}

fn describe(t: TensorView<'_>) -> thresher_tensor {
    thresher_tensor {
        data: t.bytes.as_ptr() as *mut c_void,
        dtype: c_dtype(t.dtype),
        ndim: t.shape.len().min(THRESHER_MAX_NDIM) as u32,
        shape: padded_shape(t.shape),
    }
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

/// The batch's int64 class labels, thresher_batch_len(b) of them, from the dataset. Owned by
/// the batch, valid until it is released. NULL for NULL, for a batch without data (index mode:
/// see thresher_batch_has_data), and for a source without class labels (token blocks, npy
/// without `y` or with float or multi-dimensional `y`: see thresher_batch_targets).
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_labels(b: *const thresher_batch) -> *const i64 {
    guard_value(std::ptr::null(), || match unsafe { batch_ref(b) } {
        Some(b) if b.has_data() && !b.labels().is_empty() => b.labels().as_ptr(),
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
    // SAFETY: the caller's pointers, as the header states.
    unsafe {
        write_tensor(b, out, |b| {
            b.data().filter(|_| b.has_data()).ok_or_else(no_data)
        })
    }
}

/// The body of thresher_batch_data / _targets / _mask: checks the arguments, picks the tensor
/// and writes its description to `*out` (untouched on failure).
///
/// # Safety
/// `b` is NULL or a live batch handle; `out` is NULL or writable.
unsafe fn write_tensor(
    b: *const thresher_batch,
    out: *mut thresher_tensor,
    pick: impl FnOnce(&Batch) -> Result<TensorView<'_>, Error>,
) -> thresher_status {
    guard(|| {
        let b = unsafe { batch_ref(b) }.ok_or_else(|| Error::invalid("batch is NULL"))?;
        let out = out_arg(out, "out")?;
        let t = pick(b)?;
        unsafe { out.write(describe(t)) };
        Ok(thresher_status::THRESHER_OK)
    })
}

/// The error of thresher_batch_targets / thresher_batch_mask on a batch without them.
pub(crate) fn missing(what: &str, b: &Batch) -> Error {
    if !b.has_data() {
        return no_data();
    }
    Error::state(match what {
        "targets" => "this batch has no targets: its source has none (targets come from an npy \
                      source's `y` and from a tokens source)"
            .to_string(),
        _ => "this batch has no mask: only a tokens source with `offsets` (ragged documents) \
              has one"
            .to_string(),
    })
}

/// Describes the batch's typed targets in `*out`: for an npy source its `y` in the file's
/// dtype, [B] or [B, K, ...]; for a tokens source the next tokens y, [B, block] in the token
/// dtype (x is thresher_batch_data). Same lifetime rules as thresher_batch_data. Returns
/// THRESHER_OK, THRESHER_INVALID_ARGUMENT for NULL arguments, or THRESHER_STATE when the batch
/// has no targets (its source has none, or index mode); `*out` is untouched on failure.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_targets(
    b: *const thresher_batch,
    out: *mut thresher_tensor,
) -> thresher_status {
    // SAFETY: as above.
    unsafe { write_tensor(b, out, |b| b.targets().ok_or_else(|| missing("targets", b))) }
}

/// Describes the batch's mask in `*out`: uint8 [B, block], 1 where the target at that position
/// is a real next token and 0 where it is padding. Only a tokens source with `offsets` (one
/// document per sample) has a mask. Same lifetime rules as thresher_batch_data. Returns
/// THRESHER_OK, THRESHER_INVALID_ARGUMENT for NULL arguments, or THRESHER_STATE when the batch
/// has no mask; `*out` is untouched on failure. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_mask(
    b: *const thresher_batch,
    out: *mut thresher_tensor,
) -> thresher_status {
    // SAFETY: as above.
    unsafe { write_tensor(b, out, |b| b.mask().ok_or_else(|| missing("mask", b))) }
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
