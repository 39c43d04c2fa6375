//! The CUDA backend, where a device answers (otherwise it prints why it
//! skipped and measures nothing):
//!
//! - `cuda/matmul/<library>/<m>x<n>x<k>`: one `out (m × n) = x (m × k) ·
//!   Wᵀ` product (`m` tokens, `n` output features) through cuBLAS and through cuBLASLt, workspace leased from
//!   a `planned` device pool, TF32 off; the decode shapes (n = 1) and the
//!   prefill shapes of `synth-15m`. Timed as `iters` products queued back
//!   to back and one stream synchronisation.
//! - `cuda/decode/<model>/<mode>`: decode tokens per second (throughput in
//!   elements = tokens) of `synth-15m` and stories260K (when `../shared`
//!   has it), `planned` pool, logits copied back each token: eager with
//!   cuBLAS, eager with cuBLASLt, and graph-replayed with cuBLAS.
//!
//! `cargo bench -p scratchpad-benches --bench cuda`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad::{Phase, Pool};
use scratchpad::{PoolOptions, tag};
use scratchpad_cuda::{
    DEFAULT_WORKSPACE_BYTES, DeviceBuffer, DeviceSlice, Gpu, Matmul, gpu_required, may_skip,
};
use scratchpad_model::{BOS, Checkpoint, CudaBackend, CudaOptions, Transformer, synthetic};

/// The device; `None` after saying why when there is no driver or device
/// (and `SCRATCHPAD_REQUIRE_GPU` is unset). A GPU that is there but cannot
/// be used stops the bench.
fn gpu() -> Option<Arc<Gpu>> {
    match Gpu::new(0) {
        Ok(gpu) => Some(Arc::new(gpu)),
        Err(e) if may_skip(&e, gpu_required()) => {
            eprintln!("skipped: the CUDA benches: {e}");
            None
        }
        Err(e) => panic!("the GPU cannot be used: {e}"),
    }
}

fn matmul(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mem = gpu.memory();
    let pool = Pool::with_strategy("planned", mem.clone(), &PoolOptions::default()).unwrap();
    let mut group = c.benchmark_group("cuda/matmul");
    for (m, n, k) in [
        (1, 288, 288),
        (1, 768, 288),
        (1, 32000, 288),
        (128, 288, 288),
        (128, 768, 288),
        (128, 288, 768),
        (512, 32000, 288),
    ] {
        let x = DeviceBuffer::<f32>::zeros(mem, m * k).unwrap();
        let w = DeviceBuffer::<f32>::zeros(mem, n * k).unwrap();
        let mut out = DeviceBuffer::<f32>::zeros(mem, m * n).unwrap();
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for library in Matmul::ALL {
            let mut blas = gpu.blas(library, false, DEFAULT_WORKSPACE_BYTES).unwrap();
            group.bench_function(
                BenchmarkId::new(library.name(), format!("{m}x{n}x{k}")),
                |b| {
                    b.iter_custom(|iters| {
                        pool.step(Phase::Decode, |s| {
                            let ws = s
                                .acquire::<u8>(
                                    blas.workspace_lease_bytes(),
                                    tag!("bench.workspace"),
                                )
                                .unwrap();
                            let ws = DeviceSlice::of(&ws);
                            gpu.synchronize().unwrap();
                            let start = Instant::now();
                            for _ in 0..iters {
                                blas.project(&x.view(), &w.view(), k, &mut out.view_mut(), &ws)
                                    .unwrap();
                            }
                            gpu.synchronize().unwrap();
                            start.elapsed()
                        })
                    });
                },
            );
        }
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    let mut models = vec![(
        "synth-15m".to_string(),
        synthetic::checkpoint("synth-15m", synthetic::DEFAULT_SEED).unwrap(),
    )];
    // `$SCRATCHPAD_TEST_DATA` when the bench binary was carried elsewhere.
    let data = std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
        std::path::PathBuf::from,
    );
    let stories = data.join("models/stories260K.bin");
    match Checkpoint::open(&stories) {
        Ok(model) => models.push(("stories260K".to_string(), model)),
        Err(_) => eprintln!("skipped: stories260K ({} not found)", stories.display()),
    }
    let mut group = c.benchmark_group("cuda/decode");
    group.throughput(Throughput::Elements(1));
    for (name, model) in &models {
        let seq_len = model.config().seq_len;
        for (mode, matmul, graph) in [
            ("eager-cublas", Matmul::Cublas, false),
            ("eager-cublaslt", Matmul::CublasLt, false),
            ("graph-cublas", Matmul::Cublas, true),
        ] {
            let pool =
                Pool::with_strategy("planned", gpu.memory().clone(), &PoolOptions::default())
                    .unwrap();
            let options = CudaOptions {
                matmul,
                graph,
                ..CudaOptions::default()
            };
            let mut t =
                Transformer::new(CudaBackend::new(gpu.clone(), model, pool, options).unwrap());
            t.reserve(1, seq_len - 1).unwrap();
            let mut pos = 0;
            group.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter(|| {
                    black_box(t.forward(BOS, pos).unwrap());
                    pos = (pos + 1) % seq_len;
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, matmul, decode);
criterion_main!(benches);
