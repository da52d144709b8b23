//! TOML job files: defaults, counts, precedence, and errors with file,
//! line and column.

use crate::util::{run, Dir};

fn report(d: &Dir, args: &[&str]) -> serde_json::Value {
    let out = d.path("r.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", out.to_str().unwrap(), "--quiet"]);
    run(&all);
    serde_json::from_str(&std::fs::read_to_string(out).expect("a report")).expect("JSON")
}

#[test]
fn a_job_file_runs_its_jobs_with_counts_and_defaults() {
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        r#"
[defaults]
max_attempts = 2
backoff = "none"

[[job]]
task = "noop"
count = 3

[[job]]
task = "fail"

[[job]]
task = "fail"
max_attempts = 4
params = { k = 3 }
"#,
    );
    let r = report(&d, &["run", "-f", f.to_str().unwrap()]);
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 5);
    assert_eq!(
        jobs.iter()
            .filter(|j| j["task"] == "noop" && j["state"] == "succeeded")
            .count(),
        3
    );
    // [defaults] gives the plain `fail` two attempts; the last job's own option gives it four.
    assert_eq!(jobs[3]["state"], "dead");
    assert_eq!(jobs[3]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(jobs[4]["state"], "succeeded");
    assert_eq!(jobs[4]["attempts"].as_array().unwrap().len(), 4);
    assert_eq!(jobs[4]["params"], serde_json::json!({"k": 3}));
}

#[test]
fn flags_override_file_defaults_and_job_options_override_flags() {
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        "[defaults]\nmax_attempts = 5\nbackoff = \"none\"\n\n[[job]]\ntask = \"fail\"\n\n[[job]]\ntask = \"fail\"\nmax_attempts = 1\n",
    );
    let r = report(
        &d,
        &["run", "-f", f.to_str().unwrap(), "--max-attempts", "2"],
    );
    let attempts: Vec<usize> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["attempts"].as_array().unwrap().len())
        .collect();
    assert_eq!(attempts, vec![2, 1]);
}

/// Runs a file that must be refused; returns stderr.
fn refused(text: &str) -> String {
    let d = Dir::new();
    let f = d.write("jobs.toml", text);
    let r = run(&["run", "-f", f.to_str().unwrap()]);
    r.code(2);
    assert!(!r.stdout.contains("succeeded"), "nothing may run");
    r.stderr.replace(f.to_str().unwrap(), "jobs.toml")
}

#[test]
fn bad_toml_is_located() {
    let e = refused("[[job]]\ntask = \"noop\"\ncount = \n");
    assert!(e.contains("jobs.toml:3:9: "), "{e}");
    assert!(e.contains("3 | count = "), "shows the line: {e}");
}

#[test]
fn an_unknown_key_is_located_with_the_expected_keys() {
    let e = refused("[[job]]\ntask = \"noop\"\nretries = 3\n");
    assert!(
        e.contains("jobs.toml:3:1: unknown field `retries`, expected one of"),
        "{e}"
    );
    let e = refused("[defaults]\nmode = \"thread\"\nspeed = 1\n\n[[job]]\ntask = \"noop\"\n");
    assert!(e.contains("jobs.toml:3:1: unknown field `speed`"), "{e}");
}

#[test]
fn a_missing_task_is_located() {
    let e = refused("[[job]]\ncount = 2\n");
    assert!(e.contains("jobs.toml:1:1: missing field `task`"), "{e}");
}

#[test]
fn a_wrong_type_is_located() {
    let e = refused("[[job]]\ntask = \"noop\"\nmax_attempts = \"three\"\n");
    assert!(
        e.contains(
            "jobs.toml:3:16: invalid type: string \"three\", expected a whole number from 1 to 4294967295"
        ),
        "{e}"
    );
    let e = refused("[[job]]\ntask = \"noop\"\ntimeout = \"soon\"\n");
    assert!(
        e.contains("jobs.toml:3:11: ") && e.contains("invalid duration `soon`"),
        "{e}"
    );
}

#[test]
fn unknown_tasks_and_bad_params_in_a_file_point_at_them() {
    let e = refused("[[job]]\ntask = \"noop\"\n\n[[job]]\ntask = \"cpuu\"\n");
    assert!(
        e.contains("jobs.toml:5:8: unknown task `cpuu`; did you mean `cpu`?"),
        "{e}"
    );
    let e = refused("[[job]]\ntask = \"cpu\"\nparams = { n = 0 }\n");
    assert!(
        e.contains("jobs.toml:3:10: invalid parameters for task `cpu`: `n` must be >= 1, got 0"),
        "{e}"
    );
    let e = refused("[[job]]\ntask = \"noop\"\ncount = 0\n");
    assert!(
        e.contains("jobs.toml:3:9: invalid value: integer `0`, expected a whole number from 1 to 100000000"),
        "{e}"
    );
}

#[test]
fn an_empty_or_missing_file_is_refused() {
    let e = refused("# nothing\n");
    assert!(e.contains("the file has no jobs"), "{e}");
    let r = run(&["run", "-f", "/no/such/jobs.toml"]);
    r.code(2);
    assert!(
        r.stderr.contains("cannot read the job file"),
        "{}",
        r.stderr
    );
}
