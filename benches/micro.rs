//! The loader's internal costs, as one JSON document for `benches/report.py` (`make bench`):
//!
//! - `plan`: time to make one epoch's plan (policy selection + `mark_kept` + shuffle into a
//!   `Plan`, what `Loader` does at an epoch boundary) for every policy at N = 10⁴ … 10⁷, from a
//!   ScoreBook filled with two epochs of synthetic feedback; also the 1.28M-id (ImageNet-1k)
//!   plan. Static policies are timed at the epoch that fixes their subset (the costly one) and
//!   at a later, cached epoch. `influence` runs where memory and time allow (see `influence`).
//! - `feedback`: samples/s ingested, in batches of 256 ids in shuffled order, loss only and
//!   with every per-sample signal, through `ScoreBook::feedback` and through `Loader::feedback`.
//! - `book_bytes`: ScoreBook bytes per sample for the fields each policy needs.
//! - `overhead`: consumer-side time of `next` + release per batch, on an in-memory source of
//!   one-byte samples so that the work measured is the loader's own bookkeeping.
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
//! `--quick` stops at N = 10⁶ (a smoke run); `--only`/`--sizes`/`--policies` narrow the run
//! (for profiling one path under perf or callgrind).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thresher_core::plan::{Plan, PlanOptions};
use thresher_core::policy::{PlanContext, PolicyConfig, Selection};
use thresher_core::source::ArraySource;
use thresher_core::{Config, Feedback, Loader, Rng, ScoreBook, ScoreFields, Stream};

/// Feedback batch: the batch size of the throughput figures.
const BATCH: usize = 256;
/// ImageNet-1k's training set, the size the plan-time goal is stated for.
const IMAGENET: usize = 1_281_167;
/// Embedding length for `influence` beyond N = 10⁴ (512, the default, is also timed at small N).
const INFLUENCE_DIM: usize = 64;

struct Args {
    out: PathBuf,
    quick: bool,
    only: Option<Vec<String>>,
    sizes: Option<Vec<usize>>,
    policies: Option<Vec<String>>,
    /// Largest N at which `influence` runs.
    influence_max: usize,
}

fn parse_args() -> Args {
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
    let mut bench = false;
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
            _ => {}
        }
    }
    if !bench {
        // Run by `cargo test --all-targets` (no `--bench`, often a debug build): a smoke run
        // that checks the program works, at small sizes, writing outside the source tree.
        args.quick = true;
        args.sizes = Some(vec![10_000]);
        args.influence_max = 0; // influence alone takes a minute in a debug build
        args.out = std::env::temp_dir().join("thresher-micro-smoke.json");
    }
    args
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

/// Runs `pass` 1 + `passes` times (the first warms the caches and is not counted) and returns
/// one feedback row: median and best rate over the counted passes.
fn feedback_row(path: &str, name: &str, n: usize, passes: usize, mut pass: impl FnMut()) -> Value {
    let mut secs = Vec::new();
    for p in 0..=passes {
        let t = Instant::now();
        pass();
        if p > 0 {
            secs.push(t.elapsed().as_secs_f64());
        }
    }
    let best = secs.iter().cloned().fold(f64::INFINITY, f64::min);
    let s = median(&mut secs);
    eprintln!(
        "feedback: N = {n}, {path}, {name}: {:.1} M samples/s (load {:.2})",
        n as f64 / s / 1e6,
        load()
    );
    json!({"path": path, "variant": name, "n": n, "batch": BATCH,
           "samples_per_s": n as f64 / s, "ns_per_sample": s / n as f64 * 1e9,
           "best_samples_per_s": n as f64 / best, "load": load()})
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

/// A book for `n` samples holding `fields`, after two epochs of feedback on every sample (so
/// EMAs have a variance, forgetting has events, and every id counts as seen), with embeddings
/// of `dim` floats when `fields` holds them.
fn filled_book(n: usize, fields: ScoreFields, dim: usize) -> ScoreBook {
    let mut book = ScoreBook::with_options(n, fields, 0.8, dim.max(1), 0);
    const CHUNK: usize = 1 << 16;
    let mut loss = Vec::with_capacity(CHUNK);
    let mut grad = Vec::with_capacity(CHUNK);
    let mut el2n = Vec::with_capacity(CHUNK);
    let mut correct = Vec::with_capacity(CHUNK);
    let mut emb = Vec::new();
    let want_emb = fields.contains(ScoreFields::EMBEDDING);
    for epoch in 0..2u64 {
        for start in (0..n).step_by(CHUNK) {
            let ids: Vec<u64> = (start as u64..(start + CHUNK).min(n) as u64).collect();
            loss.clear();
            grad.clear();
            el2n.clear();
            correct.clear();
            for &id in &ids {
                // A skewed loss (most samples easy, a tail of hard ones), as after training.
                let u = unit(epoch, id);
                loss.push(-(1.0 - u).ln() * 0.5);
                grad.push(unit(10 + epoch, id) * 3.0);
                el2n.push(unit(20 + epoch, id));
                correct.push((unit(30 + epoch, id) < 0.8) as u8);
            }
            if want_emb && epoch == 1 {
                emb.clear();
                let mut rng = Rng::new(3, Stream::Select, start as u64, 0);
                emb.extend((0..ids.len() * dim).map(|_| rng.unit_f64() as f32 - 0.5));
            }
            let fb = Feedback {
                ids: &ids,
                loss: &loss,
                grad_norm: Some(&grad),
                el2n: Some(&el2n),
                correct: Some(&correct),
                embedding: (want_emb && epoch == 1).then_some(&emb[..]),
                embedding_dim: if want_emb && epoch == 1 { dim } else { 0 },
            };
            book.feedback(&fb, epoch).expect("valid synthetic feedback");
        }
    }
    book
}

struct PolicyCase {
    name: &'static str,
    config: String,
    /// The epoch timed: the first pruned epoch (static: the one that fixes the subset).
    epoch: u64,
    /// Static policies: the subset is chosen once; later epochs only copy it.
    fixed_once: bool,
    /// Embedding length (influence only).
    dim: usize,
}

fn cases(dim: usize) -> Vec<PolicyCase> {
    let c = |name, config: &str, epoch, fixed_once| PolicyCase {
        name,
        config: config.to_string(),
        epoch,
        fixed_once,
        dim: 0,
    };
    vec![
        c("full", r#"{"kind": "full"}"#, 1, false),
        c("random", r#"{"kind": "random"}"#, 1, false),
        c("epsilon_greedy", r#"{"kind": "epsilon_greedy"}"#, 1, false),
        c("ucb", r#"{"kind": "ucb"}"#, 1, false),
        // E = 100 puts full-data annealing at epoch 87; epoch 1 prunes.
        c(
            "infobatch",
            r#"{"kind": "infobatch", "prune": 0.5, "epochs": 100}"#,
            1,
            false,
        ),
        c("el2n", r#"{"kind": "el2n"}"#, 3, true),
        c("grand", r#"{"kind": "grand"}"#, 3, true),
        c("forgetting", r#"{"kind": "forgetting"}"#, 3, true),
        PolicyCase {
            name: "influence",
            config: format!(r#"{{"kind": "influence", "sketch_dim": {dim}}}"#),
            epoch: 3,
            fixed_once: true,
            dim,
        },
    ]
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

/// One plan as `Loader` makes it at an epoch boundary: select into the buffers the previous
/// plan handed back (`spare`), mark_kept, `Plan::new` (which shuffles with
/// `Rng::shuffle_pair`); then the plan's buffers go back to `spare`, as the loader does when the
/// epoch is over. Returns (select, mark_kept, shuffle, shuffle again, CPU) seconds and the
/// plan's length.
fn plan_once(
    policy: &mut dyn thresher_core::policy::Policy,
    book: &mut ScoreBook,
    epoch: u64,
    opts: &PlanOptions,
    spare: &mut Selection,
) -> ([f64; 5], usize) {
    let mut sel = std::mem::take(spare);
    sel.clear();
    let c0 = cpu_now();
    let t0 = Instant::now();
    policy.select(
        &PlanContext {
            epoch,
            seed: 0,
            scores: book,
        },
        &mut sel,
    );
    let t1 = Instant::now();
    book.mark_kept(&sel.ids);
    let t2 = Instant::now();
    let mut plan = Plan::new(epoch, sel, opts, book.len());
    let t3 = Instant::now();
    // CPU time of select + mark_kept + Plan::new.
    let cpu = cpu_now() - c0;
    let len = plan.samples();
    spare.ids = std::mem::take(&mut plan.ids);
    spare.weights = std::mem::take(&mut plan.weights);
    let shuffle = (t3 - t2).as_secs_f64();
    (
        [
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            shuffle,
            shuffle,
            cpu,
        ],
        len,
    )
}

/// A plan the way benches/profiling.md proposes the loader make it: into the buffers the
/// previous plan hands back (no fresh, page-faulting allocation per epoch), shuffled by
/// `Rng::shuffle_pair`. Building the `Plan` from the shuffled vectors is O(1) and left out.
fn plan_recycled(
    policy: &mut dyn thresher_core::policy::Policy,
    book: &mut ScoreBook,
    epoch: u64,
    opts: &PlanOptions,
    spare: &mut Selection,
) -> f64 {
    let mut sel = std::mem::take(spare);
    sel.clear();
    let t0 = Instant::now();
    policy.select(
        &PlanContext {
            epoch,
            seed: opts.seed,
            scores: book,
        },
        &mut sel,
    );
    book.mark_kept(&sel.ids);
    Rng::new(opts.seed, Stream::Shuffle, epoch, 0).shuffle_pair(&mut sel.ids, &mut sel.weights);
    let t = t0.elapsed().as_secs_f64();
    *spare = sel;
    t
}

/// Times plans of `case` at `n`: median of repeats within a time budget.
fn time_plan(case: &PolicyCase, n: usize, book: &mut ScoreBook, budget: Duration) -> Value {
    let config = policy_config(&case.config);
    let opts = PlanOptions {
        seed: 0,
        shuffle: true,
        batch_size: BATCH,
        drop_last: false,
        rank: 0,
        world_size: 1,
    };
    // Period policies (and full, InfoBatch) keep one policy object across epochs, as the
    // loader does, so their scratch buffers are reused; each epoch is a new draw (period 1),
    // hence a real re-plan. Static policies get a fresh object per repeat: the epoch that fixes
    // their subset happens once per run.
    let mut policy = config.build(n);
    let mut policy_b = config.build(n);
    // The buffers a plan hands back for the next one (proposed for the loader, see
    // benches/profiling.md).
    let mut spare = Selection::default();
    // The loader's own path (plan_once) recycles its buffers the same way.
    let mut spare_a = Selection::default();
    if !case.fixed_once {
        for e in 0..case.epoch {
            plan_once(&mut *policy, book, e, &opts, &mut spare_a);
            plan_recycled(&mut *policy_b, book, e, &opts, &mut spare);
        }
    }
    let started = Instant::now();
    let mut runs: Vec<[f64; 5]> = Vec::new();
    let mut recycled = Vec::new();
    let mut kept;
    let mut cached = Vec::new();
    let mut epoch = case.epoch;
    loop {
        let (t, len) = if case.fixed_once {
            let mut fresh = config.build(n);
            let mut fresh_b = config.build(n);
            for e in 0..case.epoch {
                // Untimed: the scoring epochs only copy 0..N (influence: the last one is enough).
                if case.name != "influence" {
                    plan_once(&mut *fresh, book, e, &opts, &mut spare_a);
                    plan_recycled(&mut *fresh_b, book, e, &opts, &mut spare);
                } else if e + 1 == case.epoch {
                    plan_once(&mut *fresh, book, e, &opts, &mut spare_a);
                }
            }
            let r = plan_once(&mut *fresh, book, case.epoch, &opts, &mut spare_a);
            if cached.len() < 3 {
                cached.push(plan_once(&mut *fresh, book, case.epoch + 1, &opts, &mut spare_a).0);
            }
            // Influence's cost is its solver, paid once per run; buffers do not matter there
            // and a second solve would double the bench's longest step.
            if case.name != "influence" {
                recycled.push(plan_recycled(
                    &mut *fresh_b,
                    book,
                    case.epoch,
                    &opts,
                    &mut spare,
                ));
            }
            r
        } else {
            let r = plan_once(&mut *policy, book, epoch, &opts, &mut spare_a);
            recycled.push(plan_recycled(
                &mut *policy_b,
                book,
                epoch,
                &opts,
                &mut spare,
            ));
            epoch += 1;
            r
        };
        runs.push(t);
        kept = len;
        let spent = started.elapsed();
        if runs.len() >= 15 || (runs.len() >= 3 && spent > budget) || spent > budget * 4 {
            break;
        }
    }
    // The plan as the loader makes it: select + mark_kept + Plan::new, recycled buffers.
    let total = |r: &[f64; 5]| r[..3].iter().sum::<f64>();
    let mut with_pair: Vec<f64> = runs.iter().map(|r| r[0] + r[1] + r[3]).collect();
    let mut totals: Vec<f64> = runs.iter().map(total).collect();
    let part = |i: usize| median(&mut runs.iter().map(|r| r[i]).collect::<Vec<_>>());
    let (select, mark, shuffle, pair, cpu) = (part(0), part(1), part(2), part(3), part(4));
    let mut v = json!({
        "policy": case.name, "n": n, "kept": kept, "repeats": runs.len(),
        "plan_s": median(&mut totals), "plan_min_s": totals[0],
        "select_s": select, "mark_kept_s": mark, "shuffle_s": shuffle,
        "shuffle_pair_s": pair, "plan_cpu_s": cpu, "plan_with_shuffle_pair_s": median(&mut with_pair),
        "plan_recycled_s": if recycled.is_empty() { Value::Null } else { json!(median(&mut recycled)) },
        "plan_recycled_min_s": recycled.first(),
        "load": load(),
    });
    if case.dim > 0 {
        v["embedding_dim"] = json!(case.dim);
    }
    if !cached.is_empty() {
        let mut c: Vec<f64> = cached.iter().map(total).collect();
        v["cached_plan_s"] = json!(median(&mut c));
    }
    v
}

fn plans(args: &Args) -> Value {
    let mut sizes = args.sizes.clone().unwrap_or_else(|| {
        if args.quick {
            vec![10_000, 100_000, 1_000_000]
        } else {
            vec![10_000, 100_000, 1_000_000, 10_000_000]
        }
    });
    if args.sizes.is_none() {
        sizes.push(IMAGENET);
    }
    sizes.sort_unstable();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for &n in &sizes {
        // One book per N with every field but embeddings, shared by the score policies (each
        // reads only its own fields; the others cost memory here, not time).
        let fields = ScoreFields::LOSS_LAST
            .union(ScoreFields::LOSS_EMA)
            .union(ScoreFields::GRAD_NORM)
            .union(ScoreFields::EL2N)
            .union(ScoreFields::CORRECT);
        let t = Instant::now();
        let mut book = filled_book(n, fields, 0);
        eprintln!(
            "plan: N = {n}: book filled in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let budget = Duration::from_secs_f64(if n >= 10_000_000 { 2.0 } else { 0.6 });
        for case in cases(INFLUENCE_DIM) {
            if !args.wants_policy(case.name) || case.name == "influence" {
                continue;
            }
            let row = time_plan(&case, n, &mut book, budget);
            eprintln!(
                "plan: {:15} N = {n:>9}: {:9.3} ms (load {:.2})",
                case.name,
                row["plan_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                load()
            );
            rows.push(row);
        }
        drop(book);
        if args.wants_policy("influence") {
            // Influence holds N × d floats of embeddings in the book and as many again for the
            // s_i; its cost is m·d² (Hessian and solves) plus the local search's m·d scans.
            // N = 10⁷ would hold 2 × 2.6 GB at d = 64 (more with the solver's scratch) on a
            // machine other jobs share, for a cost paid once per run: skipped, extrapolated.
            if n > args.influence_max {
                skipped.push(json!({"policy": "influence", "n": n, "embedding_dim": INFLUENCE_DIM,
                    "why": "it would hold N × d floats twice (the embeddings in the book and the s_i: 5.1 GB at d = 64) on a shared machine, for a cost paid once per run"}));
                continue;
            }
            let mut dims = vec![INFLUENCE_DIM];
            if n <= 10_000 {
                dims.push(512);
            }
            for dim in dims {
                let t = Instant::now();
                let mut book = filled_book(n, ScoreFields::EMBEDDING, dim);
                eprintln!(
                    "plan: N = {n}: influence book (d = {dim}) filled in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
                let case = cases(dim).pop().expect("influence is last");
                let row = time_plan(&case, n, &mut book, Duration::from_millis(100));
                eprintln!(
                    "plan: influence d={dim:<4} N = {n:>9}: {:9.3} ms (load {:.2})",
                    row["plan_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                    load()
                );
                rows.push(row);
            }
        }
    }
    json!({"rows": rows, "skipped": skipped, "batch_size": BATCH})
}

/// Feedback in batches of 256 ids in shuffled order, over N = 60,000 (Fashion-MNIST: the book
/// fits in cache) and N = 1.28M (ImageNet-1k: every field of every id is a cache miss).
fn feedback(args: &Args) -> Value {
    let mut rows = Vec::new();
    for n in [60_000, if args.quick { 200_000 } else { IMAGENET }] {
        feedback_at(args, n, &mut rows);
    }
    json!({"rows": rows})
}

/// One feedback call's ids and signals: loss, grad_norm, el2n, correct.
type Signals<'a> = (&'a [u64], Vec<f32>, Vec<f32>, Vec<f32>, Vec<u8>);

fn feedback_at(args: &Args, n: usize, rows: &mut Vec<Value>) {
    let mut order: Vec<u64> = (0..n as u64).collect();
    Rng::new(1, Stream::Shuffle, 0, 0).shuffle(&mut order);
    let loss: Vec<f32> = (0..n as u64).map(|i| unit(0, i)).collect();
    let grad: Vec<f32> = (0..n as u64).map(|i| unit(1, i)).collect();
    let el2n: Vec<f32> = (0..n as u64).map(|i| unit(2, i)).collect();
    let correct: Vec<u8> = (0..n as u64).map(|i| (unit(3, i) < 0.8) as u8).collect();
    let all = ScoreFields::LOSS_LAST
        .union(ScoreFields::LOSS_EMA)
        .union(ScoreFields::GRAD_NORM)
        .union(ScoreFields::EL2N)
        .union(ScoreFields::CORRECT);
    // At least ~6M samples a variant, so that small N is not all timer noise.
    let passes = (if args.quick { 3 } else { 6 }) * (IMAGENET / n).clamp(1, 20);
    // (name, book fields, with every signal)
    let variants: [(&str, ScoreFields, bool); 3] = [
        (
            "loss only, book of infobatch (loss_last)",
            ScoreFields::LOSS_LAST,
            false,
        ),
        (
            "loss only, book of ucb (loss_ema, loss_var)",
            ScoreFields::LOSS_EMA,
            false,
        ),
        (
            "all fields (loss, grad_norm, el2n, correct), every book field",
            all,
            true,
        ),
    ];
    for (name, fields, full) in variants {
        let mut book = ScoreBook::new(n, fields);
        // Per-batch signal slices gathered up front, so the timed loop is the ingest alone.
        let gather = |src: &[f32], ids: &[u64]| -> Vec<f32> {
            ids.iter().map(|&i| src[i as usize]).collect()
        };
        let batches: Vec<Signals> = order
            .chunks(BATCH)
            .map(|ids| {
                (
                    ids,
                    gather(&loss, ids),
                    if full { gather(&grad, ids) } else { Vec::new() },
                    if full { gather(&el2n, ids) } else { Vec::new() },
                    if full {
                        ids.iter().map(|&i| correct[i as usize]).collect()
                    } else {
                        Vec::new()
                    },
                )
            })
            .collect();
        // Each pass is booked under its own epoch, as successive epochs of training would be.
        let mut epoch = 0u64;
        rows.push(feedback_row("ScoreBook::feedback", name, n, passes, || {
            for (ids, l, g, e, c) in &batches {
                let fb = Feedback {
                    ids,
                    loss: l,
                    grad_norm: full.then_some(&g[..]),
                    el2n: full.then_some(&e[..]),
                    correct: full.then_some(&c[..]),
                    ..Default::default()
                };
                book.feedback(&fb, epoch).expect("valid feedback");
            }
            epoch += 1;
        }));
        if !full && fields == ScoreFields::LOSS_LAST {
            // The same through the loader (its mutex and epoch counter), infobatch's book.
            let source = ArraySource::new(vec![0; n], [1, 1, 1], vec![0; n]).expect("source");
            let config = Config::from_json(
                r#"{"batch_size": 256, "workers": 1, "prefetch": 1,
                    "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 100},
                    "transform": {"dtype": "u8"}}"#,
            )
            .expect("config");
            let loader = Loader::with_source(config, Arc::new(source)).expect("loader");
            rows.push(feedback_row("Loader::feedback", name, n, passes, || {
                for (ids, l, _, _, _) in &batches {
                    let fb = Feedback {
                        ids,
                        loss: l,
                        ..Default::default()
                    };
                    loader.feedback(&fb).expect("valid feedback");
                }
            }));
        }
    }
}

/// ScoreBook bytes per sample for each policy's fields (embeddings counted separately).
fn book_bytes() -> Value {
    let rows: Vec<Value> = cases(512)
        .iter()
        .map(|case| {
            let config = policy_config(&case.config);
            let fields = config.build(1000).needs();
            let book = ScoreBook::with_options(1000, fields, 0.8, 512, 0);
            let per = book.bytes_per_sample();
            let emb = if fields.contains(ScoreFields::EMBEDDING) {
                4 * config.sketch_dim()
            } else {
                0
            };
            json!({"policy": case.name, "bytes_per_sample": per,
                   "embedding_bytes_per_sample": emb,
                   "imagenet_mb": (per + emb) as f64 * IMAGENET as f64 / 1e6})
        })
        .collect();
    json!({"rows": rows})
}

/// A loader over `n` one-byte samples, u8 output, batch 256, `workers` workers.
fn tiny_loader(n: usize, workers: usize, prefetch: usize, policy: &str) -> Loader {
    let source = ArraySource::new(vec![7; n], [1, 1, 1], vec![0; n]).expect("source");
    let config = Config::from_json(&format!(
        r#"{{"batch_size": {BATCH}, "workers": {workers}, "prefetch": {prefetch},
            "policy": {policy}, "transform": {{"dtype": "u8"}}}}"#
    ))
    .expect("config");
    Loader::with_source(config, Arc::new(source)).expect("loader")
}

/// Consumer-side `next` + release per batch, with workers far enough ahead not to wait: the
/// consumer pauses 100 µs between batches (a trainer's step, off the CPU), in which the workers
/// refill the window (one-byte samples take them ~20 µs a batch), then times the call and the
/// release alone. The first batch of each epoch (which makes the plan) is left out; the
/// boundary has its own figure. Also back to back (no pause), where the consumer outruns the
/// workers and the figure includes waiting for them.
fn overhead(args: &Args) -> Value {
    let n = 1 << 18;
    let epochs = if args.quick { 1 } else { 2 };
    let mut rows = Vec::new();
    for (pause_us, workers) in [(100u64, 1usize), (100, 2), (0, 2)] {
        let loader = tiny_loader(n, workers, 32, r#"{"kind": "full"}"#);
        while loader.next().expect("next").is_some() {} // warm-up epoch
        let mut per = Vec::new();
        let mut waited = 0.0;
        let mut busy = 0.0;
        for _ in 0..epochs {
            let mut k = 0;
            loop {
                if pause_us > 0 {
                    std::thread::sleep(Duration::from_micros(pause_us));
                }
                let t = Instant::now();
                let b = loader.next().expect("next");
                let Some(b) = b else { break };
                drop(b);
                let dt = t.elapsed().as_secs_f64();
                if k > 0 {
                    per.push(dt);
                    busy += dt;
                }
                k += 1;
            }
            waited += loader.report().consumer_wait_s;
        }
        per.sort_by(f64::total_cmp);
        let row = json!({
            "workers": workers, "batch": BATCH, "batches": per.len(), "pause_us": pause_us,
            "median_us": percentile(&per, 0.5) * 1e6, "p90_us": percentile(&per, 0.9) * 1e6,
            "p99_us": percentile(&per, 0.99) * 1e6, "mean_us": busy / per.len() as f64 * 1e6,
            "waited_fraction_of_calls": waited / busy, "load": load(),
        });
        eprintln!("overhead: {row}");
        rows.push(row);
    }
    json!({"rows": rows})
}

/// The wait at the epoch boundary, in steady-state batch times: Fashion-MNIST train as f32
/// NCHW normalised, batch 256, 2 workers, prefetch 8, with per-sample loss feedback after every
/// batch. Two trainers: one that takes no time (the loader is the bottleneck: the strictest
/// case) and one whose step takes 2 ms off the CPU (sleep: a GPU step), where workers keep the
/// window full and the boundary is the only wait.
fn boundary(args: &Args) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist");
    let epochs = if args.quick { 3 } else { 6 };
    let mut rows = Vec::new();
    for (policy, pjson) in [
        ("full", r#"{"kind": "full"}"#),
        (
            "infobatch",
            r#"{"kind": "infobatch", "prune": 0.5, "epochs": 100}"#,
        ),
    ] {
        for step_ms in [0.0, 2.0] {
            let config = Config::from_json(&format!(
                r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                                 "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
                    "batch_size": {BATCH}, "workers": 2, "prefetch": 8, "policy": {pjson},
                    "transform": {{"dtype": "f32", "normalize": {{"mean": [0.286], "std": [0.353]}}}}}}"#
            ));
            let Ok(config) = config else { continue };
            let loader = match Loader::new(config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("boundary: skipped ({e}; run `make setup`)");
                    return json!({"rows": [], "skipped": e.to_string()});
                }
            };
            let mut waits = Vec::new();
            let mut steady = Vec::new();
            let mut loss = vec![0f32; BATCH];
            for epoch in 0..=epochs {
                let t_begin = Instant::now();
                let mut first = None;
                let mut last = t_begin;
                let mut k = 0usize;
                while let Some(b) = loader.next().expect("next") {
                    let now = Instant::now();
                    if first.is_none() {
                        first = Some(now - t_begin);
                    } else if k >= 4 {
                        // Steady state: the interval between deliveries (the trainer's step
                        // included), past the refill.
                        steady.push((now - last).as_secs_f64());
                    }
                    last = now;
                    for (l, &id) in loss.iter_mut().zip(b.ids()) {
                        *l = unit(epoch, id);
                    }
                    loader
                        .feedback(&Feedback {
                            ids: b.ids(),
                            loss: &loss[..b.len()],
                            ..Default::default()
                        })
                        .expect("feedback");
                    drop(b);
                    if step_ms > 0.0 {
                        std::thread::sleep(Duration::from_secs_f64(step_ms / 1e3));
                    }
                    k += 1;
                }
                // Epoch 0's first batch comes from a plan made at creation; from epoch 1 on,
                // the next `next` makes the plan and waits for the refill.
                if epoch > 0 {
                    waits.push(first.expect("a batch").as_secs_f64());
                }
            }
            let batch_time = median(&mut steady);
            // The wait is the boundary's `next` call alone: the trainer's step before it is not
            // part of it.
            let wait = median(&mut waits);
            let row = json!({
                "policy": policy, "trainer_step_ms": step_ms, "epochs": epochs,
                "boundary_wait_ms": wait * 1e3, "boundary_wait_max_ms":
                    waits.iter().cloned().fold(0.0, f64::max) * 1e3,
                "batch_time_ms": batch_time * 1e3,
                "wait_in_batches": wait / batch_time, "load": load(),
            });
            eprintln!("boundary: {row}");
            rows.push(row);
        }
    }
    json!({"rows": rows})
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let mut out = json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_start": load(),
        "quick": args.quick,
    });
    if args.wants("book_bytes") {
        out["book_bytes"] = book_bytes();
    }
    if args.wants("overhead") {
        out["overhead"] = overhead(&args);
    }
    if args.wants("boundary") {
        out["boundary"] = boundary(&args);
    }
    if args.wants("feedback") {
        out["feedback"] = feedback(&args);
    }
    if args.wants("plan") {
        out["plan"] = plans(&args);
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
