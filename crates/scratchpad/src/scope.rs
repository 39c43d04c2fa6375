//! [`Scope`]: where leases come from. Everything acquired in a scope is
//! released when it ends, and the borrow checker keeps every lease inside it.

use std::cell::{Cell, RefCell};
use std::mem::size_of;

use bytemuck::Pod;

use crate::pool::{Core, EMPTY_SLOT, NotSend, run_scope};
use crate::{BLOCK_ALIGN, Lease, Memory, ScratchError, Tag};

/// An open scope of a [`crate::Pool`], handed to the closure of
/// [`crate::Pool::scope`]. Leases borrow it, so none outlives it; it belongs
/// to one thread.
///
/// Leases stay inside their scope, which the borrow checker enforces:
///
/// ```
/// use scratchpad::{HostMemory, Pool, PoolOptions, tag};
/// let pool = Pool::with_strategy("arena", HostMemory, &PoolOptions::default()).unwrap();
/// let total = pool.scope(|outer| {
///     let mut acc = outer.acquire::<f32>(8, tag!("doc.acc")).unwrap();
///     outer.scope(|inner| {
///         let mut tmp = inner.acquire::<f32>(8, tag!("doc.tmp")).unwrap();
///         tmp.fill(2.0);
///         acc.copy_from_slice(&tmp);
///     });
///     acc.iter().sum::<f32>()
/// });
/// assert_eq!(total, 16.0);
/// ```
///
/// A lease cannot leave its scope's closure:
///
/// ```compile_fail
/// use scratchpad::{HostMemory, Pool, PoolOptions, tag};
/// let pool = Pool::with_strategy("arena", HostMemory, &PoolOptions::default()).unwrap();
/// let escaped = pool.scope(|s| s.acquire::<f32>(8, tag!("doc.escape")).unwrap());
/// ```
///
/// nor be kept past the end of a nested scope:
///
/// ```compile_fail
/// use scratchpad::{HostMemory, Pool, PoolOptions, tag};
/// let pool = Pool::with_strategy("arena", HostMemory, &PoolOptions::default()).unwrap();
/// pool.scope(|outer| {
///     let mut kept = None;
///     outer.scope(|inner| kept = Some(inner.acquire::<f32>(8, tag!("doc.kept")).unwrap()));
///     drop(kept);
/// });
/// ```
///
/// nor be sent to another thread (its slice can, split among workers):
///
/// ```compile_fail
/// use scratchpad::{HostMemory, Pool, PoolOptions, tag};
/// fn send<T: Send>(_: T) {}
/// let pool = Pool::with_strategy("arena", HostMemory, &PoolOptions::default()).unwrap();
/// pool.scope(|s| send(s.acquire::<f32>(8, tag!("doc.send")).unwrap()));
/// ```
pub struct Scope<'p, M: Memory> {
    core: &'p RefCell<Core<M>>,
    depth: u32,
    /// Leases of this scope live now (empty ones aside): each lease counts
    /// itself out on drop, and a scope that ends above zero holds forgotten
    /// ones, which the pool then finds and releases.
    live: Cell<u32>,
    _not_send: NotSend,
}

impl<'p, M: Memory> Scope<'p, M> {
    pub(crate) fn new(core: &'p RefCell<Core<M>>, depth: u32) -> Self {
        Scope {
            core,
            depth,
            live: Cell::new(0),
            _not_send: NotSend::default(),
        }
    }

    pub(crate) fn core(&self) -> &'p RefCell<Core<M>> {
        self.core
    }

    pub(crate) fn live_leases(&self) -> u32 {
        self.live.get()
    }

    /// Nesting depth: 1 for an outermost scope.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// A lease of `len` elements of `T`, 64-byte aligned, holding unspecified
    /// (but initialised) values: zeros when fresh, stale data when recycled.
    /// A `T` aligned to more than 64 bytes is refused (`BadAlignment`).
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
        if !align.is_power_of_two() || align > BLOCK_ALIGN {
            return Err(ScratchError::BadAlignment { align });
        }
        self.acquire_raw(bytes, bytes, align, tag, false)
    }

    #[inline]
    fn acquire_typed<T: Pod>(
        &self,
        len: usize,
        tag: Tag,
        zeroed: bool,
    ) -> Result<Lease<'_, T, M>, ScratchError> {
        // Leases are 64-byte aligned; a type that needs more would get a
        // misaligned slice (and the empty lease's dangling pointer too).
        if align_of::<T>() > BLOCK_ALIGN {
            return Err(ScratchError::BadAlignment {
                align: align_of::<T>(),
            });
        }
        let elem_bytes = size_of::<T>();
        // Lazily: an eager `ok_or` builds and drops the error on every call,
        // which costs more than the rest of the size check (callgrind).
        #[allow(clippy::unnecessary_lazy_evaluations)]
        let bytes = len
            .checked_mul(elem_bytes)
            .ok_or_else(|| ScratchError::SizeOverflow { len, elem_bytes })?;
        self.acquire_raw(len, bytes, BLOCK_ALIGN, tag, zeroed)
    }

    #[inline]
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
        let zeroing = if zeroed && !fresh {
            core.zero(slot, ptr, bytes)
        } else {
            Ok(())
        };
        drop(core);
        if slot != EMPTY_SLOT {
            self.live.set(self.live.get() + 1);
        }
        let lease = Lease::new(self.core, &self.live, ptr, len, slot);
        // A failed memset releases the lease (its drop) with the error.
        zeroing.map(|()| lease)
    }

    /// Runs `f` in a scope nested in this one.
    pub fn scope<R>(&self, f: impl for<'s> FnOnce(&'s Scope<'s, M>) -> R) -> R {
        run_scope(self.core, f)
    }
}
