//! Whether CUDA can be used here, and whether it is the CUDA this build
//! needs: the driver and libraries are loaded at run time (cudarc's dynamic
//! loading), so the crate builds and its tests run on machines without
//! them; every entry point checks first and reports what is missing or of
//! the wrong version instead of panicking.
//!
//! Tests and benches decide with [`may_skip`] whether an error may turn
//! into "skipped": only a missing driver or device may, and nothing may
//! under `SCRATCHPAD_REQUIRE_GPU=1`.

use std::sync::Arc;

use cudarc::driver::{CudaContext, sys};

use crate::CudaError;

/// The CUDA major version this build is made for (cudarc's `cuda-13000`
/// bindings, NVRTC 13's PTX): the driver must support it and every library
/// must be of it.
pub const CUDA_MAJOR: i32 = 13;

/// Set to `1` to make every GPU test, bench and check fail instead of
/// skip when the GPU cannot be used, whatever the reason.
pub const REQUIRE_GPU_ENV: &str = "SCRATCHPAD_REQUIRE_GPU";

/// Whether the CUDA driver library can be loaded.
pub fn driver_available() -> bool {
    // SAFETY: `is_culib_present` only tries to load the library and reports
    // whether that worked; it calls nothing in it.
    unsafe { sys::is_culib_present() }
}

/// Whether the NVRTC library can be loaded.
pub fn nvrtc_available() -> bool {
    // SAFETY: as above, for libnvrtc.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// True when `SCRATCHPAD_REQUIRE_GPU` is set to anything but `0` or empty.
pub fn gpu_required() -> bool {
    std::env::var(REQUIRE_GPU_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

impl CudaError {
    /// True when the error says there is no GPU here at all (no driver
    /// library, or a driver that reports no device), as opposed to a GPU
    /// that is there but cannot be used (a library missing or of the wrong
    /// version, a kernel that does not load, any other driver error).
    pub fn is_absence(&self) -> bool {
        matches!(self, CudaError::NoDriver | CudaError::NoDevice { .. })
    }
}

/// Whether a test or bench that could not get a GPU because of `error`
/// may report "skipped" and pass: only when the GPU is absent and
/// `strict` (normally [`gpu_required`]) is off.
pub fn may_skip(error: &CudaError, strict: bool) -> bool {
    !strict && error.is_absence()
}

/// The driver's CUDA version as `major * 1000 + minor * 10`.
pub fn driver_version() -> Result<i32, CudaError> {
    if !driver_available() {
        return Err(CudaError::NoDriver);
    }
    let mut version = 0;
    // SAFETY: writes one int; callable before `cuInit`.
    let status = unsafe { sys::cuDriverGetVersion(&mut version) };
    status.result()?;
    Ok(version)
}

/// `Ok` when a driver of CUDA version `version` (`cuDriverGetVersion`'s
/// encoding) can load what this build compiles.
pub fn check_driver_version(version: i32) -> Result<(), CudaError> {
    if version / 1000 >= CUDA_MAJOR {
        Ok(())
    } else {
        Err(CudaError::DriverTooOld {
            found_major: version / 1000,
            found_minor: version % 1000 / 10,
            needed_major: CUDA_MAJOR,
        })
    }
}

/// `Ok` when `library`'s major version `found` is this build's.
pub fn check_library_major(library: &'static str, found: i32) -> Result<(), CudaError> {
    if found == CUDA_MAJOR {
        Ok(())
    } else {
        Err(CudaError::LibraryVersion {
            library,
            found,
            needed: CUDA_MAJOR,
        })
    }
}

/// NVRTC's major version, checked against this build's.
pub fn check_nvrtc() -> Result<(), CudaError> {
    if !nvrtc_available() {
        return Err(CudaError::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(CudaError::NoNvrtc);
    }
    check_library_major("NVRTC (libnvrtc)", major)
}

/// A context on device `ordinal`, or why there is none: no driver, a
/// driver too old for this build, no such device, or another driver
/// error. Event tracking is turned off before anything is allocated, as
/// CUDA-graph capture needs.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, CudaError> {
    check_driver_version(driver_version()?)?;
    match cudarc::driver::result::init() {
        Ok(()) => {}
        // cuInit's own word for a machine whose driver sees no GPU.
        Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_NO_DEVICE => {
            return Err(CudaError::NoDevice { ordinal, found: 0 });
        }
        Err(e) => return Err(e.into()),
    }
    let found = cudarc::driver::result::device::get_count()? as usize;
    if ordinal >= found {
        return Err(CudaError::NoDevice { ordinal, found });
    }
    let ctx = CudaContext::new(ordinal)?;
    // SAFETY: nothing has been allocated on this context yet, so no slice
    // relies on the event tracking being turned off here.
    unsafe { ctx.disable_event_tracking() };
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absence_may_skip_and_never_in_strict_mode() {
        let absent = [
            CudaError::NoDriver,
            CudaError::NoDevice {
                ordinal: 0,
                found: 0,
            },
        ];
        for e in &absent {
            assert!(may_skip(e, false), "{e}");
            assert!(!may_skip(e, true), "{e} in strict mode");
        }
        let broken = [
            CudaError::NoNvrtc,
            CudaError::NoBlas { library: "cuBLAS" },
            CudaError::DriverTooOld {
                found_major: 12,
                found_minor: 4,
                needed_major: 13,
            },
            CudaError::LibraryVersion {
                library: "cuBLAS",
                found: 12,
                needed: 13,
            },
            CudaError::Compile {
                source_name: "rope.cu",
                log: String::new(),
            },
            CudaError::Driver(cudarc::driver::DriverError(
                sys::cudaError_enum::CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
            )),
            CudaError::Driver(cudarc::driver::DriverError(
                sys::cudaError_enum::CUDA_ERROR_NOT_INITIALIZED,
            )),
        ];
        for e in &broken {
            assert!(!may_skip(e, false), "{e} must fail, not skip");
        }
    }

    #[test]
    fn drivers_before_cuda_13_are_refused_with_what_is_needed() {
        assert!(check_driver_version(13000).is_ok());
        assert!(check_driver_version(13020).is_ok());
        let e = check_driver_version(12080).unwrap_err().to_string();
        assert!(
            e.contains("CUDA 12.8") && e.contains("needs CUDA 13.0"),
            "{e}"
        );
    }

    #[test]
    fn libraries_of_another_major_version_are_refused() {
        assert!(check_library_major("cuBLAS (libcublas)", 13).is_ok());
        let e = check_library_major("cuBLAS (libcublas)", 12)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cuBLAS (libcublas) 12.x") && e.contains("CUDA 13"),
            "{e}"
        );
    }
}
