//! A fixed, seeded random projection for gradient embeddings (Johnson–Lindenstrauss): vectors
//! longer than `sketch_dim` are multiplied on arrival by a k × d Gaussian matrix with entries
//! N(0, 1/k), so inner products (and the influence policy's Hessian) are preserved in
//! expectation. Same seed and input length ⇒ same matrix on every rank and after a resume.

use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};

#[derive(Clone, Debug)]
pub(crate) struct Sketch {
    /// k, the longest vector stored as is.
    max_dim: usize,
    seed: u64,
    /// Input length, fixed by the first embedding (0 = none yet).
    in_dim: usize,
    /// k × in_dim row-major when in_dim > max_dim, else empty.
    matrix: Vec<f32>,
}

impl Sketch {
    pub(crate) fn new(max_dim: usize, seed: u64) -> Self {
        Sketch {
            max_dim,
            seed,
            in_dim: 0,
            matrix: Vec::new(),
        }
    }

    /// Refuses a length other than the one the first embedding fixed.
    pub(crate) fn check_dim(&self, d: usize) -> Result<()> {
        if self.in_dim != 0 && d != self.in_dim {
            return Err(Error::invalid(format!(
                "feedback: embedding_dim = {d} but earlier embeddings had {}",
                self.in_dim
            )));
        }
        Ok(())
    }

    /// Fixes the input length (idempotent) and builds the matrix when one is needed.
    pub(crate) fn fix_dim(&mut self, d: usize) {
        if self.in_dim != 0 {
            return;
        }
        self.in_dim = d;
        if d > self.max_dim {
            let k = self.max_dim;
            let mut rng = Rng::new(self.seed, Stream::Projection, d as u64, k as u64);
            let scale = (1.0 / k as f64).sqrt();
            self.matrix = (0..k * d)
                .map(|_| (gaussian(&mut rng) * scale) as f32)
                .collect();
        }
    }

    /// Input length fixed by the first embedding (0 = none yet).
    pub(crate) fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Stored length: the input length, or k when projected; 0 before the first embedding.
    pub(crate) fn out_dim(&self) -> usize {
        self.in_dim.min(self.max_dim)
    }

    pub(crate) fn project(&self, x: &[f32], out: &mut [f32]) {
        if self.matrix.is_empty() {
            out.copy_from_slice(x);
        } else {
            for (o, row) in out.iter_mut().zip(self.matrix.chunks_exact(self.in_dim)) {
                *o = row.iter().zip(x).map(|(a, b)| a * b).sum();
            }
        }
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.unit_f64(); // (0, 1]
    let u2 = rng.unit_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_roughly_preserves_norms() {
        let mut s = Sketch::new(256, 1);
        s.fix_dim(2048);
        let x: Vec<f32> = (0..2048)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut y = vec![0.0; 256];
        s.project(&x, &mut y);
        let n = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
        let ratio = n(&y) / n(&x);
        assert!((0.8..1.2).contains(&ratio), "{ratio}");
    }
}
