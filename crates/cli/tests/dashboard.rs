//! The dashboard of `runyard serve` in a real headless Chromium, driven
//! over the W3C WebDriver protocol through Debian's chromedriver by the
//! small client below (plain HTTP/1.1 over a TCP stream, JSON bodies).
//!
//! Over a state file holding dead jobs, with a worker draining it: filter
//! to the dead jobs, retry one whose command now succeeds, watch it
//! succeed without reloading the page; open a job's page and find each
//! attempt's error. Then the login form of a server with a token, and a
//! read-only server, which shows no action button. And the Tasks, Limits
//! and Schedules pages: a task paused from its page starts no job until it
//! is resumed, a limit set and cleared, a schedule triggered and paused.
//!
//! `RUNYARD_UPDATE_SCREENSHOTS=1` also writes the screenshots of
//! docs/dashboard.md (`docs/img/dashboard-*.png`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::{said_address, Background};

mod support;

/// Where Debian puts them; `RUNYARD_TEST_CHROMIUM` and
/// `RUNYARD_TEST_CHROMEDRIVER` name others.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a condition in the page may take to come true.
const PATIENCE: Duration = Duration::from_secs(60);
/// The key of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1").env_remove("RUNYARD_SERVE_TOKEN");
    c
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runyard serve ARGS` on an ephemeral loopback port, and its address.
fn serve(args: &[&str], env: &[(&str, &str)]) -> (Background, SocketAddr) {
    let mut cmd = runyard();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied());
    let mut proc = Background::start(cmd);
    let addr = proc.wait_for("runyard serve says its address", said_address);
    (proc, addr)
}

// ---- a WebDriver client ---------------------------------------------------

/// One HTTP/1.1 exchange with JSON bodies: the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // The answer ends where its length says (chromedriver may keep the
    // connection open), or with the last chunk, or when it is closed.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(done) = complete(&raw) {
            raw.truncate(done);
            break;
        }
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer from {addr}{path}: {text}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rest = if chunked(head) {
        unchunk(rest)
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&rest).unwrap_or(Value::Null))
}

fn chunked(head: &str) -> bool {
    head.to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
}

/// The length of the whole answer in `raw`, once it is all there.
fn complete(raw: &[u8]) -> Option<usize> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if chunked(&head) {
        return raw[end..]
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .filter(|&i| i == 0 || raw[end + i - 1] == b'\n')
            .map(|i| end + i + 5);
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())?;
    (raw.len() >= end + len).then_some(end + len)
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver and one Chromium session; both ended when dropped.
struct Browser {
    driver: Option<Background>,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromium = program("RUNYARD_TEST_CHROMIUM", CHROMIUM);
        let chromedriver = program("RUNYARD_TEST_CHROMEDRIVER", CHROMEDRIVER);
        for (what, path) in [("chromium", &chromium), ("chromedriver", &chromedriver)] {
            assert!(
                Path::new(path).is_file(),
                "the dashboard's browser test needs {what}, and there is none at {path}: install \
                 Debian's chromium and chromium-driver packages (`apt-get install chromium \
                 chromium-driver`; bash scripts/test installs them), or name it in \
                 RUNYARD_TEST_CHROMIUM / RUNYARD_TEST_CHROMEDRIVER"
            );
        }
        // A free port for chromedriver: one the system just gave.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut cmd = Command::new(&chromedriver);
        cmd.args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]);
        let driver = Background::start(cmd);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut ready = false;
        wait_until("chromedriver answering /status", || {
            ready = TcpStream::connect(addr).is_ok()
                && http(addr, "GET", "/status", None).1["value"]["ready"] == true;
            ready
        });
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1360,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}
        });
        let (status, v) = http(addr, "POST", "/session", Some(&caps));
        assert_eq!(
            status,
            200,
            "chromedriver did not start Chromium: {v}\n{}",
            driver.stderr()
        );
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            driver: Some(driver),
            addr,
            session,
            _profile: profile,
        }
    }

    /// A command of the session; its `value`.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_cmd(method, path, body) {
            Ok(v) => v,
            Err(v) => panic!("{method} {path}: {v}"),
        }
    }

    /// A command of the session: its `value`, or WebDriver's error.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("/session/{}{path}", self.session);
        let (status, v) = http(self.addr, method, &url, body.as_ref());
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page with `args`.
    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits until the expression `expr` is true in the page.
    fn wait_for(&self, expr: &str, what: &str) {
        let script = format!("return !!({expr});");
        let start = Instant::now();
        while self.js(&script, json!([])) != true {
            if start.elapsed() > PATIENCE {
                let body = self.js("return document.body.innerText;", json!([]));
                panic!("gave up waiting for {what} ({expr}); the page says:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The elements that `css` selects.
    fn all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("not an element: {e}"))
                    .to_string()
            })
            .collect()
    }

    /// The one element `css` selects (waiting for it).
    fn find(&self, css: &str) -> String {
        let q = serde_json::to_string(css).unwrap();
        self.wait_for(&format!("document.querySelector({q})"), css);
        self.all(css).remove(0)
    }

    /// Clicks the element `css` selects. The page redraws what changed
    /// every 2 s: an element replaced between finding and clicking it is
    /// found again.
    fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let e = self.find(css);
            match self.try_cmd("POST", &format!("/element/{e}/click"), Some(json!({}))) {
                Ok(_) => return,
                Err(v) if v["error"] == "stale element reference" && start.elapsed() < PATIENCE => {
                }
                Err(v) => panic!("clicking {css}: {v}"),
            }
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The text of the first element `css` selects (waiting for it).
    fn text(&self, css: &str) -> String {
        self.find(css);
        self.texts(css).remove(0)
    }

    /// The text of each element `css` selects, read at one moment.
    fn texts(&self, css: &str) -> Vec<String> {
        let v = self.js(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);",
            json!([css]),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// Whether an element `css` selects is shown (laid out, not hidden).
    fn displayed(&self, css: &str) -> bool {
        self.js(
            "return Array.from(document.querySelectorAll(arguments[0])).some(e => e.offsetParent !== null);",
            json!([css]),
        ) == true
    }

    /// Writes a screenshot to docs/img/dashboard-NAME.png when
    /// `RUNYARD_UPDATE_SCREENSHOTS=1`.
    fn screenshot(&self, name: &str) {
        if std::env::var("RUNYARD_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().unwrap());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("dashboard-{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session ends Chromium; then chromedriver is killed.
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            http(self.addr, "DELETE", &path, None)
        }));
        self.driver.take();
    }
}

/// The program named by the environment variable `var`, or `default`.
fn program(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(val(c))).collect();
        let n = v.iter().fold(0u32, |a, x| (a << 6) | x) << (6 * (4 - v.len()));
        let take = v.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}

// ---- the test -------------------------------------------------------------

/// A state file whose job 1 (`shell`) fails until `marker` exists, job 2
/// (`fail`) fails its two attempts, each with its own error, and jobs 3-5
/// (`cpu`) succeeded.
fn state_file(dir: &Path, marker: &Path) -> String {
    let db = dir.join("s.db").display().to_string();
    let m = marker.display();
    let cmd = json!([
        "sh",
        "-c",
        format!("test -f {m} || {{ echo \"no marker at {m}: failing\" >&2; exit 3; }}")
    ]);
    let o = runyard()
        .args(["run", "--state", &db, "-q", "--max-attempts", "2"])
        .arg(format!("shell:cmd={cmd}"))
        .args(["fail:k=5", "cpu:n=10*3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    db
}

#[test]
fn an_operator_finds_why_a_job_died_and_retries_it_in_a_real_browser() {
    // First, so that a missing browser is said before anything starts.
    let b = Browser::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let db = state_file(dir.path(), &marker);
    let q = format!("sqlite://{db}");
    let (_server, addr) = serve(&["--queue", &q], &[]);
    let mut w = runyard();
    w.args(["worker", "--queue", &q, "--name", "dash-worker"]);
    let _worker = Background::start(w);
    let base = format!("http://{addr}");

    // The overview: counts, charts, the worker.
    b.go(&format!("{base}/"));
    b.wait_for(
        "document.querySelector('[data-count=dead] .n')?.textContent === '2'",
        "two dead jobs counted",
    );
    b.wait_for(
        "document.querySelectorAll('#throughput svg rect.ok').length > 0",
        "the throughput chart",
    );
    b.wait_for(
        "document.querySelector('#worker-count')?.textContent.includes('1 live')",
        "the worker",
    );
    b.screenshot("overview");
    // The page is never reloaded from here on: this stays set.
    b.js("window.__runyardNoReload = 'still here';", json!([]));

    // The jobs table, filtered to the dead ones.
    b.click("nav a[data-nav=jobs]");
    b.find("#f-state");
    b.click("#f-state option[value=dead]");
    b.click("#apply");
    b.wait_for(
        "location.hash === '#/jobs?state=dead' && document.querySelectorAll('#jobs tbody tr[data-job]').length === 2",
        "the two dead jobs listed",
    );
    assert_eq!(b.texts("#jobs tbody .badge"), ["dead", "dead"]);
    assert!(b
        .text("#jobs tbody tr[data-job='1']")
        .contains("no marker at"));
    b.screenshot("jobs");

    // Dead jobs: job 1's command succeeds once the marker exists; retry it.
    b.click("nav a[data-nav=dead]");
    b.click("input.pick[data-job='1']");
    assert_eq!(b.text("#retry-selected"), "Retry selected (1)");
    std::fs::write(&marker, "").unwrap();
    b.click("#retry-selected");
    b.wait_for(
        "document.querySelector('#action-result')?.textContent.includes('Retried 1 of 1')",
        "the retry's answer",
    );
    b.wait_for(
        "document.querySelector('#retried li[data-job=\"1\"] .badge')?.textContent === 'succeeded'",
        "job 1 shown succeeded, polled without a reload",
    );
    b.wait_for(
        "document.querySelectorAll('#jobs tbody tr[data-job]').length === 1",
        "job 1 gone from the dead jobs",
    );
    b.screenshot("dead");
    assert_eq!(
        b.js("return window.__runyardNoReload;", json!([])),
        "still here",
        "the page was not reloaded"
    );

    // Job 2's page: each attempt's error, in full.
    b.click("#jobs a.job-link[href='#/job/2']");
    b.wait_for(
        "document.querySelectorAll('#attempts li.attempt').length === 2",
        "job 2's two attempts",
    );
    assert_eq!(
        b.texts("#attempts pre.error-text"),
        [
            "failing on purpose (attempt 1 of the first 5)",
            "failing on purpose (attempt 2 of the first 5)"
        ]
    );
    assert_eq!(b.all("#timeline svg rect").len(), 2, "a bar per attempt");
    assert!(b.text("#params").contains("\"k\": 5"));
    let options = b.text("table.kv");
    assert!(
        options.contains("max attempts") && options.contains("backoff"),
        "the job's options: {options}"
    );
    assert!(b.displayed("#retry-job"), "a dead job can be retried");
    b.screenshot("job");
    // Job 1's page says how it ended: its third attempt succeeded.
    b.go(&format!("{base}/#/job/1"));
    b.wait_for(
        "document.querySelectorAll('#attempts li.attempt').length === 3",
        "job 1's three attempts",
    );
    assert!(b
        .text("#attempts li.attempt[data-attempt='1'] pre.error-text")
        .contains("no marker at"));
    assert!(
        b.all("#retry-job").is_empty(),
        "a succeeded job has no retry"
    );

    // Workers: the one draining the file.
    b.go(&format!("{base}/#/workers"));
    b.wait_for(
        "document.querySelector('#workers tr[data-worker=dash-worker]')",
        "the worker listed",
    );
    b.screenshot("workers");

    // A server with a token: the page sends to the login form.
    let token = "0123456789abcdef-browser";
    let (_guarded, gaddr) = serve(&["--queue", &q], &[("RUNYARD_SERVE_TOKEN", token)]);
    b.go(&format!("http://{gaddr}/"));
    b.wait_for("location.pathname === '/login'", "the login form");
    b.type_into("#token", "0123456789abcdef-not-it");
    b.click("#login");
    b.wait_for(
        "document.querySelector('#login-error')",
        "a wrong token refused",
    );
    assert!(b
        .text("#login-error")
        .contains("not the token of this server"));
    b.type_into("#token", token);
    b.screenshot("login");
    b.click("#login");
    b.wait_for(
        "location.pathname === '/' && document.querySelector('[data-count=succeeded] .n')?.textContent === '4'",
        "the dashboard after logging in",
    );
    assert!(b.displayed("#logout"));
    // The session's cookie is HttpOnly: the page's script cannot read it.
    assert_eq!(b.js("return document.cookie;", json!([])), "");
    // An action from the logged-in page carries the CSRF token: cancel a
    // job scheduled far ahead from its page.
    let later = dir.path().join("later.toml");
    std::fs::write(
        &later,
        "[[job]]\ntask = \"cpu\"\nparams = { n = 1 }\nrun_at = 2099-01-01T00:00:00Z\n",
    )
    .unwrap();
    let o = runyard()
        .args(["submit", "--queue", &q, "-f", later.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    b.go(&format!("http://{gaddr}/#/job/6"));
    b.click("#cancel-job");
    b.wait_for(
        "document.querySelector('.job-head .badge')?.textContent === 'cancelled'",
        "job 6 cancelled from the page",
    );
    b.click("#logout");
    b.wait_for("location.pathname === '/login'", "logged out");

    // A read-only server: no action button anywhere.
    let (_ro, raddr) = serve(&["--queue", &q, "--read-only"], &[]);
    b.go(&format!("http://{raddr}/#/dead"));
    b.wait_for(
        "document.querySelectorAll('#jobs tbody tr[data-job]').length === 1",
        "the dead job listed",
    );
    assert!(b.displayed("#read-only"));
    assert!(b.all("#retry-selected").is_empty() && b.all("#retry-all").is_empty());
    assert!(b.all("input.pick").is_empty(), "nothing to select");
    b.go(&format!("http://{raddr}/#/job/2"));
    b.wait_for(
        "document.querySelectorAll('#attempts li.attempt').length === 2",
        "job 2's attempts, read-only",
    );
    assert!(b.all("#retry-job").is_empty() && b.all("#cancel-job").is_empty());

    tasks_limits_and_schedules(&b, &base, &q, &format!("http://{raddr}"));
}

/// Runs `runyard ARGS` to a successful end.
fn cli(args: &[&str]) {
    let o = runyard().args(args).stdin(Stdio::null()).output().unwrap();
    assert!(
        o.status.success(),
        "runyard {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The Tasks, Limits and Schedules pages over the queue `q` that a worker
/// drains (`base` serves it; `read_only` too, read-only): pause a task and
/// see none of its jobs start while another task's do, resume it and see
/// them run; set and clear a limit; trigger and pause a schedule.
fn tasks_limits_and_schedules(b: &Browser, base: &str, q: &str, read_only: &str) {
    let count = |task: &str, state: &str| {
        format!("document.querySelector('#tasks tr[data-task={task}] td[data-state={state}]')?.textContent")
    };
    // Tasks: pause `cpu` from its row.
    b.go(&format!("{base}/#/tasks"));
    b.click("button.pause-task[data-task=cpu]");
    b.wait_for(
        "document.querySelector('#tasks tr[data-task=cpu] [data-paused]') && document.querySelector('button.resume-task[data-task=cpu]')",
        "cpu shown paused, with a resume button",
    );
    // Three `cpu` jobs, then one `sleep` job after them: the worker runs
    // the `sleep` one, and none of the `cpu` ones starts.
    cli(&["submit", "-q", "--queue", q, "cpu:n=1*3"]);
    cli(&["submit", "-q", "--queue", q, "sleep:duration=10ms"]);
    b.wait_for(
        &format!("{} === '1'", count("sleep", "succeeded")),
        "the sleep job run by the worker",
    );
    assert_eq!(
        b.js(
            &format!(
                "return [{}, {}, {}];",
                count("cpu", "queued"),
                count("cpu", "running"),
                count("cpu", "succeeded")
            ),
            json!([])
        ),
        json!(["3", "0", "3"]),
        "no cpu job started while cpu is paused"
    );
    b.screenshot("tasks");
    b.click("button.resume-task[data-task=cpu]");
    b.wait_for(
        &format!(
            "{} === '6' && {} === '0'",
            count("cpu", "succeeded"),
            count("cpu", "queued")
        ),
        "the three cpu jobs run once cpu is resumed",
    );
    // Pause every task, and resume them.
    b.click("#pause-all");
    b.wait_for(
        "!document.querySelector('#paused-all').hidden",
        "every task shown paused",
    );
    b.click("#resume-all");
    b.wait_for(
        "document.querySelector('#paused-all').hidden && !document.querySelector('#tasks [data-paused]')",
        "every task resumed",
    );

    // Limits: set two from the form, then clear one.
    b.click("nav a[data-nav=limits]");
    b.type_into("#l-name", "cpu");
    b.type_into("#l-concurrency", "2");
    b.click("#set-limit");
    b.wait_for(
        "document.querySelector('#limits tr[data-limit=\"task/cpu\"]')?.textContent.includes('0 of 2')",
        "the task's limit listed, with its slots in use",
    );
    b.click("#l-kind option[value=key]");
    b.type_into("#l-name", "tenant:42");
    b.type_into("#l-rate", "10/s");
    b.click("#set-limit");
    b.wait_for(
        "document.querySelector('#limits tr[data-limit=\"key/tenant:42\"]')?.textContent.includes('10/s')",
        "the key's limit listed",
    );
    b.click("#l-kind option[value=task]");
    b.type_into("#l-name", "cpu");
    b.type_into("#l-concurrency", "0");
    b.click("#set-limit");
    b.wait_for(
        "document.querySelector('#action-result')?.textContent.includes('at least 1')",
        "a bad limit refused, saying why",
    );
    b.screenshot("limits");
    b.click("button.clear-limit[data-limit=\"task/cpu\"]");
    b.wait_for(
        "!document.querySelector('#limits tr[data-limit=\"task/cpu\"]') && document.querySelector('#limits tr[data-limit=\"key/tenant:42\"]')",
        "the task's limit cleared, the key's kept",
    );

    // Schedules: trigger one and see its job run; pause another.
    cli(&[
        "schedule", "add", "--queue", q, "hourly", "cpu:n=2", "--every", "1h",
    ]);
    cli(&[
        "schedule",
        "add",
        "--queue",
        q,
        "nightly",
        "cpu:n=5",
        "--cron",
        "0 3 * * *",
    ]);
    b.click("nav a[data-nav=schedules]");
    b.click("button.trigger-schedule[data-schedule=hourly]");
    b.wait_for(
        "document.querySelector('#action-result')?.textContent.includes('Schedule hourly triggered')",
        "the trigger's answer",
    );
    b.wait_for(
        "document.querySelector('#schedules tr[data-schedule=hourly] .last-fire .badge')?.textContent === 'succeeded'",
        "the triggered job run by the worker",
    );
    b.click("button.pause-schedule[data-schedule=nightly]");
    b.wait_for(
        "document.querySelector('#schedules tr[data-schedule=nightly] [data-paused]') && document.querySelector('button.resume-schedule[data-schedule=nightly]')",
        "nightly shown paused",
    );
    b.screenshot("schedules");
    b.click("button.resume-schedule[data-schedule=nightly]");
    b.wait_for(
        "!document.querySelector('#schedules tr[data-schedule=nightly] [data-paused]')",
        "nightly resumed",
    );

    // Read-only: the same pages, with no button and no form.
    for (page, row) in [
        ("tasks", "#tasks tr[data-task=cpu]"),
        ("limits", "#limits tr[data-limit]"),
        ("schedules", "#schedules tr[data-schedule=hourly]"),
    ] {
        b.go(&format!("{read_only}/#/{page}"));
        b.find(row);
        assert!(
            b.all("main button").is_empty() && b.all("main form").is_empty(),
            "no action on the read-only {page} page"
        );
    }
}
