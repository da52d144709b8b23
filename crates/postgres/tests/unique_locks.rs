//! The locks unique keys take on PostgreSQL (`sql/lock_unique.sql`,
//! migration 0013): a bounded set per queue, so that concurrent batches of
//! thousands of keys, all held at once, fit a server's lock table at its
//! default size.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use runyard_core::{Backoff, JobParams, JobSettings, Mode, OnConflict, TaskName, Unique};
use runyard_postgres::testing::OwnServer;
use runyard_postgres::PgQueue;
use runyard_queue::{Enqueued, NewJob, Queue};

/// Where one submitter is.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Enqueueing, on the backend with this pid.
    Enqueueing(i32),
    /// Enqueued, its transaction open, waiting to be told to commit.
    Holding,
    /// Told to commit.
    Go,
    /// Committed (or failed, with the error).
    Done(Result<usize, String>),
}

fn batch(first: usize, n: usize) -> Vec<NewJob> {
    let settings = Arc::new(JobSettings {
        max_attempts: 1,
        backoff: Backoff::DEFAULT_EXPONENTIAL,
        timeout: None,
        priority: 0,
        mode: Mode::Auto,
        isolate: false,
    });
    (first..first + n)
        .map(|i| NewJob {
            unique: Some(Unique {
                key: format!("key-{i}"),
                within: None,
                on_conflict: OnConflict::Skip,
            }),
            ..NewJob::new(
                TaskName::from("t"),
                JobParams::empty(),
                Arc::clone(&settings),
            )
        })
        .collect()
}

/// Three submitters each add 5,000 jobs of distinct unique keys in a
/// transaction of their own and keep it open until every other one has
/// either enqueued too or waits for a lock: their locks are all held at
/// the same moment. With a lock per key that is 15,000 advisory locks,
/// more than the lock table of a server with default settings holds
/// ("out of shared memory"); with the bounded set, each holds at most 128
/// and they take turns.
#[test]
fn concurrent_unique_batches_of_thousands_of_keys_fit_the_default_lock_table() {
    const SUBMITTERS: usize = 3;
    const KEYS: usize = 5_000;
    let server = OwnServer::start("", "host all all 127.0.0.1/32 trust", &[]);
    let mut admin = server.admin("postgres");
    let setting: String = admin
        .query_one("SHOW max_locks_per_transaction", &[])
        .unwrap()
        .get(0);
    assert_eq!(setting, "64", "the server runs with the default lock table");
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?schema=locks",
        server.port()
    );
    let q = PgQueue::connect(&url).unwrap();
    let phases = (Mutex::new(vec![None::<Phase>; SUBMITTERS]), Condvar::new());
    let set = |s: usize, p: Phase| {
        phases.0.lock().unwrap()[s] = Some(p);
        phases.1.notify_all();
    };
    thread::scope(|scope| {
        for s in 0..SUBMITTERS {
            let (q, set, phases) = (&q, &set, &phases);
            let jobs = batch(s * KEYS, KEYS);
            let mut c = q.options().connect_client().unwrap();
            scope.spawn(move || {
                let mut tx = c.transaction().unwrap();
                let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
                set(s, Phase::Enqueueing(pid));
                let out = match q.enqueue_in(&mut tx, &jobs) {
                    Ok(out) => out,
                    Err(e) => return set(s, Phase::Done(Err(e.to_string()))),
                };
                set(s, Phase::Holding);
                drop(
                    phases
                        .1
                        .wait_while(phases.0.lock().unwrap(), |p| p[s] != Some(Phase::Go))
                        .unwrap(),
                );
                let new = out.iter().filter(|e| matches!(e, Enqueued::New(_))).count();
                let done = tx.commit().map(|()| new).map_err(|e| e.to_string());
                set(s, Phase::Done(done));
            });
        }
        // Lets the holders commit once no submitter is still taking locks:
        // each one not done holds its transaction open or waits for a lock.
        loop {
            let now: Vec<Option<Phase>> = phases.0.lock().unwrap().clone();
            if now.iter().all(|p| matches!(p, Some(Phase::Done(_)))) {
                break;
            }
            let mut settled = true;
            for p in &now {
                match p {
                    None | Some(Phase::Go) => settled = false,
                    Some(Phase::Enqueueing(pid)) => {
                        let waits: bool = admin
                            .query_one(
                                "SELECT EXISTS (SELECT 1 FROM pg_locks \
                                 WHERE pid = $1 AND NOT granted)",
                                &[pid],
                            )
                            .unwrap()
                            .get(0);
                        settled &= waits;
                    }
                    Some(Phase::Holding | Phase::Done(_)) => {}
                }
            }
            if settled {
                let mut g = phases.0.lock().unwrap();
                for p in g.iter_mut() {
                    if *p == Some(Phase::Holding) {
                        *p = Some(Phase::Go);
                    }
                }
                phases.1.notify_all();
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    let done = phases.0.lock().unwrap().clone();
    for (s, p) in done.iter().enumerate() {
        assert_eq!(
            p,
            &Some(Phase::Done(Ok(KEYS))),
            "submitter {s} added its {KEYS} jobs"
        );
    }
    assert_eq!(q.counts().unwrap().total(), (SUBMITTERS * KEYS) as u64);
    // The keys were stored with the jobs (a batch this large goes in by
    // COPY): submitted again, each finds its job.
    let again = q.insert(batch(KEYS / 2, KEYS)).unwrap();
    assert!(
        again.iter().all(|e| matches!(e, Enqueued::Duplicate(_))),
        "every key is held"
    );
    assert_eq!(q.counts().unwrap().total(), (SUBMITTERS * KEYS) as u64);
}
