//! Segments split into blocks, the bookkeeping `bfc` and `tlsf` share:
//! each segment is one allocation of the memory, cut into blocks that lie
//! end to end in address order (a doubly linked list of physical
//! neighbours), each free or leased. Blocks are split to serve a request
//! and merged with free neighbours when released. All of it lives in
//! vectors beside the memory, never in the managed bytes, so it works on
//! device memory unchanged; freed slots are reused, so once warm nothing
//! here allocates.

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
