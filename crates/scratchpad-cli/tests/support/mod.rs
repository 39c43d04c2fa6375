//! Helpers the binary's test files share: running it, temporary folders,
//! the test data, and expected failures.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test: `$SCRATCHPAD_BIN` when set (a test binary
/// carried to another machine with the CLI beside it), else cargo's.
pub fn binary() -> PathBuf {
    std::env::var_os("SCRATCHPAD_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_scratchpad")),
        PathBuf::from,
    )
}

/// Runs `scratchpad` with `args`.
pub fn scratchpad(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh temporary folder named for the test and the process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scratchpad-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `<test data>/<rel>` as a string: the repository's `testdata/`, or
/// `$SCRATCHPAD_TEST_DATA` when set (binaries carried to another machine).
/// A missing file fails the test: the data ships with the repository.
#[allow(dead_code)]
pub fn data(rel: &str) -> String {
    let root = std::env::var_os("SCRATCHPAD_TEST_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    let path = root.join(rel);
    assert!(
        path.exists(),
        "test data {} is missing (it ships in testdata/; see testdata/README.md)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// As [`fails_with`], but under a 20-second timeout and a 4 GB address
/// space (`timeout`, `ulimit -v`): for inputs that, if the check that
/// refuses them regressed, would allocate terabytes or spawn a million
/// threads instead of failing the test.
#[allow(dead_code)]
pub fn fails_with_limits(args: &[&str], expected: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000 && exec timeout 20 \"$0\" \"$@\"")
        .arg(binary())
        .args(args)
        .output()
        .expect("sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_ne!(out.status.code(), Some(124), "{args:?} timed out");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}

/// Runs with `args`, expecting failure with `expected` in stderr and no
/// panic.
#[allow(dead_code)]
pub fn fails_with(args: &[&str], expected: &str) {
    let out = scratchpad(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{args:?} panicked: {stderr}"
    );
}
