//! `noop`: every acquire allocates, every release frees. The baseline that
//! shows what a runtime without a pool pays (SKaiNET's `NoopScratchPool`).

use super::StrategyInfo;
use crate::{
    Backing, Counters, Grant, HostAllocator, Memory, PoolOptions, Request, ScratchError,
    ScratchPool, StrategyStats,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "noop",
    policy: "every acquire allocates, every release frees: the baseline",
    after: "SKaiNET `NoopScratchPool`",
    stable_addresses: false,
    host_only: false,
};

/// Allocates on acquire and frees on release; retains nothing.
pub struct Noop<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    /// `noop`, or a malloc baseline's entry.
    info: &'static StrategyInfo,
}

impl<M: Memory> Noop<M> {
    /// A noop pool over `memory`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        Self::named(&INFO, memory, options)
    }

    /// The no-pool policy over `memory` switched to host `allocator`, under
    /// the registry entry `info` (the malloc baselines); an error for
    /// memory that is not host RAM.
    pub(crate) fn over(
        info: &'static StrategyInfo,
        allocator: HostAllocator,
        memory: M,
        options: &PoolOptions,
    ) -> Result<Self, ScratchError> {
        let memory = memory
            .with_host_allocator(allocator)
            .ok_or_else(|| ScratchError::InvalidOption {
                option: "strategy",
                value: info.name.to_owned(),
                reason: "the malloc baselines run on host memory only",
            })?;
        Ok(Self::named(info, memory, options))
    }

    fn named(info: &'static StrategyInfo, memory: M, options: &PoolOptions) -> Self {
        Noop {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            info,
        }
    }
}

// SAFETY: every grant is a whole fresh block of exactly the request's size
// from the backing, which is aligned to 64 and disjoint from every other live
// block; it is freed only on the release of its own lease.
unsafe impl<M: Memory> ScratchPool<M> for Noop<M> {
    fn name(&self) -> &'static str {
        self.info.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let base = self.backing.allocate(request.bytes)?;
        self.counters.misses += 1;
        *grant = Grant {
            base,
            offset: 0,
            capacity: request.bytes,
            token: 0,
            fresh: true,
        };
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        // SAFETY: the block was allocated for this lease alone, with this
        // size, and the lease is gone.
        unsafe { self.backing.free(grant.base, grant.capacity) };
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        self.counters.report(&self.backing, 0)
    }
}
