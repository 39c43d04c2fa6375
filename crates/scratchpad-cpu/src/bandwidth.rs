//! The read-bandwidth ceiling: one sequential pass over a buffer with the
//! widest loads the machine has and eight independent accumulators, plain
//! or with the gemv's software prefetch, whichever is faster. Every
//! memory-bound figure (gemv, decode) is compared with it.

use std::time::{Duration, Instant};

use crate::Isa;

/// The bytes the ceiling is measured over: the f32 weights of a
/// 15M-parameter model, the decode workload.
pub const CEILING_BYTES: usize = 60_800_000;

/// The result of [`read_bandwidth`].
#[derive(Clone, Copy, Debug)]
pub struct ReadBandwidth {
    /// Bytes per pass.
    pub bytes: usize,
    /// The fastest pass.
    pub best: Duration,
    /// The sum the passes computed (kept so the reads cannot be optimised
    /// away).
    pub checksum: f32,
}

impl ReadBandwidth {
    /// Gigabytes (1e9 bytes) per second of the fastest pass.
    pub fn gb_per_s(&self) -> f64 {
        self.bytes as f64 / self.best.as_secs_f64() / 1e9
    }
}

/// The best of `passes` sequential read passes over `data` with `isa`,
/// alternately plain ([`sum`]) and prefetched ([`sum_prefetched`]): the
/// ceiling is the faster way to read, so that a kernel that prefetches is
/// not measured against a read that does not.
pub fn read_bandwidth(data: &[f32], passes: usize, isa: Isa) -> ReadBandwidth {
    let mut best = Duration::MAX;
    let mut checksum = 0.0;
    for pass in 0..passes.max(1) {
        let read = if pass % 2 == 0 { sum } else { sum_prefetched };
        let start = Instant::now();
        checksum = std::hint::black_box(read(std::hint::black_box(data), isa));
        best = best.min(start.elapsed());
    }
    ReadBandwidth {
        bytes: std::mem::size_of_val(data),
        best,
        checksum,
    }
}

/// The sum of `data`, read with the loads of `isa`.
pub fn sum(data: &[f32], isa: Isa) -> f32 {
    sum_with(data, isa, false)
}

/// [`sum`], asking for each line a few KiB before it is read, as the gemv
/// does (no prefetch on the portable path).
pub fn sum_prefetched(data: &[f32], isa: Isa) -> f32 {
    sum_with(data, isa, true)
}

fn sum_with(data: &[f32], isa: Isa, prefetch: bool) -> f32 {
    isa.assert_supported();
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above).
        Isa::Avx512 => unsafe { x86::sum_avx512(data, prefetch) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA (asserted above).
        Isa::Avx2 => unsafe { x86::sum_avx2(data, prefetch) },
        _ => sum_portable(data),
    }
}

fn sum_portable(data: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let chunks = data.chunks_exact(32);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::prefetch::lines_ahead;

    /// # Safety
    ///
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_avx512(data: &[f32], prefetch: bool) -> f32 {
        let chunks = data.chunks_exact(128);
        let tail: f32 = chunks.remainder().iter().sum();
        let last = data
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(size_of_val(data))
            .wrapping_sub(1);
        let mut acc = [_mm512_setzero_ps(); 8];
        for chunk in chunks {
            let p = chunk.as_ptr();
            if prefetch {
                lines_ahead(p.cast(), 512, last);
            }
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: `chunk` holds 128 floats; lane `i` reads 16 of them.
                *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(p.add(16 * i)) });
            }
        }
        let mut total = _mm512_setzero_ps();
        for a in acc {
            total = _mm512_add_ps(total, a);
        }
        _mm512_reduce_add_ps(total) + tail
    }

    /// # Safety
    ///
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_avx2(data: &[f32], prefetch: bool) -> f32 {
        let chunks = data.chunks_exact(64);
        let tail: f32 = chunks.remainder().iter().sum();
        let last = data
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(size_of_val(data))
            .wrapping_sub(1);
        let mut acc = [_mm256_setzero_ps(); 8];
        for chunk in chunks {
            let p = chunk.as_ptr();
            if prefetch {
                lines_ahead(p.cast(), 256, last);
            }
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: `chunk` holds 64 floats; lane `i` reads 8 of them.
                *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(p.add(8 * i)) });
            }
        }
        let mut total = _mm256_setzero_ps();
        for a in acc {
            total = _mm256_add_ps(total, a);
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        lanes.iter().sum::<f32>() + tail
    }
}
