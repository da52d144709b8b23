//! Schedules in the SQLite queue: the schedule conformance suite (with
//! several handles on one file, as several worker processes would have),
//! what only a state file shows (a tick whose job was deleted from the
//! file stays settled), and a schema 5 file gaining schedules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{JobId, JobState, Policy, Spec, Timestamp};
use runyard_queue::conformance::job;
use runyard_queue::{Clock, Inspect, ManualClock, Put, Queue, QueueErrorKind, ScheduleDef};
use runyard_sqlite::{OpenMode, SqliteQueue, SCHEMA_VERSION};

/// A new file under target/tmp, kept for as long as the test process
/// lives (its queues need it).
fn new_file() -> PathBuf {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("queue.db");
    std::mem::forget(dir);
    path
}

fn fresh(clock: Arc<dyn Clock>) -> Box<dyn Queue> {
    Box::new(SqliteQueue::open_with_clock(&new_file(), OpenMode::CreateOrOpen, clock).unwrap())
}

/// `n` handles on one new file.
fn handles(clock: Arc<dyn Clock>, n: usize) -> Vec<Box<dyn Queue>> {
    let path = new_file();
    (0..n)
        .map(|_| {
            Box::new(
                SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock.clone()).unwrap(),
            ) as Box<dyn Queue>
        })
        .collect()
}

runyard_queue::schedule_conformance_tests!(fresh, handles);

const START: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

fn every(s: u64) -> ScheduleDef {
    ScheduleDef {
        name: "s".into(),
        spec: Spec::every(Duration::from_secs(s), START).unwrap(),
        policy: Policy::default(),
        jobs: vec![job("t", 1, 0)],
    }
}

#[test]
fn a_tick_stays_settled_when_its_job_is_deleted_from_the_file() {
    let path = new_file();
    let clock = Arc::new(ManualClock::new(START));
    let q = SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock.clone()).unwrap();
    let s = q.schedules().unwrap();
    s.put_schedule(&every(10)).unwrap();
    clock.advance(Duration::from_secs(10));
    let id = s.fire_due().unwrap().fired[0].jobs[0];
    // What a prune of old jobs does: the row is gone.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        c.execute("DELETE FROM runyard_jobs WHERE id = ?1", [id.0 as i64])
            .unwrap(),
        1
    );
    assert!(q.get(id).unwrap().is_none());
    let r = s.fire_due().unwrap();
    assert!(r.fired.is_empty(), "the tick does not fire again: {r:?}");
    let i = s.schedule("s").unwrap().unwrap();
    assert_eq!(
        i.last_fire,
        Some((START.saturating_add(Duration::from_secs(10)), id))
    );
    assert_eq!(i.last_state, None, "its job is no longer in the queue");
    assert_eq!(q.counts().unwrap().total(), 0);
    // A later tick fires as usual.
    clock.advance(Duration::from_secs(10));
    assert_eq!(s.fire_due().unwrap().fired.len(), 1);
}

#[test]
fn a_schedule_survives_reopening_and_fires_from_another_handle() {
    let path = new_file();
    let clock = Arc::new(ManualClock::new(START));
    {
        let q = SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock.clone()).unwrap();
        assert_eq!(
            q.schedules().unwrap().put_schedule(&every(10)).unwrap(),
            Put::Added
        );
    }
    clock.advance(Duration::from_secs(25));
    let q = SqliteQueue::open_with_clock(&path, OpenMode::Existing, clock.clone()).unwrap();
    let r = q.schedules().unwrap().fire_due().unwrap();
    let ticks: Vec<Timestamp> = r.fired.iter().map(|f| f.tick).collect();
    assert_eq!(
        ticks,
        vec![
            START.saturating_add(Duration::from_secs(10)),
            START.saturating_add(Duration::from_secs(20))
        ],
        "the anchor and the last tick were stored"
    );
}

/// A state file as schema 5 wrote it, with one queued job.
fn version_5_file(p: &Path) {
    let c = rusqlite::Connection::open(p).unwrap();
    for m in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
        include_str!("../migrations/0005_flow.sql"),
    ] {
        c.execute_batch(m).unwrap();
    }
    c.execute_batch(
        "INSERT INTO runyard_meta (key, value) VALUES ('schema_version', '5');
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, tag)
         VALUES ('old', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0, 1);",
    )
    .unwrap();
}

fn version_of(p: &Path) -> String {
    rusqlite::Connection::open(p)
        .unwrap()
        .query_row(
            "SELECT value FROM runyard_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_version_5_file_is_read_as_it_is_then_gains_schedules() {
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = d.path().join("v5.db");
    version_5_file(&p);
    {
        let q = SqliteQueue::open(&p, OpenMode::Inspect).unwrap();
        let v = q.get(JobId(1)).unwrap().unwrap();
        assert_eq!((v.state, v.schedule), (JobState::Queued, None));
        let s = q.schedules().unwrap();
        assert!(s.list_schedules().unwrap().is_empty());
        assert!(s.fire_due().unwrap().fired.is_empty());
        let e = s.put_schedule(&every(10)).unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::ReadOnly, "{e}");
        assert_eq!(version_of(&p), "5", "inspecting migrates nothing");
    }
    let clock = Arc::new(ManualClock::new(START));
    let q = SqliteQueue::open_with_clock(&p, OpenMode::Existing, clock.clone()).unwrap();
    assert_eq!(version_of(&p), SCHEMA_VERSION.to_string(), "migrated");
    assert_eq!(SCHEMA_VERSION, 11);
    assert_eq!(q.get(JobId(1)).unwrap().unwrap().schedule, None, "kept");
    q.schedules().unwrap().put_schedule(&every(10)).unwrap();
    clock.advance(Duration::from_secs(10));
    let r = q.schedules().unwrap().fire_due().unwrap();
    assert_eq!(r.fired.len(), 1);
    let c = q.claim("w", 10, Duration::from_secs(30)).unwrap();
    let marks: Vec<_> = c.iter().map(|c| c.schedule.is_some()).collect();
    assert_eq!(
        marks,
        vec![false, true],
        "the old job first, then the tick's"
    );
}

#[test]
fn a_damaged_schedule_is_an_error_naming_it_and_the_others_still_fire() {
    let path = new_file();
    let clock = Arc::new(ManualClock::new(START));
    let q = SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock.clone()).unwrap();
    let s = q.schedules().unwrap();
    let mut bad = every(10);
    bad.name = "a-damaged".into();
    s.put_schedule(&bad).unwrap();
    s.put_schedule(&every(10)).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute(
        "UPDATE runyard_schedules SET jobs = '{\"v\":1,\"jobs\":[{' WHERE name = 'a-damaged'",
        [],
    )
    .unwrap();
    clock.advance(Duration::from_secs(10));
    let e = s.fire_due().unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::Corrupt, "{e}");
    assert!(e.to_string().contains("a-damaged"), "{e}");
    assert_eq!(q.counts().unwrap().total(), 1, "the other schedule fired");
    assert_eq!(s.schedule("s").unwrap().unwrap().fired, 1);
    let e = s.schedule("a-damaged").unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::Corrupt, "{e}");
    // Removed, it is in the way no more.
    assert!(s.remove_schedule("a-damaged").unwrap());
    clock.advance(Duration::from_secs(10));
    assert_eq!(s.fire_due().unwrap().fired.len(), 1);
}
