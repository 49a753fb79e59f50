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

/// Deflate's largest compression ratio (a run of one byte value: 258-byte matches of one bit
/// each, about 1032:1), so a gzip file of n bytes inflates to at most n × this.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads an IDX file of u8 values, raw or gzip-compressed, and returns its dims and data. Only a
/// regular file is read (see `open_regular`), and nothing beyond what its header announces:
/// the header is parsed first, a raw file's size must then match it before the data is read,
/// and a compressed stream is decompressed only when the file could hold the announced size
/// (`MAX_DEFLATE_RATIO`), into memory reserved for that size, and only up to one byte past it.
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let (mut file, len) = crate::util::open_regular(path, "IDX file")?;
    let not_idx =
        |what: String| Error::format(format!("{}: not an IDX file: {what}", path.display()));
    let mut magic = Vec::with_capacity(2);
    (&mut file)
        .take(2)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io(path, &e))?;
    let gzip = magic == [0x1f, 0x8b];
    let head = std::io::Cursor::new(magic).chain(file);
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else {
        Box::new(head)
    };
    let read_err = |e: std::io::Error| {
        if gzip {
            Error::format(format!("{}: bad gzip data: {e}", path.display()))
        } else {
            Error::io(path, &e)
        }
    };
    // Reads up to `n` bytes: fewer only at the end of the stream.
    let mut read_up_to = |n: u64, out: &mut Vec<u8>| -> Result<usize> {
        (&mut reader).take(n).read_to_end(out).map_err(read_err)
    };
    let mut header = Vec::with_capacity(4 + 4 * 255);
    let got = read_up_to(4, &mut header)?;
    if got < 4 {
        return Err(not_idx(format!("{got} bytes is shorter than the header")));
    }
    if header[0] != 0 || header[1] != 0 {
        return Err(not_idx(format!(
            "magic {:02x}{:02x} is not 0000",
            header[0], header[1]
        )));
    }
    if header[2] != 0x08 {
        return Err(not_idx(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            header[2]
        )));
    }
    let ndim = header[3] as usize;
    if ndim == 0 {
        return Err(not_idx("zero dimensions".into()));
    }
    let got = read_up_to(4 * ndim as u64, &mut header)?;
    if got < 4 * ndim {
        return Err(not_idx(format!("truncated header ({} bytes)", 4 + got)));
    }
    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| not_idx(format!("dims {dims:?} overflow")))?;
    let mismatch = |actual: String, short: bool| {
        Error::format(format!(
            "{}: IDX header says {dims:?} = {expected} bytes of data but the file has {actual}{}",
            path.display(),
            if short { " (truncated?)" } else { "" }
        ))
    };
    let mut data = Vec::new();
    if !gzip {
        // The size is known: a lying header (or /dev/zero's endless bytes) is refused here,
        // before the data is read.
        let actual = len.saturating_sub(header.len() as u64);
        if actual != expected as u64 {
            return Err(mismatch(actual.to_string(), actual < expected as u64));
        }
    } else if expected as u64 > len.saturating_mul(MAX_DEFLATE_RATIO) {
        // The stream cannot hold what the header announces: refused before inflating, so a
        // small file of a long run of zeros (a "gzip bomb") is not inflated into memory.
        return Err(mismatch(
            format!(
                "at most {} (a {len}-byte gzip file inflates to at most {MAX_DEFLATE_RATIO}× that)",
                len.saturating_mul(MAX_DEFLATE_RATIO)
            ),
            true,
        ));
    }
    // Reserved before anything is inflated: what the stream yields never exceeds it (the read
    // below stops one byte past it), so an announced size this process cannot hold is refused
    // here, and none that it can makes it grow later.
    data.try_reserve_exact(expected).map_err(|_| {
        Error::format(format!(
            "{}: {expected} bytes of IDX data: too large to load",
            path.display()
        ))
    })?;
    let actual = read_up_to(expected as u64 + 1, &mut data)?;
    if actual != expected {
        let actual = if actual > expected {
            format!("more than {expected}")
        } else {
            actual.to_string()
        };
        return Err(mismatch(actual, data.len() < expected));
    }
    Ok((dims, data))
}

impl IdxSource {
    /// Reads an image file and its label file; errors name the file at fault.
    pub fn open(images: &Path, labels: &Path) -> Result<MemorySource> {
        let (dims, pixels) = read_idx(images)?;
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
        let (ldims, lab) = read_idx(labels)?;
        if ldims.len() != 1 || ldims[0] != n {
            return Err(Error::format(format!(
                "{}: labels have dims {ldims:?} but {} holds {n} images",
                labels.display(),
                images.display()
            )));
        }
        let labels = lab.iter().map(|&l| i64::from(l)).collect();
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
        // Compressed: inflated only up to the size the header announces (plus one byte), so
        // a stream longer than its header says, or a header announcing far more than the
        // stream holds, is refused without allocating what the header claims.
        let gz = |content: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, content).unwrap();
            enc.finish().unwrap()
        };
        std::fs::write(&bad, gz(&[&bytes[..], &[0; 100_000]].concat())).unwrap();
        let e = IdxSource::open(&bad, &l).err().unwrap();
        assert!(e.message().contains("the file has more than 12"), "{e}");
        let mut huge = vec![0, 0, 0x08, 3];
        for d in [0xffff_ffffu32, 0xffff, 0xffff] {
            huge.extend_from_slice(&d.to_be_bytes());
        }
        std::fs::write(&bad, gz(&[&huge[..], &[7; 64]].concat())).unwrap();
        let e = IdxSource::open(&bad, &l).err().unwrap();
        assert!(e.message().contains("inflates to at most 1032×"), "{e}");
        assert!(e.message().contains("(truncated?)"), "{e}");
        // Within what the stream could hold, but short: inflated, then refused.
        let mut short = vec![0, 0, 0x08, 1];
        short.extend_from_slice(&1000u32.to_be_bytes());
        std::fs::write(&bad, gz(&[&short[..], &[7; 64]].concat())).unwrap();
        let e = IdxSource::open(&bad, &l).err().unwrap();
        assert!(e.message().contains("the file has 64 (truncated?)"), "{e}");
        // A gzip bomb: 64 MiB of zeros in about 64 KiB, behind a header announcing 1 GiB. The
        // ratio bound refuses it before inflating (which would otherwise fill 64 MiB, or for a
        // larger bomb every byte of memory).
        let mut bomb_header = vec![0, 0, 0x08, 3];
        for d in [1024u32, 1024, 1024] {
            bomb_header.extend_from_slice(&d.to_be_bytes());
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &bomb_header).unwrap();
        for _ in 0..64 {
            std::io::Write::write_all(&mut enc, &[0; 1 << 20]).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        std::fs::write(&bad, &bomb).unwrap();
        let e = IdxSource::open(&bad, &l).err().unwrap();
        assert!(e.message().contains("inflates to at most"), "{e}");
        // label count mismatch
        write_idx(&bad, &[2], &[0, 1]).unwrap();
        let e = IdxSource::open(&i, &bad).err().unwrap();
        assert!(e.message().contains("3 images"), "{e}");
    }
}
