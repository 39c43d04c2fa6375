//! Warm acquire + release per strategy at 256 B, 64 KiB, 1 MiB and 16 MiB,
//! alone and with every byte written, against a plain `Vec` allocated,
//! written and dropped.
//!
//! `cargo bench -p scratchpad-benches --bench pool_ops`
//!
//! Ids: `acquire_release/<strategy>/<size>` and
//! `acquire_write_release/<strategy|vec>/<size>`; times are per
//! acquire + release pair. Each timed iteration is one step (the unit
//! `planned` plans) of [`PAIRS`] pairs, each lease released before the next
//! is taken, so the step markers and the harness's call cost are spread over
//! the pairs as they are over the leases of a real step. Before timing, one
//! such step touches the memory (and lets `planned` measure).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad::{HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES, tag};

const SIZES: [(usize, &str); 4] = [
    (256, "256B"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
    (16 << 20, "16MiB"),
];

/// Acquire + release pairs per timed step.
const PAIRS: u32 = 64;

/// One step of `PAIRS` leases of `bytes`, each optionally written and
/// released before the next.
fn step(pool: &Pool<HostMemory>, bytes: usize, write: bool) {
    pool.step(Phase::Decode, |s| {
        for _ in 0..PAIRS {
            let mut lease = s.acquire::<u8>(bytes, tag!("bench.lease")).unwrap();
            if write {
                lease.fill(0xA5);
            }
            black_box(lease.as_ptr());
        }
    });
}

/// Per-pair time of `iters` pairs run as steps of `PAIRS`.
fn time_pairs(iters: u64, mut run_step: impl FnMut()) -> Duration {
    let steps = iters.div_ceil(PAIRS as u64);
    let start = Instant::now();
    for _ in 0..steps {
        run_step();
    }
    start
        .elapsed()
        .mul_f64(iters as f64 / (steps * PAIRS as u64) as f64)
}

fn acquire_release(c: &mut Criterion) {
    for (group_name, write) in [("acquire_release", false), ("acquire_write_release", true)] {
        let mut group = c.benchmark_group(group_name);
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(30);
        for (bytes, label) in SIZES {
            if write {
                group.throughput(Throughput::Bytes(bytes as u64));
            }
            // `noop` last: its mmap and munmap per call at large sizes leave
            // kernel work behind that would disturb the strategies after it.
            for name in STRATEGY_NAMES
                .iter()
                .filter(|&&n| n != "noop")
                .chain(&["noop"])
            {
                let pool = Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
                pool.set_verify(false);
                step(&pool, bytes, true);
                group.bench_function(BenchmarkId::new(*name, label), |b| {
                    b.iter_custom(|iters| time_pairs(iters, || step(&pool, bytes, write)))
                });
            }
            if write {
                group.bench_function(BenchmarkId::new("vec", label), |b| {
                    b.iter(|| {
                        let mut v = vec![0u8; bytes];
                        v.fill(0xA5);
                        black_box(v.as_ptr());
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, acquire_release);
criterion_main!(benches);
