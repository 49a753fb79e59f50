//! `thresher scores inspect`: a score file's shape, per-column statistics and histograms.

use std::fmt::Write;
use std::path::Path;

use thresher_core::policy::mean_std;
use thresher_core::scorefile::{ColumnData, ScoreFile};

/// The scores the policies rank by, histogrammed when present (in this order).
const HISTOGRAM_COLUMNS: [&str; 5] = ["el2n", "grad_norm_ema", "forgets", "loss_ema", "loss_last"];

/// Characters of the longest bar.
const BAR_WIDTH: usize = 60;

/// The whole report, as text (writing to a String cannot fail, hence the ignored results).
pub fn report(path: &Path, file: &ScoreFile, bins: usize) -> String {
    let mut out = String::new();
    let n = file.n;
    let _ = writeln!(out, "file      {}", path.display());
    let _ = writeln!(out, "samples   N = {n}");
    // Unseen samples hold placeholders (0 loss EMA, 0 forgets) rather than NaN in some columns,
    // which would drag every statistic towards them; they are left out of all that follows.
    let seen: Option<Vec<bool>> = file
        .column("seen")
        .map(|c| c.to_f32().iter().map(|&s| s > 0.0).collect());
    if let Some(mask) = &seen {
        let count = mask.iter().filter(|&&s| s).count();
        let _ = writeln!(out, "seen      {count} of {n} ({})", percent(count, n));
    }
    let only_seen = |values: &[f32]| -> Vec<f32> {
        match &seen {
            Some(mask) => values
                .iter()
                .zip(mask)
                .filter(|(_, &s)| s)
                .map(|(&v, _)| v)
                .collect(),
            None => values.to_vec(),
        }
    };
    let cols: Vec<String> = file
        .columns
        .iter()
        .map(|(name, data)| format!("{name} ({})", type_name(data)))
        .collect();
    let _ = writeln!(out, "columns   {}", cols.join(", "));

    let floats: Vec<(&str, Vec<f32>)> = file
        .columns
        .iter()
        .filter_map(|(name, data)| match data {
            ColumnData::F32(v) => Some((name.as_str(), only_seen(v))),
            _ => None,
        })
        .collect();
    let over = if seen.is_some() {
        "seen samples"
    } else {
        "all samples"
    };
    if !floats.is_empty() {
        let w = floats.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let _ = writeln!(out);
        let _ = writeln!(out, "statistics over {over}, NaN skipped:");
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>11}  {:>11}  {:>11}  {:>11}",
            "column", "count", "min", "mean", "std", "max"
        );
        for (name, values) in &floats {
            let _ = writeln!(out, "{}", stats_row(name, values, w));
        }
    }

    for name in HISTOGRAM_COLUMNS {
        if let Some(data) = file.column(name) {
            let _ = writeln!(out);
            let _ = write!(out, "{name} over {over}: ");
            out.push_str(&histogram(&only_seen(&data.to_f32()), bins));
        }
    }
    out
}

fn type_name(data: &ColumnData) -> &'static str {
    match data {
        ColumnData::F32(_) => "f32",
        ColumnData::U32(_) => "u32",
        ColumnData::U8(_) => "u8",
    }
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// Count of non-NaN values, then min, mean, std and max over the finite ones: an infinity
/// would make the mean meaningless, so it is counted and noted instead.
fn stats_row(name: &str, values: &[f32], w: usize) -> String {
    let count = values.iter().filter(|v| !v.is_nan()).count();
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let mut row = format!("{name:<w$}  {count:>9}");
    if finite.is_empty() {
        row.push_str(&format!(
            "  {:>11}  {:>11}  {:>11}  {:>11}",
            "-", "-", "-", "-"
        ));
    } else {
        let (mean, std) = mean_std(finite.iter().copied());
        let (lo, hi) = min_max(&finite);
        for x in [lo, mean, std, hi] {
            row.push_str(&format!("  {:>11}", num(x)));
        }
    }
    if finite.len() < count {
        row.push_str(&format!("  ({} infinite)", count - finite.len()));
    }
    row
}

fn min_max(values: &[f32]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        })
}

/// About five significant digits, switching to scientific notation where fixed would be
/// unreadable.
pub fn num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        return format!("{x:.3e}");
    }
    let decimals = (4 - mag).clamp(0, 6) as usize;
    format!("{x:.decimals$}")
}

/// A histogram of the finite values over [min, max]; integer-valued data with a small range
/// (forgetting counts) gets one bin per value, which equal-width bins would split unevenly.
fn histogram(values: &[f32], bins: usize) -> String {
    let finite: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    let skipped = values.len() - finite.len();
    let mut out = format!("{} values", finite.len());
    if skipped > 0 {
        out.push_str(&format!(" ({skipped} NaN or infinite skipped)"));
    }
    out.push('\n');
    if finite.is_empty() {
        out.push_str("  (nothing to plot)\n");
        return out;
    }
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let integral = finite.iter().all(|v| v.fract() == 0.0) && hi - lo < bins as f64;
    let (labels, counts): (Vec<String>, Vec<usize>) = if integral {
        let k = (hi - lo) as usize + 1;
        let mut counts = vec![0; k];
        for v in &finite {
            counts[(v - lo) as usize] += 1;
        }
        let labels = (0..k)
            .map(|i| format!("{}", lo as i64 + i as i64))
            .collect();
        (labels, counts)
    } else {
        let k = if hi > lo { bins } else { 1 };
        let width = (hi - lo) / k as f64;
        let mut counts = vec![0; k];
        for v in &finite {
            let i = if width > 0.0 {
                ((v - lo) / width) as usize
            } else {
                0
            };
            counts[i.min(k - 1)] += 1;
        }
        let edge = |i: usize| if i == k { hi } else { lo + width * i as f64 };
        let labels = (0..k)
            .map(|i| {
                let close = if i + 1 == k { ']' } else { ')' };
                format!("[{}, {}{close}", num(edge(i)), num(edge(i + 1)))
            })
            .collect();
        (labels, counts)
    };
    let lw = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let cw = counts.iter().max().copied().unwrap_or(0).to_string().len();
    let most = counts.iter().copied().max().unwrap_or(0);
    for (label, count) in labels.iter().zip(&counts) {
        let pad = lw - label.chars().count();
        out.push_str(&format!(
            "  {label}{:pad$}  {count:>cw$}  {}\n",
            "",
            bar(*count, most)
        ));
    }
    out
}

/// A bar of `count` scaled so that `most` fills BAR_WIDTH, in eighths of a character.
fn bar(count: usize, most: usize) -> String {
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if count == 0 || most == 0 {
        return String::new();
    }
    let eighths = ((count as f64 / most as f64) * (BAR_WIDTH * 8) as f64).round() as usize;
    // A non-empty bin must stay visible however small it is against the largest.
    let eighths = eighths.max(1);
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTIAL[eighths % 8]);
    s
}
