//! The book's per-id record: the fields that feedback writes for an id from the signals besides
//! the loss (`grad_norm_ema`, `el2n_sum`, `el2n_n`, `forgets`, `correct_last`, `ever_correct`,
//! `has_embedding`), held together, one record per id. The streak, which the noise guard reads
//! in the selection loop, and the always-present counters stay flat arrays (a static policy's
//! scoring pass then reads about as many bytes as before). Feedback arrives in random id order, so on a book larger than the cache each
//! field of each id is a cache miss: with these fields in one record an id's update touches
//! one line for all of them instead of one per field (the ingest is bound by how many lines
//! are in flight). The fields policies scan whole (`seen`, the losses) stay flat arrays.
//!
//! A record holds only the fields the book was built with, in 32-bit words: `grad_norm_ema`,
//! `el2n_sum` and `el2n_n`, `forgets`, and one word of flag bytes (`correct_last`,
//! `ever_correct`, `has_embedding`); a book with none of them has no records. Its length is rounded up
//! to a power of two words (at most 8) and the storage is 32-byte aligned, so no record ever
//! crosses a cache line. Values are stored as their bits (`f32::to_bits`), so reading one back
//! gives exactly what was written.

use std::marker::PhantomData;

use super::ScoreFields;

/// Words in a `Block`.
const WORDS: usize = 8;

/// 32 aligned bytes: a record of a power of two words up to 8 always lies inside one block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub(crate) struct Block([u32; WORDS]);

/// Where a field lives in the record: its word, and for a one-byte field its byte in that word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    word: usize,
    byte: u32,
}

impl Slot {
    /// The field's value in `rec` (an id's record).
    #[inline(always)]
    pub(crate) fn get<T: Cell>(self, rec: &[u32]) -> T {
        T::read(rec[self.word], self.byte)
    }
    /// The word of the record the field is in.
    #[inline(always)]
    pub(crate) fn word(self) -> usize {
        self.word
    }
    /// The field's value in its word (`word`, as `rec[self.word()]`).
    #[inline(always)]
    pub(crate) fn of<T: Cell>(self, word: u32) -> T {
        T::read(word, self.byte)
    }
    /// Writes the field's value into `rec`.
    #[inline(always)]
    pub(crate) fn put<T: Cell>(self, rec: &mut [u32], v: T) {
        T::write(&mut rec[self.word], self.byte, v)
    }
}

/// The record's fields; `None` for those the book does not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    pub(crate) grad_norm_ema: Option<Slot>,
    pub(crate) el2n_sum: Option<Slot>,
    pub(crate) el2n_n: Option<Slot>,
    pub(crate) forgets: Option<Slot>,
    pub(crate) correct_last: Option<Slot>,
    pub(crate) ever_correct: Option<Slot>,
    pub(crate) has_embedding: Option<Slot>,
}

/// A value a record field holds: read from and written into its word.
///
/// cbindgen:ignore
pub trait Cell: Copy {
    #[doc(hidden)]
    fn read(word: u32, byte: u32) -> Self;
    #[doc(hidden)]
    fn write(word: &mut u32, byte: u32, v: Self);
}

impl Cell for u32 {
    #[inline(always)]
    fn read(word: u32, _: u32) -> u32 {
        word
    }
    #[inline(always)]
    fn write(word: &mut u32, _: u32, v: u32) {
        *word = v;
    }
}

impl Cell for f32 {
    #[inline(always)]
    fn read(word: u32, _: u32) -> f32 {
        f32::from_bits(word)
    }
    #[inline(always)]
    fn write(word: &mut u32, _: u32, v: f32) {
        *word = v.to_bits();
    }
}

impl Cell for u8 {
    #[inline(always)]
    fn read(word: u32, byte: u32) -> u8 {
        (word >> (8 * byte)) as u8
    }
    #[inline(always)]
    fn write(word: &mut u32, byte: u32, v: u8) {
        let shift = 8 * byte;
        *word = (*word & !(0xff << shift)) | (v as u32) << shift;
    }
}

/// One record per id.
#[derive(Clone, Debug)]
pub(crate) struct Records {
    n: usize,
    /// log2 of the words per record.
    shift: u32,
    blocks: Vec<Block>,
    pub(crate) slots: Slots,
}

impl Records {
    /// The records of `n` ids holding what `fields` needs, each field at its initial value.
    pub(crate) fn new(n: usize, fields: ScoreFields) -> Records {
        let mut slots = Slots::default();
        let mut template = [0u32; WORDS];
        let mut words = 0;
        let mut word = |init: u32| {
            template[words] = init;
            words += 1;
            Some(Slot {
                word: words - 1,
                byte: 0,
            })
        };
        if fields.contains(ScoreFields::GRAD_NORM) {
            slots.grad_norm_ema = word(f32::NAN.to_bits());
        }
        if fields.contains(ScoreFields::EL2N) {
            slots.el2n_sum = word(0);
            slots.el2n_n = word(0);
        }
        let correct = fields.contains(ScoreFields::CORRECT);
        if correct {
            slots.forgets = word(0);
        }
        let embedding = fields.contains(ScoreFields::EMBEDDING);
        if correct || embedding {
            // 2 = never reported.
            let flags = word(if correct { 2 } else { 0 }).map(|s| s.word);
            let byte = |on: bool, byte: u32| {
                on.then(|| Slot {
                    word: flags.unwrap(),
                    byte,
                })
            };
            slots.correct_last = byte(correct, 0);
            slots.ever_correct = byte(correct, 1);
            slots.has_embedding = byte(embedding, 3);
        }
        if words == 0 {
            return Records {
                n,
                shift: 0,
                blocks: Vec::new(),
                slots,
            };
        }
        let shift = words.next_power_of_two().trailing_zeros();
        // The template block: the record repeated.
        let per = 1 << shift;
        let mut block = Block::default();
        for (i, w) in block.0.iter_mut().enumerate() {
            *w = template[i % per];
        }
        let blocks = crate::util::huge::filled((n << shift).div_ceil(WORDS), block);
        Records {
            n,
            shift,
            blocks,
            slots,
        }
    }

    /// Whether the book holds no field of the records (then there is no record).
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Bytes the records take.
    pub(crate) fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }

    /// The words of `id`'s record (`id` < N, not checked here beyond the storage's bounds).
    #[inline(always)]
    pub(crate) fn record_mut(&mut self, id: usize) -> &mut [u32] {
        let (i, per) = (id << self.shift, 1 << self.shift);
        let at = i % WORDS;
        &mut self.blocks[i / WORDS].0[at..at + per]
    }

    /// Every record's words, in id order.
    fn words(&self) -> &[u32] {
        // SAFETY: `Block` is `repr(C)` over `[u32; WORDS]` (no padding, alignment above a
        // u32's), so `blocks` is `blocks.len() × WORDS` initialised, aligned u32s, borrowed
        // for as long as `self` is.
        unsafe {
            std::slice::from_raw_parts(
                self.blocks.as_ptr().cast::<u32>(),
                self.blocks.len() * WORDS,
            )
        }
    }

    /// Every id's record in id order as one slice of words, and the words per record (1, 2, 4
    /// or 8): a sequential walk for a pass that reads several fields of every id (a `Column`
    /// per field would walk the records once per field, with a stride), which can take the
    /// records as fixed-size arrays (`as_chunks`). Empty when the book has no records.
    pub(crate) fn flat_rows(&self) -> (&[u32], usize) {
        if self.blocks.is_empty() {
            return (&[], 1);
        }
        (&self.words()[..self.n << self.shift], 1 << self.shift)
    }

    /// Hints that `id`'s record will be written soon.
    #[inline(always)]
    pub(crate) fn prefetch(&self, id: usize) {
        if self.blocks.is_empty() {
            return;
        }
        crate::util::prefetch(self.blocks.as_ptr().cast::<u32>(), id << self.shift);
    }

    /// One field of every id (empty when the book does not hold it).
    pub(crate) fn column<T: Cell>(&self, slot: Option<Slot>) -> Column<'_, T> {
        Column {
            records: self,
            slot,
            _value: PhantomData,
        }
    }

    /// Writes `id`'s `slot` (nothing when the book does not hold the field).
    #[inline(always)]
    pub(crate) fn set<T: Cell>(&mut self, slot: Option<Slot>, id: usize, v: T) {
        if let Some(s) = slot {
            T::write(&mut self.record_mut(id)[s.word], s.byte, v);
        }
    }

    /// Overwrites a whole field from `values` (one per id, in id order; nothing when the book
    /// does not hold the field).
    pub(crate) fn set_all<T: Cell>(&mut self, slot: Option<Slot>, values: &[T]) {
        for (id, &v) in values.iter().enumerate().take(self.n) {
            self.set(slot, id, v);
        }
    }
}

/// One field of the book's per-id records, indexed by id: `len()` is N, or 0 when the book
/// does not hold the field. Values are read by copy (`get`, `iter`), not borrowed.
///
/// cbindgen:ignore
#[derive(Clone, Copy)]
pub struct Column<'a, T> {
    records: &'a Records,
    slot: Option<Slot>,
    _value: PhantomData<T>,
}

impl<'a, T: Cell> Column<'a, T> {
    pub fn len(&self) -> usize {
        if self.slot.is_some() {
            self.records.n
        } else {
            0
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value of `id`, `None` when out of range or not held.
    #[inline]
    pub fn get(&self, id: usize) -> Option<T> {
        let s = self.slot?;
        if id >= self.records.n {
            return None;
        }
        let i = (id << self.records.shift) + s.word;
        Some(T::read(self.records.blocks[i / WORDS].0[i % WORDS], s.byte))
    }
    /// Every id's value, in id order.
    pub fn iter(&self) -> ColumnIter<'a, T> {
        let (words, byte) = match self.slot {
            Some(s) => (self.records.words().get(s.word..).unwrap_or(&[]), s.byte),
            None => (&[][..], 0),
        };
        ColumnIter {
            words: words
                .iter()
                .step_by(1 << self.records.shift)
                .take(self.len()),
            byte,
            _value: PhantomData,
        }
    }
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }
}

impl<T: Cell + std::fmt::Debug> std::fmt::Debug for Column<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Cell> IntoIterator for Column<'a, T> {
    type Item = T;
    type IntoIter = ColumnIter<'a, T>;
    fn into_iter(self) -> ColumnIter<'a, T> {
        self.iter()
    }
}

/// The values of a `Column`, in id order (a strided walk over the records).
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct ColumnIter<'a, T> {
    words: std::iter::Take<std::iter::StepBy<std::slice::Iter<'a, u32>>>,
    byte: u32,
    _value: PhantomData<T>,
}

impl<T: Cell> Iterator for ColumnIter<'_, T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        self.words.next().map(|&w| T::read(w, self.byte))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.words.size_hint()
    }
}

impl<T: Cell> ExactSizeIterator for ColumnIter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_never_cross_a_line_and_fields_keep_their_bits() {
        for fields in [ScoreFields::NONE, ScoreFields::CORRECT, ScoreFields::ALL] {
            let mut r = Records::new(37, fields);
            assert!((r.blocks.as_ptr() as usize).is_multiple_of(32));
            assert!(1 << r.shift <= WORDS);
            let weird = f32::from_bits(0x7fc0_1234);
            r.set(r.slots.el2n_n, 36, 5u32);
            r.set(r.slots.grad_norm_ema, 3, weird);
            r.set(r.slots.correct_last, 3, 0u8);
            r.set(r.slots.has_embedding, 3, 1u8);
            let count: Column<u32> = r.column(r.slots.el2n_n);
            assert_eq!(r.is_empty(), fields == ScoreFields::NONE);
            let g: Column<f32> = r.column(r.slots.grad_norm_ema);
            let embedded: Column<u8> = r.column(r.slots.has_embedding);
            let correct: Column<u8> = r.column(r.slots.correct_last);
            if fields == ScoreFields::ALL {
                assert_eq!(g.get(3).map(f32::to_bits), Some(weird.to_bits()));
                assert!(g.get(2).unwrap().is_nan());
                assert_eq!((embedded.get(3), embedded.get(2)), (Some(1), Some(0)));
                assert_eq!((correct.get(3), correct.get(2)), (Some(0), Some(2)));
                assert_eq!(correct.len(), 37);
                assert_eq!(
                    (count.get(36), count.get(35), count.get(37)),
                    (Some(5), Some(0), None)
                );
                let all = count.to_vec();
                assert_eq!((all.len(), all[36], all[0]), (37, 5, 0));
            } else {
                assert!(g.is_empty() && g.get(3).is_none() && embedded.iter().len() == 0);
                assert!(count.to_vec().is_empty());
            }
        }
    }
}
