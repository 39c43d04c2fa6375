//! Causal grouped-query attention over the KV cache: for query `i` at
//! position `p = pos + i` and head `h` (reading KV head `h / (n_heads /
//! n_kv_heads)`), `out = Σ_{t ≤ p} softmax_t(q·k_t / √head_dim) v_t`.
//! Scores and softmax rows live in one lease split per head, heads run in
//! parallel; a block of queries (prefill) writes head-major into a second
//! lease that is then transposed into the token-major output.

use ndarray::{ArrayView3, ArrayViewMut3};
use rayon::prelude::*;
use scratchpad::{ExecutionContext, HostMemory, ScratchError, tag};

use crate::softmax::softmax;

/// Shape of an [`attention`]: `n_queries` queries at positions
/// `pos..pos + n_queries`, attending to cache positions `0..=` their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attention {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads; divides `n_heads`.
    pub n_kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// Position of the first query.
    pub pos: usize,
    /// Queries in the block (1 when decoding).
    pub n_queries: usize,
}

/// The scratch an [`attention`] takes, in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionScratch {
    /// Scores and probabilities (`attn.scores`): `n_heads × n_queries ×
    /// (pos + n_queries)`.
    pub scores: usize,
    /// Head-major outputs of a block (`attn.heads_out`); 0 for one query.
    pub heads_out: usize,
}

/// Work (multiply-adds) below which attention stays on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 15;

impl Attention {
    fn ctx_len(&self) -> usize {
        self.pos + self.n_queries
    }
}

/// What [`attention`] leases for `params`.
pub fn attention_scratch(params: &Attention) -> AttentionScratch {
    let Attention {
        n_heads,
        head_dim,
        n_queries,
        ..
    } = *params;
    AttentionScratch {
        scores: n_heads * n_queries * params.ctx_len(),
        heads_out: if n_queries == 1 {
            0
        } else {
            n_heads * n_queries * head_dim
        },
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Attention of `q` (`n_queries × n_heads × head_dim`) over `keys` and
/// `values` (cache rows `0..pos + n_queries` of `n_kv_heads × head_dim`),
/// into `out` (`n_queries × n_heads × head_dim`).
///
/// # Panics
///
/// When the slices do not match the shape or `n_kv_heads` does not divide
/// `n_heads`.
pub fn attention(
    ctx: &ExecutionContext<HostMemory>,
    params: &Attention,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    out: &mut [f32],
) -> Result<(), ScratchError> {
    let Attention {
        n_heads,
        n_kv_heads,
        head_dim,
        pos,
        n_queries,
    } = *params;
    assert!(
        n_kv_heads > 0 && n_heads % n_kv_heads == 0,
        "attention: n_kv_heads must divide n_heads"
    );
    let (dim, kv_dim, ctx_len) = (n_heads * head_dim, n_kv_heads * head_dim, params.ctx_len());
    assert_eq!(
        q.len(),
        n_queries * dim,
        "attention: q must hold n_queries × n_heads × head_dim"
    );
    assert_eq!(
        out.len(),
        n_queries * dim,
        "attention: out must hold n_queries × n_heads × head_dim"
    );
    assert!(
        keys.len() >= ctx_len * kv_dim && values.len() >= ctx_len * kv_dim,
        "attention: the cache must hold pos + n_queries positions"
    );
    if n_queries == 0 || head_dim == 0 {
        return Ok(());
    }
    let group = n_heads / n_kv_heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    // One head: its queries' scores into `scores` (n_queries × ctx_len) and
    // outputs into `head_out` (n_queries × head_dim).
    let head = |h: usize, scores: &mut [f32], head_out: &mut [f32]| {
        let kv_offset = (h / group) * head_dim;
        for i in 0..n_queries {
            let len = pos + i + 1;
            let qv = &q[i * dim + h * head_dim..][..head_dim];
            let row = &mut scores[i * ctx_len..][..len];
            for (t, s) in row.iter_mut().enumerate() {
                *s = dot(qv, &keys[t * kv_dim + kv_offset..][..head_dim]) * scale;
            }
            softmax(row);
            let o = &mut head_out[i * head_dim..][..head_dim];
            o.fill(0.0);
            for (t, &p) in row.iter().enumerate() {
                for (od, &vd) in o
                    .iter_mut()
                    .zip(&values[t * kv_dim + kv_offset..][..head_dim])
                {
                    *od += p * vd;
                }
            }
        }
    };
    let sizes = attention_scratch(params);
    let parallel = rayon::current_num_threads() > 1
        && n_heads > 1
        && sizes.scores * head_dim >= PARALLEL_MIN_WORK;
    ctx.scratch.scope(|s| {
        let mut scores = s.acquire::<f32>(sizes.scores, tag!("attn.scores"))?;
        let mut heads_out = s.acquire::<f32>(sizes.heads_out, tag!("attn.heads_out"))?;
        // One query: heads are contiguous in `out` already.
        let targets: &mut [f32] = if n_queries == 1 { out } else { &mut heads_out };
        if parallel {
            scores
                .par_chunks_mut(n_queries * ctx_len)
                .zip(targets.par_chunks_mut(n_queries * head_dim))
                .enumerate()
                .for_each(|(h, (sc, o))| head(h, sc, o));
        } else {
            for (h, (sc, o)) in scores
                .chunks_mut(n_queries * ctx_len)
                .zip(targets.chunks_mut(n_queries * head_dim))
                .enumerate()
            {
                head(h, sc, o);
            }
        }
        if n_queries > 1 {
            let from = ArrayView3::from_shape((n_heads, n_queries, head_dim), &heads_out[..])
                .expect("sized above");
            let mut to = ArrayViewMut3::from_shape((n_queries, n_heads, head_dim), out)
                .expect("checked above");
            to.assign(&from.permuted_axes([1, 0, 2]));
        }
        Ok(())
    })
}
