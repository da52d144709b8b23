//! Bad input: exit 2, a message saying what, where and what would be
//! valid, and nothing run.

use crate::util::{run, run_small, Dir};

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
fn describe_of_an_unknown_task_suggests_names() {
    let e = refused(&["describe", "slep"]);
    assert!(e.contains("did you mean `sleep`?"), "{e}");
}
