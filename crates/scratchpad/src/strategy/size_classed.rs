//! `size-classed`: power-of-two classes from 256 B, a LIFO free list per
//! class, a cap on buffers retained per class (SKaiNET's
//! `SizeClassedScratchPool`, atomr's `WorkspacePool`).

use super::too_large;
use crate::{
    Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// log2 of the smallest class.
const MIN_CLASS_SHIFT: u32 = 8;
/// Classes from 2^8 to 2^62 bytes.
const N_CLASSES: usize = (62 - MIN_CLASS_SHIFT + 1) as usize;

/// Rounds every request up to a power of two of at least 256 bytes and keeps
/// up to `per_class_cap` idle buffers per class, the most recently released
/// first. When a request's class has no idle buffer, the smallest larger
/// class that has one serves it (the buffer returns to its own class), so a
/// pool warmed at the largest sizes serves every smaller step without
/// allocating. Internal waste is at least up to half of each buffer; lookups
/// cost a bit scan.
pub struct SizeClassed<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    /// Idle buffers per class, used as a stack.
    free: Vec<Vec<M::Ptr>>,
    per_class_cap: usize,
    retained_bytes: usize,
    /// Bit `i` is set when class `i` has an idle buffer.
    nonempty: u64,
}

impl<M: Memory> SizeClassed<M> {
    /// A size-classed pool over `memory` with `options.per_class_cap`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        // Every free list gets its full capacity now, so releases never
        // allocate on the heap.
        let per_list = options.per_class_cap.min(64);
        SizeClassed {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            free: (0..N_CLASSES).map(|_| Vec::with_capacity(per_list)).collect(),
            per_class_cap: options.per_class_cap,
            retained_bytes: 0,
            nonempty: 0,
        }
    }

    /// The class index and size serving `bytes`.
    fn class_of(bytes: usize) -> Option<(usize, usize)> {
        let size = bytes.max(1 << MIN_CLASS_SHIFT).checked_next_power_of_two()?;
        let idx = (size.trailing_zeros() - MIN_CLASS_SHIFT) as usize;
        (idx < N_CLASSES).then_some((idx, size))
    }

    fn free_all(&mut self) {
        for (idx, list) in self.free.iter_mut().enumerate() {
            let size = 1usize << (idx as u32 + MIN_CLASS_SHIFT);
            for ptr in list.drain(..) {
                // SAFETY: idle buffers belong to no lease; each was allocated
                // with its class size.
                unsafe { self.backing.free(ptr, size) };
            }
        }
        self.retained_bytes = 0;
        self.nonempty = 0;
    }
}

// SAFETY: a grant is a whole buffer of its class size, allocated from the
// backing and either fresh or popped from the idle list (so no live lease
// holds it). Buffers are freed only while idle.
unsafe impl<M: Memory> ScratchPool<M> for SizeClassed<M> {
    fn name(&self) -> &'static str {
        "size-classed"
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request) -> Result<Grant<M::Ptr>, ScratchError> {
        let (idx, size) = Self::class_of(request.bytes).ok_or(too_large(request.bytes))?;
        let candidates = self.nonempty >> idx;
        if candidates != 0 {
            let class = idx + candidates.trailing_zeros() as usize;
            let list = &mut self.free[class];
            let base = list.pop().expect("the class is marked non-empty");
            if list.is_empty() {
                self.nonempty &= !(1 << class);
            }
            let capacity = 1usize << (class as u32 + MIN_CLASS_SHIFT);
            self.retained_bytes -= capacity;
            self.counters.hits += 1;
            return Ok(Grant { base, offset: 0, capacity, token: class as u32, fresh: false });
        }
        let base = self.backing.allocate(size)?;
        self.counters.misses += 1;
        Ok(Grant { base, offset: 0, capacity: size, token: idx as u32, fresh: true })
    }

    fn release(&mut self, _request: Request, grant: Grant<M::Ptr>) {
        let class = grant.token as usize;
        let list = &mut self.free[class];
        if list.len() < self.per_class_cap {
            list.push(grant.base);
            self.nonempty |= 1 << class;
            self.retained_bytes += grant.capacity;
        } else {
            // SAFETY: the lease is gone and the buffer is in no free list.
            unsafe { self.backing.free(grant.base, grant.capacity) };
            self.counters.evictions += 1;
        }
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
        self.free_all();
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        self.counters.report(&self.backing, self.retained_bytes)
    }
}

impl<M: Memory> Drop for SizeClassed<M> {
    fn drop(&mut self) {
        self.free_all();
    }
}
