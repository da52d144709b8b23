//! A real partition: one worker reaches the PostgreSQL queue through a TCP
//! proxy that the test turns into a black hole (bytes neither read nor
//! passed on, connections left open, as when a cable is cut) for longer
//! than the worker's lease, then lets through again. The cut-off worker
//! stops its attempts before their leases expire, although its queue
//! operations wait through the cut; the other worker rescues its jobs, the
//! cut-off worker's late outcomes are refused by fencing, it rejoins and
//! runs jobs again, and every job is recorded exactly once.
//!
//! The proxy's black hole keeps TCP alive (the kernel still acknowledges
//! what the worker sends), as a frozen server or middlebox would: no TCP
//! timeout ends the worker's blocked operations, which go on when the cut
//! ends (see docs/deployment.md).

mod common;
mod pg;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::*;
use pg::*;

/// A TCP proxy on 127.0.0.1 to the test server, with a switch that makes
/// it a black hole.
struct Proxy {
    port: u16,
    /// Whether the proxy is a black hole; a copy holds it (read) from
    /// checking it to having written, so that once [`Proxy::set_cut`]
    /// returns, no byte passes.
    cut: Arc<RwLock<bool>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(RwLock::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, a, s) = (cut.clone(), accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream.as_str()) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (c, s) = (c.clone(), s.clone());
                    std::thread::spawn(move || pipe(from, to, &c, &s));
                }
            }
        });
        Proxy {
            port,
            cut,
            accepted,
            stop,
        }
    }

    fn set_cut(&self, yes: bool) {
        *self.cut.write().unwrap() = yes;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set_cut(false);
        // Wakes the accepting thread so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` until either closes. While `cut` is set nothing
/// is read or written: what was sent waits in the sockets' buffers.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: &RwLock<bool>, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = 0;
    while !stop.load(Ordering::SeqCst) {
        let black_hole = cut.read().unwrap();
        if *black_hole {
            drop(black_hole);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if pending > 0 {
            if to.write_all(&buf[..pending]).is_err() {
                break;
            }
            pending = 0;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending = n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Kills the workers of a test that failed, so that none outlives it.
struct KillOnPanic(Vec<u32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pid in &self.0 {
                // SAFETY: sending a signal has no memory effects.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> String {
    let after = url.split_once('@').map_or(url, |(_, r)| r);
    let end = after.find(['/', '?']).unwrap_or(after.len());
    after[..end].to_string()
}

/// `(attempt, outcome, worker)` of every attempt recorded, per job.
fn attempts(q: &TestQueue, db: &mut postgres::Client) -> Vec<(i64, i32, String, Option<String>)> {
    db.query(
        &format!(
            "SELECT job, n, outcome, worker FROM \"{}\".attempts ORDER BY job, n",
            q.schema
        ),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// The lease (until when, in microseconds since the Unix epoch) of each
/// attempt `(job, attempt)` running under worker `name`, by the queue's
/// record.
fn leases_of(q: &TestQueue, db: &mut postgres::Client, name: &str) -> Vec<((i64, i32), i64)> {
    db.query(
        &format!(
            "SELECT id, attempt, lease_until FROM \"{}\".jobs WHERE state = 2 AND worker = $1",
            q.schema
        ),
        &[&name],
    )
    .unwrap()
    .iter()
    .map(|r| ((r.get(0), r.get(1)), r.get(2)))
    .collect()
}

/// The ids of the jobs of `task`.
fn jobs_of(q: &TestQueue, db: &mut postgres::Client, task: &str) -> Vec<i64> {
    db.query(
        &format!("SELECT id FROM \"{}\".jobs WHERE task = $1", q.schema),
        &[&task],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The mode of each job of `task`, by id.
fn modes_of(q: &TestQueue, db: &mut postgres::Client, task: &str) -> BTreeMap<i64, String> {
    db.query(
        &format!("SELECT id, mode FROM \"{}\".jobs WHERE task = $1", q.schema),
        &[&task],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Jobs running under worker `name`, by the queue's record.
fn running_under(q: &TestQueue, db: &mut postgres::Client, name: &str) -> i64 {
    db.query_one(
        &format!(
            "SELECT COUNT(*) FROM \"{}\".jobs WHERE state = 2 AND worker = $1",
            q.schema
        ),
        &[&name],
    )
    .unwrap()
    .get(0)
}

#[test]
fn a_worker_cut_off_past_its_lease_gives_way_and_rejoins() {
    const JOBS: i64 = 120;
    const TICKS: i64 = 4;
    const LEASE: Duration = Duration::from_secs(3);
    let q = TestQueue::new("partition");
    let upstream = host_port(&q.url);
    let proxy = Proxy::start(upstream.clone());
    let mut cut_q = TestQueue {
        url: q
            .url
            .replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1),
        schema: q.schema.clone(),
    };
    assert_ne!(cut_q.url, q.url, "the proxy's URL: {}", cut_q.url);
    // Each operation reconnects for a second at most, so that the cut-off
    // worker's operations fail rather than wait through the whole cut.
    cut_q.url.push_str("&reconnect=1s");

    let d = dir();
    // Attempts longer than the cut: they tick into `ticks` until `until`
    // exists, half of them on the blocking pool, half in worker processes.
    // Submitted first, the cut-off worker claims them.
    let (ticks, until) = (d.path().join("ticks"), d.path().join("until"));
    let mut file = String::new();
    for i in 0..TICKS {
        let mode = if i % 2 == 0 { "auto" } else { "process" };
        file.push_str(&format!(
            "[[job]]\ntask = \"tick\"\nmode = \"{mode}\"\nparams.file = {:?}\nparams.until = {:?}\n",
            ticks.display().to_string(),
            until.display().to_string()
        ));
    }
    let tick_file = d.path().join("ticks.toml");
    std::fs::write(&tick_file, file).unwrap();
    let out = q.cli(&["submit", "-f", tick_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = q.cli(&["submit", &format!("sleep:duration=500ms*{JOBS}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut db = q.db();
    let tick_jobs = jobs_of(&q, &mut db, "tick");
    let (log_a, log_b) = (d.path().join("a.log"), d.path().join("b.log"));
    let args = ["--lease", "3s", "-j", "4"];
    let a = cut_q.worker("a", &args, &log_a);
    let mut guard = KillOnPanic(vec![a.id()]);
    wait_until(Duration::from_secs(60), "worker a to run jobs", || {
        let held = leases_of(&q, &mut db, "a");
        let ticking = tick_jobs
            .iter()
            .all(|j| held.iter().any(|((id, _), _)| id == j));
        ticking && held.len() >= 2
    });
    assert!(proxy.accepted.load(Ordering::SeqCst) > 0);
    let b = q.worker("b", &args, &log_b);
    guard.0.push(b.id());
    wait_until(Duration::from_secs(60), "worker b to run jobs", || {
        running_under(&q, &mut db, "b") >= 1
    });

    // The cut, with attempts of a's running.
    proxy.set_cut(true);
    let cut_at = Instant::now();
    assert!(
        running_under(&q, &mut db, "a") > 0,
        "a held no job at the cut"
    );

    // b takes over a's jobs once a's leases expired. Until then the
    // queue's record says until when each of a's leases runs (renewed by
    // no heartbeat after the cut).
    let mut a_leases: BTreeMap<(i64, i32), i64> = BTreeMap::new();
    wait_until(Duration::from_secs(60), "b to rescue a's jobs", || {
        let held = leases_of(&q, &mut db, "a");
        for (attempt, until) in &held {
            let e = a_leases.entry(*attempt).or_insert(*until);
            *e = (*e).max(*until);
        }
        held.is_empty()
    });
    let rescued_after = cut_at.elapsed();
    let said = |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default();
    // Past a few leases the cut ends.
    while cut_at.elapsed() < 3 * LEASE {
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.set_cut(false);
    std::fs::write(&until, b"").unwrap();

    // a rejoins: it runs jobs again.
    let before: i64 = attempts(&q, &mut db)
        .iter()
        .filter(|t| t.3.as_deref() == Some("a") && t.2 == "succeeded")
        .count() as i64;
    let out = q.cli(&["submit", &format!("sleep:duration=200ms*{JOBS}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until(Duration::from_secs(120), "every job to succeed", || {
        q.count(&mut db, "succeeded") == 2 * JOBS + TICKS
    });
    let all = attempts(&q, &mut db);
    let after = all
        .iter()
        .filter(|t| t.3.as_deref() == Some("a") && t.2 == "succeeded")
        .count() as i64;
    assert!(
        after > before,
        "a ran no job after the cut: {}",
        said(&log_a)
    );
    // `stop` kills a worker that does not stop, and reaps it.
    guard.0.clear();
    stop(a, Duration::from_secs(30), &log_a);
    stop(b, Duration::from_secs(30), &log_b);

    // The jobs a held at the cut: a's attempt is recorded as lost
    // (crashed, by the rescue: its late outcome was refused), and the
    // job's success is a later attempt's, recorded once.
    let lost: Vec<i64> = all
        .iter()
        .filter(|t| t.3.as_deref() == Some("a") && t.2 == "crashed")
        .map(|t| t.0)
        .collect();
    assert!(!lost.is_empty(), "no attempt of a was rescued: {all:?}");
    for job in &lost {
        let mine: Vec<_> = all.iter().filter(|t| t.0 == *job).collect();
        let lost_at = mine
            .iter()
            .filter(|t| t.3.as_deref() == Some("a") && t.2 == "crashed")
            .map(|t| t.1)
            .max()
            .unwrap();
        let wins: Vec<_> = mine.iter().filter(|t| t.2 == "succeeded").collect();
        assert_eq!(wins.len(), 1, "job {job}: {mine:?}");
        assert!(wins[0].1 > lost_at, "job {job}: {mine:?}");
    }
    let outcomes: std::collections::BTreeSet<&str> = all.iter().map(|t| t.2.as_str()).collect();
    assert!(
        outcomes
            .iter()
            .all(|o| ["succeeded", "crashed"].contains(o)),
        "{outcomes:?}"
    );
    assert_eq!(
        q.states(&mut db),
        BTreeMap::from([("succeeded".into(), 2 * JOBS + TICKS)])
    );
    assert_each_success_recorded_once(&q, &mut db);

    // No attempt of a's ran past its lease: its last tick came before the
    // lease the queue recorded for it expired.
    let mut last_tick: BTreeMap<(i64, i32), i64> = BTreeMap::new();
    for line in std::fs::read_to_string(&ticks).unwrap().lines() {
        let f: Vec<i64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let e = last_tick.entry((f[0], f[1] as i32)).or_insert(f[2]);
        *e = (*e).max(f[2]);
    }
    let cut_off: Vec<_> = (a_leases.iter())
        .filter(|(k, _)| tick_jobs.contains(&k.0))
        .collect();
    assert_eq!(cut_off.len(), TICKS as usize, "{a_leases:?}");
    for (attempt, lease_until) in &a_leases {
        if let Some(last) = last_tick.get(attempt) {
            assert!(
                last < lease_until,
                "attempt {attempt:?} of a ticked {} ms past its lease: {}",
                (last - *lease_until) / 1000,
                said(&log_a)
            );
        }
    }
    let modes = modes_of(&q, &mut db, "tick");
    for (attempt, lease_until) in cut_off {
        let last = last_tick.get(attempt).expect("a's tick attempt ticked");
        eprintln!(
            "a's attempt {attempt:?} ({} mode) last ticked {} ms before its lease expired",
            modes[&attempt.0],
            (lease_until - last) / 1000
        );
    }
    eprintln!(
        "a's jobs rescued {rescued_after:?} after the cut; {} of a's attempts lost",
        lost.len()
    );
}
