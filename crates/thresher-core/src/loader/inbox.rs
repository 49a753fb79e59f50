//! What the trainer tells the Planner while a plan made ahead is due or being made: a worker
//! makes that plan holding the Planner, and the trainer must not wait for it — its `next` calls
//! (which count batches as handed out) and its `feedback` calls would. So from the moment the
//! plan becomes due until it is made, they are held here instead, in arrival order, and booked
//! into the Planner right after the plan is made (`Shared::planner_settled`). The ScoreBook the
//! plan reads is then exactly the one at the moment it became due, whatever the timing, and
//! every held call is booked as if it had been made after the plan: the rule of
//! docs/policies.md, *When the plan of epoch e is fixed*.
//!
//! A held feedback call passes the ScoreBook's own checks (`FeedbackCheck`) before it is
//! accepted, so it is refused with the same error, and a refused call changes nothing; one
//! whose embedding length the ScoreBook has not fixed yet, or that cannot be copied for lack of
//! memory, is not held: that call waits for the plan and is booked directly.

use crate::error::Result;
use crate::planner::Planner;
use crate::scores::{Feedback, FeedbackCheck};

/// The calls held while a plan made ahead is due (see the module).
pub(super) struct Inbox {
    /// From the moment the plan ahead is due until it is made and the held calls are booked.
    holding: bool,
    /// `next` calls that handed out a batch meanwhile.
    advances: usize,
    /// The feedback calls, their values concatenated in arrival order.
    calls: Vec<HeldCall>,
    ids: Vec<u64>,
    loss: Vec<f32>,
    grad_norm: Vec<f32>,
    el2n: Vec<f32>,
    correct: Vec<u8>,
    embedding: Vec<f32>,
    /// The ScoreBook's checks as they stood when holding began (`None` until first needed:
    /// it keeps a bit per sample).
    check: Option<FeedbackCheck>,
    /// The ScoreBook's N and embedding rule when holding began.
    n: usize,
    embedding_dim: Option<usize>,
}

/// One held feedback call: how many ids, and which fields it carried.
struct HeldCall {
    len: usize,
    grad_norm: bool,
    el2n: bool,
    correct: bool,
    embedding_dim: usize,
    embedding: bool,
}

/// What `Inbox::offer` did with a feedback call.
pub(super) enum Offer {
    /// Held, to be booked after the plan; the result is the checks' (an error changes nothing).
    Held(Result<()>),
    /// Not holding (or a call that cannot be held): book it directly.
    Direct,
}

impl Inbox {
    pub(super) fn new() -> Inbox {
        Inbox {
            holding: false,
            advances: 0,
            calls: Vec::new(),
            ids: Vec::new(),
            loss: Vec::new(),
            grad_norm: Vec::new(),
            el2n: Vec::new(),
            correct: Vec::new(),
            embedding: Vec::new(),
            check: None,
            n: 0,
            embedding_dim: None,
        }
    }

    /// Whether calls are being held.
    #[cfg(test)]
    pub(super) fn holding(&self) -> bool {
        self.holding
    }

    /// Begins holding: the plan ahead of `planner` has just become due.
    pub(super) fn hold(&mut self, planner: &Planner) {
        debug_assert!(!self.holding && self.advances == 0 && self.calls.is_empty());
        self.holding = true;
        self.n = planner.dataset_len();
        self.embedding_dim = planner.scores().embedding_rule();
    }

    /// Counts one batch handed out while holding; false when not holding (count it directly).
    pub(super) fn advance(&mut self) -> bool {
        if self.holding {
            self.advances += 1;
        }
        self.holding
    }

    /// Holds `fb` when holding and it can be held (see `Offer`).
    pub(super) fn offer(&mut self, fb: &Feedback<'_>) -> Offer {
        if !self.holding || (fb.embedding.is_some() && self.embedding_dim == Some(0)) {
            return Offer::Direct;
        }
        let (n, dim) = (self.n, self.embedding_dim);
        let check = self.check.get_or_insert_with(|| FeedbackCheck::new(n, dim));
        check.set_embedding_dim(dim);
        if let Err(e) = check.check(fb) {
            return Offer::Held(Err(e));
        }
        if !self.reserve(fb) {
            return Offer::Direct;
        }
        self.ids.extend_from_slice(fb.ids);
        self.loss.extend_from_slice(fb.loss);
        self.grad_norm
            .extend_from_slice(fb.grad_norm.unwrap_or(&[]));
        self.el2n.extend_from_slice(fb.el2n.unwrap_or(&[]));
        self.correct.extend_from_slice(fb.correct.unwrap_or(&[]));
        self.embedding
            .extend_from_slice(fb.embedding.unwrap_or(&[]));
        self.calls.push(HeldCall {
            len: fb.ids.len(),
            grad_norm: fb.grad_norm.is_some(),
            el2n: fb.el2n.is_some(),
            correct: fb.correct.is_some(),
            embedding_dim: fb.embedding_dim,
            embedding: fb.embedding.is_some(),
        });
        Offer::Held(Ok(()))
    }

    /// Room for `fb`'s values, or false (nothing changed) when it cannot be had: the arrays
    /// grow to what is held between a plan falling due and its making, then are reused.
    fn reserve(&mut self, fb: &Feedback<'_>) -> bool {
        let len = fb.ids.len();
        let opt = |v: Option<&[f32]>| v.map_or(0, <[f32]>::len);
        self.calls.try_reserve(1).is_ok()
            && self.ids.try_reserve(len).is_ok()
            && self.loss.try_reserve(len).is_ok()
            && self.grad_norm.try_reserve(opt(fb.grad_norm)).is_ok()
            && self.el2n.try_reserve(opt(fb.el2n)).is_ok()
            && self
                .correct
                .try_reserve(fb.correct.map_or(0, <[u8]>::len))
                .is_ok()
            && self.embedding.try_reserve(opt(fb.embedding)).is_ok()
    }

    /// Books everything held into `planner` (whose plan ahead is made), in arrival order, and
    /// stops holding. The arrays keep their room for the next time.
    pub(super) fn book_into(&mut self, planner: &mut Planner) {
        if !self.holding {
            return;
        }
        for _ in 0..std::mem::take(&mut self.advances) {
            planner.advance();
        }
        let (mut at, mut at_grad, mut at_el2n, mut at_correct, mut at_emb) = (0, 0, 0, 0, 0);
        for c in &self.calls {
            let take = |on: bool, from: &mut usize, len: usize| {
                let r = *from..*from + if on { len } else { 0 };
                *from = r.end;
                on.then_some(r)
            };
            let ids = &self.ids[at..at + c.len];
            let loss = &self.loss[at..at + c.len];
            at += c.len;
            let fb = Feedback {
                ids,
                loss,
                grad_norm: take(c.grad_norm, &mut at_grad, c.len).map(|r| &self.grad_norm[r]),
                el2n: take(c.el2n, &mut at_el2n, c.len).map(|r| &self.el2n[r]),
                correct: take(c.correct, &mut at_correct, c.len).map(|r| &self.correct[r]),
                embedding: take(c.embedding, &mut at_emb, c.len * c.embedding_dim)
                    .map(|r| &self.embedding[r]),
                embedding_dim: c.embedding_dim,
            };
            // Checked when it was held against the same ScoreBook rules, which nothing has
            // changed since (no call was booked in between): it cannot be refused now.
            let booked = planner.feedback(&fb);
            debug_assert!(booked.is_ok(), "a held call was refused: {booked:?}");
        }
        self.calls.clear();
        self.ids.clear();
        self.loss.clear();
        self.grad_norm.clear();
        self.el2n.clear();
        self.correct.clear();
        self.embedding.clear();
        self.holding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn planner(policy: &str) -> Planner {
        let c = Config::from_json(&format!(
            r#"{{"batch_size": 4, "seed": 3, "policy": {policy}}}"#
        ))
        .unwrap();
        Planner::new(&c, 40).unwrap()
    }

    fn fb<'a>(ids: &'a [u64], loss: &'a [f32]) -> Feedback<'a> {
        Feedback {
            ids,
            loss,
            grad_norm: None,
            el2n: None,
            correct: None,
            embedding: None,
            embedding_dim: 0,
        }
    }

    #[test]
    fn held_calls_are_booked_in_order_as_if_made_directly() {
        let policy = r#"{"kind": "ucb", "prune": 0.5, "noise_guard": false}"#;
        let (mut direct, mut held) = (planner(policy), planner(policy));
        let grad = [0.5f32, 1.5];
        let correct = [1u8, 0];
        let calls = [
            fb(&[1, 2], &[0.5, 2.0]),
            Feedback {
                grad_norm: Some(&grad),
                correct: Some(&correct),
                ..fb(&[2, 7], &[1.0, 3.0])
            },
            fb(&[1], &[4.0]),
        ];
        let mut inbox = Inbox::new();
        assert!(matches!(inbox.offer(&calls[0]), Offer::Direct));
        inbox.hold(&held);
        for c in &calls {
            direct.feedback(c).unwrap();
            assert!(matches!(inbox.offer(c), Offer::Held(Ok(()))));
        }
        assert!(inbox.advance());
        // Nothing reached the ScoreBook while held.
        assert_eq!(held.scores().seen()[1], 0);
        direct.advance();
        inbox.book_into(&mut held);
        assert!(!inbox.holding());
        assert_eq!(direct.digest(), held.digest());
        assert_eq!(direct.delivered(), held.delivered());
    }

    #[test]
    fn a_refused_call_is_refused_as_the_scorebook_would_and_holds_nothing() {
        let mut p = planner(r#"{"kind": "infobatch", "prune": 0.5, "epochs": 4}"#);
        let before = p.digest();
        let mut inbox = Inbox::new();
        inbox.hold(&p);
        for (bad, says) in [
            (fb(&[1, 40], &[1.0, 1.0]), "ids[1] = 40 is out of range"),
            (fb(&[3, 3], &[1.0, 1.0]), "id 3 appears twice"),
            (fb(&[3], &[f32::NAN]), "loss[0]"),
        ] {
            let direct = p.feedback(&bad).unwrap_err().to_string();
            match inbox.offer(&bad) {
                Offer::Held(Err(e)) => {
                    assert!(e.to_string().contains(says), "{e}");
                    assert_eq!(e.to_string(), direct);
                }
                _ => panic!("not refused: {says}"),
            }
        }
        inbox.book_into(&mut p);
        assert_eq!(p.digest(), before);
    }

    #[test]
    fn an_embedding_whose_length_is_not_fixed_yet_is_booked_directly() {
        let p = planner(r#"{"kind": "influence", "prune": 0.5}"#);
        let mut inbox = Inbox::new();
        inbox.hold(&p);
        let emb = [0.5f32; 3];
        let call = Feedback {
            embedding: Some(&emb),
            embedding_dim: 3,
            ..fb(&[5], &[1.0])
        };
        assert!(matches!(inbox.offer(&call), Offer::Direct));
        assert!(matches!(
            inbox.offer(&fb(&[5], &[1.0])),
            Offer::Held(Ok(()))
        ));
    }
}
