//! Shared helpers of the criterion benches (one file per measured thing;
//! run them with `cargo bench -p scratchpad-benches`).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use scratchpad::{ExecutionContext, HostMemory, Pool, PoolOptions};

/// A rayon pool of `threads` threads.
pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

/// Times `iters` calls of `f` on a worker of `pool`, as the kernels run in
/// a generation loop: inside one `install`, with a context (planned pool)
/// made and warmed up by one untimed call on that thread.
pub fn time_in_pool(
    pool: &rayon::ThreadPool,
    iters: u64,
    mut f: impl FnMut(&ExecutionContext<HostMemory>) + Send,
) -> Duration {
    pool.install(|| {
        let scratch = Pool::with_strategy("planned", HostMemory, &PoolOptions::default())
            .expect("a known strategy");
        let ctx = ExecutionContext::new(scratch);
        f(&ctx);
        let start = Instant::now();
        for _ in 0..iters {
            f(&ctx);
        }
        start.elapsed()
    })
}
