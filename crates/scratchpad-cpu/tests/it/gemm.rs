//! gemm against an f64 reference and matrixmultiply.

use scratchpad_cpu::{Gemm, Isa, gemm};

use crate::support::{check, context, random, with_threads};

/// `Y = X Wᵀ` in f64 with the magnitude of each sum.
fn reference(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let (xr, wr) = (&x[i * k..(i + 1) * k], &w[j * k..(j + 1) * k]);
            let value = xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
            let magnitude = xr
                .iter()
                .zip(wr)
                .map(|(&a, &b)| (a as f64 * b as f64).abs())
                .sum();
            out.push((value, magnitude));
        }
    }
    out
}

fn run(m: usize, k: usize, n: usize, threads: usize) {
    let ctx = context();
    let (x, w) = (
        random(m * k, (m * 7 + k) as u64),
        random(n * k, (n * 13 + k) as u64),
    );
    let expected = reference(&x, &w, m, k, n);
    for isa in Isa::supported() {
        let mut y = vec![f32::NAN; m * n];
        gemm(&ctx, &Gemm { m, k, n, isa }, &x, &w, &mut y).unwrap();
        check(
            &format!("gemm {m}x{k}x{n} {isa} {threads} threads"),
            &y,
            &expected,
        );
    }
    assert_eq!(ctx.scratch.stats().live_bytes, 0);
}

#[test]
fn gemm_matches_the_reference_at_awkward_sizes() {
    let sizes = [1, 7, 63, 65, 288];
    with_threads(|threads| {
        for m in sizes {
            for k in sizes {
                for n in sizes {
                    run(m, k, n, threads);
                }
            }
        }
    });
}

#[test]
fn gemm_at_model_shapes_and_past_the_blocking() {
    // 768 crosses KC (256) and the A block; 1100 columns cross NC on AVX2
    // and AVX-512 tiles.
    with_threads(|threads| {
        for (m, k, n) in [
            (64, 288, 768),
            (65, 768, 288),
            (33, 300, 1100),
            (128, 288, 288),
        ] {
            run(m, k, n, threads);
        }
    });
}

#[test]
fn gemm_agrees_with_matrixmultiply() {
    let (m, k, n) = (96, 200, 150);
    let (x, w) = (random(m * k, 1), random(n * k, 2));
    let mut expected = vec![0.0f32; m * n];
    // SAFETY: the pointers and strides describe the vectors above: X (m, k)
    // row-major, Wᵀ as a (k, n) view of W (n, k) with strides (1, k), Y (m,
    // n) row-major.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            x.as_ptr(),
            k as isize,
            1,
            w.as_ptr(),
            1,
            k as isize,
            0.0,
            expected.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    let ctx = context();
    let mut y = vec![f32::NAN; m * n];
    gemm(&ctx, &Gemm::new(m, k, n), &x, &w, &mut y).unwrap();
    for (a, b) in y.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-4, "{a} vs matrixmultiply's {b}");
    }
}

#[test]
fn an_empty_inner_dimension_gives_zeros() {
    let ctx = context();
    let mut y = vec![f32::NAN; 6];
    gemm(&ctx, &Gemm::new(2, 0, 3), &[], &[], &mut y).unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
}
