//! The book's checkpoint bytes: every per-sample array, in a fixed order, and their restore.
//! Checkpoints written by one build must load in the next, so the order below is a format.

use super::{ScoreBook, ScoreFields};
use crate::codec::{Reader, Writer};
use crate::sketch::MAX_EMBEDDING_DIM;

impl ScoreBook {
    /// Appends every per-sample array (for checkpoints).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.fields.0);
        w.u64(self.n as u64);
        // The record's fields, and the loss's moments, are written as the flat arrays they
        // once were (the format).
        w.u32s(&self.seen);
        w.u32s(&self.last_epoch);
        w.u32s(&self.times_kept);
        w.f32s(&self.loss_last);
        w.f32s(&self.loss_ema().to_vec());
        w.f32s(&self.loss_var().to_vec());
        w.f32s(&self.grad_norm_ema().to_vec());
        w.f32s(&self.el2n_sum().to_vec());
        w.u32s(&self.el2n_n().to_vec());
        w.u8s(&self.correct_last().to_vec());
        w.u8s(&self.ever_correct().to_vec());
        w.f32s(&self.forgets().to_vec());
        w.u64(self.sketch.in_dim() as u64);
        w.f32s(&self.embeddings);
        w.u8s(&self.has_embedding().to_vec());
        // Appended last, and only by books that hold it, so that every checkpoint written
        // before the field existed still has the same bytes and loads (see `decode`).
        if self.fields.contains(ScoreFields::STREAK) {
            w.u8s(&self.wrong_streak);
        }
    }

    /// Restores what `encode` wrote into this book, which must have the same N and fields;
    /// `None` when the bytes do not fit (the caller names the file). Nothing is changed then.
    pub(crate) fn decode(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let stored = ScoreFields(r.u32()?);
        // A book written before the noise guard's streak existed: the same fields less
        // STREAK. Its streaks start at 0.
        let without_streak = ScoreFields(self.fields.0 & !ScoreFields::STREAK.0);
        if (stored != self.fields && stored != without_streak) || r.u64()? != self.n as u64 {
            return None;
        }
        let mut b = self.clone();
        let same = |a: usize, b: usize| (a == b).then_some(());
        // Each stored length is compared with what this book holds before the array is read,
        // so a hostile length allocates nothing.
        macro_rules! load {
            ($field:ident, $read:ident) => {{
                same(usize::try_from(r.peek_len()?).ok()?, b.$field.len())?;
                let v = r.$read()?;
                b.$field = v;
            }};
        }
        // A field of the records: read as its flat array, then spread into them.
        macro_rules! load_record {
            ($field:ident, $read:ident) => {{
                same(usize::try_from(r.peek_len()?).ok()?, b.$field().len())?;
                let v = r.$read()?;
                b.records.set_all(b.records.slots.$field, &v);
            }};
        }
        load!(seen, u32s);
        load!(last_epoch, u32s);
        load!(times_kept, u32s);
        load!(loss_last, f32s);
        // The moments: read as their two flat arrays, then paired.
        let mut moment = || {
            same(usize::try_from(r.peek_len()?).ok()?, b.loss_moments.len())?;
            r.f32s()
        };
        let (ema, var) = (moment()?, moment()?);
        b.loss_moments = super::moments::pair_up(&ema, &var)?;
        load_record!(grad_norm_ema, f32s);
        load_record!(el2n_sum, f32s);
        load_record!(el2n_n, u32s);
        load_record!(correct_last, u8s);
        load_record!(ever_correct, u8s);
        load_record!(forgets, f32s);
        let in_dim = usize::try_from(r.u64()?).ok()?;
        if in_dim > MAX_EMBEDDING_DIM {
            return None;
        }
        let want = if in_dim > 0 && b.fields.contains(ScoreFields::EMBEDDING) {
            self.n.checked_mul(b.sketch.out_dim_for(in_dim))?
        } else {
            0
        };
        let stored_len = usize::try_from(r.peek_len()?).ok()?;
        if stored_len != want && stored_len != 0 {
            return None;
        }
        b.embeddings = r.f32s_max(want)?;
        if in_dim > 0 {
            b.sketch.fix_dim(in_dim);
        }
        load_record!(has_embedding, u8s);
        // A checksum says the bytes are the ones written, not that they make sense: values no
        // feedback can produce are refused too.
        let flags = |v: super::Column<'_, u8>, max: u8| v.iter().all(|x| x <= max);
        let valid = flags(b.has_embedding(), 1)
            && flags(b.correct_last(), 2)
            && flags(b.ever_correct(), 1)
            && b.embeddings.iter().all(|x| x.is_finite())
            && b.forgets().iter().all(|x| x.is_finite() && x >= 0.0)
            && b.grad_norm_ema()
                .iter()
                .all(|x| x.is_nan() || (x.is_finite() && x >= 0.0));
        if !valid {
            return None;
        }
        if stored.contains(ScoreFields::STREAK) {
            load!(wrong_streak, u8s);
        }
        b.streak_reported = b.wrong_streak.iter().any(|&s| s > 0);
        *self = b;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fb;
    use super::*;
    use crate::scores::Feedback;

    /// The bytes of a 2-sample EMBEDDING book whose stored embedding length is `in_dim` and
    /// whose embedding array claims `claimed` floats (holding none).
    fn hostile(in_dim: u64, claimed: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(ScoreFields::EMBEDDING.0);
        w.u64(2);
        for _ in 0..3 {
            w.u32s(&[0, 0]);
        }
        for _ in 0..5 {
            w.f32s(&[]);
        }
        w.u32s(&[]);
        w.u8s(&[]);
        w.u8s(&[]);
        w.f32s(&[]);
        w.u64(in_dim);
        w.u64(claimed);
        w.u8s(&[0, 0]);
        w.buf
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        let fresh = || ScoreBook::with_options(2, ScoreFields::EMBEDDING, 0.8, 4, 5);
        let mut b = fresh();
        // Nothing stored yet: accepted.
        assert!(b.decode(&mut Reader::new(&hostile(0, 0), 0)).is_some());
        for (in_dim, claimed) in [
            (1 << 40, 0),   // above the embedding length limit
            (8, 1 << 61),   // N × 4 floats expected, an exabyte claimed
            (8, u64::MAX),  // a length that overflows
            (3, 2 * 3 + 1), // off by one
        ] {
            let mut b = fresh();
            let bytes = hostile(in_dim, claimed);
            assert!(
                b.decode(&mut Reader::new(&bytes, 0)).is_none(),
                "{in_dim} {claimed}"
            );
            assert_eq!(b.embedding_dim(), 0, "nothing fixed on refusal");
        }
        // Values no feedback produces: a flag of 5, a NaN embedding.
        let mut b = fresh();
        let mut w = Writer::default();
        b.encode(&mut w);
        let last = w.buf.len() - 1;
        w.buf[last] = 5;
        assert!(b.decode(&mut Reader::new(&w.buf, 0)).is_none());
        let mut b = fresh();
        b.feedback(
            &crate::scores::Feedback {
                embedding: Some(&[1.0, 2.0]),
                embedding_dim: 2,
                ..super::super::tests::fb(&[0], &[1.0])
            },
            0,
        )
        .unwrap();
        b.embeddings[1] = f32::NAN;
        let mut w = Writer::default();
        b.encode(&mut w);
        assert!(fresh().decode(&mut Reader::new(&w.buf, 0)).is_none());
        // A per-sample array claiming more than N values.
        let mut w = Writer::default();
        w.u32(ScoreFields::NONE.0);
        w.u64(2);
        w.u64(1 << 60);
        assert!(ScoreBook::new(2, ScoreFields::NONE)
            .decode(&mut Reader::new(&w.buf, 0))
            .is_none());
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut b = ScoreBook::with_options(3, ScoreFields::ALL, 0.8, 2, 5);
        let f = Feedback {
            grad_norm: Some(&[1.0, 2.0]),
            el2n: Some(&[0.5, 0.25]),
            correct: Some(&[1, 0]),
            embedding: Some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            embedding_dim: 3,
            ..fb(&[0, 2], &[1.0, 2.0])
        };
        b.feedback(&f, 4).unwrap();
        let mut w = Writer::default();
        b.encode(&mut w);
        let mut c = ScoreBook::with_options(3, ScoreFields::ALL, 0.8, 2, 5);
        c.decode(&mut Reader::new(&w.buf, 0)).unwrap();
        assert_eq!(format!("{b:?}"), format!("{c:?}"));
        let mut wrong = ScoreBook::with_options(4, ScoreFields::ALL, 0.8, 2, 5);
        assert!(wrong.decode(&mut Reader::new(&w.buf, 0)).is_none());
        assert!(c
            .decode(&mut Reader::new(&w.buf[..w.buf.len() - 1], 0))
            .is_none());
    }

    /// The bytes of a book with every field after feedback of every kind over a few epochs,
    /// pinned by digest: the update rules and the checkpoint format give the same bytes in
    /// every build (the digest was taken before the record layout replaced the flat arrays).
    #[test]
    fn feedback_state_bytes_are_pinned() {
        use crate::rng::{Rng, Stream};
        let n = 1000;
        let mut b = ScoreBook::with_options(n, ScoreFields::ALL, 0.8, 4, 9);
        let mut ids: Vec<u64> = (0..n as u64).collect();
        for epoch in 0..4u64 {
            Rng::new(3, Stream::Shuffle, epoch, 0).shuffle(&mut ids);
            let unit = |what: u64, id: u64| {
                Rng::new(5, Stream::Select, what, id + epoch * n as u64).unit_f64() as f32
            };
            for chunk in ids[..700].chunks(64) {
                let loss: Vec<f32> = chunk.iter().map(|&i| unit(0, i) * 3.0).collect();
                let grad: Vec<f32> = chunk.iter().map(|&i| unit(1, i)).collect();
                let el2n: Vec<f32> = chunk.iter().map(|&i| unit(2, i)).collect();
                let correct: Vec<u8> = chunk.iter().map(|&i| (unit(3, i) < 0.6) as u8).collect();
                let emb: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| (0..6).map(move |j| (i * 7 + j) as f32 % 5.0))
                    .collect();
                let f = Feedback {
                    grad_norm: (epoch != 1).then_some(&grad[..]),
                    el2n: (epoch != 2).then_some(&el2n[..]),
                    correct: (epoch != 3).then_some(&correct[..]),
                    embedding: (epoch % 2 == 0).then_some(&emb[..]),
                    embedding_dim: if epoch % 2 == 0 { 6 } else { 0 },
                    ..fb(chunk, &loss)
                };
                b.feedback(&f, epoch).unwrap();
            }
            b.mark_kept(&ids[..300]);
        }
        let mut w = Writer::default();
        b.encode(&mut w);
        let mut h = crate::util::Fnv::default();
        h.write(&w.buf);
        assert_eq!((w.buf.len(), h.0), (60140, 1463253127900587153));
    }

    #[test]
    fn a_book_from_before_the_streaks_still_loads() {
        let old_fields = ScoreFields::LOSS_EMA;
        let mut old = ScoreBook::new(3, old_fields);
        old.feedback(&fb(&[0, 1], &[1.0, 2.0]), 0).unwrap();
        let mut w = Writer::default();
        old.encode(&mut w);
        let mut new = ScoreBook::new(3, old_fields.union(ScoreFields::STREAK));
        new.decode(&mut Reader::new(&w.buf, 0)).unwrap();
        assert_eq!(new.loss_ema(), old.loss_ema());
        assert_eq!(new.wrong_streak(), &[0, 0, 0]);
        // The streak's bytes are part of a new book's encoding, and round-trip.
        let f = Feedback {
            correct: Some(&[0, 0]),
            ..fb(&[0, 2], &[1.0, 2.0])
        };
        new.feedback(&f, 1).unwrap();
        let mut w = Writer::default();
        new.encode(&mut w);
        let mut back = ScoreBook::new(3, old_fields.union(ScoreFields::STREAK));
        back.decode(&mut Reader::new(&w.buf, 0)).unwrap();
        assert_eq!(back.wrong_streak(), &[1, 0, 1]);
        assert!(back.streak_reported());
    }
}
