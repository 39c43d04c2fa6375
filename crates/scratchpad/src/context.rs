//! [`ExecutionContext`]: what every kernel receives.

use crate::{Memory, Pool};

/// The execution context a kernel runs in: the scratch pool every temporary
/// comes from. Every op of the model and every kernel that leases receives
/// it (and says what it leases in a `*_scratch` twin returning a
/// [`crate::ScratchReq`]).
///
/// It holds the pool and nothing else on purpose: the other execution
/// resources already travel with what a kernel is given. A CUDA memory
/// carries its stream, so a pool on it launches on that stream; the CPU
/// kernels split their work on the team installed on the calling thread,
/// else in the caller's rayon pool (one `install` around a generation loop
/// keeps them allocation-free). A thread count or a SIMD path stored here
/// would be a second source of truth beside those.
pub struct ExecutionContext<M: Memory> {
    /// The pool every short-lived intermediate buffer is leased from.
    pub scratch: Pool<M>,
}

impl<M: Memory> ExecutionContext<M> {
    /// A context over `scratch`.
    pub fn new(scratch: Pool<M>) -> Self {
        ExecutionContext { scratch }
    }
}
