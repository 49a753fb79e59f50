//! Decoding one encoded image (JPEG or PNG, told apart by their magic bytes, not by file names)
//! into 8-bit HWC pixels of the configured colour (RGB or gray), under size limits that refuse
//! decompression bombs before any pixel memory is allocated.
//!
//! JPEG: zune-jpeg in strict mode. image's wrapper for it turns strict mode off, and then a
//! truncated or corrupt file decodes "successfully" with gray where the data ran out; strict
//! mode makes those errors. The workspace patches its chroma upsampling at the right and bottom
//! edge to repeat the last chroma sample as libjpeg-turbo (Pillow) does (see
//! vendor/zune-jpeg/THRESHER-PATCH.md). PNG: image's decoder (the `png` crate), given image's
//! `Limits`.
//!
//! Colour conversion follows Pillow's `Image.convert`, which torchvision's `ImageFolder` applies
//! (`convert("RGB")`): alpha is dropped (not composited), gray is replicated to RGB, and RGB → gray
//! is Pillow's integer ITU-R 601 luma `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`. 16-bit
//! PNGs keep their high byte (Pillow does that for 16-bit RGB; for 16-bit gray it clips at 255,
//! which we do not copy).

use std::io::Cursor;

use image::ImageDecoder;
use serde::Deserialize;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// The colour the decoded samples are converted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Three channels, as torchvision's default loader (`convert("RGB")`).
    #[default]
    Rgb,
    /// One channel (`convert("L")`).
    Gray,
}

impl Color {
    pub fn channels(self) -> usize {
        match self {
            Color::Rgb => 3,
            Color::Gray => 1,
        }
    }
}

/// Default `source.max_pixels`: 64 megapixels (2^26), eight times a 12-megapixel photograph.
pub(crate) const DEFAULT_MAX_PIXELS: u64 = 1 << 26;
/// Default `source.max_bytes`: 64 MiB per encoded file.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 64 << 20;

pub(crate) fn default_max_pixels() -> u64 {
    DEFAULT_MAX_PIXELS
}
pub(crate) fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

/// How encoded images are decoded: the output colour and the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeConfig {
    pub color: Color,
    /// Width × height above which an image is refused, read from its header before decoding.
    pub max_pixels: u64,
    /// Encoded size above which a file (or tar member) is refused before it is read.
    pub max_bytes: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            color: Color::Rgb,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl DecodeConfig {
    /// Range checks for the keys (named as under `source`).
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.max_pixels == 0 {
            return Err(crate::Error::invalid(
                "config key `source.max_pixels`: must be ≥ 1",
            ));
        }
        if self.max_bytes == 0 {
            return Err(crate::Error::invalid(
                "config key `source.max_bytes`: must be ≥ 1",
            ));
        }
        Ok(())
    }

    /// Refuses an encoded file of `len` bytes above `max_bytes`.
    pub(crate) fn check_bytes(&self, len: u64) -> Result<(), String> {
        if len > self.max_bytes {
            return Err(format!(
                "{len} bytes exceeds source.max_bytes = {}",
                self.max_bytes
            ));
        }
        Ok(())
    }

    pub(crate) fn check_pixels(&self, width: u64, height: u64) -> Result<(), String> {
        let pixels = width.saturating_mul(height);
        if pixels > self.max_pixels {
            return Err(format!(
                "{width}×{height} = {pixels} pixels exceeds source.max_pixels = {} (a \
                 decompression bomb, or raise the limit)",
                self.max_pixels
            ));
        }
        if pixels == 0 {
            return Err(format!("the image is {width}×{height}: empty"));
        }
        Ok(())
    }
}

/// Decodes `encoded` into `out` (resized to fit; its capacity is reused) as 8-bit HWC pixels of
/// `config.color`; returns (height, width, channels). The error is the reason alone: the caller
/// puts the file's name in front.
pub(crate) fn decode(
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
) -> Result<[usize; 3], String> {
    if encoded.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let (h, w, native) = if encoded.starts_with(&[0xff, 0xd8, 0xff]) {
        decode_jpeg(encoded, out, config)?
    } else if encoded.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(encoded, out, config)?
    } else {
        let head: Vec<String> = encoded.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(format!(
            "not a JPEG or PNG file (it starts with bytes {})",
            head.join(" ")
        ));
    };
    let c = convert(out, h * w, native, config.color);
    Ok([h, w, c])
}

/// The decoder's output layout before colour conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Native {
    channels: usize,
    sixteen_bit: bool,
}

/// The most scans a progressive JPEG may have, for both decoders: every scan is a pass over
/// the whole image, so this bounds what a small hostile file can cost. Encoders write about ten
/// (libjpeg's default script) and rarely more than a few dozen; zune-jpeg's own default is 100.
pub(crate) const MAX_SCANS: usize = 100;

fn decode_jpeg(
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
) -> Result<(usize, usize, Native), String> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_max_scans(MAX_SCANS)
        .set_max_width(u16::MAX as usize)
        .set_max_height(u16::MAX as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(encoded), options);
    decoder
        .decode_headers()
        .map_err(|e| format!("bad JPEG: {e}"))?;
    let (w, h) = decoder.dimensions().ok_or("bad JPEG: no frame header")?;
    config.check_pixels(w as u64, h as u64)?;
    let input = decoder
        .input_colorspace()
        .ok_or("bad JPEG: no colour space")?;
    // Gray stays gray (one channel, converted below if RGB is wanted); everything else (YCbCr,
    // RGB, CMYK, YCCK) comes out as RGB.
    let (space, channels) = match input {
        ColorSpace::Luma => (ColorSpace::Luma, 1),
        _ => (ColorSpace::RGB, 3),
    };
    decoder.set_options(options.jpeg_set_out_colorspace(space));
    let len = decoder
        .output_buffer_size()
        .ok_or("bad JPEG: no output size")?;
    if len != w * h * channels {
        return Err(format!(
            "bad JPEG: decoder output of {len} bytes for {w}×{h}×{channels}"
        ));
    }
    out.resize(len, 0);
    decoder
        .decode_into(out)
        .map_err(|e| format!("bad JPEG: {e}"))?;
    Ok((
        h,
        w,
        Native {
            channels,
            sixteen_bit: false,
        },
    ))
}

fn decode_png(
    encoded: &[u8],
    out: &mut Vec<u8>,
    config: &DecodeConfig,
) -> Result<(usize, usize, Native), String> {
    let mut limits = image::Limits::default();
    // The header's size is checked against max_pixels below; these bound the decoder's own
    // allocations (16-bit RGBA is 8 bytes a pixel) before that check can run.
    let side = u32::try_from(config.max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(config.max_pixels.saturating_mul(8).max(1 << 20));
    let decoder = image::codecs::png::PngDecoder::with_limits(Cursor::new(encoded), limits)
        .map_err(|e| format!("bad PNG: {e}"))?;
    let (w, h) = decoder.dimensions();
    config.check_pixels(w as u64, h as u64)?;
    let native = match decoder.color_type() {
        image::ColorType::L8 => (1, false),
        image::ColorType::La8 => (2, false),
        image::ColorType::Rgb8 => (3, false),
        image::ColorType::Rgba8 => (4, false),
        image::ColorType::L16 => (1, true),
        image::ColorType::La16 => (2, true),
        image::ColorType::Rgb16 => (3, true),
        image::ColorType::Rgba16 => (4, true),
        other => return Err(format!("PNG colour type {other:?} is not supported")),
    };
    let native = Native {
        channels: native.0,
        sixteen_bit: native.1,
    };
    let len = decoder.total_bytes();
    if len > isize::MAX as u64 {
        return Err("bad PNG: too large".into());
    }
    out.resize(len as usize, 0);
    decoder
        .read_image(out)
        .map_err(|e| format!("bad PNG: {e}"))?;
    Ok((h as usize, w as usize, native))
}

/// Pillow's RGB → L: `L24(rgb) >> 16` (libImaging/Convert.c).
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Converts `n` pixels of `native` layout at the front of `buf` to 8-bit `color`, in place;
/// returns the channel count.
fn convert(buf: &mut Vec<u8>, n: usize, native: Native, color: Color) -> usize {
    let mut c = native.channels;
    if native.sixteen_bit {
        // Native-endian u16 → its high byte.
        for i in 0..n * c {
            buf[i] = (u16::from_ne_bytes([buf[2 * i], buf[2 * i + 1]]) >> 8) as u8;
        }
    }
    buf.truncate(n * c);
    match (c, color) {
        (1, Color::Gray) | (3, Color::Rgb) => {}
        (2, _) | (4, _) => {
            // Drop alpha, as Pillow's convert does (no compositing onto a background).
            let keep = c - 1;
            for i in 0..n {
                buf.copy_within(i * c..i * c + keep, i * keep);
            }
            c = keep;
            buf.truncate(n * c);
            return convert(
                buf,
                n,
                Native {
                    channels: c,
                    sixteen_bit: false,
                },
                color,
            );
        }
        (3, Color::Gray) => {
            for i in 0..n {
                buf[i] = luma(buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]);
            }
            c = 1;
            buf.truncate(n);
        }
        (1, Color::Rgb) => {
            buf.resize(n * 3, 0);
            for i in (0..n).rev() {
                let v = buf[i];
                buf[3 * i..3 * i + 3].fill(v);
            }
            c = 3;
        }
        _ => unreachable!("decoders yield 1 to 4 channels"),
    }
    c
}

/// Reads a whole image file into `buf` (its capacity reused). Only a regular file is read (a
/// FIFO, a device or a directory named like an image is refused before any read, see
/// `open_regular`), and one above `max_bytes` is refused before it is read. Errors name the path.
pub(crate) fn read_file(
    path: &std::path::Path,
    buf: &mut Vec<u8>,
    config: &DecodeConfig,
) -> crate::Result<()> {
    use std::io::Read;
    let (mut file, len) = crate::util::open_regular(path, "image file")?;
    config
        .check_bytes(len)
        .map_err(|e| crate::Error::format(format!("{}: {e}", path.display())))?;
    buf.clear();
    buf.try_reserve(len as usize).map_err(|_| {
        crate::Error::format(format!(
            "{}: {len} bytes: too large to load",
            path.display()
        ))
    })?;
    // `take` bounds a file that grows while it is read.
    (&mut file)
        .take(config.max_bytes + 1)
        .read_to_end(buf)
        .map_err(|e| crate::Error::io(path, &e))?;
    config
        .check_bytes(buf.len() as u64)
        .map_err(|e| crate::Error::format(format!("{}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: image::DynamicImage) -> Vec<u8> {
        let mut v = Vec::new();
        img.write_to(&mut Cursor::new(&mut v), image::ImageFormat::Png)
            .unwrap();
        v
    }

    #[test]
    fn colour_conversions_follow_pillow() {
        let rgba =
            image::RgbaImage::from_raw(2, 1, vec![10, 20, 30, 0, 200, 100, 50, 255]).unwrap();
        let bytes = png(rgba.into());
        let mut out = Vec::new();
        let cfg = DecodeConfig::default();
        assert_eq!(decode(&bytes, &mut out, &cfg).unwrap(), [1, 2, 3]);
        assert_eq!(out, [10, 20, 30, 200, 100, 50]);
        let gray = DecodeConfig {
            color: Color::Gray,
            ..cfg
        };
        assert_eq!(decode(&bytes, &mut out, &gray).unwrap(), [1, 2, 1]);
        assert_eq!(out, [luma(10, 20, 30), luma(200, 100, 50)]);
        // Pillow: L of (200, 100, 50) is 124.
        assert_eq!(luma(200, 100, 50), 124);
        let l = image::GrayImage::from_raw(3, 1, vec![0, 128, 255]).unwrap();
        let bytes = png(l.into());
        assert_eq!(decode(&bytes, &mut out, &cfg).unwrap(), [1, 3, 3]);
        assert_eq!(out, [0, 0, 0, 128, 128, 128, 255, 255, 255]);
        let l16 = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![0x1234, 0xff00])
            .unwrap();
        let bytes = png(l16.into());
        assert_eq!(decode(&bytes, &mut out, &gray).unwrap(), [1, 2, 1]);
        assert_eq!(out, [0x12, 0xff]);
    }

    #[test]
    fn limits_and_garbage() {
        let img = image::GrayImage::from_raw(8, 8, vec![7; 64]).unwrap();
        let bytes = png(img.into());
        let mut out = Vec::new();
        let small = DecodeConfig {
            max_pixels: 63,
            ..DecodeConfig::default()
        };
        let e = decode(&bytes, &mut out, &small).unwrap_err();
        assert!(
            e.contains("8×8 = 64 pixels exceeds source.max_pixels = 63"),
            "{e}"
        );
        assert!(decode(&[], &mut out, &small).unwrap_err().contains("empty"));
        let e = decode(b"GIF89a..", &mut out, &small).unwrap_err();
        assert!(
            e.contains("not a JPEG or PNG") && e.contains("47 49 46"),
            "{e}"
        );
        assert!(DecodeConfig::default().check_bytes(65 << 20).is_err());
    }
}
