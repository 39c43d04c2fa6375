//! `compare --report` in a real browser: headless Chromium, driven through
//! ChromeDriver's WebDriver protocol (Debian packages `chromium` and
//! `chromium-driver`), loads the report from its file, finds every chart
//! drawn with content, no script, no network request and no console
//! message, and takes a screenshot of the whole page into
//! `target/report/report.png` (the report itself beside it).
//!
//! Without Chromium or ChromeDriver the test says why it skipped; under
//! `SCRATCHPAD_REQUIRE_CHROMIUM=1` (CI, which installs both) it fails.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{scratchpad, temp_dir};

/// Chromium's flags on a machine with no network and as root: no
/// sandbox, no GPU, no background connections.
const CHROME_ARGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// ChromeDriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(path: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", path.display()));
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, status)) = driver.try_request("GET", "/status", None)
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "ChromeDriver never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One HTTP/1.1 request with a JSON body; the status and JSON answer.
    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut bytes = Vec::new();
        match length {
            Some(n) => {
                bytes.resize(n, 0);
                reader.read_exact(&mut bytes)?;
            }
            None => {
                reader.read_to_end(&mut bytes)?;
            }
        }
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self
            .try_request(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }
}

/// A WebDriver session, deleted (its Chromium closed) when dropped.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .try_request("DELETE", &format!("/session/{}", self.id), None);
    }
}

/// Standard base64 (the screenshot).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let digits: Vec<u8> = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n = digits
            .iter()
            .fold(0u32, |acc, &d| (acc << 6) | u32::from(d))
            << (6 * (4 - digits.len()));
        out.extend(&n.to_be_bytes()[1..digits.len()]);
    }
    out
}

#[test]
fn the_report_opens_in_chromium_with_every_chart() {
    let required = std::env::var("SCRATCHPAD_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let chromium = find(
        "SCRATCHPAD_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let driver = find("SCRATCHPAD_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        assert!(
            !required,
            "SCRATCHPAD_REQUIRE_CHROMIUM=1 but chromium or chromedriver is missing"
        );
        let _ = writeln!(
            std::io::stderr(),
            "skipped: Chromium or ChromeDriver not installed (apt install chromium chromium-driver)"
        );
        return;
    };

    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/report");
    std::fs::create_dir_all(&out_dir).unwrap();
    let report = out_dir.join("report.html");
    let out = scratchpad(&[
        "compare",
        "--synthetic",
        "synth-260k",
        "--prompt-tokens",
        "32",
        "--steps",
        "16",
        "--repeat",
        "3",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    let charts_in_file = html.matches("<svg ").count();
    assert!(!html.contains("<script"), "the report has a script");
    let profile = temp_dir("chromium-profile");

    let driver = Driver::start(&driver);
    let mut args: Vec<String> = CHROME_ARGS.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push("--window-size=1400,1000".into());
    let session = driver.request(
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}})),
    );
    let id = session["sessionId"].as_str().unwrap().to_string();
    // Closed (and its browser ended) even when an assertion below fails.
    let _session = Session {
        driver: &driver,
        id: id.clone(),
    };
    let url = format!("file://{}", report.canonicalize().unwrap().display());
    driver.request(
        "POST",
        &format!("/session/{id}/url"),
        Some(json!({"url": url})),
    );
    let found = driver.request(
        "POST",
        &format!("/session/{id}/execute/sync"),
        Some(json!({"script": r#"
            const charts = [...document.querySelectorAll('svg.chart')];
            return {
                charts: charts.length,
                drawn: charts.filter(s => {
                    const box = s.getBoundingClientRect();
                    return box.width > 300 && box.height > 100
                        && s.querySelectorAll('rect, path, circle').length >= 3;
                }).length,
                titles: charts.map(s => s.getAttribute('aria-label')),
                tables: document.querySelectorAll('table').length,
                scripts: document.scripts.length,
                requests: performance.getEntriesByType('resource').length,
                height: document.documentElement.scrollHeight,
            };
        "#, "args": []})),
    );
    let charts = found["charts"].as_u64().unwrap() as usize;
    assert_eq!(charts, charts_in_file, "{found}");
    // 2 speed, 1 latency, 2 peak/bound, 2 fragmentation, 2 allocations,
    // 2 live/held, and 2 maps per strategy.
    assert_eq!(charts, 11 + 2 * scratchpad::STRATEGY_NAMES.len(), "{found}");
    assert_eq!(
        found["drawn"], found["charts"],
        "charts drawn empty: {found}"
    );
    assert_eq!(found["tables"], 2);
    assert_eq!(found["scripts"], 0);
    assert_eq!(found["requests"], 0, "the report loaded something: {found}");
    let log = driver.request(
        "POST",
        &format!("/session/{id}/se/log"),
        Some(json!({"type": "browser"})),
    );
    assert_eq!(
        log.as_array().map_or(0, Vec::len),
        0,
        "console messages: {log}"
    );
    // The whole page in one screenshot.
    let height = found["height"].as_u64().unwrap().min(20_000);
    driver.request(
        "POST",
        &format!("/session/{id}/window/rect"),
        Some(json!({"width": 1400, "height": height})),
    );
    let png = base64(
        driver
            .request("GET", &format!("/session/{id}/screenshot"), None)
            .as_str()
            .unwrap(),
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let shot = out_dir.join("report.png");
    std::fs::write(&shot, &png).unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "report screenshot: {} ({} KiB, {charts} charts)",
        shot.display(),
        png.len() / 1024
    );
    let _ = std::fs::remove_dir_all(&profile);
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("aGk="), b"hi");
    assert_eq!(base64("YWJj"), b"abc");
}
