//! The synthetic model: a llama2.c legacy checkpoint generated from a fixed
//! recipe, so that anyone can regenerate the same bytes without downloads.
//!
//! Weights come from xorshift64* (state `0x9E3779B97F4A7C15` or a non-zero
//! seed; each step `s ^= s >> 12; s ^= s << 25; s ^= s >> 27; r = s ·
//! 0x2545F4914F6CDD1D`), each `u = (r >> 40) / 2^24`, `w = (2u − 1) ·
//! 0.034641016` in f32, drawn in file order; RMSNorm weights are 1.0; the two
//! legacy RoPE tables hold `cos(p·f)` then `sin(p·f)` for every position `p`
//! and pair `i`, `f = 10000^(−2i/head_dim)`, in f64 rounded to f32.

use crate::config::{Config, HEADER_BYTES};
use crate::{Checkpoint, ModelError};

/// The presets, by name.
pub const PRESET_NAMES: [&str; 2] = ["synth-15m", "synth-260k"];

/// The generator's default state.
pub const DEFAULT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// The shape of preset `name`.
pub fn preset(name: &str) -> Result<Config, ModelError> {
    let (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) = match name {
        "synth-15m" => (288, 768, 6, 6, 6, 32000, 256),
        "synth-260k" => (64, 172, 5, 8, 4, 512, 512),
        _ => {
            return Err(ModelError::UnknownPreset {
                name: name.to_owned(),
            });
        }
    };
    Ok(Config {
        dim,
        hidden_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        vocab_size,
        seq_len,
        shared_classifier: true,
    })
}

/// xorshift64*, the generator of the recipe.
struct XorShift(u64);

impl XorShift {
    fn weight(&mut self) -> f32 {
        let s = &mut self.0;
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let u = (r >> 40) as f32 * (1.0 / 16_777_216.0);
        (u + u - 1.0) * 0.034_641_016
    }
}

/// The floats after the header of the synthetic checkpoint for `config`.
pub fn floats(config: &Config, seed: u64) -> Result<Vec<f32>, ModelError> {
    if seed == 0 {
        return Err(ModelError::ZeroSeed);
    }
    let layout = config.layout().ok_or_else(|| ModelError::SizeOverflow {
        path: "<synthetic>".into(),
    })?;
    let mut rng = XorShift(seed);
    let mut out = Vec::with_capacity(layout.total_floats);
    let mut random = |out: &mut Vec<f32>, n: usize| out.extend((0..n).map(|_| rng.weight()));
    random(&mut out, layout.token_embedding.len());
    out.resize(out.len() + layout.rms_att.len(), 1.0);
    for len in [
        layout.wq.len(),
        layout.wk.len(),
        layout.wv.len(),
        layout.wo.len(),
    ] {
        random(&mut out, len);
    }
    out.resize(out.len() + layout.rms_ffn.len(), 1.0);
    for len in [layout.w1.len(), layout.w2.len(), layout.w3.len()] {
        random(&mut out, len);
    }
    out.resize(out.len() + layout.rms_final.len(), 1.0);
    let head_dim = config.head_dim();
    for trig in [f64::cos, f64::sin] {
        for p in 0..config.seq_len {
            for i in 0..head_dim / 2 {
                let f = 1.0 / 10000f64.powf((2 * i) as f64 / head_dim as f64);
                out.push(trig(p as f64 * f) as f32);
            }
        }
    }
    if !config.shared_classifier {
        random(&mut out, layout.wcls.len());
    }
    debug_assert_eq!(out.len(), layout.total_floats);
    Ok(out)
}

/// The checkpoint file's bytes: header, then the floats little-endian.
pub fn file_bytes(config: &Config, seed: u64) -> Result<Vec<u8>, ModelError> {
    let floats = floats(config, seed)?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + 4 * floats.len());
    for v in config.header() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in floats {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// The synthetic model `name`, built in memory.
pub fn checkpoint(name: &str, seed: u64) -> Result<Checkpoint, ModelError> {
    let config = preset(name)?;
    Checkpoint::from_floats(config, floats(&config, seed)?, name)
}
