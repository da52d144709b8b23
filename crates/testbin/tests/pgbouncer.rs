//! A worker and `submit` reaching the PostgreSQL queue through PgBouncer
//! (Debian's `pgbouncer`) in session mode: the jobs drain, and the worker
//! LISTENs through it. In transaction mode runyard's prepared statements
//! do not survive (PgBouncer 1.18, Debian 12's), and the error says to use
//! session mode.

mod common;
mod pg;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use pg::*;

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// A PgBouncer in front of the test server, stopped when dropped.
struct Bouncer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Bouncer {
    fn start(dir: &Path, upstream: &str, mode: &str) -> Bouncer {
        assert!(
            Path::new(PGBOUNCER).exists(),
            "{PGBOUNCER} is missing: install Debian's `pgbouncer` package \
             (apt-get install pgbouncer; scripts/test does)"
        );
        let (host, up_port) = upstream.rsplit_once(':').unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // PgBouncer refuses to run as root: it runs as `postgres` then,
        // and reads and writes its files in a directory open to it.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let users = dir.join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        let log = dir.join("pgbouncer.log");
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\npostgres = host={host} port={up_port} dbname=postgres\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = {mode}\nmax_client_conn = 200\ndefault_pool_size = 40\n\
                 logfile = {}\n",
                users.display(),
                log.display()
            ),
        )
        .unwrap();
        for f in [&users, &ini] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", PGBOUNCER]);
            c
        } else {
            Command::new(PGBOUNCER)
        };
        let child = cmd
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut b = Bouncer { child, port, log };
        wait_until(Duration::from_secs(30), "pgbouncer to listen", || {
            if let Some(st) = b.child.try_wait().unwrap() {
                panic!("pgbouncer exited with {st}: {}", b.said());
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        b
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // The runuser child passes SIGTERM on to pgbouncer.
        signal_pid(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}

fn signal_pid(pid: u32, sig: i32) {
    // SAFETY: a child we started and have not reaped.
    unsafe { libc::kill(pid as i32, sig) };
}

/// The `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> String {
    let after = url.split_once('@').map_or(url, |(_, r)| r);
    let end = after.find(['/', '?']).unwrap_or(after.len());
    after[..end].to_string()
}

/// The queue `q` reached through the bouncer `b`.
fn through(q: &TestQueue, b: &Bouncer) -> TestQueue {
    TestQueue {
        url: q
            .url
            .replacen(&host_port(&q.url), &format!("127.0.0.1:{}", b.port), 1),
        schema: q.schema.clone(),
    }
}

#[test]
fn a_worker_and_submit_go_through_pgbouncer_in_session_mode() {
    const JOBS: i64 = 300;
    let q = TestQueue::new("pgbouncer");
    let d = dir();
    let b = Bouncer::start(d.path(), &host_port(&q.url), "session");
    let bq = through(&q, &b);
    let mut db = q.db();

    let log = d.path().join("w.log");
    let w = bq.worker("bounced", &["--lease", "5s", "-j", "4"], &log);
    // The worker's LISTEN connection reaches the server through the
    // bouncer (the server sees its LISTEN; every client here is the
    // bouncer's).
    let channel_listened = |db: &mut postgres::Client| -> bool {
        let n: i64 = db
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' \
                 AND application_name = 'runyard'",
                &[],
            )
            .unwrap()
            .get(0);
        n > 0
    };
    wait_until(Duration::from_secs(60), "the worker to LISTEN", || {
        channel_listened(&mut db)
    });
    let out = bq.cli(&["submit", "--wait", &format!("noop*{JOBS}")]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        text(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default(),
        b.said()
    );
    assert_eq!(q.count(&mut db, "succeeded"), JOBS);
    assert!(channel_listened(&mut db));
    stop(w, Duration::from_secs(30), &log);
    assert_each_success_recorded_once(&q, &mut db);
    assert!(
        b.said().contains("login attempt"),
        "the connections went through the bouncer: {}",
        b.said()
    );
}

#[test]
fn pgbouncer_in_transaction_mode_is_refused_with_a_clear_error() {
    let q = TestQueue::new("pgbouncer_tx");
    let d = dir();
    let b = Bouncer::start(d.path(), &host_port(&q.url), "transaction");
    let bq = through(&q, &b);
    // Each command prepares its statements on whichever server connection
    // the bouncer lends it: those of the command before are still there,
    // or its own are gone.
    let failures: Vec<String> = (0..5)
        .map(|_| bq.cli(&["submit", "noop"]))
        .filter(|out| !out.status.success())
        .map(|out| text(&out.stderr))
        .collect();
    assert!(
        !failures.is_empty(),
        "five submits through transaction mode all worked"
    );
    for err in &failures {
        assert!(err.contains("prepared statement"), "{err}");
        assert!(err.contains("pool_mode = session"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
