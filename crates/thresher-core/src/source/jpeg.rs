//! Decoding less of a JPEG: only the part of the image a crop will use, and at a reduced size
//! when the crop is later shrunk at least twofold anyway.
//!
//! The transform decides its crop from the image's size alone (`Want`: the box in full-size
//! pixels and the output size it is resized to), before any pixel is decoded. The decoder then
//! picks the smallest DCT-domain scale 1/s (s = 1, 2, 4, 8) that still leaves the box at least
//! the output size in each side, as Pillow's `draft` does, and decodes only the iMCU rows and
//! columns around the (scaled) box: rows above it are entropy-decoded and skipped, rows below it
//! are never read, columns beside it are entropy-decoded but not transformed. This is
//! libjpeg-turbo's TurboJPEG 3 API (scaling factor, cropping region): the same library (and the
//! same default settings: accurate integer IDCT, fancy upsampling) as Pillow's, so the pixels
//! of the region are those Pillow's full decode has there.
//!
//! A margin is kept around the box so that the box's pixels never come from the region's edges,
//! where (fancy) upsampling lacks its neighbours: to the left, right and below, as many pixels
//! as the largest sampling factor (the upsampler blends a pixel with one chroma sample beyond
//! it), the left edge then moved down to an iMCU boundary, as libjpeg-turbo wants. Above, none:
//! libjpeg-turbo's skip to the region's first row decodes the iMCU row above it as the
//! upsampler's context. Narrower margins mean fewer columns and rows decoded (and the rows below
//! never entropy-decoded); the tests below check every edge row and column against the full
//! decode for every subsampling, and fail without the side and bottom margins. The region is
//! returned with where it sits (`Placed`); the transform maps its box into it with `scaled_box`.
//!
//! Strictness: warnings (a truncated or corrupt stream) are errors, as with the full decoder,
//! and so is a progressive file of more than `decode::MAX_SCANS` scans (each scan is a pass
//! over the whole image, so a small hostile file of thousands of scans costs seconds).
//! Since rows below the box are not read, a file is decoded to its last row unless it ends with
//! the end-of-image marker, so a truncated file is still an error, wherever the crop falls.
//!
//! Anything this path does not handle (colour JPEGs wanted as gray, CMYK/YCCK, 12-bit or
//! lossless JPEGs, PNG) falls back to the full decode of `decode`.

use std::cell::RefCell;
use std::ffi::CStr;

use turbojpeg_sys as tj;

use super::decode::{self, Color, DecodeConfig};

/// What a transform will take from an image, decided from its size alone: the box, in the
/// full-size image's pixels, that is resized to `out_h × out_w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// Where decoded pixels sit: rows `top..` and columns `left..` of the image scaled by
/// 1/`scale` (whose size is `ceil(full / scale)`); the image is `full_h × full_w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub scale: usize,
    pub top: usize,
    pub left: usize,
    pub full_h: usize,
    pub full_w: usize,
}

/// A box (top, left, height, width) in pixels.
pub type Box4 = (usize, usize, usize, usize);

/// The size of a side of `full` pixels at scale 1/`s` (libjpeg's `jdiv_round_up`).
fn scaled(full: usize, s: usize) -> usize {
    full.div_ceil(s)
}

/// The largest s in {8, 4, 2, 1} with the box still at least the output size in each side at
/// scale 1/s.
pub fn pick_scale(want: &Want) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|&s| want.height >= s * want.out_h && want.width >= s * want.out_w)
        .unwrap_or(1)
}

/// The box of `want` in the image scaled by 1/`s`: both edges rounded to the nearest pixel (and
/// kept inside the scaled image, at least one pixel). At s = 1, the box itself.
pub fn scaled_box(want: &Want, s: usize, full_h: usize, full_w: usize) -> Box4 {
    let side = |start: usize, len: usize, full: usize| {
        let size = scaled(full, s);
        let a = ((start as f64 / s as f64).round() as usize).min(size - 1);
        let b = (((start + len) as f64 / s as f64).round() as usize).clamp(a + 1, size);
        (a, b - a)
    };
    let (top, height) = side(want.top, want.height, full_h);
    let (left, width) = side(want.left, want.width, full_w);
    (top, left, height, width)
}

/// The iMCU (width, height) of each TJSAMP subsampling, in order: 4:4:4, 4:2:2, 4:2:0, gray,
/// 4:4:0, 4:1:1, 4:4:1 (TurboJPEG's `tjMCUWidth`/`tjMCUHeight`, header-only tables).
const MCU: [(usize, usize); 7] = [(8, 8), (16, 8), (16, 16), (8, 8), (8, 16), (32, 8), (8, 32)];

const STOP_EARLY: bool = true;

/// A decoded region: its (height, width, channels) and where it sits.
type Region = ([usize; 3], Placed);

/// One TurboJPEG decompressor per thread (workers decode in parallel; a handle is not shareable).
struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

thread_local! {
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

fn error(h: tj::tjhandle) -> String {
    // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the handle.
    let msg = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(h)) };
    format!("bad JPEG: {}", msg.to_string_lossy().trim())
}

/// Decodes `encoded` for a transform that takes `want(height, width)` from it: the region of
/// the image it needs, at the smallest scale that serves it, into `out`, returning the region's
/// (height, width, channels) and where it sits. When the transform takes no box, or the image is
/// not a JPEG this path handles, the whole image is decoded by `decode::decode` and `Placed` is
/// `None`. Errors are the reason alone, as `decode::decode`'s.
pub(crate) fn decode_hinted(
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
    want: &dyn Fn(usize, usize) -> Option<Want>,
) -> Result<([usize; 3], Option<Placed>), String> {
    if encoded.starts_with(&[0xff, 0xd8, 0xff]) {
        if let Some((shape, placed)) = decode_region(encoded, out, config, want, STOP_EARLY)? {
            return Ok((shape, Some(placed)));
        }
    }
    Ok((decode::decode(encoded, out, config)?, None))
}

/// The region decode; `None` when this path does not apply (the caller decodes in full).
fn decode_region(
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
    want: &dyn Fn(usize, usize) -> Option<Want>,
    stop_early: bool,
) -> Result<Option<Region>, String> {
    HANDLE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let result = region_with(&mut cell, encoded, out, config, want, stop_early);
        if result.is_err() {
            // A failed call can leave the decompressor mid-state (the next header then reads
            // as sizeless): start the next file on a fresh one.
            *cell = None;
        }
        result
    })
}

fn region_with(
    cell: &mut Option<Handle>,
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
    want: &dyn Fn(usize, usize) -> Option<Want>,
    stop_early: bool,
) -> Result<Option<Region>, String> {
    {
        if cell.is_none() {
            // SAFETY: plain constructor; NULL on failure, checked.
            let h = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as libc::c_int) };
            if h.is_null() {
                return Err("JPEG decoder: cannot initialise libjpeg-turbo".to_string());
            }
            *cell = Some(Handle(h));
        }
        let h = cell.as_ref().expect("set above").0;
        // SAFETY: `h` is a live decompressor; `encoded` outlives the call.
        let rc =
            unsafe { tj::tj3DecompressHeader(h, encoded.as_ptr(), encoded.len() as tj::size_t) };
        if rc != 0 {
            return Err(error(h));
        }
        // SAFETY: reading parameters of a live handle.
        let get = |p: tj::TJPARAM| unsafe { tj::tj3Get(h, p as libc::c_int) };
        let (w, ht) = (
            get(tj::TJPARAM_TJPARAM_JPEGWIDTH),
            get(tj::TJPARAM_TJPARAM_JPEGHEIGHT),
        );
        if w <= 0 || ht <= 0 {
            return Err("bad JPEG: no frame size".to_string());
        }
        let (w, ht) = (w as usize, ht as usize);
        config.check_pixels(w as u64, ht as u64)?;
        let space = get(tj::TJPARAM_TJPARAM_COLORSPACE);
        let simple = get(tj::TJPARAM_TJPARAM_PRECISION) == 8
            && get(tj::TJPARAM_TJPARAM_LOSSLESS) == 0
            && get(tj::TJPARAM_TJPARAM_SUBSAMP) >= 0;
        let gray = space == tj::TJCS_TJCS_GRAY as libc::c_int;
        let colour = space == tj::TJCS_TJCS_YCbCr as libc::c_int
            || space == tj::TJCS_TJCS_RGB as libc::c_int;
        // Gray → RGB replicates (as Pillow's convert); colour → gray would need Pillow's luma on
        // RGB, which the full path does.
        let (pf, c) = match (gray, colour, config.color) {
            (true, _, Color::Gray) => (tj::TJPF_TJPF_GRAY, 1),
            (true, _, Color::Rgb) | (false, true, Color::Rgb) => (tj::TJPF_TJPF_RGB, 3),
            _ => return Ok(None),
        };
        if !simple {
            return Ok(None);
        }
        let Some(want) = want(ht, w) else {
            return Ok(None);
        };
        if want.height == 0
            || want.width == 0
            || want.top + want.height > ht
            || want.left + want.width > w
        {
            return Ok(None);
        }
        let s = pick_scale(&want);
        let (sh, sw) = (scaled(ht, s), scaled(w, s));
        let (bt, bl, bh, bw) = scaled_box(&want, s, ht, w);
        // The iMCU at this scale: the region's left edge must fall on one.
        let sub = get(tj::TJPARAM_TJPARAM_SUBSAMP) as usize;
        let Some(&(mcu_w, mcu_h)) = MCU.get(sub) else {
            return Ok(None);
        };
        // The largest sampling factors: across a region's left, right and bottom edges the
        // upsampler lacks its neighbours for this many pixels, so that is the margin there.
        // The top needs none: skipping to the region's first row, libjpeg-turbo decodes the
        // iMCU row above it for the upsampler's context by itself.
        let (side_x, side_y) = (mcu_w / 8, mcu_h / 8);
        let mcu_w = mcu_w.div_ceil(s);
        // Reduced, the resize reads a few pixels past the box (Pillow's `resize(box=...)`).
        let reach = if s == 1 { 0 } else { 4 };
        let x0 = (bl.saturating_sub(side_x + reach) / mcu_w) * mcu_w;
        let x1 = (bl + bw + side_x + reach).min(sw);
        let y0 = bt.saturating_sub(reach);
        // Stop below the box only when the file is whole up to its end-of-image marker.
        let y1 = if stop_early && encoded.ends_with(&[0xff, 0xd9]) {
            (bt + bh + side_y + reach).min(sh)
        } else {
            sh
        };
        let (rw, rh) = (x1 - x0, y1 - y0);
        let factor = tj::tjscalingfactor {
            num: 1,
            denom: s as libc::c_int,
        };
        let region = tj::tjregion {
            x: x0 as libc::c_int,
            y: y0 as libc::c_int,
            w: rw as libc::c_int,
            h: rh as libc::c_int,
        };
        // Every byte is written by the decoder: grow without clearing what is reused.
        let n = rw * rh * c;
        if out.len() < n {
            out.resize(n, 0);
        }
        out.truncate(n);
        // SAFETY: live handle; `out` holds rh rows of rw·c bytes, the pitch given.
        let rc = unsafe {
            if tj::tj3Set(h, tj::TJPARAM_TJPARAM_STOPONWARNING as libc::c_int, 1) != 0
                || tj::tj3Set(
                    h,
                    tj::TJPARAM_TJPARAM_SCANLIMIT as libc::c_int,
                    decode::MAX_SCANS as libc::c_int,
                ) != 0
                || tj::tj3SetScalingFactor(h, factor) != 0
                || tj::tj3SetCroppingRegion(h, region) != 0
            {
                -1
            } else {
                tj::tj3Decompress8(
                    h,
                    encoded.as_ptr(),
                    encoded.len() as tj::size_t,
                    out.as_mut_ptr(),
                    (rw * c) as libc::c_int,
                    pf as libc::c_int,
                )
            }
        };
        if rc != 0 {
            return Err(error(h));
        }
        Ok(Some((
            [rh, rw, c],
            Placed {
                scale: s,
                top: y0,
                left: x0,
                full_h: ht,
                full_w: w,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth pattern with detail, so upsampling and the IDCT both matter.
    fn pattern(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let v = |a: u32, b: u32| ((a * 7 + b * 3 + (a * b) % 31) % 256) as u8;
            image::Rgb([v(x, y), v(y, x / 2), v(x + y, 5)])
        })
    }

    fn jpeg(w: u32, h: u32, quality: u8) -> Vec<u8> {
        let img = pattern(w, h);
        let mut v = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, quality)
            .encode_image(&img)
            .unwrap();
        v
    }

    /// The pattern of `jpeg` encoded by libjpeg-turbo with chroma subsampling `sub` (TJSAMP)
    /// and any other TurboJPEG parameters (progressive, restart rows): the image crate's
    /// encoder writes 4:4:4 only, where no upsampler needs a neighbour.
    fn jpeg_with(w: u32, h: u32, sub: tj::TJSAMP, params: &[(tj::TJPARAM, i32)]) -> Vec<u8> {
        let img = pattern(w, h);
        // SAFETY: a fresh compressor; the source holds h rows of 3w bytes; the output buffer
        // is allocated by libjpeg-turbo, copied, then freed with tj3Free.
        unsafe {
            let c = tj::tj3Init(tj::TJINIT_TJINIT_COMPRESS as libc::c_int);
            assert!(!c.is_null());
            assert_eq!(
                tj::tj3Set(c, tj::TJPARAM_TJPARAM_QUALITY as libc::c_int, 90),
                0
            );
            assert_eq!(
                tj::tj3Set(
                    c,
                    tj::TJPARAM_TJPARAM_SUBSAMP as libc::c_int,
                    sub as libc::c_int
                ),
                0
            );
            for &(p, v) in params {
                assert_eq!(tj::tj3Set(c, p as libc::c_int, v), 0);
            }
            let mut buf: *mut libc::c_uchar = std::ptr::null_mut();
            let mut len: tj::size_t = 0;
            let rc = tj::tj3Compress8(
                c,
                img.as_raw().as_ptr(),
                w as libc::c_int,
                0,
                h as libc::c_int,
                tj::TJPF_TJPF_RGB as libc::c_int,
                &mut buf,
                &mut len,
            );
            assert_eq!(rc, 0);
            let v = std::slice::from_raw_parts(buf, len as usize).to_vec();
            tj::tj3Free(buf as *mut libc::c_void);
            tj::tj3Destroy(c);
            v
        }
    }

    fn full(encoded: &[u8], s: usize) -> (Vec<u8>, usize, usize) {
        // The whole image at scale 1/s, through the same library: a box as large as the image.
        let cfg = DecodeConfig::default();
        let mut out = Vec::new();
        let (ht, w) = {
            let d = image_size(encoded);
            (d.0, d.1)
        };
        let want = move |_: usize, _: usize| {
            Some(Want {
                top: 0,
                left: 0,
                height: ht,
                width: w,
                out_h: ht / s,
                out_w: w / s,
            })
        };
        let ([rh, rw, _], placed) = decode_hinted(encoded, &mut out, &cfg, &want).unwrap();
        let p = placed.unwrap();
        assert_eq!((p.scale, p.top, p.left), (s, 0, 0));
        (out, rh, rw)
    }

    fn image_size(encoded: &[u8]) -> (usize, usize) {
        let mut d = zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(encoded));
        d.decode_headers().unwrap();
        let (w, h) = d.dimensions().unwrap();
        (h, w)
    }

    /// Single-thread decode time per image on the bench's JPEGs (`make bench` makes them):
    /// `cargo test --release -p thresher-core --lib timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        use std::time::Instant;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/bench-jpeg");
        let mut files = Vec::new();
        for class in std::fs::read_dir(dir).unwrap() {
            let class = class.unwrap();
            if !class.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(class.path()).unwrap() {
                files.push(std::fs::read(f.unwrap().path()).unwrap());
            }
        }
        files.truncate(1000);
        let cfg = DecodeConfig::default();
        let mut out = Vec::new();
        let wants: Vec<Want> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let (h, w) = image_size(f);
                let mut rng = crate::rng::Rng::new(0, crate::rng::Stream::Augment, 0, i as u64);
                let (top, left, height, width) =
                    crate::transform::random_resized_crop_for_test(h, w, &mut rng);
                Want {
                    top,
                    left,
                    height,
                    width,
                    out_h: 224,
                    out_w: 224,
                }
            })
            .collect();
        let time = |name: &str, f: &mut dyn FnMut(usize)| {
            for _ in 0..2 {
                let t = Instant::now();
                for i in 0..files.len() {
                    f(i);
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / files.len() as f64;
                println!("{name:40} {us:8.1} µs/image");
            }
        };
        time("zune-jpeg, full", &mut |i| {
            decode::decode(&files[i], &mut out, &cfg).unwrap();
        });
        let mut o2 = Vec::new();
        time("libjpeg-turbo, full", &mut |i| {
            let (h, w) = image_size(&files[i]);
            let f = |_: usize, _: usize| {
                Some(Want {
                    top: 0,
                    left: 0,
                    height: h,
                    width: w,
                    out_h: h,
                    out_w: w,
                })
            };
            decode_region(&files[i], &mut o2, &cfg, &f, false)
                .unwrap()
                .unwrap();
        });
        time("libjpeg-turbo, crop region, to the end", &mut |i| {
            let f = |_: usize, _: usize| {
                Some(Want {
                    out_h: wants[i].height,
                    out_w: wants[i].width,
                    ..wants[i]
                })
            };
            decode_region(&files[i], &mut o2, &cfg, &f, false)
                .unwrap()
                .unwrap();
        });
        time("libjpeg-turbo, crop region, stop early", &mut |i| {
            let f = |_: usize, _: usize| {
                Some(Want {
                    out_h: wants[i].height,
                    out_w: wants[i].width,
                    ..wants[i]
                })
            };
            decode_region(&files[i], &mut o2, &cfg, &f, true)
                .unwrap()
                .unwrap();
        });
        time("libjpeg-turbo, crop region + scale, early", &mut |i| {
            let f = |_: usize, _: usize| Some(wants[i]);
            decode_region(&files[i], &mut o2, &cfg, &f, true)
                .unwrap()
                .unwrap();
        });
        for s in [2usize, 4, 8] {
            time(&format!("libjpeg-turbo, full at 1/{s}"), &mut |i| {
                let (h, w) = image_size(&files[i]);
                let f = |_: usize, _: usize| {
                    Some(Want {
                        top: 0,
                        left: 0,
                        height: h,
                        width: w,
                        out_h: h / s,
                        out_w: w / s,
                    })
                };
                decode_region(&files[i], &mut o2, &cfg, &f, false)
                    .unwrap()
                    .unwrap();
            });
        }

        // The other DCT scales libjpeg-turbo offers (7/8, 3/4, 5/8) have no SIMD IDCT, and
        // at them the chroma is decoded at twice the size instead of upsampled: slower than
        // the full decode, so `pick_scale` offers halvings only.
        // SAFETY: a fresh decompressor, destroyed at the end; every buffer outlives its call.
        unsafe {
            let d = tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as libc::c_int);
            let mut buf = Vec::new();
            for (num, denom) in [(1, 1), (7, 8), (3, 4), (5, 8), (1, 2)] {
                time(&format!("libjpeg-turbo, full at {num}/{denom}"), &mut |i| {
                    let f = &files[i];
                    let n = f.len() as tj::size_t;
                    assert_eq!(tj::tj3DecompressHeader(d, f.as_ptr(), n), 0);
                    // Room for the full size, which every scale here is at most.
                    let side = |p: tj::TJPARAM| tj::tj3Get(d, p as libc::c_int) as usize;
                    let full = side(tj::TJPARAM_TJPARAM_JPEGWIDTH)
                        * side(tj::TJPARAM_TJPARAM_JPEGHEIGHT)
                        * 3;
                    if buf.len() < full {
                        buf.resize(full, 0);
                    }
                    let sf = tj::tjscalingfactor { num, denom };
                    assert_eq!(tj::tj3SetScalingFactor(d, sf), 0);
                    let pf = tj::TJPF_TJPF_RGB as libc::c_int;
                    assert_eq!(
                        tj::tj3Decompress8(d, f.as_ptr(), n, buf.as_mut_ptr(), 0, pf),
                        0
                    );
                });
            }
            tj::tj3Destroy(d);
        }
    }

    #[test]
    fn scale_follows_the_output_size() {
        let w = |height, width| Want {
            top: 0,
            left: 0,
            height,
            width,
            out_h: 224,
            out_w: 224,
        };
        assert_eq!(pick_scale(&w(447, 1000)), 1);
        assert_eq!(pick_scale(&w(448, 448)), 2);
        assert_eq!(pick_scale(&w(896, 900)), 4);
        assert_eq!(pick_scale(&w(2000, 1792)), 8);
        // Rounding keeps the box inside the scaled image.
        let b = scaled_box(
            &Want {
                top: 3,
                left: 5,
                height: 97,
                width: 95,
                out_h: 10,
                out_w: 10,
            },
            8,
            100,
            100,
        );
        assert_eq!(b, (0, 1, 13, 12));
    }

    /// The box's pixels in the decoded region are those of the whole image decoded at the
    /// same scale, for boxes anywhere (edges included), at every scale and subsampling.
    #[test]
    fn region_equals_the_same_pixels_of_the_full_decode() {
        let cfg = DecodeConfig::default();
        let mut rng = crate::rng::Rng::new(7, crate::rng::Stream::Augment, 0, 0);
        let files = [
            (203usize, 157usize, tj::TJSAMP_TJSAMP_420),
            (64, 48, tj::TJSAMP_TJSAMP_422),
            (333, 250, tj::TJSAMP_TJSAMP_444),
            (250, 333, tj::TJSAMP_TJSAMP_420),
        ];
        for (w, h, sub) in files {
            let enc = jpeg_with(w as u32, h as u32, sub, &[]);
            let wholes: Vec<_> = [1usize, 2, 4, 8].iter().map(|&s| full(&enc, s)).collect();
            for k in 0..160 {
                let s = [1usize, 2, 4, 8][k % 4];
                let bh = 1 + rng.below(h as u64) as usize;
                let bw = 1 + rng.below(w as u64) as usize;
                let top = rng.below((h - bh + 1) as u64) as usize;
                let left = rng.below((w - bw + 1) as u64) as usize;
                let want = Want {
                    top,
                    left,
                    height: bh,
                    width: bw,
                    out_h: (bh / s).max(1),
                    out_w: (bw / s).max(1),
                };
                let s = pick_scale(&want);
                let (whole, fh, fw) = &wholes[s.trailing_zeros() as usize];
                let mut out = Vec::new();
                let f = |_: usize, _: usize| Some(want);
                let ([rh, rw, c], p) = decode_hinted(&enc, &mut out, &cfg, &f).unwrap();
                let p = p.unwrap();
                assert_eq!((p.scale, p.full_h, p.full_w, c), (s, h, w, 3));
                assert!(p.top + rh <= *fh && p.left + rw <= *fw);
                let (bt, bl, bh2, bw2) = scaled_box(&want, s, h, w);
                assert!(bt >= p.top && bl >= p.left);
                assert!(bt + bh2 <= p.top + rh && bl + bw2 <= p.left + rw);
                for y in bt..bt + bh2 {
                    let got = &out[((y - p.top) * rw + (bl - p.left)) * 3..][..bw2 * 3];
                    let exp = &whole[(y * fw + bl) * 3..][..bw2 * 3];
                    assert_eq!(got, exp, "{w}×{h} s={s} box {want:?} row {y}");
                }
            }
        }
    }

    /// The box may start and end on any row and column: the region then starts at the box's
    /// own top row (libjpeg-turbo's skip decodes the iMCU row above for the upsampler's
    /// context itself) and its pixels are still those of the full decode.
    #[test]
    fn every_edge_row_and_column_matches_the_full_decode() {
        let cfg = DecodeConfig::default();
        let progressive = [(tj::TJPARAM_TJPARAM_PROGRESSIVE, 1)];
        let restarts = [(tj::TJPARAM_TJPARAM_RESTARTROWS, 1)];
        let subs: [(tj::TJSAMP, &[(tj::TJPARAM, i32)]); 7] = [
            (tj::TJSAMP_TJSAMP_420, &[]),
            (tj::TJSAMP_TJSAMP_422, &[]),
            (tj::TJSAMP_TJSAMP_440, &[]),
            (tj::TJSAMP_TJSAMP_411, &[]),
            (tj::TJSAMP_TJSAMP_444, &[]),
            // A multi-scan file is entropy-decoded whole before its first row, so the skip
            // takes another path in libjpeg-turbo.
            (tj::TJSAMP_TJSAMP_420, &progressive),
            // Restart markers reset the DC predictors every iMCU row.
            (tj::TJSAMP_TJSAMP_420, &restarts),
        ];
        for ((sub, params), (w, h)) in subs
            .into_iter()
            .flat_map(|s| [(203usize, 157usize), (64, 90)].map(|d| (s, d)))
        {
            let enc = jpeg_with(w as u32, h as u32, sub, params);
            let (whole, _, fw) = full(&enc, 1);
            let mut out = Vec::new();
            let mut check = |top: usize, left: usize, height: usize, width: usize| {
                let want = Want {
                    top,
                    left,
                    height,
                    width,
                    out_h: height,
                    out_w: width,
                };
                let f = |_: usize, _: usize| Some(want);
                let ([_, rw, _], p) = decode_hinted(&enc, &mut out, &cfg, &f).unwrap();
                let p = p.unwrap();
                for y in top..top + height {
                    let got = &out[((y - p.top) * rw + (left - p.left)) * 3..][..width * 3];
                    let exp = &whole[(y * fw + left) * 3..][..width * 3];
                    assert_eq!(
                        got, exp,
                        "TJSAMP {sub} {params:?}, {w}×{h}, box {want:?}, row {y}"
                    );
                }
            };
            for a in 0..h {
                for len in [1, 2, 3, 17] {
                    if a + len <= h {
                        check(a, 5, len, w - 10);
                    }
                }
            }
            for a in 0..w {
                for len in [1, 2, 3, 17] {
                    if a + len <= w {
                        check(7, a, h - 20, len);
                    }
                }
            }
        }
    }

    /// A progressive 8×8 gray JPEG, every coefficient zero (a flat mid-gray block), sent in
    /// `2 + 2·ac` scans: DC first and refinement, then a first and a refinement scan of each
    /// of the AC coefficients 1..=ac. A valid file with as many passes as a hostile one.
    fn progressive_with_scans(ac: u8) -> Vec<u8> {
        let mut f = vec![0xff, 0xd8];
        let mut segment = |marker: u8, body: &[u8]| {
            f.extend([0xff, marker]);
            f.extend(((body.len() + 2) as u16).to_be_bytes());
            f.extend(body);
        };
        segment(0xdb, &[[0u8].as_slice(), &[1; 64]].concat()); // DQT 0: all ones
        segment(0xc2, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]); // SOF2: 8×8, one component
                                                        // One Huffman table each for DC (class 0) and AC (class 1): symbol 0 (DC category 0,
                                                        // AC end-of-block) coded as the single bit 0.
        for class in [0x00, 0x10] {
            let mut body = vec![class, 1];
            body.extend([0; 15]);
            body.push(0);
            segment(0xc4, &body);
        }
        let mut scans = vec![(0, 0, 0, 1), (0, 0, 1, 0)];
        for k in 1..=ac {
            scans.push((k, k, 0, 1));
            scans.push((k, k, 1, 0));
        }
        for (ss, se, ah, al) in scans {
            // SOS: one component (id 1, tables 0/0), Ss, Se, Ah/Al; then the entropy-coded
            // data: one 0 bit (category 0, or end of block; a refinement bit 0), padded with 1s.
            f.extend([0xff, 0xda, 0, 8, 1, 1, 0x00, ss, se, (ah << 4) | al, 0x7f]);
        }
        f.extend([0xff, 0xd9]);
        f
    }

    #[test]
    fn a_progressive_file_of_too_many_scans_is_refused_by_both_decoders() {
        let cfg = DecodeConfig::default();
        let want = |_: usize, _: usize| {
            Some(Want {
                top: 0,
                left: 0,
                height: 8,
                width: 8,
                out_h: 8,
                out_w: 8,
            })
        };
        let none = |_: usize, _: usize| None;
        let mut out = Vec::new();
        // 2 + 2·49 = 100 scans: the limit, decoded by both paths, the same flat gray.
        let ok = progressive_with_scans(49);
        let (shape, placed) = decode_hinted(&ok, &mut out, &cfg, &want).unwrap();
        assert!(placed.is_some(), "the region path took it");
        assert_eq!(shape, [8, 8, 3]);
        assert!(out.iter().all(|&v| v == 128), "{out:?}");
        let (shape, placed) = decode_hinted(&ok, &mut out, &cfg, &none).unwrap();
        assert_eq!((shape, placed), ([8, 8, 3], None));
        assert!(out.iter().all(|&v| v == 128));
        // 102 scans: refused by the region path (libjpeg-turbo's scan limit) and by the full
        // decoder (zune-jpeg's), so the same file is an error whatever the transform.
        let hostile = progressive_with_scans(50);
        let e = decode_hinted(&hostile, &mut out, &cfg, &want).unwrap_err();
        assert!(e.contains("100 scans"), "{e}");
        let e = decode_hinted(&hostile, &mut out, &cfg, &none).unwrap_err();
        assert!(e.starts_with("bad JPEG"), "{e}");
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let cfg = DecodeConfig::default();
        let enc = jpeg(256, 256, 90);
        // The crop is at the top: without the end-of-image check the rows below would never be
        // read and the truncation would go unseen.
        let want = |_: usize, _: usize| {
            Some(Want {
                top: 0,
                left: 0,
                height: 32,
                width: 32,
                out_h: 16,
                out_w: 16,
            })
        };
        let mut out = Vec::new();
        assert!(decode_hinted(&enc, &mut out, &cfg, &want).is_ok());
        let cut = &enc[..enc.len() * 2 / 3];
        let e = decode_hinted(cut, &mut out, &cfg, &want).unwrap_err();
        assert!(e.starts_with("bad JPEG"), "{e}");
        // Corrupt entropy data in rows the crop needs (a narrow box of every row).
        let mut bad = enc.clone();
        let n = bad.len();
        for b in &mut bad[n / 3..n / 3 + 64] {
            *b = 0xff;
        }
        let tall = |_: usize, _: usize| {
            Some(Want {
                top: 0,
                left: 100,
                height: 256,
                width: 16,
                out_h: 16,
                out_w: 16,
            })
        };
        assert!(decode_hinted(&enc, &mut out, &cfg, &tall).is_ok());
        let e = decode_hinted(&bad, &mut out, &cfg, &tall).unwrap_err();
        assert!(e.starts_with("bad JPEG"), "{e}");
        // A file cut inside its header, then a whole one on the same thread: the failed call
        // leaves no state behind.
        assert!(decode_hinted(&enc[..40], &mut out, &cfg, &want).is_err());
        assert!(decode_hinted(&enc, &mut out, &cfg, &want).is_ok());
        // No box wanted: the full decoder, strict as before.
        let none = |_: usize, _: usize| None;
        let (shape, p) = decode_hinted(&enc, &mut out, &cfg, &none).unwrap();
        assert_eq!((shape, p), ([256, 256, 3], None));
        assert!(decode_hinted(cut, &mut out, &cfg, &none).is_err());
    }
}
