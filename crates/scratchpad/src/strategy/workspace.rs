//! `workspace`: persistent buffers per call site, grown on demand
//! (SmallMind's `GetOrAllocateWorkspace`). Zero allocations once warm, and
//! the largest footprint: nothing is ever shared between call sites.

use super::{round_up, too_large};
use super::StrategyInfo;
use crate::{
    BLOCK_ALIGN, Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "workspace",
    policy: "persistent buffers per call site, grown on demand; a second buffer when the tag's first is leased",
    after: "SmallMind `GetOrAllocateWorkspace`",
    stable_addresses: true,
    host_only: false,
};

struct Buffer<P> {
    /// `None` once trimmed.
    base: Option<P>,
    capacity: usize,
    leased: bool,
}

/// One list of buffers per tag. A request takes the tag's first idle buffer
/// that fits; if the tag's idle buffers are all too small, the first is
/// regrown; if all are leased, a new one is added, so two live leases of a
/// tag never share a buffer.
pub struct Workspace<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    /// Buffers by tag index.
    buffers: Vec<Vec<Buffer<M::Ptr>>>,
    retained_bytes: usize,
}

impl<M: Memory> Workspace<M> {
    /// A workspace pool over `memory`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        Workspace {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            buffers: Vec::new(),
            retained_bytes: 0,
        }
    }

    fn free_idle(&mut self) {
        for buffer in self.buffers.iter_mut().flatten().filter(|b| !b.leased) {
            if let Some(base) = buffer.base.take() {
                // SAFETY: an idle buffer belongs to no lease.
                unsafe { self.backing.free(base, buffer.capacity) };
            }
            buffer.capacity = 0;
        }
        self.retained_bytes = 0;
    }
}

// SAFETY: a grant is a whole buffer that was idle (no live lease holds it)
// or freshly allocated, and it is marked leased until its release; buffers
// are freed only while idle.
unsafe impl<M: Memory> ScratchPool<M> for Workspace<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let tag = request.tag.index();
        if self.buffers.len() <= tag {
            self.buffers.resize_with(tag + 1, Vec::new);
        }
        let list = &mut self.buffers[tag];
        let fits = |b: &Buffer<M::Ptr>| !b.leased && b.capacity >= request.bytes;
        if let Some(idx) = list.iter().position(fits) {
            let buffer = &mut list[idx];
            buffer.leased = true;
            self.retained_bytes -= buffer.capacity;
            self.counters.hits += 1;
            let base = buffer.base.expect("a buffer with capacity has a base");
            *grant = Grant {
                base,
                offset: 0,
                capacity: buffer.capacity,
                token: idx as u32,
                fresh: false,
            };
            return Ok(());
        }
        let capacity =
            round_up(request.bytes, BLOCK_ALIGN).ok_or_else(|| too_large(request.bytes))?;
        let idx = match list.iter().position(|b| !b.leased) {
            Some(idx) => {
                // Too small: free it first, so the regrown buffer does not
                // raise the peak by the old one's size.
                let buffer = &mut list[idx];
                if let Some(base) = buffer.base.take() {
                    // SAFETY: the buffer is idle.
                    unsafe { self.backing.free(base, buffer.capacity) };
                }
                self.retained_bytes -= buffer.capacity;
                buffer.capacity = 0;
                idx
            }
            None => {
                list.push(Buffer {
                    base: None,
                    capacity: 0,
                    leased: false,
                });
                list.len() - 1
            }
        };
        let base = self.backing.allocate(capacity)?;
        let buffer = &mut self.buffers[tag][idx];
        *buffer = Buffer {
            base: Some(base),
            capacity,
            leased: true,
        };
        self.counters.misses += 1;
        *grant = Grant {
            base,
            offset: 0,
            capacity,
            token: idx as u32,
            fresh: true,
        };
        Ok(())
    }

    fn release(&mut self, request: Request, grant: &Grant<M::Ptr>) {
        let buffer = &mut self.buffers[request.tag.index()][grant.token as usize];
        buffer.leased = false;
        self.retained_bytes += buffer.capacity;
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
        self.free_idle();
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let mut stats = self.counters.report(&self.backing, self.retained_bytes);
        // The largest idle buffer (it serves its own call site only).
        stats.largest_free_bytes = self
            .buffers
            .iter()
            .flatten()
            .filter(|b| !b.leased)
            .map(|b| b.capacity)
            .max()
            .unwrap_or(0);
        stats
    }
}

impl<M: Memory> Drop for Workspace<M> {
    fn drop(&mut self) {
        self.free_idle();
    }
}
