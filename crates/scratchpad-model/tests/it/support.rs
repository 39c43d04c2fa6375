//! Locating `../shared`, and building models.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{Checkpoint, CpuBackend, Transformer};

/// The test data: `$SCRATCHPAD_TEST_DATA` when set (a test binary carried
/// to another machine), else `../shared` beside the repository.
pub fn data_root() -> PathBuf {
    std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    )
}

/// `<test data>/<rel>`, or `None` (after saying the test is skipped) when
/// it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = data_root().join(rel);
    if path.exists() {
        Some(path)
    } else {
        // Straight to the stderr handle: the test harness captures
        // `eprintln!` of passing tests, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {} not found (the shared test data lives at ../shared beside the repository)",
            path.display()
        );
        None
    }
}

/// stories260K, if present.
pub fn stories() -> Option<Arc<Checkpoint>> {
    Some(Arc::new(
        Checkpoint::open(&shared("models/stories260K.bin")?).unwrap(),
    ))
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

/// The 513 greedy token ids of the reference run, if present.
pub fn reference_tokens() -> Option<Vec<u32>> {
    let text =
        std::fs::read_to_string(shared("reference/stories260K_greedy512.tokens.txt")?).unwrap();
    Some(
        text.split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect(),
    )
}

/// The reference run's logits (512 × vocab, row = position), if present.
pub fn reference_logits() -> Option<Vec<f32>> {
    let bytes = std::fs::read(shared("reference/stories260K_greedy512.logits.f32")?).unwrap();
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
    )
}
