//! Checkpoints: the Planner's whole state — ScoreBook, epoch, the current plan and the position
//! inside it, the policy's state — so a restored Planner (or Loader) yields exactly the batches
//! the uninterrupted run would have yielded next. The plan itself is stored (not re-derived), since
//! the ScoreBook has moved on since the epoch began. RNG state needs no storing: every random
//! draw is keyed by (seed, epoch, …).
//!
//! The state is rank-independent: the plan stored is the global one (the same on every rank)
//! and the position is the number of global positions consumed, so every rank writes the same
//! bytes, and a checkpoint written at one world size (or per-rank batch size) continues the
//! same global plan at another (see `plan` for the layout).
//!
//! Format, version 4, little-endian: magic "THRSTATE" · u32 version · fingerprint (N, seed,
//! shuffle, drop_last, plan_ahead, policy kind, dataset fingerprint, canonical policy
//! parameters) · u64 epoch · u64 total samples · u8 has-plan · [plan] · u8 has-next-plan ·
//! [plan] · ScoreBook · policy state · CRC-32, where a plan is: plan epoch, global ids,
//! weights, u64 position, mean weight, score mean, score std, unlearnable fraction. The
//! `plan_ahead` byte is its batch count (0 = false, 1 = true, the only values before counts
//! were allowed, so older files read the same). The next plan is the one `plan_ahead` made
//! in the epoch before (at its k-th batch from the end: that epoch may still be under way);
//! when it is present, `epoch` is its epoch. Written atomically like score files. Versions 1 (before
//! ranks), 2 (before the dataset fingerprint and the policy parameters were recorded) and 3
//! (before the next plan could be made ahead) are refused with a message naming the version:
//! a version-3 checkpoint taken at an epoch's end cannot say which feedback the next plan
//! should see.

use std::path::Path;

use crate::codec::{check_crc, Reader, Writer};
use crate::error::{Error, Result};
use crate::scores::ScoreBook;

const MAGIC: &[u8; 8] = b"THRSTATE";
const VERSION: u32 = 4;

/// What must match between the saving and the restoring loader: the dataset (N and its
/// fingerprint, see `Planner::for_dataset`), the seed, `shuffle`, `drop_last`, `plan_ahead`
/// (it decides which feedback each plan sees) and the policy
/// (its kind and its canonical parameters, `PolicyConfig::canonical`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fingerprint {
    pub n: u64,
    pub dataset: u64,
    pub seed: u64,
    pub shuffle: bool,
    pub drop_last: bool,
    pub plan_ahead: crate::config::PlanAhead,
    pub policy: String,
    /// The canonical policy section as JSON text (sorted keys).
    pub policy_config: String,
}

impl Fingerprint {
    /// In words, what differs between the saved run (`self`) and this one: the dataset first,
    /// then the run's keys, then each policy key that differs.
    fn differences(&self, here: &Fingerprint) -> String {
        let mut parts = Vec::new();
        let mut differ = |what: &str, saved: String, now: String| {
            if saved != now {
                parts.push(format!("{what} {saved} in the saved run, {now} here"));
            }
        };
        differ(
            "dataset size (N samples)",
            self.n.to_string(),
            here.n.to_string(),
        );
        if self.n == here.n && self.dataset != here.dataset {
            differ(
                "dataset contents (same N, other labels or samples: fingerprint)",
                format!("{:016x}", self.dataset),
                format!("{:016x}", here.dataset),
            );
        }
        differ("seed", self.seed.to_string(), here.seed.to_string());
        differ(
            "shuffle",
            self.shuffle.to_string(),
            here.shuffle.to_string(),
        );
        differ(
            "drop_last",
            self.drop_last.to_string(),
            here.drop_last.to_string(),
        );
        differ(
            "plan_ahead",
            self.plan_ahead.to_string(),
            here.plan_ahead.to_string(),
        );
        differ("policy kind", self.policy.clone(), here.policy.clone());
        if self.policy == here.policy && self.policy_config != here.policy_config {
            let map = |text: &str| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                    .unwrap_or_default()
            };
            let (saved, now) = (map(&self.policy_config), map(&here.policy_config));
            let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
            keys.sort();
            keys.dedup();
            let show = |v: Option<&serde_json::Value>| v.map_or("unset".into(), |v| v.to_string());
            for key in keys {
                differ(
                    &format!("policy key `policy.{key}`"),
                    show(saved.get(key)),
                    show(now.get(key)),
                );
            }
        }
        let hint = if self.n != here.n || self.dataset != here.dataset {
            " (did the dataset change?)"
        } else {
            ""
        };
        format!("{}{hint}", parts.join("; "))
    }
}

/// The current epoch's global plan and how far the ranks got.
pub(crate) struct SavedJob {
    pub epoch: u64,
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    /// Global positions consumed (may exceed `ids.len()` by padding).
    pub position: u64,
    pub mean_weight: f64,
    pub score_mean: f64,
    pub score_std: f64,
    /// The report's, fixed when the plan was made.
    pub unlearnable_fraction: f64,
}

pub(crate) struct Snapshot<'a> {
    pub fingerprint: Fingerprint,
    pub epoch: u64,
    pub total_samples: u64,
    pub job: Option<SavedJob>,
    /// The next epoch's plan, made ahead.
    pub ahead: Option<SavedJob>,
    pub scores: &'a ScoreBook,
    pub policy_state: Vec<u8>,
}

pub(crate) fn encode(s: &Snapshot<'_>) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(MAGIC);
    w.u32(VERSION);
    let f = &s.fingerprint;
    w.u64(f.n);
    w.u64(f.seed);
    w.u8(f.shuffle as u8);
    w.u8(f.drop_last as u8);
    w.u8(f.plan_ahead.get());
    w.str(&f.policy);
    w.u64(f.dataset);
    w.str(&f.policy_config);
    w.u64(s.epoch);
    w.u64(s.total_samples);
    for job in [&s.job, &s.ahead] {
        match job {
            None => w.u8(0),
            Some(j) => {
                w.u8(1);
                w.u64(j.epoch);
                w.u64s(&j.ids);
                w.f32s(&j.weights);
                w.u64(j.position);
                w.f64(j.mean_weight);
                w.f64(j.score_mean);
                w.f64(j.score_std);
                w.f64(j.unlearnable_fraction);
            }
        }
    }
    s.scores.encode(&mut w);
    w.u8s(&s.policy_state);
    w.finish()
}

/// What `restore` gives back to the loader.
pub(crate) struct Restored {
    pub epoch: u64,
    pub total_samples: u64,
    pub job: Option<SavedJob>,
    pub ahead: Option<SavedJob>,
    pub policy_state: Vec<u8>,
}

/// Parses a checkpoint, checks it against `expect`, and loads its ScoreBook into `scores`
/// (which is left unchanged on any error).
pub(crate) fn restore(
    path: &Path,
    expect: &Fingerprint,
    max_bytes: u64,
    scores: &mut ScoreBook,
) -> Result<Restored> {
    let bytes = crate::util::read_bounded(path, max_bytes, "checkpoint")?;
    let bad = |what: &str| {
        Error::format(format!(
            "{}: not a usable checkpoint: {what}",
            path.display()
        ))
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(bad("bad magic (expected THRSTATE)"));
    }
    let body =
        check_crc(&bytes).ok_or_else(|| bad("checksum mismatch (truncated or corrupted)"))?;
    let mut r = Reader::new(body, 8);
    let truncated = || bad("truncated");
    let version = r.u32().ok_or_else(truncated)?;
    if version == 2 {
        return Err(bad(
            "format version 2, written before checkpoints recorded which dataset and which \
             policy parameters they belong to; this build reads version 4 only (finish that run \
             with the build that wrote it, or start afresh)",
        ));
    }
    if version == 3 {
        return Err(bad(
            "format version 3, written before the next epoch's plan could be made at the last \
             batch of an epoch (config key `plan_ahead`) and stored with it; this build reads \
             version 4 only (finish that run with the build that wrote it, or start afresh)",
        ));
    }
    if version != VERSION {
        return Err(bad(&format!(
            "version {version}; this build reads {VERSION}"
        )));
    }
    let found = Fingerprint {
        n: r.u64().ok_or_else(truncated)?,
        seed: r.u64().ok_or_else(truncated)?,
        shuffle: r.u8().ok_or_else(truncated)? != 0,
        drop_last: r.u8().ok_or_else(truncated)? != 0,
        plan_ahead: crate::config::PlanAhead::batches(r.u8().ok_or_else(truncated)?),
        policy: r.str().ok_or_else(truncated)?,
        dataset: r.u64().ok_or_else(truncated)?,
        policy_config: r.str().ok_or_else(truncated)?,
    };
    if &found != expect {
        return Err(Error::invalid(format!(
            "config key `resume_from`: {} is from another run: {}",
            path.display(),
            found.differences(expect)
        )));
    }
    let epoch = r.u64().ok_or_else(truncated)?;
    let total_samples = r.u64().ok_or_else(truncated)?;
    let job = read_job(&mut r, expect.n as usize, &bad)?;
    let ahead = read_job(&mut r, expect.n as usize, &bad)?;
    // The plan under way is of `epoch`; with a next plan, that one is, and the plan before it
    // (if stored) is its predecessor.
    let consistent = match (&job, &ahead) {
        (_, Some(a)) => a.epoch == epoch && job.as_ref().is_none_or(|j| j.epoch + 1 == epoch),
        (Some(j), None) => j.epoch == epoch,
        (None, None) => true,
    };
    if !consistent {
        return Err(bad("inconsistent plan"));
    }
    let mut book = scores.clone();
    book.decode(&mut r)
        .ok_or_else(|| bad("its scores do not fit this dataset and policy"))?;
    let policy_state = r.u8s().ok_or_else(truncated)?;
    if !r.done() {
        return Err(bad("trailing bytes"));
    }
    *scores = book;
    Ok(Restored {
        epoch,
        total_samples,
        job,
        ahead,
        policy_state,
    })
}

/// One stored plan (or none), checked: each id at most once and below N, weights finite and
/// non-negative.
fn read_job(r: &mut Reader<'_>, n: usize, bad: &dyn Fn(&str) -> Error) -> Result<Option<SavedJob>> {
    let truncated = || bad("truncated");
    match r.u8().ok_or_else(truncated)? {
        0 => Ok(None),
        1 => {
            let plan_epoch = r.u64().ok_or_else(truncated)?;
            // A plan keeps each of the N ids at most once: a longer stored length is refused
            // before it is allocated.
            let too_long = || bad("its plan is longer than the dataset");
            let ids = r.u64s_max(n).ok_or_else(too_long)?;
            let weights = r.f32s_max(n).ok_or_else(too_long)?;
            let position = r.u64().ok_or_else(truncated)?;
            if ids.len() != weights.len() {
                return Err(bad("inconsistent plan"));
            }
            // A checksum only says the bytes are the ones written: what they say is checked too.
            let mut seen = vec![false; n];
            for &id in &ids {
                match seen.get_mut(id as usize) {
                    Some(s) if !*s => *s = true,
                    Some(_) => return Err(bad(&format!("its plan holds id {id} twice"))),
                    None => return Err(bad(&format!("its plan holds id {id} ≥ N"))),
                }
            }
            if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
                return Err(bad(&format!("its plan holds the weight {w}")));
            }
            Ok(Some(SavedJob {
                epoch: plan_epoch,
                ids,
                weights,
                position,
                mean_weight: r.f64().ok_or_else(truncated)?,
                score_mean: r.f64().ok_or_else(truncated)?,
                score_std: r.f64().ok_or_else(truncated)?,
                unlearnable_fraction: r.f64().ok_or_else(truncated)?,
            }))
        }
        _ => Err(bad("bad plan flag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::ScoreFields;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            n: 4,
            seed: 1,
            shuffle: true,
            drop_last: false,
            plan_ahead: crate::config::PlanAhead::batches(1),
            policy: "full".into(),
            dataset: 7,
            policy_config: r#"{"kind":"full"}"#.into(),
        }
    }

    /// Writes a checkpoint with a valid checksum whose plan is `ids`/`weights`, and restores it.
    fn restore_plan(ids: Vec<u64>, weights: Vec<f32>) -> Result<Restored> {
        let book = ScoreBook::new(4, ScoreFields::NONE);
        let bytes = encode(&Snapshot {
            fingerprint: fingerprint(),
            epoch: 0,
            total_samples: ids.len() as u64,
            job: Some(SavedJob {
                epoch: 0,
                ids,
                weights,
                position: 0,
                mean_weight: 1.0,
                score_mean: f64::NAN,
                score_std: f64::NAN,
                unlearnable_fraction: f64::NAN,
            }),
            ahead: None,
            scores: &book,
            policy_state: Vec::new(),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck");
        std::fs::write(&path, bytes).unwrap();
        let mut into = ScoreBook::new(4, ScoreFields::NONE);
        restore(&path, &fingerprint(), 1 << 20, &mut into)
    }

    #[test]
    fn a_checksummed_but_impossible_plan_is_refused() {
        assert!(restore_plan(vec![0, 1, 2, 3], vec![1.0; 4]).is_ok());
        for (ids, weights, want) in [
            (vec![0, 1, 1], vec![1.0; 3], "id 1 twice"),
            (vec![0, 9], vec![1.0; 2], "id 9"),
            (vec![0, 1], vec![1.0, f32::NAN], "weight NaN"),
            (vec![0, 1], vec![1.0, -2.0], "weight -2"),
            (vec![0, 1], vec![f32::INFINITY, 1.0], "weight inf"),
        ] {
            let e = restore_plan(ids, weights).err().expect("refused");
            assert!(e.message().contains(want), "{want}: {e}");
            assert!(e.message().contains("not a usable checkpoint"), "{e}");
        }
    }

    #[test]
    fn older_versions_are_refused_naming_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck");
        for (version, want) in [(2, "format version 2"), (3, "format version 3")] {
            let mut w = Writer::default();
            w.bytes(MAGIC);
            w.u32(version);
            std::fs::write(&path, w.finish()).unwrap();
            let mut into = ScoreBook::new(4, ScoreFields::NONE);
            let e = restore(&path, &fingerprint(), 1 << 20, &mut into)
                .err()
                .expect("refused");
            assert!(e.message().contains(want), "{e}");
            assert!(e.message().contains("reads version 4 only"), "{e}");
        }
        let e = {
            let mut w = Writer::default();
            w.bytes(MAGIC);
            w.u32(3);
            std::fs::write(&path, w.finish()).unwrap();
            let mut into = ScoreBook::new(4, ScoreFields::NONE);
            restore(&path, &fingerprint(), 1 << 20, &mut into)
                .err()
                .unwrap()
        };
        assert!(e.message().contains("plan_ahead"), "{e}");
    }

    #[test]
    fn a_special_file_is_refused_before_reading() {
        let mut into = ScoreBook::new(4, ScoreFields::NONE);
        let e = restore(Path::new("/dev/zero"), &fingerprint(), 1 << 20, &mut into)
            .err()
            .expect("refused");
        assert!(e.message().contains("not a regular file"), "{e}");
    }
}
