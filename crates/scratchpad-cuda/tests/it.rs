//! Tests of the CUDA backend. Compiling every kernel with NVRTC needs no GPU
//! (CI installs NVRTC and sets `SCRATCHPAD_REQUIRE_NVRTC=1`, under which a
//! missing NVRTC fails instead of skipping); the pools on device memory need
//! a device. Without a driver or a device they say why they skipped; a GPU
//! that is there but cannot be used (a library missing or of the wrong
//! version, a kernel that does not load) fails them, and under
//! `SCRATCHPAD_REQUIRE_GPU=1` nothing skips. The tests that use the device
//! take it one at a time: a capture on its stream must not record another
//! test's work.

use std::io::Write;
use std::sync::{Arc, MutexGuard};

use scratchpad::{Phase, Pool, PoolOptions, tag};
use scratchpad_cuda::{
    CudaError, CudaMemory, DEFAULT_ARCH, DEFAULT_WORKSPACE_BYTES, DeviceBuffer, DeviceSlice, Gpu,
    Matmul, SOURCES, compile_all, context, gpu_for_tests,
};

fn skip(why: &str) {
    // Straight to the stderr handle: the harness captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The device, one test at a time; see [`gpu_for_tests`].
fn gpu() -> Option<(MutexGuard<'static, ()>, Arc<Gpu>)> {
    gpu_for_tests()
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    let required = std::env::var("SCRATCHPAD_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let compiled = match compile_all(DEFAULT_ARCH) {
        Err(CudaError::NoNvrtc) if !required => {
            return skip(
                "NVRTC not found (install the nvidia-cuda-nvrtc wheel and put its lib folder on LD_LIBRARY_PATH)",
            );
        }
        Err(e) => panic!("{e}"),
        Ok(compiled) => compiled,
    };
    assert_eq!(compiled.len(), SOURCES.len());
    for ((name, ptx), (_, _, entries)) in compiled.iter().zip(SOURCES) {
        let text = ptx.to_src();
        assert!(
            text.contains(".target sm_90"),
            "{name}: compiled for another architecture"
        );
        for entry in entries {
            assert!(
                text.contains(&format!(".entry {entry}(")),
                "{name}: no entry point `{entry}` in the PTX"
            );
        }
    }
}

#[test]
fn every_strategy_runs_on_device_memory() {
    let Some((_guard, gpu)) = gpu() else { return };
    let memory = gpu.memory().clone();
    for name in scratchpad::device_strategy_names() {
        let pool = Pool::with_strategy(name, memory.clone(), &PoolOptions::default()).unwrap();
        pool.set_verify(true);
        let step = |pool: &Pool<CudaMemory>| {
            pool.step(Phase::Decode, |s| {
                let mut scores = s.acquire::<f32>(6 * 256, tag!("cuda.scores")).unwrap();
                let hidden = s.acquire_zeroed::<f32>(768, tag!("cuda.hidden")).unwrap();
                assert_eq!(scores.view().len(), 6 * 256);
                assert_ne!(scores.address(), hidden.address());
            })
        };
        step(&pool);
        let before = pool.stats();
        for _ in 0..5 {
            step(&pool);
        }
        let window = pool.stats().since(&before);
        if name.starts_with("noop") {
            assert!(window.backing_allocations > 0);
        } else {
            assert_eq!(
                window.backing_allocations, 0,
                "{name} allocates device memory after warm-up"
            );
        }
        assert_eq!(pool.stats().live_bytes, 0);
    }
}

#[test]
fn without_a_device_the_error_says_so() {
    match context(0) {
        Ok(_) => skip("a CUDA device is present; nothing to check"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                e.is_absence() || matches!(e, CudaError::DriverTooOld { .. }),
                "an unexpected error without a device: {message}"
            );
            assert!(message.contains("CUDA"), "{message}");
        }
    }
}

#[test]
fn matmul_libraries_parse_by_name() {
    for m in Matmul::ALL {
        assert_eq!(m.name().parse::<Matmul>().unwrap(), m);
    }
    let err = "mkl".parse::<Matmul>().unwrap_err();
    assert!(err.contains("cublas or cublaslt"), "{err}");
}

#[test]
fn device_buffers_round_trip() {
    let Some((_guard, gpu)) = gpu() else { return };
    let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
    let mut buffer = DeviceBuffer::from_host(gpu.memory(), &data).unwrap();
    let mut back = vec![0.0f32; 1000];
    buffer.download(0, &mut back).unwrap();
    assert_eq!(back, data);
    buffer.upload(10, &[-1.0, -2.0]).unwrap();
    let mut part = [0.0f32; 4];
    buffer.download(9, &mut part).unwrap();
    assert_eq!(part, [4.5, -1.0, -2.0, 6.5]);
    let zeros = DeviceBuffer::<i32>::zeros(gpu.memory(), 17).unwrap();
    let mut out = [1i32; 17];
    zeros.download(0, &mut out).unwrap();
    assert_eq!(out, [0; 17]);
    assert!(
        DeviceBuffer::<f32>::zeros(gpu.memory(), 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_captured_graph_replays_with_new_device_values() {
    let Some((_guard, gpu)) = gpu() else { return };
    let k = gpu.kernels();
    let mut x = DeviceBuffer::from_host(gpu.memory(), &[1.0f32; 300]).unwrap();
    let mut delta = DeviceBuffer::from_host(gpu.memory(), &[2.0f32; 300]).unwrap();
    gpu.synchronize().unwrap();
    gpu.begin_capture().unwrap();
    let queued = k.residual_add(&mut x.view_mut(), &delta.view());
    let (graph, report) = gpu.end_capture();
    queued.unwrap();
    let graph = graph.unwrap();
    assert!(report.is_clean(), "{report:?}");
    let mut out = vec![0.0f32; 300];
    // Capturing ran nothing.
    x.download(0, &mut out).unwrap();
    assert!(out.iter().all(|&v| v == 1.0));
    graph.replay().unwrap();
    delta.upload(0, &[0.25f32; 300]).unwrap();
    graph.replay().unwrap();
    x.download(0, &mut out).unwrap();
    assert!(out.iter().all(|&v| v == 3.25), "{:?}", &out[..4]);
}

#[test]
fn both_matmul_handles_open() {
    let Some((_guard, gpu)) = gpu() else { return };
    for m in Matmul::ALL {
        let blas = gpu.blas(m, false, DEFAULT_WORKSPACE_BYTES).unwrap();
        assert_eq!(blas.kind(), m);
        assert!(!blas.tf32());
    }
}

#[test]
fn zeroed_leases_download_as_zeros_on_recycled_memory() {
    let Some((_guard, gpu)) = gpu() else { return };
    let memory = gpu.memory();
    for name in scratchpad::device_strategy_names() {
        let pool = Pool::with_strategy(name, memory.clone(), &PoolOptions::default()).unwrap();
        for round in 0..3 {
            pool.step(Phase::Decode, |s| {
                let dirty = s.acquire::<f32>(1000, tag!("cuda.dirty")).unwrap();
                let mut buffer = DeviceBuffer::from_host(memory, &vec![7.0f32; 1000]).unwrap();
                gpu.kernels()
                    .residual_add(&mut DeviceSlice::of(&dirty), &buffer.view_mut())
                    .unwrap();
                drop(dirty);
                let zeroed = s.acquire_zeroed::<f32>(1000, tag!("cuda.zeroed")).unwrap();
                let out = download_lease(&gpu, &DeviceSlice::of(&zeroed));
                assert!(
                    out.iter().all(|&v| v == 0.0),
                    "{name}, round {round}: a zeroed lease holds {:?}",
                    &out[..4]
                );
            });
        }
    }
}

/// A lease's contents on the host (through a copy into a buffer).
fn download_lease(gpu: &Gpu, lease: &DeviceSlice<'_, f32>) -> Vec<f32> {
    let mut buffer = DeviceBuffer::<f32>::zeros(gpu.memory(), lease.len()).unwrap();
    gpu.kernels()
        .residual_add(&mut buffer.view_mut(), lease)
        .unwrap();
    let mut out = vec![0.0; lease.len()];
    buffer.download(0, &mut out).unwrap();
    out
}

#[test]
fn frees_and_allocations_during_a_capture_are_reported_not_fatal() {
    let Some((_guard, gpu)) = gpu() else { return };
    let memory = gpu.memory();
    // noop frees every lease at release and allocates every acquire.
    let pool = Pool::with_strategy("noop", memory.clone(), &PoolOptions::default()).unwrap();
    let held = pool.scope(|s| {
        let lease = s.acquire::<f32>(256, tag!("cuda.before")).unwrap();
        gpu.synchronize().unwrap();
        gpu.begin_capture().unwrap();
        // Released during the capture: the free is deferred.
        drop(lease);
        // Refused during the capture, with an error instead of a raw
        // driver failure.
        let refused = s.acquire::<f32>(256, tag!("cuda.during")).map(|_| ());
        let (graph, report) = gpu.end_capture();
        (refused.map_err(|e| e.to_string()), graph.is_ok(), report)
    });
    let (refused, _, report) = held;
    let message = refused.unwrap_err();
    assert!(message.contains("captured into a graph"), "{message}");
    assert_eq!(report.refused_allocations, 1, "{report:?}");
    assert_eq!(report.deferred_frees, 1, "{report:?}");
    assert!(!report.is_clean());
    // The deferred block was freed once the capture ended, and the device
    // still works.
    gpu.synchronize().unwrap();
    assert_eq!(pool.stats().live_bytes, 0);
    let buffer = DeviceBuffer::from_host(memory, &[1.0f32; 4]).unwrap();
    let mut out = [0.0f32; 4];
    buffer.download(0, &mut out).unwrap();
    assert_eq!(out, [1.0; 4]);
}
