//! The formats: the JSON report (`--json`), the events (`--events`), the
//! job lines and summary printed when standard output is not a terminal.

use std::collections::HashMap;

use crate::util::{events, run, Dir};

#[test]
fn the_json_report_has_the_documented_names() {
    let r = run(&[
        "run",
        "fail:k=1",
        "fail:permanent=true",
        "--backoff",
        "none",
        "--json",
        "-",
    ]);
    r.code(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("stdout is the report alone");
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let ok = &jobs[0];
    assert_eq!(ok["id"], 1);
    assert_eq!(ok["task"], "fail");
    assert_eq!(ok["params"], serde_json::json!({"k": 1}));
    assert_eq!(ok["state"], "succeeded");
    assert_eq!(ok["output"], "succeeded on attempt 2");
    let a = ok["attempts"].as_array().unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["outcome"], "failed");
    assert_eq!(
        a[0]["error"],
        "failing on purpose (attempt 1 of the first 1)"
    );
    assert_eq!(a[1]["outcome"], "succeeded");
    assert!(a[1]["error"].is_null());
    for at in a {
        assert!(at["started_at"].as_str().unwrap().ends_with('Z'), "{at}");
        assert!(at["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(at["queued_ms"].as_f64().unwrap() >= 0.0);
    }
    let dead = &jobs[1];
    assert_eq!(dead["state"], "dead");
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        1,
        "a permanent error is not retried"
    );
    assert!(dead["output"].is_null());
    let s = &v["summary"];
    assert_eq!(
        (
            s["jobs"].as_u64(),
            s["succeeded"].as_u64(),
            s["dead"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(s["attempts"], 3);
    assert_eq!(s["interrupted"], false);
    let t = &s["tasks"][0];
    assert_eq!(t["task"], "fail");
    for k in ["p50_ms", "p95_ms", "max_ms"] {
        assert!(t[k].as_f64().is_some(), "{k}");
    }
    assert!(
        r.stderr.contains("total"),
        "the summary goes to stderr when stdout has the report"
    );
}

#[test]
fn events_are_one_json_line_per_transition_in_order() {
    let d = Dir::new();
    let ev = d.path("events.jsonl");
    run(&[
        "run",
        "noop*3",
        "fail:k=1",
        "--backoff",
        "fixed:10ms",
        "--events",
        ev.to_str().unwrap(),
    ])
    .code(0);
    let all = events(&d.read("events.jsonl"));
    let mut per_job: HashMap<u64, Vec<String>> = HashMap::new();
    for e in &all {
        let ty = e["type"].as_str().unwrap().to_string();
        let data = &e["data"];
        assert!(data["at"].as_str().is_some(), "{e}");
        per_job
            .entry(data["job"].as_u64().unwrap())
            .or_default()
            .push(ty);
    }
    assert_eq!(per_job.len(), 4);
    for id in 1..=3 {
        assert_eq!(per_job[&id], ["queued", "running", "succeeded"], "job {id}");
    }
    assert_eq!(
        per_job[&4],
        ["queued", "running", "scheduled", "running", "succeeded"]
    );
    let sched = all.iter().find(|e| e["type"] == "scheduled").unwrap();
    assert_eq!(sched["data"]["outcome"], "failed");
    assert_eq!(
        sched["data"]["delay_ms"].as_f64().map(|d| d.round()),
        Some(10.0)
    );
}

#[test]
fn job_lines_and_summary_when_not_on_a_terminal() {
    let r = run(&[
        "run",
        "noop",
        "fail",
        "--max-attempts",
        "2",
        "--backoff",
        "none",
    ]);
    r.code(1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("succeeded noop #1 attempts=1 time=")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("dead      fail #2 attempts=2")
                && l.ends_with("failed: failing on purpose (attempt 2)")),
        "{}",
        r.stdout
    );
    let header = lines
        .iter()
        .position(|l| l.starts_with("task"))
        .expect("a summary table");
    assert!(
        lines[header].contains("p50")
            && lines[header].contains("p95")
            && lines[header].contains("max")
    );
    assert!(lines.iter().any(|l| l.starts_with("total")
        && l.split_whitespace().collect::<Vec<_>>() == ["total", "2", "1", "1", "0", "3"]));
    assert!(
        lines.last().unwrap().starts_with("wall time "),
        "{}",
        r.stdout
    );
}

#[test]
fn quiet_prints_nothing_but_keeps_the_exit_code() {
    let r = run(&["run", "fail", "--max-attempts", "1", "-q"]);
    r.code(1);
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
}

/// The ids of a report's jobs, in the order written.
fn report_ids(v: &serde_json::Value) -> Vec<u64> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_streamed_report_lists_every_job_once_in_order() {
    let d = Dir::new();
    let path = d.path("r.json");
    let r = run(&[
        "run",
        "-q",
        "-j",
        "4",
        "noop*3000",
        "fail:permanent=true*3",
        "--json",
        path.to_str().unwrap(),
    ]);
    r.code(1);
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(report_ids(&v), (1..=3003).collect::<Vec<_>>());
    assert_eq!(v["summary"]["jobs"], 3003);
    assert_eq!(v["summary"]["dead"], 3);
}

#[test]
fn the_report_is_written_as_jobs_end_and_an_interrupted_run_keeps_every_job_once() {
    let d = Dir::new();
    let path = d.path("r.json");
    let mut bg = crate::util::background(&[
        "run",
        "-q",
        "-j",
        "2",
        "noop*50",
        "sleep:duration=1h",
        "noop*5",
        "--grace",
        "100ms",
        "--json",
        path.to_str().unwrap(),
    ]);
    // The 50 jobs before the sleep reach the file while the run goes on.
    crate::util::wait_until(
        std::time::Duration::from_secs(60),
        "the first 50 jobs in the report file",
        || d.read("r.json").contains("\"id\":50,"),
    );
    assert!(!d.read("r.json").contains("\"summary\""));
    crate::util::signal(&bg.child, "INT");
    crate::util::signal(&bg.child, "INT");
    let code = crate::util::wait_exit(&mut bg.child, std::time::Duration::from_secs(60));
    assert_eq!(code, 130, "{}", bg.stderr());
    let v: serde_json::Value = serde_json::from_str(&d.read("r.json")).unwrap();
    assert_eq!(report_ids(&v), (1..=56).collect::<Vec<_>>());
    assert_eq!(v["jobs"][50]["task"], "sleep");
    assert_eq!(v["summary"]["interrupted"], true);
}

/// The `(most, now)` job records that `RUNYARD_RUN_DEBUG_HELD` makes a run
/// in memory say its queue held.
fn records_held(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("runyard: debug: at most "))
        .unwrap_or_else(|| panic!("no count of records in {stderr}"));
    let (most, rest) = line
        .split_once(" job records in the queue at once, ")
        .unwrap();
    let now = rest.strip_suffix(" at the end").unwrap();
    (most.parse().unwrap(), now.parse().unwrap())
}

fn run_counted(args: &[&str]) -> crate::util::Ran {
    let mut c = crate::util::runyard();
    c.env("RUNYARD_RUN_DEBUG_HELD", "1")
        .args(args)
        .stdin(std::process::Stdio::null());
    crate::util::Ran::from(c.output().expect("runyard starts"))
}

/// The ids of the report's jobs, in its order.
fn ids_of(report: &serde_json::Value) -> Vec<u64> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_long_run_in_memory_holds_a_bounded_number_of_job_records() {
    let d = Dir::new();
    let out = d.path("report.json");
    let n = 60_000u64;
    let jobs = format!("noop*{n}");
    for json in [true, false] {
        let mut args = vec!["run", jobs.as_str(), "-j2", "-q"];
        if json {
            args.extend(["--json", out.to_str().unwrap()]);
        }
        let r = run_counted(&args);
        r.code(0);
        let (most, now) = records_held(&r.stderr);
        // Submitted as the run makes room (two batches of 10,000 not
        // ended at most), forgotten once read: not every job at once.
        assert!(
            most <= 30_000,
            "held {most} of {n} at once (--json: {json})"
        );
        assert_eq!(now, 0, "every job read is forgotten");
    }
    let v: serde_json::Value = serde_json::from_str(&d.read("report.json")).unwrap();
    assert_eq!(
        ids_of(&v),
        (1..=n).collect::<Vec<_>>(),
        "every job once, in order"
    );
    assert_eq!(v["summary"]["jobs"], n);
    assert_eq!(v["summary"]["succeeded"], n);
    assert!(v["jobs"][0].get("settings").is_none(), "{}", v["jobs"][0]);
}

#[test]
fn a_streamed_report_lists_every_job_once_with_its_retries_and_its_workflow() {
    let d = Dir::new();
    // Plain jobs first, then a workflow: a root retried once, a fan-out
    // after it, a job that fails for good and the jobs its end cancels
    // (one of them two steps away), and one after it whatever happens.
    let file = d.write(
        "jobs.toml",
        r#"
[[job]]
task = "noop"
count = 300

[[job]]
name = "root"
task = "fail"
params = { k = 1 }
max_attempts = 3
backoff = "none"

[[job]]
name = "fan"
task = "noop"
count = 50
after = ["root"]

[[job]]
name = "bad"
task = "fail"
params = { permanent = true }
after = ["fan"]

[[job]]
name = "next"
task = "noop"
after = ["bad"]

[[job]]
name = "later"
task = "noop"
after = ["next"]

[[job]]
name = "anyway"
task = "noop"
after = ["bad"]
run_if = "always"
"#,
    );
    let out = d.path("report.json");
    let r = run_counted(&[
        "run",
        "-f",
        file.to_str().unwrap(),
        "-j2",
        "-q",
        "--json",
        out.to_str().unwrap(),
    ]);
    r.code(1);
    let (_, now) = records_held(&r.stderr);
    assert_eq!(now, 0, "every job forgotten once read and no longer needed");
    let v: serde_json::Value = serde_json::from_str(&d.read("report.json")).unwrap();
    let total = 300 + 1 + 50 + 4;
    assert_eq!(
        ids_of(&v),
        (1..=total).collect::<Vec<_>>(),
        "every job once, in order"
    );
    let jobs = v["jobs"].as_array().unwrap();
    let fail = |state: &str| {
        jobs.iter()
            .find(|j| j["task"] == "fail" && j["state"] == state)
            .unwrap()
    };
    let root = fail("succeeded");
    assert_eq!(root["attempts"].as_array().unwrap().len(), 2, "{root}");
    let bad = fail("dead");
    let cancelled: Vec<&serde_json::Value> =
        jobs.iter().filter(|j| j["state"] == "cancelled").collect();
    assert_eq!(cancelled.len(), 2, "next, and later two steps away");
    for c in cancelled {
        assert_eq!(c["cancelled_by"]["job"], bad["id"], "{c}");
        assert_eq!(c["cancelled_by"]["name"], "bad", "{c}");
    }
    let s = &v["summary"];
    assert_eq!(
        (
            s["jobs"].as_u64(),
            s["succeeded"].as_u64(),
            s["dead"].as_u64(),
            s["cancelled"].as_u64()
        ),
        (Some(total), Some(total - 3), Some(1), Some(2))
    );
}
