//! [`CpuBackend`]: the model on the host, with the `scratchpad-cpu` kernels.
//! Persistent state (the residual stream, the KV cache, the logits) is
//! owned here; every temporary is a lease, one scope per layer.

use std::sync::Arc;

use num_complex::Complex32;

use scratchpad::{ExecutionContext, HostMemory, Pool, ScratchError, tag};
use scratchpad_cpu::{
    Attention, Gemm, Gemv, Isa, KvCache, Rope, add_residual, apply_rope, attention, embed, gemm,
    gemv, rms_norm, rope_scratch, rope_table, swiglu,
};

use crate::{Backend, Checkpoint, Config, ModelError};

/// The Llama forward pass on the CPU.
pub struct CpuBackend {
    ctx: ExecutionContext<HostMemory>,
    model: Arc<Checkpoint>,
    cache: KvCache,
    /// The residual stream of a block: `seq_len × dim`.
    x: Vec<f32>,
    logits: Vec<f32>,
    isa: Isa,
}

impl CpuBackend {
    /// A backend for `model` whose temporaries come from `scratch`.
    pub fn new(model: Arc<Checkpoint>, scratch: Pool<HostMemory>) -> Self {
        let c = *model.config();
        CpuBackend {
            ctx: ExecutionContext::new(scratch),
            cache: KvCache::new(c.n_layers, c.seq_len, c.kv_dim()),
            x: vec![0.0; c.seq_len * c.dim],
            logits: vec![0.0; c.vocab_size],
            model,
            isa: Isa::detect(),
        }
    }

    /// Forces a SIMD path for the matrix products.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    /// The execution context.
    pub fn context(&self) -> &ExecutionContext<HostMemory> {
        &self.ctx
    }
}

/// `out (n × m) = x (n × k) · Wᵀ`, with `W (m × k)`: gemv for one token,
/// gemm for a block.
fn project(
    ctx: &ExecutionContext<HostMemory>,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    k: usize,
    out: &mut [f32],
) -> Result<(), ScratchError> {
    let (n, m) = (x.len() / k, w.len() / k);
    if n == 1 {
        gemv(ctx, &Gemv { m, k, isa }, w, x, out);
        Ok(())
    } else {
        gemm(ctx, &Gemm { m: n, k, n: m, isa }, x, w, out)
    }
}

impl Backend for CpuBackend {
    type Memory = HostMemory;

    fn config(&self) -> &Config {
        self.model.config()
    }

    fn scratch(&self) -> &Pool<HostMemory> {
        &self.ctx.scratch
    }

    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
        let CpuBackend {
            ctx,
            model,
            cache,
            x,
            logits,
            isa,
        } = self;
        let (ctx, isa) = (&*ctx, *isa);
        let c = *model.config();
        let (n, dim, kv_dim, hidden) = (tokens.len(), c.dim, c.kv_dim(), c.hidden_dim);
        let x = &mut x[..n * dim];
        for (row, &token) in x.chunks_exact_mut(dim).zip(tokens) {
            embed(model.token_embedding(), token as usize, row);
        }
        let heads = Attention {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
            pos,
            n_queries: n,
            isa,
        };
        let rotary = Rope {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
            pos,
            n_tokens: n,
        };
        ctx.scratch.scope(|s| -> Result<(), ModelError> {
            // The rotations depend on the positions only: one table for all
            // layers of the step.
            let mut rotations =
                s.acquire::<Complex32>(rope_scratch(&rotary), tag!("rope.table"))?;
            rope_table(&rotary, &mut rotations);
            for l in 0..c.n_layers {
                let w = model.layer(l);
                s.scope(|s| -> Result<(), ScratchError> {
                    // Attention: x += wo · attn(rope(wq·xn), rope(wk·xn), wv·xn).
                    let mut xb = s.acquire::<f32>(n * dim, tag!("layer.xb"))?;
                    rms_norm(x, w.rms_att, &mut xb);
                    let mut q = s.acquire::<f32>(n * dim, tag!("layer.q"))?;
                    let mut k = s.acquire::<f32>(n * kv_dim, tag!("layer.k"))?;
                    let mut v = s.acquire::<f32>(n * kv_dim, tag!("layer.v"))?;
                    project(ctx, isa, &xb, w.wq, dim, &mut q)?;
                    project(ctx, isa, &xb, w.wk, dim, &mut k)?;
                    project(ctx, isa, &xb, w.wv, dim, &mut v)?;
                    apply_rope(&rotary, &rotations, &mut q, &mut k);
                    cache.append(l, pos, &k, &v);
                    drop((k, v));
                    let mut att = s.acquire::<f32>(n * dim, tag!("layer.att"))?;
                    attention(
                        ctx,
                        &heads,
                        &q,
                        cache.keys(l, pos + n),
                        cache.values(l, pos + n),
                        &mut att,
                    )?;
                    drop(q);
                    project(ctx, isa, &att, w.wo, dim, &mut xb)?;
                    drop(att);
                    add_residual(x, &xb);
                    // Feed-forward: x += w2 · (silu(w1·xn) ⊙ w3·xn).
                    rms_norm(x, w.rms_ffn, &mut xb);
                    let mut hb = s.acquire::<f32>(n * hidden, tag!("layer.hb"))?;
                    let mut hb2 = s.acquire::<f32>(n * hidden, tag!("layer.hb2"))?;
                    project(ctx, isa, &xb, w.w1, dim, &mut hb)?;
                    project(ctx, isa, &xb, w.w3, dim, &mut hb2)?;
                    swiglu(&mut hb, &hb2);
                    drop(hb2);
                    project(ctx, isa, &hb, w.w2, hidden, &mut xb)?;
                    add_residual(x, &xb);
                    Ok(())
                })?;
            }
            let mut xn = s.acquire::<f32>(dim, tag!("final.norm"))?;
            rms_norm(&x[(n - 1) * dim..], model.rms_final(), &mut xn);
            gemv(
                ctx,
                &Gemv {
                    m: c.vocab_size,
                    k: dim,
                    isa,
                },
                model.wcls(),
                &xn,
                logits,
            );
            Ok(())
        })
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn reset_cache(&mut self) {
        self.cache.reset();
    }
}
