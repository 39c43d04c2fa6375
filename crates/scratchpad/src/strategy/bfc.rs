//! `bfc`: PyTorch's CUDA caching allocator policy
//! (c10/cuda/CUDACachingAllocator.cpp), best fit with coalescing, with its
//! constants as defaults:
//!
//! - every size is rounded up to a multiple of 512 B;
//! - requests up to 1 MiB come from a small pool of 2 MiB segments;
//!   larger ones from a large pool: 20 MiB segments below 10 MiB, else
//!   segments of the size rounded up to 2 MiB;
//! - the free block that serves a request is the best fit by (size,
//!   address) in its pool; blocks of `max_split_size` or more serve only
//!   requests of that size or more, and then only when they are less than
//!   20 MiB larger;
//! - a block is split when the remainder is at least 512 B (small pool) or
//!   more than 1 MiB (large pool, requests below `max_split_size`);
//! - a released block merges with its free neighbours in its segment;
//! - when the memory refuses a new segment, every wholly idle segment is
//!   freed and the allocation tried again before `OutOfMemory`; `trim` and
//!   the retained-bytes cap free wholly idle segments, smallest first.
//!
//! One departure: when the memory still refuses the policy's segment (a
//! reservation limit below 2 or 20 MiB), a segment of just the rounded
//! request is tried before giving up, where PyTorch would fail.

use super::segments::{FreeIndex, NONE, SegmentHeap, Segments};
use super::{round_up, too_large};
use super::StrategyInfo;
use crate::{
    Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "bfc",
    policy: "512 B rounding; small pool (up to 1 MiB, 2 MiB segments) and large pool (20 MiB segments, or rounded to 2 MiB from 10 MiB); best fit by (size, address); split, coalesce on release; idle segments freed on a miss before out of memory",
    after: "PyTorch `CUDACachingAllocator`, TensorFlow BFC",
    stable_addresses: false,
    host_only: false,
};

/// Every size is a multiple of this (PyTorch's `kMinBlockSize`).
pub const ROUND: usize = 512;
/// Requests up to this come from the small pool (`kSmallSize`).
pub const SMALL_SIZE: usize = 1 << 20;
/// Segments of the small pool (`kSmallBuffer`).
pub const SMALL_SEGMENT: usize = 2 << 20;
/// Segments of the large pool for requests below [`MIN_LARGE_ALLOC`]
/// (`kLargeBuffer`).
pub const LARGE_SEGMENT: usize = 20 << 20;
/// Requests from this size on get a segment of their own size, rounded up
/// to [`ROUND_LARGE`] (`kMinLargeAlloc`).
pub const MIN_LARGE_ALLOC: usize = 10 << 20;
/// Rounding of large segments (`kRoundLarge`).
pub const ROUND_LARGE: usize = 2 << 20;

const SMALL: usize = 0;
const LARGE: usize = 1;

/// The segment size PyTorch would allocate for a rounded request of `size`.
pub fn segment_bytes(size: usize) -> Option<usize> {
    if size <= SMALL_SIZE {
        Some(SMALL_SEGMENT)
    } else if size < MIN_LARGE_ALLOC {
        Some(LARGE_SEGMENT)
    } else {
        round_up(size, ROUND_LARGE)
    }
}

/// `bfc`'s free blocks: the small and the large pool, each sorted by
/// `(size, address, block)`.
struct PoolLists {
    free: [Vec<(usize, usize, u32)>; 2],
    /// Bytes in free blocks.
    free_bytes: usize,
}

impl PoolLists {
    #[inline]
    fn key<P: Copy>(segments: &Segments<P>, idx: u32) -> (usize, usize, u32) {
        let block = segments.block(idx);
        (block.size, block.address, idx)
    }

    /// Puts block `new` where the free-list entry `old` was, then moves it
    /// to its sorted place: one shift of the list instead of a removal and
    /// an insertion (a split's rest replacing the block it came from, a
    /// merged block replacing its neighbour).
    #[inline]
    fn replace<P: Copy>(&mut self, segments: &Segments<P>, old: (usize, usize, u32), new: u32) {
        let key = Self::key(segments, new);
        let list = &mut self.free[segments.block(new).class as usize];
        let mut at = list.partition_point(|&k| k < old);
        debug_assert_eq!(list.get(at), Some(&old), "a free block is listed");
        list[at] = key;
        while at + 1 < list.len() && list[at + 1] < key {
            list.swap(at, at + 1);
            at += 1;
        }
        while at > 0 && list[at - 1] > key {
            list.swap(at, at - 1);
            at -= 1;
        }
        self.free_bytes = self.free_bytes - old.0 + key.0;
    }

    /// The best-fitting free block of `pool` for `size`, under PyTorch's
    /// rules for blocks of `max_split` bytes or more.
    #[inline]
    fn find(&self, pool: usize, size: usize, max_split: usize) -> Option<u32> {
        let list = &self.free[pool];
        let at = list.partition_point(|&(s, _, _)| s < size);
        let &(block, _, idx) = list.get(at)?;
        if size < max_split && block >= max_split {
            return None;
        }
        if size >= max_split && block >= size.saturating_add(LARGE_SEGMENT) {
            return None;
        }
        Some(idx)
    }
}

impl<P: Copy> FreeIndex<P> for PoolLists {
    #[inline]
    fn insert(&mut self, segments: &mut Segments<P>, idx: u32) {
        let key = Self::key(segments, idx);
        let list = &mut self.free[segments.block(idx).class as usize];
        let at = list.partition_point(|&k| k < key);
        list.insert(at, key);
        self.free_bytes += key.0;
    }

    #[inline]
    fn remove(&mut self, segments: &mut Segments<P>, idx: u32) {
        let key = Self::key(segments, idx);
        let list = &mut self.free[segments.block(idx).class as usize];
        let at = list.partition_point(|&k| k < key);
        debug_assert_eq!(list.get(at), Some(&key), "a free block is listed");
        list.remove(at);
        self.free_bytes -= key.0;
    }

    fn free_bytes(&self) -> usize {
        self.free_bytes
    }
}

/// Best fit with splitting and coalescing over segments of the memory.
pub struct Bfc<M: Memory> {
    heap: SegmentHeap<M, PoolLists>,
    counters: Counters,
    max_retained_bytes: usize,
    max_split_size: usize,
}

impl<M: Memory> Bfc<M> {
    /// A `bfc` pool over `memory`, with `options.max_retained_bytes` (idle
    /// segments beyond it are freed) and `options.max_split_size`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        let lists = PoolLists {
            free: [Vec::new(), Vec::new()],
            free_bytes: 0,
        };
        Bfc {
            heap: SegmentHeap::new(Backing::with_limit(memory, options.reserve_limit), lists),
            counters: Counters::default(),
            max_retained_bytes: options.max_retained_bytes,
            max_split_size: options.max_split_size,
        }
    }

    #[inline]
    fn should_split(&self, pool: usize, size: usize, remaining: usize) -> bool {
        if pool == SMALL {
            remaining >= ROUND
        } else {
            size < self.max_split_size && remaining > SMALL_SIZE
        }
    }
}

// SAFETY: a grant is one block of a segment the strategy holds from its
// memory: `offset + capacity` lies inside the segment, and the offset is a
// multiple of 512 from a 64-aligned segment base. Blocks of a segment are
// disjoint and tile it; a block is granted only while free (out of the free
// lists) and marked leased until its release, so no two live leases share a
// byte. Segments are freed only when their one block is free.
unsafe impl<M: Memory> ScratchPool<M> for Bfc<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.heap.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let size = round_up(request.bytes, ROUND).ok_or_else(|| too_large(request.bytes))?;
        let pool = if size <= SMALL_SIZE { SMALL } else { LARGE };
        let heap = &mut self.heap;
        let (idx, listed) = match heap.index.find(pool, size, self.max_split_size) {
            Some(idx) => {
                self.counters.hits += 1;
                (idx, true)
            }
            None => {
                let bytes = segment_bytes(size).ok_or_else(|| too_large(size))?;
                let idx = heap.new_segment(bytes, size, pool as u8)?;
                self.counters.misses += 1;
                (idx, false)
            }
        };
        let old = PoolLists::key(&heap.segments, idx);
        let remaining = old.0 - size;
        if self.should_split(pool, size, remaining) {
            let heap = &mut self.heap;
            let rest = heap.segments.split(idx, size);
            if listed {
                heap.index.replace(&heap.segments, old, rest);
            } else {
                heap.index.insert(&mut heap.segments, rest);
            }
        } else if listed {
            self.heap.index.remove(&mut self.heap.segments, idx);
        }
        *grant = self.heap.lease(idx);
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        let idx = grant.token;
        let heap = &mut self.heap;
        heap.take_back(idx);
        let segments = &mut heap.segments;
        let next = segments.block(idx).next;
        let next_free = next != NONE && segments.block(next).free;
        let prev = segments.block(idx).prev;
        let prev_free = prev != NONE && segments.block(prev).free;
        // The merged block takes the list entry of a free neighbour.
        let lists = &mut heap.index;
        match (prev_free, next_free) {
            (false, false) => lists.insert(segments, idx),
            (false, true) => {
                let old = PoolLists::key(segments, next);
                segments.merge_next(idx);
                lists.replace(segments, old, idx);
            }
            (true, false) => {
                let old = PoolLists::key(segments, prev);
                segments.merge_next(prev);
                lists.replace(segments, old, prev);
            }
            (true, true) => {
                lists.remove(segments, next);
                segments.merge_next(idx);
                let old = PoolLists::key(segments, prev);
                segments.merge_next(prev);
                lists.replace(segments, old, prev);
            }
        }
        self.counters.evictions += heap.hold_to(self.max_retained_bytes);
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
        self.heap.release_idle(|_| true);
    }

    fn reset_peak(&mut self) {
        self.heap.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let mut stats = self.heap.stats(&self.counters);
        stats.largest_free_bytes = self
            .heap
            .index
            .free
            .iter()
            .filter_map(|list| list.last().map(|&(size, _, _)| size))
            .max()
            .unwrap_or(0);
        stats
    }
}
