//! RoPE against an f64 reference of llama2.c's rotation.

use scratchpad_cpu::{Rope, rope};

use crate::support::{check, context, random};

fn reference(v: &[f32], head_dim: usize, pos: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(v.len());
    for (i, pair) in v.chunks(2).enumerate() {
        let pair_idx = i % (head_dim / 2);
        let theta = 1.0 / 10000f64.powf((2 * pair_idx) as f64 / head_dim as f64);
        let (c, s) = ((pos as f64 * theta).cos(), (pos as f64 * theta).sin());
        let (a, b) = (pair[0] as f64, pair[1] as f64);
        out.push((a * c - b * s, (a * c).abs() + (b * s).abs()));
        out.push((a * s + b * c, (a * s).abs() + (b * c).abs()));
    }
    out
}

#[test]
fn rope_rotates_pairs_at_each_position() {
    let ctx = context();
    for (n_heads, n_kv_heads, head_dim) in [(6, 6, 48), (8, 4, 8), (1, 1, 2), (3, 1, 64)] {
        for (pos, n_tokens) in [(0, 1), (7, 1), (511, 1), (0, 65), (100, 7)] {
            let (dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);
            let (q0, k0) = (random(n_tokens * dim, 1), random(n_tokens * kv_dim, 2));
            let (mut q, mut k) = (q0.clone(), k0.clone());
            rope(
                &ctx,
                &Rope {
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    pos,
                    n_tokens,
                },
                &mut q,
                &mut k,
            )
            .unwrap();
            for t in 0..n_tokens {
                let what = format!("rope {n_heads}/{n_kv_heads}x{head_dim} pos {}", pos + t);
                check(
                    &what,
                    &q[t * dim..(t + 1) * dim],
                    &reference(&q0[t * dim..(t + 1) * dim], head_dim, pos + t),
                );
                check(
                    &what,
                    &k[t * kv_dim..(t + 1) * kv_dim],
                    &reference(&k0[t * kv_dim..(t + 1) * kv_dim], head_dim, pos + t),
                );
            }
        }
    }
    assert_eq!(ctx.scratch.stats().live_bytes, 0);
    assert!(
        ctx.scratch
            .tag_stats()
            .iter()
            .any(|t| t.name == "rope.table")
    );
}
