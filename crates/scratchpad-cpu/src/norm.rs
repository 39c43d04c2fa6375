//! RMSNorm: `out = x / sqrt(mean(x²) + eps) ⊙ weight`, per row, eps 1e-5 as
//! in Llama.

/// The epsilon Llama's RMSNorm adds to the mean square.
pub const RMS_NORM_EPS: f32 = 1e-5;

/// Normalises each row of `x` (rows of `weight.len()`) into `out`.
///
/// # Panics
///
/// When `x` and `out` differ in length or are not whole rows.
pub fn rms_norm(x: &[f32], weight: &[f32], out: &mut [f32]) {
    let dim = weight.len();
    assert!(
        dim > 0 && x.len().is_multiple_of(dim),
        "rms_norm: x must be whole rows of weight.len()"
    );
    assert_eq!(x.len(), out.len(), "rms_norm: out must match x");
    for (row, out_row) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum_sq: f32 = row.iter().map(|v| v * v).sum();
        let scale = 1.0 / (sum_sq / dim as f32 + RMS_NORM_EPS).sqrt();
        for ((o, &v), &g) in out_row.iter_mut().zip(row).zip(weight) {
            *o = g * (scale * v);
        }
    }
}
