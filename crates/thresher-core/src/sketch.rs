//! A fixed, seeded random projection for gradient embeddings (Johnson–Lindenstrauss): vectors
//! longer than `sketch_dim` = k are multiplied on arrival by a sparse k × d sign matrix, so inner
//! products (and the influence policy's Hessian) are preserved in expectation. Same seed and
//! input length ⇒ same matrix on every rank and after a resume.
//!
//! The matrix is never stored: a dense k × d matrix for a whole-network gradient (d in the tens
//! of millions) would take tens of gigabytes. It is a sparse JL transform (Kane & Nelson's block
//! construction): the k rows are cut into s blocks of about k/s rows, and column i has exactly
//! one non-zero in each block, ±1/√s, at a row and with a sign taken from one SplitMix64 draw
//! keyed by (seed, d, k) at position i·s + b. So E[SᵀS] = I, every entry is a pure function of
//! (seed, d, k, i, b), and projecting costs s·d operations a vector instead of k·d. Each output
//! is accumulated in f64 over the columns in increasing order, so the result does not depend on
//! how the work is split (one thread here; there is no other order).
//!
//! For short inputs the draws of every column are computed once and kept (`cache`, at most
//! `CACHE_ENTRIES` of them); long inputs recompute them per call, a chunk of columns at a time,
//! shared by every vector of the call. Both read the same table entries in the same order, so
//! they give bit-identical results.

use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};

/// Non-zeros per column (at most k). Eight keeps the distortion of a sparse JL transform close
/// to a dense Gaussian one's at this k while costing 8 operations per input value.
const SPARSITY: usize = 8;

/// The longest embedding accepted (`embedding_dim`): 2³⁰ floats, 4 GiB a vector — well above a
/// whole ResNet-50 gradient — and small enough that every size derived from it fits a u64.
pub const MAX_EMBEDDING_DIM: usize = 1 << 30;

/// Columns whose draws are kept between calls: the whole table for inputs up to
/// `CACHE_ENTRIES / s` long (4 bytes an entry, 4 MiB).
const CACHE_ENTRIES: usize = 1 << 20;

/// Columns whose draws are made at once for an uncached input.
const CHUNK: usize = 4096;

/// Rows projected together: they share each chunk of draws, and their accumulators (8·k bytes
/// a row) stay bounded however many rows a call has.
const ROW_BLOCK: usize = 64;

/// One table entry: the row (low 31 bits) and the sign (top bit set = negative).
const NEGATIVE: u32 = 1 << 31;

#[derive(Clone, Debug)]
pub(crate) struct Sketch {
    /// k, the longest vector stored as is.
    max_dim: usize,
    seed: u64,
    /// Input length, fixed by the first embedding (0 = none yet).
    in_dim: usize,
    /// The generator's starting state for (seed, in_dim, k).
    base: u64,
    /// s = min(SPARSITY, k).
    per_column: usize,
    /// The whole table when in_dim > k and in_dim · s ≤ CACHE_ENTRIES; empty otherwise.
    cache: Vec<u32>,
}

/// Refuses an embedding length `d` above `MAX_EMBEDDING_DIM` or other than `first`, the one
/// the first embedding fixed (0: none yet).
pub(crate) fn check_dim(first: usize, d: usize) -> Result<()> {
    if d > MAX_EMBEDDING_DIM {
        return Err(Error::invalid(format!(
            "feedback: embedding_dim = {d} is above the limit {MAX_EMBEDDING_DIM}"
        )));
    }
    if first != 0 && d != first {
        return Err(Error::invalid(format!(
            "feedback: embedding_dim = {d} but earlier embeddings had {first}"
        )));
    }
    Ok(())
}

impl Sketch {
    pub(crate) fn new(max_dim: usize, seed: u64) -> Self {
        Sketch {
            max_dim,
            seed,
            in_dim: 0,
            base: 0,
            per_column: SPARSITY.min(max_dim.max(1)),
            cache: Vec::new(),
        }
    }

    /// Fixes the input length (idempotent; `d` ≤ MAX_EMBEDDING_DIM, checked by `check_dim`).
    pub(crate) fn fix_dim(&mut self, d: usize) {
        if self.in_dim != 0 || d == 0 {
            return;
        }
        self.in_dim = d;
        if d > self.max_dim {
            // The same key as the dense projection this replaced: (seed, d, k).
            let rng = Rng::new(self.seed, Stream::Projection, d as u64, self.max_dim as u64);
            self.base = rng.state();
            if d * self.per_column <= CACHE_ENTRIES {
                let mut cache = vec![0; d * self.per_column];
                self.draws(0, &mut cache);
                self.cache = cache;
            }
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

    /// The stored length an input of length `d` would get.
    pub(crate) fn out_dim_for(&self, d: usize) -> usize {
        d.min(self.max_dim)
    }

    /// The table entries of columns `first..first + out.len() / s`, in column-major order.
    fn draws(&self, first: usize, out: &mut [u32]) {
        let (k, s) = (self.max_dim, self.per_column);
        for (c, column) in out.chunks_exact_mut(s).enumerate() {
            let position = ((first + c) * s) as u64;
            for (b, entry) in column.iter_mut().enumerate() {
                let h = Rng::at(self.base, position + b as u64);
                // Block b covers rows [b·k/s, (b+1)·k/s); a row of it from the high 32 bits
                // (multiply-shift: a bias below k/2³², far under the sketch's own error).
                let (lo, hi) = (b * k / s, (b + 1) * k / s);
                let row = lo + (((h >> 32) * (hi - lo) as u64) >> 32) as usize;
                *entry = row as u32 | if h & 1 == 1 { NEGATIVE } else { 0 };
            }
        }
    }

    /// Projects `rows` (each `in_dim` long) and hands each result (`out_dim` long) to
    /// `store` with the row's index.
    pub(crate) fn project_rows(&self, rows: &[&[f32]], mut store: impl FnMut(usize, &[f32])) {
        let (d, k, s) = (self.in_dim, self.max_dim, self.per_column);
        if d <= k {
            for (i, x) in rows.iter().enumerate() {
                store(i, x);
            }
            return;
        }
        // Rows go ROW_BLOCK at a time, so the f64 accumulators stay small whatever the call's
        // length; each row's sum is the same whichever block it is in.
        let mut acc = vec![0f64; ROW_BLOCK.min(rows.len()) * k];
        let mut table = if self.cache.is_empty() {
            vec![0u32; CHUNK * s]
        } else {
            Vec::new()
        };
        let mut out = vec![0f32; k];
        let scale = 1.0 / (s as f64).sqrt();
        for (b, block) in rows.chunks(ROW_BLOCK).enumerate() {
            let acc = &mut acc[..block.len() * k];
            acc.fill(0.0);
            let mut add = |table: &[u32], first: usize| {
                let cols = table.len() / s;
                for (x, a) in block.iter().zip(acc.chunks_exact_mut(k)) {
                    for (&v, entries) in x[first..first + cols].iter().zip(table.chunks_exact(s)) {
                        let bits = (v as f64).to_bits();
                        for &e in entries {
                            // The sign flips the value's sign bit: random signs would defeat
                            // the branch predictor.
                            let signed = f64::from_bits(bits ^ (((e & NEGATIVE) as u64) << 32));
                            a[(e & !NEGATIVE) as usize] += signed;
                        }
                    }
                }
            };
            if !self.cache.is_empty() {
                add(&self.cache, 0);
            } else {
                for first in (0..d).step_by(CHUNK) {
                    let cols = CHUNK.min(d - first);
                    self.draws(first, &mut table[..cols * s]);
                    add(&table[..cols * s], first);
                }
            }
            for (i, a) in acc.chunks_exact(k).enumerate() {
                for (o, &v) in out.iter_mut().zip(a) {
                    *o = (v * scale) as f32;
                }
                store(b * ROW_BLOCK + i, &out);
            }
        }
    }

    /// Projects one vector (`x` is `in_dim` long, `out` is `out_dim` long).
    #[cfg(test)]
    pub(crate) fn project(&self, x: &[f32], out: &mut [f32]) {
        self.project_rows(&[x], |_, p| out.copy_from_slice(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(d: usize) -> Vec<f32> {
        (0..d)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect()
    }

    #[test]
    fn projection_roughly_preserves_norms_and_inner_products() {
        let mut s = Sketch::new(256, 1);
        s.fix_dim(2048);
        let x = vector(2048);
        let z: Vec<f32> = (0..2048)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0)
            .collect();
        let (mut px, mut pz) = (vec![0.0; 256], vec![0.0; 256]);
        s.project(&x, &mut px);
        s.project(&z, &mut pz);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
        let ratio = (dot(&px, &px) / dot(&x, &x)).sqrt();
        assert!((0.8..1.2).contains(&ratio), "{ratio}");
        let cos = |a: &[f32], b: &[f32]| dot(a, b) / (dot(a, a) * dot(b, b)).sqrt();
        assert!((cos(&px, &pz) - cos(&x, &z)).abs() < 0.15);
    }

    #[test]
    fn cached_and_generated_tables_give_identical_projections() {
        // Just above the cache limit vs the same matrix made cached: force both paths on one
        // input length by clearing the cache of a copy.
        let d = CACHE_ENTRIES / SPARSITY;
        let mut cached = Sketch::new(64, 9);
        cached.fix_dim(d);
        assert!(!cached.cache.is_empty());
        let mut generated = cached.clone();
        generated.cache = Vec::new();
        let x = vector(d);
        let y: Vec<f32> = x.iter().map(|v| v * -0.5 + 0.25).collect();
        let run = |s: &Sketch| {
            let mut out = vec![0f32; 128];
            s.project_rows(&[&x, &y], |i, p| {
                out[i * 64..(i + 1) * 64].copy_from_slice(p)
            });
            out
        };
        assert_eq!(run(&cached), run(&generated));
        // More rows than a block: each the same as alone.
        let many: Vec<Vec<f32>> = (0..ROW_BLOCK + 3)
            .map(|r| x.iter().map(|v| v * (r as f32 - 30.0)).collect())
            .collect();
        let refs: Vec<&[f32]> = many.iter().map(|v| v.as_slice()).collect();
        let mut together = vec![0f32; refs.len() * 64];
        generated.project_rows(&refs, |i, p| {
            together[i * 64..(i + 1) * 64].copy_from_slice(p)
        });
        for (i, row) in refs.iter().enumerate() {
            let mut alone = vec![0f32; 64];
            cached.project(row, &mut alone);
            assert_eq!(alone, together[i * 64..(i + 1) * 64], "row {i}");
        }
        // One vector at a time gives the same as both at once.
        let mut one = vec![0f32; 64];
        generated.project(&y, &mut one);
        assert_eq!(one, run(&cached)[64..]);
    }

    #[test]
    fn each_column_has_one_entry_per_block_and_the_seed_fixes_them() {
        let mut a = Sketch::new(20, 3);
        a.fix_dim(50);
        let s = a.per_column;
        for column in a.cache.chunks_exact(s) {
            for (b, &e) in column.iter().enumerate() {
                let row = (e & !NEGATIVE) as usize;
                assert!((b * 20 / s..(b + 1) * 20 / s).contains(&row), "{row} {b}");
            }
        }
        let mut same = Sketch::new(20, 3);
        same.fix_dim(50);
        assert_eq!(a.cache, same.cache);
        let mut other = Sketch::new(20, 4);
        other.fix_dim(50);
        assert_ne!(a.cache, other.cache);
        // Both signs occur.
        assert!(a.cache.iter().any(|e| e & NEGATIVE != 0));
        assert!(a.cache.iter().any(|e| e & NEGATIVE == 0));
    }

    #[test]
    fn a_long_input_costs_no_table() {
        let mut s = Sketch::new(512, 1);
        s.fix_dim(MAX_EMBEDDING_DIM);
        assert!(s.cache.is_empty());
        assert_eq!(s.out_dim(), 512);
        assert!(check_dim(s.in_dim(), MAX_EMBEDDING_DIM + 1).is_err());
    }

    /// Times the cached and generated paths (`cargo test --release -p thresher-core
    /// sketch_timing -- --ignored --nocapture`): the figure behind keeping the cache.
    #[test]
    #[ignore]
    fn sketch_timing() {
        for (d, rows) in [
            (4096, 1),
            (4096, 256),
            (CACHE_ENTRIES / SPARSITY, 16),
            (11_000_000, 1),
        ] {
            let mut cached = Sketch::new(512, 1);
            cached.fix_dim(d);
            let mut generated = cached.clone();
            generated.cache = Vec::new();
            let x = vector(d * rows);
            let r: Vec<&[f32]> = x.chunks_exact(d).collect();
            for (name, s) in [("cached", &cached), ("generated", &generated)] {
                let t = std::time::Instant::now();
                let mut sum = 0f32;
                for _ in 0..3 {
                    s.project_rows(&r, |_, p| sum += p[0]);
                }
                println!(
                    "d={d} rows={rows} {name}: {:?} per call ({sum})",
                    t.elapsed() / 3
                );
            }
        }
    }
}
