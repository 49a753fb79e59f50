//! The per-epoch draw of a policy whose subset is fixed once (the static policies,
//! `influence`) and that has a random share: the fixed part plus `fill` ids drawn afresh from
//! the pool, marked per id and listed in id order.

use crate::policy::{extend_by_class, fits_u32, ListedId, PlanContext, Selection};
use crate::rng::{Rng, Stream};

/// A fixed subset with a random share: the part kept every epoch and the pool the rest of the
/// budget is drawn from, afresh each epoch.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Split {
    /// The part kept every epoch (a static policy's window of G ranks, and with `Unseen::Kept`
    /// the never-seen ids; `influence`'s complement of its removal set), ascending.
    pub fixed: Vec<u64>,
    /// The ids the share is drawn from (a static policy's ids outside the window; `influence`'s
    /// removal set), ascending (empty when `fill` is 0).
    pub pool: Vec<u64>,
    /// The ids drawn from `pool` each epoch (K_seen − G).
    pub fill: usize,
}

impl Split {
    /// A split read back from a checkpoint: the fixed ids alone (no share: `fill` None, no
    /// pool), or with a pool of at least `fill` ids (a whole number ≥ 1) none of which is
    /// fixed. None for any other combination, so damaged state is refused.
    pub(crate) fn restored(fixed: Vec<u64>, pool: Vec<u64>, fill: Option<f64>) -> Option<Split> {
        match fill {
            None if pool.is_empty() => Some(Split {
                fixed,
                ..Split::default()
            }),
            Some(fill)
                if fill >= 1.0
                    && fill <= pool.len() as f64
                    && fill.fract() == 0.0
                    && disjoint(&fixed, &pool) =>
            {
                Some(Split {
                    fixed,
                    pool,
                    fill: fill as usize,
                })
            }
            _ => None,
        }
    }
}

/// Per-id marks of an epoch: not kept, fixed, drawn while it looks unlearnable (at the
/// caller's `flagged_weight`), drawn at the share's weight.
pub(crate) const NOT_KEPT: u8 = 0;
pub(crate) const FIXED: u8 = 1;
pub(crate) const DRAWN: u8 = 2;
pub(crate) const HEAVY: u8 = 3;

/// Scratch of the per-epoch draw, reused across epochs: the fixed part's marks (made once per
/// subset), this epoch's marks and the pool being drawn from (u32 when every id fits one:
/// half the bytes to copy and to swap at random positions).
#[derive(Default)]
pub(crate) struct DrawScratch {
    /// `FIXED` for the fixed ids, `NOT_KEPT` elsewhere; empty until the first draw.
    fixed_marks: Vec<u8>,
    marks: Vec<u8>,
    pool32: Vec<u32>,
    pool64: Vec<u64>,
}

impl DrawScratch {
    /// Room for the draws over `n` ids, written once (huge pages where large), so that the
    /// first draw, at the epoch that fixes the subset, does not fault its pages in one by one.
    /// Empty (allocated at the first draw) without a random share.
    pub(crate) fn touched(n: usize, share: bool) -> DrawScratch {
        if !share {
            return DrawScratch::default();
        }
        fn room<T: Clone + Default>(n: usize) -> Vec<T> {
            let mut v = crate::util::huge::filled(n, T::default());
            v.clear();
            v
        }
        let wide = !fits_u32(n);
        DrawScratch {
            fixed_marks: room(n),
            marks: room(n),
            pool32: room(if wide { 0 } else { n }),
            pool64: room(if wide { n } else { 0 }),
        }
    }
}

/// Writes the fixed part of `split` and `split.fill` ids drawn uniformly from its pool into
/// `out`, ascending: a partial Fisher–Yates with (seed, select stream, epoch) over the pool in id
/// order, so every epoch draws afresh and the draw depends on the pool alone (and not on the
/// width of the listed ids). Fixed ids weigh 1, drawn ids `weight` unless `flagged` marks them
/// (`Some((streaks, window))`: a streak of at least `window`; then `flagged_weight`).
pub(crate) fn draw_share(
    split: &Split,
    weight: f32,
    flagged_weight: f32,
    ctx: &PlanContext<'_>,
    flagged: Option<(&[u8], u8)>,
    scratch: &mut DrawScratch,
    out: &mut Selection,
) {
    let n = ctx.scores.len();
    if scratch.fixed_marks.len() != n {
        scratch.fixed_marks.clear();
        scratch.fixed_marks.resize(n, NOT_KEPT);
        for &id in &split.fixed {
            scratch.fixed_marks[id as usize] = FIXED;
        }
    }
    let marks = &mut scratch.marks;
    marks.clear();
    marks.extend_from_slice(&scratch.fixed_marks);
    let mut rng = Rng::new(ctx.seed, Stream::Select, ctx.epoch, 0);
    if fits_u32(n) {
        mark_drawn(
            &split.pool,
            split.fill,
            &mut scratch.pool32,
            &mut rng,
            marks,
        );
    } else {
        mark_drawn(
            &split.pool,
            split.fill,
            &mut scratch.pool64,
            &mut rng,
            marks,
        );
    }
    if let Some((streak, window)) = flagged {
        unmark_flagged(marks, streak, window);
    }
    let mut by_mark = [1.0f32; 4];
    by_mark[HEAVY as usize] = weight;
    by_mark[DRAWN as usize] = flagged_weight;
    extend_by_class(out, marks, NOT_KEPT, by_mark);
}

/// Copies `pool` into `listed`, draws `fill` of it to the front and marks them `HEAVY` in
/// `marks`.
pub(crate) fn mark_drawn<T: ListedId>(
    pool: &[u64],
    fill: usize,
    listed: &mut Vec<T>,
    rng: &mut Rng,
    marks: &mut [u8],
) {
    listed.clear();
    listed.extend(pool.iter().map(|&id| T::from_id(id as usize)));
    rng.choose_front(listed, fill);
    for &id in &listed[..fill] {
        marks[id.index()] = HEAVY;
    }
}

/// Turns the `HEAVY` marks of ids whose streak is at least `window` into `DRAWN` (weight 1), in
/// one pass over the ids: the drawn ids are in random order, and looking up each one's streak
/// at random cost more than the pass (which is vector code: a byte compare and subtract).
pub(crate) fn unmark_flagged(marks: &mut [u8], streak: &[u8], window: u8) {
    const _: () = assert!(HEAVY - 1 == DRAWN);
    for (m, &s) in marks.iter_mut().zip(streak) {
        *m -= u8::from((*m == HEAVY) & (s >= window));
    }
}

/// Whether two ascending id lists share no id.
fn disjoint(a: &[u64], b: &[u64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_split_is_checked() {
        let ok = Split::restored(vec![0, 4], vec![1, 2, 3], Some(2.0)).unwrap();
        assert_eq!((ok.fixed, ok.pool, ok.fill), (vec![0, 4], vec![1, 2, 3], 2));
        assert_eq!(
            Split::restored(vec![0, 4], vec![], None),
            Some(Split {
                fixed: vec![0, 4],
                ..Split::default()
            })
        );
        for (pool, fill) in [
            (vec![1, 2, 4], Some(2.0)), // 4 is fixed too
            (vec![1, 2], Some(3.0)),    // more drawn than pooled
            (vec![1, 2], Some(0.0)),
            (vec![1, 2], Some(1.5)),
            (vec![1, 2], Some(f64::NAN)),
            (vec![1, 2], None), // a pool without a share
            (vec![], Some(1.0)),
        ] {
            assert!(
                Split::restored(vec![0, 4], pool.clone(), fill).is_none(),
                "{pool:?} {fill:?}"
            );
        }
    }

    #[test]
    fn the_draw_marks_the_same_ids_whatever_the_width() {
        let pool: Vec<u64> = (0..3000).filter(|i: &u64| !i.is_multiple_of(3)).collect();
        let streak: Vec<u8> = (0..3000).map(|i| (i % 7 == 0) as u8 * 3).collect();
        for fill in [0, 1, 500, pool.len()] {
            let (mut a, mut b) = (vec![0u8; 3000], vec![0u8; 3000]);
            a[0] = FIXED;
            b[0] = FIXED;
            let rng = |e| Rng::new(9, Stream::Select, e, 0);
            mark_drawn(&pool, fill, &mut Vec::<u32>::new(), &mut rng(4), &mut a);
            mark_drawn(&pool, fill, &mut Vec::<u64>::new(), &mut rng(4), &mut b);
            assert_eq!(a, b, "fill {fill}");
            assert_eq!(a.iter().filter(|&&m| m == HEAVY).count(), fill);
            let drawn = a.clone();
            unmark_flagged(&mut a, &streak, 2);
            // Drawn and flagged: weight 1; drawn and not flagged: the share's; the rest as
            // they were.
            for (id, (&was, &now)) in drawn.iter().zip(&a).enumerate() {
                let want = match was {
                    HEAVY if id % 7 == 0 => DRAWN,
                    other => other,
                };
                assert_eq!(now, want, "fill {fill}, id {id}");
            }
        }
    }
}
