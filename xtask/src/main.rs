//! Project automation. `cargo xtask ci` runs what CI runs: the format check,
//! clippy with warnings denied, the tests in release mode, and the docs with
//! warnings denied. `cargo xtask gpu-bundle` builds everything a GPU run
//! needs into one folder to carry to a machine with a GPU and no Rust.
#![forbid(unsafe_code)]

mod gpu_bundle;

use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    match task.as_deref() {
        Some("ci") => ci(),
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
            eprintln!("usage: cargo xtask ci | gpu-bundle [--out DIR]");
            eprintln!(
                "  ci          fmt check, clippy -D warnings, cargo test --workspace --release, cargo doc"
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
    cargo(&["test", "--workspace", "--release"], &[])?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
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
