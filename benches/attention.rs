//! Attention at sequence 256 and 512 (the KV length), one and two threads:
//! one query at the last position (decode) and a whole block (prefill), for
//! `synth-15m`'s heads (6 × 48) and stories260K's (8 query heads over 4 KV
//! heads of 8).
//!
//! `cargo bench -p scratchpad-benches --bench attention`
//!
//! Ids: `attention/<decode|prefill>/<heads>/seq<n>/<threads>t`; throughput in
//! elements = multiply-adds (scores and weighted sum).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad_benches::{thread_pool, time_in_pool};
use scratchpad_cpu::{Attention, Isa, attention};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    for (label, n_heads, n_kv_heads, head_dim) in [("6x48", 6, 6, 48), ("8q4kv_x8", 8, 4, 8)] {
        for seq in [256, 512] {
            let kv_dim = n_kv_heads * head_dim;
            let keys: Vec<f32> = (0..seq * kv_dim)
                .map(|i| ((i % 13) as f32 - 6.0) * 0.05)
                .collect();
            let values: Vec<f32> = (0..seq * kv_dim)
                .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
                .collect();
            for (phase, pos, n_queries) in [("decode", seq - 1, 1), ("prefill", 0, seq)] {
                let p = Attention {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    pos,
                    n_queries,
                    isa: Isa::detect(),
                };
                let q: Vec<f32> = (0..n_queries * n_heads * head_dim)
                    .map(|i| ((i % 11) as f32 - 5.0) * 0.05)
                    .collect();
                let mut out = vec![0.0f32; q.len()];
                // Multiply-adds: each query attends to pos + i + 1 keys, twice.
                let macs: usize = (0..n_queries)
                    .map(|i| 2 * (pos + i + 1) * n_heads * head_dim)
                    .sum();
                group.throughput(Throughput::Elements(macs as u64));
                for threads in [1, 2] {
                    let pool = thread_pool(threads);
                    group.bench_function(
                        BenchmarkId::new(
                            format!("{phase}/{label}"),
                            format!("seq{seq}/{threads}t"),
                        ),
                        |b| {
                            b.iter_custom(|iters| {
                                time_in_pool(&pool, iters, |ctx| {
                                    attention(ctx, &p, black_box(&q), &keys, &values, &mut out)
                                        .unwrap()
                                })
                            })
                        },
                    );
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
