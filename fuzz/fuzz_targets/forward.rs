//! A tiny model from fuzzed bytes, run forward and sampled in every mode:
//! no panic whatever the weights (NaN and infinity included) or the
//! sampling settings.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{Checkpoint, Config, CpuBackend, Sampler, Transformer};

const CONFIG: Config = Config {
    dim: 8,
    hidden_dim: 16,
    n_layers: 2,
    n_heads: 2,
    n_kv_heads: 1,
    vocab_size: 11,
    seq_len: 6,
    shared_classifier: true,
};

fuzz_target!(|input: (u8, f32, f32, u64, &[u8])| {
    let (tokens, temperature, top_p, seed, weights) = input;
    let layout = CONFIG.layout().expect("a small valid shape");
    let mut floats: Vec<f32> = weights
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    floats.resize(layout.total_floats, 0.5);
    let Ok(model) = Checkpoint::from_floats(CONFIG, floats, "fuzz") else {
        return;
    };
    let pool = Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap();
    let mut t = Transformer::new(CpuBackend::new(Arc::new(model), pool));
    let temperature = if temperature.is_finite() {
        temperature.abs()
    } else {
        0.0
    };
    let mut sampler = Sampler::new(CONFIG.vocab_size, temperature, top_p, seed);
    let prompt: Vec<u32> = (0..1 + tokens % 3).map(|i| u32::from(i) % 11).collect();
    let Ok(logits) = t.prefill(&prompt, 0) else {
        return;
    };
    let mut token = sampler.sample(logits);
    for pos in prompt.len()..CONFIG.seq_len {
        let Some(next) = token else { break };
        assert!((next as usize) < CONFIG.vocab_size);
        token = t.forward(next, pos).ok().and_then(|l| sampler.sample(l));
    }
});
