//! The `http` task against real HTTP servers on 127.0.0.1, run by the
//! engine in async and auto modes: retries of 5xx, `Retry-After` on 429,
//! permanent 404s, timeouts that drop the request, requests sent as given.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runyard::event::{EventSink, JsonLines};
use runyard::queue::{MemoryQueue, Queue};
use runyard::report::OutcomeKind;
use runyard::{Backoff, Engine, EngineConfig, JobSpec, JobState, Mode, Registry, Report};
use serde_json::json;

/// A request as the server read it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// What the server answers to the `n`th request (from 1): a status line
/// with headers and body, or `None` to hold the connection without a word.
type Answer = dyn Fn(u32, &Seen) -> Option<String> + Send + Sync;

struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Seen>>>,
}

fn serve(answer: impl Fn(u32, &Seen) -> Option<String> + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let answer: Arc<Answer> = Arc::new(answer);
    let count = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (answer, count, seen) =
                (Arc::clone(&answer), Arc::clone(&count), Arc::clone(&seen));
            std::thread::spawn(move || handle(conn, &*answer, &count, &seen));
        }
    });
    Server { url, requests }
}

fn handle(conn: TcpStream, answer: &Answer, count: &AtomicU32, seen: &Mutex<Vec<Seen>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let mut req = Seen {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or_default().to_string(),
        ..Seen::default()
    };
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        if k == "content-length" {
            len = v.parse().unwrap();
        }
        req.headers.push((k, v));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    req.body = String::from_utf8(body).unwrap();
    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
    seen.lock().unwrap().push(req.clone());
    match answer(n, &req) {
        Some(resp) => {
            let _ = (&conn).write_all(resp.as_bytes());
        }
        // Stall: keep the connection open, say nothing, until the client leaves.
        None => {
            let _ = r.read(&mut [0; 1]);
        }
    }
}

fn reply(status: &str, headers: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    ))
}

fn engine(mode: Mode) -> Engine {
    Engine::new(
        Arc::new(
            Registry::builder()
                .tasks(runyard_builtins::tasks())
                .build()
                .unwrap(),
        ),
        EngineConfig::builder().mode(mode).build().unwrap(),
    )
}

fn http(params: serde_json::Value) -> JobSpec {
    JobSpec::new("http").params(&params).unwrap()
}

fn run(mode: Mode, jobs: Vec<JobSpec>) -> Report {
    engine(mode).run(jobs).unwrap()
}

fn outcomes(r: &Report, job: usize) -> Vec<OutcomeKind> {
    r.jobs[job].attempts.iter().map(|a| a.outcome).collect()
}

#[test]
fn server_errors_are_retried_until_the_answer_comes() {
    for mode in [Mode::Async, Mode::Auto] {
        let s = serve(|n, _| {
            if n <= 2 {
                reply("500 Internal Server Error", "", "oops")
            } else {
                reply("200 OK", "", "hello")
            }
        });
        let r = run(
            mode,
            vec![http(json!({"url": format!("{}/x", s.url)}))
                .max_attempts(3)
                .backoff(Backoff::None)],
        );
        let j = &r.jobs[0];
        assert_eq!(j.state, JobState::Succeeded, "{mode:?}: {:?}", j.attempts);
        assert_eq!(
            outcomes(&r, 0),
            [
                OutcomeKind::Failed,
                OutcomeKind::Failed,
                OutcomeKind::Succeeded
            ]
        );
        let err = j.attempts[0].error_message().unwrap();
        assert!(err.contains("500"), "{err}");
        let out: serde_json::Value = serde_json::from_str(j.output.as_json()).unwrap();
        assert_eq!(out["status"], 200);
        assert_eq!(out["bytes"], 5);
        assert_eq!(s.requests.lock().unwrap().len(), 3);
    }
}

#[test]
fn a_404_is_permanent() {
    let s = serve(|_, _| reply("404 Not Found", "", "no"));
    let r = run(
        Mode::Async,
        vec![http(json!({"url": s.url}))
            .max_attempts(5)
            .backoff(Backoff::None)],
    );
    assert_eq!(r.jobs[0].state, JobState::Dead);
    assert_eq!(outcomes(&r, 0), [OutcomeKind::Failed], "never retried");
    let err = r.jobs[0].attempts[0].error_message().unwrap();
    assert!(
        err.contains("GET") && err.contains("404 Not Found"),
        "{err}"
    );
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let s = serve(|n, _| {
        if n == 1 {
            reply("429 Too Many Requests", "Retry-After: 1\r\n", "")
        } else {
            reply("200 OK", "", "ok")
        }
    });
    // No backoff of its own: only the server's Retry-After spaces the attempts.
    let r = run(
        Mode::Async,
        vec![http(json!({"url": s.url}))
            .max_attempts(2)
            .backoff(Backoff::None)],
    );
    let a = &r.jobs[0].attempts;
    assert_eq!(
        outcomes(&r, 0),
        [OutcomeKind::Failed, OutcomeKind::Succeeded]
    );
    let gap = a[1].started_at.since(a[0].started_at);
    assert!(
        gap >= Duration::from_secs(1),
        "the second attempt came {gap:?} after the first"
    );
}

/// Where a run writes its JSON lines, for the test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Retry-After` decades ahead is honoured only up to the job's backoff
/// cap: the retry comes at the cap, the run ends, and every event is
/// written whole. (Such a reply once stopped the run with a panic while
/// writing the retry's `run_at`, or scheduled the retry for 2058.)
#[test]
fn a_far_retry_after_is_capped_by_the_backoff() {
    for secs in ["999999999999", "999999999"] {
        let s = serve(move |n, _| {
            if n == 1 {
                reply(
                    "429 Too Many Requests",
                    &format!("Retry-After: {secs}\r\n"),
                    "",
                )
            } else {
                reply("200 OK", "", "ok")
            }
        });
        let lines = Lines::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (url, out) = (s.url.clone(), lines.clone());
        std::thread::spawn(move || {
            let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
            let sink: Arc<dyn EventSink> = Arc::new(JsonLines::new(out));
            let run = engine(Mode::Async)
                .start_with_sinks(Arc::clone(&queue), vec![sink])
                .unwrap();
            let job = http(json!({ "url": url }))
                .max_attempts(2)
                .backoff("exponential:10ms,cap=50ms".parse().unwrap());
            run.submit(&job).unwrap();
            run.close();
            let _ = tx.send(run.wait().unwrap());
        });
        let r = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("Retry-After: {secs}: the run did not end ({e})"));
        assert_eq!(
            outcomes(&r, 0),
            [OutcomeKind::Failed, OutcomeKind::Succeeded]
        );
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let scheduled = events
            .iter()
            .find(|e| e["type"] == "scheduled")
            .expect("a scheduled event");
        // Counted from when the event was written, after the decision.
        let delay = scheduled["data"]["delay_ms"].as_f64().unwrap();
        assert!(
            delay <= 50.0,
            "the retry waits at most the cap: {scheduled}"
        );
        let run_at = scheduled["data"]["run_at"].as_str().unwrap();
        assert!(
            runyard::Timestamp::parse_rfc3339(run_at).is_ok(),
            "{run_at}"
        );
        assert_eq!(events.last().unwrap()["type"], "succeeded");
    }
}

#[test]
fn a_stalled_server_costs_a_timed_out_attempt() {
    let s = serve(|_, _| None);
    let r = run(
        Mode::Async,
        vec![
            // The job's timeout: the attempt's future is dropped.
            http(json!({"url": s.url}))
                .max_attempts(1)
                .timeout(Duration::from_millis(200)),
            // The request's own timeout: a retryable failure.
            http(json!({"url": s.url, "timeout": "200ms"}))
                .max_attempts(2)
                .backoff(Backoff::None),
        ],
    );
    assert_eq!(outcomes(&r, 0), [OutcomeKind::TimedOut]);
    assert_eq!(outcomes(&r, 1), [OutcomeKind::Failed, OutcomeKind::Failed]);
    let err = r.jobs[1].attempts[0].error_message().unwrap();
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn requests_are_sent_as_given() {
    let s = serve(|_, req| {
        if req.method == "POST" {
            reply("201 Created", "", "made")
        } else {
            reply("200 OK", "", "")
        }
    });
    let r = run(
        Mode::Auto,
        vec![http(json!({
            "method": "POST",
            "url": format!("{}/things?x=1", s.url),
            "headers": {"X-Token": "abc", "Content-Type": "text/plain"},
            "body": "payload",
            "expect": 201,
        }))],
    );
    assert_eq!(
        r.jobs[0].state,
        JobState::Succeeded,
        "{:?}",
        r.jobs[0].attempts
    );
    let seen = s.requests.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/things?x=1");
    assert!(seen.headers.contains(&("x-token".into(), "abc".into())));
    assert!(seen
        .headers
        .contains(&("content-type".into(), "text/plain".into())));
    assert_eq!(seen.body, "payload");
}

#[test]
fn an_unexpected_success_status_is_a_permanent_error() {
    let s = serve(|_, _| reply("204 No Content", "", ""));
    let r = run(
        Mode::Async,
        vec![http(json!({"url": s.url, "expect": [200, 201]})).max_attempts(3)],
    );
    assert_eq!(outcomes(&r, 0), [OutcomeKind::Failed]);
    assert!(r.jobs[0].attempts[0]
        .error_message()
        .unwrap()
        .contains("204"));
}

#[test]
fn bad_requests_are_refused_before_anything_runs() {
    let e = engine(Mode::Async);
    for (params, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "http://127.0.0.1/", "method": "FETCH"}),
            "method",
        ),
        (
            json!({"url": "http://127.0.0.1/", "headers": {"bad header": "x"}}),
            "headers",
        ),
        (json!({"url": "http://127.0.0.1/", "expect": 99}), "expect"),
        (json!({"method": "GET"}), "url"),
    ] {
        let err = e.prepare(&http(params.clone())).unwrap_err().to_string();
        assert!(err.contains(&format!("`{field}`")), "{params}: {err}");
    }
}
