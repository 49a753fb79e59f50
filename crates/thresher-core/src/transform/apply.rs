//! Running a bound transform on one sample (`Transform::apply`, `apply_placed`), and the box a
//! hinted source decodes for it (`want`): the crop's draws, the resize or fused resize, the
//! flip and the copy into the slot, in torchvision's order.

use super::emit::Emit;
use super::geometry::{self, Window};
use super::resample::{Frac, Job, Rect};
use super::{Crop, Layout, Out, Size, Transform, Workspace, MAX_RESIZED_SIDE};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use crate::source::{scaled_box, Placed, SampleView, Want};

impl Transform {
    /// Transforms sample `id` of epoch `epoch` into `out` (exactly one sample long). The
    /// random choices depend only on (seed, epoch, id).
    pub fn apply(
        &self,
        view: &SampleView<'_>,
        epoch: u64,
        id: u64,
        ws: &mut Workspace,
        out: Out<'_>,
    ) -> Result<()> {
        self.apply_placed(view, None, epoch, id, ws, out)
    }

    /// The box this transform takes from an image of `height × width` (before any pixel is
    /// decoded), for sources that can decode only that part (`Source::read_hinted`):
    /// `random_resized_crop` without `resize`. The same draws as `apply_placed` makes, so the
    /// box is the one it then uses.
    pub fn want(&self, height: usize, width: usize, epoch: u64, id: u64) -> Option<Want> {
        let Crop::RandomResized { size, scale, ratio } = &self.crop else {
            return None;
        };
        if self.resize.is_some() || height == 0 || width == 0 {
            return None;
        }
        let mut rng = Rng::new(self.seed, Stream::Augment, epoch, id);
        let (top, left, bh, bw) =
            geometry::random_resized_crop(height, width, *scale, *ratio, &mut rng);
        Some(Want {
            top,
            left,
            height: bh,
            width: bw,
            out_h: size.0,
            out_w: size.1,
        })
    }

    /// As `apply`, for pixels a source decoded for `want`: `placed` says where `view` sits in
    /// the (possibly reduced) image; `None` means `view` is the whole image.
    pub fn apply_placed(
        &self,
        view: &SampleView<'_>,
        placed: Option<Placed>,
        epoch: u64,
        id: u64,
        ws: &mut Workspace,
        out: Out<'_>,
    ) -> Result<()> {
        let c = view.channels;
        if c != self.channels || view.pixels.len() != view.height * view.width * c {
            return Err(Error::format(format!(
                "sample is {}×{}×{c} but the batch expects {} channels",
                view.height, view.width, self.channels
            )));
        }
        // The geometry is drawn on the whole image's size, wherever its pixels come from.
        let (h, w) = placed.map_or((view.height, view.width), |p| (p.full_h, p.full_w));
        if placed.is_some()
            && (self.resize.is_some() || !matches!(self.crop, Crop::RandomResized { .. }))
        {
            return Err(Error::format(
                "internal: a partly decoded image for a transform that takes no box",
            ));
        }
        let mut rng = self
            .is_random()
            .then(|| Rng::new(self.seed, Stream::Augment, epoch, id));
        let (rh, rw) = match self.resize {
            None => (h, w),
            Some(Size::One(n)) => geometry::resize_shorter(h, w, n),
            Some(Size::Hw(a, b)) => (a, b),
        };
        // Resize(N) keeps the aspect ratio, so a thin image's long side grows without bound
        // (1 × 60000 at N = 65536 is 65536 × 3932160000): the resampler's per-side tables would
        // not fit. Refused as this sample's error, like any sample that cannot be transformed.
        if rh.max(rw) > MAX_RESIZED_SIDE {
            return Err(Error::format(format!(
                "sample is {h}×{w}: `transform.resize` would make it {rh}×{rw}, a side above \
                 {MAX_RESIZED_SIDE}"
            )));
        }
        if rh == 0 || rw == 0 || h == 0 || w == 0 {
            return Err(Error::format(format!(
                "sample is {h}×{w}: too small to resize"
            )));
        }
        // The output window in the (resized) image, or the box a random_resized_crop takes.
        let (window, resized_crop) = match &self.crop {
            Crop::None => {
                if (rh, rw) != self.out {
                    return Err(Error::format(format!(
                        "sample is {h}×{w}×{c}{} but the batch expects {}×{}×{c}",
                        if self.resize.is_some() {
                            format!(" (resized to {rh}×{rw})")
                        } else {
                            String::new()
                        },
                        self.out.0,
                        self.out.1
                    )));
                }
                (
                    Window {
                        top: 0,
                        left: 0,
                        height: rh,
                        width: rw,
                    },
                    None,
                )
            }
            Crop::Center(ch, cw) => (geometry::center_crop(rh, rw, *ch, *cw), None),
            Crop::Random(th, tw, pad) => {
                let rng = rng.as_mut().expect("a random crop is random");
                let win = geometry::random_crop(rh, rw, *th, *tw, *pad, rng).ok_or_else(|| {
                    Error::format(format!(
                        "sample is {rh}×{rw} after padding {:?}, smaller than the random_crop \
                         size {th}×{tw}",
                        [pad.left, pad.top, pad.right, pad.bottom]
                    ))
                })?;
                (win, None)
            }
            Crop::RandomResized { size, scale, ratio } => {
                let rng = rng.as_mut().expect("a random crop is random");
                let b = geometry::random_resized_crop(rh, rw, *scale, *ratio, rng);
                let win = Window {
                    top: 0,
                    left: 0,
                    height: size.0,
                    width: size.1,
                };
                (win, Some(b))
            }
        };
        let flip = match rng.as_mut() {
            Some(rng) if self.hflip > 0.0 => rng.unit_f64() < self.hflip,
            _ => false,
        };
        let emit = |src: &SampleView<'_>, top: isize, left: isize, out: Out<'_>| {
            let e = Emit {
                top,
                left,
                height: self.out.0,
                width: self.out.1,
                flip,
                planar: self.layout == Layout::Nchw && c > 1,
            };
            match out {
                Out::U8(dst) => e.to_u8(src, dst),
                Out::F32(dst) => e.to_f32(src, self.lut(), dst),
            }
        };
        let full = |h, w| Rect {
            top: 0,
            left: 0,
            height: h,
            width: w,
        };
        let Workspace {
            resampler,
            region,
            resized,
        } = ws;
        match resized_crop {
            None if (rh, rw) == (h, w) => emit(view, window.top, window.left, out),
            None => {
                // Resize then crop: resample only the part of the resized image the window
                // covers (the rest of the window is padding).
                let clip = |start: isize, len: usize, size: usize| {
                    let a = start.clamp(0, size as isize) as usize;
                    let b = (start + len as isize).clamp(a as isize, size as isize) as usize;
                    a..b
                };
                let rows = clip(window.top, window.height, rh);
                let cols = clip(window.left, window.width, rw);
                let (top, left) = (
                    window.top - rows.start as isize,
                    window.left - cols.start as isize,
                );
                let (vh, vw) = (rows.len(), cols.len());
                let job = Job {
                    bx: full(h, w),
                    out_h: rh,
                    out_w: rw,
                    rows,
                    cols,
                    frac: None,
                };
                resampler.resample(view, &job, region);
                let src = SampleView {
                    pixels: region,
                    height: vh,
                    width: vw,
                    channels: c,
                };
                emit(&src, top, left, out);
            }
            Some((i, j, bh, bw)) => {
                let src = if (rh, rw) == (h, w) {
                    *view
                } else {
                    let job = Job {
                        bx: full(h, w),
                        out_h: rh,
                        out_w: rw,
                        rows: 0..rh,
                        cols: 0..rw,
                        frac: None,
                    };
                    resampler.resample(view, &job, resized);
                    SampleView {
                        pixels: resized,
                        height: rh,
                        width: rw,
                        channels: c,
                    }
                };
                let (oh, ow) = self.out;
                // Reduced decodes are resampled from the fractional box at their scale, as
                // Pillow's `resize(box=...)` after `draft`: rounding the box to whole pixels
                // there would move its edges by up to half a reduced pixel.
                let (bx, frac) = match placed {
                    None => (
                        Rect {
                            top: i,
                            left: j,
                            height: bh,
                            width: bw,
                        },
                        None,
                    ),
                    Some(p) => {
                        let s = p.scale;
                        let region = |top: usize, left: usize, height: usize, width: usize| Rect {
                            top,
                            left,
                            height,
                            width,
                        };
                        let want = Want {
                            top: i,
                            left: j,
                            height: bh,
                            width: bw,
                            out_h: oh,
                            out_w: ow,
                        };
                        let (t, l, sh, sw) = scaled_box(&want, s, h, w);
                        let (full_h, full_w) = (h.div_ceil(s), w.div_ceil(s));
                        // The box and, reduced, the filter's reach past it (under 2.5 pixels:
                        // the box is less than twice the output there).
                        let reach = if s == 1 { 0 } else { 3 };
                        let inside =
                            |a: usize, len: usize, off: usize, have: usize, full: usize| {
                                a.saturating_sub(reach) >= off
                                    && (a + len + reach).min(full) <= off + have
                            };
                        if !inside(t, sh, p.top, src.height, full_h)
                            || !inside(l, sw, p.left, src.width, full_w)
                        {
                            return Err(Error::format(format!(
                                "internal: the decoded region misses the crop box {want:?}"
                            )));
                        }
                        if s == 1 {
                            (region(t - p.top, l - p.left, sh, sw), None)
                        } else {
                            let f = |v: usize| (v as f64 / s as f64) as f32;
                            let frac = Frac {
                                x0: f(j),
                                y0: f(i),
                                x1: f(j + bw),
                                y1: f(i + bh),
                                full_w,
                                full_h,
                                off_x: p.left,
                                off_y: p.top,
                            };
                            (region(0, 0, src.height, src.width), Some(frac))
                        }
                    }
                };
                let job = Job {
                    bx,
                    out_h: oh,
                    out_w: ow,
                    rows: 0..oh,
                    cols: 0..ow,
                    frac,
                };
                // f32 RGB planes: the resampler writes them itself (no u8 image between).
                let out = match out {
                    Out::F32(dst) if self.layout == Layout::Nchw && c == 3 => {
                        if resampler.resample_rgb_f32_planar(&src, &job, self.lut(), flip, dst) {
                            return Ok(());
                        }
                        Out::F32(dst)
                    }
                    out => out,
                };
                resampler.resample(&src, &job, region);
                let src = SampleView {
                    pixels: region,
                    height: oh,
                    width: ow,
                    channels: c,
                };
                emit(&src, 0, 0, out);
            }
        }
        Ok(())
    }
}
