//! What the PostgreSQL queue does beyond the conformance suite: enqueueing
//! in the caller's transaction, wake-ups across connections, migrations,
//! pruning, large batches; and dependencies kept by several handles
//! (workers on other machines) at the same moment, in a queue upgraded
//! from the previous schema version, and under pruning.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use runyard_core::{After, JobId, JobState, OutcomeKind, Parent, Timestamp};
use runyard_postgres::{OpenMode, PgOptions, PgQueue, SCHEMA_VERSION};
use runyard_queue::conformance::{job, record};
use runyard_queue::{
    Claimed, Completion, Enqueued, Inspect, ListFilter, ManualClock, NewJob, Queue, QueueErrorKind,
    SystemClock, Verdict,
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

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn jobs_enqueued_in_the_callers_transaction_exist_only_if_it_commits() {
    let u = url("in_tx");
    let q = PgQueue::connect(&u).unwrap();
    let s = schema_of(&u);
    let mut c = client();
    c.batch_execute(&format!("CREATE TABLE \"{s}\".orders (id int, paid bool)"))
        .unwrap();

    let mut tx = c.transaction().unwrap();
    tx.execute(&format!("INSERT INTO \"{s}\".orders VALUES (1, true)"), &[])
        .unwrap();
    q.enqueue_in(&mut tx, &[job("receipt", 1, 0)]).unwrap();
    tx.rollback().unwrap();
    assert_eq!(q.counts().unwrap().total(), 0, "rolled back with the order");

    let mut tx = c.transaction().unwrap();
    tx.execute(&format!("INSERT INTO \"{s}\".orders VALUES (2, true)"), &[])
        .unwrap();
    let ids = q.enqueue_in(&mut tx, &[job("receipt", 1, 0)]).unwrap();
    assert_eq!(
        q.counts().unwrap().total(),
        0,
        "not visible before the commit"
    );
    tx.commit().unwrap();
    let v = q
        .get(ids[0].id())
        .unwrap()
        .expect("committed with the order");
    assert_eq!((v.task.as_str(), v.state), ("receipt", JobState::Queued));
}

#[test]
fn an_enqueue_on_one_connection_wakes_a_worker_listening_on_another() {
    let u = url("wake");
    let worker_side = PgQueue::connect(&u).unwrap();
    let woken = Arc::new(AtomicU32::new(0));
    let w = Arc::clone(&woken);
    worker_side.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    // The listener wakes once when it starts listening (for what it may
    // have missed): wait for that, then for the enqueue's notification.
    wait_until(Duration::from_secs(10), "the listener", || {
        woken.load(Ordering::SeqCst) >= 1
    });
    let before = woken.load(Ordering::SeqCst);
    // Another process's insert: plain SQL, not even runyard's.
    let s = schema_of(&u);
    client()
        .batch_execute(&format!(
            "INSERT INTO \"{s}\".jobs (task, params, state, priority, run_at, enqueued_at, \
             max_attempts, attempts_per_round, backoff, mode, isolate) \
             VALUES ('noop', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', false)"
        ))
        .unwrap();
    wait_until(Duration::from_secs(10), "the notification", || {
        woken.load(Ordering::SeqCst) > before
    });
}

#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let u = url("migrate");
    let opts = PgOptions::from_url(&u).unwrap();
    assert_eq!(
        PgQueue::migrate(&opts).unwrap(),
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert!(PgQueue::migrate(&opts).unwrap().is_empty(), "nothing twice");

    // Without migrating on connect, an empty schema names the command.
    let fresh = PgOptions::from_url(&url("unmigrated"))
        .unwrap()
        .migrate_on_connect(false);
    let e = PgQueue::open(fresh, Arc::new(SystemClock)).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::Incompatible);
    assert!(e.to_string().contains("runyard migrate"), "{e}");

    let s = schema_of(&u);
    client()
        .batch_execute(&format!(
            "INSERT INTO \"{s}\".migrations (version) VALUES ({})",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    let e = PgQueue::connect(&u).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::Incompatible);
    assert!(e.to_string().contains("newer runyard"), "{e}");
    let e = PgQueue::migrate(&opts).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::Incompatible);
}

#[test]
fn workers_migrating_at_once_do_not_race() {
    let u = url("race");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let u = u.clone();
            std::thread::spawn(move || PgQueue::connect(&u).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
}

#[test]
fn large_batches_keep_their_order_and_ids() {
    let q = PgQueue::connect(&url("copy")).unwrap();
    let settings = runyard_queue::conformance::settings(1, 0);
    let jobs: Vec<NewJob> = (0..3000)
        .map(|i| NewJob {
            params: runyard_core::JobParams::from_trusted_json(&format!("{{\"i\":{i}}}")),
            settings: Arc::clone(&settings),
            ..job("t", 1, 0)
        })
        .collect();
    let out = q.enqueue(jobs).unwrap();
    assert_eq!(out.len(), 3000);
    for (i, e) in out.iter().enumerate() {
        let Enqueued::New(id) = e else {
            panic!("{e:?}")
        };
        let v = q.get(*id).unwrap().unwrap();
        assert_eq!(v.params.as_json(), format!("{{\"i\":{i}}}"), "job {id}");
    }
    assert_eq!(q.counts().unwrap().queued, 3000);
}

#[test]
fn pruning_deletes_old_finished_jobs_and_keeps_the_rest() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000_000_000)));
    let q = PgQueue::open(
        PgOptions::from_url(&url("prune")).unwrap(),
        Arc::clone(&clock) as Arc<dyn runyard_queue::Clock>,
    )
    .unwrap();
    q.enqueue((0..6).map(|_| job("t", 1, 0)).collect()).unwrap();
    let claimed = q.claim("w", 4, Duration::from_secs(60)).unwrap();
    let done: Vec<Completion> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (outcome, verdict) = if i < 3 {
                (
                    OutcomeKind::Succeeded,
                    Verdict::Succeeded(Default::default()),
                )
            } else {
                (OutcomeKind::Failed, Verdict::Dead)
            };
            Completion {
                lease: c.lease(),
                record: record(&q, c.lease(), outcome),
                verdict,
            }
        })
        .collect();
    assert!(q
        .complete("w", &done)
        .unwrap()
        .results
        .iter()
        .all(Result::is_ok));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        q.prune(Duration::from_secs(7200), false).unwrap(),
        0,
        "too recent"
    );
    assert_eq!(q.prune(Duration::from_secs(60), false).unwrap(), 3);
    let c = q.counts().unwrap();
    assert_eq!((c.succeeded, c.dead, c.queued), (0, 1, 2), "{c:?}");
    assert_eq!(q.prune(Duration::from_secs(60), true).unwrap(), 1);
    assert!(q
        .list(&ListFilter {
            state: Some(JobState::Dead),
            ..ListFilter::default()
        })
        .unwrap()
        .is_empty());
    let left: i64 = client()
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM \"{}\".attempts",
                q.options().schema_name()
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "their attempts went with them");
}

#[test]
fn activity_names_the_workers_running_attempts() {
    let q = PgQueue::connect(&url("activity")).unwrap();
    q.enqueue((0..3).map(|_| job("t", 1, 0)).collect()).unwrap();
    let claimed = q.claim("host-a:1", 2, Duration::from_secs(60)).unwrap();
    let a = q.activity(Duration::from_secs(60)).unwrap();
    assert_eq!(a.workers, vec![], "claims not started run nothing yet");
    let started: Vec<_> = claimed.iter().map(|c| (c.lease(), q.now())).collect();
    q.started("host-a:1", &started).unwrap();
    let a = q.activity(Duration::from_secs(60)).unwrap();
    assert_eq!(a.workers, vec![("host-a:1".to_string(), 2)]);
    assert!(a.oldest_ready.is_some(), "one job still waits");
}

fn schema_exists(s: &str) -> bool {
    client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&s],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_missing_queue_is_not_created_by_inspecting_or_changing_it() {
    let u = url("typo");
    let s = schema_of(&u);
    for mode in [OpenMode::Existing, OpenMode::Inspect] {
        let opts = PgOptions::from_url(&u).unwrap().open_mode(mode);
        let e = PgQueue::open(opts, Arc::new(SystemClock)).unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput, "{mode:?}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("no runyard queue in schema `{s}`")),
            "{msg}"
        );
        assert!(msg.contains("runyard migrate --queue URL"), "{msg}");
        assert!(!schema_exists(&s), "{mode:?} created the schema");
    }
    PgQueue::connect(&u).unwrap();
    assert!(schema_exists(&s), "a queue to put jobs in is created");
}

#[test]
fn an_older_schema_is_read_as_it_is_when_inspected_and_upgraded_when_used() {
    let u = url("v1");
    let s = schema_of(&u);
    let mut db = client();
    db.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\";
         CREATE TABLE \"{s}\".migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         {}
         INSERT INTO \"{s}\".migrations (version) VALUES (1);
         INSERT INTO \"{s}\".jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('t', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', false);",
        include_str!("../migrations/0001_init.sql").replace("runyard.", &format!("\"{s}\"."))
    ))
    .unwrap();
    let version = |db: &mut Client| -> i32 {
        db.query_one(&format!("SELECT MAX(version) FROM \"{s}\".migrations"), &[])
            .unwrap()
            .get(0)
    };
    let opts = PgOptions::from_url(&u).unwrap();
    let q = PgQueue::open(
        opts.clone().open_mode(OpenMode::Inspect),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert_eq!(q.counts().unwrap().queued, 1);
    assert!(q.live_workers().unwrap().is_empty());
    assert_eq!(version(&mut db), 1, "inspecting upgraded nothing");

    let q = PgQueue::open(opts, Arc::new(SystemClock)).unwrap();
    assert_eq!(version(&mut db), SCHEMA_VERSION);
    assert_eq!(q.counts().unwrap().queued, 1, "its job kept");
    let me = runyard_queue::WorkerInfo::this_process("w", Duration::from_secs(10));
    q.register_worker(&me).unwrap().unwrap();
    assert_eq!(q.live_workers().unwrap()[0].worker, me);
}

#[test]
fn a_refused_connection_names_the_server_once_and_never_the_password() {
    let server = runyard_postgres::testing::server().url();
    let opts = PgOptions::from_url(server).unwrap();
    let at = opts.server();
    let (_, rest) = server.split_once('@').unwrap();
    let e = PgQueue::connect(&format!("postgres://nobody:s3cret-pw@{rest}")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&format!("cannot connect to {at}")), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert_eq!(msg.matches("FATAL").count(), 1, "{msg}");
    assert_eq!(
        msg.matches("nobody").count(),
        2,
        "the URL and the server's word: {msg}"
    );
    assert!(!msg.contains("db error"), "{msg}");
}

const LEASE: Duration = Duration::from_secs(60);

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

/// A queue at schema version 4 (before flow control), with a job in it,
/// is upgraded on first use: the job is kept, and new jobs can be after it.
#[test]
fn a_queue_of_the_previous_version_is_upgraded_and_its_jobs_can_be_parents() {
    let u = url("v4");
    let s = schema_of(&u);
    let mut db = client();
    let migrations = [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
    ]
    .map(|m| m.replace("runyard.", &format!("\"{s}\".")))
    .join("\n");
    db.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\";
         CREATE TABLE \"{s}\".migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         {migrations}
         INSERT INTO \"{s}\".migrations (version) VALUES (1), (2), (3), (4);
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
    assert_eq!(version, SCHEMA_VERSION);
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

/// A parent ending on one handle wakes a worker listening on another: the
/// released child reaches every worker at once, as an enqueue does.
#[test]
fn a_released_child_wakes_a_worker_listening_on_another_connection() {
    let u = url("release_wakes");
    let worker_side = open(&u);
    let woken = Arc::new(AtomicU32::new(0));
    let w = Arc::clone(&woken);
    worker_side.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    wait_until(Duration::from_secs(10), "the listener", || {
        woken.load(Ordering::SeqCst) >= 1
    });
    let started = woken.load(Ordering::SeqCst);
    let q = open(&u);
    let e = q
        .enqueue(vec![named("p"), after(named("c"), Parent::Batch(0), "p")])
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the enqueue's notification",
        || woken.load(Ordering::SeqCst) > started,
    );
    let got = claim_started(&q, "w");
    assert_eq!(got.len(), 1);
    let before = woken.load(Ordering::SeqCst);
    let r = q.complete("w", &[succeeded(&q, &got[0], "1")]).unwrap();
    assert_eq!(r.cascade.unblocked, vec![id(&e[1])]);
    wait_until(
        Duration::from_secs(10),
        "the release's notification",
        || woken.load(Ordering::SeqCst) > before,
    );
}

/// A queue at schema version 6 with keyed jobs, one claimed by version 6's
/// limited claim (its slot held): upgraded to 7 on first use, the held
/// slot still counts (its key stays full), a rescue gives it back, and the
/// key's next claim takes it.
#[test]
fn a_schema_6_queue_with_a_claim_in_flight_is_upgraded_to_7() {
    const { assert!(SCHEMA_VERSION >= 7) };
    let u = url("v6_flow");
    let s = schema_of(&u);
    let mut db = client();
    let migrations = [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
        include_str!("../migrations/0004_workflows.sql"),
        include_str!("../migrations/0005_flow.sql"),
        include_str!("../migrations/0006_schedules.sql"),
    ]
    .map(|m| runyard_queue::stored::render_states(m).replace("runyard.", &format!("\"{s}\".")))
    .join("\n");
    let job = |key: &str, tag: i64| {
        format!(
            "('t', '{{}}', 0, 0, 0, 0, 1, 1, 'none', 'auto', false, {tag}, 'tenant', '{key}', 1)"
        )
    };
    db.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\";
         CREATE TABLE \"{s}\".migrations (version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());
         {migrations}
         INSERT INTO \"{s}\".migrations (version) VALUES (1), (2), (3), (4), (5), (6);
         INSERT INTO \"{s}\".meta (key, value) VALUES ('flow', 'on');
         INSERT INTO \"{s}\".jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, tag, ckey_name,
             ckey_value, ckey_conc)
         VALUES {}, {}, {}, {};",
        job("a", 1),
        job("b", 1),
        job("a", 2),
        job("a", 3),
    ))
    .unwrap();
    let until = Timestamp::now().as_micros() + 60_000_000;
    let old: Vec<i64> = db
        .query(
            &format!(
                "SELECT out_id FROM \"{s}\".claim_limited('old', $1::bigint, $1::bigint - 60000000, 1, NULL, \
                 1024, true)"
            ),
            &[&until],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(old.len(), 1, "version 6 claimed a job of key a");

    let q = PgQueue::open(PgOptions::from_url(&u).unwrap(), Arc::new(SystemClock)).unwrap();
    let version: i32 = db
        .query_one(&format!("SELECT MAX(version) FROM \"{s}\".migrations"), &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    let got = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(got.len(), 1, "key a is full: only key b's job");
    let b = got[0].id;
    q.rescue(runyard_queue::Rescue::Worker("old".into()))
        .unwrap();
    let got = q.claim("w", 10, LEASE).unwrap();
    let ids: Vec<i64> = got.iter().map(|c| c.id.0 as i64).collect();
    assert_eq!(
        ids, old,
        "the slot came back to key a, whose first job goes again"
    );
    assert_ne!(got[0].id, b);
    assert!(
        q.claim("w", 10, LEASE).unwrap().is_empty(),
        "both keys full"
    );
}

/// A statement file of `sql/` as the queue at `u` runs it.
fn statement(text: &str, u: &str) -> String {
    runyard_postgres::testing::statement(&PgOptions::from_url(u).unwrap(), text)
}

/// Enqueues 300 jobs of task `t` and runs them all to success, 64 a claim.
fn drain_300(q: &PgQueue) {
    q.enqueue((0..300).map(|_| job("t", 1, 0)).collect())
        .unwrap();
    loop {
        let c = claim_n(q, "w", 64);
        if c.is_empty() {
            break;
        }
        let done: Vec<Completion> = c.iter().map(|c| succeeded(q, c, "null")).collect();
        q.complete("w", &done).unwrap();
    }
}

/// Right after a drain, the entries at the heads of the fair order's
/// index and of the running jobs' lease index are of jobs that have moved
/// on; a walk reads each of them until vacuum removes them. The enqueue,
/// the promotion, the claim and the next run-at of a job into that idle
/// queue read neither index (counted for this transaction by the
/// server's statistics, which every scan of an index moves on), and the
/// claim finds the job.
#[test]
fn a_job_into_a_drained_queue_is_claimed_without_walking_the_drained_heads() {
    let u = url("drained");
    let q = open(&u);
    let s = schema_of(&u);
    drain_300(&q);
    assert_eq!(q.counts().unwrap().succeeded, 300);

    let mut c = client();
    let mut tx = c.transaction().unwrap();
    let scans = |tx: &mut postgres::Transaction<'_>| -> Vec<(String, i64)> {
        tx.query(
            "SELECT c.relname::text, pg_stat_get_xact_numscans(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname IN ('jobs_fair', 'jobs_leases', 'jobs_due') \
             ORDER BY 1",
            &[&s],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    let none: Vec<(String, i64)> = ["jobs_due", "jobs_fair", "jobs_leases"]
        .iter()
        .map(|n| (n.to_string(), 0))
        .collect();
    assert_eq!(scans(&mut tx), none);
    let added = q.enqueue_in(&mut tx, &[job("t", 1, 0)]).unwrap();
    let now = q.now().as_micros();
    tx.execute(&statement(include_str!("../sql/promote.sql"), &u), &[&now])
        .unwrap();
    let due: Option<i64> = tx
        .query_one(&statement(include_str!("../sql/next_due.sql"), &u), &[])
        .unwrap()
        .get(0);
    assert!(due.is_some_and(|d| d <= now), "{due:?}");
    let claim = statement(include_str!("../sql/claim.sql"), &u);
    let tasks: Option<Vec<String>> = None;
    let got = tx
        .query(&claim, &[&"w2", &(now + 60_000_000), &now, &4i64, &tasks])
        .unwrap();
    let got: Vec<i64> = got.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, vec![added[0].id().0 as i64]);
    assert_eq!(scans(&mut tx), none, "the heads were not walked");
    tx.commit().unwrap();
}

/// What `runyard status` reads of an idle queue right after a drain (the
/// counts by task, the workers' running attempts, the oldest ready job,
/// what holds the due jobs and each task's running count) reads no index
/// of the waiting or running jobs: their entries are those of the drained
/// jobs until vacuum removes them, and each read walked all of them (0.85
/// s of `status` with 10^6 just drained). The answers are still right.
#[test]
fn status_of_a_drained_queue_does_not_walk_the_drained_jobs() {
    let u = url("status_drained");
    let q = open(&u);
    let s = schema_of(&u);
    drain_300(&q);
    let mut c = client();
    let mut tx = c.transaction().unwrap();
    let scans = |tx: &mut postgres::Transaction<'_>| -> i64 {
        tx.query_one(
            "SELECT coalesce(sum(pg_stat_get_xact_numscans(c.oid)), 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'i' \
               AND c.relname IN ('jobs_state', 'jobs_task_state', 'jobs_leases', 'jobs_fair', \
                                 'jobs_ready')",
            &[&s],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(scans(&mut tx), 0);
    let now = q.now().as_micros();
    let counts = tx
        .query(
            &statement(include_str!("../sql/counts_kept_by_task.sql"), &u),
            &[&now],
        )
        .unwrap();
    let counts: Vec<(String, i16, i64)> = counts
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(4)))
        .collect();
    assert_eq!(
        counts,
        vec![(
            "t".to_string(),
            runyard_queue::stored::SUCCEEDED as i16,
            300
        )]
    );
    let workers = tx
        .query(
            &statement(include_str!("../sql/running_by_worker.sql"), &u),
            &[],
        )
        .unwrap();
    assert!(workers.is_empty());
    let oldest: Option<i64> = tx
        .query_one(
            &statement(include_str!("../sql/oldest_ready.sql"), &u),
            &[&now],
        )
        .unwrap()
        .get(0);
    assert_eq!(oldest, None);
    let none: Option<i64> = None;
    let holds = tx
        .query(
            &statement(include_str!("../sql/holds.sql"), &u),
            &[&now, &none],
        )
        .unwrap();
    assert!(holds.is_empty());
    let by_task = tx
        .query(
            &statement(include_str!("../sql/running_by_task.sql"), &u),
            &[],
        )
        .unwrap();
    assert!(by_task.is_empty());
    assert_eq!(scans(&mut tx), 0, "the drained jobs' entries were walked");
    tx.commit().unwrap();
}
