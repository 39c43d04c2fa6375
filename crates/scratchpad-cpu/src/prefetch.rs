//! Software prefetch for the kernels that stream weights from memory (the
//! gemv) and for the read ceiling they are measured against.
//!
//! One core's read bandwidth is bounded by the lines it has in flight. The
//! hardware's stream prefetcher starts over at every 4 KiB page and at
//! every new matrix (a decode step starts ~50 of them), so on its own it
//! keeps fewer lines in flight than it could. Asking for each line
//! [`AHEAD`] bytes before it is read is worth a few per cent: against the
//! build before it (with the fused decode jobs, alternated processes),
//! synth-15m decoded 2.6 % more tokens per second over 256 positions at
//! one thread and at two.

/// How far ahead of the read the lines are asked for: 4 KiB, a page's
/// worth, about one row of a 768-wide matrix ahead. 2 and 8 KiB measured
/// the same within this VM's noise.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const AHEAD: usize = 4096;

/// Products of fewer bytes than this read without prefetch: stories260K's
/// whole model (1 MB) stays in L2 between tokens, where asking for lines
/// already there only costs instructions (its decode ran 21 % slower with
/// them); synth-15m's smallest matrix is 331 KB.
pub(crate) const MIN_BYTES: usize = 256 << 10;

/// Asks for the cache lines of `[start + AHEAD, start + AHEAD + len)`,
/// clamped to `last` (the last byte of the data being streamed, so nothing
/// past it is fetched). Advisory: a prefetch never faults and changes no
/// result.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn lines_ahead(start: *const u8, len: usize, last: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let mut line = 0;
    while line < len {
        let p = start.wrapping_add(AHEAD + line);
        // SAFETY: a prefetch is a hint: it reads nothing the program sees
        // and does not fault, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(if p > last { last } else { p }.cast()) };
        line += 64;
    }
}
