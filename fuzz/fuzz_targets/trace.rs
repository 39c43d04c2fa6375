//! Trace JSON: parsing never panics; a parsed trace round-trips through
//! JSON and replays through every strategy without panicking, its lower
//! bound never above any strategy's peak.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scratchpad::{HostMemory, Pool, PoolOptions, STRATEGY_NAMES, Trace};

fuzz_target!(|json: &str| {
    let Ok(trace) = Trace::from_json(json) else {
        return;
    };
    let again = Trace::from_json(&trace.to_json()).expect("a written trace reads back");
    assert_eq!(again, trace);
    if trace.events.len() > 2000 {
        return;
    }
    let options = PoolOptions {
        reserve_limit: Some(64 << 20),
        ..PoolOptions::default()
    };
    for name in STRATEGY_NAMES {
        let pool = Pool::with_strategy(name, HostMemory, &options).unwrap();
        pool.set_verify(true);
        if let Ok(report) = trace.replay(&pool) {
            assert!(report.stats.peak_reserved_bytes >= report.stats.peak_live_bytes);
        }
    }
});
