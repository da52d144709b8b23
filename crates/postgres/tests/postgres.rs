//! What the PostgreSQL queue does beyond the conformance suite: enqueueing
//! in the caller's transaction, wake-ups across connections, migrations,
//! pruning, large batches.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use runyard_core::{JobState, OutcomeKind, Timestamp};
use runyard_postgres::{OpenMode, PgOptions, PgQueue, SCHEMA_VERSION};
use runyard_queue::conformance::{job, record};
use runyard_queue::{
    Completion, Enqueued, Inspect, ListFilter, ManualClock, NewJob, Queue, QueueErrorKind,
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
