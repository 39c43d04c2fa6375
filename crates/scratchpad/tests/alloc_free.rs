//! Exactly zero heap allocations per step after warm-up, for every strategy
//! but `noop` (and the mutex wrapper), counted by `CountingAlloc`. Its own
//! binary (`harness = false`), so no other test's allocations are counted.

use scratchpad::{
    AllocCounts, CountingAlloc, HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES, Scope,
    SharedPool, tag,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A decode-like step at position `pos`: per layer a nested scope, leases of
/// several dtypes and sizes growing with `pos`, one released out of order,
/// an empty one, and a zeroed one.
fn decode_step(s: &Scope<'_, HostMemory>, pos: usize) {
    let mut x = s.acquire::<f32>(288, tag!("af.x")).unwrap();
    x.fill(1.0);
    for _layer in 0..6 {
        s.scope(|l| {
            let q = l.acquire::<f32>(288, tag!("af.q")).unwrap();
            let mut scores = l.acquire::<f32>(6 * (pos + 1), tag!("af.scores")).unwrap();
            let rope = l
                .acquire::<num_complex::Complex32>(24, tag!("af.rope"))
                .unwrap();
            scores.fill(0.5);
            drop(q);
            let hidden = l
                .acquire_zeroed::<half::f16>(768, tag!("af.hidden"))
                .unwrap();
            let empty = l.acquire::<u8>(0, tag!("af.empty")).unwrap();
            std::hint::black_box((&rope, &hidden, &empty, &scores));
        });
    }
}

/// A prefill-like step over `n` tokens.
fn prefill_step(s: &Scope<'_, HostMemory>, n: usize) {
    let x = s.acquire::<f32>(n * 288, tag!("af.px")).unwrap();
    s.scope(|l| {
        let scores = l.acquire::<f32>(6 * n * n, tag!("af.pscores")).unwrap();
        let ffn = l.acquire::<f32>(n * 768, tag!("af.pffn")).unwrap();
        std::hint::black_box((&scores, &ffn, &x));
    });
}

/// Runs one step of a phase through a pool (plain or shared).
type StepRunner<'a> = &'a dyn Fn(Phase, &dyn Fn(&Scope<'_, HostMemory>));

/// Heap allocations of 200 decode steps and 5 prefills after a warm-up at
/// the largest sizes (as the model's `reserve` does).
fn count(run_step: StepRunner<'_>) -> AllocCounts {
    run_step(Phase::Prefill, &|s| prefill_step(s, 64));
    run_step(Phase::Decode, &|s| decode_step(s, 255));
    let before = CountingAlloc::counts();
    for n in [64, 17, 33, 64, 1] {
        run_step(Phase::Prefill, &|s| prefill_step(s, n));
    }
    for pos in 0..200 {
        run_step(Phase::Decode, &|s| decode_step(s, pos));
    }
    CountingAlloc::counts().since(&before)
}

fn main() {
    let (mut passed, mut failed) = (0, 0);
    let mut check = |name: String, counts: AllocCounts, noop: bool| {
        let ok = if noop {
            counts.allocations > 0
        } else {
            counts.allocations == 0
        };
        let expect = if noop {
            "some (it allocates per acquire)"
        } else {
            "exactly 0"
        };
        println!(
            "{:<22} {:>6} heap allocations, {:>9} bytes after warm-up (expected {expect}) ... {}",
            name,
            counts.allocations,
            counts.bytes,
            if ok { "ok" } else { "FAILED" }
        );
        if ok { passed += 1 } else { failed += 1 }
    };
    for name in STRATEGY_NAMES {
        let pool = Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
        let counts = count(&|phase, f| pool.step(phase, |s| f(s)));
        check(name.to_owned(), counts, name.starts_with("noop"));
        let shared = SharedPool::new(pool);
        let counts = count(&|phase, f| shared.step(phase, |s| f(s)));
        check(format!("shared({name})"), counts, name.starts_with("noop"));
    }
    // planned with a plan per token bucket: each bucket warmed once, then
    // prompts of every length in those buckets allocate nothing.
    let pool = Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap();
    let sized = |n: usize| {
        pool.begin_step_sized(Phase::Prefill, n);
        pool.scope(|s| prefill_step(s, n));
        pool.end_step();
    };
    for n in [64, 32, 16, 8] {
        sized(n);
    }
    let before = CountingAlloc::counts();
    for n in [64, 40, 17, 33, 9, 64, 5, 16, 31] {
        sized(n);
    }
    let counts = CountingAlloc::counts().since(&before);
    check("planned (token buckets)".to_owned(), counts, false);
    assert!(
        CountingAlloc::is_installed(),
        "the counting allocator is the global allocator"
    );
    println!("alloc_free: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
