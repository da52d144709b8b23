//! `runyard schedule` on an SQLite state file: adding, changing, listing,
//! pausing, running, removing and syncing schedules, the worker that fires
//! them and what `status` shows; and every bad input refused (exit 2)
//! before anything is written, saying where and what is valid.

use std::time::Duration;

use crate::util::{background, events, run, run_in, signal, wait_exit, wait_until, Dir};

fn queue(d: &Dir) -> String {
    format!("sqlite://{}", d.path("q.db").display())
}

fn list(q: &str) -> Vec<serde_json::Value> {
    let out = run(&["schedule", "list", "--queue", q, "--json"]);
    out.code(0);
    serde_json::from_str::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

#[test]
fn add_says_what_it_did_and_list_shows_the_schedule() {
    let d = Dir::new();
    let q = queue(&d);
    let out = run(&[
        "schedule", "add", "nightly", "--queue", &q, "--every", "1h", "cpu:n=10",
    ]);
    out.code(0);
    assert!(
        out.stdout
            .starts_with("added schedule `nightly`: every 1h; next tick 20"),
        "{}",
        out.stdout
    );
    let again = run(&[
        "schedule", "add", "nightly", "--queue", &q, "--every", "1h", "cpu:n=10",
    ]);
    assert!(
        again
            .code(0)
            .stdout
            .starts_with("unchanged schedule `nightly`"),
        "{}",
        again.stdout
    );
    let changed = run(&[
        "schedule",
        "add",
        "nightly",
        "--queue",
        &q,
        "--every",
        "1h",
        "--overlap",
        "skip",
        "--max-attempts",
        "3",
        "cpu:n=10",
    ]);
    assert!(
        changed
            .code(0)
            .stdout
            .starts_with("changed schedule `nightly`"),
        "{}",
        changed.stdout
    );
    let all = list(&q);
    assert_eq!(all.len(), 1);
    let s = &all[0];
    assert_eq!(s["name"], "nightly");
    assert_eq!(s["kind"], "every");
    assert_eq!(s["every"], "1h");
    assert_eq!(s["overlap"], "skip");
    assert_eq!(s["catch_up"], "latest");
    assert_eq!(s["misfire_grace"], "1m");
    assert_eq!(s["paused"], false);
    assert!(s["next_tick"].is_string(), "{s}");
    assert!(s["last_fire"].is_null(), "{s}");
    assert_eq!(s["tasks"], serde_json::json!(["cpu"]));
    let human = run(&["schedule", "list", "--queue", &q]);
    let text = &human.code(0).stdout;
    assert!(
        text.contains("nightly") && text.contains("every 1h"),
        "{text}"
    );
}

#[test]
fn a_cron_schedule_keeps_its_zone_and_its_next_tick_is_local() {
    let d = Dir::new();
    let q = queue(&d);
    let out = run(&[
        "schedule",
        "add",
        "berlin",
        "--queue",
        &q,
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "noop",
    ]);
    out.code(0);
    assert!(
        out.stdout.contains("cron \"0 3 * * *\" in Europe/Berlin"),
        "{}",
        out.stdout
    );
    let s = &list(&q)[0];
    assert_eq!(
        (&s["kind"], &s["cron"], &s["zone"]),
        (&"cron".into(), &"0 3 * * *".into(), &"Europe/Berlin".into())
    );
    // 03:00 in Berlin is 02:00 or 01:00 UTC (summer time), on the hour.
    let next = s["next_tick"].as_str().unwrap();
    assert!(
        next.ends_with("T02:00:00.000Z") || next.ends_with("T01:00:00.000Z"),
        "{next}"
    );
}

#[test]
fn pause_resume_run_and_remove_act_on_the_named_schedule() {
    let d = Dir::new();
    let q = queue(&d);
    run(&[
        "schedule", "add", "s", "--queue", &q, "--every", "1h", "noop",
    ])
    .code(0);
    run(&["schedule", "pause", "s", "--queue", &q]).code(0);
    assert_eq!(list(&q)[0]["paused"], true);
    run(&["schedule", "resume", "s", "--queue", &q]).code(0);
    assert_eq!(list(&q)[0]["paused"], false);
    // `run` fires now: the job's id on stdout, the job marked with the
    // schedule and its tick.
    let fired = run(&["schedule", "run", "s", "--queue", &q]);
    let id = fired.code(0).stdout.trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "{}", fired.stdout);
    let job = run(&["status", "--queue", &q, "--job", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&job.code(0).stdout).unwrap();
    assert_eq!(v["schedule"], "s");
    assert!(v["tick"].is_string(), "{v}");
    let human = run(&["status", "--queue", &q, "--job", &id]);
    assert!(
        human.code(0).stdout.contains("schedule    s, tick "),
        "{}",
        human.stdout
    );
    assert_eq!(list(&q)[0]["last_fire"]["job"].to_string(), id);
    // `status` has a schedules section, in JSON too.
    let status = run(&["status", "--queue", &q]);
    assert!(
        status.code(0).stdout.contains("schedules:"),
        "{}",
        status.stdout
    );
    let status = run(&["status", "--queue", &q, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.code(0).stdout).unwrap();
    assert_eq!(v["schedules"][0]["name"], "s");
    run(&["schedule", "remove", "s", "--queue", &q]).code(0);
    assert!(list(&q).is_empty());
    // The job it made stays.
    run(&["status", "--queue", &q, "--job", &id]).code(0);
    for cmd in ["pause", "resume", "remove", "run"] {
        let out = run(&["schedule", cmd, "s", "--queue", &q]);
        assert!(
            out.code(2).stderr.contains("no schedule named `s`"),
            "{cmd}: {}",
            out.stderr
        );
    }
}

#[test]
fn sync_adds_changes_keeps_and_with_prune_removes() {
    let d = Dir::new();
    let q = queue(&d);
    run(&[
        "schedule", "add", "old", "--queue", &q, "--every", "1h", "noop",
    ])
    .code(0);
    d.write(
        "flow.toml",
        "[[job]]\nname = \"a\"\ntask = \"noop\"\n\n[[job]]\nname = \"b\"\ntask = \"noop\"\nafter = [\"a\"]\n",
    );
    let file = d.write(
        "s.toml",
        "[[schedule]]\nname = \"one\"\nevery = \"10m\"\ntask = \"cpu\"\nparams = { n = 5 }\nmax_attempts = 2\n\n\
         [[schedule]]\nname = \"flow\"\nevery = \"1h\"\noverlap = \"skip\"\ncatch_up = \"all\"\ncatch_up_max = 3\nfile = \"flow.toml\"\n",
    );
    let f = file.to_str().unwrap();
    let dry = run(&[
        "schedule",
        "sync",
        "--queue",
        &q,
        "-f",
        f,
        "--dry-run",
        "--prune",
    ]);
    let text = &dry.code(0).stdout;
    assert!(text.contains("would add schedule `one`"), "{text}");
    assert!(text.contains("would add schedule `flow`"), "{text}");
    assert!(text.contains("would remove schedule `old`"), "{text}");
    assert_eq!(list(&q).len(), 1, "a dry run changes nothing");
    let out = run(&["schedule", "sync", "--queue", &q, "-f", f]);
    let text = &out.code(0).stdout;
    assert!(
        text.contains("added schedule `one`") && text.contains("added schedule `flow`"),
        "{text}"
    );
    assert!(text.contains("kept schedule `old`"), "{text}");
    let again = run(&["schedule", "sync", "--queue", &q, "-f", f, "--prune"]);
    let text = &again.code(0).stdout;
    assert!(text.contains("unchanged schedule `one`"), "{text}");
    assert!(text.contains("removed schedule `old`"), "{text}");
    let all = list(&q);
    let names: Vec<&str> = all.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["flow", "one"]);
    assert_eq!(all[0]["tasks"], serde_json::json!(["noop", "noop"]));
    assert_eq!(all[0]["catch_up_max"], 3);
    // A workflow fires linked: the second job is after the first.
    let ids = run(&["schedule", "run", "flow", "--queue", &q]);
    let ids: Vec<String> = ids.code(0).stdout.lines().map(str::to_string).collect();
    assert_eq!(ids.len(), 2);
    let second = run(&["status", "--queue", &q, "--job", &ids[1], "--json"]);
    let v: serde_json::Value = serde_json::from_str(&second.code(0).stdout).unwrap();
    assert_eq!(v["after"][0]["id"].to_string(), ids[0]);
    assert_eq!(v["state"], "blocked");
}

#[test]
fn a_worker_fires_due_ticks_and_tells_them_in_its_events() {
    let d = Dir::new();
    let q = queue(&d);
    run(&[
        "schedule", "add", "tick", "--queue", &q, "--every", "1s", "noop",
    ])
    .code(0);
    let ev = d.path("events.jsonl");
    let mut worker = background(&["worker", "--queue", &q, "--events", ev.to_str().unwrap()]);
    wait_until(Duration::from_secs(30), "two ticks fired", || {
        list(&q)[0]["fired"].as_u64().unwrap() >= 2
    });
    signal(&worker.child, "TERM");
    assert_eq!(wait_exit(&mut worker.child, Duration::from_secs(30)), 0);
    let all = events(&std::fs::read_to_string(&ev).unwrap());
    let fired: Vec<&serde_json::Value> = all.iter().filter(|e| e["type"] == "fired").collect();
    assert!(fired.len() >= 2, "{all:?}");
    let job = &fired[0]["data"]["jobs"][0];
    // The job's own events carry the schedule and the tick.
    let running = all
        .iter()
        .find(|e| e["type"] == "running" && e["data"]["job"] == *job)
        .expect("its attempt ran");
    assert_eq!(running["data"]["schedule"], "tick");
    assert_eq!(running["data"]["tick"], fired[0]["data"]["tick"]);
}

#[test]
fn a_worker_with_no_schedules_fires_none() {
    let d = Dir::new();
    let q = queue(&d);
    run(&[
        "schedule", "add", "tick", "--queue", &q, "--every", "1s", "noop",
    ])
    .code(0);
    // Ran to a job of its own, then a few ticks later: none fired.
    run(&["submit", "--queue", &q, "sleep:duration=2500ms"]).code(0);
    let worker = background(&["worker", "--queue", &q, "--no-schedules", "-q"]);
    wait_until(Duration::from_secs(30), "the submitted job to end", || {
        let s = run(&["status", "--queue", &q, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap_or_default();
        v["counts"]["succeeded"] == 1
    });
    drop(worker);
    assert_eq!(list(&q)[0]["fired"], 0);
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let d = Dir::new();
    let q = queue(&d);
    let refused = |args: &[&str], says: &[&str]| {
        let mut all = vec!["schedule"];
        all.extend(args);
        let out = run_in(Some(d.dir.path()), &all);
        out.code(2);
        for s in says {
            assert!(out.stderr.contains(s), "{args:?}: {}", out.stderr);
        }
    };
    refused(
        &["add", "x", "--every", "1s", "noop"],
        &["schedules live in a queue: give --queue sqlite://FILE or a PostgreSQL URL"],
    );
    refused(
        &["list", "--queue", "memory"],
        &["schedules live in a queue"],
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "1s", "noop*3"],
        &["`*COUNT` is not for a schedule"],
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "500ms", "noop"],
        &["--every", "at most once a second", "e.g."],
    );
    refused(
        &["add", "bad name", "--queue", &q, "--every", "1s", "noop"],
        &["schedule name", "nightly-report"],
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "1s", "nosuch"],
        &["unknown task `nosuch`"],
    );
    refused(&["add", "x", "--queue", &q, "noop"], &["--cron", "--every"]);
    refused(
        &["add", "x", "--queue", &q, "--cron", "61 * * * *", "noop"],
        &["--cron", "minute", "e.g. \"0 3 * * *\""],
    );
    refused(
        &["add", "x", "--queue", &q, "--cron", "@reboot", "noop"],
        &["@reboot has no tick"],
    );
    refused(
        &[
            "add",
            "x",
            "--queue",
            &q,
            "--cron",
            "@daily",
            "--tz",
            "Mars/Base",
            "noop",
        ],
        &["--tz", "not an IANA zone", "Europe/Berlin"],
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "1s"],
        &["a job", "-f FILE"],
    );
    refused(
        &[
            "add",
            "x",
            "--queue",
            &q,
            "--every",
            "1s",
            "--catch-up",
            "most",
            "noop",
        ],
        &["--catch-up", "`none`", "`latest`", "`all`"],
    );
    refused(
        &[
            "add",
            "x",
            "--queue",
            &q,
            "--every",
            "1s",
            "--overlap",
            "never",
            "noop",
        ],
        &["--overlap", "`allow`", "`skip`"],
    );
    d.write("count.toml", "[[job]]\ntask = \"noop\"\ncount = 3\n");
    refused(
        &[
            "add",
            "x",
            "--queue",
            &q,
            "--every",
            "1s",
            "-f",
            "count.toml",
        ],
        &["count.toml:3:9", "`count` is not for a schedule"],
    );
    d.write(
        "at.toml",
        "[[job]]\ntask = \"noop\"\nrun_at = \"2030-01-01T00:00:00Z\"\n",
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "1s", "-f", "at.toml"],
        &["at.toml:3:10", "`run_at` is not for a schedule"],
    );
    d.write(
        "two.toml",
        "[[job]]\ntask = \"noop\"\n\n[[job]]\ntask = \"noop\"\n",
    );
    refused(
        &["add", "x", "--queue", &q, "--every", "1s", "-f", "two.toml"],
        &["one workflow", "not all linked"],
    );
    d.write("id.toml", "[[job]]\ntask = \"noop\"\nafter = [7]\n");
    refused(
        &["add", "x", "--queue", &q, "--every", "1s", "-f", "id.toml"],
        &["id.toml:3:10", "its own submission"],
    );
    for (key, value) in [
        ("count", "2"),
        ("after", "[\"a\"]"),
        ("run_at", "\"2030-01-01T00:00:00Z\""),
    ] {
        d.write(
            "s.toml",
            &format!(
                "[[schedule]]\nname = \"a\"\nevery = \"1s\"\ntask = \"noop\"\n{key} = {value}\n"
            ),
        );
        let at = format!("s.toml:5:{}", key.len() + 4);
        refused(
            &["sync", "--queue", &q, "-f", "s.toml"],
            &[&at, &format!("`{key}` is not for a schedule")],
        );
    }
    d.write(
        "s.toml",
        "[[schedule]]\nname = \"a\"\nevery = \"1s\"\ntask = \"noop\"\ncatch_up = \"most\"\n",
    );
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:5:12", "`catch_up`", "`latest`"],
    );
    d.write("s.toml", "[[schedule]]\nname = \"a\"\nevery = \"1s\"\ntask = \"noop\"\n\n[[schedule]]\nname = \"a\"\nevery = \"2s\"\ntask = \"noop\"\n");
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:7:8", "given twice"],
    );
    d.write("s.toml", "[[schedule]]\nname = \"a\"\ncron = \"0 3 * * *\"\ntz = \"Nowhere/City\"\ntask = \"noop\"\n");
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:4:6", "not an IANA zone"],
    );
    d.write("s.toml", "[[schedule]]\nname = \"a\"\nevery = \"1s\"\n");
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:1:1", "`task`", "`file"],
    );
    d.write(
        "s.toml",
        "[[schedule]]\nname = \"a\"\nevery = \"1s\"\ntask = \"noop\"\nbogus = 1\n",
    );
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:5:1", "unknown key `bogus`", "`misfire_grace`"],
    );
    d.write("s.toml", "[[schedules]]\nname = \"a\"\n");
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:1:", "[[schedule]] tables"],
    );
    // A good entry before a bad one: nothing of the file was written.
    d.write("s.toml", "[[schedule]]\nname = \"good\"\nevery = \"1s\"\ntask = \"noop\"\n\n[[schedule]]\nname = \"bad\"\nevery = \"1s\"\ntask = \"nosuch\"\n");
    refused(
        &["sync", "--queue", &q, "-f", "s.toml"],
        &["s.toml:9:8", "unknown task `nosuch`"],
    );
    assert!(!d.path("q.db").exists(), "no state file was created");
}
