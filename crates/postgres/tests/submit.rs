//! The `submit` and `submit_many` SQL functions (migration 0010; `submit`'s
//! unique-key lock, 0013): a job they add is stored as the queue's own
//! insert stores it, with the published defaults for what they leave out;
//! they refuse unknown tasks and bad options with SQL errors that say what
//! would do; they keep idempotency and unique keys as the insert does, a
//! unique key under the insert's lock; they work inside the caller's
//! transaction and wake listening workers at its commit.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use runyard_core::{Backoff, JobLimits, JobParams, JobSettings, Mode, Rate, TaskName};
use runyard_postgres::PgQueue;
use runyard_queue::{NewJob, PublishedTask, Queue};

fn url(name: &str) -> String {
    runyard_postgres::testing::server().fresh_url(name)
}

fn schema_of(url: &str) -> String {
    url.rsplit_once("schema=").unwrap().1.to_string()
}

fn client() -> Client {
    Client::connect(runyard_postgres::testing::server().url(), NoTls).unwrap()
}

fn settings() -> Arc<JobSettings> {
    Arc::new(JobSettings {
        max_attempts: 5,
        backoff: Backoff::Fixed(Duration::from_secs(2)),
        timeout: Some(Duration::from_secs(30)),
        priority: 3,
        mode: Mode::Thread,
        isolate: true,
    })
}

fn rate() -> Rate {
    Rate {
        count: 10,
        per: Duration::from_secs(1),
    }
}

/// A queue whose worker `w1` published `resize` (with limits) and `plain`.
fn published(name: &str) -> (PgQueue, String) {
    let u = url(name);
    let q = PgQueue::connect(&u).unwrap();
    q.publish_tasks(
        "w1",
        &[
            PublishedTask {
                task: TaskName::from("resize"),
                settings: settings(),
                concurrency: Some(2),
                rate: Some(rate()),
            },
            PublishedTask {
                task: TaskName::from("plain"),
                settings: Arc::new(JobSettings {
                    max_attempts: 3,
                    backoff: Backoff::DEFAULT_EXPONENTIAL,
                    timeout: None,
                    priority: 0,
                    mode: Mode::Auto,
                    isolate: false,
                }),
                concurrency: None,
                rate: None,
            },
        ],
    )
    .unwrap();
    (q, schema_of(&u))
}

/// Every column of job `id` that does not depend on when or in what order
/// it was added, as text.
fn row(c: &mut Client, s: &str, id: i64) -> Vec<Option<String>> {
    let cols = "task, params, state::text, priority::text, attempt::text, max_attempts::text, \
                attempts_per_round::text, backoff, timeout_us::text, mode, isolate::text, \
                worker, lease_until::text, started::text, finished_at::text, \
                idempotency_key, output, claims::text, name, run_if::text, pending::text, \
                unique_key, task_conc::text, task_rate_n::text, task_rate_us::text, ckey_name, \
                ckey_value, ckey_conc::text, rkey_name, held::text, (tag IS NULL)::text";
    let r = c
        .query_one(
            &format!("SELECT {cols} FROM \"{s}\".jobs WHERE id = $1"),
            &[&id],
        )
        .unwrap();
    (0..r.len()).map(|i| r.get(i)).collect()
}

#[test]
fn a_submitted_job_is_stored_as_the_rust_insert_stores_it() {
    let (q, s) = published("sql_same");
    let params = r#"{"b":[1,{"y":2.5,"x":"é\n\"q\""}],"a":true,"c":null}"#;
    let job = NewJob {
        limits: JobLimits {
            task_concurrency: Some(2),
            task_rate: Some(rate()),
            concurrency_key: Some(("tenant:7".parse().unwrap(), Some(4))),
            rate_key: None,
        },
        idempotency_key: Some("k-rust".into()),
        ..NewJob::new(
            TaskName::from("resize"),
            JobParams::from_json(params).unwrap(),
            settings(),
        )
    };
    let rust = q.insert(vec![job]).unwrap()[0].id().0 as i64;
    let mut c = client();
    let sql: i64 = c
        .query_one(
            &format!(
                "SELECT \"{s}\".submit('resize', $1::text::jsonb, idempotency_key => 'k-sql', \
                 concurrency_key => 'tenant:7', concurrency => 4)"
            ),
            &[&params],
        )
        .unwrap()
        .get(0);
    let (mut a, mut b) = (row(&mut c, &s, rust), row(&mut c, &s, sql));
    // The keys differ on purpose (each must be new).
    assert_eq!(a[15].take(), Some("k-rust".into()));
    assert_eq!(b[15].take(), Some("k-sql".into()));
    assert_eq!(a, b);
    assert_eq!(
        a[1].as_deref(),
        Some(r#"{"a":true,"b":[1,{"x":"é\n\"q\"","y":2.5}],"c":null}"#)
    );

    // Options left out of both take the published defaults, the same way.
    let plain = NewJob::new(
        TaskName::from("plain"),
        JobParams::from_json(r#"{"n":1}"#).unwrap(),
        Arc::new(JobSettings {
            max_attempts: 3,
            backoff: Backoff::DEFAULT_EXPONENTIAL,
            timeout: None,
            priority: 0,
            mode: Mode::Auto,
            isolate: false,
        }),
    );
    let rust = q.insert(vec![plain]).unwrap()[0].id().0 as i64;
    let sql: i64 = c
        .query_one(
            &format!("SELECT \"{s}\".submit('plain', '{{\"n\": 1}}')"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(row(&mut c, &s, rust), row(&mut c, &s, sql));

    // Given options beat the defaults; a run-at ahead leaves the job
    // without a fair tag (scheduled).
    let id: i64 = c
        .query_one(
            &format!(
                "SELECT \"{s}\".submit('resize', max_attempts => 9, timeout => '1 minute', \
                 priority => -2, run_at => now() + interval '1 hour')"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    let r = c
        .query_one(
            &format!(
                "SELECT max_attempts, timeout_us, priority, run_at - enqueued_at, tag IS NULL \
                 FROM \"{s}\".jobs WHERE id = $1"
            ),
            &[&id],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 9);
    assert_eq!(r.get::<_, i64>(1), 60_000_000);
    assert_eq!(r.get::<_, i32>(2), -2);
    assert!(r.get::<_, i64>(3) > 3_000_000_000, "an hour ahead");
    assert!(r.get::<_, bool>(4));
    // Limits carried: every claim is the limited one from now on.
    let on: bool = c
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM \"{s}\".meta WHERE key = 'flow')"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(on);
}

#[test]
fn unknown_tasks_and_bad_options_are_sql_errors_that_say_what_would_do() {
    let (_q, s) = published("sql_errors");
    let mut c = client();
    let mut err = |call: &str| {
        let e = c
            .query_one(&format!("SELECT \"{s}\".{call}"), &[])
            .unwrap_err();
        let db = e.as_db_error().expect("a server's error").clone();
        (
            db.code().code().to_string(),
            db.message().to_string(),
            db.hint().unwrap_or_default().to_string(),
        )
    };
    let (code, msg, hint) = err("submit('resise')");
    assert_eq!(code, "22023");
    assert!(
        msg.contains("no worker of this queue has published a task named \"resise\""),
        "{msg}"
    );
    assert_eq!(hint, "Published tasks: plain, resize.");
    for (call, says) in [
        ("submit('plain', '[1]')", "params must be a JSON object"),
        (
            "submit('plain', max_attempts => 0)",
            "max_attempts must be >= 1",
        ),
        (
            "submit('plain', timeout => '0s')",
            "timeout must be greater than zero",
        ),
        (
            "submit('plain', unique_for => '1h')",
            "unique_for needs a unique_key",
        ),
        (
            "submit('plain', unique_key => 'u', on_conflict => 'merge')",
            "unknown on_conflict \"merge\"",
        ),
        (
            "submit('plain', concurrency => 2)",
            "concurrency limits the jobs of a concurrency_key",
        ),
        (
            "submit('plain', concurrency_key => 'a b')",
            "a key's name is 1 to 64 letters",
        ),
        (
            "submit('plain', concurrency_key => 'tenant:')",
            "has an empty value after",
        ),
        (
            "submit('plain', idempotency_key => '')",
            "idempotency_key must not be empty",
        ),
    ] {
        let (code, msg, _) = err(call);
        assert_eq!(code, "22023", "{call}: {msg}");
        assert!(msg.contains(says), "{call}: {msg}");
    }
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM \"{s}\".jobs"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing added by a refused call");

    // A long list is cut.
    let u = url("sql_many_tasks");
    let q = PgQueue::connect(&u).unwrap();
    let many: Vec<PublishedTask> = (0..60)
        .map(|i| PublishedTask {
            task: TaskName::from(format!("t{i:02}").as_str()),
            settings: settings(),
            concurrency: None,
            rate: None,
        })
        .collect();
    q.publish_tasks("w1", &many).unwrap();
    let e = c
        .query_one(&format!("SELECT \"{}\".submit('x')", schema_of(&u)), &[])
        .unwrap_err();
    let hint = e.as_db_error().unwrap().hint().unwrap().to_string();
    assert!(hint.starts_with("Published tasks: t00, t01, "), "{hint}");
    assert!(hint.ends_with(", t49 and 10 more."), "{hint}");

    // An empty queue says how tasks get published.
    let u = url("sql_none");
    let _q = PgQueue::connect(&u).unwrap();
    let e = c
        .query_one(
            &format!("SELECT \"{}\".submit('plain')", schema_of(&u)),
            &[],
        )
        .unwrap_err();
    let hint = e.as_db_error().unwrap().hint().unwrap().to_string();
    assert!(hint.contains("runyard worker --queue URL"), "{hint}");
}

#[test]
fn keys_are_kept_as_the_insert_keeps_them() {
    let (q, s) = published("sql_keys");
    let mut c = client();
    let mut one = |call: &str| -> i64 {
        c.query_one(&format!("SELECT \"{s}\".{call}"), &[])
            .unwrap()
            .get(0)
    };
    let a = one("submit('plain', idempotency_key => 'once')");
    assert_eq!(one("submit('plain', idempotency_key => 'once')"), a);
    let u = one("submit('plain', '{\"v\": 1}', unique_key => 'sync')");
    assert_eq!(
        one("submit('plain', '{\"v\": 2}', unique_key => 'sync')"),
        u
    );
    assert_eq!(
        one("submit('plain', '{\"v\": 3}', unique_key => 'sync', on_conflict => 'replace')"),
        u
    );
    // A job the Rust insert adds with the key finds the SQL one holding it.
    let dup = q.insert(vec![unique_plain("sync")]).unwrap();
    assert_eq!(dup[0].id().0 as i64, u);
    let params: String = c
        .query_one(
            &format!("SELECT params FROM \"{s}\".jobs WHERE id = $1"),
            &[&u],
        )
        .unwrap()
        .get(0);
    assert_eq!(params, r#"{"v":3}"#, "replaced");
    assert_eq!(q.counts().unwrap().total(), 2);

    // The batch form: one job per element, ids in order.
    let ids: Vec<i64> = c
        .query_one(
            &format!(
                "SELECT \"{s}\".submit_many('plain', ARRAY['{{\"i\": 1}}', '{{\"i\": 2}}', \
                 '{{\"i\": 3}}']::jsonb[], priority => 1)"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ids.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        let r = c
            .query_one(
                &format!("SELECT params, priority FROM \"{s}\".jobs WHERE id = $1"),
                &[id],
            )
            .unwrap();
        assert_eq!(r.get::<_, String>(0), format!("{{\"i\":{}}}", i + 1));
        assert_eq!(r.get::<_, i32>(1), 1);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

/// A job of task `plain` with unique key `key`.
fn unique_plain(key: &str) -> NewJob {
    NewJob {
        unique: Some(runyard_core::Unique {
            key: key.into(),
            within: None,
            on_conflict: runyard_core::OnConflict::Skip,
        }),
        ..NewJob::new(
            TaskName::from("plain"),
            JobParams::empty(),
            Arc::new(JobSettings {
                max_attempts: 3,
                backoff: Backoff::DEFAULT_EXPONENTIAL,
                timeout: None,
                priority: 0,
                mode: Mode::Auto,
                isolate: false,
            }),
        )
    }
}

/// Waits until `done` says the other submitter finished, or the backend
/// `pid` it submits on waits for a lock; returns whether it waited.
fn waits_or_finishes(pid: i32, done: &std::sync::atomic::AtomicBool) -> bool {
    let mut c = client();
    loop {
        if done.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let waits: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)",
                &[&pid],
            )
            .unwrap()
            .get(0);
        if waits {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An SQL submitter and a Rust one of the same unique key at once make one
/// job, whichever takes the key first: the second waits for the first's
/// lock (the same one: migration 0013 and `lock_unique.sql`), then finds
/// its job.
#[test]
fn an_sql_and_a_rust_submitter_of_one_key_at_once_make_one_job() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (q, s) = published("sql_rust_race");
    let count = |key: &str| -> i64 {
        client()
            .query_one(
                &format!("SELECT count(*) FROM \"{s}\".jobs WHERE unique_key = $1"),
                &[&key],
            )
            .unwrap()
            .get(0)
    };
    // The SQL submit first, its transaction open while the Rust one comes.
    let mut c = client();
    let mut tx = c.transaction().unwrap();
    let sql_id: i64 = tx
        .query_one(
            &format!("SELECT \"{s}\".submit('plain', unique_key => 'race-a')"),
            &[],
        )
        .unwrap()
        .get(0);
    let mut rust = q.options().connect_client().unwrap();
    let pid: i32 = rust
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let done = AtomicBool::new(false);
    let rust_id = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let mut rtx = rust.transaction().unwrap();
            let out = q.enqueue_in(&mut rtx, &[unique_plain("race-a")]).unwrap();
            rtx.commit().unwrap();
            done.store(true, Ordering::SeqCst);
            out[0].id().0 as i64
        });
        let waited = waits_or_finishes(pid, &done);
        tx.commit().unwrap();
        let id = h.join().unwrap();
        assert!(waited, "the Rust submitter waited for the SQL one's lock");
        id
    });
    assert_eq!(rust_id, sql_id, "the Rust submit found the SQL one's job");
    assert_eq!(count("race-a"), 1);

    // The Rust insert first, the SQL submit while its transaction is open.
    let mut rust = q.options().connect_client().unwrap();
    let mut rtx = rust.transaction().unwrap();
    let rust_id = q.enqueue_in(&mut rtx, &[unique_plain("race-b")]).unwrap()[0]
        .id()
        .0 as i64;
    let mut c = client();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let done = AtomicBool::new(false);
    let sql_id = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            let id: i64 = c
                .query_one(
                    &format!("SELECT \"{s}\".submit('plain', unique_key => 'race-b')"),
                    &[],
                )
                .unwrap()
                .get(0);
            done.store(true, Ordering::SeqCst);
            id
        });
        let waited = waits_or_finishes(pid, &done);
        rtx.commit().unwrap();
        let id = h.join().unwrap();
        assert!(waited, "the SQL submitter waited for the Rust one's lock");
        id
    });
    assert_eq!(sql_id, rust_id, "the SQL submit found the Rust one's job");
    assert_eq!(count("race-b"), 1);
}

#[test]
fn a_submit_in_the_callers_transaction_wakes_listeners_only_at_commit() {
    let (_q, s) = published("sql_tx");
    let mut listener = client();
    listener
        .batch_execute(&format!("LISTEN \"runyard_{s}\""))
        .unwrap();
    let mut c = client();
    let mut tx = c.transaction().unwrap();
    tx.query_one(&format!("SELECT \"{s}\".submit('plain')"), &[])
        .unwrap();
    tx.rollback().unwrap();
    let mut tx = c.transaction().unwrap();
    let id: i64 = tx
        .query_one(&format!("SELECT \"{s}\".submit('plain')"), &[])
        .unwrap()
        .get(0);
    // Not seen by another session before the commit.
    let seen: i64 = client()
        .query_one(&format!("SELECT count(*) FROM \"{s}\".jobs"), &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
    tx.commit().unwrap();
    let n = listener
        .notifications()
        .timeout_iter(Duration::from_secs(30))
        .next()
        .unwrap()
        .expect("a notification on the queue's channel");
    assert_eq!(n.channel(), format!("runyard_{s}"));
    let ids: Vec<i64> = c
        .query(&format!("SELECT id FROM \"{s}\".jobs"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![id], "the rolled-back job is not there");
}

#[test]
fn a_task_published_again_takes_the_later_workers_defaults() {
    let (q, s) = published("sql_republish");
    let mut later = (*settings()).clone();
    later.max_attempts = 8;
    later.timeout = None;
    q.publish_tasks(
        "w2",
        &[PublishedTask {
            task: TaskName::from("resize"),
            settings: Arc::new(later),
            concurrency: None,
            rate: None,
        }],
    )
    .unwrap();
    let mut c = client();
    let r = c
        .query_one(
            &format!(
                "SELECT worker, max_attempts, task_conc FROM \"{s}\".tasks WHERE task = 'resize'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "w2");
    assert_eq!(r.get::<_, i32>(1), 8);
    assert_eq!(r.get::<_, Option<i32>>(2), None);
    let id: i64 = c
        .query_one(&format!("SELECT \"{s}\".submit('resize')"), &[])
        .unwrap()
        .get(0);
    let r = c
        .query_one(
            &format!("SELECT max_attempts, timeout_us, task_conc FROM \"{s}\".jobs WHERE id = $1"),
            &[&id],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 8);
    assert_eq!(r.get::<_, Option<i64>>(1), None);
    assert_eq!(r.get::<_, Option<i32>>(2), None);
    // The other task keeps what w1 published.
    let w: String = c
        .query_one(
            &format!("SELECT worker FROM \"{s}\".tasks WHERE task = 'plain'"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(w, "w1");
}
