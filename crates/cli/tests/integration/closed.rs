//! A standard output or error that is closed before runyard writes to it
//! (`runyard run badtask 2>&1 | true`): no panic, anywhere; a closed
//! standard error is ignored, a closed standard output drops the output and
//! the command still exits as it would have.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use crate::util::{runyard, signal, wait_exit, wait_until, Dir};

/// The write end of a pipe whose read end is already closed: every write
/// to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    // SAFETY: pipe(2) just returned these; each is owned once, here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// Runs `runyard ARGS` with the streams given closed; returns its exit code.
fn exit_code(args: &[&str], close_stdout: bool, close_stderr: bool) -> i32 {
    let mut c = runyard();
    c.args(args).stdin(Stdio::null());
    c.stdout(if close_stdout {
        closed_pipe()
    } else {
        Stdio::null()
    });
    c.stderr(if close_stderr {
        closed_pipe()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("runyard starts");
    wait_exit(&mut child, Duration::from_secs(60))
}

#[test]
fn an_error_on_a_closed_stderr_keeps_its_exit_code() {
    assert_eq!(exit_code(&["run", "badtask"], false, true), 2);
    assert_eq!(exit_code(&["run", "badtask"], true, true), 2);
    assert_eq!(exit_code(&["describe", "slep"], true, true), 2);
}

#[test]
fn a_run_on_closed_streams_runs_and_reports_by_its_exit_code() {
    // Job lines and the summary go to standard output off a terminal.
    assert_eq!(exit_code(&["run", "noop*3"], true, true), 0);
    let dead = ["run", "fail", "--max-attempts", "1"];
    assert_eq!(exit_code(&dead, true, true), 1);
    // Worker processes inherit the closed standard error.
    assert_eq!(
        exit_code(
            &["run", "--mode", "process", "-j", "2", "noop*4"],
            true,
            true
        ),
        0
    );
}

#[test]
fn an_interrupted_run_tells_a_closed_stderr_and_exits_130() {
    // The interrupt notes, and how to resume the unfinished jobs, go to
    // standard error.
    let d = Dir::new();
    let (db, ev) = (d.path("run.db"), d.path("events.jsonl"));
    let mut child = runyard()
        .args(["run", "--state", db.to_str().unwrap(), "--grace", "1ms"])
        .args(["--events", ev.to_str().unwrap()])
        .args(["-j", "1", "sleep:duration=1m*2"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "an attempt to start", || {
        d.read("events.jsonl").contains(r#""type":"running""#)
    });
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), 130);
}

#[test]
fn commands_whose_output_is_the_result_stop_quietly_on_a_closed_stdout() {
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["describe", "cpu"],
        &["completions", "bash"],
        &["--help"],
    ] {
        assert_eq!(exit_code(args, true, false), 0, "{args:?}");
        assert_eq!(exit_code(args, true, true), 0, "{args:?}");
    }
}
