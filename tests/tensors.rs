//! Typed samples and targets (`npy` of every dtype, any rank) and token streams (contiguous
//! blocks and ragged documents): bytes come out of a batch exactly as they are in the file, in
//! plan order, and every bad input is refused naming its file and config key.

mod image_util;

use std::path::Path;

use image_util::{replace_file, write_npy};
use serde_json::json;
use thresher_core::{Config, Dtype, ErrorKind, Loader, TensorView};

fn loader(config: serde_json::Value) -> thresher_core::Result<Loader> {
    Loader::new(Config::from_json(&config.to_string())?)
}

/// NumPy's type string of a dtype (bf16 has none: a 2-byte unsigned file with `x_dtype`).
fn descr(d: Dtype) -> &'static str {
    match d {
        Dtype::U8 => "|u1",
        Dtype::I8 => "|i1",
        Dtype::U16 | Dtype::BF16 => "<u2",
        Dtype::I16 => "<i2",
        Dtype::U32 => "<u4",
        Dtype::I32 => "<i4",
        Dtype::I64 => "<i8",
        Dtype::F16 => "<f2",
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
    }
}

/// Deterministic bytes that exercise every bit (NaN and infinity patterns included).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Every batch of one epoch (unshuffled): (data bytes, shape, dtype, labels, targets bytes,
/// targets shape/dtype, mask bytes), concatenated over batches.
#[derive(Default, Debug)]
struct Epoch {
    data: Vec<u8>,
    shapes: Vec<Vec<usize>>,
    dtype: Option<Dtype>,
    labels: Vec<i64>,
    targets: Vec<u8>,
    target_shape: Option<Vec<usize>>,
    target_dtype: Option<Dtype>,
    mask: Vec<u8>,
    ids: Vec<u64>,
}

fn epoch(l: &Loader) -> Epoch {
    let mut e = Epoch::default();
    while let Some(b) = l.next().unwrap() {
        let d = b.data().unwrap();
        assert_eq!(d.bytes.as_ptr() as usize % 64, 0, "data is 64-byte aligned");
        assert_eq!(d.bytes, b.data_bytes());
        assert_eq!((d.dtype, d.shape), (b.dtype(), b.shape()));
        assert_eq!(
            d.bytes.len(),
            d.shape.iter().product::<usize>() * d.dtype.size()
        );
        e.data.extend_from_slice(d.bytes);
        e.shapes.push(b.shape().to_vec());
        e.dtype = Some(b.dtype());
        e.labels.extend_from_slice(b.labels());
        e.ids.extend_from_slice(b.ids());
        if let Some(TensorView {
            dtype,
            shape,
            bytes,
        }) = b.targets()
        {
            assert_eq!(bytes.as_ptr() as usize % 64, 0);
            assert_eq!(shape[0], b.len());
            e.targets.extend_from_slice(bytes);
            e.target_shape = Some(shape[1..].to_vec());
            e.target_dtype = Some(dtype);
        }
        if let Some(m) = b.mask() {
            assert_eq!((m.dtype, m.shape[0]), (Dtype::U8, b.len()));
            e.mask.extend_from_slice(m.bytes);
        }
    }
    e
}

fn plain(source: serde_json::Value) -> serde_json::Value {
    json!({"source": source, "batch_size": 3, "shuffle": false, "workers": 2})
}

#[test]
fn npy_samples_of_every_dtype_come_out_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    for (k, d) in Dtype::ALL.into_iter().enumerate() {
        let n = 7;
        let shape = [n, 3, 2];
        let bytes = noise(n * 6 * d.size(), k as u64);
        write_npy(&x, descr(d), &shape, &bytes);
        let mut src = json!({"kind": "npy", "x": &x});
        if d == Dtype::BF16 {
            src["x_dtype"] = json!("bf16");
        }
        let e = epoch(&loader(plain(src)).unwrap());
        assert_eq!(e.data, bytes, "{d}");
        assert_eq!(e.dtype, Some(d));
        assert_eq!(e.shapes, [vec![3, 3, 2], vec![3, 3, 2], vec![1, 3, 2]]);
        assert!(e.labels.is_empty() && e.targets.is_empty() && e.mask.is_empty());
        // The same array as targets: [N, 3, 2] in its own dtype, no class labels.
        if d != Dtype::BF16 {
            write_npy(&y, descr(d), &shape, &bytes);
            let xs = noise(n * 4 * 4, 99);
            write_npy(&x, "<f4", &[n, 4], &xs);
            let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x, "y": &y}))).unwrap());
            assert_eq!((e.data, e.targets), (xs, bytes), "{d}");
            assert_eq!(e.target_shape, Some(vec![3, 2]));
            assert_eq!(e.target_dtype, Some(d));
            assert!(e.labels.is_empty());
        }
    }
}

#[test]
fn npy_targets_labels_and_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    // Scalars ([N]) and rank 7 samples are both samples.
    write_npy(&x, "<f8", &[4], &noise(32, 1));
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x}))).unwrap());
    assert_eq!(e.shapes, [vec![3], vec![1]]);
    let seven = [2, 1, 2, 1, 2, 1, 2, 1];
    write_npy(&x, "|u1", &seven, &noise(16, 2));
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x}))).unwrap());
    assert_eq!(e.shapes, [seven.to_vec()]);
    let eight = [2, 1, 2, 1, 2, 1, 2, 1, 1];
    write_npy(&x, "|u1", &eight, &noise(16, 2));
    let err = loader(plain(json!({"kind": "npy", "x": &x})))
        .err()
        .unwrap();
    assert!(
        err.message().contains("source.x") && err.message().contains("at most 7"),
        "{err}"
    );
    // Integer [N]: class labels (int64) and targets in the file's dtype.
    write_npy(&x, "<f4", &[4, 2], &noise(32, 3));
    let l: Vec<u8> = [3i16, -2, 7, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&y, "<i2", &[4], &l);
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x, "y": &y}))).unwrap());
    assert_eq!(e.labels, [3, -2, 7, 1]);
    assert_eq!((e.targets, e.target_dtype), (l, Some(Dtype::I16)));
    assert_eq!(e.target_shape, Some(vec![]));
    // uint64 labels: int64 targets.
    let l: Vec<u8> = [5u64, 6, 7, 8]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&y, "<u8", &[4], &l);
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x, "y": &y}))).unwrap());
    assert_eq!(e.labels, [5, 6, 7, 8]);
    assert_eq!((e.targets, e.target_dtype), (l, Some(Dtype::I64)));
    // Float [N]: regression targets, no labels; `limit` cuts both.
    let t: Vec<u8> = [0.5f32, -1.0, 2.25, 9.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&y, "<f4", &[4], &t);
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x, "y": &y, "limit": 3}))).unwrap());
    assert_eq!((e.targets, e.labels.len()), (t[..12].to_vec(), 0));
    assert_eq!(e.ids, [0, 1, 2]);
}

#[test]
fn npy_u8_images_still_take_a_transform_and_quantising_is_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    write_npy(&x, "|u1", &[2, 2, 2], &[0, 51, 102, 255, 1, 2, 3, 4]);
    write_npy(&y, "|u1", &[2], &[1, 0]);
    // No transform: raw u8 [B, H, W].
    let e = epoch(&loader(plain(json!({"kind": "npy", "x": &x, "y": &y}))).unwrap());
    assert_eq!(
        (e.dtype, &e.shapes[0][..]),
        (Some(Dtype::U8), &[2, 2, 2][..])
    );
    // A transform: images, f32 NCHW ÷255.
    let mut c = plain(json!({"kind": "npy", "x": &x, "y": &y}));
    c["transform"] = json!({"dtype": "f32"});
    let l = loader(c).unwrap();
    let b = l.next().unwrap().unwrap();
    assert_eq!((b.dtype(), b.shape()), (Dtype::F32, &[2, 1, 2, 2][..]));
    assert_eq!(b.data_f32().unwrap()[..4], [0.0, 0.2, 0.4, 1.0]);
    assert_eq!(b.labels(), [1, 0]);
    let t = b.targets().unwrap();
    assert_eq!(
        (t.dtype, t.shape, t.bytes),
        (Dtype::U8, &[2][..], &[1, 0][..])
    );
    // Images under a transform keep float [N, K] targets too.
    let yk: Vec<u8> = [0.5f64, 1.5, -2.0, 8.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&y, "<f8", &[2, 2], &yk);
    let mut c = plain(json!({"kind": "npy", "x": &x, "y": &y}));
    c["transform"] = json!({"dtype": "u8", "hflip": 1.0});
    let b = loader(c).unwrap().next().unwrap().unwrap();
    assert_eq!(b.data_bytes()[..4], [51, 0, 255, 102]);
    let t = b.targets().unwrap();
    assert_eq!(
        (t.dtype, t.shape, t.bytes),
        (Dtype::F64, &[2, 2][..], &yk[..])
    );
    assert!(b.labels().is_empty());
    write_npy(&y, "|u1", &[2], &[1, 0]);
    // f32 samples under a transform need `to_u8`.
    let f: Vec<u8> = [0.0f32, 0.2, 0.4, 1.0, 0.0, 0.0, 0.0, 0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&x, "<f4", &[2, 2, 2], &f);
    let mut c = plain(json!({"kind": "npy", "x": &x, "y": &y}));
    c["transform"] = json!({"dtype": "u8"});
    let err = loader(c.clone()).err().unwrap();
    assert!(err.message().starts_with("config key `transform`"), "{err}");
    c["source"]["to_u8"] = json!(true);
    let b = loader(c).unwrap().next().unwrap().unwrap();
    assert_eq!(b.data_bytes()[..4], [0, 51, 102, 255]);
    // `to_u8` on something that is not f32 images is refused by name.
    write_npy(&x, "<f8", &[2, 2, 2], &[0; 64]);
    let err = loader(plain(json!({"kind": "npy", "x": &x, "to_u8": true})))
        .err()
        .unwrap();
    assert!(
        err.message().starts_with("config key `source.to_u8`"),
        "{err}"
    );
    // Image transforms produce u8 or f32 only.
    let err = Config::from_json(r#"{"transform": {"dtype": "f16"}}"#).unwrap_err();
    assert!(
        err.message().starts_with("config key `transform.dtype`"),
        "{err}"
    );
}

/// `(kind, needles)` of the error opening `config`.
fn refused(config: serde_json::Value, kind: ErrorKind, needles: &[&str]) {
    let e = loader(config.clone())
        .err()
        .unwrap_or_else(|| panic!("{config} opened"));
    assert_eq!(e.kind(), kind, "{e}");
    for n in needles {
        assert!(e.message().contains(n), "`{n}` not in: {e}");
    }
}

#[test]
fn bad_npy_inputs_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let (xp, yp) = (x.to_str().unwrap(), y.to_str().unwrap());
    write_npy(&x, "<f4", &[4, 2], &[0; 32]);
    // A y of the wrong length.
    write_npy(&y, "<i8", &[3], &[0; 24]);
    refused(
        plain(json!({"kind": "npy", "x": &x, "y": &y})),
        ErrorKind::Format,
        &["source.y", yp, "3 labels/targets", "4 samples"],
    );
    // A declared dtype that is not the file's.
    refused(
        plain(json!({"kind": "npy", "x": &x, "x_dtype": "f16"})),
        ErrorKind::InvalidArgument,
        &["source.x_dtype", xp, "f32", "\"f16\""],
    );
    // Types no sample can have: bool, complex, big-endian, structured, uint64.
    for (d, needle) in [
        ("|b1", "bool"),
        ("<c8", "'<c8'"),
        (">f4", "big-endian"),
        ("<u8", "uint64"),
    ] {
        write_npy(&x, d, &[4, 2], &[0; 64][..8 * noise_size(d)]);
        refused(
            plain(json!({"kind": "npy", "x": &x})),
            ErrorKind::Format,
            &["source.x", xp, needle],
        );
    }
    replace_file(
        &x,
        b"\x93NUMPY\x01\x00\x3a\x00{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n",
    );
    refused(
        plain(json!({"kind": "npy", "x": &x})),
        ErrorKind::Format,
        &["source.x", xp, "structured"],
    );
    // A sparse file whose header promises far more than it holds: a format error, no
    // allocation or mapping of the promised size.
    write_npy(&x, "<f8", &[1 << 40, 1 << 20], &[0; 64]);
    refused(
        plain(json!({"kind": "npy", "x": &x})),
        ErrorKind::Format,
        &[xp, "lying header"],
    );
    write_npy(&x, "<f8", &[usize::MAX / 2, 4], &[0; 64]);
    refused(
        plain(json!({"kind": "npy", "x": &x})),
        ErrorKind::Format,
        &[xp, "overflows"],
    );
    // A missing file, a zero-sized sample dimension.
    refused(
        plain(json!({"kind": "npy", "x": dir.path().join("none.npy")})),
        ErrorKind::Io,
        &["source.x", "none.npy"],
    );
    write_npy(&x, "<f4", &[4, 0], &[]);
    refused(
        plain(json!({"kind": "npy", "x": &x})),
        ErrorKind::Format,
        &["source.x", xp, "zero-sized"],
    );
}

fn noise_size(descr: &str) -> usize {
    descr[2..].parse().unwrap()
}

fn write_tokens_u16(path: &Path, n: usize) -> Vec<u16> {
    let t: Vec<u16> = (0..n).map(|i| (1000 + i * 7) as u16).collect();
    replace_file(
        path,
        &t.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    );
    t
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn token_blocks_align_x_and_y_at_block_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.bin");
    // 13 tokens, block 4: windows at 0, 4 and 8 (8 + 4 + 1 = 13 fits); with 12 tokens the
    // last one would be partial and is dropped.
    for (len, want_n) in [(13usize, 3usize), (12, 2), (5, 1)] {
        let t = write_tokens_u16(&p, len);
        let l = loader(plain(
            json!({"kind": "tokens", "path": &p, "dtype": "u16", "block": 4}),
        ))
        .unwrap();
        assert_eq!(l.dataset_len(), want_n, "len {len}");
        let e = epoch(&l);
        assert_eq!(e.dtype, Some(Dtype::U16));
        assert_eq!(e.shapes[0][1..], [4]);
        assert!(e.labels.is_empty() && e.mask.is_empty());
        assert_eq!(
            (e.target_dtype, e.target_shape),
            (Some(Dtype::U16), Some(vec![4]))
        );
        let (x, y) = (u16s(&e.data), u16s(&e.targets));
        for i in 0..want_n {
            assert_eq!(x[4 * i..4 * i + 4], t[4 * i..4 * i + 4]);
            assert_eq!(y[4 * i..4 * i + 4], t[4 * i + 1..4 * i + 5]);
        }
    }
    // stride < block: overlapping windows, N = (len - block - 1) / stride + 1.
    let t = write_tokens_u16(&p, 12);
    let l = loader(plain(
        json!({"kind": "tokens", "path": &p, "dtype": "u16", "block": 4, "stride": 3}),
    ))
    .unwrap();
    assert_eq!(l.dataset_len(), 3);
    let e = epoch(&l);
    let (x, y) = (u16s(&e.data), u16s(&e.targets));
    for i in 0..3 {
        assert_eq!(x[4 * i..4 * i + 4], t[3 * i..3 * i + 4]);
        assert_eq!(y[4 * i..4 * i + 4], t[3 * i + 1..3 * i + 5]);
    }
    // u32, as a 1-D .npy of the declared dtype.
    let q = dir.path().join("train.npy");
    let t32: Vec<u32> = (0..9).map(|i| 70_000 + i).collect();
    write_npy(
        &q,
        "<u4",
        &[9],
        &t32.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let e = epoch(
        &loader(plain(
            json!({"kind": "tokens", "path": &q, "dtype": "u32", "block": 8}),
        ))
        .unwrap(),
    );
    let x: Vec<u32> = e
        .data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(x, t32[..8]);
    assert_eq!(e.targets[..4], 70_001u32.to_le_bytes());
}

#[test]
fn ragged_documents_are_padded_or_truncated_with_a_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (p, o) = (dir.path().join("docs.bin"), dir.path().join("offsets.npy"));
    let t = write_tokens_u16(&p, 13);
    let off: Vec<u8> = [0i64, 3, 10, 12]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npy(&o, "<i8", &[4], &off);
    let l = loader(plain(
        json!({"kind": "tokens", "path": &p, "dtype": "u16", "block": 4, "offsets": &o}),
    ))
    .unwrap();
    assert_eq!(l.dataset_len(), 3);
    let e = epoch(&l);
    let (x, y) = (u16s(&e.data), u16s(&e.targets));
    // Document 0: 3 tokens, padded; 1: 7 tokens, truncated to block (+1 for y); 2: 2 tokens.
    assert_eq!(x[0..4], [t[0], t[1], t[2], 0]);
    assert_eq!(y[0..4], [t[1], t[2], 0, 0]);
    assert_eq!(x[4..8], t[3..7]);
    assert_eq!(y[4..8], t[4..8]);
    assert_eq!(x[8..12], [t[10], t[11], 0, 0]);
    assert_eq!(y[8..12], [t[11], 0, 0, 0]);
    assert_eq!(e.mask, [1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]);
    // Sample ids are document indices, and policies prune them.
    let mut c =
        plain(json!({"kind": "tokens", "path": &p, "dtype": "u16", "block": 4, "offsets": &o}));
    c["policy"] = json!({"kind": "random", "prune": 0.34});
    let e = epoch(&loader(c).unwrap());
    assert_eq!(e.ids.len(), 2);
    assert!(e.ids.iter().all(|&i| i < 3));
}

#[test]
fn bad_token_inputs_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (p, o) = (dir.path().join("t.bin"), dir.path().join("o.npy"));
    let pp = p.to_str().unwrap();
    let op = o.to_str().unwrap();
    write_tokens_u16(&p, 9);
    let tok = |extra: serde_json::Value| {
        let mut s = json!({"kind": "tokens", "path": &p, "dtype": "u16", "block": 4});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        plain(s)
    };
    // block larger than the stream (9 tokens: at most block 8).
    refused(
        tok(json!({"block": 9})),
        ErrorKind::InvalidArgument,
        &["source.block", pp, "9 tokens"],
    );
    loader(tok(json!({"block": 8}))).unwrap();
    refused(
        tok(json!({"block": 0})),
        ErrorKind::InvalidArgument,
        &["source.block"],
    );
    refused(
        tok(json!({"stride": 0})),
        ErrorKind::InvalidArgument,
        &["source.stride"],
    );
    refused(
        tok(json!({"dtype": "u8"})),
        ErrorKind::InvalidArgument,
        &["source.dtype"],
    );
    refused(
        tok(json!({"vocab": 5})),
        ErrorKind::InvalidArgument,
        &["vocab"],
    );
    // A length that is not a whole number of tokens of the declared dtype.
    refused(
        tok(json!({"dtype": "u32"})),
        ErrorKind::Format,
        &["source.path", pp, "18 bytes", "u32"],
    );
    // A .npy token file of another dtype than the declared one.
    let q = dir.path().join("t.npy");
    write_npy(&q, "<u4", &[9], &[0; 36]);
    refused(
        tok(json!({"path": &q})),
        ErrorKind::InvalidArgument,
        &["source.dtype", q.to_str().unwrap(), "u32"],
    );
    refused(
        tok(json!({"path": dir.path().join("none.bin")})),
        ErrorKind::Io,
        &["source.path", "none.bin"],
    );
    // Offsets: not increasing, past the end, not starting at 0, not int64, with a stride.
    let offs = |v: &[i64]| {
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        write_npy(&o, "<i8", &[v.len()], &b);
    };
    for (v, needle) in [
        (&[0i64, 5, 5, 9][..], "not increasing"),
        (&[0, 6, 3][..], "not increasing"),
        (&[0, 4, 10][..], "past the end"),
        (&[1, 4][..], "not 0"),
        (&[0][..], "D+1 ≥ 2"),
        (&[0, -1][..], "not increasing"),
    ] {
        offs(v);
        refused(
            tok(json!({"offsets": &o})),
            ErrorKind::Format,
            &["source.offsets", op, needle],
        );
    }
    offs(&[0, 4, 9]);
    loader(tok(json!({"offsets": &o}))).unwrap();
    refused(
        tok(json!({"offsets": &o, "stride": 2})),
        ErrorKind::InvalidArgument,
        &["source.stride", "offsets"],
    );
    write_npy(&o, "<f8", &[3], &[0; 24]);
    refused(
        tok(json!({"offsets": &o})),
        ErrorKind::Format,
        &["source.offsets", op, "int64"],
    );
    // A transform cannot apply to token blocks.
    let mut c = tok(json!({}));
    c["transform"] = json!({"dtype": "f32"});
    refused(
        c,
        ErrorKind::InvalidArgument,
        &["config key `transform`", "u16 [4]"],
    );
}
