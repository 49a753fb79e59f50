//! Image files on disk: torchvision's `ImageFolder` layout (`root/<class>/**/*.{jpg,jpeg,png}`,
//! classes numbered in sorted order) or a manifest of `path<TAB>label` lines. The file list is
//! made once at open; each read opens, reads and decodes one file. Paths are kept in one byte
//! arena rather than a `PathBuf` each, which saves an allocation and a `Vec` header per path.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::decode::{self, default_max_bytes, default_max_pixels, Color, DecodeConfig};
use super::jpeg::{self, Placed, Want};
use super::{check_limit, SampleView, Scratch, Source};
use crate::error::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFolderConfig {
    /// `root/<class>/...`: classes are the sub-directories, sorted by name (as torchvision).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// A text file of `path<TAB>label` lines; relative paths are relative to its directory.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    #[serde(default)]
    pub color: Color,
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

impl ImageFolderConfig {
    pub fn decode(&self) -> DecodeConfig {
        DecodeConfig {
            color: self.color,
            max_pixels: self.max_pixels,
            max_bytes: self.max_bytes,
        }
    }
}

pub struct ImageFolderSource {
    /// The paths' bytes, back to back; path i is `arena[ends[i-1]..ends[i]]`.
    arena: Vec<u8>,
    ends: Vec<usize>,
    labels: Vec<i64>,
    /// Class names by label (empty for a manifest).
    classes: Vec<String>,
    decode: DecodeConfig,
}

/// The longest manifest line: a path of the longest length Linux takes (PATH_MAX) plus its
/// label, with room to spare.
const MAX_MANIFEST_LINE: usize = 16 << 10;

/// The extensions torchvision's ImageFolder would take that we decode (case-insensitive).
fn is_image(name: &OsStr) -> bool {
    let Some(ext) = Path::new(name).extension() else {
        return false;
    };
    let ext = ext.as_bytes().to_ascii_lowercase();
    matches!(&ext[..], b"jpg" | b"jpeg" | b"png")
}

impl ImageFolderSource {
    pub fn open(config: &ImageFolderConfig) -> Result<Self> {
        check_limit(config.limit)?;
        let decode = config.decode();
        decode.validate()?;
        let mut s = match (&config.root, &config.manifest) {
            (Some(root), None) => Self::scan(root, decode)?,
            (None, Some(manifest)) => Self::from_manifest(manifest, decode)?,
            _ => {
                return Err(Error::invalid(
                    "config key `source`: give exactly one of `root` and `manifest`",
                ))
            }
        };
        if let Some(limit) = config.limit {
            s.truncate(limit);
        }
        Ok(s)
    }

    /// torchvision's `find_classes` + `make_dataset`: class directories sorted by name; in
    /// each, `sorted(os.walk(class_dir, followlinks=True))` and each directory's files sorted.
    /// Unlike os.walk, every directory (by device and inode) is walked at most once: a
    /// symbolic link that leads to a directory already reached — `.`, a parent, the root, or
    /// one reached by another path — is refused with an error naming the link, since following
    /// it would loop or count the same images twice.
    fn scan(root: &Path, decode: DecodeConfig) -> Result<Self> {
        let ctx = |e: Error| e.context("config key `source.root`");
        let mut seen = Visited::default();
        let root_meta = std::fs::metadata(root).map_err(|e| ctx(Error::io(root, &e)))?;
        seen.first(root, &root_meta)?;
        // The root's parents count as reached too: a link to one of them (`/`, `../..`) would
        // walk everything above the dataset before it met the root again.
        if let Ok(real) = std::fs::canonicalize(root) {
            for parent in real.ancestors().skip(1) {
                if let Ok(meta) = std::fs::metadata(parent) {
                    seen.parent(parent, &meta);
                }
            }
        }
        let mut classes: Vec<(Vec<u8>, PathBuf, std::fs::Metadata)> = Vec::new();
        for entry in std::fs::read_dir(root).map_err(|e| ctx(Error::io(root, &e)))? {
            let entry = entry.map_err(|e| ctx(Error::io(root, &e)))?;
            if let Some(meta) = dir_meta(&entry)? {
                classes.push((entry.file_name().as_bytes().to_vec(), entry.path(), meta));
            }
        }
        // Python sorts str by code point; UTF-8 bytes sort the same way.
        classes.sort_by(|a, b| a.0.cmp(&b.0));
        if classes.is_empty() {
            return Err(Error::format(format!(
                "{}: no class directories (expected root/<class>/<image>)",
                root.display()
            )));
        }
        let mut s = ImageFolderSource {
            arena: Vec::new(),
            ends: Vec::new(),
            labels: Vec::new(),
            classes: Vec::new(),
            decode,
        };
        for (label, (name, dir, meta)) in classes.iter().enumerate() {
            seen.first(dir, meta)?;
            let mut dirs: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
            walk(dir, &mut dirs, &mut seen, 0)?;
            dirs.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
            let before = s.labels.len();
            for (_, files) in &dirs {
                for f in files {
                    s.push(f, label as i64);
                }
            }
            if s.labels.len() == before {
                return Err(Error::format(format!(
                    "{}: class directory `{}` holds no .jpg, .jpeg or .png file",
                    root.display(),
                    String::from_utf8_lossy(name)
                )));
            }
            s.classes.push(String::from_utf8_lossy(name).into_owned());
        }
        Ok(s)
    }

    /// Reads the manifest line by line (never whole): only a regular file, and a line longer
    /// than `MAX_MANIFEST_LINE` is refused, so a huge file that is not a manifest fails at its
    /// first line instead of being loaded.
    fn from_manifest(manifest: &Path, decode: DecodeConfig) -> Result<Self> {
        use std::io::{BufRead, Read};
        let ctx = |e: Error| e.context("config key `source.manifest`");
        let (file, _) = crate::util::open_regular(manifest, "manifest").map_err(ctx)?;
        let mut reader = std::io::BufReader::new(file);
        let base = manifest.parent().unwrap_or(Path::new("."));
        let mut s = ImageFolderSource {
            arena: Vec::new(),
            ends: Vec::new(),
            labels: Vec::new(),
            classes: Vec::new(),
            decode,
        };
        let mut line = Vec::new();
        for i in 0.. {
            line.clear();
            let got = (&mut reader)
                .take(MAX_MANIFEST_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| ctx(Error::io(manifest, &e)))?;
            if got == 0 {
                break;
            }
            let bad = |what: &str| {
                Error::format(format!(
                    "{}:{}: {what} (expected `path<TAB>label`)",
                    manifest.display(),
                    i + 1
                ))
            };
            if line.len() > MAX_MANIFEST_LINE {
                return Err(bad(&format!(
                    "a line longer than {MAX_MANIFEST_LINE} bytes: not a manifest"
                )));
            }
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let tab = line
                .iter()
                .rposition(|&b| b == b'\t')
                .ok_or_else(|| bad("no tab"))?;
            let (path, label) = (&line[..tab], &line[tab + 1..]);
            let label: i64 = std::str::from_utf8(label)
                .ok()
                .and_then(|l| l.trim().parse().ok())
                .ok_or_else(|| bad("the label is not an integer"))?;
            if path.is_empty() {
                return Err(bad("empty path"));
            }
            if s.labels.len() as u64 >= crate::source::MAX_INDEX_LEN {
                return Err(bad(&format!(
                    "more than {} samples",
                    crate::source::MAX_INDEX_LEN
                )));
            }
            let path = Path::new(OsStr::from_bytes(path));
            s.push(&base.join(path), label);
        }
        if s.labels.is_empty() {
            return Err(Error::format(format!(
                "{}: the manifest lists no samples",
                manifest.display()
            )));
        }
        Ok(s)
    }

    fn push(&mut self, path: &Path, label: i64) {
        self.arena.extend_from_slice(path.as_os_str().as_bytes());
        self.ends.push(self.arena.len());
        self.labels.push(label);
    }

    fn truncate(&mut self, n: usize) {
        if n < self.labels.len() {
            self.labels.truncate(n);
            self.ends.truncate(n);
            self.arena.truncate(self.ends.last().copied().unwrap_or(0));
        }
    }

    /// The path of sample `id`.
    pub fn path(&self, id: usize) -> &Path {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        Path::new(OsStr::from_bytes(&self.arena[start..self.ends[id]]))
    }

    /// Class names in label order (torchvision's `classes`); empty for a manifest.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
}

/// The metadata of a directory entry that is a directory, following symbolic links as
/// os.scandir's `is_dir()` does; `None` for anything else (files, dangling links). The file
/// type comes with the listing, so plain files cost no `stat`.
fn dir_meta(entry: &std::fs::DirEntry) -> Result<Option<std::fs::Metadata>> {
    let path = entry.path();
    match entry.file_type() {
        Ok(t) if !t.is_dir() && !t.is_symlink() => return Ok(None),
        Err(e) => return Err(Error::io(&path, &e)),
        Ok(_) => {}
    }
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Some(m)),
        Ok(_) => Ok(None),
        // A dangling link is no directory (os.walk skips it too); it may still be named like an
        // image, and then fails when read, naming its path.
        Err(_) => Ok(None),
    }
}

/// The directories reached so far, by (device, inode), with the path each was first reached
/// by (for the error).
#[derive(Default)]
struct Visited(std::collections::HashMap<(u64, u64), PathBuf>);

impl Visited {
    /// Records `dir`, a parent of the root.
    fn parent(&mut self, dir: &Path, meta: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        let mut name = dir.as_os_str().to_owned();
        name.push(" (a parent of the root)");
        self.0
            .entry((meta.dev(), meta.ino()))
            .or_insert(name.into());
    }

    /// Records `dir`; an error naming both paths when it was reached before.
    fn first(&mut self, dir: &Path, meta: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        match self.0.entry((meta.dev(), meta.ino())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(dir.to_path_buf());
                Ok(())
            }
            std::collections::hash_map::Entry::Occupied(o) => Err(Error::format(format!(
                "{}: leads to the directory already reached as {} (a symbolic link to `.`, to \
                 a parent or to another directory of the dataset?); each directory is walked \
                 once, so such links are refused rather than followed again",
                dir.display(),
                o.get().display()
            ))),
        }
    }
}

/// Collects (directory, its image files sorted) for `dir` and every directory below it,
/// following symbolic links to directories (torchvision walks with followlinks=True) but
/// entering each directory once (`seen`), so a link cycle is an error instead of a hang or a
/// dataset counted many times over. Symbolic links to files are taken as the files they lead
/// to. Depth-bounded as well, for very deep trees.
fn walk(
    dir: &Path,
    out: &mut Vec<(PathBuf, Vec<PathBuf>)>,
    seen: &mut Visited,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(Error::format(format!(
            "{}: directories nested more than 64 deep",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, &e))? {
        let entry = entry.map_err(|e| Error::io(dir, &e))?;
        if let Some(meta) = dir_meta(&entry)? {
            seen.first(&entry.path(), &meta)?;
            subdirs.push(entry.path());
        } else if is_image(&entry.file_name()) {
            files.push(entry.path());
        }
    }
    files.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out.push((dir.to_path_buf(), files));
    for d in subdirs {
        walk(&d, out, seen, depth + 1)?;
    }
    Ok(())
}

impl Source for ImageFolderSource {
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
        let path = self.path(id);
        decode::read_file(path, &mut scratch.encoded, &self.decode)?;
        let ([height, width, channels], placed) =
            jpeg::decode_hinted(&scratch.encoded, &mut scratch.pixels, &self.decode, want)
                .map_err(|e| Error::format(format!("{}: {e}", path.display())))?;
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
        true
    }
    fn will_read(&self, id: usize) -> bool {
        // The open (a non-blocking one, as the read's: a FIFO must not block here either)
        // brings the path's directory entries and inode into the cache; the hint starts the
        // data's read without waiting for it. A file the read will refuse is left alone.
        let path = self.path(id);
        match crate::util::open_regular(path, "image file") {
            Ok((file, len)) if self.decode.check_bytes(len).is_ok() => {
                if crate::util::is_cached(&file, 0) {
                    return true;
                }
                crate::util::will_need(&file, 0, len);
                false
            }
            _ => false,
        }
    }
    fn location(&self, id: usize) -> Option<String> {
        Some(self.path(id).display().to_string())
    }
}
