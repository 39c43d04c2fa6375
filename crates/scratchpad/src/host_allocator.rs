//! [`HostAllocator`]: where host memory comes from: the global allocator
//! (glibc's malloc unless the program installs another), or mimalloc or
//! jemalloc called directly, for the malloc baselines (`noop@mimalloc`,
//! `noop@jemalloc`): the no-pool policy over a modern malloc, to answer
//! whether a pool still pays off over one.
//!
//! Calls into mimalloc and jemalloc are counted into [`crate::CountingAlloc`]'s
//! figures as if they went through the global allocator, so allocation
//! counts per token compare across all three.

use std::alloc::{self, Layout};
use std::ffi::c_void;

use crate::BLOCK_ALIGN;
use crate::counting_alloc::{count_direct, count_direct_free};

/// The allocator behind a [`HostMemory`](struct@crate::HostMemory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostAllocator {
    /// The global allocator (`std::alloc`).
    #[default]
    Global,
    /// mimalloc, called directly (`mi_zalloc_aligned`, `mi_free`).
    Mimalloc,
    /// jemalloc, called directly (`mallocx` with `MALLOCX_ZERO`,
    /// `sdallocx`; its symbols are prefixed, so it never replaces malloc).
    Jemalloc,
}

/// jemalloc's flags for a zeroed block aligned to [`BLOCK_ALIGN`].
const JEMALLOC_FLAGS: i32 =
    tikv_jemalloc_sys::MALLOCX_ALIGN(BLOCK_ALIGN) | tikv_jemalloc_sys::MALLOCX_ZERO;

impl HostAllocator {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            HostAllocator::Global => "host",
            HostAllocator::Mimalloc => "host (mimalloc)",
            HostAllocator::Jemalloc => "host (jemalloc)",
        }
    }

    /// A zeroed block of `layout` (size non-zero, alignment [`BLOCK_ALIGN`]),
    /// or null.
    ///
    /// # Safety
    ///
    /// `layout.size()` is non-zero.
    pub(crate) unsafe fn alloc_zeroed(self, layout: Layout) -> *mut u8 {
        match self {
            // SAFETY: the caller promises a non-zero size.
            HostAllocator::Global => unsafe { alloc::alloc_zeroed(layout) },
            HostAllocator::Mimalloc => {
                count_direct(layout.size());
                // SAFETY: any size and a power-of-two alignment are valid.
                unsafe { libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()) }.cast()
            }
            HostAllocator::Jemalloc => {
                count_direct(layout.size());
                // SAFETY: a non-zero size (mallocx's precondition) and valid
                // flags.
                unsafe { tikv_jemalloc_sys::mallocx(layout.size(), JEMALLOC_FLAGS) }.cast()
            }
        }
    }

    /// Frees a block from [`HostAllocator::alloc_zeroed`].
    ///
    /// # Safety
    ///
    /// `ptr` came from `self.alloc_zeroed(layout)` with this layout and is
    /// not used again.
    pub(crate) unsafe fn dealloc(self, ptr: *mut u8, layout: Layout) {
        match self {
            // SAFETY: forwarded from the caller.
            HostAllocator::Global => unsafe { alloc::dealloc(ptr, layout) },
            HostAllocator::Mimalloc => {
                count_direct_free();
                // SAFETY: `ptr` came from mimalloc and is freed once.
                unsafe { libmimalloc_sys::mi_free(ptr.cast::<c_void>()) }
            }
            HostAllocator::Jemalloc => {
                count_direct_free();
                // SAFETY: `ptr` came from `mallocx` with this size and these
                // flags, as `sdallocx` requires.
                unsafe {
                    tikv_jemalloc_sys::sdallocx(ptr.cast::<c_void>(), layout.size(), JEMALLOC_FLAGS)
                }
            }
        }
    }
}
