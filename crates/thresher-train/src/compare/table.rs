//! The comparison's table: each policy's runs summarised (`Row`: realised pruning, the final
//! figure's mean and spread across seeds, time, sample-visits), and the Markdown table with
//! random pruning at the same visits beside each policy.

use std::fmt::Write as _;

use crate::train::{self, Metric, RunResult};

pub(super) fn mean_std(v: &[f64]) -> (f64, f64) {
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
pub(super) struct Row {
    pub(super) label: String,
    pub(super) runs: usize,
    pub(super) realised: f64,
    /// Highest per-epoch realised prune fraction of any run.
    pub(super) peak: f64,
    pub(super) acc: (f64, f64),
    pub(super) time: (f64, f64),
    pub(super) cpu: f64,
    pub(super) visits: f64,
    pub(super) mean_weight: f64,
    /// With `--label-noise`: the mean over seeds of the share of visits to flipped samples
    /// and of their share of the loss weight.
    pub(super) flipped: Option<(f64, f64)>,
}

/// The run's final figure by `metric`.
fn final_figure(r: &RunResult, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => r.final_test_acc,
        Metric::Loss => r.final_test_loss,
    }
}

pub(super) fn epoch_figure(e: &train::EpochRecord, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => e.test_acc,
        Metric::Loss => e.test_loss,
    }
}

/// What the runs are judged by (the same for every run of a comparison).
pub(super) fn metric_of(groups: &[(String, Vec<RunResult>)]) -> Metric {
    groups
        .iter()
        .find_map(|(_, r)| r.first())
        .map_or(Metric::Accuracy, |r| r.metric)
}

pub(super) fn summarise(label: &str, runs: &[RunResult], metric: Metric) -> Row {
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
        flipped: runs
            .iter()
            .all(|r| r.flipped.is_some() && r.visits > 0)
            .then(|| {
                let share = |f: &dyn Fn(&RunResult) -> f64| mean_std(&col(f)).0;
                (
                    share(&|r| r.flipped.map_or(f64::NAN, |f| f.visits as f64) / r.visits as f64),
                    share(&|r| r.flipped.map_or(f64::NAN, |f| f.weight_share)),
                )
            }),
    }
}

/// The label of the random run matched to `label`'s realised sample-visits.
pub fn matched_label(label: &str) -> String {
    format!("random≡{label}")
}

/// Accuracy of random pruning at `r`'s sample-visits: its matched random run
/// (`--match-random`), else a `random` row with the same visits to within `slack` (under
/// `--budget` every policy has random's visits).
pub(super) fn random_at_same_visits<'a>(rows: &'a [Row], r: &Row, slack: f64) -> Option<&'a Row> {
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
pub(super) fn table(rows: &[Row], metric: Metric, eval: &str, slack: f64) -> String {
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
    // With label noise, one more column: how much of the training went to flipped labels.
    let noisy = !rows.is_empty() && rows.iter().all(|r| r.flipped.is_some());
    let (flip_head, flip_rule) = if noisy {
        (" visits on flipped labels % (loss weight %) |", "---|")
    } else {
        ("", "")
    };
    let mut s = format!(
        "| policy | runs | realised prune (overall / peak epoch) | mean weight | {figure} | \
         {delta} | {delta_random} | train time s (mean ± std) | time saved vs full | train CPU s (saved) | \
         sample-visits | visits saved vs full |{flip_head}\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|{flip_rule}\n",
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
        let flip = match r.flipped {
            Some((visits, weight)) if noisy => {
                format!(" {:.1} ({:.1}) |", 100.0 * visits, 100.0 * weight)
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.1}% / {:.1}% | {:.3} | {figure} | {} | {} | {:.1} ± {:.1} | {} | {:.0} ({}) \
             | {:.0} | {} |{flip}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
