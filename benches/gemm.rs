//! gemm GFLOP/s at 64×288×768, 256×288×288, 512³ and 1024³ (m×k×n) against
//! matrixmultiply, on one and two threads.
//!
//! `cargo bench -p scratchpad-benches --bench gemm`
//!
//! Ids: `gemm/<scratchpad-ISA|matrixmultiply>/<m>x<k>x<n>/<threads>t`;
//! throughput in elements = floating-point operations (2·m·k·n), so
//! criterion's "elem/s" reads as FLOP/s. `Y = X · Wᵀ` with `W (n, k)`
//! row-major, as the model's prefill computes it.
//!
//! matrixmultiply reads its thread count once per process from
//! `MATMUL_NUM_THREADS` (default 1), so its two-thread baseline is a second
//! run: `MATMUL_NUM_THREADS=2 cargo bench -p scratchpad-benches --bench gemm
//! -- matrixmultiply`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad_benches::{thread_pool, time_in_pool};
use scratchpad_cpu::{Gemm, Isa, gemm};

fn bench(c: &mut Criterion) {
    let mm_threads: usize = std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut group = c.benchmark_group("gemm");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for (m, k, n) in [
        (64, 288, 768),
        (256, 288, 288),
        (512, 512, 512),
        (1024, 1024, 1024),
    ] {
        let x: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 11) as f32 * 0.01).collect();
        let mut y = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        for threads in [1usize, 2] {
            let pool = thread_pool(threads);
            let shape = format!("{m}x{k}x{n}/{threads}t");
            let isa = Isa::detect();
            group.bench_function(BenchmarkId::new(format!("scratchpad-{isa}"), &shape), |b| {
                b.iter_custom(|iters| {
                    time_in_pool(&pool, iters, |ctx| {
                        gemm(
                            ctx,
                            &Gemm { m, k, n, isa },
                            black_box(&x),
                            black_box(&w),
                            &mut y,
                        )
                        .unwrap()
                    })
                })
            });
            if threads == mm_threads {
                group.bench_function(BenchmarkId::new("matrixmultiply", &shape), |b| {
                    b.iter(|| {
                        // SAFETY: X (m, k) row-major, W viewed as Wᵀ (k, n)
                        // with strides (1, k), Y (m, n) row-major: all within
                        // the vectors above.
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
                                y.as_mut_ptr(),
                                n as isize,
                                1,
                            )
                        }
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
