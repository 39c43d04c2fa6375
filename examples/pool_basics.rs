//! Every strategy on the same decode-like work, from code: leases from
//! scopes, one step per token, and the stats each strategy reports.
//!
//! `cargo run --release -p scratchpad-examples --example pool_basics`

use scratchpad::{HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES, Scope, ScratchError, tag};

/// One decode step at position `pos`: per layer, a query, attention scores
/// that grow with `pos`, and a hidden activation.
fn step(s: &Scope<'_, HostMemory>, pos: usize) -> Result<f32, ScratchError> {
    let mut x = s.acquire::<f32>(288, tag!("example.x"))?;
    x.fill(1.0);
    for _layer in 0..6 {
        s.scope(|l| -> Result<(), ScratchError> {
            let mut scores = l.acquire::<f32>(6 * (pos + 1), tag!("example.scores"))?;
            scores.fill(1.0 / (pos + 1) as f32);
            let mut hidden = l.acquire_zeroed::<f32>(768, tag!("example.hidden"))?;
            hidden[0] = scores.iter().sum();
            x[0] += hidden[0];
            Ok(())
        })?;
    }
    Ok(x[0])
}

fn main() -> anyhow::Result<()> {
    let options = PoolOptions::from_env()?;
    println!(
        "{:<13} {:>9} {:>9} {:>8} {:>12} {:>12} {:>7}",
        "strategy", "acquires", "allocs", "hit rate", "peak live", "peak reserved", "ratio"
    );
    for name in STRATEGY_NAMES {
        let pool = Pool::with_strategy(name, HostMemory, &options)?;
        // Warm up at the largest position the run reaches, as a model's
        // `reserve` does: `planned` measures this step.
        pool.step(Phase::Decode, |s| step(s, 255))?;
        pool.reset_peaks();
        for pos in 0..256 {
            pool.step(Phase::Decode, |s| step(s, pos))?;
        }
        let stats = pool.stats();
        println!(
            "{:<13} {:>9} {:>9} {:>8.3} {:>12} {:>12} {:>7.2}",
            name,
            stats.acquires,
            stats.backing_allocations,
            stats.hit_rate(),
            stats.peak_live_bytes,
            stats.peak_reserved_bytes,
            stats.peak_over_lower_bound().unwrap_or(0.0)
        );
    }
    Ok(())
}
