//! What `compare` writes besides the table: the progress bar, the JSON
//! document, the SVG charts and the HTML report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scratchpad::{MemoryMap, OutputPath, PoolOptions, TagStats};
use scratchpad_model::{Checkpoint, host_simd};
use serde_json::{Value, json};

use crate::compare::{ChurnRow, PhaseReport, StrategyReport, Workload};
use crate::svg::{self, Scale, Series};

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

/// One chart of the report: its file name under `--plot`, the section
/// it belongs to, and the SVG.
pub struct Chart {
    pub file: String,
    pub section: &'static str,
    pub svg: String,
}

/// Memory maps of one strategy: the prefill step and the decode step.
pub struct StrategyMaps {
    pub strategy: String,
    pub prefill: MemoryMap,
    pub decode: MemoryMap,
}

/// One phase's figures of a strategy's report.
type Pick = fn(&StrategyReport) -> &PhaseReport;

/// Every chart of a comparison, in report order.
pub fn charts(reports: &[StrategyReport], maps: &[StrategyMaps]) -> Vec<Chart> {
    let mut out = Vec::new();
    let mut push =
        |file: String, section: &'static str, svg: String| out.push(Chart { file, section, svg });
    let phases: [(&str, Pick); 2] = [("prefill", |r| &r.prefill), ("decode", |r| &r.decode)];
    for (phase, pick) in phases {
        let rows: Vec<_> = reports
            .iter()
            .map(|r| {
                let p = pick(r);
                (
                    r.strategy.clone(),
                    p.tokens_per_second_median,
                    p.tokens_per_second_min,
                    p.tokens_per_second_max,
                )
            })
            .collect();
        push(
            format!("tokens_per_second_{phase}.svg"),
            "speed",
            svg::dot_whiskers(
                &format!(
                    "{phase}: tokens per second (dot: median; whiskers: min to max over {} repetitions)",
                    pick(&reports[0]).repetitions
                ),
                "tokens / second",
                &rows,
            ),
        );
    }
    let ecdf: Vec<Series> = reports
        .iter()
        .map(|r| {
            let sorted = &r.decode.latency_distribution_seconds;
            let n = sorted.len().max(1) as f64;
            Series {
                name: r.strategy.clone(),
                colour: svg::strategy_colour(&r.strategy).to_string(),
                points: sorted
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s * 1e3, (i + 1) as f64 / n))
                    .collect(),
                dashed: false,
                steps: true,
            }
        })
        .collect();
    push(
        "decode_latency.svg".into(),
        "speed",
        svg::lines(
            "decode: latency per token, distribution (share of tokens at or below)",
            "milliseconds per token",
            "share of tokens",
            &ecdf,
            &svg::number,
            &svg::number,
            Scale::Linear,
        ),
    );
    for (phase, pick) in phases {
        let ratio: Vec<_> = reports
            .iter()
            .map(|r| (r.strategy.clone(), pick(r).peak_over_lower_bound))
            .collect();
        push(
            format!("peak_vs_lower_bound_{phase}.svg"),
            "memory",
            svg::bars(
                &format!(
                    "{phase}: peak reserved / lower bound (log scale; 1 is the bound of {})",
                    svg::bytes(pick(&reports[0]).lower_bound_bytes as f64)
                ),
                "peak over lower bound (times)",
                &ratio,
                Scale::Log,
                &svg::number,
            ),
        );
    }
    for (phase, pick) in phases {
        let frag: Vec<_> = reports
            .iter()
            .map(|r| (r.strategy.clone(), pick(r).fragmentation_bytes as f64))
            .collect();
        push(
            format!("fragmentation_{phase}.svg"),
            "memory",
            svg::bars(
                &format!("{phase}: held beyond the live bytes at the phase's peak of live bytes"),
                "bytes reserved but not live",
                &frag,
                Scale::Bytes,
                &svg::bytes,
            ),
        );
    }
    for (phase, pick) in phases {
        let allocs: Vec<_> = reports
            .iter()
            .map(|r| (r.strategy.clone(), pick(r).heap_allocations_per_token))
            .collect();
        push(
            format!("heap_allocations_{phase}.svg"),
            "allocations",
            svg::bars(
                &format!("{phase}: heap allocations per token"),
                "heap allocations / token",
                &allocs,
                Scale::Linear,
                &svg::number,
            ),
        );
    }
    if let Some(first) = maps.first() {
        for (phase, pick, scale) in [
            (
                "prefill",
                (|m| &m.prefill) as fn(&StrategyMaps) -> &MemoryMap,
                Scale::Bytes,
            ),
            ("decode", |m| &m.decode, Scale::Log),
        ] {
            let map = pick(first);
            let mut series = vec![Series {
                name: "live (every strategy)".into(),
                colour: "#111".into(),
                points: map
                    .live_bytes
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (i as f64, *b as f64))
                    .collect(),
                dashed: false,
                steps: true,
            }];
            series.extend(maps.iter().map(|m| {
                Series {
                    name: format!("{} held", m.strategy),
                    colour: svg::strategy_colour(&m.strategy).to_string(),
                    points: pick(m)
                        .held_bytes
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (i as f64, *b as f64))
                        .collect(),
                    dashed: true,
                    steps: true,
                }
            }));
            push(
                format!("live_vs_held_{phase}.svg"),
                "maps",
                svg::lines(
                    &format!(
                        "{phase} step {}: bytes live against bytes held from memory{}",
                        map.step + 1,
                        if scale == Scale::Log {
                            " (log scale)"
                        } else {
                            ""
                        }
                    ),
                    "acquires and releases of the step, in order",
                    "bytes",
                    &series,
                    &svg::number,
                    &svg::bytes,
                    scale,
                ),
            );
        }
    }
    let palette = tag_palette(maps);
    let colour = |tag: &str| {
        palette
            .iter()
            .find(|(t, _)| t == tag)
            .map_or("#999999", |(_, c)| *c)
    };
    for m in maps {
        for (phase, map, bound, zoom) in [
            (
                "prefill",
                &m.prefill,
                bound(reports, &m.strategy, true),
                false,
            ),
            (
                "decode",
                &m.decode,
                bound(reports, &m.strategy, false),
                true,
            ),
        ] {
            let zoomed = if zoom
                && map
                    .leases
                    .iter()
                    .map(|l| l.offset + l.bytes)
                    .max()
                    .unwrap_or(0)
                    * 2
                    < map.extent
            {
                format!(
                    "; zoomed to the leases, {} held in all",
                    svg::bytes(map.extent as f64)
                )
            } else {
                String::new()
            };
            push(
                format!("memory_map_{}_{phase}.svg", file_safe(&m.strategy)),
                "maps",
                svg::memory_map(
                    &format!(
                        "{}: {phase} step {}, {} leases{zoomed}",
                        m.strategy,
                        map.step + 1,
                        map.leases.len(),
                    ),
                    map,
                    bound,
                    &colour,
                    !zoomed.is_empty(),
                ),
            );
        }
    }
    out
}

/// Distinct colours for the tags of every map.
pub fn tag_palette(maps: &[StrategyMaps]) -> Vec<(String, &'static str)> {
    svg::tag_palette(
        maps.iter()
            .flat_map(|m| m.prefill.tags.iter().chain(&m.decode.tags))
            .map(String::as_str),
    )
}

fn bound(reports: &[StrategyReport], strategy: &str, prefill: bool) -> usize {
    reports
        .iter()
        .find(|r| r.strategy == strategy)
        .map_or(0, |r| {
            if prefill {
                r.prefill.lower_bound_bytes
            } else {
                r.decode.lower_bound_bytes
            }
        })
}

/// `noop@mimalloc` -> `noop-mimalloc`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The output paths of `--plot DIR`, checked before the run: the folder
/// exists or its parent does, and nothing in it blocks a chart's file.
pub struct PlotDir(PathBuf);

impl PlotDir {
    pub fn check(dir: &Path) -> anyhow::Result<PlotDir> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "cannot write charts into {}: not a directory",
                dir.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    bail!(
                        "cannot write charts into {}: the directory {} does not exist",
                        dir.display(),
                        parent.display()
                    );
                }
            }
            Err(e) => bail!("cannot write charts into {}: {e}", dir.display()),
        }
        Ok(PlotDir(dir.to_owned()))
    }

    /// Writes every chart, each through [`OutputPath`].
    pub fn write(&self, charts: &[Chart]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.0)
            .with_context(|| format!("cannot create {}", self.0.display()))?;
        for chart in charts {
            OutputPath::check(&self.0.join(&chart.file))?.write(chart.svg.as_bytes())?;
        }
        Ok(())
    }
}

/// The self-contained HTML report: the run's settings, the full table,
/// then the charts by section. No script and no external resource.
pub fn html(
    heading: &str,
    reports: &[StrategyReport],
    charts: &[Chart],
    maps: &[StrategyMaps],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>scratchpad compare</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1500px}}\
h1{{font-size:20px}}h2{{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}}\
table{{border-collapse:collapse;font-size:12px;margin:8px 0}}td,th{{padding:3px 7px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}}\
th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}\
.swatch{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}}\
.charts{{display:flex;flex-wrap:wrap;gap:12px}}.chart{{border:1px solid #eee}}.note{{color:#444;font-size:13px;max-width:900px}}\
.scroll{{overflow-x:auto}}</style></head><body>\n<h1>scratchpad compare</h1>\n<p class=\"note\">{}</p>\n",
        svg::esc(heading)
    );
    let columns = crate::compare::columns();
    for (phase, pick) in [
        (
            "prefill",
            (|r| &r.prefill) as fn(&StrategyReport) -> &PhaseReport,
        ),
        ("decode", |r| &r.decode),
    ] {
        let _ = write!(
            h,
            "<h2>{phase} ({} tokens per run; per-token figures divided by it)</h2><div class=\"scroll\"><table><tr><th>strategy</th>",
            pick(&reports[0]).tokens
        );
        for c in &columns {
            let _ = write!(h, "<th>{}</th>", svg::esc(c.0));
        }
        h.push_str("</tr>\n");
        for r in reports {
            let _ = write!(
                h,
                "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>",
                svg::strategy_colour(&r.strategy),
                svg::esc(&r.strategy)
            );
            for c in &columns {
                let _ = write!(h, "<td>{}</td>", svg::esc(&(c.3)(pick(r))));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table></div>\n");
    }
    let sections = [
        (
            "speed",
            "Speed",
            "Prefill and decode on their own axes. Decode latency as a distribution over every token of every repetition.",
        ),
        (
            "memory",
            "Memory",
            "Peak reserved against the liveness lower bound (the most bytes live at once), and what each strategy held beyond the live bytes at the phase's peak.",
        ),
        (
            "allocations",
            "Heap allocations",
            "Counted by the process's global allocator: the truth behind \"zero allocations\".",
        ),
        (
            "maps",
            "Memory maps",
            "One warm step of each phase, replayed from the run's trace. x: the step's acquires and releases in order; y: offset in the memory the strategy held (blocks in address order, gaps removed); each lease a rectangle coloured by its tag; each block held from memory outlined; the dashed red line is the lower bound.",
        ),
    ];
    for (key, title, note) in sections {
        if !charts.iter().any(|c| c.section == key) {
            continue;
        }
        let _ = write!(
            h,
            "<h2>{title}</h2><p class=\"note\">{}</p>",
            svg::esc(note)
        );
        if key == "maps" {
            h.push_str("<p class=\"note\">tags:");
            for (t, colour) in tag_palette(maps) {
                let _ = write!(
                    h,
                    "<span class=\"swatch\" style=\"background:{colour}\"></span>{}",
                    svg::esc(&t)
                );
            }
            h.push_str("</p>");
        }
        h.push_str("<div class=\"charts\">\n");
        for c in charts.iter().filter(|c| c.section == key) {
            h.push_str(&c.svg);
            h.push('\n');
        }
        h.push_str("</div>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// A whole-trace timeline in Chrome's trace-event format (Perfetto,
/// chrome://tracing): one tick of the trace is one microsecond. Each lease
/// is an async slice on its tag's track, each step a slice on the `steps`
/// thread, and live and held bytes are counter tracks.
pub fn chrome_trace(t: &MemoryMap) -> Value {
    let mut events = vec![
        json!({"ph": "M", "pid": 1, "name": "process_name", "args": {"name": format!("scratchpad trace ({})", t.strategy)}}),
        json!({"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "steps"}}),
    ];
    for &(phase, start, end) in &t.steps {
        events.push(json!({
            "ph": "X", "pid": 1, "tid": 1, "ts": start, "dur": end.saturating_sub(start).max(1),
            "name": phase.name(), "cat": "step",
        }));
    }
    for (id, l) in t.leases.iter().enumerate() {
        let tag = &t.tags[l.tag];
        let common = json!({"pid": 1, "cat": tag, "name": tag, "id": id + 1});
        let mut begin = common.clone();
        begin["ph"] = "b".into();
        begin["ts"] = l.start.into();
        begin["args"] = json!({"bytes": l.bytes, "offset": l.offset});
        let mut end = common;
        end["ph"] = "e".into();
        end["ts"] = l.end.max(l.start + 1).into();
        events.push(begin);
        events.push(end);
    }
    for (tick, (live, held)) in t.live_bytes.iter().zip(&t.held_bytes).enumerate() {
        events.push(
            json!({"ph": "C", "pid": 1, "ts": tick, "name": "live bytes", "args": {"live": live}}),
        );
        events.push(json!({"ph": "C", "pid": 1, "ts": tick, "name": format!("held bytes ({})", t.strategy), "args": {"held": held}}));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "producer": "scratchpad trace --chrome",
            "time": "one tick (an acquire or a release) per microsecond",
            "strategy": t.strategy,
        },
    })
}
