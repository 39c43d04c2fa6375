//! Tests of the CUDA backend. Compiling every kernel with NVRTC needs no GPU
//! (CI installs NVRTC and sets `SCRATCHPAD_REQUIRE_NVRTC=1`, under which a
//! missing NVRTC fails instead of skipping); the pools on device memory need
//! a device and say why they skipped without one.

use std::io::Write;

use scratchpad::{Phase, Pool, PoolOptions, STRATEGY_NAMES, tag};
use scratchpad_cuda::{CudaError, CudaMemory, SOURCES, compile_all, context};

fn skip(why: &str) {
    // Straight to the stderr handle: the harness captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    let required = std::env::var("SCRATCHPAD_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let compiled = match compile_all() {
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
    let ctx = match context(0) {
        Ok(ctx) => ctx,
        Err(e) => return skip(&format!("{e}")),
    };
    let memory = CudaMemory::new(ctx.default_stream());
    for name in STRATEGY_NAMES {
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
        if name == "noop" {
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
                message.contains("no CUDA device") || message.contains("CUDA driver error"),
                "{message}"
            );
        }
    }
}
