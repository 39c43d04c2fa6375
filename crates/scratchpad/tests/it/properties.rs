//! Property test: random sequences of acquires, out-of-order releases and
//! nested scopes over sizes up to 16 MiB and every dtype, against a simple
//! model of live bytes, through every strategy and the wrapper.

use proptest::prelude::*;
use scratchpad::{HostMemory, Phase, Pool, PoolOptions, Scope, tag};

use crate::support::{Held, N_DTYPES, Target, acquire_any, check_idle, targets};

#[derive(Clone, Copy, Debug)]
enum Op {
    Acquire {
        bytes: usize,
        dtype: usize,
        zeroed: bool,
    },
    /// Release the live lease at this index (modulo the count) of the
    /// innermost scope.
    Release(usize),
    Enter,
    Exit,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..4096,
        3 => 4096usize..(1 << 20),
        1 => (1usize << 20)..=(16 << 20),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (size(), 0..N_DTYPES, any::<bool>()).prop_map(|(bytes, dtype, zeroed)| Op::Acquire { bytes, dtype, zeroed }),
        4 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::Enter),
        1 => Just(Op::Exit),
    ]
}

#[derive(Default)]
struct Model {
    live: usize,
    peak: usize,
    acquires: u64,
    pattern: u8,
}

/// Runs ops from `pos` in `scope` until an `Exit` or the end, checking every
/// lease at its release and the pool's live bytes against the model.
fn run<'s>(
    scope: &'s Scope<'s, HostMemory>,
    ops: &[Op],
    pos: &mut usize,
    model: &mut Model,
    who: &str,
    plain: Option<&Pool<HostMemory>>,
) {
    let mut held: Vec<(Held<'s>, usize)> = Vec::new();
    while *pos < ops.len() {
        let op = ops[*pos];
        *pos += 1;
        match op {
            Op::Acquire {
                bytes,
                dtype,
                zeroed,
            } => {
                let lease = acquire_any(scope, dtype, bytes, zeroed, tag!("prop.lease")).unwrap();
                let actual = lease.bytes().len();
                if zeroed {
                    assert!(
                        lease.bytes().iter().all(|&b| b == 0),
                        "{who}: zeroed lease of {actual} bytes is dirty"
                    );
                }
                model.pattern = model.pattern % 251 + 1;
                held.push((Held::new(lease, model.pattern), actual));
                model.live += actual;
                model.peak = model.peak.max(model.live);
                model.acquires += 1;
            }
            Op::Release(k) if !held.is_empty() => {
                let (h, bytes) = held.remove(k % held.len());
                h.check(who);
                model.live -= bytes;
            }
            Op::Release(_) => {}
            Op::Enter => scope.scope(|inner| run(inner, ops, pos, model, who, plain)),
            Op::Exit => break,
        }
        if let Some(pool) = plain {
            assert_eq!(
                pool.stats().live_bytes,
                model.live,
                "{who}: live bytes vs the model"
            );
        }
    }
    for (h, bytes) in held {
        h.check(who);
        model.live -= bytes;
    }
}

fn run_target(target: &Target, ops: &[Op]) {
    let who = target.name();
    let plain = match target {
        Target::Plain(pool) => Some(pool),
        Target::Shared(_) => None,
    };
    if let Some(pool) = plain {
        pool.start_trace();
    }
    let mut model = Model::default();
    // The same sequence twice as steps (planned measures, then serves), then
    // once outside any step.
    for round in 0..3 {
        let mut pos = 0;
        if round < 2 {
            target.step(Phase::Decode, |s| {
                run(s, ops, &mut pos, &mut model, &who, plain)
            });
        } else {
            target.scope(|s| run(s, ops, &mut pos, &mut model, &who, plain));
        }
        assert_eq!(model.live, 0);
    }
    let stats = target.stats();
    check_idle(&who, &stats);
    assert_eq!(
        stats.acquires, model.acquires,
        "{who}: acquires vs the model"
    );
    assert_eq!(
        stats.peak_live_bytes, model.peak,
        "{who}: peak live bytes vs the model"
    );
    if let Some(pool) = plain {
        let trace = pool.take_trace().unwrap();
        assert_eq!(
            trace.lower_bound().unwrap(),
            model.peak,
            "{who}: the trace's lower bound"
        );
        assert!(stats.peak_reserved_bytes >= trace.lower_bound().unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_never_alias_and_match_the_model(ops in prop::collection::vec(op(), 0..48)) {
        for target in targets(&PoolOptions::default()) {
            run_target(&target, &ops);
        }
    }

    #[test]
    fn random_sequences_hold_under_tight_caps(ops in prop::collection::vec(op(), 0..32)) {
        let options = PoolOptions { max_retained_bytes: 1 << 20, per_class_cap: 1, ..PoolOptions::default() };
        for target in targets(&options) {
            run_target(&target, &ops);
            let stats = target.stats();
            if target.strategy() == "best-fit" {
                prop_assert!(stats.retained_bytes <= 1 << 20);
            }
        }
    }
}

/// A long pseudo-random sequence through the splitting strategies, with
/// their split and merge counts: the paths the property tests are meant to
/// reach did run.
#[test]
fn bfc_and_tlsf_split_and_coalesce_on_random_sequences() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let ops: Vec<Op> = (0..400)
        .map(|_| match next() % 10 {
            0..=5 => Op::Acquire {
                bytes: match next() % 8 {
                    0..=5 => (next() % 8192) as usize,
                    6 => (next() % (1 << 20)) as usize,
                    _ => (1 << 20) + (next() % (3 << 20)) as usize,
                },
                dtype: (next() % N_DTYPES as u64) as usize,
                zeroed: next() % 2 == 0,
            },
            6..=8 => Op::Release(next() as usize),
            _ => Op::Enter,
        })
        .collect();
    for target in targets(&PoolOptions::default()) {
        let name = target.strategy();
        if name != "bfc" && name != "tlsf" {
            continue;
        }
        run_target(&target, &ops);
        let stats = target.stats();
        assert!(stats.splits > 50, "{name}: {} splits", stats.splits);
        assert!(stats.merges > 50, "{name}: {} merges", stats.merges);
    }
}

/// The operations that make a strategy recycle memory while leases live:
/// acquires for an outer scope while an inner one is open, `trim`,
/// `remeasure` and step boundaries in the middle of scopes.
#[derive(Clone, Copy, Debug)]
enum Stress {
    Acquire {
        bytes: usize,
        dtype: usize,
    },
    /// Acquire for the enclosing scope (the lease outlives the current one).
    AcquireOuter {
        bytes: usize,
        dtype: usize,
    },
    Release(usize),
    Enter,
    Exit,
    Trim,
    Remeasure,
    /// End the current step and begin another of this phase.
    Step(bool),
}

fn stress_op() -> impl Strategy<Value = Stress> {
    prop_oneof![
        6 => (size(), 0..N_DTYPES).prop_map(|(bytes, dtype)| Stress::Acquire { bytes, dtype }),
        3 => (size(), 0..N_DTYPES).prop_map(|(bytes, dtype)| Stress::AcquireOuter { bytes, dtype }),
        4 => any::<usize>().prop_map(Stress::Release),
        2 => Just(Stress::Enter),
        2 => Just(Stress::Exit),
        1 => Just(Stress::Trim),
        1 => Just(Stress::Remeasure),
        2 => any::<bool>().prop_map(Stress::Step),
    ]
}

/// A frame of the stress run: its scope and the leases it holds.
struct Frame<'s> {
    scope: &'s Scope<'s, HostMemory>,
    held: Vec<Held<'s>>,
}

/// Runs ops in `frame` until an `Exit`; `outer` is the enclosing frame, if
/// any, whose scope `AcquireOuter` acquires from. Every lease is checked
/// for its pattern when it is released.
fn stress<'s, 'o>(
    pool: &Pool<HostMemory>,
    frame: &mut Frame<'s>,
    mut outer: Option<&mut Frame<'o>>,
    ops: &[Stress],
    pos: &mut usize,
    pattern: &mut u8,
    who: &str,
) {
    fn next_pattern(pattern: &mut u8) -> u8 {
        *pattern = *pattern % 251 + 1;
        *pattern
    }
    while *pos < ops.len() {
        let op = ops[*pos];
        *pos += 1;
        match op {
            Stress::Acquire { bytes, dtype } => {
                let lease =
                    acquire_any(frame.scope, dtype, bytes, false, tag!("stress.lease")).unwrap();
                frame.held.push(Held::new(lease, next_pattern(pattern)));
            }
            Stress::AcquireOuter { bytes, dtype } => match outer.as_deref_mut() {
                Some(up) => {
                    let lease =
                        acquire_any(up.scope, dtype, bytes, false, tag!("stress.outer")).unwrap();
                    up.held.push(Held::new(lease, next_pattern(pattern)));
                }
                None => {
                    let lease = acquire_any(frame.scope, dtype, bytes, false, tag!("stress.lease"))
                        .unwrap();
                    frame.held.push(Held::new(lease, next_pattern(pattern)));
                }
            },
            Stress::Release(k) if !frame.held.is_empty() => {
                let h = frame.held.remove(k % frame.held.len());
                h.check(who);
            }
            Stress::Release(_) => {}
            Stress::Enter => frame.scope.scope(|inner| {
                let mut child = Frame {
                    scope: inner,
                    held: Vec::new(),
                };
                stress(pool, &mut child, Some(frame), ops, pos, pattern, who);
                for h in child.held {
                    h.check(who);
                }
            }),
            Stress::Exit => break,
            Stress::Trim => pool.trim(),
            Stress::Remeasure => pool.remeasure(Phase::Decode),
            Stress::Step(decode) => {
                pool.end_step();
                pool.begin_step(if decode {
                    Phase::Decode
                } else {
                    Phase::Prefill
                });
            }
        }
        // Every live lease still holds its pattern: no acquire, trim or
        // step boundary recycled memory a live lease uses.
        for h in &frame.held {
            h.check(who);
        }
        if let Some(up) = outer.as_deref() {
            for h in &up.held {
                h.check(who);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn outer_scope_leases_survive_trim_remeasure_and_step_boundaries(
        ops in prop::collection::vec(stress_op(), 0..64)
    ) {
        for name in scratchpad::STRATEGY_NAMES {
            let pool = Pool::with_strategy(name, HostMemory, &PoolOptions::default()).unwrap();
            pool.set_verify(true);
            let mut pattern = 0u8;
            // Three passes: planned measures, then serves from its plans.
            for _ in 0..3 {
                let mut pos = 0;
                pool.begin_step(Phase::Decode);
                pool.scope(|s| {
                    let mut top = Frame { scope: s, held: Vec::new() };
                    stress(&pool, &mut top, None, &ops, &mut pos, &mut pattern, name);
                    for h in top.held {
                        h.check(name);
                    }
                });
                pool.end_step();
            }
            check_idle(name, &pool.stats());
        }
    }
}
