//! The memory map of one step: where each lease of a trace's step lies in
//! a strategy's memory, and which blocks the strategy held from its
//! backing memory meanwhile — the picture memory planners are drawn with
//! (PyTorch's memory_viz active-memory timeline, the TFLite arena
//! planner's figures).
//!
//! The trace is replayed through the strategy over host memory wrapped so
//! that every block it allocates and frees is seen. Time is the step's
//! operations in order (each acquire and release one tick). The vertical
//! axis is the blocks' address ranges, gaps between them removed: blocks
//! that overlap in address (one freed, another later given the same
//! addresses, as `noop`'s mallocs are) share their rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytemuck::Pod;
use serde::Serialize;

use crate::pool::OpObserver;
use crate::trace::ops::Op;
use crate::{
    HostAllocator, HostMemory, Memory, Phase, Pool, PoolOptions, PoolStats, ScratchError, Trace,
};

/// One lease of the mapped step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MappedLease {
    /// Where it lies on the map's vertical axis, in bytes.
    pub offset: usize,
    /// Bytes requested.
    pub bytes: usize,
    /// The tick of its acquire.
    pub start: usize,
    /// The tick of its release (the step's tick count if it outlived it).
    pub end: usize,
    /// Index into [`MemoryMap::tags`].
    pub tag: usize,
}

/// One block the strategy held from its memory during the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MappedBlock {
    /// Where it starts on the vertical axis.
    pub offset: usize,
    /// Its size.
    pub bytes: usize,
    /// The tick it was allocated (0 if held before the step).
    pub start: usize,
    /// The tick it was freed (the tick count if held past the step).
    pub end: usize,
}

/// The memory map of one step of a trace under one strategy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryMap {
    /// The strategy.
    pub strategy: String,
    /// The step's phase; `None` for the whole trace ([`Trace::timeline`]).
    pub phase: Option<Phase>,
    /// Which step of the phase (0-based): the phase's last, a warm one when
    /// the phase has more than one.
    pub step: usize,
    /// The steps inside the map: (phase, first tick, last tick).
    pub steps: Vec<(Phase, usize, usize)>,
    /// Acquires and releases in the step: the time axis runs 0..ticks.
    pub ticks: usize,
    /// The vertical axis runs 0..extent bytes.
    pub extent: usize,
    /// The trace's tag names.
    pub tags: Vec<String>,
    /// Every non-empty lease of the step.
    pub leases: Vec<MappedLease>,
    /// Every block held at some point of the step.
    pub blocks: Vec<MappedBlock>,
    /// Bytes live after each tick (index 0: at the step's start).
    pub live_bytes: Vec<usize>,
    /// Bytes held from the memory after each tick, every block counted.
    pub held_bytes: Vec<usize>,
}

/// Host memory that logs every block allocated and freed.
struct Watched {
    inner: HostMemory,
    log: Arc<Mutex<Vec<(usize, usize, bool)>>>,
}

// SAFETY: every call is forwarded to `HostMemory`, which upholds the
// contract; the log only records addresses.
unsafe impl Memory for Watched {
    type Ptr = <HostMemory as Memory>::Ptr;
    type View<'a, T: Pod> = <HostMemory as Memory>::View<'a, T>;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn allocate(&self, bytes: usize) -> Result<Self::Ptr, ScratchError> {
        let ptr = self.inner.allocate(bytes)?;
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((HostMemory::address(ptr), bytes, true));
        Ok(ptr)
    }

    unsafe fn deallocate(&self, ptr: Self::Ptr, bytes: usize) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((HostMemory::address(ptr), bytes, false));
        // SAFETY: forwarded unchanged from the caller.
        unsafe { self.inner.deallocate(ptr, bytes) }
    }

    fn offset(ptr: Self::Ptr, offset: usize) -> Self::Ptr {
        HostMemory::offset(ptr, offset)
    }

    fn address(ptr: Self::Ptr) -> usize {
        HostMemory::address(ptr)
    }

    fn dangling() -> Self::Ptr {
        HostMemory::dangling()
    }

    fn with_host_allocator(&self, allocator: HostAllocator) -> Option<Self> {
        Some(Watched {
            inner: self.inner.with_host_allocator(allocator)?,
            log: Arc::clone(&self.log),
        })
    }

    unsafe fn zero(&self, ptr: Self::Ptr, bytes: usize) -> Result<(), ScratchError> {
        // SAFETY: forwarded unchanged from the caller.
        unsafe { self.inner.zero(ptr, bytes) }
    }

    unsafe fn view<'a, T: Pod>(ptr: Self::Ptr, len: usize) -> Self::View<'a, T> {
        // SAFETY: forwarded unchanged from the caller.
        unsafe { HostMemory::view(ptr, len) }
    }
}

/// Follows the replay, recording the chosen step.
struct Mapper<'a> {
    log: Arc<Mutex<Vec<(usize, usize, bool)>>>,
    /// Each lease's (bytes, tag index), by dense index.
    leases: &'a [(usize, usize)],
    /// The phase whose step is mapped; `None`: the whole trace.
    phase: Option<Phase>,
    steps: Vec<(Phase, usize, usize)>,
    /// The step of `phase` to map, and how many of them began so far.
    target: usize,
    seen: usize,
    active: bool,
    done: bool,
    tick: usize,
    /// Blocks held now: address -> (bytes, tick allocated).
    held: HashMap<usize, (usize, usize)>,
    held_total: usize,
    /// Address ranges of the step's blocks: (address, bytes, start, end).
    blocks: Vec<(usize, usize, usize, usize)>,
    /// Leases of the step: dense index -> position in `mapped`.
    open: HashMap<usize, usize>,
    /// (address, bytes, start, end, tag).
    mapped: Vec<(usize, usize, usize, usize, usize)>,
    live: usize,
    live_bytes: Vec<usize>,
    held_bytes: Vec<usize>,
}

impl Mapper<'_> {
    /// Applies the blocks allocated and freed since the last call.
    fn drain(&mut self) {
        let events: Vec<_> =
            std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner));
        for (address, bytes, allocated) in events {
            if allocated {
                self.held.insert(address, (bytes, self.tick));
                self.held_total += bytes;
            } else if let Some((bytes, start)) = self.held.remove(&address) {
                self.held_total -= bytes;
                if self.active {
                    self.blocks.push((address, bytes, start, self.tick));
                }
            }
        }
    }

    /// Blocks still held end at the current tick.
    fn close_blocks(&mut self) {
        let end = self.tick;
        for (&address, &(bytes, start)) in &self.held {
            self.blocks.push((address, bytes, start, end));
        }
    }

    fn tick(&mut self) {
        self.drain();
        if self.active {
            self.tick += 1;
            self.live_bytes.push(self.live);
            self.held_bytes.push(self.held_total);
        }
    }
}

impl OpObserver for Mapper<'_> {
    fn step(&mut self, phase: Option<Phase>, _: PoolStats) {
        self.drain();
        match phase {
            Some(p) if self.phase.is_none() => self.steps.push((p, self.tick, self.tick)),
            None if self.phase.is_none() => {
                if let Some(last) = self.steps.last_mut() {
                    last.2 = self.tick;
                }
            }
            Some(p) if Some(p) == self.phase && !self.done => {
                if self.seen == self.target {
                    self.active = true;
                    self.steps.push((p, 0, 0));
                    // Blocks held before the step start at tick 0.
                    for (_, start) in self.held.values_mut() {
                        *start = 0;
                    }
                    self.live_bytes.push(self.live);
                    self.held_bytes.push(self.held_total);
                }
                self.seen += 1;
            }
            None if self.active => {
                self.active = false;
                self.done = true;
                self.steps[0].2 = self.tick;
                self.close_blocks();
            }
            _ => {}
        }
    }

    fn acquired(&mut self, lease: usize, address: usize) {
        let (bytes, tag) = self.leases[lease];
        if self.active && bytes > 0 {
            self.open.insert(lease, self.mapped.len());
            self.mapped
                .push((address, bytes, self.tick, usize::MAX, tag));
            self.live += bytes;
        }
        self.tick();
    }

    fn released(&mut self, lease: usize) {
        if let Some(i) = self.open.remove(&lease) {
            self.mapped[i].3 = self.tick;
            self.live -= self.mapped[i].1;
        }
        self.tick();
    }
}

impl Trace {
    /// The memory map of `phase`'s last step (a warm one when the phase has
    /// more than one) under `strategy` over host memory.
    pub fn memory_map(
        &self,
        strategy: &str,
        options: &PoolOptions,
        phase: Phase,
    ) -> Result<MemoryMap, ScratchError> {
        self.map(strategy, options, Some(phase))
    }

    /// The whole trace as one map under `strategy`: every lease, block,
    /// step and the live and held bytes at every tick (for the Chrome
    /// trace-event export).
    pub fn timeline(
        &self,
        strategy: &str,
        options: &PoolOptions,
    ) -> Result<MemoryMap, ScratchError> {
        self.map(strategy, options, None)
    }

    fn map(
        &self,
        strategy: &str,
        options: &PoolOptions,
        phase: Option<Phase>,
    ) -> Result<MemoryMap, ScratchError> {
        let ops = self.ops()?;
        let steps = ops
            .iter()
            .filter(|op| matches!(op, Op::Step(p, _) if Some(*p) == phase))
            .count();
        let mut tag_index: HashMap<crate::Tag, usize> = HashMap::new();
        let mut tags = Vec::new();
        let leases: Vec<(usize, usize)> = ops
            .iter()
            .filter_map(|op| match *op {
                Op::Acquire { bytes, tag, .. } => {
                    let next = tags.len();
                    let index = *tag_index.entry(tag).or_insert(next);
                    if index == next {
                        tags.push(tag.name().to_string());
                    }
                    Some((bytes, index))
                }
                _ => None,
            })
            .collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let memory = Watched {
            inner: HostMemory,
            log: Arc::clone(&log),
        };
        let pool = Pool::with_strategy(strategy, memory, options)?;
        let whole = phase.is_none();
        let mut mapper = Mapper {
            log,
            leases: &leases,
            phase,
            steps: Vec::new(),
            target: steps.saturating_sub(1),
            seen: 0,
            active: whole,
            done: false,
            tick: 0,
            held: HashMap::new(),
            held_total: 0,
            blocks: Vec::new(),
            open: HashMap::new(),
            mapped: Vec::new(),
            live: 0,
            live_bytes: if whole { vec![0] } else { Vec::new() },
            held_bytes: if whole { vec![0] } else { Vec::new() },
        };
        pool.run_ops(&ops, &mut mapper)?;
        if whole {
            // What the pool still holds when the trace ends is freed with
            // it; those blocks end at the last tick.
            mapper.drain();
            mapper.close_blocks();
        }
        drop(pool);
        let ticks = mapper.tick;
        // The rows: the union of the blocks' address ranges, in address
        // order, gaps removed.
        let mut ranges: Vec<(usize, usize)> = mapper
            .blocks
            .iter()
            .map(|&(a, b, _, _)| (a, a + b))
            .chain(mapper.mapped.iter().map(|&(a, b, ..)| (a, a + b)))
            .collect();
        ranges.sort_unstable();
        let mut rows: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, offset)
        let mut extent = 0;
        for (start, end) in ranges {
            match rows.last_mut() {
                Some(last) if start <= last.1 => {
                    if end > last.1 {
                        extent += end - last.1;
                        last.1 = end;
                    }
                }
                _ => {
                    rows.push((start, end, extent));
                    extent += end - start;
                }
            }
        }
        let offset = |address: usize| {
            let i = rows.partition_point(|r| r.0 <= address) - 1;
            rows[i].2 + (address - rows[i].0)
        };
        let mut blocks: Vec<MappedBlock> = mapper
            .blocks
            .iter()
            .map(|&(a, bytes, start, end)| MappedBlock {
                offset: offset(a),
                bytes,
                start,
                end,
            })
            .collect();
        blocks.sort_by_key(|b| (b.offset, b.start));
        let leases = mapper
            .mapped
            .iter()
            .map(|&(a, bytes, start, end, tag)| MappedLease {
                offset: offset(a),
                bytes,
                start,
                end: end.min(ticks),
                tag,
            })
            .collect();
        Ok(MemoryMap {
            strategy: strategy.to_string(),
            phase,
            step: steps.saturating_sub(1),
            steps: mapper.steps,
            ticks,
            extent,
            tags,
            leases,
            blocks,
            live_bytes: mapper.live_bytes,
            held_bytes: mapper.held_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, tag};

    /// Two prefill steps of three leases: a, b live together, a released,
    /// then c (fits where a was).
    fn trace() -> Trace {
        let pool = Pool::with_strategy("noop", HostMemory, &PoolOptions::default()).unwrap();
        pool.start_trace();
        for _ in 0..2 {
            pool.step(Phase::Prefill, |s| {
                let a = s.acquire::<u8>(4096, tag!("t.a")).unwrap();
                let b = s.acquire::<u8>(8192, tag!("t.b")).unwrap();
                drop(a);
                let c = s.acquire::<u8>(2048, tag!("t.c")).unwrap();
                drop((b, c));
            });
        }
        pool.take_trace().unwrap()
    }

    #[test]
    fn planned_maps_the_warm_step_inside_its_slab() {
        let trace = trace();
        assert!(trace.events.iter().any(|e| matches!(e, Event::Step { .. })));
        let map = trace
            .memory_map("planned", &PoolOptions::default(), Phase::Prefill)
            .unwrap();
        assert_eq!(map.step, 1);
        assert_eq!(map.ticks, 6);
        assert_eq!(map.leases.len(), 3);
        assert_eq!(map.live_bytes.len(), 7);
        assert_eq!(*map.live_bytes.iter().max().unwrap(), 4096 + 8192);
        // The slab is held for the whole step; every lease lies in it, and
        // `c` reuses `a`'s bytes or lies beside `b`: the bound is held.
        assert!(
            map.blocks
                .iter()
                .any(|b| b.start == 0 && b.end == map.ticks)
        );
        assert!(
            map.extent <= 12288 + 2 * crate::BLOCK_ALIGN,
            "{}",
            map.extent
        );
        for l in &map.leases {
            assert!(l.offset + l.bytes <= map.extent && l.start < l.end);
        }
        let (a, b) = (map.leases[0], map.leases[1]);
        assert!(a.offset + a.bytes <= b.offset || b.offset + b.bytes <= a.offset);
        assert_eq!(map.tags, ["t.a", "t.b", "t.c"]);
    }

    #[test]
    fn noop_allocates_and_frees_each_lease_as_a_block() {
        let map = trace()
            .memory_map("noop", &PoolOptions::default(), Phase::Prefill)
            .unwrap();
        assert_eq!(map.blocks.len(), 3);
        assert_eq!(map.held_bytes[0], 0);
        assert_eq!(*map.held_bytes.last().unwrap(), 0);
        assert_eq!(map.held_bytes, map.live_bytes);
    }

    #[test]
    fn the_timeline_covers_every_step_and_lease() {
        let map = trace()
            .timeline("best-fit", &PoolOptions::default())
            .unwrap();
        assert_eq!(map.phase, None);
        assert_eq!(map.steps.len(), 2);
        assert_eq!(map.leases.len(), 6);
        assert_eq!(map.ticks, 12);
        assert_eq!(map.live_bytes.len(), 13);
        assert_eq!(map.live_bytes[12], 0);
        // best-fit keeps its buffers: held bytes never fall in the second
        // step, and every block ends with the trace.
        assert!(map.held_bytes[6..].windows(2).all(|w| w[0] <= w[1]));
        assert!(map.blocks.iter().all(|b| b.end == map.ticks));
    }
}
