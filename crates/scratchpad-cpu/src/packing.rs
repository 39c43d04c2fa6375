//! Packing for the blocked GEMM: blocks of `X` and `W` copied into the
//! panel layout the micro-kernels stream through, zero-padded at the edges.
//!
//! `Y (m, n) = X (m, k) · Wᵀ` with `W (n, k)` row-major. An A panel holds
//! `MR` rows of `X` interleaved by `p`: `a[p * MR + r] = X[i + r][pc + p]`.
//! A B panel holds `NR` rows of `W` interleaved by `p`:
//! `b[p * NR + c] = W[j + c][pc + p]`, i.e. `NR` columns of `Wᵀ`.

/// Packs rows `rows` of `x` (row stride `k`) over `pc..pc + kc` into
/// `MR`-row panels; rows past the matrix are zero.
pub(crate) fn pack_a<const MR: usize>(
    x: &[f32],
    k: usize,
    rows: std::ops::Range<usize>,
    pc: usize,
    kc: usize,
    out: &mut [f32],
) {
    let n_panels = rows.len().div_ceil(MR);
    debug_assert!(out.len() >= n_panels * MR * kc);
    for (panel_idx, panel) in out.chunks_exact_mut(MR * kc).take(n_panels).enumerate() {
        let first = rows.start + panel_idx * MR;
        for r in 0..MR {
            let row = first + r;
            if row < rows.end {
                let src = &x[row * k + pc..row * k + pc + kc];
                for (p, &v) in src.iter().enumerate() {
                    panel[p * MR + r] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * MR + r] = 0.0;
                }
            }
        }
    }
}

/// Packs rows `cols` of `w` (row stride `k`; they are columns of `Wᵀ`) over
/// `pc..pc + kc` into `NR`-column panels; columns past the matrix are zero.
pub(crate) fn pack_b<const NR: usize>(
    w: &[f32],
    k: usize,
    cols: std::ops::Range<usize>,
    pc: usize,
    kc: usize,
    out: &mut [f32],
) {
    let n_panels = cols.len().div_ceil(NR);
    debug_assert!(out.len() >= n_panels * NR * kc);
    for (panel_idx, panel) in out.chunks_exact_mut(NR * kc).take(n_panels).enumerate() {
        let first = cols.start + panel_idx * NR;
        for c in 0..NR {
            let col = first + c;
            if col < cols.end {
                let src = &w[col * k + pc..col * k + pc + kc];
                for (p, &v) in src.iter().enumerate() {
                    panel[p * NR + c] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * NR + c] = 0.0;
                }
            }
        }
    }
}
