//! The CUDA backend of the scratchpad runtime: device memory for the
//! scratch pools ([`CudaMemory`], so every strategy runs on the GPU
//! unchanged), the CUDA C kernels compiled at run time with NVRTC
//! ([`Kernels`]), matrix products through cuBLAS or cuBLASLt with their
//! workspace leased from the pool ([`Blas`]), and the device itself
//! ([`Gpu`]) with graph capture and replay ([`StepGraph`]). The model's
//! `Backend` on top of these lives in `scratchpad-model`.
//!
//! cudarc loads every library at run time, so the crate builds and its
//! tests run everywhere; a missing driver, device, NVRTC or cuBLAS is a
//! [`CudaError`], never a panic.

mod blas;
mod error;
mod gpu;
mod kernels;
mod memory;
mod probe;

pub use blas::{
    Blas, DEFAULT_WORKSPACE_BYTES, Matmul, WORKSPACE_ALIGN, check_workspace_bytes,
    cublas_available, cublaslt_available,
};
pub use error::CudaError;
pub use gpu::{Gpu, StepGraph, gpu_for_tests};
pub use kernels::{DEFAULT_ARCH, Heads, Kernels, RMS_NORM_EPS, SOURCES, compile_all};
pub use memory::{CaptureReport, CudaMemory, CudaPtr, DeviceBuffer, DeviceSlice};
pub use probe::{
    CUDA_MAJOR, REQUIRE_GPU_ENV, check_driver_version, check_library_major, check_nvrtc, context,
    driver_available, driver_version, gpu_required, may_skip, nvrtc_available,
};
