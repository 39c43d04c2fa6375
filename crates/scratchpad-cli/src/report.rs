//! What `compare` writes besides the table: the progress bar, the JSON
//! document and the SVG charts.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use scratchpad::{PoolOptions, TagStats};
use scratchpad_model::{Checkpoint, host_simd};
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
    let (cpu_features, simd_path) = host_simd();
    json!({
        "model": model.source().display().to_string(),
        "config": {
            "dim": c.dim, "hidden_dim": c.hidden_dim, "n_layers": c.n_layers, "n_heads": c.n_heads,
            "n_kv_heads": c.n_kv_heads, "vocab_size": c.vocab_size, "seq_len": c.seq_len,
        },
        "threads": threads,
        "cpu_features": cpu_features,
        "simd_path": simd_path,
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
    let per_phase = |f: &dyn Fn(&crate::compare::PhaseReport) -> f64| -> Vec<(String, [f64; 2])> {
        reports
            .iter()
            .map(|r| (r.strategy.clone(), [f(&r.prefill), f(&r.decode)]))
            .collect()
    };
    bars(
        &dir.join("peak_vs_lower_bound.svg"),
        "peak reserved / lower bound (log scale; 1 is the bound)",
        "ratio",
        &per_phase(&|p| p.peak_over_lower_bound),
        true,
    )?;
    bars(
        &dir.join("heap_allocations.svg"),
        "heap allocations per token",
        "allocations / token",
        &per_phase(&|p| p.heap_allocations_per_token),
        false,
    )?;
    bars(
        &dir.join("tokens_per_second.svg"),
        "tokens per second (median)",
        "tok/s",
        &per_phase(&|p| p.tokens_per_second_median),
        false,
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
    lines(
        &dir.join("decode_latency.svg"),
        "decode latency per token over the run",
        "ms",
        &latencies,
    )
}

fn drawing_error(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("drawing {}: {e}", path.display())
}

/// Grouped bars: prefill and decode, one bar (and one series) per strategy.
fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(String, [f64; 2])],
    log: bool,
) -> anyhow::Result<()> {
    let fail = drawing_error(path);
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70);
    if log {
        let chart = builder
            .build_cartesian_2d(-0.5f64..1.5, (0.5f64..y_max * 2.0).log_scale())
            .map_err(|e| fail(&e))?;
        draw_bars(chart, y_label, series, 0.5).map_err(|e| fail(&e))?;
    } else {
        let chart = builder
            .build_cartesian_2d(-0.5f64..1.5, 0.0f64..y_max * 1.1)
            .map_err(|e| fail(&e))?;
        draw_bars(chart, y_label, series, 0.0).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

/// The bars of [`bars`] on a linear or a logarithmic y axis whose bottom is
/// `floor`.
fn draw_bars<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    y_label: &str,
    series: &[(String, [f64; 2])],
    floor: f64,
) -> DrawResult<'a>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let phase_label = |x: &f64| match x.round() as i64 {
        0 => "prefill".to_owned(),
        1 => "decode".to_owned(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .x_labels(2)
        .x_label_formatter(&phase_label)
        .y_desc(y_label)
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (idx, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(idx).to_rgba();
        let rects = (0..2).map(|phase| {
            let x = phase as f64 - 0.4 + idx as f64 * width;
            Rectangle::new(
                [(x, floor), (x + width * 0.9, values[phase].max(floor))],
                color.filled(),
            )
        });
        chart
            .draw_series(rects)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(6))
            });
    }
    legend(&mut chart)
}

fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// One line per strategy.
fn lines(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let fail = drawing_error(path);
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
        .build_cartesian_2d(0.0f64..x_max, 0.0f64..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("decode step")
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
    legend(&mut chart).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
