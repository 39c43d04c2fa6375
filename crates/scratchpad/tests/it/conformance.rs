//! The conformance suite: every strategy, plain and behind the mutex
//! wrapper, under the same checks.

use scratchpad::{
    HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES, ScratchError, SharedPool, tag,
};

use crate::support::{Held, N_DTYPES, Target, acquire_any, check_idle, pool, targets};

/// Sizes that cross every class boundary and chunk size the strategies use.
const SIZES: [usize; 12] = [
    1,
    7,
    64,
    255,
    256,
    257,
    4096,
    65_535,
    65_536,
    300_000,
    1 << 20,
    3 << 20,
];

/// One step's worth of work: leases of many sizes and dtypes, released out of
/// order, a nested scope, each lease checked intact at its release.
fn workload(target: &Target, round: usize) {
    let who = target.name();
    target.step(Phase::Decode, |s| {
        let mut held = Vec::new();
        for (i, &bytes) in SIZES.iter().enumerate() {
            let lease =
                acquire_any(s, i % N_DTYPES, bytes, i % 3 == 0, tag!("conf.outer")).unwrap();
            held.push(Held::new(lease, (i + 1) as u8));
            if i % 4 == 3 {
                // Release an older lease, not the newest.
                let old = held.remove(held.len() / 2);
                old.check(&who);
            }
        }
        s.scope(|inner| {
            let mut inner_held = Vec::new();
            for (i, &bytes) in SIZES.iter().rev().enumerate() {
                let lease = acquire_any(
                    inner,
                    (i + round) % N_DTYPES,
                    bytes,
                    false,
                    tag!("conf.inner"),
                )
                .unwrap();
                inner_held.push(Held::new(lease, 0x80 | i as u8));
            }
            for h in held.iter().chain(&inner_held) {
                h.check(&who);
            }
            while let Some(h) = inner_held.pop() {
                h.check(&who);
                if let Some(first) = inner_held.first() {
                    first.check(&who);
                }
            }
        });
        for h in &held {
            h.check(&who);
        }
    });
}

#[test]
fn live_leases_never_alias_and_stats_add_up() {
    for target in targets(&PoolOptions::default()) {
        for round in 0..4 {
            workload(&target, round);
            check_idle(&target.name(), &target.stats());
        }
        let stats = target.stats();
        assert!(stats.acquires > 0);
        if !target.strategy().starts_with("noop") {
            assert!(
                stats.hits > 0,
                "{}: a pooled strategy reuses memory",
                target.name()
            );
        }
    }
}

#[test]
fn zeroed_leases_read_zero_on_recycled_memory() {
    for target in targets(&PoolOptions::default()) {
        let who = target.name();
        for round in 0..3 {
            target.step(Phase::Prefill, |s| {
                for &bytes in &SIZES {
                    let mut dirty = s.acquire::<u8>(bytes, tag!("conf.dirty")).unwrap();
                    dirty.fill(0xAB);
                    drop(dirty);
                    let clean = s
                        .acquire_zeroed::<f32>(bytes.div_ceil(4), tag!("conf.dirty"))
                        .unwrap();
                    assert!(
                        clean.iter().all(|&x| x == 0.0),
                        "{who} round {round}: zeroed lease of {bytes} bytes is dirty"
                    );
                }
            });
        }
        check_idle(&who, &target.stats());
    }
}

#[test]
fn empty_leases_hold_nothing() {
    for target in targets(&PoolOptions::default()) {
        target.scope(|s| {
            let empty = s.acquire::<f64>(0, tag!("conf.empty")).unwrap();
            assert!(empty.is_empty());
            assert_eq!(empty.len(), 0);
            let zeroed = s.acquire_zeroed::<u8>(0, tag!("conf.empty")).unwrap();
            assert!(zeroed.is_empty());
        });
        let stats = target.stats();
        check_idle(&target.name(), &stats);
        assert_eq!(stats.acquires, 2);
        assert_eq!(
            stats.reserved_bytes,
            0,
            "{}: empty leases reserve nothing",
            target.name()
        );
    }
}

#[test]
fn forgotten_leases_are_reclaimed_at_scope_end() {
    for target in targets(&PoolOptions::default()) {
        for _ in 0..3 {
            target.scope(|s| {
                let lease = s.acquire::<f32>(1000, tag!("conf.forgotten")).unwrap();
                std::mem::forget(lease);
                s.scope(|inner| {
                    std::mem::forget(inner.acquire::<u8>(5000, tag!("conf.forgotten")).unwrap())
                });
            });
            check_idle(&target.name(), &target.stats());
        }
    }
}

#[test]
fn a_lease_for_an_outer_scope_survives_the_inner_scope() {
    for target in targets(&PoolOptions::default()) {
        let who = target.name();
        for _ in 0..3 {
            target.scope(|outer| {
                let kept = outer.scope(|inner| {
                    let scratch = Held::new(
                        acquire_any(inner, 0, 4096, false, tag!("conf.inner")).unwrap(),
                        0x11,
                    );
                    // Acquired from the outer scope while the inner one is open.
                    let kept = Held::new(
                        acquire_any(outer, 6, 8192, false, tag!("conf.kept")).unwrap(),
                        0x22,
                    );
                    scratch.check(&who);
                    kept
                });
                // The inner scope has ended; its memory may be recycled, but
                // not under `kept`.
                let fresh = Held::new(
                    acquire_any(outer, 6, 8192, false, tag!("conf.after")).unwrap(),
                    0x33,
                );
                outer.scope(|again| {
                    let more = Held::new(
                        acquire_any(again, 0, 16384, false, tag!("conf.inner")).unwrap(),
                        0x44,
                    );
                    more.check(&who);
                });
                kept.check(&who);
                fresh.check(&who);
            });
            check_idle(&who, &target.stats());
        }
    }
}

#[test]
fn trim_returns_idle_memory() {
    for target in targets(&PoolOptions::default()) {
        for round in 0..2 {
            workload(&target, round);
        }
        assert!(target.stats().reserved_bytes > 0 || target.strategy().starts_with("noop"));
        target.trim();
        let stats = target.stats();
        assert_eq!(
            stats.reserved_bytes,
            0,
            "{}: trim of an idle pool frees everything",
            target.name()
        );
        assert_eq!(stats.retained_bytes, 0);
        assert_eq!(stats.trims, 1);
        workload(&target, 0);
        check_idle(&target.name(), &target.stats());
    }
}

#[test]
fn size_classed_holds_its_per_class_cap() {
    let options = PoolOptions {
        per_class_cap: 3,
        ..PoolOptions::default()
    };
    let pool = pool("size-classed", &options);
    pool.scope(|s| {
        let leases: Vec<_> = (0..10)
            .map(|_| s.acquire::<u8>(1000, tag!("conf.cap")).unwrap())
            .collect();
        drop(leases);
    });
    let stats = pool.stats();
    assert_eq!(stats.retained_bytes, 3 * 1024, "three 1 KiB buffers kept");
    assert_eq!(stats.evictions, 7);
    assert_eq!(stats.reserved_bytes, 3 * 1024);
}

#[test]
fn best_fit_holds_its_retention_cap_and_picks_the_smallest_fit() {
    let options = PoolOptions {
        max_retained_bytes: 64 << 10,
        ..PoolOptions::default()
    };
    let pool = pool("best-fit", &options);
    pool.scope(|s| {
        let leases: Vec<_> = [4 << 10, 16 << 10, 32 << 10, 48 << 10]
            .iter()
            .map(|&n| s.acquire::<u8>(n, tag!("conf.bf")).unwrap())
            .collect();
        drop(leases);
    });
    let stats = pool.stats();
    assert!(stats.retained_bytes <= 64 << 10);
    // 4 + 16 + 32 + 48 KiB = 100 KiB; the smallest go first: 4 and 16, then
    // 32 (48 + 32 = 80 > 64), leaving 48 KiB.
    assert_eq!(stats.retained_bytes, 48 << 10);
    assert_eq!(stats.evictions, 3);
    pool.scope(|s| {
        let small = s.acquire::<u8>(1000, tag!("conf.bf")).unwrap();
        assert_eq!(small.len(), 1000);
    });
    assert_eq!(
        pool.stats().hits,
        1,
        "the idle 48 KiB buffer is the smallest that fits"
    );
    // A buffer larger than the cap is never retained.
    pool.scope(|s| drop(s.acquire::<u8>(1 << 20, tag!("conf.bf")).unwrap()));
    assert!(pool.stats().retained_bytes <= 64 << 10);
}

#[test]
fn workspace_gives_a_second_buffer_to_a_tag_already_leased() {
    let pool = pool("workspace", &PoolOptions::default());
    for _ in 0..3 {
        pool.scope(|s| {
            let mut a = s.acquire::<u32>(100, tag!("conf.ws")).unwrap();
            let mut b = s.acquire::<u32>(100, tag!("conf.ws")).unwrap();
            assert_ne!(a.address(), b.address());
            a.fill(1);
            b.fill(2);
            assert!(a.iter().all(|&x| x == 1));
        });
    }
    let stats = pool.stats();
    assert_eq!(stats.misses, 2, "two buffers, allocated once");
    assert_eq!(stats.hits, 4);
}

#[test]
fn errors_name_the_problem_and_never_panic() {
    let limited = PoolOptions {
        reserve_limit: Some(1 << 20),
        ..PoolOptions::default()
    };
    for name in STRATEGY_NAMES {
        let pool = pool(name, &limited);
        pool.scope(|s| {
            let overflow = s
                .acquire::<f64>(usize::MAX / 4, tag!("conf.err"))
                .unwrap_err();
            assert!(
                matches!(overflow, ScratchError::SizeOverflow { .. }),
                "{name}: {overflow}"
            );
            let never = s.acquire::<u8>(2 << 20, tag!("conf.err")).unwrap_err();
            assert!(
                matches!(never, ScratchError::NeverFits { .. }),
                "{name}: {never}"
            );
            assert!(matches!(
                s.acquire_bytes(64, 3, tag!("conf.err")).unwrap_err(),
                ScratchError::BadAlignment { align: 3 }
            ));
            assert!(matches!(
                s.acquire_bytes(64, 128, tag!("conf.err")).unwrap_err(),
                ScratchError::BadAlignment { align: 128 }
            ));
            let big = s.acquire::<u8>(700 << 10, tag!("conf.big")).unwrap();
            let oom = s.acquire::<u8>(700 << 10, tag!("conf.big")).unwrap_err();
            assert!(
                matches!(oom, ScratchError::OutOfMemory { .. }),
                "{name}: {oom}"
            );
            assert!(
                oom.to_string().contains("retry"),
                "{name}: the message says retrying may help: {oom}"
            );
            drop(big);
            pool.trim();
            // With the first lease released and idle memory trimmed, the same
            // request succeeds.
            let retry = s.acquire::<u8>(700 << 10, tag!("conf.big"));
            assert!(
                retry.is_ok(),
                "{name}: retry after release failed: {:?}",
                retry.err()
            );
        });
        check_idle(name, &pool.stats());
    }
    let huge_cap = PoolOptions {
        per_class_cap: 1 << 20,
        ..PoolOptions::default()
    };
    // Refused by every strategy, also those that do not read it (and those
    // the pool holds by value).
    for name in STRATEGY_NAMES {
        let invalid = Pool::with_strategy(name, HostMemory, &huge_cap)
            .err()
            .unwrap();
        assert!(
            matches!(
                invalid,
                ScratchError::InvalidOption {
                    option: "per_class_cap",
                    ..
                }
            ),
            "{name}: {invalid}"
        );
    }
    let unknown = Pool::with_strategy("first-fit", HostMemory, &PoolOptions::default())
        .err()
        .unwrap();
    assert!(unknown.to_string().contains("first-fit") && unknown.to_string().contains("best-fit"));
}

#[test]
fn a_pool_moved_to_another_thread_keeps_working() {
    for name in STRATEGY_NAMES {
        let pool = pool(name, &PoolOptions::default());
        let target = Target::Plain(pool);
        workload(&target, 0);
        let Target::Plain(pool) = target else {
            unreachable!()
        };
        let pool = std::thread::spawn(move || {
            let target = Target::Plain(pool);
            workload(&target, 1);
            check_idle(name, &target.stats());
            target
        })
        .join()
        .unwrap();
        workload(&pool, 2);
        check_idle(name, &pool.stats());
    }
}

#[test]
fn a_shared_pool_serves_threads_one_scope_at_a_time() {
    for name in STRATEGY_NAMES {
        let shared = std::sync::Arc::new(SharedPool::new(pool(name, &PoolOptions::default())));
        let threads: Vec<_> = (0..4usize)
            .map(|t| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        shared.scope(|s| {
                            let a = acquire_any(s, t, 10_000 + round * 64, false, tag!("conf.mt"))
                                .unwrap();
                            let a = Held::new(a, t as u8 + 1);
                            let b = Held::new(
                                acquire_any(s, 6, 3000, false, tag!("conf.mt")).unwrap(),
                                0xF0 | t as u8,
                            );
                            std::thread::yield_now();
                            a.check(name);
                            b.check(name);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        check_idle(name, &shared.stats());
    }
}

#[test]
fn per_tag_stats_name_the_call_sites() {
    let pool = pool("best-fit", &PoolOptions::default());
    pool.scope(|s| {
        let _a = s.acquire::<f32>(100, tag!("conf.tag.a")).unwrap();
        let _b = s.acquire::<f32>(50, tag!("conf.tag.b")).unwrap();
        let _c = s.acquire::<f32>(50, tag!("conf.tag.b")).unwrap();
    });
    let tags = pool.tag_stats();
    let a = tags.iter().find(|t| t.name == "conf.tag.a").unwrap();
    let b = tags.iter().find(|t| t.name == "conf.tag.b").unwrap();
    assert_eq!((a.acquires, a.peak_live_bytes, a.live_bytes), (1, 400, 0));
    assert_eq!((b.acquires, b.peak_live_bytes), (2, 400));
}

/// A Pod type that needs 128-byte alignment.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(128))]
struct Wide {
    lanes: [f32; 32],
}

#[test]
fn over_aligned_types_are_refused_never_misaligned() {
    for name in STRATEGY_NAMES {
        let pool = Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
        pool.scope(|s| {
            for len in [0, 1, 3] {
                let refused = s.acquire::<Wide>(len, tag!("conf.wide")).map(|_| ());
                assert!(
                    matches!(refused, Err(ScratchError::BadAlignment { align: 128 })),
                    "{name}, {len} elements: {refused:?}"
                );
                let zeroed = s.acquire_zeroed::<Wide>(len, tag!("conf.wide")).map(|_| ());
                assert!(matches!(
                    zeroed,
                    Err(ScratchError::BadAlignment { align: 128 })
                ));
            }
        });
        assert_eq!(pool.stats().live_bytes, 0);
    }
}

#[test]
fn small_accounting_edges_hold() {
    // A forgotten empty lease leaves the counts balanced.
    let pool = Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default()).unwrap();
    pool.scope(|s| std::mem::forget(s.acquire::<f32>(0, tag!("conf.empty")).unwrap()));
    let stats = pool.stats();
    assert_eq!((stats.acquires, stats.releases), (1, 1));
    // An arena under a 32 KiB limit serves a 100-byte request (its first
    // chunk is cut to the limit), and names the limit when full.
    let limited = PoolOptions {
        reserve_limit: Some(32 << 10),
        ..PoolOptions::default()
    };
    let pool = Pool::with_strategy("arena", HostMemory, &limited).unwrap();
    pool.scope(|s| {
        let small = s.acquire::<u8>(100, tag!("conf.small")).unwrap();
        assert_eq!(small.len(), 100);
        assert!(pool.stats().reserved_bytes <= 32 << 10);
        let e = s
            .acquire::<u8>(40 << 10, tag!("conf.big"))
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("32768"), "{e}");
    });
    // A limit of usize::MAX is no limit, never an overflow.
    let unlimited = PoolOptions {
        reserve_limit: Some(usize::MAX),
        ..PoolOptions::default()
    };
    for name in STRATEGY_NAMES {
        let pool = Pool::with_strategy(name, HostMemory, &unlimited).unwrap();
        pool.scope(|s| {
            let _a = s.acquire::<u8>(1000, tag!("conf.a")).unwrap();
            let _b = s.acquire::<u8>(70_000, tag!("conf.b")).unwrap();
        });
    }
}

#[test]
fn a_shared_pool_answers_from_inside_its_own_scope() {
    // Each of these waited for itself forever before.
    let shared = SharedPool::new(
        Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default()).unwrap(),
    );
    shared.scope(|s| {
        let lease = s.acquire::<f32>(100, tag!("conf.shared")).unwrap();
        assert_eq!(shared.stats().live_bytes, 400);
        shared.trim();
        assert_eq!(shared.with(|p| p.stats().live_bytes), 400);
        shared.scope(|inner| {
            let more = inner.acquire::<f32>(10, tag!("conf.shared")).unwrap();
            assert_eq!(more.len(), 10);
        });
        drop(lease);
    });
    assert_eq!(shared.stats().live_bytes, 0);
    // Still one thread at a time across threads.
    std::thread::scope(|t| {
        for _ in 0..4 {
            t.spawn(|| {
                for _ in 0..50 {
                    shared.scope(|s| {
                        let a = s.acquire::<u8>(64, tag!("conf.shared")).unwrap();
                        assert_eq!(shared.stats().live_bytes, 64);
                        drop(a);
                    });
                }
            });
        }
    });
}
