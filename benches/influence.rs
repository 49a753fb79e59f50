//! The influence policy's one-off solve at MNIST scale: m = 60 000 gradient embeddings of
//! d = 512, through the public policy as the loader runs it at the epoch that fixes the subset.
//! Three runs on the same ScoreBook:
//!
//! - `prune` 0: the influence vectors alone (H, its Cholesky factor, the solves), since an
//!   empty removal set needs no search;
//! - `prune` 0.3: a cardinality R of 18 000 samples, vectors included;
//! - `epsilon` at 1× and 2× the norm the cardinality run reached: guarantee mode, vectors
//!   included.
//!
//! CPU seconds of this thread (not inflated by other processes) and wall seconds, on stderr:
//!
//!     cargo bench --bench influence [-- --smoke]
//!
//! Not part of `make bench` (the report has no place for it). Without `--bench` — as
//! `cargo test --all-targets` runs every bench — it measures nothing; `--smoke` runs it at a
//! small size.

use std::time::Instant;

use thresher_core::policy::{PlanContext, PolicyConfig, Selection};
use thresher_core::{Config, Feedback, Rng, ScoreBook, ScoreFields, Stream};

/// This thread's CPU seconds.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.unit_f64();
    let u2 = rng.unit_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// m embeddings in R^d with Gaussian directions and norms spread over [0.2, 3]: the vectors of
/// the policy's own tests (`random_vectors`), so figures compare with the ones taken there.
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

/// A book whose every sample has its embedding (stored as is: d is the sketch dimension).
fn book(m: usize, d: usize) -> ScoreBook {
    let g = random_vectors(1, m, d);
    let mut book = ScoreBook::with_options(m, ScoreFields::EMBEDDING, 0.8, d, 0);
    const CHUNK: usize = 4096;
    for start in (0..m).step_by(CHUNK) {
        let end = (start + CHUNK).min(m);
        let ids: Vec<u64> = (start as u64..end as u64).collect();
        let loss = vec![1.0; ids.len()];
        let fb = Feedback {
            ids: &ids,
            loss: &loss,
            embedding: Some(&g[start * d..end * d]),
            embedding_dim: d,
            ..Default::default()
        };
        book.feedback(&fb, 0).expect("valid embeddings");
    }
    book
}

/// One run of the influence policy with `mode` (`"prune": p` or `"epsilon": e`): the epoch
/// that chooses R, timed. Returns |R| and the achieved ‖Σ_R s_i‖.
fn run(book: &ScoreBook, d: usize, mode: &str, label: &str) -> (usize, f64) {
    let json = format!(
        r#"{{"policy": {{"kind": "influence", {mode}, "score_epochs": 1, "sketch_dim": {d}}}}}"#
    );
    let PolicyConfig::Influence(config) = Config::from_json(&json).expect("config").policy else {
        unreachable!("an influence config")
    };
    let mut policy = thresher_core::policy::Influence::new(config, book.len());
    let mut out = Selection::default();
    let ctx = PlanContext {
        epoch: 1,
        seed: 0,
        scores: book,
    };
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    thresher_core::policy::Policy::select(&mut policy, &ctx, &mut out);
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    let removed = book.len() - out.len();
    let norm = policy.achieved_norm().unwrap_or(f64::NAN);
    eprintln!(
        "influence: {label}: {cpu:.2} s CPU, {wall:.2} s wall, |R| = {removed}, ‖Σ‖ = {norm:.3e}"
    );
    (removed, norm)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    if !smoke && !args.iter().any(|a| a == "--bench") {
        eprintln!("influence: measures only under `cargo bench --bench influence` or --smoke");
        return;
    }
    let (m, d) = if smoke { (2_000, 32) } else { (60_000, 512) };
    let t = Instant::now();
    let book = book(m, d);
    eprintln!(
        "influence: m = {m}, d = {d}: book filled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    run(
        &book,
        d,
        r#""prune": 0.0"#,
        "influence vectors alone (prune 0)",
    );
    let (_, norm) = run(&book, d, r#""prune": 0.3"#, "cardinality R (prune 0.3)");
    for factor in [1.0, 2.0] {
        let eps = factor * norm;
        run(
            &book,
            d,
            &format!(r#""epsilon": {eps}"#),
            &format!("guarantee R (ε = {factor} × that norm)"),
        );
    }
}
