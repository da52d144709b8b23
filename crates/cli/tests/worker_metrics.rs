//! `runyard worker --listen`: a real worker over an SQLite state file
//! serving its own metrics and its health checks, scraped over HTTP/1.1
//! and read with a Prometheus text parser; and the rule on addresses it
//! shares with `runyard serve`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use support::{said_address, Background};

mod support;

const TOKEN: &str = "0123456789abcdef0123";

fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1").env_remove("RUNYARD_SERVE_TOKEN");
    c
}

/// Runs `runyard ARGS` to the end; its exit code and stderr.
fn run(args: &[&str]) -> (i32, String) {
    let o = runyard()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runyard starts");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `runyard worker --listen ...`, its stderr collected as it comes, and
/// the address it said it bound; killed (by its pid) when dropped.
struct Worker {
    proc: Background,
    addr: SocketAddr,
}

impl Worker {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut c = runyard();
        c.arg("worker").args(args).envs(env.iter().copied());
        let mut proc = Background::start(c);
        let addr = proc.wait_for("runyard worker says its address", said_address);
        Worker { proc, addr }
    }

    /// `GET PATH` over loopback with `headers`: status and body.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let port = self.addr.port();
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req =
            format!("GET {path} HTTP/1.1\r\nConnection: close\r\nHost: 127.0.0.1:{port}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).expect("UTF-8");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// `/metrics`, parsed.
    fn scrape(&self, headers: &[(&str, &str)]) -> Metrics {
        let (status, body) = self.get("/metrics", headers);
        assert_eq!(status, 200, "{body}\n{}", self.proc.stderr());
        let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("not the text format ({e}):\n{body}"));
        Metrics { scrape, body }
    }
}

/// One scrape.
struct Metrics {
    scrape: Scrape,
    body: String,
}

impl Metrics {
    /// The value of the counter or gauge `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let s = self
            .find(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.body));
        match s.value {
            Value::Counter(v) | Value::Gauge(v) => v,
            ref other => panic!("{name} is not a counter or gauge: {other:?}"),
        }
    }

    /// The count (the `+Inf` bucket) of the histogram `name` with `labels`.
    fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let s = self
            .find(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.body));
        let Value::Histogram(buckets) = &s.value else {
            panic!("{name} is not a histogram: {:?}", s.value);
        };
        let mut last = 0.0;
        for b in buckets {
            assert!(b.count >= last, "buckets are cumulative: {buckets:?}");
            last = b.count;
        }
        let inf = buckets.iter().find(|b| b.less_than == f64::INFINITY);
        inf.unwrap_or_else(|| panic!("no +Inf bucket: {buckets:?}"))
            .count
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&prometheus_parse::Sample> {
        self.scrape.samples.iter().find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// The sum of `name` over every series whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) => v,
                _ => 0.0,
            })
            .sum()
    }
}

/// `(succeeded, dead)` counts of the queue, as `runyard status` says them.
fn ended(q: &str) -> (u64, u64) {
    let o = runyard()
        .args(["status", "--queue", q, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status JSON");
    let c = &v["counts"];
    (
        c["succeeded"].as_u64().unwrap(),
        c["dead"].as_u64().unwrap(),
    )
}

#[test]
fn a_worker_serves_counts_of_exactly_what_it_ran_per_task_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let q = format!("sqlite://{}", dir.path().join("s.db").display());
    // cpu: 3 attempts, all succeed. fail: k=1 fails once then succeeds;
    // k=5 fails both of its 2 attempts and ends dead: 3 failed, 1 succeeded.
    let (code, out) = run(&[
        "submit",
        "--queue",
        &q,
        "--max-attempts",
        "2",
        "--backoff",
        "none",
        "cpu:n=10*3",
        "fail:k=1",
        "fail:k=5",
    ]);
    assert_eq!(code, 0, "{out}");
    let w = Worker::start(
        &[
            "--queue",
            &q,
            "--name",
            "m1",
            "--listen",
            "127.0.0.1:0",
            "--tasks",
            "cpu,fail",
        ],
        &[],
    );
    assert_eq!(w.get("/healthz", &[]).0, 200);
    let (status, body) = w.get("/readyz", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ready"), "{body}");
    wait_until(Duration::from_secs(120), "every job ended", || {
        ended(&q) == (4, 1)
    });

    let m = w.scrape(&[]);
    let attempts = |task: &str, outcome: &str| {
        m.value(
            "runyard_attempts_total",
            &[("task", task), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("cpu", "succeeded"), 3.0);
    assert_eq!(attempts("fail", "succeeded"), 1.0);
    assert_eq!(attempts("fail", "failed"), 3.0);
    // Every other outcome of these tasks is there, at zero.
    assert_eq!(attempts("cpu", "failed"), 0.0);
    assert_eq!(attempts("fail", "timed_out"), 0.0);
    assert_eq!(m.sum("runyard_attempts_total", &[]), 7.0, "{}", m.body);
    // Only the tasks it claims are labelled.
    assert_eq!(m.sum("runyard_attempts_total", &[("task", "sleep")]), 0.0);
    assert!(m
        .find(
            "runyard_attempts_total",
            &[("task", "sleep"), ("outcome", "failed")]
        )
        .is_none());

    for (task, n) in [("cpu", 3.0), ("fail", 4.0)] {
        let labels = [("task", task)];
        assert_eq!(
            m.histogram_count("runyard_attempt_duration_seconds", &labels),
            n,
            "{task}"
        );
        assert_eq!(
            m.histogram_count("runyard_queue_wait_seconds", &labels),
            n,
            "{task}"
        );
    }
    assert_eq!(m.value("runyard_claims_total", &[]), 7.0);
    assert_eq!(m.value("runyard_attempts_running", &[]), 0.0);
    assert_eq!(m.value("runyard_rescued_leases_total", &[]), 0.0);
    assert_eq!(m.value("runyard_lost_leases_total", &[]), 0.0);
    assert_eq!(
        m.value("runyard_schedule_ticks_total", &[("result", "fired")]),
        0.0
    );
    // Every metric has its help; no label names a job.
    for name in [
        "runyard_attempts_total",
        "runyard_attempt_duration_seconds",
        "runyard_queue_wait_seconds",
        "runyard_claims_total",
        "runyard_attempts_running",
    ] {
        assert!(m.scrape.docs.contains_key(name), "no # HELP for {name}");
    }
    for s in &m.scrape.samples {
        for k in ["job", "id", "key", "worker"] {
            assert!(s.labels.get(k).is_none(), "{} has label {k}", s.metric);
        }
    }
}

#[test]
fn a_running_attempt_is_in_the_gauge_and_its_wait_is_observed_at_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let q = format!("sqlite://{}", dir.path().join("s.db").display());
    let (code, out) = run(&["submit", "--queue", &q, "sleep:duration=60s"]);
    assert_eq!(code, 0, "{out}");
    let w = Worker::start(
        &["--queue", &q, "--listen", "127.0.0.1:0", "--no-schedules"],
        &[],
    );
    wait_until(Duration::from_secs(60), "the sleep running", || {
        let m = w.scrape(&[]);
        m.value("runyard_attempts_running", &[]) == 1.0
    });
    let m = w.scrape(&[]);
    let sleep = [("task", "sleep")];
    assert_eq!(m.histogram_count("runyard_queue_wait_seconds", &sleep), 1.0);
    assert_eq!(
        m.histogram_count("runyard_attempt_duration_seconds", &sleep),
        0.0
    );
    assert_eq!(m.value("runyard_claims_total", &[]), 1.0);
    // A worker that fires no schedules has no tick counts.
    assert!(
        !m.body.contains("runyard_schedule_ticks_total"),
        "{}",
        m.body
    );
}

#[test]
fn beyond_loopback_a_worker_listens_only_with_a_token_which_metrics_then_need() {
    let dir = tempfile::tempdir().unwrap();
    let q = format!("sqlite://{}", dir.path().join("s.db").display());
    let (code, out) = run(&["worker", "--queue", &q, "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("0.0.0.0:0")
            && out.contains("--token-file")
            && out.contains("RUNYARD_SERVE_TOKEN"),
        "{out}"
    );
    assert!(!dir.path().join("s.db").exists(), "nothing was opened");
    let (code, out) = run(&["worker", "--queue", &q, "--token-file", "t.txt"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--listen"), "{out}");
    let (code, out) = run(&["worker", "--queue", &q, "--listen", "example.com:80"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("IP:PORT"), "{out}");

    // With the token in the environment, on every address: /metrics asks
    // for it, the health checks do not.
    let w = Worker::start(
        &["--queue", &q, "--listen", "0.0.0.0:0", "-q"],
        &[("RUNYARD_SERVE_TOKEN", TOKEN)],
    );
    assert!(
        w.proc.stderr().contains("with a token"),
        "{}",
        w.proc.stderr()
    );
    let (status, body) = w.get("/metrics", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(TOKEN));
    let (status, _) = w.get(
        "/metrics",
        &[("Authorization", "Bearer 0123456789abcdef0124")],
    );
    assert_eq!(status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let m = w.scrape(&[("Authorization", &bearer)]);
    assert_eq!(m.value("runyard_claims_total", &[]), 0.0);
    assert_eq!(w.get("/healthz", &[]).0, 200);
    assert_eq!(w.get("/readyz", &[]).0, 200);
    // Nothing but the worker's own routes.
    let (status, body) = w.get("/api/v1/jobs", &[("Authorization", &bearer)]);
    assert_eq!(status, 404, "{body}");
    // The token never reaches the worker's output.
    assert!(!w.proc.stderr().contains(TOKEN));
}

#[test]
fn the_queue_benchmark_can_meter_its_drain_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let q = format!("sqlite://{}", dir.path().join("b.db").display());
    let o = runyard()
        .args([
            "bench",
            "queue",
            "--n",
            "50",
            "--samples",
            "2",
            "--queue",
            &q,
        ])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON line");
    assert_eq!(line["metered"], true, "{line}");
    assert_eq!(line["tasks"], 50, "{line}");
    let (code, out) = run(&["bench", "queue", "--queue", &q, "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("loopback"), "{out}");
}
