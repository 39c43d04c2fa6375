//! One decode step of `synth-15m` per strategy (at position 128 of a
//! 128-token prompt), and one 128-token prefill step per strategy, on one
//! thread: what the pool costs on the real hot path.
//!
//! `cargo bench -p scratchpad-benches --bench decode_step`
//!
//! Ids: `decode_step/<strategy>` and `prefill_step/<strategy>/128`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scratchpad::{HostMemory, Pool, PoolOptions, STRATEGY_NAMES};
use scratchpad_benches::thread_pool;
use scratchpad_model::{BOS, Checkpoint, CpuBackend, Transformer, synthetic};

const PROMPT: usize = 128;

/// `iters` calls of `step` on a transformer with `strategy`, reserved for
/// the prompt and one decode position, on one worker thread.
fn time_steps(model: &Arc<Checkpoint>, strategy: &str, iters: u64, prefill: bool) -> Duration {
    let model = model.clone();
    let strategy = strategy.to_owned();
    thread_pool(1).install(move || {
        let scratch = Pool::with_strategy(&strategy, HostMemory, &PoolOptions::default()).unwrap();
        let mut t = Transformer::new(CpuBackend::new(model, scratch));
        t.reserve(PROMPT, PROMPT).unwrap();
        let prompt = vec![BOS; PROMPT];
        t.prefill(&prompt, 0).unwrap();
        let start = Instant::now();
        for _ in 0..iters {
            if prefill {
                black_box(t.prefill(&prompt, 0).unwrap());
            } else {
                black_box(t.forward(BOS, PROMPT).unwrap());
            }
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let model = Arc::new(synthetic::checkpoint("synth-15m", synthetic::DEFAULT_SEED).unwrap());
    let mut group = c.benchmark_group("decode_step");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for name in STRATEGY_NAMES {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| time_steps(&model, name, iters, false))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("prefill_step");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for name in STRATEGY_NAMES {
        group.bench_function(BenchmarkId::new(name, PROMPT), |b| {
            b.iter_custom(|iters| time_steps(&model, name, iters, true))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
