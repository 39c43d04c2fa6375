//! The CUDA backend of the scratchpad runtime (work in progress): device
//! memory for the scratch pools ([`CudaMemory`], so every strategy runs on
//! the GPU unchanged), the CUDA C kernels compiled at run time with NVRTC
//! ([`compile_all`]), and the probe that reports a missing driver, device or
//! NVRTC as an error. cudarc loads the libraries at run time, so the crate
//! builds and its tests run (skipping what needs a GPU) everywhere.

mod error;
mod kernels;
mod memory;
mod probe;

pub use error::CudaError;
pub use kernels::{SOURCES, compile_all};
pub use memory::{CudaMemory, CudaPtr, DeviceSlice};
pub use probe::{context, driver_available, nvrtc_available};
