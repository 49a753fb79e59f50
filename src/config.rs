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
    /// Worker threads that read and transform samples.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Ready batches kept ahead of the consumer.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    #[serde(default)]
    pub transform: TransformConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
}

fn default_batch_size() -> usize {
    256
}
fn default_true() -> bool {
    true
}
fn default_workers() -> usize {
    2
}
fn default_prefetch() -> usize {
    4
}

impl Config {
    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Config> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
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
        self.transform.validate()?;
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
    fn bad_values_name_their_key() {
        assert!(err(r#"{"batch_size": 0}"#).contains("batch_size"));
        assert!(err(r#"{"batch_size": "x"}"#).contains("batch_size"));
        assert!(err(r#"{"workers": 0}"#).contains("workers"));
        assert!(err(r#"{"prefetch": 0}"#).contains("prefetch"));
        assert!(err(r#"{"seed": -1}"#).contains("seed"));
        assert!(err(r#"{"policy": {"kind": "random", "prune": 1.5}}"#).contains("policy.prune"));
        assert!(err(r#"{"policy": {"kind": "nope"}}"#).contains("nope"));
        assert!(err(r#"{"transform": {"layout": "chw"}}"#).contains("transform.layout"));
        assert!(err("{").contains("config"));
    }
}
