//! Exactly zero heap allocations per decode token (forward and sampling)
//! after `reserve`, under every strategy but `noop`, at one and two threads;
//! counted by `CountingAlloc` in this binary alone (`harness = false`).
//! On a CUDA device, the same count for the GPU decode step (eager, and
//! graph-replayed on the strategies that allow capture); skipped, saying
//! why, without one.

use std::sync::Arc;

use scratchpad::{CountingAlloc, HostMemory, Pool, PoolOptions, STRATEGY_NAMES};
use scratchpad_cuda::{Gpu, gpu_required, may_skip};
use scratchpad_model::{
    Checkpoint, CpuBackend, CudaBackend, CudaOptions, Sampler, Transformer, synthetic,
};

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
                    let mut token = sampler.sample(t.prefill(&prompt, 0).unwrap()).unwrap();
                    let before = CountingAlloc::counts();
                    for pos in PROMPT..PROMPT + STEPS {
                        token = sampler.sample(t.forward(token, pos).unwrap()).unwrap();
                    }
                    let counted = CountingAlloc::counts().since(&before);
                    (counted.allocations, counted.bytes)
                });
                let per_token = allocations as f64 / STEPS as f64;
                let ok = if name.starts_with("noop") {
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
    let (p, f) = cuda(&model, &prompt);
    passed += p;
    failed += f;
    assert!(CountingAlloc::is_installed());
    println!("alloc_free: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Host heap allocations per GPU decode token (forward, logits download and
/// greedy sampling) after `reserve` and one decode step (the capture, with
/// a graph): `(passed, failed)`.
fn cuda(model: &Checkpoint, prompt: &[u32]) -> (u32, u32) {
    let gpu = match Gpu::new(0) {
        Ok(gpu) => Arc::new(gpu),
        Err(e) if may_skip(&e, gpu_required()) => {
            eprintln!("skipped: the GPU decode step's host allocations: {e}");
            return (0, 0);
        }
        Err(e) => {
            println!("cuda: the GPU cannot be used: {e} ... FAILED");
            return (0, 1);
        }
    };
    let vocab = model.config().vocab_size;
    let (mut passed, mut failed) = (0, 0);
    for name in scratchpad::device_strategy_names() {
        for graph in [false, true] {
            if graph && scratchpad::stable_addresses(name) != Some(true) {
                continue;
            }
            let scratch =
                Pool::with_strategy(name, gpu.memory().clone(), &PoolOptions::default()).unwrap();
            let options = CudaOptions {
                graph,
                ..CudaOptions::default()
            };
            let mut t =
                Transformer::new(CudaBackend::new(gpu.clone(), model, scratch, options).unwrap());
            let mut sampler = Sampler::new(vocab, 0.0, 0.9, 7);
            t.reserve(PROMPT, PROMPT + STEPS - 1).unwrap();
            let mut token = sampler.sample(t.prefill(prompt, 0).unwrap()).unwrap();
            // One decode step first: with a graph, the one that captures it.
            token = sampler.sample(t.forward(token, PROMPT).unwrap()).unwrap();
            let before = CountingAlloc::counts();
            for pos in PROMPT + 1..PROMPT + STEPS {
                token = sampler.sample(t.forward(token, pos).unwrap()).unwrap();
            }
            let counted = CountingAlloc::counts().since(&before);
            // `noop` allocates device memory per lease, not host memory:
            // report it, expect nothing of it.
            let ok = name.starts_with("noop") || counted.allocations == 0;
            println!(
                "cuda {name:<13} graph={graph}: {:.2} heap allocations, {} bytes per decode token ... {}",
                counted.allocations as f64 / (STEPS - 1) as f64,
                counted.bytes / (STEPS - 1) as u64,
                if ok { "ok" } else { "FAILED" }
            );
            if ok { passed += 1 } else { failed += 1 }
        }
    }
    (passed, failed)
}
