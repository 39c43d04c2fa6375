//! The scratch-pool SPI of the scratchpad runtime.
//!
//! Every short-lived intermediate buffer of a forward pass is a [`Lease`]
//! from one [`Pool`], reached through [`ExecutionContext::scratch`]. The pool
//! is a strategy ([`ScratchPool`], chosen by name at run time) over a kind of
//! raw memory ([`Memory`]: [`HostMemory`](struct@HostMemory) here, device memory in
//! `scratchpad-cuda`). Leases come from scopes ([`Pool::scope`]) and borrow
//! them, so no lease outlives the memory it points into; live leases never
//! share a byte.
//!
//! Around that: [`PoolStats`] (the same figures for every strategy),
//! [`Trace`] (record, save, replay through any strategy, lower bound), and
//! [`CountingAlloc`] (the process's heap allocations, the truth behind
//! "zero allocations").
//!
//! The strategies: `noop`, `size-classed`, `best-fit`, `arena`, `planned`,
//! `workspace`, `bfc`, `tlsf`, one registry of them ([`STRATEGIES`],
//! [`STRATEGY_NAMES`], [`create_strategy`]).

mod backing;
mod context;
mod counting_alloc;
mod error;
mod host_allocator;
mod lease;
mod memory;
mod memory_map;
pub mod output;
mod phase;
mod pool;
mod pool_control;
mod replay;
mod scope;
mod scratch_pool;
mod scratch_req;
mod shared_pool;
mod stats;
pub mod strategy;
mod tag;
mod trace;

pub use backing::Backing;
pub use context::ExecutionContext;
pub use counting_alloc::{AllocCounts, CountingAlloc};
pub use error::ScratchError;
pub use host_allocator::HostAllocator;
pub use lease::Lease;
pub use memory::{BLOCK_ALIGN, HostMemory, HostPtr, Memory};
pub use memory_map::{MappedBlock, MappedLease, MemoryMap};
pub use output::{OutputPath, write_output};
pub use phase::Phase;
pub use pool::Pool;
pub use pool_control::PoolControl;
pub use replay::{PhaseReplay, ReplayReport};
pub use scope::Scope;
pub use scratch_pool::{Grant, Request, ScratchPool};
pub use scratch_req::ScratchReq;
pub use shared_pool::SharedPool;
pub use stats::{Counters, Fragmentation, PoolStats, StrategyStats, TagStats};
pub use strategy::{
    MAX_RETAINED_ENV, PoolOptions, STRATEGIES, STRATEGY_NAMES, StrategyInfo, create_strategy,
    device_strategy_names, stable_addresses, strategy_info,
};
pub use tag::{MAX_OWNED_TAGS, Tag};
pub use trace::{Event, MAX_TRACE_BYTES, TRACE_FORMAT, TRACE_VERSION, Trace};
