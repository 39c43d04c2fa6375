//! Shared test support: seeded inputs, contexts, thread pools and the
//! tolerance check.

use scratchpad::{ExecutionContext, HostMemory, Pool, PoolOptions};

/// Awkward sizes: around SIMD widths and tile edges, and the model's own.
pub const SIZES: [usize; 6] = [1, 7, 63, 65, 288, 768];

/// Deterministic uniform values in [-1, 1).
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (r >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A context over a pooled strategy, with grant checking on.
pub fn context() -> ExecutionContext<HostMemory> {
    let pool = Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default()).unwrap();
    pool.set_verify(true);
    ExecutionContext::new(pool)
}

/// Runs `f` inside a rayon pool of one thread, one of two, and one of two
/// with a team of two installed (the kernels then split on the team).
pub fn with_threads(mut f: impl FnMut(usize) + Send) {
    for (threads, team) in [(1, false), (2, false), (2, true)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            if team {
                scratchpad_cpu::Team::new(threads)
                    .unwrap()
                    .install(|| f(threads));
            } else {
                f(threads);
            }
        });
    }
}

/// Checks `got[i]` against `(value, Σ|terms|)` in f64 within `1e-5 · Σ|terms|`
/// (plus a hair for sums of no terms). NaN fails.
pub fn check(what: &str, got: &[f32], reference: &[(f64, f64)]) {
    assert_eq!(got.len(), reference.len(), "{what}: length");
    for (i, (&g, &(value, magnitude))) in got.iter().zip(reference).enumerate() {
        let tolerance = 1e-5 * magnitude + 1e-30;
        let error = (g as f64 - value).abs();
        assert!(
            error <= tolerance,
            "{what}: element {i} is {g}, the reference {value} (error {error:.3e} > {tolerance:.3e})"
        );
    }
}
