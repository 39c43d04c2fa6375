//! Decode throughput of `synth-15m` (and stories260K when `../shared` has
//! it) on one and two threads, beside the read-bandwidth ceiling measured in
//! the same run: a decode token reads every weight once (60.8 MB for
//! `synth-15m`), so the ceiling in tokens per second is bandwidth / bytes.
//!
//! `cargo bench -p scratchpad-benches --bench decode`
//!
//! Ids: `decode/<model>/<threads>t` (one token through the model at
//! positions cycling over the context, `planned` pool, on a `Team` as the
//! CLI runs it); throughput in bytes of weights. Printed first: a read of a
//! separate 60.8 MB buffer (for reference), then the ratios that count:
//! reads of the model's own weights and decode tokens alternated for 100
//! rounds (best of each), synth-15m built in memory and opened from a
//! checkpoint file, at one thread, at two in a rayon pool and at two on a
//! team. At two, each matrix is read in two halves at once by the same
//! workers, as the gemv splits its rows. Alternated, since this VM's
//! bandwidth drifts between seconds.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_benches::{floats, huge_page_floats, thread_pool};
use scratchpad_cpu::{CEILING_BYTES, Isa, Team, read_bandwidth, run_parts, sum, sum_prefetched};
use scratchpad_model::{BOS, Checkpoint, CpuBackend, Transformer, synthetic};

/// Times `iters` decode tokens (or returns the best single token of
/// `best_of` when given) on a worker of a pool of `threads`, with a team
/// of `threads` installed, as the CLI runs them.
fn decode_time(
    model: &Arc<Checkpoint>,
    threads: usize,
    iters: u64,
    best_of: Option<usize>,
) -> Duration {
    let model = model.clone();
    thread_pool(threads).install(move || {
        let team = Team::new(threads).expect("a team");
        team.install(|| {
            let scratch =
                Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap();
            let seq_len = model.config().seq_len;
            let mut t = Transformer::new(CpuBackend::new(model, scratch));
            t.reserve(1, seq_len - 1).unwrap();
            let mut pos = 0;
            let mut step = |t: &mut Transformer<CpuBackend>| {
                black_box(t.forward(BOS, pos).unwrap());
                pos = (pos + 1) % seq_len;
            };
            step(&mut t);
            match best_of {
                Some(n) => (0..n)
                    .map(|_| {
                        let start = Instant::now();
                        step(&mut t);
                        start.elapsed()
                    })
                    .min()
                    .unwrap(),
                None => {
                    let start = Instant::now();
                    for _ in 0..iters {
                        step(&mut t);
                    }
                    start.elapsed()
                }
            }
        })
    })
}

/// Reads every matrix a decode token reads, where the model keeps it, each
/// split into one contiguous part per worker as the gemv splits its rows;
/// each part plain or prefetched (the faster of the two is kept).
fn read_weights(model: &Checkpoint, threads: usize, isa: Isa, prefetch: bool) {
    let lay = model.layout();
    let f = model.tensors();
    for range in [
        &lay.wq, &lay.wk, &lay.wv, &lay.wo, &lay.w1, &lay.w2, &lay.w3, &lay.wcls,
    ] {
        split_read(&f[range.clone()], threads, isa, prefetch);
    }
}

/// `data` read in one contiguous part per worker.
fn split_read(data: &[f32], threads: usize, isa: Isa, prefetch: bool) {
    let part = data.len().div_ceil(threads);
    run_parts(threads, |p| {
        let chunk = &data[(p * part).min(data.len())..((p + 1) * part).min(data.len())];
        let read = if prefetch { sum_prefetched } else { sum };
        black_box(read(black_box(chunk), isa));
    });
}

/// The best of `rounds` reads of the model's weights (GB/s), and of
/// `rounds` decode tokens at positions `1..=rounds`: the best token and
/// the best rate at which a token streams what it must read (the weights,
/// and the KV cache up to its position: 1.4 MB more at position 100), in
/// GB/s. Alternated so that both see the same machine: this VM's
/// bandwidth drifts by a third between seconds.
///
/// The ceiling is the read of the weights themselves, where the model keeps
/// them, in the state a decode finds them in: each read follows a decode
/// token and each token follows a read. The VM has a 260 MiB L3, larger
/// than the 60.8 MB a token reads, so a ceiling read from a separate buffer
/// (or a token that follows such a read) measures where the bytes were
/// left, not the code: separate buffers asked for huge pages as the weights
/// are read at 13–27 GB/s while the weights read at 20–53 GB/s.
fn interleaved_best_of(
    model: &Arc<Checkpoint>,
    rounds: usize,
    threads: usize,
    team: bool,
) -> (f64, f64, Duration) {
    let model = model.clone();
    thread_pool(threads).install(move || {
        let team = team.then(|| Team::new(threads).expect("a team"));
        let in_team = |f: &mut dyn FnMut()| match &team {
            Some(team) => team.install(f),
            None => f(),
        };
        let isa = Isa::detect();
        let bytes = model.decode_weight_bytes();
        let scratch = Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap();
        let seq_len = model.config().seq_len;
        let mut t = Transformer::new(CpuBackend::new(model.clone(), scratch));
        t.reserve(1, seq_len - 1).unwrap();
        let c = *model.config();
        let (mut read_best, mut stream_best, mut decode_best) = (0.0f64, 0.0f64, Duration::MAX);
        for round in 0..rounds + 1 {
            // On the team when there is one, as the decode: its helpers
            // spin between jobs, and a read split by rayon would share the
            // cores with them. Plain and prefetched in turn.
            let prefetch = round % 2 == 1;
            let start = Instant::now();
            in_team(&mut || read_weights(&model, threads, isa, prefetch));
            let read = bytes as f64 / start.elapsed().as_secs_f64() / 1e9;
            let pos = round % seq_len;
            let start = Instant::now();
            in_team(&mut || {
                black_box(t.forward(BOS, pos).unwrap());
            });
            let decode = start.elapsed();
            let cache_bytes = 4 * 2 * c.n_layers * c.kv_dim() * (pos + 1);
            let stream = (bytes + cache_bytes) as f64 / decode.as_secs_f64() / 1e9;
            // Round 0 warms both up.
            if round > 0 {
                read_best = read_best.max(read);
                stream_best = stream_best.max(stream);
                decode_best = decode_best.min(decode);
            }
        }
        (read_best, stream_best, decode_best)
    })
}

/// synth-15m written to a checkpoint file and opened as `--model FILE`
/// opens it (copied into huge-page-advised anonymous memory).
fn synth_from_file() -> Arc<Checkpoint> {
    let config = synthetic::preset("synth-15m").unwrap();
    let bytes = synthetic::file_bytes(&config, synthetic::DEFAULT_SEED).unwrap();
    let path = std::env::temp_dir().join(format!(
        "scratchpad-decode-bench-{}.bin",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("the checkpoint written to the temporary folder");
    let model = Checkpoint::open(&path).map(Checkpoint::into_memory);
    let _ = std::fs::remove_file(&path);
    Arc::new(model.expect("the checkpoint just written"))
}

fn bench(c: &mut Criterion) {
    let isa = Isa::detect();
    let map = huge_page_floats(CEILING_BYTES / 4, |i| (i % 7) as f32);
    let ceiling = read_bandwidth(floats(&map), 30, isa);
    drop(map);
    let synth = Arc::new(synthetic::checkpoint("synth-15m", synthetic::DEFAULT_SEED).unwrap());
    let bytes = synth.decode_weight_bytes();
    eprintln!(
        "read ceiling ({isa}, best of 30 over 60.8 MB, before the benches): {:.2} GB/s = {:.0} tok/s for synth-15m ({bytes} bytes per token)",
        ceiling.gb_per_s(),
        ceiling.gb_per_s() * 1e9 / bytes as f64
    );
    let file = synth_from_file();
    for (source, model) in [("in memory", &synth), ("from a file", &file)] {
        for (threads, team) in [(1, false), (2, false), (2, true)] {
            let (read, stream, decode) = interleaved_best_of(model, 100, threads, team);
            let ceiling_tps = read * 1e9 / bytes as f64;
            let tps = 1.0 / decode.as_secs_f64();
            eprintln!(
                "interleaved, synth-15m {source}, {threads} thread(s){}, best of 100 each: read of the weights {read:.2} GB/s = {ceiling_tps:.0} tok/s; decode {tps:.0} tok/s ({:.0}% of it), streaming weights and cache at {stream:.2} GB/s = {:.0}% of the read",
                if team { " on a team" } else { " in rayon" },
                100.0 * tps / ceiling_tps,
                100.0 * stream / read,
            );
        }
    }

    let mut models = vec![("synth-15m", synth)];
    // `$SCRATCHPAD_TEST_DATA` when the bench binary was carried elsewhere.
    let data = std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
        std::path::PathBuf::from,
    );
    let stories = data.join("models/stories260K.bin");
    match Checkpoint::open(&stories) {
        Ok(model) => models.push(("stories260K", Arc::new(model))),
        Err(_) => eprintln!("skipped stories260K: {} not found", stories.display()),
    }
    let mut group = c.benchmark_group("decode");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, model) in &models {
        group.throughput(Throughput::Bytes(model.decode_weight_bytes() as u64));
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new(*name, format!("{threads}t")), |b| {
                b.iter_custom(|iters| decode_time(model, threads, iters, None))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
