//! `--device cuda` end to end: generate reproduces run.c's text on
//! stories260K on the GPU (eager and graph-replayed, cuBLAS and cuBLASLt),
//! and compare reports device figures with zero device and host
//! allocations per decode token for the pooled strategies. Skipped, saying
//! why, without a driver or a device; failed when the GPU is there but
//! cannot be used, and under `SCRATCHPAD_REQUIRE_GPU=1`.

// Shared with the other CLI test binaries; not every helper is used here.
#[allow(dead_code)]
mod support;

use std::io::Write;

use support::{data, scratchpad};

fn device() -> bool {
    match scratchpad_cuda::Gpu::new(0) {
        Ok(_) => true,
        Err(e) if scratchpad_cuda::may_skip(&e, scratchpad_cuda::gpu_required()) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            false
        }
        Err(e) => panic!("the GPU cannot be used: {e}"),
    }
}

#[test]
fn generate_on_the_gpu_reproduces_run_c() {
    let (model, tok, expected) = (
        data("models/stories260K.bin"),
        data("models/tok512.bin"),
        data("reference/stories260K_t0_n200_runc_stdout.txt"),
    );
    if !device() {
        return;
    }
    let expected = std::fs::read_to_string(&expected).unwrap();
    for extra in [
        &["--pool", "planned"][..],
        &["--pool", "best-fit", "--matmul", "cublaslt"][..],
        &["--pool", "planned", "--cuda-graph"][..],
        &[
            "--pool",
            "workspace",
            "--cuda-graph",
            "--matmul",
            "cublaslt",
        ][..],
    ] {
        let mut args = vec![
            "generate", "--model", &model, "-z", &tok, "-t", "0", "-n", "200", "--device", "cuda",
        ];
        args.extend(extra);
        let out = scratchpad(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "{extra:?}"
        );
    }
}

#[test]
fn compare_on_the_gpu_reports_device_figures() {
    if !device() {
        return;
    }
    let dir = support::temp_dir("cuda-compare");
    let json = dir.join("compare.json");
    for extra in [
        &[][..],
        &["--cuda-graph", "--pools", "planned,arena,workspace"][..],
    ] {
        let mut args = vec![
            "compare",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--prompt-tokens",
            "32",
            "--steps",
            "16",
            "--repeat",
            "2",
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = scratchpad(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(
            report["settings"]["device"]
                .as_str()
                .unwrap()
                .starts_with("cuda")
        );
        for s in report["strategies"].as_array().unwrap() {
            let name = s["strategy"].as_str().unwrap();
            let decode = &s["decode"];
            assert!(
                decode["peak_reserved_bytes"].as_u64().unwrap()
                    >= decode["lower_bound_bytes"].as_u64().unwrap()
            );
            if !name.starts_with("noop") {
                assert_eq!(
                    decode["memory_allocations_per_token"], 0.0,
                    "{name}: device allocations"
                );
                assert_eq!(
                    decode["heap_allocations_per_token"], 0.0,
                    "{name}: host allocations"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
