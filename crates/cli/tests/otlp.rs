//! The `otlp` feature's exporter (docs/tracing.md, "OpenTelemetry"): real
//! `runyard run` and `runyard worker` commands send their spans over
//! OTLP/HTTP to a receiver in this test, which decodes the protobuf; and a
//! collector that cannot be reached is one warning, never a failed run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

fn runyard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runyard"));
    c.env("NO_COLOR", "1")
        .env_remove("RUNYARD_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .stdin(Stdio::null());
    c
}

/// What the receiver got: each request's headers and decoded body.
#[derive(Default)]
struct Received {
    requests: Vec<(HashMap<String, String>, ExportTraceServiceRequest)>,
    errors: Vec<String>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: answers `POST /v1/traces` with
/// protobuf bodies, 404 anything else.
struct Receiver {
    url: String,
    got: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::clone(&got);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        Receiver { url, got }
    }

    /// Every span received, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let got = self.got.lock().unwrap();
        assert!(got.errors.is_empty(), "bad requests: {:?}", got.errors);
        let mut spans = Vec::new();
        for (_, req) in &got.requests {
            for rs in &req.resource_spans {
                let attrs = rs
                    .resource
                    .as_ref()
                    .map(|r| &r.attributes[..])
                    .unwrap_or(&[]);
                let service = text(attrs, "service.name").unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        spans.push((service.clone(), s.clone()));
                    }
                }
            }
        }
        spans
    }

    fn headers(&self) -> Vec<HashMap<String, String>> {
        let got = self.got.lock().unwrap();
        got.requests.iter().map(|(h, _)| h.clone()).collect()
    }
}

/// Serves the requests of one connection (kept alive) until it closes.
fn serve(conn: TcpStream, got: &Mutex<Received>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let request_line = line.trim_end().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = if request_line.starts_with("POST /v1/traces ") {
            match ExportTraceServiceRequest::decode(&body[..]) {
                Ok(req) => {
                    got.lock().unwrap().requests.push((headers, req));
                    "200 OK"
                }
                Err(e) => {
                    got.lock()
                        .unwrap()
                        .errors
                        .push(format!("{request_line}: {e}"));
                    "400 Bad Request"
                }
            }
        } else {
            got.lock().unwrap().errors.push(request_line.clone());
            "404 Not Found"
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        Value::StringValue(s) => Some(s.clone()),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        Value::IntValue(i) => Some(*i),
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

fn ran(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The job spans by job id, and the attempt spans by (job, attempt), of
/// `spans`; each at most once.
type Traces<'a> = (HashMap<i64, &'a Span>, HashMap<(i64, i64), &'a Span>);

fn by_job(spans: &[(String, Span)]) -> Traces<'_> {
    let (mut jobs, mut attempts) = (HashMap::new(), HashMap::new());
    for (_, s) in spans {
        let job = int(&s.attributes, "job").unwrap_or_else(|| panic!("no job: {s:?}"));
        match s.name.as_str() {
            "runyard.job" => {
                assert!(jobs.insert(job, s).is_none(), "two spans of job {job}");
            }
            "runyard.attempt" => {
                let n = int(&s.attributes, "attempt").expect("attempt");
                assert!(
                    attempts.insert((job, n), s).is_none(),
                    "two spans of job {job}'s attempt {n}"
                );
            }
            other => panic!("unexpected span {other}: {s:?}"),
        }
    }
    (jobs, attempts)
}

/// Every attempt span is its job span's child, in its trace.
fn children_of_their_jobs(traces: &Traces<'_>) {
    let (jobs, attempts) = traces;
    for ((job, n), a) in attempts {
        let j = jobs
            .get(job)
            .unwrap_or_else(|| panic!("no span of job {job}"));
        assert_eq!(a.parent_span_id, j.span_id, "job {job} attempt {n}");
        assert_eq!(a.trace_id, j.trace_id, "job {job} attempt {n}");
        assert!(j.parent_span_id.is_empty(), "a job's span is a root");
        assert!(a.start_time_unix_nano >= j.start_time_unix_nano);
        assert!(a.end_time_unix_nano <= j.end_time_unix_nano);
    }
}

#[test]
fn a_run_exports_a_span_per_job_and_per_attempt_each_attempt_the_child_of_its_job() {
    let rx = Receiver::start();
    // Jobs 1-2: cpu, succeed. Job 3: fails once, then succeeds. Job 4:
    // fails both of its attempts and ends dead.
    let o = runyard()
        .args([
            "run",
            "cpu:n=10*2",
            "fail:k=1",
            "fail:k=5",
            "--max-attempts",
            "2",
            "--backoff",
            "none",
            "-q",
        ])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &rx.url)
        .env("OTEL_SERVICE_NAME", "yard-test")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-yard=on")
        .output()
        .unwrap();
    // The run's spans are all sent before it exits: nothing to wait for.
    assert_eq!(o.status.code(), Some(1), "{}", ran(&o));
    let spans = rx.spans();
    assert!(
        spans.iter().all(|(service, _)| service == "yard-test"),
        "{spans:?}"
    );
    for h in rx.headers() {
        assert_eq!(h.get("x-yard").map(String::as_str), Some("on"), "{h:?}");
        assert_eq!(
            h.get("content-type").map(String::as_str),
            Some("application/x-protobuf")
        );
    }
    let traces = by_job(&spans);
    let (jobs, attempts) = &traces;
    let mut keys: Vec<_> = attempts.keys().copied().collect();
    keys.sort();
    assert_eq!(keys, [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 2)]);
    let mut ids: Vec<_> = jobs.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4]);
    children_of_their_jobs(&traces);

    let outcome = |k| text(&attempts[&k].attributes, "outcome").unwrap();
    assert_eq!(outcome((1, 1)), "succeeded");
    assert_eq!(outcome((3, 1)), "failed");
    assert_eq!(outcome((3, 2)), "succeeded");
    assert_eq!(outcome((4, 2)), "failed");
    for ((job, _), a) in attempts.iter() {
        let task = if *job <= 2 { "cpu" } else { "fail" };
        assert_eq!(text(&a.attributes, "task").as_deref(), Some(task));
        assert_eq!(text(&a.attributes, "mode").as_deref(), Some("thread"));
        assert!(text(&a.attributes, "worker").is_some());
        assert!(
            matches!(
                attr(&a.attributes, "duration_ms"),
                Some(Value::DoubleValue(_))
            ),
            "{a:?}"
        );
        assert!(a.end_time_unix_nano >= a.start_time_unix_nano);
    }
    // The end's event is on the attempt, with the error of a failure.
    let events =
        |k| -> Vec<String> { attempts[&k].events.iter().map(|e| e.name.clone()).collect() };
    assert_eq!(events((3, 1)), ["retry scheduled"]);
    assert_eq!(events((3, 2)), ["succeeded"]);
    assert_eq!(events((4, 2)), ["dead: no attempt left"]);
    let retry = &attempts[&(3, 1)].events[0];
    assert!(
        text(&retry.attributes, "error").is_some_and(|e| e.contains("failing on purpose")),
        "{retry:?}"
    );
    let failed = attempts[&(3, 1)].status.as_ref().map(|s| s.code);
    assert_eq!(failed, Some(StatusCode::Error as i32));

    // The job's span: its task and how it ended.
    let state = |job| text(&jobs[&job].attributes, "state");
    assert_eq!(state(1).as_deref(), Some("succeeded"));
    assert_eq!(state(3).as_deref(), Some("succeeded"));
    assert_eq!(state(4).as_deref(), Some("dead"));
    assert_eq!(text(&jobs[&3].attributes, "task").as_deref(), Some("fail"));
    let dead = jobs[&4].status.as_ref().map(|s| s.code);
    assert_eq!(dead, Some(StatusCode::Error as i32));
}

#[test]
fn a_worker_stopped_by_sigterm_sends_its_spans_before_it_exits() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let q = format!("sqlite://{}", dir.path().join("q.db").display());
    let o = runyard()
        .args([
            "submit",
            "--queue",
            &q,
            "--backoff",
            "none",
            "cpu:n=10*3",
            "fail:k=1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", ran(&o));
    let worker = runyard()
        .args([
            "worker", "--queue", &q, "--name", "w1", "--tasks", "cpu,fail",
        ])
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", rx.url),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let o = runyard()
            .args(["status", "--queue", &q, "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status JSON");
        if v["counts"]["succeeded"] == 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the jobs did not end: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = libc::pid_t::try_from(worker.id()).unwrap();
    // SAFETY: kill(2) of the child this test started, by its pid.
    let r = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(r, 0);
    let o = worker.wait_with_output().unwrap();
    assert!(o.status.code().is_some(), "{}", ran(&o));
    let spans = rx.spans();
    assert!(spans.iter().all(|(service, _)| service == "runyard"));
    let traces = by_job(&spans);
    let mut keys: Vec<_> = traces.1.keys().copied().collect();
    keys.sort();
    assert_eq!(
        keys,
        [(1, 1), (2, 1), (3, 1), (4, 1), (4, 2)],
        "{}",
        ran(&o)
    );
    assert_eq!(traces.0.len(), 4);
    children_of_their_jobs(&traces);
    for a in traces.1.values() {
        assert_eq!(text(&a.attributes, "worker").as_deref(), Some("w1"));
    }
}

#[test]
fn an_unreachable_collector_is_one_warning_and_the_run_goes_on() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = runyard()
        .args(["run", "cpu:n=10*3", "-q"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", ran(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr
            .matches("spans could not be sent to the OTLP collector")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn an_endpoint_that_is_not_a_url_is_a_usage_error_saying_what_is_valid() {
    let o = runyard()
        .args(["run", "cpu:n=10", "-q"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", ran(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{stderr}");
    assert!(stderr.contains("http://localhost:4318"), "{stderr}");
}
