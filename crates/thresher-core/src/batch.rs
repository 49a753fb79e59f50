//! Batches and the pool of their buffers. A batch's memory is lent to the consumer until it is
//! dropped (released), then goes back to the pool for the next batch, so steady state allocates
//! nothing. Each batch holds the pool by `Arc`: releasing a batch after its loader is gone is
//! safe (the buffer is then simply freed).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::dtype::{Dtype, TensorView};
use crate::error::{Error, Result};

/// 64-byte aligned bytes: f32 views are always aligned, and SIMD loads never split lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

#[derive(Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// Makes the buffer `len` bytes long, growing (never shrinking) its storage.
    pub(crate) fn set_len(&mut self, len: usize) -> Result<()> {
        let need = len.div_ceil(64);
        if self.lines.len() < need {
            // Sizes were checked against `max_batch_bytes` when the loader was made; the memory
            // may still not be there (a limit lowered since, other allocations): refuse the batch
            // instead of aborting the process.
            self.lines
                .try_reserve_exact(need - self.lines.len())
                .map_err(|_| {
                    Error::invalid(format!(
                        "a batch buffer of {len} bytes cannot be allocated in this process; \
                         lower `batch_size` or the output size"
                    ))
                })?;
            self.lines.resize(need, Line([0; 64]));
        }
        self.len = len;
        Ok(())
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialised bytes; Line is plain bytes.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }
    pub(crate) fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }
    pub(crate) fn as_f32_mut(&mut self) -> &mut [f32] {
        // SAFETY: 64-byte aligned storage; every bit pattern is a valid f32.
        unsafe {
            std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len / 4)
        }
    }
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.lines.as_ptr().cast()
    }
}

/// A typed tensor of a batch: its bytes, dtype and full shape ([B, ...]). The shape's storage
/// is reused with the buffer.
#[derive(Default)]
pub(crate) struct TensorBuf {
    pub(crate) bytes: AlignedBuf,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    /// Whether this batch has the tensor at all (targets and mask are optional).
    pub(crate) present: bool,
}

impl TensorBuf {
    /// Sets dtype and shape [b, ...sample] and sizes the bytes for them.
    pub(crate) fn describe(&mut self, dtype: Dtype, b: usize, sample: &[usize]) -> Result<()> {
        self.dtype = dtype;
        self.shape.clear();
        self.shape.push(b);
        self.shape.extend_from_slice(sample);
        self.present = true;
        self.bytes
            .set_len(self.shape.iter().product::<usize>() * dtype.size())
    }
    /// Sets the batch dimension to `b` (samples were left out) and cuts the bytes to match.
    pub(crate) fn set_batch(&mut self, b: usize) {
        if let Some(first) = self.shape.first_mut() {
            *first = b;
            let n = self.shape.iter().product::<usize>() * self.dtype.size();
            // Never longer than the buffer `describe` sized, so this cannot fail.
            let _ = self.bytes.set_len(n);
        }
    }
    pub(crate) fn clear(&mut self) {
        self.present = false;
        self.shape.clear();
        let _ = self.bytes.set_len(0);
    }
    fn view(&self) -> Option<TensorView<'_>> {
        self.present.then(|| TensorView {
            dtype: self.dtype,
            shape: &self.shape,
            bytes: self.bytes.as_bytes(),
        })
    }
}

/// The reusable part of a batch.
#[derive(Default)]
pub(crate) struct BatchBuf {
    /// The samples; `data.present` is false in index mode.
    pub(crate) data: TensorBuf,
    /// Typed targets (tensor sources with `y`, token blocks).
    pub(crate) targets: TensorBuf,
    /// 1 where a target is real (ragged token documents).
    pub(crate) mask: TensorBuf,
    pub(crate) ids: Vec<u64>,
    pub(crate) labels: Vec<i64>,
    pub(crate) weights: Vec<f32>,
    pub(crate) epoch: u64,
    pub(crate) index: usize,
    /// Trailing samples that are padding (ranks > 1; see `plan`).
    pub(crate) padding: usize,
}

/// Buffers waiting for reuse.
pub(crate) struct Pool {
    free: Mutex<Vec<BatchBuf>>,
    /// Buffers beyond this many are freed instead of kept (a consumer that once held many
    /// batches does not pin their memory forever).
    keep: usize,
}

impl Pool {
    pub(crate) fn new(keep: usize) -> Arc<Pool> {
        Arc::new(Pool {
            free: Mutex::new(Vec::with_capacity(keep)),
            keep,
        })
    }
    pub(crate) fn take(&self) -> BatchBuf {
        self.free.lock().pop().unwrap_or_default()
    }
    pub(crate) fn put(&self, buf: BatchBuf) {
        let mut free = self.free.lock();
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

/// One minibatch: `len()` samples, their ids, labels, loss weights and data, in plan order;
/// and, when the source has them, typed targets and a mask.
pub struct Batch {
    buf: Option<BatchBuf>,
    pool: Arc<Pool>,
}

impl Batch {
    /// A batch whose buffer the worker filled (`data.present` set, shapes described).
    pub(crate) fn new(buf: BatchBuf, pool: Arc<Pool>) -> Batch {
        Batch {
            buf: Some(buf),
            pool,
        }
    }
    /// A batch of ids, weights and padding with no data and no labels (index mode).
    pub(crate) fn without_data(mut buf: BatchBuf, pool: Arc<Pool>) -> Batch {
        let n = buf.ids.len();
        buf.data.clear();
        buf.data.shape.extend([n, 0, 0, 0]);
        buf.targets.clear();
        buf.mask.clear();
        buf.labels.clear();
        Batch::new(buf, pool)
    }
    /// Whether the batch carries samples; false in index mode, where `labels`, `data_bytes`
    /// and `data_f32` are empty and `shape` is [len, 0, 0, 0].
    pub fn has_data(&self) -> bool {
        self.buf().data.present
    }
    fn buf(&self) -> &BatchBuf {
        self.buf.as_ref().expect("a live batch has its buffer")
    }
    pub fn len(&self) -> usize {
        self.buf().ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn ids(&self) -> &[u64] {
        &self.buf().ids
    }
    /// The int64 class labels, one per sample; empty when the source has no class labels
    /// (token blocks, float or multi-dimensional targets, npy without `y`) and in index mode.
    pub fn labels(&self) -> &[i64] {
        &self.buf().labels
    }
    pub fn weights(&self) -> &[f32] {
        &self.buf().weights
    }
    /// The epoch this batch belongs to.
    pub fn epoch(&self) -> u64 {
        self.buf().epoch
    }
    /// Its position within the epoch (0-based).
    pub fn index(&self) -> usize {
        self.buf().index
    }
    /// How many of the trailing samples are padding: with `world_size` > 1 the last batch of
    /// an epoch is filled up with repeats (weight 0) so every rank has as many full batches.
    /// Their feedback is not needed; `ids()[..len() - padding()]` are the real ones.
    pub fn padding(&self) -> usize {
        self.buf().padding
    }
    /// The data's element type: the transform's (u8 or f32) for images, the file's for tensor
    /// sources.
    pub fn dtype(&self) -> Dtype {
        self.buf().data.dtype
    }
    /// The data's full shape, [B, ...sample dims]: [B, C, H, W] (nchw) or [B, H, W, C] (nhwc)
    /// for images, [B, ...] as in the file for tensor sources, [B, block] for token blocks.
    pub fn shape(&self) -> &[usize] {
        &self.buf().data.shape
    }
    /// The data as raw bytes (values in native byte order).
    pub fn data_bytes(&self) -> &[u8] {
        self.buf().data.bytes.as_bytes()
    }
    /// The data's address; 64-byte aligned.
    pub fn data_ptr(&self) -> *const u8 {
        self.buf().data.bytes.as_ptr()
    }
    /// The data as f32 values, when the dtype is f32.
    pub fn data_f32(&self) -> Option<&[f32]> {
        (self.dtype() == Dtype::F32).then(|| {
            let b = self.data_bytes();
            // SAFETY: 64-byte aligned storage holding len/4 f32 values.
            unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) }
        })
    }
    /// The data as a typed view (`None` in index mode).
    pub fn data(&self) -> Option<TensorView<'_>> {
        self.buf().data.view()
    }
    /// The typed targets, [B, ...]: `y` of an npy source in its own dtype, the next tokens of
    /// a token block. `None` when the source has none. 64-byte aligned.
    pub fn targets(&self) -> Option<TensorView<'_>> {
        self.buf().targets.view()
    }
    /// The mask, u8 [B, block], 1 where a target is real: ragged token documents only.
    pub fn mask(&self) -> Option<TensorView<'_>> {
        self.buf().mask.view()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.put(buf);
        }
    }
}
