//! The image pipeline end to end on synthetic data: each source format (cifar, image_folder and
//! its manifest, tar shards, npy), crop and flip geometry on images with known pixels, the same
//! batches for 1 and 4 workers with augmentation on, and `on_error` fail and skip.

mod image_util;

use std::path::Path;
use std::sync::Arc;

use image::DynamicImage;
use image_util::*;
use serde_json::json;
use thresher_core::source::{Scratch, Source, SourceConfig};
use thresher_core::transform::{Out, Transform, TransformConfig, Workspace};
use thresher_core::{Config, ErrorKind, Loader};

fn open(source: serde_json::Value) -> Arc<dyn Source> {
    let c: SourceConfig = serde_json::from_value(source).unwrap();
    c.open().unwrap()
}

fn loader(config: serde_json::Value) -> Loader {
    Loader::new(Config::from_json(&config.to_string()).unwrap()).unwrap()
}

fn tc(v: serde_json::Value) -> TransformConfig {
    serde_json::from_value(v).unwrap()
}

/// Every batch of `epochs` epochs: (ids, labels, bytes).
type Seen = Vec<(Vec<u64>, Vec<i64>, Vec<u8>)>;
fn run(l: &Loader, epochs: usize) -> Seen {
    let mut out = Vec::new();
    for _ in 0..epochs {
        while let Some(b) = l.next().unwrap() {
            out.push((
                b.ids().to_vec(),
                b.labels().to_vec(),
                b.data_bytes().to_vec(),
            ));
        }
    }
    out
}

#[test]
fn cifar_10_and_100_read_as_hwc_with_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("data_batch_1.bin"),
        dir.path().join("data_batch_2.bin"),
    );
    std::fs::write(&a, cifar_bytes(3, false)).unwrap();
    std::fs::write(&b, cifar_bytes(2, false)).unwrap();
    let s = open(json!({"kind": "cifar", "files": [a, b]}));
    assert_eq!((s.len(), s.sample_shape()), (5, Some([32, 32, 3])));
    let mut scratch = Scratch::default();
    // Sample 4 is record 1 of the second file.
    let v = s.read(4, &mut scratch).unwrap();
    for p in [0, 1, 33, 1023] {
        for c in 0..3 {
            assert_eq!(v.pixels[p * 3 + c], ((1 + p + 50 * c) % 256) as u8);
        }
    }
    assert_eq!(
        (0..5).map(|i| s.label(i)).collect::<Vec<_>>(),
        [0, 1, 2, 0, 1]
    );

    let c100 = dir.path().join("train.bin");
    std::fs::write(&c100, cifar_bytes(30, true)).unwrap();
    let fine = open(json!({"kind": "cifar", "files": [&c100], "cifar100_label": "fine"}));
    let coarse = open(json!({"kind": "cifar", "files": [&c100], "cifar100_label": "coarse"}));
    assert_eq!((fine.label(25), coarse.label(25)), (25, 5));
    let v = fine.read(2, &mut scratch).unwrap();
    assert_eq!(&v.pixels[..3], &[2, 52, 102]);
    let limited =
        open(json!({"kind": "cifar", "files": [&c100], "cifar100_label": "fine", "limit": 7}));
    assert_eq!(limited.len(), 7);

    // Through the loader, as u8 NCHW: the planes come back.
    let l = loader(
        json!({"source": {"kind": "cifar", "files": [a]}, "batch_size": 3,
                          "shuffle": false, "transform": {"dtype": "u8"}}),
    );
    let batch = l.next().unwrap().unwrap();
    assert_eq!(batch.shape(), [3, 3, 32, 32]);
    let d = batch.data_bytes();
    assert_eq!((d[0], d[1024], d[2048]), (0, 50, 100));
    assert_eq!(batch.labels(), &[0, 1, 2]);
}

#[test]
fn image_folder_numbers_classes_and_files_as_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let img =
        |v: u8| DynamicImage::ImageLuma8(image::GrayImage::from_raw(2, 2, vec![v; 4]).unwrap());
    // Python sorts str by code point: "C" < "a" < "b".
    for (class, files) in [
        ("b", &["z.png", "a.PNG"][..]),
        ("a", &["1.png"]),
        ("C", &["x.png"]),
    ] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for (i, f) in files.iter().enumerate() {
            save_png(
                &img(10 * i as u8 + class.as_bytes()[0]),
                &root.join(class).join(f),
            );
        }
    }
    // Nested directories are walked; other files are ignored; a file at the top is not a class.
    std::fs::create_dir_all(root.join("a/sub")).unwrap();
    save_png(&img(200), &root.join("a/sub/0.png"));
    std::fs::write(root.join("a/notes.txt"), "x").unwrap();
    std::fs::write(root.join("README"), "x").unwrap();
    let s = open(json!({"kind": "image_folder", "root": root, "color": "gray"}));
    let locations: Vec<String> = (0..s.len()).map(|i| s.location(i).unwrap()).collect();
    let rel: Vec<&str> = locations
        .iter()
        .map(|l| l.strip_prefix(&format!("{}/", root.display())).unwrap())
        .collect();
    assert_eq!(
        rel,
        ["C/x.png", "a/1.png", "a/sub/0.png", "b/a.PNG", "b/z.png"]
    );
    assert_eq!(
        (0..5).map(|i| s.label(i)).collect::<Vec<_>>(),
        [0, 1, 1, 2, 2]
    );
    assert_eq!((s.sample_shape(), s.channels()), (None, 1));
    let mut scratch = Scratch::default();
    assert_eq!(s.read(2, &mut scratch).unwrap().pixels, &[200; 4]);

    // A manifest: relative paths from its own directory, any labels.
    let m = root.join("list.tsv");
    std::fs::write(&m, "b/z.png\t7\n\na/1.png\t-3\r\n").unwrap();
    let s = open(json!({"kind": "image_folder", "manifest": m}));
    assert_eq!(
        (s.len(), s.label(0), s.label(1), s.channels()),
        (2, 7, -3, 3)
    );
    assert_eq!(s.read(1, &mut scratch).unwrap().pixels, &[b'a'; 12]);
    std::fs::write(&m, "b/z.png 7\n").unwrap();
    let c: SourceConfig =
        serde_json::from_value(json!({"kind": "image_folder", "manifest": m})).unwrap();
    let e = c.open().err().unwrap();
    assert!(
        e.message().contains("list.tsv:1") && e.message().contains("no tab"),
        "{e}"
    );
    let c: SourceConfig =
        serde_json::from_value(json!({"kind": "image_folder", "root": root, "manifest": m}))
            .unwrap();
    assert!(c
        .open()
        .err()
        .unwrap()
        .message()
        .contains("exactly one of `root` and `manifest`"));
}

#[test]
fn tar_shards_group_members_by_key_and_read_by_offset() {
    let dir = tempfile::tempdir().unwrap();
    let pic = |seed| DynamicImage::ImageRgb8(photo(12, 9, seed));
    let mut expected = Vec::new();
    for shard in 0..3 {
        let mut members = Vec::new();
        for k in 0..4 {
            let key = format!("dir/s{shard}_{k:02}");
            let img = pic(shard * 10 + k);
            // Alternate JPEG and PNG; put the label first for some samples, extras between.
            let (ext, bytes) = if k % 2 == 0 {
                ("jpg", jpeg_bytes(&img, 95))
            } else {
                ("png", png_bytes(&img))
            };
            let label = format!("{}\n", shard * 100 + k);
            if k == 1 {
                members.push((format!("{key}.cls"), label.into_bytes()));
                members.push((format!("{key}.json"), b"{}".to_vec()));
                members.push((format!("{key}.{ext}"), bytes.clone()));
            } else {
                members.push((format!("{key}.{ext}"), bytes.clone()));
                members.push((format!("{key}.cls"), label.into_bytes()));
            }
            expected.push((format!("{key}.{ext}"), (shard * 100 + k) as i64, bytes));
        }
        write_tar(&dir.path().join(format!("train-{shard:04}.tar")), &members);
    }
    let pattern = dir.path().join("train-{0000..0002}.tar");
    let s = open(json!({"kind": "tar", "shards": pattern.to_str().unwrap()}));
    assert_eq!(s.len(), 12);
    let mut scratch = Scratch::default();
    for (id, (name, label, bytes)) in expected.iter().enumerate() {
        assert_eq!(s.label(id), *label);
        assert!(s.location(id).unwrap().ends_with(&format!(".tar:{name}")));
        let want = image::load_from_memory(bytes).unwrap().to_rgb8();
        let got = s.read(id, &mut scratch).unwrap();
        assert_eq!((got.height, got.width, got.channels), (9, 12, 3));
        if name.ends_with("png") {
            assert_eq!(got.pixels, want.as_raw().as_slice(), "{name}");
        } else {
            let max = got
                .pixels
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(max.unwrap() <= 3, "{name}: {max:?}");
        }
    }
    // A list of shards works the same; a limit stops indexing early.
    let list: Vec<_> = (0..2)
        .map(|i| dir.path().join(format!("train-{i:04}.tar")))
        .collect();
    let s = open(json!({"kind": "tar", "shards": list, "limit": 5}));
    assert_eq!(s.len(), 5);
}

#[test]
fn npy_u8_f32_and_chw() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    // 3 samples of 2×2×3, value = 12i + position.
    let data: Vec<u8> = (0..36).collect();
    write_npy(&x, "|u1", &[3, 2, 2, 3], &data);
    let labels: Vec<u8> = [5i64, -1, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&y, "<i8", &[3], &labels);
    let s = open(json!({"kind": "npy", "x": x, "y": y}));
    let mut scratch = Scratch::default();
    assert_eq!(s.read(1, &mut scratch).unwrap().pixels, &data[12..24]);
    assert_eq!((s.label(1), s.sample_shape()), (-1, Some([2, 2, 3])));
    // The same array read as [N, C, H, W]: C = 2, H = 2, W = 3, transposed to HWC.
    let s = open(json!({"kind": "npy", "x": x, "y": y, "x_layout": "chw"}));
    assert_eq!(s.sample_shape(), Some([2, 3, 2]));
    assert_eq!(
        s.read(0, &mut scratch).unwrap().pixels,
        &[0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    );
    // f32 in [0, 1], quantised to bytes (opt-in `to_u8`); int32 labels.
    let vals = [0.0f32, 1.0, 0.5, -0.2, 1.7, f32::NAN, 0.1, 0.002];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&x, "<f4", &[2, 2, 2], &bytes);
    let l32: Vec<u8> = [3i32, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&y, "<i4", &[2], &l32);
    let s = open(json!({"kind": "npy", "x": x, "y": y, "to_u8": true}));
    assert_eq!(s.read(0, &mut scratch).unwrap().pixels, &[0, 255, 128, 0]);
    assert_eq!(s.read(1, &mut scratch).unwrap().pixels, &[255, 0, 26, 1]);
    assert_eq!(s.label(1), 4);
    write_npy(&y, "|u1", &[2], &[250, 251]);
    assert_eq!(open(json!({"kind": "npy", "x": x, "y": y})).label(0), 250);
    // Without `to_u8` an f32 array is not an image source: it is delivered as it is.
    let s = open(json!({"kind": "npy", "x": x, "y": y}));
    assert_eq!(s.sample_shape(), None);
    assert!(s.tensors().is_some());
}

/// Applies `config` to `img` as sample `id` of epoch 0 and returns the u8 HWC output.
fn apply(config: serde_json::Value, img: &image::RgbImage, id: u64) -> (Vec<u8>, [usize; 3]) {
    let mut config = config;
    config["dtype"] = json!("u8");
    config["layout"] = json!("nhwc");
    let t = Transform::new(&tc(config), None, 3).unwrap().with_seed(5);
    let view = thresher_core::source::SampleView {
        pixels: img.as_raw(),
        height: img.height() as usize,
        width: img.width() as usize,
        channels: 3,
    };
    let mut out = vec![0u8; t.sample_bytes()];
    t.apply(&view, 0, id, &mut Workspace::default(), Out::U8(&mut out))
        .unwrap();
    (out, t.out_shape())
}

/// (x, y) of output pixel (r, c) of an HWC `coordinates` image; None for a padding pixel.
fn xy(out: &[u8], w: usize, r: usize, c: usize) -> Option<(u8, u8)> {
    let p = &out[(r * w + c) * 3..(r * w + c) * 3 + 3];
    (p[2] == 7).then_some((p[0], p[1]))
}

#[test]
fn crops_and_flips_land_where_torchvision_puts_them() {
    let img = coordinates(10, 7);
    // CenterCrop 4×6 of 7×10: top round(1.5) = 2, left round(2.0) = 2.
    let (out, shape) = apply(json!({"center_crop": [4, 6]}), &img, 0);
    assert_eq!(shape, [4, 6, 3]);
    assert_eq!(xy(&out, 6, 0, 0), Some((2, 2)));
    assert_eq!(xy(&out, 6, 3, 5), Some((7, 5)));
    // CenterCrop larger than the image: zero padding, (9 − 7) // 2 = 1 row above.
    let (out, _) = apply(json!({"center_crop": [9, 10]}), &img, 0);
    assert_eq!(xy(&out, 10, 0, 0), None);
    assert_eq!(xy(&out, 10, 1, 0), Some((0, 0)));
    assert_eq!(xy(&out, 10, 8, 9), None);
    // Flip with p = 1: columns reversed.
    let (out, _) = apply(json!({"center_crop": [7, 10], "hflip": 1.0}), &img, 0);
    assert_eq!(xy(&out, 10, 0, 0), Some((9, 0)));
    assert_eq!(xy(&out, 10, 6, 9), Some((0, 6)));
    // RandomCrop 7×10 with padding 2: a shifted window, consistent everywhere, and every
    // offset in -2..=2 turns up across samples.
    let mut offsets = std::collections::HashSet::new();
    for id in 0..300 {
        let (out, _) = apply(
            json!({"random_crop": {"size": [7, 10], "padding": 2}}),
            &img,
            id,
        );
        let (r, c) = (3, 5);
        let (x, y) = xy(&out, 10, r, c).unwrap();
        let (dx, dy) = (x as isize - c as isize, y as isize - r as isize);
        for rr in 0..7 {
            for cc in 0..10 {
                let (sx, sy) = (cc as isize + dx, rr as isize + dy);
                let inside = (0..10).contains(&sx) && (0..7).contains(&sy);
                let want = inside.then_some((sx as u8, sy as u8));
                assert_eq!(xy(&out, 10, rr, cc), want, "id {id}");
            }
        }
        offsets.insert((dx, dy));
    }
    assert_eq!(offsets.len(), 25);
    // Flips happen about half the time with p = 0.5, and the same id always gets the same.
    let flipped = (0..400)
        .filter(|&id| apply(json!({"hflip": 0.5, "center_crop": [7, 10]}), &img, id).0[0] == 9)
        .count();
    assert!((150..250).contains(&flipped), "{flipped}");
    let a = apply(json!({"hflip": 0.5, "center_crop": [7, 10]}), &img, 17);
    assert_eq!(
        a,
        apply(json!({"hflip": 0.5, "center_crop": [7, 10]}), &img, 17)
    );
    // RandomResizedCrop to 5×5 of a constant image is constant (weights sum to one).
    let flat = image::RgbImage::from_pixel(40, 30, image::Rgb([90, 91, 92]));
    let (out, shape) = apply(json!({"random_resized_crop": {"size": 5}}), &flat, 3);
    assert_eq!(shape, [5, 5, 3]);
    assert!(out.chunks(3).all(|p| p == [90, 91, 92]));
}

#[test]
fn variable_size_sources_need_a_transform_that_fixes_the_size() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(
        dir.path(),
        &[("a", vec![DynamicImage::ImageRgb8(photo(8, 6, 0))])],
    );
    let c = |t: serde_json::Value| {
        Config::from_json(
            &json!({"source": {"kind": "image_folder", "root": dir.path()}, "transform": t})
                .to_string(),
        )
        .unwrap()
    };
    let e = Loader::new(c(json!({"resize": 4}))).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.message().contains("`transform`") && e.message().contains("vary in size"),
        "{e}"
    );
    let l = Loader::new(c(json!({"resize": [3, 5], "dtype": "u8"}))).unwrap();
    assert_eq!(l.next().unwrap().unwrap().shape(), [1, 3, 3, 5]);
    let l = Loader::new(c(json!({"resize": 4, "center_crop": 4}))).unwrap();
    assert_eq!(l.next().unwrap().unwrap().shape(), [1, 3, 4, 4]);
}

/// A folder of 3 classes × `per` JPEG and PNG photos of varying sizes.
fn photo_folder(root: &Path, per: u32) {
    for class in 0..3u32 {
        let dir = root.join(format!("c{class}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per {
            let img = DynamicImage::ImageRgb8(photo(40 + 3 * i, 30 + 2 * class, class * 100 + i));
            if i % 2 == 0 {
                std::fs::write(dir.join(format!("{i}.jpg")), jpeg_bytes(&img, 90)).unwrap();
            } else {
                save_png(&img, &dir.join(format!("{i}.png")));
            }
        }
    }
}

#[test]
fn augmented_batches_are_the_same_for_1_and_4_workers() {
    let dir = tempfile::tempdir().unwrap();
    photo_folder(dir.path(), 12);
    let config = |workers: usize, seed: u64| {
        json!({"source": {"kind": "image_folder", "root": dir.path()},
               "batch_size": 5, "workers": workers, "seed": seed, "prefetch": 3,
               "transform": {"random_resized_crop": {"size": 16}, "hflip": 0.5,
                             "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}})
    };
    let one = run(&loader(config(1, 3)), 2);
    let four = run(&loader(config(4, 3)), 2);
    assert_eq!(one.len(), 16); // 36 samples in batches of 5, two epochs
    assert!(one == four, "1 and 4 workers differ");
    // Augmentation differs between epochs and between seeds.
    let epoch = |seen: &Seen, e: usize| {
        let mut by_id: Vec<(u64, Vec<u8>)> = Vec::new();
        for (ids, _, bytes) in &seen[e * 8..(e + 1) * 8] {
            let per = bytes.len() / ids.len();
            for (j, &id) in ids.iter().enumerate() {
                by_id.push((id, bytes[j * per..(j + 1) * per].to_vec()));
            }
        }
        by_id.sort();
        by_id
    };
    assert_ne!(epoch(&one, 0), epoch(&one, 1));
    let other = run(&loader(config(2, 4)), 1);
    assert_ne!(epoch(&one, 0), epoch(&other, 0));
}

#[test]
fn on_error_fail_names_the_sample_and_skip_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    photo_folder(dir.path(), 4); // c0: 0.jpg 1.png 2.jpg 3.png, c1: …, c2: …
    let bad = dir.path().join("c1/1.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    let truncated = dir.path().join("c2/0.jpg");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let config = |on_error: &str| {
        json!({"source": {"kind": "image_folder", "root": dir.path()}, "on_error": on_error,
               "batch_size": 4, "shuffle": false, "workers": 2,
               "transform": {"center_crop": 24, "dtype": "u8"}})
    };
    // fail: batch 1 holds sample 5 (c1/1.png) and batch 2 sample 8 (c2/0.jpg).
    let l = loader(config("fail"));
    assert_eq!(l.next().unwrap().unwrap().ids(), &[0, 1, 2, 3]);
    let e = l.next().err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(
        e.message().contains("sample 5") && e.message().contains("c1/1.png"),
        "{e}"
    );
    assert!(e.message().contains("not a JPEG or PNG"), "{e}");
    let e = l.next().err().unwrap();
    assert!(
        e.message().contains("sample 8") && e.message().contains("c2/0.jpg"),
        "{e}"
    );
    assert!(e.message().contains("bad JPEG"), "{e}");
    assert!(l.next().unwrap().is_none());
    assert_eq!(l.report().skipped, 0);

    // skip: shorter batches, counted and listed (in the report file too); the epoch goes on.
    let report_file = dir.path().join("report.jsonl");
    let mut c = config("skip");
    c["report"] = json!(report_file);
    let l = loader(c);
    let seen = run(&l, 1);
    let ids: Vec<Vec<u64>> = seen.iter().map(|s| s.0.clone()).collect();
    assert_eq!(ids, [vec![0, 1, 2, 3], vec![4, 6, 7], vec![9, 10, 11]]);
    assert_eq!(seen[1].2.len(), 3 * 24 * 24 * 3);
    assert_eq!(seen[1].1, [1, 1, 1]);
    let report = l.report();
    assert_eq!((report.skipped, report.samples), (2, 12));
    let skipped = l.skipped_samples();
    assert_eq!(skipped.iter().map(|s| s.id).collect::<Vec<_>>(), [5, 8]);
    assert!(skipped[0]
        .location
        .as_deref()
        .unwrap()
        .ends_with("c1/1.png"));
    assert!(skipped[1].reason.contains("bad JPEG"), "{:?}", skipped[1]);
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&report_file).unwrap().trim()).unwrap();
    assert_eq!(line["skipped"], 2);
    assert_eq!(line["skipped_samples"][1]["id"], 8);
    let loc = line["skipped_samples"][1]["location"].as_str().unwrap();
    assert!(loc.ends_with("c2/0.jpg"), "{line}");
    // The next epoch starts a new count.
    assert_eq!(run(&l, 1).len(), 3);
    assert_eq!(l.skipped_samples().len(), 2);

    // A batch whose every sample fails is passed over.
    for f in ["c0/0.jpg", "c0/1.png", "c0/2.jpg", "c0/3.png"] {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    let l = loader(config("skip"));
    let seen = run(&l, 1);
    assert_eq!(seen[0].0, [4, 6, 7]);
    assert_eq!(l.report().skipped, 6);
    assert!(l.skipped_samples()[0].reason.contains("empty file"));
}

#[test]
fn the_cifar_recipe_pads_crops_and_flips_the_same_for_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("data_batch_1.bin");
    std::fs::write(&f, cifar_bytes(50, false)).unwrap();
    let config = |workers: usize| {
        json!({"source": {"kind": "cifar", "files": [&f]}, "batch_size": 16, "workers": workers,
               "seed": 11, "transform": {"random_crop": {"size": 32, "padding": 4},
                                         "hflip": 0.5, "dtype": "u8", "layout": "nhwc"}})
    };
    let one = run(&loader(config(1)), 2);
    assert!(one == run(&loader(config(4)), 2));
    // Some samples were shifted into the zero padding: a row or a column of black pixels at
    // an edge (the synthetic CIFAR pixels are never black: their channels differ by 50).
    let mut padded = 0;
    for (_, _, bytes) in &one {
        for sample in bytes.chunks_exact(32 * 32 * 3) {
            let top_row_zero = sample[..32 * 3].iter().all(|&v| v == 0);
            let left_col_zero = (0..32).all(|r| sample[r * 96..r * 96 + 3] == [0, 0, 0]);
            padded += usize::from(top_row_zero || left_col_zero);
        }
    }
    assert!(padded > 10, "{padded} of 100 samples show padding");
}

#[test]
fn image_folder_follows_symbolic_links_as_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    save_png(
        &DynamicImage::ImageRgb8(photo(4, 4, 1)),
        &elsewhere.join("x.png"),
    );
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("b")).unwrap();
    save_png(
        &DynamicImage::ImageRgb8(photo(4, 4, 2)),
        &root.join("b/y.png"),
    );
    std::os::unix::fs::symlink(&elsewhere, root.join("a")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("b/nested")).unwrap();
    let s = open(json!({"kind": "image_folder", "root": root}));
    let locations: Vec<String> = (0..s.len()).map(|i| s.location(i).unwrap()).collect();
    assert!(locations[0].ends_with("root/a/x.png"), "{locations:?}");
    // sorted(os.walk("root/b")): "root/b" (y.png) comes before "root/b/nested".
    assert!(locations[1].ends_with("root/b/y.png"), "{locations:?}");
    let nested = &locations[2];
    assert!(nested.ends_with("root/b/nested/x.png"), "{locations:?}");
    assert_eq!((s.label(0), s.label(1), s.label(2)), (0, 1, 1));
}
