//! [`ExecutionContext`]: what every kernel receives.

use crate::{Memory, Pool};

/// The execution context a kernel runs in: the scratch pool every temporary
/// comes from. Backend resources travel with the memory (a CUDA memory
/// carries its stream); the CPU kernels run inside the caller's rayon pool.
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
