//! GEMM micro-kernels: an `MR × NR` tile of `C += A_panel · B_panel` over
//! `kc`, accumulated in registers. One per SIMD path.

/// A micro-kernel: `C[r][c] (+)= Σ_p a[p * MR + r] · b[p * NR + c]` for the
/// full `MR × NR` tile at `c` with row stride `ldc`; with `accumulate`
/// false, `C` is overwritten.
///
/// # Safety
///
/// `a` holds `kc * MR` floats, `b` holds `kc * NR`, `c` addresses an
/// `MR × NR` tile with row stride `ldc`, and the CPU supports the kernel's
/// instruction set.
pub(crate) type MicroKernel =
    unsafe fn(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool);

/// Portable tile shape.
pub(crate) const PORTABLE_MR: usize = 4;
pub(crate) const PORTABLE_NR: usize = 8;

/// The portable kernel, vectorised by the compiler for the baseline target.
///
/// # Safety
///
/// As [`MicroKernel`].
pub(crate) unsafe fn portable(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    const MR: usize = PORTABLE_MR;
    const NR: usize = PORTABLE_NR;
    // SAFETY: the caller promises the panel lengths.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for r in 0..MR {
            for col in 0..NR {
                // Not `mul_add`: without FMA in the baseline target that is
                // a call to the software `fmaf`.
                acc[r][col] += ap[r] * bp[col];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the caller promises an MR × NR tile with stride ldc.
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) };
        for (o, v) in out.iter_mut().zip(row) {
            *o = if accumulate { *o + v } else { *v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// AVX-512 tile shape: 24 accumulators of 16 lanes, two B loads and a
    /// broadcast per step, within the 32 vector registers.
    pub(crate) const AVX512_MR: usize = 12;
    pub(crate) const AVX512_NR: usize = 32;
    /// AVX2 tile shape: 12 accumulators of 8 lanes within 16 registers.
    pub(crate) const AVX2_MR: usize = 6;
    pub(crate) const AVX2_NR: usize = 16;

    /// # Safety
    ///
    /// As [`super::MicroKernel`], with AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn avx512(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        const MR: usize = AVX512_MR;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..kc {
            // SAFETY: p < kc, so the panel reads stay within kc * MR and
            // kc * NR floats.
            unsafe {
                let b0 = _mm512_loadu_ps(b.add(p * 32));
                let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
                let ap = a.add(p * MR);
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            // SAFETY: the tile has MR rows of NR = 32 floats at stride ldc.
            unsafe {
                let cp = c.add(r * ldc);
                let (mut v0, mut v1) = (row[0], row[1]);
                if accumulate {
                    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cp));
                    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cp.add(16)));
                }
                _mm512_storeu_ps(cp, v0);
                _mm512_storeu_ps(cp.add(16), v1);
            }
        }
    }

    /// # Safety
    ///
    /// As [`super::MicroKernel`], with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn avx2(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        const MR: usize = AVX2_MR;
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..kc {
            // SAFETY: p < kc, so the panel reads stay within bounds.
            unsafe {
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                let ap = a.add(p * MR);
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(r));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            // SAFETY: the tile has MR rows of NR = 16 floats at stride ldc.
            unsafe {
                let cp = c.add(r * ldc);
                let (mut v0, mut v1) = (row[0], row[1]);
                if accumulate {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cp));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cp.add(8)));
                }
                _mm256_storeu_ps(cp, v0);
                _mm256_storeu_ps(cp.add(8), v1);
            }
        }
    }
}
