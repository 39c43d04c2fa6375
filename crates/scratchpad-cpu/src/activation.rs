//! SwiGLU, the Llama feed-forward gate: `gate = silu(gate) ⊙ up`, with
//! `silu(a) = a · σ(a)`.

/// `gate[i] = silu(gate[i]) * up[i]`, in place.
///
/// # Panics
///
/// When the lengths differ.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(
        gate.len(),
        up.len(),
        "swiglu: gate and up must have the same length"
    );
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g * (1.0 / (1.0 + (-*g).exp())) * u;
    }
}
