//! Attention and the KV cache against an f64 reference.

use scratchpad_cpu::{Attention, Isa, KvCache, attention};

use crate::support::{check, context, random, with_threads};

/// Causal GQA attention in f64, with Σ_t |p_t v_t| as each output's scale.
fn reference(p: &Attention, q: &[f32], keys: &[f32], values: &[f32]) -> Vec<(f64, f64)> {
    let (dim, kv_dim) = (p.n_heads * p.head_dim, p.n_kv_heads * p.head_dim);
    let mut out = vec![(0.0, 0.0); p.n_queries * dim];
    for i in 0..p.n_queries {
        for h in 0..p.n_heads {
            let kvh = h / (p.n_heads / p.n_kv_heads);
            let qv = &q[i * dim + h * p.head_dim..][..p.head_dim];
            let len = p.pos + i + 1;
            let scores: Vec<f64> = (0..len)
                .map(|t| {
                    let kv = &keys[t * kv_dim + kvh * p.head_dim..][..p.head_dim];
                    qv.iter()
                        .zip(kv)
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum::<f64>()
                        / (p.head_dim as f64).sqrt()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
            let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for d in 0..p.head_dim {
                let (mut value, mut scale) = (0.0, 0.0);
                for (t, s) in scores.iter().enumerate() {
                    let term =
                        (s - max).exp() / sum * values[t * kv_dim + kvh * p.head_dim + d] as f64;
                    value += term;
                    scale += term.abs();
                }
                out[i * dim + h * p.head_dim + d] = (value, scale);
            }
        }
    }
    out
}

#[test]
fn attention_matches_the_reference_for_one_query_and_blocks() {
    with_threads(|threads| {
        let ctx = context();
        for (n_heads, n_kv_heads, head_dim) in [
            (6, 6, 48),
            (8, 4, 8),
            (4, 1, 7),
            (1, 1, 65),
            (3, 1, 16),
            (5, 5, 32),
            (4, 2, 64),
            (3, 3, 96),
            (2, 1, 128),
        ] {
            for (pos, n_queries) in [(0, 1), (6, 1), (62, 1), (255, 1), (0, 7), (0, 63), (30, 35)] {
                let p = Attention {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    pos,
                    n_queries,
                    isa: Isa::Portable,
                };
                let kv_dim = n_kv_heads * head_dim;
                let ctx_len = pos + n_queries;
                let mut cache = KvCache::new(2, 300, kv_dim);
                cache.append(
                    1,
                    0,
                    &random(ctx_len * kv_dim, 3),
                    &random(ctx_len * kv_dim, 4),
                );
                let q = random(n_queries * n_heads * head_dim, 5);
                let (keys, values) = (cache.keys(1, ctx_len), cache.values(1, ctx_len));
                let expected = reference(&p, &q, keys, values);
                for isa in Isa::supported() {
                    let p = Attention { isa, ..p };
                    let mut out = vec![f32::NAN; q.len()];
                    attention(&ctx, &p, &q, keys, values, &mut out).unwrap();
                    check(
                        &format!("attention {p:?} {threads} threads"),
                        &out,
                        &expected,
                    );
                }
            }
        }
        assert_eq!(ctx.scratch.stats().live_bytes, 0);
    });
}

/// A decode step's attention is the last row of the block that ends at its
/// position, bit for bit, on every path: the one-query kernels for heads of
/// a known width sum what the block's loops sum, in the same order.
#[test]
fn one_query_gives_the_last_row_of_a_block_exactly() {
    with_threads(|threads| {
        let ctx = context();
        for (n_heads, n_kv_heads, head_dim) in [(6, 6, 48), (4, 2, 64), (2, 1, 128), (3, 3, 16)] {
            let (dim, kv_dim, len) = (n_heads * head_dim, n_kv_heads * head_dim, 77);
            let (keys, values) = (random(len * kv_dim, 6), random(len * kv_dim, 7));
            let q = random(len * dim, 8);
            for isa in Isa::supported() {
                let block = Attention {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    pos: 0,
                    n_queries: len,
                    isa,
                };
                let mut all = vec![f32::NAN; len * dim];
                attention(&ctx, &block, &q, &keys, &values, &mut all).unwrap();
                let one = Attention {
                    pos: len - 1,
                    n_queries: 1,
                    ..block
                };
                let mut last = vec![f32::NAN; dim];
                attention(&ctx, &one, &q[(len - 1) * dim..], &keys, &values, &mut last).unwrap();
                assert!(
                    last.iter()
                        .zip(&all[(len - 1) * dim..])
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{one:?}, {threads} threads: decode differs from the block's last row"
                );
            }
        }
    });
}

#[test]
fn the_kv_cache_stores_and_resets() {
    let kv_dim = 12;
    let mut cache = KvCache::new(3, 10, kv_dim);
    let (k, v) = (random(5 * kv_dim, 1), random(5 * kv_dim, 2));
    cache.append(2, 3, &k, &v);
    assert_eq!(&cache.keys(2, 8)[3 * kv_dim..], &k[..]);
    assert_eq!(&cache.values(2, 8)[3 * kv_dim..], &v[..]);
    assert!(
        cache.keys(1, 10).iter().all(|&x| x == 0.0),
        "other layers untouched"
    );
    cache.reset();
    assert!(cache.keys(2, 10).iter().all(|&x| x == 0.0));
}

#[test]
#[should_panic(expected = "past seq_len")]
fn the_kv_cache_rejects_positions_past_its_length() {
    let mut cache = KvCache::new(1, 4, 2);
    cache.append(0, 3, &[0.0; 4], &[0.0; 4]);
}
