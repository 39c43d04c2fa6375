//! The CUDA backend's error type: what is missing or what failed, and what
//! a user can do about it.

/// Everything the CUDA backend can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// No CUDA driver library could be loaded (no NVIDIA driver installed).
    #[error(
        "no CUDA device: the CUDA driver library (libcuda) is not installed or not on the library path"
    )]
    NoDriver,
    /// The driver loaded but reports no device.
    #[error("no CUDA device: the driver reports {found} devices, device {ordinal} was asked for")]
    NoDevice {
        /// The device asked for.
        ordinal: usize,
        /// Devices present.
        found: usize,
    },
    /// The NVRTC library could not be loaded.
    #[error(
        "NVRTC (libnvrtc) is not installed or not on the library path; it compiles the CUDA kernels at run time"
    )]
    NoNvrtc,
    /// A kernel source did not compile.
    #[error("the CUDA kernel source `{source_name}` does not compile with NVRTC: {log}")]
    Compile {
        /// The source file.
        source_name: &'static str,
        /// NVRTC's log.
        log: String,
    },
    /// A cuBLAS or cuBLASLt library could not be loaded.
    #[error(
        "{library} is not installed or not on the library path; the CUDA backend's matrix products need it"
    )]
    NoBlas {
        /// `libcublas` or `libcublasLt`.
        library: &'static str,
    },
    /// A driver call failed.
    #[error("CUDA driver error: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    /// A cuBLAS call failed.
    #[error("cuBLAS error in {call}: {status:?}")]
    Blas {
        /// The call that failed.
        call: &'static str,
        /// What cuBLAS answered.
        status: cudarc::cublas::sys::cublasStatus_t,
    },
    /// A cuBLASLt call failed.
    #[error("cuBLASLt error in {call}: {status:?}")]
    BlasLt {
        /// The call that failed.
        call: &'static str,
        /// What cuBLASLt answered.
        status: cudarc::cublaslt::sys::cublasStatus_t,
    },
    /// A matrix product the backend cannot express (a dimension beyond
    /// `i32`, or no cuBLASLt algorithm for the shape).
    #[error("matrix product {m}×{k} by {k}×{n}: {reason}")]
    Shape {
        /// Rows of the output.
        m: usize,
        /// Columns of the output.
        n: usize,
        /// The shared dimension.
        k: usize,
        /// Why it cannot run.
        reason: &'static str,
    },
}
