//! DESIGN.md's guarantees, as the command line shows them.

use std::collections::HashMap;
use std::time::Duration;

use crate::util::{run, runyard, wait_exit, Dir};

fn report(d: &Dir, args: &[&str]) -> (i32, serde_json::Value) {
    let out = d.path("r.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", out.to_str().unwrap(), "--quiet"]);
    let r = run(&all);
    (
        r.code,
        serde_json::from_str(&d.read("r.json")).expect("a JSON report"),
    )
}

#[test]
fn the_original_demo_runs_exactly_as_written() {
    let r = run(&["run", "--mode", "thread", "cpu", "io", "io"]);
    r.code(0);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("succeeded"))
            .count(),
        3,
        "{}",
        r.stdout
    );
}

/// Guarantees 1, 2 and 4: a mixed run of two thousand jobs, with panics,
/// permanent and retryable failures and timeouts; every job ends in exactly
/// one terminal state, once in the report, with exactly the attempts its
/// policy allows.
#[test]
fn nothing_is_lost_and_every_failure_is_contained() {
    nothing_is_lost_and_every_failure_is_contained_in("thread");
}

/// The same in async mode: sync tasks on the blocking pool, `sleep` as a
/// future dropped at its timeout.
#[test]
fn nothing_is_lost_and_every_failure_is_contained_in_async_mode() {
    nothing_is_lost_and_every_failure_is_contained_in("async");
}

/// The same in auto mode: each task on its home.
#[test]
fn nothing_is_lost_and_every_failure_is_contained_in_auto_mode() {
    nothing_is_lost_and_every_failure_is_contained_in("auto");
}

fn nothing_is_lost_and_every_failure_is_contained_in(mode: &str) {
    let d = Dir::new();
    let sleeps = d.path("sleeps.toml");
    std::fs::write(
        &sleeps,
        "[[job]]\ntask = \"sleep\"\nparams = { duration = \"1h\" }\ncount = 20\ntimeout = \"20ms\"\n",
    )
    .unwrap();
    let (code, r) = report(
        &d,
        &[
            "run",
            "--mode",
            mode,
            "-j",
            "4",
            "--max-attempts",
            "3",
            "--backoff",
            "none",
            "noop*800",
            "fail:k=1*400",
            "fail:permanent=true*200",
            "panic*300",
            // Only the sleeps have a timeout (from the file): a short one
            // on every job would time out quick ones on a loaded machine.
            "-f",
            sleeps.to_str().unwrap(),
            "cpu:n=1000*280",
        ],
    );
    assert_eq!(code, 1, "some jobs are dead");
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2000);
    let mut ids: Vec<u64> = jobs.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2000, "each job once");
    let mut by: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for j in jobs {
        let key = (
            j["task"].as_str().unwrap().to_string(),
            j["state"].as_str().unwrap().to_string(),
        );
        by.entry(key)
            .or_default()
            .push(j["attempts"].as_array().unwrap().len());
    }
    let get = |t: &str, s: &str| by.get(&(t.into(), s.into())).cloned().unwrap_or_default();
    assert_eq!(get("noop", "succeeded"), vec![1; 800]);
    assert_eq!(get("fail", "succeeded"), vec![2; 400]);
    assert_eq!(
        get("fail", "dead"),
        vec![1; 200],
        "permanent errors are not retried"
    );
    assert_eq!(
        get("panic", "dead"),
        vec![3; 300],
        "a panic costs an attempt, never the run"
    );
    assert_eq!(get("sleep", "dead"), vec![3; 20], "each attempt timed out");
    assert_eq!(get("cpu", "succeeded"), vec![1; 280]);
    let panicked = jobs.iter().find(|j| j["task"] == "panic").unwrap();
    let a = &panicked["attempts"][0];
    assert_eq!(a["outcome"], "panicked");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .starts_with("the `panic` task panicked, as asked (at "),
        "{a}"
    );
    let timed = jobs.iter().find(|j| j["task"] == "sleep").unwrap();
    assert_eq!(timed["attempts"][0]["outcome"], "timed_out");
    assert_eq!(timed["attempts"][0]["error"], "timed out after 20ms");
    let s = &r["summary"];
    assert_eq!(
        (
            s["succeeded"].as_u64(),
            s["dead"].as_u64(),
            s["cancelled"].as_u64()
        ),
        (Some(1480), Some(520), Some(0))
    );
}

/// Guarantee 3, thread mode: a task that ignores its cancellation is
/// reported timed out and abandoned; the run does not wait for it.
#[test]
fn a_task_that_ignores_its_timeout_is_abandoned_not_awaited() {
    // On a thread, `ignore_cancel` sleeps without looking at its context.
    a_task_that_ignores_its_timeout_is_stopped_in("thread", "sleep:duration=1h,ignore_cancel=true");
}

/// Guarantee 3, async mode: the future is dropped at its timeout, whatever
/// the task does with its cancellation.
#[test]
fn a_task_that_ignores_its_timeout_is_dropped_in_async_mode() {
    // As a future, `sleep` never looks at its context: only dropping it
    // stops it.
    a_task_that_ignores_its_timeout_is_stopped_in("async", "sleep:duration=1h");
}

/// Guarantee 3, async and auto modes, for a future that blocks its runtime
/// thread (`ignore_cancel` sleeps synchronously, so it never reaches an
/// `.await` to be dropped at): reported timed out at its timeout and
/// abandoned, as in thread mode; the run does not wait for it.
#[test]
fn an_async_task_that_blocks_its_thread_is_abandoned_at_its_timeout() {
    for mode in ["async", "auto"] {
        a_task_that_ignores_its_timeout_is_stopped_in(mode, "sleep:duration=1h,ignore_cancel=true");
    }
}

fn a_task_that_ignores_its_timeout_is_stopped_in(mode: &str, job: &str) {
    let d = Dir::new();
    let out = d.path("r.json");
    let mut child = runyard()
        .args([
            "run",
            "--mode",
            mode,
            job,
            "noop",
            "--timeout",
            "50ms",
            "--max-attempts",
            "1",
            "-q",
            "--json",
            out.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    // The task sleeps for an hour; the run must end long before.
    let code = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(code, 1);
    let r: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(r["jobs"][0]["attempts"][0]["outcome"], "timed_out");
    assert_eq!(r["jobs"][1]["state"], "succeeded");
}

/// Guarantee 4: retries wait for their backoff; every attempt is recorded.
#[test]
fn a_retry_never_starts_before_its_backoff() {
    let d = Dir::new();
    let (code, r) = report(
        &d,
        &[
            "run",
            "fail:k=2",
            "--backoff",
            "fixed:150ms",
            "--max-attempts",
            "3",
        ],
    );
    assert_eq!(code, 0);
    let a = r["jobs"][0]["attempts"].as_array().unwrap();
    assert_eq!(a.len(), 3);
    let start = |i: usize| humantime::parse_rfc3339(a[i]["started_at"].as_str().unwrap()).unwrap();
    for i in 1..3 {
        let gap = start(i).duration_since(start(i - 1)).unwrap();
        assert!(
            gap >= Duration::from_millis(150),
            "attempt {} started {gap:?} after the previous one",
            i + 1
        );
    }
}
