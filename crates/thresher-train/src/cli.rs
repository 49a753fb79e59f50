//! Command line: `thresher-train train` (one run) and `thresher-train compare` (policies × seeds),
//! and the translation of the flags into thresher's JSON configuration.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::model::ModelKind;
use crate::Result;

#[derive(Parser, Debug)]
#[command(
    name = "thresher-train",
    version,
    about = "Reference libtorch trainer driven by the thresher data loader"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Train once with one policy; writes a JSON lines log.
    Train(TrainArgs),
    /// Train every policy × seed on the same data; writes compare.md, compare.png and the logs.
    Compare(CompareArgs),
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: Common,
    /// The pruning policy: NAME[:KEY=VALUE]... (e.g. `infobatch:anneal=0.8`).
    #[arg(long, default_value = "infobatch")]
    pub policy: PolicySpec,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// JSON lines log (default: <out>/runs/<policy>-s<seed>.jsonl).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write the ScoreBook's scores here at the end (for `scores_from`).
    #[arg(long)]
    pub save_scores: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub common: Common,
    /// Comma-separated policies, each NAME[:KEY=VALUE]... (KEY=VALUE overrides that policy's
    /// config key, e.g. `random:rescale=true` or `infobatch:prune=0.5`).
    #[arg(long, default_value = "full,random,infobatch", value_delimiter = ',')]
    pub policies: Vec<PolicySpec>,
    /// Number of seeds (0, 1, …): each seed fixes the model's initialisation and the loader's
    /// order, identically for every policy. 1…1000: 0 would write an empty comparison.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: u64,
    /// After each run of a pruning policy other than `random` that is not under `--budget`,
    /// also run `random` with a budget equal to that run's realised sample-visits, so that
    /// every policy is reported against random pruning at the same visits (under `--budget`
    /// every policy already has the visits of the `random` row).
    #[arg(long)]
    pub match_random: bool,
    /// First seed (the seeds are FIRST, FIRST+1, …).
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
}

/// The widest model a flag may ask for (channels, or the transformer's d_model): far above
/// what the reference models train well at, and small enough that a typo is refused before
/// libtorch is asked for terabytes.
pub const MAX_WIDTH: i64 = 4096;

/// A finite number > 0 (`--lr`).
pub fn positive(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number > 0"))
    }
}

/// A finite number ≥ 0 (`--weight-decay`, `--clip-grad`).
pub fn non_negative(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number ≥ 0"))
    }
}

/// A number x with 0 ≤ x < 1: SGD's momentum (at 1 or above the updates grow without bound)
/// and `--label-noise` (at 1 no label is left).
pub fn unit_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is out of range 0 ≤ x < 1"))
    }
}

/// Flags shared by `train` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[arg(long, value_enum, default_value_t = Dataset::FashionMnist)]
    pub dataset: Dataset,
    /// Directory holding one folder per dataset (fashion-mnist/, mnist/) of IDX files.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Train on the first N training samples only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Evaluate on the first N test samples only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    #[arg(long, default_value_t = 15)]
    pub epochs: u64,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Nominal prune fraction, passed to every policy as its `prune` key (InfoBatch's r: it
    /// realises less; the reports give the realised fraction).
    #[arg(long, default_value_t = 0.3)]
    pub prune: f64,
    /// The run's total sample-visits as a share of epochs·N, given to every policy but `full`
    /// as its `budget` key in place of `prune` (docs/policies.md, "A budget fixed in advance").
    #[arg(long)]
    pub budget: Option<f64>,
    /// Full-data scoring epochs of the static policies (el2n, grand, forgetting, influence);
    /// default: a fifth of the epochs, at least 1.
    #[arg(long)]
    pub score_epochs: Option<u64>,
    /// Peak learning rate (SGD with momentum).
    #[arg(long, default_value_t = 0.05, value_parser = positive)]
    pub lr: f64,
    /// 0 ≤ m < 1.
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval)]
    pub momentum: f64,
    #[arg(long, default_value_t = 5e-4, value_parser = non_negative)]
    pub weight_decay: f64,
    /// Learning-rate schedule over the epochs: cosine per step, or ×0.1 at 50% and 75%.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    pub schedule: Schedule,
    #[arg(long, value_enum, default_value_t = ModelKind::Auto)]
    pub model: ModelKind,
    /// Width of the small CNN (channels of its first convolution).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(i64).range(1..=MAX_WIDTH))]
    pub width: i64,
    /// Torch intra-op threads (default: every core). On a machine other jobs share, spinning
    /// OpenMP threads collapse; use --threads 1 or OMP_WAIT_POLICY=PASSIVE there.
    #[arg(long)]
    pub threads: Option<usize>,
    /// thresher worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Batches thresher prepares ahead.
    #[arg(long, default_value_t = 4)]
    pub prefetch: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Directory for logs and reports.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Any thresher config (`--config`), its evaluation set, losses and the other models.
    #[command(flatten)]
    pub data: crate::data::DataArgs,
    /// Label noise on the training set (`--label-noise`).
    #[command(flatten)]
    pub noise: crate::noise::NoiseArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    FashionMnist,
    Mnist,
}

impl Dataset {
    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Mnist => "mnist",
        }
    }
    /// [C, H, W] of a sample.
    pub fn shape(self) -> [usize; 3] {
        match self {
            Dataset::FashionMnist | Dataset::Mnist => [1, 28, 28],
        }
    }
    /// Mean and standard deviation of the [0, 1]-scaled training pixels.
    pub fn normalize(self) -> (f32, f32) {
        match self {
            Dataset::FashionMnist => (0.2860, 0.3530),
            Dataset::Mnist => (0.1307, 0.3081),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Cosine,
    Step,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

/// A policy and its config overrides, parsed from NAME[:KEY=VALUE]...
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySpec {
    pub kind: String,
    pub overrides: Map<String, Value>,
}

const KINDS: [&str; 9] = [
    "full",
    "random",
    "epsilon_greedy",
    "ucb",
    "infobatch",
    "el2n",
    "grand",
    "forgetting",
    "influence",
];

impl std::str::FromStr for PolicySpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default().trim().to_string();
        if !KINDS.contains(&kind.as_str()) {
            return Err(format!(
                "unknown policy `{kind}` (one of {})",
                KINDS.join(", ")
            ));
        }
        let mut overrides = Map::new();
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}` in `{s}` is not KEY=VALUE"))?;
            // Numbers, booleans and lists parse as JSON; anything else is a string.
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
            overrides.insert(k.trim().to_string(), value);
        }
        Ok(PolicySpec { kind, overrides })
    }
}

impl PolicySpec {
    /// A short name for tables and file names: `infobatch` or `infobatch:anneal=0.8`.
    pub fn label(&self) -> String {
        let mut s = self.kind.clone();
        for (k, v) in &self.overrides {
            s.push_str(&format!(":{k}={v}"));
        }
        s
    }

    /// The `policy` config object: the kind, the keys it takes from the common flags, then the
    /// overrides (which win).
    pub fn to_json(&self, c: &Common) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!(self.kind));
        let score_epochs = c.score_epochs.unwrap_or((c.epochs / 5).max(1));
        match self.kind.as_str() {
            "full" => {}
            "random" | "epsilon_greedy" | "ucb" => {
                m.insert("prune".into(), json!(c.prune));
            }
            // E is required: the annealing epochs are the last (1 − δ)·E.
            "infobatch" => {
                m.insert("prune".into(), json!(c.prune));
                m.insert("epochs".into(), json!(c.epochs));
            }
            _ => {
                m.insert("prune".into(), json!(c.prune));
                m.insert("score_epochs".into(), json!(score_epochs));
            }
        }
        // influence in guarantee mode takes `epsilon` instead of `prune`.
        if self.overrides.contains_key("epsilon") {
            m.remove("prune");
        }
        // Under a budget the policy chooses its own prune fractions (InfoBatch keeps its
        // default r as the largest share of its pool dropped).
        if let (Some(b), false) = (c.budget, self.kind == "full") {
            m.remove("prune");
            m.insert("budget".into(), json!(b));
            m.insert("epochs".into(), json!(c.epochs));
        }
        if self.overrides.contains_key("budget") {
            m.remove("prune");
            m.insert("epochs".into(), json!(c.epochs));
        }
        for (k, v) in &self.overrides {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// The IDX files of `split` ("train" or "t10k"), gzip-compressed or raw.
fn idx_files(c: &Common, split: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = c.data_dir.join(c.dataset.dir_name());
    let find = |kind: &str| -> Result<PathBuf> {
        let raw = dir.join(format!("{split}-{kind}-ubyte"));
        let gz = dir.join(format!("{split}-{kind}-ubyte.gz"));
        [gz, raw.clone()]
            .into_iter()
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "{} (or .gz) not found; run `make setup` or pass --data-dir",
                    raw.display()
                )
                .into()
            })
    };
    Ok((find("images-idx3")?, find("labels-idx1")?))
}

/// The thresher config of the training loader for one run: the `--config` file's with the
/// run's policy and seed, or the `--dataset`'s.
pub fn train_config(c: &Common, spec: &PolicySpec, seed: u64) -> Result<Value> {
    if let Some(path) = &c.data.config {
        let file = crate::data::read_json(path)?;
        return crate::data::train_config(&file, spec.to_json(c), seed);
    }
    let (images, labels) = idx_files(c, "train")?;
    Ok(loader_config(
        c,
        &images,
        &labels,
        c.limit,
        spec.to_json(c),
        seed,
        true,
    ))
}

/// The evaluation loader, when there is one: `--val-config` for a `--config` run, the test split
/// of a `--dataset`; in order, every sample once, no pruning.
pub fn eval_config(c: &Common) -> Result<Option<Value>> {
    match (&c.data.config, &c.data.val_config) {
        (Some(_), Some(path)) => Ok(Some(crate::data::eval_config(&crate::data::read_json(
            path,
        )?)?)),
        (Some(_), None) => Ok(None),
        (None, _) => test_config(c).map(Some),
    }
}

/// The test split of a `--dataset`.
pub fn test_config(c: &Common) -> Result<Value> {
    let (images, labels) = idx_files(c, "t10k")?;
    let mut v = loader_config(
        c,
        &images,
        &labels,
        c.test_limit,
        json!({"kind": "full"}),
        0,
        false,
    );
    v["batch_size"] = json!(1000);
    Ok(v)
}

fn loader_config(
    c: &Common,
    images: &Path,
    labels: &Path,
    limit: Option<usize>,
    policy: Value,
    seed: u64,
    shuffle: bool,
) -> Value {
    let (mean, std) = c.dataset.normalize();
    let mut source = json!({"kind": "idx", "images": images, "labels": labels});
    if let Some(n) = limit {
        source["limit"] = json!(n);
    }
    json!({
        "source": source,
        "batch_size": c.batch_size,
        "shuffle": shuffle,
        "seed": seed,
        "workers": c.workers,
        "prefetch": c.prefetch,
        "transform": {
            "dtype": "f32",
            "layout": "nchw",
            "normalize": {"mean": [mean], "std": [std]}
        },
        "policy": policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(args: &[&str]) -> Common {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            c: Common,
        }
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::parse_from(v).c
    }

    #[test]
    fn policy_specs() {
        let s: PolicySpec = "infobatch:anneal=0.8:prune=0.5".parse().unwrap();
        assert_eq!(s.kind, "infobatch");
        let c = common(&["--epochs", "20", "--prune", "0.3"]);
        let j = s.to_json(&c);
        assert_eq!(j["prune"], json!(0.5));
        assert_eq!(j["anneal"], json!(0.8));
        assert_eq!(j["epochs"], json!(20));
        assert_eq!(s.label(), "infobatch:anneal=0.8:prune=0.5");
        assert!("nope".parse::<PolicySpec>().is_err());
        assert!("random:rescale".parse::<PolicySpec>().is_err());
        let r: PolicySpec = "random:rescale=true".parse().unwrap();
        assert_eq!(
            r.to_json(&c),
            json!({"kind": "random", "prune": 0.3, "rescale": true})
        );
        let f: PolicySpec = "full".parse().unwrap();
        assert_eq!(f.to_json(&c), json!({"kind": "full"}));
        let i: PolicySpec = "influence:epsilon=0.1".parse().unwrap();
        assert_eq!(
            i.to_json(&c),
            json!({"kind": "influence", "epsilon": 0.1, "score_epochs": 4})
        );
    }

    #[test]
    fn budget_replaces_prune_for_every_policy_but_full() {
        let c = common(&["--epochs", "6", "--budget", "0.4", "--prune", "0.3"]);
        for kind in ["random", "ucb", "infobatch", "el2n", "influence"] {
            let j: PolicySpec = kind.parse().unwrap();
            let j = j.to_json(&c);
            assert_eq!(j["budget"], json!(0.4), "{kind}");
            assert_eq!(j["epochs"], json!(6), "{kind}");
            assert!(j.get("prune").is_none(), "{kind}");
            let v = json!({"source": {"kind": "index", "len": 100}, "policy": j});
            thresher_core::Config::from_json(&v.to_string()).unwrap();
        }
        let f: PolicySpec = "full".parse().unwrap();
        assert_eq!(f.to_json(&c), json!({"kind": "full"}));
        // A matched random run: its own budget, no prune.
        let plain = common(&["--epochs", "6"]);
        let r: PolicySpec = "random:budget=0.55".parse().unwrap();
        assert_eq!(
            r.to_json(&plain),
            json!({"kind": "random", "budget": 0.55, "epochs": 6})
        );
    }

    #[test]
    fn numeric_flags_out_of_range_are_refused_by_name_before_libtorch_sees_them() {
        #[derive(Parser, Debug)]
        struct T {
            #[command(flatten)]
            c: Common,
        }
        for (flag, value) in [
            ("--lr", "nan"),
            ("--lr", "inf"),
            ("--lr", "0"),
            ("--lr=-1", ""),
            ("--momentum", "nan"),
            ("--momentum", "1"),
            ("--weight-decay=-5", ""),
            ("--weight-decay", "inf"),
            ("--width", "0"),
            ("--width", "100000"),
            ("--d-model", "0"),
            ("--heads", "0"),
            ("--layers", "0"),
            ("--clip-grad", "nan"),
        ] {
            let mut args = vec!["t", flag];
            if !value.is_empty() {
                args.push(value);
            }
            let e = T::try_parse_from(&args).unwrap_err().to_string();
            let name = flag.split('=').next().unwrap();
            assert!(e.contains(name), "{args:?}: {e}");
        }
        for seeds in ["0", "1001"] {
            let e = Cli::try_parse_from(["t", "compare", "--seeds", seeds])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--seeds"), "{e}");
        }
        let c = common(&[
            "--lr",
            "0.1",
            "--momentum",
            "0",
            "--width",
            "4096",
            "--clip-grad",
            "0",
        ]);
        assert_eq!((c.lr, c.momentum, c.width), (0.1, 0.0, 4096));
        assert_eq!(c.data.clip_grad, Some(0.0));
    }

    #[test]
    fn label_noise_flags() {
        let c = common(&["--label-noise", "0.2", "--label-noise-kind", "pairs"]);
        assert_eq!(c.noise.label_noise, 0.2);
        assert_eq!(c.noise.label_noise_kind, crate::noise::NoiseKind::Pairs);
        assert_eq!(common(&[]).noise.label_noise, 0.0);
    }

    #[test]
    fn configs_parse_as_thresher_configs() {
        let c = common(&["--data-dir", "../../data", "--limit", "100"]);
        let v = loader_config(
            &c,
            Path::new("a"),
            Path::new("b"),
            c.limit,
            json!({"kind": "random", "prune": 0.3}),
            7,
            true,
        );
        let cfg = thresher_core::Config::from_json(&v.to_string()).unwrap();
        assert_eq!((cfg.seed, cfg.batch_size, cfg.workers), (7, 128, 1));
    }
}
