//! Validation: a trace's events checked and turned into [`Op`]s with
//! dense lease indices, interned tags and every implicit release explicit,
//! which the bounds and the replay walk.

use crate::{BLOCK_ALIGN, Phase, ScratchError, Tag};

use super::{Event, TRACE_FORMAT, TRACE_VERSION, Trace};

/// A validated event with dense lease indices and interned tags, every
/// release explicit.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// A step of a phase over a number of tokens (0: not said).
    Step(Phase, usize),
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
    /// Checks ids, releases, scopes, steps, tags and alignments.
    pub fn validate(&self) -> Result<(), ScratchError> {
        self.ops().map(|_| ())
    }

    /// Validates the trace and turns it into ops with dense lease indices,
    /// interned tags, and every implicit release made explicit.
    pub(crate) fn ops(&self) -> Result<Vec<Op>, ScratchError> {
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
                Event::Step { phase, tokens } => {
                    if in_step {
                        return Err(bad(idx, "a step begins inside another step".into()));
                    }
                    in_step = true;
                    ops.push(Op::Step(phase, tokens.unwrap_or(0)));
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
                    if bytes > isize::MAX as usize {
                        return Err(bad(
                            idx,
                            format!(
                                "lease {id} of {bytes} bytes is larger than any memory can hold"
                            ),
                        ));
                    }
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
}
