//! `thresher`: command-line tools around score files (inspect, merge, static coresets).
//!
//! Every failure prints `thresher: <message>` to stderr and exits with status 1; clap reports
//! usage errors itself, with status 2.

mod inspect;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use thresher_core::policy::{PlanContext, PolicyConfig, Selection};
use thresher_core::scorefile::ScoreFile;
use thresher_core::util::write_atomic;
use thresher_core::{Error, Result, ScoreBook};

#[derive(Parser)]
#[command(
    name = "thresher",
    version,
    about = "Tools for thresher's per-sample score files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, merge and prune from score files
    #[command(subcommand)]
    Scores(ScoresCommand),
}

#[derive(Subcommand)]
enum ScoresCommand {
    /// Print N, the columns, per-column statistics and histograms of the main scores
    Inspect {
        file: PathBuf,
        /// Histogram bins
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
        bins: u16,
    },
    /// Average score files of several runs (Data Diet): f32 columns are averaged over the
    /// runs that scored each sample, counts are summed
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a static coreset (kept ids, ascending, one per line) selected from a score file
    Coreset {
        file: PathBuf,
        #[arg(long, value_enum)]
        policy: StaticPolicy,
        /// Fraction of the samples to prune (0..=0.9)
        #[arg(long, default_value_t = 0.5, value_parser = finite)]
        prune: f64,
        /// Fraction of N, counted from the hardest end, skipped before the kept window
        #[arg(long, default_value_t = 0.0, value_parser = finite)]
        drop_hardest: f64,
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// A finite number (NaN would reach the policy's own range check as JSON null).
fn finite(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s} is not a finite number")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum StaticPolicy {
    El2n,
    Grand,
    Forgetting,
}

impl StaticPolicy {
    fn kind(self) -> &'static str {
        match self {
            StaticPolicy::El2n => "el2n",
            StaticPolicy::Grand => "grand",
            StaticPolicy::Forgetting => "forgetting",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scores(ScoresCommand::Inspect { file, bins }) => {
            ScoreFile::read(&file).map(|f| inspect::report(&file, &f, bins as usize))
        }
        Command::Scores(ScoresCommand::Merge { files, output }) => merge(&files, &output),
        Command::Scores(ScoresCommand::Coreset {
            file,
            policy,
            prune,
            drop_hardest,
            output,
        }) => coreset(&file, policy, prune, drop_hardest, &output),
    };
    match result.and_then(|text| print(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thresher: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout without `println!`'s panic on a closed pipe (`thresher … | head`).
fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io(Path::new("<stdout>"), &e))
        }
        _ => Ok(()),
    }
}

fn merge(files: &[PathBuf], output: &Path) -> Result<String> {
    let read = files
        .iter()
        .map(|p| ScoreFile::read(p).map(|f| (p.clone(), f)))
        .collect::<Result<Vec<_>>>()?;
    let merged = ScoreFile::merge(&read)?;
    merged.write(output)?;
    Ok(format!(
        "merged {} score files (N = {}, {} columns) into {}\n",
        read.len(),
        merged.n,
        merged.columns.len(),
        output.display()
    ))
}

fn coreset(
    path: &Path,
    policy: StaticPolicy,
    prune: f64,
    drop_hardest: f64,
    output: &Path,
) -> Result<String> {
    let file = ScoreFile::read(path)?;
    let n = file.n;
    // `scores_from` names the file so that the config's own check accepts `score_epochs` 0:
    // the ScoreBook is seeded from it below, exactly as the loader would. A coreset is one
    // fixed set of ids, so it is the whole window (`explore` 0): the guarded policies' random
    // share, drawn afresh each epoch, has no meaning for a file written once.
    let json = serde_json::json!({
        "kind": policy.kind(),
        "explore": 0.0,
        "prune": prune,
        "drop_hardest": drop_hardest,
        "score_epochs": 0,
        "scores_from": [path.to_string_lossy()],
    });
    let pc: PolicyConfig =
        serde_json::from_value(json).map_err(|e| Error::invalid(format!("coreset: {e}")))?;
    pc.validate()
        .map_err(|e| e.context("--prune/--drop-hardest"))?;
    let mut policy = pc.build(n);
    let mut book = ScoreBook::with_options(n, policy.needs(), pc.momentum(), pc.sketch_dim(), 0);
    file.seed_book(path, &mut book)?;
    let mut selection = Selection::default();
    selection.clear();
    let ctx = PlanContext {
        epoch: 0,
        seed: 0,
        scores: &book,
    };
    policy.select(&ctx, &mut selection);
    let mut ids = selection.ids;
    ids.sort_unstable();
    let mut text = String::with_capacity(ids.len() * 8);
    for id in &ids {
        text.push_str(&id.to_string());
        text.push('\n');
    }
    write_atomic(output, text.as_bytes())?;
    let realised = if n == 0 {
        0.0
    } else {
        1.0 - ids.len() as f64 / n as f64
    };
    let mut summary = format!(
        "{}: kept {} / {} samples (pruned {:.2}%, asked {:.2}%) into {}\n",
        pc.kind(),
        ids.len(),
        n,
        100.0 * realised,
        100.0 * prune,
        output.display()
    );
    if selection.score_mean.is_finite() {
        summary.push_str(&format!(
            "score over scored samples: mean {}, std {}\n",
            inspect::num(selection.score_mean),
            inspect::num(selection.score_std)
        ));
    }
    Ok(summary)
}
