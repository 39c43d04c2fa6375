//! Decode throughput of `synth-15m` (and stories260K when `../shared` has
//! it) on one and two threads, beside the read-bandwidth ceiling measured in
//! the same run: a decode token reads every weight once (60.8 MB for
//! `synth-15m`), so the ceiling in tokens per second is bandwidth / bytes.
//!
//! `cargo bench -p scratchpad-benches --bench decode`
//!
//! Ids: `decode/<model>/<threads>t` (one token through the model at
//! positions cycling over the context, `planned` pool); throughput in bytes
//! of weights. The best-of-30 ceiling and decode's own best-of-30 are
//! printed first.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_benches::thread_pool;
use scratchpad_cpu::{CEILING_BYTES, Isa, read_bandwidth};
use scratchpad_model::{BOS, Checkpoint, CpuBackend, Transformer, synthetic};

/// Times `iters` decode tokens (or returns the best single token of
/// `best_of` when given) on a worker of a pool of `threads`.
fn decode_time(
    model: &Arc<Checkpoint>,
    threads: usize,
    iters: u64,
    best_of: Option<usize>,
) -> Duration {
    let model = model.clone();
    thread_pool(threads).install(move || {
        let scratch = Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap();
        let seq_len = model.config().seq_len;
        let mut t = Transformer::new(CpuBackend::new(model, scratch));
        t.reserve(1, seq_len - 1).unwrap();
        let mut pos = 0;
        let mut step = |t: &mut Transformer<CpuBackend>| {
            black_box(t.forward(BOS, pos).unwrap());
            pos = (pos + 1) % seq_len;
        };
        step(&mut t);
        match best_of {
            Some(n) => (0..n)
                .map(|_| {
                    let start = Instant::now();
                    step(&mut t);
                    start.elapsed()
                })
                .min()
                .unwrap(),
            None => {
                let start = Instant::now();
                for _ in 0..iters {
                    step(&mut t);
                }
                start.elapsed()
            }
        }
    })
}

fn bench(c: &mut Criterion) {
    let isa = Isa::detect();
    let buffer: Vec<f32> = (0..CEILING_BYTES / 4).map(|i| (i % 7) as f32).collect();
    let ceiling = read_bandwidth(&buffer, 30, isa);
    drop(buffer);
    let synth = Arc::new(synthetic::checkpoint("synth-15m", synthetic::DEFAULT_SEED).unwrap());
    let bytes = synth.decode_weight_bytes();
    let ceiling_tps = ceiling.gb_per_s() * 1e9 / bytes as f64;
    eprintln!(
        "read ceiling ({isa}, best of 30 over 60.8 MB): {:.2} GB/s = {ceiling_tps:.0} tok/s for synth-15m ({bytes} bytes per token)",
        ceiling.gb_per_s()
    );
    let best = decode_time(&synth, 1, 0, Some(30));
    let tps = 1.0 / best.as_secs_f64();
    eprintln!(
        "decode synth-15m, 1 thread, best of 30: {tps:.0} tok/s = {:.0}% of the ceiling",
        100.0 * tps / ceiling_tps
    );

    let mut models = vec![("synth-15m", synth)];
    let stories = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K.bin");
    match Checkpoint::open(&stories) {
        Ok(model) => models.push(("stories260K", Arc::new(model))),
        Err(_) => eprintln!("skipped stories260K: {} not found", stories.display()),
    }
    let mut group = c.benchmark_group("decode");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, model) in &models {
        group.throughput(Throughput::Bytes(model.decode_weight_bytes() as u64));
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new(*name, format!("{threads}t")), |b| {
                b.iter_custom(|iters| decode_time(model, threads, iters, None))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
