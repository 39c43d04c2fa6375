//! [`Recorder`]: a pool's events recorded as they happen.

use crate::{Phase, Tag};

use super::{Event, Trace};

/// Records a pool's events as they happen (see `Pool::start_trace`). A
/// recording may start at any point: the scopes and the step open then are
/// written first, and releases of leases acquired before are left out, so
/// the trace is always one the reader accepts.
pub(crate) struct Recorder {
    trace: Trace,
    /// The trace's index of each tag, by [`Tag::index`]; `u32::MAX` if absent.
    tag_index: Vec<u32>,
    /// Leases with a smaller id were acquired before the recording began.
    first_id: u64,
}

impl Recorder {
    /// A recording from now on, with `open_scopes` scopes and `step` open
    /// and `first_id` the next lease's id.
    pub(crate) fn new(open_scopes: u32, step: Option<Phase>, first_id: u64) -> Self {
        let mut trace = Trace::new();
        if let Some(phase) = step {
            trace.events.push(Event::Step {
                phase,
                tokens: None,
            });
        }
        for _ in 0..open_scopes {
            trace.events.push(Event::Scope);
        }
        Recorder {
            trace,
            tag_index: Vec::new(),
            first_id,
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
        if id < self.first_id {
            // Acquired before the recording: not in the trace.
            return;
        }
        self.trace.events.push(Event::Release { id });
    }

    pub(crate) fn scope(&mut self) {
        self.trace.events.push(Event::Scope);
    }

    pub(crate) fn end_scope(&mut self) {
        self.trace.events.push(Event::EndScope);
    }

    pub(crate) fn step(&mut self, phase: Phase, tokens: usize) {
        self.trace.events.push(Event::Step {
            phase,
            tokens: (tokens > 0).then_some(tokens),
        });
    }

    pub(crate) fn end_step(&mut self) {
        self.trace.events.push(Event::EndStep);
    }

    pub(crate) fn finish(self) -> Trace {
        self.trace
    }
}
