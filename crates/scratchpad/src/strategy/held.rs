//! [`Held`]: how a [`crate::Pool`] holds its strategy. `arena` and `planned`,
//! whose warm acquire and release are a handful of instructions, are held by
//! value and called directly, so their fast paths inline into the pool's own
//! bookkeeping; every other strategy, and any caller's, sits behind the SPI's
//! `dyn` call. The SPI is the same for all: this only spares the two fast
//! strategies an indirect call, the request and result passed through the
//! stack, and the reload of the pool's state that an opaque call forces.

use super::{Arena, Planned, PoolOptions, check_options, create_strategy};
use crate::{Grant, Memory, Phase, Request, ScratchError, ScratchPool, StrategyStats, Tag};

/// A pool's strategy.
#[repr(u8)]
pub(crate) enum Held<M: Memory> {
    Arena(Arena<M>),
    Planned(Planned<M>),
    Dyn(Box<dyn ScratchPool<M>>),
}

/// Calls `$call` on the strategy inside `$held`, whatever its variant.
macro_rules! each {
    ($held:expr, $s:ident => $call:expr) => {
        match $held {
            Held::Arena($s) => $call,
            Held::Planned($s) => $call,
            Held::Dyn($s) => $call,
        }
    };
}

impl<M: Memory> Held<M> {
    /// The strategy called `name`, as [`create_strategy`] makes it, with
    /// the same checks of the name and the options.
    pub(crate) fn create(
        name: &str,
        memory: M,
        options: &PoolOptions,
    ) -> Result<Self, ScratchError> {
        check_options(options)?;
        if name == super::arena::INFO.name {
            Ok(Held::Arena(Arena::new(memory, options)))
        } else if name == super::planned::INFO.name {
            Ok(Held::Planned(Planned::new(memory, options)))
        } else {
            create_strategy(name, memory, options).map(Held::Dyn)
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        each!(self, s => s.name())
    }

    pub(crate) fn memory(&self) -> &M {
        each!(self, s => s.memory())
    }

    #[inline(always)]
    pub(crate) fn acquire(
        &mut self,
        request: Request,
        grant: &mut Grant<M::Ptr>,
    ) -> Result<(), ScratchError> {
        match self {
            Held::Arena(s) => s.acquire(request, grant),
            Held::Planned(s) => s.acquire(request, grant),
            Held::Dyn(s) => dyn_acquire(s, request.bytes, request.align, request.tag, grant),
        }
    }

    /// Releases a lease of `bytes` for `tag`; `align` reads the request's
    /// alignment, which only a `dyn` strategy is given.
    #[inline(always)]
    pub(crate) fn release(
        &mut self,
        bytes: usize,
        tag: Tag,
        align: impl FnOnce() -> u32,
        grant: &Grant<M::Ptr>,
    ) {
        match self {
            Held::Arena(s) => s.release_bytes(bytes, grant),
            Held::Planned(s) => s.release_grant(grant),
            Held::Dyn(s) => dyn_release(s, bytes, align(), tag, grant),
        }
    }

    pub(crate) fn enter_scope(&mut self) {
        each!(self, s => s.enter_scope())
    }

    pub(crate) fn exit_scope(&mut self, may_reset: bool) {
        each!(self, s => s.exit_scope(may_reset))
    }

    pub(crate) fn begin_step(&mut self, phase: Phase, tokens: usize) {
        each!(self, s => s.begin_step(phase, tokens))
    }

    pub(crate) fn end_step(&mut self) {
        each!(self, s => s.end_step())
    }

    pub(crate) fn remeasure(&mut self, phase: Phase) {
        each!(self, s => s.remeasure(phase))
    }

    pub(crate) fn trim(&mut self) {
        each!(self, s => s.trim())
    }

    pub(crate) fn reset_peak(&mut self) {
        each!(self, s => s.reset_peak())
    }

    pub(crate) fn stats(&self) -> StrategyStats {
        each!(self, s => s.stats())
    }
}

// The `dyn` calls out of line, the request in registers: the `dyn` call
// passes it through the stack, and inlined, the stores that put it there
// are made on the fast strategies' paths too.

#[inline(never)]
fn dyn_acquire<M: Memory>(
    strategy: &mut Box<dyn ScratchPool<M>>,
    bytes: usize,
    align: u32,
    tag: Tag,
    grant: &mut Grant<M::Ptr>,
) -> Result<(), ScratchError> {
    strategy.acquire(Request { bytes, align, tag }, grant)
}

#[inline(never)]
fn dyn_release<M: Memory>(
    strategy: &mut Box<dyn ScratchPool<M>>,
    bytes: usize,
    align: u32,
    tag: Tag,
    grant: &Grant<M::Ptr>,
) {
    strategy.release(Request { bytes, align, tag }, grant)
}
