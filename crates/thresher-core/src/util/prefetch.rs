//! A software prefetch hint, for the loops that touch ids in random order (the shuffle, the
//! ScoreBook's feedback).

/// A hint that element `j` of the slice starting at `base` will be written soon (callers pass
/// j < the slice's length); no effect on results. Also used by the ScoreBook's feedback.
#[inline(always)]
pub(crate) fn prefetch<T>(base: *const T, j: usize) {
    // wrapping_add: no pointer arithmetic is asserted in bounds; prefetch never faults, reads
    // or writes nothing, even at a bad address.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint with no memory effect (the intrinsic is `unsafe` only
    // because it is a target-feature intrinsic; SSE is baseline on x86_64).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            base.wrapping_add(j).cast(),
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, j);
}
