//! Durable runs with real processes: a run recorded in a state file is
//! killed (SIGKILL) at random moments and resumed until done; an
//! interrupted run keeps its unfinished jobs; state files that cannot be
//! used are refused and left as they were.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn lines(p: &Path) -> usize {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

fn status(state: &Path) -> Option<serde_json::Value> {
    let out = finish({
        let mut c = runyard();
        c.args(["status", "--json", "--state"]).arg(state);
        c
    });
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn a_run_killed_at_random_moments_resumes_until_every_job_succeeded_once() {
    killed_and_resumed("thread", 5000);
}

#[test]
fn a_process_mode_run_killed_at_random_moments_resumes_likewise() {
    killed_and_resumed("process", 1000);
}

/// Runs a job file of `JOBS` jobs in `mode` with a state file, kills the
/// runner (SIGKILL) at random moments, resumes until done, and checks the
/// record against the executions the tasks wrote down.
#[allow(non_snake_case)]
fn killed_and_resumed(mode: &str, JOBS: u64) {
    let d = dir();
    let state = d.path().join("run.db");
    let side = d.path().join("executions");
    let file = d.path().join("jobs.toml");
    std::fs::write(
        &file,
        format!(
            "[defaults]\nmode = \"{mode}\"\nmax_attempts = 20\nbackoff = \"none\"\n\n\
             [[job]]\ntask = \"append\"\ncount = {JOBS}\nparams = {{ file = {:?}, work_us = 300 }}\n",
            side.display().to_string()
        ),
    )
    .unwrap();
    let mut rng = Rng::new();
    let mut kills = 0;
    let mut mid_run_kills = 0;
    while mid_run_kills < 4 && kills < 30 {
        // A new run until the state holds one (a kill may come before the
        // jobs are recorded: then nothing is), a resume after.
        let recorded = status(&state).is_some_and(|s| total(&s) > 0);
        let mut c = runyard();
        c.args(["run", "-q", "-j", "2", "--state"]).arg(&state);
        if recorded {
            c.arg("--resume");
        } else {
            c.arg("-f").arg(&file);
        }
        let before = lines(&side);
        let mut child: Child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it make some progress (or none: a kill at start matters too),
        // then kill it at a random moment.
        if rng.below(4) != 0 {
            // At most an eighth of the jobs per kill: the run must not
            // finish before four kills came in the middle of it.
            let want = before + 1 + rng.below(400.min(JOBS / 8)) as usize;
            let start = Instant::now();
            while lines(&side) < want && start.elapsed() < Duration::from_secs(60) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        if let Some(st) = child.try_wait().unwrap() {
            // It finished before the kill: the run is done.
            assert!(st.success(), "run {kills} ended with {st}");
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if lines(&side) > before {
            mid_run_kills += 1;
        }
    }
    assert!(
        mid_run_kills >= 4,
        "only {mid_run_kills} of {kills} kills came mid-run"
    );

    // Resume until done.
    let out = finish({
        let mut c = runyard();
        c.args(["run", "-q", "-j", "2", "--json", "-", "--resume", "--state"])
            .arg(&state);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len() as u64, JOBS, "every job in the report, once");
    assert_eq!(report["summary"]["succeeded"], JOBS);

    // Executions, from the side file: job -> attempt numbers that ran.
    let mut ran: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for l in std::fs::read_to_string(&side).unwrap().lines() {
        let (j, a) = l.split_once(' ').expect("whole lines");
        ran.entry(j.parse().unwrap())
            .or_default()
            .push(a.parse().unwrap());
    }
    let mut reruns = 0;
    for job in jobs {
        let id = job["id"].as_u64().unwrap();
        assert_eq!(job["state"], "succeeded");
        let attempts = job["attempts"].as_array().unwrap();
        let last = attempts.len() as u32;
        assert_eq!(attempts.last().unwrap()["outcome"], "succeeded");
        let succeeded = attempts
            .iter()
            .filter(|a| a["outcome"] == "succeeded")
            .count();
        assert_eq!(succeeded, 1, "job {id} recorded as succeeded once");
        for a in &attempts[..attempts.len() - 1] {
            assert_eq!(
                a["outcome"], "crashed",
                "job {id}: only kills cost attempts"
            );
        }
        let runs = ran.get(&id).unwrap_or_else(|| panic!("job {id} never ran"));
        // It ran with the attempt recorded as its success, and never after:
        // no execution carries a later attempt number.
        assert!(
            runs.contains(&last),
            "job {id}: {runs:?} vs {last} attempts"
        );
        assert!(
            runs.iter().all(|a| *a <= last),
            "job {id} ran again after its success was recorded: {runs:?}"
        );
        reruns += runs.len() - 1;
    }
    assert_eq!(ran.len() as u64, JOBS, "no execution of an unknown job");
    eprintln!("{kills} kills ({mid_run_kills} mid-run), {reruns} re-executions");
}

#[test]
fn an_interrupted_run_keeps_its_unfinished_jobs_for_the_resume() {
    let d = dir();
    let state = d.path().join("run.db");
    let side = d.path().join("executions");
    let job = format!("append:file={},work_us=20000*200", side.display());
    let mut child = runyard()
        .args([
            "run", "-q", "--mode", "thread", "-j", "2", "--grace", "5s", "--state",
        ])
        .arg(&state)
        .arg(&job)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "some jobs to run", || {
        lines(&side) >= 10
    });
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "says how to resume: {err}");
    let s = status_of(&state);
    let c = &s["counts"];
    assert_eq!(c["cancelled"], 0, "nothing cancelled: {s}");
    assert_eq!(
        c["running"], 0,
        "running attempts finished in the grace: {s}"
    );
    let done = c["succeeded"].as_u64().unwrap();
    assert!((10..200).contains(&done), "{s}");
    assert_eq!(c["queued"].as_u64().unwrap() + done, 200);

    let out = finish({
        let mut c = runyard();
        c.args(["run", "-q", "--json", "-", "--resume", "--state"])
            .arg(&state);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["succeeded"], 200);
    // A graceful stop cost no attempt and repeated nothing.
    assert_eq!(lines(&side), 200, "each job ran once");
    for j in report["jobs"].as_array().unwrap() {
        assert_eq!(j["attempts"].as_array().unwrap().len(), 1);
    }
}

fn total(status: &serde_json::Value) -> u64 {
    let c = &status["counts"];
    [
        "queued",
        "scheduled",
        "running",
        "succeeded",
        "dead",
        "cancelled",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .sum()
}

fn status_of(state: &Path) -> serde_json::Value {
    status(state).expect("status of the state file")
}

/// Runs `runyard ARGS` and checks: exit 2, the message says `says`, and
/// the file at `path` is byte for byte what it was (or still absent).
fn refused(args: &[&str], path: &Path, says: &str) {
    let before = std::fs::read(path).ok();
    let out = finish({
        let mut c = runyard();
        c.args(args);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert_eq!(
        std::fs::read(path).ok(),
        before,
        "{} untouched",
        path.display()
    );
}

#[test]
fn state_files_that_cannot_be_used_are_refused_and_left_untouched() {
    let d = dir();
    let p = |name: &str| -> PathBuf { d.path().join(name) };
    let s = |path: &Path| path.display().to_string();

    let notes = p("notes.db");
    std::fs::write(&notes, "not a database\n".repeat(500)).unwrap();
    refused(
        &["run", "cpu:n=1", "--state", &s(&notes)],
        &notes,
        "not an SQLite file",
    );
    refused(
        &["run", "--resume", "--state", &s(&notes)],
        &notes,
        "not an SQLite file",
    );
    refused(
        &["status", "--state", &s(&notes)],
        &notes,
        "not an SQLite file",
    );

    let mut zeros = vec![0u8; 8192];
    zeros[..16].copy_from_slice(b"SQLite format 3\0");
    let corrupt = p("corrupt.db");
    std::fs::write(&corrupt, &zeros).unwrap();
    let out = finish({
        let mut c = runyard();
        c.args(["run", "cpu:n=1", "--state", &s(&corrupt)]);
        c
    });
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&corrupt).unwrap(), zeros);

    // A run to copy and spoil.
    let good = p("good.db");
    let out = finish({
        let mut c = runyard();
        c.args(["run", "-q", "cpu:n=1*3", "--state", &s(&good)]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    refused(
        &["run", "cpu:n=1", "--state", &s(&good)],
        &good,
        "already holds a run (3 jobs: 3 succeeded)",
    );

    let newer = p("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    let bumped = finish({
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE runyard_meta SET value='99' WHERE key='schema_version'\"); c.commit()",
            &s(&newer),
        ]);
        c
    });
    assert!(bumped.status.success(), "{}", text(&bumped.stderr));
    refused(
        &["run", "--resume", "--state", &s(&newer)],
        &newer,
        "newer runyard",
    );

    let foreign = p("app.db");
    let made = finish({
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE users (id INTEGER)'); c.commit()",
            &s(&foreign),
        ]);
        c
    });
    assert!(made.status.success());
    refused(
        &["run", "cpu:n=1", "--state", &s(&foreign)],
        &foreign,
        "not a runyard state file",
    );

    let ro = p("ro.db");
    std::fs::copy(&good, &ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    refused(&["run", "--resume", "--state", &s(&ro)], &ro, "read-only");

    let absent = p("absent.db");
    refused(
        &["run", "--resume", "--state", &s(&absent)],
        &absent,
        "no such state file",
    );
    assert!(!absent.exists());
    // Commands about jobs already there create nothing, and say how a
    // state file is made.
    let url = format!("sqlite://{}", s(&absent));
    for args in [
        &["status", "--state", &s(&absent)][..],
        &["status", "--queue", &url],
        &["retry", "--queue", &url, "1"],
        &["cancel", "--queue", &url, "1"],
    ] {
        refused(args, &absent, "no such state file");
        refused(args, &absent, "`runyard submit --queue sqlite://");
        for side in ["", "-wal", "-shm"] {
            let mut f = absent.as_os_str().to_owned();
            f.push(side);
            assert!(!PathBuf::from(f).exists(), "{args:?} left {side} behind");
        }
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    finish({
        let mut c = runyard();
        c.args(args);
        c
    })
}

fn live_pids(state: &Path) -> Vec<u64> {
    status_of(state)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap())
        .collect()
}

#[test]
fn submit_creates_a_state_file_that_a_worker_drains() {
    let d = dir();
    let state = d.path().join("new.db");
    let url = format!("sqlite://{}", state.display());
    let out = cli(&["submit", "--queue", &url, "noop*3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n2\n3\n");
    let s = status_of(&state);
    assert_eq!(s["counts"]["queued"], 3, "{s}");
    assert_eq!(s["workers"], serde_json::json!([]), "{s}");

    let log = d.path().join("worker.log");
    let mut worker = runyard()
        .args([
            "worker", "-q", "--name", "w", "--lease", "1s", "--queue", &url,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = u64::from(worker.id());
    wait_until(
        Duration::from_secs(60),
        "the worker to drain the file",
        || status_of(&state)["counts"]["succeeded"] == 3,
    );
    // Idle, it stays live: a second worker of its name sees it heartbeat,
    // and is refused.
    assert_eq!(live_pids(&state), [pid]);
    let (code, err) = exit_of(
        runyard().args(["worker", "-q", "--name", "w", "--queue", &url]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("held by a live worker: pid {pid} on ")),
        "{err}"
    );
    // SAFETY: our own child, not yet reaped.
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    let st = worker.wait().unwrap();
    assert!(
        st.success(),
        "{st}: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        live_pids(&state).is_empty(),
        "a worker that stopped is no longer listed"
    );
}

#[test]
fn retry_and_cancel_say_when_there_is_nothing_to_do_and_refuse_unknown_ids() {
    let d = dir();
    let state = d.path().join("run.db");
    let st = state.display().to_string();
    let out = cli(&["run", "-q", "--state", &st, "noop", "fail:permanent=true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let url = format!("sqlite://{st}");
    let says = |args: &[&str], code: i32, says: &str| {
        let out = cli(args);
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
        assert!(all.contains(says), "{args:?} should say {says:?}: {all}");
    };
    says(
        &["retry", "--queue", &url, "1"],
        0,
        "1: nothing to do: it is succeeded",
    );
    says(
        &["cancel", "--queue", &url, "1"],
        0,
        "1: nothing to do: it already succeeded",
    );
    says(
        &["retry", "--queue", &url, "2", "99"],
        2,
        "no job with the id 99 in sqlite://",
    );
    says(
        &["cancel", "--queue", &url, "99", "98"],
        2,
        "the ids 99, 98",
    );
    assert_eq!(
        status_of(&state)["counts"]["dead"],
        1,
        "nothing was retried"
    );
    says(&["retry", "--queue", &url, "--dead"], 0, "2: queued again");
    says(&["cancel", "--queue", &url, "2"], 0, "2: cancelled");
    says(
        &["retry", "--queue", &url, "--dead"],
        0,
        "no dead jobs: nothing to retry",
    );
}

#[test]
fn bad_jobs_create_no_state_file_and_a_resume_takes_no_jobs() {
    let d = dir();
    let state = d.path().join("run.db");
    let st = state.display().to_string();
    let out = finish({
        let mut c = runyard();
        c.args(["run", "cpu:n=0", "--state", &st]);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !state.exists(),
        "nothing recorded for a run that never started"
    );

    let out = finish({
        let mut c = runyard();
        c.args(["run", "-q", "noop", "--state", &st]);
        c
    });
    assert_eq!(out.status.code(), Some(0));
    for (args, says) in [
        (
            vec!["run", "--resume", "noop", "--state", &st],
            "give no jobs",
        ),
        (
            vec!["run", "--resume", "--max-attempts", "5", "--state", &st],
            "--max-attempts cannot be changed",
        ),
        (vec!["run", "--resume"], "--state"),
    ] {
        let out = finish({
            let mut c = runyard();
            c.args(&args);
            c
        });
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_state_file_in_use_by_a_run_is_refused_to_a_second_one() {
    let d = dir();
    let state = d.path().join("run.db");
    let side = d.path().join("executions");
    let job = format!("append:file={},work_us=50000*100", side.display());
    let mut first = runyard()
        .args(["run", "-q", "--mode", "thread", "-j", "1", "--state"])
        .arg(&state)
        .arg(&job)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "the first run to start", || {
        lines(&side) >= 1
    });
    let out = finish({
        let mut c = runyard();
        c.args(["run", "--resume", "--state"]).arg(&state);
        c
    });
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("in use by another runyard run"));
    // Status reads alongside the run.
    let s = status_of(&state);
    assert!(s["counts"]["running"].as_u64().unwrap() >= 1, "{s}");
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn an_idle_worker_with_a_short_lease_takes_jobs_another_process_submits() {
    // A 1 s lease heartbeats every 333 ms, more often than the worker polls
    // a file that another process writes to; it must still poll.
    let d = dir();
    let state = d.path().join("idle.db");
    let url = format!("sqlite://{}", state.display());
    assert!(cli(&["submit", "--queue", &url, "noop"]).status.success());
    let log = d.path().join("worker.log");
    let mut worker = runyard()
        .args(["worker", "-q", "--lease", "1s", "--queue", &url])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let succeeded = || status_of(&state)["counts"]["succeeded"].as_u64();
    wait_until(Duration::from_secs(60), "the first job", || {
        succeeded() == Some(1)
    });
    // Idle for a few heartbeats.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(cli(&["submit", "--queue", &url, "noop*2"]).status.success());
    let limit = Instant::now() + Duration::from_secs(10);
    while succeeded() != Some(3) && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    let taken = succeeded();
    // SAFETY: our own child, not yet reaped.
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    worker.wait().unwrap();
    assert_eq!(
        taken,
        Some(3),
        "an idle worker never took the jobs submitted later: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}
