//! [`PoolControl`]: a pool's steps, figures and traces without its memory
//! type, so a driver (the model's transformer, the CLI) can run and report
//! a pool on any device behind one `dyn` reference.

use crate::{Memory, Phase, Pool, PoolStats, TagStats, Trace};

/// What can be done with a [`Pool`] without naming its memory: mark steps,
/// read statistics, record traces. Every method forwards to the pool's
/// inherent method of the same name.
pub trait PoolControl {
    /// The strategy's name.
    fn strategy_name(&self) -> &'static str;
    /// See [`Pool::begin_step`].
    fn begin_step(&self, phase: Phase);
    /// See [`Pool::begin_step_sized`].
    fn begin_step_sized(&self, phase: Phase, tokens: usize);
    /// See [`Pool::end_step`].
    fn end_step(&self);
    /// See [`Pool::remeasure`].
    fn remeasure(&self, phase: Phase);
    /// See [`Pool::trim`].
    fn trim(&self);
    /// See [`Pool::reset_peaks`].
    fn reset_peaks(&self);
    /// See [`Pool::stats`].
    fn stats(&self) -> PoolStats;
    /// See [`Pool::tag_stats`].
    fn tag_stats(&self) -> Vec<TagStats>;
    /// See [`Pool::set_verify`].
    fn set_verify(&self, verify: bool);
    /// See [`Pool::start_trace`].
    fn start_trace(&self);
    /// See [`Pool::take_trace`].
    fn take_trace(&self) -> Option<Trace>;
}

impl<M: Memory> PoolControl for Pool<M> {
    fn strategy_name(&self) -> &'static str {
        Pool::strategy_name(self)
    }
    fn begin_step(&self, phase: Phase) {
        Pool::begin_step(self, phase);
    }
    fn begin_step_sized(&self, phase: Phase, tokens: usize) {
        Pool::begin_step_sized(self, phase, tokens);
    }
    fn end_step(&self) {
        Pool::end_step(self);
    }
    fn remeasure(&self, phase: Phase) {
        Pool::remeasure(self, phase);
    }
    fn trim(&self) {
        Pool::trim(self);
    }
    fn reset_peaks(&self) {
        Pool::reset_peaks(self);
    }
    fn stats(&self) -> PoolStats {
        Pool::stats(self)
    }
    fn tag_stats(&self) -> Vec<TagStats> {
        Pool::tag_stats(self)
    }
    fn set_verify(&self, verify: bool) {
        Pool::set_verify(self, verify);
    }
    fn start_trace(&self) {
        Pool::start_trace(self);
    }
    fn take_trace(&self) -> Option<Trace> {
        Pool::take_trace(self)
    }
}
