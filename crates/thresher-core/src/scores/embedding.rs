//! Gradient embeddings (field EMBEDDING): their storage, fixed and allocated at the first
//! embedding, and the sketch that projects longer ones to `sketch_dim`.

use super::{Feedback, ScoreBook, ScoreFields};
use crate::error::Result;

impl ScoreBook {
    /// Before the first embedding is stored: allocates the N rows (fallibly: N × `sketch_dim`
    /// floats may not fit) and fixes the input length. A call with no ids fixes nothing.
    pub(super) fn prepare_embeddings(&mut self, fb: &Feedback<'_>) -> Result<()> {
        if !self.fields.contains(ScoreFields::EMBEDDING)
            || fb.embedding.is_none()
            || fb.ids.is_empty()
            || !self.embeddings.is_empty()
        {
            return Ok(());
        }
        let d = self.sketch.out_dim_for(fb.embedding_dim);
        let floats = self.n.checked_mul(d);
        let mut rows = Vec::new();
        if floats.is_none_or(|f| rows.try_reserve_exact(f).is_err()) {
            return Err(crate::Error::invalid(format!(
                "feedback: storing gradient embeddings of {d} floats for {} samples needs {} \
                 bytes, more than can be allocated here; lower config key `policy.sketch_dim`",
                self.n,
                floats.map_or("over 2^64".to_string(), |f| (f as u128 * 4).to_string())
            )));
        }
        rows.resize(self.n * d, 0.0);
        self.sketch.fix_dim(fb.embedding_dim);
        self.embeddings = rows;
        Ok(())
    }

    /// Stored embedding length (0 until the first embedding arrives).
    pub fn embedding_dim(&self) -> usize {
        self.sketch.out_dim()
    }

    /// The stored (sketched) embedding of `id`, if it has one.
    pub fn embedding(&self, id: usize) -> Option<&[f32]> {
        let d = self.embedding_dim();
        (self.has_embedding().get(id) == Some(1)).then(|| &self.embeddings[id * d..(id + 1) * d])
    }

    /// Stores a call's embeddings (sketched), when the book holds them.
    pub(super) fn store_embeddings(&mut self, fb: &Feedback<'_>) {
        let slots = self.records.slots;
        if let (true, Some(e), false) = (
            self.fields.contains(ScoreFields::EMBEDDING),
            fb.embedding,
            fb.ids.is_empty(),
        ) {
            // `prepare_embeddings` has fixed the length and allocated the rows.
            let d = self.sketch.out_dim();
            let rows: Vec<&[f32]> = e.chunks_exact(fb.embedding_dim).collect();
            let (embeddings, records) = (&mut self.embeddings, &mut self.records);
            self.sketch.project_rows(&rows, |i, projected| {
                let id = fb.ids[i] as usize;
                embeddings[id * d..(id + 1) * d].copy_from_slice(projected);
                records.set(slots.has_embedding, id, 1u8);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fb;
    use super::*;

    #[test]
    fn embeddings_are_stored_or_sketched() {
        let mut b = ScoreBook::with_options(3, ScoreFields::EMBEDDING, 0.8, 4, 7);
        let f = Feedback {
            embedding: Some(&[1.0, 2.0, 3.0, 4.0]),
            embedding_dim: 4,
            ..fb(&[2], &[1.0])
        };
        b.feedback(&f, 0).unwrap();
        assert_eq!(b.embedding(2), Some(&[1.0, 2.0, 3.0, 4.0][..]));
        assert_eq!(b.embedding(1), None);
        // A different length than the first call's is refused.
        let g = Feedback {
            embedding: Some(&[1.0, 2.0]),
            embedding_dim: 2,
            ..fb(&[1], &[1.0])
        };
        assert!(b
            .feedback(&g, 0)
            .unwrap_err()
            .message()
            .contains("embedding_dim"));
        // Longer than sketch_dim: projected to 4, the same way for the same seed.
        let long: Vec<f32> = (0..10).map(|x| x as f32).collect();
        let mut a = ScoreBook::with_options(1, ScoreFields::EMBEDDING, 0.8, 4, 7);
        let mut c = ScoreBook::with_options(1, ScoreFields::EMBEDDING, 0.8, 4, 7);
        let h = Feedback {
            embedding: Some(&long),
            embedding_dim: 10,
            ..fb(&[0], &[1.0])
        };
        a.feedback(&h, 0).unwrap();
        c.feedback(&h, 0).unwrap();
        assert_eq!(a.embedding_dim(), 4);
        assert_eq!(a.embedding(0), c.embedding(0));
    }

    #[test]
    fn an_empty_call_fixes_no_embedding_length() {
        let mut b = ScoreBook::with_options(3, ScoreFields::EMBEDDING, 0.8, 4, 7);
        let empty = Feedback {
            embedding: Some(&[]),
            embedding_dim: 1000,
            ..fb(&[], &[])
        };
        b.feedback(&empty, 0).unwrap();
        assert_eq!((b.embedding_dim(), b.embeddings().len()), (0, 0));
        let f = Feedback {
            embedding: Some(&[1.0, 2.0]),
            embedding_dim: 2,
            ..fb(&[1], &[1.0])
        };
        b.feedback(&f, 0).unwrap();
        assert_eq!(b.embedding(1), Some(&[1.0, 2.0][..]));
    }

    #[test]
    fn long_and_oversized_embeddings() {
        // Longer than the projection table kept between calls: generated per call, and the
        // same for the same seed.
        let d = 1 << 19;
        let long: Vec<f32> = (0..d).map(|i| (i % 7) as f32 - 3.0).collect();
        let h = Feedback {
            embedding: Some(&long),
            embedding_dim: d,
            ..fb(&[0], &[1.0])
        };
        let mut a = ScoreBook::with_options(2, ScoreFields::EMBEDDING, 0.8, 16, 7);
        let mut c = a.clone();
        a.feedback(&h, 0).unwrap();
        c.feedback(&h, 0).unwrap();
        assert_eq!(a.embedding(0).unwrap().len(), 16);
        assert_eq!(a.embedding(0), c.embedding(0));
        // Above the documented limit: refused by name, before anything is fixed.
        let mut b = ScoreBook::with_options(2, ScoreFields::EMBEDDING, 0.8, 16, 7);
        let huge = crate::sketch::MAX_EMBEDDING_DIM + 1;
        let e = b.validate(&Feedback {
            embedding: Some(&[]),
            embedding_dim: huge,
            ..fb(&[], &[])
        });
        assert!(e.unwrap_err().message().contains("embedding_dim"));
        // Storage that cannot be allocated is an error naming the key, not an abort.
        // (N = 2^40 is set by hand: the book's own arrays for it would not fit either.)
        let mut big = ScoreBook::with_options(2, ScoreFields::EMBEDDING, 0.8, 8192, 0);
        big.n = 1 << 40;
        let row = vec![0.5f32; 8192];
        let e = big
            .prepare_embeddings(&Feedback {
                embedding: Some(&row),
                embedding_dim: 8192,
                ..fb(&[0], &[1.0])
            })
            .unwrap_err();
        assert!(e.message().contains("policy.sketch_dim"), "{e}");
        assert_eq!(big.embedding_dim(), 0);
    }
}
