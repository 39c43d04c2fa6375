//! The CUDA backend against the CPU: every kernel and both matrix-product
//! libraries on the same random inputs, the model's logits, stories260K
//! against the reference outputs, zero device allocations per decode token,
//! and graph replay against eager execution. Without a CUDA device (or
//! NVRTC, or cuBLAS) each test says why it skipped; the refusal of graph
//! capture on unstable strategies is checked everywhere.

use std::sync::{Arc, MutexGuard};

use scratchpad::{ExecutionContext, HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES};
use scratchpad_cpu::{
    Attention, Gemm, Gemv, Isa, Rope, add_residual, attention, embed, gemm, gemv, rms_norm, rope,
    swiglu,
};
use scratchpad_cuda::{
    CudaError, DeviceBuffer, Gpu, Heads, Matmul, WORKSPACE_ALIGN, gpu_for_tests,
};
use scratchpad_model::{
    BOS, Backend, Checkpoint, CpuBackend, CudaBackend, CudaOptions, ModelError, Transformer,
    argmax, check_graph_strategy, graph_strategies, synthetic,
};

use crate::support::{reference_logits, reference_tokens, stories, transformer};

/// The device, one test at a time; see [`gpu_for_tests`].
fn gpu() -> Option<(MutexGuard<'static, ()>, Arc<Gpu>)> {
    gpu_for_tests()
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.max(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn host_ctx() -> ExecutionContext<HostMemory> {
    ExecutionContext::new(
        Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default()).unwrap(),
    )
}

/// `|got - expected| <= 1e-5 · bound` element by element, `bound` being
/// Σ|terms| of each output (or an upper bound of it).
fn assert_within(what: &str, got: &[f32], expected: &[f32], bound: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    for (i, ((g, e), b)) in got.iter().zip(expected).zip(bound).enumerate() {
        let tol = 1e-5 * b.max(f32::MIN_POSITIVE);
        assert!(
            (g - e).abs() <= tol,
            "{what}: element {i}: GPU {g} vs CPU {e} (tolerance {tol:.3e})"
        );
    }
}

fn download(buffer: &DeviceBuffer<f32>) -> Vec<f32> {
    let mut out = vec![0.0; buffer.len()];
    buffer.download(0, &mut out).unwrap();
    out
}

#[test]
fn elementwise_kernels_match_the_cpu() {
    let Some((_guard, gpu)) = gpu() else { return };
    let (k, mem) = (gpu.kernels(), gpu.memory());
    for (rows, dim) in [(1, 288), (7, 288), (3, 65), (2, 768)] {
        let n = rows * dim;
        let (x, w, d) = (random(n, 1), random(dim, 2), random(n, 3));
        // RMSNorm.
        let mut expected = vec![0.0; n];
        rms_norm(&x, &w, &mut expected);
        let (xd, wd) = (
            DeviceBuffer::from_host(mem, &x).unwrap(),
            DeviceBuffer::from_host(mem, &w).unwrap(),
        );
        let mut out = DeviceBuffer::<f32>::zeros(mem, n).unwrap();
        k.rms_norm(&xd.view(), &wd.view(), &mut out.view_mut())
            .unwrap();
        let bound: Vec<f32> = expected.iter().map(|e| e.abs() * dim as f32).collect();
        assert_within(
            &format!("rms_norm {rows}×{dim}"),
            &download(&out),
            &expected,
            &bound,
        );
        // Residual add and SwiGLU.
        let mut sum = x.clone();
        add_residual(&mut sum, &d);
        let mut xd = xd;
        k.residual_add(
            &mut xd.view_mut(),
            &DeviceBuffer::from_host(mem, &d).unwrap().view(),
        )
        .unwrap();
        let bound: Vec<f32> = x.iter().zip(&d).map(|(a, b)| a.abs() + b.abs()).collect();
        assert_within("residual_add", &download(&xd), &sum, &bound);
        let mut gate = x.clone();
        swiglu(&mut gate, &d);
        let mut gd = DeviceBuffer::from_host(mem, &x).unwrap();
        k.swiglu(
            &mut gd.view_mut(),
            &DeviceBuffer::from_host(mem, &d).unwrap().view(),
        )
        .unwrap();
        let bound: Vec<f32> = gate.iter().map(|g| g.abs() * 4.0).collect();
        assert_within("swiglu", &download(&gd), &gate, &bound);
    }
    // Embedding rows by ids read on the device.
    let (vocab, dim) = (512, 64);
    let table = random(vocab * dim, 4);
    let tokens = [5i32, 0, 511, 17, 17];
    let mut expected = vec![0.0; tokens.len() * dim];
    for (row, &t) in expected.chunks_exact_mut(dim).zip(&tokens) {
        embed(&table, t as usize, row);
    }
    let mut out = DeviceBuffer::<f32>::zeros(mem, expected.len()).unwrap();
    k.embed(
        &DeviceBuffer::from_host(mem, &table).unwrap().view(),
        &DeviceBuffer::from_host(mem, &tokens).unwrap().view(),
        &mut out.view_mut(),
        dim,
    )
    .unwrap();
    assert_eq!(download(&out), expected, "embed copies rows exactly");
}

#[test]
fn rope_and_attention_match_the_cpu() {
    let Some((_guard, gpu)) = gpu() else { return };
    let (kern, mem) = (gpu.kernels(), gpu.memory());
    let ctx = host_ctx();
    // (heads, kv heads, head dim, queries, first position, cache rows)
    for (n_heads, n_kv_heads, head_dim, n, pos, seq_len) in [
        (6, 6, 48, 1, 0, 64),
        (6, 6, 48, 1, 37, 64),
        (8, 4, 8, 7, 20, 512),
        (8, 4, 8, 1, 511, 512),
        (4, 1, 16, 5, 0, 32),
    ] {
        let shape = Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        };
        let (dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);
        let label = format!("{n_heads}/{n_kv_heads}×{head_dim}, {n} queries at {pos}");
        let pos_d = DeviceBuffer::from_host(mem, &[pos as i32]).unwrap();
        // RoPE.
        let (q0, k0) = (random(n * dim, 5), random(n * kv_dim, 6));
        let (mut q, mut k) = (q0.clone(), k0.clone());
        let params = Rope {
            n_heads,
            n_kv_heads,
            head_dim,
            pos,
            n_tokens: n,
        };
        rope(&ctx, &params, &mut q, &mut k).unwrap();
        let (mut qd, mut kd) = (
            DeviceBuffer::from_host(mem, &q0).unwrap(),
            DeviceBuffer::from_host(mem, &k0).unwrap(),
        );
        let mut table = DeviceBuffer::<f32>::zeros(mem, n * head_dim).unwrap();
        kern.rope_table(&mut table.view_mut(), &pos_d.view(), head_dim, n)
            .unwrap();
        kern.apply_rope(
            &mut qd.view_mut(),
            &mut kd.view_mut(),
            &table.view(),
            &shape,
        )
        .unwrap();
        // Each output is a·cos ± b·sin: Σ|terms| ≤ |a| + |b| of its pair.
        let pair_bound = |v: &[f32]| -> Vec<f32> {
            v.chunks_exact(2)
                .flat_map(|p| [p[0].abs() + p[1].abs(); 2])
                .collect()
        };
        assert_within(
            &format!("rope q, {label}"),
            &download(&qd),
            &q,
            &pair_bound(&q0),
        );
        assert_within(
            &format!("rope k, {label}"),
            &download(&kd),
            &k,
            &pair_bound(&k0),
        );
        // KV append at `pos`, then attention over the cache.
        let (new_k, new_v) = (random(n * kv_dim, 7), random(n * kv_dim, 8));
        let mut keys = random(seq_len * kv_dim, 9);
        let mut values = random(seq_len * kv_dim, 10);
        let (mut keys_d, mut values_d) = (
            DeviceBuffer::from_host(mem, &keys).unwrap(),
            DeviceBuffer::from_host(mem, &values).unwrap(),
        );
        kern.kv_append(
            &mut keys_d.view_mut(),
            &mut values_d.view_mut(),
            &DeviceBuffer::from_host(mem, &new_k).unwrap().view(),
            &DeviceBuffer::from_host(mem, &new_v).unwrap().view(),
            &pos_d.view(),
            kv_dim,
        )
        .unwrap();
        keys[pos * kv_dim..(pos + n) * kv_dim].copy_from_slice(&new_k);
        values[pos * kv_dim..(pos + n) * kv_dim].copy_from_slice(&new_v);
        assert_eq!(download(&keys_d), keys, "kv_append keys, {label}");
        assert_eq!(download(&values_d), values, "kv_append values, {label}");

        let ctx_len = pos + n;
        let mut expected = vec![0.0; n * dim];
        attention(
            &ctx,
            &Attention {
                n_heads,
                n_kv_heads,
                head_dim,
                pos,
                n_queries: n,
                isa: Isa::detect(),
            },
            &q,
            &keys[..ctx_len * kv_dim],
            &values[..ctx_len * kv_dim],
            &mut expected,
        )
        .unwrap();
        // Σ|terms| of output (i, h, d): Σ_t p_t |v_td|, p from an f64 softmax.
        let mut bound = vec![0.0f32; n * dim];
        let group = n_heads / n_kv_heads;
        for i in 0..n {
            let len = pos + i + 1;
            for h in 0..n_heads {
                let qh = &q[(i * n_heads + h) * head_dim..][..head_dim];
                let kv = (h / group) * head_dim;
                let scores: Vec<f64> = (0..len)
                    .map(|t| {
                        let kt = &keys[t * kv_dim + kv..][..head_dim];
                        qh.iter().zip(kt).map(|(a, b)| (a * b) as f64).sum::<f64>()
                            / (head_dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::MIN, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for d in 0..head_dim {
                    bound[(i * n_heads + h) * head_dim + d] = (0..len)
                        .map(|t| {
                            (scores[t] - max).exp() / total
                                * values[t * kv_dim + kv + d].abs() as f64
                        })
                        .sum::<f64>()
                        as f32;
                }
            }
        }
        // The decode stride (the whole cache) and a block's (its last
        // position) must give the same result.
        for stride in [ctx_len, seq_len] {
            let mut out = DeviceBuffer::<f32>::zeros(mem, n * dim).unwrap();
            let mut scores = DeviceBuffer::<f32>::zeros(mem, n * n_heads * stride).unwrap();
            kern.attention(
                &DeviceBuffer::from_host(mem, &q).unwrap().view(),
                &keys_d.view(),
                &values_d.view(),
                &mut out.view_mut(),
                &mut scores.view_mut(),
                &pos_d.view(),
                &shape,
                stride,
            )
            .unwrap();
            assert_within(
                &format!("attention, {label}, stride {stride}"),
                &download(&out),
                &expected,
                &bound,
            );
        }
    }
}

#[test]
fn both_matmul_libraries_match_the_cpu() {
    let Some((_guard, gpu)) = gpu() else { return };
    let mem = gpu.memory();
    let ctx = host_ctx();
    let workspace = DeviceBuffer::<u8>::zeros(mem, (4 << 20) + WORKSPACE_ALIGN).unwrap();
    for matmul in Matmul::ALL {
        let mut blas = gpu.blas(matmul, false, 4 << 20).unwrap();
        for (n, m, k) in [
            (1, 288, 288),
            (1, 32000, 288),
            (7, 768, 288),
            (64, 288, 768),
            (5, 65, 63),
            (128, 512, 64),
        ] {
            let (x, w) = (random(n * k, 11), random(m * k, 12));
            let mut expected = vec![0.0; n * m];
            if n == 1 {
                gemv(
                    &ctx,
                    &Gemv {
                        m,
                        k,
                        isa: Isa::detect(),
                    },
                    &w,
                    &x,
                    &mut expected,
                );
            } else {
                gemm(
                    &ctx,
                    &Gemm {
                        m: n,
                        k,
                        n: m,
                        isa: Isa::detect(),
                    },
                    &x,
                    &w,
                    &mut expected,
                )
                .unwrap();
            }
            let bound: Vec<f32> = (0..n * m)
                .map(|i| {
                    let (row, col) = (i / m, i % m);
                    x[row * k..][..k]
                        .iter()
                        .zip(&w[col * k..][..k])
                        .map(|(a, b)| (a * b).abs())
                        .sum()
                })
                .collect();
            let mut out = DeviceBuffer::<f32>::zeros(mem, n * m).unwrap();
            blas.project(
                &DeviceBuffer::from_host(mem, &x).unwrap().view(),
                &DeviceBuffer::from_host(mem, &w).unwrap().view(),
                k,
                &mut out.view_mut(),
                &workspace.view(),
            )
            .unwrap();
            assert_within(
                &format!("{matmul} {n}×{k} · ({m}×{k})ᵀ"),
                &download(&out),
                &expected,
                &bound,
            );
        }
    }
}

/// A transformer on the GPU over `model` with `strategy`.
fn on_gpu(
    gpu: &Arc<Gpu>,
    model: &Checkpoint,
    strategy: &str,
    options: CudaOptions,
) -> Transformer<CudaBackend> {
    let pool =
        Pool::with_strategy(strategy, gpu.memory().clone(), &PoolOptions::default()).unwrap();
    Transformer::new(CudaBackend::new(gpu.clone(), model, pool, options).unwrap())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn stories260k_on_the_gpu_reproduces_the_reference() {
    let (model, tokens, logits) = (stories(), reference_tokens(), reference_logits());
    let Some((_guard, gpu)) = gpu() else { return };
    let vocab = model.config().vocab_size;
    for (matmul, graph) in [
        (Matmul::Cublas, false),
        (Matmul::CublasLt, false),
        (Matmul::Cublas, true),
    ] {
        let options = CudaOptions {
            matmul,
            graph,
            ..CudaOptions::default()
        };
        let mut t = on_gpu(&gpu, &model, "planned", options);
        t.reserve(1, 511).unwrap();
        let mut token = BOS;
        for pos in 0..512 {
            let out = t.forward(token, pos).unwrap();
            let expected = &logits[pos * vocab..(pos + 1) * vocab];
            let err = max_diff(out, expected);
            assert!(
                err <= 1e-4,
                "{matmul}, graph {graph}: position {pos}: logits off by {err:.2e}"
            );
            token = argmax(out);
            assert_eq!(
                token,
                tokens[pos + 1],
                "{matmul}, graph {graph}: greedy token at {pos}"
            );
        }
        if graph {
            let counters = t.backend().counters();
            assert_eq!(counters.captures, 1, "one capture serves every position");
            assert!(counters.replayed_decode_steps >= 510, "{counters:?}");
        }
    }
}

#[test]
fn logits_match_the_cpu_in_prefill_and_decode() {
    let model = Arc::new(synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap());
    let Some((_guard, gpu)) = gpu() else { return };
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 % 500) as u32 + 3).collect();
    let mut cpu = transformer(&model, "planned");
    for matmul in Matmul::ALL {
        let mut t = on_gpu(
            &gpu,
            &model,
            "best-fit",
            CudaOptions {
                matmul,
                ..CudaOptions::default()
            },
        );
        cpu.reset();
        let expected = cpu.prefill(&prompt, 0).unwrap().to_vec();
        let got = t.prefill(&prompt, 0).unwrap();
        let err = max_diff(got, &expected);
        assert!(err <= 1e-4, "{matmul}: prefill logits off by {err:.2e}");
        let mut token = argmax(&expected);
        for pos in prompt.len()..prompt.len() + 24 {
            let expected = cpu.forward(token, pos).unwrap().to_vec();
            let got = t.forward(token, pos).unwrap();
            let err = max_diff(got, &expected);
            assert!(
                err <= 1e-4,
                "{matmul}: decode at {pos}: logits off by {err:.2e}"
            );
            token = argmax(&expected);
        }
    }
}

#[test]
fn zero_device_allocations_per_decode_token_after_reserve() {
    let model = synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap();
    let Some((_guard, gpu)) = gpu() else { return };
    let prompt: Vec<u32> = (0..32).map(|i| (i * 13 % 500) as u32 + 3).collect();
    let steps = 48;
    for name in scratchpad::device_strategy_names() {
        for graph in [false, true] {
            if graph && scratchpad::stable_addresses(name) != Some(true) {
                continue;
            }
            let options = CudaOptions {
                graph,
                ..CudaOptions::default()
            };
            let mut t = on_gpu(&gpu, &model, name, options);
            t.reserve(prompt.len(), prompt.len() + steps - 1).unwrap();
            let mut token = argmax(t.prefill(&prompt, 0).unwrap());
            let before = t.backend().scratch().stats();
            for pos in prompt.len()..prompt.len() + steps {
                token = argmax(t.forward(token, pos).unwrap());
            }
            let window = t.backend().scratch().stats().since(&before);
            if name.starts_with("noop") {
                assert!(
                    window.backing_allocations >= steps as u64,
                    "noop allocates every lease"
                );
            } else {
                assert_eq!(
                    window.backing_allocations, 0,
                    "{name} (graph {graph}) allocates device memory per decode token"
                );
            }
        }
    }
}

#[test]
fn graph_replay_gives_the_eager_logits() {
    let model = synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap();
    let Some((_guard, gpu)) = gpu() else { return };
    let prompt: Vec<u32> = (0..16).map(|i| (i * 53 % 500) as u32 + 3).collect();
    for name in graph_strategies() {
        let mut eager = on_gpu(&gpu, &model, name, CudaOptions::default());
        let mut replayed = on_gpu(
            &gpu,
            &model,
            name,
            CudaOptions {
                graph: true,
                ..CudaOptions::default()
            },
        );
        for t in [&mut eager, &mut replayed] {
            t.reserve(prompt.len(), 127).unwrap();
        }
        let mut token = argmax(eager.prefill(&prompt, 0).unwrap());
        replayed.prefill(&prompt, 0).unwrap();
        for pos in prompt.len()..128 {
            let expected = eager.forward(token, pos).unwrap().to_vec();
            let got = replayed.forward(token, pos).unwrap();
            assert_eq!(
                got,
                &expected[..],
                "{name}: replayed logits differ at {pos}"
            );
            token = argmax(&expected);
        }
        let counters = replayed.backend().counters();
        assert_eq!(counters.captures, 1, "{name}: {counters:?}");
        assert_eq!(
            counters.replayed_decode_steps,
            128 - prompt.len() as u64,
            "{name}: {counters:?}"
        );
    }
}

#[test]
fn graph_capture_is_refused_on_unstable_strategies() {
    for name in STRATEGY_NAMES {
        let verdict = check_graph_strategy(name);
        if scratchpad::stable_addresses(name) == Some(true) {
            assert!(verdict.is_ok(), "{name}");
        } else {
            let message = verdict.unwrap_err().to_string();
            assert!(
                message.contains("stable after warm-up") && message.contains(name),
                "{message}"
            );
        }
    }
    // And the backend itself refuses, where a device can be had.
    let Some((_guard, gpu)) = gpu() else { return };
    let model = synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap();
    let pool =
        Pool::with_strategy("best-fit", gpu.memory().clone(), &PoolOptions::default()).unwrap();
    let options = CudaOptions {
        graph: true,
        ..CudaOptions::default()
    };
    assert!(matches!(
        CudaBackend::new(gpu.clone(), &model, pool, options),
        Err(ModelError::GraphNeedsStableAddresses { .. })
    ));
    let pool =
        Pool::with_strategy("planned", gpu.memory().clone(), &PoolOptions::default()).unwrap();
    let empty = CudaOptions {
        workspace_bytes: 0,
        ..CudaOptions::default()
    };
    assert!(matches!(
        CudaBackend::new(gpu.clone(), &model, pool, empty),
        Err(ModelError::Cuda(CudaError::Workspace { bytes: 0 }))
    ));
}

#[test]
fn the_gpu_leases_under_the_same_tags_as_the_cpu() {
    let model = Arc::new(synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap());
    let tags = |t: &dyn Backend| {
        let mut names: Vec<&str> = t.scratch().tag_stats().iter().map(|t| t.name).collect();
        names.sort_unstable();
        names
    };
    let mut cpu = transformer(&model, "planned");
    cpu.reserve(9, 40).unwrap();
    let mut expected: Vec<&str> = scratchpad_model::llama::TAGS.to_vec();
    expected.sort_unstable();
    assert_eq!(tags(cpu.backend()), expected, "the CPU's rows");
    let Some((_guard, gpu)) = gpu() else { return };
    let mut t = on_gpu(&gpu, &model, "planned", CudaOptions::default());
    t.reserve(9, 40).unwrap();
    assert_eq!(tags(t.backend()), expected, "the GPU's rows");
}

#[test]
fn positions_past_the_context_are_refused_before_any_kernel() {
    let model = Arc::new(synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap());
    let seq_len = model.config().seq_len;
    let mut cpu = CpuBackend::new(
        model.clone(),
        Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap(),
    );
    let refused = |b: &mut dyn Backend| {
        for (tokens, pos) in [
            (&[BOS][..], seq_len),
            (&[BOS, BOS][..], seq_len - 1),
            (&[BOS][..], usize::MAX),
        ] {
            let e = b.forward_block(tokens, pos).unwrap_err();
            assert!(matches!(e, ModelError::BeyondContext { .. }), "{e}");
        }
        let e = b.forward_block(&[u32::MAX], 0).unwrap_err();
        assert!(matches!(e, ModelError::InvalidToken { .. }), "{e}");
    };
    refused(&mut cpu);
    let Some((_guard, gpu)) = gpu() else { return };
    let pool =
        Pool::with_strategy("planned", gpu.memory().clone(), &PoolOptions::default()).unwrap();
    let mut cuda = CudaBackend::new(gpu.clone(), &model, pool, CudaOptions::default()).unwrap();
    refused(&mut cuda);
}

#[test]
fn a_pool_that_allocates_during_capture_falls_back_to_eager() {
    let model = synthetic::checkpoint("synth-260k", synthetic::DEFAULT_SEED).unwrap();
    let Some((_guard, gpu)) = gpu() else { return };
    let graph = CudaOptions {
        graph: true,
        ..CudaOptions::default()
    };
    let mut eager = on_gpu(&gpu, &model, "planned", CudaOptions::default());
    let mut replayed = on_gpu(&gpu, &model, "planned", graph);
    for t in [&mut eager, &mut replayed] {
        t.reserve(4, 63).unwrap();
    }
    let prompt = [BOS, 40, 41, 42];
    let mut token = argmax(eager.prefill(&prompt, 0).unwrap());
    replayed.prefill(&prompt, 0).unwrap();
    for pos in 4..32 {
        if pos == 4 {
            // The step to be captured (the second decode step; reserve ran
            // the first) is measured again: served by planned's fallback,
            // it allocates while the stream is being captured.
            replayed.backend().scratch().remeasure(Phase::Decode);
        }
        let expected = eager.forward(token, pos).unwrap().to_vec();
        let got = replayed.forward(token, pos).unwrap();
        assert_eq!(got, &expected[..], "logits at {pos}");
        token = argmax(&expected);
    }
    let counters = replayed.backend().counters();
    assert_eq!(counters.graph_fallbacks, 1, "{counters:?}");
    assert_eq!(counters.captures, 0, "{counters:?}");
    assert_eq!(counters.replayed_decode_steps, 0, "{counters:?}");
    assert_eq!(counters.eager_decode_steps, 1 + 28, "{counters:?}");
}
