//! Softmax of a row in place: `x_i = exp(x_i - max) / Σ_j exp(x_j - max)`,
//! with a vectorisable `exp` ([`exp`]) and sixteen lanes of accumulators for
//! the maximum and the sum, so that the row runs at the vector width of
//! the function it is inlined into (the attention kernels are compiled per
//! SIMD path).

/// `e^x` in single precision, without a libm call: Cody–Waite range
/// reduction `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, then Cephes' degree-6
/// polynomial for `e^r`, scaled by `2^n` through the exponent bits.
/// Branch-free, so a loop over it vectorises. Within 2 ulp of the exact
/// value on `[-87.3, 88.3]` (tested against f64); inputs below clamp to
/// `e^-87.3` (about 1.2e-38, where libm gives denormals) and above to
/// `e^88.3`; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted`: taken from
    // there with integer arithmetic, which vectorises (a float-to-int `as`
    // saturates and stayed scalar).
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    // n lies in [-126, 127]: 2^n is a normal float.
    y * f32::from_bits(((n_int + 127) as u32) << 23)
}

/// Sixteen partial results combined as a tree (a left-to-right fold is a
/// chain of sixteen dependent operations); also attention's dot product's.
#[inline(always)]
pub(crate) fn tree(mut acc: [f32; 16], op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut width = 16;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = op(acc[i], acc[i + width]);
        }
    }
    acc[0]
}

/// Replaces `x` by its softmax. An empty row is left as it is.
#[inline(always)]
pub fn softmax(x: &mut [f32]) {
    let Some(&first) = x.first() else {
        return;
    };
    let mut lanes = [first; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .fold(tree(lanes, f32::max), |m, &v| m.max(v));
    let mut sums = [0.0f32; 16];
    let mut chunks = x.chunks_exact_mut(16);
    for c in &mut chunks {
        for i in 0..16 {
            c[i] = exp(c[i] - max);
            sums[i] += c[i];
        }
    }
    let mut sum = 0.0f32;
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / (tree(sums, |a, b| a + b) + sum);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the exact
    /// `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = (f32::from_bits(w.to_bits() + 1) - w) as f64;
        (got as f64 - want).abs() / ulp
    }

    #[test]
    fn exp_is_within_two_ulp_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            worst = worst.max(ulps(exp(x), (x as f64).exp()));
            x += 0.000_97;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1.3e-38 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn softmax_matches_f64_on_rows_of_every_length() {
        for len in [1usize, 2, 7, 15, 16, 17, 33, 100, 257] {
            let mut row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.7)
                .collect();
            let max = row.iter().copied().fold(f64::MIN, |m, v| m.max(v as f64));
            let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            softmax(&mut row);
            for (got, e) in row.iter().zip(&exps) {
                assert!((*got as f64 - e / sum).abs() < 1e-6, "len {len}");
            }
        }
        let mut empty: [f32; 0] = [];
        softmax(&mut empty);
    }
}
