//! IDX files (MNIST, Fashion-MNIST), parsed into a `MemorySource`: a big-endian header (0, 0,
//! type, ndim, then ndim u32 sizes) and the raw values. Raw or gzip-compressed (detected by the
//! gzip magic, not the name). Images are u8 [N, H, W] or [N, H, W, C]; labels u8 [N]. Both
//! files are read whole at open, so a sample read is a slice.

use std::io::Read;
use std::path::Path;

use super::MemorySource;
use crate::error::{Error, Result};

/// The IDX parser under the name callers know: `IdxSource::open` returns the `MemorySource` it
/// fills. Never a value, only a namespace.
pub enum IdxSource {}

/// Reads a file, un-gzipping it when it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, &e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(format!("{}: bad gzip data: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX header of u8 values; returns the dims and the offset of the data. The data
/// must be exactly as long as the dims say.
fn parse_idx(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize)> {
    let bad = |what: String| Error::format(format!("{}: not an IDX file: {what}", path.display()));
    if bytes.len() < 4 {
        return Err(bad(format!(
            "{} bytes is shorter than the header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "magic {:02x}{:02x} is not 0000",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad(format!("truncated header ({} bytes)", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dims {dims:?} overflow")))?;
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(Error::format(format!(
            "{}: IDX header says {dims:?} = {expected} bytes of data but the file has {actual}{}",
            path.display(),
            if actual < expected {
                " (truncated?)"
            } else {
                ""
            }
        )));
    }
    Ok((dims, header))
}

impl IdxSource {
    /// Reads an image file and its label file; errors name the file at fault.
    pub fn open(images: &Path, labels: &Path) -> Result<MemorySource> {
        let img = read_maybe_gzip(images)?;
        let (dims, off) = parse_idx(images, &img)?;
        let shape = match dims[..] {
            [_, h, w] => [h, w, 1],
            [_, h, w, c] => [h, w, c],
            _ => {
                return Err(Error::format(format!(
                    "{}: IDX images must have 3 or 4 dimensions, found {dims:?}",
                    images.display()
                )))
            }
        };
        if shape.contains(&0) {
            return Err(Error::format(format!(
                "{}: IDX images have a zero-sized dimension {dims:?}",
                images.display()
            )));
        }
        let n = dims[0];
        let lab = read_maybe_gzip(labels)?;
        let (ldims, loff) = parse_idx(labels, &lab)?;
        if ldims.len() != 1 || ldims[0] != n {
            return Err(Error::format(format!(
                "{}: labels have dims {ldims:?} but {} holds {n} images",
                labels.display(),
                images.display()
            )));
        }
        let mut pixels = img;
        pixels.drain(..off);
        pixels.shrink_to_fit();
        let labels = lab[loff..].iter().map(|&l| i64::from(l)).collect();
        Ok(MemorySource::from_parts(pixels, shape, labels))
    }
}

/// Writes an IDX file of u8 values (tests and examples make small datasets with it).
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) -> std::io::Result<()> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Scratch, Source};
    use crate::ErrorKind;

    fn pair(dir: &Path, n: u32) -> (std::path::PathBuf, std::path::PathBuf) {
        let (i, l) = (dir.join("img"), dir.join("lab"));
        let data: Vec<u8> = (0..n * 4).map(|x| x as u8).collect();
        write_idx(&i, &[n, 2, 2], &data).unwrap();
        write_idx(&l, &[n], &(0..n).map(|x| x as u8 % 10).collect::<Vec<_>>()).unwrap();
        (i, l)
    }

    #[test]
    fn reads_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = pair(dir.path(), 3);
        let s = IdxSource::open(&i, &l).unwrap();
        assert_eq!((s.len(), s.sample_shape()), (3, Some([2, 2, 1])));
        let mut scratch = Scratch::default();
        assert_eq!(s.read(2, &mut scratch).unwrap().pixels, &[8, 9, 10, 11]);
        assert_eq!(s.label(2), 2);
        // gzip the images
        let gz = dir.path().join("img.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut enc, &std::fs::read(&i).unwrap()).unwrap();
        enc.finish().unwrap();
        let mut s = IdxSource::open(&gz, &l).unwrap();
        assert_eq!(s.read(1, &mut scratch).unwrap().pixels, &[4, 5, 6, 7]);
        s.truncate(2);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn lying_and_broken_files_name_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = pair(dir.path(), 3);
        let bytes = std::fs::read(&i).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (bytes[..bytes.len() - 1].to_vec(), "truncated"),
            ([&bytes[..], &[0]].concat(), "the file has 13"),
            (vec![], "shorter than the header"),
            (b"GIF89a......".to_vec(), "magic"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "element type"),
            (vec![0x1f, 0x8b, 8, 0, 1, 2, 3], "gzip"),
        ];
        let bad = dir.path().join("bad");
        for (content, needle) in cases {
            std::fs::write(&bad, &content).unwrap();
            let e = IdxSource::open(&bad, &l).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Format);
            assert!(
                e.message().contains("bad") && e.message().contains(needle),
                "{e}"
            );
        }
        let e = IdxSource::open(&dir.path().join("missing"), &l)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("missing"));
        // label count mismatch
        write_idx(&bad, &[2], &[0, 1]).unwrap();
        let e = IdxSource::open(&i, &bad).err().unwrap();
        assert!(e.message().contains("3 images"), "{e}");
    }
}
