//! Bad input: exit 2, a message saying what, where and what would be
//! valid, and nothing run.

use std::process::{Command, Stdio};

use crate::util::{run, run_small, Dir, Ran};

/// Runs a command that must be refused; returns its stderr.
fn refused(args: &[&str]) -> String {
    refused_by(run(args))
}

fn refused_by(r: crate::util::Ran) -> String {
    r.code(2);
    assert!(
        !r.stdout.contains("succeeded"),
        "nothing may run:\n{}",
        r.stdout
    );
    r.stderr
}

#[test]
fn an_unknown_task_suggests_the_closest_names() {
    let e = refused(&["run", "noop", "cpuu"]);
    assert!(
        e.contains("job `cpuu` (argument 2): unknown task `cpuu`; did you mean `cpu`?"),
        "{e}"
    );
    let e = refused(&["run", "zzzzzz"]);
    assert!(
        e.contains("unknown task `zzzzzz` (`runyard list` shows the registered tasks)"),
        "{e}"
    );
}

#[test]
fn an_invalid_parameter_names_task_field_constraint_and_value() {
    let e = refused(&["run", "noop", "cpu:n=0"]);
    assert!(
        e.contains("job `cpu:n=0` (argument 2): invalid parameters for task `cpu`: `n` must be >= 1, got 0"),
        "{e}"
    );
    let e = refused(&["run", "cpu:n=many"]);
    assert!(
        e.contains(
            "`n`: invalid type: string \"many\", expected a whole number from 0 to 18446744073709551615"
        ),
        "{e}"
    );
    let e = refused(&["run", "cpu:m=1"]);
    assert!(
        e.contains("unknown field `m`, expected `n` or `seed`"),
        "{e}"
    );
    let e = refused(&["run", "noop:x=1"]);
    assert!(e.contains("this task takes no parameters"), "{e}");
}

#[test]
fn malformed_job_arguments_say_the_expected_syntax() {
    let e = refused(&["run", "cpu:n"]);
    assert!(e.contains("expected KEY=VALUE, got `n`"), "{e}");
    let e = refused(&["run", "cpu*0"]);
    assert!(e.contains("the count after `*` must be at least 1"), "{e}");
    let e = refused(&["run", "cpu*-1"]);
    assert!(
        e.contains("job `cpu*-1` (argument 1): the count after `*` must be a whole number from 1 to 100000000, got `-1`"),
        "{e}"
    );
}

#[test]
fn a_count_past_the_cap_is_refused_before_anything_starts() {
    let refused = |args: &[&str]| refused_by(run_small(args));
    let e = refused(&["run", "noop*4294967295"]);
    assert!(
        e.contains("job `noop*4294967295` (argument 1): the count after `*` is 4294967295, more than one command may run (at most 100000000 jobs)"),
        "{e}"
    );
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        "[[job]]\ntask = \"noop\"\ncount = 4294967295\n",
    );
    let q = format!("sqlite://{}", d.path("q.db").display());
    let e = refused(&["submit", "--queue", &q, "-f", f.to_str().unwrap()]);
    assert!(
        e.contains(":3:9: invalid value: integer `4294967295`, expected a whole number from 1 to 100000000 (the most jobs one command may run)"),
        "{e}"
    );
    let e = refused(&["run", "noop*60000000", "noop*60000000"]);
    assert!(
        e.contains("job `noop*60000000` (argument 2): with these 60000000 jobs the command names 120000000 jobs"),
        "{e}"
    );
}

#[test]
fn numbers_say_what_they_accept() {
    let e = refused(&["run", "fail:k=-1"]);
    assert!(
        e.contains(
            "`k`: invalid value: integer `-1`, expected a whole number from 0 to 4294967295"
        ),
        "{e}"
    );
    let e = refused(&["run", "cpu:n=18446744073709551616"]);
    assert!(
        e.contains("`n`: invalid type: floating point `1.8446744073709552e+19`, expected a whole number from 0 to 18446744073709551615"),
        "{e}"
    );
    let e = refused(&["run", "noop", "--max-attempts", "99999999999"]);
    assert!(
        e.contains("99999999999 is too large (expected a whole number from 1 to 4294967295)"),
        "{e}"
    );
}

#[test]
fn invalid_options_are_refused_before_running() {
    let e = refused(&["run", "noop", "-j", "0"]);
    assert!(e.contains("must be at least 1"), "{e}");
    let e = refused(&["run", "noop", "--max-attempts", "0"]);
    assert!(e.contains("must be at least 1"), "{e}");
    let e = refused(&["run", "noop", "--timeout", "5"]);
    assert!(e.contains("invalid duration `5`: missing unit"), "{e}");
    let e = refused(&["run", "noop", "--timeout", "0s"]);
    assert!(e.contains("must be greater than zero"), "{e}");
    let e = refused(&["run", "noop", "--backoff", "linear"]);
    assert!(
        e.contains("unknown kind `linear`") && e.contains("expected `none`, `fixed:DELAY`"),
        "{e}"
    );
    let e = refused(&["run", "noop", "--mode", "fiber"]);
    assert!(
        e.contains("unknown mode `fiber` (expected auto, thread, process or async)"),
        "{e}"
    );
}

/// A far-future time once stopped the run with a panic (exit 101) in the
/// middle of an event line: durations past the maximum are refused where
/// they are read, naming the spec and the maximum.
#[test]
fn durations_past_the_maximum_are_refused_where_they_are_read() {
    let e = refused(&[
        "run",
        "--backoff",
        "fixed:8000y",
        "--max-attempts",
        "3",
        "fail",
        "--events",
        "-",
    ]);
    assert!(
        e.contains("invalid backoff `fixed:8000y`")
            && e.contains("invalid duration `8000y`: longer than the maximum of 100 years"),
        "{e}"
    );
    let e = refused(&["run", "noop", "--timeout", "101y"]);
    assert!(e.contains("`101y`: longer than the maximum"), "{e}");
    let e = refused(&["run", "sleep:duration=8000y"]);
    assert!(e.contains("`8000y`: longer than the maximum"), "{e}");
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        "[[job]]\ntask = \"noop\"\nbackoff = \"exponential:1s,cap=200y\"\n",
    );
    let e = refused(&["run", "-f", f.to_str().unwrap()]);
    assert!(e.contains("longer than the maximum of 100 years"), "{e}");
}

/// Runs `runyard ARGS` under `prlimit LIMITS` (util-linux): the limits of
/// that process alone, so nothing is asked of the machine.
fn under(limits: &[&str], args: &[&str]) -> Ran {
    let out = Command::new("prlimit")
        .args(limits)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_runyard"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("prlimit (util-linux) runs");
    Ran::from(out)
}

/// `-j` beyond the threads or worker processes the process can start is
/// refused before anything runs, naming the limit; async mode, which needs
/// no thread per attempt, keeps its large `-j`.
#[test]
fn concurrency_beyond_what_the_process_can_start_is_refused() {
    let r = under(
        &["--nproc=200"],
        &["run", "-j", "1000", "--mode", "thread", "noop"],
    );
    r.code(2);
    assert!(
        r.stderr
            .contains("a concurrency of 1000 is more than thread mode can start")
            && r.stderr.contains("RLIMIT_NPROC (`ulimit -u`) is 200"),
        "{}",
        r.stderr
    );
    let r = under(
        &["--nofile=256"],
        &["run", "-j", "100", "--mode", "process", "noop*100"],
    );
    r.code(2);
    assert!(
        r.stderr
            .contains("a concurrency of 100 is more than process mode can start")
            && r.stderr.contains("RLIMIT_NOFILE (`ulimit -n`) is 256"),
        "{}",
        r.stderr
    );
    let r = under(
        &["--nofile=256"],
        &[
            "worker",
            "--queue",
            "sqlite:///nonexistent/q.db",
            "-j",
            "100",
            "--mode",
            "process",
        ],
    );
    r.code(2);
    assert!(r.stderr.contains("RLIMIT_NOFILE"), "{}", r.stderr);
    let e = refused(&["run", "-j", "100000", "--mode", "thread", "noop"]);
    assert!(
        e.contains("at most 4096 threads (runyard's cap on one pool)"),
        "{e}"
    );
    under(
        &["--nproc=200", "--nofile=256"],
        &[
            "run",
            "-j",
            "100000",
            "--mode",
            "async",
            "sleep:duration=1ms*20",
            "-q",
        ],
    )
    .code(0);
}

/// Worker-process flags given to a run where no job runs in a worker
/// process would do nothing: refused, naming the flag; where some jobs do,
/// a note says to how many they apply.
#[test]
fn worker_process_flags_that_would_do_nothing_are_refused() {
    let e = refused(&["run", "--worker-memory-limit", "512M", "noop"]);
    assert!(
        e.contains("--worker-memory-limit: it applies to worker processes only, and no job of this run runs in one"),
        "{e}"
    );
    let e = refused(&[
        "run",
        "--mode",
        "thread",
        "--max-jobs-per-worker",
        "5",
        "--max-worker-rss",
        "1G",
        "noop",
    ]);
    assert!(
        e.contains("--max-jobs-per-worker, --max-worker-rss: they apply"),
        "{e}"
    );
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        "[[job]]\ntask = \"noop\"\nisolate = true\n\n[[job]]\ntask = \"noop\"\ncount = 3\n",
    );
    let r = run(&[
        "run",
        "--max-jobs-per-worker",
        "2",
        "-f",
        f.to_str().unwrap(),
    ]);
    r.code(0);
    assert!(
        r.stderr.contains(
            "note: --max-jobs-per-worker applies only to the jobs that run in worker processes: 1 of the 4"
        ),
        "{}",
        r.stderr
    );
    let r = run(&[
        "run",
        "--mode",
        "process",
        "--worker-memory-limit",
        "512M",
        "noop",
    ]);
    r.code(0);
    assert!(!r.stderr.contains("note:"), "{}", r.stderr);
}

#[test]
fn no_jobs_is_a_usage_error() {
    let e = refused(&["run"]);
    assert!(e.contains("no jobs given"), "{e}");
}

#[test]
fn output_files_that_cannot_be_created_stop_the_run_before_it_starts() {
    let d = Dir::new();
    let bad = d.path("no/such/dir/report.json");
    let e = refused(&["run", "noop", "--json", bad.to_str().unwrap()]);
    assert!(e.contains("cannot create the report file"), "{e}");
    let e = refused(&["run", "noop", "--json", "-", "--events", "-"]);
    assert!(e.contains("cannot both write to standard output"), "{e}");
}

#[test]
fn a_refused_output_path_leaves_no_state_file_behind() {
    let d = Dir::new();
    let state = d.path("new.db");
    for flag in ["--json", "--events"] {
        let e = refused(&[
            "run",
            "noop",
            "--state",
            state.to_str().unwrap(),
            flag,
            "/nonexistent/dir/r.json",
        ]);
        assert!(e.contains("cannot create the"), "{flag}: {e}");
        assert!(!state.exists(), "{flag}: a state file was left behind");
    }
    // Nor is an output file left behind by a state file that is refused.
    let taken = d.write("taken.db", "not a state file");
    let report = d.path("r.json");
    refused(&[
        "run",
        "noop",
        "--state",
        taken.to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(!report.exists(), "a report file was left behind");
}

#[test]
fn exec_checks_its_output_paths_and_concurrency_before_anything_runs() {
    let d = Dir::new();
    let marker = d.path("ran");
    let touch = format!("touch {}", marker.display());
    let e = refused(&[
        "exec",
        "--joblog",
        "/nonexistent/dir/log",
        "--json",
        d.path("r.json").to_str().unwrap(),
        "--shell",
        &touch,
        ":::",
        "a",
    ]);
    assert!(e.contains("cannot create the job log"), "{e}");
    assert!(!d.path("r.json").exists(), "a report file was left behind");
    let e = refused(&[
        "exec", "--mode", "thread", "-j", "100000", "--shell", &touch, ":::", "a",
    ]);
    assert!(e.contains("at most 4096 threads"), "{e}");
    assert!(!marker.exists(), "a command ran");
}

#[test]
fn a_file_that_is_no_state_file_is_named_once() {
    let d = Dir::new();
    let junk = d.write("junk.db", "not a state file");
    for args in [
        &["status", "--state"][..],
        &["run", "noop", "--state"],
        &["run", "--resume", "--state"],
    ] {
        let mut all = args.to_vec();
        all.push(junk.to_str().unwrap());
        let e = refused(&all);
        assert!(e.contains("cannot use"), "{e}");
        assert_eq!(e.matches("junk.db").count(), 1, "{e}");
    }
}

#[test]
fn describe_of_an_unknown_task_suggests_names() {
    let e = refused(&["describe", "slep"]);
    assert!(e.contains("did you mean `sleep`?"), "{e}");
}
