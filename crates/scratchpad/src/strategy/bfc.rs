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

use super::segments::{NONE, Segments};
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

/// Best fit with splitting and coalescing over segments of the memory.
pub struct Bfc<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    segments: Segments<M::Ptr>,
    /// Free blocks of the small and the large pool: `(size, address,
    /// block)`, sorted.
    free: [Vec<(usize, usize, u32)>; 2],
    /// Bytes in free blocks.
    free_bytes: usize,
    max_retained_bytes: usize,
    max_split_size: usize,
    /// Reused by trimming.
    idle: Vec<u32>,
}

impl<M: Memory> Bfc<M> {
    /// A `bfc` pool over `memory`, with `options.max_retained_bytes` (idle
    /// segments beyond it are freed) and `options.max_split_size`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        Bfc {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            segments: Segments::new(),
            free: [Vec::new(), Vec::new()],
            free_bytes: 0,
            max_retained_bytes: options.max_retained_bytes,
            max_split_size: options.max_split_size,
            idle: Vec::new(),
        }
    }

    #[inline]
    fn key(&self, idx: u32) -> (usize, usize, u32) {
        let block = self.segments.block(idx);
        (block.size, block.address, idx)
    }

    #[inline]
    fn pool_of(&self, idx: u32) -> usize {
        self.segments.block(idx).class as usize
    }

    #[inline]
    fn insert_free(&mut self, idx: u32) {
        let key = self.key(idx);
        let list = &mut self.free[self.pool_of(idx)];
        let at = list.partition_point(|&k| k < key);
        list.insert(at, key);
        self.free_bytes += key.0;
    }

    /// Puts block `new` where the free-list entry `old` was, then moves it
    /// to its sorted place: one shift of the list instead of a removal and
    /// an insertion (a split's rest replacing the block it came from, a
    /// merged block replacing its neighbour).
    #[inline]
    fn replace_free(&mut self, old: (usize, usize, u32), new: u32) {
        let key = self.key(new);
        let list = &mut self.free[self.segments.block(new).class as usize];
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

    #[inline]
    fn remove_free(&mut self, idx: u32) {
        let key = self.key(idx);
        let list = &mut self.free[self.pool_of(idx)];
        let at = list.partition_point(|&k| k < key);
        debug_assert_eq!(list.get(at), Some(&key), "a free block is listed");
        list.remove(at);
        self.free_bytes -= key.0;
    }

    /// The best-fitting free block of `pool` for `size`, under PyTorch's
    /// rules for oversize blocks.
    #[inline]
    fn find(&self, pool: usize, size: usize) -> Option<u32> {
        let list = &self.free[pool];
        let at = list.partition_point(|&(s, _, _)| s < size);
        let &(block, _, idx) = list.get(at)?;
        let max_split = self.max_split_size;
        if size < max_split && block >= max_split {
            return None;
        }
        if size >= max_split && block >= size.saturating_add(LARGE_SEGMENT) {
            return None;
        }
        Some(idx)
    }

    #[inline]
    fn should_split(&self, pool: usize, size: usize, remaining: usize) -> bool {
        if pool == SMALL {
            remaining >= ROUND
        } else {
            size < self.max_split_size && remaining > SMALL_SIZE
        }
    }

    /// Frees wholly idle segments, smallest first, while `keep_going` says
    /// so; returns how many.
    fn release_idle(&mut self, mut keep_going: impl FnMut(&Self) -> bool) -> u64 {
        let mut idle = std::mem::take(&mut self.idle);
        self.segments.idle_segments(&mut idle);
        let mut freed = 0;
        for &idx in &idle {
            if !keep_going(self) {
                break;
            }
            self.remove_free(idx);
            let segment = self.segments.remove_segment(idx);
            // SAFETY: the segment's one block is free, so no lease lies in
            // it, and it is in no list any more.
            unsafe { self.backing.free(segment.base, segment.bytes) };
            freed += 1;
        }
        self.idle = idle;
        freed
    }

    /// A new segment for a rounded request of `size`: the policy's size;
    /// when the memory refuses it, every wholly idle segment is freed and
    /// it is tried again (PyTorch), then a segment of just `size` (under a
    /// reservation limit smaller than the policy's segment).
    fn new_segment(&mut self, pool: usize, size: usize) -> Result<u32, ScratchError> {
        let bytes = segment_bytes(size).ok_or_else(|| too_large(size))?;
        let (base, bytes) = match self.backing.allocate(bytes) {
            Ok(base) => (base, bytes),
            Err(ScratchError::OutOfMemory { .. } | ScratchError::NeverFits { .. }) => {
                self.release_idle(|_| true);
                match self.backing.allocate(bytes) {
                    Ok(base) => (base, bytes),
                    Err(_) if size < bytes => (self.backing.allocate(size)?, size),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(self
            .segments
            .add_segment(base, M::address(base), bytes, pool as u8))
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
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let size = round_up(request.bytes, ROUND).ok_or_else(|| too_large(request.bytes))?;
        let pool = if size <= SMALL_SIZE { SMALL } else { LARGE };
        let (idx, listed) = match self.find(pool, size) {
            Some(idx) => {
                self.counters.hits += 1;
                (idx, true)
            }
            None => {
                let idx = self.new_segment(pool, size)?;
                self.counters.misses += 1;
                (idx, false)
            }
        };
        let old = self.key(idx);
        let remaining = old.0 - size;
        if self.should_split(pool, size, remaining) {
            let rest = self.segments.split(idx, size);
            if listed {
                self.replace_free(old, rest);
            } else {
                self.insert_free(rest);
            }
        } else if listed {
            self.remove_free(idx);
        }
        let block = *self.segments.block(idx);
        self.segments.block_mut(idx).free = false;
        *grant = Grant {
            base: self.segments.segment(block.segment).base,
            offset: block.offset,
            capacity: block.size,
            token: idx,
            fresh: block.fresh,
        };
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        let idx = grant.token;
        {
            let b = self.segments.block_mut(idx);
            b.free = true;
            b.fresh = false;
        }
        let next = self.segments.block(idx).next;
        let next_free = next != NONE && self.segments.block(next).free;
        let prev = self.segments.block(idx).prev;
        let prev_free = prev != NONE && self.segments.block(prev).free;
        // The merged block takes the list entry of a free neighbour.
        match (prev_free, next_free) {
            (false, false) => self.insert_free(idx),
            (false, true) => {
                let old = self.key(next);
                self.segments.merge_next(idx);
                self.replace_free(old, idx);
            }
            (true, false) => {
                let old = self.key(prev);
                self.segments.merge_next(prev);
                self.replace_free(old, prev);
            }
            (true, true) => {
                self.remove_free(next);
                self.segments.merge_next(idx);
                let old = self.key(prev);
                self.segments.merge_next(prev);
                self.replace_free(old, prev);
            }
        }
        if self.free_bytes > self.max_retained_bytes {
            let cap = self.max_retained_bytes;
            let freed = self.release_idle(|s| s.free_bytes > cap);
            self.counters.evictions += freed;
        }
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
        self.release_idle(|_| true);
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let mut stats = self.counters.report(&self.backing, self.free_bytes);
        stats.splits = self.segments.splits;
        stats.merges = self.segments.merges;
        stats.largest_free_bytes = self
            .free
            .iter()
            .filter_map(|list| list.last().map(|&(size, _, _)| size))
            .max()
            .unwrap_or(0);
        stats
    }
}

impl<M: Memory> Drop for Bfc<M> {
    fn drop(&mut self) {
        // Leases are gone (they borrow the pool); every segment is idle.
        self.release_idle(|_| true);
    }
}
