//! One Llama decoder layer's temporaries at prefill, replayed through every
//! strategy: peak reserved against the lower bound.

use scratchpad::{Event, HostMemory, Phase, Pool, PoolOptions, STRATEGY_NAMES, Trace};

const S: usize = 128;
const D: usize = 288;
const HEADS: usize = 6;
const F: usize = 768;

/// `(name, f32 elements, first step, last step)`, lifetimes inclusive.
fn layer() -> Vec<(&'static str, usize, usize, usize)> {
    vec![
        ("x_in", S * D, 0, 13),
        ("xn", S * D, 1, 4),
        ("q", S * D, 2, 6),
        ("k", S * D, 3, 7),
        ("v", S * D, 4, 8),
        ("rope_cos", S * 24, 5, 7),
        ("rope_sin", S * 24, 5, 7),
        ("q_rot", S * D, 6, 9),
        ("k_rot", S * D, 7, 8),
        ("k_cat", S * D, 8, 9),
        ("v_cat", S * D, 8, 11),
        ("scores", HEADS * S * S, 9, 10),
        ("probs", HEADS * S * S, 10, 11),
        ("ctx", S * D, 11, 12),
        ("attn_out", S * D, 12, 13),
        ("h", S * D, 13, 19),
        ("hn", S * D, 14, 16),
        ("gate", S * F, 15, 17),
        ("up", S * F, 16, 17),
        ("act", S * F, 17, 18),
        ("down", S * D, 18, 19),
        ("out", S * D, 19, 19),
    ]
}

/// The layer as a trace: at each step, the buffers it first uses are
/// acquired, then the buffers it last uses are released.
pub fn layer_trace() -> Trace {
    let mut trace = Trace::new();
    let buffers = layer();
    trace.events.push(Event::Step {
        phase: Phase::Prefill,
        tokens: None,
    });
    trace.events.push(Event::Scope);
    for step in 0..=19 {
        for (id, &(name, elems, first, _)) in buffers.iter().enumerate() {
            if first == step {
                let tag = trace.tag_index(name);
                trace.events.push(Event::Acquire {
                    id: id as u64,
                    bytes: elems * 4,
                    align: 64,
                    tag,
                });
            }
        }
        for (id, &(_, _, _, last)) in buffers.iter().enumerate() {
            if last == step {
                trace.events.push(Event::Release { id: id as u64 });
            }
        }
    }
    trace.events.push(Event::EndScope);
    trace.events.push(Event::EndStep);
    trace
}

/// Peak reserved by `name` on the layer: one replay to warm up (and, for
/// `planned`, to measure), then the peak of a second replay.
fn steady_peak(name: &str, options: &PoolOptions) -> usize {
    let trace = layer_trace();
    let pool = Pool::with_strategy(name, HostMemory, options).unwrap();
    pool.set_verify(true);
    trace.replay(&pool).unwrap();
    pool.reset_peaks();
    let report = trace.replay(&pool).unwrap();
    assert_eq!(report.stats.live_bytes, 0);
    report.stats.peak_reserved_bytes
}

#[test]
fn layer_trace_through_every_strategy() {
    let trace = layer_trace();
    trace.validate().unwrap();
    let lower_bound = trace.lower_bound().unwrap();
    assert_eq!(lower_bound, 1_327_104);
    assert_eq!(trace.phase_lower_bounds().unwrap(), [1_327_104, 0]);
    eprintln!("layer trace (S={S}, d={D}, {HEADS} heads, f={F}): lower bound {lower_bound} bytes");
    eprintln!("{:<24} {:>12} {:>8}", "strategy", "peak bytes", "ratio");
    let small_cap = PoolOptions {
        max_retained_bytes: 1 << 20,
        ..PoolOptions::default()
    };
    let mut rows: Vec<(String, usize)> = STRATEGY_NAMES
        .iter()
        .map(|&name| (name.to_owned(), steady_peak(name, &PoolOptions::default())))
        .collect();
    rows.push((
        "best-fit (1 MiB cap)".to_owned(),
        steady_peak("best-fit", &small_cap),
    ));
    for (name, peak) in &rows {
        eprintln!(
            "{name:<24} {peak:>12} {:>8.3}",
            *peak as f64 / lower_bound as f64
        );
        assert!(
            *peak >= lower_bound,
            "{name} holds less than the lower bound"
        );
    }
    let planned = rows.iter().find(|(n, _)| n == "planned").unwrap().1;
    assert_eq!(
        planned, lower_bound,
        "greedy-by-size reaches the lower bound on this trace"
    );
}
