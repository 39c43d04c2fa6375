//! [`Trace`]: every acquire and release of a run, in a versioned JSON format,
//! with its lower bound; one concept per file: the format ([`format`]),
//! validation into ops ([`ops`]), lower bounds ([`bounds`]) and the
//! recorder ([`recorder`]). Replaying a trace through a pool is
//! [`crate::replay`].
//!
//! The format (version 1):
//!
//! ```json
//! { "format": "scratchpad-trace", "version": 1,
//!   "tags": ["attn.scores", "attn.probs"],
//!   "events": [
//!     {"op": "step", "phase": "decode", "tokens": 1},
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

mod bounds;
mod format;
pub(crate) mod ops;
pub(crate) mod recorder;

pub use format::{Event, MAX_TRACE_BYTES, TRACE_FORMAT, TRACE_VERSION, Trace};
