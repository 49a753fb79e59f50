//! Score files: a ScoreBook's per-sample scores on disk, to seed later runs (`scores_from`,
//! the Data Diet average over runs) and for the `thresher scores` CLI.
//!
//! Format, version 1, little-endian:
//!   magic "THRSCORE" · u32 version · u64 N · u32 column count ·
//!   per column: u16 name length, name (UTF-8), u8 type (1 f32, 2 u32, 3 u8), N values ·
//!   u32 CRC-32 of every byte before it.
//! Files are written atomically: a temporary file beside the target, fsync, rename, fsync of
//! the directory; a crash leaves either the old file or the new one, never a torn one.

use std::path::{Path, PathBuf};

use crate::codec::{check_crc, Reader, Writer};
use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};
use crate::util::write_atomic;

const MAGIC: &[u8; 8] = b"THRSCORE";
const VERSION: u32 = 1;
/// Magic, version, N and the column count.
const HEADER: usize = 24;
/// More columns than any ScoreBook writes (a dozen), few enough to bound a file's size.
const MAX_COLUMNS: u32 = 256;

/// One column of per-sample values.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    F32(Vec<f32>),
    U32(Vec<u32>),
    U8(Vec<u8>),
}

impl ColumnData {
    fn tag(&self) -> u8 {
        match self {
            ColumnData::F32(_) => 1,
            ColumnData::U32(_) => 2,
            ColumnData::U8(_) => 3,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F32(v) => v.len(),
            ColumnData::U32(v) => v.len(),
            ColumnData::U8(v) => v.len(),
        }
    }
    /// The values as f32 (counts converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            ColumnData::F32(v) => v.clone(),
            ColumnData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            ColumnData::U8(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// Per-sample scores of N samples, by column name.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreFile {
    pub n: usize,
    pub columns: Vec<(String, ColumnData)>,
}

impl ScoreFile {
    /// The scores a ScoreBook holds (the fields its policy allocated; embeddings excluded).
    pub fn from_book(book: &ScoreBook) -> ScoreFile {
        let mut columns = vec![
            ("seen".to_string(), ColumnData::U32(book.seen.clone())),
            (
                "times_kept".into(),
                ColumnData::U32(book.times_kept.clone()),
            ),
        ];
        let f = book.fields();
        if f.contains(ScoreFields::LOSS_LAST) {
            columns.push(("loss_last".into(), ColumnData::F32(book.loss_last.clone())));
        }
        if f.contains(ScoreFields::LOSS_EMA) {
            columns.push(("loss_ema".into(), ColumnData::F32(book.loss_ema().to_vec())));
            columns.push(("loss_var".into(), ColumnData::F32(book.loss_var().to_vec())));
        }
        if f.contains(ScoreFields::GRAD_NORM) {
            let g = book.grad_norm_ema().to_vec();
            columns.push(("grad_norm_ema".into(), ColumnData::F32(g)));
        }
        if f.contains(ScoreFields::EL2N) {
            let mean = book
                .el2n_sum()
                .iter()
                .zip(book.el2n_n())
                .map(|(s, n)| if n == 0 { f32::NAN } else { s / n as f32 })
                .collect();
            columns.push(("el2n".into(), ColumnData::F32(mean)));
        }
        if f.contains(ScoreFields::CORRECT) {
            let c = book.correct_last().to_vec();
            columns.push(("correct_last".into(), ColumnData::U8(c)));
            columns.push((
                "ever_correct".into(),
                ColumnData::U8(book.ever_correct().to_vec()),
            ));
            let forgets = book.forgets().to_vec();
            columns.push(("forgets".into(), ColumnData::F32(forgets)));
        }
        ScoreFile {
            n: book.len(),
            columns,
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Column names, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.u64(self.n as u64);
        w.u32(self.columns.len() as u32);
        for (name, data) in &self.columns {
            w.u16(name.len() as u16);
            w.bytes(name.as_bytes());
            w.u8(data.tag());
            match data {
                ColumnData::F32(v) => v.iter().for_each(|x| w.bytes(&x.to_le_bytes())),
                ColumnData::U32(v) => v.iter().for_each(|x| w.bytes(&x.to_le_bytes())),
                ColumnData::U8(v) => w.bytes(v),
            }
        }
        w.finish()
    }

    /// Parses a file's bytes; `path` only names the file in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ScoreFile> {
        let bad = |what: &str| {
            Error::format(format!(
                "{}: not a valid score file: {what}",
                path.display()
            ))
        };
        if bytes.len() < 28 || &bytes[..8] != MAGIC {
            return Err(bad("bad magic (expected THRSCORE)"));
        }
        let body =
            check_crc(bytes).ok_or_else(|| bad("checksum mismatch (truncated or corrupted)"))?;
        let mut r = Reader::new(body, 8);
        let version = r.u32().ok_or_else(|| bad("truncated header"))?;
        if version != VERSION {
            return Err(bad(&format!(
                "version {version}; this build reads {VERSION}"
            )));
        }
        let n = r.u64().ok_or_else(|| bad("truncated header"))? as usize;
        let count = r.u32().ok_or_else(|| bad("truncated header"))?;
        if count > MAX_COLUMNS {
            return Err(bad(&format!(
                "{count} columns, more than the {MAX_COLUMNS} a score file can have"
            )));
        }
        let mut columns = Vec::new();
        for _ in 0..count {
            let len = r.u16().ok_or_else(|| bad("truncated column"))? as usize;
            let name = r.take(len).ok_or_else(|| bad("truncated column name"))?;
            let name =
                String::from_utf8(name.to_vec()).map_err(|_| bad("column name not UTF-8"))?;
            let tag = r.u8().ok_or_else(|| bad("truncated column"))?;
            let size = match tag {
                1 | 2 => 4,
                3 => 1,
                t => return Err(bad(&format!("column `{name}` has unknown type {t}"))),
            };
            let raw = n
                .checked_mul(size)
                .and_then(|len| r.take(len))
                .ok_or_else(|| bad(&format!("column `{name}` is shorter than N = {n}")))?;
            let data = match tag {
                1 => ColumnData::F32(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                ),
                2 => ColumnData::U32(
                    raw.chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                ),
                _ => ColumnData::U8(raw.to_vec()),
            };
            columns.push((name, data));
        }
        if !r.done() {
            return Err(bad("trailing bytes after the last column"));
        }
        Ok(ScoreFile { n, columns })
    }

    /// Reads a score file: only a regular file, and only when its size is within what its
    /// header implies (N values per column, at most `MAX_COLUMNS` columns), checked before the
    /// body is read or allocated.
    pub fn read(path: &Path) -> Result<ScoreFile> {
        Self::read_for(path, None)
    }

    /// `read`, for a dataset of `n` samples when `n` is given: a file of another N is refused
    /// from its header, before its body is read.
    pub fn read_for(path: &Path, n: Option<usize>) -> Result<ScoreFile> {
        let (stored_n, max) = Self::size_bound(path)?;
        if let Some(n) = n.filter(|&n| n as u64 != stored_n) {
            return Err(Error::invalid(format!(
                "{}: score file holds {stored_n} samples but the dataset has {n}",
                path.display()
            )));
        }
        let bytes = crate::util::read_bounded(path, max, "score file")?;
        Self::from_bytes(path, &bytes)
    }

    /// N and the most bytes the file at `path` may hold, from its header (magic, version, N,
    /// column count); errors name the file.
    fn size_bound(path: &Path) -> Result<(u64, u64)> {
        use std::io::Read;
        let bad = |what: String| {
            Error::format(format!(
                "{}: not a valid score file: {what}",
                path.display()
            ))
        };
        let (file, _) = crate::util::open_regular(path, "score file")?;
        let mut header = Vec::with_capacity(HEADER);
        file.take(HEADER as u64)
            .read_to_end(&mut header)
            .map_err(|e| Error::io(path, &e))?;
        if header.len() < HEADER || &header[..8] != MAGIC {
            return Err(bad("bad magic (expected THRSCORE)".into()));
        }
        let mut r = Reader::new(&header, 12);
        let n = r.u64().unwrap_or(0);
        let count = r.u32().unwrap_or(0);
        if count > MAX_COLUMNS {
            return Err(bad(format!(
                "{count} columns, more than the {MAX_COLUMNS} a score file can have"
            )));
        }
        // Per column: name length, name, type, and N values of at most 4 bytes; then the CRC.
        let per_column = n
            .checked_mul(4)
            .and_then(|v| v.checked_add(2 + u16::MAX as u64 + 1))
            .ok_or_else(|| bad(format!("N = {n} is impossibly large")))?;
        let max = (count as u64)
            .saturating_mul(per_column)
            .saturating_add(HEADER as u64 + 4);
        Ok((n, max))
    }

    /// Writes atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }

    /// The Data Diet average over runs: each f32 column is the per-sample mean over the files
    /// where it is not NaN; counts (`seen`, `times_kept`) are summed; `ever_correct` and
    /// `correct_last` take the maximum. Every file must have the same N and columns.
    pub fn merge(files: &[(PathBuf, ScoreFile)]) -> Result<ScoreFile> {
        let (first_path, first) = files
            .first()
            .ok_or_else(|| Error::invalid("merge: no score files given"))?;
        for (p, f) in &files[1..] {
            if f.n != first.n || f.names() != first.names() {
                return Err(Error::invalid(format!(
                    "merge: {} has N = {} and columns {:?} but {} has N = {} and columns {:?}",
                    p.display(),
                    f.n,
                    f.names(),
                    first_path.display(),
                    first.n,
                    first.names()
                )));
            }
        }
        let mut columns = Vec::new();
        for (ci, (name, data)) in first.columns.iter().enumerate() {
            let all = files.iter().map(|(_, f)| &f.columns[ci].1);
            let merged = match data {
                ColumnData::F32(_) => {
                    let mut sum = vec![0f64; first.n];
                    let mut cnt = vec![0u32; first.n];
                    for c in all {
                        if let ColumnData::F32(v) = c {
                            for (i, &x) in v.iter().enumerate() {
                                if !x.is_nan() {
                                    sum[i] += x as f64;
                                    cnt[i] += 1;
                                }
                            }
                        }
                    }
                    ColumnData::F32(
                        sum.iter()
                            .zip(&cnt)
                            .map(|(&s, &c)| {
                                if c == 0 {
                                    f32::NAN
                                } else {
                                    (s / c as f64) as f32
                                }
                            })
                            .collect(),
                    )
                }
                ColumnData::U32(_) => {
                    let mut out = vec![0u32; first.n];
                    for c in all {
                        if let ColumnData::U32(v) = c {
                            out.iter_mut()
                                .zip(v)
                                .for_each(|(o, &x)| *o = o.saturating_add(x));
                        }
                    }
                    ColumnData::U32(out)
                }
                ColumnData::U8(_) => {
                    let mut out = vec![0u8; first.n];
                    for c in all {
                        if let ColumnData::U8(v) = c {
                            out.iter_mut().zip(v).for_each(|(o, &x)| *o = (*o).max(x));
                        }
                    }
                    ColumnData::U8(out)
                }
            };
            columns.push((name.clone(), merged));
        }
        Ok(ScoreFile {
            n: first.n,
            columns,
        })
    }

    /// Copies the file's scores into `book` (the fields it allocated), so a static policy can
    /// select from scores of earlier runs. `path` names the file in errors.
    pub fn seed_book(&self, path: &Path, book: &mut ScoreBook) -> Result<()> {
        if self.n != book.len() {
            return Err(Error::invalid(format!(
                "{}: score file holds {} samples but the dataset has {}",
                path.display(),
                self.n,
                book.len()
            )));
        }
        let f = book.fields();
        let need = |col: &str| -> Result<Vec<f32>> {
            self.column(col).map(|c| c.to_f32()).ok_or_else(|| {
                Error::invalid(format!(
                    "{}: score file has no `{col}` column (it has {:?}); this policy needs it",
                    path.display(),
                    self.names()
                ))
            })
        };
        if let Some(ColumnData::U32(seen)) = self.column("seen") {
            book.seen.copy_from_slice(seen);
        }
        if f.contains(ScoreFields::LOSS_LAST) {
            book.loss_last = need("loss_last")?;
        }
        if f.contains(ScoreFields::LOSS_EMA) {
            let (ema, var) = (need("loss_ema")?, need("loss_var")?);
            book.loss_moments = crate::scores::pair_up(&ema, &var).ok_or_else(|| {
                Error::invalid(format!(
                    "{}: score file's `loss_ema` and `loss_var` columns differ in length",
                    path.display()
                ))
            })?;
        }
        if f.contains(ScoreFields::GRAD_NORM) {
            let g = need("grad_norm_ema")?;
            book.records.set_all(book.records.slots.grad_norm_ema, &g);
        }
        if f.contains(ScoreFields::EL2N) {
            let mean = need("el2n")?;
            for (i, m) in mean.into_iter().enumerate() {
                let (s, n) = if m.is_nan() { (0.0, 0) } else { (m, 1) };
                book.records.set(book.records.slots.el2n_sum, i, s);
                book.records.set(book.records.slots.el2n_n, i, n as u32);
            }
        }
        if f.contains(ScoreFields::CORRECT) {
            let forgets = need("forgets")?;
            book.records.set_all(book.records.slots.forgets, &forgets);
            let slots = book.records.slots;
            for (col, slot) in [
                ("ever_correct", slots.ever_correct),
                ("correct_last", slots.correct_last),
            ] {
                let v: Vec<u8> = need(col)?.into_iter().map(|x| x as u8).collect();
                book.records.set_all(slot, &v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::Feedback;

    fn book() -> ScoreBook {
        let mut b = ScoreBook::new(4, ScoreFields::ALL);
        let f = Feedback {
            ids: &[0, 2],
            loss: &[1.5, 0.5],
            el2n: Some(&[0.25, 0.75]),
            grad_norm: Some(&[2.0, 3.0]),
            correct: Some(&[1, 0]),
            ..Default::default()
        };
        b.feedback(&f, 0).unwrap();
        b
    }

    #[test]
    fn hostile_files_are_refused_before_their_body_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = ScoreFile::from_book(&book()).to_bytes();
        let path = dir.path().join("s");
        // Special files: never read.
        for special in [Path::new("/dev/zero"), dir.path()] {
            let e = ScoreFile::read(special).unwrap_err();
            assert!(e.message().contains("not a regular file"), "{e}");
        }
        // Larger than the header allows (N = 4, 12 columns): refused by size.
        let mut long = good.clone();
        long.resize(1 << 22, 0);
        std::fs::write(&path, &long).unwrap();
        let e = ScoreFile::read(&path).unwrap_err();
        assert!(e.message().contains("more than the"), "{e}");
        // A header claiming too many columns.
        let mut many = good.clone();
        many[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &many).unwrap();
        let e = ScoreFile::read(&path).unwrap_err();
        assert!(e.message().contains("columns"), "{e}");
        // Another N than the dataset's: refused from the header.
        std::fs::write(&path, &good).unwrap();
        let e = ScoreFile::read_for(&path, Some(5)).unwrap_err();
        assert!(e.message().contains("holds 4 samples"), "{e}");
        assert_eq!(ScoreFile::read_for(&path, Some(4)).unwrap().n, 4);
        // A header claiming N = 2^61 on a short file: refused as short, nothing allocated.
        let mut huge = good;
        huge[12..20].copy_from_slice(&(1u64 << 61).to_le_bytes());
        let body = huge.len() - 4;
        let crc = crc32fast::hash(&huge[..body]);
        huge[body..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        let e = ScoreFile::read(&path).unwrap_err();
        assert!(e.message().contains("shorter than N"), "{e}");
    }

    #[test]
    fn round_trip_and_seed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.scores");
        let f = ScoreFile::from_book(&book());
        f.write(&path).unwrap();
        let g = ScoreFile::read(&path).unwrap();
        assert_eq!(format!("{f:?}"), format!("{g:?}")); // NaN-tolerant equality
        let mut fresh = ScoreBook::new(4, ScoreFields::EL2N.union(ScoreFields::CORRECT));
        g.seed_book(&path, &mut fresh).unwrap();
        assert_eq!(fresh.el2n_sum().get(2), Some(0.75));
        assert_eq!(fresh.el2n_n().get(1), Some(0));
        assert_eq!(fresh.seen, vec![1, 0, 1, 0]);
        assert_eq!(fresh.ever_correct().get(0), Some(1));
        let mut wrong = ScoreBook::new(5, ScoreFields::EL2N);
        assert!(g
            .seed_book(&path, &mut wrong)
            .unwrap_err()
            .message()
            .contains("5"));
    }

    #[test]
    fn corrupt_and_truncated_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.scores");
        let bytes = ScoreFile::from_book(&book()).to_bytes();
        for (i, bad) in [
            bytes[..bytes.len() - 3].to_vec(),
            bytes[..20].to_vec(),
            {
                let mut b = bytes.clone();
                b[40] ^= 1;
                b
            },
            b"hello".to_vec(),
        ]
        .into_iter()
        .enumerate()
        {
            std::fs::write(&path, bad).unwrap();
            let e = ScoreFile::read(&path).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Format, "case {i}");
            assert!(e.message().contains("s.scores"));
        }
    }

    #[test]
    fn merge_averages_floats_and_ignores_nan() {
        let a = ScoreFile::from_book(&book());
        let mut b2 = book();
        b2.feedback(
            &Feedback {
                ids: &[1],
                loss: &[1.0],
                el2n: Some(&[0.5]),
                ..Default::default()
            },
            1,
        )
        .unwrap();
        let b = ScoreFile::from_book(&b2);
        let m = ScoreFile::merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        let el2n = m.column("el2n").unwrap().to_f32();
        assert_eq!((el2n[0], el2n[1], el2n[2]), (0.25, 0.5, 0.75));
        assert!(el2n[3].is_nan());
        assert_eq!(m.column("seen").unwrap().to_f32(), vec![2.0, 1.0, 2.0, 0.0]);
    }
}
