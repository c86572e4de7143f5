//! A hint to the CPU to bring a value's cache line in before it is read: the replay and the
//! arrivals' appends know which entries and index cells they touch next.
//!
//! Guarantee: no effect on any answer (a prefetch never faults and writes nothing); on targets
//! other than x86-64 it compiles to nothing.

/// A hint to the CPU to load the cache line of `value` (on x86-64; nothing elsewhere).
#[inline(always)]
pub(crate) fn prefetch_read<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction never faults and changes nothing the program can observe
    // but timing; the pointer comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
