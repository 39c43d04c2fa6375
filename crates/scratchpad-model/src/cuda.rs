//! [`Cuda`]: the Llama ops on a CUDA device, with the NVRTC kernels of
//! `scratchpad-cuda` and cuBLAS or cuBLASLt for the matrix products, and
//! its persistent state; [`CudaBackend`] is the model on it.
//!
//! Persistent state (the weights, uploaded once; the KV cache; the
//! residual stream; the logits; the step's position and token ids) lives in
//! device buffers owned here. Every op leases its own temporaries from the
//! device pool (`matmul.scratch`: the matmul workspace; `attn.scratch`: the
//! attention scores), as the CPU's do.
//!
//! With [`CudaOptions::graph`], the decode step is captured once into a CUDA
//! graph and replayed: the kernels read the position and token id from
//! device memory written before each replay, and the attention scores are
//! leased for the whole context, so one graph serves every position. The
//! graph holds the addresses of the captured step's leases, so capture is
//! refused on strategies that may hand later steps other addresses; the
//! graph is dropped and captured again whenever the pool allocates or
//! frees device memory after the capture; and a capture during which the
//! pool tried to allocate or free is thrown away, the step run eagerly,
//! and graph replay turned off for the rest of the run (counted in
//! [`CudaCounters::graph_fallbacks`]).

use std::ops::Range;
use std::sync::Arc;

use scratchpad::{ExecutionContext, Pool, PoolStats, tag};
use scratchpad_cuda::{
    Blas, CudaMemory, DEFAULT_WORKSPACE_BYTES, DeviceBuffer, DeviceSlice, Gpu, Heads, Matmul,
    StepGraph, check_workspace_bytes,
};

use crate::device::{Buf, Matrix, Norm, Step};
use crate::{Checkpoint, Config, Device, Layout, Llama, ModelError};

/// The model on a CUDA device.
pub type CudaBackend = Llama<Cuda>;

/// Strategies whose lease addresses repeat from one decode step to the next
/// once warm, so a captured graph's addresses stay theirs (the registry's
/// `stable_addresses`): `planned` serves fixed offsets of one slab, `arena`
/// bumps from the start of the same chunk after each scope, `workspace`
/// keeps one buffer per call site.
pub fn graph_strategies() -> impl Iterator<Item = &'static str> {
    scratchpad::STRATEGIES
        .iter()
        .filter(|s| s.stable_addresses)
        .map(|s| s.name)
}

/// `Ok` when a decode step on `strategy` may be captured into a CUDA graph
/// ([`graph_strategies`]); the error to report otherwise.
pub fn check_graph_strategy(strategy: &str) -> Result<(), ModelError> {
    if scratchpad::stable_addresses(strategy) == Some(true) {
        Ok(())
    } else {
        Err(ModelError::GraphNeedsStableAddresses {
            strategy: strategy.to_string(),
        })
    }
}

/// How the CUDA backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaOptions {
    /// cuBLAS or cuBLASLt.
    pub matmul: Matmul,
    /// Let the matmul library use TF32 tensor cores (off: full f32).
    pub tf32: bool,
    /// Capture the decode step once and replay it.
    pub graph: bool,
    /// Bytes of workspace each matrix product is given (a non-zero
    /// multiple of 256).
    pub workspace_bytes: usize,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            matmul: Matmul::Cublas,
            tf32: false,
            graph: false,
            workspace_bytes: DEFAULT_WORKSPACE_BYTES,
        }
    }
}

struct Captured {
    graph: StepGraph,
    /// The pool's backing allocations and frees when the graph was made.
    backing: (u64, u64),
}

/// What the backend has run, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CudaCounters {
    /// Decode steps run eagerly (launch by launch).
    pub eager_decode_steps: u64,
    /// Decode steps replayed from a graph.
    pub replayed_decode_steps: u64,
    /// Graphs captured.
    pub captures: u64,
    /// Captures thrown away because the pool allocated or freed device
    /// memory while capturing; graph replay is off after the first.
    pub graph_fallbacks: u64,
}

/// A CUDA device as a [`Device`]: one stream, kernels compiled for it,
/// one cuBLAS or cuBLASLt handle.
pub struct Cuda {
    gpu: Arc<Gpu>,
    config: Config,
    layout: Layout,
    weights: DeviceBuffer<f32>,
    /// `n_layers × seq_len × kv_dim` each.
    keys: DeviceBuffer<f32>,
    values: DeviceBuffer<f32>,
    /// The residual stream of a block: `seq_len × dim`.
    x: DeviceBuffer<f32>,
    logits_device: DeviceBuffer<f32>,
    /// `[pos, token 0, token 1, …]` of the step, written before it runs.
    params: DeviceBuffer<i32>,
    staging: Vec<i32>,
    logits: Vec<f32>,
    blas: Blas,
    options: CudaOptions,
    graph: Option<Captured>,
    /// Set when a capture found the pool allocating or freeing: no more
    /// captures this run.
    graph_off: bool,
    counters: CudaCounters,
}

impl Cuda {
    /// The device for `model` on `gpu`: the weights uploaded, the state
    /// allocated, the matmul handle made. `strategy` is the pool's, checked
    /// against graph replay when it is asked for.
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Checkpoint,
        strategy: &str,
        options: CudaOptions,
    ) -> Result<Self, ModelError> {
        if options.graph {
            check_graph_strategy(strategy)?;
        }
        check_workspace_bytes(options.workspace_bytes)?;
        let c = *model.config();
        let cache = c
            .n_layers
            .checked_mul(c.seq_len)
            .and_then(|v| v.checked_mul(c.kv_dim()))
            .ok_or_else(|| ModelError::InvalidOption {
                option: "model shape",
                reason: "the KV cache's size overflows usize".into(),
            })?;
        let memory = gpu.memory();
        let device = Cuda {
            config: c,
            layout: model.layout().clone(),
            weights: DeviceBuffer::from_host(memory, model.tensors())?,
            keys: DeviceBuffer::zeros(memory, cache)?,
            values: DeviceBuffer::zeros(memory, cache)?,
            x: DeviceBuffer::zeros(memory, c.seq_len * c.dim)?,
            logits_device: DeviceBuffer::zeros(memory, c.vocab_size)?,
            params: DeviceBuffer::zeros(memory, 1 + c.seq_len)?,
            staging: vec![0; 1 + c.seq_len],
            logits: vec![0.0; c.vocab_size],
            blas: gpu.blas(options.matmul, options.tf32, options.workspace_bytes)?,
            options,
            graph: None,
            graph_off: false,
            counters: CudaCounters::default(),
            gpu,
        };
        device.gpu.synchronize()?;
        Ok(device)
    }

    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// How the backend runs.
    pub fn options(&self) -> &CudaOptions {
        &self.options
    }

    /// Eager and replayed decode steps, captures and fallbacks, so far.
    pub fn counters(&self) -> CudaCounters {
        self.counters
    }

    /// Device bytes held outside the pool for the whole run: weights, KV
    /// cache, residual stream, logits, step parameters.
    pub fn persistent_device_bytes(&self) -> usize {
        4 * (self.weights.len()
            + self.keys.len()
            + self.values.len()
            + self.x.len()
            + self.logits_device.len()
            + self.params.len())
    }

    fn heads(&self) -> Heads {
        Heads {
            n_heads: self.config.n_heads,
            n_kv_heads: self.config.n_kv_heads,
            head_dim: self.config.head_dim(),
        }
    }

    fn weights(&self, range: Range<usize>) -> DeviceSlice<'_, f32> {
        self.weights.slice(range.start, range.len())
    }

    /// One layer's rows of the cache: `seq_len × kv_dim` floats.
    fn layer_cache(&self, layer: usize) -> (DeviceSlice<'_, f32>, DeviceSlice<'_, f32>) {
        let len = self.config.seq_len * self.config.kv_dim();
        (
            self.keys.slice(layer * len, len),
            self.values.slice(layer * len, len),
        )
    }

    fn backing(stats: &PoolStats) -> (u64, u64) {
        (stats.backing_allocations, stats.backing_frees)
    }

    /// Captures the decode step the recipe launches into a graph, then
    /// replays it once (capture runs nothing). When the pool allocated or
    /// freed during the capture, the graph is thrown away, the step runs
    /// eagerly, and no later step is captured.
    fn capture(
        &mut self,
        ctx: &ExecutionContext<CudaMemory>,
        token: u32,
        pos: usize,
    ) -> Result<(), ModelError> {
        let before = Self::backing(&ctx.scratch.stats());
        self.gpu.begin_capture()?;
        let queued = crate::llama::forward(self, ctx, &[token], pos);
        // End the capture whatever happened, or the stream stays capturing.
        let (graph, report) = self.gpu.end_capture();
        let after = Self::backing(&ctx.scratch.stats());
        if !report.is_clean() || after != before {
            drop(graph);
            self.graph_off = true;
            self.counters.graph_fallbacks += 1;
            self.gpu.synchronize()?;
            crate::llama::forward(self, ctx, &[token], pos)?;
            self.counters.eager_decode_steps += 1;
            return Ok(());
        }
        queued?;
        let graph = graph?;
        graph.replay()?;
        self.graph = Some(Captured {
            graph,
            backing: after,
        });
        self.counters.captures += 1;
        self.counters.replayed_decode_steps += 1;
        Ok(())
    }
}

impl CudaBackend {
    /// `model` on `gpu`, its temporaries leased from `scratch` (a pool on
    /// `gpu.memory()`); the weights are uploaded here.
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Checkpoint,
        scratch: Pool<CudaMemory>,
        options: CudaOptions,
    ) -> Result<Self, ModelError> {
        let device = Cuda::new(gpu, model, scratch.strategy_name(), options)?;
        Ok(Llama::on(device, scratch))
    }

    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        self.device.gpu()
    }

    /// How the backend runs.
    pub fn options(&self) -> &CudaOptions {
        self.device.options()
    }

    /// Eager and replayed decode steps, captures and fallbacks, so far.
    pub fn counters(&self) -> CudaCounters {
        self.device.counters()
    }

    /// Device bytes held outside the pool for the whole run.
    pub fn persistent_device_bytes(&self) -> usize {
        self.device.persistent_device_bytes()
    }
}

impl Device for Cuda {
    type Memory = CudaMemory;

    fn config(&self) -> &Config {
        &self.config
    }

    fn embed(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        tokens: &[u32],
    ) -> Result<(), ModelError> {
        // The ids were staged in `params` before the step (a replayed
        // graph reads new ones from there).
        let (n, dim) = (tokens.len(), self.config.dim);
        let table = self.weights(self.layout.token_embedding.clone());
        let ids = self.params.slice(1, n);
        let mut x = self.x.slice(0, n * dim);
        self.gpu.kernels().embed(&table, &ids, &mut x, dim)?;
        Ok(())
    }

    fn rms_norm(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        norm: Norm,
        rows: Range<usize>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let dim = self.config.dim;
        let weight = self.weights(self.layout.norm(norm, self.config.n_layers));
        let x = self.x.slice(rows.start * dim, rows.len() * dim);
        self.gpu
            .kernels()
            .rms_norm(&x, &weight, &mut DeviceSlice::of(out))?;
        Ok(())
    }

    fn project(
        &mut self,
        ctx: &ExecutionContext<CudaMemory>,
        x: &Buf<'_, Self>,
        layer: usize,
        matrix: Matrix,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let range = self.layout.matrix(matrix, layer, self.config.n_layers);
        let k = matrix.k(&self.config);
        let Cuda { weights, blas, .. } = self;
        let w = weights.slice(range.start, range.len());
        product(ctx, blas, x, &w, k, &mut DeviceSlice::of(out))
    }

    fn rope_table(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        step: Step,
        table: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let pos = self.params.slice(0, 1);
        self.gpu.kernels().rope_table(
            &mut DeviceSlice::of(table),
            &pos,
            self.config.head_dim(),
            step.n_tokens,
        )?;
        Ok(())
    }

    fn apply_rope(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        _step: Step,
        table: &Buf<'_, Self>,
        q: &mut Buf<'_, Self>,
        k: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        self.gpu.kernels().apply_rope(
            &mut DeviceSlice::of(q),
            &mut DeviceSlice::of(k),
            &DeviceSlice::of(table),
            &self.heads(),
        )?;
        Ok(())
    }

    fn kv_append(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        layer: usize,
        _step: Step,
        k: &Buf<'_, Self>,
        v: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let kv_dim = self.config.kv_dim();
        let pos = self.params.slice(0, 1);
        let (mut keys, mut values) = self.layer_cache(layer);
        self.gpu.kernels().kv_append(
            &mut keys,
            &mut values,
            &DeviceSlice::of(k),
            &DeviceSlice::of(v),
            &pos,
            kv_dim,
        )?;
        Ok(())
    }

    fn attention(
        &mut self,
        ctx: &ExecutionContext<CudaMemory>,
        layer: usize,
        step: Step,
        q: &Buf<'_, Self>,
        out: &mut Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let c = self.config;
        let n = step.n_tokens;
        // One query's scores span the whole context, so a captured decode
        // step serves every position; a block's span its last position.
        // The kernel reads the real position from the device either way.
        let stride = if n == 1 { c.seq_len } else { step.pos + n };
        let heads = self.heads();
        let pos = self.params.slice(0, 1);
        let (keys, values) = self.layer_cache(layer);
        ctx.scratch.scope(|s| -> Result<(), ModelError> {
            let scores = s.acquire::<f32>(n * c.n_heads * stride, tag!("attn.scratch"))?;
            self.gpu.kernels().attention(
                &DeviceSlice::of(q),
                &keys,
                &values,
                &mut DeviceSlice::of(out),
                &mut DeviceSlice::of(&scores),
                &pos,
                &heads,
                stride,
            )?;
            Ok(())
        })
    }

    fn swiglu(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        gate: &mut Buf<'_, Self>,
        up: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        self.gpu
            .kernels()
            .swiglu(&mut DeviceSlice::of(gate), &DeviceSlice::of(up))?;
        Ok(())
    }

    fn residual_add(
        &mut self,
        _ctx: &ExecutionContext<CudaMemory>,
        delta: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let mut x = self.x.slice(0, delta.len());
        self.gpu
            .kernels()
            .residual_add(&mut x, &DeviceSlice::of(delta))?;
        Ok(())
    }

    fn classify(
        &mut self,
        ctx: &ExecutionContext<CudaMemory>,
        x: &Buf<'_, Self>,
    ) -> Result<(), ModelError> {
        let range = self.layout.wcls.clone();
        let dim = self.config.dim;
        let Cuda {
            weights,
            blas,
            logits_device,
            ..
        } = self;
        let w = weights.slice(range.start, range.len());
        product(ctx, blas, x, &w, dim, &mut logits_device.view_mut())
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn reset_cache(&mut self) {
        // Nothing to clear: a step reads only the rows its prompt wrote
        // (positions up to its own), so stale rows are never seen.
    }

    fn run_step(
        &mut self,
        ctx: &ExecutionContext<CudaMemory>,
        tokens: &[u32],
        pos: usize,
    ) -> Result<(), ModelError> {
        // Checked here too: the kernels trust the staged position.
        crate::llama::check_step(&self.config, tokens, pos)?;
        let n = tokens.len();
        if n == 0 {
            return Ok(());
        }
        // The step's position and ids, where the kernels read them. The
        // copy is staged before it returns and ordered before the step.
        self.staging[0] = pos as i32;
        for (slot, &token) in self.staging[1..=n].iter_mut().zip(tokens) {
            *slot = token as i32;
        }
        self.params.upload(0, &self.staging[..=n])?;
        if self.options.graph && !self.graph_off && n == 1 {
            let backing = Self::backing(&ctx.scratch.stats());
            match &self.graph {
                Some(captured) if captured.backing == backing => {
                    captured.graph.replay()?;
                    self.counters.replayed_decode_steps += 1;
                }
                // The first decode step runs eagerly: it is the one a
                // planned pool measures, and the one that warms the others.
                _ if self.counters.eager_decode_steps == 0 => {
                    self.graph = None;
                    crate::llama::forward(self, ctx, tokens, pos)?;
                    self.counters.eager_decode_steps += 1;
                }
                // No graph yet, or the pool's memory changed since: capture.
                _ => {
                    self.graph = None;
                    self.capture(ctx, tokens[0], pos)?;
                }
            }
        } else {
            crate::llama::forward(self, ctx, tokens, pos)?;
            if n == 1 {
                self.counters.eager_decode_steps += 1;
            }
        }
        // The download waits for the step; then any error a drop recorded.
        self.logits_device.download(0, &mut self.logits)?;
        self.gpu.check_recorded()?;
        Ok(())
    }
}

/// `out = x · Wᵀ` through the device's matmul library, with a workspace
/// leased for the product under `matmul.scratch`.
fn product(
    ctx: &ExecutionContext<CudaMemory>,
    blas: &mut Blas,
    x: &Buf<'_, Cuda>,
    w: &DeviceSlice<'_, f32>,
    k: usize,
    out: &mut DeviceSlice<'_, f32>,
) -> Result<(), ModelError> {
    ctx.scratch.scope(|s| -> Result<(), ModelError> {
        let workspace = s.acquire::<u8>(blas.workspace_lease_bytes(), tag!("matmul.scratch"))?;
        blas.project(&DeviceSlice::of(x), w, k, out, &DeviceSlice::of(&workspace))?;
        Ok(())
    })
}
