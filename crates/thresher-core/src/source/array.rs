//! In-memory arrays through the Rust API: N samples of H×W×C bytes and N labels.

use super::{SampleView, Scratch, Source};
use crate::error::{Error, Result};

pub struct ArraySource {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    shape: [usize; 3],
}

impl ArraySource {
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
        Ok(ArraySource {
            pixels,
            labels,
            shape,
        })
    }
}

impl Source for ArraySource {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        Some(self.shape)
    }
    fn read<'a>(&'a self, id: usize, _scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        let per = self.shape.iter().product::<usize>();
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
}
