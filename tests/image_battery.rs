//! A battery of broken image datasets: truncated and corrupt JPEGs, garbage bytes, zero-byte
//! files, PNG and JPEG decompression bombs, oversized files, a CIFAR file whose size is not a
//! whole number of records, tar shards with a corrupt header or a truncated member, `.npy`
//! files whose header lies about the shape. Each is a clear error naming its file (and, when
//! found by a worker, its sample id), or under `on_error: "skip"` a reported skip; never a
//! crash or a stall.

mod image_util;

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use image::DynamicImage;
use image_util::*;
use serde_json::json;
use thresher_core::{Config, Error, ErrorKind, Loader};

fn good_jpeg() -> Vec<u8> {
    jpeg_bytes(&DynamicImage::ImageRgb8(photo(64, 48, 1)), 90)
}

fn good_png() -> Vec<u8> {
    png_bytes(&DynamicImage::ImageRgb8(photo(40, 30, 2)))
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    out
}

/// A PNG whose header claims `w × h` gray pixels, with a small valid zlib stream of zeros: a
/// decompression bomb's header (a real one would inflate to w × h bytes).
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 16]).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &idat));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A valid JPEG whose frame header is patched to claim `w × h`.
fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut j = good_jpeg();
    let sof = j
        .windows(2)
        .position(|m| m[0] == 0xff && m[1] == 0xc0)
        .expect("a baseline JPEG");
    j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    j
}

/// (file name, bytes, what the error must say) for every broken image.
fn broken_images() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let jpeg = good_jpeg();
    let png = good_png();
    let mut corrupt = jpeg.clone();
    let n = corrupt.len();
    for b in &mut corrupt[n / 3..n / 2] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut bad_crc = png.clone();
    let idat = bad_crc.windows(4).position(|w| w == b"IDAT").unwrap();
    bad_crc[idat + 10] ^= 0xff;
    vec![
        (
            "truncated_half.jpg",
            jpeg[..jpeg.len() / 2].to_vec(),
            "bad JPEG",
        ),
        (
            "truncated_end.jpg",
            jpeg[..jpeg.len() - 100].to_vec(),
            "bad JPEG",
        ),
        ("truncated_header.jpg", jpeg[..40].to_vec(), "bad JPEG"),
        ("corrupt_middle.jpg", corrupt, "bad JPEG"),
        ("garbage.jpg", garbage.clone(), "not a JPEG or PNG"),
        (
            "garbage_after_magic.png",
            [&b"\x89PNG\r\n\x1a\n"[..], &garbage].concat(),
            "bad PNG",
        ),
        ("zero_bytes.png", vec![], "empty file"),
        ("truncated.png", png[..png.len() / 2].to_vec(), "bad PNG"),
        ("bad_crc.png", bad_crc, "bad PNG"),
        (
            "bomb.png",
            png_bomb(100_000, 100_000),
            "exceeds source.max_pixels",
        ),
        (
            "bomb_9000.png",
            png_bomb(9000, 9000),
            "exceeds source.max_pixels",
        ),
        (
            "bomb.jpg",
            jpeg_bomb(60_000, 60_000),
            "exceeds source.max_pixels",
        ),
    ]
}

/// Runs `f` on another thread and fails the test if it takes more than 60 s (a stall).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60)).expect("stalled")
}

fn loader(config: serde_json::Value) -> thresher_core::Result<Loader> {
    Loader::new(Config::from_json(&config.to_string())?)
}

#[test]
fn every_broken_image_is_a_clear_error_naming_sample_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = broken_images();
    let class = dir.path().join("class");
    std::fs::create_dir_all(&class).unwrap();
    for (name, bytes, _) in &cases {
        std::fs::write(class.join(name), bytes).unwrap();
    }
    // Sorted file names are the sample ids.
    let mut names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    names.sort();
    let root = dir.path().to_path_buf();
    let errors = within_a_minute(move || {
        let l = loader(json!({"source": {"kind": "image_folder", "root": root},
                              "batch_size": 1, "shuffle": false, "workers": 2,
                              "transform": {"center_crop": 16}}))
        .unwrap();
        let mut errors = Vec::new();
        loop {
            match l.next() {
                Ok(None) => break,
                Ok(Some(b)) => panic!("sample {:?} decoded", b.ids()),
                Err(e) => errors.push(e),
            }
        }
        errors
    });
    assert_eq!(errors.len(), cases.len());
    for (id, e) in errors.iter().enumerate() {
        let name = names[id];
        let (_, _, needle) = cases.iter().find(|c| c.0 == name).unwrap();
        assert_eq!(e.kind(), ErrorKind::Format, "{name}: {e}");
        let m = e.message();
        assert!(m.contains(&format!("sample {id}:")), "{name}: {m}");
        assert!(m.contains(&format!("class/{name}")), "{name}: {m}");
        assert!(m.contains(needle), "{name}: {m}");
    }
}

#[test]
fn every_broken_image_is_skipped_and_reported_from_folders_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    let cases = broken_images();
    let class = dir.path().join("folder/class");
    std::fs::create_dir_all(&class).unwrap();
    let mut members = Vec::new();
    for (i, (name, bytes, _)) in cases.iter().enumerate() {
        std::fs::write(class.join(name), bytes).unwrap();
        std::fs::write(class.join(format!("good{i:02}.jpg")), good_jpeg()).unwrap();
        let ext = name.rsplit('.').next().unwrap();
        members.push((format!("bad{i:02}.{ext}"), bytes.clone()));
        members.push((format!("bad{i:02}.cls"), b"1".to_vec()));
        members.push((format!("good{i:02}.png"), good_png()));
        members.push((format!("good{i:02}.cls"), b"2".to_vec()));
    }
    let shard = dir.path().join("shard.tar");
    write_tar(&shard, &members);
    // A file deleted after the index was made is an I/O error, skipped too.
    std::fs::write(class.join("vanishing.png"), good_png()).unwrap();
    let sources = [
        json!({"kind": "image_folder", "root": dir.path().join("folder")}),
        json!({"kind": "tar", "shards": [shard]}),
    ];
    for (k, source) in sources.into_iter().enumerate() {
        let vanish = class.join("vanishing.png");
        let (delivered, report, skipped) = within_a_minute(move || {
            let l = loader(json!({"source": source, "batch_size": 5, "workers": 3, "seed": 9,
                                  "on_error": "skip",
                                  "transform": {"random_resized_crop": {"size": 12}, "hflip": 0.5}}))
            .unwrap();
            if k == 0 {
                std::fs::remove_file(&vanish).unwrap();
            }
            let mut delivered = 0;
            while let Some(b) = l.next().unwrap() {
                assert!(b.labels().iter().all(|&y| k == 0 || y == 2));
                assert_eq!(b.data_f32().unwrap().len(), b.len() * 3 * 12 * 12);
                delivered += b.len();
            }
            (delivered, l.report(), l.skipped_samples())
        });
        let bad = cases.len() + usize::from(k == 0);
        assert_eq!(delivered, cases.len(), "source {k}");
        assert_eq!(report.skipped as usize, bad, "source {k}");
        assert_eq!(report.samples as usize, cases.len() + bad);
        assert_eq!(skipped.len(), bad);
        for s in &skipped {
            let loc = s.location.as_deref().unwrap();
            let known = cases.iter().any(|c| loc.ends_with(&format!("/{}", c.0)));
            assert!(
                known || loc.contains(":bad") || loc.ends_with("vanishing.png"),
                "{s:?}"
            );
            let needle = cases
                .iter()
                .enumerate()
                .find(|(i, c)| loc.ends_with(c.0) || loc.contains(&format!("bad{i:02}.")))
                .map_or("No such file", |(_, c)| c.2);
            assert!(s.reason.contains(needle), "{s:?}");
        }
    }
}

#[test]
fn size_limits_are_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("c");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(class.join("a.jpg"), good_jpeg()).unwrap(); // 64×48
    let open = |extra: serde_json::Value| {
        let mut source = json!({"kind": "image_folder", "root": dir.path()});
        for (k, v) in extra.as_object().unwrap() {
            source[k] = v.clone();
        }
        let l = loader(json!({"source": source, "transform": {"center_crop": 8}})).unwrap();
        l.next().map(|b| b.map(|b| b.len()))
    };
    assert_eq!(open(json!({})).unwrap(), Some(1));
    assert_eq!(open(json!({"max_pixels": 3072})).unwrap(), Some(1));
    let e = open(json!({"max_pixels": 3071})).unwrap_err();
    assert!(
        e.message()
            .contains("64×48 = 3072 pixels exceeds source.max_pixels = 3071"),
        "{e}"
    );
    let e = open(json!({"max_bytes": 100})).unwrap_err();
    assert!(
        e.message().contains("exceeds source.max_bytes = 100") && e.message().contains("a.jpg")
    );
    let e = loader(
        json!({"source": {"kind": "image_folder", "root": dir.path(), "max_pixels": 0},
                          "transform": {"center_crop": 8}}),
    )
    .err()
    .unwrap();
    assert!(e.message().contains("source.max_pixels"), "{e}");
}

/// Opening must fail with `kind` and a message containing each of `needles`, whatever
/// `on_error` says: these are broken datasets, not broken samples.
fn open_fails(source: serde_json::Value, kind: ErrorKind, needles: &[&str]) -> Error {
    for on_error in ["fail", "skip"] {
        let e = loader(json!({"source": source.clone(), "on_error": on_error,
                              "transform": {"center_crop": 8}}))
        .err()
        .unwrap_or_else(|| panic!("{source} opened"));
        assert_eq!(e.kind(), kind, "{e}");
        for n in needles {
            assert!(e.message().contains(n), "{source}: `{n}` not in: {e}");
        }
    }
    loader(json!({"source": source, "transform": {"center_crop": 8}}))
        .err()
        .unwrap()
}

#[test]
fn cifar_files_that_are_not_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("data_batch_1.bin");
    let path = p.to_str().unwrap();
    let mut bytes = cifar_bytes(4, false);
    bytes.pop();
    std::fs::write(&p, &bytes).unwrap();
    open_fails(
        json!({"kind": "cifar", "files": [&p]}),
        ErrorKind::Format,
        &[
            path,
            "12291 bytes is not a whole number of 3073-byte CIFAR records",
        ],
    );
    // A CIFAR-100 file read as CIFAR-10: the hint says what to set.
    std::fs::write(&p, cifar_bytes(3, true)).unwrap();
    open_fails(
        json!({"kind": "cifar", "files": [&p]}),
        ErrorKind::Format,
        &[path, "set `source.cifar100_label`"],
    );
    std::fs::write(&p, []).unwrap();
    open_fails(
        json!({"kind": "cifar", "files": [&p]}),
        ErrorKind::Format,
        &[path, "0 bytes"],
    );
    // Whole records, but a label byte above 9: not CIFAR-10.
    let mut bytes = cifar_bytes(2, false);
    bytes[3073] = 77;
    std::fs::write(&p, &bytes).unwrap();
    open_fails(
        json!({"kind": "cifar", "files": [&p]}),
        ErrorKind::Format,
        &[path, "record 1 has label 77"],
    );
    open_fails(
        json!({"kind": "cifar", "files": [dir.path().join("nope.bin")]}),
        ErrorKind::Io,
        &["nope.bin"],
    );
    let e = loader(json!({"source": {"kind": "cifar", "files": []}}))
        .err()
        .unwrap();
    assert!(e.message().contains("source.files"), "{e}");
}

#[test]
fn tar_shards_with_corrupt_headers_or_missing_members() {
    let dir = tempfile::tempdir().unwrap();
    let members = |n: usize| -> Vec<(String, Vec<u8>)> {
        (0..n)
            .flat_map(|i| {
                [
                    (format!("{i:03}.png"), good_png()),
                    (format!("{i:03}.cls"), i.to_string().into_bytes()),
                ]
            })
            .collect()
    };
    let shard = dir.path().join("s-000.tar");
    write_tar(&shard, &members(3));
    let good = std::fs::read(&shard).unwrap();
    // The second member's header starts after the first header and the PNG's padded data.
    let second = 512 + good_png().len().div_ceil(512) * 512;
    let path = shard.to_str().unwrap();
    let mut bytes = good.clone();
    bytes[second + 3] ^= 0x55; // a byte of the member name: the checksum no longer matches
    std::fs::write(&shard, &bytes).unwrap();
    open_fails(
        json!({"kind": "tar", "shards": "s-{000..000}.tar".replace("s-", &format!("{}/s-", dir.path().display()))}),
        ErrorKind::Format,
        &[path, "corrupt tar header", "checksum"],
    );
    // Garbage where the first header should be.
    std::fs::write(&shard, vec![0x41; 2048]).unwrap();
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &[path, "corrupt tar header"],
    );
    // Truncated inside the third member's data (sample 001's PNG), or between members.
    let third = second + 1024;
    std::fs::write(&shard, &good[..third + 512 + 100]).unwrap();
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &[path, "runs past the end of the file"],
    );
    std::fs::write(&shard, &good[..third]).unwrap();
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &[path, "no end-of-archive block", "truncated"],
    );
    std::fs::write(&shard, &good[..third + 100]).unwrap();
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &[path, "corrupt tar header"],
    );
    // A sample without its label; a label that is not a number.
    write_tar(&shard, &members(2)[..3]);
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &[path, "sample `001` has no .cls member"],
    );
    let mut m = members(2);
    m[3].1 = b"cat".to_vec();
    write_tar(&shard, &m);
    open_fails(
        json!({"kind": "tar", "shards": [&shard]}),
        ErrorKind::Format,
        &["sample `001` has label text \"cat\""],
    );
    open_fails(
        json!({"kind": "tar", "shards": [dir.path().join("missing.tar")]}),
        ErrorKind::Io,
        &["missing.tar"],
    );
    let e = loader(json!({"source": {"kind": "tar", "shards": "a-{1..}.tar"}}))
        .err()
        .unwrap();
    assert!(e.message().contains("source.shards"), "{e}");
}

#[test]
fn npy_files_whose_header_lies() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let xp = x.to_str().unwrap();
    write_npy(&y, "<i8", &[4], &[0u8; 32]);
    // The header says 4 × 8 × 8 but the data holds 3 samples.
    write_npy(&x, "|u1", &[4, 8, 8], &[0u8; 3 * 64]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &[
            xp,
            "shape [4, 8, 8]",
            "256 data bytes",
            "192",
            "lying header",
        ],
    );
    // More data than the header says.
    write_npy(&x, "|u1", &[4, 8, 8], &[0u8; 5 * 64]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &[xp, "320 data bytes"],
    );
    // A shape that overflows.
    write_npy(&x, "|u1", &[usize::MAX / 2, 8, 8], &[0u8; 64]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &[xp, "overflows"],
    );
    // Samples that are not images under a transform, types, magic, label counts.
    write_npy(&x, "<f8", &[4, 8, 8], &[0u8; 4 * 64 * 8]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::InvalidArgument,
        &["config key `transform`", "f64 [8, 8]"],
    );
    write_npy(&x, "|u1", &[4, 64], &[0u8; 4 * 64]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::InvalidArgument,
        &["config key `transform`", "u8 [64]"],
    );
    write_npy(&x, "<c8", &[4, 8, 8], &[0u8; 4 * 64 * 8]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &["source.x", xp, "'<c8'"],
    );
    std::fs::write(&x, b"PK\x03\x04 a zip, not an npy").unwrap();
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &[xp, "magic"],
    );
    write_npy(&x, "|u1", &[5, 8, 8], &[0u8; 5 * 64]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &["4 labels", "5 samples"],
    );
    write_npy(&y, "|b1", &[5], &[0u8; 5]);
    open_fails(
        json!({"kind": "npy", "x": &x, "y": &y}),
        ErrorKind::Format,
        &["source.y", "bool"],
    );
    // Good files load.
    write_npy(&y, "|u1", &[5], &[1, 2, 3, 4, 5]);
    assert!(loader(json!({"source": {"kind": "npy", "x": &x, "y": &y}})).is_ok());
}

#[test]
fn image_folders_without_images() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("a/x.png"), good_png()).unwrap();
    std::fs::write(dir.path().join("b/x.gif"), b"GIF89a").unwrap();
    open_fails(
        json!({"kind": "image_folder", "root": dir.path()}),
        ErrorKind::Format,
        &["class directory `b` holds no .jpg, .jpeg or .png file"],
    );
    open_fails(
        json!({"kind": "image_folder", "root": dir.path().join("nope")}),
        ErrorKind::Io,
        &["source.root", "nope"],
    );
    let empty = tempfile::tempdir().unwrap();
    open_fails(
        json!({"kind": "image_folder", "root": empty.path()}),
        ErrorKind::Format,
        &["no class directories"],
    );
}

#[test]
fn the_c_abi_reports_a_broken_sample_as_thresher_format() {
    use std::ffi::{CStr, CString};
    use thresher::ffi::*;
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("c");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(class.join("0.jpg"), &good_jpeg()[..500]).unwrap();
    std::fs::write(class.join("1.png"), good_png()).unwrap();
    let config = json!({"source": {"kind": "image_folder", "root": dir.path()},
                        "batch_size": 1, "shuffle": false,
                        "transform": {"center_crop": 8}});
    let c = CString::new(config.to_string()).unwrap();
    let mut l = std::ptr::null_mut();
    assert_eq!(
        unsafe { thresher_loader_new(c.as_ptr(), &mut l) },
        thresher_status::THRESHER_OK
    );
    let mut b = std::ptr::null_mut();
    assert_eq!(
        unsafe { thresher_loader_next(l, &mut b) },
        thresher_status::THRESHER_FORMAT
    );
    let mut buf = vec![0 as std::ffi::c_char; 1024];
    unsafe { thresher_last_error(buf.as_mut_ptr(), buf.len()) };
    let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert!(msg.contains("sample 0") && msg.contains("c/0.jpg"), "{msg}");
    assert_eq!(
        unsafe { thresher_loader_next(l, &mut b) },
        thresher_status::THRESHER_OK
    );
    unsafe { thresher_batch_release(b) };
    unsafe { thresher_loader_free(l) };
}
