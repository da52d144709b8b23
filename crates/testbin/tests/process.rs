//! Process mode with real processes: every kind of crash costs one attempt,
//! timeouts kill, workers are recycled, nothing is lost, nothing is left
//! behind, and no worker outlives a killed engine.
//!
//! Every run is marked (see `common`): after it, nothing it started may be
//! left.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Runs with `--json -` and returns (exit code, report).
fn report(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["run", "--mode", "process", "--json", "-"];
    all.extend(args);
    let r = run_marked(&all);
    let v = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not a report ({e}); stderr:\n{}", r.stderr));
    (r.code, v)
}

fn attempts(job: &serde_json::Value) -> Vec<(String, String)> {
    job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_string(),
                a["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn each_kind_of_crash_costs_one_attempt_and_names_its_cause() {
    let (code, r) = report(&[
        "--max-attempts",
        "2",
        "--backoff",
        "none",
        "abort",
        "segv",
        "exit:code=3",
        "panic",
        "noop*20",
    ]);
    assert_eq!(code, 1);
    let jobs = r["jobs"].as_array().unwrap();
    let crash = |i: usize| attempts(&jobs[i]);
    assert_eq!(
        crash(0),
        vec![
            (
                "crashed".into(),
                "the worker process killed by signal SIGABRT".into()
            );
            2
        ]
    );
    assert_eq!(
        crash(1),
        vec![
            (
                "crashed".into(),
                "the worker process killed by signal SIGSEGV".into()
            );
            2
        ]
    );
    assert_eq!(
        crash(2),
        vec![
            (
                "crashed".into(),
                "the worker process exited with code 3".into()
            );
            2
        ]
    );
    let detail = &jobs[1]["attempts"][0]["detail"];
    assert_eq!(detail["signal"], "SIGSEGV");
    assert_eq!(jobs[2]["attempts"][0]["detail"]["exit_code"], 3);
    // A panic is caught inside the worker: no process is lost for it.
    assert_eq!(crash(3)[0].0, "panicked");
    assert!(
        jobs[4..].iter().all(|j| j["state"] == "succeeded"),
        "the other jobs run on"
    );
    assert_eq!(r["summary"]["succeeded"], 20);
}

#[test]
fn allocating_past_the_memory_limit_costs_the_attempt_not_the_run() {
    let (code, r) = report(&[
        "--worker-memory-limit",
        "256M",
        "--max-attempts",
        "1",
        "alloc:mb=1024",
        "alloc:mb=8",
    ]);
    assert_eq!(code, 1);
    let jobs = r["jobs"].as_array().unwrap();
    let (outcome, error) = &attempts(&jobs[0])[0];
    assert_eq!(outcome, "crashed");
    assert_eq!(
        error, "the worker process killed by signal SIGABRT",
        "Rust aborts when an allocation fails"
    );
    assert_eq!(jobs[1]["state"], "succeeded");
}

#[test]
fn a_hung_attempt_is_killed_at_its_timeout_with_its_process_group() {
    let start = Instant::now();
    let (code, r) = report(&[
        "--timeout",
        "300ms",
        "--max-attempts",
        "2",
        "--backoff",
        "none",
        "hang",
        "noop",
    ]);
    assert_eq!(code, 1);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the run did not wait for the hung task"
    );
    let a = attempts(&r["jobs"][0]);
    assert_eq!(
        a,
        vec![("timed_out".into(), "timed out after 300ms".into()); 2]
    );
    assert_eq!(r["jobs"][1]["state"], "succeeded");
}

#[test]
fn a_task_that_floods_stdout_does_not_corrupt_the_protocol_or_the_report() {
    let r = run_marked(&[
        "run",
        "--mode",
        "process",
        "--json",
        "-",
        "spew:mb=8",
        "noop*100",
    ]);
    assert_eq!(
        r.code,
        0,
        "{}",
        &r.stderr[r.stderr.len().saturating_sub(2000)..]
    );
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).expect("stdout holds the report alone");
    assert_eq!(v["summary"]["succeeded"], 101);
    assert_eq!(v["jobs"][0]["output"], 8);
    assert!(
        r.stderr.len() > 8 << 20,
        "the task's output went to standard error"
    );
}

/// A mixed run of 10,000 jobs, about one attempt in ten crashing its worker
/// (SIGKILL): every job once, each with exactly the attempts the crashes
/// dictate, the exit code right, no worker left.
#[test]
fn ten_thousand_jobs_with_random_crashes_lose_nothing() {
    let (code, r) = report(&[
        "-j",
        "2",
        "--max-attempts",
        "3",
        "--backoff",
        "none",
        "chaos:one_in=10*7000",
        "noop*3000",
    ]);
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 10_000);
    let ids: BTreeSet<u64> = jobs.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 10_000, "each job once");
    let mut dead = 0;
    for j in jobs.iter().filter(|j| j["task"] == "chaos") {
        let id = j["id"].as_u64().unwrap();
        // The attempts this job must have had: crashes until one survives, at most 3.
        let mut expected = Vec::new();
        for attempt in 1..=3 {
            let crashes = chaos_crashes(id, attempt, 10);
            expected.push(if crashes { "crashed" } else { "succeeded" });
            if !crashes {
                break;
            }
        }
        let got: Vec<String> = attempts(j).into_iter().map(|a| a.0).collect();
        assert_eq!(got, expected, "job {id}");
        if expected.last() == Some(&"crashed") {
            dead += 1;
            assert_eq!(j["state"], "dead");
        } else {
            assert_eq!(j["state"], "succeeded");
            assert_eq!(j["output"], id);
        }
    }
    assert!(jobs
        .iter()
        .filter(|j| j["task"] == "noop")
        .all(|j| j["state"] == "succeeded"));
    let s = &r["summary"];
    assert_eq!(s["dead"], dead);
    assert_eq!(s["succeeded"], 10_000 - dead);
    assert_eq!(code, if dead > 0 { 1 } else { 0 });
}

/// The crash rule of the `chaos` task (the same as the binary's).
fn chaos_crashes(job: u64, attempt: u32, one_in: u64) -> bool {
    let mut x = job.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (attempt as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    x.is_multiple_of(one_in)
}

#[test]
fn workers_are_recycled_after_n_jobs_and_above_a_resident_size() {
    let (code, r) = report(&["-j", "1", "--max-jobs-per-worker", "5", "pid*20"]);
    assert_eq!(code, 0);
    let pids: Vec<u64> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["output"].as_u64().unwrap())
        .collect();
    let mut runs: HashMap<u64, usize> = HashMap::new();
    for p in &pids {
        *runs.entry(*p).or_default() += 1;
    }
    assert_eq!(runs.len(), 4, "20 jobs, 5 per worker: {runs:?}");
    assert!(runs.values().all(|&n| n == 5));

    let (code, r) = report(&["-j", "1", "--max-worker-rss", "100M", "leak:mb=40*6"]);
    assert_eq!(code, 0);
    let pids: BTreeSet<u64> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["output"].as_u64().unwrap())
        .collect();
    assert!(
        pids.len() >= 2,
        "a worker that grew past 100M was replaced: {pids:?}"
    );
}

#[test]
fn a_worker_that_dies_between_jobs_is_replaced_and_costs_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let events = d.path().join("events.jsonl");
    // The first attempt fails at once and the retry waits two seconds: the
    // worker is idle meanwhile, and the test kills it.
    let (mut cmd, mark) = marked_runyard(&[]);
    let mut child = cmd
        .args([
            "run",
            "--mode",
            "process",
            "-j",
            "1",
            "fail:k=1",
            "--backoff",
            "fixed:2s",
            "-q",
            "--json",
            out.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first attempt to fail", || {
        std::fs::read_to_string(&events).is_ok_and(|e| e.contains("\"type\":\"scheduled\""))
    });
    let workers = children_of(child.id());
    assert_eq!(workers.len(), 1, "one idle worker");
    let worker = workers[0];
    assert_eq!(
        Command::new("kill")
            .args(["-9", &worker.to_string()])
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    assert_eq!(
        wait_for_exit(&mut child, Duration::from_secs(60)).code(),
        Some(0)
    );
    nothing_left(&mark);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let a = attempts(&r["jobs"][0]);
    assert_eq!(
        a.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["failed", "succeeded"]
    );
}

#[test]
fn no_worker_outlives_an_engine_killed_with_sigkill() {
    let (mut child, mark) = spawn_run(&["run", "--mode", "process", "-j", "2", "hang*4"]);
    let mut workers = Vec::new();
    wait_until(Duration::from_secs(30), "two workers", || {
        workers = children_of(child.id());
        workers.len() == 2
    });
    assert!(workers.iter().all(|&w| alive(w)));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(Duration::from_secs(10), "the workers to exit", || {
        workers.iter().all(|&w| !alive(w))
    });
    nothing_left(&mark);
}

#[test]
fn a_job_that_crashes_every_worker_ends_dead_and_the_pool_goes_on() {
    let (code, r) = report(&[
        "-j",
        "2",
        "--max-attempts",
        "4",
        "--backoff",
        "none",
        "segv",
        "noop*200",
    ]);
    assert_eq!(code, 1);
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(attempts(&jobs[0]).len(), 4);
    assert_eq!(jobs[0]["state"], "dead");
    assert_eq!(r["summary"]["succeeded"], 200);
}

#[test]
fn a_library_binary_runs_its_own_tasks_in_worker_processes() {
    // The example binary calls `enter_if_child` and takes a mode argument.
    let example = Path::new(BIN).with_file_name("resize-demo");
    // Built every time (quick when up to date): a stale binary would test
    // old code.
    let ok = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "runyard-example-resize"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the example");
    // Thumbnails say which process made them, the summary which process
    // ran the engine.
    let made_by = |mode: &str| {
        let out = Command::new(&example).arg(mode).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("7 jobs: 7 succeeded"), "{text}");
        let pid_after = |s: &str, tag: &str| -> u32 {
            let rest = &s[s.find(tag).unwrap() + tag.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        };
        let engine = pid_after(&text, "this is process ");
        let thumbs: BTreeSet<u32> = text
            .lines()
            .filter(|l| l.contains("thumbnail"))
            .map(|l| pid_after(l, "by process "))
            .collect();
        (engine, thumbs)
    };
    let (engine, thumbs) = made_by("process");
    assert!(
        !thumbs.is_empty() && !thumbs.contains(&engine),
        "{thumbs:?}"
    );
    let (engine, thumbs) = made_by("thread");
    assert_eq!(
        thumbs,
        BTreeSet::from([engine]),
        "thread mode stays in the engine"
    );
}

#[test]
fn a_task_deaf_to_sigterm_is_killed_at_its_timeout_with_what_it_started() {
    // `stubborn` ignores SIGTERM and starts a `sleep` that ignores it too:
    // only SIGKILL to the process group, after the grace, ends both (the
    // `sleep` has no parent-death signal: nothing else would end it, and
    // `report` checks that nothing of the run is left).
    let (code, r) = report(&[
        "--timeout",
        "200ms",
        "--max-attempts",
        "1",
        "stubborn",
        "noop",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        attempts(&r["jobs"][0]),
        vec![("timed_out".into(), "timed out after 200ms".into())]
    );
    assert_eq!(r["jobs"][1]["state"], "succeeded");
}

#[test]
fn an_interrupted_run_cancels_its_running_attempts_and_kills_their_workers() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let events = d.path().join("events.jsonl");
    let (mut child, mark) = spawn_run(&[
        "run",
        "--mode",
        "process",
        "-j",
        "2",
        "--grace",
        "200ms",
        "hang*4",
        "--json",
        out.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    wait_until(Duration::from_secs(30), "two attempts running", || {
        std::fs::read_to_string(&events)
            .is_ok_and(|e| e.matches("\"type\":\"running\"").count() == 2)
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    nothing_left(&mark);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let jobs = r["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "cancelled"), "{jobs:?}");
    let mut ran: Vec<Vec<(String, String)>> = jobs.iter().map(attempts).collect();
    ran.sort();
    let cancelled = vec![("cancelled".to_string(), "cancelled".to_string())];
    assert_eq!(
        ran,
        [vec![], vec![], cancelled.clone(), cancelled],
        "the two running attempts were cancelled, the others never started"
    );
}

#[test]
fn auto_mode_runs_isolated_tasks_and_jobs_in_worker_processes() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("jobs.toml");
    std::fs::write(
        &file,
        r#"
[[job]]
task = "pid"

[[job]]
task = "pid"
isolate = true

[[job]]
task = "isolated_pid"

[[job]]
task = "isolated_pid"
isolate = false
"#,
    )
    .unwrap();
    let ran = run_marked(&["run", "--json", "-", "-f", file.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let engine = u64::from(ran.pid);
    let r: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let pids: Vec<u64> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["output"].as_u64().unwrap())
        .collect();
    assert_eq!(pids[0], engine, "a plain job runs in the engine");
    assert_ne!(
        pids[1], engine,
        "a job with isolate = true runs in a worker"
    );
    assert_ne!(pids[2], engine, "a task declared isolate runs in a worker");
    assert_eq!(pids[3], engine, "a job may opt out of its task's isolation");
}
