//! Traces: recording, the JSON format, validation errors, lower bounds and
//! replay.

use scratchpad::{
    Event, HostMemory, Phase, Pool, PoolOptions, ScratchError, TRACE_VERSION, Trace, tag,
};

use crate::support::pool;

fn recorded() -> Trace {
    let pool = pool("best-fit", &PoolOptions::default());
    pool.start_trace();
    pool.step(Phase::Prefill, |s| {
        let a = s.acquire::<f32>(100, tag!("tf.a")).unwrap();
        s.scope(|inner| {
            let _b = inner.acquire::<u8>(50, tag!("tf.b")).unwrap();
        });
        drop(a);
    });
    pool.step(Phase::Decode, |s| {
        let _c = s.acquire::<f32>(10, tag!("tf.a")).unwrap();
    });
    pool.take_trace().unwrap()
}

#[test]
fn a_recorded_trace_lists_every_event() {
    let trace = recorded();
    assert_eq!(trace.tags, ["tf.a", "tf.b"]);
    assert_eq!(
        trace.events,
        [
            Event::Step {
                phase: Phase::Prefill,
                tokens: None,
            },
            Event::Scope,
            Event::Acquire {
                id: 1,
                bytes: 400,
                align: 64,
                tag: 0
            },
            Event::Scope,
            Event::Acquire {
                id: 2,
                bytes: 50,
                align: 64,
                tag: 1
            },
            Event::Release { id: 2 },
            Event::EndScope,
            Event::Release { id: 1 },
            Event::EndScope,
            Event::EndStep,
            Event::Step {
                phase: Phase::Decode,
                tokens: None,
            },
            Event::Scope,
            Event::Acquire {
                id: 3,
                bytes: 40,
                align: 64,
                tag: 0
            },
            Event::Release { id: 3 },
            Event::EndScope,
            Event::EndStep,
        ]
    );
    assert_eq!(trace.lower_bound().unwrap(), 450);
    assert_eq!(trace.phase_lower_bounds().unwrap(), [450, 40]);
}

#[test]
fn json_round_trips_and_files_are_written_whole() {
    let trace = recorded();
    let json = trace.to_json();
    assert!(json.starts_with("{\"format\":\"scratchpad-trace\",\"version\":1"));
    assert_eq!(Trace::from_json(&json).unwrap(), trace);
    let dir = std::env::temp_dir().join(format!("scratchpad-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.json");
    trace.write(&path).unwrap();
    assert_eq!(Trace::read(&path).unwrap(), trace);
    let missing = Trace::read(&dir.join("missing.json")).unwrap_err();
    assert!(
        matches!(missing, ScratchError::Io { .. }) && missing.to_string().contains("missing.json")
    );
    let unwritable = trace
        .write(&dir.join("no-such-dir").join("run.json"))
        .unwrap_err();
    assert!(
        matches!(unwritable, ScratchError::Output(_))
            && unwritable.to_string().contains("does not exist")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_minimal_foreign_trace_is_accepted() {
    // What another runtime might write: no scopes, steps, tags or alignment.
    let json = r#"{"format":"scratchpad-trace","version":1,"events":[
        {"op":"acquire","id":7,"bytes":1000},{"op":"acquire","id":9,"bytes":24},
        {"op":"release","id":7},{"op":"acquire","id":3,"bytes":500}]}"#;
    let trace = Trace::from_json(json).unwrap();
    assert_eq!(trace.lower_bound().unwrap(), 1024);
    let pool = Pool::with_strategy("arena", HostMemory, &PoolOptions::default()).unwrap();
    let report = trace.replay(&pool).unwrap();
    // Three acquires, one explicit release, two released at the end.
    assert_eq!(report.ops, 6);
    assert_eq!(report.stats.live_bytes, 0);
    assert!(report.ns_per_op() > 0.0);
}

fn error_of(json: &str) -> String {
    Trace::from_json(json).unwrap_err().to_string()
}

#[test]
fn malformed_traces_are_rejected_with_the_reason() {
    let head = r#"{"format":"scratchpad-trace","version":1,"events":"#;
    let err =
        Trace::from_json(r#"{"format":"scratchpad-trace","version":2,"events":[]}"#).unwrap_err();
    assert!(matches!(
        err,
        ScratchError::TraceVersion {
            found: 2,
            supported: TRACE_VERSION
        }
    ));
    assert!(error_of(r#"{"version":1,"events":[]}"#).contains("format"));
    assert!(error_of(r#"{"format":"scratchpad-trace","events":[]}"#).contains("version"));
    assert!(error_of("not json").contains("invalid trace"));
    let cases = [
        (r#"[{"op":"release","id":4}]"#, "never acquired"),
        (
            r#"[{"op":"acquire","id":1,"bytes":8},{"op":"acquire","id":1,"bytes":8}]"#,
            "acquired twice",
        ),
        (
            r#"[{"op":"acquire","id":1,"bytes":8},{"op":"release","id":1},{"op":"release","id":1}]"#,
            "released twice",
        ),
        (
            r#"[{"op":"scope"},{"op":"acquire","id":1,"bytes":8},{"op":"end_scope"},{"op":"release","id":1}]"#,
            "after its scope",
        ),
        (r#"[{"op":"end_scope"}]"#, "without a scope"),
        (r#"[{"op":"end_step"}]"#, "without a step"),
        (
            r#"[{"op":"step","phase":"decode"},{"op":"step","phase":"decode"}]"#,
            "inside another step",
        ),
        (
            r#"[{"op":"acquire","id":1,"bytes":8,"align":48}]"#,
            "alignment 48",
        ),
        (
            r#"[{"op":"acquire","id":1,"bytes":8,"tag":3}]"#,
            "tag index 3",
        ),
        (r#"[{"op":"teleport"}]"#, "teleport"),
        (r#"[{"op":"step","phase":"training"}]"#, "training"),
    ];
    for (events, expected) in cases {
        let message = error_of(&format!("{head}{events}}}"));
        assert!(
            message.contains(expected),
            "`{events}`: expected `{expected}` in `{message}`"
        );
    }
}

#[test]
fn a_replay_that_runs_out_of_memory_leaves_the_pool_idle() {
    let json = r#"{"format":"scratchpad-trace","version":1,"events":[
        {"op":"scope"},{"op":"acquire","id":1,"bytes":600000},{"op":"acquire","id":2,"bytes":600000},
        {"op":"end_scope"}]}"#;
    let trace = Trace::from_json(json).unwrap();
    let options = PoolOptions {
        reserve_limit: Some(1 << 20),
        ..PoolOptions::default()
    };
    let pool = Pool::with_strategy("noop", HostMemory, &options).unwrap();
    let err = trace.replay(&pool).unwrap_err();
    assert!(matches!(err, ScratchError::OutOfMemory { .. }));
    let stats = pool.stats();
    assert_eq!((stats.live_bytes, stats.reserved_bytes), (0, 0));
}

#[test]
fn sizes_no_memory_holds_are_refused_not_summed() {
    let acquire = |id: u64, bytes: usize| Event::Acquire {
        id,
        bytes,
        align: 64,
        tag: 0,
    };
    let mut huge = Trace::new();
    huge.events = vec![acquire(0, usize::MAX), acquire(1, usize::MAX)];
    let e = huge.lower_bound().unwrap_err().to_string();
    assert!(e.contains("larger than any memory"), "{e}");
    let mut overflowing = Trace::new();
    overflowing.events = (0..3).map(|id| acquire(id, isize::MAX as usize)).collect();
    let e = overflowing.lower_bound().unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
}

#[test]
fn a_trace_started_mid_scope_is_one_the_reader_accepts() {
    let pool = Pool::with_strategy("best-fit", HostMemory, &PoolOptions::default()).unwrap();
    pool.step(Phase::Decode, |s| {
        let before = s.acquire::<f32>(100, tag!("mid.before")).unwrap();
        s.scope(|inner| {
            pool.start_trace();
            let during = inner.acquire::<f32>(50, tag!("mid.during")).unwrap();
            drop(before);
            drop(during);
            let _kept = inner.acquire::<u8>(10, tag!("mid.kept")).unwrap();
        });
    });
    let trace = pool.take_trace().unwrap();
    let reread = Trace::from_json(&trace.to_json()).unwrap();
    assert_eq!(reread.acquires(), 2);
    assert_eq!(reread.lower_bound().unwrap(), 200);
    let replayed = reread
        .replay(&Pool::with_strategy("planned", HostMemory, &PoolOptions::default()).unwrap())
        .unwrap();
    assert_eq!(replayed.ops, 4);
}

#[test]
fn a_trace_with_tens_of_thousands_of_tags_replays_in_linear_time() {
    // 80,000 distinct tags took 137 s to intern by linear search; hashed,
    // it is a fraction of a second. The bound is generous: this guards
    // against a return to quadratic work, it is not a benchmark.
    let mut trace = Trace::new();
    for id in 0..80_000u64 {
        trace.tags.push(format!("many.tag{id}"));
        let tag = id as u32;
        trace.events.push(Event::Acquire {
            id,
            bytes: 64,
            align: 64,
            tag,
        });
        trace.events.push(Event::Release { id });
    }
    let start = std::time::Instant::now();
    let pool = Pool::with_strategy("workspace", HostMemory, &PoolOptions::default()).unwrap();
    let report = trace.replay(&pool).unwrap();
    assert_eq!(report.ops, 160_000);
    // Untrusted names are kept up to a bound, then share one tag.
    assert_eq!(
        scratchpad::Tag::intern_owned("many.tag79999").name(),
        "trace.other"
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}
