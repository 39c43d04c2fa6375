//! [`CountingAlloc`]: a global allocator that counts heap allocations, the
//! ground truth behind every "zero allocations" claim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static DEALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting every allocation, reallocation and free.
///
/// Install it in a binary or test binary:
///
/// ```
/// use scratchpad::CountingAlloc;
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc = CountingAlloc;
///
/// fn main() {
///     let before = CountingAlloc::counts();
///     let v = std::hint::black_box(vec![1u8; 100]);
///     assert_eq!(CountingAlloc::counts().since(&before).allocations, 1);
///     drop(v);
/// }
/// ```
///
/// Counts are process-wide: every thread's allocations land in the same
/// counters, so a test that asserts exact counts runs in its own binary
/// (`harness = false`) or keeps other threads quiet.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc;

/// A snapshot of the process's allocation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AllocCounts {
    /// Allocations, zeroed allocations and reallocations.
    pub allocations: u64,
    /// Frees.
    pub deallocations: u64,
    /// Bytes requested by allocations and reallocations.
    pub bytes: u64,
}

impl CountingAlloc {
    /// The counters now.
    pub fn counts() -> AllocCounts {
        AllocCounts {
            allocations: ALLOCATIONS.load(Relaxed),
            deallocations: DEALLOCATIONS.load(Relaxed),
            bytes: BYTES.load(Relaxed),
        }
    }

    /// True once any allocation went through a `CountingAlloc`, i.e. it is
    /// the process's global allocator. Counts read zero when it is not.
    pub fn is_installed() -> bool {
        ACTIVE.load(Relaxed)
    }
}

impl AllocCounts {
    /// The counts accumulated since `earlier`.
    pub fn since(&self, earlier: &AllocCounts) -> AllocCounts {
        AllocCounts {
            allocations: self.allocations - earlier.allocations,
            deallocations: self.deallocations - earlier.deallocations,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// Counts an allocation made by calling an allocator directly (the malloc
/// baselines), without marking the counting allocator as installed.
pub(crate) fn count_direct(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
}

/// Counts a free made by calling an allocator directly.
pub(crate) fn count_direct_free() {
    DEALLOCATIONS.fetch_add(1, Relaxed);
}

fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
    if !ACTIVE.load(Relaxed) {
        ACTIVE.store(true, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counters are atomics and
// never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        DEALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
