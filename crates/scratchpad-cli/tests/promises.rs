//! What the CLI promises a person at the terminal: output paths that are
//! never replaced when they are not regular files and are checked before
//! the work, one clear error line each, run.c's reading of `-n`, and
//! `compare`'s flags doing what they say. Every special file is made in a
//! temporary folder; no test points at a real `/dev` entry.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{data, fails_with, scratchpad, temp_dir};

const SMALL: [&str; 8] = [
    "--synthetic",
    "synth-260k",
    "--prompt-tokens",
    "8",
    "--steps",
    "4",
    "--repeat",
    "1",
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr_of(args: &[&str]) -> (bool, String, String) {
    let out = scratchpad(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_fifo_or_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(p).unwrap().file_type();
    t.is_fifo() || t.is_char_device()
}

/// Every command's output flag, with the arguments that make it write
/// `path`: (what, args).
fn writers(dir: &Path, path: &Path) -> Vec<(&'static str, Vec<String>)> {
    let trace = dir.join("input.trace.json");
    if !trace.exists() {
        let (ok, _, err) = stderr_of(&[&["trace", "--out", s(&trace)][..], &SMALL[..6]].concat());
        assert!(ok, "{err}");
    }
    let p = s(path).to_string();
    let own = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let small = |mut v: Vec<String>| {
        v.extend(own(&SMALL));
        v
    };
    vec![
        ("synth --out", own(&["synth", "synth-260k", "--out", &p])),
        (
            "trace --out",
            own(&[&["trace", "--out", &p][..], &SMALL[..6]].concat()),
        ),
        (
            "trace --chrome",
            own(&[
                &[
                    "trace",
                    "--out",
                    s(&dir.join("side.trace.json")),
                    "--chrome",
                    &p,
                ][..],
                &SMALL[..6],
            ]
            .concat()),
        ),
        ("compare --json", small(own(&["compare", "--json", &p]))),
        ("compare --report", small(own(&["compare", "--report", &p]))),
        (
            "replay --json",
            own(&["replay", s(&trace), "--pools", "planned", "--json", &p]),
        ),
    ]
}

fn run(args: &[String]) -> (bool, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stderr_of(&args)
}

#[test]
fn a_symlink_is_followed_and_kept() {
    let dir = temp_dir("promise-symlink");
    for (what, _) in writers(&dir, &dir.join("x")) {
        let real = dir.join(format!("real-{}", what.replace(' ', "_")));
        std::fs::write(&real, b"old").unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (_, args) = writers(&dir, &link)
            .into_iter()
            .find(|(w, _)| *w == what)
            .unwrap();
        let (ok, _, err) = run(&args);
        assert!(ok, "{what}: {err}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{what} replaced the symlink"
        );
        assert_ne!(std::fs::read(&real).unwrap(), b"old", "{what}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fifo_is_written_in_place() {
    let dir = temp_dir("promise-fifo");
    let fifo = dir.join("pipe");
    for (what, args) in writers(&dir, &fifo) {
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // A reader drains the pipe while the command writes into it.
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let (ok, _, err) = run(&args);
        assert!(ok, "{what}: {err}");
        let got = reader.join().unwrap();
        assert!(!got.is_empty(), "{what} wrote nothing into the FIFO");
        assert!(is_fifo_or_device(&fifo), "{what} replaced the FIFO");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A character device made in the temporary folder as a copy of
/// `/dev/null` (1, 3) or `/dev/full` (1, 7); `None` where this user may
/// not make devices.
fn device(dir: &Path, name: &str, minor: u32) -> Option<PathBuf> {
    let path = dir.join(name);
    let made = Command::new("mknod")
        .arg(&path)
        .args(["c", "1", &minor.to_string()])
        .output()
        .ok()?;
    made.status.success().then_some(path)
}

#[test]
fn a_character_device_is_written_never_replaced() {
    let dir = temp_dir("promise-device");
    let Some(null) = device(&dir, "null", 3) else {
        // mknod needs root (CI runs as root); the FIFO test covers the
        // same in-place path.
        eprintln!("note: mknod not permitted here; device cases covered by the FIFO test only");
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    };
    for (what, args) in writers(&dir, &null) {
        let (ok, _, err) = run(&args);
        assert!(ok, "{what}: {err}");
        assert!(is_fifo_or_device(&null), "{what} replaced the device");
    }
    // A full disk: one clear error, the device still there, nothing left.
    let full = device(&dir, "full", 7).unwrap();
    for (what, args) in writers(&dir, &full) {
        let (ok, _, err) = run(&args);
        assert!(!ok, "{what} succeeded on a full device");
        assert!(
            err.contains("No space left on device") && err.matches("os error").count() == 1,
            "{what}: {err}"
        );
        assert!(is_fifo_or_device(&full), "{what} replaced the device");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_output_paths_are_refused_before_the_work() {
    let dir = temp_dir("promise-refused");
    let missing = dir.join("missing").join("x.out");
    for (what, args) in writers(&dir, &missing) {
        let (ok, stdout, err) = run(&args);
        assert!(!ok, "{what}");
        assert!(err.contains("does not exist"), "{what}: {err}");
        // Refused before the work: no table, no "wrote".
        assert!(
            stdout.is_empty() && !err.contains("wrote"),
            "{what}: {stdout}{err}"
        );
    }
    let folder = dir.join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    for (what, args) in writers(&dir, &folder) {
        let (ok, stdout, err) = run(&args);
        assert!(!ok && err.contains("it is a directory"), "{what}: {err}");
        assert!(stdout.is_empty(), "{what}");
    }
    // --plot naming a file fails before the JSON is written.
    let afile = dir.join("afile");
    std::fs::write(&afile, b"").unwrap();
    let json = dir.join("c.json");
    let mut args = vec!["compare", "--json", s(&json), "--plot", s(&afile)];
    args.extend(SMALL);
    fails_with(&args, "not a directory");
    assert!(!json.exists());
    // A user's file named like the old fixed temporary is left alone.
    let out = dir.join("run.trace.json");
    std::fs::write(dir.join("run.trace.json.tmp"), b"mine").unwrap();
    let (ok, _, err) = stderr_of(&[&["trace", "--out", s(&out)][..], &SMALL[..6]].concat());
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(dir.join("run.trace.json.tmp")).unwrap(),
        b"mine"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_error_is_one_clear_line() {
    let dir = temp_dir("promise-errors");
    let (ok, _, err) = stderr_of(&["generate", "--model", "/nonexistent/model.bin"]);
    assert!(!ok);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    fails_with(&["generate", "--model", s(&dir)], "a directory, not a file");
    fails_with(
        &["generate", "--model", "x", "-z", s(&dir)],
        "x: No such file",
    );
    let text = dir.join("notes.bin");
    std::fs::write(&text, "this is not a model at al").unwrap();
    let (_, _, err) = stderr_of(&["generate", "--model", s(&text)]);
    assert!(err.contains("not a llama2.c checkpoint"), "{err}");
    assert!(!err.contains("truncated"), "{err}");
    // A replay that runs out names the strategy, without API advice.
    let trace = dir.join("t.json");
    let (ok, _, err) = stderr_of(&[&["trace", "--out", s(&trace)][..], &SMALL[..6]].concat());
    assert!(ok, "{err}");
    let (ok, _, err) = stderr_of(&[
        "replay",
        s(&trace),
        "--pools",
        "arena",
        "--reserve-limit",
        "4096",
    ]);
    assert!(!ok);
    assert!(err.contains("replaying through `arena`"), "{err}");
    assert!(!err.contains("trim()"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_reads_n_as_run_c_does() {
    let model = data("models/stories260K.bin");
    let tok = data("models/tok512.bin");
    let base = [
        "generate", "--model", &model, "-z", &tok, "-t", "0.9", "-s", "7",
    ];
    let with = |n: &str| {
        let (ok, out, err) = stderr_of(&[&base[..], &["-n", n]].concat());
        assert!(ok, "{err}");
        (out, err)
    };
    let (full, full_err) = with("512");
    let (zero, zero_err) = with("0");
    assert_eq!(zero, full, "-n 0 is the whole context");
    assert!(
        zero_err.contains("-n 0 runs the model's whole context of 512"),
        "{zero_err}"
    );
    let (beyond, beyond_err) = with("9999");
    assert_eq!(beyond, full, "-n beyond the context is clamped to it");
    assert!(
        beyond_err.contains("-n 9999 is beyond the model's context; running 512"),
        "{beyond_err}"
    );
    assert!(!full_err.contains("note:"), "{full_err}");
    // Stopping at BOS before -n is said.
    let (ok, out, err) = stderr_of(&["generate", "--synthetic", "synth-260k", "-t", "0"]);
    assert!(ok && out.trim().is_empty());
    assert!(
        err.contains("stopped at BOS after 1 token (of -n 256)"),
        "{err}"
    );
    // A prompt that fills -n is reported, not silently cut.
    let (ok, _, err) =
        stderr_of(&[&base[..], &["-i", "Once upon a time there was", "-n", "3"]].concat());
    assert!(ok);
    assert!(
        err.contains("only its first 3 run and nothing is generated"),
        "{err}"
    );
}

#[test]
fn compare_flags_do_what_they_say() {
    // Duplicates run once; two strategies read as English.
    let (ok, out, err) = stderr_of(
        &[
            &["compare", "--pools", "planned,planned,arena,planned"][..],
            &SMALL[..],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let rows = out.lines().filter(|l| l.starts_with("planned ")).count();
    assert_eq!(rows, 2, "one row per phase:\n{out}");
    assert!(
        out.contains("both strategies generated the same 4 tokens"),
        "{out}"
    );
    let (ok, out, _) = stderr_of(&[&["compare", "--pools", "planned"][..], &SMALL[..]].concat());
    assert!(ok && out.contains("planned generated 4 tokens"), "{out}");
    // The narrow table fits 120 columns (the heading line above it names
    // the run); --wide adds the rest.
    assert!(out.lines().skip(1).all(|l| l.len() <= 120), "{out}");
    let (ok, wide, _) =
        stderr_of(&[&["compare", "--pools", "planned", "--wide"][..], &SMALL[..]].concat());
    assert!(ok && wide.contains("footprint") && !out.contains("footprint"));
    // --by-tag says what its peak covers.
    let (ok, out, _) = stderr_of(
        &[
            &["compare", "--pools", "planned", "--by-tag"][..],
            &SMALL[..],
        ]
        .concat(),
    );
    assert!(ok && out.contains("over one whole run"), "{out}");
    // The churn scenario refuses what it cannot honour.
    for flag in [
        &["--plot", "x"][..],
        &["--report", "x.html"],
        &["--by-tag"],
        &["--repeat", "2"],
        &["--steps", "3"],
        &["--prompt-tokens", "5"],
    ] {
        fails_with(
            &[&["compare", "--scenario", "churn"][..], flag].concat(),
            "does not apply to --scenario churn",
        );
    }
    fails_with(
        &["compare", "--scenario", "churn", "--churn-lengths", "4,0"],
        "at least 1 token",
    );
    // The churn table fits 120 columns too; --wide adds retained bytes.
    let churn = [
        "compare",
        "--scenario",
        "churn",
        "--churn-lengths",
        "8,32,16,24,4",
    ];
    let (ok, narrow, _) = stderr_of(&churn);
    assert!(ok && narrow.lines().all(|l| l.len() <= 120), "{narrow}");
    let (ok, wide, _) = stderr_of(&[&churn[..], &["--wide"]].concat());
    assert!(ok && wide.contains("reserved / retained") && !narrow.contains(" / "));
    // trace --help names no flag trace lacks.
    let (_, help, _) = stderr_of(&["trace", "--help"]);
    assert!(!help.contains("--scenario"), "{help}");
}

#[test]
fn an_empty_trace_prints_no_ratio() {
    let dir = temp_dir("promise-empty");
    let trace = dir.join("empty.json");
    std::fs::write(
        &trace,
        r#"{"format":"scratchpad-trace","version":1,"events":[]}"#,
    )
    .unwrap();
    let (ok, out, err) = stderr_of(&["replay", s(&trace), "--pools", "planned"]);
    assert!(ok, "{err}");
    assert!(!out.contains("0.000"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_chrome_export_opens_as_trace_events() {
    let dir = temp_dir("promise-chrome");
    let chrome = dir.join("run.chrome.json");
    let (ok, _, err) = stderr_of(
        &[
            &[
                "trace",
                "--out",
                s(&dir.join("t.json")),
                "--chrome",
                s(&chrome),
            ][..],
            &SMALL[..6],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&chrome).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert!(count("b") > 10 && count("b") == count("e"));
    assert!(count("X") >= 2, "step slices");
    let counters: std::collections::HashSet<_> = events
        .iter()
        .filter(|e| e["ph"] == "C")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(counters.contains("live bytes"));
    assert!(counters.iter().any(|n| n.starts_with("held bytes")));
    for e in events.iter().filter(|e| e["ph"] == "b") {
        assert!(e["args"]["bytes"].as_u64().unwrap() > 0);
        assert!(e["name"].as_str().unwrap().contains('.'), "a tag name");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn model_files_are_copied_into_memory_unless_mmap() {
    let model = data("models/stories260K.bin");
    let tok = data("models/tok512.bin");
    let args = [
        "generate", "--model", &model, "-z", &tok, "-t", "0", "-n", "40",
    ];
    let (ok, copied, err) = stderr_of(&args);
    assert!(ok, "{err}");
    let (ok, mapped, err) = stderr_of(&[&args[..], &["--mmap"]].concat());
    assert!(ok, "{err}");
    assert_eq!(copied, mapped, "the same text either way");
    fails_with(
        &["generate", "--synthetic", "synth-260k", "--mmap"],
        "--mmap applies to --model files only",
    );
    // The copy counts toward --max-memory; the map does not. stories260K's
    // weights are about 1 MB: a budget that holds the run but not the copy.
    let need = |copied: bool| {
        let c = scratchpad_model::Checkpoint::open(std::path::Path::new(&model)).unwrap();
        scratchpad_model::RunMemory::of_model_copied(&c, copied)
            .unwrap()
            .total()
            .unwrap()
    };
    let budget = (need(false) + need(true)) / 2;
    let budget = budget.to_string();
    let limited = [
        "generate",
        "--model",
        &model,
        "-n",
        "4",
        "--max-memory",
        &budget,
    ];
    fails_with(&limited, "weights held");
    let (ok, _, err) = stderr_of(&[&limited[..], &["--mmap"]].concat());
    assert!(ok, "{err}");
}

#[test]
fn out_dev_stdout_writes_to_standard_output() {
    // Piped: the checkpoint arrives on the pipe.
    let out = scratchpad(&["synth", "synth-260k", "--out", "/dev/stdout"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = {
        let dir = temp_dir("promise-stdout");
        let file = dir.join("s.bin");
        let made = scratchpad(&["synth", "synth-260k", "--out", s(&file)]);
        assert!(made.status.success());
        let bytes = std::fs::read(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        bytes
    };
    assert_eq!(out.stdout, expected);
    // Redirected to a file: written into that file, which stays the one
    // the descriptor holds (no rename over it).
    let dir = temp_dir("promise-stdout-file");
    let file = dir.join("redirected.bin");
    let handle = std::fs::File::create(&file).unwrap();
    let status = Command::new(support::binary())
        .args(["synth", "synth-260k", "--out", "/dev/stdout"])
        .stdout(handle)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&file).unwrap(), expected);
    // A path ending in / names a directory.
    fails_with(
        &[
            "synth",
            "synth-260k",
            "--out",
            &format!("{}/new/", dir.display()),
        ],
        "it names a directory",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
