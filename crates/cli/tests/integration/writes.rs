//! Outputs that cannot be written (`/dev/full`: every write fails with "No
//! space left on device"): each is named once, the exit code is 3, and
//! nothing else of the run is lost.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{background, run, runyard, signal, wait_exit, wait_until, Dir, Ran};

const FULL: &str = "No space left on device";

/// Runs runyard with standard output going to `/dev/full`.
fn to_full_stdout(args: &[&str]) -> Ran {
    let out = runyard()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts the error names `what` and says the disk is full exactly once.
fn said_once(r: &Ran, what: &str) {
    r.code(3);
    assert!(
        r.stderr.contains(&format!("error: {what}: {FULL}")),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches(FULL).count(), 1, "{}", r.stderr);
}

#[test]
fn exec_reports_a_full_standard_output_and_stops() {
    let r = to_full_stdout(&["exec", "-j", "1", "echo", ":::", "a", "b", "c"]);
    said_once(&r, "standard output");
}

#[test]
fn exec_reports_an_events_file_it_cannot_write() {
    let d = Dir::new();
    let report = d.path("r.json");
    let r = run(&[
        "exec",
        "--events",
        "/dev/full",
        "--json",
        report.to_str().unwrap(),
        "echo",
        ":::",
        "a",
        "b",
    ]);
    said_once(&r, "--events /dev/full");
    assert_eq!(r.stdout.lines().count(), 2, "the run went on");
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(v["summary"]["succeeded"], 2);
}

#[test]
fn exec_reports_a_report_it_cannot_write() {
    let r = run(&["exec", "--json", "/dev/full", "echo", ":::", "a"]);
    said_once(&r, "--json /dev/full");
    assert_eq!(r.stdout, "a\n");
}

#[test]
fn exec_names_a_job_log_it_cannot_write_before_anything_runs() {
    let d = Dir::new();
    let marker = d.path("ran");
    let r = run(&[
        "exec",
        "--joblog",
        "/dev/full",
        "touch",
        marker.to_str().unwrap(),
        ":::",
        "a",
    ]);
    said_once(&r, "--joblog /dev/full");
    assert!(!marker.exists(), "a command ran");
}

#[test]
fn run_reports_an_events_file_it_cannot_write_and_runs_every_job() {
    let d = Dir::new();
    let report = d.path("r.json");
    let r = run(&[
        "run",
        "noop*50",
        "--events",
        "/dev/full",
        "--json",
        report.to_str().unwrap(),
    ]);
    said_once(&r, "--events /dev/full");
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(v["summary"]["succeeded"], 50);
}

#[test]
fn run_reports_a_report_it_cannot_write() {
    let r = run(&["run", "noop", "--json", "/dev/full"]);
    said_once(&r, "--json /dev/full");
}

#[test]
fn run_reports_events_on_a_full_standard_output() {
    let r = to_full_stdout(&["run", "noop*3", "--events", "-"]);
    said_once(&r, "--events - (standard output)");
}

#[test]
fn list_and_describe_report_a_full_standard_output() {
    for args in [&["list"][..], &["list", "--json"], &["describe", "sleep"]] {
        let r = to_full_stdout(args);
        said_once(&r, "cannot write to standard output");
    }
}

#[test]
fn run_reports_a_full_standard_output_once_and_runs_every_job() {
    let d = Dir::new();
    let report = d.path("r.json");
    let r = to_full_stdout(&["run", "noop*3", "--json", report.to_str().unwrap()]);
    said_once(&r, "cannot write to standard output");
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(v["summary"]["succeeded"], 3);
}

#[test]
fn worker_reports_an_events_file_it_cannot_write_when_it_stops() {
    let d = Dir::new();
    let db = d.path("q.db");
    let url = format!("sqlite://{}", db.display());
    run(&["submit", "--queue", &url, "noop*3"]).code(0);
    let mut worker = background(&["worker", "--queue", &url, "--events", "/dev/full", "-q"]);
    let state = db.to_str().unwrap().to_string();
    wait_until(Duration::from_secs(30), "the jobs to succeed", || {
        let s = run(&["status", "--state", &state, "--json"]);
        serde_json::from_str::<serde_json::Value>(&s.stdout)
            .is_ok_and(|v| v["counts"]["succeeded"] == 3)
    });
    signal(&worker.child, "TERM");
    let code = wait_exit(&mut worker.child, Duration::from_secs(30));
    let r = Ran {
        code,
        stdout: String::new(),
        stderr: worker.stderr(),
    };
    said_once(&r, "--events /dev/full");
}
