//! Criterion: the image pipeline's per-sample stages on one 500×375 JPEG photograph, single
//! threaded: decode (read + zune-jpeg + colour), and the transforms of torchvision's ImageNet
//! recipes (RandomResizedCrop 224 + flip → f32 NCHW normalised; Resize 256 + CenterCrop 224).
//! Uses data/bench-jpeg (made by `make bench-images`) when it is there, else a synthetic image.
//!
//!     cargo bench --bench images

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use thresher_core::source::{Scratch, SourceConfig};
use thresher_core::transform::{Out, Transform, TransformConfig, Workspace};

/// A JPEG file to decode: the first of data/bench-jpeg, or a synthetic one written to a
/// temporary directory.
fn jpeg(tmp: &tempfile::TempDir) -> PathBuf {
    let bench = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/bench-jpeg/class00/00000.jpg"
    ));
    if bench.exists() {
        return bench;
    }
    let img = image::RgbImage::from_fn(500, 375, |x, y| {
        let v = |s: f32| ((x as f32 * s).sin() * (y as f32 * 0.05).cos() * 100.0 + 128.0) as u8;
        image::Rgb([v(0.03), v(0.05), v(0.08)])
    });
    let path = tmp.path().join("synthetic.jpg");
    let mut out = std::fs::File::create(&path).unwrap();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    path
}

fn stages(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let file = jpeg(&tmp);
    let manifest = tmp.path().join("m.tsv");
    std::fs::write(&manifest, format!("{}\t0\n", file.display())).unwrap();
    let source: SourceConfig =
        serde_json::from_value(serde_json::json!({"kind": "image_folder", "manifest": manifest}))
            .unwrap();
    let source = source.open().unwrap();
    let mut scratch = Scratch::default();
    let mut group = c.benchmark_group("image_sample");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    group.bench_function("decode_jpeg", |b| {
        b.iter(|| source.read(0, &mut scratch).unwrap().pixels.len())
    });
    let view = source.read(0, &mut scratch).unwrap();
    let (px, h, w) = (view.pixels.to_vec(), view.height, view.width);
    let recipes = [
        (
            "random_resized_crop_224_flip_f32",
            serde_json::json!({"random_resized_crop": {"size": 224}, "hflip": 0.5,
                               "normalize": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}),
        ),
        (
            "resize_256_center_crop_224_f32",
            serde_json::json!({"resize": 256, "center_crop": 224,
                               "normalize": {"mean": [0.485, 0.456, 0.406],
                                             "std": [0.229, 0.224, 0.225]}}),
        ),
        (
            "center_crop_224_u8",
            serde_json::json!({"center_crop": 224, "dtype": "u8"}),
        ),
    ];
    for (name, config) in recipes {
        let config: TransformConfig = serde_json::from_value(config).unwrap();
        let t = Transform::new(&config, None, 3).unwrap();
        let mut ws = Workspace::default();
        let mut out_f32 = vec![0f32; t.sample_bytes() / 4];
        let mut out_u8 = vec![0u8; t.sample_bytes()];
        let view = thresher_core::source::SampleView {
            pixels: &px,
            height: h,
            width: w,
            channels: 3,
        };
        let mut id = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                id += 1;
                let out = match t.dtype() {
                    thresher_core::transform::Dtype::F32 => Out::F32(&mut out_f32),
                    _ => Out::U8(&mut out_u8),
                };
                t.apply(&view, 0, id, &mut ws, out).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
