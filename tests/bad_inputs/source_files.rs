//! Bad sources of each kind (missing or bad files, mismatched labels, bad `.npy` and token
//! files): each refused with its status and a message naming the cause.

use super::*;

/// `name: |data| config => status, needle;` — a source the config-maker builds from the valid
/// dataset must be refused with `status` naming `needle`.
macro_rules! source_cases {
    ($($name:ident: $config:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let make: fn(&Data) -> String = $config;
                refused(&make(&d), $status, $needle);
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

/// A version-1 `.npy` file of `descr` and `shape` (a Python tuple) holding `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b
}

fn offsets(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

source_cases! {
    labels_bad_gzip: |d| {
        let bad = d.write("bad", b"\x1f\x8bgarbage garbage");
        format!("{{{}}}", source(&d.images, &bad))
    } => FORMAT, "bad";
    labels_are_images: |d| format!("{{{}}}", source(&d.images, &d.images))
        => FORMAT, "labels have dims";
    images_missing: |d| format!("{{{}}}", source("/nonexistent/i", &d.labels))
        => IO, "/nonexistent/i";
    images_a_directory: |d| {
        format!("{{{}}}", source(d.dir.path().to_str().unwrap(), &d.labels))
    } => FORMAT, "it is a directory, not a regular file";
    npy_y_of_the_wrong_length: |d| {
        let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
        let y = d.write("y.npy", &npy("<i8", "(3,)", &[0; 24]));
        format!(r#"{{"source": {{"kind": "npy", "x": "{x}", "y": "{y}"}}}}"#)
    } => FORMAT, "config key `source.y`";
    npy_x_not_the_declared_dtype: |d| {
        let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
        format!(r#"{{"source": {{"kind": "npy", "x": "{x}", "x_dtype": "i32"}}}}"#)
    } => INV, "config key `source.x_dtype`";
    npy_x_complex: |d| {
        let x = d.write("x.npy", &npy("<c8", "(4, 2)", &[0; 64]));
        format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}}}"#)
    } => FORMAT, "'<c8'";
    npy_header_promises_terabytes: |d| {
        let x = d.write("x.npy", &npy("<f8", "(1099511627776, 1048576)", &[0; 64]));
        format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}}}"#)
    } => FORMAT, "lying header";
    npy_transform_on_features: |d| {
        let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
        format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}, "transform": {{}}}}"#)
    } => INV, "config key `transform`";
    tokens_block_larger_than_the_stream: |d| {
        let t = d.write("t.bin", &[0; 20]);
        format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 10}}}}"#)
    } => INV, "config key `source.block`";
    tokens_not_a_whole_number: |d| {
        let t = d.write("t.bin", &[0; 22]);
        format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u32", "block": 2}}}}"#)
    } => FORMAT, "config key `source.path`";
    tokens_npy_of_another_dtype: |d| {
        let t = d.write("t.npy", &npy("<u4", "(9,)", &[0; 36]));
        format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 2}}}}"#)
    } => INV, "config key `source.dtype`";
    tokens_offsets_not_increasing: |d| {
        let t = d.write("t.bin", &[0; 40]);
        let o = d.write("o.npy", &npy("<i8", "(3,)", &offsets(&[0, 8, 8])));
        format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 4, "offsets": "{o}"}}}}"#)
    } => FORMAT, "not increasing";
    tokens_offsets_past_the_end: |d| {
        let t = d.write("t.bin", &[0; 40]);
        let o = d.write("o.npy", &npy("<i8", "(3,)", &offsets(&[0, 8, 21])));
        format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 4, "offsets": "{o}"}}}}"#)
    } => FORMAT, "past the end";
}
