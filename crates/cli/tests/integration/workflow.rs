//! Workflows from job files: jobs that wait for other jobs (`name`,
//! `after`, `run_if`), in order on every queue, refused bad input with the
//! place at fault and nothing enqueued, and the commands that show,
//! cancel and retry them.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::Value;

use crate::util::{run, Dir};

/// An ETL-shaped workflow: extract, a fan-out of four transforms, a load
/// after all of them, and a cleanup after the load whatever happens. The
/// load is given first: the order comes from `after`, not the file.
const ETL: &str = r#"
[[job]]
name = "load"
task = "shell"
params = { cmd = "echo load", shell = true }
after = ["transform"]

[[job]]
name = "extract"
task = "shell"
params = { cmd = "sleep 0.05; echo extract", shell = true }

[[job]]
name = "transform"
task = "shell"
count = 4
params = { cmd = "sleep 0.05; echo transform", shell = true }
after = ["extract"]

[[job]]
name = "cleanup"
task = "noop"
after = ["load"]
run_if = "always"
"#;

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The report `--json FILE` wrote.
fn report(d: &Dir, name: &str) -> Value {
    serde_json::from_str(&d.read(name))
        .unwrap_or_else(|e| panic!("a report ({e}): {}", d.read(name)))
}

fn millis(t: &Value) -> f64 {
    let t = humantime::parse_rfc3339(t.as_str().expect("a time")).expect("RFC 3339");
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

/// Every job of the report started only after every job it is after had
/// ended. Times are written to the millisecond (cut, not rounded), so a
/// start shown is at most 1 ms before the real one: a start that, with
/// that millisecond, is before a parent's recorded end broke the order.
fn assert_order(r: &Value) {
    let jobs = r["jobs"].as_array().unwrap();
    let by_id: HashMap<u64, &Value> = jobs
        .iter()
        .map(|j| (j["id"].as_u64().unwrap(), j))
        .collect();
    for j in jobs {
        let Some(first) = j["attempts"].as_array().unwrap().first() else {
            continue;
        };
        let start = millis(&first["started_at"]);
        for p in j["after"].as_array().unwrap() {
            let p = by_id[&p.as_u64().unwrap()];
            let last = p["attempts"]
                .as_array()
                .unwrap()
                .last()
                .expect("a parent that ran");
            let end = millis(&last["started_at"]) + last["duration_ms"].as_f64().unwrap();
            assert!(
                start + 1.0 >= end,
                "job {} started at {start} before its parent {} ended at {end}",
                j["id"],
                p["id"]
            );
        }
    }
}

/// The report's jobs by name: (id, state), in id order.
fn by_name(r: &Value) -> HashMap<String, Vec<(u64, String)>> {
    let mut out: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for j in r["jobs"].as_array().unwrap() {
        out.entry(j["name"].as_str().unwrap_or("-").to_string())
            .or_default()
            .push((
                j["id"].as_u64().unwrap(),
                j["state"].as_str().unwrap().to_string(),
            ));
    }
    out
}

#[test]
fn an_etl_workflow_runs_in_order_with_run() {
    let d = Dir::new();
    let f = d.write("etl.toml", ETL);
    let out = d.path("r.json");
    run(&["run", "-q", "-f", path(&f), "--json", path(&out)]).code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 7);
    let names = by_name(&r);
    // Ids follow the order parents first: extract, the transforms, load,
    // cleanup.
    assert_eq!(names["extract"][0].0, 1);
    let transforms: Vec<u64> = names["transform"].iter().map(|t| t.0).collect();
    assert_eq!(transforms, [2, 3, 4, 5]);
    assert_eq!(names["load"][0].0, 6);
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs[5]["after"], serde_json::json!([2, 3, 4, 5]));
    assert_eq!(jobs[6]["run_if"], "always");
    assert_order(&r);
}

#[test]
fn a_failed_step_cancels_the_jobs_after_it_and_an_always_step_still_runs() {
    let d = Dir::new();
    let f = d.write(
        "etl.toml",
        &ETL.replace(
            "params = { cmd = \"sleep 0.05; echo extract\", shell = true }",
            "params = { cmd = \"exit 3\", shell = true }\nmax_attempts = 1",
        ),
    );
    let out = d.path("r.json");
    let ran = run(&["run", "-f", path(&f), "--json", path(&out)]);
    ran.code(1);
    let r = report(&d, "r.json");
    let names = by_name(&r);
    assert_eq!(names["extract"], [(1, "dead".to_string())]);
    for (_, s) in names["transform"].iter().chain(&names["load"]) {
        assert_eq!(s, "cancelled");
    }
    // The cleanup counts a failed parent as ended.
    assert_eq!(names["cleanup"][0].1, "succeeded");
    for j in r["jobs"].as_array().unwrap() {
        if j["state"] == "cancelled" {
            assert_eq!(
                j["cancelled_by"],
                serde_json::json!({"job": 1, "name": "extract"}),
                "{j}"
            );
            assert!(j["attempts"].as_array().unwrap().is_empty());
        }
    }
    assert_eq!(r["summary"]["jobs"], 7);
    // The human lines name the cause.
    assert!(
        ran.stdout
            .contains("cancelled shell #6 attempts=0 cancelled: job 1 (extract) ended dead"),
        "{}",
        ran.stdout
    );
}

/// Runs `runyard ARGS` expecting a refusal at `at` whose message has
/// `says`; the state file it names is never created.
fn refused_by_run(d: &Dir, files: &[(&str, &str)], at: &str, says: &[&str]) {
    let state = d.path("state.db");
    let mut args = vec!["run", "--state", path(&state)];
    let paths: Vec<_> = files.iter().map(|(n, t)| d.write(n, t)).collect();
    for p in &paths {
        args.extend(["-f", path(p)]);
    }
    let ran = run(&args);
    ran.code(2);
    assert!(ran.stderr.contains(at), "want {at}:\n{}", ran.stderr);
    for s in says {
        assert!(ran.stderr.contains(s), "want {s}:\n{}", ran.stderr);
    }
    assert!(!state.exists(), "nothing is enqueued: no state file");
}

#[test]
fn bad_workflows_are_refused_with_the_place_and_nothing_runs() {
    let d = Dir::new();
    let job = |name: &str, after: &str| {
        format!("[[job]]\nname = \"{name}\"\ntask = \"noop\"\nafter = [{after}]\n\n")
    };
    // An unknown name, with the closest one.
    let text = job("extract", "") + &job("load", "\"extrct\"");
    refused_by_run(
        &d,
        &[("a.toml", &text)],
        "a.toml:9:10",
        &["`extrct`", "did you mean `extract`?"],
    );
    // A cycle, its members in order, across two files.
    let one = job("a", "\"b\"");
    let two = job("b", "\"c\"") + &job("c", "\"a\"");
    refused_by_run(
        &d,
        &[("one.toml", &one), ("two.toml", &two)],
        "one.toml:4:10",
        &["`a` → `b` → `c` → `a`"],
    );
    // A name given twice: both places.
    refused_by_run(
        &d,
        &[("one.toml", &job("a", "")), ("two.toml", &job("a", ""))],
        "two.toml:2:8",
        &["one.toml:2:8", "`a`"],
    );
    // An unknown run_if: the two valid ones.
    refused_by_run(
        &d,
        &[(
            "a.toml",
            "[[job]]\ntask = \"noop\"\nrun_if = \"sometimes\"\n",
        )],
        "a.toml:3:10",
        &["\"success\"", "\"always\""],
    );
    // An id: a run's queue starts empty.
    refused_by_run(
        &d,
        &[("a.toml", &job("a", "17"))],
        "a.toml:4:10",
        &["job 17"],
    );
}

#[test]
fn an_etl_workflow_runs_in_order_with_run_state() {
    let d = Dir::new();
    let f = d.write("etl.toml", ETL);
    let (state, out) = (d.path("s.db"), d.path("r.json"));
    run(&[
        "run",
        "-q",
        "-f",
        path(&f),
        "--state",
        path(&state),
        "--json",
        path(&out),
    ])
    .code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 7);
    assert_eq!(r["jobs"][5]["after"], serde_json::json!([2, 3, 4, 5]));
    assert_order(&r);
}

/// The JSON lines of `submit --json -`.
fn submitted(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The queue's counts, as `status --json` tells them.
fn counts(url: &str) -> Value {
    let ran = run(&["status", "--queue", url, "--json"]);
    ran.code(0);
    serde_json::from_str::<Value>(&ran.stdout).unwrap()["counts"].clone()
}

#[test]
fn submit_and_workers_run_a_workflow_in_order_and_report_on_it() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let f = d.write("etl.toml", ETL);
    let ran = run(&["submit", "--queue", &url, "-f", path(&f), "--json", "-"]);
    ran.code(0);
    let lines = submitted(&ran.stdout);
    assert_eq!(lines.len(), 7, "only the JSON lines: {}", ran.stdout);
    assert_eq!(
        lines[0],
        serde_json::json!({"id": 1, "task": "shell", "name": "extract", "existing": false})
    );
    assert_eq!(lines[5]["name"], "load");
    assert_eq!(counts(&url)["blocked"], 6);
    let _worker = crate::util::background(&["worker", "--queue", &url, "-q"]);
    // A second workflow, waited for: the report of `run --json`, for its
    // jobs only.
    let out = d.path("r.json");
    run(&[
        "submit",
        "--queue",
        &url,
        "-f",
        path(&f),
        "--wait",
        "--json",
        path(&out),
    ])
    .code(0);
    let r = report(&d, "r.json");
    let ids: Vec<u64> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (8..=14).collect::<Vec<_>>());
    assert_eq!(r["summary"]["succeeded"], 7);
    assert_order(&r);
    // With `--json -` standard output carries the report alone.
    let ran = run(&[
        "submit",
        "--queue",
        &url,
        "-f",
        path(&f),
        "--wait",
        "--json",
        "-",
    ]);
    ran.code(0);
    let r: Value = serde_json::from_str(&ran.stdout).expect("only the report on stdout");
    assert_eq!(r["summary"]["jobs"], 7);
    assert_eq!(r["jobs"][0]["id"], 15);
    // A failed step: the wait's lines name the cause of each cancellation.
    let failing = d.write(
        "fail.toml",
        "[[job]]\nname = \"extract\"\ntask = \"fail\"\nmax_attempts = 1\n\n\
         [[job]]\nname = \"load\"\ntask = \"noop\"\nafter = [\"extract\"]\n",
    );
    let ran = run(&["submit", "--queue", &url, "-f", path(&failing), "--wait"]);
    ran.code(1);
    assert!(
        ran.stderr
            .contains("cancelled: job 22 (extract) ended dead"),
        "{}",
        ran.stderr
    );
}

#[test]
fn status_cancel_and_retry_follow_the_jobs_after_a_job() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let chain = d.write(
        "chain.toml",
        "[[job]]\nname = \"a\"\ntask = \"noop\"\n\n\
         [[job]]\nname = \"b\"\ntask = \"noop\"\nafter = [\"a\"]\n\n\
         [[job]]\nname = \"c\"\ntask = \"noop\"\nafter = [\"b\"]\n\n\
         [[job]]\ntask = \"noop\"\n",
    );
    run(&["submit", "--queue", &url, "-f", path(&chain)]).code(0);
    let says = |args: &[&str], want: &str| {
        let mut all = args.to_vec();
        all.extend(["--queue", &url]);
        let ran = run(&all);
        ran.code(0);
        assert!(
            ran.stdout.contains(want),
            "{args:?}: want {want}:\n{}",
            ran.stdout
        );
    };
    says(&["cancel", "1"], "1: cancelled, with 2 jobs after it: 2, 3");
    let job = |id: &str| {
        let ran = run(&["status", "--queue", &url, "--job", id, "--json"]);
        ran.code(0);
        serde_json::from_str::<Value>(&ran.stdout).unwrap()
    };
    let c = job("3");
    assert_eq!(c["state"], "cancelled");
    assert_eq!(
        c["cancelled_by"],
        serde_json::json!({"job": 1, "name": "a"})
    );
    let b = job("2");
    assert_eq!(
        b["after"],
        serde_json::json!([{"id": 1, "name": "a", "state": "cancelled"}])
    );
    assert_eq!(
        b["dependents"],
        serde_json::json!([{"id": 3, "name": "c", "state": "cancelled"}])
    );
    let ran = run(&["status", "--queue", &url, "--job", "3"]);
    assert!(
        ran.stdout.contains("cancelled: job 1 (a) ended cancelled"),
        "{}",
        ran.stdout
    );
    says(
        &["retry", "1"],
        "1: queued again; 2 jobs after it blocked again: 2, 3",
    );
    assert_eq!(counts(&url)["blocked"], 2);
    // A workflow at once: the unrelated job 4 is left alone.
    says(
        &["cancel", "--workflow", "2"],
        "cancelled 3 jobs of the workflow of job 2 (3 in all)",
    );
    assert_eq!(counts(&url)["queued"], 1);
    says(
        &["retry", "--workflow", "3"],
        "1: queued again; 2 jobs after it blocked again: 2, 3",
    );
    let n = counts(&url);
    assert_eq!(
        (n["queued"].as_u64(), n["blocked"].as_u64()),
        (Some(2), Some(2))
    );
    // A job whose parent failed is not retried on its own.
    says(&["cancel", "1"], "with 2 jobs after it");
    says(
        &["retry", "3"],
        "3: not retried: job 2, which it is after, has not succeeded",
    );
    let ran = run(&["status", "--queue", &url, "--job", "99"]);
    ran.code(2);
}

#[test]
fn a_submission_that_names_a_missing_job_enqueues_nothing() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    run(&["submit", "--queue", &url, "noop"]).code(0);
    let f = d.write(
        "a.toml",
        "[[job]]\nname = \"a\"\ntask = \"noop\"\n\n[[job]]\ntask = \"noop\"\nafter = [\"a\", 1, 99]\n",
    );
    let ran = run(&["submit", "--queue", &url, "-f", path(&f)]);
    ran.code(2);
    assert!(ran.stderr.contains("a.toml:7:18"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("job 99, which is not in the queue"),
        "{}",
        ran.stderr
    );
    let bad = d.write("b.toml", "[[job]]\ntask = \"noop\"\nafter = [\"zzz\"]\n");
    run(&["submit", "--queue", &url, "-f", path(&bad)]).code(2);
    assert_eq!(counts(&url)["queued"], 1);
    assert_eq!(counts(&url)["blocked"], 0);
    // With job 1 named by id, the same file goes in whole.
    let good = d.write(
        "c.toml",
        "[[job]]\nname = \"a\"\ntask = \"noop\"\nidempotency_key = \"a\"\n\n\
         [[job]]\ntask = \"noop\"\nafter = [\"a\", 1]\n",
    );
    let ran = run(&["submit", "--queue", &url, "-f", path(&good), "--json", "-"]);
    ran.code(0);
    assert_eq!(submitted(&ran.stdout)[0]["existing"], false);
    assert_eq!(counts(&url)["blocked"], 1);
    // Again: the keyed job exists, and the new job waits on it.
    let ran = run(&["submit", "--queue", &url, "-f", path(&good), "--json", "-"]);
    let lines = submitted(&ran.stdout);
    assert_eq!(
        lines[0],
        serde_json::json!({"id": 2, "task": "noop", "name": "a", "existing": true})
    );
    let ran = run(&[
        "status",
        "--queue",
        &url,
        "--job",
        &lines[1]["id"].to_string(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(v["after"][0]["id"], 2);
    assert_eq!(v["after"][1]["id"], 1);
}

#[test]
fn a_resume_with_retry_dead_mends_a_workflow_from_the_failed_step() {
    let d = Dir::new();
    let state = d.path("s.db");
    // The first attempt of `extract` fails; a retry's attempt succeeds.
    let f = d.write(
        "flow.toml",
        "[[job]]\nname = \"extract\"\ntask = \"fail\"\nparams = { k = 1 }\nmax_attempts = 1\n\n\
         [[job]]\nname = \"load\"\ntask = \"noop\"\nafter = [\"extract\"]\n\n\
         [[job]]\nname = \"report\"\ntask = \"noop\"\nafter = [\"load\"]\n",
    );
    run(&["run", "-q", "-f", path(&f), "--state", path(&state)]).code(1);
    let out = d.path("r.json");
    run(&[
        "run",
        "-q",
        "--state",
        path(&state),
        "--resume",
        "--retry-dead",
        "--json",
        path(&out),
    ])
    .code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 3, "{r}");
    // The jobs the failure cancelled ran once, after it.
    for j in &r["jobs"].as_array().unwrap()[1..] {
        assert_eq!(j["attempts"].as_array().unwrap().len(), 1, "{j}");
    }
    assert_order(&r);
}

#[test]
fn a_fan_in_past_one_batch_waits_for_every_copy() {
    // `run` enqueues in batches of 10,000: the fan-in is in the second
    // batch, after copies of both.
    let d = Dir::new();
    let f = d.write(
        "fan.toml",
        "[[job]]\nname = \"all\"\ntask = \"noop\"\nafter = [\"shard\"]\n\n\
         [[job]]\nname = \"shard\"\ntask = \"noop\"\ncount = 10001\n",
    );
    let out = d.path("r.json");
    run(&["run", "-q", "-f", path(&f), "--json", path(&out)]).code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 10_002);
    let all = &r["jobs"][10_001];
    assert_eq!(all["name"], "all");
    let after: Vec<u64> = all["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(after, (1..=10_001).collect::<Vec<_>>());
    assert_order(&r);
}
