//! `bfc` against PyTorch's caching-allocator policy, each rule with
//! expectations computed by hand: 512-byte rounding, the small and large
//! pools and their segment sizes, the split thresholds, best fit by (size,
//! address), coalescing, segment release by trim, the cap and a miss the
//! memory refuses.

use scratchpad::{HostMemory, Pool, PoolOptions, tag};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn bfc(options: PoolOptions) -> Pool<HostMemory> {
    let pool = Pool::with_strategy("bfc", HostMemory, &options).unwrap();
    pool.set_verify(true);
    pool
}

#[test]
fn sizes_round_to_512_bytes() {
    let pool = bfc(PoolOptions::default());
    pool.scope(|s| {
        let a = s.acquire::<u8>(1, tag!("bfc.a")).unwrap();
        assert_eq!(pool.stats().live_capacity_bytes, 512);
        let b = s.acquire::<u8>(513, tag!("bfc.b")).unwrap();
        assert_eq!(pool.stats().live_capacity_bytes, 512 + 1024);
        // Both from the one 2 MiB segment of the small pool, end to end.
        assert_eq!(b.address() - a.address(), 512);
        assert_eq!(pool.stats().reserved_bytes, 2 * MIB);
    });
}

#[test]
fn each_pool_takes_segments_of_its_size() {
    for (request, segment, why) in [
        (MIB, 2 * MIB, "1 MiB: the small pool's 2 MiB"),
        (MIB + 1, 20 * MIB, "above 1 MiB: 20 MiB"),
        (10 * MIB - 512, 20 * MIB, "below 10 MiB: 20 MiB"),
        (10 * MIB, 10 * MIB, "10 MiB: its own size"),
        (
            11 * MIB - 100,
            12 * MIB,
            "11 MiB less a little: rounded up to 12 MiB",
        ),
    ] {
        let pool = bfc(PoolOptions::default());
        pool.scope(|s| {
            let _lease = s.acquire::<u8>(request, tag!("bfc.one")).unwrap();
            assert_eq!(pool.stats().reserved_bytes, segment, "{why}");
        });
    }
    // A large request is served from a large segment's free rest before a
    // new segment is taken.
    let pool = bfc(PoolOptions::default());
    pool.scope(|s| {
        let _a = s.acquire::<u8>(2 * MIB, tag!("bfc.a")).unwrap();
        let _b = s.acquire::<u8>(10 * MIB, tag!("bfc.b")).unwrap();
        assert_eq!(pool.stats().reserved_bytes, 20 * MIB);
        let _c = s.acquire::<u8>(9 * MIB, tag!("bfc.c")).unwrap();
        assert_eq!(
            pool.stats().reserved_bytes,
            40 * MIB,
            "8 MiB left: a new segment"
        );
    });
}

#[test]
fn splits_follow_the_pool_thresholds() {
    let pool = bfc(PoolOptions::default());
    pool.scope(|s| {
        // Small pool: a remainder of 1 MiB (>= 512 B) is split off ...
        let _a = s.acquire::<u8>(MIB, tag!("bfc.a")).unwrap();
        assert_eq!(pool.stats().splits, 1);
        // ... and serves the next request with no remainder left.
        let _b = s.acquire::<u8>(MIB, tag!("bfc.b")).unwrap();
        assert_eq!(pool.stats().splits, 1);
        assert_eq!(pool.stats().reserved_bytes, 2 * MIB);
        // Large pool: 2 MiB from a 20 MiB segment leaves 18 MiB (> 1 MiB): split.
        let _c = s.acquire::<u8>(2 * MIB, tag!("bfc.c")).unwrap();
        assert_eq!(pool.stats().splits, 2);
        // 18 MiB less 512 KiB leaves 512 KiB (<= 1 MiB): the whole block.
        let d = s
            .acquire::<u8>(18 * MIB - 512 * KIB, tag!("bfc.d"))
            .unwrap();
        assert_eq!(pool.stats().splits, 2);
        assert_eq!(
            pool.stats().live_capacity_bytes - pool.stats().live_bytes,
            512 * KIB,
            "the unsplit remainder is the lease's internal waste"
        );
        assert_eq!(d.len(), 18 * MIB - 512 * KIB);
    });
}

#[test]
fn blocks_at_or_above_max_split_size_are_not_split() {
    let pool = bfc(PoolOptions {
        max_split_size: 4 * MIB,
        ..PoolOptions::default()
    });
    pool.scope(|s| {
        // A 12 MiB segment for 11 MiB: the block is above max_split_size,
        // so the 1 MiB left stays part of the lease.
        let _big = s.acquire::<u8>(11 * MIB, tag!("bfc.big")).unwrap();
        assert_eq!(pool.stats().splits, 0);
        assert_eq!(pool.stats().live_capacity_bytes, 12 * MIB);
    });
    pool.scope(|s| {
        // The idle 12 MiB block never serves a request below max_split_size.
        let _small = s.acquire::<u8>(2 * MIB, tag!("bfc.small")).unwrap();
        assert_eq!(pool.stats().reserved_bytes, 12 * MIB + 20 * MIB);
    });
}

#[test]
fn the_best_fit_is_the_smallest_block_then_the_lowest_address() {
    let pool = bfc(PoolOptions::default());
    pool.scope(|s| {
        let a = s.acquire::<u8>(4 * KIB, tag!("bfc.a")).unwrap();
        let _sep1 = s.acquire::<u8>(512, tag!("bfc.sep")).unwrap();
        let b = s.acquire::<u8>(2 * KIB, tag!("bfc.b")).unwrap();
        let _sep2 = s.acquire::<u8>(512, tag!("bfc.sep")).unwrap();
        let c = s.acquire::<u8>(2 * KIB, tag!("bfc.c")).unwrap();
        let _sep3 = s.acquire::<u8>(512, tag!("bfc.sep")).unwrap();
        let (a_at, b_at, c_at) = (a.address(), b.address(), c.address());
        drop((a, c, b));
        // Free: 4 KiB at a, 2 KiB at b, 2 KiB at c, and the segment's rest.
        let x = s.acquire::<u8>(1500, tag!("bfc.x")).unwrap();
        assert_eq!(x.address(), b_at, "the smaller block, lower address first");
        let y = s.acquire::<u8>(2 * KIB, tag!("bfc.y")).unwrap();
        assert_eq!(y.address(), c_at);
        let z = s.acquire::<u8>(3 * KIB, tag!("bfc.z")).unwrap();
        assert_eq!(z.address(), a_at);
    });
}

#[test]
fn released_blocks_coalesce_and_trim_frees_idle_segments() {
    let pool = bfc(PoolOptions::default());
    pool.scope(|s| {
        let a = s.acquire::<u8>(512, tag!("bfc.a")).unwrap();
        let b = s.acquire::<u8>(512, tag!("bfc.b")).unwrap();
        let c = s.acquire::<u8>(512, tag!("bfc.c")).unwrap();
        assert_eq!(pool.stats().splits, 3);
        drop(b);
        assert_eq!(pool.stats().merges, 0, "b's neighbours are leased");
        drop(a);
        assert_eq!(pool.stats().merges, 1, "a absorbs b");
        let before = pool.stats().largest_free_bytes;
        assert_eq!(before, 2 * MIB - 3 * 512, "the segment's rest");
        drop(c);
        // c merges with the rest after it and with a+b before it.
        assert_eq!(pool.stats().merges, 3);
        assert_eq!(pool.stats().largest_free_bytes, 2 * MIB);
    });
    assert_eq!(pool.stats().reserved_bytes, 2 * MIB, "kept for reuse");
    pool.trim();
    assert_eq!(pool.stats().reserved_bytes, 0, "the idle segment is freed");
    assert_eq!(pool.stats().backing_frees, 1);
}

#[test]
fn the_retained_cap_frees_wholly_idle_segments() {
    let pool = bfc(PoolOptions {
        max_retained_bytes: 3 * MIB,
        ..PoolOptions::default()
    });
    pool.scope(|s| {
        let a = s.acquire::<u8>(MIB, tag!("bfc.a")).unwrap();
        let b = s.acquire::<u8>(MIB, tag!("bfc.b")).unwrap();
        let c = s.acquire::<u8>(MIB, tag!("bfc.c")).unwrap();
        assert_eq!(pool.stats().reserved_bytes, 4 * MIB, "two small segments");
        drop((a, b));
        // The first segment is idle: 2 MiB + 1 MiB free, under the cap.
        assert_eq!(pool.stats().reserved_bytes, 4 * MIB);
        drop(c);
        // 4 MiB free is over the 3 MiB cap: one idle segment goes.
        assert_eq!(pool.stats().reserved_bytes, 2 * MIB);
        assert_eq!(pool.stats().evictions, 1);
    });
}

#[test]
fn a_refused_segment_first_frees_the_idle_ones() {
    let pool = bfc(PoolOptions {
        reserve_limit: Some(4 * MIB),
        ..PoolOptions::default()
    });
    pool.scope(|s| {
        drop(s.acquire::<u8>(MIB, tag!("bfc.a")).unwrap());
        assert_eq!(
            pool.stats().reserved_bytes,
            2 * MIB,
            "one idle small segment"
        );
        // 3 MiB wants a 20 MiB segment, which the 4 MiB limit refuses; the
        // idle segment is freed and a segment of just the request served.
        let big = s.acquire::<u8>(3 * MIB, tag!("bfc.big")).unwrap();
        assert_eq!(big.len(), 3 * MIB);
        assert_eq!(pool.stats().reserved_bytes, 3 * MIB);
        assert_eq!(pool.stats().backing_frees, 1);
    });
}
