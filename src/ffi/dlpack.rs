//! DLPack export: a batch's fields as `DLManagedTensor`s, the zero-copy exchange format that
//! PyTorch, NumPy, JAX and Julia take. Each tensor holds a reference to the batch; its deleter
//! drops that reference, so the batch's memory outlives the handle as long as a tensor is alive.
//! The DLPack structs are laid out here (DLPack 0.8 ABI, unchanged since 0.6) rather than
//! exported in thresher.h, so the header never clashes with a program's own dlpack.h.

use std::ffi::c_void;
use std::sync::Arc;

use super::batch::{padded_shape, thresher_batch, THRESHER_MAX_NDIM};
use super::error::{guard, thresher_status};
use super::out_arg;
use thresher_core::Batch;
use thresher_core::Error;
use thresher_core::{Dtype, TensorView};

/// Which array of a batch to export.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum thresher_field {
    /// The samples: [B, C, H, W] or [B, H, W, C] uint8 or float32 images, or [B, ...] in the
    /// dtype of an npy or tokens source.
    THRESHER_FIELD_DATA = 0,
    /// The labels: [B] int64.
    THRESHER_FIELD_LABELS = 1,
    /// The sample ids: [B] uint64.
    THRESHER_FIELD_IDS = 2,
    /// The loss weights: [B] float32.
    THRESHER_FIELD_WEIGHTS = 3,
    /// The typed targets (see thresher_batch_targets).
    THRESHER_FIELD_TARGETS = 4,
    /// The mask, [B, block] uint8 (see thresher_batch_mask).
    THRESHER_FIELD_MASK = 5,
}

/// cbindgen:ignore
#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

/// cbindgen:ignore
#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

/// cbindgen:ignore
#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

/// cbindgen:ignore
#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

const K_DL_CPU: i32 = 1;
const K_DL_INT: u8 = 0;
const K_DL_UINT: u8 = 1;
const K_DL_FLOAT: u8 = 2;
const K_DL_BFLOAT: u8 = 4;

/// DLPack's (type code, bits) of a dtype.
fn dl_dtype(d: Dtype) -> (u8, u8) {
    let bits = (d.size() * 8) as u8;
    let code = match d {
        Dtype::U8 | Dtype::U16 | Dtype::U32 => K_DL_UINT,
        Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => K_DL_INT,
        Dtype::F16 | Dtype::F32 | Dtype::F64 => K_DL_FLOAT,
        Dtype::BF16 => K_DL_BFLOAT,
    };
    (code, bits)
}

/// The tensor and what it points into, in one allocation; `managed` is the first field so the
/// pointer handed out is also the holder's.
#[repr(C)]
struct Holder {
    managed: DLManagedTensor,
    shape: [i64; THRESHER_MAX_NDIM],
    _batch: Arc<Batch>,
}

unsafe extern "C" fn deleter(t: *mut DLManagedTensor) {
    let _ = std::panic::catch_unwind(|| {
        if !t.is_null() {
            // SAFETY: `t` was made by thresher_batch_dlpack from a boxed Holder whose address
            // is in manager_ctx; DLPack calls the deleter once.
            drop(unsafe { Box::from_raw((*t).manager_ctx.cast::<Holder>()) });
        }
    });
}

/// Exports one field (a thresher_field value) of a batch as a DLPack tensor (a `DLManagedTensor*`, DLPack ABI 0.8,
/// written to `*out` as `void*` so this header does not depend on dlpack.h). CPU memory,
/// compact row-major (strides NULL), no copy: the tensor points into the batch.
///
/// The tensor holds its own reference to the batch: it stays valid after
/// thresher_batch_release (and after thresher_loader_free) until the consumer calls its
/// `deleter`, exactly once, as DLPack requires. Returns THRESHER_OK,
/// THRESHER_INVALID_ARGUMENT for NULL arguments or an unknown field, or THRESHER_STATE for the
/// data or labels of a batch without data (index mode), the labels of a source without class
/// labels, and the targets or mask of a batch without them; `*out` is untouched on failure.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn thresher_batch_dlpack(
    b: *const thresher_batch,
    field: i32,
    out: *mut *mut c_void,
) -> thresher_status {
    guard(|| {
        // SAFETY: non-NULL batches come from thresher_loader_next and are live (documented).
        let handle = unsafe { b.as_ref() }.ok_or_else(|| Error::invalid("batch is NULL"))?;
        let out = out_arg(out, "out")?;
        // Taken as an int, not the enum: C may pass any value, and an out-of-range enum
        // would be undefined behaviour in Rust before we could check it.
        let field = match field {
            0 => thresher_field::THRESHER_FIELD_DATA,
            1 => thresher_field::THRESHER_FIELD_LABELS,
            2 => thresher_field::THRESHER_FIELD_IDS,
            3 => thresher_field::THRESHER_FIELD_WEIGHTS,
            4 => thresher_field::THRESHER_FIELD_TARGETS,
            5 => thresher_field::THRESHER_FIELD_MASK,
            other => {
                return Err(Error::invalid(format!(
                    "field = {other} is not a thresher_field (0..=5)"
                )))
            }
        };
        let needs_data = matches!(
            field,
            thresher_field::THRESHER_FIELD_DATA | thresher_field::THRESHER_FIELD_LABELS
        );
        if needs_data && !handle.inner.has_data() {
            return Err(super::batch::no_data());
        }
        let batch = Arc::clone(&handle.inner);
        let n = batch.len() as i64;
        let tensor = |t: Option<TensorView<'_>>, what: &str| {
            let t = t.ok_or_else(|| super::batch::missing(what, &batch))?;
            let (code, bits) = dl_dtype(t.dtype);
            Ok::<_, Error>((
                t.bytes.as_ptr(),
                t.shape.len() as i32,
                code,
                bits,
                padded_shape(t.shape),
            ))
        };
        let vector = |n: i64| padded_shape(&[n as usize]);
        let (data, ndim, code, bits, shape): (*const u8, i32, u8, u8, [i64; THRESHER_MAX_NDIM]) =
            match field {
                thresher_field::THRESHER_FIELD_DATA => tensor(batch.data(), "data")?,
                thresher_field::THRESHER_FIELD_LABELS => {
                    if batch.labels().is_empty() && n > 0 {
                        return Err(Error::state(
                            "this batch has no labels: its source has no class labels (token \
                             blocks, npy without `y` or with float or multi-dimensional `y`); \
                             use THRESHER_FIELD_TARGETS",
                        ));
                    }
                    (batch.labels().as_ptr().cast(), 1, K_DL_INT, 64, vector(n))
                }
                thresher_field::THRESHER_FIELD_IDS => {
                    (batch.ids().as_ptr().cast(), 1, K_DL_UINT, 64, vector(n))
                }
                thresher_field::THRESHER_FIELD_WEIGHTS => (
                    batch.weights().as_ptr().cast(),
                    1,
                    K_DL_FLOAT,
                    32,
                    vector(n),
                ),
                thresher_field::THRESHER_FIELD_TARGETS => tensor(batch.targets(), "targets")?,
                thresher_field::THRESHER_FIELD_MASK => tensor(batch.mask(), "mask")?,
            };
        let holder = Box::into_raw(Box::new(Holder {
            managed: DLManagedTensor {
                dl_tensor: DLTensor {
                    data: data as *mut c_void,
                    device: DLDevice {
                        device_type: K_DL_CPU,
                        device_id: 0,
                    },
                    ndim,
                    dtype: DLDataType {
                        code,
                        bits,
                        lanes: 1,
                    },
                    shape: std::ptr::null_mut(),
                    strides: std::ptr::null_mut(),
                    byte_offset: 0,
                },
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(deleter),
            },
            shape,
            _batch: batch,
        }));
        // SAFETY: `holder` is a fresh, live allocation; the fields point into itself, which
        // does not move until the deleter frees it.
        unsafe {
            (*holder).managed.dl_tensor.shape = (*holder).shape.as_mut_ptr();
            (*holder).managed.manager_ctx = holder.cast();
            out.write(std::ptr::addr_of_mut!((*holder).managed).cast());
        }
        Ok(thresher_status::THRESHER_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use thresher_core::source::ArraySource;
    use thresher_core::{Config, Loader};

    #[test]
    fn tensors_outlive_the_handle_and_the_loader() {
        let src = ArraySource::new((0..48).collect(), [2, 3, 2], vec![7, 8, 9, 10]).unwrap();
        let config = Config::from_json(r#"{"batch_size": 3, "shuffle": false, "transform": {"dtype": "u8", "layout": "nhwc"}}"#).unwrap();
        let loader = Loader::with_source(config, Arc::new(src)).unwrap();
        let b = super::super::batch::into_raw(loader.next().unwrap().unwrap());
        let mut data: *mut c_void = std::ptr::null_mut();
        let mut labels: *mut c_void = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                thresher_batch_dlpack(b, thresher_field::THRESHER_FIELD_DATA as i32, &mut data),
                thresher_status::THRESHER_OK
            );
            assert_eq!(
                thresher_batch_dlpack(b, thresher_field::THRESHER_FIELD_LABELS as i32, &mut labels),
                thresher_status::THRESHER_OK
            );
            super::super::thresher_batch_release(b);
        }
        drop(loader);
        let (d, l) = (
            data.cast::<DLManagedTensor>(),
            labels.cast::<DLManagedTensor>(),
        );
        unsafe {
            let t = &(*d).dl_tensor;
            assert_eq!((t.ndim, t.dtype.code, t.dtype.bits), (4, K_DL_UINT, 8));
            assert_eq!(std::slice::from_raw_parts(t.shape, 4), &[3, 2, 3, 2]);
            assert_eq!(*t.data.cast::<u8>().add(13), 13);
            let lt = &(*l).dl_tensor;
            assert_eq!(
                std::slice::from_raw_parts(lt.data.cast::<i64>(), 3),
                &[7, 8, 9]
            );
            ((*d).deleter.unwrap())(d);
            ((*l).deleter.unwrap())(l);
        }
        let mut out: *mut c_void = std::ptr::null_mut();
        let st = unsafe { thresher_batch_dlpack(std::ptr::null(), 2, &mut out) };
        assert_eq!(st, thresher_status::THRESHER_INVALID_ARGUMENT);
    }
}
