//! [`Gpu`]: one CUDA device ready to run the model (its context, one
//! stream, the device memory the pools draw from, the loaded kernels), and
//! [`StepGraph`], a captured step replayed with one launch.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaGraph, sys};

use crate::{Blas, CudaError, CudaMemory, Kernels, Matmul, context, nvrtc_available};

/// One CUDA device, ready to run the model.
///
/// Everything runs on one non-blocking stream of the device's primary
/// context (graph capture cannot use the legacy default stream): the
/// pools' memory is reused in that stream's order, never across streams.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    memory: CudaMemory,
    kernels: Kernels,
}

impl Gpu {
    /// Device `ordinal`, with every kernel compiled and loaded; or why not
    /// (no driver, no device, no NVRTC, a kernel that does not compile).
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        let ctx = context(ordinal)?;
        if !nvrtc_available() {
            return Err(CudaError::NoNvrtc);
        }
        let stream = ctx.new_stream()?;
        let memory = CudaMemory::new(stream);
        let kernels = Kernels::load(&memory)?;
        Ok(Gpu {
            ctx,
            memory,
            kernels,
        })
    }

    /// The device's name, as the driver gives it.
    pub fn name(&self) -> String {
        self.ctx
            .name()
            .unwrap_or_else(|_| format!("CUDA device {}", self.ctx.ordinal()))
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The device memory every pool and buffer of this device draws from.
    pub fn memory(&self) -> &CudaMemory {
        &self.memory
    }

    /// The loaded kernels.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// A cuBLAS or cuBLASLt handle on this device's stream.
    pub fn blas(&self, kind: Matmul, tf32: bool) -> Result<Blas, CudaError> {
        Blas::new(kind, self.memory.stream().clone(), tf32)
    }

    /// Waits for everything queued on the stream.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        Ok(self.memory.stream().synchronize()?)
    }

    /// Starts capturing the stream's work into a graph instead of running
    /// it. Relaxed mode: the capture does not forbid other threads' CUDA
    /// calls; the caller makes sure nothing in the captured step allocates
    /// or synchronises.
    pub fn begin_capture(&self) -> Result<(), CudaError> {
        Ok(self
            .memory
            .stream()
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)?)
    }

    /// Ends the capture begun by [`Gpu::begin_capture`] and instantiates it.
    pub fn end_capture(&self) -> Result<StepGraph, CudaError> {
        let graph = self
            .memory
            .stream()
            .end_capture(sys::CUgraphInstantiate_flags(0))?
            .ok_or(CudaError::Driver(cudarc::driver::DriverError(
                sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            )))?;
        Ok(StepGraph { graph })
    }
}

/// A captured step: the same launches on the same addresses, replayed with
/// one call. What changes per step is read by the kernels from device
/// memory the caller writes before each replay.
pub struct StepGraph {
    graph: CudaGraph,
}

impl StepGraph {
    /// Queues one replay on the stream it was captured on.
    pub fn replay(&self) -> Result<(), CudaError> {
        Ok(self.graph.launch()?)
    }
}
