//! WebDataset shards (`kind: "tar"`): plain tar files in which the members sharing a base name
//! (the path up to the first dot of the file name, WebDataset's rule) and lying next to each
//! other form one sample: `n01440764_10026.jpg` + `n01440764_10026.cls`. The image is the
//! member with extension jpg, jpeg or png; the label is the decimal text of the `.cls` member.
//! Other members (`.json`, `.txt`, …) are ignored.
//!
//! At open every shard's headers are read once (seeking over the data) into an index of member
//! offsets; a read is then one positioned read (`pread`) of the image member from a shared file
//! handle, never an extraction, so any worker can read any sample at any time. The headers are
//! parsed with the `tar` crate rather than by hand: shards written by Python's `tarfile` use PAX
//! headers for long names, and GNU tar uses its own long-name members; the crate handles both and
//! verifies each header's checksum.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::decode::{default_max_bytes, default_max_pixels, Color, DecodeConfig};
use super::jpeg::{self, Placed, Want};
use super::{check_limit, SampleView, Scratch, Source};
use crate::error::{Error, ErrorKind, Result};

/// `shards`: one path or brace pattern, or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Shards {
    One(String),
    Many(Vec<String>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TarConfig {
    /// Shard paths; each may be a brace pattern such as `train-{000000..000099}.tar`.
    pub shards: Shards,
    #[serde(default)]
    pub color: Color,
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

impl TarConfig {
    pub fn decode(&self) -> DecodeConfig {
        DecodeConfig {
            color: self.color,
            max_pixels: self.max_pixels,
            max_bytes: self.max_bytes,
        }
    }
}

/// At most this many shards keep a file handle open for the loader's lifetime; with more (the
/// usual limit is 1024 descriptors a process) each read opens its shard.
const MAX_OPEN_SHARDS: usize = 512;
/// The most shards a pattern may expand to.
const MAX_SHARDS: usize = 1 << 20;

pub struct TarSource {
    shards: Vec<PathBuf>,
    /// One handle per shard, shared by every worker (`pread` needs no seek position), or empty
    /// when there are more than `MAX_OPEN_SHARDS`.
    files: Vec<File>,
    // Per sample, structure of arrays:
    shard: Vec<u32>,
    offset: Vec<u64>,
    size: Vec<u64>,
    labels: Vec<i64>,
    /// Image member names, back to back; name i ends at `name_ends[i]`.
    names: Vec<u8>,
    name_ends: Vec<usize>,
    decode: DecodeConfig,
}

/// Expands brace patterns: `a-{000..002}.tar` → a-000.tar, a-001.tar, a-002.tar (zero-padded to
/// the width of the bounds when they are written with leading zeros), and `{x,y}` → x, y.
/// Several braces expand as a product, left to right.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>> {
    let bad =
        |what: &str| Error::invalid(format!("config key `source.shards`: `{pattern}`: {what}"));
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(bad("a `}` without `{`"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|c| open + c)
        .ok_or_else(|| bad("a `{` without `}`"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    if body.contains('{') {
        return Err(bad("nested braces"));
    }
    let alternatives: Vec<String> = if let Some((a, b)) = body.split_once("..") {
        let (lo, hi) = match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(lo), Ok(hi)) => (lo, hi),
            _ => return Err(bad("a range must be `{FIRST..LAST}` with decimal numbers")),
        };
        let width = if a.starts_with('0') || b.starts_with('0') {
            a.len().max(b.len())
        } else {
            0
        };
        // Saturating: {0..18446744073709551615} is "too many", not an overflow.
        let count = hi.abs_diff(lo).saturating_add(1);
        if count > MAX_SHARDS as u64 {
            return Err(bad(&format!("{count} shards is more than {MAX_SHARDS}")));
        }
        let values: Box<dyn Iterator<Item = u64>> = if lo <= hi {
            Box::new(lo..=hi)
        } else {
            Box::new((hi..=lo).rev())
        };
        values.map(|v| format!("{v:0width$}")).collect()
    } else if body.contains(',') {
        body.split(',').map(str::to_string).collect()
    } else {
        return Err(bad("braces must hold `FIRST..LAST` or `a,b,...`"));
    };
    let tails = expand_braces(tail)?;
    // The count is checked before anything of that size is allocated.
    let total = alternatives
        .len()
        .checked_mul(tails.len())
        .filter(|&t| t <= MAX_SHARDS)
        .ok_or_else(|| bad(&format!("more than {MAX_SHARDS} shards")))?;
    let mut out = Vec::with_capacity(total);
    for alt in &alternatives {
        for t in &tails {
            out.push(format!("{head}{alt}{t}"));
            if out.len() > MAX_SHARDS {
                return Err(bad(&format!("more than {MAX_SHARDS} shards")));
            }
        }
    }
    Ok(out)
}

/// WebDataset's split of a member name into (key, extension): the extension is everything after
/// the first dot of the last path component, lower-cased. Names without a dot have no
/// extension and belong to no sample.
fn key_and_ext(name: &[u8]) -> Option<(&[u8], String)> {
    let file_start = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let dot = file_start + name[file_start..].iter().position(|&b| b == b'.')?;
    let ext = String::from_utf8_lossy(&name[dot + 1..]).to_lowercase();
    Some((&name[..dot], ext))
}

/// One sample being assembled from consecutive members.
#[derive(Default)]
struct Pending {
    key: Vec<u8>,
    /// (name, offset, size) of the image member.
    image: Option<(Vec<u8>, u64, u64)>,
    /// (offset, size) of the `.cls` member.
    cls: Option<(u64, u64)>,
}

impl TarSource {
    pub fn open(config: &TarConfig) -> Result<Self> {
        check_limit(config.limit)?;
        let decode = config.decode();
        decode.validate()?;
        let patterns = match &config.shards {
            Shards::One(p) => vec![p.clone()],
            Shards::Many(ps) => ps.clone(),
        };
        let mut shards = Vec::new();
        for p in &patterns {
            shards.extend(expand_braces(p)?.into_iter().map(PathBuf::from));
        }
        if shards.is_empty() {
            return Err(Error::invalid(
                "config key `source.shards`: give at least one shard",
            ));
        }
        if shards.len() > u32::MAX as usize {
            return Err(Error::invalid(
                "config key `source.shards`: too many shards",
            ));
        }
        let mut s = TarSource {
            shards: Vec::with_capacity(shards.len()),
            files: Vec::new(),
            shard: Vec::new(),
            offset: Vec::new(),
            size: Vec::new(),
            labels: Vec::new(),
            names: Vec::new(),
            name_ends: Vec::new(),
            decode,
        };
        let limit = config.limit.unwrap_or(usize::MAX);
        let keep_open = shards.len() <= MAX_OPEN_SHARDS;
        for (i, path) in shards.into_iter().enumerate() {
            if s.labels.len() >= limit {
                break;
            }
            // A FIFO or device named like a shard would block or never end: regular files only.
            let (file, _) = crate::util::open_regular(&path, "tar shard")?;
            s.index_shard(i as u32, &path, &file, limit)?;
            if keep_open {
                s.files.push(file);
            }
            s.shards.push(path);
        }
        Ok(s)
    }

    /// Reads one shard's headers and appends its samples.
    fn index_shard(&mut self, shard: u32, path: &Path, file: &File, limit: usize) -> Result<()> {
        let bad = |what: String| Error::format(format!("{}: {what}", path.display()));
        let file_len = file.metadata().map_err(|e| Error::io(path, &e))?.len();
        let mut archive = tar::Archive::new(file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| bad(format!("not a tar file: {e}")))?;
        let mut pending = Pending::default();
        let mut last_end = 0u64;
        for entry in entries {
            let entry = entry.map_err(|e| {
                bad(format!(
                    "corrupt tar header after byte {last_end}: {e} (a damaged or truncated \
                     shard?)"
                ))
            })?;
            let name = entry.path_bytes().into_owned();
            let (offset, size) = (entry.raw_file_position(), entry.size());
            last_end = offset.saturating_add(size);
            if last_end > file_len {
                return Err(bad(format!(
                    "member `{}` ({size} bytes at byte {offset}) runs past the end of the file \
                     ({file_len} bytes): truncated shard?",
                    String::from_utf8_lossy(&name)
                )));
            }
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let Some((key, ext)) = key_and_ext(&name) else {
                continue;
            };
            if key != pending.key.as_slice() {
                if !pending.key.is_empty() {
                    self.finish(shard, path, file, std::mem::take(&mut pending))?;
                    if self.labels.len() >= limit {
                        return Ok(());
                    }
                }
                pending.key = key.to_vec();
            }
            match ext.as_str() {
                "jpg" | "jpeg" | "png" if pending.image.is_none() => {
                    pending.image = Some((name.clone(), offset, size));
                }
                "cls" => pending.cls = Some((offset, size)),
                _ => {}
            }
        }
        // The iteration also ends when the file does: a shard cut at a member boundary would
        // lose its tail silently. A complete tar has a zero block after the last member.
        let end = last_end.div_ceil(512) * 512;
        let mut block = [0u8; 512];
        let marker = file.read_exact_at(&mut block, end).is_ok() && block.iter().all(|&b| b == 0);
        if !marker {
            return Err(bad(format!(
                "no end-of-archive block after the last member (byte {end}): truncated shard?"
            )));
        }
        if !pending.key.is_empty() {
            self.finish(shard, path, file, pending)?;
        }
        Ok(())
    }

    /// Appends a complete sample; a sample without image or label is an error naming it.
    fn finish(&mut self, shard: u32, path: &Path, file: &File, p: Pending) -> Result<()> {
        let key = String::from_utf8_lossy(&p.key);
        let bad = |what: &str| Error::format(format!("{}: sample `{key}` {what}", path.display()));
        let (name, offset, size) = p
            .image
            .ok_or_else(|| bad("has no .jpg, .jpeg or .png member"))?;
        let (cls_offset, cls_size) = p.cls.ok_or_else(|| bad("has no .cls member (its label)"))?;
        if cls_size > 64 {
            return Err(bad(&format!(
                "has a {cls_size}-byte .cls member; a label is a short decimal number"
            )));
        }
        let mut text = vec![0u8; cls_size as usize];
        file.read_exact_at(&mut text, cls_offset)
            .map_err(|e| Error::io(path, &e))?;
        let label: i64 = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| {
                bad(&format!(
                    "has label text {:?}, not a decimal integer",
                    String::from_utf8_lossy(&text)
                ))
            })?;
        self.shard.push(shard);
        self.offset.push(offset);
        self.size.push(size);
        self.labels.push(label);
        self.names.extend_from_slice(&name);
        self.name_ends.push(self.names.len());
        Ok(())
    }

    fn member_name(&self, id: usize) -> &[u8] {
        let start = if id == 0 { 0 } else { self.name_ends[id - 1] };
        &self.names[start..self.name_ends[id]]
    }

    /// The number of shards indexed.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

impl Source for TarSource {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        None
    }
    fn channels(&self) -> usize {
        self.decode.color.channels()
    }
    fn read<'a>(&'a self, id: usize, scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        Ok(self.read_hinted(id, scratch, &|_, _| None)?.0)
    }
    fn read_hinted<'a>(
        &'a self,
        id: usize,
        scratch: &'a mut Scratch,
        want: &dyn Fn(usize, usize) -> Option<Want>,
    ) -> Result<(SampleView<'a>, Option<Placed>)> {
        let shard = self.shard[id] as usize;
        let path = &self.shards[shard];
        let where_ = || self.location(id).unwrap_or_default();
        let size = self.size[id];
        self.decode
            .check_bytes(size)
            .map_err(|e| Error::format(format!("{}: {e}", where_())))?;
        let buf = &mut scratch.encoded;
        buf.clear();
        buf.resize(size as usize, 0);
        let io_err = |e: std::io::Error| Error::new(ErrorKind::Io, format!("{}: {e}", where_()));
        match self.files.get(shard) {
            Some(f) => f.read_exact_at(buf, self.offset[id]).map_err(io_err)?,
            None => {
                // Checked again: the path may have been replaced since the index was made.
                let (f, _) = crate::util::open_regular(path, "tar shard")?;
                f.read_exact_at(buf, self.offset[id]).map_err(io_err)?
            }
        }
        let ([height, width, channels], placed) =
            jpeg::decode_hinted(buf, &mut scratch.pixels, &self.decode, want)
                .map_err(|e| Error::format(format!("{}: {e}", where_())))?;
        let view = SampleView {
            pixels: &scratch.pixels,
            height,
            width,
            channels,
        };
        Ok((view, placed))
    }
    fn label(&self, id: usize) -> i64 {
        self.labels[id]
    }
    fn reads_ahead(&self) -> bool {
        // With more shards than handles kept open, each read opens its shard: a hint would
        // have to open it too, so none is given.
        !self.files.is_empty()
    }
    fn will_read(&self, id: usize) -> bool {
        let size = self.size[id];
        if let (Some(f), Ok(())) = (
            self.files.get(self.shard[id] as usize),
            self.decode.check_bytes(size),
        ) {
            if crate::util::is_cached(f, self.offset[id]) {
                return true;
            }
            crate::util::will_need(f, self.offset[id], size);
        }
        false
    }
    fn location(&self, id: usize) -> Option<String> {
        Some(format!(
            "{}:{}",
            self.shards[self.shard[id] as usize].display(),
            String::from_utf8_lossy(self.member_name(id))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces() {
        assert_eq!(
            expand_braces("d/train-{000..002}.tar").unwrap(),
            ["d/train-000.tar", "d/train-001.tar", "d/train-002.tar"]
        );
        assert_eq!(expand_braces("a{8..10}").unwrap(), ["a8", "a9", "a10"]);
        assert_eq!(
            expand_braces("{x,y}-{0..1}").unwrap(),
            ["x-0", "x-1", "y-0", "y-1"]
        );
        assert_eq!(expand_braces("plain.tar").unwrap(), ["plain.tar"]);
        for bad in ["a{0..", "a}", "a{x..y}", "{a{b}}", "{}", "{0..99999999}"] {
            let e = expand_braces(bad).unwrap_err();
            assert!(e.message().contains("source.shards"), "{e}");
        }
        // Ranges and products too large to hold are refused before anything is allocated,
        // with the key named (not a panic or an abort).
        for huge in [
            "{0..18446744073709551615}",
            "{18446744073709551615..0}",
            "{0..999999}-{0..999999}",
            "{0..1023}{0..1023}{0..1023}{0..1023}",
        ] {
            let e = expand_braces(huge).unwrap_err();
            assert!(e.message().contains("source.shards"), "{huge}: {e}");
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{huge}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(
            key_and_ext(b"dir/n01.a.JPG"),
            Some((&b"dir/n01"[..], "a.jpg".to_string()))
        );
        assert_eq!(key_and_ext(b"d.x/noext"), None);
        assert_eq!(key_and_ext(b"k.cls"), Some((&b"k"[..], "cls".to_string())));
    }
}
