//! Workers draining a PostgreSQL queue while the server goes away: they
//! reconnect and finish, and no job is lost; a worker started while the
//! server is down waits for it. (A test binary of its own: stopping the
//! server would disturb the other tests; its tests take turns.)

mod common;
mod pg;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use pg::*;

/// One outage at a time.
static SERVER: Mutex<()> = Mutex::new(());

#[test]
fn workers_reconnect_after_the_server_restarts_and_lose_no_job() {
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    const JOBS: i64 = 6_000;
    let q = TestQueue::new("restart");
    let d = dir();
    let side = q.submit_appends(d.path(), JOBS as u64, 300);
    let mut db = q.db();
    let workers = q.workers(d.path(), 2, &["--lease", "5s", "-j", "1"]);
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
    stop_all(workers);
    check_every_job_succeeded_once(&q, &mut db, JOBS, &side);
}

#[test]
fn workers_ride_out_an_outage_longer_than_they_reconnect_for() {
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    const JOBS: i64 = 4_000;
    let mut q = TestQueue::new("outage");
    // Each operation reconnects for one second at most; the outage lasts
    // several: the workers' operations fail, and the workers go on.
    q.url.push_str("&reconnect=1s");
    let d = dir();
    let side = q.submit_appends(d.path(), JOBS as u64, 1000);
    let mut db = q.db();
    let mut workers = q.workers(d.path(), 2, &["--lease", "5s", "-j", "1"]);
    wait_until(Duration::from_secs(120), "a tenth of the jobs", || {
        q.count(&mut db, "succeeded") >= JOBS / 10
    });
    let server = runyard_postgres::testing::server();
    server.stop();
    drop(db);
    std::thread::sleep(Duration::from_secs(4));
    for (w, log) in &mut workers {
        assert!(
            w.try_wait().unwrap().is_none(),
            "a worker gave up during the outage: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    server.start();
    let mut db = q.db();
    let mid = q.count(&mut db, "succeeded");
    assert!(mid < JOBS, "the outage came after the run ({mid} done)");
    wait_until(Duration::from_secs(240), "every job to succeed", || {
        q.count(&mut db, "succeeded") == JOBS
    });
    stop_all(workers);
    check_every_job_succeeded_once(&q, &mut db, JOBS, &side);
}

/// Starts the stopped server again when dropped, unless it was already.
struct Down(&'static runyard_postgres::testing::Server, bool);

impl Down {
    fn stop(server: &'static runyard_postgres::testing::Server) -> Down {
        server.stop();
        Down(server, true)
    }

    fn start(&mut self) {
        self.0.start();
        self.1 = false;
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        if self.1 {
            self.0.start();
        }
    }
}

#[test]
fn a_worker_started_while_the_server_is_down_waits_for_it() {
    let _turn = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut q = TestQueue::new("down_at_start");
    // The window bounds how long one operation reconnects; at start-up the
    // worker waits for as long as the server takes.
    q.url.push_str("&reconnect=1s");
    let d = dir();
    let log = d.path().join("w.log");
    let mut down = Down::stop(runyard_postgres::testing::server());
    let mut w = q.worker("early", &[], &log);
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        Duration::from_secs(60),
        "the worker to say it waits",
        || {
            let st = w.try_wait().unwrap();
            assert!(st.is_none(), "the worker gave up ({st:?}): {}", said());
            said().contains("cannot reach the queue")
        },
    );
    let waiting = said();
    assert!(
        waiting.contains("trying again every 1s until it answers"),
        "{waiting}"
    );
    down.start();
    let out = q.cli(&["submit", "--wait", "noop*3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(said().contains("the queue answers"), "{}", said());
    assert!(w.try_wait().unwrap().is_none());
    stop(w, Duration::from_secs(30), &log);
}
