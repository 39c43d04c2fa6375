//! Segments split into blocks, the bookkeeping `bfc` and `tlsf` share:
//! each segment is one allocation of the memory, cut into blocks that lie
//! end to end in address order (a doubly linked list of physical
//! neighbours), each free or leased. Blocks are split to serve a request
//! and merged with free neighbours when released. All of it lives in
//! vectors beside the memory, never in the managed bytes, so it works on
//! device memory unchanged; freed slots are reused, so once warm nothing
//! here allocates.

use crate::{Backing, Counters, Grant, Memory, ScratchError, StrategyStats};

/// "No block": the end of a neighbour list.
pub(crate) const NONE: u32 = u32::MAX;

/// One block: `size` bytes at `offset` in segment `segment`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) segment: u32,
    /// The segment's label, copied here for the hot paths.
    pub(crate) class: u8,
    pub(crate) offset: usize,
    /// The segment's base address plus `offset`: the address order of
    /// `bfc`'s best fit, without a lookup of the segment.
    pub(crate) address: usize,
    pub(crate) size: usize,
    pub(crate) free: bool,
    /// Never written since the memory zeroed it.
    pub(crate) fresh: bool,
    /// Physical neighbours in the segment.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Links of the strategy's free list (`tlsf`), or unused.
    pub(crate) prev_free: u32,
    pub(crate) next_free: u32,
}

/// One allocation of the memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment<P> {
    pub(crate) base: P,
    pub(crate) bytes: usize,
    /// Its first block, which never changes: merges absorb a block into
    /// the one before it.
    pub(crate) first: u32,
}

/// Every segment and block of one strategy.
pub(crate) struct Segments<P> {
    blocks: Vec<Block>,
    vacant_blocks: Vec<u32>,
    segments: Vec<Option<Segment<P>>>,
    vacant_segments: Vec<u32>,
    /// Splits and merges so far.
    pub(crate) splits: u64,
    pub(crate) merges: u64,
}

impl<P: Copy> Segments<P> {
    pub(crate) fn new() -> Self {
        Segments {
            blocks: Vec::new(),
            vacant_blocks: Vec::new(),
            segments: Vec::new(),
            vacant_segments: Vec::new(),
            splits: 0,
            merges: 0,
        }
    }

    #[inline]
    pub(crate) fn block(&self, idx: u32) -> &Block {
        &self.blocks[idx as usize]
    }

    #[inline]
    pub(crate) fn block_mut(&mut self, idx: u32) -> &mut Block {
        &mut self.blocks[idx as usize]
    }

    #[inline]
    pub(crate) fn segment(&self, idx: u32) -> &Segment<P> {
        self.segments[idx as usize]
            .as_ref()
            .expect("a block's segment is live")
    }

    #[inline]
    fn new_block(&mut self, block: Block) -> u32 {
        match self.vacant_blocks.pop() {
            Some(idx) => {
                self.blocks[idx as usize] = block;
                idx
            }
            None => {
                self.blocks.push(block);
                u32::try_from(self.blocks.len() - 1).expect("fewer than 2^32 blocks")
            }
        }
    }

    /// Adds a fresh segment and returns its one block, free, spanning it.
    pub(crate) fn add_segment(&mut self, base: P, address: usize, bytes: usize, class: u8) -> u32 {
        let segment = Segment {
            base,
            bytes,
            first: NONE,
        };
        let seg = match self.vacant_segments.pop() {
            Some(idx) => {
                self.segments[idx as usize] = Some(segment);
                idx
            }
            None => {
                self.segments.push(Some(segment));
                u32::try_from(self.segments.len() - 1).expect("fewer than 2^32 segments")
            }
        };
        let first = self.new_block(Block {
            segment: seg,
            class,
            offset: 0,
            address,
            size: bytes,
            free: true,
            fresh: true,
            prev: NONE,
            next: NONE,
            prev_free: NONE,
            next_free: NONE,
        });
        if let Some(s) = self.segments[seg as usize].as_mut() {
            s.first = first;
        }
        first
    }

    /// Cuts block `idx` after its first `size` bytes; the rest becomes a new
    /// free block (returned), placed after it.
    #[inline]
    pub(crate) fn split(&mut self, idx: u32, size: usize) -> u32 {
        let block = *self.block(idx);
        debug_assert!(size < block.size);
        let rest = self.new_block(Block {
            segment: block.segment,
            class: block.class,
            offset: block.offset + size,
            address: block.address + size,
            size: block.size - size,
            free: true,
            fresh: block.fresh,
            prev: idx,
            next: block.next,
            prev_free: NONE,
            next_free: NONE,
        });
        if block.next != NONE {
            self.block_mut(block.next).prev = rest;
        }
        let b = self.block_mut(idx);
        b.size = size;
        b.next = rest;
        self.splits += 1;
        rest
    }

    /// Absorbs block `idx`'s next neighbour (free, out of every list) into
    /// it; the neighbour's slot is reused later.
    #[inline]
    pub(crate) fn merge_next(&mut self, idx: u32) {
        let next = self.block(idx).next;
        let absorbed = *self.block(next);
        debug_assert!(absorbed.free);
        if absorbed.next != NONE {
            self.block_mut(absorbed.next).prev = idx;
        }
        let b = self.block_mut(idx);
        b.size += absorbed.size;
        b.next = absorbed.next;
        b.fresh &= absorbed.fresh;
        self.vacant_blocks.push(next);
        self.merges += 1;
    }

    /// True when block `idx` spans its whole segment.
    #[inline]
    pub(crate) fn spans_segment(&self, idx: u32) -> bool {
        let b = self.block(idx);
        b.prev == NONE && b.next == NONE
    }

    /// Drops the segment of block `idx` (which spans it, free and out of
    /// every list) and returns it for the caller to free.
    pub(crate) fn remove_segment(&mut self, idx: u32) -> Segment<P> {
        debug_assert!(self.spans_segment(idx) && self.block(idx).free);
        let seg = self.block(idx).segment;
        self.vacant_blocks.push(idx);
        self.vacant_segments.push(seg);
        self.segments[seg as usize]
            .take()
            .expect("the segment is live")
    }

    /// The block of every wholly idle segment (one free block spanning
    /// it), smallest segment first, into `out` (cleared first).
    pub(crate) fn idle_segments(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.segments
                .iter()
                .flatten()
                .map(|s| s.first)
                .filter(|&b| self.block(b).free && self.spans_segment(b)),
        );
        out.sort_unstable_by_key(|&b| self.block(b).size);
    }
}

/// A strategy's index of its free blocks: `bfc`'s sorted lists, `tlsf`'s
/// bitmapped size classes. The blocks themselves are in [`Segments`].
pub(crate) trait FreeIndex<P> {
    /// Lists free block `idx`.
    fn insert(&mut self, segments: &mut Segments<P>, idx: u32);
    /// Takes listed block `idx` out.
    fn remove(&mut self, segments: &mut Segments<P>, idx: u32);
    /// Bytes in listed blocks.
    fn free_bytes(&self) -> usize;
}

/// Segments of a memory, cut into blocks, with a strategy's index of the
/// free ones: what `bfc` and `tlsf` share (taking segments, freeing idle
/// ones, handing out and taking back blocks); the strategies differ in
/// their index and in how they choose, split and merge.
pub(crate) struct SegmentHeap<M: Memory, I: FreeIndex<M::Ptr>> {
    pub(crate) backing: Backing<M>,
    pub(crate) segments: Segments<M::Ptr>,
    pub(crate) index: I,
    /// Reused by [`SegmentHeap::release_idle`].
    idle: Vec<u32>,
}

impl<M: Memory, I: FreeIndex<M::Ptr>> SegmentHeap<M, I> {
    pub(crate) fn new(backing: Backing<M>, index: I) -> Self {
        SegmentHeap {
            backing,
            segments: Segments::new(),
            index,
            idle: Vec::new(),
        }
    }

    /// Frees wholly idle segments, smallest first, while `keep_going` says
    /// so of the bytes still free; returns how many.
    pub(crate) fn release_idle(&mut self, mut keep_going: impl FnMut(usize) -> bool) -> u64 {
        let mut idle = std::mem::take(&mut self.idle);
        self.segments.idle_segments(&mut idle);
        let mut freed = 0;
        for &idx in &idle {
            if !keep_going(self.index.free_bytes()) {
                break;
            }
            self.index.remove(&mut self.segments, idx);
            let segment = self.segments.remove_segment(idx);
            // SAFETY: the segment's one block is free, so no lease lies in
            // it, and it is in no list any more.
            unsafe { self.backing.free(segment.base, segment.bytes) };
            freed += 1;
        }
        self.idle = idle;
        freed
    }

    /// Frees wholly idle segments while the free bytes exceed `cap`;
    /// returns how many (evictions).
    pub(crate) fn hold_to(&mut self, cap: usize) -> u64 {
        if self.index.free_bytes() > cap {
            self.release_idle(|free| free > cap)
        } else {
            0
        }
    }

    /// A new segment of `bytes` (the policy's size) for a request of `size`
    /// bytes, as one free block, unlisted. When the memory refuses it,
    /// every wholly idle segment is freed and it is tried again, then a
    /// segment of just `size` (under a reservation limit smaller than the
    /// policy's segment).
    pub(crate) fn new_segment(
        &mut self,
        bytes: usize,
        size: usize,
        class: u8,
    ) -> Result<u32, ScratchError> {
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
            .add_segment(base, M::address(base), bytes, class))
    }

    /// Marks block `idx` (out of the index) leased and its grant.
    #[inline]
    pub(crate) fn lease(&mut self, idx: u32) -> Grant<M::Ptr> {
        let block = *self.segments.block(idx);
        self.segments.block_mut(idx).free = false;
        Grant {
            base: self.segments.segment(block.segment).base,
            offset: block.offset,
            capacity: block.size,
            token: idx,
            fresh: block.fresh,
        }
    }

    /// Marks the released block `idx` free (and written); not listed yet.
    #[inline]
    pub(crate) fn take_back(&mut self, idx: u32) {
        let b = self.segments.block_mut(idx);
        b.free = true;
        b.fresh = false;
    }

    /// Merges free block `idx` (unlisted) with its free neighbours and
    /// lists the result.
    #[inline]
    pub(crate) fn coalesce(&mut self, mut idx: u32) {
        let next = self.segments.block(idx).next;
        if next != NONE && self.segments.block(next).free {
            self.index.remove(&mut self.segments, next);
            self.segments.merge_next(idx);
        }
        let prev = self.segments.block(idx).prev;
        if prev != NONE && self.segments.block(prev).free {
            self.index.remove(&mut self.segments, prev);
            self.segments.merge_next(prev);
            idx = prev;
        }
        self.index.insert(&mut self.segments, idx);
    }

    /// The strategy's figures: `counters` with the reservation, the free
    /// bytes, splits and merges (the largest free block is the index's to
    /// say).
    pub(crate) fn stats(&self, counters: &Counters) -> StrategyStats {
        let mut stats = counters.report(&self.backing, self.index.free_bytes());
        stats.splits = self.segments.splits;
        stats.merges = self.segments.merges;
        stats
    }
}

impl<M: Memory, I: FreeIndex<M::Ptr>> Drop for SegmentHeap<M, I> {
    fn drop(&mut self) {
        // Leases are gone (they borrow the pool); every segment is idle.
        self.release_idle(|_| true);
    }
}
