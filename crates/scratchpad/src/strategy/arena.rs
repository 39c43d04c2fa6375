//! `arena`: bump allocation within chunks. Releasing the newest lease pops the
//! bump pointer; other releases wait for their scope's end, which resets it
//! (SmallMind's arena, ggml's context memory).

use super::{round_up, too_large};
use super::StrategyInfo;
use crate::{
    BLOCK_ALIGN, Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "arena",
    policy: "bump within chunks; releasing the newest lease pops, the rest waits for the scope's end; chunks consolidate into one",
    after: "bump allocation, SmallMind's arena",
    stable_addresses: true,
    host_only: false,
};

/// The smallest chunk the arena allocates.
const MIN_CHUNK: usize = 64 << 10;

#[derive(Clone, Copy)]
struct Chunk<P> {
    base: P,
    size: usize,
    used: usize,
}

/// Bump allocation in a list of chunks. Chunks before `current` are full or
/// in use, chunks after it are empty; a full chunk moves the arena to the
/// next one that fits, or to a new one as large as everything reserved so
/// far. When the outermost scope ends with several chunks, they are replaced
/// by one chunk of their total size, so a steady workload settles into one
/// chunk and no backing calls.
pub struct Arena<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    chunks: Vec<Chunk<M::Ptr>>,
    /// Index of the chunk being bumped (0 when there are none).
    current: usize,
    /// The chunk being bumped, out of the list so that a bump reads no
    /// vector: its `used` is the one that counts (`chunks[current].used` is
    /// stale until [`Arena::sync`]). Size 0 when there are no chunks.
    bump: Chunk<M::Ptr>,
    /// `(chunk, used)` at the start of each open scope.
    marks: Vec<(usize, usize)>,
}

impl<M: Memory> Arena<M> {
    /// An arena over `memory`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        Arena {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            chunks: Vec::new(),
            current: 0,
            bump: Chunk {
                base: M::dangling(),
                size: 0,
                used: 0,
            },
            marks: Vec::with_capacity(16),
        }
    }

    /// Writes the bump's `used` back to its chunk.
    fn sync(&mut self) {
        if let Some(chunk) = self.chunks.get_mut(self.current) {
            chunk.used = self.bump.used;
        }
    }

    /// Takes the current chunk as the bump.
    fn load(&mut self) {
        self.bump = self.chunks.get(self.current).copied().unwrap_or(Chunk {
            base: M::dangling(),
            size: 0,
            used: 0,
        });
    }

    /// Bytes used in chunk `idx`.
    fn used(&self, idx: usize) -> usize {
        if idx == self.current {
            self.bump.used
        } else {
            self.chunks[idx].used
        }
    }

    fn free_chunks_from(&mut self, first: usize) {
        for chunk in self.chunks.drain(first..) {
            // SAFETY: chunks past the current one hold no live lease, and
            // callers free all chunks only when no scope (so no lease) is open.
            unsafe { self.backing.free(chunk.base, chunk.size) };
        }
    }

    /// Replaces several chunks by one of their total size. Only called when
    /// no scope is open, so no lease lives in any chunk.
    fn consolidate(&mut self) {
        let total: usize = self.chunks.iter().map(|c| c.size).sum();
        self.free_chunks_from(0);
        self.current = 0;
        if let Ok(base) = self.backing.allocate(total) {
            self.chunks.push(Chunk {
                base,
                size: total,
                used: 0,
            });
        }
    }

    /// [`ScratchPool::release`] of a lease of `bytes`: pops the bump if the
    /// lease is the newest.
    #[inline]
    pub(crate) fn release_bytes(&mut self, bytes: usize, grant: &Grant<M::Ptr>) {
        if grant.token as usize == self.current && grant.offset + bytes == self.bump.used {
            self.bump.used = grant.offset;
        }
    }

    /// The current chunk is full (or there is none): a later chunk that
    /// fits, else a new one. (The request in registers: see
    /// `strategy::held`.)
    #[cold]
    #[inline(never)]
    fn acquire_slow(
        &mut self,
        bytes: usize,
        align: u32,
        grant: &mut Grant<M::Ptr>,
    ) -> Result<(), ScratchError> {
        self.sync();
        let served = self.acquire_in_chunks(bytes, align, grant);
        self.load();
        served
    }

    fn acquire_in_chunks(
        &mut self,
        bytes: usize,
        align: u32,
        grant: &mut Grant<M::Ptr>,
    ) -> Result<(), ScratchError> {
        if let Some(chunk) = self.chunks.get_mut(self.current) {
            let start =
                round_up(chunk.used, align as usize).ok_or_else(|| too_large(bytes))?;
            if start
                .checked_add(bytes)
                .is_some_and(|end| end <= chunk.size)
            {
                chunk.used = start + bytes;
                self.counters.hits += 1;
                let token = self.current as u32;
                *grant = Grant {
                    base: chunk.base,
                    offset: start,
                    capacity: bytes,
                    token,
                    fresh: false,
                };
                return Ok(());
            }
            if let Some(next) =
                (self.current + 1..self.chunks.len()).find(|&j| self.chunks[j].size >= bytes)
            {
                self.current = next;
                let chunk = &mut self.chunks[next];
                chunk.used = bytes;
                self.counters.hits += 1;
                *grant = Grant {
                    base: chunk.base,
                    offset: 0,
                    capacity: bytes,
                    token: next as u32,
                    fresh: false,
                };
                return Ok(());
            }
        }
        let reserved = self.backing.reserved();
        let needed = round_up(bytes, BLOCK_ALIGN).ok_or_else(|| too_large(bytes))?;
        // Grow geometrically, but never past a reservation limit for a
        // request that fits under it.
        let room = self
            .backing
            .limit()
            .map_or(usize::MAX, |limit| limit.saturating_sub(reserved));
        let size = needed.max(reserved.max(MIN_CHUNK).min(room));
        let base = self.backing.allocate(size)?;
        self.counters.misses += 1;
        let idx = if self.chunks.is_empty() {
            0
        } else {
            self.current + 1
        };
        self.chunks.insert(
            idx,
            Chunk {
                base,
                size,
                used: bytes,
            },
        );
        self.current = idx;
        *grant = Grant {
            base,
            offset: 0,
            capacity: bytes,
            token: idx as u32,
            fresh: true,
        };
        Ok(())
    }
}

// SAFETY: grants are `[start, start + bytes)` with `start` at or past the
// chunk's bump pointer and the pointer moved past the end, so live leases in
// a chunk never overlap. The pointer moves back only (a) on the release of
// the lease that ends exactly at it, uncovering only that lease's bytes, or
// (b) on a scope exit with `may_reset`, when every lease acquired since the
// scope's mark has been released: leases acquired before lie below the mark,
// and a lease acquired for an outer scope meanwhile clears `may_reset`.
// Chunks are freed only when empty (past `current`) or when no scope is open.
unsafe impl<M: Memory> ScratchPool<M> for Arena<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    #[inline]
    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        // The bump: the current chunk has room.
        let align = request.align as usize - 1;
        if let Some((start, end)) = self
            .bump
            .used
            .checked_add(align)
            .map(|u| u & !align)
            .and_then(|start| start.checked_add(request.bytes).map(|end| (start, end)))
            .filter(|&(_, end)| end <= self.bump.size)
        {
            self.bump.used = end;
            self.counters.hits += 1;
            *grant = Grant {
                base: self.bump.base,
                offset: start,
                capacity: request.bytes,
                token: self.current as u32,
                fresh: false,
            };
            return Ok(());
        }
        self.acquire_slow(request.bytes, request.align, grant)
    }

    #[inline]
    fn release(&mut self, request: Request, grant: &Grant<M::Ptr>) {
        self.release_bytes(request.bytes, grant);
    }

    fn enter_scope(&mut self) {
        self.marks.push((self.current, self.bump.used));
    }

    fn exit_scope(&mut self, may_reset: bool) {
        let (mark_chunk, mark_used) = self.marks.pop().expect("exit_scope without enter_scope");
        if !may_reset || self.chunks.is_empty() {
            return;
        }
        for chunk in &mut self.chunks[mark_chunk + 1..=self.current] {
            chunk.used = 0;
        }
        self.current = mark_chunk;
        self.chunks[mark_chunk].used = mark_used;
        if self.marks.is_empty() && self.chunks.len() > 1 {
            self.consolidate();
        }
        self.load();
    }

    fn trim(&mut self) {
        self.sync();
        self.counters.trims += 1;
        if self.marks.is_empty() {
            self.free_chunks_from(0);
            self.current = 0;
        } else if self.current + 1 < self.chunks.len() {
            self.free_chunks_from(self.current + 1);
        }
        self.load();
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let free = || (0..self.chunks.len()).map(|i| self.chunks[i].size - self.used(i));
        let idle = free().sum();
        let mut stats = self.counters.report(&self.backing, idle);
        stats.largest_free_bytes = free().max().unwrap_or(0);
        stats
    }
}

impl<M: Memory> Drop for Arena<M> {
    fn drop(&mut self) {
        self.free_chunks_from(0);
    }
}
