//! The loader's internal costs, as one JSON document for `benches/report.py` (`make bench`).
//! This file owns the arguments, the helpers the parts share and the document; the parts are
//! in `plans.rs` (`plan`), `book.rs` (`feedback`, `book_bytes`) and `loader.rs` (`overhead`,
//! `boundary`):
//!
//! - `plan`: time to make one epoch's plan (policy selection + `mark_kept` + shuffle into a
//!   `Plan`, what `Loader` does at an epoch boundary) for every policy at N = 10⁴ … 10⁷, from a
//!   ScoreBook of the policy's own fields filled with two epochs of synthetic feedback; also the 1.28M-id (ImageNet-1k)
//!   plan. Static policies are timed at the epoch that fixes their subset (the costly one) and
//!   at a later, cached epoch. `influence` runs where memory and time allow (see `plans.rs`).
//! - `feedback`: samples/s ingested, in batches of 256 ids in shuffled order, loss only and
//!   with every per-sample signal, through `ScoreBook::feedback` and through `Loader::feedback`.
//! - `book_bytes`: ScoreBook bytes per sample for the fields each policy needs.
//! - `overhead`: consumer-side time of `next` + release per batch, on an in-memory source of
//!   one-byte samples so that the work measured is the loader's own bookkeeping.
//! - `epoch_plan`: the whole-epoch view of an index-mode loader through the C ABI at the
//!   1.28M-id size (`index.rs`).
//! - `boundary`: how long the trainer waits at an epoch boundary (from the end-of-epoch `None`
//!   to the next epoch's first batch), in steady-state batch times, on Fashion-MNIST.
//!
//! `harness = false`, not criterion: most figures are not "time one closure" (bytes per
//! sample, waits in batch times, percentiles of per-call times inside a running loader), the
//! N = 10⁷ plans take long enough that criterion's 10+ samples per point would blow the
//! 15-minute `make bench` budget, and the report needs one machine-readable file, not
//! criterion's directory tree.
//!
//!     cargo bench --bench micro -- --out target/micro.json [--quick] [--only plan,feedback]
//!         [--sizes 10000,100000] [--policies full,ucb]
//!
//! `--quick` stops at N = 10⁶; `--only`/`--sizes`/`--policies` narrow the run (for profiling
//! one path under perf or callgrind). Without `--bench` (`cargo test --all-targets` runs every
//! bench binary that way, whatever its `test` setting) it measures nothing: building it is the
//! check there. `cargo test --bench micro -- --smoke` runs a small smoke instead.

mod book;
mod index;
mod loader;
mod plans;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use thresher_core::policy::PolicyConfig;
use thresher_core::{Config, Rng, Stream};

/// Feedback batch: the batch size of the throughput figures.
const BATCH: usize = 256;

/// ImageNet-1k's training set, the size the plan-time goal is stated for.
const IMAGENET: usize = 1_281_167;

struct Args {
    out: PathBuf,
    quick: bool,
    only: Option<Vec<String>>,
    sizes: Option<Vec<usize>>,
    policies: Option<Vec<String>>,
    /// Largest N at which `influence` runs.
    influence_max: usize,
}

/// The arguments; `None` when neither `--bench` nor `--smoke` asks for a run.
fn parse_args() -> Option<Args> {
    let mut args = Args {
        out: PathBuf::from("micro.json"),
        quick: false,
        only: None,
        sizes: None,
        policies: None,
        influence_max: 10_000_000,
    };
    let list = |s: Option<String>| -> Vec<String> {
        s.expect("a value after the flag")
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let (mut bench, mut smoke) = (false, false);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => args.out = PathBuf::from(it.next().expect("--out PATH")),
            "--quick" => args.quick = true,
            "--only" => args.only = Some(list(it.next())),
            "--policies" => args.policies = Some(list(it.next())),
            "--influence-max" => {
                args.influence_max = it
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
                    .expect("--influence-max N") as usize
            }
            "--sizes" => {
                args.sizes = Some(
                    list(it.next())
                        .iter()
                        .map(|s| s.parse::<f64>().expect("a size") as usize)
                        .collect(),
                )
            }
            // cargo bench passes `--bench` to every bench binary; criterion-style filters are
            // not used here.
            "--bench" => bench = true,
            "--smoke" => smoke = true,
            _ => {}
        }
    }
    if smoke {
        // A check that the program works (often a debug build): small sizes, no influence (slow
        // unoptimised), written outside the source tree.
        args.quick = true;
        args.sizes = Some(vec![10_000]);
        args.influence_max = 0;
        args.out = std::env::temp_dir().join("thresher-micro-smoke.json");
    }
    (bench || smoke).then_some(args)
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == part))
    }
    fn wants_policy(&self, name: &str) -> bool {
        self.policies
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == name))
    }
}

/// The 1-minute load average, recorded beside every figure (the machine is shared).
fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn policy_config(json: &str) -> PolicyConfig {
    Config::from_json(&format!(r#"{{"policy": {json}}}"#))
        .expect("a valid policy config")
        .policy
}

/// A deterministic pseudo-random value in [0, 1) for (what, id).
fn unit(what: u64, id: u64) -> f32 {
    Rng::new(17, Stream::Select, what, id).unit_f64() as f32
}

/// This thread's CPU time: on a shared machine a wall-clock figure also counts the time the
/// thread was preempted, which this does not (cache contention still shows in both).
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let Some(args) = parse_args() else {
        eprintln!(
            "micro: measures only under `cargo bench --bench micro` (`make bench`) or --smoke"
        );
        return;
    };
    let started = Instant::now();
    let mut out = json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_start": load(),
        "quick": args.quick,
    });
    if args.wants("book_bytes") {
        out["book_bytes"] = book::book_bytes();
    }
    if args.wants("overhead") {
        out["overhead"] = loader::overhead(&args);
    }
    if args.wants("boundary") {
        out["boundary"] = loader::boundary(&args);
    }
    if args.wants("feedback") {
        out["feedback"] = book::feedback(&args);
    }
    if args.wants("plan") {
        out["plan"] = plans::plans(&args);
    }
    if args.wants("epoch_plan") {
        out["epoch_plan"] = index::epoch_plan(&args);
    }
    out["load_end"] = json!(load());
    out["seconds"] = json!(started.elapsed().as_secs_f64());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write the output file");
    eprintln!(
        "micro: wrote {} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
}
