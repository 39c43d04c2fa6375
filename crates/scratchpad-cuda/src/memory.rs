//! [`CudaMemory`]: device memory as the SPI's [`Memory`], so every pool
//! strategy runs on the GPU unchanged. Everything runs on the memory's one
//! stream: a released lease's bytes are reused by work queued after the
//! work that used them, in stream order.

use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;
use cudarc::driver::{CudaStream, result};
use scratchpad::{BLOCK_ALIGN, Memory, ScratchError};

/// Device memory of one context, used in the order of one stream.
#[derive(Clone, Debug)]
pub struct CudaMemory {
    stream: Arc<CudaStream>,
}

/// A device address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaPtr(pub u64);

/// A lease's view on the device: an address and a length, for kernel
/// arguments. It borrows the lease, so it cannot outlive it.
#[derive(Debug)]
pub struct DeviceSlice<'a, T> {
    ptr: u64,
    len: usize,
    _lease: PhantomData<&'a mut [T]>,
}

impl<T> DeviceSlice<'_, T> {
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
        CudaMemory { stream }
    }

    /// The stream every kernel on this memory runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    fn out_of_memory(&self, bytes: usize) -> ScratchError {
        ScratchError::OutOfMemory {
            memory: "cuda",
            requested: bytes,
            reserved: 0,
            limit: None,
        }
    }
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
        self.stream
            .context()
            .bind_to_thread()
            .map_err(|_| self.out_of_memory(bytes))?;
        // SAFETY: the context is bound to this thread; the size is non-zero.
        let ptr = unsafe { result::malloc_sync(bytes) }.map_err(|_| self.out_of_memory(bytes))?;
        // SAFETY: `ptr` is a fresh allocation of `bytes` bytes; the memset
        // is queued on the stream every later use of the block is queued on.
        unsafe { result::memset_d8_async(ptr, 0, bytes, self.stream.cu_stream()) }
            .map_err(|_| self.out_of_memory(bytes))?;
        debug_assert_eq!(ptr as usize % BLOCK_ALIGN, 0);
        Ok(CudaPtr(ptr))
    }

    unsafe fn deallocate(&self, ptr: CudaPtr, _bytes: usize) {
        // Work queued on the stream may still use the block: wait for it.
        let _ = self.stream.synchronize();
        // SAFETY: the caller promises `ptr` came from `allocate` and is not
        // used again; the stream has drained.
        let _ = unsafe { result::free_sync(ptr.0) };
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

    unsafe fn zero(&self, ptr: CudaPtr, bytes: usize) {
        // SAFETY: the caller promises the range lies in a live block; the
        // memset is ordered before later work on the stream.
        let _ = unsafe { result::memset_d8_async(ptr.0, 0, bytes, self.stream.cu_stream()) };
    }

    unsafe fn view<'a, T: Pod>(ptr: CudaPtr, len: usize) -> DeviceSlice<'a, T> {
        DeviceSlice {
            ptr: ptr.0,
            len,
            _lease: PhantomData,
        }
    }
}
