//! Any bytes as a CIFAR-10 or CIFAR-100 binary batch (the first byte picks which): opened and
//! read or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use thresher_core::source::{Source, SourceConfig};

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
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let path = dir().join("data_batch.bin");
    if std::fs::write(&path, rest).is_err() {
        return;
    }
    let label = if kind & 1 == 0 { "" } else { r#", "cifar100_label": "fine""# };
    exercise(format!(r#"{{"kind": "cifar", "files": ["{}"]{label}}}"#, path.display()));
});
