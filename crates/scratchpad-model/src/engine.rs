//! [`Engine`]: the one place that turns a device choice, a pool strategy
//! and pool options into a running [`Transformer`]. The device is opened
//! once (a CUDA context, its kernels compiled) and serves every transformer
//! made from it; callers never name a backend type.

use std::sync::Arc;

use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_cpu::Isa;
use scratchpad_cuda::Gpu;

use crate::cuda::check_graph_strategy;
use crate::{Backend, Checkpoint, CpuBackend, CudaBackend, CudaOptions, ModelError, Transformer};

/// Where a model should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The host, with the SIMD kernels, in the caller's rayon pool.
    Cpu,
    /// CUDA device 0, with these options.
    Cuda(CudaOptions),
}

/// An opened device, ready to make transformers.
pub struct Engine {
    device: Opened,
}

enum Opened {
    Cpu,
    Cuda { gpu: Arc<Gpu>, options: CudaOptions },
}

impl Engine {
    /// Opens `choice`, after checking that every strategy of `strategies`
    /// can run on it as asked (graph replay needs stable addresses), so a
    /// bad combination is refused before a device is touched.
    pub fn open(choice: DeviceChoice, strategies: &[String]) -> Result<Engine, ModelError> {
        let device = match choice {
            DeviceChoice::Cpu => Opened::Cpu,
            DeviceChoice::Cuda(options) => {
                if options.graph {
                    for name in strategies {
                        check_graph_strategy(name)?;
                    }
                }
                scratchpad_cuda::check_workspace_bytes(options.workspace_bytes)?;
                Opened::Cuda {
                    gpu: Arc::new(Gpu::new(0)?),
                    options,
                }
            }
        };
        Ok(Engine { device })
    }

    /// `model` on this device with a fresh pool of `strategy`.
    pub fn transformer(
        &self,
        model: &Arc<Checkpoint>,
        strategy: &str,
        options: &PoolOptions,
    ) -> Result<Transformer, ModelError> {
        let backend: Box<dyn Backend> = match &self.device {
            Opened::Cpu => {
                let pool = Pool::with_strategy(strategy, HostMemory, options)?;
                Box::new(CpuBackend::new(model.clone(), pool))
            }
            Opened::Cuda { gpu, options: cuda } => {
                let pool = Pool::with_strategy(strategy, gpu.memory().clone(), options)?;
                Box::new(CudaBackend::new(gpu.clone(), model, pool, *cuda)?)
            }
        };
        Ok(Transformer::new(backend))
    }

    /// True when the pools draw from device memory rather than the heap.
    pub fn pools_on_device(&self) -> bool {
        matches!(self.device, Opened::Cuda { .. })
    }

    /// One line for a report's header: the device, and how it runs.
    pub fn describe(&self, threads: usize) -> String {
        match &self.device {
            Opened::Cpu => format!("cpu ({}), {threads} threads", Isa::detect()),
            Opened::Cuda { gpu, options } => format!(
                "cuda ({}), {}{}, {}",
                gpu.name(),
                options.matmul,
                if options.tf32 {
                    " with TF32"
                } else {
                    ", TF32 off"
                },
                if options.graph {
                    "decode step replayed from a CUDA graph"
                } else {
                    "eager launches"
                }
            ),
        }
    }
}

/// `Ok` unless `SCRATCHPAD_SIMD` is set to something other than a SIMD
/// path this CPU supports; the error names the accepted values.
pub fn check_simd_env() -> Result<(), ModelError> {
    Isa::from_env()
        .map(|_| ())
        .map_err(|reason| ModelError::InvalidOption {
            option: "SIMD path",
            reason,
        })
}

/// The host's SIMD paths, as the kernels name them: every one this CPU
/// supports, and the one they use (`SCRATCHPAD_SIMD` may force it).
pub fn host_simd() -> (Vec<String>, String) {
    (
        Isa::supported().map(|i| i.to_string()).collect(),
        Isa::detect().to_string(),
    )
}
