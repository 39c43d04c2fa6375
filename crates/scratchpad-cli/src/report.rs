//! What `compare` writes besides the table: the progress bar, the JSON
//! document and the SVG charts.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotters::prelude::*;
use scratchpad::{PoolOptions, TagStats};
use scratchpad_cpu::Isa;
use scratchpad_model::Checkpoint;
use serde_json::{Value, json};

use crate::compare::{ChurnRow, StrategyReport, Workload};

/// A progress bar on stderr, hidden when stderr is not a terminal. It is
/// only advanced between runs, outside the counted windows.
pub fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} runs {msg}") {
        bar.set_style(style);
    }
    bar
}

fn settings(model: &Arc<Checkpoint>, threads: usize, options: &PoolOptions) -> Value {
    let c = model.config();
    json!({
        "model": model.source().display().to_string(),
        "config": {
            "dim": c.dim, "hidden_dim": c.hidden_dim, "n_layers": c.n_layers, "n_heads": c.n_heads,
            "n_kv_heads": c.n_kv_heads, "vocab_size": c.vocab_size, "seq_len": c.seq_len,
        },
        "threads": threads,
        "cpu_features": Isa::supported().map(|i| i.to_string()).collect::<Vec<_>>(),
        "simd_path": Isa::detect().to_string(),
        "pool_options": {
            "max_retained_bytes": options.max_retained_bytes,
            "per_class_cap": options.per_class_cap,
        },
        "versions": { "scratchpad": env!("CARGO_PKG_VERSION") },
    })
}

/// The JSON of a default comparison.
pub fn compare_json(
    w: &Workload,
    threads: usize,
    repeat: usize,
    reports: &[StrategyReport],
    tags: &[TagStats],
) -> Value {
    let mut s = settings(&w.model, threads, &w.options);
    s["prompt_tokens"] = json!(w.prompt.len());
    s["steps"] = json!(w.steps);
    s["repetitions"] = json!(repeat);
    json!({
        "format": "scratchpad-compare",
        "version": 1,
        "settings": s,
        "strategies": reports,
        "tags": tags,
    })
}

/// The JSON of the churn scenario.
pub fn churn_json(
    model: &Arc<Checkpoint>,
    threads: usize,
    options: &PoolOptions,
    rows: &[ChurnRow],
) -> Value {
    json!({
        "format": "scratchpad-compare",
        "version": 1,
        "scenario": "churn",
        "settings": settings(model, threads, options),
        "churn": rows,
    })
}

/// The four charts, one SVG each, one series per strategy.
pub fn plots(dir: &Path, reports: &[StrategyReport]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let phases =
        |f: &dyn Fn(&crate::compare::PhaseReport) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
            reports
                .iter()
                .map(|r| {
                    (
                        r.strategy.clone(),
                        vec![(0.0, f(&r.prefill)), (1.0, f(&r.decode))],
                    )
                })
                .collect()
        };
    chart(
        &dir.join("peak_vs_lower_bound.svg"),
        "peak reserved / lower bound (prefill, decode)",
        "ratio",
        &phases(&|p| p.peak_over_lower_bound),
    )?;
    chart(
        &dir.join("heap_allocations.svg"),
        "heap allocations per token (prefill, decode)",
        "allocations / token",
        &phases(&|p| p.heap_allocations_per_token),
    )?;
    chart(
        &dir.join("tokens_per_second.svg"),
        "tokens per second, median (prefill, decode)",
        "tok/s",
        &phases(&|p| p.tokens_per_second_median),
    )?;
    let latencies: Vec<(String, Vec<(f64, f64)>)> = reports
        .iter()
        .map(|r| {
            let points = r
                .decode
                .latencies_seconds
                .iter()
                .enumerate()
                .map(|(i, &s)| (i as f64, s * 1e3))
                .collect();
            (r.strategy.clone(), points)
        })
        .collect();
    chart(
        &dir.join("decode_latency.svg"),
        "decode latency per token over the run",
        "ms",
        &latencies,
    )
}

fn chart(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0f64, f64::max);
    let y_max = points.map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.1f64..x_max + 0.1, 0.0f64..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .y_desc(y_label)
        .draw()
        .map_err(|e| fail(&e))?;
    for (idx, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(idx).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
