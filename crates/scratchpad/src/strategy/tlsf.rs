//! `tlsf`: two-level segregated fit (Masmano, Ripoll, Crespo and Real,
//! "TLSF: a new dynamic memory allocator for real-time systems", ECRTS
//! 2004), the default algorithm of Vulkan Memory Allocator and D3D12MA.
//!
//! Free blocks sit in lists by size class: the first level is the power of
//! two (`fl = ⌊log2 size⌋`), the second splits each power of two into 32
//! linear steps. Two levels of bitmaps say which lists are non-empty, so
//! finding a block at least as large as a request is a few bit scans:
//! O(1) acquire and release. A found block is split when the remainder is
//! at least 64 bytes; a released block merges at once with its free
//! neighbours. Segments come from the memory as needed (at least 1 MiB,
//! or the request's power of two); `trim` and the retained-bytes cap free
//! wholly idle ones.

use super::segments::{FreeIndex, NONE, SegmentHeap, Segments};
use super::{round_up, too_large};
use super::StrategyInfo;
use crate::{
    Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "tlsf",
    policy: "two-level segregated fit: O(1) acquire and release through a power-of-two and a 32-way linear bitmap of free lists, immediate coalescing",
    after: "Vulkan Memory Allocator, D3D12MA (Masmano et al. 2004)",
    stable_addresses: false,
    host_only: false,
};

/// log2 of the second-level lists per power of two.
const SL_BITS: u32 = 5;
const SL_COUNT: usize = 1 << SL_BITS;
/// Every block size is a multiple of this (and so every offset).
pub const GRANULE: usize = 64;
/// The smallest first level: sizes below `2^(SL_BITS + 6)` share it.
const FL_SHIFT: u32 = SL_BITS + GRANULE.trailing_zeros();
/// First levels: enough for any `usize`.
const FL_COUNT: usize = usize::BITS as usize - FL_SHIFT as usize + 1;
/// The smallest segment taken from the memory.
pub const MIN_SEGMENT: usize = 1 << 20;

/// The `(fl, sl)` list a free block of `size` belongs in.
fn mapping_insert(size: usize) -> (usize, usize) {
    if size < 1 << FL_SHIFT {
        // Below the first power of two with full resolution: linear.
        (0, size / GRANULE)
    } else {
        let fl = usize::BITS - 1 - size.leading_zeros();
        let sl = (size >> (fl - SL_BITS)) & (SL_COUNT - 1);
        ((fl - FL_SHIFT + 1) as usize, sl)
    }
}

/// The first list whose every block is at least `size`: `size` rounded up
/// to the next list boundary, then mapped.
fn mapping_search(size: usize) -> Option<(usize, usize)> {
    if size < 1 << FL_SHIFT {
        return Some(mapping_insert(size));
    }
    let fl = usize::BITS - 1 - size.leading_zeros();
    let rounded = size.checked_add((1 << (fl - SL_BITS)) - 1)?;
    Some(mapping_insert(rounded))
}

/// `tlsf`'s free blocks: a list per size class, linked through the blocks,
/// and two levels of bitmaps of the non-empty lists.
struct SizeClasses {
    fl_bitmap: u64,
    sl_bitmap: [u32; FL_COUNT],
    heads: [[u32; SL_COUNT]; FL_COUNT],
    free_bytes: usize,
}

impl SizeClasses {
    /// Takes block `idx` out of list `(fl, sl)`, where it is.
    #[inline]
    fn unlink<P: Copy>(&mut self, segments: &mut Segments<P>, idx: u32, fl: usize, sl: usize) {
        let b = *segments.block(idx);
        if b.prev_free != NONE {
            segments.block_mut(b.prev_free).next_free = b.next_free;
        } else {
            self.heads[fl][sl] = b.next_free;
        }
        if b.next_free != NONE {
            segments.block_mut(b.next_free).prev_free = b.prev_free;
        }
        if self.heads[fl][sl] == NONE {
            self.sl_bitmap[fl] &= !(1 << sl);
            if self.sl_bitmap[fl] == 0 {
                self.fl_bitmap &= !(1 << fl);
            }
        }
        self.free_bytes -= b.size;
    }

    /// The head of the first non-empty list whose blocks all hold `size`,
    /// with that list.
    #[inline]
    fn find(&self, size: usize) -> Option<(u32, usize, usize)> {
        let (fl, sl) = mapping_search(size)?;
        if fl >= FL_COUNT {
            return None;
        }
        let in_level = self.sl_bitmap[fl] & (u32::MAX << sl);
        let (fl, sl) = if in_level != 0 {
            (fl, in_level.trailing_zeros() as usize)
        } else {
            let above = self.fl_bitmap & u64::MAX.checked_shl(fl as u32 + 1).unwrap_or(0);
            if above == 0 {
                return None;
            }
            let fl = above.trailing_zeros() as usize;
            (fl, self.sl_bitmap[fl].trailing_zeros() as usize)
        };
        Some((self.heads[fl][sl], fl, sl))
    }

    /// The largest free block: in the highest non-empty list.
    fn largest<P: Copy>(&self, segments: &Segments<P>) -> usize {
        if self.fl_bitmap == 0 {
            return 0;
        }
        let fl = 63 - self.fl_bitmap.leading_zeros() as usize;
        let sl = 31 - self.sl_bitmap[fl].leading_zeros() as usize;
        let mut idx = self.heads[fl][sl];
        let mut largest = 0;
        while idx != NONE {
            let b = segments.block(idx);
            largest = largest.max(b.size);
            idx = b.next_free;
        }
        largest
    }
}

impl<P: Copy> FreeIndex<P> for SizeClasses {
    #[inline]
    fn insert(&mut self, segments: &mut Segments<P>, idx: u32) {
        let size = segments.block(idx).size;
        let (fl, sl) = mapping_insert(size);
        let head = self.heads[fl][sl];
        {
            let b = segments.block_mut(idx);
            b.prev_free = NONE;
            b.next_free = head;
        }
        if head != NONE {
            segments.block_mut(head).prev_free = idx;
        }
        self.heads[fl][sl] = idx;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmap[fl] |= 1 << sl;
        self.free_bytes += size;
    }

    #[inline]
    fn remove(&mut self, segments: &mut Segments<P>, idx: u32) {
        let (fl, sl) = mapping_insert(segments.block(idx).size);
        self.unlink(segments, idx, fl, sl);
    }

    fn free_bytes(&self) -> usize {
        self.free_bytes
    }
}

/// Two-level segregated fit over segments of the memory.
pub struct Tlsf<M: Memory> {
    heap: SegmentHeap<M, SizeClasses>,
    counters: Counters,
    max_retained_bytes: usize,
}

impl<M: Memory> Tlsf<M> {
    /// A `tlsf` pool over `memory`; idle segments beyond
    /// `options.max_retained_bytes` are freed.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        let classes = SizeClasses {
            fl_bitmap: 0,
            sl_bitmap: [0; FL_COUNT],
            heads: [[NONE; SL_COUNT]; FL_COUNT],
            free_bytes: 0,
        };
        Tlsf {
            heap: SegmentHeap::new(Backing::with_limit(memory, options.reserve_limit), classes),
            counters: Counters::default(),
            max_retained_bytes: options.max_retained_bytes,
        }
    }
}

// SAFETY: a grant is one block of a segment the strategy holds: its offset
// and size are multiples of 64 inside the segment, whose base is 64-aligned.
// The blocks of a segment are disjoint and tile it; a block is granted only
// when taken out of the free lists and is marked leased until its release,
// so no two live leases share a byte. Segments are freed only when their one
// block is free.
unsafe impl<M: Memory> ScratchPool<M> for Tlsf<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.heap.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let size = round_up(request.bytes, GRANULE).ok_or_else(|| too_large(request.bytes))?;
        let heap = &mut self.heap;
        let idx = match heap.index.find(size) {
            Some((idx, fl, sl)) => {
                heap.index.unlink(&mut heap.segments, idx, fl, sl);
                self.counters.hits += 1;
                idx
            }
            None => {
                // The request's power of two, at least MIN_SEGMENT.
                let bytes = size
                    .checked_next_power_of_two()
                    .ok_or_else(|| too_large(request.bytes))?
                    .max(MIN_SEGMENT);
                let idx = heap.new_segment(bytes, size, 0)?;
                self.counters.misses += 1;
                idx
            }
        };
        if heap.segments.block(idx).size - size >= GRANULE {
            let rest = heap.segments.split(idx, size);
            heap.index.insert(&mut heap.segments, rest);
        }
        *grant = heap.lease(idx);
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        self.heap.take_back(grant.token);
        self.heap.coalesce(grant.token);
        self.counters.evictions += self.heap.hold_to(self.max_retained_bytes);
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
        stats.largest_free_bytes = self.heap.index.largest(&self.heap.segments);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest size list `(fl, sl)` holds.
    fn list_start((fl, sl): (usize, usize)) -> usize {
        if fl == 0 {
            sl * GRANULE
        } else {
            let fl_raw = fl as u32 + FL_SHIFT - 1;
            (1 << fl_raw) + (sl << (fl_raw - SL_BITS))
        }
    }

    #[test]
    fn every_block_in_a_searched_list_is_large_enough() {
        for size in (GRANULE..1 << 26).step_by(GRANULE * 13) {
            let found = mapping_search(size).unwrap();
            assert!(list_start(found) >= size, "{size}: list {found:?}");
            let home = mapping_insert(size);
            assert!(list_start(home) <= size && home <= found, "{size}: {home:?}");
            // The list right after a block's own starts above it.
            let next = if home.1 + 1 < SL_COUNT { (home.0, home.1 + 1) } else { (home.0 + 1, 0) };
            assert!(list_start(next) > size, "{size}: {home:?}");
        }
    }

    #[test]
    fn the_first_levels_cover_every_size() {
        let (fl, _) = mapping_insert(usize::MAX & !(GRANULE - 1));
        assert!(fl < FL_COUNT && FL_COUNT <= 64);
    }
}
