//! The CUDA C kernels, kept in the crate (`kernels/*.cu`) and compiled at
//! run time with NVRTC.

use cudarc::nvrtc::Ptx;

use crate::{CudaError, nvrtc_available};

/// Every kernel source: `(file, source, entry points)`.
pub const SOURCES: [(&str, &str, &[&str]); 4] = [
    (
        "elementwise.cu",
        include_str!("../kernels/elementwise.cu"),
        &["residual_add", "swiglu", "embed", "kv_append"],
    ),
    ("norm.cu", include_str!("../kernels/norm.cu"), &["rms_norm"]),
    ("rope.cu", include_str!("../kernels/rope.cu"), &["rope"]),
    (
        "attention.cu",
        include_str!("../kernels/attention.cu"),
        &["attention"],
    ),
];

/// Compiles every kernel source to PTX.
pub fn compile_all() -> Result<Vec<(&'static str, Ptx)>, CudaError> {
    if !nvrtc_available() {
        return Err(CudaError::NoNvrtc);
    }
    SOURCES
        .iter()
        .map(|&(name, source, _)| {
            cudarc::nvrtc::compile_ptx(source)
                .map(|ptx| (name, ptx))
                .map_err(|e| CudaError::Compile {
                    source_name: name,
                    log: e.to_string(),
                })
        })
        .collect()
}
