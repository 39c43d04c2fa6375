//! [`Trace`]: every acquire and release of a run, in a versioned JSON format,
//! with its lower bound and a replay through any strategy.
//!
//! The format (version 1):
//!
//! ```json
//! { "format": "scratchpad-trace", "version": 1,
//!   "tags": ["attn.scores", "attn.probs"],
//!   "events": [
//!     {"op": "step", "phase": "decode"},
//!     {"op": "scope"},
//!     {"op": "acquire", "id": 0, "bytes": 4096, "align": 64, "tag": 0},
//!     {"op": "release", "id": 0},
//!     {"op": "end_scope"},
//!     {"op": "end_step"} ] }
//! ```
//!
//! `id`s are unique per trace and releases come in any order. A lease still
//! live when its scope ends (or when the trace ends) is released there;
//! releasing it later is an error. `align` defaults to 64 and `tag` (an index
//! into `tags`) to the first tag; traces from other runtimes may omit scopes
//! and steps entirely.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::pool::EMPTY_SLOT;
use crate::{BLOCK_ALIGN, Memory, Phase, Pool, PoolStats, ScratchError, Tag};

/// The `format` field of every trace.
pub const TRACE_FORMAT: &str = "scratchpad-trace";
/// The format version this build reads and writes.
pub const TRACE_VERSION: u64 = 1;

/// One event of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A step of `phase` begins.
    Step {
        /// The step's phase.
        phase: Phase,
    },
    /// The current step ends.
    EndStep,
    /// A scope opens.
    Scope,
    /// The innermost scope closes, releasing its remaining leases.
    EndScope,
    /// A lease is acquired.
    Acquire {
        /// Unique within the trace.
        id: u64,
        /// Bytes requested.
        bytes: usize,
        /// Alignment requested.
        #[serde(default = "default_align")]
        align: usize,
        /// Index into the trace's `tags`.
        #[serde(default)]
        tag: u32,
    },
    /// A lease is released.
    Release {
        /// The id of its acquire.
        id: u64,
    },
}

fn default_align() -> usize {
    BLOCK_ALIGN
}

/// A recorded run of a pool: the events, and the tag names they refer to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// Always [`TRACE_VERSION`] for traces this build writes.
    pub version: u64,
    /// Call-site names; events refer to them by index.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The events in order.
    pub events: Vec<Event>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::new()
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

/// A validated event with dense lease indices and interned tags, every
/// release explicit.
#[derive(Clone, Copy, Debug)]
enum Op {
    Step(Phase),
    EndStep,
    Scope,
    EndScope,
    Acquire {
        lease: usize,
        bytes: usize,
        align: usize,
        tag: Tag,
    },
    Release {
        lease: usize,
    },
}

impl Trace {
    /// An empty trace of the current version.
    pub fn new() -> Self {
        Trace {
            format: TRACE_FORMAT.to_owned(),
            version: TRACE_VERSION,
            tags: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The index of tag `name`, added if new.
    pub fn tag_index(&mut self, name: &str) -> u32 {
        match self.tags.iter().position(|t| t == name) {
            Some(idx) => idx as u32,
            None => {
                self.tags.push(name.to_owned());
                (self.tags.len() - 1) as u32
            }
        }
    }

    /// Parses and validates a trace.
    pub fn from_json(json: &str) -> Result<Self, ScratchError> {
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u64>,
        }
        let invalid = |e: serde_json::Error| ScratchError::InvalidTrace {
            reason: e.to_string(),
        };
        let header: Header = serde_json::from_str(json).map_err(invalid)?;
        if header.format.as_deref() != Some(TRACE_FORMAT) {
            return Err(ScratchError::InvalidTrace {
                reason: format!("the `format` field must be \"{TRACE_FORMAT}\""),
            });
        }
        match header.version {
            Some(TRACE_VERSION) => {}
            Some(found) => {
                return Err(ScratchError::TraceVersion {
                    found,
                    supported: TRACE_VERSION,
                });
            }
            None => {
                return Err(ScratchError::InvalidTrace {
                    reason: "the `version` field is missing".to_owned(),
                });
            }
        }
        let trace: Trace = serde_json::from_str(json).map_err(invalid)?;
        trace.validate()?;
        Ok(trace)
    }

    /// The trace as JSON, one event per line.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{{\"format\":\"{}\",\"version\":{},\"tags\":{},\"events\":[\n",
            self.format,
            self.version,
            serde_json::to_string(&self.tags).expect("strings serialise")
        ));
        for (idx, event) in self.events.iter().enumerate() {
            out.push_str(&serde_json::to_string(event).expect("events serialise"));
            out.push_str(if idx + 1 < self.events.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("]}\n");
        out
    }

    /// Reads and validates a trace file.
    pub fn read(path: &Path) -> Result<Self, ScratchError> {
        let json = std::fs::read_to_string(path).map_err(|source| ScratchError::Io {
            path: path.to_owned(),
            source,
        })?;
        Trace::from_json(&json).map_err(|e| match e {
            ScratchError::InvalidTrace { reason } => ScratchError::InvalidTrace {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Writes the trace to `path` through a temporary file in the same
    /// folder, so a failed write leaves no half-written trace behind.
    pub fn write(&self, path: &Path) -> Result<(), ScratchError> {
        let io = |source| ScratchError::Io {
            path: path.to_owned(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Checks ids, releases, scopes, steps, tags and alignments.
    pub fn validate(&self) -> Result<(), ScratchError> {
        self.ops().map(|_| ())
    }

    /// Acquire events in the trace.
    pub fn acquires(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Acquire { .. }))
            .count()
    }

    /// The lower bound: the most bytes live at once anywhere in the trace.
    /// No strategy can hold less than this at its peak.
    pub fn lower_bound(&self) -> Result<usize, ScratchError> {
        Ok(self.bounds()?.0)
    }

    /// The lower bound of each phase (indexed by [`Phase::index`]): the most
    /// bytes live at once during that phase's steps.
    pub fn phase_lower_bounds(&self) -> Result<[usize; 2], ScratchError> {
        Ok(self.bounds()?.1)
    }

    fn bounds(&self) -> Result<(usize, [usize; 2]), ScratchError> {
        let ops = self.ops()?;
        let mut sizes = Vec::new();
        let (mut live, mut peak, mut phase_peak, mut phase) = (0usize, 0, [0usize; 2], None);
        for op in &ops {
            match *op {
                Op::Step(p) => phase = Some(p),
                Op::EndStep => phase = None,
                Op::Acquire { lease, bytes, .. } => {
                    if sizes.len() <= lease {
                        sizes.resize(lease + 1, 0);
                    }
                    sizes[lease] = bytes;
                    live += bytes;
                    peak = peak.max(live);
                    if let Some(p) = phase {
                        let slot: &mut usize = &mut phase_peak[Phase::index(p)];
                        *slot = (*slot).max(live);
                    }
                }
                Op::Release { lease } => live -= sizes[lease],
                Op::Scope | Op::EndScope => {}
            }
        }
        Ok((peak, phase_peak))
    }

    /// Validates the trace and turns it into ops with dense lease indices,
    /// interned tags, and every implicit release made explicit.
    fn ops(&self) -> Result<Vec<Op>, ScratchError> {
        if self.format != TRACE_FORMAT {
            return Err(ScratchError::InvalidTrace {
                reason: format!("the `format` field must be \"{TRACE_FORMAT}\""),
            });
        }
        if self.version != TRACE_VERSION {
            return Err(ScratchError::TraceVersion {
                found: self.version,
                supported: TRACE_VERSION,
            });
        }
        let bad = |idx: usize, what: String| ScratchError::InvalidTrace {
            reason: format!("event {idx}: {what}"),
        };
        let tags: Vec<Tag> = self.tags.iter().map(|t| Tag::intern_owned(t)).collect();
        // Dense index of each id, and each lease's state: its scope depth
        // while live, `None` once released.
        let mut index = std::collections::HashMap::new();
        let mut state: Vec<Option<usize>> = Vec::new();
        let mut open: Vec<Vec<usize>> = vec![Vec::new()];
        let mut in_step = false;
        let mut ops = Vec::with_capacity(self.events.len() + 2);
        let close_scope =
            |open: &mut Vec<Vec<usize>>, state: &mut Vec<Option<usize>>, ops: &mut Vec<Op>| {
                for lease in open.pop().unwrap_or_default() {
                    if state[lease].take().is_some() {
                        ops.push(Op::Release { lease });
                    }
                }
            };
        for (idx, event) in self.events.iter().enumerate() {
            match *event {
                Event::Step { phase } => {
                    if in_step {
                        return Err(bad(idx, "a step begins inside another step".into()));
                    }
                    in_step = true;
                    ops.push(Op::Step(phase));
                }
                Event::EndStep => {
                    if !in_step {
                        return Err(bad(idx, "end_step without a step".into()));
                    }
                    in_step = false;
                    ops.push(Op::EndStep);
                }
                Event::Scope => {
                    open.push(Vec::new());
                    ops.push(Op::Scope);
                }
                Event::EndScope => {
                    if open.len() == 1 {
                        return Err(bad(idx, "end_scope without a scope".into()));
                    }
                    close_scope(&mut open, &mut state, &mut ops);
                    ops.push(Op::EndScope);
                }
                Event::Acquire {
                    id,
                    bytes,
                    align,
                    tag,
                } => {
                    if !align.is_power_of_two() || align > BLOCK_ALIGN {
                        return Err(bad(
                            idx,
                            format!(
                                "alignment {align} of lease {id} is not a power of two up to 64"
                            ),
                        ));
                    }
                    let tag = match tags.get(tag as usize) {
                        Some(t) => *t,
                        None if tag == 0 && tags.is_empty() => Tag::UNTAGGED,
                        None => {
                            return Err(bad(
                                idx,
                                format!("tag index {tag} of lease {id} is out of range"),
                            ));
                        }
                    };
                    if index.insert(id, state.len()).is_some() {
                        return Err(bad(idx, format!("lease {id} is acquired twice")));
                    }
                    let lease = state.len();
                    state.push(Some(open.len() - 1));
                    open.last_mut()
                        .expect("the base scope is always open")
                        .push(lease);
                    ops.push(Op::Acquire {
                        lease,
                        bytes,
                        align,
                        tag,
                    });
                }
                Event::Release { id } => {
                    let Some(&lease) = index.get(&id) else {
                        return Err(bad(
                            idx,
                            format!("release of lease {id}, which was never acquired"),
                        ));
                    };
                    if state[lease].take().is_none() {
                        return Err(bad(
                            idx,
                            format!("lease {id} is released twice or after its scope ended"),
                        ));
                    }
                    ops.push(Op::Release { lease });
                }
            }
        }
        while open.len() > 1 {
            close_scope(&mut open, &mut state, &mut ops);
            ops.push(Op::EndScope);
        }
        close_scope(&mut open, &mut state, &mut ops);
        if in_step {
            ops.push(Op::EndStep);
        }
        Ok(ops)
    }

    /// Replays the trace through `pool` without touching the leased bytes,
    /// inside one extra scope. Returns the timing and the pool's stats.
    pub fn replay<M: Memory>(&self, pool: &Pool<M>) -> Result<ReplayReport, ScratchError> {
        let ops = self.ops()?;
        let lower_bound = self.lower_bound()?;
        let n_leases = ops
            .iter()
            .filter(|op| matches!(op, Op::Acquire { .. }))
            .count();
        let mut slots = vec![EMPTY_SLOT; n_leases];
        let mut n_ops = 0u64;
        let mut core = pool.core().borrow_mut();
        let base = core.enter_scope();
        let mut depth = base;
        let start = Instant::now();
        let mut result = Ok(());
        for op in &ops {
            match *op {
                Op::Step(phase) => core.begin_step(phase),
                Op::EndStep => core.end_step(),
                Op::Scope => depth = core.enter_scope(),
                Op::EndScope => {
                    core.exit_scope(depth);
                    depth -= 1;
                }
                Op::Acquire {
                    lease,
                    bytes,
                    align,
                    tag,
                } => {
                    match core.acquire(bytes, align, tag, depth) {
                        Ok((slot, _, _)) => slots[lease] = slot,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                    n_ops += 1;
                }
                Op::Release { lease } => {
                    match slots[lease] {
                        EMPTY_SLOT => core.release_empty(),
                        slot => core.release(slot),
                    }
                    n_ops += 1;
                }
            }
        }
        let elapsed = start.elapsed();
        // After an error, close what the replay opened; the scope exits
        // release the leases still live.
        core.end_step();
        while depth >= base {
            core.exit_scope(depth);
            depth -= 1;
        }
        result?;
        Ok(ReplayReport {
            strategy: core.strategy_name(),
            ops: n_ops,
            elapsed,
            stats: core.stats(),
            lower_bound,
        })
    }
}

/// Records a pool's events as they happen (see [`Pool::start_trace`]).
pub(crate) struct Recorder {
    trace: Trace,
    /// The trace's index of each tag, by [`Tag::index`]; `u32::MAX` if absent.
    tag_index: Vec<u32>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            trace: Trace::new(),
            tag_index: Vec::new(),
        }
    }

    pub(crate) fn acquire(&mut self, id: u64, bytes: usize, align: usize, tag: Tag) {
        if self.tag_index.len() <= tag.index() {
            self.tag_index.resize(tag.index() + 1, u32::MAX);
        }
        if self.tag_index[tag.index()] == u32::MAX {
            self.tag_index[tag.index()] = self.trace.tag_index(tag.name());
        }
        let tag = self.tag_index[tag.index()];
        self.trace.events.push(Event::Acquire {
            id,
            bytes,
            align,
            tag,
        });
    }

    pub(crate) fn release(&mut self, id: u64) {
        self.trace.events.push(Event::Release { id });
    }

    pub(crate) fn scope(&mut self) {
        self.trace.events.push(Event::Scope);
    }

    pub(crate) fn end_scope(&mut self) {
        self.trace.events.push(Event::EndScope);
    }

    pub(crate) fn step(&mut self, phase: Phase) {
        self.trace.events.push(Event::Step { phase });
    }

    pub(crate) fn end_step(&mut self) {
        self.trace.events.push(Event::EndStep);
    }

    pub(crate) fn finish(self) -> Trace {
        self.trace
    }
}
