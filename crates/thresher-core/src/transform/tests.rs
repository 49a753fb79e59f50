use super::*;
use crate::source::SampleView;

fn cfg(dtype: Dtype, layout: Layout, norm: Option<(Vec<f32>, Vec<f32>)>) -> TransformConfig {
    TransformConfig {
        dtype,
        layout,
        normalize: norm.map(|(mean, std)| Normalize { mean, std }),
        ..Default::default()
    }
}

// A 1×2 image with 3 channels: pixel 0 = (10, 20, 30), pixel 1 = (40, 50, 60).
const PX: [u8; 6] = [10, 20, 30, 40, 50, 60];
fn view() -> SampleView<'static> {
    SampleView {
        pixels: &PX,
        height: 1,
        width: 2,
        channels: 3,
    }
}

#[test]
fn u8_layouts() {
    let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), Some([1, 2, 3]), 3).unwrap();
    let mut out = [0u8; 6];
    t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
        .unwrap();
    assert_eq!(out, [10, 40, 20, 50, 30, 60]);
    assert_eq!(t.out_shape(), [3, 1, 2]);
    let t = Transform::new(&cfg(Dtype::U8, Layout::Nhwc, None), Some([1, 2, 3]), 3).unwrap();
    t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
        .unwrap();
    assert_eq!(out, PX);
    assert_eq!(t.out_shape(), [1, 2, 3]);
}

#[test]
fn a_thin_image_resized_past_the_side_limit_is_this_samples_error() {
    // A variable-size source, Resize(65536) then a 4×4 crop: a 1×2 image would be resized
    // to 65536×131072 — fine — but a 1×20 one to 65536×1310720, a side above 2^20.
    let config = TransformConfig {
        dtype: Dtype::U8,
        resize: Some(Size::One(65536)),
        center_crop: Some(Size::One(4)),
        ..Default::default()
    };
    let t = Transform::new(&config, None, 3).unwrap();
    let mut out = [0u8; 48];
    let wide = [7u8; 60];
    let thin = SampleView {
        pixels: &wide,
        height: 1,
        width: 20,
        channels: 3,
    };
    let e = t
        .apply(&thin, 0, 0, &mut Workspace::default(), Out::U8(&mut out))
        .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Format);
    assert!(e.message().contains("transform.resize"), "{e}");
    t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
        .unwrap();
}

#[test]
fn f32_normalize_per_channel() {
    let norm = Some((vec![0.1, 0.2, 0.3], vec![0.5, 0.25, 2.0]));
    let t = Transform::new(&cfg(Dtype::F32, Layout::Nchw, norm), Some([1, 2, 3]), 3).unwrap();
    let mut out = [0f32; 6];
    t.apply(&view(), 0, 0, &mut Workspace::default(), Out::F32(&mut out))
        .unwrap();
    let want = |v: u8, m: f32, s: f32| (v as f32 / 255.0 - m) / s;
    let expect = [
        want(10, 0.1, 0.5),
        want(40, 0.1, 0.5),
        want(20, 0.2, 0.25),
        want(50, 0.2, 0.25),
        want(30, 0.3, 2.0),
        want(60, 0.3, 2.0),
    ];
    assert_eq!(out, expect);
    let t = Transform::new(&cfg(Dtype::F32, Layout::Nhwc, None), Some([1, 2, 3]), 3).unwrap();
    t.apply(&view(), 0, 0, &mut Workspace::default(), Out::F32(&mut out))
        .unwrap();
    assert_eq!(out, PX.map(|v| v as f32 / 255.0));
}

#[test]
fn bad_configs() {
    let e = cfg(Dtype::U8, Layout::Nchw, Some((vec![0.5], vec![0.5])));
    assert!(e.validate().unwrap_err().message().contains("dtype"));
    let e = cfg(Dtype::F32, Layout::Nchw, Some((vec![0.5], vec![0.0])));
    assert!(e.validate().unwrap_err().message().contains("std"));
    let e = cfg(Dtype::F32, Layout::Nchw, Some((vec![0.5, 0.5], vec![1.0])));
    assert!(e.validate().is_err());
    let two = cfg(
        Dtype::F32,
        Layout::Nchw,
        Some((vec![0.5, 0.5], vec![1.0, 1.0])),
    );
    assert!(Transform::new(&two, Some([1, 2, 3]), 3).is_err());
    let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), Some([2, 2, 3]), 3).unwrap();
    assert!(t
        .apply(
            &view(),
            0,
            0,
            &mut Workspace::default(),
            Out::U8(&mut [0; 12])
        )
        .is_err());
}

#[test]
fn a_random_crop_padded_past_the_image_side_is_zeros_where_it_misses() {
    // torchvision's RandomCrop(1, padding=5) on a 1×2 image: the window can land wholly
    // beside the image (zeros) or on either pixel; neither may read past a row.
    let config = TransformConfig {
        dtype: Dtype::U8,
        layout: Layout::Nhwc,
        random_crop: Some(RandomCropConfig {
            size: Size::One(1),
            padding: Padding([5; 4]),
        }),
        hflip: 0.5,
        ..Default::default()
    };
    let t = Transform::new(&config, None, 3).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for id in 0..400 {
        let mut out = [9u8; 3];
        t.apply(&view(), 0, id, &mut Workspace::default(), Out::U8(&mut out))
            .unwrap();
        assert!(
            [[0; 3], [10, 20, 30], [40, 50, 60]].contains(&out),
            "{out:?}"
        );
        seen.insert(out);
    }
    assert_eq!(seen.len(), 3, "every outcome is drawn: {seen:?}");
}

#[test]
fn a_crop_may_be_given_by_its_size_alone_as_torchvision_writes_it() {
    let parse = |json: &str| serde_json::from_str::<TransformConfig>(json);
    let t = parse(r#"{"random_resized_crop": 224, "hflip": 0.5}"#).unwrap();
    assert_eq!(
        t.random_resized_crop,
        Some(RandomResizedCropConfig {
            size: Size::One(224),
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        })
    );
    // The object with only `size` means the same.
    assert_eq!(
        parse(r#"{"random_resized_crop": {"size": 224}}"#)
            .unwrap()
            .random_resized_crop,
        t.random_resized_crop
    );
    let t = parse(r#"{"random_crop": [24, 32]}"#).unwrap();
    assert_eq!(
        t.random_crop,
        Some(RandomCropConfig {
            size: Size::Hw(24, 32),
            padding: Padding([0; 4]),
        })
    );
    let t = parse(r#"{"random_crop": {"size": 28, "padding": 4}}"#).unwrap();
    assert_eq!(t.random_crop.unwrap().padding, Padding([4; 4]));
    // Unknown keys of the object form are still named, and a bad size is still refused.
    let e = parse(r#"{"random_resized_crop": {"size": 8, "scales": [0.5, 1]}}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `scales`"), "{e}");
    let e = parse(r#"{"random_crop": {"padding": 4}}"#).unwrap_err();
    assert!(e.to_string().contains("missing field `size`"), "{e}");
    let e = parse(r#"{"random_crop": "big"}"#).unwrap_err();
    assert!(e.to_string().contains("expected a size"), "{e}");
    assert!(parse(r#"{"random_resized_crop": 0}"#)
        .unwrap()
        .validate()
        .unwrap_err()
        .message()
        .contains("transform.random_resized_crop.size"));
}
