//! `scratchpad compare`: the same workload under every strategy, strategies
//! interleaved across repetitions, with heap allocations (counted by the
//! binary's `CountingAlloc`), pool figures, page faults and timings per
//! phase; and the shape-churn scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scratchpad::{AllocCounts, CountingAlloc, Phase, PoolOptions, PoolStats, TagStats, Trace};
use scratchpad_model::{Backend, Checkpoint, Engine, Transformer, argmax};
use serde::Serialize;

/// What one run of the workload is.
pub struct Workload {
    pub model: Arc<Checkpoint>,
    pub prompt: Vec<u32>,
    pub steps: usize,
    pub options: PoolOptions,
    /// Test hook: one heap allocation inside every counted decode step.
    pub plant_allocation: bool,
}

/// One phase of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseRun {
    pub tokens: usize,
    pub heap_allocations: u64,
    pub heap_bytes: u64,
    pub acquires: u64,
    pub hits: u64,
    pub misses: u64,
    pub minor_faults: u64,
    /// Allocations the pool made from its memory (device allocations on
    /// CUDA, heap blocks on the host).
    pub memory_allocations: u64,
    /// The most the pool held that this phase's steps could use.
    pub peak_reserved_bytes: usize,
    /// The pool's whole footprint at its peak during the phase (with what
    /// only the other phase can use).
    pub footprint_bytes: usize,
    pub lower_bound_bytes: usize,
    /// At the phase's peak of live bytes: reserved minus live.
    pub fragmentation_bytes: usize,
    /// At the same moment: the largest extent one request could have been
    /// served from without the backing memory.
    pub largest_free_bytes: usize,
    pub retained_bytes_at_end: usize,
    pub evictions: u64,
    pub deviations: u64,
    pub seconds: f64,
    /// Decode only: seconds per token, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latencies: Vec<f64>,
}

/// One run of the workload under one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub prefill: PhaseRun,
    pub decode: PhaseRun,
    #[serde(skip)]
    pub generated: Vec<u32>,
    #[serde(skip)]
    pub tags: Vec<TagStats>,
}

/// Minor page faults of this process so far (from `/proc/self/stat`; 0
/// where that is not available). Reading it allocates: call it outside the
/// counted window.
pub fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses.
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn phase_run(
    tokens: usize,
    stats: &PoolStats,
    before: &PoolStats,
    allocs: AllocCounts,
    faults: u64,
    phase: Phase,
    elapsed: Duration,
) -> PhaseRun {
    let window = stats.since(before);
    PhaseRun {
        tokens,
        heap_allocations: allocs.allocations,
        heap_bytes: allocs.bytes,
        acquires: window.acquires,
        hits: window.hits,
        misses: window.misses,
        minor_faults: faults,
        memory_allocations: window.backing_allocations,
        peak_reserved_bytes: stats.peak_reserved_for(phase),
        footprint_bytes: stats.peak_reserved_bytes,
        lower_bound_bytes: stats.lower_bound(phase),
        fragmentation_bytes: stats.phase_fragmentation[phase.index()].reserved_minus_live_bytes,
        largest_free_bytes: stats.phase_fragmentation[phase.index()].largest_free_bytes,
        retained_bytes_at_end: stats.retained_bytes,
        evictions: window.evictions,
        deviations: window.deviations,
        seconds: elapsed.as_secs_f64(),
        latencies: Vec::new(),
    }
}

/// Runs the workload once under `strategy` in the current rayon pool: a
/// fresh pool, `reserve`, then the counted prefill and decode windows. With
/// `trace`, records the pool's events from before `reserve` on.
pub fn run_once(
    w: &Workload,
    strategy: &str,
    engine: &Engine,
    trace: Option<&mut Option<Trace>>,
) -> anyhow::Result<Run> {
    let t = engine.transformer(&w.model, strategy, &w.options)?;
    if trace.is_some() {
        t.backend().scratch().start_trace();
    }
    run_with(w, t, trace)
}

fn run_with(
    w: &Workload,
    mut t: Transformer,
    trace: Option<&mut Option<Trace>>,
) -> anyhow::Result<Run> {
    let (n_prompt, steps) = (w.prompt.len(), w.steps);
    t.reserve(n_prompt, n_prompt + steps - 1)?;
    let scratch = |t: &Transformer| t.backend().scratch().stats();
    let mut latencies = vec![0.0f64; steps];
    let mut generated = vec![0u32; steps];

    // Prefill: one block.
    t.backend().scratch().reset_peaks();
    let before = scratch(&t);
    let faults0 = minor_faults();
    let alloc0 = CountingAlloc::counts();
    let start = Instant::now();
    let mut token = argmax(t.prefill(&w.prompt, 0)?);
    let elapsed = start.elapsed();
    let allocs = CountingAlloc::counts().since(&alloc0);
    let faults = minor_faults() - faults0;
    let prefill = phase_run(
        n_prompt,
        &scratch(&t),
        &before,
        allocs,
        faults,
        Phase::Prefill,
        elapsed,
    );

    // Decode: `steps` greedy tokens, not stopping at BOS.
    t.backend().scratch().reset_peaks();
    let before = scratch(&t);
    let faults0 = minor_faults();
    let alloc0 = CountingAlloc::counts();
    let start = Instant::now();
    for (i, (latency, out)) in latencies.iter_mut().zip(generated.iter_mut()).enumerate() {
        let step_start = Instant::now();
        token = argmax(t.forward(token, n_prompt + i)?);
        if w.plant_allocation {
            std::hint::black_box(Box::new(i));
        }
        *latency = step_start.elapsed().as_secs_f64();
        *out = token;
    }
    let elapsed = start.elapsed();
    let allocs = CountingAlloc::counts().since(&alloc0);
    let faults = minor_faults() - faults0;
    let mut decode = phase_run(
        steps,
        &scratch(&t),
        &before,
        allocs,
        faults,
        Phase::Decode,
        elapsed,
    );
    decode.latencies = latencies;
    let tags = t.backend().scratch().tag_stats();
    if let Some(slot) = trace {
        *slot = t.backend().scratch().take_trace();
    }
    Ok(Run {
        prefill,
        decode,
        generated,
        tags,
    })
}

/// Figures of one strategy over its repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct StrategyReport {
    pub strategy: String,
    pub prefill: PhaseReport,
    pub decode: PhaseReport,
}

/// One phase over the repetitions: counts per token from the last
/// repetition (they are the same in every one once warm), timings over all.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    pub tokens: usize,
    pub heap_allocations_per_token: f64,
    pub heap_bytes_per_token: f64,
    pub acquires_per_token: f64,
    pub misses_per_token: f64,
    pub hit_rate: f64,
    pub minor_faults_per_token: f64,
    /// The pool's allocations from its memory per token (device
    /// allocations on CUDA).
    pub memory_allocations_per_token: f64,
    /// The most the pool held that this phase could use.
    pub peak_reserved_bytes: usize,
    /// The pool's whole footprint at its peak during the phase.
    pub footprint_bytes: usize,
    pub lower_bound_bytes: usize,
    pub peak_over_lower_bound: f64,
    /// At the phase's peak of live bytes: reserved minus live.
    pub fragmentation_bytes: usize,
    /// At the same moment: the largest free extent the strategy held.
    pub largest_free_bytes: usize,
    pub retained_bytes_at_end: usize,
    pub evictions: u64,
    pub deviations: u64,
    pub tokens_per_second_median: f64,
    pub tokens_per_second_min: f64,
    pub tokens_per_second_max: f64,
    /// Decode: per-token latency percentiles; prefill: latency of the call.
    pub latency_p50_seconds: f64,
    pub latency_p99_seconds: f64,
    /// Decode latency per token of the last repetition, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latencies_seconds: Vec<f64>,
    /// Decode latency of every token of every repetition, sorted (the
    /// report's distribution).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_distribution_seconds: Vec<f64>,
    pub repetitions: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn phase_report(runs: &[&PhaseRun], decode: bool) -> PhaseReport {
    let last = runs.last().expect("at least one repetition");
    let per = |v: u64| v as f64 / last.tokens.max(1) as f64;
    let mut rates: Vec<f64> = runs
        .iter()
        .map(|r| r.tokens as f64 / r.seconds.max(1e-12))
        .collect();
    rates.sort_by(f64::total_cmp);
    let mut latencies: Vec<f64> = if decode {
        runs.iter()
            .flat_map(|r| r.latencies.iter().copied())
            .collect()
    } else {
        runs.iter().map(|r| r.seconds).collect()
    };
    latencies.sort_by(f64::total_cmp);
    PhaseReport {
        tokens: last.tokens,
        heap_allocations_per_token: per(last.heap_allocations),
        heap_bytes_per_token: per(last.heap_bytes),
        acquires_per_token: per(last.acquires),
        misses_per_token: per(last.misses),
        hit_rate: if last.acquires == 0 {
            1.0
        } else {
            last.hits as f64 / last.acquires as f64
        },
        minor_faults_per_token: per(last.minor_faults),
        memory_allocations_per_token: per(last.memory_allocations),
        peak_reserved_bytes: last.peak_reserved_bytes,
        footprint_bytes: last.footprint_bytes,
        lower_bound_bytes: last.lower_bound_bytes,
        // 0 where nothing was live: no ratio exists (printed as `-`).
        peak_over_lower_bound: if last.lower_bound_bytes == 0 {
            0.0
        } else {
            last.peak_reserved_bytes as f64 / last.lower_bound_bytes as f64
        },
        fragmentation_bytes: last.fragmentation_bytes,
        largest_free_bytes: last.largest_free_bytes,
        retained_bytes_at_end: last.retained_bytes_at_end,
        evictions: last.evictions,
        deviations: last.deviations,
        tokens_per_second_median: percentile(&rates, 0.5),
        tokens_per_second_min: rates[0],
        tokens_per_second_max: rates[rates.len() - 1],
        latency_p50_seconds: percentile(&latencies, 0.5),
        latency_p99_seconds: percentile(&latencies, 0.99),
        latencies_seconds: if decode {
            last.latencies.clone()
        } else {
            Vec::new()
        },
        latency_distribution_seconds: if decode { latencies } else { Vec::new() },
        repetitions: runs.len(),
    }
}

/// The reports of each strategy from its runs, checking that every run
/// produced the same tokens.
pub fn report(strategies: &[String], runs: &[Vec<Run>]) -> anyhow::Result<Vec<StrategyReport>> {
    let reference = &runs[0][0].generated;
    for (name, strategy_runs) in strategies.iter().zip(runs) {
        for (rep, run) in strategy_runs.iter().enumerate() {
            if &run.generated != reference {
                let at = run
                    .generated
                    .iter()
                    .zip(reference)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                bail!(
                    "strategy `{name}` (repetition {}) generated different tokens from `{}` (first difference at decode step {at}); a pool must never change results",
                    rep + 1,
                    strategies[0]
                );
            }
        }
    }
    Ok(strategies
        .iter()
        .zip(runs)
        .map(|(name, strategy_runs)| StrategyReport {
            strategy: name.clone(),
            prefill: phase_report(
                &strategy_runs.iter().map(|r| &r.prefill).collect::<Vec<_>>(),
                false,
            ),
            decode: phase_report(
                &strategy_runs.iter().map(|r| &r.decode).collect::<Vec<_>>(),
                true,
            ),
        })
        .collect())
}

fn bytes(n: usize) -> String {
    if n >= 10 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 10 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The terminal table.
/// A column of the table: a figure of one phase.
pub type Cell = fn(&PhaseReport) -> String;

/// The table's columns: (header, width, shown without --wide, cell). The
/// narrow table fits 120 columns; README.md explains every column.
pub fn columns() -> [(&'static str, usize, bool, Cell); 16] {
    [
        ("allocs/t", 9, true, |p| {
            format!("{:.2}", p.heap_allocations_per_token)
        }),
        ("bytes/t", 10, false, |p| {
            format!("{:.0}", p.heap_bytes_per_token)
        }),
        ("acq/t", 8, false, |p| {
            format!("{:.1}", p.acquires_per_token)
        }),
        ("hit%", 6, false, |p| format!("{:.1}", 100.0 * p.hit_rate)),
        ("faults/t", 8, false, |p| {
            format!("{:.2}", p.minor_faults_per_token)
        }),
        ("mem/t", 7, false, |p| {
            format!("{:.2}", p.memory_allocations_per_token)
        }),
        ("peak", 11, true, |p| bytes(p.peak_reserved_bytes)),
        ("lower bnd", 11, true, |p| bytes(p.lower_bound_bytes)),
        ("ratio", 7, true, |p| ratio(p.peak_over_lower_bound)),
        ("frag@peak", 11, true, |p| bytes(p.fragmentation_bytes)),
        ("max free", 11, false, |p| bytes(p.largest_free_bytes)),
        ("footprint", 11, false, |p| bytes(p.footprint_bytes)),
        ("retained", 11, false, |p| bytes(p.retained_bytes_at_end)),
        ("evict", 5, false, |p| p.evictions.to_string()),
        ("dev", 4, true, |p| p.deviations.to_string()),
        ("tok/s median (min-max)", 24, true, |p| {
            format!(
                "{} ({}-{})",
                rate(p.tokens_per_second_median),
                rate(p.tokens_per_second_min),
                rate(p.tokens_per_second_max)
            )
        }),
    ]
}

pub fn print_table(
    reports: &[StrategyReport],
    wide: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let columns = columns();
    for (phase, pick) in [("prefill", 0), ("decode", 1)] {
        let first = if pick == 0 {
            &reports[0].prefill
        } else {
            &reports[0].decode
        };
        writeln!(
            out,
            "\n{phase} ({} tokens per run; per-token figures divided by it)",
            first.tokens
        )?;
        let shown = || columns.iter().filter(|c| wide || c.2);
        let mut line = format!("{:<13}", "strategy");
        for (header, width, _, _) in shown() {
            line.push_str(&format!(" {header:>width$}"));
        }
        let last = if pick == 0 {
            "prefill call"
        } else {
            "p50 / p99 ms"
        };
        writeln!(out, "{line} {last:>15}")?;
        for r in reports {
            let p = if pick == 0 { &r.prefill } else { &r.decode };
            let latency = if pick == 0 {
                format!("{:.2} ms", p.latency_p50_seconds * 1e3)
            } else {
                format!(
                    "{:.3} / {:.3}",
                    p.latency_p50_seconds * 1e3,
                    p.latency_p99_seconds * 1e3
                )
            };
            let mut line = format!("{:<13}", r.strategy);
            for (_, width, _, cell) in shown() {
                line.push_str(&format!(" {:>width$}", cell(p)));
            }
            writeln!(out, "{line} {latency:>15}")?;
        }
    }
    Ok(())
}

/// A ratio of peak over bound, or `-` where the bound is zero (nothing
/// was live: no ratio exists).
pub fn ratio(r: f64) -> String {
    if r > 0.0 && r.is_finite() {
        format!("{r:.3}")
    } else {
        "-".to_string()
    }
}

/// Tokens per second: whole numbers from 100 up, one decimal below.
fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// The per-tag table: acquires per run and peak live bytes per call site
/// (the workload's, so the same under every strategy), then each
/// strategy's fragmentation at each phase's peak, beside the bound the
/// call sites add up to.
pub fn print_tags(
    tags: &[TagStats],
    reports: &[StrategyReport],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "\nper call site: acquires and the most bytes the tag held at once, over one whole run (reserve, prefill and every decode step; the same under every strategy)"
    )?;
    writeln!(out, "{:<24} {:>10} {:>14}", "tag", "acquires", "peak live")?;
    let mut tags = tags.to_vec();
    tags.sort_by_key(|t| std::cmp::Reverse(t.peak_live_bytes));
    for t in tags {
        writeln!(
            out,
            "{:<24} {:>10} {:>14}",
            t.name,
            t.acquires,
            bytes(t.peak_live_bytes)
        )?;
    }
    writeln!(
        out,
        "\nfragmentation at each phase's peak of live bytes: reserved - live / largest free extent"
    )?;
    writeln!(out, "{:<13} {:>25} {:>25}", "strategy", "prefill", "decode")?;
    for r in reports {
        let cell = |p: &PhaseReport| {
            format!(
                "{} / {}",
                bytes(p.fragmentation_bytes),
                bytes(p.largest_free_bytes)
            )
        };
        writeln!(
            out,
            "{:<13} {:>25} {:>25}",
            r.strategy,
            cell(&r.prefill),
            cell(&r.decode)
        )?;
    }
    Ok(())
}

/// Shape churn: prompts of varying lengths through one pool per strategy
/// without a fresh reserve; reserved and retained bytes after each.
#[derive(Clone, Debug, Serialize)]
pub struct ChurnRow {
    pub strategy: String,
    pub prompt_tokens: usize,
    pub reserved_bytes: usize,
    pub retained_bytes: usize,
    pub peak_reserved_bytes: usize,
    /// Plan deviations during this prompt (`planned`: none once the
    /// prompt's token bucket has been measured).
    pub deviations: u64,
}

pub fn churn(
    model: &Arc<Checkpoint>,
    strategies: &[String],
    options: &PoolOptions,
    lengths: &[usize],
    engine: &Engine,
) -> anyhow::Result<Vec<ChurnRow>> {
    let mut rows = Vec::new();
    for name in strategies {
        churn_one(
            engine.transformer(model, name, options)?,
            name,
            lengths,
            &mut rows,
        )?;
    }
    Ok(rows)
}

fn churn_one(
    mut t: Transformer,
    name: &str,
    lengths: &[usize],
    rows: &mut Vec<ChurnRow>,
) -> anyhow::Result<()> {
    let seq_len = t.config().seq_len;
    let vocab = t.config().vocab_size as u32;
    for &n in lengths {
        if n > seq_len {
            bail!("churn prompt of {n} tokens is beyond the model's context of {seq_len}");
        }
        // Ordinary tokens (past BOS and EOS) where the vocabulary has them.
        let prompt: Vec<u32> = (0..n as u32)
            .map(|i| {
                let spread = i.wrapping_mul(7919);
                if vocab > 3 {
                    3 + spread % (vocab - 3)
                } else {
                    spread % vocab
                }
            })
            .collect();
        let before = t.backend().scratch().stats();
        t.prefill(&prompt, 0)
            .with_context(|| format!("churn prefill of {n} tokens"))?;
        t.reset();
        let s = t.backend().scratch().stats();
        let deviations = s.deviations - before.deviations;
        rows.push(ChurnRow {
            strategy: name.to_string(),
            prompt_tokens: n,
            reserved_bytes: s.reserved_bytes,
            retained_bytes: s.retained_bytes,
            peak_reserved_bytes: s.peak_reserved_bytes,
            deviations,
        });
    }
    Ok(())
}

pub fn print_churn(
    rows: &[ChurnRow],
    lengths: &[usize],
    wide: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    // Narrow: reserved only (with nothing live after a prompt, retained
    // equals it for every pool); --wide adds retained.
    let width = if wide { 21 } else { 11 };
    writeln!(
        out,
        "\nshape churn: {} after each prompt, one pool per strategy, no reserve",
        if wide {
            "reserved / retained"
        } else {
            "reserved"
        }
    )?;
    write!(out, "{:<13}", "strategy")?;
    for n in lengths {
        write!(out, " {:>width$}", format!("{n} tokens"))?;
    }
    writeln!(out, " {:>11} {:>5}", "peak", "dev")?;
    for chunk in rows.chunks(lengths.len()) {
        write!(out, "{:<13}", chunk[0].strategy)?;
        for r in chunk {
            let cell = if wide {
                format!("{} / {}", bytes(r.reserved_bytes), bytes(r.retained_bytes))
            } else {
                bytes(r.reserved_bytes)
            };
            write!(out, " {cell:>width$}")?;
        }
        writeln!(
            out,
            " {:>11} {:>5}",
            bytes(chunk.last().map_or(0, |r| r.peak_reserved_bytes)),
            chunk.iter().map(|r| r.deviations).sum::<u64>()
        )?;
    }
    Ok(())
}
