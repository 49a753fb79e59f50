//! The loader's configuration: a JSON document, parsed with serde. Unknown keys are refused
//! (`deny_unknown_fields`) and every error names the key path it is about, e.g.
//! `policy.prune: 1.5 is out of range 0..=0.9`.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::policy::PolicyConfig;
use crate::source::SourceConfig;
use crate::transform::TransformConfig;

/// Everything `thresher_loader_new` accepts. Defaults are those of the README.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where samples come from. Required, except through the Rust API with an in-memory source.
    #[serde(default)]
    pub source: Option<SourceConfig>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Shuffle the kept ids each epoch (with a generator seeded by (seed, epoch)).
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Drop the last, short batch of an epoch.
    #[serde(default)]
    pub drop_last: bool,
    #[serde(default)]
    pub seed: u64,
    /// This process's rank among `world_size` (torch.distributed's rank). Every rank makes the
    /// same global plan and takes its strided share of it; see `plan`.
    #[serde(default)]
    pub rank: usize,
    /// Number of ranks sharing each epoch's plan. With more than one, each epoch is padded (or
    /// with `drop_last` truncated) to whole steps of `world_size × batch_size` samples, so every
    /// rank yields the same number of batches.
    #[serde(default = "default_world_size")]
    pub world_size: usize,
    /// Worker threads that read and transform samples.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Ready batches kept ahead of the consumer.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// When epoch e+1's plan is fixed: `true` (default, the same as 1) when the last batch of
    /// epoch e is handed out, from the feedback received until then, so workers fill e+1 while
    /// the trainer is on e's last batch; a batch count k (0..=255; 0 is `false`) when the k-th batch from the
    /// end of e is handed out, so a worker makes the plan while the trainer still has k batches
    /// of e to go (no wait at the boundary for a fast trainer; a sequential trainer's feedback
    /// for the last k batches counts from the plan after); `false` when the first batch of e+1 is asked for, from all
    /// of e's feedback (workers then wait at every epoch boundary). See docs/policies.md.
    #[serde(default)]
    pub plan_ahead: PlanAhead,
    /// I/O threads that walk the plan ahead of the workers and have the kernel bring the next
    /// samples' files into the page cache (image folders and tar shards; see
    /// `loader/readahead.rs`); 0 turns read-ahead off.
    #[serde(default = "default_io_depth")]
    pub io_depth: usize,
    /// The image transform. `None` (no `transform` section): image sources get the default
    /// transform (f32, NCHW, ÷255) and tensor sources (`npy`, `tokens`) deliver their samples
    /// untouched; `Some`: the samples must be images (an error names the `transform` key).
    #[serde(default)]
    pub transform: Option<TransformConfig>,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// A file to which one JSON line per epoch is appended (the epoch report).
    #[serde(default)]
    pub report: Option<std::path::PathBuf>,
    /// A checkpoint (from `thresher_loader_save_state`) to continue from exactly.
    #[serde(default)]
    pub resume_from: Option<std::path::PathBuf>,
    /// What a sample that cannot be read, decoded or transformed does.
    #[serde(default)]
    pub on_error: OnError,
    /// Memory budget of one batch's data: a loader whose batch (`batch_size` samples of the
    /// transform's output) would take more is refused when it is created, naming the keys.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: u64,
}

/// The default `max_batch_bytes`: 4 GiB, above any usual image batch (256 × 3 × 224 × 224 f32
/// is about 154 MB) and far below what a mistyped size asks for.
pub const DEFAULT_MAX_BATCH_BYTES: u64 = 1 << 32;

/// The default `io_depth`: enough reads in flight to keep a disk or a network volume busy with
/// small files, few enough threads to cost nothing when the data is cached.
pub const DEFAULT_IO_DEPTH: usize = 16;
/// The largest `io_depth`.
pub const MAX_IO_DEPTH: usize = 256;

/// Config `plan_ahead`: how many batches before the end of epoch e the plan of epoch e+1 is
/// fixed (1: at the last batch, the default; 0: not ahead, at the first batch of e+1). JSON
/// `true` is 1, `false` is 0, a number is a batch count 0..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanAhead(u8);

/// The largest batch count `plan_ahead` takes.
pub const MAX_PLAN_AHEAD: u8 = 255;

impl PlanAhead {
    /// Not ahead: the plan of e+1 is made when its first batch (or its length) is asked for.
    pub const OFF: PlanAhead = PlanAhead(0);

    /// The plan of e+1 fixed when the `batches`-th batch from the end of e is handed out
    /// (0: `OFF`).
    pub const fn batches(batches: u8) -> PlanAhead {
        PlanAhead(batches)
    }

    /// Whether plans are made ahead at all.
    pub const fn is_on(self) -> bool {
        self.0 > 0
    }

    /// The batch count (0 when off).
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether handing out the batch that brings an epoch of `batches` batches to `delivered`
    /// fixes the next plan: the `k`-th batch from the end (the first when the epoch is shorter
    /// than k), never at an epoch of no batch.
    pub fn due(self, delivered: usize, batches: usize) -> bool {
        self.0 > 0 && delivered >= 1 && delivered + self.0 as usize > batches
    }
}

impl Default for PlanAhead {
    fn default() -> Self {
        PlanAhead(1)
    }
}

impl std::fmt::Display for PlanAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("false"),
            1 => f.write_str("true"),
            k => write!(f, "{k}"),
        }
    }
}

impl<'de> Deserialize<'de> for PlanAhead {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Count(i64),
        }
        let wrong = || {
            serde::de::Error::custom(format!(
                "expected true, false or a batch count 0..={MAX_PLAN_AHEAD} (0 is false)"
            ))
        };
        match Raw::deserialize(d).map_err(|_: D::Error| wrong())? {
            Raw::Flag(on) => Ok(PlanAhead(on as u8)),
            Raw::Count(k) if (0..=MAX_PLAN_AHEAD as i64).contains(&k) => Ok(PlanAhead(k as u8)),
            Raw::Count(_) => Err(wrong()),
        }
    }
}

/// The `on_error` key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// `next` returns the error (THRESHER_FORMAT or THRESHER_IO, naming the sample id and its
    /// file) for the batch holding the sample; the call after it continues with the next batch.
    #[default]
    Fail,
    /// The sample is left out of its batch (which is then shorter), counted in the epoch
    /// report's `skipped` and listed by `Loader::skipped_samples`.
    Skip,
}

fn default_batch_size() -> usize {
    256
}
fn default_true() -> bool {
    true
}
fn default_world_size() -> usize {
    1
}
fn default_workers() -> usize {
    2
}
fn default_prefetch() -> usize {
    4
}
fn default_io_depth() -> usize {
    DEFAULT_IO_DEPTH
}
fn default_max_batch_bytes() -> u64 {
    DEFAULT_MAX_BATCH_BYTES
}

/// serde's messages name Rust types ("invalid value: integer `300`, expected u8"); a config's
/// author wrote JSON, so the type after serde's ", expected " is said in words instead (only
/// there: a quoted value of the user's that happens to read "expected u8" is left as written).
fn plain_types(text: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("u8", "an integer from 0 to 255"),
        ("u16", "an integer from 0 to 65535"),
        ("u32", "an integer from 0 to 4294967295"),
        ("u64", "an integer ≥ 0"),
        ("usize", "an integer ≥ 0"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    const EXPECTED: &str = ", expected ";
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(at) = rest.find(EXPECTED) {
        let (head, tail) = rest.split_at(at + EXPECTED.len());
        out.push_str(head);
        let len = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        let word = &tail[..len];
        out.push_str(WORDS.iter().find(|(w, _)| *w == word).map_or(word, |p| p.1));
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

impl Config {
    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Config> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = plain_types(&e.into_inner().to_string());
            // Tagged sections (`policy`, `source`) name their own keys; see `tagged_section`.
            if inner.starts_with("config key `") {
                let cut = inner.rfind(" at line ").unwrap_or(inner.len());
                Error::invalid(&inner[..cut])
            } else if path == "." || path.is_empty() {
                Error::invalid(format!("config: {inner}"))
            } else {
                Error::invalid(format!("config key `{path}`: {inner}"))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// A config with every default and no source (for the Rust API's in-memory sources).
    pub fn default_for_memory() -> Config {
        Config::from_json("{}").expect("the empty config is valid")
    }

    /// Range checks serde cannot express. Each error names its key.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.batch_size > 1 << 20 {
            return Err(Error::invalid(format!(
                "config key `batch_size`: {} is out of range 1..=1048576",
                self.batch_size
            )));
        }
        if self.workers == 0 || self.workers > 256 {
            return Err(Error::invalid(format!(
                "config key `workers`: {} is out of range 1..=256",
                self.workers
            )));
        }
        if self.prefetch == 0 || self.prefetch > 1024 {
            return Err(Error::invalid(format!(
                "config key `prefetch`: {} is out of range 1..=1024",
                self.prefetch
            )));
        }
        if self.io_depth > MAX_IO_DEPTH {
            return Err(Error::invalid(format!(
                "config key `io_depth`: {} is out of range 0..={MAX_IO_DEPTH} (0 turns \
                 read-ahead off)",
                self.io_depth
            )));
        }
        if self.world_size == 0 || self.world_size > 1 << 16 {
            return Err(Error::invalid(format!(
                "config key `world_size`: {} is out of range 1..=65536",
                self.world_size
            )));
        }
        if self.rank >= self.world_size {
            return Err(Error::invalid(format!(
                "config key `rank`: {} is out of range 0..{} (world_size is {})",
                self.rank, self.world_size, self.world_size
            )));
        }
        if self.max_batch_bytes == 0 {
            return Err(Error::invalid(
                "config key `max_batch_bytes`: must be ≥ 1 (the memory budget of one batch)",
            ));
        }
        if let Some(t) = &self.transform {
            t.validate()?;
        }
        self.policy.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = Config::from_json("{}").unwrap();
        assert_eq!(c.batch_size, 256);
        assert!(c.shuffle && !c.drop_last);
        assert_eq!((c.workers, c.prefetch, c.seed), (2, 4, 0));
        assert_eq!(c.io_depth, DEFAULT_IO_DEPTH);
        assert_eq!((c.rank, c.world_size), (0, 1));
        assert_eq!(c.plan_ahead, PlanAhead::batches(1));
        let ahead = |j: &str| Config::from_json(j).unwrap().plan_ahead;
        assert_eq!(ahead(r#"{"plan_ahead": false}"#), PlanAhead::OFF);
        assert_eq!(ahead(r#"{"plan_ahead": true}"#), PlanAhead::batches(1));
        assert_eq!(ahead(r#"{"plan_ahead": 1}"#), PlanAhead::batches(1));
        assert_eq!(ahead(r#"{"plan_ahead": 16}"#), PlanAhead::batches(16));
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(err(r#"{"batch_sise": 3}"#).contains("batch_sise"));
        let e = err(r#"{"transform": {"dtype": "f32", "colour": 1}}"#);
        assert!(e.contains("colour") && e.contains("transform"), "{e}");
        let e = err(r#"{"policy": {"kind": "random", "prune": 0.3, "explore": 0.1}}"#);
        assert!(e.contains("explore"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_said_in_json_words_with_its_key() {
        for (json, key, words) in [
            (
                r#"{"policy": {"kind": "ucb", "guard_window": 300}}"#,
                "policy.guard_window",
                "integer `300`, expected an integer from 0 to 255",
            ),
            (
                r#"{"policy": {"kind": "ucb", "prune": "x"}}"#,
                "policy.prune",
                "expected a number",
            ),
            (
                r#"{"policy": {"kind": "ucb", "epochs": -3}}"#,
                "policy.epochs",
                "integer `-3`, expected an integer ≥ 0",
            ),
            (
                r#"{"batch_size": 2.5}"#,
                "batch_size",
                "expected an integer ≥ 0",
            ),
            (r#"{"seed": "7"}"#, "seed", "expected an integer ≥ 0"),
        ] {
            let e = err(json);
            assert!(
                e.contains(&format!("`{key}`")) && e.contains(words),
                "{json}: {e}"
            );
            assert!(
                !e.contains("expected u") && !e.contains("expected f6"),
                "{e}"
            );
        }
        // Only a Rust type's name after serde's ", expected " is replaced: not a quoted value,
        // a longer word or the rest of the text.
        assert_eq!(
            plain_types(
                "`expected u8`, expected u8, expected u8s, expected one of `a`, expected f64"
            ),
            "`expected u8`, expected an integer from 0 to 255, expected u8s, expected one of `a`, \
             expected a number"
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_every_level() {
        for (json, key) in [
            (r#"{"seed": 1, "seed": 2}"#, "seed"),
            (
                r#"{"policy": {"kind": "random", "prune": 0.3, "prune": 0.5}}"#,
                "policy.prune",
            ),
            (
                r#"{"policy": {"kind": "random", "kind": "full"}}"#,
                "policy.kind",
            ),
            (
                r#"{"source": {"kind": "index", "len": 5, "len": 6}}"#,
                "source.len",
            ),
        ] {
            let e = err(json);
            assert!(e.contains(key), "{json}: {e}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(err(r#"{"batch_size": 0}"#).contains("batch_size"));
        assert!(err(r#"{"batch_size": "x"}"#).contains("batch_size"));
        assert!(err(r#"{"workers": 0}"#).contains("workers"));
        assert!(err(r#"{"prefetch": 0}"#).contains("prefetch"));
        let ahead = Config::from_json(r#"{"plan_ahead": 0}"#)
            .unwrap()
            .plan_ahead;
        assert_eq!(ahead, PlanAhead::OFF);
        for bad in ["256", "-1", "1.5", "\"yes\""] {
            let e = err(&format!(r#"{{"plan_ahead": {bad}}}"#));
            assert!(
                e.starts_with("config key `plan_ahead`") && e.contains("0..=255"),
                "{bad}: {e}"
            );
        }
        let e = err(r#"{"io_depth": 257}"#);
        assert!(e.contains("`io_depth`") && e.contains("0..=256"), "{e}");
        assert!(err(r#"{"io_depth": -1}"#).contains("io_depth"));
        assert_eq!(Config::from_json(r#"{"io_depth": 0}"#).unwrap().io_depth, 0);
        assert!(err(r#"{"seed": -1}"#).contains("seed"));
        assert!(err(r#"{"world_size": 0}"#).starts_with("config key `world_size`"));
        let e = err(r#"{"rank": 2, "world_size": 2}"#);
        assert!(
            e.starts_with("config key `rank`: 2 is out of range 0..2"),
            "{e}"
        );
        assert!(err(r#"{"rank": -1}"#).contains("rank"));
        assert!(err(r#"{"policy": {"kind": "random", "prune": 1.5}}"#).contains("policy.prune"));
        assert!(err(r#"{"policy": {"kind": "nope"}}"#).contains("nope"));
        let e = err(r#"{"policy": {"kind": "infobatch", "epochs": -1}}"#);
        assert!(e.starts_with("config key `policy.epochs`"), "{e}");
        let e = err(r#"{"policy": {"kind": "random", "prune": "x"}}"#);
        assert!(e.starts_with("config key `policy.prune`"), "{e}");
        let e = err(r#"{"source": {"kind": "idx", "images": 3, "labels": "l"}}"#);
        assert!(e.starts_with("config key `source.images`"), "{e}");
        assert!(err(r#"{"policy": {"prune": 0.3}}"#).contains("policy.kind"));
        assert!(err(r#"{"transform": {"layout": "chw"}}"#).contains("transform.layout"));
        assert!(err(r#"{"on_error": "ignore"}"#).contains("on_error"));
        let e = err(r#"{"source": {"kind": "cifar", "files": "x.bin"}}"#);
        assert!(e.starts_with("config key `source.files`"), "{e}");
        let e = err(r#"{"source": {"kind": "image_folder", "root": "r", "max_pixels": -1}}"#);
        assert!(e.starts_with("config key `source.max_pixels`"), "{e}");
        let e = err(r#"{"source": {"kind": "tar", "shards": 3}}"#);
        assert!(e.starts_with("config key `source.shards`"), "{e}");
        let e =
            err(r#"{"source": {"kind": "npy", "x": "x.npy", "y": "y.npy", "x_layout": "cwh"}}"#);
        assert!(e.starts_with("config key `source.x_layout`"), "{e}");
        let e =
            err(r#"{"transform": {"random_resized_crop": {"size": 224, "scale": [0.5, 0.1]}}}"#);
        assert!(e.contains("transform.random_resized_crop.scale"), "{e}");
        let e = err(r#"{"transform": {"center_crop": [1, 2, 3]}}"#);
        assert!(e.contains("transform.center_crop"), "{e}");
        let e = err(r#"{"transform": {"center_crop": 8, "random_crop": {"size": 8}}}"#);
        assert!(e.contains("at most one crop"), "{e}");
        assert!(err(r#"{"transform": {"hflip": 2}}"#).contains("transform.hflip"));
        assert!(err("{").contains("config"));
    }
}
