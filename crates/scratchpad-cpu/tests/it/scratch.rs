//! Every kernel's `*_scratch` twin against what the kernel leases: in a
//! fresh pool, the peak of live bytes over one call is exactly the twin's
//! requirement, at awkward sizes and at one and two threads.

use scratchpad::ScratchReq;
use scratchpad_cpu::{
    Attention, Gemm, Gemv, Isa, Rope, attention, attention_scratch, gemm, gemm_scratch, gemv,
    gemv_scratch, rope, rope_scratch,
};

use crate::support::{context, random, with_threads};

/// The peak of live bytes of one call of `kernel` in a fresh pool.
fn peak(kernel: impl FnOnce(&scratchpad::ExecutionContext<scratchpad::HostMemory>)) -> ScratchReq {
    let ctx = context();
    kernel(&ctx);
    assert_eq!(ctx.scratch.stats().live_bytes, 0, "everything released");
    ScratchReq {
        bytes: ctx.scratch.stats().peak_live_bytes,
    }
}

#[test]
fn gemm_leases_exactly_its_scratch() {
    with_threads(|threads| {
        for isa in Isa::supported() {
            for (m, k, n) in [
                (1, 7, 5),
                (7, 63, 65),
                (33, 288, 288),
                (65, 300, 17),
                (0, 4, 4),
            ] {
                let params = Gemm { m, k, n, isa };
                let (x, w) = (random(m * k, 1), random(n * k, 2));
                let mut y = vec![0.0; m * n];
                let got = peak(|ctx| gemm(ctx, &params, &x, &w, &mut y).unwrap());
                assert_eq!(
                    got,
                    gemm_scratch(&params),
                    "{params:?} at {threads} threads"
                );
            }
        }
    });
}

#[test]
fn gemv_leases_nothing() {
    let params = Gemv::new(65, 63);
    let (w, x) = (random(65 * 63, 1), random(63, 2));
    let mut y = vec![0.0; 65];
    assert_eq!(
        peak(|ctx| gemv(ctx, &params, &w, &x, &mut y)),
        gemv_scratch(&params)
    );
    assert_eq!(gemv_scratch(&params), ScratchReq::NONE);
}

#[test]
fn attention_leases_exactly_its_scratch() {
    with_threads(|threads| {
        for (n_heads, n_kv_heads, head_dim, pos, n_queries) in [
            (6, 6, 48, 0, 1),
            (8, 4, 8, 37, 1),
            (8, 4, 8, 5, 13),
            (6, 2, 4, 0, 7),
        ] {
            let params = Attention {
                n_heads,
                n_kv_heads,
                head_dim,
                pos,
                n_queries,
                isa: Isa::detect(),
            };
            let (dim, kv_dim, len) = (n_heads * head_dim, n_kv_heads * head_dim, pos + n_queries);
            let q = random(n_queries * dim, 1);
            let (keys, values) = (random(len * kv_dim, 2), random(len * kv_dim, 3));
            let mut out = vec![0.0; n_queries * dim];
            let got = peak(|ctx| attention(ctx, &params, &q, &keys, &values, &mut out).unwrap());
            assert_eq!(
                got,
                attention_scratch(&params),
                "{params:?} at {threads} threads"
            );
        }
    });
}

#[test]
fn rope_leases_exactly_its_scratch() {
    for (n_heads, n_kv_heads, head_dim, pos, n_tokens) in [(6, 6, 48, 3, 1), (8, 4, 8, 0, 13)] {
        let params = Rope {
            n_heads,
            n_kv_heads,
            head_dim,
            pos,
            n_tokens,
        };
        let mut q = random(n_tokens * n_heads * head_dim, 1);
        let mut k = random(n_tokens * n_kv_heads * head_dim, 2);
        let got = peak(|ctx| rope(ctx, &params, &mut q, &mut k).unwrap());
        assert_eq!(got, rope_scratch(&params), "{params:?}");
    }
}
