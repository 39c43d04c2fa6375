//! [`Device`]: the ops a device must provide for the Llama layer, and its
//! persistent state (weights, KV cache, residual stream, logits). The
//! layer itself is written once, over these ops, in [`crate::llama`]; the
//! CPU ([`crate::Cpu`]) and CUDA ([`crate::Cuda`]) devices implement them
//! side by side, as candle-nn's `rotary_emb.rs` does for one op.
//!
//! Every op receives the [`ExecutionContext`] and leases its own
//! temporaries from `ctx.scratch`, under one tag per op that is the same on
//! every device: `matmul.scratch` (the packing buffers of the CPU's gemm,
//! the cuBLAS/cuBLASLt workspace on CUDA) and `attn.scratch` (scores, and
//! a block's head-major outputs on the CPU). The buffers passed between
//! ops (`layer.*`, `rope.table`, `final.norm`) are the recipe's leases.

use std::ops::Range;

use scratchpad::{ExecutionContext, Lease, Memory};

use crate::{Config, ModelError};

/// An f32 lease on the device's memory: what ops pass to each other.
pub type Buf<'s, D> = Lease<'s, f32, <D as Device>::Memory>;

/// The positions a step runs: `n_tokens` tokens at `pos..pos + n_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Position of the first token.
    pub pos: usize,
    /// Tokens in the step (1 when decoding).
    pub n_tokens: usize,
}

/// Which RMSNorm weight of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Before attention in layer `l`.
    Attention(usize),
    /// Before the feed-forward in layer `l`.
    FeedForward(usize),
    /// Before the classifier.
    Final,
}

/// Which projection matrix of a layer, `(out, in)` row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    /// Queries: `dim × dim`.
    Wq,
    /// Keys: `kv_dim × dim`.
    Wk,
    /// Values: `kv_dim × dim`.
    Wv,
    /// Attention output: `dim × dim`.
    Wo,
    /// Feed-forward gate: `hidden × dim`.
    W1,
    /// Feed-forward down: `dim × hidden`.
    W2,
    /// Feed-forward up: `hidden × dim`.
    W3,
}

impl Matrix {
    /// Its inner dimension `k` (columns): `hidden_dim` for `W2`, `dim`
    /// for the others.
    pub fn k(self, c: &Config) -> usize {
        match self {
            Matrix::W2 => c.hidden_dim,
            _ => c.dim,
        }
    }
}

/// The ops of the Llama layer on one device, and the device's persistent
/// state. Slice lengths are the recipe's contract: a mismatch is a bug and
/// panics; what the device or the pool can cause is an `Err`.
pub trait Device {
    /// The memory the device's scratch pool draws from.
    type Memory: Memory;

    /// The model's shape.
    fn config(&self) -> &Config;

    /// Rows `0..tokens.len()` of the residual stream ← the tokens'
    /// embedding rows. The ids are checked against the vocabulary.
    fn embed(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        tokens: &[u32],
    ) -> Result<(), ModelError>;

    /// `out` ← RMSNorm of residual-stream `rows` (of `dim`) with `norm`'s
    /// weight.
    fn rms_norm(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        norm: Norm,
        rows: Range<usize>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// `out (m × n) = x (m × k) · Wᵀ`, `W (n × k)` being `matrix` of layer
    /// `layer`; `m` is the step's tokens.
    fn project(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        x: &Buf<'_, Self>,
        layer: usize,
        matrix: Matrix,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// `q`, `k`, `v` ← `x` projected by layer `layer`'s Wq, Wk and Wv: the
    /// attention's three projections of one input. By default three
    /// [`Device::project`]s; a device may run them as one kernel (the CPU
    /// does for a decode token).
    fn project_qkv(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        x: &Buf<'_, Self>,
        layer: usize,
        qkv: [&mut Buf<'_, Self>; 3],
    ) -> Result<(), ModelError> {
        qkv_separately(self, ctx, x, layer, qkv)
    }

    /// The feed-forward's way up: `gate` ← `silu(W1 · x) ⊙ (W3 · x)`, with
    /// `up` left holding `W3 · x`. By default two [`Device::project`]s and
    /// [`Device::swiglu`]; a device may fuse them (the CPU does for a decode
    /// token).
    fn project_gate_up(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        x: &Buf<'_, Self>,
        layer: usize,
        gate: &mut Buf<'_, Self>,
        up: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        gate_up_separately(self, ctx, x, layer, gate, up)
    }

    /// `table` ← the rotations of the step's positions:
    /// `n_tokens × head_dim / 2` pairs `(cos pθ_i, sin pθ_i)`.
    fn rope_table(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        step: Step,
        table: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// Rotates `q` and `k` in place by a table from [`Device::rope_table`].
    fn apply_rope(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        step: Step,
        table: &Buf<'_, Self>,
        q: &mut Buf<'_, Self>,
        k: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// Stores the step's keys and values in layer `layer` of the cache.
    fn kv_append(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        layer: usize,
        step: Step,
        k: &Buf<'_, Self>,
        v: &Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// Causal GQA attention of `q` over layer `layer`'s cache into `out`.
    fn attention(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        layer: usize,
        step: Step,
        q: &Buf<'_, Self>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// `gate` ← `silu(gate) ⊙ up`.
    fn swiglu(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        gate: &mut Buf<'_, Self>,
        up: &Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// Residual-stream rows `0..delta.len() / dim` += `delta`.
    fn residual_add(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        delta: &Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// The logits ← the classifier times `x` (one row of `dim`).
    fn classify(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        x: &Buf<'_, Self>,
    ) -> Result<(), ModelError>;

    /// The logits of the last step, on the host.
    fn logits(&self) -> &[f32];

    /// Clears the KV cache for a new prompt.
    fn reset_cache(&mut self);

    /// Runs one step of the recipe. A device that can replay a recorded
    /// step (CUDA graphs) overrides this and calls [`crate::llama::forward`]
    /// when it records or runs eagerly.
    fn run_step(
        &mut self,
        ctx: &ExecutionContext<Self::Memory>,
        tokens: &[u32],
        pos: usize,
    ) -> Result<(), ModelError>
    where
        Self: Sized,
    {
        crate::llama::forward(self, ctx, tokens, pos)
    }
}

/// [`Device::project_qkv`] as three [`Device::project`]s: the default, and
/// what a device that fuses them does where it does not (a block).
pub(crate) fn qkv_separately<D: Device + ?Sized>(
    d: &mut D,
    ctx: &ExecutionContext<D::Memory>,
    x: &Buf<'_, D>,
    layer: usize,
    [q, k, v]: [&mut Buf<'_, D>; 3],
) -> Result<(), ModelError> {
    d.project(ctx, x, layer, Matrix::Wq, q)?;
    d.project(ctx, x, layer, Matrix::Wk, k)?;
    d.project(ctx, x, layer, Matrix::Wv, v)
}

/// [`Device::project_gate_up`] as two [`Device::project`]s and
/// [`Device::swiglu`]: the default, and a fusing device's way for a block.
pub(crate) fn gate_up_separately<D: Device + ?Sized>(
    d: &mut D,
    ctx: &ExecutionContext<D::Memory>,
    x: &Buf<'_, D>,
    layer: usize,
    gate: &mut Buf<'_, D>,
    up: &mut Buf<'_, D>,
) -> Result<(), ModelError> {
    d.project(ctx, x, layer, Matrix::W1, gate)?;
    d.project(ctx, x, layer, Matrix::W3, up)?;
    d.swiglu(ctx, gate, up)
}
