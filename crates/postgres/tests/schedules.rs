//! Schedules on PostgreSQL beyond the conformance suite: handles on other
//! connections (workers on other machines) firing at the same moment, a
//! worker stopped inside a firing transaction, the database's clock, and
//! a queue upgraded from schema version 5.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use runyard_core::{JobState, OnConflict, Policy, Spec, Tick, Timestamp, Unique};
use runyard_postgres::{OpenMode, PgOptions, PgQueue, SCHEMA_VERSION};
use runyard_queue::conformance::job;
use runyard_queue::{
    Clock, Inspect, ListFilter, ManualClock, NewJob, Put, Queue, ScheduleDef, Schedules,
    SystemClock,
};

fn url(name: &str) -> String {
    runyard_postgres::testing::server().fresh_url(name)
}

fn schema_of(url: &str) -> String {
    url.rsplit_once("schema=").unwrap().1.to_string()
}

fn client() -> Client {
    Client::connect(runyard_postgres::testing::server().url(), NoTls).unwrap()
}

/// A handle whose schedules tick on `clock`.
fn on_clock(u: &str, clock: Arc<dyn Clock>) -> PgQueue {
    let opts = PgOptions::from_url(u)
        .unwrap()
        .schedules_on_queue_clock(true);
    PgQueue::open(opts, clock).unwrap()
}

fn start() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000)
}

fn every(secs: u64) -> Spec {
    Spec::every(Duration::from_secs(secs), Timestamp::EPOCH).unwrap()
}

fn def(name: &str, spec: Spec) -> ScheduleDef {
    ScheduleDef {
        name: name.to_string(),
        spec,
        policy: Policy::default(),
        jobs: vec![job("report", 1, 0)],
    }
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The jobs of the queue by their schedule's tick, how many each.
fn jobs_per_tick(q: &PgQueue) -> BTreeMap<Timestamp, usize> {
    let mut by = BTreeMap::new();
    for v in q.list(&ListFilter::default()).unwrap() {
        let t = v.schedule.expect("every job here came from the schedule");
        *by.entry(t.tick).or_default() += 1;
    }
    by
}

#[test]
fn a_tick_fires_once_and_its_job_carries_the_mark_in_claims_and_views() {
    let u = url("sched_once");
    let clock = Arc::new(ManualClock::new(start()));
    let q = on_clock(&u, clock.clone());
    assert_eq!(q.put_schedule(&def("s", every(10))).unwrap(), Put::Added);
    let info = q.schedule("s").unwrap().unwrap();
    assert_eq!(info.last_tick, start(), "added at the queue's now");
    let tick = start() + Duration::from_secs(10);
    assert_eq!(
        info.next_tick,
        Some(tick),
        "anchored at the time it was added"
    );
    assert!(
        q.fire_due().unwrap().fired.is_empty(),
        "nothing before the tick"
    );

    clock.advance(Duration::from_secs(10));
    let r = q.fire_due().unwrap();
    assert_eq!(r.fired.len(), 1);
    assert_eq!((r.fired[0].tick, r.now), (tick, tick));
    assert_eq!(r.next, Some(tick + Duration::from_secs(10)));
    assert!(q.fire_due().unwrap().fired.is_empty(), "a tick fires once");

    let mark = Some(Tick {
        schedule: "s".to_string(),
        tick,
    });
    let id = r.fired[0].jobs[0];
    assert_eq!(q.get(id).unwrap().unwrap().schedule, mark);
    let got = q.claim("w", 10, Duration::from_secs(30)).expect("a claim");
    assert_eq!((got.len(), got[0].id), (1, id));
    assert_eq!(got[0].schedule, mark);
    let info = q.schedule("s").unwrap().unwrap();
    assert_eq!(info.last_fire, Some((tick, id)));
    assert_eq!(
        info.last_state,
        Some(JobState::Queued),
        "claimed, not started"
    );
    assert_eq!((info.fired, info.skipped, info.missed), (1, 0, 0));

    // A job enqueued with a mark keeps it too.
    let mut marked = job("report", 1, 0);
    marked.schedule = Some(Tick {
        schedule: "elsewhere".to_string(),
        tick: start(),
    });
    let e = q.enqueue(vec![marked.clone(), job("plain", 1, 0)]).unwrap();
    assert_eq!(q.get(e[0].id()).unwrap().unwrap().schedule, marked.schedule);
    assert_eq!(q.get(e[1].id()).unwrap().unwrap().schedule, None);
}

/// A tick's job under a concurrency limit is claimed by the limited claim
/// (`claim_limited`), which returns its mark too, and the limit holds.
#[test]
fn a_limited_tick_job_is_claimed_with_its_mark_under_its_limit() {
    let u = url("sched_limited");
    let clock = Arc::new(ManualClock::new(start()));
    let q = on_clock(&u, clock.clone());
    let mut limited = job("report", 1, 0);
    limited.limits.task_concurrency = Some(1);
    let mut d = def("s", every(1));
    d.jobs = vec![limited];
    q.put_schedule(&d).unwrap();
    clock.advance(Duration::from_secs(2));
    let r = q.fire_due().unwrap();
    assert_eq!(r.fired.len(), 2, "two ticks within the grace");
    let got = q.claim("w", 10, Duration::from_secs(30)).unwrap();
    assert_eq!(got.len(), 1, "a concurrency of one");
    assert_eq!(
        got[0].schedule,
        Some(Tick {
            schedule: "s".into(),
            tick: start() + Duration::from_secs(1),
        })
    );
}

/// Two handles on connections of their own (workers on two machines)
/// calling `fire_due` at the same moment, tick after tick: each tick makes
/// one submission, whichever of them settles it.
#[test]
fn two_handles_firing_at_once_make_one_submission_per_tick() {
    let u = url("sched_race");
    let clock = Arc::new(ManualClock::new(start()));
    let a = Arc::new(on_clock(&u, clock.clone()));
    let b = Arc::new(on_clock(&u, clock.clone()));
    a.put_schedule(&def("s", every(1))).unwrap();
    const ROUNDS: usize = 40;
    let go = Arc::new(Barrier::new(3));
    let done = Arc::new(Barrier::new(3));
    let workers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|q| {
            let (go, done) = (go.clone(), done.clone());
            thread::spawn(move || {
                let mut fired = Vec::new();
                for _ in 0..ROUNDS {
                    go.wait();
                    fired.extend(q.fire_due().unwrap().fired);
                    done.wait();
                }
                fired
            })
        })
        .collect();
    for round in 0..ROUNDS {
        // Now and then two ticks at once.
        let step = if round % 5 == 4 { 2 } else { 1 };
        clock.advance(Duration::from_secs(step));
        go.wait();
        done.wait();
    }
    let fired: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let ticks: u64 = (0..ROUNDS).map(|r| if r % 5 == 4 { 2 } else { 1 }).sum();
    let mut reported: Vec<Timestamp> = fired.iter().map(|f| f.tick).collect();
    reported.sort();
    let expected: Vec<Timestamp> = (1..=ticks)
        .map(|k| start() + Duration::from_secs(k))
        .collect();
    assert_eq!(reported, expected, "each tick reported once, none left out");
    let per = jobs_per_tick(&a);
    assert_eq!(per.len(), expected.len());
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    let info = b.schedule("s").unwrap().unwrap();
    assert_eq!(info.fired, ticks);
    assert_eq!(info.last_tick, *expected.last().unwrap());
}

/// The same on the database's clock, as workers run in production: the
/// two handles' own clocks are far apart and play no part.
#[test]
fn handles_with_skewed_clocks_fire_on_the_databases_clock_once_per_tick() {
    let u = url("sched_db_clock");
    let opts = PgOptions::from_url(&u).unwrap();
    let behind = Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000)));
    let ahead = Arc::new(ManualClock::new(Timestamp::from_micros(
        4_000_000_000_000_000,
    )));
    let a = Arc::new(PgQueue::open(opts.clone(), behind).unwrap());
    let b = Arc::new(PgQueue::open(opts, ahead).unwrap());
    a.put_schedule(&def("s", every(1))).unwrap();
    let info = a.schedule("s").unwrap().unwrap();
    let wall = SystemClock.now();
    let apart = |x: Timestamp, y: Timestamp| x.max(y).as_micros() - x.min(y).as_micros();
    assert!(
        apart(info.last_tick, wall) < 600_000_000,
        "added at the database's time, not at either handle's: {:?} vs {wall:?}",
        info.last_tick
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|q| {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    q.fire_due().unwrap();
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(30), "three ticks fired", || {
        a.schedule("s").unwrap().unwrap().fired >= 3
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let info = a.schedule("s").unwrap().unwrap();
    let per = jobs_per_tick(&a);
    assert_eq!(per.len() as u64, info.fired);
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert_eq!(info.missed, 0);
}

/// A worker stopped while it holds a schedule's row inside a firing
/// transaction: the other workers pass over the schedule (they do not
/// wait), and once the server has ended the stopped worker's session for
/// sitting idle in its transaction, another handle fires the tick, once.
#[test]
fn a_worker_stopped_inside_a_firing_transaction_does_not_keep_others_from_firing() {
    let u = url("sched_stopped");
    let clock = Arc::new(ManualClock::new(start()));
    let q = on_clock(&u, clock.clone());
    q.put_schedule(&def("s", every(1))).unwrap();
    q.put_schedule(&def("other", every(1))).unwrap();
    clock.advance(Duration::from_secs(1));
    let opts = PgOptions::from_url(&u).unwrap();
    let mut stopped = runyard_postgres::testing::hold_schedule(&opts, "s");

    let r = q.fire_due().unwrap();
    let names: Vec<&str> = r.fired.iter().map(|f| f.schedule.as_str()).collect();
    assert_eq!(
        names,
        ["other"],
        "the held schedule is passed over, not waited for"
    );

    wait_until(Duration::from_secs(60), "the held schedule to fire", || {
        !q.fire_due().unwrap().fired.is_empty()
    });
    let info = q.schedule("s").unwrap().unwrap();
    assert_eq!(
        (info.fired, info.last_tick),
        (1, start() + Duration::from_secs(1))
    );
    assert!(
        stopped.simple_query("SELECT 1").is_err(),
        "the stopped worker's session was ended"
    );
    assert!(
        q.fire_due().unwrap().fired.is_empty(),
        "and the tick fired once"
    );
}

/// A tick whose job waits for a lock that another transaction holds (a
/// submitter stopped inside its transaction, holding the unique key the
/// job carries): the firing gives up within its lock timeout, without an
/// error and without settling the tick, and fires it once the lock is
/// free, through the unique key like any insert.
#[test]
fn a_tick_waiting_on_a_held_lock_stays_due_and_fires_once_it_is_free() {
    let u = url("sched_lock");
    let clock = Arc::new(ManualClock::new(start()));
    let q = on_clock(&u, clock.clone());
    let keyed = || NewJob {
        unique: Some(Unique {
            key: "nightly".into(),
            within: None,
            on_conflict: OnConflict::Skip,
        }),
        ..job("report", 1, 0)
    };
    let mut d = def("s", every(1));
    d.jobs = vec![keyed()];
    q.put_schedule(&d).unwrap();
    clock.advance(Duration::from_secs(1));
    let mut submitter = client();
    let mut tx = submitter.transaction().unwrap();
    let held = q.enqueue_in(&mut tx, &[keyed()]).unwrap()[0].id();

    let r = q.fire_due().unwrap();
    assert!(r.fired.is_empty(), "{r:?}");
    assert_eq!(q.schedule("s").unwrap().unwrap().fired, 0, "not settled");

    tx.commit().unwrap();
    let r = q.fire_due().unwrap();
    assert_eq!(r.fired.len(), 1);
    assert_eq!(r.fired[0].jobs, [held], "the waiting job holds the key");
    assert_eq!(q.counts().unwrap().total(), 1);
}

/// A queue at schema version 5 (flow control, no schedules) with a job in
/// it: read as it is when inspected (no schedules), and upgraded to 6 on
/// first use (to the latest version), its job kept and schedules working.
#[test]
fn a_schema_5_queue_is_upgraded_to_6_with_its_jobs() {
    let u = url("sched_v5");
    let s = schema_of(&u);
    let mut db = client();
    let migrations = [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
        include_str!("../migrations/0005_flow.sql"),
    ]
    .map(|m| runyard_queue::stored::render_states(m).replace("runyard.", &format!("\"{s}\".")))
    .join("\n");
    db.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\";
         CREATE TABLE \"{s}\".migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         {migrations}
         INSERT INTO \"{s}\".migrations (version) VALUES (1), (2), (3), (4), (5);
         INSERT INTO \"{s}\".jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, tag)
         VALUES ('t', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', false, 1);"
    ))
    .unwrap();
    let version = |db: &mut Client| -> i32 {
        db.query_one(&format!("SELECT MAX(version) FROM \"{s}\".migrations"), &[])
            .unwrap()
            .get(0)
    };
    let opts = PgOptions::from_url(&u).unwrap();
    let old = PgQueue::open(
        opts.clone().open_mode(OpenMode::Inspect),
        Arc::new(SystemClock),
    )
    .unwrap();
    let jobs = old.list(&ListFilter::default()).unwrap();
    assert_eq!((jobs.len(), jobs[0].schedule.clone()), (1, None));
    assert!(old.list_schedules().unwrap().is_empty());
    assert!(old.fire_due().unwrap().fired.is_empty());
    let e = old.put_schedule(&def("s", every(5))).unwrap_err();
    assert_eq!(e.kind(), runyard_queue::QueueErrorKind::ReadOnly, "{e}");
    assert_eq!(version(&mut db), 5, "inspecting upgraded nothing");

    let clock = Arc::new(ManualClock::new(start()));
    let q = PgQueue::open(opts.schedules_on_queue_clock(true), clock.clone()).unwrap();
    assert_eq!(version(&mut db), SCHEMA_VERSION);
    let jobs = q.list(&ListFilter::default()).unwrap();
    assert_eq!(
        (jobs.len(), jobs[0].state),
        (1, JobState::Queued),
        "its job kept"
    );
    q.put_schedule(&def("s", every(5))).unwrap();
    clock.advance(Duration::from_secs(5));
    let r = q.fire_due().unwrap();
    assert_eq!(r.fired.len(), 1);
    let got = q.claim("w", 10, Duration::from_secs(30)).unwrap();
    assert_eq!(got.len(), 2, "the old job and the tick's");
    let marks: Vec<_> = got.iter().map(|c| c.schedule.is_some()).collect();
    assert_eq!(marks.iter().filter(|m| **m).count(), 1);
}
