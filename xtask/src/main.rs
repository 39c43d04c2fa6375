//! Project automation. `cargo xtask ci` runs what CI runs: the format check,
//! clippy with warnings denied, the tests in release mode, and the docs with
//! warnings denied. `cargo xtask test` is the README's test command (the
//! tests, then one line counting skips and why). `cargo xtask figures`
//! regenerates the README's figures and `docs/`. `cargo xtask gpu-bundle`
//! builds everything a GPU run needs into one folder to carry to a machine
//! with a GPU and no Rust.
#![forbid(unsafe_code)]

mod figures;
mod gpu_bundle;
mod test;

use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    match task.as_deref() {
        Some("ci") => ci(),
        Some("test") => test::run(),
        Some("figures") => figures::run(&workspace_root()?),
        Some("fuzz") => {
            let seconds: u64 = args
                .next()
                .as_deref()
                .unwrap_or("60")
                .parse()
                .context("fuzz: SECONDS must be a whole number")?;
            fuzz(seconds)
        }
        Some("gpu-bundle") => {
            let out = match (args.next().as_deref(), args.next()) {
                (None, _) => None,
                (Some("--out"), Some(dir)) => Some(dir.into()),
                (other, _) => bail!(
                    "gpu-bundle: unexpected argument {other:?} (usage: cargo xtask gpu-bundle [--out DIR])"
                ),
            };
            gpu_bundle::build(out)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask test | ci | figures | gpu-bundle [--out DIR] | fuzz [SECONDS]"
            );
            eprintln!(
                "  test        cargo test --workspace --release, then one line: passed, failed, skipped and why"
            );
            eprintln!(
                "  figures     rerun compare, churn and the layer trace; rewrite README.md's blocks, docs/report.html, docs/charts/"
            );
            eprintln!(
                "  ci          fmt check, clippy -D warnings, cargo test --workspace --release, cargo doc"
            );
            eprintln!(
                "  fuzz        every fuzz target for SECONDS each (nightly and cargo-fuzz: `cargo install cargo-fuzz`)"
            );
            eprintln!(
                "  gpu-bundle  the GPU tests, the cuda bench, the CLI (stripped) and the test data in one folder\n              [default: target/gpu-check], with run.sh to run them on a GPU machine"
            );
            bail!("unknown task {task:?}")
        }
    }
}

fn ci() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--release",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    test::run()?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    Ok(())
}

/// The fuzz targets of `fuzz/`, in the order `cargo xtask fuzz` runs them.
const FUZZ_TARGETS: [&str; 5] = ["checkpoint", "tokenizer", "encode", "trace", "forward"];

/// Runs every fuzz target for `seconds` from its seed corpus (nightly,
/// cargo-fuzz, AddressSanitizer) and prints the executions of each; fails
/// on the first crash, which cargo-fuzz saves under `fuzz/artifacts/`.
fn fuzz(seconds: u64) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let fuzz_dir = root.join("fuzz");
    let mut report = Vec::new();
    for target in FUZZ_TARGETS {
        // New inputs go to an ignored working corpus; the seeds in the
        // repository are read only.
        let seeds = fuzz_dir.join("corpus").join(target);
        let corpus = fuzz_dir.join("target").join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        eprintln!("$ cargo +nightly fuzz run {target} ({seconds} s)");
        let output = Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .env(
                "SCRATCHPAD_TEST_DATA",
                std::env::var_os("SCRATCHPAD_TEST_DATA")
                    .unwrap_or_else(|| root.join("testdata").into_os_string()),
            )
            .output()
            .context("running cargo +nightly fuzz (install it with `cargo install cargo-fuzz`)")?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            eprintln!("{log}");
            bail!("fuzz target {target} failed (see fuzz/artifacts/{target}/)");
        }
        let runs = log
            .lines()
            .rev()
            .filter_map(|l| l.strip_prefix("Done "))
            .find_map(|l| l.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        report.push((target, runs));
    }
    for (target, runs) in report {
        println!("fuzz {target:<11} {runs:>12} executions in {seconds} s, 0 crashes");
    }
    Ok(())
}

pub(crate) fn cargo(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The repository's root: xtask's parent folder.
pub(crate) fn workspace_root() -> anyhow::Result<std::path::PathBuf> {
    Ok(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf())
}
