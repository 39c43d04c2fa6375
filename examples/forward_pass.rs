//! A forward pass in a dozen lines: the synthetic model, a planned pool,
//! one prefill block and a few greedy decode steps.
//!
//! `cargo run --release -p scratchpad-examples --example forward_pass`

use std::sync::Arc;

use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{CpuBackend, Transformer, argmax, synthetic};

fn main() -> anyhow::Result<()> {
    let model = Arc::new(synthetic::checkpoint(
        "synth-260k",
        synthetic::DEFAULT_SEED,
    )?);
    let pool = Pool::with_strategy("planned", HostMemory, &PoolOptions::default())?;
    let mut t = Transformer::new(CpuBackend::new(model, pool));
    let prompt = [1, 300, 42, 7];
    t.reserve(prompt.len(), prompt.len() + 15)?;
    let mut token = argmax(t.prefill(&prompt, 0)?);
    for pos in prompt.len()..prompt.len() + 16 {
        print!("{token} ");
        token = argmax(t.forward(token, pos)?);
    }
    println!();
    Ok(())
}
