//! The residual connection: `x += delta`.

/// `x[i] += delta[i]`.
///
/// # Panics
///
/// When the lengths differ.
pub fn add_residual(x: &mut [f32], delta: &[f32]) {
    assert_eq!(
        x.len(),
        delta.len(),
        "add_residual: x and delta must have the same length"
    );
    for (a, &d) in x.iter_mut().zip(delta) {
        *a += d;
    }
}
