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

/// `len` floats from `fill` in an anonymous map advised to use transparent
/// huge pages, the page policy the model's in-memory weights get, so that a
/// ceiling measured over it is measured the way the weights are read.
pub fn huge_page_floats(len: usize, fill: impl Fn(usize) -> f32) -> memmap2::MmapMut {
    let mut map = memmap2::MmapMut::map_anon((len * 4).max(1)).expect("an anonymous map");
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    let floats: &mut [f32] = bytemuck::cast_slice_mut(&mut map[..len * 4]);
    for (i, v) in floats.iter_mut().enumerate() {
        *v = fill(i);
    }
    map
}

/// The floats of a map made by [`huge_page_floats`].
pub fn floats(map: &memmap2::MmapMut) -> &[f32] {
    bytemuck::cast_slice(&map[..map.len() / 4 * 4])
}
