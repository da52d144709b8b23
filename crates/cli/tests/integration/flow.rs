//! Flow control from the command line: unique keys on submit, limits in
//! job files and `runyard limit`, pausing tasks, what `status` says holds
//! jobs, `exec --rate`, and the examples of docs/flow-control.md.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::signals::running;
use crate::util::{background, run, runyard, signal, wait_exit, wait_until, Dir};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

fn millis(t: &Value) -> f64 {
    let t = humantime::parse_rfc3339(t.as_str().expect("a time")).expect("RFC 3339");
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

/// The attempts of a report: (task, start ms, end ms).
fn attempts(r: &Value) -> Vec<(String, f64, f64)> {
    attempts_by(r, |j| &j["task"])
}

/// The attempts of a report: (`who` of the job, start ms, end ms).
fn attempts_by(r: &Value, who: impl Fn(&Value) -> &Value) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for j in r["jobs"].as_array().expect("jobs") {
        for a in j["attempts"].as_array().expect("attempts") {
            let start = millis(&a["started_at"]);
            let end = start + a["duration_ms"].as_f64().expect("duration_ms");
            out.push((who(j).as_str().expect("a string").to_string(), start, end));
        }
    }
    out
}

/// The most attempts of `who` that surely overlap at one moment. Starts
/// are written to the millisecond, cut: an attempt shown from `s` to `e`
/// ran from at least `s` and to at least `e`, and surely at `[s + 1, e)`;
/// ends count before starts at the same instant.
fn most_at_once(a: &[(String, f64, f64)], who: &str) -> usize {
    let mut edges: Vec<(f64, i32)> = a
        .iter()
        .filter(|(w, _, _)| w == who)
        .flat_map(|(_, s, e)| [(*s + 1.0, 1), (*e, -1)])
        .collect();
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn report(d: &Dir, name: &str) -> Value {
    serde_json::from_str(&d.read(name))
        .unwrap_or_else(|e| panic!("a report ({e}): {}", d.read(name)))
}

fn status(url: &str) -> Value {
    let r = run(&["status", "--queue", url, "--json"]);
    r.code(0);
    serde_json::from_str(&r.stdout).expect("status JSON")
}

#[test]
fn flow_a_second_submit_of_a_unique_key_adds_nothing_and_says_so() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let f = d.write(
        "sync.toml",
        "[[job]]\ntask = \"sleep\"\nparams = { duration = \"1ms\" }\nunique_key = \"sync-42\"\n",
    );
    let first = run(&["submit", "--queue", &url, "-f", path(&f), "--json", "-"]);
    first.code(0);
    let line: Value = serde_json::from_str(first.stdout.trim()).unwrap();
    assert_eq!(line["existing"], false);
    assert!(first.stderr.is_empty(), "{}", first.stderr);
    let again = run(&["submit", "--queue", &url, "-f", path(&f), "--json", "-"]);
    again.code(0);
    let line: Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(
        (line["id"].as_u64(), &line["existing"]),
        (Some(1), &Value::Bool(true))
    );
    assert!(line.get("replaced").is_none(), "{line}");
    assert!(
        again
            .stderr
            .contains("job 1 exists (unique key `sync-42`); nothing added"),
        "{}",
        again.stderr
    );
    // Replace: the waiting job takes the new parameters.
    let replace = run(&[
        "submit",
        "--queue",
        &url,
        "sleep:duration=2ms",
        "--unique-key",
        "sync-42",
        "--on-conflict",
        "replace",
        "--json",
        "-",
    ]);
    replace.code(0);
    let line: Value = serde_json::from_str(replace.stdout.trim()).unwrap();
    assert_eq!(
        (&line["existing"], &line["replaced"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert!(
        replace
            .stderr
            .contains("job 1 exists (unique key `sync-42`); it took the new parameters"),
        "{}",
        replace.stderr
    );
    let s = status(&url);
    assert_eq!(s["counts"]["queued"], 1);
    let job = run(&["status", "--queue", &url, "--job", "1", "--json"]);
    let job: Value = serde_json::from_str(&job.code(0).stdout).unwrap();
    assert_eq!(job["params"]["duration"], "2ms");
}

#[test]
fn flow_limit_sets_lists_and_clears_stored_limits() {
    let d = Dir::new();
    let long = &"x".repeat(9000);
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    // Listing creates nothing; setting creates the queue.
    let r = run(&["limit", "--queue", &url]);
    assert!(
        r.code(2).stderr.contains("no such state file"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "limit",
        "--queue",
        &url,
        "--key",
        "tenant",
        "--concurrency",
        "2",
    ]);
    assert!(
        r.code(0)
            .stdout
            .contains("key `tenant` (each value): at most 2 at once"),
        "{}",
        r.stdout
    );
    run(&[
        "limit",
        "--queue",
        &url,
        "--key",
        "tenant",
        "--value",
        "42",
        "--concurrency",
        "8",
    ])
    .code(0);
    run(&[
        "limit", "--queue", &url, "--task", "sleep", "--rate", "50/s",
    ])
    .code(0);
    let r = run(&["limit", "--queue", &url, "--json"]);
    let all: Value = serde_json::from_str(&r.code(0).stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["target"]["task"] == "sleep" && l["rate"] == "50/s"));
    let s = status(&url);
    assert_eq!(s["flow"]["limits"], all);
    let text = run(&["status", "--queue", &url]).code(0).stdout.clone();
    assert!(
        text.contains("key `tenant:42`: at most 8 at once"),
        "{text}"
    );
    let r = run(&[
        "limit", "--queue", &url, "--task", "sleep", "--clear", "--json",
    ]);
    assert_eq!(r.code(0).stdout.trim(), "null");
    let r = run(&["limit", "--queue", &url, "--task", "sleep", "--clear"]);
    assert!(
        r.code(0).stdout.contains("was stored: nothing to clear"),
        "{}",
        r.stdout
    );
    let r = run(&["limit", "--queue", &url, "--json"]);
    let all: Value = serde_json::from_str(&r.code(0).stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let r = run(&["limit", "--queue", &url, "--key", "tenant"]);
    assert_eq!(
        r.code(0).stdout.lines().count(),
        2,
        "one key's limit: {}",
        r.stdout
    );
    // Bad specs and queues are refused, saying what is valid.
    for (args, says) in [
        (vec!["--task", "sleep", "--rate", "0/s"], "at least 1"),
        (
            vec!["--task", "sleep", "--rate", "ten/s"],
            "COUNT/s, COUNT/m or COUNT/h",
        ),
        (vec!["--task", "sleep", "--concurrency", "0"], "at least 1"),
        (vec!["--concurrency", "2"], "say what to limit"),
        (
            vec!["--key", "a b", "--concurrency", "2"],
            "NAME or NAME:VALUE",
        ),
        (
            vec!["--key", "t:1", "--value", "2", "--concurrency", "2"],
            "already names a value",
        ),
        (
            vec!["--task", long, "--concurrency", "2"],
            "at most 200 bytes",
        ),
        (
            vec!["--task", "a b", "--concurrency", "2"],
            "letters, digits",
        ),
    ] {
        let mut all = vec!["limit", "--queue", &url];
        all.extend(args.iter().copied());
        let r = run(&all);
        r.code(2);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let r = run(&[
        "limit",
        "--queue",
        "memory",
        "--task",
        "x",
        "--concurrency",
        "1",
    ]);
    assert!(
        r.code(2).stderr.contains("outlives the process"),
        "{}",
        r.stderr
    );
}

#[test]
fn flow_a_paused_task_waits_while_others_run_and_runs_once_resumed() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let r = run(&["task", "pause", "--queue", &url, "sleep"]);
    assert!(
        r.code(0).stdout.contains("paused task `sleep`"),
        "{}",
        r.stdout
    );
    run(&["submit", "--queue", &url, "sleep:duration=1ms", "noop"]).code(0);
    let s = status(&url);
    assert_eq!(s["flow"]["paused"], serde_json::json!(["sleep"]));
    let held = &s["flow"]["held"][0];
    assert_eq!(
        (&held["hold"]["kind"], held["jobs"].as_u64()),
        (&Value::from("paused"), Some(1))
    );
    let text = run(&["status", "--queue", &url, "--job", "1"])
        .code(0)
        .stdout
        .clone();
    assert!(text.contains("held        paused (task `sleep`)"), "{text}");
    let _worker = background(&["worker", "--queue", &url, "-q", "--lease", "2s"]);
    // The job after the paused one runs: the worker claims, and passes it by.
    wait_until(Duration::from_secs(30), "the noop job to succeed", || {
        status(&url)["counts"]["succeeded"] == 1
    });
    let job = run(&["status", "--queue", &url, "--job", "1", "--json"]);
    let job: Value = serde_json::from_str(&job.code(0).stdout).unwrap();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"].as_array().unwrap().len(), 0);
    let r = run(&["task", "resume", "--queue", &url, "sleep"]);
    assert!(
        r.code(0).stdout.contains("resumed task `sleep`"),
        "{}",
        r.stdout
    );
    wait_until(
        Duration::from_secs(30),
        "the resumed job to succeed",
        || status(&url)["counts"]["succeeded"] == 2,
    );
    let r = run(&["task", "resume", "--queue", &url, "--all"]);
    assert!(r.code(0).stdout.contains("nothing to do"), "{}", r.stdout);
    // A name no task could have: refused before the queue is asked.
    let long = "x".repeat(9000);
    let r = run(&["task", "pause", "--queue", &url, &long]);
    assert!(
        r.code(2).stderr.contains("at most 200 bytes"),
        "{}",
        r.stderr
    );
    let r = run(&["task", "pause", "--queue", "memory", "--all"]);
    assert!(
        r.code(2).stderr.contains("outlives the process"),
        "{}",
        r.stderr
    );
}

#[test]
fn flow_a_runs_task_limit_and_a_keys_limit_hold_at_every_moment() {
    let d = Dir::new();
    // Six jobs of one key with a limit of 2, and four of a task limited
    // to 1 at once for this run; many more threads than that.
    let f = d.write(
        "jobs.toml",
        r#"
[[job]]
task = "shell"
params = { cmd = "sleep 0.05", shell = true }
count = 4

[[job]]
task = "sleep"
params = { duration = "50ms" }
concurrency_key = "tenant:7"
concurrency = 2
count = 6

[limits.shell]
concurrency = 1
"#,
    );
    run(&[
        "run",
        "-f",
        path(&f),
        "-j",
        "8",
        "--json",
        path(&d.path("r.json")),
        "-q",
    ])
    .code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 10);
    let a = attempts(&r);
    assert_eq!(most_at_once(&a, "shell"), 1, "{a:?}");
    let sleeps = most_at_once(&a, "sleep");
    assert!((1..=2).contains(&sleeps), "{a:?}");
}

/// An interrupted run's summary and report say what held the jobs it had
/// not started: the limits of its `[limits]` tables, as they were at the
/// interrupt (the sleep's slot was still taken then), and blocked jobs.
fn interrupted_run_says_what_held_its_jobs(store: &[&str]) {
    let d = Dir::new();
    let f = d.write(
        "jobs.toml",
        r#"
[[job]]
task = "sleep"
params = { duration = "1h" }
count = 3

[[job]]
task = "noop"
count = 3

[[job]]
name = "last"
task = "noop"
after = ["first"]

[[job]]
name = "first"
task = "sleep"
params = { duration = "1h" }

[limits.sleep]
concurrency = 1

[limits.noop]
rate = "1/h"
"#,
    );
    let (ev, out) = (d.path("events.jsonl"), d.path("r.json"));
    let mut args = vec![
        "run",
        "-f",
        path(&f),
        "-j",
        "8",
        "--grace",
        "1ms",
        "--events",
        path(&ev),
        "--json",
        path(&out),
    ];
    args.extend(store);
    let mut child = runyard()
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(d.path("stdout")).unwrap())
        .stderr(std::fs::File::create(d.path("stderr")).unwrap())
        .spawn()
        .unwrap();
    // One sleep (the limit's one slot) and one noop (the rate's one start
    // an hour) have started; nothing else can.
    wait_until(
        Duration::from_secs(30),
        "a sleep and a noop to start",
        || running(&d) == 2,
    );
    signal(&child, "INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), 130);
    let held = &report(&d, "r.json")["summary"]["held"];
    assert_eq!(
        held,
        &serde_json::json!([
            {"hold": {"kind": "concurrency", "target": {"task": "sleep"}, "limit": 1}, "jobs": 3},
            {"hold": {"kind": "rate", "target": {"task": "noop"}, "rate": "1/h"}, "jobs": 2},
            {"hold": {"kind": "dependencies"}, "jobs": 1},
        ]),
        "{held}"
    );
    let text = d.read("stdout");
    assert!(
        text.contains(
            "held when interrupted: 3 by the concurrency limit of task `sleep` (1 at once), \
             2 by the rate limit of task `noop` (1/h), 1 blocked on dependencies"
        ),
        "{text}"
    );
    assert!(!text.contains("blocked: waiting"), "said once: {text}");
}

#[test]
fn flow_an_interrupted_run_says_what_held_its_jobs() {
    interrupted_run_says_what_held_its_jobs(&[]);
}

/// On a state file, the held jobs stay unfinished for a resume.
#[test]
fn flow_an_interrupted_run_on_a_state_file_says_what_held_its_jobs() {
    let d = Dir::new();
    let state = d.path("run.db");
    interrupted_run_says_what_held_its_jobs(&["--state", path(&state)]);
}

#[test]
fn flow_job_file_specs_are_refused_with_the_place_and_what_is_valid() {
    let d = Dir::new();
    for (text, at, says) in [
        (
            "[[job]]\ntask = \"noop\"\nrate_key = \"api\"\nrate = \"0/s\"\n",
            ":4:8",
            "at least 1",
        ),
        (
            "[[job]]\ntask = \"noop\"\nrate_key = \"api\"\nrate = \"ten/s\"\n",
            ":4:8",
            "COUNT/s",
        ),
        (
            "[[job]]\ntask = \"noop\"\nconcurrency_key = \"t\"\nconcurrency = 0\n",
            ":4:15",
            "from 1",
        ),
        (
            "[[job]]\ntask = \"noop\"\nconcurrency = 2\n",
            ":3:15",
            "concurrency_key",
        ),
        (
            "[[job]]\ntask = \"noop\"\n[limits.nope]\nconcurrency = 2\n",
            ":3:1",
            "unknown task",
        ),
    ] {
        let f = d.write("bad.toml", text);
        let r = run(&["run", "-f", path(&f)]);
        r.code(2);
        assert!(
            r.stderr.contains(&format!("bad.toml{at}")) && r.stderr.contains(says),
            "{text}: {}",
            r.stderr
        );
    }
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let f = d.write(
        "l.toml",
        "[[job]]\ntask = \"noop\"\n\n[limits.noop]\nconcurrency = 2\n",
    );
    let r = run(&["submit", "--queue", &url, "-f", path(&f)]);
    r.code(2);
    assert!(
        r.stderr.contains("runyard limit --queue URL --task noop"),
        "{}",
        r.stderr
    );
    assert!(
        !d.path("q.db").exists(),
        "nothing was submitted, no queue created"
    );
}

#[test]
fn flow_exec_rate_starts_no_more_than_the_rate_in_any_second() {
    let d = Dir::new();
    let out = d.path("r.json");
    let r = run(&[
        "exec",
        "-j",
        "4",
        "--rate",
        "2/s",
        "--json",
        path(&out),
        "true",
        ":::",
        "a",
        "b",
        "c",
        "d",
        "e",
    ]);
    r.code(0);
    let rep = report(&d, "r.json");
    let mut starts: Vec<f64> = attempts(&rep).into_iter().map(|(_, s, _)| s).collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 5);
    // Any three starts span at least a second (less the millisecond the
    // record cuts).
    for w in starts.windows(3) {
        assert!(w[2] - w[0] >= 999.0, "{starts:?}");
    }
    let r = run(&["exec", "--rate", "0/s", "true", ":::", "a"]);
    assert!(r.code(2).stderr.contains("at least 1"), "{}", r.stderr);
}

/// The TOML blocks of docs/flow-control.md's "Examples".
fn doc_examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/flow-control.md"
    ))
    .expect("docs/flow-control.md");
    let examples = doc
        .split("\n## Examples\n")
        .nth(1)
        .expect("an Examples section");
    examples
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

#[test]
fn flow_the_examples_of_the_doc_run_and_hold_their_limits() {
    let examples = doc_examples();
    assert_eq!(examples.len(), 2);
    let d = Dir::new();
    let f = d.write("tenants.toml", &examples[0]);
    run(&[
        "run",
        "-f",
        path(&f),
        "-j",
        "8",
        "--json",
        path(&d.path("r.json")),
        "-q",
    ])
    .code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 9);
    // Each tenant's jobs, by the key each carries: at most 2 at once.
    let mut by_tenant: std::collections::HashMap<u64, Vec<(String, f64, f64)>> =
        std::collections::HashMap::new();
    for (i, j) in r["jobs"].as_array().unwrap().iter().enumerate().take(8) {
        let tenant = if i < 4 { 1 } else { 2 };
        let a = &j["attempts"][0];
        let s = millis(&a["started_at"]);
        by_tenant.entry(tenant).or_default().push((
            "t".into(),
            s,
            s + a["duration_ms"].as_f64().unwrap(),
        ));
    }
    for (t, a) in &by_tenant {
        assert!(most_at_once(a, "t") <= 2, "tenant {t}: {a:?}");
    }
    let f = d.write("api.toml", &examples[1]);
    run(&[
        "run",
        "-f",
        path(&f),
        "-j",
        "8",
        "--json",
        path(&d.path("a.json")),
        "-q",
    ])
    .code(0);
    let r = report(&d, "a.json");
    assert_eq!(r["summary"]["succeeded"], 3);
    // At most one at once. (Not "exactly one": an attempt shorter than the
    // millisecond its start is cut to is never surely running.)
    let a = attempts(&r);
    assert_eq!(a.len(), 3);
    assert!(most_at_once(&a, "shell") <= 1, "{a:?}");
    // A shared queue refuses the run's [limits] table, and takes the
    // first example whole; a second submit adds no second import.
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    let r = run(&["submit", "--queue", &url, "-f", path(&f)]);
    assert!(r.code(2).stderr.contains("runyard limit"), "{}", r.stderr);
    let f = d.write("tenants.toml", &examples[0]);
    run(&["submit", "--queue", &url, "-f", path(&f)]).code(0);
    let again = run(&["submit", "--queue", &url, "-f", path(&f)]);
    assert!(
        again
            .code(0)
            .stderr
            .contains("(unique key `import`); nothing added"),
        "{}",
        again.stderr
    );
    assert_eq!(status(&url)["counts"]["queued"], 17);
}

#[test]
fn flow_a_stored_limit_holds_across_two_workers() {
    let d = Dir::new();
    let url = format!("sqlite://{}", path(&d.path("q.db")));
    // Each tenant at most 2 at once, tenant 7 at most 1: stored limits
    // beat the 3 the jobs carry.
    for (key, n) in [("tenant", "2"), ("tenant:7", "1")] {
        run(&["limit", "--queue", &url, "--key", key, "--concurrency", n]).code(0);
    }
    let f = d.write(
        "jobs.toml",
        r#"
[[job]]
task = "sleep"
params = { duration = "40ms" }
concurrency_key = "tenant:1"
concurrency = 3
count = 6

[[job]]
task = "sleep"
params = { duration = "41ms" }
concurrency_key = "tenant:7"
concurrency = 3
count = 4
"#,
    );
    let _w1 = background(&["worker", "--queue", &url, "-q", "-j", "4", "--name", "w1"]);
    let _w2 = background(&["worker", "--queue", &url, "-q", "-j", "4", "--name", "w2"]);
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
        "-q",
    ])
    .code(0);
    let r = report(&d, "r.json");
    assert_eq!(r["summary"]["succeeded"], 10);
    // The tenants' jobs, told apart by their durations.
    let a = attempts_by(&r, |j| &j["params"]["duration"]);
    assert!(most_at_once(&a, "40ms") <= 2, "{a:?}");
    assert_eq!(most_at_once(&a, "41ms"), 1, "{a:?}");
}

#[test]
fn flow_a_small_key_submitted_after_a_backlog_takes_turns_with_it() {
    let d = Dir::new();
    let f = d.write(
        "fair.toml",
        r#"
[[job]]
task = "sleep"
params = { duration = "2ms" }
concurrency_key = "tenant:big"
count = 200

[[job]]
task = "sleep"
params = { duration = "3ms" }
concurrency_key = "tenant:small"
count = 10
"#,
    );
    let out = d.path("r.json");
    run(&[
        "run",
        "-f",
        path(&f),
        "-j",
        "1",
        "--mode",
        "thread",
        "--json",
        path(&out),
        "-q",
    ])
    .code(0);
    let r = report(&d, "r.json");
    let mut starts: Vec<(f64, bool)> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                millis(&j["attempts"][0]["started_at"]),
                j["params"]["duration"] == "3ms",
            )
        })
        .collect();
    starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // One at a time: the small key's 10 jobs are done before a tenth of
    // the backlog (20 jobs) has started beside them.
    let last_small = starts.iter().rposition(|(_, small)| *small).unwrap();
    assert!(
        last_small < 30,
        "the last small job started {}th",
        last_small + 1
    );
}
