//! The test data (`testdata/`), and building models.

use std::path::PathBuf;
use std::sync::Arc;

use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{Checkpoint, CpuBackend, Transformer};

/// The test data: `$SCRATCHPAD_TEST_DATA` when set (a test binary carried
/// to another machine), else the repository's `testdata/`.
pub fn data_root() -> PathBuf {
    std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    )
}

/// `<test data>/<rel>`. A missing file fails the test: the data ships with
/// the repository.
pub fn data(rel: &str) -> PathBuf {
    let path = data_root().join(rel);
    assert!(
        path.exists(),
        "test data {} is missing (it ships in testdata/; see testdata/README.md)",
        path.display()
    );
    path
}

/// stories260K.
pub fn stories() -> Arc<Checkpoint> {
    Arc::new(Checkpoint::open(&data("models/stories260K.bin")).unwrap())
}

/// A transformer over `model` with strategy `pool`.
pub fn transformer(model: &Arc<Checkpoint>, pool: &str) -> Transformer<CpuBackend> {
    let pool = Pool::with_strategy(pool, HostMemory, &PoolOptions::default()).unwrap();
    Transformer::new(CpuBackend::new(model.clone(), pool))
}

/// Runs `f` in a rayon pool of `threads` threads.
pub fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// The 513 greedy token ids of the reference run.
pub fn reference_tokens() -> Vec<u32> {
    std::fs::read_to_string(data("reference/stories260K_greedy512.tokens.txt"))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

/// The reference run's logits (512 × vocab, row = position).
pub fn reference_logits() -> Vec<f32> {
    std::fs::read(data("reference/stories260K_greedy512.logits.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}
