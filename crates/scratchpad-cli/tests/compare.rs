//! `scratchpad compare`, `trace` and `replay` end to end on `synth-260k`.

mod support;

use support::{fails_with, fails_with_limits, scratchpad, temp_dir};

use scratchpad::STRATEGY_NAMES;
use serde_json::Value;

const WORKLOAD: [&str; 10] = [
    "--synthetic",
    "synth-260k",
    "--prompt-tokens",
    "24",
    "--steps",
    "12",
    "--threads",
    "2",
    "--repeat",
    "2",
];

fn compare_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let json = dir.join("compare.json");
    let mut args = vec!["compare"];
    args.extend(WORKLOAD);
    args.extend(["--json", json.to_str().unwrap()]);
    args.extend(extra);
    let out = scratchpad(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn compare_reports_every_strategy_and_field() {
    let dir = temp_dir("fields");
    let plots = dir.join("plots");
    let out = scratchpad(
        &[
            &["compare"][..],
            &WORKLOAD[..],
            &["--by-tag", "--plot", plots.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "all {} strategies generated the same 12 tokens",
            STRATEGY_NAMES.len()
        )),
        "{stdout}"
    );
    for tag in scratchpad_model::llama::TAGS {
        assert!(
            stdout.contains(tag),
            "the per-tag table lacks {tag}: {stdout}"
        );
    }

    let json = compare_json(&dir, &[]);
    assert_eq!(json["settings"]["prompt_tokens"], 24);
    assert_eq!(json["settings"]["steps"], 12);
    assert!(
        json["settings"]["cpu_features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "portable")
    );
    let strategies = json["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), STRATEGY_NAMES.len());
    for s in strategies {
        let name = s["strategy"].as_str().unwrap();
        for phase in ["prefill", "decode"] {
            let p = &s[phase];
            for field in [
                "heap_allocations_per_token",
                "heap_bytes_per_token",
                "acquires_per_token",
                "misses_per_token",
                "hit_rate",
                "minor_faults_per_token",
                "peak_reserved_bytes",
                "footprint_bytes",
                "lower_bound_bytes",
                "peak_over_lower_bound",
                "retained_bytes_at_end",
                "evictions",
                "deviations",
                "tokens_per_second_median",
                "tokens_per_second_min",
                "tokens_per_second_max",
                "latency_p50_seconds",
                "latency_p99_seconds",
            ] {
                assert!(
                    p[field].is_number(),
                    "{name} {phase}: {field} missing in {p}"
                );
            }
            let f = |k: &str| p[k].as_f64().unwrap();
            assert!(
                f("lower_bound_bytes") > 0.0 && f("peak_reserved_bytes") >= f("lower_bound_bytes"),
                "{name} {phase}"
            );
            assert!(
                f("tokens_per_second_min") > 0.0
                    && f("tokens_per_second_min") <= f("tokens_per_second_max")
            );
            assert!(f("acquires_per_token") > 0.0 && (0.0..=1.0).contains(&f("hit_rate")));
            if name.starts_with("noop") {
                assert!(
                    f("heap_allocations_per_token") >= f("misses_per_token")
                        && f("misses_per_token") > 0.0,
                    "{name} {phase}"
                );
            } else {
                assert_eq!(
                    f("heap_allocations_per_token"),
                    0.0,
                    "{name} {phase} allocates"
                );
            }
            if name == "planned" {
                assert!(
                    f("peak_over_lower_bound") <= 1.05,
                    "planned {phase}: {}",
                    f("peak_over_lower_bound")
                );
            }
        }
        assert_eq!(
            s["decode"]["latencies_seconds"].as_array().unwrap().len(),
            12
        );
    }
    assert!(!json["tags"].as_array().unwrap().is_empty());

    let chart = |name: &str| -> String {
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg")))
            .unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}.svg is not XML: {e}"));
        svg
    };
    let labels = |svg: &str| -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_string))
            .collect()
    };
    // One row per strategy, prefill and decode each on its own axis.
    for phase in ["prefill", "decode"] {
        for name in [
            "tokens_per_second",
            "peak_vs_lower_bound",
            "heap_allocations",
            "fragmentation",
        ] {
            let file = format!("{name}_{phase}");
            let labels = labels(&chart(&file));
            for s in STRATEGY_NAMES {
                assert!(labels.iter().any(|l| l == s), "{file}.svg has no row `{s}`");
            }
            assert!(
                labels.iter().all(|l| !l.ends_with(".0")),
                "{file}.svg: a needless .0 in {labels:?}"
            );
        }
        for s in STRATEGY_NAMES {
            let file = format!("memory_map_{}_{phase}", s.replace('@', "-"));
            let svg = chart(&file);
            assert!(
                svg.matches("<rect").count() > 3,
                "{file}.svg draws no leases"
            );
        }
    }
    // The latency distribution has a line and a legend entry per strategy.
    let latency = chart("decode_latency");
    assert!(latency.matches("<path").count() >= STRATEGY_NAMES.len());
    let legend = labels(&latency);
    for s in STRATEGY_NAMES {
        assert!(legend.iter().any(|l| l == s), "no legend entry `{s}`");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_planted_allocation_is_counted() {
    let dir = temp_dir("planted");
    let json = compare_json(&dir, &["--pools", "planned,arena", "--plant-allocation"]);
    for s in json["strategies"].as_array().unwrap() {
        assert!(
            s["decode"]["heap_allocations_per_token"].as_f64().unwrap() >= 1.0,
            "{}",
            s["strategy"]
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trace_then_replay_gives_the_lower_bounds_of_compare() {
    let dir = temp_dir("trace");
    let trace_path = dir.join("run.trace.json");
    let mut args = vec!["trace"];
    args.extend(&WORKLOAD[..8]);
    args.extend(["--out", trace_path.to_str().unwrap()]);
    let out = scratchpad(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = scratchpad::Trace::read(&trace_path).unwrap();
    let [prefill, decode] = trace.phase_lower_bounds().unwrap();
    let json = compare_json(&dir, &[]);
    let compared = &json["strategies"][0];
    assert_eq!(
        prefill as u64,
        compared["prefill"]["lower_bound_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        decode as u64,
        compared["decode"]["lower_bound_bytes"].as_u64().unwrap()
    );

    let out = scratchpad(&["replay", trace_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("prefill {prefill}, decode {decode}")),
        "{stdout}"
    );
    for name in scratchpad::STRATEGY_NAMES {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "replay lists {name}: {stdout}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn churn_shows_growth_and_the_cap() {
    let dir = temp_dir("churn");
    let json = dir.join("churn.json");
    let out = scratchpad(&[
        "compare",
        "--scenario",
        "churn",
        "--threads",
        "1",
        "--max-retained-bytes",
        "262144",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("500 tokens"), "{stdout}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let rows = json["churn"].as_array().unwrap();
    assert_eq!(rows.len(), STRATEGY_NAMES.len() * 5);
    for row in rows.iter().filter(|r| r["strategy"] == "best-fit") {
        assert!(
            row["retained_bytes"].as_u64().unwrap() <= 262_144,
            "the cap holds: {row}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = temp_dir("bad");
    fails_with(
        &[
            "compare",
            "--synthetic",
            "synth-260k",
            "--pools",
            "first-fit",
        ],
        "unknown pool strategy `first-fit`",
    );
    fails_with(
        &[
            "compare",
            "--synthetic",
            "synth-260k",
            "--prompt-tokens",
            "600",
        ],
        "beyond the model's context of 512",
    );
    fails_with(
        &["compare", "--synthetic", "synth-260k", "--steps", "0"],
        "--steps must be at least 1",
    );
    fails_with(
        &["replay", dir.join("missing.json").to_str().unwrap()],
        "missing.json",
    );
    let cases = [
        (
            "version.json",
            r#"{"format":"scratchpad-trace","version":9,"events":[]}"#,
            "version 9",
        ),
        (
            "orphan.json",
            r#"{"format":"scratchpad-trace","version":1,"events":[{"op":"release","id":3}]}"#,
            "never acquired",
        ),
        ("garbage.json", "{not json", "invalid trace"),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        fails_with(&["replay", path.to_str().unwrap()], expected);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_of_a_recorded_trace_reproduces_compares_peaks_and_bounds() {
    let dir = temp_dir("replay-agrees");
    let compare = compare_json(&dir, &[]);
    let trace = dir.join("run.trace.json");
    let replayed = dir.join("replay.json");
    // The trace of one run of the same workload (its events do not depend
    // on the strategy that served them).
    let mut args = vec!["trace", "--out", trace.to_str().unwrap()];
    args.extend(&WORKLOAD[..8]);
    let out = scratchpad(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = scratchpad(&[
        "replay",
        trace.to_str().unwrap(),
        "--json",
        replayed.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay: Value = serde_json::from_str(&std::fs::read_to_string(&replayed).unwrap()).unwrap();
    let compared = compare["strategies"].as_array().unwrap();
    let replayed = replay["strategies"].as_array().unwrap();
    assert_eq!(replayed.len(), STRATEGY_NAMES.len());
    for name in STRATEGY_NAMES {
        let c = compared.iter().find(|s| s["strategy"] == name).unwrap();
        let r = replayed.iter().find(|s| s["strategy"] == name).unwrap();
        for phase in ["prefill", "decode"] {
            for field in ["peak_reserved_bytes", "lower_bound_bytes"] {
                assert_eq!(
                    r[phase][field], c[phase][field],
                    "{name} {phase} {field}: replay {} vs compare {}",
                    r[phase], c[phase]
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn churn_runs_on_a_three_token_vocabulary() {
    let dir = temp_dir("vocab3");
    let path = dir.join("vocab3.bin");
    let config = scratchpad_model::Config {
        dim: 16,
        hidden_dim: 32,
        n_layers: 1,
        n_heads: 2,
        n_kv_heads: 2,
        vocab_size: 3,
        seq_len: 32,
        shared_classifier: true,
    };
    std::fs::write(
        &path,
        scratchpad_model::synthetic::file_bytes(&config, 7).unwrap(),
    )
    .unwrap();
    let out = scratchpad(&[
        "compare",
        "--model",
        path.to_str().unwrap(),
        "--scenario",
        "churn",
        "--churn-lengths",
        "4,9",
        "--pools",
        "planned,bfc",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn huge_numbers_are_refused_before_anything_is_allocated() {
    for args in [
        &["--prompt-tokens", "1000000000000"][..],
        &["--prompt-tokens", "18446744073709551615"][..],
    ] {
        let mut all = vec!["compare", "--synthetic", "synth-260k"];
        all.extend(args);
        fails_with_limits(&all, "beyond the model's context");
    }
    for command in ["compare", "trace"] {
        let mut all = vec![
            command,
            "--synthetic",
            "synth-260k",
            "--steps",
            "18446744073709551615",
        ];
        if command == "trace" {
            all.extend(["--out", "never-written.trace.json"]);
        }
        fails_with(&all, "more positions than the model's context");
    }
    assert!(!std::path::Path::new("never-written.trace.json").exists());
}
