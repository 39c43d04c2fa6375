//! `cargo xtask gpu-bundle`: builds here everything the GPU check runs
//! (the test binaries of the CUDA crate, the model and the CLI's CUDA
//! test, the `cuda` bench, the CLI itself; stripped) and copies the small
//! test data and `run.sh` beside them, into one folder that works from any
//! path: the binaries find the data through `SCRATCHPAD_TEST_DATA` and the
//! CLI through `SCRATCHPAD_BIN`, which `run.sh` sets from its own place.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

/// The folder must stay small enough to carry (the device tool takes 64
/// MiB in all).
const MAX_BYTES: u64 = 60 << 20;

/// Test binaries the check runs: `(package, target)`.
const TESTS: [(&str, &str); 5] = [
    ("scratchpad-cuda", "scratchpad_cuda"),
    ("scratchpad-cuda", "it"),
    ("scratchpad-model", "it"),
    ("scratchpad-model", "alloc_free"),
    ("scratchpad-cli", "cuda"),
];

/// The test data the binaries read, from the repository's `testdata/` (or
/// `$SCRATCHPAD_TEST_DATA`).
const DATA: [&str; 8] = [
    "models/stories260K.bin",
    "models/tok512.bin",
    "models/tokenizer.bin",
    "reference/stories260K_greedy512.tokens.txt",
    "reference/stories260K_greedy512.logits.f32",
    "reference/stories260K_t0_n200_runc_stdout.txt",
    "reference/stories260K_t0_n256_prompt_runc_stdout.txt",
    "reference/encode_tok512.txt",
];

const SCRIPT: &str = include_str!("../gpu-check.sh");

pub fn build(out: Option<PathBuf>) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    let out = out.unwrap_or_else(|| root.join("target/gpu-check"));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    for dir in ["bin", "tests", "data/models", "data/reference"] {
        std::fs::create_dir_all(out.join(dir))?;
    }

    crate::cargo(&["build", "--release", "-p", "scratchpad-cli"], &[])?;
    strip_into(
        &root.join("target/release/scratchpad"),
        &out.join("bin/scratchpad"),
    )?;

    let mut args = vec!["test", "--release", "--no-run", "--message-format=json"];
    for (i, (package, _)) in TESTS.iter().enumerate() {
        if TESTS[..i].iter().all(|(p, _)| p != package) {
            args.extend(["-p", package]);
        }
    }
    let tests = executables(&args)?;
    for (package, target) in TESTS {
        let exe = tests
            .iter()
            .find(|(p, t, _)| p == package && t == target)
            .map(|(_, _, exe)| exe)
            .with_context(|| format!("cargo built no test binary {package}/{target}"))?;
        strip_into(exe, &out.join(format!("tests/{package}-{target}")))?;
    }
    let benches = executables(&[
        "bench",
        "--no-run",
        "--message-format=json",
        "-p",
        "scratchpad-benches",
        "--bench",
        "cuda",
    ])?;
    let (_, _, bench) = benches
        .iter()
        .find(|(_, t, _)| t == "cuda")
        .context("cargo built no cuda bench")?;
    strip_into(bench, &out.join("bin/bench-cuda"))?;

    let data = std::env::var_os("SCRATCHPAD_TEST_DATA")
        .map_or_else(|| root.join("testdata"), PathBuf::from);
    for rel in DATA {
        let from = data.join(rel);
        std::fs::copy(&from, out.join("data").join(rel))
            .with_context(|| format!("copying the test data {}", from.display()))?;
    }
    let script = out.join("run.sh");
    std::fs::write(&script, SCRIPT)?;
    make_executable(&script)?;
    std::fs::write(out.join("VERSION"), version(&root))?;

    let bytes = size(&out)?;
    println!(
        "gpu-bundle: {} ({:.1} MiB); on the GPU machine: bash {}/run.sh",
        out.display(),
        bytes as f64 / (1 << 20) as f64,
        out.file_name()
            .map_or("gpu-check".into(), |n| n.to_string_lossy())
    );
    if bytes > MAX_BYTES {
        bail!("the bundle is {bytes} bytes, over the {MAX_BYTES} that can be carried");
    }
    Ok(())
}

/// `(package, target, executable)` of every artifact with an executable
/// that `cargo <args>` builds.
fn executables(args: &[&str]) -> anyhow::Result<Vec<(String, String, PathBuf)>> {
    eprintln!("$ cargo {}", args.join(" "));
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("cargo {} failed ({})", args.join(" "), output.status);
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(exe), Some(target), Some(package)) = (
            message["executable"].as_str(),
            message["target"]["name"].as_str(),
            message["package_id"].as_str(),
        ) else {
            continue;
        };
        // package_id: "path+file:///…/crates/scratchpad-cuda#0.0.0" (or the
        // older "name version (source)").
        let name = package
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split(['#', '@']).next())
            .unwrap_or(package)
            .split_whitespace()
            .next()
            .unwrap_or(package);
        found.push((name.to_string(), target.to_string(), PathBuf::from(exe)));
    }
    Ok(found)
}

fn strip_into(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(to)
        .arg(from)
        .status()
        .context("running strip (binutils)")?;
    if !status.success() {
        bail!("strip {} failed", from.display());
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The commit the bundle was built from, for the results file.
fn version(root: &Path) -> String {
    Command::new("git")
        .args(["-C"])
        .arg(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}

fn size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
