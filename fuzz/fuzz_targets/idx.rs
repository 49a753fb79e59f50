//! Any byte strings as an IDX image file and label file: opened and read or refused, never a
//! panic. The input's first byte splits it into the two files, which go through the real
//! file-opening path (raw or gzip) in a per-process directory under /dev/shm.
#![no_main]
use libfuzzer_sys::fuzz_target;
use thresher_core::source::{IdxSource, Source};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize).min(rest.len());
    let (labels, images) = rest.split_at(cut);
    let dir = std::env::temp_dir().join(format!("thresher-fuzz-idx-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let (i, l) = (dir.join("images"), dir.join("labels"));
    if std::fs::write(&i, images).is_err() || std::fs::write(&l, labels).is_err() {
        return;
    }
    if let Ok(s) = IdxSource::open(&i, &l) {
        for id in [0, s.len() / 2, s.len().saturating_sub(1)] {
            if id < s.len() {
                let mut scratch = Default::default();
                let _ = s.read(id, &mut scratch);
                let _ = s.label(id);
            }
        }
    }
});
