//! Exactly zero heap allocations per call after warm-up, for every kernel,
//! under every strategy but `noop`, at one and two threads (in a rayon pool,
//! and on a [`Team`]), counted by `CountingAlloc` in this binary alone
//! (`harness = false`). The kernels run inside one long-lived rayon
//! `install` (and team `install`), as a generation loop does.

use scratchpad::{
    AllocCounts, CountingAlloc, ExecutionContext, HostMemory, Phase, Pool, PoolOptions,
    STRATEGY_NAMES,
};
use scratchpad_cpu::*;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const KERNELS: [&str; 11] = [
    "gemv",
    "gemm",
    "rope",
    "attention (1 query)",
    "attention (block)",
    "kv_cache.append",
    "rms_norm",
    "softmax",
    "swiglu",
    "add_residual",
    "embed",
];

/// Inputs and outputs, allocated before counting.
struct Data {
    w: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    xb: Vec<f32>,
    yb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    qb: Vec<f32>,
    kb: Vec<f32>,
    out: Vec<f32>,
    outb: Vec<f32>,
    cache: KvCache,
}

const DIM: usize = 288;
const HIDDEN: usize = 768;
const HEADS: usize = 6;
const HEAD_DIM: usize = 48;
const BLOCK: usize = 32;
/// Rows of the gemv: enough for it to fan out at two threads.
const GEMV_ROWS: usize = 1024;

impl Data {
    fn new() -> Self {
        let fill = |n: usize| {
            (0..n)
                .map(|i| ((i % 17) as f32 - 8.0) * 0.01)
                .collect::<Vec<f32>>()
        };
        let mut cache = KvCache::new(1, 128, DIM);
        cache.append(0, 0, &fill(128 * DIM), &fill(128 * DIM));
        Data {
            w: fill(GEMV_ROWS * DIM),
            x: fill(DIM),
            y: vec![0.0; GEMV_ROWS],
            xb: fill(BLOCK * DIM),
            yb: vec![0.0; BLOCK * HIDDEN],
            q: fill(DIM),
            k: fill(DIM),
            qb: fill(BLOCK * DIM),
            kb: fill(BLOCK * DIM),
            out: vec![0.0; DIM],
            outb: vec![0.0; BLOCK * DIM],
            cache,
        }
    }
}

/// Runs every kernel once, adding each one's allocations to `counts`.
fn run_kernels(ctx: &ExecutionContext<HostMemory>, d: &mut Data, counts: &mut [u64; 11]) {
    let mut timed = |idx: usize, f: &mut dyn FnMut()| {
        let before = CountingAlloc::counts();
        f();
        counts[idx] += CountingAlloc::counts().since(&before).allocations;
    };
    timed(0, &mut || {
        for isa in Isa::supported() {
            gemv(
                ctx,
                &Gemv {
                    m: GEMV_ROWS,
                    k: DIM,
                    isa,
                },
                &d.w,
                &d.x,
                &mut d.y,
            );
        }
    });
    timed(1, &mut || {
        for isa in Isa::supported() {
            gemm(
                ctx,
                &Gemm {
                    m: BLOCK,
                    k: DIM,
                    n: HIDDEN,
                    isa,
                },
                &d.xb,
                &d.w[..HIDDEN * DIM],
                &mut d.yb,
            )
            .unwrap();
        }
    });
    timed(2, &mut || {
        let p = Rope {
            n_heads: HEADS,
            n_kv_heads: HEADS,
            head_dim: HEAD_DIM,
            pos: 100,
            n_tokens: BLOCK,
        };
        rope(ctx, &p, &mut d.qb, &mut d.kb).unwrap();
    });
    timed(3, &mut || {
        let p = Attention {
            n_heads: HEADS,
            n_kv_heads: HEADS,
            head_dim: HEAD_DIM,
            pos: 127,
            n_queries: 1,
            isa: Isa::detect(),
        };
        attention(
            ctx,
            &p,
            &d.q,
            d.cache.keys(0, 128),
            d.cache.values(0, 128),
            &mut d.out,
        )
        .unwrap();
    });
    timed(4, &mut || {
        // Grouped: 12 query heads of 24 over 3 KV heads (the cache's rows
        // read as 72-wide).
        let p = Attention {
            n_heads: 2 * HEADS,
            n_kv_heads: 3,
            head_dim: HEAD_DIM / 2,
            pos: 64,
            n_queries: BLOCK,
            isa: Isa::detect(),
        };
        let kv_len = (64 + BLOCK) * 3 * HEAD_DIM / 2;
        attention(
            ctx,
            &p,
            &d.qb,
            &d.cache.keys(0, 128)[..kv_len],
            &d.cache.values(0, 128)[..kv_len],
            &mut d.outb,
        )
        .unwrap();
    });
    timed(5, &mut || d.cache.append(0, 5, &d.k, &d.q));
    timed(6, &mut || rms_norm(&d.xb, &d.w[..DIM], &mut d.outb));
    timed(7, &mut || softmax(&mut d.y));
    timed(8, &mut || swiglu(&mut d.yb[..HIDDEN], &d.w[..HIDDEN]));
    timed(9, &mut || add_residual(&mut d.out, &d.x));
    timed(10, &mut || embed(&d.w, 3, &mut d.out));
}

fn main() {
    let (mut passed, mut failed) = (0, 0);
    let mut data = Data::new();
    for (threads, team) in [(1, false), (2, false), (2, true)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let on = if team { " team" } else { "" };
        for name in STRATEGY_NAMES {
            let counts = pool.install(|| {
                // Started (allocating) before the counting starts.
                let team = team.then(|| Team::new(threads).unwrap());
                let mut run = || {
                    let ctx = ExecutionContext::new(
                        Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap(),
                    );
                    let mut counts = [0u64; 11];
                    for _ in 0..3 {
                        ctx.scratch.step(Phase::Prefill, |_| {
                            run_kernels(&ctx, &mut data, &mut counts)
                        });
                    }
                    counts = [0; 11];
                    for _ in 0..20 {
                        ctx.scratch.step(Phase::Prefill, |_| {
                            run_kernels(&ctx, &mut data, &mut counts)
                        });
                    }
                    counts
                };
                match &team {
                    Some(team) => team.install(run),
                    None => run(),
                }
            });
            for (kernel, &n) in KERNELS.iter().zip(&counts) {
                let noop = name.starts_with("noop");
                // noop allocates for every lease; kernels that take no lease
                // allocate nothing under any strategy.
                let leases = matches!(
                    *kernel,
                    "gemm" | "rope" | "attention (1 query)" | "attention (block)"
                );
                let ok = if noop && leases { n > 0 } else { n == 0 };
                if !ok || (noop && leases) {
                    println!(
                        "{name:<13} {threads}t{on:<5} {kernel:<20} {n:>6} allocations in 20 calls ... {}",
                        if ok { "ok" } else { "FAILED" }
                    );
                }
                if ok { passed += 1 } else { failed += 1 }
            }
        }
    }
    let _: AllocCounts = CountingAlloc::counts();
    assert!(CountingAlloc::is_installed());
    println!(
        "kernels allocate nothing after warm-up under every pooled strategy, at 1 and 2 threads"
    );
    println!("alloc_free: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
