//! Bad IDX image files (truncated, lying headers, bad gzip): each refused with its status and
//! a message naming the file.

use super::*;

/// `good` with `bytes` written over it at `at`.
fn patched(good: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    b
}

/// `name: |good, gz| bytes => status, needle;` — an images file made of `bytes` (from the
/// valid images file `good` and its gzip `gz`) must be refused with `status`, the message
/// containing `needle` and the file's path.
macro_rules! image_file_cases {
    ($($name:ident: $bytes:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let good = std::fs::read(&d.images).unwrap();
                let gz = {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    std::io::Write::write_all(&mut e, &good).unwrap();
                    e.finish().unwrap()
                };
                let make: fn(&[u8], &[u8]) -> Vec<u8> = $bytes;
                let bad = d.write("bad", &make(&good, &gz));
                refused(&format!("{{{}}}", source(&bad, &d.labels)), $status, $needle);
                assert!(last_error().contains(&bad), "{} lacks {bad}", last_error());
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

image_file_cases! {
    truncated: |good, _| good[..good.len() - 5].to_vec() => FORMAT, "truncated";
    trailing_bytes: |good, _| [good, &[1, 2, 3]].concat() => FORMAT, "the file has";
    header_claims_more_images: |good, _| patched(good, 7, &[51]) => FORMAT, "IDX header says";
    zero_dimension: |good, _| patched(good, 11, &[0]) => FORMAT, "bad";
    huge_dimension: |good, _| patched(good, 4, &u32::MAX.to_be_bytes()) => FORMAT, "bad";
    empty: |_, _| vec![] => FORMAT, "shorter than the header";
    three_bytes: |_, _| b"\x00\x00\x08".to_vec() => FORMAT, "shorter than the header";
    truncated_header: |_, _| vec![0, 0, 0x08, 9, 0, 0] => FORMAT, "truncated header";
    unknown_element_type: |_, _| {
        vec![0, 0, 0x0b, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    } => FORMAT, "element type";
    two_dimensions: |_, _| vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]
        => FORMAT, "3 or 4 dimensions";
    truncated_gzip: |_, gz| gz[..gz.len() / 2].to_vec() => FORMAT, "gzip";
    gzip_magic_then_garbage: |_, _| b"\x1f\x8bgarbage garbage".to_vec() => FORMAT, "gzip";
}
