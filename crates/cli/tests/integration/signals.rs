//! Ctrl-C and SIGTERM on a real process (guarantee 5): the first stops
//! claiming and lets running attempts finish within the grace period,
//! unstarted jobs are cancelled; the second cancels at once; exit code 130.

use std::time::Duration;

use crate::util::{background, events, signal, wait_exit, wait_until, Background, Dir};

fn start(d: &Dir, args: &[&str]) -> Background {
    let ev = d.path("events.jsonl");
    let out = d.path("r.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--events",
        ev.to_str().unwrap(),
        "--json",
        out.to_str().unwrap(),
    ]);
    background(&all)
}

/// `running` events so far.
pub(crate) fn running(d: &Dir) -> usize {
    let text = d.read("events.jsonl");
    // The last line may still be half written.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    events(complete)
        .iter()
        .filter(|e| e["type"] == "running")
        .count()
}

fn report(d: &Dir) -> serde_json::Value {
    serde_json::from_str(&d.read("r.json")).expect("a JSON report")
}

#[test]
fn first_interrupt_lets_running_attempts_finish_and_cancels_the_rest() {
    let d = Dir::new();
    let mut bg = start(
        &d,
        &[
            "run",
            "--mode",
            "thread",
            "-j",
            "1",
            "sleep:duration=2s*3",
            "--grace",
            "1m",
        ],
    );
    wait_until(
        Duration::from_secs(30),
        "the first attempt to start",
        || running(&d) == 1,
    );
    signal(&bg.child, "INT");
    assert_eq!(wait_exit(&mut bg.child, Duration::from_secs(60)), 130);
    let r = report(&d);
    let states: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["succeeded", "cancelled", "cancelled"],
        "the running attempt finished within the grace"
    );
    assert_eq!(
        r["jobs"][1]["attempts"].as_array().unwrap().len(),
        0,
        "unstarted jobs never ran"
    );
    assert_eq!(r["summary"]["interrupted"], true);
    assert!(bg.stderr().contains("interrupted: starting no more jobs"));
}

#[test]
fn second_interrupt_cancels_running_attempts() {
    second_interrupt_cancels_running_attempts_in("thread");
}

/// In async mode the in-flight futures are dropped.
#[test]
fn second_interrupt_cancels_in_flight_futures_in_async_mode() {
    second_interrupt_cancels_running_attempts_in("async");
}

fn second_interrupt_cancels_running_attempts_in(mode: &str) {
    let d = Dir::new();
    let mut bg = start(
        &d,
        &[
            "run",
            "--mode",
            mode,
            "-j",
            "2",
            "sleep:duration=1h*4",
            "--grace",
            "1h",
        ],
    );
    wait_until(Duration::from_secs(30), "two attempts to start", || {
        running(&d) == 2
    });
    signal(&bg.child, "INT");
    wait_until(
        Duration::from_secs(30),
        "the first interrupt to be taken",
        || bg.stderr().contains("interrupted: starting no more jobs"),
    );
    signal(&bg.child, "INT");
    assert_eq!(wait_exit(&mut bg.child, Duration::from_secs(60)), 130);
    let r = report(&d);
    let jobs = r["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "cancelled"), "{r}");
    let cancelled_attempts = jobs
        .iter()
        .filter(|j| {
            j["attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["outcome"] == "cancelled")
        })
        .count();
    assert_eq!(
        cancelled_attempts, 2,
        "the two running attempts were cancelled; the others never started"
    );
}

#[test]
fn sigterm_is_an_interrupt_too() {
    sigterm_is_an_interrupt_in("thread");
}

/// Auto mode: the grace ends, the future is dropped.
#[test]
fn sigterm_is_an_interrupt_in_auto_mode_too() {
    sigterm_is_an_interrupt_in("auto");
}

fn sigterm_is_an_interrupt_in(mode: &str) {
    let d = Dir::new();
    let mut bg = start(
        &d,
        &[
            "run",
            "--mode",
            mode,
            "sleep:duration=1h",
            "--grace",
            "50ms",
        ],
    );
    wait_until(Duration::from_secs(30), "the attempt to start", || {
        running(&d) == 1
    });
    signal(&bg.child, "TERM");
    assert_eq!(wait_exit(&mut bg.child, Duration::from_secs(60)), 130);
    let r = report(&d);
    assert_eq!(r["jobs"][0]["state"], "cancelled");
    assert_eq!(r["jobs"][0]["attempts"][0]["outcome"], "cancelled");
}

/// A state file counts started attempts as running, claims made ahead of
/// them as queued: after a SIGKILL of a `-j 2` run, `status` shows the two
/// attempts that were running, not every job the run had claimed.
#[test]
fn after_a_kill_status_counts_the_started_attempts_as_running() {
    let d = Dir::new();
    let state = d.path("state.db");
    let state = state.to_str().unwrap();
    let mut bg = start(
        &d,
        &[
            "run",
            "--mode",
            "thread",
            "-j",
            "2",
            "sleep:duration=1h*10",
            "--state",
            state,
        ],
    );
    // None until the run has made its state file.
    let counts = || {
        let r = crate::util::run(&["status", "--state", state, "--json"]);
        let s: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
        let n = |k: &str| s["counts"][k].as_u64();
        Some((n("queued")?, n("running")?))
    };
    wait_until(
        Duration::from_secs(30),
        "the state file to record two started attempts",
        || counts() == Some((8, 2)),
    );
    bg.child.kill().unwrap(); // SIGKILL
    bg.child.wait().unwrap();
    assert_eq!(counts(), Some((8, 2)));
}
