//! [`Lease`]: a typed view of scratch memory that returns to its pool on drop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;

use crate::pool::{Core, EMPTY_SLOT};
use crate::{HostMemory, Memory};

/// `len` elements of `T` leased from a pool, exclusively this lease's until
/// it drops. It borrows its [`crate::Scope`], so it cannot outlive the scope
/// whose end recycles its memory.
///
/// On the host it dereferences to `[T]`; every backend offers
/// [`Lease::view`], the memory's own view type.
pub struct Lease<'s, T: Pod, M: Memory = HostMemory> {
    core: &'s RefCell<Core<M>>,
    /// Its scope's count of live leases.
    scope_live: &'s Cell<u32>,
    ptr: M::Ptr,
    len: usize,
    slot: u32,
    _marker: PhantomData<&'s mut [T]>,
}

impl<'s, T: Pod, M: Memory> Lease<'s, T, M> {
    pub(crate) fn new(
        core: &'s RefCell<Core<M>>,
        scope_live: &'s Cell<u32>,
        ptr: M::Ptr,
        len: usize,
        slot: u32,
    ) -> Self {
        Lease {
            core,
            scope_live,
            ptr,
            len,
            slot,
            _marker: PhantomData,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length lease, which holds no memory.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first element in the pool's memory.
    pub fn ptr(&self) -> M::Ptr {
        self.ptr
    }

    /// The numeric address of the first element.
    pub fn address(&self) -> usize {
        M::address(self.ptr)
    }

    /// The memory's view of the lease (`&mut [T]` on the host, a device view
    /// on a GPU), borrowed from the lease.
    pub fn view(&mut self) -> M::View<'_, T> {
        // SAFETY: the pool granted this lease `len * size_of::<T>()` bytes at
        // `ptr`, 64-byte aligned (at least `T`'s alignment), inside a block
        // that stays live until the lease is released on drop, and overlapping
        // no other live lease. The view borrows `self` mutably, so no second
        // view of these bytes exists while it lives.
        unsafe { M::view(self.ptr, self.len) }
    }
}

impl<T: Pod> Deref for Lease<'_, T, HostMemory> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: as in `view`: the lease exclusively holds `len` initialised,
        // aligned elements at `ptr` until it drops, and this shared borrow of
        // the lease excludes any mutable view while it lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Pod> DerefMut for Lease<'_, T, HostMemory> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.view()
    }
}

impl<T: Pod, M: Memory> Drop for Lease<'_, T, M> {
    #[inline]
    fn drop(&mut self) {
        // An empty lease was counted as returned when it was handed out.
        if self.slot != EMPTY_SLOT {
            self.core.borrow_mut().release(self.slot);
            self.scope_live.set(self.scope_live.get() - 1);
        }
    }
}

impl<T: Pod, M: Memory> fmt::Debug for Lease<'_, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}
