//! Any bytes as a pair of .npy files (x and y; the first byte splits them): memory-mapped,
//! checked (typed header: every dtype, any rank, y as labels or targets) and read as images
//! and as raw tensors, or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use thresher_core::source::{Source, SourceConfig, TensorOut};

/// Opens the source described by `json` and reads its first, middle and last samples.
fn exercise(json: String) {
    let Ok(config) = serde_json::from_str::<SourceConfig>(&json) else {
        return;
    };
    if let Ok(s) = config.open() {
        for id in [0, s.len() / 2, s.len().saturating_sub(1)] {
            if id < s.len() {
                let mut scratch = Default::default();
                let _ = s.read(id, &mut scratch);
                let _ = s.label(id);
                // Typed samples: sized from the (checked) header.
                if let Some(spec) = s.tensors() {
                    let size = |t: &Option<thresher_core::source::TensorSpec>| {
                        t.as_ref().map_or(0, |t| t.bytes())
                    };
                    let mut x = vec![0u8; spec.data.bytes()];
                    let mut y = vec![0u8; size(&spec.targets)];
                    let mut m = vec![0u8; size(&spec.mask)];
                    let _ = s.read_tensors(
                        id,
                        TensorOut {
                            data: &mut x,
                            targets: &mut y,
                            mask: &mut m,
                        },
                    );
                }
            }
        }
    }
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("thresher-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize * 2).min(rest.len());
    let (y, x) = rest.split_at(cut);
    let d = dir();
    let (xp, yp) = (d.join("x.npy"), d.join("y.npy"));
    if std::fs::write(&xp, x).is_err() || std::fs::write(&yp, y).is_err() {
        return;
    }
    exercise(format!(r#"{{"kind": "npy", "x": "{}", "y": "{}"}}"#, xp.display(), yp.display()));
});
