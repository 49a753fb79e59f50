//! The f32 output's lookup table: one f32 per byte value and channel, folding in the /255 and
//! the normalisation, and the lookup of a whole one-channel sample through it (the hottest loop
//! of the pre-decoded path).
//!
//! The table is also kept as four byte planes a channel (byte r of every entry), so that CPUs
//! with AVX-512 VBMI can look up 64 values with a few byte permutes instead of 64 loads or
//! eight gathers. Every path returns the table's own entries, so they agree bit for bit.

use crate::error::Error;

/// Per-channel tables: `values()[c * 256 + v]` is the output for byte v in channel c.
#[derive(Clone, Debug)]
pub(crate) struct Lut {
    values: Vec<f32>,
    /// `planes[(c * 4 + r) * 256 + v]` is byte r (little-endian) of `values[c * 256 + v]`.
    planes: Vec<u8>,
}

impl Lut {
    /// `(v / 255 − mean[c]) / std[c]`; a one-value `mean`/`std` serves every channel.
    /// Refuses a channel count whose tables cannot be allocated, rather than aborting.
    pub(crate) fn normalize(channels: usize, mean: &[f32], std: &[f32]) -> Result<Lut, Error> {
        let mut values = Vec::new();
        let mut planes = Vec::new();
        let fits = 1024usize.checked_mul(channels).is_some_and(|len| {
            values.try_reserve_exact(len / 4).is_ok() && planes.try_reserve_exact(len).is_ok()
        });
        if !fits {
            return Err(Error::invalid(format!(
                "source: samples have {channels} channels, too many for `transform.dtype` f32 \
                 here"
            )));
        }
        for ch in 0..channels {
            let m = mean[ch.min(mean.len() - 1)];
            let s = std[ch.min(std.len() - 1)];
            values.extend((0..256).map(|v| (v as f32 / 255.0 - m) / s));
        }
        for table in values.chunks_exact(256) {
            for r in 0..4 {
                planes.extend(table.iter().map(|v| v.to_le_bytes()[r]));
            }
        }
        Ok(Lut { values, planes })
    }

    /// Every channel's table, channel after channel.
    pub(crate) fn values(&self) -> &[f32] {
        &self.values
    }

    /// Channel `ch`'s 256 entries.
    pub(crate) fn table(&self, ch: usize) -> &[f32; 256] {
        self.values[ch * 256..(ch + 1) * 256]
            .try_into()
            .expect("256 entries a channel")
    }

    /// `dst[i] = table(ch)[src[i]]` over the shorter of the two.
    pub(crate) fn lookup(&self, ch: usize, src: &[u8], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match simd() {
            Simd::Vbmi => {
                let planes: &[u8; 1024] = self.planes[ch * 1024..(ch + 1) * 1024]
                    .try_into()
                    .expect("four planes of 256 a channel");
                // SAFETY: Simd::Vbmi only where the CPU has AVX-512 F, BW and VBMI.
                unsafe { lookup_vbmi(src, planes, self.table(ch), dst) };
                return;
            }
            Simd::Gather => {
                // SAFETY: Simd::Gather only where the CPU has AVX2.
                unsafe { lookup_avx2(src, self.table(ch), dst) };
                return;
            }
            Simd::None => {}
        }
        lookup_scalar(src, self.table(ch), dst);
    }
}

fn lookup_scalar(src: &[u8], table: &[f32; 256], dst: &mut [f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = table[v as usize];
    }
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Debug)]
enum Simd {
    /// AVX-512 with byte permutes (VBMI): the table as byte planes in registers.
    Vbmi,
    /// AVX2's gather.
    Gather,
    None,
}

/// Which lookup this CPU runs. VBMI needs no memory access per value, so it goes first. The
/// gather only where Linux reports the CPU unaffected by Gather Data Sampling: on CPUs that are
/// affected, the microcode fix makes every gather slow enough to lose to the scalar loop, so
/// they (and systems that do not say) keep it.
#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    static SIMD: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *SIMD.get_or_init(|| {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
        {
            Simd::Vbmi
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::fs::read_to_string(
                "/sys/devices/system/cpu/vulnerabilities/gather_data_sampling",
            )
            .is_ok_and(|s| s.trim() == "Not affected")
        {
            Simd::Gather
        } else {
            Simd::None
        }
    })
}

/// `lookup_scalar` eight values at a time: each gather loads the same table entries the scalar
/// loop loads, so the output is the same bit for bit.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lookup_avx2(src: &[u8], table: &[f32; 256], dst: &mut [f32]) {
    use std::arch::x86_64::{
        __m128i, _mm256_cvtepu8_epi32, _mm256_i32gather_ps, _mm256_storeu_ps, _mm_loadl_epi64,
    };
    let n = src.len().min(dst.len());
    let whole = n / 8 * 8;
    for (s, d) in src[..whole]
        .chunks_exact(8)
        .zip(dst[..whole].chunks_exact_mut(8))
    {
        // SAFETY: `s` holds 8 bytes (an unaligned 8-byte load); every index is a byte value,
        // < 256, so each gathered address is inside `table`; `d` holds 8 f32 (unaligned store).
        unsafe {
            let idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(s.as_ptr().cast::<__m128i>()));
            let v = _mm256_i32gather_ps::<4>(table.as_ptr(), idx);
            _mm256_storeu_ps(d.as_mut_ptr(), v);
        }
    }
    lookup_scalar(&src[whole..n], table, &mut dst[whole..n]);
}

/// `lookup_scalar` 64 values at a time, from the table's four byte planes held in registers.
///
/// Per 64 source bytes: byte plane r of each value is picked by two 128-entry byte permutes
/// (the low and high halves of the plane) and a blend on the byte's top bit; the four planes
/// are then interleaved back into f32 with the byte and word unpacks. The unpacks work within
/// 128-bit lanes, so the source bytes are first reordered (one byte permute) such that the
/// unpacks put every value at its own output position. The bytes are the table's own, so the
/// output is the same bit for bit.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VBMI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn lookup_vbmi(src: &[u8], planes: &[u8; 1024], table: &[f32; 256], dst: &mut [f32]) {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_mask_blend_epi8, _mm512_movepi8_mask,
        _mm512_permutex2var_epi8, _mm512_permutexvar_epi8, _mm512_storeu_si512,
        _mm512_unpackhi_epi16, _mm512_unpackhi_epi8, _mm512_unpacklo_epi16, _mm512_unpacklo_epi8,
    };
    // Position 16L + 4j + r of the reordered bytes takes source byte 16j + 4L + r: after the
    // unpacks, output register j holds in lane L the values 16j + 4L .. 16j + 4L + 3.
    static ORDER: [u8; 64] = {
        let mut t = [0u8; 64];
        let mut p = 0;
        while p < 64 {
            let (lane, j, r) = (p / 16, p % 16 / 4, p % 4);
            t[p] = (16 * j + 4 * lane + r) as u8;
            p += 1;
        }
        t
    };
    let n = src.len().min(dst.len());
    let whole = n / 64 * 64;
    // SAFETY: every load reads 64 bytes inside `planes`, `ORDER` or a 64-byte chunk of `src`;
    // every store writes 16 f32 inside a 64-value chunk of `dst`; all are unaligned accesses.
    unsafe {
        let load = |p: *const u8| _mm512_loadu_si512(p.cast::<__m512i>());
        let order = load(ORDER.as_ptr());
        // Plane r's low half (entries 0..128) and high half (128..256).
        let half = |r: usize, h: usize| {
            (
                load(planes[r * 256 + h * 128..].as_ptr()),
                load(planes[r * 256 + h * 128 + 64..].as_ptr()),
            )
        };
        let t: [[(__m512i, __m512i); 2]; 4] = std::array::from_fn(|r| [half(r, 0), half(r, 1)]);
        for (s, d) in src[..whole]
            .chunks_exact(64)
            .zip(dst[..whole].chunks_exact_mut(64))
        {
            let x = _mm512_permutexvar_epi8(order, load(s.as_ptr()));
            let high = _mm512_movepi8_mask(x);
            let plane = |r: usize| {
                let [(a, b), (c, e)] = t[r];
                _mm512_mask_blend_epi8(
                    high,
                    _mm512_permutex2var_epi8(a, x, b),
                    _mm512_permutex2var_epi8(c, x, e),
                )
            };
            let (p0, p1, p2, p3) = (plane(0), plane(1), plane(2), plane(3));
            let lo01 = _mm512_unpacklo_epi8(p0, p1);
            let hi01 = _mm512_unpackhi_epi8(p0, p1);
            let lo23 = _mm512_unpacklo_epi8(p2, p3);
            let hi23 = _mm512_unpackhi_epi8(p2, p3);
            let out = d.as_mut_ptr().cast::<__m512i>();
            _mm512_storeu_si512(out, _mm512_unpacklo_epi16(lo01, lo23));
            _mm512_storeu_si512(out.add(1), _mm512_unpackhi_epi16(lo01, lo23));
            _mm512_storeu_si512(out.add(2), _mm512_unpacklo_epi16(hi01, hi23));
            _mm512_storeu_si512(out.add(3), _mm512_unpackhi_epi16(hi01, hi23));
        }
    }
    lookup_scalar(&src[whole..n], table, &mut dst[whole..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose entries differ in every bit position, including NaN payloads and -0.
    fn odd_lut() -> Lut {
        let values: Vec<f32> = (0..512u32)
            .map(|i| f32::from_bits(i.wrapping_mul(0x9E37_79B9) ^ (i << 23)))
            .collect();
        let mut planes = Vec::new();
        for table in values.chunks_exact(256) {
            for r in 0..4 {
                planes.extend(table.iter().map(|v| v.to_le_bytes()[r]));
            }
        }
        Lut { values, planes }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_lookup_equals_the_table_bit_for_bit() {
        let lut = odd_lut();
        let src: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        // Every length around the 8- and 64-wide steps, at unaligned starts of source and
        // output, in both channels.
        for ch in 0..2 {
            let table = lut.table(ch);
            for start in 0..3 {
                for len in (0..140).chain([255, 256, 257, 511, 512, 513]) {
                    let s = &src[start..start + len];
                    let want: Vec<u32> = s.iter().map(|&v| table[v as usize].to_bits()).collect();
                    let mut got = vec![0f32; len + 1];
                    lut.lookup(ch, s, &mut got[1..]);
                    assert_eq!(bits(&got[1..]), want, "dispatched, ch {ch} {start} {len}");
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut got = vec![0f32; len + 1];
                            // SAFETY: AVX2 is there (checked just above).
                            unsafe { lookup_avx2(s, table, &mut got[1..]) };
                            assert_eq!(bits(&got[1..]), want, "avx2, ch {ch} {start} {len}");
                        }
                        if simd() == Simd::Vbmi {
                            let planes = lut.planes[ch * 1024..][..1024].try_into().unwrap();
                            let mut got = vec![0f32; len + 1];
                            // SAFETY: simd() found AVX-512 F, BW and VBMI.
                            unsafe { lookup_vbmi(s, planes, table, &mut got[1..]) };
                            assert_eq!(bits(&got[1..]), want, "vbmi, ch {ch} {start} {len}");
                        }
                    }
                }
            }
        }
        // A longer output than source: only the source's length is written.
        let mut got = vec![7f32; 100];
        lut.lookup(0, &src[..70], &mut got);
        assert!(got[70..].iter().all(|&v| v == 7.0));
    }

    #[test]
    fn normalize_folds_the_division_and_the_statistics() {
        let lut = Lut::normalize(3, &[0.5, 0.25, 0.0], &[0.5, 2.0, 1.0]).unwrap();
        assert_eq!(lut.values().len(), 768);
        assert_eq!(lut.table(0)[255], (1.0 - 0.5) / 0.5);
        assert_eq!(lut.table(1)[0], (0.0 - 0.25) / 2.0);
        assert_eq!(lut.table(2)[51], 51.0 / 255.0);
        // One mean/std for every channel.
        let one = Lut::normalize(2, &[0.1], &[0.3]).unwrap();
        assert_eq!(one.table(1)[9], one.table(0)[9]);
        // The planes are the values' bytes.
        for (i, v) in lut.values().iter().enumerate() {
            let (c, b) = (i / 256, i % 256);
            for r in 0..4 {
                assert_eq!(lut.planes[(c * 4 + r) * 256 + b], v.to_le_bytes()[r]);
            }
        }
        assert!(Lut::normalize(usize::MAX / 8, &[0.0], &[1.0]).is_err());
    }
}
