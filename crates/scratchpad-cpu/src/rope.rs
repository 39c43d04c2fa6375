//! Rotary position embedding on interleaved pairs `(2i, 2i + 1)` of each
//! head, with llama2.c's frequencies `θ_i = 10000^(-2i / head_dim)`:
//! `(a, b) ← (a cos pθ_i − b sin pθ_i, a sin pθ_i + b cos pθ_i)` at position
//! `p`. The table of `e^{ipθ}` for the positions at hand is a `Complex32`
//! lease.

use num_complex::Complex32;
use scratchpad::{ExecutionContext, HostMemory, ScratchError, ScratchReq, tag};

/// Shape of a [`rope`] over a block of `n_tokens` tokens at positions
/// `pos..pos + n_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rope {
    /// Query heads per token.
    pub n_heads: usize,
    /// Key heads per token.
    pub n_kv_heads: usize,
    /// Dimension of one head (even).
    pub head_dim: usize,
    /// Position of the first token.
    pub pos: usize,
    /// Tokens in the block.
    pub n_tokens: usize,
}

/// Rotations in the table of a block: `n_tokens * head_dim / 2`.
pub fn rope_table_len(params: &Rope) -> usize {
    params.n_tokens * params.head_dim / 2
}

/// What [`rope`] leases: the table of [`rope_table_len`] rotations.
pub fn rope_scratch(params: &Rope) -> ScratchReq {
    ScratchReq::new::<Complex32>(rope_table_len(params))
}

/// The rotation `e^{i·pos·θ_pair}`, computed in f64 and rounded.
pub fn rope_rotation(pos: usize, pair: usize, head_dim: usize) -> Complex32 {
    let theta = 1.0 / 10000f64.powf((2 * pair) as f64 / head_dim as f64);
    let angle = pos as f64 * theta;
    Complex32::new(angle.cos() as f32, angle.sin() as f32)
}

/// Fills `table` (`n_tokens × head_dim / 2`, [`rope_table_len`])
/// with the rotations of positions `pos..pos + n_tokens`. The table depends
/// only on the positions, so a forward step fills it once for all layers.
///
/// # Panics
///
/// When `table` is not `rope_table_len(params)` long.
pub fn rope_table(params: &Rope, table: &mut [Complex32]) {
    assert_eq!(
        table.len(),
        rope_table_len(params),
        "rope_table: the table must hold n_tokens × head_dim / 2"
    );
    let half = params.head_dim / 2;
    if half == 0 {
        return;
    }
    for (t, row) in table.chunks_exact_mut(half).enumerate() {
        for (pair, r) in row.iter_mut().enumerate() {
            *r = rope_rotation(params.pos + t, pair, params.head_dim);
        }
    }
}

/// Rotates `q` (`n_tokens × n_heads × head_dim`) and `k` (`n_tokens ×
/// n_kv_heads × head_dim`) in place by a table from [`rope_table`].
///
/// # Panics
///
/// When the slices do not match the shape or `head_dim` is odd.
pub fn apply_rope(params: &Rope, table: &[Complex32], q: &mut [f32], k: &mut [f32]) {
    let Rope {
        n_heads,
        n_kv_heads,
        head_dim,
        n_tokens,
        ..
    } = *params;
    assert!(head_dim % 2 == 0, "rope: head_dim must be even");
    assert_eq!(
        q.len(),
        n_tokens * n_heads * head_dim,
        "rope: q must hold n_tokens × n_heads × head_dim"
    );
    assert_eq!(
        k.len(),
        n_tokens * n_kv_heads * head_dim,
        "rope: k must hold n_tokens × n_kv_heads × head_dim"
    );
    assert_eq!(
        table.len(),
        rope_table_len(params),
        "rope: the table must hold n_tokens × head_dim / 2"
    );
    let half = head_dim / 2;
    if n_tokens == 0 || half == 0 {
        return;
    }
    for (t, rot) in table.chunks_exact(half).enumerate() {
        let q_tok = &mut q[t * n_heads * head_dim..(t + 1) * n_heads * head_dim];
        let k_tok = &mut k[t * n_kv_heads * head_dim..(t + 1) * n_kv_heads * head_dim];
        for head in q_tok
            .chunks_exact_mut(head_dim)
            .chain(k_tok.chunks_exact_mut(head_dim))
        {
            for (pair, r) in head.chunks_exact_mut(2).zip(rot) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * r.re - b * r.im;
                pair[1] = a * r.im + b * r.re;
            }
        }
    }
}

/// Rotates `q` and `k` in place: [`rope_table`] into a `Complex32` lease,
/// then [`apply_rope`].
///
/// # Panics
///
/// When the slices do not match the shape or `head_dim` is odd.
pub fn rope(
    ctx: &ExecutionContext<HostMemory>,
    params: &Rope,
    q: &mut [f32],
    k: &mut [f32],
) -> Result<(), ScratchError> {
    ctx.scratch.scope(|s| {
        let mut table = s.acquire::<Complex32>(rope_table_len(params), tag!("rope.table"))?;
        rope_table(params, &mut table);
        apply_rope(params, &table, q, k);
        Ok(())
    })
}
