//! `cargo xtask test`: the README's test command. It runs
//! `cargo test --workspace --release --no-fail-fast`, passing its output
//! through, and
//! ends with one line: tests passed and failed, and how many skipped and
//! why. Only tests that need something outside Rust skip (a GPU, NVRTC,
//! Chromium); each prints `skipped: REASON` on stderr.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};

/// What a skip needed, from its reason.
fn class(reason: &str) -> &'static str {
    if reason.contains("NVRTC") {
        "NVRTC"
    } else if reason.contains("Chromium") || reason.contains("ChromeDriver") {
        "Chromium"
    } else {
        "a GPU"
    }
}

/// `NAME: N passed, M failed`, the closing line of a test binary with its
/// own harness (`alloc_free`).
fn harness_line(line: &str) -> Option<(u64, u64)> {
    let (name, rest) = line.split_once(": ")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let (passed, failed) = rest.strip_suffix(" failed")?.split_once(" passed, ")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// The closing line from the run's output lines.
pub fn summary(lines: &[String]) -> String {
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut skipped: Vec<(&'static str, usize, String)> = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("test result: ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            for pair in words.windows(2) {
                let n = pair[0].parse::<u64>().unwrap_or(0);
                if pair[1].starts_with("passed") {
                    passed += n;
                } else if pair[1].starts_with("failed") {
                    failed += n;
                }
            }
        } else if let Some((n, m)) = harness_line(line) {
            // A test binary with its own harness (the allocation counters).
            passed += n;
            failed += m;
        } else if let Some(reason) = line.strip_prefix("skipped: ") {
            let c = class(reason);
            match skipped.iter_mut().find(|s| s.0 == c) {
                Some(s) => s.1 += 1,
                None => skipped.push((c, 1, reason.to_string())),
            }
        }
    }
    let total: usize = skipped.iter().map(|s| s.1).sum();
    let why = if total == 0 {
        "none skipped".to_string()
    } else {
        let parts: Vec<String> = skipped
            .iter()
            .map(|(c, n, reason)| format!("{n} need {c} ({reason})"))
            .collect();
        format!("{total} skipped: {}", parts.join("; "))
    };
    format!("tests: {passed} passed, {failed} failed, {why}")
}

pub fn run() -> anyhow::Result<()> {
    let args = ["test", "--workspace", "--release", "--no-fail-fast"];
    eprintln!("$ cargo {}", args.join(" "));
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let pump = |stream: Box<dyn std::io::Read + Send>, to_stderr: bool| {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if to_stderr {
                    let _ = writeln!(std::io::stderr(), "{line}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        })
    };
    let out = pump(Box::new(child.stdout.take().expect("piped")), false);
    let err = pump(Box::new(child.stderr.take().expect("piped")), true);
    let status = child.wait()?;
    let _ = out.join();
    let _ = err.join();
    let lines = lines.lock().unwrap_or_else(|e| e.into_inner());
    println!("{}", summary(&lines));
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_tests_and_skips_by_need() {
        let lines: Vec<String> = [
            "test result: ok. 5 passed; 0 failed; 0 ignored",
            "skipped: no CUDA device: libcuda is not installed",
            "skipped: no CUDA device: libcuda is not installed",
            "skipped: NVRTC not found (install it)",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored",
            "alloc_free: 10 passed, 0 failed",
            "tests: 1 passed, 0 failed, none skipped",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            summary(&lines),
            "tests: 17 passed, 1 failed, 3 skipped: 2 need a GPU (no CUDA device: libcuda is not installed); 1 need NVRTC (NVRTC not found (install it))"
        );
        assert_eq!(summary(&[]), "tests: 0 passed, 0 failed, none skipped");
    }
}
