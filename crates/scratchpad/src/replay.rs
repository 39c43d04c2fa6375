//! Replaying a [`Trace`] through a pool: the same acquires, releases,
//! scopes and steps, timed, without touching the bytes. Per phase it
//! reports what `compare` reports for the same run: each step is its own
//! peak window, and a phase's figures are the largest over its warm steps
//! (every step of the phase after its first, which warms the pool and
//! which `planned` measures); a phase with a single step reports that one.

use std::time::{Duration, Instant};

use crate::pool::OpObserver;
use crate::{Memory, Phase, Pool, PoolStats, ScratchError, Trace};

/// One phase of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseReplay {
    /// Steps of the phase in the trace.
    pub steps: usize,
    /// The most the pool held that the phase's warm steps could use
    /// ([`PoolStats::peak_reserved_for`]).
    pub peak_reserved_bytes: usize,
    /// The most bytes live at once in those steps.
    pub lower_bound_bytes: usize,
    /// Plan deviations in those steps.
    pub deviations: u64,
}

impl PhaseReplay {
    /// Peak reserved over the lower bound; `None` when nothing was live.
    pub fn ratio(&self) -> Option<f64> {
        (self.lower_bound_bytes > 0)
            .then(|| self.peak_reserved_bytes as f64 / self.lower_bound_bytes as f64)
    }
}

/// The outcome of [`Trace::replay`].
#[derive(Clone, Copy, Debug)]
pub struct ReplayReport {
    /// The strategy replayed through.
    pub strategy: &'static str,
    /// Acquires and releases performed.
    pub ops: u64,
    /// Wall time of the replay loop alone.
    pub elapsed: Duration,
    /// The pool's statistics afterwards.
    pub stats: PoolStats,
    /// The trace's lower bound (most bytes live at once).
    pub lower_bound: usize,
    /// Per phase (indexed by [`Phase::index`]): the warm steps' figures.
    pub phases: [PhaseReplay; 2],
}

impl ReplayReport {
    /// Mean nanoseconds per acquire or release.
    pub fn ns_per_op(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.elapsed.as_nanos() as f64 / self.ops as f64
        }
    }

    /// Peak reserved over the lower bound.
    pub fn ratio(&self) -> Option<f64> {
        (self.lower_bound > 0)
            .then(|| self.stats.peak_reserved_bytes as f64 / self.lower_bound as f64)
    }
}

/// Per-phase accounting of a replay: the warm and the cold figures of each
/// phase's step windows.
#[derive(Default)]
struct Windows {
    /// `[phase][warm]`.
    figures: [[PhaseReplay; 2]; 2],
    phase: Option<Phase>,
    before: Option<PoolStats>,
}

impl Windows {
    fn begin(&mut self, phase: Phase, stats: PoolStats) {
        self.phase = Some(phase);
        self.before = Some(stats);
    }

    fn end(&mut self, stats: PoolStats) {
        let (Some(phase), Some(before)) = (self.phase.take(), self.before.take()) else {
            return;
        };
        let cold = &self.figures[phase.index()][0];
        let warm = cold.steps > 0;
        for f in &mut self.figures[phase.index()][..=usize::from(warm)] {
            f.steps += 1;
            f.peak_reserved_bytes = f.peak_reserved_bytes.max(stats.peak_reserved_for(phase));
            f.lower_bound_bytes = f.lower_bound_bytes.max(stats.lower_bound(phase));
            f.deviations += stats.deviations - before.deviations;
        }
    }

    /// Each phase's warm figures, or its only step's.
    fn report(&self) -> [PhaseReplay; 2] {
        self.figures.map(|[all, warm]| {
            if warm.steps > 0 {
                PhaseReplay {
                    steps: all.steps,
                    ..warm
                }
            } else {
                all
            }
        })
    }
}

impl OpObserver for Windows {
    fn step(&mut self, phase: Option<Phase>, stats: PoolStats) {
        match phase {
            Some(phase) => self.begin(phase, stats),
            None => self.end(stats),
        }
    }
}

impl Trace {
    /// Replays the trace through `pool` without touching the leased bytes,
    /// inside one extra scope; every step is its own peak window (the
    /// pool's peaks are reset when it begins). Returns the timing, the
    /// pool's stats afterwards and each phase's figures.
    pub fn replay<M: Memory>(&self, pool: &Pool<M>) -> Result<ReplayReport, ScratchError> {
        let ops = self.ops()?;
        let lower_bound = self.lower_bound()?;
        let mut windows = Windows::default();
        let start = Instant::now();
        let n_ops = pool.run_ops(&ops, &mut windows)?;
        let elapsed: Duration = start.elapsed();
        Ok(ReplayReport {
            strategy: pool.strategy_name(),
            ops: n_ops,
            elapsed,
            stats: pool.stats(),
            lower_bound,
            phases: windows.report(),
        })
    }
}
