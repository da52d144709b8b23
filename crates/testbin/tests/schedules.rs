//! Schedules fired by real worker processes: on PostgreSQL, three workers
//! and an every-second schedule while one worker is SIGKILLed and another
//! SIGSTOPped (one job per tick, none missed); catch-up after every worker
//! was down, for each policy; `overlap = "skip"` with a job longer than the
//! interval; and the same on an SQLite state file with one worker, killed
//! and restarted.
//!
//! What happened is read from the queue (each job's schedule and tick, its
//! attempts' records, the schedule's counters) and from the workers' event
//! files (a `fired` event's `at` is the queue's clock when the tick was
//! settled: a tick older than the grace then was caught up). Every wait is
//! for a condition, with a deadline.

mod common;
mod pg;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg::*;
use runyard::queue::{ListFilter, Queue};
use runyard::report::JobView;
use runyard::schedule::{ScheduleInfo, Spec};
use runyard::{JobState, Timestamp};

const SECOND: i64 = 1_000_000;

/// The misfire grace of the catch-up schedules, and so the test's line
/// between a tick fired on time and one caught up: several intervals of
/// their every-second schedules, so that a worker of a loaded machine
/// that fires a tick late does not make it a catch-up; the workers are
/// kept down for longer than the grace and five ticks more.
const GRACE: i64 = 5 * SECOND;
const GRACE_FLAG: &str = "5s";

/// A queue to look at from the test: the one the workers share.
struct Look {
    queue: Arc<dyn Queue>,
}

impl Look {
    fn pg(q: &TestQueue) -> Look {
        Look {
            queue: Arc::new(runyard::postgres::PgQueue::connect(&q.url).unwrap()),
        }
    }

    fn sqlite(path: &Path) -> Look {
        let q = runyard::sqlite::SqliteQueue::open(path, runyard::sqlite::OpenMode::Existing);
        Look {
            queue: Arc::new(q.unwrap()),
        }
    }

    /// The jobs schedule `name` made, by tick.
    fn jobs(&self, name: &str) -> Vec<JobView> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .queue
                .inspect()
                .unwrap()
                .list(&ListFilter {
                    after,
                    limit: 500,
                    ..ListFilter::default()
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            out.extend(
                page.into_iter()
                    .filter(|v| v.schedule.as_ref().is_some_and(|t| t.schedule == name)),
            );
        }
        out.sort_by_key(tick_of);
        out
    }

    fn info(&self, name: &str) -> ScheduleInfo {
        self.queue
            .schedules()
            .unwrap()
            .schedule(name)
            .unwrap()
            .unwrap()
    }

    /// Waits until schedule `name` has made at least `n` jobs.
    fn wait_jobs(&self, name: &str, n: usize, limit: Duration) {
        wait_until(limit, &format!("{n} jobs of schedule {name}"), || {
            std::thread::sleep(Duration::from_millis(50));
            self.jobs(name).len() >= n
        });
    }

    /// Waits until every job of schedule `name` has succeeded.
    fn wait_all_succeeded(&self, name: &str, limit: Duration) {
        wait_until(limit, &format!("every job of {name} to succeed"), || {
            std::thread::sleep(Duration::from_millis(50));
            let jobs = self.jobs(name);
            assert!(
                jobs.iter().all(|v| v.state != JobState::Dead),
                "no job dies"
            );
            jobs.iter().all(|v| v.state == JobState::Succeeded)
        });
    }

    /// Waits until schedule `name` has settled every tick up to `t`.
    fn wait_settled(&self, name: &str, t: i64, limit: Duration) {
        wait_until(
            limit,
            &format!("schedule {name} to settle its ticks"),
            || {
                std::thread::sleep(Duration::from_millis(50));
                self.info(name).last_tick.as_micros() >= t
            },
        );
    }
}

fn tick_of(v: &JobView) -> i64 {
    v.schedule.as_ref().unwrap().tick.as_micros()
}

fn now_us() -> i64 {
    Timestamp::now().as_micros()
}

/// The anchor of an `every` schedule.
fn anchor(info: &ScheduleInfo) -> i64 {
    match &info.def.spec {
        Spec::Every { anchor, .. } => anchor.as_micros(),
        other => panic!("not an interval: {other:?}"),
    }
}

/// Asserts that `ticks` (sorted) are one interval apart: none twice, none
/// skipped between the first and the last.
fn assert_consecutive(ticks: &[i64], every: i64) {
    for w in ticks.windows(2) {
        assert_eq!(
            w[1] - w[0],
            every,
            "ticks one interval apart, none twice, none missed: {ticks:?}"
        );
    }
}

/// A `fired` event of a worker's event file: its schedule, tick, and the
/// queue's clock when it was settled.
#[derive(Debug)]
struct Fired {
    schedule: String,
    tick: i64,
    at: i64,
}

fn ts(v: &serde_json::Value) -> i64 {
    serde_json::from_value::<Timestamp>(v.clone())
        .unwrap()
        .as_micros()
}

/// The `fired` events in `file`, and the `missed` counts per schedule.
fn fired_events(file: &Path) -> (Vec<Fired>, std::collections::BTreeMap<String, u64>) {
    let mut fired = Vec::new();
    let mut missed = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let d = &v["data"];
        match v["type"].as_str().unwrap() {
            "fired" => fired.push(Fired {
                schedule: d["schedule"].as_str().unwrap().to_string(),
                tick: ts(&d["tick"]),
                at: ts(&d["at"]),
            }),
            "missed" => {
                *missed
                    .entry(d["schedule"].as_str().unwrap().to_string())
                    .or_insert(0) += d["count"].as_u64().unwrap()
            }
            _ => {}
        }
    }
    (fired, missed)
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The attempts of `jobs` as (start, end) in µs, by start.
fn spans(jobs: &[JobView]) -> Vec<(i64, i64, u64)> {
    let mut s: Vec<(i64, i64, u64)> = jobs
        .iter()
        .flat_map(|v| {
            v.attempts.iter().map(move |a| {
                let start = a.started_at.as_micros();
                (start, start + a.duration().as_micros() as i64, v.id.0)
            })
        })
        .collect();
    s.sort();
    s
}

// ------------------------------------------------------------------ PostgreSQL

#[test]
fn three_workers_fire_each_tick_once_while_one_is_killed_and_one_stopped() {
    let q = TestQueue::new("sched_three");
    let d = dir();
    ok(q.cli(&["schedule", "add", "tick", "--every", "1s", "nap:ms=20"]));
    let look = Look::pg(&q);
    let mut workers = q.workers(d.path(), 3, &["-j", "4", "--lease", "2s"]);
    look.wait_jobs("tick", 2, Duration::from_secs(30));
    signal(&workers[0].0, libc::SIGKILL);
    workers[0].0.wait().unwrap();
    look.wait_jobs("tick", 4, Duration::from_secs(30));
    signal(&workers[1].0, libc::SIGSTOP);
    look.wait_jobs("tick", 7, Duration::from_secs(30));
    signal(&workers[1].0, libc::SIGCONT);
    look.wait_jobs("tick", 9, Duration::from_secs(30));
    ok(q.cli(&["schedule", "pause", "tick"]));
    look.wait_all_succeeded("tick", Duration::from_secs(60));
    let _killed = workers.remove(0);
    stop_all(workers);
    let info = look.info("tick");
    let jobs = look.jobs("tick");
    let ticks: Vec<i64> = jobs.iter().map(tick_of).collect();
    assert!(ticks.len() >= 9, "{ticks:?}");
    // From the first tick after the schedule was added, every tick made
    // exactly one job: one interval apart, none twice, none missed while a
    // worker was alive.
    assert_eq!(ticks[0], anchor(&info) + SECOND, "the first tick fired");
    assert_consecutive(&ticks, SECOND);
    assert_eq!((info.missed, info.skipped), (0, 0), "{info:?}");
    assert_eq!(info.fired, ticks.len() as u64);
    let mut db = q.db();
    assert_each_success_recorded_once(&q, &mut db);
}

#[test]
fn missed_ticks_follow_each_catch_up_policy_after_every_worker_was_down() {
    let q = TestQueue::new("sched_catch_up");
    let d = dir();
    for (name, policy) in [
        ("none", &["--catch-up", "none"][..]),
        ("latest", &["--catch-up", "latest"][..]),
        ("all", &["--catch-up", "all", "--catch-up-max", "2"][..]),
    ] {
        let mut args = vec!["schedule", "add", name, "--every", "1s"];
        args.extend(["--misfire-grace", GRACE_FLAG]);
        args.extend(policy);
        args.push("nap:ms=5");
        ok(q.cli(&args));
    }
    let look = Look::pg(&q);
    let names = ["none", "latest", "all"];
    let workers = q.workers(d.path(), 2, &["-j", "4", "--lease", "2s"]);
    for n in names {
        look.wait_jobs(n, 2, Duration::from_secs(30));
    }
    stop_all(workers);
    // Every worker is down for the grace and about five ticks more: those
    // five are older than the grace at the restart.
    let before: Vec<(i64, usize, u64)> = names
        .iter()
        .map(|n| {
            let i = look.info(n);
            (i.last_tick.as_micros(), look.jobs(n).len(), i.missed)
        })
        .collect();
    let down_until = before.iter().map(|b| b.0).max().unwrap() + GRACE + 5 * SECOND + SECOND / 2;
    wait_until(
        Duration::from_secs(30),
        "the grace and five ticks to pass",
        || {
            std::thread::sleep(Duration::from_millis(20));
            now_us() >= down_until
        },
    );
    let events = d.path().join("events.jsonl");
    let log = d.path().join("back.log");
    let back = q.worker(
        "back",
        &[
            "-j",
            "4",
            "--lease",
            "2s",
            "--events",
            events.to_str().unwrap(),
        ],
        &log,
    );
    let restarted = now_us();
    for n in names {
        look.wait_settled(n, restarted + 2 * SECOND, Duration::from_secs(30));
        look.wait_all_succeeded(n, Duration::from_secs(30));
    }
    stop(back, Duration::from_secs(30), &log);
    let (fired, missed) = fired_events(&events);
    for (n, (last_before, jobs_before, missed_before)) in names.iter().zip(&before) {
        let info = look.info(n);
        let jobs = look.jobs(n);
        let ticks: Vec<i64> = jobs.iter().map(tick_of).collect();
        let mut sorted = ticks.clone();
        sorted.dedup();
        assert_eq!(sorted, ticks, "{n}: no tick twice");
        // Fired after the restart more than a grace after its time: caught
        // up.
        let late: Vec<&Fired> = fired
            .iter()
            .filter(|f| f.schedule == *n && f.at - f.tick > GRACE)
            .collect();
        let want = match *n {
            "none" => 0,
            "latest" => 1,
            _ => 2,
        };
        assert_eq!(late.len(), want, "{n}: caught-up ticks {late:?}");
        // Every tick of the gap is settled once: fired, or counted missed.
        let after: Vec<i64> = ticks.iter().copied().filter(|t| t > last_before).collect();
        assert_eq!(jobs.len() - jobs_before, after.len());
        let gap = (info.last_tick.as_micros() - last_before) / SECOND;
        let missed_now = info.missed - missed_before;
        assert_eq!(
            after.len() as u64 + missed_now,
            gap as u64,
            "{n}: {after:?}, {info:?}"
        );
        assert!(missed_now >= 2, "{n}: ticks were missed: {info:?}");
        assert_eq!(missed.get(*n).copied().unwrap_or(0), missed_now, "{n}");
    }
}

#[test]
fn a_schedule_that_skips_overlaps_never_runs_two_of_its_jobs_at_once() {
    let q = TestQueue::new("sched_skip");
    let d = dir();
    ok(q.cli(&[
        "schedule",
        "add",
        "slow",
        "--every",
        "1s",
        "--overlap",
        "skip",
        "nap:ms=2500",
    ]));
    let look = Look::pg(&q);
    let workers = q.workers(d.path(), 2, &["-j", "4", "--lease", "5s"]);
    look.wait_jobs("slow", 3, Duration::from_secs(60));
    ok(q.cli(&["schedule", "pause", "slow"]));
    look.wait_all_succeeded("slow", Duration::from_secs(60));
    stop_all(workers);
    let info = look.info("slow");
    let jobs = look.jobs("slow");
    let s = spans(&jobs);
    assert_eq!(s.len(), jobs.len(), "one attempt each: {s:?}");
    for w in s.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "job {} started before job {} ended: {s:?}",
            w[1].2,
            w[0].2
        );
    }
    // A job of 2.5 s on a 1 s interval: the ticks while it ran were skipped.
    assert!(
        info.skipped >= 2 * (jobs.len() as u64 - 1),
        "skipped ticks are counted: {info:?}"
    );
    assert_eq!(info.fired, jobs.len() as u64);
    assert_eq!(info.missed, 0, "{info:?}");
}

// ------------------------------------------------------------------ SQLite

/// `runyard worker` on the state file, with its events in `events`.
fn sqlite_worker(state: &Path, events: &Path, log: &Path) -> Child {
    runyard()
        .args(["worker", "-q", "--queue"])
        .arg(format!("sqlite://{}", state.display()))
        .args(["-j", "4", "--lease", "2s", "--events"])
        .arg(events)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn on_a_state_file_one_worker_fires_each_tick_once_across_a_kill_and_catches_up() {
    let d = dir();
    let state = d.path().join("state.db");
    let url = format!("sqlite://{}", state.display());
    let cli = |args: &[&str]| {
        finish({
            let mut c = runyard();
            c.args(args).args(["--queue", &url]);
            c
        })
    };
    ok(cli(&[
        "schedule",
        "add",
        "tick",
        "--every",
        "1s",
        "nap:ms=10",
    ]));
    ok(cli(&[
        "schedule",
        "add",
        "late",
        "--every",
        "1s",
        "--misfire-grace",
        GRACE_FLAG,
        "--catch-up",
        "latest",
        "nap:ms=10",
    ]));
    let look = Look::sqlite(&state);
    let (ev1, log1) = (d.path().join("ev1.jsonl"), d.path().join("w1.log"));
    let mut w = sqlite_worker(&state, &ev1, &log1);
    look.wait_jobs("tick", 3, Duration::from_secs(30));
    signal(&w, libc::SIGKILL);
    w.wait().unwrap();
    // Restarted at once: the ticks it was down for are within the grace.
    let (ev2, log2) = (d.path().join("ev2.jsonl"), d.path().join("w2.log"));
    let w = sqlite_worker(&state, &ev2, &log2);
    let n = look.jobs("tick").len();
    look.wait_jobs("tick", n + 3, Duration::from_secs(30));
    stop(w, Duration::from_secs(30), &log2);
    // Down for the grace and about five ticks more: `late` misses some and
    // catches up the latest.
    let (last_before, missed_before) = {
        let i = look.info("late");
        (i.last_tick.as_micros(), i.missed)
    };
    let down_until = last_before + GRACE + 5 * SECOND + SECOND / 2;
    wait_until(
        Duration::from_secs(30),
        "the grace and five ticks to pass",
        || {
            std::thread::sleep(Duration::from_millis(20));
            now_us() >= down_until
        },
    );
    let (ev3, log3) = (d.path().join("ev3.jsonl"), d.path().join("w3.log"));
    let w = sqlite_worker(&state, &ev3, &log3);
    let restarted = now_us();
    look.wait_settled("late", restarted + 2 * SECOND, Duration::from_secs(30));
    look.wait_settled("tick", restarted + 2 * SECOND, Duration::from_secs(30));
    ok(cli(&["schedule", "pause", "tick"]));
    ok(cli(&["schedule", "pause", "late"]));
    look.wait_all_succeeded("tick", Duration::from_secs(30));
    look.wait_all_succeeded("late", Duration::from_secs(30));
    stop(w, Duration::from_secs(30), &log3);

    // `tick` (a grace of a minute): every tick once, none missed, through
    // the kill and the stop.
    let info = look.info("tick");
    let ticks: Vec<i64> = look.jobs("tick").iter().map(tick_of).collect();
    assert_eq!(ticks[0], anchor(&info) + SECOND, "the first tick fired");
    assert_consecutive(&ticks, SECOND);
    assert_eq!(info.missed, 0, "{info:?}");
    assert_eq!(info.fired, ticks.len() as u64);

    // `late`: once each; after the stop, one missed tick caught up, the
    // others counted missed.
    let info = look.info("late");
    let jobs = look.jobs("late");
    let mut ticks: Vec<i64> = jobs.iter().map(tick_of).collect();
    let all = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), all, "no tick twice: {ticks:?}");
    let (fired, missed) = fired_events(&ev3);
    let late: Vec<&Fired> = fired
        .iter()
        .filter(|f| f.schedule == "late" && f.at - f.tick > GRACE)
        .collect();
    assert_eq!(
        late.len(),
        1,
        "the latest missed tick is caught up: {late:?}"
    );
    assert!(late[0].tick > last_before);
    assert!(info.missed - missed_before >= 2, "{info:?}");
    assert_eq!(
        missed.get("late").copied(),
        Some(info.missed - missed_before)
    );
    // The restarted worker's events name the ticks of the jobs it made
    // (to the millisecond, as events write times).
    let ms = |t: i64| t - t.rem_euclid(1000);
    let from_events: Vec<i64> = fired
        .iter()
        .filter(|f| f.schedule == "late")
        .map(|f| f.tick)
        .collect();
    let made: Vec<i64> = ticks
        .iter()
        .filter(|t| **t > last_before)
        .map(|t| ms(*t))
        .collect();
    assert_eq!(from_events, made, "one fired event per tick fired");
}
