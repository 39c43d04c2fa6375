//! The tidy test: habits of STYLE.md checked mechanically over every Rust
//! file of the workspace.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn workspace_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut files = Vec::new();
    for dir in ["crates", "benches", "examples", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found the workspace's sources");
    // This file names the patterns it looks for.
    files.retain(|p| !p.ends_with("xtask/tests/tidy.rs"));
    files
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(&root).unwrap().to_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_file_opens_with_a_doc_line() {
    for (path, text) in workspace_files() {
        assert!(
            text.starts_with("//!"),
            "{}: open with a `//!` line saying what the file is",
            path.display()
        );
    }
}

#[test]
fn no_catch_all_module_names() {
    for (path, _) in workspace_files() {
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert!(
            !["utils", "util", "misc", "base", "helpers", "common"].contains(&stem.as_ref()),
            "{}: name the file after its concept",
            path.display()
        );
    }
}

#[test]
fn no_ignored_tests() {
    let marker = ["#[", "ignore"].concat();
    for (path, text) in workspace_files() {
        assert!(
            !text.contains(&marker),
            "{}: no ignored tests",
            path.display()
        );
    }
}

#[test]
fn every_unsafe_block_is_argued() {
    for (path, text) in workspace_files() {
        let lines: Vec<&str> = text.lines().collect();
        for (idx, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap();
            let is_block = code.contains("unsafe {") && !code.contains("unsafe fn");
            let is_impl = code.trim_start().starts_with("unsafe impl");
            if !(is_block || is_impl) {
                continue;
            }
            let argued = lines[..idx]
                .iter()
                .rev()
                .take(12)
                .any(|l| l.contains("SAFETY:"));
            assert!(
                argued,
                "{}:{}: `unsafe` needs a `// SAFETY:` comment above it",
                path.display(),
                idx + 1
            );
        }
    }
}

#[test]
fn crates_without_unsafe_forbid_it() {
    for (path, text) in workspace_files() {
        let is_root = path.ends_with("lib.rs")
            || (path.ends_with("main.rs") && !path.to_string_lossy().contains("tests"));
        if !is_root {
            continue;
        }
        let dir = path.parent().unwrap();
        let crate_uses_unsafe = workspace_files()
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .any(|(_, t)| {
                t.lines()
                    .any(|l| l.split("//").next().unwrap().contains("unsafe "))
            });
        if !crate_uses_unsafe {
            assert!(
                text.contains("#![forbid(unsafe_code)]"),
                "{}: a crate without unsafe says #![forbid(unsafe_code)]",
                path.display()
            );
        }
    }
}
