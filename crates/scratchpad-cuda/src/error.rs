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
    /// A driver call failed.
    #[error("CUDA driver error: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
}
