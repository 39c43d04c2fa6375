//! gemv GB/s at 768×288, 288×768 and 32000×288 on one and two threads, and
//! the read-bandwidth ceiling in the same run.
//!
//! `cargo bench -p scratchpad-benches --bench gemv`
//!
//! Ids: `read_bandwidth/<isa>/60.8MB/<threads>t` and
//! `gemv/<isa>/<m>x<k>/<threads>t`; throughput in bytes of weights read.
//! Printed first: the best-of-30 read pass, the ceiling every memory-bound
//! figure is compared with, and the ratio that counts, from read passes and
//! 32000×288 gemvs alternated for 100 rounds (best of each; the read passes
//! plain and prefetched in turn), both buffers with transparent huge pages
//! asked for, as the model's weights get.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad_benches::{floats, huge_page_floats, thread_pool, time_in_pool};
use scratchpad_cpu::{CEILING_BYTES, Gemv, Isa, gemv, read_bandwidth, sum, sum_prefetched};

fn bench(c: &mut Criterion) {
    let isa = Isa::detect();
    let buffer: Vec<f32> = (0..CEILING_BYTES / 4).map(|i| (i % 7) as f32).collect();
    let ceiling = read_bandwidth(&buffer, 30, isa);
    eprintln!(
        "read ceiling ({isa}, best of 30 passes over {} bytes): {:.2} GB/s",
        ceiling.bytes,
        ceiling.gb_per_s()
    );
    // The ratio: read passes and 32000×288 gemvs alternated for 100 rounds
    // on one thread, best of each, so both see the same machine (this VM's
    // bandwidth drifts by a third between seconds). The passes are plain and
    // prefetched in turn, as `read_bandwidth`'s are: the gemv prefetches.
    let (m, k) = (32000, 288);
    let (w_map, x, mut y) = (
        huge_page_floats(m * k, |_| 0.01),
        vec![0.1f32; k],
        vec![0.0f32; m],
    );
    let (w, ceiling_map) = (
        floats(&w_map),
        huge_page_floats(CEILING_BYTES / 4, |i| (i % 7) as f32),
    );
    let ceiling_buffer = floats(&ceiling_map);
    let (mut read_best, mut gemv_best) = (0.0f64, Duration::MAX);
    time_in_pool(&thread_pool(1), 0, |ctx| {
        for round in 0..=100 {
            let read_pass = if round % 2 == 1 { sum_prefetched } else { sum };
            let start = std::time::Instant::now();
            black_box(read_pass(black_box(ceiling_buffer), isa));
            let read = size_of_val(ceiling_buffer) as f64 / start.elapsed().as_secs_f64() / 1e9;
            let start = std::time::Instant::now();
            gemv(ctx, &Gemv { m, k, isa }, w, &x, &mut y);
            let elapsed = start.elapsed();
            if round > 0 {
                read_best = read_best.max(read);
                gemv_best = gemv_best.min(elapsed);
            }
        }
    });
    let gemv_gbs = (m * k * 4) as f64 / gemv_best.as_secs_f64() / 1e9;
    eprintln!(
        "interleaved, 1 thread, best of 100 each: read {read_best:.2} GB/s; gemv {m}x{k} ({isa}) {gemv_gbs:.2} GB/s = {:.0}% of it",
        100.0 * gemv_gbs / read_best
    );
    drop((w_map, ceiling_map, x, y));
    let mut group = c.benchmark_group("read_bandwidth");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    group.throughput(Throughput::Bytes(CEILING_BYTES as u64));
    group.bench_function(BenchmarkId::new(isa.to_string(), "60.8MB/1t"), |b| {
        b.iter(|| black_box(sum(black_box(&buffer), isa)))
    });
    group.finish();
    drop(buffer);

    let mut group = c.benchmark_group("gemv");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    for (m, k) in [(768, 288), (288, 768), (32000, 288)] {
        let w: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.01).collect();
        let x: Vec<f32> = (0..k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut y = vec![0.0f32; m];
        group.throughput(Throughput::Bytes((m * k * 4) as u64));
        for threads in [1, 2] {
            for isa in Isa::supported().filter(|&i| i != Isa::Portable || threads == 1) {
                let (params, pool) = (Gemv { m, k, isa }, thread_pool(threads));
                group.bench_function(
                    BenchmarkId::new(isa.to_string(), format!("{m}x{k}/{threads}t")),
                    |b| {
                        b.iter_custom(|iters| {
                            time_in_pool(&pool, iters, |ctx| {
                                gemv(ctx, &params, black_box(&w), black_box(&x), &mut y)
                            })
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
