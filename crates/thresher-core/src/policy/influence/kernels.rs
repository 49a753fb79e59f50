//! The linear algebra of the influence vectors s_i = H⁻¹ g_i / m: the Gram matrix H, its
//! Cholesky factor, the batched triangular solves, and the dot products the removal search
//! scans with. Every kernel fixes its order of additions in the source (no FMA contraction, no
//! reassociation left to the compiler), so the AVX2 twins give the same bits as the baseline
//! and every rank computes the same R, whatever its CPU.
//!
//! The work that is independent per row or per entry — H's entries, the solves, the scans — is
//! split over threads (`threads_for`), each entry or row computed by one thread in the order a
//! single thread would use: the bits do not depend on the thread count either (tested).

/// s_i = H⁻¹ g_i / m for the embeddings `rows` of `embeddings` (row-major, d per row), in that
/// order, as m × d f32 (the solve is in f64; f32 halves the memory of the only m × d buffer).
pub(super) struct InfluenceVectors {
    pub(super) s: Vec<f32>,
    /// λ as used: the given or default damping, times 10 for each failed factorisation.
    pub(super) damping: f64,
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
/// At most this many threads for one solve or scan: beyond it the memory bandwidth, not the
/// cores, bounds them.
const MAX_THREADS: usize = 16;
/// Multiply-adds a thread must have for a split to pay for its start (~2 ms of work against
/// tens of µs to start and join a thread).
const WORK_PER_THREAD: f64 = 4e6;

/// Threads for `work` multiply-adds of row-independent work: the CPU's (at most MAX_THREADS),
/// fewer when there is too little work to share.
fn threads_for(work: f64) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((work / WORK_PER_THREAD) as usize).clamp(1, cpus.min(MAX_THREADS))
}

pub(super) fn influence_vectors(
    embeddings: &[f32],
    rows: &[usize],
    d: usize,
    damping: Option<f64>,
) -> Option<InfluenceVectors> {
    let work = rows.len() as f64 * (d * d) as f64;
    influence_vectors_on(embeddings, rows, d, damping, threads_for(work))
}

/// `influence_vectors` on `threads` threads (the same bits for any count).
fn influence_vectors_on(
    embeddings: &[f32],
    rows: &[usize],
    d: usize,
    damping: Option<f64>,
    threads: usize,
) -> Option<InfluenceVectors> {
    let m = rows.len();
    let mut g = gram_upper(embeddings, rows, d, threads);
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
    if threads <= 1 {
        solve_rows(embeddings, rows, &l, &lt, d, inv_m, &mut s);
        return Some(InfluenceVectors { s, damping: lambda });
    }
    // Whole LANES-row groups per thread: the rows fall in the same groups as on one thread
    // (the lanes are independent, so that is not what keeps the bits; it keeps every group
    // but the last full).
    let per = m.div_ceil(LANES).div_ceil(threads) * LANES;
    std::thread::scope(|scope| {
        for (rows, out) in rows
            .chunks(per.max(LANES))
            .zip(s.chunks_mut(per.max(LANES) * d))
        {
            let (l, lt) = (&l, &lt);
            scope.spawn(move || solve_rows(embeddings, rows, l, lt, d, inv_m, out));
        }
    });
    Some(InfluenceVectors { s, damping: lambda })
}

/// s = H⁻¹ g / m for the embeddings `rows`, into `out` (|rows| × d), LANES rows at a time.
fn solve_rows(
    embeddings: &[f32],
    rows: &[usize],
    l: &[f64],
    lt: &[f64],
    d: usize,
    inv_m: f64,
    out: &mut [f32],
) {
    let mut y = vec![0.0; d * LANES];
    for (chunk, out) in rows.chunks(LANES).zip(out.chunks_mut(LANES * d)) {
        y.fill(0.0);
        for (t, &r) in chunk.iter().enumerate() {
            for (i, &v) in embeddings[r * d..(r + 1) * d].iter().enumerate() {
                y[i * LANES + t] = v as f64;
            }
        }
        solve_lanes(l, lt, d, &mut y);
        for (t, o) in out.chunks_exact_mut(d).enumerate() {
            for (i, o) in o.iter_mut().enumerate() {
                *o = (y[i * LANES + t] * inv_m) as f32;
            }
        }
    }
}

/// Σ g gᵀ over `rows`, upper triangle (j ≥ i) of a d × d row-major matrix; the lower triangle
/// is to be ignored. Blocks of GRAM_BLOCK samples are summed tile by tile in registers (no load
/// or store of H in the inner loop), then added to H: the order of the additions is fixed by
/// GRAM_BLOCK and the tile shape alone, so the result is the same on every machine. With
/// several threads, thread t sums the bands of TILE_I rows t, t + threads, ... over every
/// block, in that same order (the bands' work shrinks down the triangle, so interleaving them
/// shares it evenly).
fn gram_upper(embeddings: &[f32], rows: &[usize], d: usize, threads: usize) -> Vec<f64> {
    let dp = d.div_ceil(TILE_J) * TILE_J;
    let bands = dp / TILE_I;
    let threads = threads.clamp(1, bands.max(1));
    let h = if threads == 1 {
        gram_bands(embeddings, rows, d, 0, 1)
    } else {
        let parts: Vec<Vec<f64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| scope.spawn(move || gram_bands(embeddings, rows, d, t, threads)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a Gram thread panicked"))
                .collect()
        });
        let mut h = vec![0.0; dp * dp];
        for band in 0..bands {
            let span = band * TILE_I * dp..(band + 1) * TILE_I * dp;
            h[span.clone()].copy_from_slice(&parts[band % threads][span]);
        }
        h
    };
    if dp == d {
        return h;
    }
    let mut out = vec![0.0; d * d];
    for (o, r) in out.chunks_exact_mut(d).zip(h.chunks_exact(dp)) {
        o.copy_from_slice(&r[..d]);
    }
    out
}

// `gram_bands_impl` compiled for the widest vector unit the CPU has: wider vectors, the same
// bits (see `solve_lanes`).
crate::util::widest!(fn gram_bands(embeddings: &[f32], rows: &[usize], d: usize, first: usize, step: usize) -> Vec<f64> = gram_bands_impl);

/// The bands `first`, `first + step`, ... (TILE_I rows of H each) of the padded dp × dp upper
/// triangle; the other rows stay zero.
#[inline(always)]
fn gram_bands_impl(
    embeddings: &[f32],
    rows: &[usize],
    d: usize,
    first: usize,
    step: usize,
) -> Vec<f64> {
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
        for i0 in (first * TILE_I..dp).step_by(step * TILE_I) {
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
    h
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
/// Where the CPU has AVX2 the same code runs compiled for it, with wider vectors. The bits do
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

/// `dot(v, row)` for every row of `s` (d per row): the scans of the local search, m·d each.
pub(super) fn dots_with(v: &[f64], s: &[f32], d: usize) -> Vec<f64> {
    dots_with_on(v, s, d, threads_for(s.len() as f64))
}

/// `dots_with` on `threads` threads, each a contiguous range of rows (the same bits).
fn dots_with_on(v: &[f64], s: &[f32], d: usize, threads: usize) -> Vec<f64> {
    let m = s.len() / d;
    let mut out = vec![0.0; m];
    if threads <= 1 {
        dots_into(v, s, d, &mut out);
        return out;
    }
    let per = m.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (rows, out) in s.chunks(per * d).zip(out.chunks_mut(per)) {
            scope.spawn(move || dots_into(v, rows, d, out));
        }
    });
    out
}

/// `out[i] = dot(v, s_i)` for the rows of `s` (d per row; as many as `out` holds): eight rows
/// at a time with AVX-512 F where the CPU has it, else like `solve_lanes` compiled for AVX2
/// where it has that, with the same bits either way. The eight partial sums of `dot` are the
/// eight lanes of one register (the compiler does not find that by itself: it packs the
/// f32-to-f64 conversions into shuffles), with the same operations in the same order (tested).
pub(super) fn dots_into(v: &[f64], s: &[f32], d: usize, out: &mut [f64]) {
    let v = &v[..d];
    let n = out.len().min(s.len() / d);
    let out = &mut out[..n];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above); `v` holds d values, and every
        // row is taken from `s` by a checked slice.
        unsafe { x86::dots(v, s, d, out) };
        return;
    }
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the one requirement.
        return unsafe { dots_into_avx2(v, s, d, out) };
    }
    dots_into_impl(v, s, d, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_into_avx2(v: &[f64], s: &[f32], d: usize, out: &mut [f64]) {
    dots_into_impl(v, s, d, out)
}

#[inline(always)]
fn dots_into_impl(v: &[f64], s: &[f32], d: usize, out: &mut [f64]) {
    for (o, row) in out.iter_mut().zip(s.chunks_exact(d)) {
        *o = dot(v, row);
    }
}

/// `dot` of two f32 rows, as `dots_into` (AVX-512 F where the CPU has it, the same bits).
pub(super) fn dot_rows(a: &[f32], b: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let n = a.len().min(b.len());
        // SAFETY: the CPU has AVX-512 F (checked just above); both slices hold n values.
        return unsafe { x86::dot(&a[..n], &b[..n]) };
    }
    dot(a, b)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// A value type whose eight consecutive values load as eight f64 lanes.
    pub(super) trait Lanes: Copy + Into<f64> {
        /// # Safety
        /// AVX-512 F; `p` points at 8 readable values.
        unsafe fn load8(p: *const Self) -> __m512d;
    }

    impl Lanes for f64 {
        #[inline(always)]
        unsafe fn load8(p: *const f64) -> __m512d {
            // SAFETY: by the caller.
            unsafe { _mm512_loadu_pd(p) }
        }
    }

    impl Lanes for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const f32) -> __m512d {
            // SAFETY: by the caller.
            unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
        }
    }

    /// `out[i] = super::dot(v, s_i)`, eight rows at a time (eight independent chains
    /// of additions, each chunk of `v` loaded once for the eight), the eight rows' reductions
    /// done together in registers (`reduce8`); the rows left over go four, then one, at a time.
    ///
    /// # Safety
    /// AVX-512 F; `v` holds d values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dots(v: &[f64], s: &[f32], d: usize, out: &mut [f64]) {
        let whole = d / 8 * 8;
        let rows_of = |i: usize| &s[i * d..(i + 1) * d];
        let mut i = 0;
        while i + 8 <= out.len() {
            let block = &s[i * d..(i + 8) * d];
            let mut acc = [_mm512_setzero_pd(); 8];
            for k in (0..whole).step_by(8) {
                // SAFETY: k + 8 ≤ whole ≤ d, so row t's chunk ends within `block` (8·d
                // values) and `v` (d values); AVX-512 F.
                unsafe {
                    let x = f64::load8(v.as_ptr().add(k));
                    for (t, a) in acc.iter_mut().enumerate() {
                        let y = f32::load8(block.as_ptr().add(t * d + k));
                        *a = _mm512_add_pd(*a, _mm512_mul_pd(x, y));
                    }
                }
            }
            let mut tails = [0.0; 8];
            if whole < d {
                for (t, tl) in tails.iter_mut().enumerate() {
                    *tl = tail(&v[whole..], &block[t * d + whole..(t + 1) * d]);
                }
            }
            // SAFETY: AVX-512 F; `out[i..i + 8]` holds 8 values.
            unsafe { reduce8(acc, tails, &mut out[i..i + 8]) };
            i += 8;
        }
        while i + 4 <= out.len() {
            let r = [rows_of(i), rows_of(i + 1), rows_of(i + 2), rows_of(i + 3)];
            let mut acc = [_mm512_setzero_pd(); 4];
            for k in (0..whole).step_by(8) {
                // SAFETY: k + 8 ≤ whole ≤ d = the length of `v` and of each row; AVX-512 F.
                unsafe {
                    let x = f64::load8(v.as_ptr().add(k));
                    for (a, row) in acc.iter_mut().zip(&r) {
                        let y = f32::load8(row.as_ptr().add(k));
                        *a = _mm512_add_pd(*a, _mm512_mul_pd(x, y));
                    }
                }
            }
            for (t, (a, row)) in acc.into_iter().zip(&r).enumerate() {
                // SAFETY: AVX-512 F; `row` holds d values.
                out[i + t] = unsafe { finish(a, &v[whole..], &row[whole..]) };
            }
            i += 4;
        }
        for (o, t) in out[i..].iter_mut().zip(i..) {
            // SAFETY: AVX-512 F; both hold d values.
            *o = unsafe { dot(v, rows_of(t)) };
        }
    }

    /// `finish` for eight rows at once: out[t] = ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 +
    /// l7)) + tails[t] for the lanes l of `acc[t]`, the same additions as `finish` (each one
    /// exact-rounded the same way: addition commutes, so which operand sits in which register
    /// does not change a bit), as three rounds of shuffles and adds over all eight rows
    /// instead of a store and seven scalar additions per row.
    ///
    /// # Safety
    /// AVX-512 F; `out` holds 8 values.
    #[inline(always)]
    unsafe fn reduce8(acc: [__m512d; 8], tails: [f64; 8], out: &mut [f64]) {
        // SAFETY (whole body): AVX-512 F by the caller; the loads and the store touch 8 f64.
        unsafe {
            // Round 1, rows (2r, 2r + 1): lanes [p0 p1 p2 p3] of each, p_t = l_t + l_{t+4}.
            let half = |a: __m512d, b: __m512d| {
                let lo = _mm512_shuffle_f64x2::<0b01_00_01_00>(a, b);
                let hi = _mm512_shuffle_f64x2::<0b11_10_11_10>(a, b);
                _mm512_add_pd(lo, hi)
            };
            let s01 = half(acc[0], acc[1]);
            let s23 = half(acc[2], acc[3]);
            let s45 = half(acc[4], acc[5]);
            let s67 = half(acc[6], acc[7]);
            // Round 2: q0 = p0 + p1, q1 = p2 + p3, in lanes [q0(0) q0(2) q1(0) q1(2) q0(1)
            // q0(3) q1(1) q1(3)] for rows 0..4 (and the same for rows 4..8).
            let quarter = |a: __m512d, b: __m512d| {
                _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b))
            };
            let t0 = quarter(s01, s23);
            let t1 = quarter(s45, s67);
            // Round 3: q0 + q1, rows in the order 0 2 1 3 4 6 5 7.
            let q0 = _mm512_shuffle_f64x2::<0b10_00_10_00>(t0, t1);
            let q1 = _mm512_shuffle_f64x2::<0b11_01_11_01>(t0, t1);
            let order = _mm512_set_epi64(7, 5, 6, 4, 3, 1, 2, 0);
            let sums = _mm512_permutexvar_pd(order, _mm512_add_pd(q0, q1));
            let sums = _mm512_add_pd(sums, _mm512_loadu_pd(tails.as_ptr()));
            _mm512_storeu_pd(out.as_mut_ptr(), sums);
        }
    }

    /// `super::dot`'s tail: the products past the last whole group of eight, in order.
    #[inline(always)]
    fn tail<A: Lanes, B: Lanes>(a: &[A], b: &[B]) -> f64 {
        let mut tail = 0.0;
        for (&x, &y) in a.iter().zip(b) {
            tail += x.into() * y.into();
        }
        tail
    }

    /// `super::dot`'s reduction of the eight partial sums in `acc`, plus the tail.
    ///
    /// # Safety
    /// AVX-512 F.
    #[inline(always)]
    unsafe fn finish<A: Lanes, B: Lanes>(acc: __m512d, a: &[A], b: &[B]) -> f64 {
        let mut l = [0.0f64; 8];
        // SAFETY: stores 8 f64 into an 8-f64 array.
        unsafe { _mm512_storeu_pd(l.as_mut_ptr(), acc) };
        ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])) + tail(a, b)
    }

    /// `super::dot` with its eight partial sums in one register: lane t adds a_k·b_k for
    /// k ≡ t (mod 8) in order, then the same reduction and tail.
    ///
    /// # Safety
    /// AVX-512 F; `a` and `b` have the same length.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot<A: Lanes, B: Lanes>(a: &[A], b: &[B]) -> f64 {
        let n = a.len();
        let whole = n / 8 * 8;
        let mut acc = _mm512_setzero_pd();
        for k in (0..whole).step_by(8) {
            // SAFETY: k + 8 ≤ whole ≤ n = the length of both slices; AVX-512 F.
            unsafe {
                let x = A::load8(a.as_ptr().add(k));
                let y = B::load8(b.as_ptr().add(k));
                acc = _mm512_add_pd(acc, _mm512_mul_pd(x, y));
            }
        }
        // SAFETY: AVX-512 F.
        unsafe { finish(acc, &a[whole..], &b[whole..]) }
    }
}

/// Σ a_k b_k in f64 with eight fixed partial sums: vectorisable, and the same bits on every
/// machine (no reassociation is left to the compiler).
#[inline(always)]
pub(super) fn dot<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::super::tests::random_vectors;
    use super::*;

    /// The AVX-512 dot products give `dot`'s bits, for f64 · f32 and f32 · f32 rows, at
    /// lengths with and without a tail.
    #[test]
    fn the_wide_dots_give_the_same_bits() {
        for d in [1, 7, 8, 13, 64, 67] {
            // 22 rows: two groups of eight, one of four and two single rows.
            let s = random_vectors(d as u64, 22, d);
            let v: Vec<f64> = (0..d).map(|k| (k as f64 * 0.71).sin() * 3.0).collect();
            let all = dots_with(&v, &s, d);
            assert_eq!(all.len(), 22);
            for (j, &o) in all.iter().enumerate() {
                let want = dot(&v, &s[j * d..(j + 1) * d]).to_bits();
                assert_eq!(o.to_bits(), want, "d {d} row {j}");
            }
            // Fewer outputs than rows: the first ones only.
            let mut out = vec![0.0; 13];
            dots_into(&v, &s, d, &mut out);
            assert!(out
                .iter()
                .zip(&all)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let (a, b) = (&s[..d], &s[5 * d..6 * d]);
            assert_eq!(dot_rows(a, b).to_bits(), dot(a, b).to_bits(), "d {d}");
        }
    }

    /// The AVX2 and baseline builds of the kernels must agree to the bit, or ranks on different
    /// CPUs would choose different subsets.
    #[test]
    fn kernels_give_the_same_bits_on_every_cpu() {
        let (m, d) = (70, 13);
        let g = random_vectors(4, m, d);
        let rows: Vec<usize> = (0..m).rev().collect();
        assert_eq!(
            gram_bands(&g, &rows, d, 0, 1),
            gram_bands_impl(&g, &rows, d, 0, 1)
        );
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
        let mut plain = vec![0.0; m];
        dots_into_impl(&v, &g, d, &mut plain);
        assert_eq!(scan, plain);
        assert!(scan
            .iter()
            .zip(g.chunks_exact(d))
            .all(|(&c, r)| c == dot(&v, r)));
    }

    /// H, the s_i and the scans are the same bits on 1, 2, 3 or 7 threads (more threads than
    /// bands or rows included), so a rank's R does not depend on its core count.
    #[test]
    fn threads_give_the_same_bits() {
        for (m, d) in [(1000, 13), (301, 64), (5, 8), (40, 3)] {
            let g = random_vectors(m as u64 + d as u64, m, d);
            let rows: Vec<usize> = (0..m).rev().filter(|j| j % 5 != 2).collect();
            let one = influence_vectors_on(&g, &rows, d, None, 1).unwrap();
            let h1 = gram_upper(&g, &rows, d, 1);
            let v: Vec<f64> = (0..d).map(|k| (k as f64 * 0.3).cos()).collect();
            let scan1 = dots_with_on(&v, &g, d, 1);
            for threads in [2, 3, 7] {
                let many = influence_vectors_on(&g, &rows, d, None, threads).unwrap();
                assert_eq!(one.damping.to_bits(), many.damping.to_bits(), "m {m} d {d}");
                assert!(
                    one.s
                        .iter()
                        .zip(&many.s)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "s_i differ: m {m} d {d} threads {threads}"
                );
                assert_eq!(gram_upper(&g, &rows, d, threads), h1, "m {m} d {d}");
                assert_eq!(dots_with_on(&v, &g, d, threads), scan1, "m {m} d {d}");
            }
        }
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
}
