//! Softmax of a row in place: `x_i = exp(x_i - max) / Σ_j exp(x_j - max)`.

/// Replaces `x` by its softmax. An empty row is left as it is.
pub fn softmax(x: &mut [f32]) {
    let Some(max) = x.iter().copied().reduce(f32::max) else {
        return;
    };
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
