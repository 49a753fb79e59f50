//! The loss's running moments, `loss_ema` and `loss_var`, held as one pair per id: feedback
//! writes both for every id it names, in random id order, so on a book larger than the cache a
//! pair is one cache miss where two arrays were two; UCB's score reads both for every id. Each
//! field is read through `Moment`, a view of one half of the pairs that indexes and iterates
//! like a slice of f32.

use std::ops::Index;

/// One of the two moments of every id: `loss_ema` (`which` 0) or `loss_var` (1). `len()` is N,
/// or 0 when the book does not hold the moments.
///
/// cbindgen:ignore
#[derive(Clone, Copy)]
pub struct Moment<'a> {
    pub(super) pairs: &'a [[f32; 2]],
    pub(super) which: usize,
}

impl<'a> Moment<'a> {
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
    /// The value of `id`, `None` when out of range or not held.
    pub fn get(&self, id: usize) -> Option<f32> {
        self.pairs.get(id).map(|p| p[self.which])
    }
    /// Every id's value, in id order.
    pub fn iter(&self) -> MomentIter<'a> {
        MomentIter {
            pairs: self.pairs.iter(),
            which: self.which,
        }
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.iter().copied().collect()
    }
}

impl Index<usize> for Moment<'_> {
    type Output = f32;
    #[inline]
    fn index(&self, id: usize) -> &f32 {
        &self.pairs[id][self.which]
    }
}

/// Equal when the values are, as two `&[f32]` compare (NaN unequal to itself).
impl PartialEq for Moment<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Moment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Moment<'a> {
    type Item = &'a f32;
    type IntoIter = MomentIter<'a>;
    fn into_iter(self) -> MomentIter<'a> {
        self.iter()
    }
}

/// The values of a `Moment`, in id order.
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct MomentIter<'a> {
    pairs: std::slice::Iter<'a, [f32; 2]>,
    which: usize,
}

impl<'a> Iterator for MomentIter<'a> {
    type Item = &'a f32;
    #[inline]
    fn next(&mut self) -> Option<&'a f32> {
        let which = self.which;
        self.pairs.next().map(|p| &p[which])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pairs.size_hint()
    }
}

impl ExactSizeIterator for MomentIter<'_> {}

/// Pairs from the two moments' columns (a checkpoint's or a score file's), `None` when their
/// lengths differ.
pub(crate) fn pair_up(ema: &[f32], var: &[f32]) -> Option<Vec<[f32; 2]>> {
    (ema.len() == var.len()).then(|| ema.iter().zip(var).map(|(&e, &v)| [e, v]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_reads_its_half_of_the_pairs() {
        let pairs = [[1.0, 2.0], [3.0, f32::NAN], [5.0, 6.0]];
        let (ema, var) = (
            Moment {
                pairs: &pairs,
                which: 0,
            },
            Moment {
                pairs: &pairs,
                which: 1,
            },
        );
        assert_eq!((ema.len(), ema[2], var[0], ema.get(3)), (3, 5.0, 2.0, None));
        assert_eq!(ema.to_vec(), vec![1.0, 3.0, 5.0]);
        assert_eq!(var.iter().len(), 3);
        assert!(var[1].is_nan() && var != var);
        assert_eq!(ema, ema);
        assert_eq!(format!("{ema:?}"), "[1.0, 3.0, 5.0]");
        assert_eq!(
            pair_up(&[1.0, 3.0], &[2.0, 4.0]),
            Some(vec![[1.0, 2.0], [3.0, 4.0]])
        );
        assert_eq!(pair_up(&[1.0], &[]), None);
        let empty = Moment {
            pairs: &[],
            which: 1,
        };
        assert!(empty.is_empty() && empty.to_vec().is_empty());
    }
}
