//! The comparison's plots, drawn with plotters: the figure against training time per policy
//! (compare.png) and the final figure against realised sample-visits (compare_visits.png), in
//! DejaVu Sans (`register_font`).

use std::path::Path;

use plotters::prelude::*;

use super::table::{epoch_figure, mean_std, random_at_same_visits, Row};
use crate::train::{Metric, RunResult};
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

/// Per policy: (mean training seconds, mean test figure) at the end of each epoch.
pub(super) fn curves(
    groups: &[(String, Vec<RunResult>)],
    metric: Metric,
) -> Vec<(String, Vec<(f64, f64)>)> {
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

pub(super) fn plot(
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

/// Final test accuracy against realised sample-visits (share of full data): one filled point
/// per policy, joined by a grey segment to the hollow point of random pruning at its visits.
pub(super) fn plot_visits(path: &Path, rows: &[Row], slack: f64) -> Result<()> {
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
}
