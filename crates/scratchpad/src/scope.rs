//! [`Scope`]: where leases come from. Everything acquired in a scope is
//! released when it ends, and the borrow checker keeps every lease inside it.

use std::cell::RefCell;
use std::mem::size_of;

use bytemuck::Pod;

use crate::pool::{Core, NotSend, run_scope};
use crate::{BLOCK_ALIGN, Lease, Memory, ScratchError, Tag};

/// An open scope of a [`crate::Pool`], handed to the closure of
/// [`crate::Pool::scope`]. Leases borrow it, so none outlives it; it belongs
/// to one thread.
pub struct Scope<'p, M: Memory> {
    core: &'p RefCell<Core<M>>,
    depth: u32,
    _not_send: NotSend,
}

impl<'p, M: Memory> Scope<'p, M> {
    pub(crate) fn new(core: &'p RefCell<Core<M>>, depth: u32) -> Self {
        Scope { core, depth, _not_send: NotSend::default() }
    }

    /// Nesting depth: 1 for an outermost scope.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// A lease of `len` elements of `T`, 64-byte aligned, holding unspecified
    /// (but initialised) values: zeros when fresh, stale data when recycled.
    pub fn acquire<T: Pod>(&self, len: usize, tag: Tag) -> Result<Lease<'_, T, M>, ScratchError> {
        self.acquire_typed(len, tag, false)
    }

    /// A lease of `len` zeroed elements of `T`, 64-byte aligned.
    pub fn acquire_zeroed<T: Pod>(
        &self,
        len: usize,
        tag: Tag,
    ) -> Result<Lease<'_, T, M>, ScratchError> {
        self.acquire_typed(len, tag, true)
    }

    /// A lease of `bytes` bytes aligned to `align` (a power of two, at most
    /// 64): the raw request, as traces record it.
    pub fn acquire_bytes(
        &self,
        bytes: usize,
        align: usize,
        tag: Tag,
    ) -> Result<Lease<'_, u8, M>, ScratchError> {
        self.acquire_raw(bytes, bytes, align, tag, false)
    }

    fn acquire_typed<T: Pod>(
        &self,
        len: usize,
        tag: Tag,
        zeroed: bool,
    ) -> Result<Lease<'_, T, M>, ScratchError> {
        let elem_bytes = size_of::<T>();
        let bytes =
            len.checked_mul(elem_bytes).ok_or(ScratchError::SizeOverflow { len, elem_bytes })?;
        self.acquire_raw(len, bytes, BLOCK_ALIGN, tag, zeroed)
    }

    fn acquire_raw<T: Pod>(
        &self,
        len: usize,
        bytes: usize,
        align: usize,
        tag: Tag,
        zeroed: bool,
    ) -> Result<Lease<'_, T, M>, ScratchError> {
        let mut core = self.core.borrow_mut();
        let (slot, ptr, fresh) = core.acquire(bytes, align, tag, self.depth)?;
        if zeroed && !fresh {
            core.zero(slot, ptr, bytes);
        }
        drop(core);
        Ok(Lease::new(self.core, ptr, len, slot))
    }

    /// Runs `f` in a scope nested in this one.
    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        run_scope(self.core, f)
    }
}
