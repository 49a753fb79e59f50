//! The checks a feedback call must pass before any of it is applied: `ScoreBook::feedback`
//! is all or nothing, so every refusal happens here, before the first write. The checks are
//! `FeedbackCheck`'s, so that a loader holding a call back (while a plan is being made, see
//! `loader/inbox.rs`) refuses exactly what the ScoreBook would.

use super::{Feedback, ScoreBook, ScoreFields};
use crate::error::{Error, Result};

/// What decides whether a feedback call is well formed: N, and what the ScoreBook requires
/// of embeddings. Holds the duplicate search's scratch (a bit per id), left clear.
#[derive(Clone)]
pub(crate) struct FeedbackCheck {
    n: usize,
    /// `Some(d)`: the ScoreBook stores embeddings and every call's length must pass
    /// `Sketch::check_dim` with the first length `d` (0: none arrived yet); `None`: not stored,
    /// any length goes.
    embedding_dim: Option<usize>,
    dup_bits: Vec<u64>,
    dup_scratch: Vec<u64>,
}

/// Scratch, not state: two ScoreBooks that hold the same figures print the same.
impl std::fmt::Debug for FeedbackCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackCheck").field("n", &self.n).finish()
    }
}

impl FeedbackCheck {
    /// The checks for a dataset of `n` samples; `embedding_dim` as the field says.
    pub(crate) fn new(n: usize, embedding_dim: Option<usize>) -> FeedbackCheck {
        FeedbackCheck {
            n,
            embedding_dim,
            dup_bits: vec![0; n.div_ceil(64)],
            dup_scratch: Vec::new(),
        }
    }

    /// The embedding rule now (it changes when the first embedding arrives).
    pub(crate) fn set_embedding_dim(&mut self, embedding_dim: Option<usize>) {
        self.embedding_dim = embedding_dim;
    }

    /// Refuses a call that names an id out of range or twice, carries a non-finite value, or
    /// whose slices disagree in length. `&mut` only for the duplicate search's scratch, which
    /// it leaves clear.
    pub(crate) fn check(&mut self, fb: &Feedback<'_>) -> Result<()> {
        self.check_then(fb, |_| {})
    }

    /// `check`, calling `ids_ok` once the ids are known to be in range (the ScoreBook
    /// prefetches its first entries there, to load while the rest is checked).
    fn check_then(&mut self, fb: &Feedback<'_>, ids_ok: impl FnOnce(&[u64])) -> Result<()> {
        let len = fb.ids.len();
        let same_len = |name: &str, l: usize| {
            if l != len {
                Err(Error::invalid(format!(
                    "feedback: `{name}` has {l} values but `ids` has {len}"
                )))
            } else {
                Ok(())
            }
        };
        same_len("loss", fb.loss.len())?;
        // Each check first folds the whole slice without an early exit (vector code, since a
        // call is almost always well formed), and looks for the offending position only when
        // the fold says there is one.
        if fb.ids.iter().fold(0, |m, &id| m.max(id)) >= self.n as u64 {
            let i = fb
                .ids
                .iter()
                .position(|&id| id >= self.n as u64)
                .unwrap_or(0);
            return Err(Error::invalid(format!(
                "feedback: ids[{i}] = {} is out of range (dataset has {} samples)",
                fb.ids[i], self.n
            )));
        }
        ids_ok(fb.ids);
        let finite = |name: &str, values: &[f32], nonneg: bool| {
            // −0 is not below 0: it passes where values must be non-negative.
            let bad = |v: f32| !v.is_finite() | (nonneg & (v < 0.0));
            if values.iter().fold(false, |any, &v| any | bad(v)) {
                let i = values.iter().position(|&v| bad(v)).unwrap_or(0);
                return Err(Error::invalid(format!(
                    "feedback: {name}[{i}] = {} (id {}) is not a finite{} number",
                    values[i],
                    fb.ids.get(i).copied().unwrap_or(0),
                    if nonneg { ", non-negative" } else { "" }
                )));
            }
            Ok(())
        };
        finite("loss", fb.loss, false)?;
        if let Some(g) = fb.grad_norm {
            same_len("grad_norm", g.len())?;
            finite("grad_norm", g, true)?;
        }
        if let Some(e) = fb.el2n {
            same_len("el2n", e.len())?;
            finite("el2n", e, true)?;
        }
        if let Some(c) = fb.correct {
            same_len("correct", c.len())?;
            if c.iter().fold(0, |m, &v| m.max(v)) > 1 {
                let i = c.iter().position(|&v| v > 1).unwrap_or(0);
                return Err(Error::invalid(format!(
                    "feedback: correct[{i}] = {} (id {}) is not 0 or 1",
                    c[i], fb.ids[i]
                )));
            }
        }
        match (fb.embedding, fb.embedding_dim) {
            (None, 0) => {}
            (None, d) => {
                return Err(Error::invalid(format!(
                    "feedback: embedding_dim = {d} but `embedding` is missing"
                )))
            }
            (Some(_), 0) => {
                return Err(Error::invalid(
                    "feedback: `embedding` is given but embedding_dim = 0",
                ))
            }
            (Some(e), d) => {
                if Some(e.len()) != len.checked_mul(d) {
                    return Err(Error::invalid(format!(
                        "feedback: `embedding` has {} values but ids × embedding_dim = {len} × {d}",
                        e.len()
                    )));
                }
                finite("embedding", e, false)?;
                if let Some(first) = self.embedding_dim {
                    crate::sketch::check_dim(first, d)?;
                }
            }
        }
        // Duplicates: the order of two updates of one id within a call would be ambiguous.
        // Ids are in range here (checked above), so each has its bit.
        let mut dup = false;
        for &id in fb.ids {
            let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
            dup |= self.dup_bits[word] & bit != 0;
            self.dup_bits[word] |= bit;
        }
        for &id in fb.ids {
            self.dup_bits[(id / 64) as usize] = 0;
        }
        if dup {
            // The rare error path names the smallest duplicated id, found by sorting.
            self.dup_scratch.clear();
            self.dup_scratch.extend_from_slice(fb.ids);
            self.dup_scratch.sort_unstable();
            if let Some(w) = self.dup_scratch.windows(2).find(|w| w[0] == w[1]) {
                let id = w[0];
                let first = fb.ids.iter().position(|&x| x == id).unwrap_or(0);
                let second = fb.ids.iter().rposition(|&x| x == id).unwrap_or(0);
                return Err(Error::invalid(format!(
                    "feedback: id {id} appears twice in one call (ids[{first}] and ids[{second}])"
                )));
            }
        }
        Ok(())
    }
}

impl ScoreBook {
    /// `FeedbackCheck::check` with this ScoreBook's N and embedding rule.
    pub(super) fn validate(&mut self, fb: &Feedback<'_>) -> Result<()> {
        let mut check = std::mem::replace(&mut self.check, FeedbackCheck::new(0, None));
        check.set_embedding_dim(self.embedding_rule());
        let r = check.check_then(fb, |ids| {
            // `apply` prefetches each id a few ids ahead of its update; the first few have
            // nobody ahead of them, so they are prefetched here and load while the checks run.
            for &id in ids.iter().take(super::PREFETCH_AHEAD) {
                self.prefetch(id as usize);
            }
        });
        self.check = check;
        r
    }

    /// The embedding rule of `FeedbackCheck` for this ScoreBook.
    pub(crate) fn embedding_rule(&self) -> Option<usize> {
        self.fields
            .contains(ScoreFields::EMBEDDING)
            .then(|| self.sketch.in_dim())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fb, ALL};
    use super::*;

    #[test]
    fn rejected_calls_change_nothing() {
        let mut b = ScoreBook::new(4, ALL);
        b.feedback(&fb(&[0, 1], &[1.0, 2.0]), 0).unwrap();
        let before = format!("{:?}", (&b.seen, &b.loss_last, &b.loss_moments));
        let bad: Vec<(Feedback, &str)> = vec![
            (fb(&[0, 9], &[1.0, 1.0]), "ids[1] = 9"),
            (fb(&[0, 1], &[1.0, f32::NAN]), "loss[1]"),
            (fb(&[0, 1], &[f32::INFINITY, 1.0]), "loss[0]"),
            (fb(&[0, 1], &[1.0]), "`loss` has 1 values"),
            (fb(&[2, 2], &[1.0, 1.0]), "id 2 appears twice"),
            (
                Feedback {
                    grad_norm: Some(&[1.0, -1.0]),
                    ..fb(&[0, 1], &[1.0, 1.0])
                },
                "grad_norm[1]",
            ),
            (
                Feedback {
                    correct: Some(&[1, 3]),
                    ..fb(&[0, 1], &[1.0, 1.0])
                },
                "correct[1]",
            ),
            (
                Feedback {
                    embedding: Some(&[1.0, 2.0, 3.0]),
                    embedding_dim: 2,
                    ..fb(&[0, 1], &[1.0, 1.0])
                },
                "embedding",
            ),
            (
                Feedback {
                    embedding_dim: 2,
                    ..fb(&[0, 1], &[1.0, 1.0])
                },
                "embedding_dim",
            ),
        ];
        for (f, needle) in bad {
            let e = b.feedback(&f, 3).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
            assert!(e.message().contains(needle), "{e} lacks {needle}");
        }
        let after = format!("{:?}", (&b.seen, &b.loss_last, &b.loss_moments));
        assert_eq!(before, after);
    }
}
