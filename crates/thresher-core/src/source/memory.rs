//! Samples held in memory: every sample back to back in one HWC byte buffer, and one label
//! each. In-memory arrays from the Rust API are one directly; the IDX and CIFAR parsers read
//! their files whole into one, so a read from any of them is a slice of the buffer.

use super::{SampleView, Scratch, Source};
use crate::error::{Error, Result};
use crate::util::prefetch;

pub struct MemorySource {
    /// N samples of `shape`, HWC, back to back.
    pixels: Vec<u8>,
    labels: Vec<i64>,
    /// (height, width, channels)
    shape: [usize; 3],
}

/// The Rust API's name for a `MemorySource` made from arrays (`ArraySource::new`).
pub type ArraySource = MemorySource;

impl MemorySource {
    /// `pixels` holds N samples of `shape` = (height, width, channels), HWC, back to back.
    pub fn new(pixels: Vec<u8>, shape: [usize; 3], labels: Vec<i64>) -> Result<Self> {
        let per = shape.iter().product::<usize>();
        if per == 0 {
            return Err(Error::invalid(format!(
                "array source: shape {shape:?} has a zero dimension"
            )));
        }
        if pixels.len() != per * labels.len() {
            return Err(Error::invalid(format!(
                "array source: {} pixel bytes is not {} labels × {per} bytes per sample",
                pixels.len(),
                labels.len()
            )));
        }
        Ok(Self::from_parts(pixels, shape, labels))
    }

    /// For the file parsers, which have already checked the sizes against the file's own
    /// header (and word their errors with its path).
    pub(super) fn from_parts(pixels: Vec<u8>, shape: [usize; 3], labels: Vec<i64>) -> Self {
        debug_assert_eq!(pixels.len(), shape.iter().product::<usize>() * labels.len());
        MemorySource {
            pixels,
            labels,
            shape,
        }
    }

    fn sample_bytes(&self) -> usize {
        self.shape.iter().product()
    }

    /// Keeps only the first `n` samples (no-op when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n < self.labels.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.sample_bytes());
        }
    }
}

impl Source for MemorySource {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        Some(self.shape)
    }
    fn read<'a>(&'a self, id: usize, _scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        let per = self.sample_bytes();
        Ok(SampleView {
            pixels: &self.pixels[id * per..(id + 1) * per],
            height: self.shape[0],
            width: self.shape[1],
            channels: self.shape[2],
        })
    }
    fn label(&self, id: usize) -> i64 {
        self.labels[id]
    }
    fn prefetch(&self, id: usize) {
        if id >= self.labels.len() {
            return;
        }
        let per = self.sample_bytes();
        let (start, end) = (id * per, (id + 1) * per);
        let base = self.pixels.as_ptr();
        // One hint per 64 bytes from the start, and the last byte: every cache line the sample
        // touches, wherever it starts.
        for at in (start..end).step_by(64) {
            prefetch(base, at);
        }
        prefetch(base, end - 1);
        prefetch(self.labels.as_ptr(), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_and_bad_sizes() {
        let s = ArraySource::new((0..12).collect(), [2, 3, 1], vec![5, 6]).unwrap();
        let mut scratch = Scratch::default();
        assert_eq!(
            s.read(1, &mut scratch).unwrap().pixels,
            &[6, 7, 8, 9, 10, 11]
        );
        assert_eq!(s.label(1), 6);
        assert!(ArraySource::new(vec![0; 11], [2, 3, 1], vec![5, 6]).is_err());
        assert!(ArraySource::new(vec![], [0, 3, 1], vec![]).is_err());
    }

    #[test]
    fn prefetch_is_a_hint_at_any_id() {
        // 13-byte samples straddle cache lines at every offset; ids past the end are ignored.
        let n = 50;
        let s = MemorySource::new(
            (0..13 * n).map(|v| v as u8).collect(),
            [1, 13, 1],
            vec![3; n],
        )
        .unwrap();
        let mut scratch = Scratch::default();
        for id in [0, 1, 4, n - 1, n, n + 7, usize::MAX / 13, usize::MAX] {
            s.prefetch(id);
        }
        for id in 0..n {
            s.prefetch(id);
            let want: Vec<u8> = (13 * id..13 * (id + 1)).map(|v| v as u8).collect();
            assert_eq!(s.read(id, &mut scratch).unwrap().pixels, &want[..]);
        }
    }

    #[test]
    fn truncate_keeps_the_first_samples() {
        let mut s = MemorySource::new((0..12).collect(), [1, 2, 2], vec![1, 2, 3]).unwrap();
        s.truncate(5);
        assert_eq!(s.len(), 3);
        s.truncate(2);
        assert_eq!((s.len(), s.label(1)), (2, 2));
        assert_eq!(
            s.read(1, &mut Scratch::default()).unwrap().pixels,
            &[4, 5, 6, 7]
        );
    }
}
