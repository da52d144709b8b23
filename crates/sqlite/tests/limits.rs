//! Flow control in the SQLite queue where one file is shared: two handles
//! on one file are what two worker processes see, and every limit, pause
//! and unique key holds across them, and keyless jobs keep their order
//! across them. Also the migration of a schema 4 file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    FlowKey, JobId, JobParams, LimitTarget, OnConflict, OutcomeKind, Rate, Timestamp, Unique,
};
use runyard_queue::conformance::{job, record};
use runyard_queue::LimitChange;
use runyard_queue::{
    Claimed, Clock, Completion, Enqueued, ManualClock, NewJob, Queue, Rescue, Verdict,
};
use runyard_sqlite::{OpenMode, SqliteQueue, SCHEMA_VERSION};

const LEASE: Duration = Duration::from_secs(30);

/// Two handles on one new file, on one manual clock.
fn two(dir: &Path) -> (Arc<ManualClock>, SqliteQueue, SqliteQueue) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_700_000_000_000_000,
    )));
    let p = dir.join("q.db");
    let a = SqliteQueue::open_with_clock(&p, OpenMode::CreateOrOpen, clock.clone()).unwrap();
    let b = SqliteQueue::open_with_clock(&p, OpenMode::Existing, clock.clone()).unwrap();
    (clock, a, b)
}

fn keyed(task: &str, key: &str, limit: Option<u32>) -> NewJob {
    let mut j = job(task, 1, 0);
    j.limits.concurrency_key = Some((key.parse::<FlowKey>().unwrap(), limit));
    j
}

fn rated(task: &str, rate: &str) -> NewJob {
    let mut j = job(task, 1, 0);
    j.limits.task_rate = Some(rate.parse::<Rate>().unwrap());
    j
}

fn succeed(q: &dyn Queue, worker: &str, c: &Claimed) {
    let done = Completion {
        lease: c.lease(),
        record: record(q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(runyard_core::Output::none()),
    };
    q.complete(worker, &[done]).unwrap().results[0].unwrap();
}

#[test]
fn the_capabilities_are_claimed() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, _) = two(d.path());
    let caps = a.capabilities();
    assert!(caps.has(runyard_queue::Capability::UniqueJobs));
    assert!(caps.has(runyard_queue::Capability::Limits));
    assert!(a.as_flow().is_some());
}

#[test]
fn a_key_limit_holds_across_two_handles_and_frees_at_completion() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    a.enqueue((0..5).map(|_| keyed("t", "tenant:1", Some(2))).collect())
        .unwrap();
    let first = a.claim("wa", 10, LEASE).unwrap();
    assert_eq!(first.len(), 2, "the key's limit");
    assert!(
        b.claim("wb", 10, LEASE).unwrap().is_empty(),
        "the other handle sees the slots taken"
    );
    succeed(&a, "wa", &first[0]);
    let next = b.claim("wb", 10, LEASE).unwrap();
    assert_eq!(next.len(), 1, "one slot came back");
    assert!(a.claim("wa", 10, LEASE).unwrap().is_empty());
}

#[test]
fn a_rescued_claim_gives_its_slot_back() {
    let d = tempfile::tempdir().unwrap();
    let (clock, a, b) = two(d.path());
    a.enqueue(vec![keyed("t", "k", Some(1)), keyed("t", "k", Some(1))])
        .unwrap();
    let c = a.claim("dead", 10, LEASE).unwrap();
    assert_eq!(c.len(), 1);
    a.started("dead", &[(c[0].lease(), a.now())]).unwrap();
    assert!(b.claim("wb", 10, LEASE).unwrap().is_empty());
    clock.advance(LEASE + Duration::from_secs(1));
    let r = b.rescue(Rescue::Expired).unwrap();
    assert_eq!(r.ids, vec![c[0].id]);
    assert_eq!(
        b.claim("wb", 10, LEASE).unwrap().len(),
        1,
        "the slot is free again"
    );
}

#[test]
fn a_stored_limit_set_on_one_handle_holds_on_the_other() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    a.enqueue((0..4).map(|_| job("t", 1, 0)).collect()).unwrap();
    let set = a
        .flow()
        .unwrap()
        .set_limit(&LimitChange {
            target: LimitTarget::Task("t".into()),
            concurrency: Some(1),
            rate: None,
            clear: false,
        })
        .unwrap();
    assert_eq!(set.unwrap().concurrency, Some(1));
    assert_eq!(b.flow().unwrap().limits().unwrap().len(), 1);
    assert_eq!(b.claim("wb", 10, LEASE).unwrap().len(), 1);
    assert!(a.claim("wa", 10, LEASE).unwrap().is_empty());
    let holds = b.flow().unwrap().holds().unwrap();
    assert_eq!(holds.held.len(), 1);
    assert_eq!(
        holds.held[0].1, 3,
        "three due jobs wait for the task's slot"
    );
    let cleared = b
        .flow()
        .unwrap()
        .set_limit(&LimitChange {
            target: LimitTarget::Task("t".into()),
            concurrency: None,
            rate: None,
            clear: true,
        })
        .unwrap();
    assert_eq!(cleared, None);
    assert_eq!(a.claim("wa", 10, LEASE).unwrap().len(), 3);
}

#[test]
fn a_rate_holds_across_two_handles_over_a_sliding_window() {
    let d = tempfile::tempdir().unwrap();
    let (clock, a, b) = two(d.path());
    a.enqueue((0..10).map(|_| rated("t", "3/s")).collect())
        .unwrap();
    let first = a.claim("wa", 2, LEASE).unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|c| c.admitted_at == Some(a.now())));
    assert_eq!(
        b.claim("wb", 10, LEASE).unwrap().len(),
        1,
        "one permit left"
    );
    assert!(
        a.claim("wa", 10, LEASE).unwrap().is_empty(),
        "the window is used"
    );
    clock.advance(Duration::from_millis(999));
    assert!(
        b.claim("wb", 10, LEASE).unwrap().is_empty(),
        "still in the window"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(b.claim("wb", 10, LEASE).unwrap().len(), 3, "a new window");
}

#[test]
fn a_pause_on_one_handle_stops_claims_on_the_other_and_names_unstarted_claims() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    a.enqueue((0..3).map(|_| job("t", 1, 0)).collect()).unwrap();
    let held = b.claim("wb", 1, LEASE).unwrap();
    let flow = a.flow().unwrap();
    assert_eq!(flow.pause(Some(&"t".into())).unwrap(), vec![held[0].id]);
    assert!(b.claim("wb", 10, LEASE).unwrap().is_empty(), "paused");
    let hb = b.heartbeat("wb", &[held[0].lease()], LEASE).unwrap();
    assert_eq!(hb.paused, vec![held[0].lease()]);
    assert_eq!(flow.unstarted().unwrap(), vec![held[0].id]);
    b.release("wb", &[held[0].lease()]).unwrap()[0].unwrap();
    assert!(flow.unstarted().unwrap().is_empty());
    assert_eq!(
        b.flow().unwrap().hold(held[0].id).unwrap(),
        Some(runyard_core::Hold::Paused { task: "t".into() })
    );
    assert!(b.flow().unwrap().paused().unwrap().holds("t"));
    assert!(b.flow().unwrap().resume(None).unwrap());
    assert_eq!(a.claim("wa", 10, LEASE).unwrap().len(), 3);
}

fn unique(key: &str, on_conflict: OnConflict, params: &str) -> NewJob {
    let mut j = job("t", 1, 0);
    j.params = JobParams::from_json(params).unwrap();
    j.unique = Some(Unique {
        key: key.into(),
        within: None,
        on_conflict,
    });
    j
}

#[test]
fn a_unique_key_makes_one_job_across_two_handles() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    let first = a
        .enqueue_one(unique("u", OnConflict::Skip, r#"{"n":1}"#))
        .unwrap();
    assert!(matches!(first, Enqueued::New(_)));
    let again = b
        .enqueue_one(unique("u", OnConflict::Skip, r#"{"n":2}"#))
        .unwrap();
    assert_eq!(again, Enqueued::Duplicate(first.id()));
    let replaced = b
        .enqueue_one(unique("u", OnConflict::Replace, r#"{"n":3}"#))
        .unwrap();
    assert_eq!(replaced, Enqueued::Replaced(first.id()));
    let c = a.claim("wa", 10, LEASE).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].params.as_json(), r#"{"n":3}"#);
    // Running, the job holds the key no more: one may wait behind it.
    let behind = b
        .enqueue_one(unique("u", OnConflict::Skip, r#"{"n":4}"#))
        .unwrap();
    assert!(matches!(behind, Enqueued::New(id) if id != first.id()));
}

/// A state file as schema 4 wrote it, holding a queued job, one scheduled
/// for later and one running.
fn version_4_file(p: &Path, later: i64) {
    let c = rusqlite::Connection::open(p).unwrap();
    for m in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
    ] {
        c.execute_batch(m).unwrap();
    }
    c.execute_batch(&format!(
        "INSERT INTO runyard_meta (key, value) VALUES ('schema_version', '4');
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('later', '{{}}', 0, 0, {later}, 0, 1, 1, 'none', 'auto', 0);
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, worker, lease_until,
             claimed_at, attempt, claims)
         VALUES ('busy', '{{}}', 2, 0, 0, 0, 1, 1, 'none', 'auto', 0, 'w0', 1, 0, 1, 1);
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('now', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0);"
    ))
    .unwrap();
}

#[test]
fn a_version_4_file_migrates_and_its_waiting_jobs_are_claimed_in_order() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("v4.db");
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_700_000_000_000_000,
    )));
    let later = clock.now().as_micros() + 60_000_000;
    version_4_file(&p, later);
    let q = SqliteQueue::open_with_clock(&p, OpenMode::Existing, clock.clone()).unwrap();
    let c = rusqlite::Connection::open(&p).unwrap();
    let v: String = c
        .query_row(
            "SELECT value FROM runyard_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string());
    assert_eq!(SCHEMA_VERSION, 11);
    assert_eq!(q.next_due().unwrap(), Some(Timestamp::from_micros(0)));
    let first = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(
        first.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![JobId(3)]
    );
    // The running job of the old file is rescued and waits again, and the
    // new schema's limits hold for it.
    assert_eq!(
        q.rescue(Rescue::Worker("w0".into())).unwrap().ids,
        vec![JobId(2)]
    );
    q.enqueue(vec![
        keyed("k", "tenant", Some(1)),
        keyed("k", "tenant", Some(1)),
    ])
    .unwrap();
    let next = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(
        next.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![JobId(2), JobId(4)]
    );
    clock.advance(Duration::from_secs(60));
    let last = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(
        last.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![JobId(1)]
    );
}

#[test]
fn keys_share_the_workers_round_robin() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    a.enqueue((0..20).map(|_| keyed("t", "big", None)).collect())
        .unwrap();
    let small = b
        .enqueue((0..3).map(|_| keyed("t", "small", None)).collect())
        .unwrap();
    let small: Vec<JobId> = small.into_iter().map(Enqueued::id).collect();
    let mut order = Vec::new();
    for _ in 0..6 {
        let c = a.claim("w", 1, LEASE).unwrap();
        order.push(c[0].id);
    }
    let at: Vec<usize> = small
        .iter()
        .map(|id| {
            order
                .iter()
                .position(|o| o == id)
                .expect("a small job ran early")
        })
        .collect();
    assert_eq!(at, vec![1, 3, 5], "the keys alternate: {order:?}");
}

#[test]
fn next_due_waits_out_jobs_that_every_limit_holds() {
    let d = tempfile::tempdir().unwrap();
    let (clock, a, _) = two(d.path());
    a.enqueue((0..3).map(|_| rated("t", "1/s")).collect())
        .unwrap();
    let first = a.claim("w", 10, LEASE).unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        q_due(&a).is_some_and(|t| t <= a.now()),
        "not yet known to be held"
    );
    assert!(a.claim("w", 10, LEASE).unwrap().is_empty());
    let window_ends = a.now().saturating_add(Duration::from_secs(1));
    assert_eq!(q_due(&a), Some(window_ends), "the window slides then");
    clock.advance(Duration::from_secs(1));
    assert_eq!(a.claim("w", 10, LEASE).unwrap().len(), 1);
    // Held by a full concurrency limit: only an end frees them.
    a.enqueue(vec![keyed("c", "k", Some(1)), keyed("c", "k", Some(1))])
        .unwrap();
    let c = a.claim_tasks("w", 10, LEASE, Some(&["c".into()])).unwrap();
    assert_eq!(c.len(), 1);
    let _ = a.claim("w", 10, LEASE).unwrap();
    clock.advance(Duration::from_secs(1));
    let _ = a.claim("w", 10, LEASE).unwrap();
    assert!(a.claim("w", 10, LEASE).unwrap().is_empty());
    assert_eq!(q_due(&a), None, "nothing frees them but a change");
    succeed(&a, "w", &c[0]);
    assert!(
        q_due(&a).is_some_and(|t| t <= a.now()),
        "an end frees a slot"
    );
}

fn q_due(q: &SqliteQueue) -> Option<Timestamp> {
    q.next_due().unwrap()
}

#[test]
fn keyless_batches_from_two_handles_stay_first_in_first_out() {
    let d = tempfile::tempdir().unwrap();
    let (_, a, b) = two(d.path());
    let ids = |r: Vec<Enqueued>| -> Vec<JobId> { r.into_iter().map(Enqueued::id).collect() };
    let mut first = job("t", 1, 0);
    first.idempotency_key = Some("once".into());
    let mut want = ids(a
        .enqueue(
            std::iter::once(first.clone())
                .chain((0..9).map(|_| job("t", 1, 0)))
                .collect(),
        )
        .unwrap());
    // The other handle's batch, with a duplicate in it, comes after.
    let mut dup_batch: Vec<NewJob> = (0..5).map(|_| job("t", 1, 0)).collect();
    dup_batch.insert(2, first);
    let got = b.enqueue(dup_batch).unwrap();
    assert!(matches!(got[2], Enqueued::Duplicate(id) if id == want[0]));
    want.extend(
        got.iter()
            .filter(|e| matches!(e, Enqueued::New(_)))
            .map(|e| e.id()),
    );
    // A batch inserted the linked way (a named job) keeps the same group.
    let mut named = job("t", 1, 0);
    named.name = Some("n".into());
    want.extend(ids(a.enqueue(vec![named, job("t", 1, 0)]).unwrap()));
    let mut order = Vec::new();
    for _ in 0..5 {
        let c = b.claim("w", 1, LEASE).unwrap();
        order.push(c[0].id);
    }
    // A keyed newcomer enters at the frontier, beside the keyless head.
    let k = b.enqueue(vec![keyed("t", "tenant:1", None)]).unwrap()[0].id();
    let rest = a.claim("w", 100, LEASE).unwrap();
    let rest: Vec<JobId> = rest.iter().map(|c| c.id).collect();
    let at = rest.iter().position(|&id| id == k);
    assert!(
        at.is_some_and(|at| at < 2),
        "the keyed job at {at:?} of {rest:?}"
    );
    order.extend(rest.into_iter().filter(|&id| id != k));
    assert_eq!(order, want, "keyless jobs in the order they were submitted");
}

/// A state file as schema 6 wrote it, with jobs in flight: two queued
/// jobs of key `tenant:a` (limit 1), one of that key running on worker
/// `w0`, and a queued keyless job.
fn version_6_file(p: &Path) {
    let c = rusqlite::Connection::open(p).unwrap();
    for m in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
        include_str!("../migrations/0005_flow.sql"),
        include_str!("../migrations/0006_schedules.sql"),
    ] {
        c.execute_batch(m).unwrap();
    }
    c.execute_batch(
        "INSERT INTO runyard_meta (key, value) VALUES ('schema_version', '6');
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate,
             concurrency_key, key_concurrency, limited, tag)
         VALUES ('t', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0, 'tenant:a', 1, 1, 2),
                ('t', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0, 'tenant:a', 1, 1, 3);
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate,
             concurrency_key, key_concurrency, limited, tag, worker, lease_until,
             claimed_at, attempt, claims)
         VALUES ('t', '{}', 2, 0, 0, 0, 1, 1, 'none', 'auto', 0, 'tenant:a', 1, 1, 1,
                 'w0', 1, 0, 1, 1);
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, tag)
         VALUES ('plain', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0, 4);
         INSERT INTO runyard_fair (key, last) VALUES ('k:tenant:a', 3), ('k:', 4);
         UPDATE runyard_fair SET last = 4 WHERE key = '';",
    )
    .unwrap();
}

#[test]
fn a_version_6_file_with_jobs_in_flight_migrates_and_drains() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("v6.db");
    version_6_file(&p);
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_700_000_000_000_000,
    )));
    let q = SqliteQueue::open_with_clock(&p, OpenMode::Existing, clock.clone()).unwrap();
    let c = rusqlite::Connection::open(&p).unwrap();
    let (v, fair): (String, String) = c
        .query_row(
            "SELECT (SELECT value FROM runyard_meta WHERE key = 'schema_version'),
                    (SELECT sql FROM sqlite_master WHERE name = 'runyard_jobs_fair')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string());
    assert_eq!(SCHEMA_VERSION, 11);
    assert!(
        fair.contains("concurrency_key"),
        "the fair index carries the limits: {fair}"
    );
    let ids = |c: Vec<Claimed>| c.iter().map(|c| c.id).collect::<Vec<_>>();
    // The running job fills its key: only the keyless job is claimed.
    let first = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(ids(first.clone()), vec![JobId(4)]);
    succeed(&q, "w", &first[0]);
    // The dead worker's claim comes back first (its tag), then the key's
    // jobs one at a time.
    assert_eq!(
        q.rescue(Rescue::Worker("w0".into())).unwrap().ids,
        vec![JobId(3)]
    );
    for want in [3, 1, 2] {
        let c = q.claim("w", 10, LEASE).unwrap();
        assert_eq!(
            ids(c.clone()),
            vec![JobId(want)],
            "one of tenant:a at a time"
        );
        succeed(&q, "w", &c[0]);
    }
    assert!(q.claim("w", 10, LEASE).unwrap().is_empty());
    assert_eq!(q.counts().unwrap().succeeded, 4);
}
