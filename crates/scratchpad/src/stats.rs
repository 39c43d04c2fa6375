//! Pool statistics: one struct for every strategy, plus a per-tag breakdown.

use serde::Serialize;

use crate::{Backing, Memory, Phase, Tag};

/// The counters a strategy keeps itself; reservation figures come from its
/// [`Backing`]. [`Counters::report`] merges the two into [`StrategyStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests served from memory the strategy already held.
    pub hits: u64,
    /// Requests that went to the backing memory.
    pub misses: u64,
    /// Idle buffers freed because a cap was exceeded.
    pub evictions: u64,
    /// Requests that did not follow a plan and were served elsewhere.
    pub deviations: u64,
    /// Calls to `trim`.
    pub trims: u64,
}

impl Counters {
    /// Merges these counters with the backing's reservation figures.
    pub fn report<M: Memory>(&self, backing: &Backing<M>, retained_bytes: usize) -> StrategyStats {
        StrategyStats {
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
            deviations: self.deviations,
            trims: self.trims,
            retained_bytes,
            reserved_bytes: backing.reserved(),
            peak_reserved_bytes: backing.peak_reserved(),
            backing_allocations: backing.allocations(),
            backing_frees: backing.frees(),
            phase_exclusive_bytes: [0; 2],
            splits: 0,
            merges: 0,
            largest_free_bytes: 0,
        }
    }
}

/// What a strategy reports about itself (see [`crate::ScratchPool::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StrategyStats {
    /// Requests served from memory the strategy already held.
    pub hits: u64,
    /// Requests that went to the backing memory.
    pub misses: u64,
    /// Idle buffers freed because a cap was exceeded.
    pub evictions: u64,
    /// Requests that did not follow a plan.
    pub deviations: u64,
    /// Calls to `trim`.
    pub trims: u64,
    /// Bytes held idle, ready for reuse.
    pub retained_bytes: usize,
    /// Bytes held from the backing memory now.
    pub reserved_bytes: usize,
    /// The most bytes held at once in the current peak window.
    pub peak_reserved_bytes: usize,
    /// Allocations made from the backing memory.
    pub backing_allocations: u64,
    /// Blocks returned to the backing memory.
    pub backing_frees: u64,
    /// Of `reserved_bytes`, what only steps of each phase can use (indexed
    /// by [`crate::Phase::index`]): `planned`'s per-phase slabs. Zero for
    /// strategies whose memory serves any phase.
    pub phase_exclusive_bytes: [usize; 2],
    /// Blocks split to serve a request (`bfc`, `tlsf`).
    pub splits: u64,
    /// Free neighbours merged on release (`bfc`, `tlsf`).
    pub merges: u64,
    /// The largest extent of held memory that one request could be served
    /// from now without going to the backing memory (the largest free
    /// block or idle buffer; for `arena`, the room left in its chunk).
    pub largest_free_bytes: usize,
}

/// Statistics of a [`crate::Pool`]: the same fields for every strategy.
///
/// Counts accumulate from the pool's creation; peaks cover the window since
/// the last [`crate::Pool::reset_peaks`]. Subtract two snapshots with
/// [`PoolStats::since`] to get the counts of a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Leases handed out (empty ones included).
    pub acquires: u64,
    /// Leases returned.
    pub releases: u64,
    /// Requests served from memory the pool already held (empty leases count
    /// as hits: they touch no memory).
    pub hits: u64,
    /// Requests that went to the backing memory.
    pub misses: u64,
    /// Bytes asked for, summed over all acquires.
    pub bytes_requested: u64,
    /// Bytes held by live leases now, as requested.
    pub live_bytes: usize,
    /// The most bytes live at once: the lower bound of the work seen, which
    /// no strategy can hold less than at its peak.
    pub peak_live_bytes: usize,
    /// The same maximum, kept per [`Phase`] over the steps of that phase.
    pub phase_peak_live_bytes: [usize; 2],
    /// Bytes set aside for live leases now (class sizes, whole buffers);
    /// their excess over `live_bytes` is internal waste.
    pub live_capacity_bytes: usize,
    /// Bytes held from the backing memory now.
    pub reserved_bytes: usize,
    /// The most bytes held from the backing at once.
    pub peak_reserved_bytes: usize,
    /// Bytes held idle, ready for reuse.
    pub retained_bytes: usize,
    /// Idle buffers freed because a cap was exceeded.
    pub evictions: u64,
    /// Requests that did not follow a plan (planned strategy only).
    pub deviations: u64,
    /// Calls to `trim`.
    pub trims: u64,
    /// Allocations made from the backing memory.
    pub backing_allocations: u64,
    /// Blocks returned to the backing memory.
    pub backing_frees: u64,
    /// Of `reserved_bytes`, what only steps of each phase can use (indexed
    /// by [`Phase::index`]); see [`StrategyStats::phase_exclusive_bytes`].
    pub phase_exclusive_bytes: [usize; 2],
    /// Blocks split to serve a request (`bfc`, `tlsf`).
    pub splits: u64,
    /// Free neighbours merged on release (`bfc`, `tlsf`).
    pub merges: u64,
    /// The largest extent of held memory one request could be served from
    /// now; see [`StrategyStats::largest_free_bytes`].
    pub largest_free_bytes: usize,
    /// Fragmentation at each phase's peak of live bytes (indexed by
    /// [`Phase::index`]).
    pub phase_fragmentation: [Fragmentation; 2],
}

/// How fragmented a pool was at the moment its live bytes peaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Fragmentation {
    /// Bytes held from the memory beyond the live ones: internal waste,
    /// idle buffers and free blocks together.
    pub reserved_minus_live_bytes: usize,
    /// The largest extent of held memory one more request could have been
    /// served from without the backing memory.
    pub largest_free_bytes: usize,
}

impl PoolStats {
    /// Hits over acquires, or 1 when nothing was acquired.
    pub fn hit_rate(&self) -> f64 {
        if self.acquires == 0 {
            1.0
        } else {
            self.hits as f64 / self.acquires as f64
        }
    }

    /// Bytes set aside for live leases beyond what they asked for, now.
    pub fn internal_waste_bytes(&self) -> usize {
        self.live_capacity_bytes - self.live_bytes
    }

    /// Peak reserved over the lower bound (peak live bytes): 1.0 is perfect.
    /// `None` when nothing was live.
    pub fn peak_over_lower_bound(&self) -> Option<f64> {
        (self.peak_live_bytes > 0)
            .then(|| self.peak_reserved_bytes as f64 / self.peak_live_bytes as f64)
    }

    /// The most bytes the pool held that steps of `phase` could use: peak
    /// reserved less what only the other phase can use. Equal to
    /// `peak_reserved_bytes` for every strategy but `planned`.
    pub fn peak_reserved_for(&self, phase: Phase) -> usize {
        let other = 1 - phase.index();
        self.peak_reserved_bytes
            .saturating_sub(self.phase_exclusive_bytes[other])
    }

    /// The lower bound of one phase: the most bytes live at once during its
    /// steps.
    pub fn lower_bound(&self, phase: Phase) -> usize {
        self.phase_peak_live_bytes[phase.index()]
    }

    /// The counts accumulated since `earlier`; gauges and peaks are taken
    /// from `self` as they are.
    pub fn since(&self, earlier: &PoolStats) -> PoolStats {
        PoolStats {
            acquires: self.acquires - earlier.acquires,
            releases: self.releases - earlier.releases,
            hits: self.hits - earlier.hits,
            misses: self.misses - earlier.misses,
            bytes_requested: self.bytes_requested - earlier.bytes_requested,
            evictions: self.evictions - earlier.evictions,
            deviations: self.deviations - earlier.deviations,
            trims: self.trims - earlier.trims,
            backing_allocations: self.backing_allocations - earlier.backing_allocations,
            backing_frees: self.backing_frees - earlier.backing_frees,
            splits: self.splits - earlier.splits,
            merges: self.merges - earlier.merges,
            ..*self
        }
    }
}

/// Per-call-site figures (see [`crate::Pool::tag_stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TagStats {
    /// The call site.
    #[serde(skip)]
    pub tag: Tag,
    /// Its name.
    pub name: &'static str,
    /// Leases it acquired.
    pub acquires: u64,
    /// Bytes it holds in live leases now.
    pub live_bytes: usize,
    /// The most bytes it held in live leases at once.
    pub peak_live_bytes: usize,
}
