//! The `scratchpad` binary end to end: output, and a clear `error:` with a
//! non-zero exit (never a panic, never a half-written file) for every bad
//! input a user can cause.

mod support;

use support::{data, fails_with, fails_with_limits, scratchpad, temp_dir};

use std::path::Path;

#[test]
fn generate_runs_with_no_files() {
    let out = scratchpad(&[
        "generate",
        "--synthetic",
        "synth-260k",
        "-n",
        "20",
        "-s",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(!ids.is_empty() && ids.len() <= 20 && ids.iter().all(|&id| id < 512));
    assert!(String::from_utf8_lossy(&out.stderr).contains("achieved tok/s: "));
}

#[test]
fn generate_reproduces_run_c_on_stories260k() {
    let (model, tok, expected) = (
        data("models/stories260K.bin"),
        data("models/tok512.bin"),
        data("reference/stories260K_t0_n200_runc_stdout.txt"),
    );
    for pool in ["planned", "noop", "arena"] {
        let out = scratchpad(&[
            "generate",
            "--model",
            &model,
            "-z",
            &tok,
            "-t",
            "0",
            "-n",
            "200",
            "--pool",
            pool,
            "--threads",
            "2",
        ]);
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(&expected).unwrap(),
            "--pool {pool}"
        );
    }
}

#[test]
fn synth_writes_the_checkpoint_and_refuses_seed_zero() {
    let dir = temp_dir("synth");
    let path = dir.join("s.bin");
    let out = scratchpad(&["synth", "synth-260k", "--out", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], &64i32.to_le_bytes());
    let generated = scratchpad(&[
        "generate",
        "--model",
        path.to_str().unwrap(),
        "-n",
        "5",
        "-t",
        "0",
    ]);
    assert!(generated.status.success());
    fails_with(
        &[
            "synth",
            "synth-260k",
            "--out",
            dir.join("z.bin").to_str().unwrap(),
            "--seed",
            "0",
        ],
        "seed 0",
    );
    assert!(!dir.join("z.bin").exists());
    fails_with(
        &[
            "synth",
            "synth-7b",
            "--out",
            dir.join("y.bin").to_str().unwrap(),
        ],
        "unknown synthetic model `synth-7b`",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_out_leaves_nothing_behind() {
    let dir = temp_dir("unwritable");
    let target = dir.join("no-such-dir").join("s.bin");
    fails_with(
        &["synth", "synth-260k", "--out", target.to_str().unwrap()],
        "cannot write",
    );
    assert!(!target.exists());
    // A directory in the way: the rename fails, the temporary file is gone.
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    fails_with(
        &["synth", "synth-260k", "--out", blocked.to_str().unwrap()],
        "cannot write",
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["blocked"],
        "only the blocking directory remains"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = temp_dir("bad");
    fails_with(
        &["generate", "--model", "/nonexistent/model.bin"],
        "/nonexistent/model.bin",
    );
    let truncated = dir.join("truncated.bin");
    let out = scratchpad(&["synth", "synth-260k", "--out", truncated.to_str().unwrap()]);
    assert!(out.status.success());
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &["generate", "--model", truncated.to_str().unwrap()],
        "truncated checkpoint",
    );
    fails_with(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "--pool",
            "first-fit",
        ],
        "unknown pool strategy `first-fit`",
    );
    fails_with(
        &["generate", "--synthetic", "synth-260k", "-i", "hello"],
        "needs a tokenizer",
    );
    fails_with(
        &["generate", "--synthetic", "synth-260k", "-t", "-1"],
        "--temperature",
    );
    fails_with(
        &["generate", "--synthetic", "synth-260k", "-p", "1.5"],
        "--top-p",
    );
    fails_with(
        &["generate", "--synthetic", "synth-260k", "--threads", "0"],
        "--threads",
    );
    fails_with(
        &["generate", "--synthetic", "synth-9"],
        "unknown synthetic model",
    );
    // The CUDA options are checked before any device is opened.
    fails_with(
        &["generate", "--synthetic", "synth-260k", "--cuda-graph"],
        "apply to --device cuda only",
    );
    fails_with(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "--matmul",
            "cublaslt",
        ],
        "apply to --device cuda only",
    );
    fails_with(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--matmul",
            "mkl",
        ],
        "unknown matmul library",
    );
    for args in [
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--cuda-graph",
            "--pool",
            "best-fit",
        ][..],
        &[
            "compare",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--cuda-graph",
        ][..],
        &[
            "compare",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--cuda-graph",
            "--pools",
            "planned,size-classed",
        ][..],
    ] {
        fails_with(args, "stable after warm-up");
    }
    // The malloc baselines are host memory; refused for a device up front.
    fails_with(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "--device",
            "cuda",
            "--pool",
            "noop@jemalloc",
        ],
        "host memory only",
    );
    // Without a device, one clear error (with one, tests/cuda.rs runs it).
    if scratchpad_cuda::context(0).is_err_and(|e| e.is_absence()) {
        for command in ["generate", "compare", "trace"] {
            let mut args = vec![command, "--synthetic", "synth-260k", "--device", "cuda"];
            if command == "trace" {
                args.extend(["--out", "never-written.json"]);
            }
            fails_with(&args, "no CUDA device");
        }
        assert!(!std::path::Path::new("never-written.json").exists());
    }
    let tok32k = data("models/tokenizer.bin");
    fails_with(
        &["generate", "--synthetic", "synth-260k", "-z", &tok32k],
        "tokenizer of another model",
    );
    {
        let (model, tok) = (data("models/stories260K.bin"), data("models/tok512.bin"));
        let long = "once upon a time ".repeat(200);
        fails_with(
            &["generate", "--model", &model, "-z", &tok, "-i", &long],
            "the prompt is",
        );
        // 96 KB: refused from its length alone, before the (quadratic)
        // encoding would run.
        let huge = "once upon a time ".repeat(6000);
        fails_with(
            &["generate", "--model", &model, "-z", &tok, "-i", &huge],
            "at least",
        );
    }
    std::fs::remove_dir_all(Path::new(&dir)).unwrap();
}

#[test]
fn sampling_never_panics_and_nan_weights_give_a_clear_error() {
    // Extreme temperatures on a sound model: greedy in the limit, or the
    // most probable token when the nucleus comes out empty.
    for extra in [&["-t", "1e-40"][..], &["-t", "1e30", "-p", "0.0001"][..]] {
        let mut args = vec![
            "generate",
            "--synthetic",
            "synth-260k",
            "-n",
            "8",
            "-s",
            "3",
        ];
        args.extend(extra);
        let out = scratchpad(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A checkpoint whose weights are all NaN.
    let dir = temp_dir("nan-weights");
    let path = dir.join("nan.bin");
    let out = scratchpad(&["synth", "synth-260k", "--out", path.to_str().unwrap()]);
    assert!(out.status.success());
    let mut bytes = std::fs::read(&path).unwrap();
    for float in bytes[28..].chunks_exact_mut(4) {
        float.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    for t in ["0", "0.8"] {
        fails_with(
            &[
                "generate",
                "--model",
                path.to_str().unwrap(),
                "-n",
                "4",
                "-t",
                t,
            ],
            "no finite value",
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn limits_are_refused_with_a_message() {
    // Far more threads than cores.
    fails_with_limits(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "-n",
            "2",
            "--threads",
            "1000000",
        ],
        "more than 4 times",
    );
    // Device files are refused after their first bytes, never read whole.
    fails_with(
        &[
            "generate",
            "--synthetic",
            "synth-260k",
            "-z",
            "/dev/zero",
            "-n",
            "2",
        ],
        "/dev/zero: a device, FIFO or socket, not a file",
    );
    fails_with(&["replay", "/dev/zero"], "not a JSON trace");
    // An unknown SIMD path is an error naming the accepted ones.
    let out = std::process::Command::new(support::binary())
        .args(["generate", "--synthetic", "synth-260k", "-n", "2"])
        .env("SCRATCHPAD_SIMD", "avx-512")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("avx512, avx2 or portable"), "{stderr}");
}

#[test]
fn a_small_checkpoint_with_a_huge_context_is_refused_before_allocating() {
    // 20,000 layers of a 262,000-position context with tiny matrices: a
    // few MB of file whose KV cache would be tens of GB.
    let dir = temp_dir("bomb");
    let path = dir.join("bomb.bin");
    let config = scratchpad_model::Config {
        dim: 2,
        hidden_dim: 2,
        n_layers: 20_000,
        n_heads: 1,
        n_kv_heads: 1,
        vocab_size: 3,
        seq_len: 262_000,
        shared_classifier: true,
    };
    std::fs::write(
        &path,
        scratchpad_model::synthetic::file_bytes(&config, 3).unwrap(),
    )
    .unwrap();
    let model = path.to_str().unwrap();
    fails_with_limits(
        &["generate", "--model", model, "-n", "2"],
        "KV cache 83840000000 bytes",
    );
    fails_with(
        &[
            "compare",
            "--model",
            model,
            "--prompt-tokens",
            "2",
            "--steps",
            "2",
        ],
        "more than the budget",
    );
    // Within an explicit budget it would run; the check is the budget's.
    let figures = scratchpad_model::RunMemory::of(&config, 0).unwrap();
    assert_eq!(figures.kv_cache, 2 * 20_000 * 262_000 * 2 * 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
