//! RMSNorm, softmax, SwiGLU, residual add and embedding against f64
//! references.

use scratchpad_cpu::{RMS_NORM_EPS, add_residual, embed, rms_norm, softmax, swiglu};

use crate::support::{SIZES, check, random};

#[test]
fn rms_norm_matches_the_reference() {
    for dim in SIZES {
        for rows in [1, 3] {
            let (x, w) = (random(rows * dim, dim as u64), random(dim, 99));
            let mut expected = Vec::new();
            for row in x.chunks(dim) {
                let ms: f64 = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / dim as f64;
                let scale = 1.0 / (ms + RMS_NORM_EPS as f64).sqrt();
                expected.extend(row.iter().zip(&w).map(|(&v, &g)| {
                    let value = g as f64 * v as f64 * scale;
                    (value, value.abs())
                }));
            }
            let mut out = vec![f32::NAN; rows * dim];
            rms_norm(&x, &w, &mut out);
            check(&format!("rms_norm {rows}x{dim}"), &out, &expected);
        }
    }
}

#[test]
fn softmax_matches_the_reference() {
    for len in SIZES {
        let mut x: Vec<f32> = random(len, len as u64 + 3)
            .iter()
            .map(|v| v * 20.0)
            .collect();
        let max = x.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
        let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
        let expected: Vec<(f64, f64)> = x
            .iter()
            .map(|&v| ((v as f64 - max).exp() / sum, (v as f64 - max).exp() / sum))
            .collect();
        softmax(&mut x);
        check(&format!("softmax {len}"), &x, &expected);
        let total: f32 = x.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
    softmax(&mut []);
}

#[test]
fn swiglu_and_residual_match_the_reference() {
    for len in SIZES {
        let (gate0, up) = (random(len, 5), random(len, 6));
        let expected: Vec<(f64, f64)> = gate0
            .iter()
            .zip(&up)
            .map(|(&g, &u)| {
                let (g, u) = (g as f64, u as f64);
                let value = g / (1.0 + (-g).exp()) * u;
                (value, value.abs())
            })
            .collect();
        let mut gate = gate0.clone();
        swiglu(&mut gate, &up);
        check(&format!("swiglu {len}"), &gate, &expected);

        let mut x = gate0.clone();
        add_residual(&mut x, &up);
        let expected: Vec<(f64, f64)> = gate0
            .iter()
            .zip(&up)
            .map(|(&a, &b)| (a as f64 + b as f64, (a as f64).abs() + (b as f64).abs()))
            .collect();
        check(&format!("residual {len}"), &x, &expected);
    }
}

#[test]
fn embedding_copies_the_row() {
    let table = random(7 * 65, 8);
    let mut out = vec![f32::NAN; 65];
    embed(&table, 6, &mut out);
    assert_eq!(out, &table[6 * 65..]);
}

#[test]
#[should_panic(expected = "outside the vocabulary")]
fn embedding_rejects_a_token_outside_the_table() {
    embed(&[0.0; 12], 3, &mut [0.0; 4]);
}
