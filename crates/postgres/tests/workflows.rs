//! Dependencies in the PostgreSQL queue beyond the conformance suite: what
//! several handles (workers on other machines) do at the same moment,
//! upgrading a queue of the previous schema version, and pruning.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use postgres::{Client, NoTls};
use runyard_core::{After, JobId, JobState, OutcomeKind, Parent, Timestamp};
use runyard_postgres::{PgOptions, PgQueue, SCHEMA_VERSION};
use runyard_queue::conformance::{job, record};
use runyard_queue::{
    Claimed, Completion, Enqueued, Inspect, ManualClock, NewJob, Queue, SystemClock, Verdict,
};

const LEASE: Duration = Duration::from_secs(60);

fn url(name: &str) -> String {
    runyard_postgres::testing::server().fresh_url(name)
}

fn schema_of(url: &str) -> String {
    url.rsplit_once("schema=").unwrap().1.to_string()
}

fn client() -> Client {
    Client::connect(runyard_postgres::testing::server().url(), NoTls).unwrap()
}

fn open(u: &str) -> PgQueue {
    PgQueue::open(PgOptions::from_url(u).unwrap(), Arc::new(SystemClock)).unwrap()
}

fn id(e: &Enqueued) -> JobId {
    e.id()
}

/// `j`, after job `b` of its batch (or `id` in the queue), seen under `key`.
fn after(mut j: NewJob, parent: Parent, key: &str) -> NewJob {
    j.after.push(After {
        parent,
        key: key.to_string(),
        many: false,
    });
    j
}

fn named(name: &str) -> NewJob {
    NewJob {
        name: Some(name.to_string()),
        ..job("t", 1, 0)
    }
}

fn claim_started(q: &PgQueue, worker: &str) -> Vec<Claimed> {
    claim_n(q, worker, 100)
}

fn claim_n(q: &PgQueue, worker: &str, n: usize) -> Vec<Claimed> {
    let c = q.claim(worker, n, LEASE).unwrap();
    let starts: Vec<_> = c.iter().map(|c| (c.lease(), q.now())).collect();
    q.started(worker, &starts).unwrap();
    c
}

fn succeeded(q: &PgQueue, c: &Claimed, output: &str) -> Completion {
    Completion {
        lease: c.lease(),
        record: record(q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(runyard_core::Output::from_json(output).unwrap()),
    }
}

fn state(q: &PgQueue, id: JobId) -> JobState {
    q.get(id).unwrap().unwrap().state
}

/// Two workers, each with a handle of its own, end the two parents of one
/// child at the same moment, round after round: exactly one of them
/// releases it, and it is then queued, never left blocked.
#[test]
fn two_parents_ending_at_once_on_two_workers_release_their_child_once() {
    let u = url("two_parents");
    let a = Arc::new(open(&u));
    let b = Arc::new(open(&u));
    for round in 0..40 {
        let e = a
            .enqueue(vec![
                named("left"),
                named("right"),
                after(
                    after(named("child"), Parent::Batch(0), "left"),
                    Parent::Batch(1),
                    "right",
                ),
            ])
            .unwrap();
        let child = id(&e[2]);
        let left = claim_n(&a, "wa", 1);
        let right = claim_n(&b, "wb", 1);
        assert_eq!((left.len(), right.len()), (1, 1), "round {round}");
        let barrier = Arc::new(Barrier::new(2));
        let ends: Vec<_> = [(Arc::clone(&a), left, "wa"), (Arc::clone(&b), right, "wb")]
            .into_iter()
            .map(|(q, claimed, w)| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let done = succeeded(&q, &claimed[0], "1");
                    barrier.wait();
                    q.complete(w, &[done]).unwrap()
                })
            })
            .collect();
        let recorded: Vec<_> = ends.into_iter().map(|t| t.join().unwrap()).collect();
        let released: Vec<JobId> = recorded
            .iter()
            .flat_map(|r| r.cascade.unblocked.clone())
            .collect();
        assert_eq!(released, vec![child], "round {round}");
        assert!(recorded.iter().all(|r| r.results == vec![Ok(())]));
        assert_eq!(state(&a, child), JobState::Queued, "round {round}");
        let got = claim_started(&a, "wa");
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].id, child);
        let parents: serde_json::Value = serde_json::from_str(got[0].parents.as_json()).unwrap();
        assert_eq!(parents, serde_json::json!({"left": 1, "right": 1}));
        a.complete("wa", &[succeeded(&a, &got[0], "null")]).unwrap();
    }
}

/// A child added by one handle while another ends its parent at the same
/// moment is never missed: either the insert sees the parent ended, or the
/// ending sees the new edge and releases the child.
#[test]
fn a_child_added_while_its_parent_ends_is_never_left_blocked() {
    let u = url("insert_race");
    let a = Arc::new(open(&u));
    let b = Arc::new(open(&u));
    for round in 0..40 {
        let parent = id(&a.enqueue(vec![named("p")]).unwrap()[0]);
        let claimed = claim_started(&a, "wa");
        assert_eq!(claimed.len(), 1);
        let barrier = Arc::new(Barrier::new(2));
        let ender = {
            let (a, barrier) = (Arc::clone(&a), Arc::clone(&barrier));
            thread::spawn(move || {
                let done = succeeded(&a, &claimed[0], "7");
                barrier.wait();
                a.complete("wa", &[done]).unwrap()
            })
        };
        let adder = {
            let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
            thread::spawn(move || {
                let j = after(named("c"), Parent::Job(parent), "p");
                barrier.wait();
                id(&b.enqueue(vec![j]).unwrap()[0])
            })
        };
        let recorded = ender.join().unwrap();
        let child = adder.join().unwrap();
        assert!(
            recorded.cascade.unblocked.is_empty() || recorded.cascade.unblocked == vec![child],
            "round {round}: {:?}",
            recorded.cascade
        );
        assert_eq!(state(&a, child), JobState::Queued, "round {round}");
        let got = claim_started(&b, "wb");
        assert_eq!(got.len(), 1, "round {round}");
        assert_eq!(got[0].parents.as_json(), r#"{"p":7}"#);
        b.complete("wb", &[succeeded(&b, &got[0], "null")]).unwrap();
    }
}

/// A queue at the previous schema version, with a job in it, is upgraded
/// on first use: the job is kept, and new jobs can be after it.
#[test]
fn a_queue_of_the_previous_version_is_upgraded_and_its_jobs_can_be_parents() {
    assert_eq!(SCHEMA_VERSION, 4);
    let u = url("v3");
    let s = schema_of(&u);
    let mut db = client();
    let migrations = [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
    ]
    .map(|m| m.replace("runyard.", &format!("\"{s}\".")))
    .join("\n");
    db.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\";
         CREATE TABLE \"{s}\".migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         {migrations}
         INSERT INTO \"{s}\".migrations (version) VALUES (1), (2), (3);
         INSERT INTO \"{s}\".jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('t', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', false);"
    ))
    .unwrap();
    let q = open(&u);
    let version: i32 = db
        .query_one(&format!("SELECT MAX(version) FROM \"{s}\".migrations"), &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 4);
    let old = q.list(&Default::default()).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(
        (old[0].state, old[0].name.clone()),
        (JobState::Queued, None)
    );
    let child = id(&q
        .enqueue(vec![after(named("next"), Parent::Job(old[0].id), "1")])
        .unwrap()[0]);
    assert_eq!(state(&q, child), JobState::Blocked);
    let got = claim_started(&q, "w");
    assert_eq!(got.len(), 1);
    let r = q.complete("w", &[succeeded(&q, &got[0], "3")]).unwrap();
    assert_eq!(r.cascade.unblocked, vec![child]);
    let v = q.get(child).unwrap().unwrap();
    assert_eq!(
        (v.state, v.after.clone()),
        (JobState::Queued, vec![old[0].id])
    );
}

/// Pruning keeps a finished job that an unfinished job is after (its
/// output is still to be read), and takes it once that job has finished.
#[test]
fn pruning_keeps_a_parent_whose_child_has_not_finished() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000_000_000)));
    let q = PgQueue::open(
        PgOptions::from_url(&url("prune_flow")).unwrap(),
        Arc::clone(&clock) as Arc<dyn runyard_queue::Clock>,
    )
    .unwrap();
    let e = q
        .enqueue(vec![
            named("a"),
            named("b"),
            after(
                after(named("c"), Parent::Batch(0), "a"),
                Parent::Batch(1),
                "b",
            ),
        ])
        .unwrap();
    let (a, b, c) = (id(&e[0]), id(&e[1]), id(&e[2]));
    let got = claim_started(&q, "w");
    let first = got.iter().find(|g| g.id == a).unwrap();
    q.complete("w", &[succeeded(&q, first, "1")]).unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(q.prune(Duration::from_secs(60), true).unwrap(), 0);
    assert_eq!(state(&q, a), JobState::Succeeded, "c is still after it");
    let second = got.iter().find(|g| g.id == b).unwrap();
    q.complete("w", &[succeeded(&q, second, "2")]).unwrap();
    let last = claim_started(&q, "w");
    assert_eq!(last[0].parents.as_json(), r#"{"a":1,"b":2}"#);
    q.complete("w", &[succeeded(&q, &last[0], "3")]).unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(q.prune(Duration::from_secs(60), true).unwrap(), 3);
    assert!(q.get(c).unwrap().is_none());
    let edges: i64 = client()
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM \"{}\".edges",
                q.options().schema_name()
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(edges, 0, "the edges went with their jobs");
}
