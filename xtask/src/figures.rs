//! `cargo xtask figures`: reruns what the README's figures come from and
//! rewrites them in place, so they cannot go stale: the default `compare`
//! (synth-15m, every strategy, 5 repetitions) with its HTML report and
//! charts in `docs/`, the churn scenario, and the layer trace. Each README
//! block lies between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Runs `program args` in `root`, returning its stdout (then its stderr,
/// `with_stderr`: the layer trace test prints its table there); fails
/// with its stderr.
fn output(root: &Path, program: &Path, args: &[&str], with_stderr: bool) -> anyhow::Result<String> {
    eprintln!("$ {} {}", program.display(), args.join(" "));
    let out = Command::new(program)
        .args(args)
        .current_dir(root)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut text = String::from_utf8(out.stdout)?;
    if with_stderr {
        text.push_str(&String::from_utf8(out.stderr)?);
    }
    Ok(text)
}

/// Replaces the body of the README block `name` with `body`.
pub fn replace_block(readme: &str, name: &str, body: &str) -> anyhow::Result<String> {
    let open = format!("<!-- figures:{name} -->\n");
    let close = format!("<!-- /figures:{name} -->");
    let start = readme
        .find(&open)
        .with_context(|| format!("README.md has no `{}` marker", open.trim()))?
        + open.len();
    let end = readme[start..]
        .find(&close)
        .with_context(|| format!("README.md has no `{close}` marker"))?
        + start;
    Ok(format!("{}{body}{}", &readme[..start], &readme[end..]))
}

fn text_block(text: &str) -> String {
    format!("```text\n{}\n```\n", text.trim_matches('\n').trim_end())
}

pub fn run(root: &Path) -> anyhow::Result<()> {
    crate::cargo(&["build", "--release", "-p", "scratchpad-cli"], &[])?;
    let bin = root.join("target/release/scratchpad");
    let compare = output(
        root,
        &bin,
        &[
            "compare",
            "--plot",
            "docs/charts",
            "--report",
            "docs/report.html",
        ],
        false,
    )?;
    let churn = output(root, &bin, &["compare", "--scenario", "churn"], false)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let layer = output(
        root,
        Path::new(&cargo),
        &[
            "test",
            "--release",
            "-p",
            "scratchpad",
            "--test",
            "it",
            "layer_trace",
            "--",
            "--nocapture",
            "--test-threads=1",
        ],
        true,
    )?;
    let layer: Vec<&str> = layer
        .lines()
        .skip_while(|l| !l.starts_with("layer trace"))
        .take_while(|l| !l.starts_with("test "))
        .collect();
    if layer.is_empty() {
        bail!("the layer trace test printed no table");
    }
    let path = root.join("README.md");
    let mut readme = std::fs::read_to_string(&path)?;
    readme = replace_block(&readme, "compare", &text_block(&compare))?;
    readme = replace_block(&readme, "churn", &text_block(&churn))?;
    readme = replace_block(&readme, "layer-trace", &text_block(&layer.join("\n")))?;
    std::fs::write(&path, readme)?;
    eprintln!("rewrote README.md (compare, churn, layer-trace), docs/report.html and docs/charts/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_replaced_between_its_markers() {
        let readme = "a\n<!-- figures:x -->\nold\n<!-- /figures:x -->\nb\n";
        let new = replace_block(readme, "x", "new\n").unwrap();
        assert_eq!(new, "a\n<!-- figures:x -->\nnew\n<!-- /figures:x -->\nb\n");
        assert!(replace_block(readme, "y", "").is_err());
    }
}
