//! Batches and the pool of their buffers. A batch's memory is lent to the consumer until it is
//! dropped (released), then goes back to the pool for the next batch, so steady state allocates
//! nothing. Each batch holds the pool by `Arc`: releasing a batch after its loader is gone is
//! safe (the buffer is then simply freed).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::transform::Dtype;

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
    pub(crate) fn set_len(&mut self, len: usize) {
        let need = len.div_ceil(64);
        if self.lines.len() < need {
            self.lines.resize(need, Line([0; 64]));
        }
        self.len = len;
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

/// The reusable part of a batch.
#[derive(Default)]
pub(crate) struct BatchBuf {
    pub(crate) data: AlignedBuf,
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

/// One minibatch: `len()` samples, their ids, labels, loss weights and data, in plan order.
pub struct Batch {
    buf: Option<BatchBuf>,
    pool: Arc<Pool>,
    dtype: Dtype,
    /// Per-sample shape in the configured layout.
    sample_shape: [usize; 3],
    /// False for a batch of a loader in index mode (source kind `index`): ids, weights and
    /// padding only; the user's own pipeline reads the samples.
    has_data: bool,
}

impl Batch {
    pub(crate) fn new(
        buf: BatchBuf,
        pool: Arc<Pool>,
        dtype: Dtype,
        sample_shape: [usize; 3],
    ) -> Batch {
        Batch {
            buf: Some(buf),
            pool,
            dtype,
            sample_shape,
            has_data: true,
        }
    }
    /// A batch of ids, weights and padding with no data and no labels (index mode).
    pub(crate) fn without_data(buf: BatchBuf, pool: Arc<Pool>) -> Batch {
        Batch {
            buf: Some(buf),
            pool,
            dtype: Dtype::U8,
            sample_shape: [0; 3],
            has_data: false,
        }
    }
    /// Whether the batch carries samples and labels; false in index mode, where `labels`,
    /// `data_bytes` and `data_f32` are empty and `shape` is [len, 0, 0, 0].
    pub fn has_data(&self) -> bool {
        self.has_data
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
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
    /// [B, C, H, W] (nchw) or [B, H, W, C] (nhwc).
    pub fn shape(&self) -> [usize; 4] {
        let [a, b, c] = self.sample_shape;
        [self.len(), a, b, c]
    }
    /// The data as raw bytes (f32 data in native byte order).
    pub fn data_bytes(&self) -> &[u8] {
        self.buf().data.as_bytes()
    }
    /// The data's address; 64-byte aligned.
    pub fn data_ptr(&self) -> *const u8 {
        self.buf().data.as_ptr()
    }
    /// The data as f32 values, when the dtype is f32.
    pub fn data_f32(&self) -> Option<&[f32]> {
        (self.dtype == Dtype::F32).then(|| {
            let b = self.data_bytes();
            // SAFETY: 64-byte aligned storage holding len/4 f32 values.
            unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) }
        })
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.put(buf);
        }
    }
}
