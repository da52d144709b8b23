//! `runyard serve` end to end: the real binary on an ephemeral port over a
//! state file that `run --state`, `submit` and a worker wrote (and a
//! PostgreSQL queue), asked with plain HTTP/1.1 over a TCP stream.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::{said_address, Background};

mod support;

/// Held by the tests on the shared PostgreSQL cluster: one of them stops
/// it for a moment.
static PG_CLUSTER: Mutex<()> = Mutex::new(());

fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1").env_remove("RUNYARD_SERVE_TOKEN");
    c
}

/// Runs `runyard ARGS` to the end; its exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let o = runyard()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runyard starts");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "runyard {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `runyard ARGS` in the background, with `env`.
fn background(args: &[&str], env: &[(&str, &str)]) -> Background {
    let mut c = runyard();
    c.args(args).envs(env.iter().copied());
    Background::start(c)
}

/// A `runyard serve` and the address it said it bound.
struct Server {
    proc: Background,
    addr: SocketAddr,
}

fn serve(args: &[&str]) -> Server {
    serve_with(args, &[])
}

fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut proc = background(&all, env);
    let addr = proc.wait_for("runyard serve says its address", said_address);
    Server { proc, addr }
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The `error` of a JSON refusal with `status`.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}\n{}", self.head, self.body);
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {}", self.body))
            .to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

impl Server {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// `METHOD PATH` with `headers` (a `Host` of the server's address
    /// unless one is given).
    fn ask(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(method, path, headers, None)
    }

    /// `METHOD PATH` with a JSON `body`.
    fn with_body(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.send(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(&body.to_string()),
        )
    }

    /// `METHOD PATH` with `headers` and a raw `body` (with its length).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        match body {
            Some(b) => req.push_str(&format!("Content-Length: {}\r\n", b.len())),
            None if method != "GET" => req.push_str("Content-Length: 0\r\n"),
            None => {}
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).expect("UTF-8");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.ask("GET", path, &[])
    }

    fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    fn post(&self, path: &str) -> Reply {
        self.ask("POST", path, &[])
    }
}

/// A state file with 3 succeeded `cpu` jobs (ids 1-3), a dead `fail` job
/// (4, two failed attempts), and `extra` submitted after them.
fn state_file(dir: &Path, extra: &[&str]) -> String {
    let db = dir.join("s.db");
    let db = db.to_str().unwrap().to_string();
    let (code, out, err) = run(&[
        "run",
        "--state",
        &db,
        "-q",
        "--max-attempts",
        "2",
        "cpu:n=10*3",
        "fail:k=5",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    if !extra.is_empty() {
        let q = format!("sqlite://{db}");
        let mut args = vec!["submit", "--queue", &q];
        args.extend_from_slice(extra);
        ok(&args);
    }
    db
}

fn ids(page: &Value) -> Vec<u64> {
    page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn each_route_answers_over_a_state_file_a_worker_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &["sleep:duration=60s", "cpu:n=1*3"]);
    let q = format!("sqlite://{db}");
    ok(&[
        "limit",
        "--queue",
        &q,
        "--task",
        "cpu",
        "--concurrency",
        "7",
    ]);
    ok(&[
        "schedule", "add", "--queue", &q, "hourly", "cpu:n=1", "--every", "1h",
    ]);
    let s = serve(&["--queue", &q]);
    // A worker drains the file meanwhile: the 60 s sleep (id 5) stays running.
    let worker = background(&["worker", "--queue", &q, "--name", "w1"], &[]);
    wait_until(Duration::from_secs(60), "the sleep job running", || {
        s.get_json("/api/v1/jobs/5")["state"] == "running"
    });

    // Jobs: every one once across pages of 2, in id order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/jobs?limit=2".to_string();
    loop {
        let page = s.get_json(&path);
        let got = ids(&page);
        assert!(got.len() <= 2, "{page}");
        seen.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/jobs?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=8).collect::<Vec<_>>());
    // The default page holds them all; filters by state and by task.
    let all = s.get_json("/api/v1/jobs");
    assert_eq!(ids(&all), (1..=8).collect::<Vec<_>>());
    assert!(all["next_cursor"].is_null());
    let dead = s.get_json("/api/v1/jobs?state=dead");
    assert_eq!(ids(&dead), [4]);
    assert_eq!(dead["jobs"][0]["task"], "fail");
    assert_eq!(dead["jobs"][0]["attempts"], 2);
    assert_eq!(dead["jobs"][0]["last_outcome"], "failed");
    assert!(dead["jobs"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("failing on purpose"));
    assert_eq!(ids(&s.get_json("/api/v1/jobs?task=fail")), [4]);
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?task=sleep&state=running")),
        [5]
    );
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?task=nothing")),
        Vec::<u64>::new()
    );

    // One job: its parameters and every attempt with outcome, time, error.
    let job = s.get_json("/api/v1/jobs/4");
    assert_eq!(job["id"], 4);
    assert_eq!(job["state"], "dead");
    assert_eq!(job["params"], serde_json::json!({ "k": 5 }));
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1);
        assert_eq!(a["outcome"], "failed");
        assert!(
            a["started_at"].is_string() && a["duration_ms"].is_number(),
            "{a}"
        );
        assert!(
            a["error"].as_str().unwrap().contains("failing on purpose"),
            "{a}"
        );
    }
    assert_eq!(job["dependents"], serde_json::json!([]));
    // Its options: the attempts it was given, its task's backoff and mode.
    assert_eq!(job["settings"]["max_attempts"], 2, "{job}");
    assert!(job["settings"]["backoff"].is_string(), "{job}");
    assert_eq!(job["run_at"], Value::Null, "a dead job has no run-at");
    let done = s.get_json("/api/v1/jobs/1");
    assert_eq!(done["state"], "succeeded");
    assert!(!done["output"].is_null(), "{done}");

    // Tasks, workers (with the lease on job 5), limits, schedules.
    let tasks = s.get_json("/api/v1/tasks");
    let task = |name: &str| {
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no task {name}: {tasks}"))
    };
    assert_eq!(task("fail")["dead"], 1);
    assert_eq!(task("sleep")["running"], 1);
    assert_eq!(task("cpu")["total"], 6);
    wait_until(Duration::from_secs(60), "the cpu jobs done", || {
        s.get_json("/api/v1/jobs?task=cpu&state=succeeded")["jobs"]
            .as_array()
            .unwrap()
            .len()
            == 6
    });
    let workers = s.get_json("/api/v1/workers");
    let w = &workers["workers"][0];
    assert_eq!(w["name"], "w1", "{workers}");
    assert_eq!(w["leases"], 1, "{workers}");
    assert!(w["last_heartbeat"].is_string() && w["heartbeat_age_s"].is_number());
    let limits = s.get_json("/api/v1/limits");
    assert_eq!(limits["limits"][0]["concurrency"], 7, "{limits}");
    assert_eq!(limits["paused_all"], false);
    let schedules = s.get_json("/api/v1/schedules");
    assert_eq!(schedules["schedules"][0]["name"], "hourly", "{schedules}");
    assert_eq!(
        schedules["schedules"][0]["tasks"],
        serde_json::json!(["cpu"])
    );
    assert!(schedules["schedules"][0]["next_tick"].is_string());

    // Health.
    assert_eq!(s.get_json("/healthz")["status"], "ok");
    assert_eq!(s.get_json("/readyz")["status"], "ready");

    // Actions: cancel the running job (its worker is asked), retry the dead.
    let r = s.post("/api/v1/jobs/5/cancel");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["action"], "cancel_requested");
    wait_until(Duration::from_secs(60), "the running job cancelled", || {
        s.get_json("/api/v1/jobs/5")["state"] == "cancelled"
    });
    let r = s.post("/api/v1/jobs/4/retry");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["id"].clone(), v["action"].clone()),
        (4.into(), "retried".into())
    );
    // The worker runs it again: `fail:k=5` fails two more attempts.
    wait_until(
        Duration::from_secs(60),
        "the retried job dead again",
        || {
            let j = s.get_json("/api/v1/jobs/4");
            j["state"] == "dead" && j["attempts"].as_array().unwrap().len() == 4
        },
    );
    drop(worker);
    assert!(
        s.proc.stderr().contains("listening on"),
        "{}",
        s.proc.stderr()
    );
}

#[test]
fn a_state_file_is_served_while_its_run_is_writing_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let db = db.to_str().unwrap();
    let _run = background(
        &["run", "--state", db, "sleep:duration=60s", "cpu:n=1"],
        &[],
    );
    let q = format!("sqlite://{db}");
    wait_until(Duration::from_secs(60), "the run's sleep running", || {
        let (code, out, _) = run(&["status", "--queue", &q, "--json"]);
        code == 0 && out.contains("\"running\": 1")
    });
    let s = serve(&["--queue", &q]);
    let page = s.get_json("/api/v1/jobs");
    assert_eq!(ids(&page), [1, 2]);
    assert_eq!(page["jobs"][0]["state"], "running");
    // The run reports every job when it ends: none may be deleted
    // meanwhile, and the refusal says which run holds the file.
    let e = s.post("/api/v1/jobs/2/delete").error(409);
    assert!(
        e.contains("`runyard run` (pid") && e.contains("once it has ended"),
        "{e}"
    );
    let e = s
        .with_body(
            "POST",
            "/api/v1/jobs/delete",
            &serde_json::json!({ "ids": [2] }),
        )
        .error(409);
    assert!(e.contains("`runyard run`"), "{e}");
    let r = s.post("/api/v1/jobs/1/cancel");
    assert_eq!(r.status, 202, "{}", r.body);
    let ro = serve(&["--queue", &q, "--read-only"]);
    assert_eq!(ids(&ro.get_json("/api/v1/jobs")), [1, 2]);
}

#[test]
fn bad_requests_get_a_4xx_that_names_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let s = serve(&["--queue", &format!("sqlite://{db}")]);
    let says = |path: &str, status: u16, what: &[&str]| {
        let e = s.get(path).error(status);
        for w in what {
            assert!(e.contains(w), "GET {path}: {e}");
        }
    };
    says(
        "/api/v1/jobs?state=lost",
        400,
        &["\"lost\"", "queued, scheduled"],
    );
    says("/api/v1/jobs?limit=0", 400, &["`limit`", "1 to 500"]);
    says("/api/v1/jobs?limit=lots", 400, &["`limit`"]);
    says("/api/v1/jobs?limit=501", 400, &["`limit`"]);
    says("/api/v1/jobs?cursor=42", 400, &["`cursor`", "next_cursor"]);
    says("/api/v1/jobs?task=", 400, &["`task` is empty"]);
    says(
        "/api/v1/jobs?colour=red",
        400,
        &[
            "`colour`",
            "state, task, key, q, since, until, limit, cursor",
        ],
    );
    says("/api/v1/jobs?task=%00", 400, &["`task`", "NUL"]);
    says("/api/v1/jobs?q=a%00b", 400, &["`q`", "NUL"]);
    says("/api/v1/jobs?key=", 400, &["`key` is empty"]);
    says("/api/v1/jobs?q=", 400, &["`q` is empty"]);
    says(
        "/api/v1/jobs?since=yesterday",
        400,
        &["`since`", "RFC 3339", "2026-12-01T10:00:00Z"],
    );
    says(
        "/api/v1/jobs?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
        400,
        &["`since`", "not before `until`"],
    );
    says("/api/v1/events?cursor=7", 400, &["`cursor`", "next_cursor"]);
    says("/api/v1/events?limit=0", 400, &["`limit`", "1 to 500"]);
    says(
        "/api/v1/jobs?state=dead&state=queued",
        400,
        &["`state`", "twice"],
    );
    says("/api/v1/jobs/abc", 400, &["\"abc\" is not a job id"]);
    says("/api/v1/jobs/-1", 400, &["not a job id"]);
    says("/api/v1/jobs/99999999999999999999", 400, &["not a job id"]);
    says("/api/v1/jobs/77", 404, &["no job with the id 77"]);
    says("/api/v1/tasks?x=1", 400, &["unknown query parameter `x`"]);
    says(
        "/api/v2/jobs",
        404,
        &["no route /api/v2/jobs", "/api/v1/jobs"],
    );
    says("/nowhere", 404, &["no route /nowhere"]);
    let e = s.get("/api/v1/jobs/4/retry").error(405);
    assert!(e.contains("use POST"), "{e}");
    let e = s.post("/api/v1/jobs").error(405);
    assert!(e.contains("use GET"), "{e}");
    let e = s.post("/api/v1/jobs/77/retry").error(404);
    assert!(e.contains("no job with the id 77"), "{e}");
    let e = s.post("/api/v1/jobs/77/cancel").error(404);
    assert!(e.contains("no job with the id 77"), "{e}");
    let e = s.post("/api/v1/jobs/1/retry").error(409);
    assert!(
        e.contains("job 1 is succeeded") && e.contains("dead or cancelled"),
        "{e}"
    );
    let e = s.post("/api/v1/jobs/4/cancel").error(409);
    assert!(e.contains("already finished (dead)"), "{e}");
    // Bulk actions: a body that is not one of the two shapes.
    let bulk = |body: &str, what: &[&str]| {
        let r = s.send(
            "POST",
            "/api/v1/jobs/retry",
            &[("Content-Type", "application/json")],
            Some(body),
        );
        let e = r.error(400);
        for w in what {
            assert!(e.contains(w), "{body}: {e}");
        }
    };
    bulk("{", &["not JSON", "\"ids\""]);
    bulk("[1, 2]", &["not a JSON object"]);
    bulk("{}", &["exactly one of `ids` and `filter`"]);
    bulk(r#"{"ids": [1], "filter": {}}"#, &["exactly one"]);
    bulk(r#"{"ids": []}"#, &["`ids` is empty"]);
    bulk(r#"{"ids": [1, "two"]}"#, &["`ids`[1]", "not a job id"]);
    bulk(r#"{"ids": [1, 1]}"#, &["job 1 is named twice"]);
    bulk(
        r#"{"ids": [1], "ids": [2]}"#,
        &["the key `ids` is given twice"],
    );
    bulk(
        r#"{"filter": {"state": "dead", "state": "queued"}}"#,
        &["the key `state` is given twice"],
    );
    bulk(r#"{"ids": 4}"#, &["`ids` is 4"]);
    bulk(r#"{"jobs": [4]}"#, &["unknown field `jobs`"]);
    bulk(r#"{"filter": {"state": "lost"}}"#, &["\"lost\"", "queued"]);
    bulk(
        r#"{"filter": {"colour": "red"}}"#,
        &["`colour`", "state, task, key"],
    );
    bulk(r#"{"filter": {"limit": "3"}}"#, &["`limit`"]);
    bulk(
        r#"{"filter": {"task": 3}}"#,
        &["`filter.task` is 3", "string"],
    );
    bulk(r#"{"filter": {"task": "a\u0000"}}"#, &["NUL"]);
    let e = s
        .send("POST", "/api/v1/jobs/retry", &[], Some("{\"ids\": [4]}"))
        .error(400);
    assert!(e.contains("not JSON") && e.contains("Content-Type"), "{e}");
    // Limits and schedules: bad targets and bodies, unknown names.
    let put = |path: &str, body: Value| s.with_body("PUT", path, &body);
    let e = put("/api/v1/limits/task/cpu", serde_json::json!({})).error(400);
    assert!(e.contains("nothing to set"), "{e}");
    let e = put(
        "/api/v1/limits/task/cpu",
        serde_json::json!({"concurrency": 0}),
    )
    .error(400);
    assert!(e.contains("`concurrency` is 0"), "{e}");
    let e = put(
        "/api/v1/limits/task/cpu",
        serde_json::json!({"rate": "fast"}),
    )
    .error(400);
    assert!(e.contains("`rate`") && e.contains("N/s"), "{e}");
    let e = put("/api/v1/limits/task/cpu", serde_json::json!({"burst": 3})).error(400);
    assert!(e.contains("unknown field `burst`"), "{e}");
    let e = put(
        "/api/v1/limits/queue/cpu",
        serde_json::json!({"concurrency": 1}),
    )
    .error(400);
    assert!(e.contains("/api/v1/limits/task/NAME"), "{e}");
    let e = put(
        "/api/v1/limits/key/a%20b",
        serde_json::json!({"concurrency": 1}),
    )
    .error(400);
    assert!(e.contains("key \"a b\""), "{e}");
    let e = s.get("/api/v1/limits/task/cpu").error(405);
    assert!(e.contains("PUT or DELETE"), "{e}");
    let e = s.post("/api/v1/schedules/nightly/trigger").error(404);
    assert!(e.contains("no schedule named \"nightly\""), "{e}");
    let e = s.post("/api/v1/schedules/nightly/pause").error(404);
    assert!(e.contains("no schedule named"), "{e}");
    let e = s.post("/api/v1/jobs/77/delete").error(404);
    assert!(e.contains("no job with the id 77"), "{e}");
    // A request that is not HTTP gets a 400 from the HTTP layer, and the
    // server goes on.
    let mut t = TcpStream::connect(s.addr).unwrap();
    t.write_all(b"\x00\x01 nonsense\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = t.read_to_string(&mut raw);
    assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert_eq!(s.get_json("/healthz")["status"], "ok");
    edge_requests_get_a_4xx(&s);
}

/// `n` letters that do not compress (as a name a store must index).
fn letters(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// Requests at the edges of what is valid (bytes that are not UTF-8, ids
/// and cursors beyond any store's, names longer than a store indexes,
/// bodies larger than the server reads): each a 4xx naming what was
/// wrong, on any queue.
fn edge_requests_get_a_4xx(s: &Server) {
    let says = |path: &str, status: u16, what: &[&str]| {
        let e = s.get(path).error(status);
        for w in what {
            assert!(e.contains(w), "GET {path}: {e}");
        }
    };
    says("/api/v1/jobs?q=%FF", 400, &["`q` is not UTF-8", "%C3%A9"]);
    says("/api/v1/jobs?key=a%FFb", 400, &["`key` is not UTF-8"]);
    says("/api/v1/jobs?task=%C3", 400, &["`task` is not UTF-8"]);
    says("/api/v1/jobs?%FF=1", 400, &["name (%FF) is not UTF-8"]);
    says("/api/v1/stats?window=%FF", 400, &["`window` is not UTF-8"]);
    // "v1:9223372036854775808": one past the largest id a store keeps.
    let beyond: String = "v1:9223372036854775808"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    says(
        &format!("/api/v1/jobs?cursor={beyond}"),
        400,
        &["`cursor`", "next_cursor"],
    );
    says(
        "/api/v1/events?cursor=e9223372036854775808",
        400,
        &["`cursor`", "next_cursor"],
    );
    says(
        "/api/v1/jobs?since=1900-01-01T00:00:00Z",
        400,
        &["`since`", "from 1970 to 9999"],
    );
    says(
        "/api/v1/jobs/9223372036854775808",
        404,
        &["no job with the id 9223372036854775808"],
    );
    let e = s
        .with_body(
            "POST",
            "/api/v1/jobs/cancel",
            &serde_json::json!({"ids": [u64::MAX]}),
        )
        .json();
    assert_eq!(e["done"], serde_json::json!([]), "{e}");
    assert!(
        e["skipped"][0]["why"].as_str().unwrap().contains("no job"),
        "{e}"
    );
    // A task's name beyond what a store indexes; the longest one taken.
    let long = letters(9000);
    let e = s.post(&format!("/api/v1/tasks/{long}/pause")).error(400);
    assert!(
        e.contains("at most 200 bytes") && e.contains("has 9000"),
        "{e}"
    );
    let e = s
        .with_body(
            "PUT",
            &format!("/api/v1/limits/task/{long}"),
            &serde_json::json!({"concurrency": 1}),
        )
        .error(400);
    assert!(e.contains("at most 200 bytes"), "{e}");
    let longest = letters(runyard_core::TASK_NAME_MAX);
    for path in [
        format!("/api/v1/tasks/{longest}/pause"),
        format!("/api/v1/tasks/{longest}/resume"),
    ] {
        let r = s.post(&path);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = s.with_body(
        "PUT",
        &format!("/api/v1/limits/task/{longest}"),
        &serde_json::json!({"rate": "5/s"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.ask("DELETE", &format!("/api/v1/limits/task/{longest}"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    // A body one byte larger than the server reads.
    let head = r#"{"ids": [1], "pad": ""#;
    let pad = "x".repeat((1 << 20) + 1 - head.len() - 2);
    let body = format!("{head}{pad}\"}}");
    assert_eq!(body.len(), (1 << 20) + 1);
    let e = s
        .send(
            "POST",
            "/api/v1/jobs/retry",
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .error(413);
    assert!(e.contains("larger than 1048576 bytes"), "{e}");
    assert_eq!(s.get_json("/healthz")["status"], "ok");
}

#[test]
fn bad_requests_on_postgres_get_a_4xx_that_names_what_was_wrong() {
    let _only = PG_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let server = runyard_postgres::testing::server();
    let url = server.fresh_url("serve_bad");
    ok(&["submit", "--queue", &url, "cpu:n=1"]);
    let s = serve(&["--queue", &url]);
    edge_requests_get_a_4xx(&s);
    for path in [
        "/api/v1/jobs?task=%00",
        "/api/v1/jobs?key=a%00",
        "/api/v1/jobs?q=%00",
    ] {
        let e = s.get(path).error(400);
        assert!(e.contains("NUL"), "{path}: {e}");
    }
}

#[test]
fn read_only_serves_no_action() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &["sleep:duration=60s"]);
    let s = serve(&["--queue", &format!("sqlite://{db}"), "--read-only"]);
    assert!(s.proc.stderr().contains("read-only"), "{}", s.proc.stderr());
    for path in [
        "/api/v1/jobs/4/retry",
        "/api/v1/jobs/5/cancel",
        "/api/v1/jobs/4/delete",
        "/api/v1/tasks/cpu/pause",
        "/api/v1/tasks/pause",
        "/api/v1/tasks/resume",
        "/api/v1/schedules/hourly/trigger",
    ] {
        let e = s.post(path).error(403);
        assert!(e.contains("read-only"), "{e}");
    }
    for path in [
        "/api/v1/jobs/retry",
        "/api/v1/jobs/cancel",
        "/api/v1/jobs/delete",
    ] {
        let e = s
            .with_body("POST", path, &serde_json::json!({ "ids": [4] }))
            .error(403);
        assert!(e.contains("read-only"), "{e}");
    }
    let limit = serde_json::json!({ "concurrency": 1 });
    let e = s
        .with_body("PUT", "/api/v1/limits/task/cpu", &limit)
        .error(403);
    assert!(e.contains("read-only"), "{e}");
    let e = s.ask("DELETE", "/api/v1/limits/task/cpu", &[]).error(403);
    assert!(e.contains("read-only"), "{e}");
    // Reading the record of actions is not an action.
    assert_eq!(
        s.get_json("/api/v1/events")["events"],
        serde_json::json!([])
    );
    let v = s.get_json("/api/v1/jobs?state=dead");
    assert_eq!(ids(&v), [4]);
    assert_eq!(s.get_json("/api/v1/jobs/5")["state"], "queued");
}

#[test]
fn sigterm_stops_the_server_and_a_queue_that_is_not_there_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let mut s = serve(&["--queue", &format!("sqlite://{db}")]);
    let sent = Command::new("kill")
        .args(["-TERM", &s.proc.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(sent);
    let mut code = None;
    wait_until(Duration::from_secs(60), "serve to exit", || {
        code = s.proc.child.try_wait().unwrap().map(|st| st.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(0)), "{}", s.proc.stderr());
    assert!(s.proc.stderr().contains("stopping"), "{}", s.proc.stderr());

    // Nothing is created for a server: a missing file is exit 2.
    let missing = dir.path().join("missing.db");
    let q = format!("sqlite://{}", missing.display());
    for extra in [&[][..], &["--read-only"][..]] {
        let mut args = vec!["serve", "--queue", &q, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no such state file"), "{err}");
        assert!(!missing.exists());
    }
    let (code, _, err) = run(&["serve", "--queue", "memory"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outlives the process"), "{err}");
}

#[test]
fn other_sites_are_refused_by_host_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let s = serve(&["--queue", &format!("sqlite://{db}")]);
    let port = s.addr.port();
    // DNS rebinding: a page of another name, now resolving to 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        let e = s.ask("GET", "/api/v1/jobs", &[("Host", &host)]).error(403);
        assert!(
            e.contains("Host header") && e.contains(&host),
            "{host}: {e}"
        );
        s.ask("GET", "/metrics", &[("Host", &host)]).error(403);
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = s.ask("GET", "/api/v1/jobs", &[("Host", &host)]);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // A cross-site POST.
    for origin in [
        "http://evil.example",
        "null",
        &format!("https://127.0.0.1:{port}"),
    ] {
        let e = s
            .ask("POST", "/api/v1/jobs/4/retry", &[("Origin", origin)])
            .error(403);
        assert!(e.contains("origin") && e.contains(origin), "{e}");
    }
    assert_eq!(s.get_json("/api/v1/jobs/4")["state"], "dead");
    let own = format!("http://127.0.0.1:{port}");
    let r = s.ask("POST", "/api/v1/jobs/4/retry", &[("Origin", &own)]);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn beyond_loopback_a_token_is_needed_and_then_asked_of_every_api_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let q = format!("sqlite://{db}");
    // No token: refused before anything is opened.
    for listen in ["0.0.0.0:0", "192.0.2.1:8080"] {
        let (code, _, err) = run(&["serve", "--queue", &q, "--listen", listen]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("not a loopback address") && err.contains("--token-file"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["serve", "--queue", &q, "--listen", "somewhere:80"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("IP:PORT"), "{err}");
    // A short token is refused, and not repeated.
    let short = dir.path().join("short");
    std::fs::write(&short, "hunter2\n").unwrap();
    let (code, _, err) = run(&[
        "serve",
        "--queue",
        &q,
        "--token-file",
        short.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("at least 16") && !err.contains("hunter2"),
        "{err}"
    );

    let token = "0123456789abcdef-token";
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let s = background(
        &[
            "serve",
            "--queue",
            &q,
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let addr = {
        let mut a = None;
        wait_until(Duration::from_secs(60), "the address", || {
            a = said_address(&s.stderr());
            a.is_some()
        });
        a.unwrap()
    };
    assert!(!s.stderr().contains(token), "{}", s.stderr());
    let s = Server {
        addr: SocketAddr::from(([127, 0, 0, 1], addr.port())),
        proc: s,
    };
    for path in ["/api/v1/jobs", "/api/v1/nothing", "/metrics"] {
        let r = s.get(path);
        let e = r.error(401);
        assert!(e.contains("Authorization: Bearer"), "{e}");
        assert!(e.contains("or log in to the dashboard at /login"), "{e}");
        assert!(r.header("www-authenticate").is_some(), "{}", r.head);
        let bad = format!("Bearer {token}x");
        let e = s.ask("GET", path, &[("Authorization", &bad)]).error(401);
        assert!(e.contains("not this server's") && !e.contains(token), "{e}");
        s.ask("GET", path, &[("Authorization", "Basic abc")])
            .error(401);
    }
    let bearer = format!("Bearer {token}");
    // With the token, any Host: the token, not the name, is the guard.
    let r = s.ask(
        "GET",
        "/api/v1/jobs",
        &[
            ("Authorization", &bearer),
            ("Host", "queue.example.com:8080"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.json()).len(), 4);
    let r = s.ask("GET", "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.ask(
        "POST",
        "/api/v1/jobs/4/retry",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Health stays open for probes.
    assert_eq!(s.get_json("/healthz")["status"], "ok");
    assert_eq!(s.get_json("/readyz")["status"], "ready");

    // The token from the environment; both at once is refused.
    let s = serve_with(&["--queue", &q], &[("RUNYARD_SERVE_TOKEN", token)]);
    s.get("/api/v1/jobs").error(401);
    let r = s.ask("GET", "/api/v1/jobs", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let o = runyard()
        .args([
            "serve",
            "--queue",
            &q,
            "--token-file",
            file.to_str().unwrap(),
        ])
        .env("RUNYARD_SERVE_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("given twice"));
}

#[test]
fn metrics_are_gauges_in_the_prometheus_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &["sleep:duration=1s*2"]);
    let s = serve(&["--queue", &format!("sqlite://{db}")]);
    let r = s.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // Every metric is typed before its samples, and helped.
    let mut typed = std::collections::HashMap::new();
    for line in r.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(typed.contains_key(name), "no # TYPE before {line}");
        }
    }
    let scrape = prometheus_parse::Scrape::parse(r.body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the text format ({e}):\n{}", r.body));
    for (name, kind) in &typed {
        assert_eq!(kind, "gauge", "{name}");
        assert!(scrape.docs.contains_key(name), "no # HELP for {name}");
    }
    let gauge = |s: &prometheus_parse::Sample| match s.value {
        prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{} is not a gauge: {other:?}", s.metric),
    };
    let samples = &scrape.samples;
    let lines = r.body.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples.len(), lines, "every sample parsed:\n{}", r.body);
    let jobs = |task: &str, state: &str| {
        samples
            .iter()
            .find(|s| {
                s.metric == "runyard_jobs"
                    && s.labels.len() == 2
                    && s.labels.get("task") == Some(task)
                    && s.labels.get("state") == Some(state)
            })
            .map(gauge)
            .unwrap_or_else(|| panic!("no runyard_jobs{{{task},{state}}}:\n{}", r.body))
    };
    assert_eq!(jobs("cpu", "succeeded"), 3.0);
    assert_eq!(jobs("fail", "dead"), 1.0);
    assert_eq!(jobs("sleep", "queued"), 2.0);
    assert_eq!(jobs("sleep", "running"), 0.0);
    let one = |name: &str| {
        samples
            .iter()
            .find(|s| s.metric == name && s.labels.is_empty())
            .map(gauge)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert!(one("runyard_oldest_queued_job_age_seconds") >= 0.0);
    assert_eq!(one("runyard_workers_alive"), 0.0);
    assert_eq!(one("runyard_leases"), 0.0);
}

#[test]
fn a_postgres_queue_is_served_and_its_password_is_shown_nowhere() {
    // This test stops the shared cluster for a moment: the others on it wait.
    let _only = PG_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let server = runyard_postgres::testing::server();
    let url = server.fresh_url("serve");
    // The test cluster trusts local connections: a password in the URL is
    // accepted and unused, as a secret the server must never show.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let secret = "Sekrit-Passw0rd";
    let url = format!("{scheme}://{user}:{secret}@{host}");
    ok(&[
        "submit",
        "--queue",
        &url,
        "--max-attempts",
        "1",
        "cpu:n=1*3",
        "fail:k=9",
    ]);
    let s = serve(&["--queue", &url]);
    let worker = background(&["worker", "--queue", &url, "--name", "pg1"], &[]);
    wait_until(Duration::from_secs(60), "every job ended", || {
        let t = s.get_json("/api/v1/tasks");
        t["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["total"] == t["succeeded"].as_u64().unwrap() + t["dead"].as_u64().unwrap())
            && t["tasks"].as_array().unwrap().len() == 2
    });
    assert_eq!(s.get_json("/api/v1/workers")["workers"][0]["name"], "pg1");
    drop(worker);
    let mut bodies = Vec::new();
    let page = s.get_json("/api/v1/jobs?limit=3");
    assert_eq!(ids(&page), [1, 2, 3]);
    let next = page["next_cursor"].as_str().unwrap().to_string();
    let rest = s.get_json(&format!("/api/v1/jobs?cursor={next}"));
    assert_eq!(ids(&rest), [4]);
    assert_eq!(rest["jobs"][0]["state"], "dead");
    bodies.push(page.to_string());
    bodies.push(rest.to_string());
    let r = s.post("/api/v1/jobs/4/retry");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "queued");
    for path in [
        "/api/v1/jobs/4",
        "/api/v1/tasks",
        "/api/v1/workers",
        "/api/v1/limits",
        "/api/v1/schedules",
        "/metrics",
        "/readyz",
        "/api/v1/jobs/abc",
        "/nowhere",
    ] {
        bodies.push(s.get(path).body);
    }
    // The queue goes away: not ready, and nothing says the password.
    server.stop();
    let r = s.get("/readyz");
    server.start();
    let e = r.error(503);
    // Open to probes even with a token: the cause (host, user, database)
    // stays in the server's log.
    assert!(e.starts_with("not ready"), "{e}");
    assert!(!e.contains("postgres") && !e.contains("127.0.0.1"), "{e}");
    bodies.push(r.body);
    bodies.push(s.proc.stderr());
    for b in &bodies {
        assert!(!b.contains(secret), "the password in: {b}");
    }
    assert!(s.proc.stderr().contains("listening on"));
}

#[test]
fn a_job_shows_the_jobs_it_is_after_those_after_it_and_what_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flow.db");
    let q = format!("sqlite://{}", db.display());
    let flow = dir.path().join("flow.toml");
    std::fs::write(
        &flow,
        "[[job]]\nname = \"first\"\ntask = \"cpu\"\nparams = { n = 1 }\n\n\
         [[job]]\nname = \"second\"\ntask = \"sleep\"\nafter = [\"first\"]\n\
         params = { duration = \"1ms\" }\n",
    )
    .unwrap();
    ok(&["submit", "--queue", &q, "-f", flow.to_str().unwrap()]);
    ok(&["task", "pause", "--queue", &q, "cpu"]);
    let s = serve(&["--queue", &q]);
    let first = s.get_json("/api/v1/jobs/1");
    assert_eq!(first["name"], "first");
    assert_eq!(first["state"], "queued");
    assert_eq!(first["dependents"], serde_json::json!([2]));
    assert_eq!(
        first["hold"],
        serde_json::json!({ "kind": "paused", "task": "cpu" })
    );
    let second = s.get_json("/api/v1/jobs/2");
    assert_eq!(second["state"], "blocked");
    assert_eq!(second["after"], serde_json::json!([1]));
    assert_eq!(second["hold"]["kind"], "dependencies", "{second}");
    let limits = s.get_json("/api/v1/limits");
    assert_eq!(limits["paused"], serde_json::json!(["cpu"]), "{limits}");
    let held = &limits["held"][0];
    assert_eq!(
        (held["hold"]["kind"].clone(), held["jobs"].clone()),
        ("paused".into(), 1.into())
    );
    assert!(held["says"].as_str().unwrap().contains("paused"), "{held}");
    // Cancelling the first cancels the job after it.
    let r = s.post("/api/v1/jobs/1/cancel");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["cascade"]["cancelled"], serde_json::json!([2]));
    assert_eq!(s.get_json("/api/v1/jobs/2")["state"], "cancelled");
    assert_eq!(s.get_json("/api/v1/jobs/2")["hold"], Value::Null);
    let page = s.get_json("/api/v1/jobs?state=cancelled");
    assert_eq!(page["jobs"][1]["name"], "second");
    // Retrying it gives the job after it its wait back.
    let r = s.post("/api/v1/jobs/1/retry");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["cascade"]["reblocked"], serde_json::json!([2]));
    assert_eq!(s.get_json("/api/v1/jobs/2")["state"], "blocked");
    let e = s.post("/api/v1/jobs/2/retry").error(409);
    assert!(e.contains("job 2 is blocked"), "{e}");
}

/// Submits `args` to queue `q` (one `runyard submit`).
fn submit(q: &str, args: &[&str]) {
    let mut all = vec!["submit", "--queue", q];
    all.extend_from_slice(args);
    ok(&all);
}

/// Every page of `path` (a list with a `limit`), followed by its cursors.
fn all_pages(s: &Server, path: &str) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut next = path.to_string();
    loop {
        let page = s.get_json(&next);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{path}&cursor={c}"),
            None => return seen,
        }
    }
}

/// The list's filters by key, text and submission time, alone, together
/// with state and task, and page by page: on a state file, or on
/// PostgreSQL (`url`, its jobs submitted as `state_file` does).
fn filters_hold(s: &Server, q: &str) {
    submit(q, &["--unique-key", "order-7", "sleep:duration=1s"]);
    submit(q, &["--concurrency-key", "tenant:42", "cpu:n=2"]);
    submit(
        q,
        &["--rate-key", "tenant:42", "--key-rate", "5/s", "cpu:n=3"],
    );
    submit(q, &["--concurrency-key", "tenant:43", "cpu:n=4"]);
    // By key: the unique key, a concurrency or a rate key, whole values.
    assert_eq!(ids(&s.get_json("/api/v1/jobs?key=order-7")), [5]);
    assert_eq!(ids(&s.get_json("/api/v1/jobs?key=tenant:42")), [6, 7]);
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?key=tenant")),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?key=order")),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?key=tenant:42&state=queued&task=cpu")),
        [6, 7]
    );
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?key=tenant:42&state=dead")),
        Vec::<u64>::new()
    );
    // Pages under a filter: each job once, none of the others.
    assert_eq!(all_pages(s, "/api/v1/jobs?key=tenant:42&limit=1"), [6, 7]);
    assert_eq!(
        all_pages(s, "/api/v1/jobs?task=cpu&limit=2"),
        [1, 2, 3, 6, 7, 8]
    );
    // By text: in an attempt's error or in the parameters, in any case.
    assert_eq!(ids(&s.get_json("/api/v1/jobs?q=FAILING+on+PURPOSE")), [4]);
    assert_eq!(ids(&s.get_json("/api/v1/jobs?q=duration")), [5]);
    assert_eq!(ids(&s.get_json("/api/v1/jobs?q=%22n%22%3A4")), [8]);
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?q=purpose&state=succeeded")),
        Vec::<u64>::new()
    );
    assert_eq!(
        all_pages(s, "/api/v1/jobs?q=%22n%22&limit=2"),
        [1, 2, 3, 6, 7, 8]
    );
    // By submission time: from `since`, before `until`.
    let fifth = s.get_json("/api/v1/jobs/5")["enqueued_at"]
        .as_str()
        .unwrap()
        .to_string();
    let last = s.get_json("/api/v1/jobs/8")["enqueued_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ids(&s.get_json(&format!("/api/v1/jobs?until={fifth}"))),
        [1, 2, 3, 4]
    );
    let since = ids(&s.get_json(&format!("/api/v1/jobs?since={fifth}")));
    assert_eq!(since, [5, 6, 7, 8]);
    assert_eq!(
        ids(&s.get_json(&format!("/api/v1/jobs?since={fifth}&until={last}&task=cpu"))),
        [6, 7]
    );
    assert_eq!(
        ids(&s.get_json("/api/v1/jobs?since=2999-01-01T00:00:00Z")),
        Vec::<u64>::new()
    );
}

#[test]
fn jobs_are_found_by_key_text_and_submission_time_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let q = format!("sqlite://{db}");
    let s = serve(&["--queue", &q]);
    filters_hold(&s, &q);
}

#[test]
fn jobs_are_found_by_key_text_and_submission_time_on_postgres() {
    let _only = PG_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let server = runyard_postgres::testing::server();
    let url = server.fresh_url("serve_filters");
    ok(&[
        "submit",
        "--queue",
        &url,
        "--max-attempts",
        "2",
        "cpu:n=10*3",
        "fail:k=5",
    ]);
    let worker = background(&["worker", "--queue", &url, "--name", "f1"], &[]);
    let s = serve(&["--queue", &url]);
    wait_until(Duration::from_secs(60), "the four jobs ended", || {
        ids(&s.get_json("/api/v1/jobs?state=succeeded")).len() == 3
            && ids(&s.get_json("/api/v1/jobs?state=dead")) == [4]
    });
    drop(worker);
    filters_hold(&s, &url);
    // A NUL in a text parameter is the request's fault, not the server's.
    for path in [
        "/api/v1/jobs?task=%00",
        "/api/v1/jobs?key=a%00",
        "/api/v1/jobs?q=%00",
    ] {
        let e = s.get(path).error(400);
        assert!(e.contains("NUL"), "{path}: {e}");
    }
    bulk_actions_hold(&s);
}

/// What each bulk action did, and the record of it: on a queue holding
/// `state_file`'s four jobs and `filters_hold`'s four queued ones.
fn bulk_actions_hold(s: &Server) {
    let post = |path: &str, body: Value| {
        let r = s.with_body("POST", path, &body);
        assert_eq!(r.status, 200, "POST {path} {body}: {}", r.body);
        r.json()
    };
    // Retry by filter: the dead job.
    let r = post(
        "/api/v1/jobs/retry",
        serde_json::json!({ "filter": { "state": "dead" } }),
    );
    assert_eq!(r["matched"], 1, "{r}");
    assert_eq!(r["done"], serde_json::json!([4]));
    assert_eq!(r["skipped"], serde_json::json!([]));
    let retried = r["event"].as_u64().expect("an event");
    // Cancel by ids: the waiting ones cancelled, the others skipped with why.
    let r = post(
        "/api/v1/jobs/cancel",
        serde_json::json!({ "ids": [4, 5, 1, 99] }),
    );
    assert_eq!(r["matched"], 4, "{r}");
    assert_eq!(r["done"], serde_json::json!([4, 5]));
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{r}");
    assert_eq!(skipped[0]["id"], 1);
    assert!(skipped[0]["why"]
        .as_str()
        .unwrap()
        .contains("already finished (succeeded)"));
    assert_eq!(skipped[1]["id"], 99);
    assert!(skipped[1]["why"]
        .as_str()
        .unwrap()
        .contains("no job with the id 99"));
    let cancelled = r["event"].as_u64().unwrap();
    assert!(cancelled > retried);
    // Retry by filter again: what is not dead or cancelled is skipped.
    let r = post(
        "/api/v1/jobs/retry",
        serde_json::json!({ "filter": { "key": "tenant:42" } }),
    );
    assert_eq!(r["done"], serde_json::json!([]), "{r}");
    assert!(r["skipped"][0]["why"]
        .as_str()
        .unwrap()
        .contains("it is queued"));
    assert_eq!(r["event"], Value::Null, "nothing changed, nothing recorded");
    // Delete: finished jobs by filter, a waiting one refused.
    let r = post(
        "/api/v1/jobs/delete",
        serde_json::json!({ "filter": { "task": "cpu", "state": "succeeded" } }),
    );
    assert_eq!(r["done"], serde_json::json!([1, 2, 3]), "{r}");
    let deleted = r["event"].as_u64().unwrap();
    assert_eq!(
        s.get("/api/v1/jobs/1").error(404),
        "no job with the id 1 in this queue"
    );
    let r = post("/api/v1/jobs/delete", serde_json::json!({ "ids": [6] }));
    assert_eq!(r["done"], serde_json::json!([]), "{r}");
    assert!(
        r["skipped"][0]["why"]
            .as_str()
            .unwrap()
            .contains("it is queued"),
        "{r}"
    );
    let e = s.post("/api/v1/jobs/6/delete").error(409);
    assert!(e.contains("job 6 is not deleted: it is queued"), "{e}");
    let r = s.post("/api/v1/jobs/5/delete");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"], "deleted");
    let one = r.json()["event"].as_u64().unwrap();
    assert_eq!(ids(&s.get_json("/api/v1/jobs")), [4, 6, 7, 8]);
    // Every action in the record, newest first, with where it came from.
    let page = s.get_json("/api/v1/events");
    let events = page["events"].as_array().unwrap();
    let got: Vec<(u64, &str, Value)> = events
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["action"].as_str().unwrap(),
                e["jobs"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (one, "delete", serde_json::json!([5])),
            (deleted, "delete", serde_json::json!([1, 2, 3])),
            (cancelled, "cancel", serde_json::json!([4, 5])),
            (retried, "retry", serde_json::json!([4])),
        ]
    );
    for e in events {
        assert_eq!(e["via"], "api", "{e}");
        assert!(
            e["client"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{e}"
        );
        assert!(e["at"].is_string(), "{e}");
    }
    assert_eq!(events[1]["detail"]["filter"]["task"], "cpu");
    assert_eq!(events[2]["detail"]["skipped"], 2);
    // Paged.
    let first = s.get_json("/api/v1/events?limit=3");
    assert_eq!(first["events"].as_array().unwrap().len(), 3);
    let next = first["next_cursor"].as_str().unwrap();
    let rest = s.get_json(&format!("/api/v1/events?limit=3&cursor={next}"));
    assert_eq!(rest["events"][0]["id"], retried);
    assert!(rest["next_cursor"].is_null());
}

#[test]
fn bulk_actions_say_what_they_did_and_each_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let q = format!("sqlite://{db}");
    let s = serve(&["--queue", &q]);
    filters_hold(&s, &q);
    bulk_actions_hold(&s);
    // A finished job that a blocked job is after keeps its record.
    let flow = dir.path().join("flow.toml");
    std::fs::write(
        &flow,
        "[[job]]\nname = \"a\"\ntask = \"cpu\"\nparams = { n = 1 }\n\n\
         [[job]]\nname = \"b\"\ntask = \"cpu\"\nparams = { n = 1 }\n\n\
         [[job]]\nname = \"c\"\ntask = \"cpu\"\nafter = [\"a\", \"b\"]\n\
         run_if = \"always\"\nparams = { n = 1 }\n",
    )
    .unwrap();
    submit(&q, &["-f", flow.to_str().unwrap()]);
    let r = s.post("/api/v1/jobs/9/cancel");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get_json("/api/v1/jobs/11")["state"], "blocked");
    let e = s.post("/api/v1/jobs/9/delete").error(409);
    assert!(e.contains("job 11 is blocked after it"), "{e}");
    // Once the job after it runs, it may go.
    let r = s.with_body(
        "POST",
        "/api/v1/jobs/cancel",
        &serde_json::json!({ "ids": [10, 11] }),
    );
    assert_eq!(r.json()["done"], serde_json::json!([10, 11]), "{}", r.body);
    let r = s.with_body(
        "POST",
        "/api/v1/jobs/delete",
        &serde_json::json!({ "ids": [9, 10, 11] }),
    );
    assert_eq!(
        r.json()["done"],
        serde_json::json!([9, 10, 11]),
        "{}",
        r.body
    );
}

#[test]
fn tasks_limits_and_schedules_are_steered_and_each_change_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let q = format!("sqlite://{db}");
    ok(&[
        "schedule", "add", "--queue", &q, "hourly", "cpu:n=1", "--every", "1h",
    ]);
    let s = serve(&["--queue", &q]);
    let ok_json = |r: Reply| {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    // Pause and resume a task, then every task.
    let r = ok_json(s.post("/api/v1/tasks/cpu/pause"));
    assert_eq!(
        (r["action"].as_str(), r["paused"].clone()),
        (Some("paused"), serde_json::json!(["cpu"]))
    );
    assert_eq!(
        s.get_json("/api/v1/limits")["paused"],
        serde_json::json!(["cpu"])
    );
    let r = ok_json(s.post("/api/v1/tasks/cpu/resume"));
    assert_eq!(r["action"], "resumed");
    let r = ok_json(s.post("/api/v1/tasks/cpu/resume"));
    assert_eq!(r["action"], "nothing_paused");
    assert_eq!(r["event"], Value::Null);
    let r = ok_json(s.post("/api/v1/tasks/pause"));
    assert_eq!(r["paused_all"], true);
    let r = ok_json(s.post("/api/v1/tasks/resume"));
    assert_eq!(r["paused_all"], false);
    // Set a task's limit, then a key's, and clear one.
    let r = ok_json(s.with_body(
        "PUT",
        "/api/v1/limits/task/cpu",
        &serde_json::json!({ "concurrency": 2, "rate": "10/s" }),
    ));
    assert_eq!(r["limit"]["concurrency"], 2, "{r}");
    let r = ok_json(s.with_body(
        "PUT",
        "/api/v1/limits/key/tenant:42",
        &serde_json::json!({ "concurrency": 1 }),
    ));
    assert_eq!(
        r["target"],
        serde_json::json!({ "key": { "name": "tenant", "value": "42" } })
    );
    let limits = s.get_json("/api/v1/limits")["limits"].clone();
    assert_eq!(limits.as_array().unwrap().len(), 2, "{limits}");
    let r = ok_json(s.ask("DELETE", "/api/v1/limits/task/cpu", &[]));
    assert_eq!(r["limit"], Value::Null);
    let limits = s.get_json("/api/v1/limits")["limits"].clone();
    assert_eq!(limits[0]["target"]["key"]["name"], "tenant", "{limits}");
    // Clearing it again: nothing is stored, nothing is recorded.
    let events = s.get_json("/api/v1/events")["events"]
        .as_array()
        .unwrap()
        .len();
    let e = s.ask("DELETE", "/api/v1/limits/task/cpu", &[]).error(404);
    assert!(e.contains("no limit of task `cpu` is stored"), "{e}");
    assert_eq!(
        s.get_json("/api/v1/events")["events"]
            .as_array()
            .unwrap()
            .len(),
        events,
        "a clear of nothing is not an event"
    );
    // A schedule: paused, resumed, and fired now.
    let r = ok_json(s.post("/api/v1/schedules/hourly/pause"));
    assert_eq!(r["action"], "paused");
    assert_eq!(
        s.get_json("/api/v1/schedules")["schedules"][0]["paused"],
        true
    );
    ok_json(s.post("/api/v1/schedules/hourly/resume"));
    assert_eq!(
        s.get_json("/api/v1/schedules")["schedules"][0]["paused"],
        false
    );
    let r = ok_json(s.post("/api/v1/schedules/hourly/trigger"));
    assert_eq!(r["jobs"], serde_json::json!([5]), "{r}");
    let job = s.get_json("/api/v1/jobs/5");
    assert_eq!(
        (job["task"].as_str(), job["schedule"].as_str()),
        (Some("cpu"), Some("hourly"))
    );
    // The record, newest first.
    let events = s.get_json("/api/v1/events")["events"].clone();
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "trigger_schedule",
            "resume_schedule",
            "pause_schedule",
            "clear_limit",
            "set_limit",
            "set_limit",
            "resume",
            "pause",
            "resume",
            "pause",
        ]
    );
    assert_eq!(events[0]["jobs"], serde_json::json!([5]));
    assert_eq!(events[0]["detail"]["schedule"], "hourly");
    assert_eq!(events[7]["detail"]["task"], Value::Null, "every task");
    assert_eq!(events[9]["detail"]["task"], "cpu");
}

/// The value of `name=` in a `Set-Cookie` header, and the whole header.
fn set_cookie(r: &Reply, name: &str) -> (String, String) {
    let h = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {}", r.head));
    let v = h
        .split(';')
        .next()
        .and_then(|kv| kv.trim().strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {h}"))
        .to_string();
    (v, h)
}

/// The `content` of `<meta name="NAME" content="...">` in a page.
fn meta(page: &str, name: &str) -> String {
    let at = format!("<meta name=\"{name}\" content=\"");
    let rest = page
        .split(&at)
        .nth(1)
        .unwrap_or_else(|| panic!("no {name}"));
    rest.split('"').next().unwrap().to_string()
}

#[test]
fn the_dashboard_is_served_with_its_assets_and_the_host_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let s = serve(&["--queue", &format!("sqlite://{db}")]);
    let r = s.get("/");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(r.body.contains("/assets/app.js") && r.body.contains("/assets/style.css"));
    // Nothing from another host: every src and href is this server's.
    for attr in ["src=\"http", "href=\"http", "//cdn"] {
        assert!(!r.body.contains(attr), "{attr} in the page");
    }
    assert_eq!(meta(&r.body, "runyard-read-only"), "false");
    assert_eq!(
        meta(&r.body, "runyard-csrf"),
        "",
        "no session, no CSRF token"
    );
    let js = s.get("/assets/app.js");
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    // The one URL in the script is SVG's namespace, which loads nothing.
    let js_urls = js.body.replace("\"http://www.w3.org/2000/svg\"", "");
    assert!(!js_urls.contains("http://") && !js_urls.contains("https://"));
    let css = s.get("/assets/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    // The Host check holds for the page too; no login without a token.
    let e = s.ask("GET", "/", &[("Host", "evil.example:80")]).error(403);
    assert!(e.contains("Host"), "{e}");
    let r = s.get("/login");
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (303, Some("/"))
    );

    let ro = serve(&["--queue", &format!("sqlite://{db}"), "--read-only"]);
    assert_eq!(meta(&ro.get("/").body, "runyard-read-only"), "true");
}

/// Read-only with a token: logging in is not an action on the queue, but
/// the session can act no more than a bearer token could.
#[test]
fn read_only_with_a_token_logs_in_but_acts_on_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let token = "0123456789abcdef-ro";
    let ro = serve_with(
        &["--queue", &format!("sqlite://{db}"), "--read-only"],
        &[("RUNYARD_SERVE_TOKEN", token)],
    );
    let r = ro.send(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&format!("token={token}")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let (id, _) = set_cookie(&r, &format!("runyard_session_{}", ro.addr.port()));
    let cookie = format!("runyard_session_{}={id}", ro.addr.port());
    let page = ro.ask("GET", "/", &[("Cookie", &cookie)]);
    assert_eq!(meta(&page.body, "runyard-read-only"), "true");
    let csrf = meta(&page.body, "runyard-csrf");
    let e = ro
        .ask(
            "POST",
            "/api/v1/jobs/4/retry",
            &[("Cookie", &cookie), ("X-Runyard-CSRF", &csrf)],
        )
        .error(403);
    assert!(e.contains("read-only"), "{e}");
    // A login form that is not a form is refused with what it needs.
    let r = ro.send(
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        Some("{}"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("x-www-form-urlencoded"), "{}", r.body);
}

#[test]
fn the_dashboard_logs_in_with_the_token_and_its_actions_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let q = format!("sqlite://{db}");
    let token = "0123456789abcdef-dash";
    let s = serve_with(&["--queue", &q], &[("RUNYARD_SERVE_TOKEN", token)]);
    let name = format!("runyard_session_{}", s.addr.port());

    // Without a session: the page sends to the login form, the API says 401.
    let r = s.get("/");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    let form = s.get("/login");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"token\"") && form.body.contains("action=\"/login\""));
    assert_eq!(
        s.get("/assets/style.css").status,
        200,
        "the form's style is open"
    );
    let e = s.get("/api/v1/jobs").error(401);
    assert!(e.contains("/login"), "{e}");

    let login = |t: &str, headers: &[(&str, &str)]| {
        let body = format!("token={t}");
        let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        s.send("POST", "/login", &h, Some(&body))
    };
    let r = login("0123456789abcdef-wrong", &[]);
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("not the token of this server"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("wrong") && !r.body.contains(token));
    assert!(r.header("set-cookie").is_none());
    // A login posted from another site is refused by its Origin.
    let r = login(token, &[("Origin", "http://evil.example")]);
    assert_eq!(r.status, 403, "{}", r.body);

    let r = login(token, &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let (id, header) = set_cookie(&r, &name);
    assert_eq!(id.len(), 64);
    assert!(!header.contains(token));
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(part), "{part} in {header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    let cookie = format!("{name}={id}");
    let page = s.ask("GET", "/", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(token), "the token is in no page");
    assert_eq!(meta(&page.body, "runyard-session"), "true");
    let csrf = meta(&page.body, "runyard-csrf");
    assert_eq!(csrf.len(), 64);
    assert_ne!(csrf, id);
    let r = s.ask("GET", "/api/v1/jobs?state=dead", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.json()), [4]);

    // An action with the cookie needs the session's CSRF token.
    let e = s
        .ask("POST", "/api/v1/jobs/4/retry", &[("Cookie", &cookie)])
        .error(403);
    assert!(e.contains("CSRF") && e.contains("x-runyard-csrf"), "{e}");
    assert!(e.contains("without its CSRF token"), "{e}");
    let wrong = "0".repeat(64);
    let e = s
        .ask(
            "POST",
            "/api/v1/jobs/4/retry",
            &[("Cookie", &cookie), ("X-Runyard-CSRF", &wrong)],
        )
        .error(403);
    assert!(e.contains("CSRF"), "{e}");
    let with = [
        ("Cookie", cookie.as_str()),
        ("X-Runyard-CSRF", csrf.as_str()),
    ];
    let r = s.ask("POST", "/api/v1/jobs/4/retry", &with);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"], "retried");
    // The Origin check still holds with both.
    let mut evil = with.to_vec();
    evil.push(("Origin", "http://evil.example"));
    let e = s.ask("POST", "/api/v1/jobs/4/cancel", &evil).error(403);
    assert!(e.contains("origin"), "{e}");
    // A bearer token needs no CSRF token.
    let bearer = format!("Bearer {token}");
    let r = s.ask(
        "POST",
        "/api/v1/jobs/4/cancel",
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"], "cancelled");

    // Logging out ends the session.
    let r = s.ask("POST", "/logout", &with);
    assert_eq!(r.status, 303, "{}", r.body);
    let (cleared, _) = set_cookie(&r, &name);
    assert_eq!(cleared, "");
    s.ask("GET", "/api/v1/jobs", &[("Cookie", &cookie)])
        .error(401);
    assert_eq!(s.ask("GET", "/", &[("Cookie", &cookie)]).status, 303);
    // A cookie this server never gave is no session.
    let forged = format!("{name}={}", "a".repeat(64));
    s.ask("GET", "/api/v1/jobs", &[("Cookie", &forged)])
        .error(401);
    assert!(!s.proc.stderr().contains(token));
}

#[test]
fn stats_count_finished_attempts_per_minute_and_refuse_bad_windows() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_file(dir.path(), &[]);
    let s = serve(&["--queue", &format!("sqlite://{db}")]);
    let v = s.get_json("/api/v1/stats?window=1h");
    assert_eq!(v["window"], "1h");
    let minutes = v["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    // 3 cpu jobs succeeded, the fail job failed twice: all in the window.
    assert_eq!(v["totals"]["succeeded"], 3, "{v}");
    assert_eq!(v["totals"]["failed"], 2, "{v}");
    let sum: u64 = minutes
        .iter()
        .map(|m| m["succeeded"].as_u64().unwrap() + m["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 5);
    let first = minutes[0]["minute"].as_str().unwrap();
    assert_eq!(v["since"].as_str().unwrap(), first);
    assert!(first.ends_with(":00.000Z"), "whole minutes: {first}");
    assert_eq!(
        s.get_json("/api/v1/stats")["minutes"]
            .as_array()
            .unwrap()
            .len(),
        60
    );
    assert_eq!(
        s.get_json("/api/v1/stats?window=24h")["minutes"]
            .as_array()
            .unwrap()
            .len(),
        1440
    );
    assert_eq!(
        s.get_json("/api/v1/stats?window=5m")["minutes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    for bad in ["4m", "25h", "1d", "", "abc"] {
        let e = s.get(&format!("/api/v1/stats?window={bad}")).error(400);
        assert!(
            e.contains("`window`") && e.contains("5m to 24h"),
            "{bad}: {e}"
        );
    }
    let e = s.get("/api/v1/stats?windows=1h").error(400);
    assert!(e.contains("unknown query parameter `windows`"), "{e}");
}
