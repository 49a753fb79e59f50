//! Any bytes as a token file and an offsets `.npy` (the first bytes pick the dtype, block,
//! stride, the split and whether the ragged form is used): opened, checked and every sample
//! read or refused, never a panic, an out-of-bounds read or an allocation the files do not
//! justify.
#![no_main]
use libfuzzer_sys::fuzz_target;
use thresher_core::source::{Source, SourceConfig, TensorOut};

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("thresher-fuzz-tokens-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fuzz_target!(|data: &[u8]| {
    let [flags, block, stride, split, rest @ ..] = data else {
        return;
    };
    let cut = (*split as usize * 4).min(rest.len());
    let (offsets, tokens) = rest.split_at(cut);
    let d = dir();
    let (tp, op) = (d.join("tokens.bin"), d.join("offsets.npy"));
    if std::fs::write(&tp, tokens).is_err() || std::fs::write(&op, offsets).is_err() {
        return;
    }
    let dtype = if flags & 1 == 0 { "u16" } else { "u32" };
    let mut json = format!(
        r#"{{"kind": "tokens", "path": "{}", "dtype": "{dtype}", "block": {}"#,
        tp.display(),
        block % 64
    );
    if flags & 2 != 0 {
        json += &format!(r#", "offsets": "{}""#, op.display());
    } else if flags & 4 != 0 {
        json += &format!(r#", "stride": {}"#, stride % 16);
    }
    json += "}";
    let Ok(config) = serde_json::from_str::<SourceConfig>(&json) else {
        return;
    };
    let Ok(s) = config.open() else {
        return;
    };
    let spec = s.tensors().expect("a tokens source has tensors").clone();
    let size = |t: &Option<thresher_core::source::TensorSpec>| t.as_ref().map_or(0, |t| t.bytes());
    let (mut x, mut y, mut m) = (
        vec![0u8; spec.data.bytes()],
        vec![0u8; size(&spec.targets)],
        vec![0u8; size(&spec.mask)],
    );
    for id in 0..s.len().min(64) {
        let out = TensorOut {
            data: &mut x,
            targets: &mut y,
            mask: &mut m,
        };
        let _ = s.read_tensors(id, out);
    }
});
