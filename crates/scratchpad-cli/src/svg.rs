//! Charts as SVG text: rows of dots with whiskers, bars on a linear or log
//! axis, lines with a legend beside the plot, and the memory map. No
//! script, no external resource: each chart is a string that an HTML
//! report inlines or a file holds. Colours are fixed per strategy (its
//! place in the registry), so the same strategy has the same colour in
//! every chart of every run; tags get distinct colours within a report.

use std::fmt::Write as _;

use scratchpad::{MemoryMap, STRATEGY_NAMES};

/// Tableau 10: one colour per registered strategy, in registry order.
const STRATEGY_COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#79706e",
];

/// Colours for tags in memory maps (from ColorBrewer Paired and Set3).
const TAG_COLOURS: [&str; 12] = [
    "#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a",
    "#fb9a99", "#fdbf6f", "#cab2d6", "#8dd3c7",
];

/// A strategy's colour: the same in every chart and run.
pub fn strategy_colour(name: &str) -> &'static str {
    STRATEGY_NAMES
        .iter()
        .position(|n| *n == name)
        .map_or("#555555", |i| STRATEGY_COLOURS[i % STRATEGY_COLOURS.len()])
}

/// Tag colours for one report: the tags sorted by name, a colour each,
/// so that no two tags of the report share one (up to twelve).
pub fn tag_palette<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<(String, &'static str)> {
    let mut tags: Vec<&str> = tags.into_iter().collect();
    tags.sort_unstable();
    tags.dedup();
    tags.iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), TAG_COLOURS[i % TAG_COLOURS.len()]))
        .collect()
}

/// A document-unique id for a chart's clip path (charts share one HTML
/// document).
fn clip_id(title: &str) -> String {
    let hash = title.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("clip{hash:016x}")
}

/// Escapes text for SVG and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number without needless digits: integers with thousands separators,
/// others to three significant digits.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v == v.round() && v.abs() < 1e15 {
        let digits = format!("{}", v.abs() as u64);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return if v < 0.0 { format!("-{out}") } else { out };
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Bytes in B, KiB, MiB or GiB, without needless digits.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", number(v), UNITS[unit])
}

/// How an axis places values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
    /// Linear, ticks at multiples of a power of two.
    Bytes,
}

/// An axis from `lo` to `hi` mapped onto `[a, b]` pixels.
#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
    scale: Scale,
}

impl Axis {
    fn at(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Linear | Scale::Bytes => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln()),
        };
        self.a + t.clamp(0.0, 1.0) * (self.b - self.a)
    }

    /// Tick values: 1-2-5 steps on a linear axis, powers of ten (with 2
    /// and 5 between when there are few) on a log axis.
    fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Bytes => byte_ticks(self.hi),
            Scale::Linear => {
                let step = nice_step((self.hi - self.lo) / 5.0);
                let mut v = (self.lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + step * 1e-9 {
                    out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
                    v += step;
                }
                out
            }
            Scale::Log => {
                let decades = (self.hi / self.lo).log10();
                let mults: &[f64] = if decades <= 2.5 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut out = Vec::new();
                let mut p = 10f64.powf(self.lo.log10().floor());
                while p <= self.hi * 1.000_001 {
                    for m in mults {
                        let v = p * m;
                        if v >= self.lo * 0.999_999 && v <= self.hi * 1.000_001 {
                            out.push(v);
                        }
                    }
                    p *= 10.0;
                }
                out
            }
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// The upper end of a linear axis from 0 that holds `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let step = nice_step(max / 5.0);
    (max / step).ceil() * step
}

/// Byte ticks: powers of two on an axis of bytes.
fn byte_ticks(hi: f64) -> Vec<f64> {
    let step = 2f64.powf((hi / 5.0).max(1.0).log2().ceil());
    let mut ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v < hi + step)
        .collect();
    if ticks.len() > 1 && ticks[ticks.len() - 2] >= hi {
        ticks.pop();
    }
    ticks
}

/// An SVG document under construction.
struct Doc {
    width: f64,
    height: f64,
    body: String,
}

impl Doc {
    fn new(width: f64, height: f64, title: &str) -> Doc {
        let mut doc = Doc {
            width,
            height,
            body: String::new(),
        };
        doc.text(12.0, 20.0, title, "start", 14.0, "font-weight=\"600\"");
        doc
    }

    fn text(&mut self, x: f64, y: f64, s: &str, anchor: &str, size: f64, extra: &str) {
        let _ = write!(
            self.body,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" {extra}>{}</text>",
            esc(s)
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, extra: &str) {
        let _ = write!(
            self.body,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" {extra}/>"
        );
    }

    /// A rectangle; `title` becomes its tooltip.
    #[allow(clippy::too_many_arguments)]
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str, title: &str) {
        let _ = write!(
            self.body,
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{fill}\" {extra}><title>{}</title></rect>",
            w.max(0.0),
            h.max(0.0),
            esc(title)
        );
    }

    fn finish(self, label: &str) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"system-ui, sans-serif\"><rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>{}</svg>",
            esc(label),
            self.body,
            w = self.width,
            h = self.height
        )
    }

    /// A horizontal value axis at `y` with ticks, grid lines up to `top`
    /// and its label below.
    fn x_axis(&mut self, axis: &Axis, y: f64, top: f64, label: &str, fmt: &dyn Fn(f64) -> String) {
        self.line(axis.a, y, axis.b, y, "#333", "");
        for t in axis.ticks() {
            let x = axis.at(t);
            self.line(x, top, x, y, "#e6e6e6", "");
            self.line(x, y, x, y + 4.0, "#333", "");
            self.text(x, y + 16.0, &fmt(t), "middle", 11.0, "fill=\"#333\"");
        }
        self.text(
            (axis.a + axis.b) / 2.0,
            y + 34.0,
            label,
            "middle",
            12.0,
            "fill=\"#111\"",
        );
    }

    /// A vertical value axis at `x` from `axis.a` (bottom) to `axis.b`
    /// (top), with `ticks` (those past the axis' end dropped), grid lines
    /// across to `grid_to` when given, and its label turned along it.
    fn y_axis(
        &mut self,
        axis: &Axis,
        x: f64,
        ticks: Vec<f64>,
        grid_to: Option<f64>,
        label: &str,
        fmt: &dyn Fn(f64) -> String,
    ) {
        self.line(x, axis.b, x, axis.a, "#333", "");
        for t in ticks.into_iter().filter(|t| *t <= axis.hi * 1.000_001) {
            let y = axis.at(t);
            if let Some(right) = grid_to {
                self.line(x, y, right, y, "#e6e6e6", "");
            }
            self.line(x - 4.0, y, x, y, "#333", "");
            self.text(x - 7.0, y + 4.0, &fmt(t), "end", 11.0, "fill=\"#333\"");
        }
        let middle = (axis.a + axis.b) / 2.0;
        self.text(
            14.0,
            middle,
            label,
            "middle",
            12.0,
            &format!("transform=\"rotate(-90 14 {middle:.1})\" fill=\"#111\""),
        );
    }
}

const ROW: f64 = 22.0;
const LABEL_W: f64 = 120.0;
const WIDTH: f64 = 640.0;

/// One row per strategy: the median as a dot and the min–max spread as a
/// whisker, on a linear axis from 0.
pub fn dot_whiskers(title: &str, x_label: &str, rows: &[(String, f64, f64, f64)]) -> String {
    let top = 34.0;
    let height = top + ROW * rows.len() as f64 + 50.0;
    let mut doc = Doc::new(WIDTH, height, title);
    let max = rows.iter().map(|r| r.3).fold(0.0, f64::max);
    let axis = Axis {
        lo: 0.0,
        hi: nice_max(max),
        a: LABEL_W,
        b: WIDTH - 24.0,
        scale: Scale::Linear,
    };
    let bottom = top + ROW * rows.len() as f64;
    doc.x_axis(&axis, bottom, top, x_label, &number);
    for (i, (name, median, min, max)) in rows.iter().enumerate() {
        let y = top + ROW * (i as f64 + 0.5);
        let colour = strategy_colour(name);
        doc.text(LABEL_W - 8.0, y + 4.0, name, "end", 12.0, "");
        doc.line(
            axis.at(*min),
            y,
            axis.at(*max),
            y,
            colour,
            "stroke-width=\"2\"",
        );
        for v in [min, max] {
            doc.line(
                axis.at(*v),
                y - 5.0,
                axis.at(*v),
                y + 5.0,
                colour,
                "stroke-width=\"2\"",
            );
        }
        let _ = write!(
            doc.body,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{colour}\"><title>{}: median {}, min {}, max {}</title></circle>",
            axis.at(*median),
            esc(name),
            number(*median),
            number(*min),
            number(*max)
        );
    }
    doc.finish(title)
}

/// One bar per strategy. On a log axis the bars start at the axis' low
/// end; where every value is zero the chart says so instead of drawing an
/// empty axis.
pub fn bars(
    title: &str,
    x_label: &str,
    rows: &[(String, f64)],
    scale: Scale,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let top = 34.0;
    let height = top + ROW * rows.len() as f64 + 50.0;
    let mut doc = Doc::new(WIDTH, height, title);
    let bottom = top + ROW * rows.len() as f64;
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    if max <= 0.0 {
        for (i, (name, _)) in rows.iter().enumerate() {
            let y = top + ROW * (i as f64 + 0.5);
            doc.text(LABEL_W - 8.0, y + 4.0, name, "end", 12.0, "");
            doc.text(
                LABEL_W + 6.0,
                y + 4.0,
                &fmt(0.0),
                "start",
                11.0,
                "fill=\"#333\"",
            );
        }
        doc.text(
            (LABEL_W + WIDTH) / 2.0,
            bottom + 24.0,
            &format!("{x_label}: 0 for every strategy"),
            "middle",
            12.0,
            "fill=\"#111\"",
        );
        return doc.finish(title);
    }
    let axis = match scale {
        Scale::Linear | Scale::Bytes => Axis {
            lo: 0.0,
            hi: if scale == Scale::Bytes {
                byte_ticks(max * 1.05)
                    .last()
                    .copied()
                    .unwrap_or(max)
                    .max(max)
            } else {
                nice_max(max)
            },
            a: LABEL_W,
            b: WIDTH - 80.0,
            scale,
        },
        Scale::Log => {
            let min = rows
                .iter()
                .map(|r| r.1)
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let lo = 10f64.powf(min.log10().floor()).min(1.0);
            let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
            Axis {
                lo,
                hi,
                a: LABEL_W,
                b: WIDTH - 80.0,
                scale,
            }
        }
    };
    doc.x_axis(&axis, bottom, top, x_label, fmt);
    for (i, (name, value)) in rows.iter().enumerate() {
        let y = top + ROW * i as f64 + 4.0;
        doc.text(LABEL_W - 8.0, y + 11.0, name, "end", 12.0, "");
        let end = axis.at(*value);
        doc.rect(
            axis.a,
            y,
            end - axis.a,
            ROW - 8.0,
            strategy_colour(name),
            "",
            &format!("{name}: {}", fmt(*value)),
        );
        doc.text(
            end + 4.0,
            y + 11.0,
            &fmt(*value),
            "start",
            11.0,
            "fill=\"#333\"",
        );
    }
    doc.finish(title)
}

/// A line series: its name (the legend's), colour, points and whether it
/// is dashed.
pub struct Series {
    pub name: String,
    pub colour: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Drawn as steps (a value holds until the next point).
    pub steps: bool,
}

/// Lines on linear axes, the legend to the right of the plotted area.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_fmt: &dyn Fn(f64) -> String,
    y_fmt: &dyn Fn(f64) -> String,
    y_scale: Scale,
) -> String {
    let legend_w = 200.0;
    let (left, top, plot_h) = (78.0, 34.0, 240.0);
    let height = top + plot_h + 50.0;
    let mut doc = Doc::new(WIDTH + legend_w, height, title);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_min = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let (x_lo, x_hi) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else {
        (0.0, 1.0)
    };
    let x = Axis {
        lo: x_lo,
        hi: x_hi,
        a: left,
        b: WIDTH - 20.0,
        scale: Scale::Linear,
    };
    let y = match y_scale {
        Scale::Bytes => Axis {
            lo: 0.0,
            hi: byte_ticks(y_max.max(1.0) * 1.05)
                .last()
                .copied()
                .unwrap_or(1.0)
                .max(y_max),
            a: top + plot_h,
            b: top,
            scale: y_scale,
        },
        Scale::Linear => Axis {
            lo: 0.0,
            hi: nice_max(y_max),
            a: top + plot_h,
            b: top,
            scale: y_scale,
        },
        Scale::Log => {
            // Powers of two from the smallest positive value: bytes.
            let min = all()
                .map(|p| p.1)
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let lo = if min.is_finite() {
                2f64.powf(min.log2().floor())
            } else {
                1.0
            };
            Axis {
                lo,
                hi: 2f64.powf(y_max.max(lo * 2.0).log2().ceil()),
                a: top + plot_h,
                b: top,
                scale: y_scale,
            }
        }
    };
    doc.x_axis(&x, top + plot_h, top, x_label, x_fmt);
    let y_ticks = if y_scale == Scale::Log {
        // Every power of four on a log axis of bytes.
        let mut t = y.lo;
        let mut out = Vec::new();
        while t <= y.hi * 1.000_001 {
            out.push(t);
            t *= 4.0;
        }
        out
    } else {
        y.ticks()
    };
    doc.y_axis(&y, left, y_ticks, Some(x.b), y_label, y_fmt);
    for (i, s) in series.iter().enumerate() {
        let mut path = String::new();
        let mut last_y = None;
        for (j, &(px, py)) in s.points.iter().enumerate() {
            let (sx, sy) = (x.at(px), y.at(py));
            if j == 0 {
                let _ = write!(path, "M{sx:.1},{sy:.1}");
            } else {
                if s.steps
                    && let Some(ly) = last_y
                {
                    let _ = write!(path, " L{sx:.1},{ly:.1}");
                }
                let _ = write!(path, " L{sx:.1},{sy:.1}");
            }
            last_y = Some(sy);
        }
        let dash = if s.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            doc.body,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{dash}><title>{}</title></path>",
            s.colour,
            esc(&s.name)
        );
        let ly = top + 8.0 + 18.0 * i as f64;
        let lx = WIDTH + 4.0;
        doc.line(
            lx,
            ly,
            lx + 22.0,
            ly,
            &s.colour,
            &format!("stroke-width=\"2.5\"{dash}"),
        );
        doc.text(lx + 28.0, ly + 4.0, &s.name, "start", 12.0, "");
    }
    doc.finish(title)
}

/// The memory map of one step: each lease a rectangle (x: ticks, y: offset
/// in the strategy's memory, coloured by tag), each block the strategy
/// held outlined.
/// With `zoom`, the vertical axis ends just above the highest lease (the
/// blocks above are cut off; the title should say so).
pub fn memory_map(
    title: &str,
    map: &MemoryMap,
    bound: usize,
    tag_colour: &dyn Fn(&str) -> &'static str,
    zoom: bool,
) -> String {
    let (left, top, plot_w, plot_h) = (78.0, 34.0, 560.0, 200.0);
    let height = top + plot_h + 50.0;
    let mut doc = Doc::new(left + plot_w + 20.0, height, title);
    let x = Axis {
        lo: 0.0,
        hi: map.ticks.max(1) as f64,
        a: left,
        b: left + plot_w,
        scale: Scale::Linear,
    };
    let y_hi = if zoom {
        let top_lease = map
            .leases
            .iter()
            .map(|l| l.offset + l.bytes)
            .max()
            .unwrap_or(0);
        (top_lease.max(bound) as f64 * 1.15).max(1.0)
    } else {
        map.extent.max(bound).max(1) as f64
    };
    let y = Axis {
        lo: 0.0,
        hi: y_hi,
        a: top + plot_h,
        b: top,
        scale: Scale::Linear,
    };
    doc.x_axis(
        &x,
        top + plot_h,
        top,
        "acquires and releases of the step, in order",
        &number,
    );
    doc.y_axis(
        &y,
        left,
        byte_ticks(y_hi),
        None,
        "offset in the pool's memory",
        &bytes,
    );
    let _ = write!(
        doc.body,
        "<clipPath id=\"{id}\"><rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\"/></clipPath><g clip-path=\"url(#{id})\">",
        id = clip_id(title)
    );
    for l in &map.leases {
        let (x0, x1) = (x.at(l.start as f64), x.at(l.end as f64));
        let (y0, y1) = (y.at((l.offset + l.bytes) as f64), y.at(l.offset as f64));
        let tag = &map.tags[l.tag];
        doc.rect(
            x0,
            y0,
            (x1 - x0).max(1.0),
            (y1 - y0).max(0.8),
            tag_colour(tag),
            "fill-opacity=\"0.85\"",
            &format!(
                "{tag}: {} at offset {}, ticks {}–{}",
                bytes(l.bytes as f64),
                bytes(l.offset as f64),
                l.start,
                l.end
            ),
        );
    }
    for b in &map.blocks {
        let (x0, x1) = (x.at(b.start as f64), x.at(b.end as f64));
        let (y0, y1) = (y.at((b.offset + b.bytes) as f64), y.at(b.offset as f64));
        doc.rect(
            x0,
            y0,
            (x1 - x0).max(1.0),
            y1 - y0,
            "none",
            "stroke=\"#222\" stroke-width=\"1\"",
            &format!("block of {} held from memory", bytes(b.bytes as f64)),
        );
    }
    doc.body.push_str("</g>");
    if bound > 0 {
        let py = y.at(bound as f64);
        doc.line(
            left,
            py,
            left + plot_w,
            py,
            "#c00",
            "stroke-dasharray=\"4 3\"",
        );
        doc.text(
            left + plot_w - 2.0,
            py - 4.0,
            "lower bound",
            "end",
            11.0,
            "fill=\"#c00\"",
        );
    }
    doc.finish(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_needless_digits() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(2000.0), "2,000");
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1.25), "1.25");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(bytes(2048.0), "2 KiB");
        assert_eq!(bytes(1536.0 * 1024.0), "1.5 MiB");
        assert_eq!(bytes(100.0), "100 B");
    }

    #[test]
    fn ticks_are_round() {
        let axis = Axis {
            lo: 0.0,
            hi: nice_max(1733.0),
            a: 0.0,
            b: 1.0,
            scale: Scale::Linear,
        };
        assert_eq!(axis.ticks(), [0.0, 500.0, 1000.0, 1500.0, 2000.0]);
        let log = Axis {
            lo: 1.0,
            hi: 1000.0,
            a: 0.0,
            b: 1.0,
            scale: Scale::Log,
        };
        assert_eq!(log.ticks(), [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(byte_ticks(3.0 * 1024.0 * 1024.0)[1], 1024.0 * 1024.0);
    }

    #[test]
    fn colours_are_fixed_per_strategy_and_tag() {
        assert_eq!(strategy_colour("noop"), STRATEGY_COLOURS[0]);
        assert_ne!(strategy_colour("planned"), strategy_colour("arena"));
        let palette = tag_palette(["b", "a", "b", "c"]);
        assert_eq!(palette.len(), 3);
        assert_eq!(palette[0], ("a".to_string(), TAG_COLOURS[0]));
        let all: std::collections::HashSet<_> =
            STRATEGY_NAMES.iter().map(|n| strategy_colour(n)).collect();
        assert_eq!(all.len(), STRATEGY_NAMES.len().min(STRATEGY_COLOURS.len()));
    }

    #[test]
    fn an_all_zero_bar_chart_says_so() {
        let svg = bars(
            "heap allocations per token",
            "allocations / token",
            &[("planned".into(), 0.0)],
            Scale::Linear,
            &number,
        );
        assert!(svg.contains("0 for every strategy"));
    }
}
