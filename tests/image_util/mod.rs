//! Writers for the image tests' synthetic datasets: images with known pixels, CIFAR batches,
//! WebDataset shards, `.npy` files. Shared by tests/images.rs, tests/image_battery.rs and
//! tests/pillow.rs (each uses a part).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A deterministic "photograph": smooth colour gradients and waves plus a little noise, so
/// JPEG has real work to do. Pixel values depend on (x, y, channel, seed).
pub fn photo(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let mut px = [0u8; 3];
        for (c, v) in px.iter_mut().enumerate() {
            let (xf, yf) = (x as f32, y as f32);
            let wave = ((xf * 0.11 + c as f32 + seed as f32).sin()
                * (yf * 0.07 - seed as f32 * 0.3).cos())
                * 90.0;
            let ramp = (xf / w as f32 * 60.0) + (yf / h as f32 * 40.0);
            let mut hsh = x.wrapping_mul(374761393)
                ^ y.wrapping_mul(668265263)
                ^ (c as u32 + seed * 3).wrapping_mul(2246822519);
            hsh = (hsh ^ (hsh >> 13)).wrapping_mul(1274126177);
            let noise = (hsh >> 24) as f32 / 255.0 * 16.0 - 8.0;
            *v = (110.0 + wave + ramp + noise).clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    })
}

/// An image whose pixel (x, y) is (x, y, 7): positions are readable from the values.
pub fn coordinates(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
}

pub fn save_png(img: &image::DynamicImage, path: &Path) {
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

/// JPEG at `quality` (image's encoder: 4:2:0 for colour).
pub fn jpeg_bytes(img: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).unwrap();
    out
}

pub fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// CIFAR records: label byte(s), then planar R, G, B of a 32×32 image whose pixel value is
/// `(i + p + 50c) % 256` for record i, pixel p, channel c.
pub fn cifar_bytes(n: usize, cifar100: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        if cifar100 {
            out.push((i % 20) as u8); // coarse
            out.push((i % 100) as u8); // fine
        } else {
            out.push((i % 10) as u8);
        }
        for c in 0..3 {
            for p in 0..1024 {
                out.push(((i + p + 50 * c) % 256) as u8);
            }
        }
    }
    out
}

/// A `.npy` file (format 1.0) with `descr` and `shape` over `data`, C order.
pub fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad with spaces and a newline so that magic + length + header is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    replace_file(path, &bytes);
}

/// Writes `bytes` to a new file and renames it over `path`. The npy and tokens sources map
/// their files, and a loader's detached worker may still read the old one: renaming leaves it
/// the old bytes, where rewriting in place would truncate them under it (SIGBUS).
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, path).unwrap();
}

/// A WebDataset shard of `members` (name, bytes), in order.
pub fn write_tar(path: &Path, members: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(file);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

/// An ImageFolder tree: `root/<class>/<i>.png` for each (class, images).
pub fn image_folder(root: &Path, classes: &[(&str, Vec<image::DynamicImage>)]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (class, images) in classes {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, img) in images.iter().enumerate() {
            let p = dir.join(format!("{i:03}.png"));
            save_png(img, &p);
            paths.push(p);
        }
    }
    paths
}

/// The `.venv` Python with Pillow, when there is one (make setup creates it).
pub fn pillow_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = std::process::Command::new(&py)
        .args(["-c", "import PIL, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}
