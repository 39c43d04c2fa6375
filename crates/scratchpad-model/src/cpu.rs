//! [`Cpu`]: the Llama ops on the host, with the `scratchpad-cpu` kernels,
//! and its persistent state (the residual stream, the KV cache, the
//! logits; the weights are the checkpoint's). [`CpuBackend`] is the model
//! on it.

use std::ops::Range;
use std::sync::Arc;

use num_complex::Complex32;
use scratchpad::{ExecutionContext, HostMemory, Pool};
use scratchpad_cpu::{
    Attention, Gemm, Gemv, Isa, KvCache, Rope, add_residual, apply_rope, attention, embed, gemm,
    gemv, gemv_many, gemv_swiglu, rms_norm, rope_table, swiglu,
};

use crate::device::{Buf, Matrix, Norm, Step, gate_up_separately, qkv_separately};
use crate::{Checkpoint, Config, Device, Llama, ModelError};

/// The model on the host.
pub type CpuBackend = Llama<Cpu>;

/// The host as a [`Device`]: SIMD kernels chosen at run time, parallel
/// inside the caller's rayon pool.
pub struct Cpu {
    model: Arc<Checkpoint>,
    cache: KvCache,
    /// The residual stream of a block: `seq_len × dim`.
    x: Vec<f32>,
    logits: Vec<f32>,
    isa: Isa,
}

impl Cpu {
    /// The host device for `model`, its state allocated here.
    pub fn new(model: Arc<Checkpoint>) -> Self {
        let c = *model.config();
        Cpu {
            cache: KvCache::new(c.n_layers, c.seq_len, c.kv_dim()),
            x: vec![0.0; c.seq_len * c.dim],
            logits: vec![0.0; c.vocab_size],
            model,
            isa: Isa::detect(),
        }
    }

    fn weights(&self, range: Range<usize>) -> &[f32] {
        &self.model.tensors()[range]
    }

    fn heads(&self, step: Step) -> Rope {
        let c = self.model.config();
        Rope {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
            pos: step.pos,
            n_tokens: step.n_tokens,
        }
    }
}

impl CpuBackend {
    /// `model` on the host, its temporaries leased from `scratch`.
    pub fn new(model: Arc<Checkpoint>, scratch: Pool<HostMemory>) -> Self {
        Llama::on(Cpu::new(model), scratch)
    }

    /// Forces a SIMD path for every kernel.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.device.isa = isa;
        self
    }
}

/// The f32 pairs of a RoPE table as the kernels' rotations.
fn rotations(table: &[f32]) -> &[Complex32] {
    bytemuck::cast_slice(table)
}

impl Device for Cpu {
    type Memory = HostMemory;

    fn config(&self) -> &Config {
        self.model.config()
    }

    fn embed(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        tokens: &[u32],
    ) -> Result<(), ModelError> {
        let dim = self.model.config().dim;
        let table = self.model.token_embedding();
        for (row, &token) in self.x.chunks_exact_mut(dim).zip(tokens) {
            embed(table, token as usize, row);
        }
        Ok(())
    }

    fn rms_norm(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        norm: Norm,
        rows: Range<usize>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let c = self.model.config();
        let x = &self.x[rows.start * c.dim..rows.end * c.dim];
        rms_norm(
            x,
            self.weights(self.model.layout().norm(norm, c.n_layers)),
            out,
        );
        Ok(())
    }

    fn project(
        &mut self,
        ctx: &ExecutionContext<HostMemory>,
        x: &Buf<'_, Self>,
        layer: usize,
        matrix: Matrix,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let c = self.model.config();
        let w = self.weights(self.model.layout().matrix(matrix, layer, c.n_layers));
        project(ctx, self.isa, x, w, matrix.k(c), out)
    }

    fn project_qkv(
        &mut self,
        ctx: &ExecutionContext<HostMemory>,
        x: &Buf<'_, Self>,
        layer: usize,
        qkv: [&mut Buf<'_, Self>; 3],
    ) -> Result<(), ModelError> {
        let c = self.model.config();
        if x.len() != c.dim {
            // A block of tokens: three matrix-matrix products.
            return qkv_separately(self, ctx, x, layer, qkv);
        }
        let (lay, n) = (self.model.layout(), c.n_layers);
        let ws =
            [Matrix::Wq, Matrix::Wk, Matrix::Wv].map(|m| self.weights(lay.matrix(m, layer, n)));
        gemv_many(ctx, self.isa, ws, x, qkv.map(|b| &mut b[..]));
        Ok(())
    }

    fn project_gate_up(
        &mut self,
        ctx: &ExecutionContext<HostMemory>,
        x: &Buf<'_, Self>,
        layer: usize,
        gate: &mut Buf<'_, Self>,
        up: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let c = self.model.config();
        if x.len() != c.dim {
            return gate_up_separately(self, ctx, x, layer, gate, up);
        }
        let (lay, n) = (self.model.layout(), c.n_layers);
        let w1 = self.weights(lay.matrix(Matrix::W1, layer, n));
        let w3 = self.weights(lay.matrix(Matrix::W3, layer, n));
        gemv_swiglu(ctx, self.isa, w1, w3, x, gate, up);
        Ok(())
    }

    fn rope_table(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        step: Step,
        table: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        rope_table(&self.heads(step), bytemuck::cast_slice_mut(&mut table[..]));
        Ok(())
    }

    fn apply_rope(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        step: Step,
        table: &Buf<'_, Self>,
        q: &mut Buf<'_, Self>,
        k: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        apply_rope(&self.heads(step), rotations(table), q, k);
        Ok(())
    }

    fn kv_append(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        layer: usize,
        step: Step,
        k: &Buf<'_, Self>,
        v: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        self.cache.append(layer, step.pos, k, v);
        Ok(())
    }

    fn attention(
        &mut self,
        ctx: &ExecutionContext<HostMemory>,
        layer: usize,
        step: Step,
        q: &Buf<'_, Self>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let c = self.model.config();
        let params = Attention {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
            pos: step.pos,
            n_queries: step.n_tokens,
            isa: self.isa,
        };
        let len = step.pos + step.n_tokens;
        let (keys, values) = (self.cache.keys(layer, len), self.cache.values(layer, len));
        Ok(attention(ctx, &params, q, keys, values, out)?)
    }

    fn swiglu(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        gate: &mut Buf<'_, Self>,
        up: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        swiglu(gate, up);
        Ok(())
    }

    fn residual_add(
        &mut self,
        _ctx: &ExecutionContext<HostMemory>,
        delta: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        add_residual(&mut self.x[..delta.len()], delta);
        Ok(())
    }

    fn classify(
        &mut self,
        ctx: &ExecutionContext<HostMemory>,
        x: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let (w, k) = (self.model.wcls(), self.model.config().dim);
        project(ctx, self.isa, x, w, k, &mut self.logits)
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn reset_cache(&mut self) {
        self.cache.reset();
    }
}

/// `out (m × n) = x (m × k) · Wᵀ`, with `W (n × k)`: gemv for one token,
/// gemm for a block of `m` tokens.
fn project(
    ctx: &ExecutionContext<HostMemory>,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    k: usize,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let (m, n) = (x.len() / k, w.len() / k);
    if m == 1 {
        gemv(ctx, &Gemv { m: n, k, isa }, w, x, out);
    } else {
        gemm(ctx, &Gemm { m, k, n, isa }, x, w, out)?;
    }
    Ok(())
}
