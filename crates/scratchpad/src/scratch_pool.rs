//! The strategy SPI: [`ScratchPool`], the object-safe trait every pool
//! strategy implements over raw byte requests.

use crate::{Memory, Phase, ScratchError, StrategyStats, Tag};

/// A raw request: `bytes` with `align` (a power of two, at most
/// [`crate::BLOCK_ALIGN`]) for the call site `tag`. `bytes` is never zero:
/// the typed layer serves empty leases without asking the strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes asked for.
    pub bytes: usize,
    /// Required alignment of the first byte. A `u32`, so that a request is
    /// two words and travels in registers through the `dyn` call.
    pub align: u32,
    /// The call site.
    pub tag: Tag,
}

/// What a strategy hands out for one request: the range
/// `[base + offset, base + offset + capacity)` of a block it holds, of which
/// the lease uses the first `request.bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Grant<P> {
    /// The block's base address, as the memory returned it.
    pub base: P,
    /// Offset of the range within the block.
    pub offset: usize,
    /// Bytes set aside for this lease (at least the request's bytes); their
    /// excess over the request is internal waste.
    pub capacity: usize,
    /// Strategy-private data handed back on release (a class index, a chunk).
    pub token: u32,
    /// True when the range has never been written since the memory zeroed
    /// it, so a zeroed acquire may skip clearing it.
    pub fresh: bool,
}

/// A pool strategy: bookkeeping over blocks of a [`Memory`].
///
/// Object-safe, so a strategy is chosen by name at run time
/// (`Box<dyn ScratchPool<M>>`). Strategies never build views or touch the
/// bytes they manage; [`crate::Pool`] and its leases do. Calls come from one
/// thread at a time (`Send`, not `Sync`).
///
/// The call protocol, which [`crate::Pool`] follows: every `acquire` that
/// succeeds is matched by exactly one `release` with the same request and
/// grant, in any order; `enter_scope` and `exit_scope` nest, and every lease
/// acquired after an `enter_scope` is released before its `exit_scope` unless
/// `may_reset` is false; `begin_step` and `end_step` alternate.
///
/// # Safety
///
/// Safe code builds `&mut [T]` from what a strategy returns, so an
/// implementation promises, under any sequence of calls that follows the
/// protocol above:
/// - every grant lies inside a block the strategy holds from its memory,
///   `offset + capacity` within the block, `base + offset` aligned to the
///   request's `align`, and `capacity >= request.bytes`;
/// - the granted range of a live lease (acquired and not yet released) never
///   overlaps the granted range of another live lease;
/// - a block is not returned to the memory while a live lease lies in it.
///
/// Debug builds of [`crate::Pool`] check the first two on every acquire.
pub unsafe trait ScratchPool<M: Memory>: Send {
    /// The strategy's name, as given to [`crate::create_strategy`].
    fn name(&self) -> &'static str;

    /// The memory the strategy draws from.
    fn memory(&self) -> &M;

    /// Serves a request by writing the lease's range into `grant`, whose
    /// values on entry are unspecified. (An out-parameter rather than a
    /// returned `Grant`: the pool keeps the grant in its table of live leases,
    /// and writing it there directly keeps the `dyn` call free of copies
    /// through the stack, which cost more than the rest of a warm acquire.)
    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError>;

    /// Takes back a lease's range. The lease is gone; its bytes may be
    /// handed out again.
    fn release(&mut self, request: Request, grant: &Grant<M::Ptr>);

    /// A scope opens.
    fn enter_scope(&mut self) {}

    /// The innermost scope closes. Its leases have been released, unless
    /// `may_reset` is false: then a lease acquired inside it for an outer
    /// scope is still live and the scope's memory must not be recycled yet.
    fn exit_scope(&mut self, may_reset: bool) {
        let _ = may_reset;
    }

    /// A step of `phase` begins: a forward pass over a block of `tokens`
    /// tokens (0 when the caller did not say). `planned` keeps a plan per
    /// phase and token-count bucket.
    fn begin_step(&mut self, phase: Phase, tokens: usize) {
        let _ = (phase, tokens);
    }

    /// The current step ends.
    fn end_step(&mut self) {}

    /// Forgets what the strategy learnt about `phase`, so that the next step
    /// of that phase is measured afresh. Only `planned` learns anything.
    fn remeasure(&mut self, phase: Phase) {
        let _ = phase;
    }

    /// Returns every idle block to the memory.
    fn trim(&mut self);

    /// Starts a new peak window at the current reservation.
    fn reset_peak(&mut self);

    /// The strategy's own figures.
    fn stats(&self) -> StrategyStats;
}
