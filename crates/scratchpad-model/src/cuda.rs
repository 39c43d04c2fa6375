//! [`CudaBackend`]: the model on a CUDA device, with the NVRTC kernels of
//! `scratchpad-cuda` and cuBLAS or cuBLASLt for the matrix products.
//!
//! Persistent state (the weights, uploaded once; the KV cache; the
//! residual stream; the logits; the step's position and token ids) lives in
//! device buffers owned here. Every temporary, the matmul workspace
//! included, is a lease from the device pool, one scope per layer, as on
//! the CPU.
//!
//! With [`CudaOptions::graph`], the decode step is captured once into a CUDA
//! graph and replayed: the kernels read the position and token id from
//! device memory written before each replay, and the attention scores are
//! leased for the whole context, so one graph serves every position. The
//! graph holds the addresses of the captured step's leases, so capture is
//! refused on strategies that may hand later steps other addresses, and the
//! graph is dropped and captured again whenever the pool allocates or
//! frees device memory after the capture.

use std::ops::Range;
use std::sync::Arc;

use scratchpad::{ExecutionContext, Pool, PoolStats, tag};
use scratchpad_cuda::{
    Blas, CudaMemory, DEFAULT_WORKSPACE_BYTES, DeviceBuffer, DeviceSlice, Gpu, Heads, Matmul,
    StepGraph, WORKSPACE_ALIGN,
};

use crate::{Backend, Checkpoint, Config, Layout, ModelError};

/// Strategies whose lease addresses repeat from one decode step to the next
/// once warm, so a captured graph's addresses stay theirs: `planned` serves
/// fixed offsets of one slab, `arena` bumps from the start of the same
/// chunk after each scope, `workspace` keeps one buffer per call site.
pub const GRAPH_STRATEGIES: [&str; 3] = ["planned", "arena", "workspace"];

/// `Ok` when a decode step on `strategy` may be captured into a CUDA graph
/// ([`GRAPH_STRATEGIES`]); the error to report otherwise.
pub fn check_graph_strategy(strategy: &str) -> Result<(), ModelError> {
    if GRAPH_STRATEGIES.contains(&strategy) {
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
    /// Bytes of the matmul workspace leased each step.
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
}

/// The Llama forward pass on a CUDA device.
pub struct CudaBackend {
    gpu: Arc<Gpu>,
    ctx: ExecutionContext<CudaMemory>,
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
    counters: CudaCounters,
}

impl CudaBackend {
    /// The model on `gpu`, its temporaries leased from `scratch` (a pool
    /// on `gpu.memory()`); the weights are uploaded here.
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Checkpoint,
        scratch: Pool<CudaMemory>,
        options: CudaOptions,
    ) -> Result<Self, ModelError> {
        if options.graph {
            check_graph_strategy(scratch.strategy_name())?;
        }
        if options.workspace_bytes == 0 {
            return Err(ModelError::InvalidOption {
                option: "workspace bytes",
                reason: "the matmul workspace must not be empty".into(),
            });
        }
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
        let backend = CudaBackend {
            ctx: ExecutionContext::new(scratch),
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
            blas: gpu.blas(options.matmul, options.tf32)?,
            options,
            graph: None,
            counters: CudaCounters::default(),
            gpu,
        };
        backend.gpu.synchronize()?;
        Ok(backend)
    }

    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// How the backend runs.
    pub fn options(&self) -> &CudaOptions {
        &self.options
    }

    /// Eager and replayed decode steps, and captures, so far.
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

    fn backing(stats: &PoolStats) -> (u64, u64) {
        (stats.backing_allocations, stats.backing_frees)
    }

    /// Launches the step's kernels and products on the stream (eagerly, or
    /// into a graph while capturing). Nothing here waits for the device or
    /// copies from the host, so it can be captured.
    fn enqueue(&mut self, n: usize, pos: usize) -> Result<(), ModelError> {
        let CudaBackend {
            gpu,
            ctx,
            config: c,
            layout,
            weights,
            keys,
            values,
            x,
            logits_device,
            params,
            blas,
            options,
            ..
        } = self;
        let k = gpu.kernels();
        let c = *c;
        let (dim, kv_dim, hidden) = (c.dim, c.kv_dim(), c.hidden_dim);
        let heads = Heads {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim(),
        };
        // One query's scores span the whole context, so a captured decode
        // step serves every position; a block's span its last position.
        // The kernel reads the real length from the device either way.
        let stride = if n == 1 { c.seq_len } else { pos + n };
        let cache_len = c.seq_len * kv_dim;
        let params = params.view();
        let (pos_v, tokens_v) = (params.range(0, 1), params.range(1, n));
        let weights = weights.view();
        let tensor = |range: &Range<usize>, l: usize| {
            let per_layer = range.len() / c.n_layers;
            weights.range(range.start + l * per_layer, per_layer)
        };
        let whole = |range: &Range<usize>| weights.range(range.start, range.len());
        let mut x = x.slice(0, n * dim);
        k.embed(&whole(&layout.token_embedding), &tokens_v, &mut x, dim)?;
        let (keys, values) = (keys.view(), values.view());
        let workspace_bytes = options.workspace_bytes + WORKSPACE_ALIGN;
        ctx.scratch.scope(|s| -> Result<(), ModelError> {
            let workspace = s.acquire::<u8>(workspace_bytes, tag!("matmul.workspace"))?;
            let ws = DeviceSlice::of(&workspace);
            for l in 0..c.n_layers {
                s.scope(|s| -> Result<(), ModelError> {
                    let (mut layer_keys, mut layer_values) = (
                        keys.range(l * cache_len, cache_len),
                        values.range(l * cache_len, cache_len),
                    );
                    // Attention: x += wo · attn(rope(wq·xn), rope(wk·xn), wv·xn).
                    let xb = s.acquire::<f32>(n * dim, tag!("layer.xb"))?;
                    let mut xb_v = DeviceSlice::of(&xb);
                    k.rms_norm(&x, &tensor(&layout.rms_att, l), &mut xb_v)?;
                    let q = s.acquire::<f32>(n * dim, tag!("layer.q"))?;
                    let kk = s.acquire::<f32>(n * kv_dim, tag!("layer.k"))?;
                    let v = s.acquire::<f32>(n * kv_dim, tag!("layer.v"))?;
                    let (mut q_v, mut k_v, mut v_v) = (
                        DeviceSlice::of(&q),
                        DeviceSlice::of(&kk),
                        DeviceSlice::of(&v),
                    );
                    blas.project(&xb_v, &tensor(&layout.wq, l), dim, &mut q_v, &ws)?;
                    blas.project(&xb_v, &tensor(&layout.wk, l), dim, &mut k_v, &ws)?;
                    blas.project(&xb_v, &tensor(&layout.wv, l), dim, &mut v_v, &ws)?;
                    k.rope(&mut q_v, &mut k_v, &pos_v, &heads)?;
                    k.kv_append(
                        &mut layer_keys,
                        &mut layer_values,
                        &k_v,
                        &v_v,
                        &pos_v,
                        kv_dim,
                    )?;
                    drop((kk, v));
                    let att = s.acquire::<f32>(n * dim, tag!("layer.att"))?;
                    let scores = s.acquire::<f32>(n * c.n_heads * stride, tag!("attn.scores"))?;
                    let mut att_v = DeviceSlice::of(&att);
                    k.attention(
                        &q_v,
                        &layer_keys,
                        &layer_values,
                        &mut att_v,
                        &mut DeviceSlice::of(&scores),
                        &pos_v,
                        &heads,
                        stride,
                    )?;
                    drop((scores, q));
                    blas.project(&att_v, &tensor(&layout.wo, l), dim, &mut xb_v, &ws)?;
                    drop(att);
                    k.residual_add(&mut x, &xb_v)?;
                    // Feed-forward: x += w2 · (silu(w1·xn) ⊙ w3·xn).
                    k.rms_norm(&x, &tensor(&layout.rms_ffn, l), &mut xb_v)?;
                    let hb = s.acquire::<f32>(n * hidden, tag!("layer.hb"))?;
                    let hb2 = s.acquire::<f32>(n * hidden, tag!("layer.hb2"))?;
                    let (mut hb_v, mut hb2_v) = (DeviceSlice::of(&hb), DeviceSlice::of(&hb2));
                    blas.project(&xb_v, &tensor(&layout.w1, l), dim, &mut hb_v, &ws)?;
                    blas.project(&xb_v, &tensor(&layout.w3, l), dim, &mut hb2_v, &ws)?;
                    k.swiglu(&mut hb_v, &hb2_v)?;
                    drop(hb2);
                    blas.project(&hb_v, &tensor(&layout.w2, l), hidden, &mut xb_v, &ws)?;
                    k.residual_add(&mut x, &xb_v)?;
                    Ok(())
                })?;
            }
            let xn = s.acquire::<f32>(dim, tag!("final.norm"))?;
            let mut xn_v = DeviceSlice::of(&xn);
            k.rms_norm(
                &x.range((n - 1) * dim, dim),
                &whole(&layout.rms_final),
                &mut xn_v,
            )?;
            blas.project(
                &xn_v,
                &whole(&layout.wcls),
                dim,
                &mut logits_device.view_mut(),
                &ws,
            )?;
            Ok(())
        })
    }

    /// Captures the step [`CudaBackend::enqueue`] would launch into a graph,
    /// then replays it once (capture does not run anything).
    fn capture(&mut self, pos: usize) -> Result<(), ModelError> {
        let before = Self::backing(&self.ctx.scratch.stats());
        self.gpu.begin_capture()?;
        let queued = self.enqueue(1, pos);
        // End the capture whatever happened, or the stream stays capturing.
        let graph = self.gpu.end_capture();
        queued?;
        let graph = graph?;
        let after = Self::backing(&self.ctx.scratch.stats());
        if after.1 != before.1 {
            // A free during capture would have synchronised the stream and
            // invalidated the capture; this cannot pass silently.
            return Err(ModelError::GraphNeedsStableAddresses {
                strategy: self.ctx.scratch.strategy_name().to_string(),
            });
        }
        graph.replay()?;
        self.graph = Some(Captured {
            graph,
            backing: after,
        });
        self.counters.captures += 1;
        Ok(())
    }
}

impl Backend for CudaBackend {
    type Memory = CudaMemory;

    fn config(&self) -> &Config {
        &self.config
    }

    fn scratch(&self) -> &Pool<CudaMemory> {
        &self.ctx.scratch
    }

    fn forward_block(&mut self, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
        let n = tokens.len();
        // The step's position and ids, where the kernels read them. The
        // copy is staged before it returns and ordered before the step.
        self.staging[0] = pos as i32;
        for (slot, &token) in self.staging[1..=n].iter_mut().zip(tokens) {
            *slot = token as i32;
        }
        self.params.upload(0, &self.staging[..=n])?;
        if self.options.graph && n == 1 {
            let backing = Self::backing(&self.ctx.scratch.stats());
            match &self.graph {
                Some(captured) if captured.backing == backing => {
                    captured.graph.replay()?;
                    self.counters.replayed_decode_steps += 1;
                }
                // The first decode step runs eagerly: it is the one a
                // planned pool measures, and the one that warms the others.
                _ if self.counters.eager_decode_steps == 0 => {
                    self.graph = None;
                    self.enqueue(1, pos)?;
                    self.counters.eager_decode_steps += 1;
                }
                // No graph yet, or the pool's memory changed since: capture.
                _ => {
                    self.graph = None;
                    self.capture(pos)?;
                    self.counters.replayed_decode_steps += 1;
                }
            }
        } else {
            self.enqueue(n, pos)?;
            if n == 1 {
                self.counters.eager_decode_steps += 1;
            }
        }
        self.logits_device.download(0, &mut self.logits)?;
        Ok(())
    }

    fn logits(&self) -> &[f32] {
        &self.logits
    }

    fn reset_cache(&mut self) {
        // Nothing to clear: a step reads only the rows its prompt wrote
        // (positions up to its own), so stale rows are never seen.
    }
}
