//! [`Gpu`]: one CUDA device ready to run the model (its context, one
//! stream, the device memory the pools draw from, the loaded kernels), and
//! [`StepGraph`], a captured step replayed with one launch.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cudarc::driver::{CudaContext, CudaGraph, sys};

use crate::memory::{CaptureReport, check_recorded, sync};
use crate::{
    Blas, CudaError, CudaMemory, Kernels, Matmul, check_nvrtc, context, gpu_required, may_skip,
};

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
    /// Device `ordinal`, with every kernel compiled for its compute
    /// capability and loaded; or why not (no driver, a driver older than
    /// CUDA 13, no device, NVRTC missing or of another version, a kernel
    /// that does not compile or load).
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        let ctx = context(ordinal)?;
        check_nvrtc()?;
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

    /// A cuBLAS or cuBLASLt handle on this device's stream, giving each
    /// product `workspace_bytes` of workspace.
    pub fn blas(
        &self,
        kind: Matmul,
        tf32: bool,
        workspace_bytes: usize,
    ) -> Result<Blas, CudaError> {
        Blas::new(kind, self.memory.stream().clone(), tf32, workspace_bytes)
    }

    /// Waits for everything queued on the stream, then reports any error
    /// an earlier call recorded in the context (a failed free or graph
    /// destruction).
    pub fn synchronize(&self) -> Result<(), CudaError> {
        sync(self.memory.stream())?;
        self.check_recorded()
    }

    /// Reports any error an earlier call recorded in the context (a failed
    /// free or graph destruction), without waiting for the stream.
    pub fn check_recorded(&self) -> Result<(), CudaError> {
        Ok(check_recorded(&self.ctx)?)
    }

    /// Starts capturing the stream's work into a graph instead of running
    /// it. Relaxed mode: the capture does not forbid other threads' CUDA
    /// calls. Until [`Gpu::end_capture`], the device memory refuses
    /// allocations and defers frees, so a pool that would allocate or free
    /// in the captured step neither records nor breaks anything.
    pub fn begin_capture(&self) -> Result<(), CudaError> {
        check_recorded(&self.ctx)?;
        self.memory.begin_capture();
        let begun = self
            .memory
            .stream()
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED);
        if let Err(e) = begun {
            self.memory.end_capture();
            return Err(e.into());
        }
        Ok(())
    }

    /// Ends the capture begun by [`Gpu::begin_capture`] and instantiates
    /// it, with what the pool's memory saw meanwhile: a graph is usable only
    /// when the report is clean (no allocation was refused, no free
    /// deferred), and the caller runs the step eagerly otherwise.
    pub fn end_capture(&self) -> (Result<StepGraph, CudaError>, CaptureReport) {
        let ended = self
            .memory
            .stream()
            .end_capture(sys::CUgraphInstantiate_flags(0));
        let report = self.memory.end_capture();
        let graph = match ended {
            Ok(Some(graph)) => Ok(StepGraph { graph }),
            Ok(None) => Err(CudaError::Driver(cudarc::driver::DriverError(
                sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            ))),
            Err(e) => Err(e.into()),
        };
        (graph, report)
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

/// Device 0 for the tests and benches of one process: opened once, lent
/// to one caller at a time (a capture on its stream must not record
/// another test's work). `None`, after saying why on stderr, when there is
/// no driver or device and `SCRATCHPAD_REQUIRE_GPU` is unset.
///
/// # Panics
///
/// When the GPU is there but cannot be used (a library missing or of the
/// wrong version, a kernel that does not load, any other driver error), or
/// under `SCRATCHPAD_REQUIRE_GPU=1` whatever the reason.
pub fn gpu_for_tests() -> Option<(MutexGuard<'static, ()>, Arc<Gpu>)> {
    static GPU: OnceLock<Result<Arc<Gpu>, (String, bool)>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let opened = GPU.get_or_init(|| {
        Gpu::new(0)
            .map(Arc::new)
            .map_err(|e| (e.to_string(), may_skip(&e, gpu_required())))
    });
    match opened {
        Ok(gpu) => Some((LOCK.lock().unwrap_or_else(|e| e.into_inner()), gpu.clone())),
        Err((why, true)) => {
            // Straight to the stderr handle: the harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "skipped: {why}");
            None
        }
        Err((why, false)) => panic!("the GPU cannot be used: {why}"),
    }
}
