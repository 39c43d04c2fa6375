//! [`Backing`]: a strategy's handle on its [`Memory`], which counts what it
//! reserves so every strategy reports reservations the same way.

use crate::{Memory, ScratchError};

/// A [`Memory`] plus the accounting every strategy needs: bytes reserved now
/// and at peak, backing allocations and frees, and an optional reservation
/// limit (a memory budget, as on a GPU shared with other work).
///
/// Strategies allocate and free only through their `Backing`, so the
/// reservation figures in [`crate::PoolStats`] mean the same for all of them.
#[derive(Debug)]
pub struct Backing<M: Memory> {
    memory: M,
    limit: Option<usize>,
    reserved: usize,
    peak_reserved: usize,
    allocations: u64,
    frees: u64,
}

impl<M: Memory> Backing<M> {
    /// A backing with no reservation limit.
    pub fn new(memory: M) -> Self {
        Self::with_limit(memory, None)
    }

    /// A backing that refuses to hold more than `limit` bytes at once.
    pub fn with_limit(memory: M, limit: Option<usize>) -> Self {
        Backing {
            memory,
            limit,
            reserved: 0,
            peak_reserved: 0,
            allocations: 0,
            frees: 0,
        }
    }

    /// The memory itself.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Allocates a zeroed block of `bytes > 0` bytes, counting it.
    pub fn allocate(&mut self, bytes: usize) -> Result<M::Ptr, ScratchError> {
        if let Some(limit) = self.limit {
            if bytes > limit {
                return Err(ScratchError::NeverFits {
                    requested: bytes,
                    limit,
                });
            }
            if self
                .reserved
                .checked_add(bytes)
                .is_none_or(|total| total > limit)
            {
                return Err(self.out_of_memory(bytes));
            }
        }
        let ptr = self.memory.allocate(bytes).map_err(|e| match e {
            ScratchError::OutOfMemory { .. } => self.out_of_memory(bytes),
            other => other,
        })?;
        self.reserved += bytes;
        self.peak_reserved = self.peak_reserved.max(self.reserved);
        self.allocations += 1;
        Ok(ptr)
    }

    /// Frees a block, counting it.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`Backing::allocate`] on this backing with the same
    /// `bytes`, and no lease or view into it is alive or used afterwards.
    pub unsafe fn free(&mut self, ptr: M::Ptr, bytes: usize) {
        // SAFETY: forwarded from the caller's promise.
        unsafe { self.memory.deallocate(ptr, bytes) };
        self.reserved -= bytes;
        self.frees += 1;
    }

    fn out_of_memory(&self, requested: usize) -> ScratchError {
        ScratchError::OutOfMemory {
            memory: self.memory.name(),
            requested,
            reserved: self.reserved,
            limit: self.limit,
        }
    }

    /// The reservation limit, if one is set.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Bytes held from the memory now.
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// The most bytes held at once since creation or [`Backing::reset_peak`].
    pub fn peak_reserved(&self) -> usize {
        self.peak_reserved
    }

    /// Backing allocations so far.
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Backing frees so far.
    pub fn frees(&self) -> u64 {
        self.frees
    }

    /// Starts a new peak window at the current reservation.
    pub fn reset_peak(&mut self) {
        self.peak_reserved = self.reserved;
    }
}
