//! Enqueueing from other languages through the queue's `submit` SQL
//! function (docs/sql-submit.md), against real worker processes: from
//! Debian's `psql` and from a Python program (psycopg 3, in the virtual
//! environment `scripts/test` makes), each in a transaction that commits
//! and one that rolls back; the worker runs the committed jobs, a job
//! whose parameters its task refuses ends dead naming the field, and an
//! unknown task is an SQL error naming the published ones. Then the least
//! privilege: a worker role without DDL rights (`?migrate=false`) drains
//! the jobs that a role with nothing but EXECUTE on the functions adds,
//! and that role can read and change no table.
//!
//! Against the test server of `runyard_postgres::testing` (a throwaway
//! cluster with trust authentication, or RUNYARD_TEST_PG_URL), each test
//! in a schema of its own.

mod common;
mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pg::*;

/// The server's URL for libpq (no runyard options), as `role`.
fn libpq_url(role: &str) -> String {
    let url = runyard_postgres::testing::server().url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host}")
}

/// The role the test server's URL connects as.
fn admin_role() -> String {
    let url = runyard_postgres::testing::server().url();
    let rest = url.split_once("://").unwrap().1;
    let user = rest.rsplit_once('@').map_or("postgres", |(u, _)| u);
    user.split(':').next().unwrap().to_string()
}

/// Runs `psql` on `script` as `role`, stopping at the first error.
fn psql(role: &str, script: &str) -> Output {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(libpq_url(role))
        .args(["-c", script])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run psql ({e}): install Debian's postgresql-client (bash scripts/test does)"
        ),
    }
}

/// Polls `cond` every 50 ms, failing after `limit`.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the queue has published `task` (the worker has started).
fn wait_published(q: &TestQueue, task: &str) {
    let mut db = q.db();
    let sql = format!(
        "SELECT count(*) FROM \"{}\".tasks WHERE task = $1",
        q.schema
    );
    wait_for(Duration::from_secs(60), "the worker's tasks", || {
        db.query_one(&sql, &[&task])
            .map(|r| r.get::<_, i64>(0) == 1)
            .unwrap_or(false)
    });
}

/// Waits until every job of the queue has ended; their states by id.
fn ended(q: &TestQueue, n: i64) -> Vec<(i64, String)> {
    let mut db = q.db();
    let sql = format!(
        "SELECT id, CASE state WHEN 3 THEN 'succeeded' WHEN 4 THEN 'dead' \
         WHEN 5 THEN 'cancelled' ELSE 'unfinished' END FROM \"{}\".jobs ORDER BY id",
        q.schema
    );
    let mut rows = Vec::new();
    wait_for(Duration::from_secs(120), "the jobs to end", || {
        rows = db
            .query(&sql, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        rows.len() as i64 == n && rows.iter().all(|(_, s)| s != "unfinished")
    });
    rows
}

/// The last error recorded for job `id`.
fn last_error(q: &TestQueue, id: i64) -> String {
    q.db()
        .query_one(
            &format!(
                "SELECT coalesce(error, '') FROM \"{}\".attempts WHERE job = $1 \
                 ORDER BY n DESC LIMIT 1",
                q.schema
            ),
            &[&id],
        )
        .unwrap()
        .get(0)
}

fn ids_of(out: &Output) -> Vec<i64> {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// The Python of the virtual environment with psycopg that `scripts/test`
/// makes (`RUNYARD_TEST_PYTHON` names another).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNYARD_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cache"));
    let py = cache.join("runyard/pyvenv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import psycopg"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python with psycopg at {}: run `bash scripts/test` (it makes the virtual \
         environment: python3 -m venv {} && {}/bin/pip install 'psycopg[binary]'), \
         or set RUNYARD_TEST_PYTHON to a python that can `import psycopg`",
        py.display(),
        cache.join("runyard/pyvenv").display(),
        cache.join("runyard/pyvenv").display()
    );
    py
}

/// What the Python program does, in the caller's own transactions.
const PYTHON: &str = r#"
import json, sys
import psycopg
from psycopg.types.json import Jsonb

url, schema = sys.argv[1], sys.argv[2]
out = {}
with psycopg.connect(url) as conn:
    # Committed with the caller's own row: both or neither.
    with conn.transaction():
        conn.execute(f'CREATE TABLE "{schema}".orders (id int)')
        conn.execute(f'INSERT INTO "{schema}".orders VALUES (1)')
        out["committed"] = conn.execute(
            f'SELECT "{schema}".submit(%s, %s, max_attempts => %s)',
            ("cpu", Jsonb({"n": 20}), 2)).fetchone()[0]
        out["many"] = conn.execute(
            f'SELECT "{schema}".submit_many(%s, %s::jsonb[])',
            ("cpu", [Jsonb({"n": 5}), Jsonb({"n": 6})])).fetchone()[0]
        out["bad"] = conn.execute(
            f'SELECT "{schema}".submit(%s, %s)',
            ("cpu", Jsonb({"n": "many"}))).fetchone()[0]
    # Rolled back: no job.
    try:
        with conn.transaction():
            conn.execute(f'SELECT "{schema}".submit(%s, %s)', ("cpu", Jsonb({"n": 7})))
            raise psycopg.Rollback()
    except psycopg.Rollback:
        pass
    # An unknown task.
    try:
        with conn.transaction():
            conn.execute(f'SELECT "{schema}".submit(%s)', ("cpuu",))
        out["unknown"] = None
    except psycopg.errors.InvalidParameterValue as e:
        out["unknown"] = {"message": e.diag.message_primary, "hint": e.diag.message_hint}
print(json.dumps(out))
"#;

#[test]
fn jobs_submitted_from_psql_and_python_run_on_a_worker() {
    let py = python();
    let q = TestQueue::new("sql_submit");
    let d = dir();
    let s = &q.schema;
    let log = d.path().join("w1.log");
    let worker = q.worker("w1", &["--tasks", "cpu"], &log);
    wait_published(&q, "cpu");
    let admin = admin_role();

    // psql: one transaction commits, one rolls back.
    let out = psql(
        &admin,
        &format!(
            "BEGIN; SELECT \"{s}\".submit('cpu', '{{\"n\": 10}}', priority => 1); COMMIT; \
             BEGIN; SELECT \"{s}\".submit('cpu', '{{\"n\": 11}}'); ROLLBACK; \
             SELECT \"{s}\".submit('cpu', '{{\"n\": 0}}');"
        ),
    );
    let psql_ids = ids_of(&out);
    // Three ids printed, the rolled-back one among them.
    assert_eq!(psql_ids.len(), 3, "{psql_ids:?}");
    let (from_psql, rolled_back, out_of_range) = (psql_ids[0], psql_ids[1], psql_ids[2]);
    let out = psql(&admin, &format!("SELECT \"{s}\".submit('cpuu');"));
    assert_eq!(out.status.code(), Some(1), "psql stops at the error");
    let err = text(&out.stderr);
    assert!(
        err.contains("no worker of this queue has published a task named \"cpuu\""),
        "{err}"
    );
    assert!(err.contains("HINT:  Published tasks: cpu."), "{err}");

    // Python with psycopg.
    let out = Command::new(&py)
        .args(["-c", PYTHON, &libpq_url(&admin), s])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed = v["committed"].as_i64().unwrap();
    let many: Vec<i64> = v["many"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    let bad = v["bad"].as_i64().unwrap();
    assert_eq!(many.len(), 2);
    let unknown = &v["unknown"];
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("task named \"cpuu\""),
        "{unknown}"
    );
    assert_eq!(unknown["hint"], "Published tasks: cpu.");

    // The worker runs what was committed; the rolled-back jobs are not there.
    let states = ended(&q, 6);
    let ids: Vec<i64> = states.iter().map(|(id, _)| *id).collect();
    assert!(!ids.contains(&rolled_back));
    for id in [from_psql, committed, many[0], many[1]] {
        assert!(
            states.contains(&(id, "succeeded".into())),
            "job {id}: {states:?}"
        );
    }
    for (id, field) in [(bad, "`n`"), (out_of_range, "n")] {
        assert!(
            states.contains(&(id, "dead".into())),
            "job {id}: {states:?}"
        );
        let e = last_error(&q, id);
        assert!(e.contains("invalid parameters") && e.contains(field), "{e}");
    }
    // Dead at once: bad parameters are never retried.
    let attempts: i64 = q
        .db()
        .query_one(
            &format!("SELECT count(*) FROM \"{s}\".attempts WHERE job = $1"),
            &[&bad],
        )
        .unwrap()
        .get(0);
    assert_eq!(attempts, 1);
    let orders: i64 = q
        .db()
        .query_one(&format!("SELECT count(*) FROM \"{s}\".orders"), &[])
        .unwrap()
        .get(0);
    assert_eq!(orders, 1, "the caller's row committed with its jobs");
    stop(worker, Duration::from_secs(30), &log);
}

#[test]
fn bad_parameters_end_dead_in_child_processes_too_and_the_worker_goes_on() {
    let q = TestQueue::new("sql_lanes");
    let s = &q.schema;
    let d = dir();
    let admin = admin_role();
    // Jobs of this worker run in child processes (the mode it publishes).
    let log = d.path().join("w1.log");
    let worker = q.worker("w1", &["--mode", "process", "--tasks", "cpu,sleep"], &log);
    wait_published(&q, "sleep");
    let out = psql(
        &admin,
        &format!(
            "SELECT \"{s}\".submit('cpu', '{{\"n\": \"lots\"}}'); \
             SELECT \"{s}\".submit('sleep', '{{\"duration\": 5}}'); \
             SELECT \"{s}\".submit('sleep', '{{\"seconds\": 1}}'); \
             SELECT \"{s}\".submit('cpu', '{{\"n\": 3}}'); \
             SELECT \"{s}\".submit('sleep', '{{\"duration\": \"1ms\"}}');"
        ),
    );
    let ids = ids_of(&out);
    assert_eq!(ids.len(), 5, "{ids:?}");
    let states = ended(&q, 5);
    let mode: String = q
        .db()
        .query_one(
            &format!("SELECT mode FROM \"{s}\".jobs WHERE id = $1"),
            &[&ids[0]],
        )
        .unwrap()
        .get(0);
    assert_eq!(mode, "process");
    for (id, field) in [
        (ids[0], "`n`"),
        (ids[1], "`duration`"),
        (ids[2], "`seconds`"),
    ] {
        assert!(
            states.contains(&(id, "dead".into())),
            "job {id}: {states:?}"
        );
        let e = last_error(&q, id);
        assert!(e.contains("invalid parameters") && e.contains(field), "{e}");
    }
    for id in [ids[3], ids[4]] {
        assert!(
            states.contains(&(id, "succeeded".into())),
            "job {id}: {states:?}"
        );
    }
    stop(worker, Duration::from_secs(30), &log);
}

#[test]
fn a_least_privilege_worker_drains_what_a_submit_only_role_adds() {
    let q = TestQueue::new("sql_roles");
    let s = q.schema.clone();
    let admin = admin_role();
    let out = q.cli(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (w, sub) = (format!("{s}_worker"), format!("{s}_submit"));
    // The grants of docs/sql-submit.md, and nothing more.
    let grants = format!(
        "CREATE ROLE \"{w}\" LOGIN; CREATE ROLE \"{sub}\" LOGIN; \
         GRANT USAGE ON SCHEMA \"{s}\" TO \"{w}\"; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{s}\" TO \"{w}\"; \
         GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \"{s}\" TO \"{w}\"; \
         GRANT USAGE ON SCHEMA \"{s}\" TO \"{sub}\"; \
         GRANT EXECUTE ON FUNCTION \"{s}\".submit, \"{s}\".submit_many TO \"{sub}\";"
    );
    let out = psql(&admin, &grants);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let d = dir();
    let log = d.path().join("w1.log");
    let worker_url = q.url.replacen(&format!("{admin}@"), &format!("{w}@"), 1) + "&migrate=false";
    let worker = runyard()
        .args(["worker", "-q", "--queue", &worker_url, "--name", "w1"])
        .args(["--tasks", "cpu"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_published(&q, "cpu");

    // The submitting role adds jobs, in a transaction of its own.
    let out = psql(
        &sub,
        &format!(
            "BEGIN; SELECT \"{s}\".submit('cpu', '{{\"n\": 3}}'); \
             SELECT \"{s}\".submit_many('cpu', ARRAY['{{\"n\": 4}}', '{{\"n\": 5}}']::jsonb[]); \
             COMMIT;"
        ),
    );
    let ids = ids_of(&out);
    assert_eq!(ids.len(), 3, "{ids:?}");
    // `runyard submit` runs on the worker's grants.
    let out = finish({
        let mut c = runyard();
        c.args(["submit", "--queue", &worker_url, "cpu:n=6"]);
        c
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let states = ended(&q, 4);
    assert!(
        states.iter().all(|(_, st)| st == "succeeded"),
        "{states:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // It can read and change no table, nor make one.
    for stmt in [
        format!("SELECT count(*) FROM \"{s}\".jobs"),
        format!("SELECT count(*) FROM \"{s}\".tasks"),
        format!("UPDATE \"{s}\".jobs SET priority = 9"),
        format!("INSERT INTO \"{s}\".paused VALUES ('cpu')"),
        format!("DELETE FROM \"{s}\".tasks"),
        format!("SELECT \"{s}\".frontier()"),
        format!("CREATE TABLE \"{s}\".mine (x int)"),
    ] {
        let out = psql(&sub, &stmt);
        assert!(!out.status.success(), "{sub} may: {stmt}");
        assert!(
            text(&out.stderr).contains("permission denied"),
            "{stmt}: {}",
            text(&out.stderr)
        );
    }
    // The worker's role makes no table either.
    let out = psql(&w, &format!("CREATE TABLE \"{s}\".mine (x int)"));
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );
    // Nor may it submit: EXECUTE is not PUBLIC's.
    let out = psql(&w, &format!("SELECT \"{s}\".submit('cpu')"));
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );
    stop(worker, Duration::from_secs(30), &log);
}
