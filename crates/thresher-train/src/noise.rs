//! Label noise for experiments (`--label-noise P`): a fixed share of the training labels
//! replaced, per sample id, deterministically from a seed, the way a mislabeled dataset
//! would hold them. The test set is never touched. Two kinds:
//!
//! - `symmetric`: a flipped sample gets a label drawn uniformly from the *other* classes;
//! - `pairs`: a flipped sample of class c gets class (c + 1) mod C (the class-pair flip of
//!   the noisy-label literature, e.g. Co-teaching's "pair" noise).
//!
//! Whether id i is flipped is u_i < P with u_i uniform in [0, 1) from SplitMix64 keyed by
//! (noise seed, i), so the flipped set depends on the seed and the id alone: the same for
//! every policy, training seed, batch order and rank.

use clap::{Args, ValueEnum};
use thresher_core::policy::UNLEARNABLE_WARNING;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    Symmetric,
    Pairs,
}

/// The label-noise flags (flattened into the trainer's shared flags).
#[derive(Args, Debug, Clone)]
pub struct NoiseArgs {
    /// Share of training labels replaced (0 ≤ P < 1); test labels stay clean.
    #[arg(long, default_value_t = 0.0, value_parser = crate::cli::unit_interval)]
    pub label_noise: f64,
    /// How a flipped label is replaced: uniformly among the other classes, or class c → c + 1.
    #[arg(long, value_enum, default_value_t = NoiseKind::Symmetric)]
    pub label_noise_kind: NoiseKind,
    /// Seed of the flipped set and the new labels (independent of --seed, so every run of a
    /// comparison sees the same noisy dataset).
    #[arg(long, default_value_t = 0)]
    pub label_noise_seed: u64,
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The noise of one run.
#[derive(Clone, Copy, Debug)]
pub struct LabelNoise {
    pub rate: f64,
    pub kind: NoiseKind,
    pub seed: u64,
    pub classes: i64,
}

impl LabelNoise {
    /// `None` when the flags ask for no noise.
    pub fn from_args(a: &NoiseArgs, classes: i64) -> Option<LabelNoise> {
        (a.label_noise > 0.0).then_some(LabelNoise {
            rate: a.label_noise,
            kind: a.label_noise_kind,
            seed: a.label_noise_seed,
            classes,
        })
    }

    /// Two independent 64-bit draws for `id`.
    fn draws(&self, id: u64) -> (u64, u64) {
        let base = mix(self.seed ^ 0x6e6f_6973_795f_6c62)
            .wrapping_add(id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        (mix(base), mix(base ^ 0xd1b5_4a32_d192_ed03))
    }

    /// Whether `id`'s label is replaced.
    pub fn flipped(&self, id: u64) -> bool {
        let (u, _) = self.draws(id);
        ((u >> 11) as f64 / (1u64 << 53) as f64) < self.rate
    }

    /// The label the trainer uses for sample `id` whose true label is `clean`.
    pub fn label(&self, id: u64, clean: i64) -> i64 {
        if !self.flipped(id) || self.classes < 2 {
            return clean;
        }
        match self.kind {
            NoiseKind::Pairs => (clean + 1).rem_euclid(self.classes),
            NoiseKind::Symmetric => {
                let (_, v) = self.draws(id);
                // One of the other C − 1 classes, uniformly (the modulo bias is below 2⁻⁶⁰).
                let k = (v % (self.classes as u64 - 1)) as i64;
                (clean + 1 + k).rem_euclid(self.classes)
            }
        }
    }

    /// The labels of a batch, replaced where flipped.
    pub fn apply(&self, ids: &[u64], labels: &[i64]) -> Vec<i64> {
        ids.iter()
            .zip(labels)
            .map(|(&id, &y)| self.label(id, y))
            .collect()
    }
}

/// Prints a warning when the epoch's plan keeps many samples that look unlearnable (the
/// report's `unlearnable_fraction`, NaN when the policy does not track it).
pub fn warn_if_unlearnable(label: &str, epoch: u64, fraction: f64) {
    if fraction > UNLEARNABLE_WARNING {
        eprintln!(
            "warning: {label} epoch {}: {:.1}% of the kept samples look unlearnable \
             (misclassified at each of their last reports): the labels may be noisy, and a \
             policy that keeps hard samples may be fitting them (keep `noise_guard` on)",
            epoch + 1,
            100.0 * fraction
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(rate: f64, kind: NoiseKind, seed: u64) -> LabelNoise {
        LabelNoise {
            rate,
            kind,
            seed,
            classes: 10,
        }
    }

    #[test]
    fn the_flipped_share_is_the_rate_and_every_flip_changes_the_label() {
        let n = 20_000u64;
        for kind in [NoiseKind::Symmetric, NoiseKind::Pairs] {
            let z = noise(0.2, kind, 3);
            let mut flipped = 0;
            let mut hist = [0u32; 10];
            for id in 0..n {
                let clean = (id % 10) as i64;
                let y = z.label(id, clean);
                assert!((0..10).contains(&y));
                if z.flipped(id) {
                    flipped += 1;
                    assert_ne!(y, clean, "a flip always changes the label");
                    if kind == NoiseKind::Pairs {
                        assert_eq!(y, (clean + 1) % 10);
                    }
                    hist[((y - clean).rem_euclid(10)) as usize] += 1;
                } else {
                    assert_eq!(y, clean);
                }
            }
            let share = flipped as f64 / n as f64;
            assert!((share - 0.2).abs() < 0.01, "{kind:?}: {share}");
            if kind == NoiseKind::Symmetric {
                // Every other class about equally often (each ~444 of ~4000).
                assert!(
                    hist[0] == 0 && hist[1..].iter().all(|&c| (350..550).contains(&c)),
                    "{hist:?}"
                );
            }
        }
    }

    #[test]
    fn deterministic_by_seed_and_id() {
        let a = noise(0.3, NoiseKind::Symmetric, 1);
        let b = noise(0.3, NoiseKind::Symmetric, 2);
        let ids: Vec<u64> = (0..1000).collect();
        let labels: Vec<i64> = ids.iter().map(|&i| (i % 10) as i64).collect();
        assert_eq!(a.apply(&ids, &labels), a.apply(&ids, &labels));
        assert_ne!(a.apply(&ids, &labels), b.apply(&ids, &labels));
        // The order of a batch does not matter: the label is a function of the id.
        let rev: Vec<u64> = ids.iter().rev().copied().collect();
        let rev_labels: Vec<i64> = labels.iter().rev().copied().collect();
        let mut back = a.apply(&rev, &rev_labels);
        back.reverse();
        assert_eq!(back, a.apply(&ids, &labels));
        assert_eq!(noise(0.0, NoiseKind::Pairs, 1).apply(&ids, &labels), labels);
    }
}
