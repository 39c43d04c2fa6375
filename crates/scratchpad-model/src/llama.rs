//! The Llama forward pass, written once over the [`Device`] ops, and
//! [`Llama`]: a device with its [`ExecutionContext`], as a [`Backend`].
//!
//! One step: token → embedding row → for each layer {RMSNorm → q, k, v
//! projections → RoPE → KV append → attention → wo projection + residual →
//! RMSNorm → w1, w3 projections → SwiGLU → w2 projection + residual} →
//! final RMSNorm → classifier → logits. Every buffer between two ops is a
//! lease, one scope per layer; the RoPE table is leased once per step.

use scratchpad::{ExecutionContext, Pool, PoolControl, tag};

use crate::device::{Matrix, Norm, Step};
use crate::{Backend, Config, Device, ModelError};

/// Every tag a forward step leases under, on every device: the recipe's
/// buffers, then the ops' own scratch.
pub const TAGS: [&str; 11] = [
    "rope.table",
    "layer.xb",
    "layer.q",
    "layer.k",
    "layer.v",
    "layer.att",
    "layer.hb",
    "layer.hb2",
    "final.norm",
    "matmul.scratch",
    "attn.scratch",
];

/// The step's token ids and positions against the model: every id in the
/// vocabulary, every position in the context. Checked on the host before
/// anything runs, on every device (a CUDA kernel would write past the KV
/// cache otherwise).
pub(crate) fn check_step(c: &Config, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(ModelError::InvalidToken {
            token,
            vocab_size: c.vocab_size,
        });
    }
    match pos.checked_add(tokens.len()) {
        Some(end) if end <= c.seq_len => Ok(()),
        _ => Err(ModelError::BeyondContext {
            what: "position",
            value: pos.saturating_add(tokens.len().max(1) - 1),
            seq_len: c.seq_len,
        }),
    }
}

/// Runs `tokens` at positions `pos..` through every layer of `d`, leaving
/// the last token's logits in [`Device::logits`]. The recipe, for every
/// device.
pub fn forward<D: Device>(
    d: &mut D,
    ctx: &ExecutionContext<D::Memory>,
    tokens: &[u32],
    pos: usize,
) -> Result<(), ModelError> {
    let c = *d.config();
    check_step(&c, tokens, pos)?;
    let n = tokens.len();
    if n == 0 {
        return Ok(());
    }
    let (dim, kv_dim, hidden) = (c.dim, c.kv_dim(), c.hidden_dim);
    let step = Step { pos, n_tokens: n };
    d.embed(ctx, tokens)?;
    ctx.scratch.scope(|s| -> Result<(), ModelError> {
        // The rotations depend on the positions only: one table for all
        // layers of the step.
        let mut rotations = s.acquire::<f32>(n * c.head_dim(), tag!("rope.table"))?;
        d.rope_table(ctx, step, &mut rotations)?;
        for l in 0..c.n_layers {
            s.scope(|s| -> Result<(), ModelError> {
                // Attention: x += wo · attn(rope(wq·xn), rope(wk·xn), wv·xn).
                let mut xb = s.acquire::<f32>(n * dim, tag!("layer.xb"))?;
                d.rms_norm(ctx, Norm::Attention(l), 0..n, &mut xb)?;
                let mut q = s.acquire::<f32>(n * dim, tag!("layer.q"))?;
                let mut k = s.acquire::<f32>(n * kv_dim, tag!("layer.k"))?;
                let mut v = s.acquire::<f32>(n * kv_dim, tag!("layer.v"))?;
                d.project_qkv(ctx, &xb, l, [&mut q, &mut k, &mut v])?;
                d.apply_rope(ctx, step, &rotations, &mut q, &mut k)?;
                d.kv_append(ctx, l, step, &k, &v)?;
                drop((k, v));
                let mut att = s.acquire::<f32>(n * dim, tag!("layer.att"))?;
                d.attention(ctx, l, step, &q, &mut att)?;
                drop(q);
                d.project(ctx, &att, l, Matrix::Wo, &mut xb)?;
                drop(att);
                d.residual_add(ctx, &xb)?;
                // Feed-forward: x += w2 · (silu(w1·xn) ⊙ w3·xn).
                d.rms_norm(ctx, Norm::FeedForward(l), 0..n, &mut xb)?;
                let mut hb = s.acquire::<f32>(n * hidden, tag!("layer.hb"))?;
                let mut hb2 = s.acquire::<f32>(n * hidden, tag!("layer.hb2"))?;
                d.project_gate_up(ctx, &xb, l, &mut hb, &mut hb2)?;
                drop(hb2);
                d.project(ctx, &hb, l, Matrix::W2, &mut xb)?;
                d.residual_add(ctx, &xb)?;
                Ok(())
            })?;
        }
        let mut xn = s.acquire::<f32>(dim, tag!("final.norm"))?;
        d.rms_norm(ctx, Norm::Final, n - 1..n, &mut xn)?;
        d.classify(ctx, &xn)
    })
}

/// The Llama model on device `D`: the device's ops and state, and the
/// execution context whose pool every temporary is leased from.
pub struct Llama<D: Device> {
    pub(crate) ctx: ExecutionContext<D::Memory>,
    pub(crate) device: D,
}

impl<D: Device> Llama<D> {
    /// `device` with its temporaries leased from `scratch`.
    pub fn on(device: D, scratch: Pool<D::Memory>) -> Self {
        Llama {
            ctx: ExecutionContext::new(scratch),
            device,
        }
    }

    /// The execution context.
    pub fn context(&self) -> &ExecutionContext<D::Memory> {
        &self.ctx
    }
}

impl<D: Device> Backend for Llama<D> {
    fn config(&self) -> &Config {
        self.device.config()
    }

    fn scratch(&self) -> &dyn PoolControl {
        &self.ctx.scratch
    }

    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
        self.device.run_step(&self.ctx, tokens, pos)
    }

    fn logits(&self) -> &[f32] {
        self.device.logits()
    }

    fn reset_cache(&mut self) {
        self.device.reset_cache();
    }
}
