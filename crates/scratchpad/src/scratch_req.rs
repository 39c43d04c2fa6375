//! [`ScratchReq`]: what a kernel leases, computed ahead from its parameters
//! (faer's `*_scratch` twins, dyn-stack's `StackReq`). Every host kernel
//! that takes an [`crate::ExecutionContext`] has a `*_scratch(&params)`
//! twin returning one, so a caller can size a pool ahead and a test can
//! hold the kernel to it: the peak of live bytes a kernel's leases reach
//! in a fresh pool is exactly its requirement.

/// The bytes a piece of work holds in leases at its peak, as requested
/// (strategies may round up; the pool's `peak_live_bytes` counts the same
/// way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScratchReq {
    /// Bytes live at once at the peak.
    pub bytes: usize,
}

impl ScratchReq {
    /// Nothing: the kernel leases no memory.
    pub const NONE: ScratchReq = ScratchReq { bytes: 0 };

    /// One lease of `len` values of `T`.
    ///
    /// # Panics
    ///
    /// When the size overflows `usize` (the acquire itself would fail).
    pub fn new<T>(len: usize) -> ScratchReq {
        ScratchReq {
            bytes: len
                .checked_mul(size_of::<T>())
                .expect("ScratchReq: the lease's size overflows usize"),
        }
    }

    /// `self` and `other` live at the same time.
    #[must_use]
    pub fn and(self, other: ScratchReq) -> ScratchReq {
        ScratchReq {
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}
