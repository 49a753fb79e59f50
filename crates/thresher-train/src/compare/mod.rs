//! `compare`: every policy × seed on the same data and the same initialisations, then a table
//! (results/compare.md, .json) and a plot of test accuracy — or, for token blocks and
//! regression, test loss — against training time (results/compare.png). Seeds are the outer loop so that a slow phase of the machine does not
//! fall on one policy only. The files are rewritten after every run, so a long comparison that
//! is interrupted still leaves its finished runs behind.
//!
//! Files: this one runs the comparison and writes its outputs; `table` summarises the runs and
//! makes the table; `plot` draws the plots.

mod plot;
mod table;

use serde_json::json;

use crate::cli::{CompareArgs, PolicySpec};
use crate::train::{self, Metric, RunOptions, RunResult};
use crate::Result;
use plot::{curves, plot, plot_visits, register_font};
use table::{matched_label, metric_of, summarise, table, Row};

fn write_outputs(
    args: &CompareArgs,
    groups: &[(String, Vec<RunResult>)],
    setup: &str,
) -> Result<(String, std::path::PathBuf)> {
    let out = &args.common.out;
    let metric = metric_of(groups);
    let rows: Vec<Row> = groups
        .iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(l, r)| summarise(l, r, metric))
        .collect();
    let eval = if args.common.data.val_config.is_some() {
        "validation"
    } else {
        "test"
    };
    // Under a budget the visits agree to within one batch per epoch (drop_last, ranks).
    let slack = (args.common.epochs * args.common.batch_size as u64) as f64;
    let tab = table(&rows, metric, eval, slack);
    let (what, y_desc) = match metric {
        Metric::Accuracy => (format!("{eval} accuracy"), format!("{eval} accuracy (%)")),
        Metric::Loss => (
            format!("{eval} loss"),
            format!("{eval} loss (per token for token blocks)"),
        ),
    };
    // The model as the first run built it.
    let model = groups
        .iter()
        .flat_map(|(_, r)| r.first())
        .next()
        .filter(|_| args.common.data.config.is_some())
        .map_or(String::new(), |r| {
            let m = &r.model;
            let s = |k: &str| m[k].as_str().unwrap_or("?").to_string();
            format!(
                "Model: {} ({} parameters), loss {}, optimizer {}; samples {} {}, {} outputs.\n\n",
                s("model"),
                m["parameters"],
                s("loss"),
                s("optimizer"),
                m["problem"]["input"].as_str().unwrap_or("?"),
                m["problem"]["sample"],
                m["outputs"],
            )
        });
    let md = format!(
        "# thresher-train compare\n\n{setup}\n\n{model}{tab}\n\
         - *realised prune*: 1 − sample-visits / (epochs · N) over the whole run, and the highest \
         single-epoch value; the nominal `--prune` is the policy's key (InfoBatch's r), not a \
         promise.\n\
         - *train time*: the training loop only (planning, loading, forward, feedback, backward, \
         step); the per-epoch test evaluation is excluded (the same for every policy). *train \
         CPU s*: CPU time of the process (all threads) over the same span; other jobs on the \
         machine inflate wall time far more than CPU time.\n\
         - *mean weight*: mean loss weight of the kept samples, averaged over epochs.\n\n\
         - 1-minute load average when this file was written: {}.\n\n\
         - *Δ … vs random at the same visits*: against `random` pruning with the same \
         realised sample-visits: the run's matched `random≡…` row (`--match-random`), or under \
         `--budget` the `random` row, which spends the same budget.\n\n\
         {flipped}\
         ![{what} against training time](compare.png)\n\n\
         ![final {eval} figure against sample-visits, each policy beside random pruning at the \
         same visits](compare_visits.png)\n",
        train::load_average().map_or("?".into(), |l| format!("{l:.2}")),
        flipped = if !rows.is_empty() && rows.iter().all(|r| r.flipped.is_some()) {
            "- *visits on flipped labels*: with `--label-noise`, the share of the run's \
             sample-visits that went to samples whose label was flipped (random pruning spends \
             the noise rate on them, in expectation), and in brackets their share of the summed \
             loss weight, i.e. of the gradient: a noise guard that works shows here first.\n\n"
        } else {
            ""
        }
    );
    std::fs::write(out.join("compare.md"), &md)?;
    let json: Vec<_> = groups
        .iter()
        .map(|(l, r)| json!({"policy": l, "runs": r}))
        .collect();
    std::fs::write(out.join("compare.json"), serde_json::to_string(&json)?)?;
    let png = out.join("compare.png");
    plot(
        &png,
        &format!("{what} against training time"),
        &y_desc,
        metric,
        &curves(groups, metric),
    )?;
    plot_visits(&out.join("compare_visits.png"), &rows, slack)?;
    Ok((tab, png))
}

pub fn run(args: &CompareArgs, device: tch::Device, threads: usize) -> Result<()> {
    // Before hours of training, not after.
    register_font()?;
    let c = &args.common;
    let runs_dir = c.out.join("runs");
    std::fs::create_dir_all(&runs_dir)?;
    let mut groups: Vec<(String, Vec<RunResult>)> = Vec::new();
    for spec in &args.policies {
        let label = spec.label();
        if groups.iter().any(|(l, _)| *l == label) {
            return Err(format!("policy {label} is listed twice").into());
        }
        groups.push((label, Vec::new()));
    }
    let cmd: Vec<String> = std::env::args().collect();
    let load = train::load_average().map_or("?".into(), |l| format!("{l:.2}"));
    let setup = if let Some(config) = &c.data.config {
        format!(
            "`{}`\n\nconfig `{}` (evaluation: {}), {} epochs, lr {} wd {} ({:?} schedule), device \
             {:?}, torch threads {}, {} seeds, nominal prune {}; {} cores, 1-minute load average \
             {} at the start.",
            cmd.join(" "),
            config.display(),
            c.data
                .val_config
                .as_ref()
                .map_or("none".to_string(), |v| format!("`{}`", v.display())),
            c.epochs,
            c.lr,
            c.weight_decay,
            c.schedule,
            device,
            threads,
            args.seeds,
            c.prune,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load,
        )
    } else {
        format!(
            "`{}`\n\n{} ({} training samples{}), {} epochs, batch {}, model {:?} (width {}), SGD \
         lr {} momentum {} wd {} ({:?} schedule), device {:?}, torch threads {}, loader workers \
         {}, {} seeds, nominal prune {}; {} cores, 1-minute load average {} at the start.",
            cmd.join(" "),
            c.dataset.dir_name(),
            c.limit.map_or("all".to_string(), |l| format!("first {l}")),
            c.test_limit
                .map_or(String::new(), |l| format!(", first {l} test samples")),
            c.epochs,
            c.batch_size,
            c.model.resolve(c.dataset.shape()),
            c.width,
            c.lr,
            c.momentum,
            c.weight_decay,
            c.schedule,
            device,
            threads,
            c.workers,
            args.seeds,
            c.prune,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load,
        )
    };
    let specs: Vec<&PolicySpec> = args.policies.iter().collect();
    for seed in args.first_seed..args.first_seed + args.seeds {
        for (i, spec) in specs.iter().enumerate() {
            let label = spec.label();
            let file = format!("{}-s{seed}.jsonl", label.replace([':', '=', '/'], "_"));
            let result = train::run(&RunOptions {
                common: c,
                spec,
                seed,
                log: runs_dir.join(file),
                save_scores: None,
                device,
                threads,
            })?;
            let figure = match result.metric {
                Metric::Accuracy => format!("test {:.2}%", result.final_test_acc),
                Metric::Loss => format!("test loss {:.4}", result.final_test_loss),
            };
            println!(
                "== {label} seed {seed}: {figure}, {:.1}s training, realised prune {:.1}%",
                result.train_s,
                100.0 * result.realised_prune
            );
            let matched = (args.match_random
                && c.budget.is_none()
                && !["full", "random"].contains(&spec.kind.as_str()))
            .then(|| {
                let share = result.visits as f64 / (c.epochs * result.dataset_len) as f64;
                let mut m = serde_json::Map::new();
                m.insert("budget".into(), json!(share.clamp(1e-9, 1.0)));
                (
                    matched_label(&label),
                    PolicySpec {
                        kind: "random".into(),
                        overrides: m,
                    },
                )
            });
            groups[i].1.push(result);
            write_outputs(args, &groups, &setup)?;
            if let Some((mlabel, mspec)) = matched {
                let file = format!(
                    "{}-s{seed}.jsonl",
                    mlabel.replace([':', '=', '/', '≡'], "_")
                );
                let r = train::run(&RunOptions {
                    common: c,
                    spec: &mspec,
                    seed,
                    log: runs_dir.join(file),
                    save_scores: None,
                    device,
                    threads,
                })?;
                println!("== {mlabel} seed {seed}: test {:.2}%", r.final_test_acc);
                match groups.iter_mut().find(|(l, _)| *l == mlabel) {
                    Some(g) => g.1.push(r),
                    None => groups.push((mlabel, vec![r])),
                }
                write_outputs(args, &groups, &setup)?;
            }
        }
    }
    let (tab, png) = write_outputs(args, &groups, &setup)?;
    println!("\n{tab}");
    println!("table: {}", c.out.join("compare.md").display());
    println!("plot:  {}", png.display());
    Ok(())
}
