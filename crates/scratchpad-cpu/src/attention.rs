//! Causal grouped-query attention over the KV cache: for query `i` at
//! position `p = pos + i` and head `h` (reading KV head `h / (n_heads /
//! n_kv_heads)`), `out = Σ_{t ≤ p} softmax_t(q·k_t / √head_dim) v_t`.
//! Scores and softmax rows live in one lease split per head, heads run in
//! parallel; a block of queries (prefill) writes head-major into a second
//! lease that is then transposed into the token-major output. The per-head
//! loops are compiled once per SIMD path.

use ndarray::{ArrayView3, ArrayViewMut3};
use rayon::prelude::*;

use crate::team::Disjoint;
use scratchpad::{ExecutionContext, HostMemory, ScratchError, ScratchReq, tag};

use crate::Isa;
use crate::softmax::{softmax, tree};

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
    /// The SIMD path the per-head loops are compiled for.
    pub isa: Isa,
}

/// The leases of an [`attention`], in f32 elements, both under
/// `attn.scratch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AttentionLeases {
    /// Scores and probabilities: `n_heads × n_queries × (pos + n_queries)`.
    scores: usize,
    /// Head-major outputs of a block; 0 for one query.
    heads_out: usize,
    /// Decode with heads narrower than sixteen: a block of [`KEY_BLOCK`]
    /// key rows transposed, one per worker (at most one per head); else 0.
    keys_t: usize,
}

/// Key rows transposed at a time when heads are narrower than a vector.
const KEY_BLOCK: usize = 16;

/// Work (multiply-adds) below which attention stays on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 15;

impl Attention {
    fn ctx_len(&self) -> usize {
        self.pos + self.n_queries
    }
}

/// What [`attention`] leases for `params`: the scores and, for a block,
/// the head-major outputs, live together.
pub fn attention_scratch(params: &Attention) -> ScratchReq {
    if params.n_queries == 0 || params.head_dim == 0 {
        return ScratchReq::NONE;
    }
    let leases = attention_leases(params);
    ScratchReq::new::<f32>(leases.scores)
        .and(ScratchReq::new::<f32>(leases.heads_out))
        .and(ScratchReq::new::<f32>(leases.keys_t))
}

fn attention_leases(params: &Attention) -> AttentionLeases {
    let Attention {
        n_heads,
        n_kv_heads,
        head_dim,
        n_queries,
        ..
    } = *params;
    AttentionLeases {
        keys_t: if n_queries == 1 && head_dim < 16 {
            n_heads * KEY_BLOCK * n_kv_heads * head_dim
        } else {
            0
        },
        scores: n_heads * n_queries * params.ctx_len(),
        heads_out: if n_queries == 1 {
            0
        } else {
            n_heads * n_queries * head_dim
        },
    }
}

/// A dot product with sixteen lanes of accumulators, which the compiler maps
/// onto the vector width of the function it is inlined into, reduced as a
/// tree (a left-to-right sum of the lanes is a chain of sixteen dependent
/// adds). A head narrower than sixteen (stories260K's 8) goes through eight
/// lanes the same way rather than a serial scalar sum.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n16 = a.len() / 16 * 16;
    let mut acc = [0.0f32; 16];
    for (x, y) in a[..n16].chunks_exact(16).zip(b[..n16].chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let (a, b) = (&a[n16..], &b[n16..]);
    let n8 = a.len() / 8 * 8;
    if n8 == 8 {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let tail: f32 = a[n8..].iter().zip(&b[n8..]).map(|(x, y)| x * y).sum();
    tree(acc, |x, y| x + y) + tail
}

/// `o += p * v`. A head of eight (stories260K) is one fixed-size block, so
/// it compiles to a single vector multiply-add instead of a loop with a
/// runtime trip count and its remainder handling.
#[inline(always)]
fn axpy(o: &mut [f32], p: f32, v: &[f32]) {
    if let (Ok(o8), Ok(v8)) = (<&mut [f32; 8]>::try_from(&mut *o), <&[f32; 8]>::try_from(v)) {
        for i in 0..8 {
            o8[i] += p * v8[i];
        }
        return;
    }
    for (od, &vd) in o.iter_mut().zip(v) {
        *od += p * vd;
    }
}

/// A head's dot product on one SIMD path: sixteen lanes of products summed
/// chunk by chunk, then reduced as [`tree`] reduces them, so every path
/// gives [`dot`]'s numbers. The vector paths take heads of whole multiples
/// of sixteen; the compiler's own vectorisation of [`dot`] at a known
/// width came out as two-float loads (its reduction tree paired lanes).
trait HeadDot: Copy {
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
}

/// [`dot`] as the compiler vectorises it.
#[derive(Clone, Copy)]
struct Portable;

impl HeadDot for Portable {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::HeadDot;

    /// The AVX-512 dot product; made only where the CPU has AVX-512F.
    #[derive(Clone, Copy)]
    pub(super) struct Avx512(());

    impl Avx512 {
        /// # Safety
        ///
        /// The CPU supports AVX-512F.
        pub(super) unsafe fn new() -> Self {
            Avx512(())
        }
    }

    /// `[a0 + a2, a1 + a3]`, then their sum: the last two steps of
    /// [`super::tree`].
    #[inline(always)]
    fn hsum128(s: __m128) -> f32 {
        // SAFETY: SSE is part of the x86-64 baseline.
        unsafe {
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }
    }

    impl HeadDot for Avx512 {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            assert!(a.len() == b.len() && a.len().is_multiple_of(16));
            // SAFETY: `self` exists only where the CPU supports AVX-512F
            // (and so AVX); every load reads sixteen floats within `a`
            // and `b`.
            unsafe {
                let mut acc = _mm512_setzero_ps();
                for c in (0..a.len()).step_by(16) {
                    let p = _mm512_mul_ps(
                        _mm512_loadu_ps(a.as_ptr().add(c)),
                        _mm512_loadu_ps(b.as_ptr().add(c)),
                    );
                    acc = _mm512_add_ps(acc, p);
                }
                let lo = _mm512_castps512_ps256(acc);
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
                let s = _mm256_add_ps(lo, hi);
                hsum128(_mm_add_ps(
                    _mm256_castps256_ps128(s),
                    _mm256_extractf128_ps(s, 1),
                ))
            }
        }
    }

    /// The AVX2 dot product, sixteen lanes as two halves; made only where
    /// the CPU has AVX2.
    #[derive(Clone, Copy)]
    pub(super) struct Avx2(());

    impl Avx2 {
        /// # Safety
        ///
        /// The CPU supports AVX2.
        pub(super) unsafe fn new() -> Self {
            Avx2(())
        }
    }

    impl HeadDot for Avx2 {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            assert!(a.len() == b.len() && a.len().is_multiple_of(16));
            // SAFETY: `self` exists only where the CPU supports AVX2; every
            // load reads eight floats within `a` and `b`.
            unsafe {
                let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                for c in (0..a.len()).step_by(16) {
                    let (pa, pb) = (a.as_ptr().add(c), b.as_ptr().add(c));
                    lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(pa), _mm256_loadu_ps(pb)));
                    hi = _mm256_add_ps(
                        hi,
                        _mm256_mul_ps(_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8))),
                    );
                }
                let s = _mm256_add_ps(lo, hi);
                hsum128(_mm_add_ps(
                    _mm256_castps256_ps128(s),
                    _mm256_extractf128_ps(s, 1),
                ))
            }
        }
    }
}

/// `o = Σ_t p_t v_t` for one head of `HD` floats at `kv_offset` in the
/// value rows: every lane of the head in registers over the positions,
/// where sixteen lanes at a time walked the values `HD / 16` times with one
/// chain of additions each. Each lane is still summed position by position,
/// so the numbers are the same.
#[inline(always)]
fn weighted_sum<const HD: usize>(
    p: &[f32],
    values: &[f32],
    kv_dim: usize,
    kv_offset: usize,
    o: &mut [f32],
) {
    let mut acc = [0.0f32; HD];
    for (t, &pt) in p.iter().enumerate() {
        let v: &[f32; HD] = values[t * kv_dim + kv_offset..][..HD]
            .try_into()
            .expect("a head");
        for i in 0..HD {
            acc[i] += pt * v[i];
        }
    }
    o.copy_from_slice(&acc);
}

/// `$fixed` with `$hd` a constant equal to `$width` when the width is one
/// the loops are compiled for (16, 32, 48, 64, 96 or 128: the Llamas' head
/// sizes that are whole vectors), else `$other`. The one list of those
/// widths, for the one-query and the block paths.
macro_rules! at_fixed_width {
    ($width:expr, $hd:ident => $fixed:expr, _ => $other:expr $(,)?) => {
        match $width {
            16 => {
                const $hd: usize = 16;
                $fixed
            }
            32 => {
                const $hd: usize = 32;
                $fixed
            }
            48 => {
                const $hd: usize = 48;
                $fixed
            }
            64 => {
                const $hd: usize = 64;
                $fixed
            }
            96 => {
                const $hd: usize = 96;
                $fixed
            }
            128 => {
                const $hd: usize = 128;
                $fixed
            }
            _ => $other,
        }
    };
}

/// Everything one head needs, shared by the workers.
#[derive(Clone, Copy)]
struct Heads<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    dim: usize,
    kv_dim: usize,
    ctx_len: usize,
    group: usize,
    head_dim: usize,
    pos: usize,
    n_queries: usize,
    scale: f32,
}

impl Heads<'_> {
    /// Head `h`: its queries' scores into `scores` (n_queries × ctx_len) and
    /// outputs into `out` (n_queries × head_dim).
    #[inline(always)]
    fn run(&self, lanes: impl HeadDot, h: usize, scores: &mut [f32], out: &mut [f32]) {
        let Heads {
            q,
            keys,
            values,
            dim,
            kv_dim,
            ctx_len,
            group,
            head_dim,
            pos,
            n_queries,
            scale,
        } = *self;
        let kv_offset = (h / group) * head_dim;
        // Whole vectors: the SIMD path's dot product (the same sums).
        let wide = head_dim.is_multiple_of(16);
        for i in 0..n_queries {
            let len = pos + i + 1;
            let qv = &q[i * dim + h * head_dim..][..head_dim];
            let row = &mut scores[i * ctx_len..][..len];
            for (t, s) in row.iter_mut().enumerate() {
                let k = &keys[t * kv_dim + kv_offset..][..head_dim];
                *s = if wide { lanes.dot(qv, k) } else { dot(qv, k) } * scale;
            }
            softmax(row);
            let o = &mut out[i * head_dim..][..head_dim];
            at_fixed_width! { head_dim,
                HD => weighted_sum::<HD>(row, values, kv_dim, kv_offset, o),
                _ => {
                    // Sixteen output lanes at a time, accumulated in a
                    // register over every position: summing into the
                    // output row in memory made a chain of store-to-load
                    // round trips per position.
                    for (c, o_chunk) in o.chunks_mut(16).enumerate() {
                        let offset = kv_offset + 16 * c;
                        if let Ok(o16) = <&mut [f32; 16]>::try_from(&mut *o_chunk) {
                            let mut acc = [0.0f32; 16];
                            for (t, &p) in row.iter().enumerate() {
                                let v: &[f32; 16] = values[t * kv_dim + offset..][..16]
                                    .try_into()
                                    .expect("16 floats");
                                for l in 0..16 {
                                    acc[l] += p * v[l];
                                }
                            }
                            *o16 = acc;
                        } else {
                            o_chunk.fill(0.0);
                            for (t, &p) in row.iter().enumerate() {
                                for (od, &vd) in
                                    o_chunk.iter_mut().zip(&values[t * kv_dim + offset..])
                                {
                                    *od += p * vd;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One query (decode) for heads `h0..h0 + n` with positions outermost:
    /// each key and value row is read once, in order, for all the heads
    /// (head by head, the cache was walked `n` times with a stride and ran
    /// at memory latency). `scores` holds the heads' rows (`n × ctx_len`),
    /// `out` their outputs (`n × head_dim`). Heads narrower than sixteen
    /// take their scores from blocks of [`KEY_BLOCK`] key rows transposed
    /// into `keys_t` (`KEY_BLOCK × kv_dim`): sixteen positions per vector,
    /// one multiply-add per dimension, where a dot product per position
    /// spent most of its time reducing a half-empty vector. Heads of a
    /// width `at_fixed_width!` lists go to [`Heads::run_decode_fixed`],
    /// which reads the keys once and the values once per pair of heads.
    #[inline(always)]
    fn run_decode(
        &self,
        lanes: impl HeadDot,
        h0: usize,
        scores: &mut [f32],
        out: &mut [f32],
        keys_t: &mut [f32],
    ) {
        let Heads {
            q,
            keys,
            values,
            kv_dim,
            ctx_len,
            group,
            head_dim,
            pos,
            scale,
            ..
        } = *self;
        let n = out.len() / head_dim;
        let len = pos + 1;
        at_fixed_width! { head_dim,
            HD => return self.run_decode_fixed::<HD>(lanes, h0, scores, out),
            _ => {}
        }
        if head_dim < 16 && keys_t.len() >= KEY_BLOCK * kv_dim {
            let kt = &mut keys_t[..KEY_BLOCK * kv_dim];
            for t0 in (0..len).step_by(KEY_BLOCK) {
                let rows = (len - t0).min(KEY_BLOCK);
                if rows == KEY_BLOCK {
                    // Column by column: contiguous stores from strided
                    // loads, which vectorise as gathers (row by row they
                    // became scatters, several times slower).
                    let block = &keys[t0 * kv_dim..][..KEY_BLOCK * kv_dim];
                    for (c, col) in kt.chunks_exact_mut(KEY_BLOCK).enumerate() {
                        for (l, k) in col.iter_mut().enumerate() {
                            *k = block[l * kv_dim + c];
                        }
                    }
                } else {
                    for (c, col) in kt.chunks_exact_mut(KEY_BLOCK).enumerate() {
                        for (l, k) in col.iter_mut().enumerate() {
                            *k = if l < rows {
                                keys[(t0 + l) * kv_dim + c]
                            } else {
                                0.0
                            };
                        }
                    }
                }
                for j in 0..n {
                    let h = h0 + j;
                    let kv_offset = (h / group) * head_dim;
                    let qh = &q[h * head_dim..][..head_dim];
                    let mut acc = [0.0f32; KEY_BLOCK];
                    for (d, &qd) in qh.iter().enumerate() {
                        let col: &[f32; KEY_BLOCK] = kt[(kv_offset + d) * KEY_BLOCK..][..KEY_BLOCK]
                            .try_into()
                            .expect("a block");
                        for l in 0..KEY_BLOCK {
                            acc[l] += qd * col[l];
                        }
                    }
                    for (s, a) in scores[j * ctx_len + t0..][..rows].iter_mut().zip(acc) {
                        *s = a * scale;
                    }
                }
            }
        } else {
            for t in 0..len {
                let krow = &keys[t * kv_dim..][..kv_dim];
                for j in 0..n {
                    let h = h0 + j;
                    let kv_offset = (h / group) * head_dim;
                    scores[j * ctx_len + t] = dot(
                        &q[h * head_dim..][..head_dim],
                        &krow[kv_offset..][..head_dim],
                    ) * scale;
                }
            }
        }
        for j in 0..n {
            softmax(&mut scores[j * ctx_len..][..len]);
        }
        if head_dim < 16 {
            // Narrow heads: head by head with the output in registers and
            // four positions in flight (position by position, every head's
            // output made a store-to-load round trip per position).
            for (j, o) in out.chunks_exact_mut(head_dim).enumerate() {
                let kv_offset = ((h0 + j) / group) * head_dim;
                let p = &scores[j * ctx_len..][..len];
                let v = |t: usize| &values[t * kv_dim + kv_offset..][..head_dim];
                if let Ok(o8) = <&mut [f32; 8]>::try_from(&mut *o) {
                    let mut acc = [[0.0f32; 8]; 4];
                    let quads = len / 4 * 4;
                    for t in (0..quads).step_by(4) {
                        for (u, a) in acc.iter_mut().enumerate() {
                            let row: &[f32; 8] = v(t + u).try_into().expect("eight");
                            for i in 0..8 {
                                a[i] += p[t + u] * row[i];
                            }
                        }
                    }
                    for (t, &pt) in p.iter().enumerate().skip(quads) {
                        let row: &[f32; 8] = v(t).try_into().expect("eight");
                        for i in 0..8 {
                            acc[0][i] += pt * row[i];
                        }
                    }
                    for i in 0..8 {
                        o8[i] = (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]);
                    }
                } else {
                    o.fill(0.0);
                    for (t, &pt) in p.iter().enumerate() {
                        axpy(o, pt, v(t));
                    }
                }
            }
            return;
        }
        out.fill(0.0);
        for t in 0..len {
            let vrow = &values[t * kv_dim..][..kv_dim];
            for (j, o) in out.chunks_exact_mut(head_dim).enumerate() {
                let p = scores[j * ctx_len + t];
                let kv_offset = ((h0 + j) / group) * head_dim;
                axpy(o, p, &vrow[kv_offset..][..head_dim]);
            }
        }
    }

    /// [`Heads::run_decode`] for heads of `HD` floats, a multiple of
    /// sixteen: with the width known, a score is `HD / 16` vector
    /// multiply-adds and one reduction, and a group of heads keeps its
    /// outputs in registers over every position (a head's width given at
    /// run time compiled to two-float loads and an output summed in
    /// memory: 2.6 times slower at 6 × 48 over 256 positions). The same
    /// sums in the same order as the width-generic loops, so the same
    /// numbers.
    #[inline(always)]
    fn run_decode_fixed<const HD: usize>(
        &self,
        lanes: impl HeadDot,
        h0: usize,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        /// Heads whose outputs are summed together: independent chains of
        /// multiply-adds, each still summed position by position.
        const GROUP: usize = 2;
        let Heads {
            q,
            keys,
            values,
            kv_dim,
            ctx_len,
            group,
            pos,
            scale,
            ..
        } = *self;
        let len = pos + 1;
        let fixed = |s: &[f32]| -> [f32; HD] { s[..HD].try_into().expect("a head") };
        for t in 0..len {
            let krow = &keys[t * kv_dim..][..kv_dim];
            for (j, qh) in q[h0 * HD..][..out.len()].chunks_exact(HD).enumerate() {
                let kh = &krow[((h0 + j) / group) * HD..][..HD];
                scores[j * ctx_len + t] = lanes.dot(qh, kh) * scale;
            }
        }
        for j in 0..out.len() / HD {
            softmax(&mut scores[j * ctx_len..][..len]);
        }
        for (g, o) in out.chunks_mut(GROUP * HD).enumerate() {
            let heads = o.len() / HD;
            let mut acc = [[0.0f32; HD]; GROUP];
            for t in 0..len {
                let vrow = &values[t * kv_dim..][..kv_dim];
                for (u, a) in acc.iter_mut().enumerate().take(heads) {
                    let j = g * GROUP + u;
                    let p = scores[j * ctx_len + t];
                    let v = fixed(&vrow[((h0 + j) / group) * HD..]);
                    for i in 0..HD {
                        a[i] += p * v[i];
                    }
                }
            }
            for (a, o) in acc.iter().zip(o.chunks_exact_mut(HD)) {
                o.copy_from_slice(a);
            }
        }
    }

    /// [`Heads::run_decode`] compiled for `isa`, which the caller checked.
    fn run_decode_on(
        &self,
        isa: Isa,
        h0: usize,
        scores: &mut [f32],
        out: &mut [f32],
        keys_t: &mut [f32],
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `attention` asserted that the CPU supports AVX-512F.
            Isa::Avx512 => unsafe { self.run_decode_avx512(h0, scores, out, keys_t) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `attention` asserted that the CPU supports AVX2 and FMA.
            Isa::Avx2 => unsafe { self.run_decode_avx2(h0, scores, out, keys_t) },
            _ => self.run_decode(Portable, h0, scores, out, keys_t),
        }
    }

    /// # Safety
    ///
    /// The CPU supports AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_decode_avx512(
        &self,
        h0: usize,
        scores: &mut [f32],
        out: &mut [f32],
        keys_t: &mut [f32],
    ) {
        // SAFETY: this function's caller checked that the CPU supports
        // AVX-512F.
        let lanes = unsafe { x86::Avx512::new() };
        self.run_decode(lanes, h0, scores, out, keys_t)
    }

    /// # Safety
    ///
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_decode_avx2(
        &self,
        h0: usize,
        scores: &mut [f32],
        out: &mut [f32],
        keys_t: &mut [f32],
    ) {
        // SAFETY: this function's caller checked that the CPU supports AVX2.
        let lanes = unsafe { x86::Avx2::new() };
        self.run_decode(lanes, h0, scores, out, keys_t)
    }

    /// [`Heads::run`] compiled for `isa`, which the caller checked.
    fn run_on(&self, isa: Isa, h: usize, scores: &mut [f32], out: &mut [f32]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `attention` asserted that the CPU supports AVX-512F.
            Isa::Avx512 => unsafe { self.run_avx512(h, scores, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `attention` asserted that the CPU supports AVX2 and FMA.
            Isa::Avx2 => unsafe { self.run_avx2(h, scores, out) },
            _ => self.run(Portable, h, scores, out),
        }
    }

    /// # Safety
    ///
    /// The CPU supports AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, h: usize, scores: &mut [f32], out: &mut [f32]) {
        // SAFETY: this function's caller checked that the CPU supports
        // AVX-512F.
        let lanes = unsafe { x86::Avx512::new() };
        self.run(lanes, h, scores, out)
    }

    /// # Safety
    ///
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, h: usize, scores: &mut [f32], out: &mut [f32]) {
        // SAFETY: this function's caller checked that the CPU supports AVX2.
        let lanes = unsafe { x86::Avx2::new() };
        self.run(lanes, h, scores, out)
    }
}

/// Attention of `q` (`n_queries × n_heads × head_dim`) over `keys` and
/// `values` (cache rows `0..pos + n_queries` of `n_kv_heads × head_dim`),
/// into `out` (`n_queries × n_heads × head_dim`).
///
/// # Panics
///
/// When the slices do not match the shape, `n_kv_heads` does not divide
/// `n_heads`, or `params.isa` is not supported by this CPU.
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
        isa,
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
    isa.assert_supported();
    if n_queries == 0 || head_dim == 0 {
        return Ok(());
    }
    let scale = 1.0 / (head_dim as f32).sqrt();
    let group = n_heads / n_kv_heads;
    let heads = Heads {
        q,
        keys,
        values,
        dim,
        kv_dim,
        ctx_len,
        group,
        head_dim,
        pos,
        n_queries,
        scale,
    };
    let sizes = attention_leases(params);
    let parallel =
        crate::parts() > 1 && n_heads > 1 && sizes.scores * head_dim >= PARALLEL_MIN_WORK;
    ctx.scratch.scope(|s| {
        let mut scores = s.acquire::<f32>(sizes.scores, tag!("attn.scratch"))?;
        let mut heads_out = s.acquire::<f32>(sizes.heads_out, tag!("attn.scratch"))?;
        let mut keys_t = s.acquire::<f32>(sizes.keys_t, tag!("attn.scratch"))?;
        if n_queries == 1 {
            // One query: heads are contiguous in `out`; each worker takes a
            // contiguous range of heads and reads the cache rows in order.
            let workers = if parallel {
                crate::parts().min(n_heads)
            } else {
                1
            };
            let per_worker = n_heads.div_ceil(workers);
            let (sc_len, o_len) = (per_worker * ctx_len, per_worker * head_dim);
            // One transposed key block per worker.
            let kt_len = sizes.keys_t / n_heads;
            let (scores, out, keys_t) = (
                Disjoint::new(&mut scores),
                Disjoint::new(out),
                Disjoint::new(&mut keys_t),
            );
            crate::run_parts(n_heads.div_ceil(per_worker), |w| {
                // SAFETY: worker `w` takes the `w`-th block of each, so no
                // two workers' ranges overlap.
                let (sc, o, kt) = unsafe {
                    (
                        scores.range(w * sc_len, (w + 1) * sc_len),
                        out.range(w * o_len, (w + 1) * o_len),
                        keys_t.range(w * kt_len, (w + 1) * kt_len),
                    )
                };
                heads.run_decode_on(isa, w * per_worker, sc, o, kt)
            });
            return Ok(());
        }
        let (score_rows, out_rows) = (n_queries * ctx_len, n_queries * head_dim);
        if parallel {
            scores
                .par_chunks_mut(score_rows)
                .zip(heads_out.par_chunks_mut(out_rows))
                .enumerate()
                .for_each(|(h, (sc, o))| heads.run_on(isa, h, sc, o));
        } else {
            for (h, (sc, o)) in scores
                .chunks_mut(score_rows)
                .zip(heads_out.chunks_mut(out_rows))
                .enumerate()
            {
                heads.run_on(isa, h, sc, o);
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
