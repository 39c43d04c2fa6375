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
    /// The driver is older than the CUDA release the kernels are compiled
    /// with: NVRTC 13 emits PTX 9.0, which drivers before the CUDA 13
    /// series reject. Update the NVIDIA driver.
    #[error(
        "the CUDA driver supports CUDA {found_major}.{found_minor}, but this build needs CUDA {needed_major}.0 or newer (NVRTC {needed_major} emits PTX its driver must load); install an NVIDIA driver of the CUDA {needed_major} series (580 or newer)"
    )]
    DriverTooOld {
        /// The driver's CUDA version, major part.
        found_major: i32,
        /// The driver's CUDA version, minor part.
        found_minor: i32,
        /// The CUDA major version needed.
        needed_major: i32,
    },
    /// A CUDA library of another major version was loaded (cudarc falls
    /// back to older names, such as `libcublas.so.12`).
    #[error(
        "{library} {found}.x was loaded, but this build needs CUDA {needed} libraries; put the CUDA {needed} {library} first on the library path"
    )]
    LibraryVersion {
        /// The library.
        library: &'static str,
        /// The major version loaded.
        found: i32,
        /// The major version needed.
        needed: i32,
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
    /// A matmul workspace size the libraries cannot be given as it is.
    #[error("a matmul workspace of {bytes} bytes: it must be a non-zero multiple of 256 bytes")]
    Workspace {
        /// The size asked for.
        bytes: usize,
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
