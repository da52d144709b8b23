//! Outputs that cannot be written (`/dev/full`: every write fails with "No
//! space left on device"): each is named once, the exit code is 3, and
//! nothing else of the run is lost.

use std::process::Stdio;

use crate::util::{run, runyard, Dir, Ran};

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
