//! `widest!`: one plain loop compiled three times, for AVX-512F, for AVX2 and for the baseline,
//! the copy picked at run time by what the CPU has. For passes over N that the compiler can
//! vectorise but the baseline target (SSE2) makes two lanes wide. The body is the same code in
//! every copy, so the results are the same bits (the loops that use it keep their sums in
//! explicit lanes, so the vector width does not change their order).

/// Defines `fn $name($args) -> $ret` calling `$body($args)` (an `#[inline(always)]` function)
/// compiled for the widest of AVX-512F, AVX2 and the baseline that the CPU has.
macro_rules! widest {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use widest;
