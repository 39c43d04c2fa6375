//! `best-fit`: idle whole buffers keyed by capacity, the smallest that fits
//! serves a request, and a cap on idle bytes evicts the smallest first
//! (tenferro's `BufferPool`).

use super::{round_up, too_large};
use super::StrategyInfo;
use crate::{
    Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "best-fit",
    policy: "the smallest idle whole buffer that fits; idle bytes capped (`max_retained_bytes`), evicting the smallest first",
    after: "tenferro `BufferPool`",
    stable_addresses: false,
    host_only: false,
};

/// Sizes of new buffers are rounded up to this, so that requests differing
/// by a few bytes can share buffers.
const GRANULE: usize = 256;

/// Idle buffers sorted by capacity, with a cap on their total. Shared by
/// [`BestFit`] and the fallback of [`super::Planned`].
pub(crate) struct FreeList<P> {
    /// `(capacity, base)`, sorted by capacity.
    idle: Vec<(usize, P)>,
    retained_bytes: usize,
    max_retained_bytes: usize,
}

impl<P: Copy> FreeList<P> {
    pub(crate) fn new(max_retained_bytes: usize) -> Self {
        FreeList {
            idle: Vec::new(),
            retained_bytes: 0,
            max_retained_bytes,
        }
    }

    pub(crate) fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }

    /// The largest idle buffer.
    pub(crate) fn largest(&self) -> usize {
        self.idle.last().map_or(0, |&(capacity, _)| capacity)
    }

    /// Serves `request` from the smallest idle buffer that fits, or from a
    /// new buffer, counting the hit or miss.
    #[inline(always)]
    pub(crate) fn acquire<M: Memory<Ptr = P>>(
        &mut self,
        backing: &mut Backing<M>,
        counters: &mut Counters,
        request: Request,
        grant: &mut Grant<P>,
    ) -> Result<(), ScratchError> {
        let idx = self
            .idle
            .partition_point(|&(capacity, _)| capacity < request.bytes);
        if idx < self.idle.len() {
            // The common case takes the largest (last) buffer: pop it rather
            // than shift nothing through a call to memmove.
            let (capacity, base) = if idx + 1 == self.idle.len() {
                self.idle.pop().expect("idx is in bounds")
            } else {
                self.idle.remove(idx)
            };
            self.retained_bytes -= capacity;
            counters.hits += 1;
            *grant = Grant {
                base,
                offset: 0,
                capacity,
                token: 0,
                fresh: false,
            };
            return Ok(());
        }
        let capacity = round_up(request.bytes, GRANULE).ok_or_else(|| too_large(request.bytes))?;
        let base = backing.allocate(capacity)?;
        counters.misses += 1;
        *grant = Grant {
            base,
            offset: 0,
            capacity,
            token: 0,
            fresh: true,
        };
        Ok(())
    }

    /// Takes back an idle buffer, then evicts the smallest idle buffers while
    /// the total is over the cap.
    #[inline(always)]
    pub(crate) fn release<M: Memory<Ptr = P>>(
        &mut self,
        backing: &mut Backing<M>,
        counters: &mut Counters,
        base: P,
        capacity: usize,
    ) {
        if capacity > self.max_retained_bytes {
            // SAFETY: the lease is gone and the buffer is in no list.
            unsafe { backing.free(base, capacity) };
            counters.evictions += 1;
            return;
        }
        let idx = self.idle.partition_point(|&(c, _)| c < capacity);
        if idx == self.idle.len() {
            self.idle.push((capacity, base));
        } else {
            self.idle.insert(idx, (capacity, base));
        }
        self.retained_bytes += capacity;
        while self.retained_bytes > self.max_retained_bytes {
            let (c, b) = self.idle.remove(0);
            self.retained_bytes -= c;
            // SAFETY: idle buffers belong to no lease.
            unsafe { backing.free(b, c) };
            counters.evictions += 1;
        }
    }

    /// Frees every idle buffer.
    pub(crate) fn clear<M: Memory<Ptr = P>>(&mut self, backing: &mut Backing<M>) {
        for (capacity, base) in self.idle.drain(..) {
            // SAFETY: idle buffers belong to no lease.
            unsafe { backing.free(base, capacity) };
        }
        self.retained_bytes = 0;
    }
}

/// Whole-buffer best fit with a retained-bytes cap. It cannot split a buffer,
/// so a large idle buffer may serve a small request, and its peak is well
/// above the lower bound when sizes vary; the cap trades reuse for footprint.
pub struct BestFit<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    free: FreeList<M::Ptr>,
}

impl<M: Memory> BestFit<M> {
    /// A best-fit pool over `memory` with `options.max_retained_bytes`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        BestFit {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            free: FreeList::new(options.max_retained_bytes),
        }
    }
}

// SAFETY: a grant is a whole buffer, fresh from the backing or removed from
// the idle list (so no live lease holds it); buffers are freed only while
// idle.
unsafe impl<M: Memory> ScratchPool<M> for BestFit<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        self.free
            .acquire(&mut self.backing, &mut self.counters, request, grant)
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        self.free.release(
            &mut self.backing,
            &mut self.counters,
            grant.base,
            grant.capacity,
        );
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
        self.free.clear(&mut self.backing);
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let mut stats = self
            .counters
            .report(&self.backing, self.free.retained_bytes());
        stats.largest_free_bytes = self.free.largest();
        stats
    }
}

impl<M: Memory> Drop for BestFit<M> {
    fn drop(&mut self) {
        self.free.clear(&mut self.backing);
    }
}
