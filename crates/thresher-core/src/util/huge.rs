//! Buffers of a million ids or more that are read or written at random positions (the
//! ScoreBook's per-sample arrays, the plan's shuffle, the policies' scratch): asked to be backed
//! by transparent huge pages where the kernel offers them on request (Linux, `madvise` mode).
//! With 4 KiB pages, arrays of a few MB each span thousands of pages, more than the TLB holds,
//! so every random access also pays a page walk; 2 MiB pages cover them with a few entries.
//! Only a hint: the contents and every result are the same with or without it.

/// Below this many bytes a buffer is left alone (it cannot hold an aligned 2 MiB page anyway,
/// or the TLB covers it already).
const MIN_BYTES: usize = 4 << 20;

/// An empty Vec with room for `n` elements, its buffer advised for huge pages before anything
/// is written to it (pages faulted in later are then huge where the kernel can).
pub(crate) fn with_capacity<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise(&v);
    v
}

/// `vec![value; n]`, its buffer advised for huge pages before it is filled.
pub(crate) fn filled<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v = with_capacity(n);
    v.resize(n, value);
    v
}

/// `vec![T::default(); n]` for a numeric T (zero): allocated zeroed, so its pages stay
/// untouched (and take no memory) until first written, then huge where the kernel can.
pub(crate) fn zeroed<T: Clone + Default>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    advise(&v);
    v
}

/// Advises the whole capacity of `v` for huge pages (the part of it that is page aligned).
pub(crate) fn advise<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let end = (start + bytes) / PAGE * PAGE;
        if end > aligned {
            // SAFETY: the range lies inside `v`'s own allocation; MADV_HUGEPAGE changes no
            // contents and no mapping the program relies on (an error, e.g. a kernel without
            // THP, leaves the pages as they were and is ignored on purpose).
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn filled_equals_vec_macro() {
        for n in [0, 1, 1000, (5 << 20) / 4 + 3] {
            assert_eq!(super::filled(n, 7u32), vec![7u32; n]);
        }
        assert_eq!(super::zeroed::<f32>(3 << 20), vec![0.0f32; 3 << 20]);
        let v: Vec<u64> = super::with_capacity(1 << 20);
        assert!(v.is_empty() && v.capacity() >= 1 << 20);
    }
}
