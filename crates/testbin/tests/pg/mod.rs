//! What the PostgreSQL tests share: workers as real processes, the test
//! server, and reading the queue's tables directly to check the record.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::common::{finish, runyard};

/// A queue in a schema of its own on the test server.
pub(crate) struct TestQueue {
    pub(crate) url: String,
    pub(crate) schema: String,
}

impl TestQueue {
    pub(crate) fn new(name: &str) -> TestQueue {
        let url = runyard_postgres::testing::server().fresh_url(name);
        let schema = url.rsplit_once("schema=").unwrap().1.to_string();
        TestQueue { url, schema }
    }

    /// A connection to the server, for checking what the queue holds.
    pub(crate) fn db(&self) -> Client {
        Client::connect(runyard_postgres::testing::server().url(), NoTls).unwrap()
    }

    /// Jobs per state name.
    pub(crate) fn states(&self, db: &mut Client) -> BTreeMap<String, i64> {
        let sql = format!(
            "SELECT CASE state WHEN 0 THEN 'waiting' WHEN 1 THEN 'blocked' WHEN 2 THEN 'running' \
             WHEN 3 THEN 'succeeded' WHEN 4 THEN 'dead' ELSE 'cancelled' END, COUNT(*) \
             FROM \"{}\".jobs GROUP BY 1",
            self.schema
        );
        match db.query(&sql, &[]) {
            Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            // Not migrated yet.
            Err(_) => BTreeMap::new(),
        }
    }

    pub(crate) fn count(&self, db: &mut Client, state: &str) -> i64 {
        self.states(db).get(state).copied().unwrap_or(0)
    }

    /// Runs `runyard ARGS --queue URL` to the end.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        finish({
            let mut c = runyard();
            c.args(args).args(["--queue", &self.url]);
            c
        })
    }

    /// Submits `n` `append` jobs (each working `work_us`) recording their
    /// executions in a side file under `dir`; returns the side file.
    pub(crate) fn submit_appends(&self, dir: &Path, n: u64, work_us: u64) -> PathBuf {
        let side = dir.join("executions");
        let file = append_jobs(dir, &side, n, work_us);
        let out = self.cli(&["submit", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
        side
    }

    /// Starts `k` workers `w1`..`wk` with `args`, each logging to
    /// `dir/wN.log`.
    pub(crate) fn workers(&self, dir: &Path, k: u32, args: &[&str]) -> Vec<(Child, PathBuf)> {
        (1..=k)
            .map(|n| {
                let log = dir.join(format!("w{n}.log"));
                (self.worker(&format!("w{n}"), args, &log), log)
            })
            .collect()
    }

    /// Starts `runyard worker` named `name`; its stderr goes to `log`.
    pub(crate) fn worker(&self, name: &str, extra: &[&str], log: &Path) -> Child {
        runyard()
            .args(["worker", "-q", "--queue", &self.url, "--name", name])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }
}

pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: a child we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Sends SIGTERM and waits (at most `limit`) for a clean exit.
pub(crate) fn stop(mut child: Child, limit: Duration, log: &Path) {
    signal(&child, libc::SIGTERM);
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(
                st.success(),
                "the worker exited with {st} on SIGTERM: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if start.elapsed() > limit {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
            panic!("the worker did not stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops each worker with SIGTERM (see [`stop`]).
pub(crate) fn stop_all(workers: Vec<(Child, PathBuf)>) {
    for (w, log) in workers {
        stop(w, Duration::from_secs(30), &log);
    }
}

/// Job ids and how many times each ran, from the tasks' side file.
pub(crate) fn executions(side: &Path) -> BTreeMap<u64, u32> {
    let mut runs = BTreeMap::new();
    for line in std::fs::read_to_string(side).unwrap_or_default().lines() {
        let id: u64 = line.split(' ').next().unwrap().parse().unwrap();
        *runs.entry(id).or_insert(0) += 1;
    }
    runs
}

/// A job file of `n` `append` jobs writing to `side`.
pub(crate) fn append_jobs(dir: &Path, side: &Path, n: u64, work_us: u64) -> PathBuf {
    let file = dir.join("jobs.toml");
    std::fs::write(
        &file,
        format!(
            "[defaults]\nmax_attempts = 20\nbackoff = \"none\"\n\n\
             [[job]]\ntask = \"append\"\ncount = {n}\nparams = {{ file = {:?}, work_us = {work_us} }}\n",
            side.display().to_string()
        ),
    )
    .unwrap();
    file
}

/// Checks the record: `n` jobs, each succeeded, each with exactly one
/// succeeded attempt recorded, and each executed at least once.
pub(crate) fn check_every_job_succeeded_once(q: &TestQueue, db: &mut Client, n: i64, side: &Path) {
    let s = &q.schema;
    assert_eq!(q.states(db), BTreeMap::from([("succeeded".into(), n)]));
    assert_each_success_recorded_once(q, db);
    let recorded: i64 = db
        .query_one(
            &format!(
                "SELECT COUNT(DISTINCT job) FROM \"{s}\".attempts WHERE outcome = 'succeeded'"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(recorded, n);
    let runs = executions(side);
    assert_eq!(runs.len() as i64, n, "every job ran at least once");
    let ids: Vec<i64> = db
        .query(&format!("SELECT id FROM \"{s}\".jobs ORDER BY id"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ran: Vec<i64> = runs.keys().map(|k| *k as i64).collect();
    assert_eq!(ids, ran, "the side file names exactly the queue's jobs");
}

/// No job of the queue has more than one succeeded attempt recorded.
pub(crate) fn assert_each_success_recorded_once(q: &TestQueue, db: &mut Client) {
    let s = &q.schema;
    let twice: i64 = db
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM (SELECT job FROM \"{s}\".attempts WHERE outcome = 'succeeded' \
                 GROUP BY job HAVING COUNT(*) <> 1) x"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(twice, 0, "jobs with more or less than one success recorded");
}
