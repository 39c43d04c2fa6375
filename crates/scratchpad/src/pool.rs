//! [`Pool`]: the front end every caller uses. It owns a strategy, hands out
//! typed leases through scopes, keeps the strategy-independent statistics,
//! and records traces.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::strategy::Held;
use crate::trace::ops::Op;
use crate::trace::recorder::Recorder;
use crate::{
    BLOCK_ALIGN, Fragmentation, Grant, Memory, Phase, PoolOptions, PoolStats, Request, Scope,
    ScratchError, ScratchPool, Tag, TagStats, Trace,
};

/// A slot index that marks an empty lease, which holds no memory.
pub(crate) const EMPTY_SLOT: u32 = u32::MAX;

/// A scratch pool: a strategy behind the typed, scoped lease API.
///
/// Leases come from [`Pool::scope`] (or [`Pool::step`], a scope that is also
/// one step of a phase); everything acquired inside a scope is released when
/// it ends, and a lease cannot outlive it. One pool serves one thread at a
/// time (`Send`, not `Sync`); [`crate::SharedPool`] shares one.
///
/// ```
/// use scratchpad::{HostMemory, Pool, PoolOptions, tag};
/// let pool = Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default())?;
/// let sum = pool.scope(|s| -> Result<f32, scratchpad::ScratchError> {
///     let mut row = s.acquire::<f32>(288, tag!("doc.row"))?;
///     row.fill(0.5);
///     Ok(row.iter().sum())
/// })?;
/// assert_eq!(sum, 144.0);
/// assert_eq!(pool.stats().live_bytes, 0);
/// # Ok::<(), scratchpad::ScratchError>(())
/// ```
pub struct Pool<M: Memory> {
    /// Boxed, so that its fields keep one place relative to the live table
    /// and the tag counters (the heap) whatever stack the pool is made on.
    /// Inline, a pool on the stack landed at a random 4 KiB offset from
    /// them (ASLR), and in 5 of 12 processes a field shared its low twelve
    /// address bits with a lease-table store ("4K aliasing"): a warm
    /// `planned` pair took 9.5-13 ns instead of 8.3. Boxed: 38 of 40
    /// processes at 8.1-8.9 ns.
    core: Box<RefCell<Core<M>>>,
}

impl<M: Memory> Pool<M> {
    /// A pool over the given strategy.
    pub fn new(strategy: Box<dyn ScratchPool<M>>) -> Self {
        Pool {
            core: Box::new(RefCell::new(Core::new(Held::Dyn(strategy)))),
        }
    }

    /// A pool over the strategy called `name` (see [`crate::STRATEGY_NAMES`]).
    pub fn with_strategy(
        name: &str,
        memory: M,
        options: &PoolOptions,
    ) -> Result<Self, ScratchError> {
        let strategy = Held::create(name, memory, options)?;
        Ok(Pool {
            core: Box::new(RefCell::new(Core::new(strategy))),
        })
    }

    /// The strategy's name.
    pub fn strategy_name(&self) -> &'static str {
        self.core.borrow().strategy.name()
    }

    /// Runs `f` in a new scope: leases acquired from it are released when it
    /// returns (or unwinds) at the latest. Scopes nest.
    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        run_scope(&self.core, f)
    }

    /// Runs `f` as one step of `phase`, in its own scope. The planned
    /// strategy measures the first step of a phase and serves later steps of
    /// that phase from the plan.
    pub fn step<R>(&self, phase: Phase, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        self.begin_step(phase);
        let _end = StepGuard { core: &self.core };
        run_scope(&self.core, f)
    }

    /// Marks the start of a step of `phase` (ends an open step first). Prefer
    /// [`Pool::step`]; this is for callers whose step spans several scopes.
    pub fn begin_step(&self, phase: Phase) {
        self.core.borrow_mut().begin_step(phase, 0);
    }

    /// Marks the start of a step of `phase` over `tokens` tokens, so that
    /// `planned` serves it from the plan of its token-count bucket.
    pub fn begin_step_sized(&self, phase: Phase, tokens: usize) {
        self.core.borrow_mut().begin_step(phase, tokens);
    }

    /// Marks the end of the current step, if one is open.
    pub fn end_step(&self) {
        self.core.borrow_mut().end_step();
    }

    /// Makes the next step of `phase` a measuring step again (`planned`).
    pub fn remeasure(&self, phase: Phase) {
        self.core.borrow_mut().strategy.remeasure(phase);
    }

    /// Returns idle memory to the backing.
    pub fn trim(&self) {
        self.core.borrow_mut().strategy.trim();
    }

    /// Starts a new peak window: peaks of live and reserved bytes (overall,
    /// per phase, per tag) restart from the current values.
    pub fn reset_peaks(&self) {
        self.core.borrow_mut().reset_peaks();
    }

    /// The pool's statistics now. Allocation-free.
    pub fn stats(&self) -> PoolStats {
        self.core.borrow().stats()
    }

    /// Per-call-site figures for every tag this pool has seen. Allocates.
    pub fn tag_stats(&self) -> Vec<TagStats> {
        self.core.borrow().tag_stats()
    }

    /// Turns the check of every grant (in bounds, aligned, overlapping no live
    /// lease) on or off. On by default in debug builds; costs a scan of the
    /// live leases per acquire.
    pub fn set_verify(&self, verify: bool) {
        let mut core = self.core.borrow_mut();
        core.verify = verify;
        core.update_watch();
    }

    /// Starts recording every acquire, release, scope and step into a
    /// [`Trace`]. Recording allocates; keep it out of counted windows.
    pub fn start_trace(&self) {
        let mut core = self.core.borrow_mut();
        let recorder = Recorder::new(core.depth, core.phase, core.next_id);
        core.recorder = Some(Box::new(recorder));
        core.update_watch();
    }

    /// Stops recording and returns the trace recorded since
    /// [`Pool::start_trace`], if one was started.
    pub fn take_trace(&self) -> Option<Trace> {
        let mut core = self.core.borrow_mut();
        let recorder = core.recorder.take();
        core.update_watch();
        recorder.map(|r| r.finish())
    }

    /// Runs validated trace ops on this pool (the replay loop, timed by
    /// [`Trace::replay`]) inside one extra scope: each step's peaks are
    /// reset as it begins, and `on_step` is told the phase and the stats
    /// then, and `None` with the stats when it ends. Returns the acquires
    /// and releases performed. After an error it closes what it opened,
    /// releasing the leases still live.
    pub(crate) fn run_ops<O: OpObserver>(
        &self,
        ops: &[Op],
        observer: &mut O,
    ) -> Result<u64, ScratchError> {
        let n_leases = ops
            .iter()
            .filter(|op| matches!(op, Op::Acquire { .. }))
            .count();
        let mut slots = vec![EMPTY_SLOT; n_leases];
        let mut n_ops = 0u64;
        let mut core = self.core.borrow_mut();
        let base = core.enter_scope();
        let mut depth = base;
        // Live leases per open scope, from `base` (what a `Scope` counts).
        let mut live_per_scope = vec![0u32];
        let mut result = Ok(());
        for op in ops {
            match *op {
                Op::Step(phase, tokens) => {
                    core.begin_step(phase, tokens);
                    core.reset_peaks();
                    observer.step(Some(phase), core.stats());
                }
                Op::EndStep => {
                    observer.step(None, core.stats());
                    core.end_step();
                }
                Op::Scope => {
                    depth = core.enter_scope();
                    live_per_scope.push(0);
                }
                Op::EndScope => {
                    let live = live_per_scope.pop().unwrap_or(0);
                    core.exit_scope(depth, live > 0);
                    depth -= 1;
                }
                Op::Acquire {
                    lease,
                    bytes,
                    align,
                    tag,
                } => {
                    match core.acquire(bytes, align, tag, depth) {
                        Ok((slot, ptr, _)) => {
                            slots[lease] = slot;
                            if slot != EMPTY_SLOT {
                                live_per_scope[(depth - base) as usize] += 1;
                            }
                            observer.acquired(lease, M::address(ptr));
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                    n_ops += 1;
                }
                Op::Release { lease } => {
                    if slots[lease] != EMPTY_SLOT {
                        let owner = core.slot_depth(slots[lease]);
                        core.release(slots[lease]);
                        live_per_scope[(owner - base) as usize] -= 1;
                    }
                    observer.released(lease);
                    n_ops += 1;
                }
            }
        }
        core.end_step();
        while depth >= base {
            core.exit_scope(depth, true);
            depth -= 1;
        }
        result.map(|()| n_ops)
    }
}

/// Opens a scope on `core`, runs `f` in it and closes it, also on unwind.
pub(crate) fn run_scope<M: Memory, R>(
    core: &RefCell<Core<M>>,
    f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R,
) -> R {
    let depth = core.borrow_mut().enter_scope();
    let scope = Scope::new(core, depth);
    // Declared after the scope, so dropped before it.
    let _exit = ScopeGuard { scope: &scope };
    f(&scope)
}

struct ScopeGuard<'a, 'p, M: Memory> {
    scope: &'a Scope<'p, M>,
}

impl<M: Memory> Drop for ScopeGuard<'_, '_, M> {
    fn drop(&mut self) {
        let forgotten = self.scope.live_leases() > 0;
        self.scope
            .core()
            .borrow_mut()
            .exit_scope(self.scope.depth(), forgotten);
    }
}

struct StepGuard<'p, M: Memory> {
    core: &'p RefCell<Core<M>>,
}

impl<M: Memory> Drop for StepGuard<'_, M> {
    fn drop(&mut self) {
        self.core.borrow_mut().end_step();
    }
}

/// `depth` of a vacant slot in the live table.
const VACANT: u32 = u32::MAX;
/// End of the free-slot list.
const NIL: u32 = u32::MAX;
/// Index into per-phase arrays while no step is open.
const NO_PHASE: usize = 2;

/// One live lease (or, with `depth == VACANT`, a free slot linked through
/// `next_free`), as the core remembers it. The grant first: its address is
/// the entry's, one register for both on the fast paths.
#[repr(C)]
struct LiveEntry<P> {
    grant: Grant<P>,
    /// The request, field by field. Release reads `bytes` and `tag` only
    /// (`align` only for a `dyn` strategy): a load spanning two fields
    /// written by separate stores cannot be forwarded from the store
    /// buffer, a stall of a dozen cycles on every lease.
    bytes: usize,
    align: u32,
    tag: Tag,
    depth: u32,
    next_free: u32,
    id: u64,
}

impl<P> LiveEntry<P> {
    fn request(&self) -> Request {
        Request {
            bytes: self.bytes,
            align: self.align,
            tag: self.tag,
        }
    }
}

/// A tag's counters, 32 bytes so that a tag's index becomes an offset in
/// one shift.
#[derive(Clone, Copy, Default)]
#[repr(align(32))]
struct TagCounters {
    acquires: u64,
    bytes_requested: u64,
    live_bytes: usize,
    peak_live_bytes: usize,
}

impl TagCounters {
    #[cold]
    #[inline(never)]
    fn new_peak(&mut self) {
        self.peak_live_bytes = self.live_bytes;
    }
}

/// The state behind a [`Pool`]: the strategy, the table of live leases,
/// scope depth and the strategy-independent counters. All of it is
/// bookkeeping; views are built by leases.
pub(crate) struct Core<M: Memory> {
    strategy: Held<M>,
    /// Live leases by slot; vacant slots form a list from `free_head`. Never
    /// shrinks: a slot index, once handed out, stays valid (acquire and
    /// release index it unchecked).
    slots: Vec<LiveEntry<M::Ptr>>,
    free_head: u32,
    /// Open scopes; the innermost has this depth (0: none open).
    depth: u32,
    /// The shallowest scope that acquired a lease while a deeper scope was
    /// open; scopes deeper than it may not recycle their memory on exit.
    pin_depth: u32,
    phase: Option<Phase>,
    /// `phase`'s index, or [`NO_PHASE`].
    phase_idx: usize,
    next_id: u64,
    /// Empty leases handed out. The pool's acquires and bytes requested are
    /// the sums of the tags' (one count per lease instead of two), and its
    /// releases the acquires less the leases live now (the live table).
    empty_acquires: u64,
    live_bytes: usize,
    /// Most bytes live at once per phase, plus a last entry for work
    /// outside steps; the overall peak is their maximum.
    phase_peak_live_bytes: [usize; 3],
    /// `phase_peak_live_bytes[phase_idx]`, or 0 while `watch`: an acquire
    /// that takes the live bytes above it goes the cold way
    /// ([`Core::past_gate`]), which keeps a new peak and checks and records
    /// the grant. One compare on the fast path for both.
    gate: usize,
    /// Fragmentation when each entry of `phase_peak_live_bytes` was reached.
    phase_fragmentation: [Fragmentation; 3],
    /// By tag index; grows to hold every tag acquired, never shrinks (a
    /// release indexes it unchecked).
    tags: Vec<TagCounters>,
    verify: bool,
    recorder: Option<Box<Recorder>>,
    /// `verify || recorder.is_some()`: one test on the fast path for both.
    watch: bool,
}

impl<M: Memory> Core<M> {
    fn new(strategy: Held<M>) -> Self {
        Core {
            strategy,
            slots: Vec::new(),
            free_head: NIL,
            depth: 0,
            pin_depth: u32::MAX,
            phase: None,
            phase_idx: NO_PHASE,
            // Ids start at 1: a slot that never recorded holds id 0, below
            // every recording's first id (see `Recorder`).
            next_id: 1,
            empty_acquires: 0,
            live_bytes: 0,
            phase_peak_live_bytes: [0; 3],
            gate: 0,
            phase_fragmentation: [Fragmentation::default(); 3],
            tags: Vec::new(),
            verify: cfg!(debug_assertions),
            recorder: None,
            watch: cfg!(debug_assertions),
        }
    }

    pub(crate) fn memory(&self) -> &M {
        self.strategy.memory()
    }

    #[inline(always)]
    fn tag_counters(&mut self, tag: Tag) -> &mut TagCounters {
        // One bounds check: `get_mut` then the cold growth, rather than a
        // length check followed by an index that checks again.
        if self.tags.get(tag.index()).is_none() {
            return self.grow_tags(tag);
        }
        &mut self.tags[tag.index()]
    }

    #[cold]
    #[inline(never)]
    fn grow_tags(&mut self, tag: Tag) -> &mut TagCounters {
        self.tags.resize(tag.index() + 1, TagCounters::default());
        &mut self.tags[tag.index()]
    }

    /// Serves a request for a scope at `depth`, returning the lease's slot
    /// (or [`EMPTY_SLOT`]), its address and whether it is known to be zero.
    /// `align` must be a power of two no larger than [`BLOCK_ALIGN`].
    ///
    /// Always inlined into [`crate::Scope`]'s acquire, as `release` is into
    /// the lease's drop. Left to the compiler, it was inlined in some
    /// binaries (`pool_ops`) and a call in others, its result passed
    /// through memory: in a loop of steps of 64 pairs built as the benches
    /// are, 147 instructions a warm `arena` pair instead of 116 (callgrind),
    /// 7.3 ns instead of 5.9.
    #[inline(always)]
    pub(crate) fn acquire(
        &mut self,
        bytes: usize,
        align: usize,
        tag: Tag,
        depth: u32,
    ) -> Result<(u32, M::Ptr, bool), ScratchError> {
        debug_assert!(align.is_power_of_two() && align <= BLOCK_ALIGN);
        debug_assert!(
            depth >= 1 && depth <= self.depth,
            "a scope outlived its closure"
        );
        if bytes == 0 {
            // An empty lease holds nothing: it is returned as it is handed
            // out, so a forgotten one leaves the counts balanced.
            self.empty_acquires += 1;
            self.tag_counters(tag).acquires += 1;
            return Ok((EMPTY_SLOT, M::dangling(), true));
        }
        let request = Request {
            bytes,
            align: align as u32,
            tag,
        };
        if self.free_head == NIL {
            self.add_slot();
        }
        let slot = self.free_head;
        debug_assert!((slot as usize) < self.slots.len());
        // SAFETY: `free_head` is NIL (replaced just above) or the index of a
        // vacant slot, and the table never shrinks.
        let entry = unsafe { self.slots.get_unchecked_mut(slot as usize) };
        self.strategy.acquire(request, &mut entry.grant)?;
        self.free_head = entry.next_free;
        entry.bytes = bytes;
        entry.align = align as u32;
        entry.tag = tag;
        entry.depth = depth;
        // Read the grant's fields in place: copying the whole grant right
        // after the strategy wrote it stalls on store forwarding.
        let fresh = entry.grant.fresh;
        let ptr = M::offset(entry.grant.base, entry.grant.offset);
        if depth < self.depth {
            self.pin_depth = self.pin_depth.min(depth);
        }
        self.live_bytes += bytes;
        if self.live_bytes > self.gate {
            self.past_gate(slot);
        }
        let counters = self.tag_counters(tag);
        counters.acquires += 1;
        counters.bytes_requested += bytes as u64;
        counters.live_bytes += bytes;
        if counters.live_bytes > counters.peak_live_bytes {
            // A branch, not a conditional move: after warm-up a tag's peak
            // rarely moves, and the store is skipped.
            counters.new_peak();
        }
        Ok((slot, ptr, fresh))
    }

    /// The acquire in `slot` took the live bytes past [`Core::gate`]: checks
    /// and records it when watching; at a new peak for the current phase,
    /// keeps the peak and how fragmented the memory is at it.
    #[cold]
    #[inline(never)]
    fn past_gate(&mut self, slot: u32) {
        if self.watch {
            self.watch_acquire(slot);
        }
        if self.live_bytes > self.phase_peak_live_bytes[self.phase_idx] {
            self.phase_peak_live_bytes[self.phase_idx] = self.live_bytes;
            let s = self.strategy.stats();
            self.phase_fragmentation[self.phase_idx] = Fragmentation {
                reserved_minus_live_bytes: s.reserved_bytes.saturating_sub(self.live_bytes),
                largest_free_bytes: s.largest_free_bytes,
            };
        }
        self.reset_gate();
    }

    /// Sets [`Core::gate`] for the current phase and `watch`.
    fn reset_gate(&mut self) {
        self.gate = if self.watch {
            0
        } else {
            self.phase_peak_live_bytes[self.phase_idx]
        };
    }

    fn update_watch(&mut self) {
        self.watch = self.verify || self.recorder.is_some();
        self.reset_gate();
    }

    /// Checks the grant in `slot` (`verify`) and records its acquire.
    #[cold]
    #[inline(never)]
    fn watch_acquire(&mut self, slot: u32) {
        if self.verify {
            self.check_grant(slot);
        }
        if self.recorder.is_some() {
            self.record_acquire(slot);
        }
    }

    /// Gives the lease in `slot` a trace id and records its acquire.
    fn record_acquire(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        entry.id = self.next_id;
        self.next_id += 1;
        if let Some(recorder) = &mut self.recorder {
            recorder.acquire(entry.id, entry.bytes, entry.align as usize, entry.tag);
        }
    }

    #[cold]
    #[inline(never)]
    fn add_slot(&mut self) {
        let grant = Grant {
            base: M::dangling(),
            offset: 0,
            capacity: 0,
            token: 0,
            fresh: false,
        };
        let entry = LiveEntry {
            grant,
            bytes: 0,
            align: 0,
            tag: Tag::UNTAGGED,
            depth: VACANT,
            next_free: NIL,
            id: 0,
        };
        self.slots.push(entry);
        self.free_head = (self.slots.len() - 1) as u32;
    }

    /// The depth of the scope that owns the live lease in `slot`.
    pub(crate) fn slot_depth(&self, slot: u32) -> u32 {
        self.slots[slot as usize].depth
    }

    /// Zeroes `bytes` bytes of the live lease in `slot` at `ptr`.
    pub(crate) fn zero(&self, slot: u32, ptr: M::Ptr, bytes: usize) -> Result<(), ScratchError> {
        debug_assert!(self.slots[slot as usize].depth != VACANT);
        // SAFETY: `ptr` is the start of the live lease in `slot`, which the
        // strategy granted at least `bytes` bytes inside one of its blocks;
        // the lease has not been handed to its owner yet, so no one else
        // accesses those bytes.
        unsafe { self.memory().zero(ptr, bytes) }
    }

    /// The grant must lie in bounds, be aligned, and overlap no live lease.
    #[cold]
    #[inline(never)]
    fn check_grant(&self, slot: u32) {
        let name = self.strategy.name();
        let entry = &self.slots[slot as usize];
        let (grant, request) = (&entry.grant, entry.request());
        assert!(
            grant.capacity >= request.bytes,
            "strategy `{name}` granted {} bytes for a request of {}",
            grant.capacity,
            request.bytes
        );
        let start = M::address(M::offset(grant.base, grant.offset));
        assert!(
            start % request.align as usize == 0,
            "strategy `{name}` granted address {start:#x}, not aligned to {}",
            request.align
        );
        let end = start + grant.capacity;
        let others = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(idx, e)| e.depth != VACANT && idx != slot as usize);
        for (_, entry) in others {
            let other = M::address(M::offset(entry.grant.base, entry.grant.offset));
            let other_end = other + entry.grant.capacity;
            assert!(
                end <= other || other_end <= start,
                "strategy `{name}` granted [{start:#x}, {end:#x}) overlapping the live lease \
                 [{other:#x}, {other_end:#x})"
            );
        }
    }

    // Always inlined into `Lease::drop`: a call frame of its own costs as
    // much as the bookkeeping.
    #[inline(always)]
    pub(crate) fn release(&mut self, slot: u32) {
        debug_assert!((slot as usize) < self.slots.len());
        // SAFETY: `slot` was returned by `acquire` (a lease's, the replay's
        // or `exit_scope`'s own index), and the table never shrinks.
        let entry = unsafe { self.slots.get_unchecked_mut(slot as usize) };
        debug_assert!(entry.depth != VACANT, "released a lease twice");
        entry.depth = VACANT;
        entry.next_free = self.free_head;
        self.free_head = slot;
        let (bytes, tag) = (entry.bytes, entry.tag);
        let align = &entry.align;
        self.strategy.release(bytes, tag, || *align, &entry.grant);
        self.live_bytes -= bytes;
        debug_assert!(tag.index() < self.tags.len());
        // SAFETY: the lease's acquire counted its tag (`tag_counters`, which
        // grows the table to hold it), and the table never shrinks.
        unsafe { self.tags.get_unchecked_mut(tag.index()) }.live_bytes -= bytes;
        if self.watch {
            self.record_release(slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_release(&mut self, slot: u32) {
        let id = self.slots[slot as usize].id;
        if let Some(recorder) = &mut self.recorder {
            recorder.release(id);
        }
    }

    pub(crate) fn enter_scope(&mut self) -> u32 {
        self.depth += 1;
        self.strategy.enter_scope();
        if let Some(recorder) = &mut self.recorder {
            recorder.scope();
        }
        self.depth
    }

    /// Closes the innermost scope, at `depth`. `forgotten` says whether its
    /// owner counted leases of it still live: leases normally release
    /// themselves before their scope closes; the ones left were forgotten
    /// (`mem::forget`) and can no longer be used, and are released here.
    pub(crate) fn exit_scope(&mut self, depth: u32, forgotten: bool) {
        assert_eq!(depth, self.depth, "scopes must close innermost first");
        if forgotten {
            for slot in 0..self.slots.len() {
                if self.slots[slot].depth == depth {
                    self.release(slot as u32);
                }
            }
        }
        let may_reset = self.pin_depth >= depth;
        if may_reset {
            self.pin_depth = u32::MAX;
        }
        self.strategy.exit_scope(may_reset);
        if let Some(recorder) = &mut self.recorder {
            recorder.end_scope();
        }
        self.depth -= 1;
    }

    pub(crate) fn begin_step(&mut self, phase: Phase, tokens: usize) {
        self.end_step();
        self.phase = Some(phase);
        self.phase_idx = phase.index();
        self.reset_gate();
        self.strategy.begin_step(phase, tokens);
        if let Some(recorder) = &mut self.recorder {
            recorder.step(phase, tokens);
        }
    }

    pub(crate) fn end_step(&mut self) {
        if self.phase.take().is_some() {
            self.phase_idx = NO_PHASE;
            self.reset_gate();
            self.strategy.end_step();
            if let Some(recorder) = &mut self.recorder {
                recorder.end_step();
            }
        }
    }

    fn reset_peaks(&mut self) {
        self.strategy.reset_peak();
        self.phase_peak_live_bytes = [0; 3];
        self.phase_peak_live_bytes[self.phase_idx] = self.live_bytes;
        self.reset_gate();
        self.phase_fragmentation = [Fragmentation::default(); 3];
        for tag in &mut self.tags {
            tag.peak_live_bytes = tag.live_bytes;
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let s = self.strategy.stats();
        // What acquire and release do not count, from the live table.
        let live = self.slots.iter().filter(|e| e.depth != VACANT);
        let live_leases = live.clone().count() as u64;
        let live_capacity_bytes = live.map(|e| e.grant.capacity).sum();
        let acquires = self.tags.iter().map(|t| t.acquires).sum();
        PoolStats {
            acquires,
            releases: acquires - live_leases,
            hits: s.hits + self.empty_acquires,
            misses: s.misses,
            bytes_requested: self.tags.iter().map(|t| t.bytes_requested).sum(),
            live_bytes: self.live_bytes,
            peak_live_bytes: self
                .phase_peak_live_bytes
                .iter()
                .copied()
                .max()
                .unwrap_or(0),
            phase_peak_live_bytes: [self.phase_peak_live_bytes[0], self.phase_peak_live_bytes[1]],
            live_capacity_bytes,
            reserved_bytes: s.reserved_bytes,
            peak_reserved_bytes: s.peak_reserved_bytes,
            retained_bytes: s.retained_bytes,
            evictions: s.evictions,
            deviations: s.deviations,
            trims: s.trims,
            backing_allocations: s.backing_allocations,
            backing_frees: s.backing_frees,
            phase_exclusive_bytes: s.phase_exclusive_bytes,
            splits: s.splits,
            merges: s.merges,
            largest_free_bytes: s.largest_free_bytes,
            phase_fragmentation: [self.phase_fragmentation[0], self.phase_fragmentation[1]],
        }
    }

    fn tag_stats(&self) -> Vec<TagStats> {
        self.tags
            .iter()
            .enumerate()
            .filter(|(_, c)| c.acquires > 0)
            .map(|(idx, c)| {
                let tag = Tag::from_index(idx);
                TagStats {
                    tag,
                    name: tag.name(),
                    acquires: c.acquires,
                    live_bytes: c.live_bytes,
                    peak_live_bytes: c.peak_live_bytes,
                }
            })
            .collect()
    }
}

/// A marker that makes a type neither `Send` nor `Sync`.
pub(crate) type NotSend = PhantomData<*const ()>;

/// What [`Pool::run_ops`] reports as it goes: the replay's step windows,
/// the memory map's addresses. The default methods do nothing and inline
/// away.
pub(crate) trait OpObserver {
    /// A step of `phase` began (`None`: the current step is ending), with
    /// the pool's stats at that moment.
    fn step(&mut self, phase: Option<Phase>, stats: PoolStats);

    /// Lease `lease` (the trace's dense index) was served at `address`.
    #[inline]
    fn acquired(&mut self, lease: usize, address: usize) {
        let _ = (lease, address);
    }

    /// Lease `lease` was released.
    #[inline]
    fn released(&mut self, lease: usize) {
        let _ = lease;
    }
}
