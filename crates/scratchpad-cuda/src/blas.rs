//! Matrix products on the GPU, through cuBLAS or cuBLASLt, with their
//! workspace leased from the scratch pool.
//!
//! - cuBLAS: `cublasSgemm`, its workspace set to the lease with
//!   `cublasSetWorkspace` before each product, so the library never
//!   allocates one of its own (which CUDA-graph capture also needs).
//! - cuBLASLt: `cublasLtMatmul` through cudarc's raw `result` API with the
//!   lease as its workspace (cudarc's safe wrapper allocates its own). The
//!   descriptors and the heuristic's algorithm are made once per shape and
//!   kept, so a warm product allocates nothing.
//!
//! TF32 is off unless asked for: cuBLAS runs in its default math mode and
//! cuBLASLt computes in `CUBLAS_COMPUTE_32F`, so results are full f32.

use std::ffi::c_void;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use cudarc::cublas::sys as blas_sys;
use cudarc::cublaslt::sys as lt_sys;
use cudarc::driver::CudaStream;

use crate::{CudaError, DeviceSlice};

/// cuBLAS and cuBLASLt want their workspace 256-byte aligned; pool leases
/// are 64-byte aligned, so a workspace lease carries this much slack.
pub const WORKSPACE_ALIGN: usize = 256;

/// The default workspace: cuBLAS's own default on Hopper is 32 MiB, but
/// the products of these models (at most a few thousand rows) need far
/// less; 4 MiB is cuBLAS's default before Hopper.
pub const DEFAULT_WORKSPACE_BYTES: usize = 4 << 20;

/// Which library runs the matrix products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Matmul {
    /// cuBLAS `cublasSgemm`.
    #[default]
    Cublas,
    /// cuBLASLt `cublasLtMatmul` with a heuristic-chosen algorithm.
    CublasLt,
}

impl Matmul {
    /// Both, by name.
    pub const ALL: [Matmul; 2] = [Matmul::Cublas, Matmul::CublasLt];

    /// `cublas` or `cublaslt`.
    pub fn name(self) -> &'static str {
        match self {
            Matmul::Cublas => "cublas",
            Matmul::CublasLt => "cublaslt",
        }
    }
}

impl fmt::Display for Matmul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Matmul {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cublas" => Ok(Matmul::Cublas),
            "cublaslt" => Ok(Matmul::CublasLt),
            other => Err(format!(
                "unknown matmul library `{other}`: use cublas or cublaslt"
            )),
        }
    }
}

/// Whether the cuBLAS library can be loaded.
pub fn cublas_available() -> bool {
    // SAFETY: `is_culib_present` only tries to load the library.
    unsafe { blas_sys::is_culib_present() }
}

/// Whether the cuBLASLt library can be loaded.
pub fn cublaslt_available() -> bool {
    // SAFETY: as above, for libcublasLt.
    unsafe { lt_sys::is_culib_present() }
}

fn blas(call: &'static str, status: blas_sys::cublasStatus_t) -> Result<(), CudaError> {
    match status {
        blas_sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS => Ok(()),
        status => Err(CudaError::Blas { call, status }),
    }
}

fn lt(call: &'static str, e: cudarc::cublaslt::result::CublasError) -> CudaError {
    CudaError::BlasLt { call, status: e.0 }
}

/// One cuBLASLt shape: descriptors and the chosen algorithm.
struct LtPlan {
    key: (usize, usize, usize, usize),
    desc: lt_sys::cublasLtMatmulDesc_t,
    a: lt_sys::cublasLtMatrixLayout_t,
    b: lt_sys::cublasLtMatrixLayout_t,
    c: lt_sys::cublasLtMatrixLayout_t,
    algo: lt_sys::cublasLtMatmulAlgo_t,
}

impl LtPlan {
    fn destroy(&self) {
        // SAFETY: the descriptors were created in `Blas::lt_plan` and are
        // destroyed once, when the plan is dropped with its handle.
        unsafe {
            let _ = cudarc::cublaslt::result::destroy_matrix_layout(self.a);
            let _ = cudarc::cublaslt::result::destroy_matrix_layout(self.b);
            let _ = cudarc::cublaslt::result::destroy_matrix_layout(self.c);
            let _ = cudarc::cublaslt::result::destroy_matmul_desc(self.desc);
        }
    }
}

enum Handle {
    Cublas(blas_sys::cublasHandle_t),
    Lt {
        handle: lt_sys::cublasLtHandle_t,
        plans: Vec<LtPlan>,
    },
}

/// A cuBLAS or cuBLASLt handle bound to one stream.
pub struct Blas {
    handle: Handle,
    tf32: bool,
    stream: Arc<CudaStream>,
}

impl Blas {
    /// A handle of `kind` whose products run on `stream`; `tf32` lets the
    /// library use TF32 tensor cores (off by default in the backend).
    pub fn new(kind: Matmul, stream: Arc<CudaStream>, tf32: bool) -> Result<Self, CudaError> {
        stream.context().bind_to_thread()?;
        let handle = match kind {
            Matmul::Cublas => {
                if !cublas_available() {
                    return Err(CudaError::NoBlas {
                        library: "cuBLAS (libcublas)",
                    });
                }
                let handle =
                    cudarc::cublas::result::create_handle().map_err(|e| CudaError::Blas {
                        call: "cublasCreate",
                        status: e.0,
                    })?;
                let mode = if tf32 {
                    blas_sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
                } else {
                    blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH
                };
                let blas_stream = stream.cu_stream() as blas_sys::cudaStream_t;
                // SAFETY: a live handle; the stream belongs to the bound
                // context and outlives the handle (`self.stream`).
                let setup = unsafe {
                    blas(
                        "cublasSetStream",
                        blas_sys::cublasSetStream_v2(handle, blas_stream),
                    )
                    .and_then(|()| {
                        blas(
                            "cublasSetMathMode",
                            blas_sys::cublasSetMathMode(handle, mode),
                        )
                    })
                };
                if let Err(e) = setup {
                    // SAFETY: created above, not used again.
                    let _ = unsafe { cudarc::cublas::result::destroy_handle(handle) };
                    return Err(e);
                }
                Handle::Cublas(handle)
            }
            Matmul::CublasLt => {
                if !cublaslt_available() {
                    return Err(CudaError::NoBlas {
                        library: "cuBLASLt (libcublasLt)",
                    });
                }
                let handle = cudarc::cublaslt::result::create_handle()
                    .map_err(|e| lt("cublasLtCreate", e))?;
                Handle::Lt {
                    handle,
                    plans: Vec::new(),
                }
            }
        };
        Ok(Blas {
            handle,
            tf32,
            stream,
        })
    }

    /// The library in use.
    pub fn kind(&self) -> Matmul {
        match self.handle {
            Handle::Cublas(_) => Matmul::Cublas,
            Handle::Lt { .. } => Matmul::CublasLt,
        }
    }

    /// Whether TF32 is allowed.
    pub fn tf32(&self) -> bool {
        self.tf32
    }

    /// `out (n × m) = x (n × k) · Wᵀ`, with `W (m × k)` row-major as in
    /// llama2.c, all f32; `workspace` is a lease of at least
    /// [`WORKSPACE_ALIGN`] bytes (the library may use all of it).
    ///
    /// Row-major `W` is column-major `Wᵀ` (k × m, leading dimension k), so
    /// the column-major product is `outᵀ (m × n) = op_T(Wᵀ) · xᵀ`.
    ///
    /// # Panics
    ///
    /// When the lengths do not match the shape.
    pub fn project(
        &mut self,
        x: &DeviceSlice<'_, f32>,
        w: &DeviceSlice<'_, f32>,
        k: usize,
        out: &mut DeviceSlice<'_, f32>,
        workspace: &DeviceSlice<'_, u8>,
    ) -> Result<(), CudaError> {
        assert!(
            k > 0 && x.len().is_multiple_of(k) && w.len().is_multiple_of(k),
            "project: x and W must be whole rows of k"
        );
        let (n, m) = (x.len() / k, w.len() / k);
        assert_eq!(out.len(), n * m, "project: out must hold n × m");
        if n == 0 || m == 0 {
            return Ok(());
        }
        let too_big = |_| CudaError::Shape {
            m,
            n,
            k,
            reason: "a dimension does not fit cuBLAS's i32",
        };
        let (mi, ni, ki) = (
            i32::try_from(m).map_err(too_big)?,
            i32::try_from(n).map_err(too_big)?,
            i32::try_from(k).map_err(too_big)?,
        );
        self.stream.context().bind_to_thread()?;
        let (ws_ptr, ws_len) = aligned_workspace(workspace);
        let (alpha, beta) = (1.0f32, 0.0f32);
        match &mut self.handle {
            Handle::Cublas(handle) => {
                let handle = *handle;
                // SAFETY: a live handle; the workspace range lies inside the
                // lease, which outlives this product in stream order (the
                // caller keeps it leased for the step, and the pool reuses
                // its bytes only for later work on the same stream).
                unsafe {
                    blas(
                        "cublasSetWorkspace",
                        blas_sys::cublasSetWorkspace_v2(handle, ws_ptr as *mut c_void, ws_len),
                    )?;
                }
                // SAFETY: the three views are live device memory of this
                // context holding m×k, k×n and m×n floats (checked above);
                // alpha and beta are host scalars read during the call.
                unsafe {
                    blas(
                        "cublasSgemm",
                        blas_sys::cublasSgemm_v2(
                            handle,
                            blas_sys::cublasOperation_t::CUBLAS_OP_T,
                            blas_sys::cublasOperation_t::CUBLAS_OP_N,
                            mi,
                            ni,
                            ki,
                            &alpha,
                            w.device_ptr() as *const f32,
                            ki,
                            x.device_ptr() as *const f32,
                            ki,
                            &beta,
                            out.device_ptr() as *mut f32,
                            mi,
                        ),
                    )
                }
            }
            Handle::Lt { handle, plans } => {
                let handle = *handle;
                let key = (m, n, k, ws_len);
                let index = match plans.iter().position(|p| p.key == key) {
                    Some(i) => i,
                    None => {
                        plans.push(lt_plan(handle, key, self.tf32)?);
                        plans.len() - 1
                    }
                };
                let plan = &plans[index];
                let lt_stream = self.stream.cu_stream() as lt_sys::cudaStream_t;
                // SAFETY: the plan's descriptors are live and describe these
                // views (m×k, k×n, m×n floats, checked above); the workspace
                // range lies in the lease; alpha and beta are host scalars.
                unsafe {
                    cudarc::cublaslt::result::matmul(
                        handle,
                        plan.desc,
                        (&alpha as *const f32).cast(),
                        (&beta as *const f32).cast(),
                        w.device_ptr() as *const c_void,
                        plan.a,
                        x.device_ptr() as *const c_void,
                        plan.b,
                        out.device_ptr() as *const c_void,
                        plan.c,
                        out.device_ptr() as *mut c_void,
                        plan.c,
                        &plan.algo,
                        ws_ptr as *mut c_void,
                        ws_len,
                        lt_stream,
                    )
                }
                .map_err(|e| lt("cublasLtMatmul", e))
            }
        }
    }
}

/// The 256-byte-aligned part of a workspace lease: `(address, bytes)`.
fn aligned_workspace(workspace: &DeviceSlice<'_, u8>) -> (u64, usize) {
    let start = workspace.device_ptr();
    let aligned = start.next_multiple_of(WORKSPACE_ALIGN as u64);
    let skip = (aligned - start) as usize;
    let len = workspace.len().saturating_sub(skip) / WORKSPACE_ALIGN * WORKSPACE_ALIGN;
    if len == 0 { (0, 0) } else { (aligned, len) }
}

/// Descriptors and the heuristic's best algorithm for one shape.
fn lt_plan(
    handle: lt_sys::cublasLtHandle_t,
    (m, n, k, ws_len): (usize, usize, usize, usize),
    tf32: bool,
) -> Result<LtPlan, CudaError> {
    use cudarc::cublaslt::result as r;
    let compute = if tf32 {
        lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
    } else {
        lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    };
    let f32_type = lt_sys::cudaDataType::CUDA_R_32F;
    let desc =
        r::create_matmul_desc(compute, f32_type).map_err(|e| lt("cublasLtMatmulDescCreate", e))?;
    let mut plan = LtPlan {
        key: (m, n, k, ws_len),
        desc,
        a: std::ptr::null_mut(),
        b: std::ptr::null_mut(),
        c: std::ptr::null_mut(),
        // SAFETY: the algorithm is plain data, filled in by the heuristic
        // below before any use.
        algo: unsafe { std::mem::zeroed() },
    };
    let result = (|| -> Result<(), CudaError> {
        // cublasOperation_t: CUBLAS_OP_T = 1.
        let transpose: i32 = 1;
        // SAFETY: a live descriptor; the attribute is an i32 as documented.
        unsafe {
            r::set_matmul_desc_attribute(
                plan.desc,
                lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                (&transpose as *const i32).cast(),
                size_of::<i32>(),
            )
        }
        .map_err(|e| lt("cublasLtMatmulDescSetAttribute", e))?;
        let layout = |rows: usize, cols: usize, ld: usize| {
            r::create_matrix_layout(f32_type, rows as u64, cols as u64, ld as i64)
                .map_err(|e| lt("cublasLtMatrixLayoutCreate", e))
        };
        // A: Wᵀ stored column-major (k × m, ld k), used transposed.
        plan.a = layout(k, m, k)?;
        // B: xᵀ (k × n, ld k). C = D: outᵀ (m × n, ld m).
        plan.b = layout(k, n, k)?;
        plan.c = layout(m, n, m)?;
        let pref = r::create_matmul_pref().map_err(|e| lt("cublasLtMatmulPreferenceCreate", e))?;
        let ws = ws_len as u64;
        // SAFETY: live descriptors and preference; the attribute is a u64.
        let heuristic = unsafe {
            r::set_matmul_pref_attribute(
                pref,
                lt_sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&ws as *const u64).cast(),
                size_of::<u64>(),
            )
            .and_then(|()| {
                r::get_matmul_algo_heuristic(
                    handle, plan.desc, plan.a, plan.b, plan.c, plan.c, pref,
                )
            })
        };
        // SAFETY: created above, used no more.
        let _ = unsafe { r::destroy_matmul_pref(pref) };
        let heuristic = heuristic.map_err(|_| CudaError::Shape {
            m,
            n,
            k,
            reason: "cuBLASLt's heuristic found no algorithm within the workspace",
        })?;
        plan.algo = heuristic.algo;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(plan),
        Err(e) => {
            // Layouts not yet made are null; destroying null is a no-op.
            plan.destroy();
            Err(e)
        }
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
        match &mut self.handle {
            Handle::Cublas(handle) => {
                // SAFETY: the handle is live and destroyed once.
                let _ = unsafe { cudarc::cublas::result::destroy_handle(*handle) };
            }
            Handle::Lt { handle, plans } => {
                for plan in plans.drain(..) {
                    plan.destroy();
                }
                // SAFETY: the handle is live and destroyed once.
                let _ = unsafe { cudarc::cublaslt::result::destroy_handle(*handle) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::marker::PhantomData;

    use super::*;

    fn view(ptr: u64, len: usize) -> DeviceSlice<'static, u8> {
        DeviceSlice::raw(ptr, len, PhantomData)
    }

    #[test]
    fn the_workspace_is_cut_to_256_byte_alignment() {
        assert_eq!(aligned_workspace(&view(4096, 1024)), (4096, 1024));
        assert_eq!(aligned_workspace(&view(4096 + 64, 1024)), (4096 + 256, 768));
        assert_eq!(aligned_workspace(&view(4096 + 64, 1000)), (4096 + 256, 768));
        assert_eq!(aligned_workspace(&view(4096 + 64, 700)), (4096 + 256, 256));
        assert_eq!(aligned_workspace(&view(4096 + 64, 100)), (0, 0));
    }
}
