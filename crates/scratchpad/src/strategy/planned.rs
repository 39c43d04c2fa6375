//! `planned`: a measuring step records one step's requests, offsets are
//! planned greedy-by-size, and later steps are served at those offsets
//! (oneDNN's user-managed scratchpad, ggml-alloc, TFLite's arena planner).
//! A plan is kept per phase and token-count bucket (powers of two: a step
//! of 300 tokens uses the plan of bucket 512), all of a phase's plans laid
//! out in that phase's one slab, sized for the largest plan kept; so any
//! prompt length is served at stable addresses, with no deviation, once a
//! step of its bucket has been measured. The retained-bytes cap drops the
//! plans of the least recently used buckets when the slab would exceed it.

use super::best_fit::FreeList;
use super::round_up;
use super::StrategyInfo;
use crate::{
    BLOCK_ALIGN, Backing, Counters, Grant, Memory, Phase, PoolOptions, Request, ScratchError,
    ScratchPool, StrategyStats, Tag,
};

/// This strategy in the registry.
pub const INFO: StrategyInfo = StrategyInfo {
    name: "planned",
    policy: "the first step of each phase and token-count bucket (powers of two) is measured, offsets planned greedy-by-size into the phase's one slab (sized for the largest plan kept) and served at fixed offsets; every acquire is checked against live leases, a mismatch served elsewhere and counted, never aliased; the cap drops the least recently used buckets",
    after: "oneDNN user-managed scratchpad, ggml-alloc, TFLite arena planner",
    stable_addresses: true,
    host_only: false,
};

/// Token of a lease served from the slab: `SLAB | phase << 29`, and for a
/// lease served on plan, `ON_PLAN` and the clock its release is due at
/// (`LAST_MASK` for one measured open), so that its release on time is one
/// comparison.
const SLAB: u32 = 1 << 31;
const ON_PLAN: u32 = 1 << 30;
const PHASE_SHIFT: u32 = 29;
const LAST_MASK: u32 = (1 << PHASE_SHIFT) - 1;
/// `on_plan_token` while off plan: top bits no token has (slab tokens set
/// `SLAB`, measured ones `MEASURED` alone, the fallback's are 0).
const OFF_PLAN_TOKEN: u32 = 1 << PHASE_SHIFT;
/// Token of a lease served during a measuring step: the number of its
/// record among every record made since the pool was created (30 bits). A
/// measurement's records are numbered from `record_base`, which moves past
/// them when the next measurement begins, so a lease measured in an earlier
/// measurement (held across it in an outer scope) is told apart from the
/// current ones until 2^30 records later, never in practice.
const MEASURED: u32 = 1 << 30;
const RECORD_MASK: u32 = MEASURED - 1;
/// `last` of a record whose lease outlived the measuring step.
const OPEN: u32 = u32::MAX;

/// One request of the measuring step: its size (rounded to 64) and lifetime
/// on the step's event clock.
#[derive(Clone, Copy, Debug)]
struct Record {
    bytes: usize,
    first: u32,
    last: u32,
}

impl Record {
    fn overlaps(&self, other: &Record) -> bool {
        self.first < other.last && other.first < self.last
    }
}

/// Where the n-th request of a step goes, and when the measured step
/// acquired and released it (its record's `first` and `last`, `last` at
/// most [`LAST_MASK`], which also stands for a lease measured open).
#[derive(Clone, Copy, Debug)]
struct Placement {
    offset: usize,
    bytes: usize,
    first: u32,
    last: u32,
}

/// A phase's plan: a placement per request, in request order.
struct Plan {
    placements: Vec<Placement>,
    slab_bytes: usize,
    /// Checked when built: every placement lies in `slab_bytes` at a
    /// multiple of 64, and no two placements whose lifetimes overlap share
    /// a byte (see [`Plan::disjoint`]). Only such a plan serves a step on
    /// plan (see [`Planned`]).
    verified: bool,
}

/// Steps with more requests than this are planned in time order (see
/// [`Plan::time_order`]): greedy by size is quadratic in the requests whose
/// lifetimes overlap, and a hostile step can have tens of thousands.
const GREEDY_MAX_RECORDS: usize = 2048;

impl Plan {
    /// The plan of a measured step: greedy by size up to
    /// [`GREEDY_MAX_RECORDS`] requests, in time order beyond.
    fn of(records: &[Record]) -> Plan {
        if records.len() <= GREEDY_MAX_RECORDS {
            Plan::greedy_by_size(records)
        } else {
            Plan::time_order(records)
        }
    }

    /// Best fit in time order, O(n log n): the requests replayed by their
    /// lifetimes through a best-fit allocator over the slab's offsets
    /// (free gaps by size and by offset, coalesced), each at the smallest
    /// gap that holds it or at the top.
    fn time_order(records: &[Record]) -> Plan {
        use std::collections::{BTreeMap, BTreeSet};
        // (time, 0 = release before 1 = acquire, record)
        let mut events: Vec<(u32, u8, usize)> = Vec::with_capacity(2 * records.len());
        for (i, r) in records.iter().enumerate() {
            events.push((r.first, 1, i));
            if r.last != OPEN {
                events.push((r.last, 0, i));
            }
        }
        events.sort_unstable();
        let mut offsets = vec![0usize; records.len()];
        let mut by_offset: BTreeMap<usize, usize> = BTreeMap::new();
        let mut by_size: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut top = 0usize;
        for (_, kind, i) in events {
            let bytes = records[i].bytes;
            if kind == 1 {
                let fit = by_size.range((bytes, 0)..).next().copied();
                offsets[i] = match fit {
                    Some((len, at)) => {
                        by_size.remove(&(len, at));
                        by_offset.remove(&at);
                        if len > bytes {
                            by_size.insert((len - bytes, at + bytes));
                            by_offset.insert(at + bytes, len - bytes);
                        }
                        at
                    }
                    None => {
                        let at = top;
                        top = top.saturating_add(bytes);
                        at
                    }
                };
            } else {
                let (mut at, mut len) = (offsets[i], bytes);
                if let Some((&next, &next_len)) = by_offset.range(at + len..).next()
                    && next == at + len
                {
                    by_offset.remove(&next);
                    by_size.remove(&(next_len, next));
                    len += next_len;
                }
                if let Some((&prev, &prev_len)) = by_offset.range(..at).next_back()
                    && prev + prev_len == at
                {
                    by_offset.remove(&prev);
                    by_size.remove(&(prev_len, prev));
                    at = prev;
                    len += prev_len;
                }
                by_offset.insert(at, len);
                by_size.insert((len, at));
            }
        }
        Plan::from_offsets(records, &offsets)
    }

    fn from_offsets(records: &[Record], offsets: &[usize]) -> Plan {
        let placements: Vec<Placement> = records
            .iter()
            .zip(offsets)
            .map(|(r, &offset)| Placement {
                offset,
                bytes: r.bytes,
                first: r.first,
                last: r.last.min(LAST_MASK),
            })
            .collect();
        let slab_bytes = placements
            .iter()
            .map(|p| p.offset.saturating_add(p.bytes))
            .max()
            .unwrap_or(0);
        // A step of 2^29 events or more is never served on plan: its
        // clocks do not fit a token. (Below `LAST_MASK - 1`, so that the
        // clock on plan stays below `LAST_MASK`, the due clock of an open
        // lease.)
        let clocks_fit = records
            .iter()
            .all(|r| r.first < LAST_MASK - 1 && (r.last == OPEN || r.last < LAST_MASK - 1));
        let verified = clocks_fit && Plan::disjoint(&placements, slab_bytes);
        Plan {
            placements,
            slab_bytes,
            verified,
        }
    }

    /// Whether the placements can serve a step on plan: each inside
    /// `slab_bytes` (below `isize::MAX`) at a multiple of 64; every event
    /// time distinct (one clock tick per event: the caller has checked that
    /// they are below [`LAST_MASK`], so none saturated); and no two
    /// placements live at once sharing a byte. A sweep over the events in
    /// time order with the live ranges by offset, O(n log n).
    fn disjoint(placements: &[Placement], slab_bytes: usize) -> bool {
        use std::collections::BTreeMap;
        if slab_bytes > isize::MAX as usize
            || placements.iter().any(|p| p.offset % BLOCK_ALIGN != 0)
        {
            return false;
        }
        // (time, placement, true for an acquire)
        let mut events: Vec<(u32, usize, bool)> = Vec::with_capacity(2 * placements.len());
        for (i, p) in placements.iter().enumerate() {
            events.push((p.first, i, true));
            if p.last != LAST_MASK {
                events.push((p.last, i, false));
            }
        }
        events.sort_unstable();
        if events.windows(2).any(|w| w[0].0 == w[1].0) {
            return false;
        }
        let mut live: BTreeMap<usize, usize> = BTreeMap::new();
        for (_, i, acquire) in events {
            let p = placements[i];
            let end = p.offset + p.bytes;
            if !acquire {
                live.remove(&p.offset);
                continue;
            }
            // The live ranges are disjoint: only the last one starting
            // before `end` can reach past `offset`.
            if live.range(..end).next_back().is_some_and(|(_, &e)| e > p.offset) {
                debug_assert!(false, "the planner gave overlapping lifetimes one range");
                return false;
            }
            live.insert(p.offset, end);
        }
        true
    }

    /// Greedy by size: requests in order of size (descending, ties by first
    /// acquire), each at the lowest offset free of every already placed
    /// request whose lifetime overlaps its own.
    fn greedy_by_size(records: &[Record]) -> Plan {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| {
            records[b]
                .bytes
                .cmp(&records[a].bytes)
                .then(records[a].first.cmp(&records[b].first))
        });
        let mut offsets = vec![0usize; records.len()];
        let mut placed: Vec<usize> = Vec::with_capacity(records.len());
        let mut conflicts: Vec<(usize, usize)> = Vec::new();
        for &idx in &order {
            let record = records[idx];
            conflicts.clear();
            conflicts.extend(
                placed
                    .iter()
                    .filter(|&&other| records[other].overlaps(&record))
                    .map(|&other| {
                        (
                            offsets[other],
                            offsets[other].saturating_add(records[other].bytes),
                        )
                    }),
            );
            conflicts.sort_unstable();
            let mut offset = 0usize;
            for &(start, end) in &conflicts {
                if offset.saturating_add(record.bytes) <= start {
                    break;
                }
                offset = offset.max(end);
            }
            offsets[idx] = offset;
            placed.push(idx);
        }
        Plan::from_offsets(records, &offsets)
    }
}

/// One phase's slab: its block and the `[start, end)` of every live lease in
/// it.
///
/// The live leases are few within a step: while at most [`FEW`] are live
/// they are kept in acquire order, unsorted, so an acquire checks them all
/// and appends, and a release finds its lease from the newest (where a
/// scope's leases end) and swaps the last into its place. Past [`FEW`] (a
/// replayed trace may hold tens of thousands live) the list is sorted by
/// start and searched by bisection until it empties again.
struct Slab<P> {
    base: Option<P>,
    bytes: usize,
    live: Vec<(usize, usize)>,
    sorted: bool,
}

impl<P: Copy> Slab<P> {
    /// The first lease (of a sorted list) starting at or after `start`.
    fn position(&self, start: usize) -> usize {
        debug_assert!(self.sorted);
        self.live.partition_point(|&(s, _)| s < start)
    }

    /// Where `[start, end)` goes in `live` if it overlaps no live lease.
    #[inline]
    fn vacancy(&self, start: usize, end: usize) -> Option<usize> {
        if !self.sorted {
            let free = self.live.iter().all(|&(s, e)| e <= start || end <= s);
            return free.then_some(self.live.len());
        }
        self.sorted_vacancy(start, end)
    }

    /// [`Slab::vacancy`] in a sorted list. Sorted by start and disjoint,
    /// ends rise with starts: only the last lease starting before `end` can
    /// reach past `start`; and when none does, every lease starting before
    /// `end` starts before `start` too, so that position is also the
    /// insertion point.
    #[cold]
    #[inline(never)]
    fn sorted_vacancy(&self, start: usize, end: usize) -> Option<usize> {
        let at = self.position(end);
        (at == 0 || self.live[at - 1].1 <= start).then_some(at)
    }

    /// Records `[start, end)` as live at `at`, the place
    /// [`Slab::vacancy`] gave.
    #[inline]
    fn insert(&mut self, at: usize, start: usize, end: usize) {
        if !self.sorted && self.live.len() < FEW {
            self.live.push((start, end));
        } else {
            self.insert_many(at, start, end);
        }
    }

    #[cold]
    #[inline(never)]
    fn insert_many(&mut self, at: usize, start: usize, end: usize) {
        if self.sorted {
            debug_assert_eq!(at, self.position(start));
            self.live.insert(at, (start, end));
        } else {
            self.live.push((start, end));
            self.live.sort_unstable();
            self.sorted = true;
        }
    }

    /// Records `[start, end)`, known to overlap no live lease, as live.
    fn add(&mut self, start: usize, end: usize) {
        let at = if self.sorted {
            self.position(start)
        } else {
            self.live.len()
        };
        self.insert(at, start, end);
    }

    #[inline]
    fn remove(&mut self, start: usize) {
        if self.sorted {
            return self.remove_sorted(start);
        }
        match self.live.iter().rposition(|&(s, _)| s == start) {
            Some(at) => {
                self.live.swap_remove(at);
            }
            None => debug_assert!(false, "a slab lease is recorded as live"),
        }
    }

    #[cold]
    #[inline(never)]
    fn remove_sorted(&mut self, start: usize) {
        let at = self.position(start);
        if self.live.get(at).is_none_or(|&(s, _)| s != start) {
            debug_assert!(false, "a slab lease is recorded as live");
            return;
        }
        self.live.remove(at);
        if self.live.is_empty() {
            self.sorted = false;
        }
    }
}

/// Live slab leases up to which the list is kept unsorted.
const FEW: usize = 16;

/// The token-count bucket of a step: the next power of two (0 when the
/// caller did not say how many tokens).
pub fn bucket(tokens: usize) -> usize {
    if tokens == 0 {
        0
    } else {
        tokens.checked_next_power_of_two().unwrap_or(usize::MAX)
    }
}

/// A plan kept for one (phase, bucket).
struct BucketPlan {
    phase: Phase,
    bucket: usize,
    plan: Plan,
    /// Steps served so far when it was last used (for least-recently-used
    /// eviction under the cap).
    last_used: u64,
}

/// Serves each step from the plan of its phase and token-count bucket,
/// built by measuring the first step of that bucket (or the next one after
/// [`ScratchPool::remeasure`]). Run the measuring step at the largest size
/// the bucket will reach (the caller's `reserve`): smaller requests fit
/// their planned ranges, larger ones deviate.
///
/// Every acquire is checked: while the step follows its plan event for
/// event (each acquire and release at the clock it was measured at), by
/// one comparison, the plan itself having been checked when built (no two
/// placements live at once share a byte); from the first event off plan,
/// against the slab leases still live. A request that is larger than
/// planned, comes beyond the plan's end, or whose range is occupied
/// (out-of-order calls) is served by a best-fit fallback and counted as a
/// deviation, never aliased. Requests outside steps, or in a
/// measuring step, use the fallback too. Each phase has its own slab, sized
/// for its plan, so the memory a decode step can use is the decode plan and
/// not the prefill's; the stats report each slab as exclusive to its phase.
pub struct Planned<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    fallback: FreeList<M::Ptr>,
    slabs: [Slab<M::Ptr>; 2],
    plans: Vec<BucketPlan>,
    /// The plan serving the current step.
    active: Option<usize>,
    /// The current step's phase and bucket. While `active` is `Some`, a
    /// step is open and not measuring.
    step: Option<Phase>,
    step_bucket: usize,
    /// Steps begun, the clock of `last_used`.
    steps: u64,
    max_retained_bytes: usize,
    /// Requests served so far in the current step.
    step_index: usize,
    measuring: bool,
    records: Vec<Record>,
    /// The event clock: of the measuring step (each acquire and each
    /// release of one of its leases ticks it), or of a step served on plan.
    /// At most [`LAST_MASK`].
    clock: u32,
    /// The number of the current measurement's first record.
    record_base: u32,
    /// `SLAB | ON_PLAN | phase << PHASE_SHIFT` while the served step is on
    /// plan, else [`OFF_PLAN_TOKEN`]; a lease's token less its clock equals
    /// it when it was served on plan in this step.
    ///
    /// On plan, the step has followed its plan event for event: its
    /// `step_index`-th acquire came at the clock its placement was measured
    /// at, and so did every release. Its leases are then exactly the plan's
    /// at this clock, disjoint by the plan's check, so they are not kept in
    /// the slab's `live` list: an acquire checks one clock instead of the
    /// live ranges. The first event off plan puts the live ones in the list
    /// ([`Planned::leave_plan`]) and the step goes on checking ranges.
    on_plan_token: u32,
    /// While on plan: the serving plan's placements, taken out of
    /// `plans[plan_index]` (`active`) for the step so that a lookup indexes
    /// one vector, and the slab's base.
    serving: Vec<Placement>,
    plan_index: usize,
    plan_base: M::Ptr,
}

impl<M: Memory> Planned<M> {
    /// A planned pool over `memory`; its fallback retains at most
    /// `options.max_retained_bytes`.
    pub fn new(memory: M, options: &PoolOptions) -> Self {
        let slab = || Slab {
            base: None,
            bytes: 0,
            live: Vec::with_capacity(64),
            sorted: false,
        };
        Planned {
            backing: Backing::with_limit(memory, options.reserve_limit),
            counters: Counters::default(),
            fallback: FreeList::new(options.max_retained_bytes),
            slabs: [slab(), slab()],
            plans: Vec::new(),
            active: None,
            step: None,
            step_bucket: 0,
            steps: 0,
            max_retained_bytes: options.max_retained_bytes,
            step_index: 0,
            measuring: false,
            records: Vec::new(),
            clock: 0,
            record_base: 0,
            on_plan_token: OFF_PLAN_TOKEN,
            serving: Vec::new(),
            plan_index: 0,
            plan_base: M::dangling(),
        }
    }

    /// Bytes of the slab that serves `phase`'s plans (the largest kept),
    /// once one is built.
    pub fn planned_bytes(&self, phase: Phase) -> Option<usize> {
        self.plans
            .iter()
            .filter(|p| p.phase == phase)
            .map(|p| p.plan.slab_bytes)
            .max()
    }

    fn find_plan(&self, phase: Phase, bucket: usize) -> Option<usize> {
        self.plans
            .iter()
            .position(|p| p.phase == phase && p.bucket == bucket)
    }

    /// Drops the least recently used plans of `phase` (never `keep`) while
    /// the slab its plans need is larger than the retained-bytes cap.
    fn enforce_cap(&mut self, phase: Phase, keep: usize) {
        while self.planned_bytes(phase).unwrap_or(0) > self.max_retained_bytes {
            let oldest = self
                .plans
                .iter()
                .enumerate()
                .filter(|&(i, p)| p.phase == phase && i != keep)
                .min_by_key(|(_, p)| p.last_used)
                .map(|(i, _)| i);
            let Some(oldest) = oldest else { break };
            self.plans.swap_remove(oldest);
            self.counters.evictions += 1;
        }
    }

    /// Fits `phase`'s slab to its largest plan, if no lease lives in it.
    fn fit_slab(&mut self, phase: Phase) {
        let needed = self.planned_bytes(phase).unwrap_or(0);
        let slab = &self.slabs[phase.index()];
        if needed == slab.bytes || !slab.live.is_empty() {
            return;
        }
        self.free_slab(phase);
        if needed == 0 {
            return;
        }
        // On failure the slab stays empty and every planned request deviates
        // to the fallback, which reports the error if it cannot serve either.
        if let Ok(base) = self.backing.allocate(needed) {
            let slab = &mut self.slabs[phase.index()];
            slab.base = Some(base);
            slab.bytes = needed;
        }
    }

    fn free_slab(&mut self, phase: Phase) {
        let slab = &mut self.slabs[phase.index()];
        debug_assert!(slab.live.is_empty());
        if let Some(base) = slab.base.take() {
            // SAFETY: no lease lives in the slab.
            unsafe { self.backing.free(base, slab.bytes) };
        }
        slab.bytes = 0;
    }

    /// Leaves the plan: the leases acquired on plan and not yet released
    /// (`last` at or after the clock, all of them since every release so
    /// far came on time) go into the slab's live list.
    #[cold]
    #[inline(never)]
    fn leave_plan(&mut self) {
        if !self.on_plan() {
            return;
        }
        let (phase, live) = (self.plan_phase(), self.live_on_plan());
        self.on_plan_token = OFF_PLAN_TOKEN;
        // Every acquire of the step so far was served on plan.
        self.counters.hits += self.step_index as u64;
        let slab = &mut self.slabs[phase];
        if live {
            for p in &self.serving[..self.step_index] {
                if p.last >= self.clock {
                    slab.add(p.offset, p.offset + p.bytes);
                }
            }
        }
        self.plans[self.plan_index].plan.placements = std::mem::take(&mut self.serving);
    }

    /// Advances the measuring clock, which stops at [`LAST_MASK`]: the
    /// clock never exceeds it, so `on_plan_token` while off plan
    /// ([`OFF_PLAN_TOKEN`]) matches no token in `release_grant`.
    fn tick(&mut self) {
        self.clock = (self.clock + 1).min(LAST_MASK);
    }

    fn on_plan(&self) -> bool {
        self.on_plan_token != OFF_PLAN_TOKEN
    }

    /// The index of the phase whose step is on plan (only while it is).
    fn plan_phase(&self) -> usize {
        ((self.on_plan_token >> PHASE_SHIFT) & 1) as usize
    }

    /// Whether leases served on plan are still live: acquires (the step's
    /// index) exceed releases (the clock less the acquires).
    fn live_on_plan(&self) -> bool {
        2 * self.step_index > self.clock as usize
    }

    /// True when the slab of `phase` holds no live lease.
    fn slab_idle(&self, phase: usize) -> bool {
        let on_plan_live = self.on_plan() && self.plan_phase() == phase && self.live_on_plan();
        self.slabs[phase].live.is_empty() && !on_plan_live
    }

    /// [`ScratchPool::release`], which needs only the grant.
    #[inline]
    pub(crate) fn release_grant(&mut self, grant: &Grant<M::Ptr>) {
        // While on plan, every slab lease of the step's phase was served on
        // plan in this step (the step begins on plan only with no lease
        // live in that slab): on time if released at its measured clock.
        let token = grant.token;
        // `on_plan_token` has no clock bits, and the clock is at most
        // `LAST_MASK`: equal exactly when the token is `on_plan_token`'s
        // and due now. (Off plan, `OFF_PLAN_TOKEN`'s top bits are no
        // token's.)
        if token ^ self.on_plan_token == self.clock {
            self.clock += 1;
            return;
        }
        self.release_off_plan(grant);
    }

    /// An acquire that the plan did not foresee, or one off plan: the next
    /// placement if it is free of every live lease of the slab, else the
    /// fallback. (Out of line, the request in registers: see
    /// `strategy::held`.)
    #[inline(never)]
    fn acquire_off_plan(
        &mut self,
        bytes: usize,
        align: u32,
        tag: Tag,
        grant: &mut Grant<M::Ptr>,
    ) -> Result<(), ScratchError> {
        let request = Request { bytes, align, tag };
        self.leave_plan();
        if let (Some(active), Some(phase)) = (self.active, self.step)
            && let Some((base, offset, at)) =
                self.planned_range(active, phase, self.step_index, request)
        {
            self.step_index += 1;
            self.slabs[phase.index()].insert(at, offset, offset + request.bytes);
            self.counters.hits += 1;
            *grant = Grant {
                base,
                offset,
                capacity: request.bytes,
                token: SLAB | (phase.index() as u32) << PHASE_SHIFT,
                fresh: false,
            };
            return Ok(());
        }
        self.acquire_slow(request, grant)
    }

    /// A release off plan: from the slab's live list, or the fallback.
    #[inline(never)]
    fn release_off_plan(&mut self, grant: &Grant<M::Ptr>) {
        if grant.token & SLAB == 0 {
            return self.release_slow(grant);
        }
        let phase = ((grant.token >> PHASE_SHIFT) & 1) as usize;
        if self.on_plan() && phase == self.plan_phase() {
            self.leave_plan();
        }
        self.slabs[phase].remove(grant.offset);
    }

    /// A lease not served from a slab: recorded when measuring, then
    /// returned to the fallback.
    #[cold]
    #[inline(never)]
    fn release_slow(&mut self, grant: &Grant<M::Ptr>) {
        if grant.token & MEASURED != 0 && self.measuring {
            // A lease of an earlier measurement falls outside the current
            // records and is not recorded; never an index out of range.
            let record = (grant.token & RECORD_MASK).wrapping_sub(self.record_base) & RECORD_MASK;
            if let Some(r) = self.records.get_mut(record as usize) {
                r.last = self.clock;
                self.tick();
            }
        }
        self.fallback.release(
            &mut self.backing,
            &mut self.counters,
            grant.base,
            grant.capacity,
        );
    }


    /// Everything but a planned lease served: the measuring step, a
    /// deviation, a lease outside any step.
    #[cold]
    #[inline(never)]
    fn acquire_slow(
        &mut self,
        request: Request,
        grant: &mut Grant<M::Ptr>,
    ) -> Result<(), ScratchError> {
        if let Some(phase) = self.step {
            let index = self.step_index;
            self.step_index += 1;
            if self.measuring {
                self.fallback
                    .acquire(&mut self.backing, &mut self.counters, request, grant)?;
                let record = self.records.len() as u32;
                if record <= RECORD_MASK {
                    let bytes = round_up(request.bytes, BLOCK_ALIGN).unwrap_or(usize::MAX);
                    self.records.push(Record {
                        bytes,
                        first: self.clock,
                        last: OPEN,
                    });
                    grant.token = MEASURED | (self.record_base.wrapping_add(record) & RECORD_MASK);
                }
                self.tick();
                return Ok(());
            }
            if let Some(active) = self.active {
                // The fast path found the placement unusable.
                debug_assert!(self.planned_range(active, phase, index, request).is_none());
                self.counters.deviations += 1;
            }
        }
        self.fallback
            .acquire(&mut self.backing, &mut self.counters, request, grant)
    }

    /// The slab's base, the range planned for the `index`-th request of the
    /// step and its place among the slab's live leases, if it fits and is
    /// free.
    #[inline]
    fn planned_range(
        &self,
        active: usize,
        phase: Phase,
        index: usize,
        request: Request,
    ) -> Option<(M::Ptr, usize, usize)> {
        let placement = self.plans[active].plan.placements.get(index)?;
        let slab = &self.slabs[phase.index()];
        if request.bytes > placement.bytes {
            return None;
        }
        // No overflow: the placement lies inside its plan's slab.
        let (start, end) = (placement.offset, placement.offset + request.bytes);
        let base = slab.base?;
        if end > slab.bytes || start & (request.align as usize - 1) != 0 {
            return None;
        }
        slab.vacancy(start, end).map(|at| (base, start, at))
    }
}

// SAFETY: slab grants lie inside their phase's slab at multiples of 64, free
// of every live lease of that slab when granted: off plan, checked against
// the slab's live list; on plan, the live leases are exactly the plan's at
// this clock (the step began with none live in the slab, every event so far
// came at its measured clock, one event per clock value), and the plan gives
// leases live at once disjoint ranges inside `slab_bytes`, checked when built
// (`Plan::disjoint`), the slab being at least that large. `begin_step`,
// `end_step`, `remeasure` and `trim` leave the plan first, putting the live
// leases in the list. A slab is freed only when no lease lives in it. Other
// grants come from the best-fit free list, which hands out whole idle or
// fresh buffers (see `BestFit`).
unsafe impl<M: Memory> ScratchPool<M> for Planned<M> {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    #[inline]
    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        // On plan: the next placement, if the request comes when it was
        // measured and fits. (Its offset is a multiple of 64, checked when
        // the plan was built, and no request asks for more alignment. Each
        // acquire on plan is a hit; `leave_plan` counts them.)
        // `serving` holds placements only while on plan (taken when a step
        // goes on plan, given back by `leave_plan`), so an acquire off plan
        // finds none.
        let index = self.step_index;
        if let Some(p) = self.serving.get(index)
            && p.first == self.clock
            && request.bytes <= p.bytes
        {
            debug_assert!(self.on_plan());
            debug_assert!(p.offset % request.align as usize == 0);
            self.step_index = index + 1;
            self.clock += 1;
            *grant = Grant {
                base: self.plan_base,
                offset: p.offset,
                capacity: request.bytes,
                token: self.on_plan_token | p.last,
                fresh: false,
            };
            return Ok(());
        }
        self.acquire_off_plan(request.bytes, request.align, request.tag, grant)
    }

    #[inline]
    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        self.release_grant(grant);
    }

    fn begin_step(&mut self, phase: Phase, tokens: usize) {
        self.leave_plan();
        self.step = Some(phase);
        self.step_bucket = bucket(tokens);
        self.step_index = 0;
        self.steps += 1;
        self.active = self.find_plan(phase, self.step_bucket);
        if let Some(active) = self.active {
            self.plans[active].last_used = self.steps;
        }
        self.measuring = self.active.is_none();
        if self.measuring {
            // Number the new records after the previous measurement's.
            self.record_base = self
                .record_base
                .wrapping_add(self.records.len() as u32)
                .wrapping_add(1)
                & RECORD_MASK;
            self.records.clear();
            self.clock = 0;
        } else if let Some(active) = self.active {
            self.fit_slab(phase);
            self.clock = 0;
            let slab = &self.slabs[phase.index()];
            if let Some(base) = slab.base
                && self.plans[active].plan.verified
                && slab.live.is_empty()
                && slab.bytes >= self.plans[active].plan.slab_bytes
            {
                self.on_plan_token = SLAB | ON_PLAN | (phase.index() as u32) << PHASE_SHIFT;
                self.serving = std::mem::take(&mut self.plans[active].plan.placements);
                self.plan_index = active;
                self.plan_base = base;
            }
        }
    }

    fn end_step(&mut self) {
        self.leave_plan();
        let Some(phase) = self.step.take() else {
            return;
        };
        self.active = None;
        if self.measuring {
            self.measuring = false;
            self.plans.push(BucketPlan {
                phase,
                bucket: self.step_bucket,
                plan: Plan::of(&self.records),
                last_used: self.steps,
            });
            self.enforce_cap(phase, self.plans.len() - 1);
            // The measuring step's buffers go back before the slab is taken,
            // so the peak after measurement is the slab alone.
            self.fallback.clear(&mut self.backing);
            self.fit_slab(phase);
        }
    }

    fn remeasure(&mut self, phase: Phase) {
        self.leave_plan();
        self.plans.retain(|p| p.phase != phase);
        // Mid-step, the plan serving the step may be gone and the others
        // moved: find it again (the rest of the step deviates if it went).
        if !self.measuring {
            self.active = self
                .step
                .and_then(|step| self.find_plan(step, self.step_bucket));
        }
    }

    fn trim(&mut self) {
        self.leave_plan();
        self.counters.trims += 1;
        self.fallback.clear(&mut self.backing);
        for phase in Phase::ALL {
            if self.slabs[phase.index()].live.is_empty() {
                self.free_slab(phase);
            }
        }
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let idle_slabs = || {
            Phase::ALL
                .iter()
                .filter(|p| self.slab_idle(p.index()))
                .map(|p| self.slabs[p.index()].bytes)
        };
        let idle: usize = idle_slabs().sum();
        let mut stats = self
            .counters
            .report(&self.backing, self.fallback.retained_bytes() + idle);
        if self.on_plan() {
            // Not yet counted: see `leave_plan`.
            stats.hits += self.step_index as u64;
        }
        stats.phase_exclusive_bytes = [self.slabs[0].bytes, self.slabs[1].bytes];
        // An idle slab serves any request of its phase; else the fallback's
        // largest idle buffer.
        stats.largest_free_bytes = idle_slabs()
            .chain([self.fallback.largest()])
            .max()
            .unwrap_or(0);
        stats
    }
}

impl<M: Memory> Drop for Planned<M> {
    fn drop(&mut self) {
        self.fallback.clear(&mut self.backing);
        for phase in Phase::ALL {
            self.free_slab(phase);
        }
    }
}
