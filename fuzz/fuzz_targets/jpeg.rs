//! Any bytes as an image file of an `image_folder`, read as a crop transform reads it: the
//! region decode of libjpeg-turbo (a box chosen by the first byte: the whole image, a central
//! box, a corner, a thin strip; reduced in the DCT domain when the output is small) and the full
//! decode. Decoded or refused, never a panic, and a decoded region always holds its box.
#![no_main]
use libfuzzer_sys::fuzz_target;
use thresher_core::source::{scaled_box, SourceConfig, Want};

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("thresher-fuzz-jpeg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(d.join("c0"));
    d
}

/// The box and output size that `mode` asks of an h × w image.
fn want(mode: u8, h: usize, w: usize) -> Want {
    let (top, left, height, width) = match mode % 4 {
        0 => (0, 0, h, w),
        1 => (h / 4, w / 4, (h / 2).max(1), (w / 2).max(1)),
        2 => (h - (h / 3).max(1), 0, (h / 3).max(1), (w / 3).max(1)),
        _ => (h / 2, w / 5, 1, w - w / 5),
    };
    // Outputs from an eighth of the box (DCT scale 1/8) to larger than it (upsampling).
    let div = [8, 4, 2, 1][(mode as usize / 4) % 4];
    let out = |side: usize| (side / div).max(1);
    Want {
        top,
        left,
        height,
        width,
        out_h: out(height),
        out_w: out(width),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let root = dir();
    if std::fs::write(root.join("c0").join("x.jpg"), file).is_err() {
        return;
    }
    let json = format!(
        r#"{{"kind": "image_folder", "root": "{}", "max_pixels": 1048576}}"#,
        root.display()
    );
    let Ok(config) = serde_json::from_str::<SourceConfig>(&json) else {
        return;
    };
    let Ok(source) = config.open() else {
        return;
    };
    let mut scratch = Default::default();
    let got = source.read_hinted(0, &mut scratch, &|h, w| Some(want(mode, h, w)));
    if let Ok((view, Some(placed))) = got {
        // The region holds the box it was asked for, at its scale.
        let want = want(mode, placed.full_h, placed.full_w);
        let (t, l, h, w) = scaled_box(&want, placed.scale, placed.full_h, placed.full_w);
        assert!(t >= placed.top && t + h <= placed.top + view.height, "{want:?} {placed:?}");
        assert!(l >= placed.left && l + w <= placed.left + view.width, "{want:?} {placed:?}");
        assert_eq!(view.pixels.len(), view.height * view.width * view.channels);
    }
    let mut scratch = Default::default();
    let _ = source.read(0, &mut scratch);
});
