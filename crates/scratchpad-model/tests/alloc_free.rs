//! Exactly zero heap allocations per decode token (forward and sampling)
//! after `reserve`, under every strategy but `noop`, at one and two threads;
//! counted by `CountingAlloc` in this binary alone (`harness = false`).

use std::sync::Arc;

use scratchpad::{CountingAlloc, HostMemory, Pool, PoolOptions, STRATEGY_NAMES};
use scratchpad_model::{CpuBackend, Sampler, Transformer, synthetic};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PROMPT: usize = 24;
const STEPS: usize = 64;

fn main() {
    let model = Arc::new(synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap());
    let vocab = model.config().vocab_size;
    let prompt: Vec<u32> = (0..PROMPT).map(|i| (i * 31 % 500) as u32 + 3).collect();
    let (mut passed, mut failed) = (0, 0);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for name in STRATEGY_NAMES {
            for (temperature, top_p) in [(0.0, 0.9), (1.0, 0.9), (0.8, 1.0)] {
                let (allocations, bytes) = pool.install(|| {
                    let scratch =
                        Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
                    let mut t = Transformer::new(CpuBackend::new(model.clone(), scratch));
                    let mut sampler = Sampler::new(vocab, temperature, top_p, 7);
                    t.reserve(PROMPT, PROMPT + STEPS - 1).unwrap();
                    let mut token = sampler.sample(t.prefill(&prompt, 0).unwrap());
                    let before = CountingAlloc::counts();
                    for pos in PROMPT..PROMPT + STEPS {
                        token = sampler.sample(t.forward(token, pos).unwrap());
                    }
                    let counted = CountingAlloc::counts().since(&before);
                    (counted.allocations, counted.bytes)
                });
                let per_token = allocations as f64 / STEPS as f64;
                let ok = if name == "noop" {
                    allocations > 0
                } else {
                    allocations == 0
                };
                println!(
                    "{name:<13} {threads}t t={temperature} p={top_p}: {per_token:.2} heap allocations, {} bytes per decode token ... {}",
                    bytes / STEPS as u64,
                    if ok { "ok" } else { "FAILED" }
                );
                if ok { passed += 1 } else { failed += 1 }
            }
        }
    }
    assert!(CountingAlloc::is_installed());
    println!("alloc_free: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
