//! Commands that `shell` runs, with real processes: a command's process
//! group ends with the command, on a timeout, a cancel or an interrupt in
//! every mode, and when the runner (`run` in each mode, `exec`, `worker`) is
//! killed with SIGKILL, so that a resume never finds the old commands still
//! running beside the new ones.
//!
//! Each test's commands are `sleep` with a number of its own, found by
//! their command line; the groups they run in are then watched until none
//! of their processes is left. Every run is marked too (see `common`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// `sleep SECONDS` processes running now, with their process groups.
fn sleeping(seconds: u32) -> Vec<Proc> {
    let arg = seconds.to_string();
    processes()
        .into_iter()
        .filter(|p| !p.zombie && argv(p.pid) == ["sleep", arg.as_str()])
        .collect()
}

/// Waits until `n` `sleep SECONDS` run, and returns their groups.
fn wait_for_sleeps(seconds: u32, n: usize) -> BTreeSet<u32> {
    let mut groups = BTreeSet::new();
    wait_until(
        Duration::from_secs(60),
        &format!("{n} `sleep {seconds}` to run"),
        || {
            let s = sleeping(seconds);
            groups = s.iter().map(|p| p.pgid).collect();
            s.len() == n
        },
    );
    assert_eq!(groups.len(), n, "each command in a group of its own");
    groups
}

/// Waits until no process of `groups` is left (killing them, and failing,
/// past the deadline: a failed test leaves nothing behind either).
fn wait_groups_gone(groups: &BTreeSet<u32>) {
    let left = || -> Vec<u32> {
        processes()
            .into_iter()
            .filter(|p| !p.zombie && groups.contains(&p.pgid))
            .map(|p| p.pid)
            .collect()
    };
    let start = std::time::Instant::now();
    loop {
        let l = left();
        if l.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(10) {
            for g in groups {
                // SAFETY: kill with integers.
                unsafe { libc::kill(-(*g as i32), libc::SIGKILL) };
            }
            panic!("processes of the commands' groups {groups:?} left behind: {l:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two jobs of `sh -c 'sleep SECONDS | cat'`.
fn piped_sleeps(seconds: u32) -> String {
    format!("shell:cmd=\"sleep {seconds} | cat\",shell=true*2")
}

/// The command groups in the table of live groups of runner `pid` (its
/// memfd `runyard-groups`: slots of `i32`, see the reaper's protocol).
fn registered_groups(pid: u32) -> BTreeSet<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    for fd in fds.flatten() {
        let to = std::fs::read_link(fd.path()).unwrap_or_default();
        if to.to_string_lossy().starts_with("/memfd:runyard-groups") {
            let bytes = std::fs::read(fd.path()).unwrap_or_default();
            return (bytes.chunks_exact(4))
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .filter(|g| *g > 0)
                .map(|g| g as u32)
                .collect();
        }
    }
    BTreeSet::new()
}

/// Starts `args`, waits for its two commands (and for their groups to be
/// in its table: a SIGKILL between a command's start and that store is
/// the documented gap), kills it with SIGKILL and checks that their groups
/// go with it. Returns the groups.
fn killed_while_running_commands(args: &[&str], seconds: u32) -> BTreeSet<u32> {
    let (mut child, mark) = spawn_run(args);
    let groups = wait_for_sleeps(seconds, 2);
    wait_until(
        Duration::from_secs(60),
        "the commands' groups in the runner's table",
        || registered_groups(child.id()).is_superset(&groups),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    wait_groups_gone(&groups);
    nothing_left(&mark);
    groups
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_command_in_thread_mode() {
    let job = piped_sleeps(31451);
    killed_while_running_commands(&["run", "--mode", "thread", "-j", "2", &job], 31451);
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_command_in_process_mode() {
    let job = piped_sleeps(31452);
    killed_while_running_commands(&["run", "--mode", "process", "-j", "2", &job], 31452);
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_command_in_auto_and_async_modes() {
    let job = piped_sleeps(31453);
    killed_while_running_commands(&["run", "-j", "2", &job], 31453);
    let job = piped_sleeps(31454);
    killed_while_running_commands(&["run", "--mode", "async", "-j", "2", &job], 31454);
}

#[test]
fn exec_killed_with_sigkill_leaves_no_command() {
    killed_while_running_commands(
        &[
            "exec",
            "-j",
            "2",
            "--shell",
            "sleep {} | cat",
            ":::",
            "31455",
            "31455",
        ],
        31455,
    );
}

#[test]
fn a_queue_worker_killed_with_sigkill_leaves_no_command() {
    let d = dir();
    let db = d.path().join("queue.db");
    let url = format!("sqlite://{}", db.display());
    // A queue file to submit to.
    let made = finish({
        let mut c = runyard();
        c.args(["run", "-q", "--state"]).arg(&db).arg("noop");
        c
    });
    assert!(made.status.success(), "{}", text(&made.stderr));
    // Jobs of their own for each worker (those of a killed worker wait out
    // their lease before another may run them).
    for (mode, seconds) in [("thread", 31456), ("process", 31466)] {
        let submitted = finish({
            let mut c = runyard();
            c.args(["submit", "--queue", &url, &piped_sleeps(seconds)]);
            c
        });
        assert!(submitted.status.success(), "{}", text(&submitted.stderr));
        killed_while_running_commands(
            &["worker", "-q", "--queue", &url, "--mode", mode, "-j", "2"],
            seconds,
        );
    }
}

#[test]
fn a_resume_after_a_sigkill_runs_the_commands_once_not_beside_the_old_ones() {
    let d = dir();
    let state = d.path().join("run.db");
    let st = state.to_str().unwrap();
    let job = piped_sleeps(31457);
    let old = killed_while_running_commands(&["run", "-q", "-j", "2", "--state", st, &job], 31457);
    // The two unfinished jobs run again, and only they: two commands, not
    // four (`wait_for_sleeps` waits for exactly two).
    let new =
        killed_while_running_commands(&["run", "-q", "-j", "2", "--state", st, "--resume"], 31457);
    assert!(new.is_disjoint(&old));
}

/// Runs `job` in process mode with a timeout of 300 ms and `attempts`
/// attempts (checking that nothing of the run is left), and returns the
/// attempts' outcomes.
fn timing_out_in_process_mode(job: &str, attempts: u32) -> Vec<String> {
    let attempts = attempts.to_string();
    let r = run_marked(&[
        "run",
        "--mode",
        "process",
        "--json",
        "-",
        "--max-attempts",
        &attempts,
        "--backoff",
        "none",
        "--timeout",
        "300ms",
        job,
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["jobs"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_timed_out_command_is_killed_before_its_retry_in_process_mode() {
    // Each attempt writes its start and whether the one before still runs
    // (its pid is in `pid`, `exec` making the shell the `sleep`; a zombie,
    // state Z, has exited).
    let d = dir();
    let (log, pid) = (d.path().join("log"), d.path().join("pid"));
    let job = format!(
        "shell:cmd=\"s=$(cut -d' ' -f3 /proc/$(cat {1} 2>/dev/null)/stat 2>/dev/null); [ x$s != x ] && [ $s != Z ] && echo overlap >> {0}; echo $$ > {1}; echo start >> {0}; exec sleep 31458\",shell=true",
        log.display(),
        pid.display()
    );
    assert_eq!(timing_out_in_process_mode(&job, 3), ["timed_out"; 3]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "start\n".repeat(3),
        "no attempt ran beside the one before"
    );
    assert!(sleeping(31458).is_empty());
}

#[test]
fn interrupting_a_process_mode_run_kills_its_commands() {
    // One interrupt (and a short grace), and two.
    for (presses, seconds) in [(1, 31459), (2, 31460)] {
        let d = dir();
        let out = d.path().join("r.json");
        let job = piped_sleeps(seconds);
        let (mut child, mark) = spawn_run(&[
            "run",
            "--mode",
            "process",
            "-j",
            "2",
            "--grace",
            "200ms",
            &job,
            "--json",
            out.to_str().unwrap(),
        ]);
        let groups = wait_for_sleeps(seconds, 2);
        for _ in 0..presses {
            // SAFETY: kill with integers, to our own child.
            assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        }
        assert_eq!(
            wait_for_exit(&mut child, Duration::from_secs(60)).code(),
            Some(130)
        );
        wait_groups_gone(&groups);
        nothing_left(&mark);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert!(
            r["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["state"] == "cancelled"),
            "{r}"
        );
    }
}

/// The output of a job that starts a background `sleep` and exits.
fn backgrounded(mode: &str, seconds: u32) -> serde_json::Value {
    let job = format!("shell:cmd=\"sleep {seconds} & echo started\",shell=true");
    let (mut cmd, mark) = marked_runyard(&["run", "--mode", mode, "--json", "-", &job]);
    let d = dir();
    let out = d.path().join("stdout");
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Without an end at the command's exit, the job would wait for the
    // background `sleep` (for hours).
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            for p in sleeping(seconds) {
                // SAFETY: kill with integers.
                unsafe { libc::kill(p.pid as i32, libc::SIGKILL) };
            }
            panic!("the job waited for its command's background process ({mode} mode)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0));
    nothing_left(&mark);
    assert!(sleeping(seconds).is_empty());
    let r: serde_json::Value = serde_json::from_str(&read(&out)).unwrap();
    r["jobs"][0]["output"].clone()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_job_ends_when_its_command_exits_and_takes_its_background_processes_along() {
    for (mode, seconds) in [("thread", 31461), ("process", 31462), ("auto", 31463)] {
        let output = backgrounded(mode, seconds);
        assert_eq!(output["stdout"], "started\n", "{mode}");
        assert_eq!(output["exit_code"], 0, "{mode}");
    }
}

#[test]
fn a_timeout_kills_the_background_processes_of_a_command_in_process_mode() {
    let job = "shell:cmd=\"sleep 31464 & sleep 31465; wait\",shell=true";
    assert_eq!(timing_out_in_process_mode(job, 1), ["timed_out"]);
    assert!(sleeping(31464).is_empty() && sleeping(31465).is_empty());
}
