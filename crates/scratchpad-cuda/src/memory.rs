//! [`CudaMemory`]: device memory as the SPI's [`Memory`], so every pool
//! strategy runs on the GPU unchanged. Everything runs on the memory's one
//! stream: a released lease's bytes are reused by work queued after the
//! work that used them, in stream order.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use bytemuck::Pod;
use cudarc::driver::{CudaContext, CudaStream, DriverError, result, sys};
use scratchpad::{BLOCK_ALIGN, Lease, Memory, ScratchError};

use crate::CudaError;

/// Device memory of one context, used in the order of one stream.
///
/// Clones share one capture state: while [`CudaMemory::begin_capture`]'s
/// capture is open, an allocation is refused with an error (it would be
/// recorded into the graph) and a free is deferred until the capture ends
/// (freeing waits for the stream, which a capturing stream forbids); the
/// capture's owner learns of either from [`CudaMemory::end_capture`] and
/// runs the step eagerly instead.
#[derive(Clone, Debug)]
pub struct CudaMemory {
    stream: Arc<CudaStream>,
    capture: Arc<Mutex<CaptureState>>,
}

/// What happened to a memory while its stream was captured.
#[derive(Debug, Default)]
struct CaptureState {
    capturing: bool,
    /// Allocations refused during the capture.
    refused: u64,
    /// Blocks released during the capture, freed when it ends.
    deferred: Vec<u64>,
}

/// What the pool did with device memory during a capture: nothing, for a
/// strategy whose addresses are stable once warm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    /// Allocations refused while capturing.
    pub refused_allocations: u64,
    /// Frees deferred to the end of the capture.
    pub deferred_frees: u64,
}

impl CaptureReport {
    /// True when the pool neither allocated nor freed during the capture.
    pub fn is_clean(&self) -> bool {
        self.refused_allocations == 0 && self.deferred_frees == 0
    }
}

/// Makes `ctx` current on this thread. Unlike cudarc's `bind_to_thread`,
/// it does not consume an error recorded earlier by a drop (which would
/// return that error and skip the binding): each call here does its own
/// work and reports its own failure; recorded errors surface at
/// [`check_recorded`].
pub(crate) fn bind(ctx: &CudaContext) -> Result<(), DriverError> {
    if result::ctx::get_current()? != Some(ctx.cu_ctx()) {
        // SAFETY: the context is alive (borrowed), so its handle is valid.
        unsafe { result::ctx::set_current(ctx.cu_ctx()) }?;
    }
    Ok(())
}

/// Waits for `stream` after binding its context, each step checked.
pub(crate) fn sync(stream: &CudaStream) -> Result<(), DriverError> {
    bind(stream.context())?;
    // SAFETY: the stream is alive (borrowed).
    unsafe { result::stream::synchronize(stream.cu_stream()) }
}

/// An error an earlier call recorded in the context (cudarc records the
/// failures of its drops there), reported now instead of by whichever
/// later call would have swallowed it.
pub(crate) fn check_recorded(ctx: &CudaContext) -> Result<(), DriverError> {
    ctx.check_err()
}

/// A device address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaPtr(pub u64);

/// A view of device memory: an address and a length, for kernel arguments.
/// It borrows the lease or [`DeviceBuffer`] it points into, so it cannot
/// outlive it. Device memory is never dereferenced on the host, so views
/// carry no Rust aliasing rules; which argument a kernel writes is in its
/// signature (`&mut`).
#[derive(Debug)]
pub struct DeviceSlice<'a, T> {
    ptr: u64,
    len: usize,
    _lease: PhantomData<&'a mut [T]>,
}

impl<'a, T> DeviceSlice<'a, T> {
    #[cfg(test)]
    pub(crate) fn raw(ptr: u64, len: usize, lease: PhantomData<&'a mut [T]>) -> Self {
        DeviceSlice {
            ptr,
            len,
            _lease: lease,
        }
    }

    /// The view of a lease on device memory, for kernel arguments.
    pub fn of<'l>(lease: &'a Lease<'l, T, CudaMemory>) -> Self
    where
        T: Pod,
    {
        DeviceSlice {
            ptr: lease.ptr().0,
            len: lease.len(),
            _lease: PhantomData,
        }
    }

    /// `len` elements from `offset` on: a sub-range of this view.
    ///
    /// # Panics
    ///
    /// When the range is not inside the view.
    pub fn range(&self, offset: usize, len: usize) -> DeviceSlice<'a, T> {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "DeviceSlice::range: {offset}+{len} is beyond a view of {}",
            self.len
        );
        DeviceSlice {
            ptr: self.ptr + (offset * size_of::<T>()) as u64,
            len,
            _lease: PhantomData,
        }
    }

    /// The device address of the first element.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty lease.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl CudaMemory {
    /// Device memory used in the order of `stream`.
    pub fn new(stream: Arc<CudaStream>) -> Self {
        CudaMemory {
            stream,
            capture: Arc::new(Mutex::new(CaptureState::default())),
        }
    }

    /// The stream every kernel on this memory runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Starts refusing allocations and deferring frees: the stream is
    /// about to be captured.
    pub fn begin_capture(&self) {
        let mut state = self.state();
        state.capturing = true;
        state.refused = 0;
    }

    /// Ends the capture state begun by [`CudaMemory::begin_capture`], after
    /// the stream's capture has ended: frees what was deferred (waiting for
    /// the stream first) and reports what the pool tried.
    pub fn end_capture(&self) -> CaptureReport {
        let (refused, deferred) = {
            let mut state = self.state();
            state.capturing = false;
            (state.refused, std::mem::take(&mut state.deferred))
        };
        for &ptr in &deferred {
            // SAFETY: each block came from `allocate` and was released by
            // its pool during the capture; nothing uses it any more.
            unsafe { free_after(&self.stream, ptr) };
        }
        CaptureReport {
            refused_allocations: refused,
            deferred_frees: deferred.len() as u64,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.capture.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool's error for a failed allocation of `bytes`: out of memory
/// only when the driver said so, a device failure otherwise.
fn allocation_error(bytes: usize, e: DriverError) -> ScratchError {
    if is_out_of_memory(&e) {
        ScratchError::OutOfMemory {
            memory: "cuda",
            requested: bytes,
            reserved: 0,
            limit: None,
        }
    } else {
        ScratchError::MemoryFailed {
            memory: "cuda",
            // The code's name: cudarc's Display asks the driver for a text,
            // which panics where no driver library loads.
            reason: format!("cuMemAlloc of {bytes} bytes: {:?}", e.0),
        }
    }
}

/// A fresh device block of `bytes` (non-zero) bytes, zeroed in the order
/// of `stream`, before any later work on it. A failed memset frees the
/// block again.
fn alloc_zeroed(stream: &CudaStream, bytes: usize) -> Result<u64, DriverError> {
    bind(stream.context())?;
    // SAFETY: the context is bound to this thread; the size is non-zero.
    let ptr = unsafe { result::malloc_sync(bytes) }?;
    // SAFETY: `ptr` is a fresh allocation of `bytes` bytes; the memset is
    // queued on the stream every later use of the block is queued on.
    if let Err(e) = unsafe { result::memset_d8_async(ptr, 0, bytes, stream.cu_stream()) } {
        // SAFETY: nothing was queued on the block (the memset failed).
        let _ = unsafe { result::free_sync(ptr) };
        return Err(e);
    }
    Ok(ptr)
}

/// Frees a block from [`alloc_zeroed`] once the work queued on `stream`
/// (which may still use it) has finished. When the stream cannot be
/// waited for, the block is leaked, never freed under running work, and
/// the error is recorded in the context for the next check.
///
/// # Safety
///
/// `ptr` came from `alloc_zeroed` and is not used again.
unsafe fn free_after(stream: &CudaStream, ptr: u64) {
    let freed = sync(stream).and_then(|()| {
        // SAFETY: the caller's promise; the stream has drained.
        unsafe { result::free_sync(ptr) }
    });
    stream.context().record_err(freed);
}

fn is_out_of_memory(e: &DriverError) -> bool {
    e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY
}

// SAFETY: blocks come from `cuMemAlloc` (256-byte aligned, so aligned to
// BLOCK_ALIGN), are zeroed on the memory's stream before any lease can use
// them, are disjoint from every other live allocation, and stay valid until
// `cuMemFree`.
unsafe impl Memory for CudaMemory {
    type Ptr = CudaPtr;
    type View<'a, T: Pod> = DeviceSlice<'a, T>;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn allocate(&self, bytes: usize) -> Result<CudaPtr, ScratchError> {
        {
            let mut state = self.state();
            if state.capturing {
                state.refused += 1;
                return Err(ScratchError::MemoryFailed {
                    memory: "cuda",
                    reason: format!(
                        "an allocation of {bytes} bytes while the stream is captured into a graph \
                         (the step runs eagerly instead)"
                    ),
                });
            }
        }
        let ptr = alloc_zeroed(&self.stream, bytes).map_err(|e| allocation_error(bytes, e))?;
        debug_assert_eq!(ptr as usize % BLOCK_ALIGN, 0);
        Ok(CudaPtr(ptr))
    }

    unsafe fn deallocate(&self, ptr: CudaPtr, _bytes: usize) {
        {
            let mut state = self.state();
            if state.capturing {
                state.deferred.push(ptr.0);
                return;
            }
        }
        // SAFETY: the caller promises `ptr` came from `allocate` and is not
        // used again.
        unsafe { free_after(&self.stream, ptr.0) };
    }

    fn offset(ptr: CudaPtr, offset: usize) -> CudaPtr {
        CudaPtr(ptr.0 + offset as u64)
    }

    fn address(ptr: CudaPtr) -> usize {
        ptr.0 as usize
    }

    fn dangling() -> CudaPtr {
        CudaPtr(BLOCK_ALIGN as u64)
    }

    unsafe fn zero(&self, ptr: CudaPtr, bytes: usize) -> Result<(), ScratchError> {
        let zeroed = bind(self.stream.context()).and_then(|()| {
            // SAFETY: the caller promises the range lies in a live block;
            // the memset is ordered before later work on the stream.
            unsafe { result::memset_d8_async(ptr.0, 0, bytes, self.stream.cu_stream()) }
        });
        zeroed.map_err(|e| ScratchError::MemoryFailed {
            memory: "cuda",
            reason: format!("zeroing {bytes} bytes of a lease: {:?}", e.0),
        })
    }

    unsafe fn view<'a, T: Pod>(ptr: CudaPtr, len: usize) -> DeviceSlice<'a, T> {
        DeviceSlice {
            ptr: ptr.0,
            len,
            _lease: PhantomData,
        }
    }
}

/// Device memory owned outside the pools, for the whole run: weights, the
/// KV cache, the residual stream, the logits. Uploads and downloads are
/// ordered on the memory's stream; dropping waits for the stream.
pub struct DeviceBuffer<T> {
    ptr: u64,
    len: usize,
    stream: Arc<CudaStream>,
    _elems: PhantomData<T>,
}

impl<T: Pod> DeviceBuffer<T> {
    /// `len` zeroed elements on `memory`'s device.
    pub fn zeros(memory: &CudaMemory, len: usize) -> Result<Self, CudaError> {
        let stream = memory.stream().clone();
        let bytes = len.checked_mul(size_of::<T>()).ok_or(CudaError::Shape {
            m: len,
            n: size_of::<T>(),
            k: 1,
            reason: "the buffer's size overflows usize",
        })?;
        let ptr = if bytes == 0 {
            BLOCK_ALIGN as u64
        } else {
            alloc_zeroed(&stream, bytes)?
        };
        Ok(DeviceBuffer {
            ptr,
            len,
            stream,
            _elems: PhantomData,
        })
    }

    /// A copy of `data` on `memory`'s device.
    pub fn from_host(memory: &CudaMemory, data: &[T]) -> Result<Self, CudaError> {
        let mut buffer = Self::zeros(memory, data.len())?;
        buffer.upload(0, data)?;
        Ok(buffer)
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize, what: &str) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "DeviceBuffer::{what}: {offset}+{len} is beyond a buffer of {}",
            self.len
        );
    }

    /// Copies `data` to elements `offset..`, in stream order. The copy
    /// is staged before this returns, so `data` may change afterwards.
    ///
    /// # Panics
    ///
    /// When the range is not inside the buffer.
    pub fn upload(&mut self, offset: usize, data: &[T]) -> Result<(), CudaError> {
        self.check(offset, data.len(), "upload");
        if data.is_empty() {
            return Ok(());
        }
        bind(self.stream.context())?;
        let dst = self.ptr + (offset * size_of::<T>()) as u64;
        // SAFETY: the range lies in this live allocation (checked above);
        // from pageable host memory the driver stages `data` before it
        // returns, so the borrow may end afterwards.
        unsafe { result::memcpy_htod_async(dst, data, self.stream.cu_stream()) }?;
        Ok(())
    }

    /// Copies elements `offset..offset + out.len()` to `out`, after all
    /// work queued on the stream, and waits for the copy.
    ///
    /// # Panics
    ///
    /// When the range is not inside the buffer.
    pub fn download(&self, offset: usize, out: &mut [T]) -> Result<(), CudaError> {
        self.check(offset, out.len(), "download");
        if out.is_empty() {
            return Ok(());
        }
        bind(self.stream.context())?;
        let src = self.ptr + (offset * size_of::<T>()) as u64;
        // SAFETY: the range lies in this live allocation (checked above);
        // `out` is borrowed until the stream has finished the copy.
        unsafe { result::memcpy_dtoh_async(out, src, self.stream.cu_stream()) }?;
        sync(&self.stream)?;
        Ok(())
    }

    /// The whole buffer as a view.
    pub fn view(&self) -> DeviceSlice<'_, T> {
        self.slice(0, self.len)
    }

    /// The whole buffer as a view kernels may write.
    pub fn view_mut(&mut self) -> DeviceSlice<'_, T> {
        self.slice(0, self.len)
    }

    /// `len` elements from `offset` on.
    ///
    /// # Panics
    ///
    /// When the range is not inside the buffer.
    pub fn slice(&self, offset: usize, len: usize) -> DeviceSlice<'_, T> {
        self.check(offset, len, "slice");
        DeviceSlice {
            ptr: self.ptr + (offset * size_of::<T>()) as u64,
            len,
            _lease: PhantomData,
        }
    }
}

impl<T> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        if self.len == 0 || size_of::<T>() == 0 {
            return;
        }
        // SAFETY: `ptr` came from `alloc_zeroed` in `zeros` and is freed
        // once, here.
        unsafe { free_after(&self.stream, self.ptr) };
    }
}

impl<T> std::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("ptr", &format_args!("{:#x}", self.ptr))
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_drivers_out_of_memory_is_out_of_memory() {
        let oom = DriverError(sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY);
        assert!(matches!(
            allocation_error(1 << 30, oom),
            ScratchError::OutOfMemory {
                requested: 1073741824,
                ..
            }
        ));
        for code in [
            sys::cudaError_enum::CUDA_ERROR_INVALID_CONTEXT,
            sys::cudaError_enum::CUDA_ERROR_ILLEGAL_ADDRESS,
            sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
        ] {
            let e = allocation_error(4096, DriverError(code));
            assert!(
                matches!(e, ScratchError::MemoryFailed { .. }),
                "{code:?} became {e}"
            );
            assert!(e.to_string().contains("cuMemAlloc of 4096 bytes"), "{e}");
        }
    }
}
