//! `compare`: every policy × seed on the same data and the same initialisations, then a table
//! (results/compare.md, .json) and a plot of test accuracy — or, for token blocks and
//! regression, test loss — against training time (results/compare.png). Seeds are the outer loop so that a slow phase of the machine does not
//! fall on one policy only. The files are rewritten after every run, so a long comparison that
//! is interrupted still leaves its finished runs behind.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::json;

use crate::cli::{CompareArgs, PolicySpec};
use crate::train::{self, Metric, RunOptions, RunResult};
use crate::Result;

/// Matplotlib's "tab10" and a few darker ones: distinct on white (Palette99 has a pale yellow),
/// enough for every policy plus variants. The baseline, `full`, is drawn in black.
const COLORS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
    RGBColor(0, 128, 128),
    RGBColor(128, 0, 64),
];

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers DejaVu Sans as plotters' sans-serif font (ab_glyph draws from a TTF we supply; no
/// system font lookup). `THRESHER_FONT` overrides the path.
pub fn register_font() -> Result<()> {
    let path = std::env::var("THRESHER_FONT").unwrap_or_else(|_| FONT.to_string());
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the plot font {path}: {e} (install fonts-dejavu-core, or point \
             THRESHER_FONT at a .ttf)"
        )
    })?;
    // plotters keeps the font for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for style in [FontStyle::Normal, FontStyle::Bold] {
        plotters::style::register_font("sans-serif", style, bytes)
            .map_err(|_| format!("{path} is not a usable TrueType font"))?;
    }
    Ok(())
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    // Sample standard deviation across seeds (0 for one seed).
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// One policy's runs, summarised.
struct Row {
    label: String,
    runs: usize,
    realised: f64,
    /// Highest per-epoch realised prune fraction of any run.
    peak: f64,
    acc: (f64, f64),
    time: (f64, f64),
    cpu: f64,
    visits: f64,
    mean_weight: f64,
}

/// The run's final figure by `metric`.
fn final_figure(r: &RunResult, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => r.final_test_acc,
        Metric::Loss => r.final_test_loss,
    }
}

fn epoch_figure(e: &train::EpochRecord, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => e.test_acc,
        Metric::Loss => e.test_loss,
    }
}

/// What the runs are judged by (the same for every run of a comparison).
fn metric_of(groups: &[(String, Vec<RunResult>)]) -> Metric {
    groups
        .iter()
        .find_map(|(_, r)| r.first())
        .map_or(Metric::Accuracy, |r| r.metric)
}

fn summarise(label: &str, runs: &[RunResult], metric: Metric) -> Row {
    let col = |f: &dyn Fn(&RunResult) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let weights: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.epochs.iter().map(|e| e.mean_weight))
        .filter(|w| w.is_finite())
        .collect();
    Row {
        label: label.to_string(),
        runs: runs.len(),
        realised: mean_std(&col(&|r| r.realised_prune)).0,
        peak: runs
            .iter()
            .flat_map(|r| r.epochs.iter().map(|e| e.prune_fraction))
            .fold(0.0, f64::max),
        acc: mean_std(&col(&|r| final_figure(r, metric))),
        time: mean_std(&col(&|r| r.train_s)),
        cpu: mean_std(&col(&|r| r.train_cpu_s)).0,
        visits: mean_std(&col(&|r| r.visits as f64)).0,
        mean_weight: mean_std(&weights).0,
    }
}

/// The label of the random run matched to `label`'s realised sample-visits.
pub fn matched_label(label: &str) -> String {
    format!("random≡{label}")
}

/// Accuracy of random pruning at `r`'s sample-visits: its matched random run
/// (`--match-random`), else a `random` row with the same visits to within `slack` (under
/// `--budget` every policy has random's visits).
fn random_at_same_visits<'a>(rows: &'a [Row], r: &Row, slack: f64) -> Option<&'a Row> {
    if r.label.starts_with("random") || r.label == "full" {
        return None;
    }
    rows.iter()
        .find(|x| x.label == matched_label(&r.label))
        .or_else(|| {
            rows.iter()
                .find(|x| x.label == "random" && (x.visits - r.visits).abs() <= slack)
        })
}

/// `eval` names the evaluation set ("test", or "validation" for `--val-config`).
fn table(rows: &[Row], metric: Metric, eval: &str, slack: f64) -> String {
    let full = rows.iter().find(|r| r.label == "full");
    let (figure, delta, delta_random) = match metric {
        Metric::Accuracy => (
            format!("final {eval} acc % (mean ± std)"),
            "Δ acc vs full",
            "Δ acc vs random at the same visits",
        ),
        Metric::Loss => (
            format!("final {eval} loss (mean ± std) [perplexity]"),
            "Δ loss vs full",
            "Δ loss vs random at the same visits",
        ),
    };
    let mut s = format!(
        "| policy | runs | realised prune (overall / peak epoch) | mean weight | {figure} | \
         {delta} | {delta_random} | train time s (mean ± std) | time saved vs full | train CPU s (saved) | \
         sample-visits | visits saved vs full |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let (digits, ppl) = match metric {
        Metric::Accuracy => (2, false),
        Metric::Loss => (4, true),
    };
    for r in rows {
        let d_random = random_at_same_visits(rows, r, slack)
            .map_or("—".to_string(), |x| format!("{:+.2}", r.acc.0 - x.acc.0));
        let (d_acc, saved, cpu_saved, v_saved) = match full {
            Some(f) => (
                format!("{:+.*}", digits, r.acc.0 - f.acc.0),
                format!("{:.1}%", 100.0 * (1.0 - r.time.0 / f.time.0)),
                format!("{:.1}%", 100.0 * (1.0 - r.cpu / f.cpu)),
                format!("{:.1}%", 100.0 * (1.0 - r.visits / f.visits)),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let figure = if ppl {
            format!("{:.4} ± {:.4} [{:.3}]", r.acc.0, r.acc.1, r.acc.0.exp())
        } else {
            format!("{:.2} ± {:.2}", r.acc.0, r.acc.1)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.1}% / {:.1}% | {:.3} | {figure} | {} | {} | {:.1} ± {:.1} | {} | {:.0} ({}) \
             | {:.0} | {} |",
            r.label,
            r.runs,
            100.0 * r.realised,
            100.0 * r.peak,
            r.mean_weight,
            d_acc,
            d_random,
            r.time.0,
            r.time.1,
            saved,
            r.cpu,
            cpu_saved,
            r.visits,
            v_saved
        );
    }
    s
}

/// Per policy: (mean training seconds, mean test figure) at the end of each epoch.
fn curves(groups: &[(String, Vec<RunResult>)], metric: Metric) -> Vec<(String, Vec<(f64, f64)>)> {
    groups
        .iter()
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(label, runs)| {
            let epochs = runs.iter().map(|r| r.epochs.len()).min().unwrap_or(0);
            let pts = (0..epochs)
                .map(|e| {
                    let t = mean_std(&runs.iter().map(|r| r.epochs[e].train_s).collect::<Vec<_>>());
                    let a = mean_std(
                        &runs
                            .iter()
                            .map(|r| epoch_figure(&r.epochs[e], metric))
                            .collect::<Vec<_>>(),
                    );
                    (t.0, a.0)
                })
                .collect();
            (label.clone(), pts)
        })
        .collect()
}

fn plot(
    path: &Path,
    title: &str,
    y_desc: &str,
    metric: Metric,
    curves: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    // A run without an evaluation has NaN figures: nothing to draw for them.
    let curves: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(l, p)| {
            (
                l.clone(),
                p.iter().copied().filter(|v| v.1.is_finite()).collect(),
            )
        })
        .collect();
    let curves = curves.as_slice();
    let pts = curves.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, 100.0f64, 0.0f64);
    for &(x, y) in pts {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if y_min > y_max {
        (y_min, y_max) = (0.0, 100.0);
    }
    let pad = match metric {
        Metric::Accuracy => ((y_max - y_min) * 0.05).max(0.2),
        Metric::Loss => ((y_max - y_min) * 0.05).max(1e-3),
    };
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max * 1.03, (y_min - pad)..(y_max + pad))?;
    chart
        .configure_mesh()
        .x_desc("training wall time (s, mean over seeds)")
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .draw()?;
    let mut next = 0;
    for (label, p) in curves {
        let color = if label == "full" {
            BLACK
        } else {
            next += 1;
            COLORS[(next - 1) % COLORS.len()]
        };
        chart
            .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            p.iter()
                .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(match metric {
            Metric::Accuracy => SeriesLabelPosition::LowerRight,
            Metric::Loss => SeriesLabelPosition::UpperRight,
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;
    root.present()?;
    Ok(())
}

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
         ![{what} against training time](compare.png)\n\n\
         ![final {eval} figure against sample-visits, each policy beside random pruning at the \
         same visits](compare_visits.png)\n",
        train::load_average().map_or("?".into(), |l| format!("{l:.2}"))
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

/// Final test accuracy against realised sample-visits (share of full data): one filled point
/// per policy, joined by a grey segment to the hollow point of random pruning at its visits.
fn plot_visits(path: &Path, rows: &[Row], slack: f64) -> Result<()> {
    let full_visits = rows.iter().find(|r| r.label == "full").map_or_else(
        || rows.iter().map(|r| r.visits).fold(1.0, f64::max),
        |f| f.visits,
    );
    let x = |r: &Row| r.visits / full_visits;
    let (mut y_min, mut y_max) = (100.0f64, 0.0f64);
    for r in rows {
        y_min = y_min.min(r.acc.0);
        y_max = y_max.max(r.acc.0);
    }
    if y_min > y_max {
        (y_min, y_max) = (0.0, 100.0);
    }
    let pad = ((y_max - y_min) * 0.08).max(0.3);
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "final test accuracy at equal sample-visits (hollow: random pruning)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..1.05, (y_min - pad)..(y_max + pad))?;
    chart
        .configure_mesh()
        .x_desc("sample-visits (share of full data)")
        .y_desc("final test accuracy (%)")
        .label_style(("sans-serif", 15))
        .draw()?;
    let mut next = 0;
    for r in rows.iter().filter(|r| !r.label.starts_with("random≡")) {
        let color = if r.label == "full" {
            BLACK
        } else {
            next += 1;
            COLORS[(next - 1) % COLORS.len()]
        };
        let p = (x(r), r.acc.0);
        if let Some(m) = random_at_same_visits(rows, r, slack) {
            let q = (x(m), m.acc.0);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![p, q],
                RGBColor(160, 160, 160).stroke_width(1),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(q, 5, color.stroke_width(2))))?;
        }
        chart
            .draw_series(std::iter::once(Circle::new(p, 5, color.filled())))?
            .label(r.label.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_renders_with_the_font() {
        if register_font().is_err() {
            eprintln!("skipped: no DejaVu font");
            return;
        }
        let dir = std::env::temp_dir().join(format!("thresher-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.png");
        let curves = vec![
            ("full".to_string(), vec![(1.0, 80.0), (2.0, 85.0)]),
            ("infobatch".to_string(), vec![(0.7, 79.0), (1.4, 84.5)]),
        ];
        plot(&path, "t", "test accuracy (%)", Metric::Accuracy, &curves).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
