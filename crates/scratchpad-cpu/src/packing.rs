//! Packing for the blocked GEMM: blocks of `X` and `W` copied into the
//! panel layout the micro-kernels stream through, zero-padded at the edges.
//!
//! `Y (m, n) = X (m, k) · Wᵀ` with `W (n, k)` row-major. Both operands are
//! packed the same way, rows of a row-major matrix interleaved by `p`: an A
//! panel holds `MR` rows of `X`, `a[p * MR + r] = X[i + r][pc + p]`; a B
//! panel holds `NR` rows of `W`, `b[p * NR + c] = W[j + c][pc + p]`, i.e.
//! `NR` columns of `Wᵀ`.

/// Packs rows `rows` of `src` (row stride `k`) over `pc..pc + kc` into
/// panels of `P` rows interleaved by `p`; rows past the matrix are zero.
pub(crate) fn pack_panels<const P: usize>(
    src: &[f32],
    k: usize,
    rows: std::ops::Range<usize>,
    pc: usize,
    kc: usize,
    out: &mut [f32],
) {
    let n_panels = rows.len().div_ceil(P);
    debug_assert!(out.len() >= n_panels * P * kc);
    for (panel_idx, panel) in out.chunks_exact_mut(P * kc).take(n_panels).enumerate() {
        let first = rows.start + panel_idx * P;
        for r in 0..P {
            let row = first + r;
            if row < rows.end {
                let src = &src[row * k + pc..row * k + pc + kc];
                for (p, &v) in src.iter().enumerate() {
                    panel[p * P + r] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * P + r] = 0.0;
                }
            }
        }
    }
}
