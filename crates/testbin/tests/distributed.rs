//! A PostgreSQL queue drained by worker processes: jobs submitted by one
//! command are run by workers started apart from it; workers killed with
//! SIGKILL at random moments lose no job; a worker paused past its lease
//! cannot overwrite the outcome of the attempt that replaced it.
//!
//! Against the test server of `runyard_postgres::testing` (a throwaway
//! cluster, or RUNYARD_TEST_PG_URL), each test in a schema of its own.

mod common;
mod pg;

use std::time::Duration;

use common::*;
use pg::*;

#[test]
fn jobs_submitted_by_one_command_are_run_by_separate_workers() {
    let q = TestQueue::new("submit");
    let d = dir();
    let side = d.path().join("executions");
    let file = append_jobs(d.path(), &side, 300, 0);

    // Submitted before any worker exists: the jobs wait in the queue.
    let out = q.cli(&[
        "submit",
        "-f",
        file.to_str().unwrap(),
        "fail:permanent=true",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<u64> = text(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 301, "one id printed per job");
    // Jobs named on the command line come before the job file's.
    let (failing, appends) = (ids[0], &ids[1..]);
    let mut db = q.db();
    assert_eq!(q.count(&mut db, "waiting"), 301);

    let workers = q.workers(d.path(), 2, &["--lease", "2s"]);

    // `submit --wait` reports on its own jobs once the workers ran them.
    let out = q.cli(&["submit", "--wait", "noop*5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("noop"), "a summary of the waited jobs: {err}");
    wait_until(Duration::from_secs(120), "the first jobs to end", || {
        q.count(&mut db, "succeeded") == 305 && q.count(&mut db, "dead") == 1
    });
    check_executions_of_first(&side, appends);

    // status: counts per task, the dead job with its error.
    let out = q.cli(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["counts"]["succeeded"], 305);
    assert_eq!(s["counts"]["dead"], 1);
    assert_eq!(s["dead"][0]["id"], failing);
    assert!(s["dead"][0]["error"]
        .as_str()
        .unwrap()
        .contains("failing on purpose"));
    let tasks: Vec<&str> = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["append", "fail", "noop"]);
    assert!(s["activity"]["finished_per_s"].as_f64().unwrap() > 0.0);

    // retry: the dead job gets a fresh attempt (and dies again: permanent).
    let out = q.cli(&["retry", "--dead"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("queued again"));
    wait_until(Duration::from_secs(60), "the retried job to end", || {
        let n: i64 = db
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM \"{}\".attempts WHERE job = $1",
                    q.schema
                ),
                &[&(failing as i64)],
            )
            .unwrap()
            .get(0);
        n == 2 && q.count(&mut db, "dead") == 1
    });

    // cancel: a running job is stopped by its worker.
    let out = q.cli(&["submit", "sleep:duration=1h"]);
    let long: i64 = text(&out.stdout).trim().parse().unwrap();
    wait_until(Duration::from_secs(60), "the long job to start", || {
        q.count(&mut db, "running") == 1
    });
    let out = q.cli(&["cancel", &long.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("asked to stop"),
        "{}",
        text(&out.stdout)
    );
    wait_until(Duration::from_secs(60), "the cancel to be recorded", || {
        q.count(&mut db, "cancelled") == 1
    });

    stop_all(workers);

    // prune: the succeeded and cancelled jobs go, the dead one stays.
    std::thread::sleep(Duration::from_millis(20));
    let out = q.cli(&["prune", "--older-than", "10ms"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pruned 306 jobs"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        q.states(&mut db),
        std::collections::BTreeMap::from([("dead".to_string(), 1)])
    );

    // migrate: the schema is current.
    let out = q.cli(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to do"),
        "{}",
        text(&out.stdout)
    );
}

fn check_executions_of_first(side: &std::path::Path, ids: &[u64]) {
    let runs = executions(side);
    let ran: Vec<u64> = runs.keys().copied().collect();
    assert_eq!(ran, ids, "each submitted append job ran");
}

#[test]
fn workers_killed_at_random_moments_lose_no_job() {
    const JOBS: i64 = 20_000;
    let q = TestQueue::new("kill");
    let d = dir();
    let side = q.submit_appends(d.path(), JOBS as u64, 50);
    let mut db = q.db();

    let mut rng = Rng::new();
    let args = ["--lease", "2s", "-j", "2"];
    let mut n = 0;
    let spawn = |n: &mut u32| {
        *n += 1;
        let log = d.path().join(format!("w{n}.log"));
        (q.worker(&format!("w{n}"), &args, &log), log)
    };
    let mut workers: Vec<_> = (0..3).map(|_| spawn(&mut n)).collect();
    let mut kills = 0;
    while kills < 5 {
        let done = q.count(&mut db, "succeeded");
        if done >= JOBS {
            break;
        }
        // Let a random share of what is left run, then kill one worker.
        let target = done + 1 + rng.below(((JOBS - done) / 6).max(1) as u64) as i64;
        wait_until(Duration::from_secs(120), "progress", || {
            q.count(&mut db, "succeeded") >= target.min(JOBS)
        });
        let (mut victim, _) = workers.remove(rng.below(workers.len() as u64) as usize);
        signal(&victim, libc::SIGKILL);
        victim.wait().unwrap();
        kills += 1;
        workers.push(spawn(&mut n));
    }
    assert!(kills >= 3, "the workers were killed only {kills} times");
    wait_until(Duration::from_secs(240), "every job to succeed", || {
        q.count(&mut db, "succeeded") == JOBS
    });
    stop_all(workers);
    check_every_job_succeeded_once(&q, &mut db, JOBS, &side);
}

#[test]
fn a_worker_paused_past_its_lease_cannot_overwrite_the_new_attempt() {
    let q = TestQueue::new("pause");
    let d = dir();
    let mut db = q.db();
    let (log_a, log_b) = (d.path().join("a.log"), d.path().join("b.log"));
    let a = q.worker("a", &["--lease", "1s"], &log_a);
    let out = q.cli(&["submit", "--max-attempts", "5", "sleep:duration=2s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job: i64 = text(&out.stdout).trim().parse().unwrap();
    let s = q.schema.clone();
    let holder = |db: &mut postgres::Client| -> Option<(String, i32)> {
        db.query_opt(
            &format!(
                "SELECT worker, attempt FROM \"{s}\".jobs WHERE id = $1 AND state = 2 AND started"
            ),
            &[&job],
        )
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
    };
    wait_until(Duration::from_secs(60), "worker a to start the job", || {
        holder(&mut db).is_some_and(|(w, _)| w == "a")
    });
    signal(&a, libc::SIGSTOP);

    // b takes the job over once a's lease expires, and finishes it.
    let b = q.worker("b", &["--lease", "1s"], &log_b);
    wait_until(
        Duration::from_secs(60),
        "worker b to finish the job",
        || q.count(&mut db, "succeeded") == 1,
    );

    // a wakes with its attempt done (its sleep ran out while stopped) and
    // tries to record it; then drains and exits.
    signal(&a, libc::SIGCONT);
    stop(a, Duration::from_secs(30), &log_a);
    stop(b, Duration::from_secs(30), &log_b);

    let rows = db
        .query(
            &format!("SELECT n, outcome, worker FROM \"{s}\".attempts WHERE job = $1 ORDER BY n"),
            &[&job],
        )
        .unwrap();
    let attempts: Vec<(i32, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, "crashed".to_string(), Some("a".to_string())),
            (2, "succeeded".to_string(), Some("b".to_string())),
        ],
        "a's late outcome was refused; the record is b's"
    );
    assert_eq!(q.count(&mut db, "succeeded"), 1);
}

#[test]
fn bad_queue_urls_and_commands_are_refused_before_anything_runs() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "submit",
                "--queue",
                "postgres://u@127.0.0.1/db?schema=Bad-Name",
                "noop",
            ],
            "not a usable schema name",
        ),
        (
            &["run", "--queue", "postgres://u@127.0.0.1/db", "noop"],
            "runyard submit --queue URL",
        ),
        (&["worker", "--queue", "mysql://x"], "is not a queue URL"),
        (
            &["submit", "--queue", "memory", "noop"],
            "needs a queue that outlives the process",
        ),
        (
            &[
                "worker",
                "--queue",
                "sqlite:///nonexistent/q.db",
                "--lease",
                "1ms",
            ],
            "it must be at least 1s",
        ),
    ];
    for (args, says) in cases {
        let out = finish({
            let mut c = runyard();
            c.args(args);
            c
        });
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A password is never repeated, whatever is wrong.
    for (args, says) in [
        (
            &[
                "submit",
                "--queue",
                "postgres://u:s3cret@127.0.0.1/db?schema=Bad-Name",
                "noop",
            ][..],
            "not a usable schema name",
        ),
        (
            &[
                "submit",
                "--queue",
                "postgres://u:s3cret@127.0.0.1:port/db",
                "noop",
            ],
            "not a PostgreSQL connection URL",
        ),
        (
            &["status", "--queue", "mysql://u:s3cret@db/x"],
            "is not a queue URL",
        ),
    ] {
        let out = finish({
            let mut c = runyard();
            c.args(args);
            c
        });
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("s3cret"), "{args:?}: {err}");
    }
    // An unreachable server: an error at once, naming its host and port,
    // each cause said once (nothing retried for a minute); the runner could
    // not reach its queue: exit 3.
    let start = std::time::Instant::now();
    let out = finish({
        let mut c = runyard();
        c.args([
            "submit",
            "--queue",
            "postgres://u:s3cret@127.0.0.1:1/db",
            "noop",
        ]);
        c
    });
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot connect to 127.0.0.1:1 (postgres://u:***@127.0.0.1:1/db)"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(
        err.matches("error connecting to server").count(),
        1,
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

fn schema_exists(db: &mut postgres::Client, s: &str) -> bool {
    db.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        &[&s],
    )
    .unwrap()
    .get(0)
}

#[test]
fn status_reads_runyard_queue_and_a_missing_queue_is_never_created() {
    let q = TestQueue::new("status_env");
    let mut db = q.db();
    // Read-only, and about jobs already there: refused, nothing created.
    for args in [&["status"][..], &["retry", "1"], &["cancel", "1"]] {
        let out = q.cli(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("no runyard queue in schema `{}`", q.schema)),
            "{args:?}: {err}"
        );
        assert!(err.contains("runyard migrate --queue URL"), "{err}");
        assert!(
            !schema_exists(&mut db, &q.schema),
            "{args:?} created the schema"
        );
    }
    let out = q.cli(&["submit", "noop*2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = finish({
        let mut c = runyard();
        c.args(["status", "--json"]).env("RUNYARD_QUEUE", &q.url);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["counts"]["queued"], 2, "{s}");
    assert!(s["queue"].as_str().unwrap().contains(&q.schema), "{s}");
}

/// The pids of the live workers `status` lists under `name`.
fn live(q: &TestQueue, name: &str) -> Vec<u64> {
    let out = q.cli(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == name)
        .map(|w| w["pid"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_worker_name_is_held_while_its_worker_lives_and_taken_again_once_it_died() {
    let q = TestQueue::new("names");
    let d = dir();
    let out = q.cli(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lease = ["--lease", "1s"];
    let log = |n: &str| d.path().join(format!("{n}.log"));
    let a = q.worker("same", &lease, &log("a"));
    let a_pid = u64::from(a.id());
    wait_until(Duration::from_secs(60), "a to register", || {
        live(&q, "same") == [a_pid]
    });

    // A second live worker of the name is refused, naming the holder.
    let (code, err) = exit_of(
        runyard().args(["worker", "-q", "--name", "same", "--queue", &q.url]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("held by a live worker: pid {a_pid} on ")),
        "{err}"
    );

    // Paused past its lease, a is gone: its name is taken over, and when
    // it wakes it learns so and stops.
    signal(&a, libc::SIGSTOP);
    wait_until(Duration::from_secs(60), "a's heartbeat to lapse", || {
        live(&q, "same").is_empty()
    });
    let b = q.worker("same", &lease, &log("b"));
    let b_pid = u64::from(b.id());
    wait_until(Duration::from_secs(60), "b to take the name", || {
        live(&q, "same") == [b_pid]
    });
    signal(&a, libc::SIGCONT);
    let (mut a, mut b) = (a, b);
    let mut st = None;
    let ended = std::time::Instant::now();
    while st.is_none() && ended.elapsed() < Duration::from_secs(60) {
        st = a.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let a_log = std::fs::read_to_string(log("a")).unwrap();
    if st.is_none() {
        signal(&a, libc::SIGKILL);
        a.wait().unwrap();
    }
    assert!(
        st.is_some_and(|st| !st.success()),
        "a went on under a name taken over ({st:?}): {a_log}"
    );
    assert!(
        a_log.contains("was taken over by another worker"),
        "{a_log}"
    );

    // Killed, b frees the name once its heartbeat has lapsed: a restarted
    // worker gets it (waiting for that, not failing).
    signal(&b, libc::SIGKILL);
    b.wait().unwrap();
    let c = q.worker("same", &lease, &log("c"));
    let c_pid = u64::from(c.id());
    wait_until(Duration::from_secs(60), "c to take the name", || {
        live(&q, "same") == [c_pid]
    });
    let out = q.cli(&["submit", "--wait", "noop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    stop(c, Duration::from_secs(30), &log("c"));
    assert!(live(&q, "same").is_empty(), "c unregistered as it stopped");
}

#[test]
fn the_queue_benchmark_runs_again_on_the_schema_it_used_before() {
    // It resets the schema it is given, so long as every table there is
    // one of runyard's: the second run finds the first one's tables.
    let q = pg::TestQueue::new("bench_again");
    for round in 1..=2 {
        let out = q.cli(&["bench", "queue", "--n", "200", "--samples", "5"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        let line = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(report["tasks"], 200, "round {round}: {line}");
    }
}
