//! A throwaway PostgreSQL server for tests (feature `testing`).
//!
//! [`server`] gives the server every test of one test process shares:
//! the one `RUNYARD_TEST_PG_URL` names, or else a cluster started with
//! `initdb` and `pg_ctl` (Debian's `postgresql` package: the newest
//! `/usr/lib/postgresql/*/bin`, or `RUNYARD_PG_BIN`) in a temporary
//! directory, listening on 127.0.0.1 only, and stopped when the test
//! process exits. As root, the cluster runs as the `postgres` user.
//! Each test then takes a schema of its own ([`Server::fresh_url`]).
//!
//! A server that cannot be had is a test failure, never a skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// A PostgreSQL server for tests.
#[derive(Debug)]
pub struct Server {
    url: String,
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    /// The server's options (its port among them), once it started.
    opts: OnceLock<String>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The server this test process shares, started on first use.
///
/// # Panics
///
/// When no server can be had, with what is missing.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("RUNYARD_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Server { url, cluster: None },
        _ => start().unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL for the tests: {e}\n\
                 install Debian's `postgresql` package (apt-get install postgresql), \
                 or set RUNYARD_TEST_PG_URL to a server the tests may create schemas in"
            )
        }),
    })
}

impl Server {
    /// The server's URL (its `postgres` database).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A URL for a queue in a schema no other test uses.
    pub fn fresh_url(&self, name: &str) -> String {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let schema = format!("t_{clean}_{}_{n}", std::process::id());
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={schema}", self.url)
    }

    /// Restarts the server (fast shutdown: connections are dropped), for
    /// tests of reconnecting. Only a server this process started.
    ///
    /// # Panics
    ///
    /// When the server was given by URL, or does not come back.
    pub fn restart(&self) {
        self.ctl(&["restart", "-m", "fast"], "restart");
    }

    /// Stops the server (fast shutdown), for tests of an outage; [`Server::start`]
    /// brings it back on the same port.
    ///
    /// # Panics
    ///
    /// As [`Server::restart`].
    pub fn stop(&self) {
        self.ctl(&["stop", "-m", "fast"], "stop");
    }

    /// Starts the server again after [`Server::stop`].
    ///
    /// # Panics
    ///
    /// As [`Server::restart`].
    pub fn start(&self) {
        let c = self.own();
        let opts = c.opts.get().expect("started once");
        let log = c.data.with_file_name("server.log");
        let log = log.to_str().expect("a temporary path in UTF-8");
        self.ctl(&["start", "-o", opts, "-l", log], "start again");
    }

    /// Runs `pg_ctl ARGS` (waiting up to a minute), failing the test if it fails.
    fn ctl(&self, args: &[&str], what: &str) {
        let ok = self
            .own()
            .pg_ctl(args)
            .args(["-w", "-t", "60"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "the test cluster did not {what}");
    }

    fn own(&self) -> &Cluster {
        self.cluster
            .as_ref()
            .expect("only a cluster the tests started can be stopped and started")
    }
}

impl Cluster {
    fn cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut c = self.cmd("pg_ctl");
        c.arg("-D").arg(&self.data).args(args);
        c
    }
}

/// A statement file of `sql/` (its text) as the queue of `opts` runs it:
/// for running a queue's statement in a test's own transaction.
pub fn statement(opts: &crate::PgOptions, text: &str) -> String {
    opts.sql(text)
}

/// A connection inside an open transaction that holds schedule `name`'s
/// row as a worker firing it does (the same timeouts set), and then does
/// nothing more: a worker stopped in the middle of firing. The server
/// ends the session once the transaction has been idle too long.
///
/// # Panics
///
/// When the queue cannot be reached, or has no schedule `name`.
pub fn hold_schedule(opts: &crate::PgOptions, name: &str) -> postgres::Client {
    let mut c = opts.connect_client().expect("a connection to the queue");
    c.batch_execute(&format!("BEGIN; {}", crate::schedules::firing_settings()))
        .expect("a firing transaction begun");
    let lock = opts.sql("SELECT 1 FROM runyard.schedules WHERE name = $1 FOR UPDATE");
    let n = c
        .execute(&lock, &[&name])
        .expect("the schedule's row locked");
    assert_eq!(n, 1, "no schedule `{name}` to hold");
    c
}

extern "C" fn stop_at_exit() {
    if let Some(Server {
        cluster: Some(c), ..
    }) = SERVER.get()
    {
        let _ = c.pg_ctl(&["stop", "-m", "immediate", "-w"]).status();
        if let Some(dir) = c.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn find_bin() -> Result<PathBuf, String> {
    if let Ok(b) = std::env::var("RUNYARD_PG_BIN") {
        return Ok(PathBuf::from(b));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no /usr/lib/postgresql (initdb and pg_ctl not found)".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb".to_string())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn chown_to_postgres(p: &Path) -> Result<(), String> {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("cannot give {} to the postgres user", p.display()))
    }
}

/// A new cluster's directory (named from `prefix`, owned by `postgres`
/// when running as root), its data directory, and the cluster, made by
/// `initdb` (trust authentication, no sync) and not yet started.
fn init_cluster(prefix: &str) -> Result<(PathBuf, PathBuf, Cluster), String> {
    let bin = find_bin()?;
    let as_postgres = runyard_exec::os::is_root();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    let cluster = Cluster {
        bin,
        data: data.clone(),
        as_postgres,
        opts: OnceLock::new(),
    };
    if as_postgres {
        chown_to_postgres(&dir)?;
    }
    let init = cluster
        .cmd("initdb")
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .status()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !init.success() {
        return Err(format!("initdb failed ({init})"));
    }
    Ok((dir, data, cluster))
}

fn start() -> Result<Server, String> {
    let (dir, _, cluster) = init_cluster("runyard-test-pg.")?;
    let _ = runyard_exec::os::at_exit(stop_at_exit);
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let log = dir.join("server.log");
        let ok = cluster
            .pg_ctl(&["start", "-w", "-t", "60", "-o", &opts, "-l"])
            .arg(&log)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            let _ = cluster.opts.set(opts);
            let server = Server {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                cluster: Some(cluster),
            };
            return Ok(server);
        }
        last = std::fs::read_to_string(&log).unwrap_or_default();
    }
    Err(format!("pg_ctl start failed; the server's log:\n{last}"))
}

/// A cluster of one test's own, with settings and client authentication
/// of its own (TLS, passwords), unlike the shared [`server`]; stopped and
/// removed when dropped.
#[derive(Debug)]
pub struct OwnServer {
    cluster: Cluster,
    dir: PathBuf,
    port: u16,
}

impl OwnServer {
    /// Starts a cluster with `conf` appended to its `postgresql.conf`,
    /// `hba` as its `pg_hba.conf` after a line trusting the Unix socket
    /// (where [`OwnServer::admin`] connects), and `files` (name, contents)
    /// written into its data directory, readable by the server only.
    ///
    /// # Panics
    ///
    /// When the cluster cannot be made or started, with the server's log.
    pub fn start(conf: &str, hba: &str, files: &[(&str, &[u8])]) -> OwnServer {
        own_server(conf, hba, files).unwrap_or_else(|e| panic!("no PostgreSQL cluster: {e}"))
    }

    /// The TCP port it listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A superuser's connection to database `dbname` over the Unix
    /// socket, for setting the server up and reading what it holds.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub fn admin(&self, dbname: &str) -> postgres::Client {
        let conn = format!(
            "host={} port={} user=postgres dbname={dbname}",
            self.dir.display(),
            self.port
        );
        postgres::Client::connect(&conn, postgres::NoTls).expect("the test cluster answers")
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .pg_ctl(&["stop", "-m", "immediate", "-w"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn own_server(conf: &str, hba: &str, files: &[(&str, &[u8])]) -> Result<OwnServer, String> {
    use std::os::unix::fs::PermissionsExt;
    let (dir, data, cluster) = init_cluster("runyard-test-pg-own.")?;
    let write = |name: &str, contents: &[u8]| -> Result<(), String> {
        let p = data.join(name);
        std::fs::write(&p, contents).map_err(|e| format!("{}: {e}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    for (name, contents) in files {
        write(name, contents)?;
    }
    write(
        "pg_hba.conf",
        format!("local all all trust\n{hba}\n").as_bytes(),
    )?;
    let mut main = std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
    main.push('\n');
    main.push_str(conf);
    main.push('\n');
    write("postgresql.conf", main.as_bytes())?;
    if cluster.as_postgres {
        chown_to_postgres(&dir)?;
    }
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            dir.display()
        );
        let log = dir.join("server.log");
        let ok = cluster
            .pg_ctl(&["start", "-w", "-t", "60", "-o", &opts, "-l"])
            .arg(&log)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(OwnServer { cluster, dir, port });
        }
        last = std::fs::read_to_string(&log).unwrap_or_default();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(format!("pg_ctl start failed; the server's log:\n{last}"))
}
