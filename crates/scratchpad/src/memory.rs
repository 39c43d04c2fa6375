//! Raw backing memory that pools draw from: the [`Memory`] trait and its host
//! implementation, [`HostMemory`].
//!
//! A strategy only does bookkeeping over `(block, offset, len)`; turning that
//! into a pointer or a device view is the memory's job, so every strategy
//! works unchanged on the host and on a GPU.

use std::alloc::Layout;
use std::fmt;

use bytemuck::Pod;

use crate::{HostAllocator, ScratchError};

/// Alignment of every block a [`Memory`] hands out, and the largest alignment
/// a raw request may ask for: one cache line, wide enough for any SIMD load.
pub const BLOCK_ALIGN: usize = 64;

/// A kind of raw memory: host RAM, CUDA device memory.
///
/// # Safety
///
/// Implementations promise that [`Memory::allocate`] returns a block of at
/// least `bytes` bytes, aligned to [`BLOCK_ALIGN`], zero-initialised, and
/// disjoint from every other live block, and that it stays valid until it is
/// passed to [`Memory::deallocate`]. Pool strategies rely on this to hand out
/// non-overlapping leases.
pub unsafe trait Memory: Send + 'static {
    /// An address in this memory: a host pointer, a device address. Plain
    /// data; owning a `Ptr` grants nothing.
    type Ptr: Copy + Send + fmt::Debug + 'static;

    /// What a lease of `len` elements of `T` hands out: `&'a mut [T]` on the
    /// host, a device view on a GPU.
    type View<'a, T: Pod>;

    /// A short name for reports and errors: `host`, `cuda:0`.
    fn name(&self) -> &'static str;

    /// Allocates a zero-initialised block of `bytes > 0` bytes aligned to
    /// [`BLOCK_ALIGN`].
    fn allocate(&self, bytes: usize) -> Result<Self::Ptr, ScratchError>;

    /// Returns a block to the memory.
    ///
    /// # Safety
    ///
    /// `ptr` came from `allocate(bytes)` on this memory, with this `bytes`,
    /// and neither it nor any address derived from it is used afterwards.
    unsafe fn deallocate(&self, ptr: Self::Ptr, bytes: usize);

    /// The address `offset` bytes past `ptr`. Computing it accesses nothing.
    fn offset(ptr: Self::Ptr, offset: usize) -> Self::Ptr;

    /// The numeric address of `ptr`, for overlap checks and address-stability
    /// tests.
    fn address(ptr: Self::Ptr) -> usize;

    /// A non-null, maximally aligned address for empty leases. Never
    /// dereferenced.
    fn dangling() -> Self::Ptr;

    /// The same kind of memory from another host allocator, for the malloc
    /// baselines; `None` (the default) for memory that is not host RAM.
    fn with_host_allocator(&self, allocator: HostAllocator) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = allocator;
        None
    }

    /// Sets `bytes` bytes at `ptr` to zero (on a device: queues the
    /// memset before any later work). An error means the bytes may not be
    /// zero; the lease is then released and the error returned.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + bytes)` lies inside one live block of this memory and no
    /// one else accesses it during the call.
    unsafe fn zero(&self, ptr: Self::Ptr, bytes: usize) -> Result<(), ScratchError>;

    /// A view of `len` elements of `T` at `ptr`, valid for `'a`.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + len * size_of::<T>())` lies inside one live block of this
    /// memory, `ptr` is aligned for `T`, the block outlives `'a`, and no other
    /// view of any of those bytes exists during `'a`.
    unsafe fn view<'a, T: Pod>(ptr: Self::Ptr, len: usize) -> Self::View<'a, T>;
}

/// Host RAM: blocks aligned to [`BLOCK_ALIGN`], fresh blocks
/// zero-initialised (`alloc_zeroed`; the OS hands out zero pages cheaply),
/// freed on `deallocate`; from the global allocator, or from mimalloc or
/// jemalloc for the malloc baselines ([`HostAllocator`]).
///
/// `HostMemory` is also a constant of this type (the global allocator's),
/// so `Pool::with_strategy("planned", HostMemory, &options)` reads as it
/// did when this was a unit struct.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostMemory {
    allocator: HostAllocator,
}

/// Host memory from the global allocator.
#[allow(non_upper_case_globals)]
pub const HostMemory: HostMemory = HostMemory {
    allocator: HostAllocator::Global,
};

/// A pointer into host memory handed out by [`HostMemory`](struct@HostMemory).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HostPtr(*mut u8);

// SAFETY: a `HostPtr` is an address; it grants no access by itself. Access
// goes through leases, whose exclusivity the pool guarantees, so moving the
// address to another thread (with the pool that owns its block) is sound.
unsafe impl Send for HostPtr {}

impl HostPtr {
    /// The raw pointer.
    pub fn as_ptr(self) -> *mut u8 {
        self.0
    }
}

impl fmt::Debug for HostPtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:p}", self.0)
    }
}

fn host_layout(bytes: usize) -> Result<Layout, ScratchError> {
    Layout::from_size_align(bytes, BLOCK_ALIGN).map_err(|_| ScratchError::NeverFits {
        requested: bytes,
        limit: isize::MAX as usize - BLOCK_ALIGN,
    })
}

// SAFETY: blocks come from the allocator with a `BLOCK_ALIGN` layout of the
// requested size through its zeroing allocation, so they are aligned, zeroed,
// disjoint from every other live allocation, and valid until freed by the
// same allocator.
unsafe impl Memory for HostMemory {
    type Ptr = HostPtr;
    type View<'a, T: Pod> = &'a mut [T];

    fn name(&self) -> &'static str {
        self.allocator.name()
    }

    fn with_host_allocator(&self, allocator: HostAllocator) -> Option<Self> {
        Some(HostMemory { allocator })
    }

    fn allocate(&self, bytes: usize) -> Result<HostPtr, ScratchError> {
        assert!(bytes > 0, "HostMemory::allocate takes a non-zero size");
        let layout = host_layout(bytes)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { self.allocator.alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(ScratchError::OutOfMemory {
                memory: "host",
                requested: bytes,
                reserved: 0,
                limit: None,
            });
        }
        Ok(HostPtr(ptr))
    }

    unsafe fn deallocate(&self, ptr: HostPtr, bytes: usize) {
        let layout = host_layout(bytes).expect("the layout was valid when allocated");
        // SAFETY: the caller promises `ptr` came from `allocate(bytes)`, i.e.
        // from this allocator with this same layout, and is not used again.
        unsafe { self.allocator.dealloc(ptr.0, layout) }
    }

    fn offset(ptr: HostPtr, offset: usize) -> HostPtr {
        HostPtr(ptr.0.wrapping_add(offset))
    }

    fn address(ptr: HostPtr) -> usize {
        ptr.0 as usize
    }

    fn dangling() -> HostPtr {
        HostPtr(std::ptr::without_provenance_mut(BLOCK_ALIGN))
    }

    unsafe fn zero(&self, ptr: HostPtr, bytes: usize) -> Result<(), ScratchError> {
        // SAFETY: the caller promises the range is inside a live block and
        // not accessed by anyone else during the call.
        unsafe { std::ptr::write_bytes(ptr.0, 0, bytes) };
        Ok(())
    }

    unsafe fn view<'a, T: Pod>(ptr: HostPtr, len: usize) -> &'a mut [T] {
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the caller promises the range is inside a live block that
        // outlives 'a, aligned for T, and exclusively ours for 'a. Blocks are
        // zero-initialised when fresh and hold earlier values when recycled,
        // so every byte is initialised, and any bit pattern is a valid `T`
        // because `T: Pod`.
        unsafe { std::slice::from_raw_parts_mut(ptr.0.cast::<T>(), len) }
    }
}
