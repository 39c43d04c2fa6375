//! gemv against an f64 reference.

use scratchpad_cpu::{Gemv, Isa, gemv};

use crate::support::{SIZES, check, context, random, with_threads};

fn reference(w: &[f32], x: &[f32], m: usize, k: usize) -> Vec<(f64, f64)> {
    (0..m)
        .map(|i| {
            let row = &w[i * k..(i + 1) * k];
            let value = row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum();
            let magnitude = row
                .iter()
                .zip(x)
                .map(|(&a, &b)| (a as f64 * b as f64).abs())
                .sum();
            (value, magnitude)
        })
        .collect()
}

fn run(m: usize, k: usize, threads: usize) {
    let ctx = context();
    let (w, x) = (random(m * k, (m * 131 + k) as u64), random(k, k as u64 + 7));
    let expected = reference(&w, &x, m, k);
    for isa in Isa::supported() {
        let mut y = vec![f32::NAN; m];
        gemv(&ctx, &Gemv { m, k, isa }, &w, &x, &mut y);
        check(
            &format!("gemv {m}x{k} {isa} {threads} threads"),
            &y,
            &expected,
        );
    }
}

#[test]
fn gemv_matches_the_reference_at_awkward_sizes() {
    with_threads(|threads| {
        for m in SIZES {
            for k in SIZES {
                run(m, k, threads);
            }
        }
    });
}

#[test]
fn gemv_of_a_classifier_with_32000_rows() {
    with_threads(|threads| run(32000, 288, threads));
}

#[test]
fn every_supported_path_is_listed() {
    let paths: Vec<Isa> = Isa::supported().collect();
    assert_eq!(paths[0], Isa::Portable);
    assert!(paths.contains(&Isa::detect()));
    eprintln!(
        "SIMD paths on this CPU: {paths:?}; detected {}",
        Isa::detect()
    );
}

#[test]
fn the_bandwidth_sum_is_exact_on_every_path() {
    use scratchpad_cpu::{read_bandwidth, sum, sum_prefetched};
    for len in [0, 1, 63, 65, 127, 129, 1000, 100_003] {
        // Small integers: every partial sum is exact in f32.
        let data: Vec<f32> = (0..len).map(|i| (i % 5) as f32).collect();
        let expected: f32 = (0..len).map(|i| (i % 5) as f32).sum();
        for isa in Isa::supported() {
            assert_eq!(sum(&data, isa), expected, "sum of {len} on {isa}");
            let prefetched = sum_prefetched(&data, isa);
            assert_eq!(prefetched, expected, "prefetched sum of {len} on {isa}");
        }
    }
    let data = vec![1.0f32; 1 << 16];
    let bw = read_bandwidth(&data, 3, Isa::detect());
    assert_eq!((bw.checksum, bw.bytes), ((1 << 16) as f32, 1 << 18));
    assert!(bw.gb_per_s() > 0.0);
}

/// The fused kernels are the separate ones run as one job: bit-identical
/// to `gemv` (and `swiglu`) at every path, thread count and shape,
/// including shapes of different heights (grouped-query K and V) and
/// matrices too small to split.
#[test]
fn fused_gemvs_are_the_separate_ones_bit_for_bit() {
    use scratchpad_cpu::{gemv_many, gemv_swiglu, swiglu};
    with_threads(|threads| {
        let ctx = context();
        for (m_q, m_kv, k) in [
            (288, 288, 288),
            (288, 96, 288),
            (64, 32, 64),
            (7, 5, 3),
            (1024, 256, 512),
        ] {
            let x = random(k, k as u64 + 3);
            let ws = [
                random(m_q * k, 11 + m_q as u64),
                random(m_kv * k, 12 + m_kv as u64),
                random(m_kv * k, 13 + k as u64),
            ];
            for isa in Isa::supported() {
                let separate: Vec<Vec<f32>> = ws
                    .iter()
                    .map(|w| {
                        let mut y = vec![f32::NAN; w.len() / k];
                        gemv(&ctx, &Gemv { m: y.len(), k, isa }, w, &x, &mut y);
                        y
                    })
                    .collect();
                let (mut q, mut kk, mut v) = (
                    vec![f32::NAN; m_q],
                    vec![f32::NAN; m_kv],
                    vec![f32::NAN; m_kv],
                );
                gemv_many(
                    &ctx,
                    isa,
                    [&ws[0], &ws[1], &ws[2]],
                    &x,
                    [&mut q, &mut kk, &mut v],
                );
                let what = format!("gemv_many {m_q}/{m_kv}x{k} {isa} {threads} threads");
                assert_eq!(
                    [&q, &kk, &v].map(|y| y.iter().map(|f| f.to_bits()).collect::<Vec<_>>()),
                    [0, 1, 2].map(|i| separate[i].iter().map(|f| f.to_bits()).collect::<Vec<_>>()),
                    "{what}"
                );

                // The way up: W1 and W3 of one height.
                let (w1, w3) = (&ws[1], &ws[2]);
                let mut expected = separate[1].clone();
                swiglu(&mut expected, &separate[2]);
                let (mut gate, mut up) = (vec![f32::NAN; m_kv], vec![f32::NAN; m_kv]);
                gemv_swiglu(&ctx, isa, w1, w3, &x, &mut gate, &mut up);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&gate),
                    bits(&expected),
                    "gemv_swiglu gate {m_kv}x{k} {isa} {threads} threads"
                );
                assert_eq!(
                    bits(&up),
                    bits(&separate[2]),
                    "gemv_swiglu up {m_kv}x{k} {isa} {threads} threads"
                );
            }
        }
    });
}

#[test]
#[should_panic(expected = "W must hold m * k elements")]
fn gemv_many_refuses_a_matrix_of_the_wrong_size() {
    let ctx = context();
    let (w, x) = (vec![0.0; 10], vec![0.0; 4]);
    let mut y = vec![0.0; 3];
    scratchpad_cpu::gemv_many(&ctx, Isa::detect(), [&w], &x, [&mut y]);
}
