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

use crate::memory::{bind, sync};
use crate::{CudaError, DeviceSlice, check_library_major};

/// cuBLAS and cuBLASLt want their workspace 256-byte aligned; pool leases
/// are 64-byte aligned, so a workspace lease carries this much slack, and
/// the library is given exactly the configured size from its first
/// 256-byte boundary on.
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

/// What a cuBLASLt plan depends on: the shape, the workspace size, and
/// the alignments of A (the weight), B (the input) and C = D (the output)
/// the heuristic was told to assume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlanKey {
    m: usize,
    n: usize,
    k: usize,
    workspace: usize,
    align: [u32; 3],
}

/// One cuBLASLt shape: descriptors and the chosen algorithm.
struct LtPlan {
    key: PlanKey,
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
    workspace_bytes: usize,
    stream: Arc<CudaStream>,
}

impl Blas {
    /// A handle of `kind` whose products run on `stream`, each given a
    /// workspace of exactly `workspace_bytes` (a non-zero multiple of
    /// [`WORKSPACE_ALIGN`]); `tf32` lets the library use TF32 tensor cores
    /// (off by default in the backend). The library must be of this
    /// build's CUDA major version.
    pub fn new(
        kind: Matmul,
        stream: Arc<CudaStream>,
        tf32: bool,
        workspace_bytes: usize,
    ) -> Result<Self, CudaError> {
        check_workspace_bytes(workspace_bytes)?;
        bind(stream.context())?;
        let handle = match kind {
            Matmul::Cublas => {
                if !cublas_available() {
                    return Err(CudaError::NoBlas {
                        library: "cuBLAS (libcublas)",
                    });
                }
                let mut major = 0;
                // SAFETY: writes one int; needs no handle.
                blas("cublasGetProperty", unsafe {
                    blas_sys::cublasGetProperty(
                        blas_sys::libraryPropertyType_t::MAJOR_VERSION,
                        &mut major,
                    )
                })?;
                check_library_major("cuBLAS (libcublas)", major)?;
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
                let mut major = 0;
                // SAFETY: writes one int; needs no handle.
                let status = unsafe {
                    lt_sys::cublasLtGetProperty(
                        lt_sys::libraryPropertyType_t::MAJOR_VERSION,
                        &mut major,
                    )
                };
                if status != lt_sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
                    return Err(CudaError::BlasLt {
                        call: "cublasLtGetProperty",
                        status,
                    });
                }
                check_library_major("cuBLASLt (libcublasLt)", major)?;
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
            workspace_bytes,
            stream,
        })
    }

    /// Bytes of the workspace lease a product needs: the configured
    /// workspace and the slack to align it.
    pub fn workspace_lease_bytes(&self) -> usize {
        self.workspace_bytes + WORKSPACE_ALIGN
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

    /// `out (m × n) = x (m × k) · Wᵀ`, with `W (n × k)` row-major as in
    /// llama2.c and `m` the tokens, all f32; `workspace` is a lease of
    /// [`Blas::workspace_lease_bytes`] bytes, of which the library gets
    /// exactly the configured size.
    ///
    /// Row-major `W` is column-major `Wᵀ` (k × n, leading dimension k), so
    /// the column-major product is `outᵀ (n × m) = op_T(Wᵀ) · xᵀ`.
    ///
    /// # Panics
    ///
    /// When the lengths do not match the shape or the workspace lease is
    /// shorter than [`Blas::workspace_lease_bytes`].
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
        let (m, n) = (x.len() / k, w.len() / k);
        assert_eq!(out.len(), m * n, "project: out must hold m × n");
        if m == 0 || n == 0 {
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
        bind(self.stream.context())?;
        let (ws_ptr, ws_len) = aligned_workspace(workspace, self.workspace_bytes);
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
                            ni,
                            mi,
                            ki,
                            &alpha,
                            w.device_ptr() as *const f32,
                            ki,
                            x.device_ptr() as *const f32,
                            ki,
                            &beta,
                            out.device_ptr() as *mut f32,
                            ni,
                        ),
                    )
                }
            }
            Handle::Lt { handle, plans } => {
                let handle = *handle;
                let key = PlanKey {
                    m,
                    n,
                    k,
                    workspace: ws_len,
                    align: [
                        alignment(w.device_ptr()),
                        alignment(x.device_ptr()),
                        alignment(out.device_ptr()),
                    ],
                };
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

/// `Ok` for a workspace size the libraries accept as given: non-zero and
/// a multiple of [`WORKSPACE_ALIGN`].
pub fn check_workspace_bytes(bytes: usize) -> Result<(), CudaError> {
    if bytes > 0 && bytes.is_multiple_of(WORKSPACE_ALIGN) {
        Ok(())
    } else {
        Err(CudaError::Workspace { bytes })
    }
}

/// The workspace a product gets from its lease: `bytes` bytes from the
/// lease's first 256-byte boundary, `(address, bytes)`, the same size
/// whatever the lease's own alignment.
///
/// # Panics
///
/// When the lease cannot hold `bytes` from that boundary.
fn aligned_workspace(workspace: &DeviceSlice<'_, u8>, bytes: usize) -> (u64, usize) {
    let start = workspace.device_ptr();
    let aligned = start.next_multiple_of(WORKSPACE_ALIGN as u64);
    let skip = (aligned - start) as usize;
    assert!(
        skip + bytes <= workspace.len(),
        "project: a workspace lease of {} bytes at {start:#x} cannot hold {bytes} aligned bytes",
        workspace.len()
    );
    (aligned, bytes)
}

/// The alignment cuBLASLt may assume of a matrix at `ptr`: the largest
/// power of two dividing it, at most 256 bytes (leases are 64-byte
/// aligned, weight views only 4-byte).
fn alignment(ptr: u64) -> u32 {
    1u32 << ptr.trailing_zeros().min(8)
}

/// Descriptors and the heuristic's best algorithm for one shape.
fn lt_plan(
    handle: lt_sys::cublasLtHandle_t,
    key: PlanKey,
    tf32: bool,
) -> Result<LtPlan, CudaError> {
    let PlanKey {
        m,
        n,
        k,
        workspace: ws_len,
        align,
    } = key;
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
        key,
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
        // A: Wᵀ stored column-major (k × n, ld k), used transposed.
        plan.a = layout(k, n, k)?;
        // B: xᵀ (k × m, ld k). C = D: outᵀ (n × m, ld n).
        plan.b = layout(k, m, k)?;
        plan.c = layout(n, m, n)?;
        let pref = r::create_matmul_pref().map_err(|e| lt("cublasLtMatmulPreferenceCreate", e))?;
        use lt_sys::cublasLtMatmulPreferenceAttributes_t as Pref;
        let ws = ws_len as u64;
        let [a_align, b_align, c_align] = align;
        let set_u32 = |attribute: Pref, value: u32| {
            // SAFETY: a live preference; alignment attributes are u32.
            unsafe {
                r::set_matmul_pref_attribute(
                    pref,
                    attribute,
                    (&value as *const u32).cast(),
                    size_of::<u32>(),
                )
            }
        };
        // SAFETY: live descriptors and preference; the workspace attribute
        // is a u64.
        let heuristic = unsafe {
            r::set_matmul_pref_attribute(
                pref,
                Pref::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&ws as *const u64).cast(),
                size_of::<u64>(),
            )
            .and_then(|()| set_u32(Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, a_align))
            .and_then(|()| set_u32(Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, b_align))
            .and_then(|()| set_u32(Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, c_align))
            .and_then(|()| set_u32(Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, c_align))
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
        // Products may still run with the handle: wait for them first.
        self.stream.context().record_err(sync(&self.stream));
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
    fn the_workspace_is_exactly_the_configured_size_whatever_the_lease_alignment() {
        let bytes = 4096;
        for offset in [0, 64, 128, 192] {
            let lease = view(1 << 20 | offset, bytes + WORKSPACE_ALIGN);
            let (ptr, len) = aligned_workspace(&lease, bytes);
            assert_eq!(len, bytes, "lease at +{offset}");
            assert_eq!(ptr % WORKSPACE_ALIGN as u64, 0);
            assert!(ptr + len as u64 <= lease.device_ptr() + lease.len() as u64);
        }
    }

    #[test]
    #[should_panic(expected = "cannot hold")]
    fn a_short_workspace_lease_is_a_bug() {
        aligned_workspace(&view(4096 + 64, 4096), 4096);
    }

    #[test]
    fn workspace_sizes_must_be_whole_256_byte_units() {
        assert!(check_workspace_bytes(4 << 20).is_ok());
        for bad in [0, 100, (4 << 20) + 64] {
            let e = check_workspace_bytes(bad).unwrap_err().to_string();
            assert!(e.contains("multiple of 256"), "{e}");
        }
    }

    #[test]
    fn alignments_come_from_the_real_pointers() {
        assert_eq!(alignment(0x7f00_0000_0000), 256);
        assert_eq!(alignment(0x7f00_0000_0040), 64);
        assert_eq!(alignment(0x7f00_0000_0004), 4);
        assert_eq!(alignment(0x7f00_0000_0008 + 4 * 288), 8);
    }
}
