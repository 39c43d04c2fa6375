//! Matrix-vector product `y = W x`, the decode hot path. `W` is row-major
//! `(m, k)` as in llama2.c checkpoints. Memory-bound: one row at a time
//! with four accumulators and the widest loads the CPU has, the lines a page
//! ahead asked for by software prefetch, and one contiguous block of rows
//! per worker when the matrix is large enough to pay for a fan-out.

use scratchpad::{ExecutionContext, HostMemory, ScratchReq};

use crate::Isa;
use crate::team::Disjoint;

/// Shape and path of a [`gemv`]: `y (m) = W (m, k) · x (k)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemv {
    /// Output rows.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// The SIMD path.
    pub isa: Isa,
}

/// Matrices with fewer elements than this run on the calling thread: a
/// fan-out costs a few microseconds, a 128×128 product less than that; a
/// 288×288 layer of a decode step (about 10 µs from memory) gains from two.
const PARALLEL_MIN_ELEMS: usize = 1 << 16;

impl Gemv {
    /// `y (m) = W (m, k) · x (k)` on the detected SIMD path.
    pub fn new(m: usize, k: usize) -> Self {
        Gemv {
            m,
            k,
            isa: Isa::detect(),
        }
    }
}

/// What [`gemv`] leases: nothing. A decode projection streams `W` once
/// and needs no packing.
pub fn gemv_scratch(_params: &Gemv) -> ScratchReq {
    ScratchReq::NONE
}

/// `y = W x`. Uses no scratch; runs in parallel inside the caller's rayon
/// pool when `m * k` is large.
///
/// # Panics
///
/// When slice lengths do not match the shape, or `params.isa` is not
/// supported by this CPU.
pub fn gemv(
    _ctx: &ExecutionContext<HostMemory>,
    params: &Gemv,
    w: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    let Gemv { m, k, isa } = *params;
    assert_eq!(w.len(), m * k, "gemv: W must hold m * k elements");
    assert_eq!(x.len(), k, "gemv: x must hold k elements");
    assert_eq!(y.len(), m, "gemv: y must hold m elements");
    fused(isa, [w], x, [y], |_| {});
}

/// Several products of one `x` as one job: `ys[i] = ws[i] · x`, each
/// `ws[i]` being `(ys[i].len(), k)` (the attention's Wq, Wk and Wv of a
/// decode step). On a team, each part computes the same share of every
/// product's rows: one hand-out instead of `N`, and `x` fetched by each
/// helper once. Uses no scratch.
///
/// # Panics
///
/// When a slice length does not match, or `isa` is not supported by this
/// CPU.
pub fn gemv_many<const N: usize>(
    _ctx: &ExecutionContext<HostMemory>,
    isa: Isa,
    ws: [&[f32]; N],
    x: &[f32],
    ys: [&mut [f32]; N],
) {
    fused(isa, ws, x, ys, |_| {});
}

/// The feed-forward's way up for one token as one job: `gate ← silu(W1 x) ⊙
/// (W3 x)`, `up` left holding `W3 x`. Each part applies SwiGLU to the rows
/// it computed, while the other parts still stream their weights. The
/// numbers are those of two [`gemv`]s and [`crate::swiglu`]. Uses no
/// scratch.
///
/// # Panics
///
/// When a slice length does not match (`w1`, `w3`: `(gate.len(), x.len())`;
/// `up`: `gate.len()`), or `isa` is not supported by this CPU.
pub fn gemv_swiglu(
    _ctx: &ExecutionContext<HostMemory>,
    isa: Isa,
    w1: &[f32],
    w3: &[f32],
    x: &[f32],
    gate: &mut [f32],
    up: &mut [f32],
) {
    assert_eq!(gate.len(), up.len(), "gemv_swiglu: gate and up must match");
    fused(isa, [w1, w3], x, [gate, up], |[gate, up]| {
        crate::swiglu(gate, up)
    });
}

/// `ys[i] = ws[i] · x` for every `i` as one job of [`crate::parts`] parts,
/// part `p` computing block `p` of every product's rows (blocks of whole
/// multiples of four rows, as [`gemv`] splits), then `then` on its blocks.
/// Products of one shape get the same rows in every part.
fn fused<const N: usize>(
    isa: Isa,
    ws: [&[f32]; N],
    x: &[f32],
    ys: [&mut [f32]; N],
    then: impl Fn([&mut [f32]; N]) + Sync,
) {
    let k = x.len();
    for (w, y) in ws.iter().zip(&ys) {
        assert_eq!(w.len(), y.len() * k, "gemv: W must hold m * k elements");
    }
    isa.assert_supported();
    let threads = crate::parts();
    let elems: usize = ws.iter().map(|w| w.len()).sum();
    let min_rows = ys.iter().map(|y| y.len()).min().unwrap_or(0);
    let prefetch = 4 * elems >= crate::prefetch::MIN_BYTES;
    if threads == 1 || elems < PARALLEL_MIN_ELEMS || min_rows < 8 {
        let mut ys = ys;
        for (w, y) in ws.iter().zip(ys.iter_mut()) {
            rows(isa, w, x, y, k, prefetch);
        }
        then(ys);
        return;
    }
    let blocks: [usize; N] =
        std::array::from_fn(|i| ys[i].len().div_ceil(threads).next_multiple_of(4).max(4));
    let parts = (0..N)
        .map(|i| ys[i].len().div_ceil(blocks[i]))
        .max()
        .unwrap_or(0);
    let ys = ys.map(Disjoint::new);
    crate::run_parts(parts, |part| {
        let mine: [&mut [f32]; N] = std::array::from_fn(|i| {
            let m = ys[i].len();
            let first = (part * blocks[i]).min(m);
            let last = (first + blocks[i]).min(m);
            // SAFETY: parts take disjoint row ranges of each `ys[i]`, each
            // part run once.
            let y = unsafe { ys[i].range(first, last) };
            rows(isa, &ws[i][first * k..last * k], x, y, k, prefetch);
            y
        });
        then(mine);
    });
}

/// `y = W x` for the rows of `w` on this thread, with the lines ahead
/// asked for when `prefetch`.
fn rows(isa: Isa, w: &[f32], x: &[f32], y: &mut [f32], k: usize, prefetch: bool) {
    match (isa, prefetch) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU supports AVX-512F.
        (Isa::Avx512, true) => unsafe { x86::rows_avx512::<true>(w, x, y, k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU supports AVX-512F.
        (Isa::Avx512, false) => unsafe { x86::rows_avx512::<false>(w, x, y, k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU supports AVX2 and FMA.
        (Isa::Avx2, true) => unsafe { x86::rows_avx2::<true>(w, x, y, k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU supports AVX2 and FMA.
        (Isa::Avx2, false) => unsafe { x86::rows_avx2::<false>(w, x, y, k) },
        _ => rows_portable(w, x, y, k),
    }
}

fn rows_portable(w: &[f32], x: &[f32], y: &mut [f32], k: usize) {
    for (row, out) in w.chunks_exact(k).zip(y.iter_mut()) {
        let mut acc = [0.0f32; 16];
        let chunks = row.chunks_exact(16);
        let tail: f32 = chunks
            .remainder()
            .iter()
            .zip(&x[k - k % 16..])
            .map(|(a, b)| a * b)
            .sum();
        for (wc, xc) in chunks.zip(x.chunks_exact(16)) {
            // Multiply and add, not `mul_add`: without FMA in the baseline
            // target that is a call to the software `fmaf`.
            for i in 0..16 {
                acc[i] += wc[i] * xc[i];
            }
        }
        *out = acc.iter().sum::<f32>() + tail;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::prefetch::lines_ahead;

    /// # Safety
    ///
    /// The CPU supports AVX-512F; `w` holds `y.len()` rows of `k`, `x` holds
    /// `k`.
    ///
    /// One row at a time, four accumulators: the matrix is read as a single
    /// sequential stream; four rows at once read four short streams and ran
    /// at half the bandwidth. Each row first asks for the lines
    /// [`crate::prefetch::AHEAD`] bytes on (see there why).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_avx512<const PREFETCH: bool>(
        w: &[f32],
        x: &[f32],
        y: &mut [f32],
        k: usize,
    ) {
        debug_assert!(w.len() == y.len() * k && x.len() == k);
        let full = k / 16 * 16;
        let quad = k / 64 * 64;
        let tail_mask: __mmask16 = ((1u32 << (k - full)) - 1) as u16;
        let xp = x.as_ptr();
        let last = w
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(size_of_val(w))
            .wrapping_sub(1);
        for (r, out) in y.iter_mut().enumerate() {
            // SAFETY: row r lies in `w`; every load reads `[j, j + 16)` with
            // `j + 16 <= k`, or the masked tail within `k`.
            unsafe {
                let wp = w.as_ptr().add(r * k);
                if PREFETCH {
                    lines_ahead(wp.cast(), 4 * k, last);
                }
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut j = 0;
                while j < quad {
                    for (i, a) in acc.iter_mut().enumerate() {
                        let o = j + 16 * i;
                        *a = _mm512_fmadd_ps(
                            _mm512_loadu_ps(wp.add(o)),
                            _mm512_loadu_ps(xp.add(o)),
                            *a,
                        );
                    }
                    j += 64;
                }
                while j < full {
                    acc[0] = _mm512_fmadd_ps(
                        _mm512_loadu_ps(wp.add(j)),
                        _mm512_loadu_ps(xp.add(j)),
                        acc[0],
                    );
                    j += 16;
                }
                if full < k {
                    let xv = _mm512_maskz_loadu_ps(tail_mask, xp.add(j));
                    acc[1] =
                        _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask, wp.add(j)), xv, acc[1]);
                }
                let sum =
                    _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
                *out = _mm512_reduce_add_ps(sum);
            }
        }
    }

    /// Horizontal sum of eight lanes.
    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    ///
    /// The CPU supports AVX2 and FMA; `w` holds `y.len()` rows of `k`, `x`
    /// holds `k`. One row at a time with the lines ahead asked for, as for
    /// AVX-512.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_avx2<const PREFETCH: bool>(
        w: &[f32],
        x: &[f32],
        y: &mut [f32],
        k: usize,
    ) {
        debug_assert!(w.len() == y.len() * k && x.len() == k);
        let full = k / 8 * 8;
        let quad = k / 32 * 32;
        let xp = x.as_ptr();
        let last = w
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(size_of_val(w))
            .wrapping_sub(1);
        for (r, out) in y.iter_mut().enumerate() {
            let row = &w[r * k..(r + 1) * k];
            if PREFETCH {
                lines_ahead(row.as_ptr().cast(), 4 * k, last);
            }
            // SAFETY: every load reads `[j, j + 8)` with `j + 8 <= k` of row
            // r and of `x`.
            unsafe {
                let wp = row.as_ptr();
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut j = 0;
                while j < quad {
                    for (i, a) in acc.iter_mut().enumerate() {
                        let o = j + 8 * i;
                        *a = _mm256_fmadd_ps(
                            _mm256_loadu_ps(wp.add(o)),
                            _mm256_loadu_ps(xp.add(o)),
                            *a,
                        );
                    }
                    j += 32;
                }
                while j < full {
                    acc[0] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(wp.add(j)),
                        _mm256_loadu_ps(xp.add(j)),
                        acc[0],
                    );
                    j += 8;
                }
                let sum =
                    _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let tail: f32 = row[full..].iter().zip(&x[full..]).map(|(a, b)| a * b).sum();
                *out = hsum256(sum) + tail;
            }
        }
    }
}
