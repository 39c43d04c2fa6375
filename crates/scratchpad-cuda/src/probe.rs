//! Whether CUDA can be used here: the driver and NVRTC libraries are loaded
//! at run time (cudarc's dynamic loading), so the crate builds and its tests
//! run on machines without either; every entry point checks first and
//! reports what is missing instead of panicking.

use std::sync::Arc;

use cudarc::driver::CudaContext;

use crate::CudaError;

/// Whether the CUDA driver library can be loaded.
pub fn driver_available() -> bool {
    // SAFETY: `is_culib_present` only tries to load the library and reports
    // whether that worked; it calls nothing in it.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether the NVRTC library can be loaded.
pub fn nvrtc_available() -> bool {
    // SAFETY: as above, for libnvrtc.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// A context on device `ordinal`, or why there is none. Event tracking is
/// turned off before anything is allocated, as CUDA-graph capture needs.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, CudaError> {
    if !driver_available() {
        return Err(CudaError::NoDriver);
    }
    cudarc::driver::result::init()?;
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
