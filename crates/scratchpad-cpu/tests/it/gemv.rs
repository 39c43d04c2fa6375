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
