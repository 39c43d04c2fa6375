//! The trace format: [`Trace`] and [`Event`], JSON in and out, files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{BLOCK_ALIGN, OutputPath, Phase, ScratchError};

/// The `format` field of every trace.
pub const TRACE_FORMAT: &str = "scratchpad-trace";
/// The format version this build reads and writes.
pub const TRACE_VERSION: u64 = 1;
/// The most bytes [`Trace::read`] reads (a trace of tens of millions of
/// events).
pub const MAX_TRACE_BYTES: usize = 1 << 30;

/// One event of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A step of `phase` begins.
    Step {
        /// The step's phase.
        phase: Phase,
        /// Tokens in the step, when the run said (`planned` keeps a plan
        /// per token-count bucket).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens: Option<usize>,
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

    /// Reads and validates a trace file: at most [`MAX_TRACE_BYTES`], and a
    /// file that does not begin as a JSON object is refused after its first
    /// bytes (so `/dev/zero` is refused at once, not read until memory runs
    /// out).
    pub fn read(path: &Path) -> Result<Self, ScratchError> {
        use std::io::Read;
        let io = |source| ScratchError::Io {
            path: path.to_owned(),
            source,
        };
        let invalid = |reason: String| ScratchError::InvalidTrace {
            reason: format!("{}: {reason}", path.display()),
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut head = vec![0u8; 4096];
        let got = file.read(&mut head).map_err(io)?;
        head.truncate(got);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            _ => return Err(invalid("not a JSON trace (it must begin with `{`)".into())),
        }
        let mut bytes = head;
        file.take(MAX_TRACE_BYTES as u64 + 1 - got as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > MAX_TRACE_BYTES {
            return Err(invalid(format!(
                "larger than the {MAX_TRACE_BYTES} bytes a trace may have"
            )));
        }
        let json = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into()))?;
        Trace::from_json(&json).map_err(|e| match e {
            ScratchError::InvalidTrace { reason } => ScratchError::InvalidTrace {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Writes the trace to `path` through [`crate::output`]: atomically
    /// over a regular file or a new path, in place into a FIFO or
    /// character device, never over a directory.
    pub fn write(&self, path: &Path) -> Result<(), ScratchError> {
        self.write_to(&OutputPath::check(path).map_err(ScratchError::Output)?)
    }

    /// Writes the trace to an output path checked before the run.
    pub fn write_to(&self, out: &OutputPath) -> Result<(), ScratchError> {
        out.write(self.to_json().as_bytes())
            .map_err(ScratchError::Output)
    }

    /// Acquire events in the trace.
    pub fn acquires(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Acquire { .. }))
            .count()
    }
}
