//! Two strategies compared from code on the same decode work: heap
//! allocations (counted by `CountingAlloc`), peak footprint against the
//! lower bound, and time.
//!
//! `cargo run --release -p scratchpad-examples --example compare_two`

use std::sync::Arc;
use std::time::Instant;

use scratchpad::{CountingAlloc, HostMemory, Phase, Pool, PoolOptions};
use scratchpad_model::{BOS, CpuBackend, Transformer, argmax, synthetic};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> anyhow::Result<()> {
    let model = Arc::new(synthetic::checkpoint(
        "synth-260k",
        synthetic::DEFAULT_SEED,
    )?);
    for name in ["noop", "planned"] {
        let pool = Pool::with_strategy(name, HostMemory, &PoolOptions::default())?;
        let mut t = Transformer::new(CpuBackend::new(model.clone(), pool));
        t.reserve(1, 255)?;
        let scratch =
            |t: &Transformer<CpuBackend>| scratchpad_model::Backend::scratch(t.backend()).stats();
        scratchpad_model::Backend::scratch(t.backend()).reset_peaks();
        let before = CountingAlloc::counts();
        let start = Instant::now();
        let mut token = BOS;
        for pos in 0..256 {
            token = argmax(t.forward(token, pos)?);
        }
        let elapsed = start.elapsed();
        let allocations = CountingAlloc::counts().since(&before).allocations;
        let stats = scratch(&t);
        println!(
            "{name:<8} {:>7.1} heap allocations/token, peak {:>6} B for a lower bound of {:>6} B, {:>8.0} tok/s",
            allocations as f64 / 256.0,
            stats.peak_reserved_for(Phase::Decode),
            stats.lower_bound(Phase::Decode),
            256.0 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
