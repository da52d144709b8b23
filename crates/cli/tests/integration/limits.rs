//! What the process's limits allow: an executor that cannot start for
//! want of them costs no job an attempt. The limits are those of the one
//! process under test (`prlimit --pid`), never the machine's.

use std::process::Command;
use std::time::Duration;

use crate::util::{background, events, run, wait_until, Dir};

/// Sets the soft `RLIMIT_NOFILE` of process `pid` (its hard limit stays).
fn set_open_files(pid: u32, soft: usize) {
    let ok = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .status()
        .expect("prlimit (util-linux) runs")
        .success();
    assert!(ok, "prlimit --pid {pid} --nofile={soft}: failed");
}

/// The soft `RLIMIT_NOFILE` of process `pid`.
fn open_files_limit(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a limit on open files");
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A worker whose worker processes cannot start (no descriptor left for
/// their pipes) keeps the job it claimed waiting, unstarted and uncounted,
/// says so once, and runs it when descriptors can be had again: one
/// attempt, succeeded.
#[test]
fn worker_processes_that_cannot_start_cost_no_attempt() {
    let d = Dir::new();
    let db = d.path("q.db");
    let url = format!("sqlite://{}", db.display());
    // A state file to share (a first run makes it).
    run(&["run", "--state", db.to_str().unwrap(), "noop", "-q"]).code(0);
    let ev = d.path("events.jsonl");
    let worker = background(&[
        "worker",
        "--queue",
        &url,
        "-j",
        "1",
        "--events",
        ev.to_str().unwrap(),
    ]);
    let pid = worker.child.id();
    wait_until(Duration::from_secs(30), "the worker to start", || {
        worker.stderr().contains("draining")
    });
    // Nothing to spare: the worker's processes, started at its first job,
    // cannot have their pipes.
    let limit = open_files_limit(pid);
    set_open_files(pid, open_files(pid));
    run(&["submit", "--queue", &url, "--mode", "process", "noop"]).code(0);
    // Told once, by the pool or by the worker loop, depending on which
    // descriptor ran out first; a charged attempt would show as an event.
    let told = "; its jobs wait, no attempt is counted, and it is tried again";
    let ended = || {
        let text = d.read("events.jsonl");
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        events(complete)
            .into_iter()
            .filter(|e| e["type"] != "queued")
            .collect::<Vec<_>>()
    };
    wait_until(
        Duration::from_secs(30),
        "the worker processes to fail to start",
        || worker.stderr().contains(told) || !ended().is_empty(),
    );
    assert_eq!(
        ended(),
        Vec::<serde_json::Value>::new(),
        "no attempt was made"
    );
    set_open_files(pid, limit);
    wait_until(Duration::from_secs(60), "the job to succeed", || {
        ended().iter().any(|e| e["type"] == "succeeded")
    });
    let seen: Vec<(String, u64)> = ended()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"]["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("running".to_string(), 1), ("succeeded".to_string(), 1)],
        "{}",
        worker.stderr()
    );
    assert_eq!(
        worker.stderr().matches(told).count(),
        1,
        "said once: {}",
        worker.stderr()
    );
}
