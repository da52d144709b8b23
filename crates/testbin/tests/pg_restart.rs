//! Workers draining a PostgreSQL queue while the server restarts: they
//! reconnect and finish, and no job is lost. (A test binary of its own:
//! the restart would disturb the other tests' server.)

mod common;
mod pg;

use std::time::Duration;

use common::*;
use pg::*;

#[test]
fn workers_reconnect_after_the_server_restarts_and_lose_no_job() {
    const JOBS: i64 = 6_000;
    let q = TestQueue::new("restart");
    let d = dir();
    let side = d.path().join("executions");
    let file = append_jobs(d.path(), &side, JOBS as u64, 300);
    let out = q.cli(&["submit", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut db = q.db();
    let (log1, log2) = (d.path().join("w1.log"), d.path().join("w2.log"));
    let w1 = q.worker("w1", &["--lease", "5s", "-j", "1"], &log1);
    let w2 = q.worker("w2", &["--lease", "5s", "-j", "1"], &log2);
    wait_until(Duration::from_secs(120), "a quarter of the jobs", || {
        q.count(&mut db, "succeeded") >= JOBS / 4
    });
    runyard_postgres::testing::server().restart();
    let mut db = q.db();
    let mid = q.count(&mut db, "succeeded");
    assert!(mid < JOBS, "the restart came after the run ({mid} done)");
    wait_until(Duration::from_secs(240), "every job to succeed", || {
        q.count(&mut db, "succeeded") == JOBS
    });
    stop(w1, Duration::from_secs(30), &log1);
    stop(w2, Duration::from_secs(30), &log2);
    check_every_job_succeeded_once(&q, &mut db, JOBS, &side);
}
