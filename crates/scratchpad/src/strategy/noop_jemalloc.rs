//! `noop@jemalloc`: the no-pool policy of `noop` over jemalloc, called
//! directly for every acquire and release: the baseline that answers
//! whether a pool still pays off over a modern malloc. Host memory only.

use super::StrategyInfo;
use super::noop::Noop;
use crate::{HostAllocator, Memory, PoolOptions, ScratchError};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "noop@jemalloc",
    policy: "every acquire allocates from jemalloc, every release frees to it: the baseline over a modern malloc",
    after: "jemalloc, no pool",
    stable_addresses: false,
    host_only: true,
};

/// `noop` over `memory` switched to jemalloc; an error for memory that is
/// not host RAM.
pub fn create<M: Memory>(memory: M, options: &PoolOptions) -> Result<Noop<M>, ScratchError> {
    Noop::over(&INFO, HostAllocator::Jemalloc, memory, options)
}
