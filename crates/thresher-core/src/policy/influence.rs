//! `influence` (Yang et al., ICLR 2023, "Dataset Pruning"; ALGORITHMS.md §7): after
//! `score_epochs` full-data epochs, one removal set R is chosen from the per-sample gradient
//! embeddings g_i and the complement is trained on for the rest of the run.
//!
//! Over the m samples that have an embedding (the others are never-seen and always kept):
//! H = (1/m)·Σ g_i g_iᵀ + λI, s_i = H⁻¹ g_i / m, so that removing R moves the parameters by
//! about Σ_{i∈R} s_i. Cardinality mode (`prune`) removes N − K samples, K = round((1−p)·N) as
//! for every other policy, minimising ‖Σ_R s_i‖₂; guarantee mode (`epsilon`) removes the
//! largest R found with ‖Σ_R s_i‖₂ ≤ ε. With neither key, cardinality mode at p = 0.3.
//!
//! Both problems are integer programs, solved heuristically (`choose_removal`): a greedy that
//! adds, from a pool of the smallest-norm unused s_i, the one leaving the running sum smallest;
//! then local search at fixed |R| — Kernighan–Lin swap passes from several first swaps, and
//! two-for-two exchanges that can bring in a pair of large, opposite vectors that cancel.
//! Guarantee mode searches the size: the greedy's longest prefix within ε, then sizes probed
//! from the top, then growth past ε repaired by swaps, then filling (single samples, then
//! pairs) while ‖Σ‖ stays within ε. Against brute force on small random instances the
//! cardinality answer is optimal about 99% of the time and guarantee mode finds the largest R
//! about as often. At scale the local search, not the optimum, limits how small ‖Σ‖ gets, so
//! an ε below what it reaches yields a smaller R than a cardinality run that reached ε.
//!
//! Costs, for m samples of dimension d (`sketch_dim`): m·d²/2 to accumulate H, d³/6 for its
//! Cholesky factor, m·d² for the solves, 4·m·d bytes to hold the s_i while R is chosen. At
//! m = 60 000, d = 512 (CPU time, one core of an AMD EPYC with AVX2): 2 s for the s_i, 1 s for
//! a cardinality R, 5–7 s for a guarantee R. All of it happens once, single-threaded (policies
//! start no threads).
//! The kept set, the achieved ‖Σ_R s_i‖ and λ are then fixed for the run.

use serde::Deserialize;

use super::{budget, check_prune, mean_std, PlanContext, Policy, Selection};
use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};

/// Prune fraction when neither `prune` nor `epsilon` is given (that of `random`), so that
/// `{"kind": "influence"}` alone is a usable config.
const DEFAULT_PRUNE: f64 = 0.3;
const MAX_SKETCH_DIM: usize = 8192;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluenceConfig {
    /// Cardinality mode: the fraction p removed. At most one of `prune` and `epsilon`; with
    /// neither, p = 0.3.
    #[serde(default)]
    pub prune: Option<f64>,
    /// Guarantee mode: the bound ε on ‖Σ_R s_i‖₂. The report's achieved norm (and the score
    /// mean, the mean ‖s_i‖) show its scale.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Full-data epochs that collect the embeddings before R is chosen.
    #[serde(default = "default_score_epochs")]
    pub score_epochs: u64,
    /// λ; default 1e-3·trace(G)/d with G = (1/m)·Σ g gᵀ, i.e. a thousandth of G's mean
    /// eigenvalue, enough to make H safely invertible without flattening its spectrum.
    #[serde(default)]
    pub damping: Option<f64>,
    /// Embeddings longer than this are randomly projected to it on arrival.
    #[serde(default = "default_sketch_dim")]
    pub sketch_dim: usize,
}

fn default_score_epochs() -> u64 {
    3
}
fn default_sketch_dim() -> usize {
    512
}

/// Which of the two problems of §7 the config asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InfluenceMode {
    /// Remove N − round((1−p)·N) samples minimising ‖Σ_R s_i‖₂.
    Cardinality { prune: f64 },
    /// Remove as many samples as possible with ‖Σ_R s_i‖₂ ≤ ε.
    Guarantee { epsilon: f64 },
}

impl InfluenceConfig {
    pub fn mode(&self) -> InfluenceMode {
        match (self.prune, self.epsilon) {
            (_, Some(epsilon)) => InfluenceMode::Guarantee { epsilon },
            (prune, None) => InfluenceMode::Cardinality {
                prune: prune.unwrap_or(DEFAULT_PRUNE),
            },
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.prune.is_some() && self.epsilon.is_some() {
            return Err(Error::invalid(
                "config keys `policy.prune` and `policy.epsilon`: give one, not both (prune \
                 fixes how many samples are removed, epsilon bounds their joint influence)",
            ));
        }
        if let Some(p) = self.prune {
            check_prune("policy.prune", p)?;
        }
        if let Some(e) = self.epsilon {
            if !(e.is_finite() && e >= 0.0) {
                return Err(Error::invalid(format!(
                    "config key `policy.epsilon`: {e} is not a finite number ≥ 0"
                )));
            }
        }
        if let Some(l) = self.damping {
            if !(l.is_finite() && l > 0.0) {
                return Err(Error::invalid(format!(
                    "config key `policy.damping`: {l} is not a finite number > 0"
                )));
            }
        }
        if self.score_epochs == 0 {
            return Err(Error::invalid(
                "config key `policy.score_epochs`: must be ≥ 1; the embeddings come from the \
                 feedback of the first epochs",
            ));
        }
        if !(1..=MAX_SKETCH_DIM).contains(&self.sketch_dim) {
            return Err(Error::invalid(format!(
                "config key `policy.sketch_dim`: {} is out of range 1..={MAX_SKETCH_DIM}",
                self.sketch_dim
            )));
        }
        Ok(())
    }
}

pub struct Influence {
    config: InfluenceConfig,
    n: usize,
    /// The complement of R (plus the never-seen), ascending; fixed once computed.
    kept: Option<Vec<u64>>,
    achieved: Option<f64>,
    damping: Option<f64>,
    /// Mean and std of ‖s_i‖ over the samples with an embedding.
    norm_stats: (f64, f64),
}

impl Influence {
    pub fn new(config: InfluenceConfig, n: usize) -> Self {
        Influence {
            config,
            n,
            kept: None,
            achieved: None,
            damping: None,
            norm_stats: (f64::NAN, f64::NAN),
        }
    }

    /// ‖Σ_{i∈R} s_i‖₂ of the chosen R; None before R is chosen.
    pub fn achieved_norm(&self) -> Option<f64> {
        self.achieved
    }

    /// λ as used (the default or the configured damping, ×10 per failed factorisation); None
    /// before R is chosen or when no sample had an embedding.
    pub fn damping(&self) -> Option<f64> {
        self.damping
    }

    fn choose(&mut self, book: &ScoreBook) -> Vec<u64> {
        let n = book.len();
        let d = book.embedding_dim();
        let rows: Vec<usize> = (0..n).filter(|&id| book.embedding(id).is_some()).collect();
        let all = || (0..n as u64).collect();
        if rows.is_empty() || d == 0 {
            self.achieved = Some(0.0);
            return all();
        }
        let Some(vectors) = influence_vectors(book.embeddings(), &rows, d, self.config.damping)
        else {
            // Only non-finite embeddings get here, and the ScoreBook refuses those.
            return all();
        };
        self.damping = Some(vectors.damping);
        self.norm_stats = mean_std(vectors.s.chunks_exact(d).map(|s| dot(s, s).sqrt() as f32));
        let target = match self.config.mode() {
            InfluenceMode::Cardinality { prune } => {
                Target::Count((n - budget(n, prune)).min(rows.len()))
            }
            InfluenceMode::Guarantee { epsilon } => Target::Within(epsilon),
        };
        let removal = choose_removal(&vectors.s, d, target);
        self.achieved = Some(removal.norm);
        let mut removed = vec![false; n];
        for &r in &removal.removed {
            removed[rows[r]] = true;
        }
        (0..n as u64).filter(|&id| !removed[id as usize]).collect()
    }
}

impl Policy for Influence {
    fn needs(&self) -> ScoreFields {
        ScoreFields::EMBEDDING
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        if ctx.epoch < self.config.score_epochs {
            let n = ctx.scores.len();
            out.ids.extend(0..n as u64);
            out.weights.resize(n, 1.0);
            out.score_mean = f64::NAN;
            out.score_std = f64::NAN;
            return;
        }
        if self.kept.is_none() {
            self.kept = Some(self.choose(ctx.scores));
        }
        let kept = self.kept.as_deref().unwrap_or_default();
        out.ids.extend_from_slice(kept);
        out.weights.resize(kept.len(), 1.0);
        (out.score_mean, out.score_std) = self.norm_stats;
    }

    /// The fixed subset and its figures, so a resumed run keeps R rather than re-solving from
    /// the resumed ScoreBook.
    fn save_state(&self) -> Vec<u8> {
        let nan = f64::NAN;
        let extra = [
            self.achieved.unwrap_or(nan),
            self.damping.unwrap_or(nan),
            self.norm_stats.0,
            self.norm_stats.1,
        ];
        super::save_subset(8, self.kept.as_deref(), &extra)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        match super::load_subset(bytes, 8, self.n) {
            Some(None) => {
                self.kept = None;
                true
            }
            Some(Some((ids, extra))) if extra.len() == 4 => {
                let some = |x: f64| (!x.is_nan()).then_some(x);
                self.kept = Some(ids);
                self.achieved = some(extra[0]);
                self.damping = some(extra[1]);
                self.norm_stats = (extra[2], extra[3]);
                true
            }
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Influence vectors: H, its Cholesky factor, the solves.

/// s_i = H⁻¹ g_i / m for the embeddings `rows` of `embeddings` (row-major, d per row), in that
/// order, as m × d f32 (the solve is in f64; f32 halves the memory of the only m × d buffer).
struct InfluenceVectors {
    s: Vec<f32>,
    /// λ as used: the given or default damping, times 10 for each failed factorisation.
    damping: f64,
}

/// Samples per block when accumulating H: a 64 × d f64 block (256 KiB at d = 512) stays in L2
/// while every tile of H is swept over it.
const GRAM_BLOCK: usize = 64;
/// The register tile of H, 4 × 8 f64 accumulators: the fastest of 2×4, 4×4 and 4×8 measured
/// with SSE2 and with AVX2.
const TILE_I: usize = 4;
const TILE_J: usize = 8;
/// Right-hand sides solved together: each row of the factor is read once per 16 samples instead
/// of once per sample, and 16 independent sums hide the latency of the additions. The solution
/// block (d × 16 f64) is 64 KiB at d = 512: L2.
const LANES: usize = 16;

fn influence_vectors(
    embeddings: &[f32],
    rows: &[usize],
    d: usize,
    damping: Option<f64>,
) -> Option<InfluenceVectors> {
    let m = rows.len();
    let mut g = gram_upper(embeddings, rows, d);
    let inv_m = 1.0 / m as f64;
    for i in 0..d {
        for j in i..d {
            let v = g[i * d + j] * inv_m;
            g[i * d + j] = v;
            g[j * d + i] = v;
        }
    }
    let trace: f64 = (0..d).map(|i| g[i * d + i]).sum();
    let mut lambda = damping.unwrap_or(1e-3 * trace / d as f64);
    if lambda <= 0.0 || !lambda.is_finite() {
        // All embeddings are zero: every s_i is 0 whatever λ > 0 is.
        lambda = 1.0;
    }
    // A λ far below G's rounding noise can leave H numerically indefinite; ×10 until the
    // factorisation succeeds (bounded: at λ ≫ ‖G‖, H ≈ λI always factors).
    let mut l = vec![0.0; d * d];
    let mut factored = false;
    for _ in 0..40 {
        l.copy_from_slice(&g);
        for i in 0..d {
            l[i * d + i] += lambda;
        }
        if cholesky(&mut l, d).is_ok() {
            factored = true;
            break;
        }
        lambda *= 10.0;
    }
    if !factored {
        return None;
    }
    drop(g);
    let lt = transpose(&l, d);
    let mut s = vec![0f32; m * d];
    let mut y = vec![0.0; d * LANES];
    for (chunk, out) in rows.chunks(LANES).zip(s.chunks_mut(LANES * d)) {
        y.fill(0.0);
        for (t, &r) in chunk.iter().enumerate() {
            for (i, &v) in embeddings[r * d..(r + 1) * d].iter().enumerate() {
                y[i * LANES + t] = v as f64;
            }
        }
        solve_lanes(&l, &lt, d, &mut y);
        for (t, o) in out.chunks_exact_mut(d).enumerate() {
            for (i, o) in o.iter_mut().enumerate() {
                *o = (y[i * LANES + t] * inv_m) as f32;
            }
        }
    }
    Some(InfluenceVectors { s, damping: lambda })
}

/// Σ g gᵀ over `rows`, upper triangle (j ≥ i) of a d × d row-major matrix; the lower triangle
/// is to be ignored. Blocks of GRAM_BLOCK samples are summed tile by tile in registers (no load
/// or store of H in the inner loop), then added to H: the order of the additions is fixed by
/// GRAM_BLOCK and the tile shape alone, so the result is the same on every machine.
fn gram_upper(embeddings: &[f32], rows: &[usize], d: usize) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the one requirement.
        return unsafe { gram_upper_avx2(embeddings, rows, d) };
    }
    gram_upper_impl(embeddings, rows, d)
}

/// `gram_upper_impl` compiled for AVX2: twice the vector width, the same bits (see
/// `solve_lanes`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gram_upper_avx2(embeddings: &[f32], rows: &[usize], d: usize) -> Vec<f64> {
    gram_upper_impl(embeddings, rows, d)
}

#[inline(always)]
fn gram_upper_impl(embeddings: &[f32], rows: &[usize], d: usize) -> Vec<f64> {
    // Pad to whole tiles with zero columns: the kernel then has no edge cases.
    let dp = d.div_ceil(TILE_J) * TILE_J;
    let mut h = vec![0.0; dp * dp];
    let mut block = vec![0.0; GRAM_BLOCK * dp];
    for chunk in rows.chunks(GRAM_BLOCK) {
        for (dst, &r) in block.chunks_exact_mut(dp).zip(chunk) {
            for (a, &b) in dst.iter_mut().zip(&embeddings[r * d..(r + 1) * d]) {
                *a = b as f64;
            }
        }
        let x = &block[..chunk.len() * dp];
        for i0 in (0..dp).step_by(TILE_I) {
            for j0 in (i0 / TILE_J * TILE_J..dp).step_by(TILE_J) {
                let mut acc = [[0.0f64; TILE_J]; TILE_I];
                for xs in x.chunks_exact(dp) {
                    let a: &[f64; TILE_I] = xs[i0..i0 + TILE_I].try_into().unwrap();
                    let v: &[f64; TILE_J] = xs[j0..j0 + TILE_J].try_into().unwrap();
                    for r in 0..TILE_I {
                        for c in 0..TILE_J {
                            acc[r][c] += a[r] * v[c];
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let row = &mut h[(i0 + r) * dp + j0..(i0 + r) * dp + j0 + TILE_J];
                    for (p, &v) in row.iter_mut().zip(acc) {
                        *p += v;
                    }
                }
            }
        }
    }
    if dp == d {
        return h;
    }
    let mut out = vec![0.0; d * d];
    for (o, r) in out.chunks_exact_mut(d).zip(h.chunks_exact(dp)) {
        o.copy_from_slice(&r[..d]);
    }
    out
}

/// In-place Cholesky factorisation of the symmetric positive definite d × d row-major `a`
/// (only its lower triangle is read): on success `a` holds L, lower triangular with a zero upper
/// part, and a = L Lᵀ. On failure, the index of the first non-positive pivot.
fn cholesky(a: &mut [f64], d: usize) -> std::result::Result<(), usize> {
    for i in 0..d {
        let (above, rest) = a.split_at_mut(i * d);
        let row = &mut rest[..d];
        for j in 0..i {
            let lj = &above[j * d..j * d + j];
            row[j] = (row[j] - dot(&row[..j], lj)) / above[j * d + j];
        }
        let pivot = row[i] - dot(&row[..i], &row[..i]);
        if !(pivot > 0.0 && pivot.is_finite()) {
            return Err(i);
        }
        row[i] = pivot.sqrt();
        row[i + 1..].fill(0.0);
    }
    Ok(())
}

fn transpose(a: &[f64], d: usize) -> Vec<f64> {
    let mut t = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            t[j * d + i] = a[i * d + j];
        }
    }
    t
}

/// Solves L Lᵀ x = b for LANES right-hand sides at once; `y` is d × LANES (row i holds
/// component i of every right-hand side) and is overwritten by x. `lt` = Lᵀ, so both
/// substitutions read contiguous rows.
///
/// Where the CPU has AVX2 the same code runs compiled for it, about twice as fast. The bits do
/// not change: the kernel multiplies and adds lane by lane in an order fixed by the source, and
/// Rust neither fuses a·b + c into an FMA nor reassociates, so a wider vector only does more
/// lanes at once. Every rank therefore computes the same R, whatever its CPU.
fn solve_lanes(l: &[f64], lt: &[f64], d: usize, y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the one requirement.
        return unsafe { solve_lanes_avx2(l, lt, d, y) };
    }
    solve_lanes_impl(l, lt, d, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn solve_lanes_avx2(l: &[f64], lt: &[f64], d: usize, y: &mut [f64]) {
    solve_lanes_impl(l, lt, d, y)
}

#[inline(always)]
fn solve_lanes_impl(l: &[f64], lt: &[f64], d: usize, y: &mut [f64]) {
    for i in 0..d {
        let row = &l[i * d..i * d + i];
        let (done, cur) = y.split_at_mut(i * LANES);
        let mut acc = [0.0; LANES];
        for (&lik, yk) in row.iter().zip(done.chunks_exact(LANES)) {
            for t in 0..LANES {
                acc[t] += lik * yk[t];
            }
        }
        let diag = l[i * d + i];
        for t in 0..LANES {
            cur[t] = (cur[t] - acc[t]) / diag;
        }
    }
    for i in (0..d).rev() {
        let row = &lt[i * d + i + 1..(i + 1) * d];
        let (head, done) = y.split_at_mut((i + 1) * LANES);
        let cur = &mut head[i * LANES..];
        let mut acc = [0.0; LANES];
        for (&lik, yk) in row.iter().zip(done.chunks_exact(LANES)) {
            for t in 0..LANES {
                acc[t] += lik * yk[t];
            }
        }
        let diag = lt[i * d + i];
        for t in 0..LANES {
            cur[t] = (cur[t] - acc[t]) / diag;
        }
    }
}

/// `dot(v, row)` for every row of `s` (d per row): the scans of the local search, m·d each, and
/// like `solve_lanes` compiled for AVX2 where the CPU has it, with the same bits.
fn dots_with(v: &[f64], s: &[f32], d: usize) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the one requirement.
        return unsafe { dots_with_avx2(v, s, d) };
    }
    dots_with_impl(v, s, d)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_with_avx2(v: &[f64], s: &[f32], d: usize) -> Vec<f64> {
    dots_with_impl(v, s, d)
}

#[inline(always)]
fn dots_with_impl(v: &[f64], s: &[f32], d: usize) -> Vec<f64> {
    s.chunks_exact(d).map(|row| dot(v, row)).collect()
}

/// Σ a_k b_k in f64 with eight fixed partial sums: vectorisable, and the same bits on every
/// machine (no reassociation is left to the compiler).
#[inline(always)]
fn dot<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..8 {
            acc[t] += x[t].into() * y[t].into();
        }
    }
    let mut tail = 0.0;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += x.into() * y.into();
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

// ---------------------------------------------------------------------------------------------
// Choosing R.

/// What R must satisfy.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// |R| = k (capped at m), ‖Σ_R s_i‖ as small as found.
    Count(usize),
    /// ‖Σ_R s_i‖ ≤ ε, |R| as large as found.
    Within(f64),
}

#[derive(Clone, Debug)]
struct Removal {
    /// Row indices into the vectors, ascending.
    removed: Vec<usize>,
    /// ‖Σ_R s_i‖₂.
    norm: f64,
}

/// The greedy's candidates: the POOL smallest-norm vectors not yet in R. The exact greedy would
/// scan all m vectors per step (m·|R|·d, ~5·10¹¹ for 60 000 × 512 at p = 0.3); 128 candidates
/// still leave room to steer the running sum back toward zero at 1/500 of that cost.
const POOL: usize = 128;
/// Candidates per side (leaving R, entering R) in one swap pass; a pass costs m·d for the dot
/// products with the running sum plus 3·SWAP_CANDIDATES²·d for the candidates' Gram blocks.
const SWAP_CANDIDATES: usize = 128;
/// First swaps tried per swap pass, each followed by its own Kernighan–Lin sequence. Against
/// brute force on 500 random instances (m 10–14, d 2–4, |R| 3–6) the optimum was found 90% of
/// the time with 8 starts, 98.6% with 32 and 99.6% with 64.
const KL_STARTS: usize = 64;
/// A sequence stops after this many swaps without a new best: long worsening runs almost never
/// come back, and the cap bounds a pass at KL_STARTS · (KL_DEPTH + gains) · SWAP_CANDIDATES²
/// cheap evaluations.
const KL_DEPTH: usize = 16;
/// Candidates per side in a pair pass: the pass tries every two-for-two exchange among them,
/// (PAIR_CANDIDATES²/2) · (2·PAIR_CANDIDATES)²/2 ≈ 3·10⁵ cheap evaluations at 24.
const PAIR_CANDIDATES: usize = 24;
/// Passes per improvement phase. Small instances converge in a few; at scale every pass still
/// helps (each roughly halved ‖Σ‖ on 60 000 × 512 random data) and the bound caps the cost at
/// about a second there.
const MAX_SWAP_PASSES: usize = 16;
/// Sizes whose cardinality answer guarantee mode computes at most (each a local search).
const MAX_PROBES: usize = 12;
/// Passes of the short local searches of guarantee mode (probing a size, growing by one).
const PROBE_PASSES: usize = 2;
/// Scans of `fill` (m·d each) per round of guarantee mode, and at its end. Within the bound the
/// result is maximal (no single sample can be added); the bound only binds at scale, where
/// near ε each scan adds just a few samples.
const ROUND_SCANS: usize = 16;
const MAX_SCANS: usize = 256;
/// Guarantee mode tries to grow R past ε (then swaps back under it) at most this often.
const MAX_GROW_ROUNDS: usize = 8;

/// Chooses R among the rows of `s` (m × d): the pool greedy, then swap passes (and, in
/// guarantee mode, more growth whenever swaps made room under ε). Deterministic: every choice
/// breaks ties by the smaller index.
fn choose_removal(s: &[f32], d: usize, target: Target) -> Removal {
    let mut search = Search::new(s, d);
    match target {
        Target::Count(k) => {
            let k = k.min(search.m);
            search.grow(k, &mut Vec::new());
            search.improve(MAX_SWAP_PASSES);
        }
        Target::Within(eps) => {
            let eps2 = eps * eps;
            let m = search.m;
            // f(k), the cardinality answer for size k, starts from the greedy's first k picks;
            // the greedy is deterministic, so one run to m gives every start, and the ‖S‖ along
            // the way bounds f from above: its longest prefix within ε is feasible for free.
            let mut path = Vec::with_capacity(m);
            search.grow(m, &mut path);
            let k_path = path
                .iter()
                .rposition(|&(_, s2)| s2 <= eps2)
                .map_or(0, |p| p + 1);
            let load = |search: &mut Search, k: usize| {
                search.clear();
                for &(j, _) in &path[..k] {
                    search.add(j);
                }
            };
            let probe = |search: &mut Search, k: usize, passes: usize| -> bool {
                load(search, k);
                search.improve(passes);
                search.sum2 <= eps2
            };
            // The largest k > k_path with f(k) ≤ ε. f is not monotone (f(1) is the smallest
            // norm, often over ε, while many larger sets cancel), so when there are few sizes
            // every one is tried, from the top. Otherwise, each with a short local search: a
            // grid of MAX_PROBES/2 sizes from m down to k_path finds the highest feasible grid
            // point, and bisection between it and the grid point above spends the rest.
            let mut best = None;
            if m <= MAX_PROBES {
                for k in (k_path + 1..=m).rev() {
                    if probe(&mut search, k, MAX_SWAP_PASSES) {
                        best = Some(search.snapshot());
                        break;
                    }
                }
            } else {
                let step = (m - k_path).div_ceil(MAX_PROBES / 2);
                let (mut lo, mut hi, mut probes) = (k_path, m + 1, 0);
                let mut k = m;
                while k > k_path {
                    probes += 1;
                    if probe(&mut search, k, PROBE_PASSES) {
                        lo = k;
                        best = Some(search.snapshot());
                        break;
                    }
                    hi = k;
                    k = k.saturating_sub(step);
                }
                while hi - lo > 1 && probes < MAX_PROBES {
                    let k = lo + (hi - lo) / 2;
                    probes += 1;
                    if probe(&mut search, k, PROBE_PASSES) {
                        lo = k;
                        best = Some(search.snapshot());
                    } else {
                        hi = k;
                    }
                }
            }
            match best {
                Some(state) => search.restore(state),
                None => load(&mut search, k_path),
            }
            // Then alternate: swaps shrink ‖S‖ and make room under ε, `fill` takes the room,
            // and a batch of greedy additions past ε is kept if swaps bring ‖S‖ back under it
            // (the batch doubles while that works and halves, undone, when it does not).
            let mut batch = 1;
            for _ in 0..MAX_GROW_ROUNDS {
                let before = search.size;
                search.improve(PROBE_PASSES);
                search.fill(eps2, ROUND_SCANS);
                if batch > 0 && search.size < m {
                    let saved = search.snapshot();
                    let target = (search.size + batch).min(m);
                    search.grow(target, &mut Vec::new());
                    search.improve(PROBE_PASSES);
                    if search.sum2 <= eps2 {
                        search.fill(eps2, ROUND_SCANS);
                        batch *= 2;
                    } else {
                        search.restore(saved);
                        batch /= 2;
                    }
                }
                if search.size == before && batch == 0 {
                    break;
                }
            }
            search.fill(eps2, MAX_SCANS);
        }
    }
    Removal {
        removed: (0..search.m).filter(|&j| search.member[j]).collect(),
        norm: search.sum2.max(0.0).sqrt(),
    }
}

/// R as a membership mask plus its running sum S = Σ_R s_i.
struct Search<'a> {
    s: &'a [f32],
    d: usize,
    m: usize,
    norm2: Vec<f64>,
    /// Row indices ascending by (‖s_j‖, j).
    by_norm: Vec<usize>,
    member: Vec<bool>,
    size: usize,
    sum: Vec<f64>,
    /// ‖S‖², recomputed from S after every change (never updated incrementally, so it cannot
    /// drift from the set it describes).
    sum2: f64,
}

impl<'a> Search<'a> {
    fn new(s: &'a [f32], d: usize) -> Self {
        let m = s.len() / d;
        let norm2: Vec<f64> = s.chunks_exact(d).map(|r| dot(r, r)).collect();
        let mut by_norm: Vec<usize> = (0..m).collect();
        by_norm.sort_unstable_by(|&a, &b| norm2[a].total_cmp(&norm2[b]).then(a.cmp(&b)));
        Search {
            s,
            d,
            m,
            norm2,
            by_norm,
            member: vec![false; m],
            size: 0,
            sum: vec![0.0; d],
            sum2: 0.0,
        }
    }

    fn row(&self, j: usize) -> &'a [f32] {
        &self.s[j * self.d..(j + 1) * self.d]
    }

    fn add(&mut self, j: usize) {
        debug_assert!(!self.member[j]);
        self.member[j] = true;
        self.size += 1;
        let row = self.row(j);
        for (a, &b) in self.sum.iter_mut().zip(row) {
            *a += b as f64;
        }
        self.sum2 = dot(&self.sum, &self.sum);
    }

    fn remove(&mut self, j: usize) {
        debug_assert!(self.member[j]);
        self.member[j] = false;
        self.size -= 1;
        let row = self.row(j);
        for (a, &b) in self.sum.iter_mut().zip(row) {
            *a -= b as f64;
        }
        self.sum2 = dot(&self.sum, &self.sum);
    }

    /// Adds j if the exact ‖S + s_j‖ stays within ε (the estimate from `with` can differ from
    /// it in the last bit); whether it did.
    fn add_within(&mut self, j: usize, eps2: f64) -> bool {
        self.add(j);
        if self.sum2 <= eps2 {
            return true;
        }
        self.remove(j);
        false
    }

    /// ‖S + s_j‖², from ‖S + s‖² = ‖S‖² + 2 S·s + ‖s‖².
    fn with(&self, j: usize) -> f64 {
        self.sum2 + 2.0 * dot(&self.sum, self.row(j)) + self.norm2[j]
    }

    fn clear(&mut self) {
        self.member.fill(false);
        self.size = 0;
        self.sum.fill(0.0);
        self.sum2 = 0.0;
    }

    fn snapshot(&self) -> (Vec<bool>, usize, Vec<f64>, f64) {
        (self.member.clone(), self.size, self.sum.clone(), self.sum2)
    }

    fn restore(&mut self, (member, size, sum, sum2): (Vec<bool>, usize, Vec<f64>, f64)) {
        (self.member, self.size, self.sum, self.sum2) = (member, size, sum, sum2);
    }

    /// The greedy: until |R| = k, adds, of the POOL smallest-norm non-members, the one that
    /// leaves ‖S‖ smallest. Each addition and the ‖S‖² after it go to `path`.
    fn grow(&mut self, k: usize, path: &mut Vec<(usize, f64)>) {
        let mut pool: Vec<usize> = Vec::with_capacity(POOL);
        let mut cursor = 0;
        while self.size < k {
            while pool.len() < POOL && cursor < self.m {
                let j = self.by_norm[cursor];
                cursor += 1;
                if !self.member[j] {
                    pool.push(j);
                }
            }
            let mut best: Option<(usize, f64)> = None;
            for (pos, &j) in pool.iter().enumerate() {
                let v = self.with(j);
                let better = match best {
                    None => true,
                    Some((b, bv)) => v < bv || (v == bv && j < pool[b]),
                };
                if better {
                    best = Some((pos, v));
                }
            }
            let Some((pos, _)) = best else { return };
            let j = pool.swap_remove(pos);
            self.add(j);
            path.push((j, self.sum2));
        }
    }

    /// Guarantee mode's growth: one scan (m·d) ranks every non-member by ‖S + s_j‖, the POOL
    /// best become the pool of a greedy that adds, while it stays within ε, the one leaving ‖S‖
    /// smallest; then a new scan. When no single sample fits, a pair that fits together is
    /// tried. Ends maximal — no single sample can be added — unless `scans` scans run out
    /// first (near ε each scan may find only a few that fit, as every addition turns S).
    fn fill(&mut self, eps2: f64, scans: usize) {
        for _ in 0..scans {
            let outside: Vec<usize> = (0..self.m).filter(|&j| !self.member[j]).collect();
            let c = self.dots_with_sum();
            // As `with`, from the same dot products.
            let with: Vec<f64> = outside
                .iter()
                .map(|&j| self.sum2 + 2.0 * c[j] + self.norm2[j])
                .collect();
            let mut order: Vec<usize> = (0..outside.len()).collect();
            let mut pool: Vec<usize> = candidates(std::mem::take(&mut order), |i| with[i], POOL)
                .into_iter()
                .filter(|&i| with[i] <= eps2)
                .map(|i| outside[i])
                .collect();
            let mut added = false;
            loop {
                let mut best: Option<(usize, f64)> = None;
                for (pos, &j) in pool.iter().enumerate() {
                    let v = self.with(j);
                    if best.is_none_or(|(_, bv)| v < bv) {
                        best = Some((pos, v));
                    }
                }
                match best {
                    Some((pos, v)) if v <= eps2 => {
                        let j = pool.swap_remove(pos);
                        if !self.add_within(j, eps2) {
                            break;
                        }
                        added = true;
                    }
                    _ => break,
                }
            }
            if !(added || self.add_pair(eps2)) {
                return;
            }
        }
    }

    /// c_j = S·s_j for every row.
    fn dots_with_sum(&self) -> Vec<f64> {
        dots_with(&self.sum, self.s, self.d)
    }

    /// Gram block: s_x·s_y for x in `a`, y in `b`, row-major |a| × |b|.
    fn gram(&self, a: &[usize], b: &[usize]) -> Vec<f64> {
        let mut g = Vec::with_capacity(a.len() * b.len());
        for &x in a {
            for &y in b {
                g.push(dot(self.row(x), self.row(y)));
            }
        }
        g
    }

    /// Non-members for the pair moves: the `count` best single additions, then the `count`
    /// largest vectors not among them. The largest are the ones a per-sample score never
    /// removes; a pair of them that cancels is the joint effect §7 is about, and a pair move
    /// is the only way to bring it in (each alone would blow up ‖S‖).
    fn pair_entrants(&self, c: &[f64], count: usize) -> Vec<usize> {
        let outside: Vec<usize> = (0..self.m).filter(|&j| !self.member[j]).collect();
        let mut list = candidates(outside, |j| self.norm2[j] + 2.0 * c[j], count);
        let best = list.len();
        for &j in self.by_norm.iter().rev() {
            if list.len() >= best + count {
                break;
            }
            if !self.member[j] && !list[..best].contains(&j) {
                list.push(j);
            }
        }
        list
    }

    /// Local search at fixed |R|: Kernighan–Lin swap passes, and a pair pass whenever those
    /// find nothing, until neither helps (at most `passes` passes in all). Whether ‖S‖ went
    /// down.
    fn improve(&mut self, passes: usize) -> bool {
        let mut improved = false;
        for _ in 0..passes {
            if !(self.swap_pass() || self.pair_pass()) {
                break;
            }
            improved = true;
        }
        improved
    }

    /// Keeps the moves just applied if the exact ‖S‖² is below `start`; otherwise undoes them
    /// (the caller's estimate was computed incrementally and may be off by rounding). Checking
    /// exactly makes every kept pass strictly decrease ‖S‖, so the search cannot cycle.
    fn keep_if_better(&mut self, start: f64, outs: &[usize], ins: &[usize]) -> bool {
        if self.sum2 < start {
            return true;
        }
        for &j in ins {
            self.remove(j);
        }
        for &j in outs {
            self.add(j);
        }
        false
    }

    /// One Kernighan–Lin pass at fixed |R|. Candidates: the SWAP_CANDIDATES members whose
    /// removal alone leaves ‖S‖ smallest and the SWAP_CANDIDATES non-members whose addition
    /// alone does. From these it builds sequences of swaps, each swap the best (r out, u in)
    /// among the candidates not yet moved — taken even when it makes ‖S‖ worse, so that a bad
    /// swap can be repaired by later ones — and applies the prefix with the smallest ‖S‖ of the
    /// best sequence. The sequences start from the KL_STARTS best first swaps: a single greedy
    /// sequence too often spends its first move on the wrong pair. Returns whether ‖S‖ went
    /// down.
    fn swap_pass(&mut self) -> bool {
        if self.size == 0 || self.size == self.m {
            return false;
        }
        let c = self.dots_with_sum();
        let out = candidates(
            (0..self.m).filter(|&j| self.member[j]).collect(),
            |j| self.norm2[j] - 2.0 * c[j],
            SWAP_CANDIDATES,
        );
        let inn = candidates(
            (0..self.m).filter(|&j| !self.member[j]).collect(),
            |j| self.norm2[j] + 2.0 * c[j],
            SWAP_CANDIDATES,
        );
        let table = SwapTable {
            g_oi: self.gram(&out, &inn),
            g_oo: self.gram(&out, &out),
            g_ii: self.gram(&inn, &inn),
            c_out: out.iter().map(|&j| c[j]).collect(),
            c_in: inn.iter().map(|&j| c[j]).collect(),
            n_out: out.iter().map(|&j| self.norm2[j]).collect(),
            n_in: inn.iter().map(|&j| self.norm2[j]).collect(),
        };
        let start = self.sum2;
        let (po, pi) = (out.len(), inn.len());
        let mut firsts: Vec<(f64, usize, usize)> = Vec::with_capacity(po * pi);
        for a in 0..po {
            for b in 0..pi {
                firsts.push((
                    table.swap_value(start, &table.c_out, &table.c_in, a, b),
                    a,
                    b,
                ));
            }
        }
        let cmp = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2)))
        };
        if firsts.len() > KL_STARTS {
            firsts.select_nth_unstable_by(KL_STARTS, cmp);
            firsts.truncate(KL_STARTS);
        }
        firsts.sort_unstable_by(cmp);
        let mut best: (f64, Vec<(usize, usize)>) = (start, Vec::new());
        for &(_, a, b) in &firsts {
            let (value, moves) = table.chain(start, (a, b));
            if value < best.0 {
                best = (value, moves);
            }
        }
        if best.1.is_empty() {
            return false;
        }
        let outs: Vec<usize> = best.1.iter().map(|&(a, _)| out[a]).collect();
        let ins: Vec<usize> = best.1.iter().map(|&(_, b)| inn[b]).collect();
        for (&o, &i) in outs.iter().zip(&ins) {
            self.remove(o);
            self.add(i);
        }
        self.keep_if_better(start, &outs, &ins)
    }

    /// The best exchange of two members for two non-members, over PAIR_CANDIDATES members (by
    /// single-removal gain) and the `pair_entrants`. The swap pass cannot find such a move when
    /// the first half of it is worse than some other single swap (its greedy sequence takes
    /// that one instead); this pass looks at the pair as one move.
    fn pair_pass(&mut self) -> bool {
        if self.size < 2 || self.m - self.size < 2 {
            return false;
        }
        let c = self.dots_with_sum();
        let out = candidates(
            (0..self.m).filter(|&j| self.member[j]).collect(),
            |j| self.norm2[j] - 2.0 * c[j],
            PAIR_CANDIDATES,
        );
        let inn = self.pair_entrants(&c, PAIR_CANDIDATES);
        let (po, pi) = (out.len(), inn.len());
        let g_oi = self.gram(&out, &inn);
        let g_oo = self.gram(&out, &out);
        let g_ii = self.gram(&inn, &inn);
        // ‖S − s_r1 − s_r2 + s_u1 + s_u2‖² = ‖S‖² + (n_r1 − 2c_r1) + (n_r2 − 2c_r2) + 2 s_r1·s_r2
        //   + (n_u1 + 2c_u1) + (n_u2 + 2c_u2) + 2 s_u1·s_u2 − 2 Σ s_r·s_u.
        let gain_out: Vec<f64> = out.iter().map(|&j| self.norm2[j] - 2.0 * c[j]).collect();
        let gain_in: Vec<f64> = inn.iter().map(|&j| self.norm2[j] + 2.0 * c[j]).collect();
        let start = self.sum2;
        let mut pick: Option<(usize, usize, usize, usize, f64)> = None;
        let mut cross = vec![0.0; pi];
        for a1 in 0..po {
            for a2 in a1 + 1..po {
                let base = start + gain_out[a1] + gain_out[a2] + 2.0 * g_oo[a1 * po + a2];
                for (b, x) in cross.iter_mut().enumerate() {
                    *x = g_oi[a1 * pi + b] + g_oi[a2 * pi + b];
                }
                for b1 in 0..pi {
                    let base = base + gain_in[b1] - 2.0 * cross[b1];
                    for b2 in b1 + 1..pi {
                        let v = base + gain_in[b2] + 2.0 * g_ii[b1 * pi + b2] - 2.0 * cross[b2];
                        if pick.is_none_or(|p| v < p.4) {
                            pick = Some((a1, a2, b1, b2, v));
                        }
                    }
                }
            }
        }
        let Some((a1, a2, b1, b2, v)) = pick else {
            return false;
        };
        if v >= start {
            return false;
        }
        let (outs, ins) = ([out[a1], out[a2]], [inn[b1], inn[b2]]);
        for j in outs {
            self.remove(j);
        }
        for j in ins {
            self.add(j);
        }
        self.keep_if_better(start, &outs, &ins)
    }

    /// Guarantee mode: adds the two `pair_entrants` whose joint addition leaves ‖S‖ smallest,
    /// if that stays ≤ ε (two large opposite vectors can fit together when neither fits alone).
    fn add_pair(&mut self, eps2: f64) -> bool {
        if self.m - self.size < 2 {
            return false;
        }
        let c = self.dots_with_sum();
        let inn = self.pair_entrants(&c, PAIR_CANDIDATES);
        let pi = inn.len();
        let g_ii = self.gram(&inn, &inn);
        let mut pick: Option<(usize, usize, f64)> = None;
        for b1 in 0..pi {
            for b2 in b1 + 1..pi {
                let (u1, u2) = (inn[b1], inn[b2]);
                let v = self.sum2
                    + self.norm2[u1]
                    + 2.0 * c[u1]
                    + self.norm2[u2]
                    + 2.0 * c[u2]
                    + 2.0 * g_ii[b1 * pi + b2];
                if pick.is_none_or(|p| v < p.2) {
                    pick = Some((b1, b2, v));
                }
            }
        }
        match pick {
            Some((b1, b2, v)) if v <= eps2 => {
                self.add(inn[b1]);
                self.add(inn[b2]);
                if self.sum2 <= eps2 {
                    return true;
                }
                // Rounding put the exact sum just over ε: undo.
                self.remove(inn[b2]);
                self.remove(inn[b1]);
                false
            }
            _ => false,
        }
    }
}

/// A swap pass's candidates (out: members, in: non-members) with their dot products with S
/// (c), squared norms (n) and Gram blocks, row-major.
struct SwapTable {
    g_oi: Vec<f64>,
    g_oo: Vec<f64>,
    g_ii: Vec<f64>,
    c_out: Vec<f64>,
    c_in: Vec<f64>,
    n_out: Vec<f64>,
    n_in: Vec<f64>,
}

impl SwapTable {
    /// ‖S − s_out[a] + s_in[b]‖² = ‖S‖² − 2c_a + n_a + 2c_b + n_b − 2 s_a·s_b.
    fn swap_value(&self, sum2: f64, c_out: &[f64], c_in: &[f64], a: usize, b: usize) -> f64 {
        let pi = self.c_in.len();
        sum2 - 2.0 * c_out[a] + self.n_out[a] + 2.0 * c_in[b] + self.n_in[b]
            - 2.0 * self.g_oi[a * pi + b]
    }

    /// The Kernighan–Lin sequence that starts with `first`: the smallest ‖S‖² reached and the
    /// moves that reach it (empty when no prefix beats `sum2`).
    fn chain(&self, sum2: f64, first: (usize, usize)) -> (f64, Vec<(usize, usize)>) {
        let (po, pi) = (self.c_out.len(), self.c_in.len());
        let (mut c_out, mut c_in) = (self.c_out.clone(), self.c_in.clone());
        let mut moved_out = vec![false; po];
        let mut moved_in = vec![false; pi];
        let mut cur = sum2;
        let (mut best, mut best_len) = (sum2, 0);
        let mut moves: Vec<(usize, usize)> = Vec::new();
        let mut gain_in = vec![0.0; pi];
        let mut next = Some(first);
        while let Some((a, b)) = next {
            cur = self.swap_value(cur, &c_out, &c_in, a, b);
            moved_out[a] = true;
            moved_in[b] = true;
            moves.push((a, b));
            // S ← S − s_out[a] + s_in[b], so every c_x gains s_in[b]·s_x − s_out[a]·s_x.
            for a2 in (0..po).filter(|&a2| !moved_out[a2]) {
                c_out[a2] += self.g_oi[a2 * pi + b] - self.g_oo[a2 * po + a];
            }
            for b2 in (0..pi).filter(|&b2| !moved_in[b2]) {
                c_in[b2] += self.g_ii[b2 * pi + b] - self.g_oi[a * pi + b2];
            }
            if cur < best {
                best = cur;
                best_len = moves.len();
            }
            if moves.len() - best_len >= KL_DEPTH {
                break;
            }
            // swap_value split into its per-candidate parts; +∞ marks the moved ones.
            for (b, g) in gain_in.iter_mut().enumerate() {
                *g = if moved_in[b] {
                    f64::INFINITY
                } else {
                    2.0 * c_in[b] + self.n_in[b]
                };
            }
            let mut pick: Option<(usize, usize, f64)> = None;
            for a in (0..po).filter(|&a| !moved_out[a]) {
                let row = &self.g_oi[a * pi..(a + 1) * pi];
                let (mut row_best, mut row_b) = (f64::INFINITY, None);
                for (b, (&g, &x)) in gain_in.iter().zip(row).enumerate() {
                    let v = g - 2.0 * x;
                    if v < row_best {
                        (row_best, row_b) = (v, Some(b));
                    }
                }
                let v = cur - 2.0 * c_out[a] + self.n_out[a] + row_best;
                if let Some(b) = row_b {
                    if pick.is_none_or(|(_, _, pv)| v < pv) {
                        pick = Some((a, b, v));
                    }
                }
            }
            next = pick.map(|(a, b, _)| (a, b));
        }
        moves.truncate(best_len);
        (best, moves)
    }
}

/// The `count` ids with the smallest key, ascending by (key, id).
fn candidates(mut ids: Vec<usize>, key: impl Fn(usize) -> f64, count: usize) -> Vec<usize> {
    let cmp = |a: &usize, b: &usize| key(*a).total_cmp(&key(*b)).then(a.cmp(b));
    if ids.len() > count {
        ids.select_nth_unstable_by(count, cmp);
        ids.truncate(count);
    }
    ids.sort_unstable_by(cmp);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rng::{Rng, Stream};
    use crate::scores::Feedback;

    fn gaussian(rng: &mut Rng) -> f64 {
        let u1 = 1.0 - rng.unit_f64();
        let u2 = rng.unit_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// m vectors in R^d with Gaussian directions and norms spread over [0.2, 3].
    fn random_vectors(seed: u64, m: usize, d: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed, Stream::Select, 77, 0);
        let mut v = Vec::with_capacity(m * d);
        for _ in 0..m {
            let scale = 0.2 + 2.8 * rng.unit_f64();
            for _ in 0..d {
                v.push((gaussian(&mut rng) * scale) as f32);
            }
        }
        v
    }

    fn sum_norm(s: &[f32], d: usize, set: impl Iterator<Item = usize>) -> f64 {
        let mut sum = vec![0.0; d];
        for j in set {
            for (a, &b) in sum.iter_mut().zip(&s[j * d..(j + 1) * d]) {
                *a += b as f64;
            }
        }
        dot(&sum, &sum).sqrt()
    }

    /// Every subset of 0..m as a bit mask with its ‖Σ‖.
    fn all_subsets(s: &[f32], d: usize) -> Vec<(u32, f64)> {
        let m = s.len() / d;
        (0..1u32 << m)
            .map(|mask| (mask, sum_norm(s, d, (0..m).filter(|j| mask >> j & 1 == 1))))
            .collect()
    }

    #[test]
    fn cardinality_matches_brute_force_on_small_instances() {
        let (mut optimal, mut worst) = (0, 1.0f64);
        for seed in 0..30u64 {
            let m = 10 + (seed % 5) as usize;
            let k = 4 + (seed % 2) as usize;
            let d = 3;
            let s = random_vectors(seed, m, d);
            let best = all_subsets(&s, d)
                .into_iter()
                .filter(|(mask, _)| mask.count_ones() as usize == k)
                .map(|(_, n)| n)
                .fold(f64::INFINITY, f64::min);
            let r = choose_removal(&s, d, Target::Count(k));
            assert_eq!(r.removed.len(), k);
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(
                (got - r.norm).abs() <= 1e-9 * (1.0 + got),
                "reported norm is the real one"
            );
            if got <= best * (1.0 + 1e-9) + 1e-12 {
                optimal += 1;
            }
            worst = worst.max(got / best);
        }
        assert!(optimal >= 24, "optimal on only {optimal} of 30 instances");
        assert!(worst <= 1.5, "{worst}× the optimum");
    }

    #[test]
    fn cancellation_removes_two_large_opposite_vectors() {
        let d = 3;
        #[rustfmt::skip]
        let s: Vec<f32> = vec![
            0.5, 0.0, 0.0,
            0.0, 0.5, 0.0,
            0.0, 0.0, 0.6,
            9.0, 1.0, 0.0,
            -9.0, -1.0, 0.01,
            0.3, 0.3, 0.3,
        ];
        // Two of the small ones sum to at least ‖(0.5, 0.5, 0)‖ ≈ 0.71; the large pair to 0.01.
        let r = choose_removal(&s, d, Target::Count(2));
        assert_eq!(r.removed, vec![3, 4]);
        assert!((r.norm - 0.01).abs() < 1e-6);
        // Per-sample scores would never pick them: they are the two largest by far.
        let r = choose_removal(&s, d, Target::Count(3));
        assert!(r.removed.contains(&3) && r.removed.contains(&4), "{r:?}");
    }

    #[test]
    fn guarantee_respects_epsilon_and_is_maximal() {
        let mut at_max = 0;
        for seed in 0..30u64 {
            let m = 10 + (seed % 3) as usize;
            let d = 3;
            let s = random_vectors(100 + seed, m, d);
            let eps = 0.3 + 0.1 * (seed % 5) as f64;
            let subsets = all_subsets(&s, d);
            let max_size = subsets
                .iter()
                .filter(|(_, n)| *n <= eps)
                .map(|(mask, _)| mask.count_ones() as usize)
                .max()
                .unwrap();
            let r = choose_removal(&s, d, Target::Within(eps));
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(got <= eps, "seed {seed}: {got} > ε = {eps}");
            // No single further sample fits.
            for j in (0..m).filter(|j| !r.removed.contains(j)) {
                let with_j = sum_norm(&s, d, r.removed.iter().copied().chain([j]));
                assert!(with_j > eps, "seed {seed}: {j} could still be removed");
            }
            assert!(r.removed.len() <= max_size);
            if r.removed.len() == max_size {
                at_max += 1;
            }
        }
        assert!(
            at_max >= 27,
            "largest R found on only {at_max} of 30 instances"
        );
    }

    #[test]
    fn guarantee_on_a_known_instance() {
        // Pairs that cancel exactly fit under any ε; the lone vector of norm 2 does not.
        let d = 2;
        #[rustfmt::skip]
        let s: Vec<f32> = vec![
            3.0, 0.0,
            -3.0, 0.0,
            0.0, 2.0,
            1.0, 1.0,
            -1.0, -1.0,
        ];
        let r = choose_removal(&s, d, Target::Within(0.5));
        assert_eq!(r.removed, vec![0, 1, 3, 4]);
        assert_eq!(r.norm, 0.0);
        assert!(choose_removal(&s, d, Target::Within(0.0)).norm == 0.0);
    }

    #[test]
    fn guarantee_beyond_exhaustive_sizes_respects_epsilon_and_is_maximal() {
        // m > MAX_PROBES: the galloping search, checked for its promises.
        let (m, d) = (60, 4);
        let s = random_vectors(31, m, d);
        for eps in [0.25, 0.5, 2.0] {
            let r = choose_removal(&s, d, Target::Within(eps));
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(got <= eps, "{got} > ε = {eps}");
            for j in (0..m).filter(|j| !r.removed.contains(j)) {
                let with_j = sum_norm(&s, d, r.removed.iter().copied().chain([j]));
                assert!(with_j > eps, "ε = {eps}: {j} could still be removed");
            }
            // Random vectors leave much room for cancellation: far more than half fit.
            assert!(
                r.removed.len() > m / 2,
                "ε = {eps}: only {}",
                r.removed.len()
            );
        }
    }

    /// The AVX2 and baseline builds of the kernels must agree to the bit, or ranks on different
    /// CPUs would choose different subsets.
    #[test]
    fn kernels_give_the_same_bits_on_every_cpu() {
        let (m, d) = (70, 13);
        let g = random_vectors(4, m, d);
        let rows: Vec<usize> = (0..m).rev().collect();
        assert_eq!(gram_upper(&g, &rows, d), gram_upper_impl(&g, &rows, d));
        let h = spd(6, d);
        let mut l = h.clone();
        cholesky(&mut l, d).unwrap();
        let lt = transpose(&l, d);
        let y: Vec<f64> = random_vectors(5, LANES, d)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let (mut a, mut b) = (y.clone(), y);
        solve_lanes(&l, &lt, d, &mut a);
        solve_lanes_impl(&l, &lt, d, &mut b);
        assert_eq!(a, b);
        let v: Vec<f64> = g[..d].iter().map(|&x| x as f64 * 0.37).collect();
        let scan = dots_with(&v, &g, d);
        assert_eq!(scan, dots_with_impl(&v, &g, d));
        assert!(scan
            .iter()
            .zip(g.chunks_exact(d))
            .all(|(&c, r)| c == dot(&v, r)));
    }

    fn spd(seed: u64, d: usize) -> Vec<f64> {
        let a: Vec<f64> = random_vectors(seed, d, d)
            .iter()
            .map(|&x| x as f64)
            .collect();
        let mut h = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                h[i * d + j] = (0..d).map(|k| a[i * d + k] * a[j * d + k]).sum::<f64>() / d as f64;
            }
            h[i * d + i] += 1e-3;
        }
        h
    }

    #[test]
    fn cholesky_solves_to_1e_8() {
        for (seed, d) in [(1u64, 5usize), (2, 37), (3, 64)] {
            let h = spd(seed, d);
            let x: Vec<f64> = random_vectors(seed + 50, 1, d)
                .iter()
                .map(|&v| v as f64)
                .collect();
            let b: Vec<f64> = (0..d).map(|i| dot(&h[i * d..(i + 1) * d], &x)).collect();
            let mut l = h.clone();
            cholesky(&mut l, d).unwrap();
            let lt = transpose(&l, d);
            let mut y = vec![0.0; d * LANES];
            for i in 0..d {
                y[i * LANES + 3] = b[i];
            }
            solve_lanes(&l, &lt, d, &mut y);
            let err: Vec<f64> = (0..d).map(|i| y[i * LANES + 3] - x[i]).collect();
            let rel = (dot(&err, &err) / dot(&x, &x)).sqrt();
            assert!(rel < 1e-8, "d = {d}: relative error {rel}");
            // The other lanes had b = 0.
            assert!((0..d).all(|i| y[i * LANES] == 0.0));
        }
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut not_pd, 2), Err(1));
    }

    #[test]
    fn influence_vectors_solve_the_damped_hessian() {
        let (m, d) = (21, 6);
        let g = random_vectors(9, m, d);
        let rows: Vec<usize> = (0..m).collect();
        let mut h = vec![0.0; d * d];
        for r in g.chunks_exact(d) {
            for i in 0..d {
                for j in 0..d {
                    h[i * d + j] += r[i] as f64 * r[j] as f64 / m as f64;
                }
            }
        }
        let trace: f64 = (0..d).map(|i| h[i * d + i]).sum();
        for (damping, lambda) in [(None, 1e-3 * trace / d as f64), (Some(0.5), 0.5)] {
            let v = influence_vectors(&g, &rows, d, damping).unwrap();
            assert!((v.damping - lambda).abs() <= 1e-12 * lambda);
            for (gi, si) in g.chunks_exact(d).zip(v.s.chunks_exact(d)) {
                // m·(G + λI)·s_i should give back g_i.
                let back: Vec<f64> = (0..d)
                    .map(|i| {
                        m as f64
                            * ((0..d).map(|j| h[i * d + j] * si[j] as f64).sum::<f64>()
                                + lambda * si[i] as f64)
                    })
                    .collect();
                let err: f64 = back
                    .iter()
                    .zip(gi)
                    .map(|(b, &g)| (b - g as f64).powi(2))
                    .sum();
                let norm: f64 = gi.iter().map(|&g| (g as f64).powi(2)).sum();
                assert!(
                    (err / norm).sqrt() < 1e-5,
                    "relative residual {}",
                    (err / norm).sqrt()
                );
            }
        }
        // Rows are picked by index: a subset gives the vectors of the subset's own H.
        let sub = influence_vectors(&g, &[4, 2], d, Some(1.0)).unwrap();
        let only = [&g[4 * d..5 * d], &g[2 * d..3 * d]].concat();
        let direct = influence_vectors(&only, &[0, 1], d, Some(1.0)).unwrap();
        assert_eq!(sub.s, direct.s);
    }

    fn book_with_embeddings(n: usize, with: &[u64], d: usize, seed: u64) -> ScoreBook {
        let mut book = ScoreBook::with_options(n, ScoreFields::EMBEDDING, 0.8, 512, 0);
        let emb = random_vectors(seed, with.len(), d);
        let loss = vec![1.0; with.len()];
        let fb = Feedback {
            ids: with,
            loss: &loss,
            embedding: Some(&emb),
            embedding_dim: d,
            ..Default::default()
        };
        book.feedback(&fb, 0).unwrap();
        book
    }

    fn config(json: &str) -> InfluenceConfig {
        let c = Config::from_json(&format!(r#"{{"policy": {json}}}"#)).unwrap();
        match c.policy {
            crate::policy::PolicyConfig::Influence(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn select(policy: &mut Influence, book: &ScoreBook, epoch: u64) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 5,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    #[test]
    fn full_data_while_scoring_then_a_fixed_subset() {
        let n = 40;
        let ids: Vec<u64> = (0..n as u64).collect();
        let mut book = book_with_embeddings(n, &ids, 4, 1);
        let mut policy = Influence::new(config(r#"{"kind": "influence", "prune": 0.25}"#), n);
        assert_eq!(policy.needs(), ScoreFields::EMBEDDING);
        for e in 0..3 {
            let out = select(&mut policy, &book, e);
            assert_eq!(out.ids, ids, "epoch {e}");
            assert!(out.score_mean.is_nan());
            assert_eq!(policy.achieved_norm(), None);
        }
        let fixed = select(&mut policy, &book, 3);
        assert_eq!(fixed.len(), 30);
        assert!(fixed.weights.iter().all(|&w| w == 1.0));
        assert!(fixed.score_mean > 0.0 && fixed.score_std > 0.0);
        let achieved = policy.achieved_norm().unwrap();
        // New embeddings for everyone; R stays.
        book = book_with_embeddings(n, &ids, 4, 2);
        let later = select(&mut policy, &book, 4);
        assert_eq!(later.ids, fixed.ids);
        assert_eq!(policy.achieved_norm(), Some(achieved));
    }

    #[test]
    fn samples_without_embeddings_are_kept() {
        let n = 20;
        let with: Vec<u64> = (0..n as u64).filter(|i| i % 4 != 0).collect();
        let book = book_with_embeddings(n, &with, 3, 3);
        // K = 10 of 20 → 10 removed, all from the 15 with embeddings.
        let mut policy = Influence::new(config(r#"{"kind": "influence", "prune": 0.5}"#), n);
        let out = select(&mut policy, &book, 3);
        assert_eq!(out.len(), 10);
        assert!((0..n as u64).step_by(4).all(|i| out.ids.contains(&i)));
        // Removing more than have embeddings: all of those go, the rest stay.
        let few: Vec<u64> = vec![1, 2];
        let book = book_with_embeddings(n, &few, 3, 3);
        let out = select(
            &mut policy_fresh(r#"{"kind": "influence", "prune": 0.5}"#, n),
            &book,
            3,
        );
        assert_eq!(out.len(), 18);
        assert!(!out.ids.contains(&1) && !out.ids.contains(&2));
        // No embeddings at all: full data.
        let book = ScoreBook::new(n, ScoreFields::EMBEDDING);
        let mut p = policy_fresh(r#"{"kind": "influence"}"#, n);
        assert_eq!(select(&mut p, &book, 3).len(), n);
        assert_eq!(p.achieved_norm(), Some(0.0));
    }

    fn policy_fresh(json: &str, n: usize) -> Influence {
        Influence::new(config(json), n)
    }

    #[test]
    fn policy_reports_the_norm_of_what_it_removed() {
        let n = 30;
        let ids: Vec<u64> = (0..n as u64).collect();
        let d = 3;
        let book = book_with_embeddings(n, &ids, d, 8);
        let rows: Vec<usize> = (0..n).collect();
        let v = influence_vectors(book.embeddings(), &rows, d, None).unwrap();
        for json in [
            r#"{"kind": "influence", "prune": 0.4}"#,
            r#"{"kind": "influence", "epsilon": 0.001}"#,
        ] {
            let mut p = policy_fresh(json, n);
            let out = select(&mut p, &book, 3);
            let removed = (0..n).filter(|&i| !out.ids.contains(&(i as u64)));
            let norm = sum_norm(&v.s, d, removed);
            let achieved = p.achieved_norm().unwrap();
            assert!((norm - achieved).abs() <= 1e-9 * (1.0 + norm), "{json}");
            if json.contains("epsilon") {
                assert!(achieved <= 0.001);
            } else {
                assert_eq!(out.len(), 18);
            }
        }
    }

    #[test]
    fn same_book_same_subset() {
        let n = 50;
        let ids: Vec<u64> = (0..n as u64).collect();
        let book = book_with_embeddings(n, &ids, 8, 12);
        for json in [
            r#"{"kind": "influence", "prune": 0.6}"#,
            r#"{"kind": "influence", "epsilon": 0.002}"#,
        ] {
            let a = select(&mut policy_fresh(json, n), &book, 3);
            let b = select(&mut policy_fresh(json, n), &book.clone(), 7);
            assert_eq!(a, b, "{json}");
        }
    }

    #[test]
    fn config_modes_defaults_and_errors() {
        let c = config(r#"{"kind": "influence"}"#);
        assert_eq!(c.mode(), InfluenceMode::Cardinality { prune: 0.3 });
        assert_eq!((c.score_epochs, c.sketch_dim, c.damping), (3, 512, None));
        let c = config(r#"{"kind": "influence", "epsilon": 0.01, "sketch_dim": 64}"#);
        assert_eq!(c.mode(), InfluenceMode::Guarantee { epsilon: 0.01 });
        let err = |json: &str| {
            Config::from_json(&format!(r#"{{"policy": {json}}}"#))
                .unwrap_err()
                .to_string()
        };
        let e = err(r#"{"kind": "influence", "prune": 0.3, "epsilon": 0.1}"#);
        assert!(
            e.contains("policy.prune") && e.contains("policy.epsilon"),
            "{e}"
        );
        let e = err(r#"{"kind": "influence", "drop_hardest": 0.1}"#);
        assert!(e.contains("drop_hardest"), "{e}");
        let e = err(r#"{"kind": "influence", "momentum": 0.5}"#);
        assert!(e.contains("momentum"), "{e}");
        for (json, key) in [
            (r#""prune": 0.95"#, "policy.prune"),
            (r#""epsilon": -1"#, "policy.epsilon"),
            (r#""damping": 0"#, "policy.damping"),
            (r#""score_epochs": 0"#, "policy.score_epochs"),
            (r#""sketch_dim": 0"#, "policy.sketch_dim"),
            (r#""sketch_dim": 8193"#, "policy.sketch_dim"),
        ] {
            let e = err(&format!(r#"{{"kind": "influence", {json}}}"#));
            assert!(e.contains(key), "{json}: {e}");
        }
    }

    /// This thread's CPU seconds: unlike wall time, not inflated by other processes.
    fn cpu_seconds() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }

    /// Release-mode timing of the whole solve at CIFAR/MNIST scale:
    /// `cargo test --release --lib influence_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn influence_timing_60000_by_512() {
        let (m, d) = (60_000, 512);
        let g = random_vectors(1, m, d);
        let rows: Vec<usize> = (0..m).collect();
        let timed = |f: &mut dyn FnMut()| {
            let (wall, cpu) = (std::time::Instant::now(), cpu_seconds());
            f();
            format!(
                "{:.2} s CPU, {:.2} s wall",
                cpu_seconds() - cpu,
                wall.elapsed().as_secs_f64()
            )
        };
        let mut v = None;
        let t = timed(&mut || v = influence_vectors(&g, &rows, d, None));
        let v = v.unwrap();
        eprintln!("influence_vectors: {t}");
        let mut r = None;
        let t = timed(&mut || r = Some(choose_removal(&v.s, d, Target::Count(18_000))));
        let r = r.unwrap();
        eprintln!("choose_removal(|R| = 18000): {t}, ‖Σ‖ = {:.3e}", r.norm);
        for factor in [1.0, 2.0] {
            let mut e = None;
            let t =
                timed(&mut || e = Some(choose_removal(&v.s, d, Target::Within(factor * r.norm))));
            let e = e.unwrap();
            eprintln!(
                "choose_removal(ε = {factor} × that): {t}, |R| = {}, ‖Σ‖ = {:.3e}",
                e.removed.len(),
                e.norm
            );
        }
    }
}
