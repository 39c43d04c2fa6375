//! The crate's one error type, with what a caller can do about each variant.

use std::path::PathBuf;

use crate::Phase;

/// Everything a scratch pool, its backing memory or a trace can report.
///
/// Each variant says whether retrying can help: [`ScratchError::OutOfMemory`]
/// may succeed after leases are released or [`crate::Pool::trim`] is called;
/// the others describe a request or an input that will never work as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScratchError {
    /// The backing memory refused an allocation. Retrying after releasing
    /// leases or trimming idle memory may help.
    #[error(
        "{memory} memory exhausted: {requested} bytes requested with {reserved} bytes already \
         reserved{}; releasing leases or calling trim() may let a retry succeed",
        limit.map(|l| format!(" (limit {l} bytes)")).unwrap_or_default()
    )]
    OutOfMemory {
        /// Which memory refused (`host`, `cuda:0`).
        memory: &'static str,
        /// Bytes asked of the backing.
        requested: usize,
        /// Bytes the pool held from the backing at the time.
        reserved: usize,
        /// The pool's reservation limit, if one is set.
        limit: Option<usize>,
    },
    /// The backing memory failed for another reason than exhaustion: a
    /// device error, or a memory that may not allocate or free right now
    /// (a CUDA stream being captured into a graph). The reason says
    /// whether a retry can help.
    #[error("{memory} memory failed: {reason}")]
    MemoryFailed {
        /// Which memory failed.
        memory: &'static str,
        /// What went wrong, from the memory.
        reason: String,
    },
    /// A request larger than the pool can ever hold. Retrying cannot help.
    #[error("a request of {requested} bytes can never fit: the limit is {limit} bytes")]
    NeverFits {
        /// Bytes asked for.
        requested: usize,
        /// The largest request that could be served.
        limit: usize,
    },
    /// `len * size_of::<T>()` does not fit in `usize`. Retrying cannot help.
    #[error("a request of {len} elements of {elem_bytes} bytes each overflows usize")]
    SizeOverflow {
        /// Elements asked for.
        len: usize,
        /// Size of one element.
        elem_bytes: usize,
    },
    /// Raw requests take a power-of-two alignment of at most 64 bytes, and
    /// typed leases a type aligned to at most 64.
    #[error("alignment {align} is not supported: it must be a power of two no larger than 64")]
    BadAlignment {
        /// The alignment asked for.
        align: usize,
    },
    /// The planned strategy could not build a plan from its measuring step.
    #[error("cannot build a {phase} plan: {reason}")]
    PlanFailed {
        /// The phase whose plan failed.
        phase: Phase,
        /// What went wrong.
        reason: String,
    },
    /// A strategy name that is not one of [`crate::STRATEGY_NAMES`].
    #[error("unknown pool strategy `{name}`; expected one of: {}", crate::STRATEGY_NAMES.join(", "))]
    UnknownStrategy {
        /// The name given.
        name: String,
    },
    /// A pool option (from code or the environment) has an unusable value.
    #[error("invalid value `{value}` for {option}: {reason}")]
    InvalidOption {
        /// The option or environment variable.
        option: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A trace that cannot be read or replayed: malformed JSON, a release
    /// without its acquire, unbalanced scopes.
    #[error("invalid trace: {reason}")]
    InvalidTrace {
        /// What is wrong, with the event index where one applies.
        reason: String,
    },
    /// A trace written by a different version of the format.
    #[error("trace format version {found} is not supported (this build reads version {supported})")]
    TraceVersion {
        /// The version in the file.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },
    /// An output file could not be written (the message names it).
    #[error(transparent)]
    Output(std::io::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}
