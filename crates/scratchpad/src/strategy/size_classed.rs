//! `size-classed`: power-of-two classes from 256 B, a LIFO free list per
//! class, a cap on buffers retained per class (SKaiNET's
//! `SizeClassedScratchPool`, atomr's `WorkspacePool`).

use super::too_large;
use super::StrategyInfo;
use crate::{
    Backing, Counters, Grant, Memory, PoolOptions, Request, ScratchError, ScratchPool,
    StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "size-classed",
    policy: "power-of-two classes from 256 B, a LIFO stack per class, at most `per_class_cap` idle per class; an empty class borrows from the next larger one",
    after: "SKaiNET `SizeClassedScratchPool`, atomr `WorkspacePool`",
    stable_addresses: false,
    host_only: false,
};

/// log2 of the smallest class.
const MIN_CLASS_SHIFT: u32 = 8;
/// Classes from 2^8 to 2^62 bytes.
const N_CLASSES: usize = (62 - MIN_CLASS_SHIFT + 1) as usize;
/// The largest `per_class_cap` accepted.
pub(crate) const MAX_PER_CLASS_CAP: usize = 4096;

/// Rounds every request up to a power of two of at least 256 bytes and keeps
/// up to `per_class_cap` idle buffers per class, the most recently released
/// first. When a request's class has no idle buffer, the smallest larger
/// class that has one serves it (the buffer returns to its own class), so a
/// pool warmed at the largest sizes serves every smaller step without
/// allocating. Internal waste is up to half of each buffer, more when a
/// larger class serves; lookups cost a bit scan.
pub struct SizeClassed<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    /// Idle buffers: class `c`'s stack is `idle[c * cap .. c * cap + len[c]]`.
    idle: Vec<M::Ptr>,
    len: [u32; N_CLASSES],
    /// Bit `c` is set when class `c` has an idle buffer.
    nonempty: u64,
    per_class_cap: usize,
}

impl<M: Memory> SizeClassed<M> {
    /// A size-classed pool over `memory` with `options.per_class_cap`
    /// (at most 4096; [`crate::create_strategy`] rejects more).
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        let per_class_cap = options.per_class_cap.min(MAX_PER_CLASS_CAP);
        SizeClassed {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            // Every stack gets its full capacity now, so releases never
            // allocate on the heap.
            idle: vec![M::dangling(); N_CLASSES * per_class_cap],
            len: [0; N_CLASSES],
            nonempty: 0,
            per_class_cap,
        }
    }

    /// The class index and size serving `bytes`.
    fn class_of(bytes: usize) -> Option<(usize, usize)> {
        let size = bytes
            .max(1 << MIN_CLASS_SHIFT)
            .checked_next_power_of_two()?;
        let idx = (size.trailing_zeros() - MIN_CLASS_SHIFT) as usize;
        (idx < N_CLASSES).then_some((idx, size))
    }

    const fn class_size(class: usize) -> usize {
        1 << (class as u32 + MIN_CLASS_SHIFT)
    }

    fn free_all(&mut self) {
        for class in 0..N_CLASSES {
            let start = class * self.per_class_cap;
            for &ptr in &self.idle[start..start + self.len[class] as usize] {
                // SAFETY: idle buffers belong to no lease; each was allocated
                // with its class size.
                unsafe { self.backing.free(ptr, Self::class_size(class)) };
            }
        }
        self.len = [0; N_CLASSES];
        self.nonempty = 0;
    }
}

// SAFETY: a grant is a whole buffer of its class size, allocated from the
// backing and either fresh or popped from an idle stack (so no live lease
// holds it). Buffers are freed only while idle.
unsafe impl<M: Memory> ScratchPool<M> for SizeClassed<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let (idx, size) = Self::class_of(request.bytes).ok_or_else(|| too_large(request.bytes))?;
        let candidates = self.nonempty >> idx;
        if candidates != 0 {
            let class = idx + candidates.trailing_zeros() as usize;
            let len = self.len[class] - 1;
            self.len[class] = len;
            if len == 0 {
                self.nonempty &= !(1 << class);
            }
            let base = self.idle[class * self.per_class_cap + len as usize];
            self.counters.hits += 1;
            let capacity = Self::class_size(class);
            *grant = Grant {
                base,
                offset: 0,
                capacity,
                token: class as u32,
                fresh: false,
            };
            return Ok(());
        }
        let base = self.backing.allocate(size)?;
        self.counters.misses += 1;
        *grant = Grant {
            base,
            offset: 0,
            capacity: size,
            token: idx as u32,
            fresh: true,
        };
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        let class = grant.token as usize;
        let len = self.len[class] as usize;
        if len < self.per_class_cap {
            self.idle[class * self.per_class_cap + len] = grant.base;
            self.len[class] = len as u32 + 1;
            self.nonempty |= 1 << class;
        } else {
            // SAFETY: the lease is gone and the buffer is in no idle stack.
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
        let retained = (0..N_CLASSES)
            .map(|c| self.len[c] as usize * Self::class_size(c))
            .sum();
        let mut stats = self.counters.report(&self.backing, retained);
        // The largest non-empty class.
        stats.largest_free_bytes = if self.nonempty == 0 {
            0
        } else {
            Self::class_size(63 - self.nonempty.leading_zeros() as usize)
        };
        stats
    }
}

impl<M: Memory> Drop for SizeClassed<M> {
    fn drop(&mut self) {
        self.free_all();
    }
}
