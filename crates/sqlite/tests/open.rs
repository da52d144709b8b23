//! Opening state files: what is not a runyard queue this build can use is
//! refused, and left exactly as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runyard_core::OutcomeKind;
use runyard_queue::conformance::{job, record};
use runyard_queue::{Admin, Completion, Inspect, Queue, QueueErrorKind, Verdict};
use runyard_sqlite::{OpenMode, SqliteQueue, SCHEMA_VERSION};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Opening `path` fails with `kind`, and the file's bytes are unchanged.
fn refused(path: &Path, mode: OpenMode, kind: QueueErrorKind, says: &str) {
    let before = std::fs::read(path).ok();
    let e = SqliteQueue::open(path, mode).expect_err("opening must fail");
    assert_eq!(e.kind(), kind, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(msg.contains(says), "{msg:?} should say {says:?}");
    assert_eq!(std::fs::read(path).ok(), before, "the file is untouched");
    let parent = path.parent().unwrap();
    for side in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(side);
        assert!(!PathBuf::from(p).exists(), "no {side} file left next to it");
    }
    assert!(parent.exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    let d = dir();
    let p = d.path().join("notes.db");
    std::fs::write(
        &p,
        b"these are my notes, not a database, and they matter\n".repeat(200),
    )
    .unwrap();
    refused(
        &p,
        OpenMode::CreateOrOpen,
        QueueErrorKind::Corrupt,
        "not an SQLite file",
    );
}

#[test]
fn an_sqlite_file_of_another_program_is_refused() {
    let d = dir();
    let p = d.path().join("app.db");
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'ada');")
            .unwrap();
    }
    refused(
        &p,
        OpenMode::CreateOrOpen,
        QueueErrorKind::Corrupt,
        "tables: users",
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let d = dir();
    let p = d.path().join("state.db");
    drop(SqliteQueue::open(&p, OpenMode::CreateOrOpen).unwrap());
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute(
            "UPDATE runyard_meta SET value = ?1 WHERE key = 'schema_version'",
            [(SCHEMA_VERSION + 1).to_string()],
        )
        .unwrap();
        c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    refused(
        &p,
        OpenMode::Existing,
        QueueErrorKind::Incompatible,
        "newer runyard",
    );
}

#[test]
fn a_missing_file_is_refused_when_it_must_exist() {
    let d = dir();
    let p = d.path().join("absent.db");
    for mode in [OpenMode::Existing, OpenMode::Inspect] {
        let e = SqliteQueue::open(&p, mode).unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
        assert!(e.to_string().contains("no such state file"), "{e}");
        assert!(!p.exists(), "nothing created");
    }
    // Nor is an empty file a queue to inspect (a run killed while creating it).
    std::fs::write(&p, b"").unwrap();
    refused(
        &p,
        OpenMode::Inspect,
        QueueErrorKind::InvalidInput,
        "holds no runyard queue",
    );
}

/// A state file as the first schema wrote it, holding one queued job.
fn version_1_file(p: &Path) {
    let c = rusqlite::Connection::open(p).unwrap();
    c.execute_batch(include_str!("../migrations/0001_init.sql"))
        .unwrap();
    c.execute_batch(
        "INSERT INTO runyard_meta (key, value) VALUES ('schema_version', '1');
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('t', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0);",
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
fn an_older_file_is_read_as_it_is_when_inspected_and_upgraded_when_used() {
    let d = dir();
    let p = d.path().join("old.db");
    version_1_file(&p);
    let before = std::fs::read(&p).unwrap();
    {
        let q = SqliteQueue::open(&p, OpenMode::Inspect).unwrap();
        assert_eq!(q.counts().unwrap().queued, 1);
        assert!(q.live_workers().unwrap().is_empty());
    }
    assert_eq!(
        std::fs::read(&p).unwrap(),
        before,
        "inspecting wrote nothing"
    );
    assert_eq!(version_of(&p), "1");

    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    assert_eq!(version_of(&p), SCHEMA_VERSION.to_string(), "upgraded");
    assert_eq!(q.counts().unwrap().queued, 1, "its job kept");
    let me = runyard_queue::WorkerInfo::this_process("w", Duration::from_secs(10));
    q.register_worker(&me).unwrap().unwrap();
    assert_eq!(q.live_workers().unwrap()[0].worker, me);
    drop(q);
    let q = SqliteQueue::open(&p, OpenMode::Inspect).unwrap();
    assert_eq!(q.live_workers().unwrap()[0].worker, me, "kept in the file");
}

#[test]
fn a_missing_directory_is_refused() {
    let d = dir();
    let p = d.path().join("nope").join("state.db");
    let e = SqliteQueue::open(&p, OpenMode::CreateOrOpen).unwrap_err();
    assert!(e.to_string().contains("directory does not exist"), "{e}");
}

#[test]
fn a_read_only_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let p = d.path().join("state.db");
    drop(SqliteQueue::open(&p, OpenMode::CreateOrOpen).unwrap());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&p).unwrap();
    let e = SqliteQueue::open(&p, OpenMode::Existing).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::ReadOnly, "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn what_was_committed_is_there_after_reopening() {
    let d = dir();
    let p = d.path().join("state.db");
    let (done, left) = {
        let q = SqliteQueue::open(&p, OpenMode::CreateOrOpen).unwrap();
        let e = q
            .enqueue((0..10).map(|_| job("a", 3, 0)).collect())
            .unwrap();
        let claimed = q.claim("w1", 4, Duration::from_secs(30)).unwrap();
        let starts: Vec<_> = claimed.iter().map(|c| (c.lease(), q.now())).collect();
        q.started("w1", &starts).unwrap();
        let c = &claimed[0];
        let done = Completion {
            lease: c.lease(),
            record: record(&q, c.lease(), OutcomeKind::Succeeded),
            verdict: Verdict::Succeeded(runyard_core::Output::none()),
        };
        q.complete("w1", &[done])
            .unwrap()
            .results
            .pop()
            .unwrap()
            .unwrap();
        q.set_meta("command", "run cpu").unwrap();
        (c.id, e.len())
        // Dropped without any shutdown step, as a killed process would.
    };
    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    let counts = q.counts().unwrap();
    assert_eq!(counts.succeeded, 1);
    assert_eq!(counts.running, 3, "claims survive: their leases hold");
    assert_eq!(counts.queued, left as u64 - 4);
    let v = q.get(done).unwrap().unwrap();
    assert_eq!(v.attempts.len(), 1);
    assert_eq!(q.meta("command").unwrap().as_deref(), Some("run cpu"));
    assert_eq!(q.lease_holders().unwrap(), vec!["w1".to_string()]);
}

/// A state file as schema 3 wrote it (the migrations up to it, applied by
/// hand), holding a succeeded job with an output and a queued one.
fn version_3_file(p: &Path) {
    let c = rusqlite::Connection::open(p).unwrap();
    for m in [
        include_str!("../migrations/0001_init.sql"),
        include_str!("../migrations/0002_workers.sql"),
        include_str!("../migrations/0003_claims.sql"),
    ] {
        c.execute_batch(m).unwrap();
    }
    c.execute_batch(
        "INSERT INTO runyard_meta (key, value) VALUES ('schema_version', '3');
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate, output, attempt, claims)
         VALUES ('extract', '{}', 3, 0, 0, 0, 1, 1, 'none', 'auto', 0, '{\"rows\":3}', 1, 1);
         INSERT INTO runyard_jobs (task, params, state, priority, run_at, enqueued_at,
             max_attempts, attempts_per_round, backoff, mode, isolate)
         VALUES ('load', '{}', 0, 0, 0, 0, 1, 1, 'none', 'auto', 0);",
    )
    .unwrap();
}

#[test]
fn a_version_3_file_is_read_as_it_is_then_migrated_keeping_its_jobs() {
    use runyard_core::{After, JobId, JobState};
    let d = dir();
    let p = d.path().join("v3.db");
    version_3_file(&p);
    {
        let q = SqliteQueue::open(&p, OpenMode::Inspect).unwrap();
        let v = q.get(JobId(1)).unwrap().unwrap();
        assert_eq!(v.state, JobState::Succeeded);
        assert!(v.after.is_empty() && v.name.is_none());
        assert!(q.dependents(JobId(1)).unwrap().is_empty());
        assert_eq!(version_of(&p), "3", "inspecting migrates nothing");
    }
    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    assert_eq!(version_of(&p), SCHEMA_VERSION.to_string(), "migrated");
    let c = q.counts().unwrap();
    assert_eq!((c.succeeded, c.queued, c.blocked), (1, 1, 0), "jobs kept");
    assert_eq!(
        q.get(JobId(1)).unwrap().unwrap().output.as_json(),
        r#"{"rows":3}"#
    );
    // A job after an old one sees its output.
    let mut next = job("report", 1, 0);
    next.after = vec![After::job(JobId(1)), After::job(JobId(2))];
    let id = q.insert(vec![next]).unwrap()[0].id();
    assert_eq!(q.counts().unwrap().blocked, 1, "waits for the queued one");
    assert_eq!(q.dependents(JobId(2)).unwrap(), vec![id]);
    assert_eq!(q.workflow(JobId(1)).unwrap(), vec![JobId(1), JobId(2), id]);
}

#[test]
fn a_blocked_chain_survives_closing_and_reopening() {
    use runyard_core::{After, Output, Parent};
    let d = dir();
    let p = d.path().join("chain.db");
    let chain = |q: &SqliteQueue| {
        let jobs = (0..3)
            .map(|i| {
                let mut j = job("step", 1, 0);
                j.name = Some(format!("s{i}"));
                if i > 0 {
                    j.after = vec![After {
                        parent: Parent::Batch(i - 1),
                        key: format!("s{}", i - 1),
                        many: false,
                    }];
                }
                j
            })
            .collect();
        q.insert(jobs).unwrap()
    };
    let ids: Vec<_> = {
        let q = SqliteQueue::open(&p, OpenMode::CreateOrOpen).unwrap();
        chain(&q).iter().map(|e| e.id()).collect()
        // Dropped without any shutdown step, as a killed process would.
    };
    let step = |q: &SqliteQueue, want: usize, parents: &str| {
        let c = q.claim("w", 10, Duration::from_secs(30)).unwrap();
        assert_eq!(c.len(), 1, "one step at a time");
        assert_eq!(c[0].id, ids[want]);
        assert_eq!(c[0].parents.as_json(), parents);
        let done = Completion {
            lease: c[0].lease(),
            record: record(q, c[0].lease(), OutcomeKind::Succeeded),
            verdict: Verdict::Succeeded(Output::from_json(&want.to_string()).unwrap()),
        };
        q.complete("w", &[done]).unwrap().cascade
    };
    {
        let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
        assert_eq!(q.counts().unwrap().blocked, 2);
        let cascade = step(&q, 0, "null");
        assert_eq!(cascade.unblocked, vec![ids[1]]);
    }
    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    let c = q.counts().unwrap();
    assert_eq!(
        (c.succeeded, c.queued, c.blocked),
        (1, 1, 1),
        "released once, kept"
    );
    step(&q, 1, r#"{"s0":0}"#);
    drop(q);
    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    step(&q, 2, r#"{"s1":1}"#);
    assert_eq!(q.counts().unwrap().succeeded, 3);
}

/// Two workers started at once on a new file both open it: the one that
/// finds the schema made meanwhile does not make it again.
#[test]
fn openers_racing_on_a_new_file_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let path = dir.path().join(format!("race{round}.db"));
        let gate = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, gate) = (path.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    SqliteQueue::open(&path, OpenMode::CreateOrOpen).map(|_| ())
                })
            })
            .collect();
        for o in openers {
            let r = o.join().unwrap();
            assert!(r.is_ok(), "round {round}: {}", r.unwrap_err());
        }
    }
}
