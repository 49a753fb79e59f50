//! `plan`: the time to make one epoch's plan, per policy and N, as the loader makes it at an
//! epoch boundary (and as benches/profiling.md proposes it, into recycled buffers).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thresher_core::plan::{Plan, PlanOptions};
use thresher_core::policy::{PlanContext, Selection};
use thresher_core::{Feedback, Rng, ScoreBook, ScoreFields, Stream};

use crate::{cpu_now, load, median, policy_config, unit, Args, BATCH, IMAGENET};

/// Embedding length for `influence` beyond N = 10⁴ (512, the default, is also timed at small N).
const INFLUENCE_DIM: usize = 64;

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

pub(crate) struct PolicyCase {
    pub(crate) name: &'static str,
    pub(crate) config: String,
    /// The epoch timed: the first pruned epoch (static: the one that fixes the subset).
    epoch: u64,
    /// Static policies: the subset is chosen once; later epochs only copy it.
    fixed_once: bool,
    /// Embedding length (influence only).
    dim: usize,
}

pub(crate) fn cases(dim: usize) -> Vec<PolicyCase> {
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
    sel.reserve(book.len());
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
    sel.reserve(book.len());
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

pub(crate) fn plans(args: &Args) -> Value {
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
        // Each policy is timed on a book holding the fields it needs, as the loader builds it:
        // the record fields are interleaved per id, so a book holding more of them would make
        // a static policy's scoring pass read more bytes than the user's does. Consecutive
        // policies with the same fields share one book (one alive at a time).
        let budget = Duration::from_secs_f64(if n >= 10_000_000 { 2.0 } else { 0.6 });
        let mut book: Option<(ScoreFields, ScoreBook)> = None;
        for case in cases(INFLUENCE_DIM) {
            if !args.wants_policy(case.name) || case.name == "influence" {
                continue;
            }
            let fields = policy_config(&case.config).build(1).needs();
            if book.as_ref().is_none_or(|(f, _)| *f != fields) {
                drop(book.take()); // before the next is built: one alive at a time
                let t = Instant::now();
                book = Some((fields, filled_book(n, fields, 0)));
                eprintln!(
                    "plan: N = {n}: book of {} filled in {:.1} s",
                    case.name,
                    t.elapsed().as_secs_f64()
                );
            }
            let (_, book) = book.as_mut().expect("made above");
            let row = time_plan(&case, n, book, budget);
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
