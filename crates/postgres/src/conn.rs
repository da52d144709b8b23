//! Connections: where the queue lives, a small pool, reconnecting, and
//! the schema's migrations.
//!
//! One concept, with its tests: the queue's connections to its server
//! (finding it, pooling, reconnecting, migrating its schema).

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, GenericClient, Statement};
use runyard_queue::{QueueError, QueueErrorKind};
use rustc_hash::FxHashMap;

use crate::libpq;
use crate::tls::{SslMode, Tls, TlsParams};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 13;

/// The migrations, in order: `MIGRATIONS[i]` takes the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_workers.sql"),
    include_str!("../migrations/0003_claims.sql"),
    include_str!("../migrations/0004_workflows.sql"),
    include_str!("../migrations/0005_flow.sql"),
    include_str!("../migrations/0006_schedules.sql"),
    include_str!("../migrations/0007_flow_speed.sql"),
    include_str!("../migrations/0008_admin_events.sql"),
    include_str!("../migrations/0009_counts.sql"),
    include_str!("../migrations/0010_submit.sql"),
    include_str!("../migrations/0011_attempt_ends.sql"),
    include_str!("../migrations/0012_finished_index.sql"),
    include_str!("../migrations/0013_unique_locks.sql"),
];

/// Every table the migrations create in the queue's schema, besides the
/// `migrations` table that records them: a tool that resets a schema (the
/// benchmark) can tell runyard's tables from anyone else's.
pub const TABLES: &[&str] = &[
    "meta",
    "jobs",
    "attempts",
    "workers",
    "edges",
    "migrations",
    "limits",
    "paused",
    "key_tags",
    "running",
    "rate_starts",
    "schedules",
    "events",
    "counts",
    "tasks",
];

/// What connecting may do to the queue's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the schema if the database has none, and upgrade an older
    /// one (unless [`PgOptions::migrate_on_connect`] says not to): for
    /// putting jobs in and running them.
    CreateOrOpen,
    /// The queue must exist (a missing schema is an error saying so); an
    /// older one is upgraded as with `CreateOrOpen`: for changing jobs that
    /// are already there.
    Existing,
    /// The queue must exist, and connecting writes nothing: a schema of an
    /// older version is read as it is, not upgraded (for reading the queue,
    /// as `runyard status` does).
    Inspect,
}

/// The schema the SQL files are written for; another configured schema
/// replaces it.
const DEFAULT_SCHEMA: &str = "runyard";

/// Seconds between TCP keepalive probes of an idle connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Unanswered keepalive probes before an idle connection is dropped.
const KEEPALIVE_RETRIES: u32 = 3;
/// How long sent data may stay unacknowledged before the connection is
/// dropped (TCP_USER_TIMEOUT): no longer than `runyard worker`'s default
/// lease (10 s).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a queue.
#[derive(Clone)]
pub struct PgOptions {
    pub(crate) config: postgres::Config,
    /// One configuration per host, each with its own password.
    targets: Arc<Vec<postgres::Config>>,
    tls: Tls,
    pub(crate) schema: String,
    pub(crate) migrate: bool,
    pub(crate) reconnect_for: Duration,
    pub(crate) pool_size: usize,
    pub(crate) mode: OpenMode,
    pub(crate) limits_on_queue_clock: bool,
    pub(crate) schedules_on_queue_clock: bool,
    url: String,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.url)
            .field("schema", &self.schema)
            .field("migrate", &self.migrate)
            .field("reconnect_for", &self.reconnect_for)
            .field("mode", &self.mode)
            .field("sslmode", &self.tls.mode)
            .finish_non_exhaustive()
    }
}

impl PgOptions {
    /// Reads a connection URL (`postgres://user:password@host:port/db`, or
    /// libpq's `key=value` form), with libpq's environment variables for
    /// what it does not say (see [`PgOptions::from_url_and_env`]).
    pub fn from_url(url: &str) -> Result<PgOptions, QueueError> {
        PgOptions::from_url_and_env(url, &libpq::process_env)
    }

    /// Reads a connection URL, `env` giving the environment's variables.
    ///
    /// runyard reads options of its own from the URL's query: `schema=NAME`
    /// (default `runyard`), the schema that holds the queue's tables, so
    /// several queues can share a database; `migrate=false`, for a role
    /// that may not change the schema (see [`PgOptions::migrate_on_connect`]);
    /// `reconnect=DURATION`, how long one operation keeps reconnecting (see
    /// [`PgOptions::reconnect_for`]).
    ///
    /// TLS is libpq's: `sslmode` (`disable`, `prefer` (the default),
    /// `require`, `verify-ca`, `verify-full`), `sslrootcert` (a file of PEM
    /// certificates, or `system`), `sslcert` and `sslkey` (a client
    /// certificate). What the URL does not say comes from libpq's
    /// variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGPASSFILE`,
    /// `PGTARGETSESSIONATTRS`, `PGAPPNAME`, `PGOPTIONS`,
    /// `PGCONNECT_TIMEOUT`), and a password from the password file
    /// (`passfile=`, `PGPASSFILE`, or `~/.pgpass`), for each host.
    pub fn from_url_and_env(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgOptions, QueueError> {
        let invalid = |text: String| {
            QueueError::new(
                QueueErrorKind::InvalidInput,
                format!("`{}`: {text}", redact(url)),
            )
        };
        let (rest, ours) = take_ours(url);
        let Ours {
            schema,
            migrate,
            reconnect,
            tls,
            passfile,
            keys,
        } = ours;
        let reconnect_for = match reconnect.as_deref() {
            None => Duration::from_secs(60),
            Some(d) => runyard_core::parse_positive_duration(d).map_err(|e| {
                QueueError::new(
                    QueueErrorKind::InvalidInput,
                    format!("`reconnect={d}` in the queue URL: {e}"),
                )
            })?,
        };
        let migrate = match migrate.as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(QueueError::new(
                    QueueErrorKind::InvalidInput,
                    format!(
                    "`migrate={other}` in the queue URL: expected migrate=true or migrate=false"
                ),
                ))
            }
        };
        if let Some(bad) = env("PGPORT").and_then(|ps| {
            ps.split(',')
                .find(|p| p.parse::<u16>().is_err())
                .map(str::to_string)
        }) {
            return Err(invalid(format!(
                "PGPORT: `{bad}` is not a port (expected 1 to 65535)"
            )));
        }
        let rest = match env("PGPORT") {
            Some(ports) if !keys.iter().any(|k| k == "port") => url_with_ports(&rest, &ports),
            _ => rest,
        };
        let mut config = postgres::Config::from_str(&rest).map_err(|e| {
            QueueError::with_source(
                QueueErrorKind::InvalidInput,
                format!("`{}` is not a PostgreSQL connection URL", redact(url)),
                e,
            )
        })?;
        apply_env(&mut config, &keys, env).map_err(invalid)?;
        if config.get_hosts().is_empty() {
            return Err(QueueError::new(
                QueueErrorKind::InvalidInput,
                format!(
                    "`{}` names no host: write the server's host after the `@` \
                     (postgres://user@localhost/db), a socket directory as \
                     `?host=/run/postgresql`, or set PGHOST",
                    redact(url)
                ),
            ));
        }
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        check_schema_name(&schema)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A worker notices a vanished server (not just a closed socket):
        // an idle connection after 10 s + 3 probes 2 s apart, one with
        // unacknowledged data after TCP_USER_TIMEOUT (unless the URL sets
        // `keepalives_interval`, `keepalives_retries`, `tcp_user_timeout`).
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("runyard");
        }
        let tls = TlsParams {
            mode: tls.mode.or_else(|| env("PGSSLMODE")),
            rootcert: tls.rootcert.or_else(|| env("PGSSLROOTCERT")),
            cert: tls.cert.or_else(|| env("PGSSLCERT")),
            key: tls.key.or_else(|| env("PGSSLKEY")),
        };
        let tls = Tls::from_params(&tls, libpq::home(env).as_deref()).map_err(invalid)?;
        config.ssl_mode(tls.mode.driver());
        let passfile = libpq::passfile(passfile.as_deref(), env);
        let targets = one_per_host(&config, passfile.as_deref());
        Ok(PgOptions {
            config,
            targets: Arc::new(targets),
            tls,
            schema,
            migrate,
            reconnect_for,
            pool_size: 4,
            mode: OpenMode::CreateOrOpen,
            limits_on_queue_clock: false,
            schedules_on_queue_clock: false,
            url: redact(url),
        })
    }

    /// The TLS mode connections use (after `sslrootcert` given with
    /// `require`, which makes it `verify-ca` as with libpq).
    pub fn ssl_mode(&self) -> SslMode {
        self.tls.mode
    }

    /// A new connection to the first host that takes it (in the URL's
    /// order, or from a random one with `load_balance_hosts=random`); the
    /// last host's error if none does.
    pub(crate) fn connect_raw(&self) -> Result<Client, postgres::Error> {
        let n = self.targets.len();
        let first = match self.config.get_load_balance_hosts() {
            postgres::config::LoadBalanceHosts::Random if n > 1 => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() as usize)
                    % n
            }
            _ => 0,
        };
        let mut last = None;
        for i in 0..n {
            match self.targets[(first + i) % n].connect(self.tls.connector.clone()) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("a URL names one host at least"))
    }

    /// What connecting may do to the schema (default
    /// [`OpenMode::CreateOrOpen`]).
    pub fn open_mode(mut self, mode: OpenMode) -> PgOptions {
        self.mode = mode;
        self
    }

    /// Whether claims admit rate-limited starts on the clock the queue was
    /// opened with rather than on the database's (default no: every
    /// worker's starts are then timed by one clock, however the workers'
    /// clocks differ). For tests that drive the queue with a manual clock.
    pub fn limits_on_queue_clock(mut self, yes: bool) -> PgOptions {
        self.limits_on_queue_clock = yes;
        self
    }

    /// Whether schedules tick on the clock the queue was opened with rather
    /// than on the database's (default no: every worker then decides which
    /// ticks are due, adds schedules and anchors their intervals by one
    /// clock, however the workers' clocks differ). For tests that drive the
    /// queue with a manual clock, as [`PgOptions::limits_on_queue_clock`]
    /// does for limits.
    pub fn schedules_on_queue_clock(mut self, yes: bool) -> PgOptions {
        self.schedules_on_queue_clock = yes;
        self
    }

    /// The schema that holds the queue's tables.
    pub fn schema(mut self, schema: &str) -> Result<PgOptions, QueueError> {
        check_schema_name(schema)?;
        self.schema = schema.to_string();
        Ok(self)
    }

    /// Whether connecting applies missing migrations (default yes); when not,
    /// a database without the current schema is an error naming
    /// `runyard migrate`.
    pub fn migrate_on_connect(mut self, yes: bool) -> PgOptions {
        self.migrate = yes;
        self
    }

    /// How long an operation keeps reconnecting to an unreachable server
    /// before it fails (default 60 s).
    pub fn reconnect_for(mut self, d: Duration) -> PgOptions {
        self.reconnect_for = d;
        self
    }

    /// The schema that holds the queue's tables.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// A new connection of the driver, outside the queue's pool.
    pub fn connect_client(&self) -> Result<postgres::Client, QueueError> {
        self.connect_raw().map_err(|e| {
            pg_err(
                &format!("cannot connect to {} ({})", self.server(), self.url),
                e,
            )
        })
    }

    /// The URL, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the server is, for messages: `host:port` (for a Unix socket,
    /// its path), each host the URL names.
    pub fn server(&self) -> String {
        use postgres::config::Host;
        let ports = self.config.get_ports();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // One port for every host, or one each; libpq's default.
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match h {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
                }
            })
            .collect();
        if hosts.is_empty() {
            "no host named".to_string()
        } else {
            hosts.join(", ")
        }
    }

    /// The notification channel of this schema's queue.
    pub(crate) fn channel(&self) -> String {
        format!("runyard_{}", self.schema)
    }

    /// SQL written for the `runyard` schema, for this one.
    /// A statement for this queue: its schema's name in place of
    /// `runyard.`, the frontier's expression in place of `{FRONTIER}` and
    /// [`FEW`] in place of `{FEW}` (see [`with_frontier`]), and its state codes by name rendered (see
    /// `runyard_queue::stored::render_states`).
    pub(crate) fn sql(&self, text: &str) -> String {
        let text = runyard_queue::stored::render_states(&with_frontier(text));
        if self.schema == DEFAULT_SCHEMA {
            text
        } else {
            text.replace("runyard.", &format!("\"{}\".", self.schema))
        }
    }
}

/// How many waiting (or running) jobs the kept counts may say for the
/// statements to read them from the newest end of the state index
/// instead of walking the fair order's or the leases' index, which right
/// after a deep drain hold runs of dead entries (`{FEW}` in `sql/`).
pub(crate) const FEW: u32 = 256;

/// `text` with `{FRONTIER}` replaced by the frontier's expression of
/// `sql/frontier_few.sql` (its comment lines left out), and `{FEW}` by
/// [`FEW`].
pub(crate) fn with_frontier(text: &str) -> String {
    let text = if text.contains("{FRONTIER}") {
        let expr: Vec<&str> = include_str!("../sql/frontier_few.sql")
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect();
        text.replace("{FRONTIER}", &expr.join("\n"))
    } else {
        text.to_string()
    };
    text.replace("{FEW}", &FEW.to_string())
}

fn check_schema_name(s: &str) -> Result<(), QueueError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(QueueError::new(
            QueueErrorKind::InvalidInput,
            format!(
                "`{s}` is not a usable schema name (expected lower-case letters, digits and `_`, \
                 not starting with a digit, at most 63 characters)"
            ),
        ))
    }
}

/// runyard's own options in a queue URL's query, and the TLS and
/// password-file parameters the driver does not know.
#[derive(Debug, Default, PartialEq)]
struct Ours {
    schema: Option<String>,
    migrate: Option<String>,
    reconnect: Option<String>,
    tls: TlsParams,
    passfile: Option<String>,
    /// The names of the parameters left for the driver.
    keys: Vec<String>,
}

impl Ours {
    /// Takes `key=value` if it is one of ours; whether it was.
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "schema" => &mut self.schema,
            "migrate" => &mut self.migrate,
            "reconnect" => &mut self.reconnect,
            "sslmode" => &mut self.tls.mode,
            "sslrootcert" => &mut self.tls.rootcert,
            "sslcert" => &mut self.tls.cert,
            "sslkey" => &mut self.tls.key,
            "passfile" => &mut self.passfile,
            _ => {
                self.keys.push(key.to_string());
                return false;
            }
        };
        *slot = Some(value);
        true
    }
}

/// Splits runyard's own options (`schema=`, `migrate=`, `reconnect=`) and
/// the parameters it applies itself (`sslmode=`, `sslrootcert=`,
/// `sslcert=`, `sslkey=`, `passfile=`) off a URL's query or a `key=value`
/// string: what is left for the driver, and the options.
fn take_ours(url: &str) -> (String, Ours) {
    let mut ours = Ours::default();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let pairs: Vec<(String, String)> = libpq::split_key_values(url)
            .into_iter()
            .filter(|(k, v)| !ours.take(k, v.clone()))
            .collect();
        return (libpq::join_key_values(&pairs), ours);
    }
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), ours);
    };
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            if kv.is_empty() {
                return false;
            }
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            !ours.take(k, libpq::percent_decode(v))
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), ours)
    } else {
        (format!("{base}?{}", rest.join("&")), ours)
    }
}

/// A URL whose hosts name no port, with `ports` (a comma-separated list,
/// one for all hosts or one each) written after them: the driver takes a
/// host without a port as one on 5432.
fn url_with_ports(url: &str, ports: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let has_port = |chunk: &str| match chunk.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => chunk.contains(':'),
    };
    if hosts.is_empty() || hosts.split(',').any(has_port) {
        return url.to_string();
    }
    let ports: Vec<&str> = ports.split(',').collect();
    let hosts: Vec<String> = hosts
        .split(',')
        .enumerate()
        .map(|(i, h)| format!("{h}:{}", ports.get(i).unwrap_or(&ports[0])))
        .collect();
    format!("{scheme}://{user}{}{tail}", hosts.join(","))
}

/// Fills in from libpq's environment variables what the URL leaves out
/// (`keys`: the parameters its query names).
fn apply_env(
    config: &mut postgres::Config,
    keys: &[String],
    env: libpq::Env<'_>,
) -> Result<(), String> {
    if config.get_hosts().is_empty() {
        if let Some(hosts) = env("PGHOST") {
            for h in hosts.split(',') {
                if h.starts_with('/') {
                    config.host_path(h);
                } else {
                    config.host(h);
                }
            }
        }
    }
    if config.get_hostaddrs().is_empty() {
        if let Some(addrs) = env("PGHOSTADDR") {
            for a in addrs.split(',') {
                let ip = a.parse().map_err(|_| {
                    format!("PGHOSTADDR: `{a}` is not an IP address (expected e.g. 10.0.0.5)")
                })?;
                config.hostaddr(ip);
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(ports) = env("PGPORT") {
            for p in ports.split(',') {
                let port = p
                    .parse()
                    .map_err(|_| format!("PGPORT: `{p}` is not a port (expected 1 to 65535)"))?;
                config.port(port);
            }
        }
    }
    if config.get_user().is_none() {
        // libpq's default is the operating system's user name.
        if let Some(u) = env("PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
        {
            config.user(&u);
        }
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(d) = env("PGDATABASE") {
            config.dbname(&d);
        }
    }
    if config.get_options().is_none() {
        if let Some(o) = env("PGOPTIONS") {
            config.options(&o);
        }
    }
    if config.get_application_name().is_none() {
        if let Some(a) = env("PGAPPNAME") {
            config.application_name(&a);
        }
    }
    if config.get_connect_timeout().is_none() {
        if let Some(t) = env("PGCONNECT_TIMEOUT") {
            let secs: u64 = t
                .parse()
                .map_err(|_| format!("PGCONNECT_TIMEOUT: `{t}` is not a number of seconds"))?;
            if secs > 0 {
                // As libpq: less than 2 s is taken as 2 s.
                config.connect_timeout(Duration::from_secs(secs.max(2)));
            }
        }
    }
    if !keys.iter().any(|k| k == "target_session_attrs") {
        if let Some(t) = env("PGTARGETSESSIONATTRS") {
            use postgres::config::TargetSessionAttrs;
            config.target_session_attrs(match t.as_str() {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                "read-only" => TargetSessionAttrs::ReadOnly,
                other => {
                    return Err(format!(
                        "PGTARGETSESSIONATTRS: `{other}` (expected any, read-write or read-only)"
                    ))
                }
            });
        }
    }
    Ok(())
}

/// A configuration for each of `config`'s hosts: its address and port,
/// no TLS over a Unix socket (as libpq), and, when no password was
/// given, the password file's for that host.
fn one_per_host(
    config: &postgres::Config,
    passfile: Option<&std::path::Path>,
) -> Vec<postgres::Config> {
    use postgres::config::Host;
    let ports = config.get_ports();
    let addrs = config.get_hostaddrs();
    let user = config.get_user().unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or(user);
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let mut c = postgres::Config::new();
            let (name, unix) = match host {
                Host::Tcp(h) => {
                    c.host(h);
                    (h.clone(), false)
                }
                Host::Unix(p) => {
                    c.host_path(p);
                    (p.display().to_string(), true)
                }
            };
            if let Some(a) = addrs.get(i) {
                c.hostaddr(*a);
            }
            c.port(port);
            if let Some(u) = config.get_user() {
                c.user(u);
            }
            match config.get_password() {
                Some(p) => {
                    c.password(p);
                }
                None => {
                    let login = libpq::Login {
                        host: &name,
                        unix,
                        port,
                        dbname,
                        user,
                    };
                    if let Some(p) = passfile.and_then(|f| libpq::pgpass_password(f, login)) {
                        c.password(p);
                    }
                }
            }
            if let Some(d) = config.get_dbname() {
                c.dbname(d);
            }
            if let Some(o) = config.get_options() {
                c.options(o);
            }
            if let Some(a) = config.get_application_name() {
                c.application_name(a);
            }
            c.ssl_mode(if unix {
                postgres::config::SslMode::Disable
            } else {
                config.get_ssl_mode()
            });
            c.ssl_negotiation(config.get_ssl_negotiation());
            if let Some(t) = config.get_connect_timeout() {
                c.connect_timeout(*t);
            }
            if let Some(t) = config.get_tcp_user_timeout() {
                c.tcp_user_timeout(*t);
            }
            c.keepalives(config.get_keepalives());
            c.keepalives_idle(config.get_keepalives_idle());
            if let Some(t) = config.get_keepalives_interval() {
                c.keepalives_interval(t);
            }
            if let Some(n) = config.get_keepalives_retries() {
                c.keepalives_retries(n);
            }
            c.target_session_attrs(config.get_target_session_attrs());
            c.channel_binding(config.get_channel_binding());
            c
        })
        .collect()
}

/// The URL (or `key=value` string) with any password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_key_values(url);
    };
    // The user info ends at the last `@` (a password may hold one).
    let (auth, tail) = match rest.rsplit_once('@') {
        Some((auth, tail)) => (Some(auth), tail),
        None => (None, rest),
    };
    let auth = match auth {
        Some(a) => match a.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{a}@"),
        },
        None => String::new(),
    };
    // libpq also takes `?password=`.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{auth}{tail}")
}

/// A libpq `key=value` string with the password's value replaced.
fn redact_key_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_len);
        out.push_str(key);
        let t = after.trim_start();
        let Some(value) = t.strip_prefix('=') else {
            // Not `key=value`: copy the spaces and go on.
            out.push_str(&after[..after.len() - t.len()]);
            rest = t;
            continue;
        };
        out.push_str(&after[..after.len() - t.len()]);
        out.push('=');
        let v = value.trim_start();
        out.push_str(&value[..value.len() - v.len()]);
        let len = if let Some(quoted) = v.strip_prefix('\'') {
            // Up to the closing quote; `\'` and `\\` are escapes.
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            1 + end
        } else {
            v.find(char::is_whitespace).unwrap_or(v.len())
        };
        if key == "password" {
            out.push_str("***");
        } else {
            out.push_str(&v[..len]);
        }
        let after_value = &v[len..];
        let t = after_value.trim_start();
        out.push_str(&after_value[..after_value.len() - t.len()]);
        rest = t;
    }
    out
}

/// Whether a failure is of the connection or the server's availability
/// (trying again later may help), not of the request.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    // A certificate refused, or TLS refused: trying again will not help.
    if crate::tls::explain(e).is_some() {
        return false;
    }
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
        // No SQLSTATE: the socket, a timeout, or connecting failed.
        None => {
            let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
            while let Some(s) = src {
                if s.is::<std::io::Error>() {
                    return true;
                }
                src = s.source();
            }
            let text = e.to_string();
            text.contains("connect") || text.contains("timeout") || text.contains("closed")
        }
    }
}

/// Said with the errors a transaction-mode pooler causes.
const POOLER_HINT: &str = " (runyard's connections keep prepared statements and LISTEN from one \
     transaction to the next: a pooler between runyard and the server must keep each client's \
     server connection, e.g. PgBouncer with pool_mode = session, not transaction; see \
     docs/deployment.md)";

/// Whether `e` says a prepared statement is missing or already there: a
/// connection pooler moved the session's statements to another server
/// connection (PgBouncer's transaction mode does).
fn is_pooler_error(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME)
        || e.code() == Some(&SqlState::DUPLICATE_PSTATEMENT)
}

pub(crate) fn pg_err(what: &str, e: postgres::Error) -> QueueError {
    let kind = if is_transient(&e) {
        QueueErrorKind::Unavailable
    } else if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
        || e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
    {
        QueueErrorKind::ReadOnly
    } else {
        QueueErrorKind::Storage
    };
    let mut what = format!("PostgreSQL: {what}");
    if is_pooler_error(&e) {
        what.push_str(POOLER_HINT);
    }
    if let Some(why) = crate::tls::explain(&e) {
        return QueueError::with_source(kind, format!("{what}: {why}"), e);
    }
    // A server's error is said as the server said it (`FATAL: ...`), not
    // under the driver's "db error" besides.
    if e.as_db_error().is_some() {
        if let Some(db) = e.into_source() {
            return QueueError::with_source(kind, what, BoxedError(db));
        }
        return QueueError::new(kind, what);
    }
    QueueError::with_source(kind, what, e)
}

/// A driver's boxed cause, as an error of its own.
#[derive(Debug)]
struct BoxedError(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for BoxedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BoxedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A pooled connection, with the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: FxHashMap<String, Statement>,
}

impl Conn {
    /// The statement for `sql`, prepared on this connection once.
    pub(crate) fn st(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Connections kept open between operations, and reconnecting.
pub(crate) struct Pool {
    pub(crate) opts: PgOptions,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub(crate) fn new(opts: PgOptions) -> Pool {
        Pool {
            opts,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        self.opts.connect_raw()
    }

    fn take(&self) -> Result<Conn, postgres::Error> {
        let c = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match c {
            Some(c) if !c.is_closed() => Ok(c),
            _ => {
                let mut client = self.connect()?;
                // The statements are written to take their rows by primary
                // key or by the ready index whatever the batch: a plan made
                // once serves every call, with no planning per claim.
                client.batch_execute("SET plan_cache_mode = force_generic_plan")?;
                Ok(Conn {
                    client,
                    statements: FxHashMap::default(),
                })
            }
        }
    }

    fn put(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !c.is_closed() && idle.len() < self.opts.pool_size {
            idle.push(c);
        }
    }

    /// Runs `f` on a pooled connection. A failure of the connection (the
    /// server restarting, a dropped socket) is retried on a new one, with
    /// backoff, for up to the configured reconnect window, unless `f` had
    /// begun committing (set `committing`): its outcome is then unknown and
    /// the error is returned.
    pub(crate) fn run<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Conn, &Cell<bool>) -> Result<T, postgres::Error>,
    ) -> Result<T, QueueError> {
        let deadline = Instant::now() + self.opts.reconnect_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let committing = Cell::new(false);
            let result = self.take().and_then(|mut c| {
                let r = f(&mut c, &committing);
                if r.is_ok() || !c.is_closed() {
                    self.put(c);
                }
                r
            });
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && !committing.get() && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(pg_err(what, e)),
            }
        }
    }
}

/// Applies the missing migrations (one transaction, under an advisory lock
/// so that workers starting together do not race), refusing a schema newer
/// than this build. Returns the versions applied.
pub(crate) fn migrate(opts: &PgOptions, c: &mut Client) -> Result<Vec<i32>, QueueError> {
    let e = |e| pg_err("migrating the schema", e);
    let mut tx = c.transaction().map_err(e)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key(&opts.schema)],
    )
    .map_err(e)?;
    let schema = &opts.schema;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS \"{schema}\".migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .map_err(e)?;
    let current = version_in(&mut tx, schema).map_err(e)?;
    check_version(opts, current)?;
    let mut applied = Vec::new();
    for (i, m) in MIGRATIONS.iter().enumerate() {
        let v = i as i32 + 1;
        if v > current {
            tx.batch_execute(&opts.sql(m)).map_err(e)?;
            tx.execute(
                &format!("INSERT INTO \"{schema}\".migrations (version) VALUES ($1)"),
                &[&v],
            )
            .map_err(e)?;
            applied.push(v);
        }
    }
    tx.commit().map_err(e)?;
    Ok(applied)
}

fn version_in(c: &mut impl GenericClient, schema: &str) -> Result<i32, postgres::Error> {
    let row = c.query_one(
        &format!("SELECT COALESCE(MAX(version), 0) FROM \"{schema}\".migrations"),
        &[],
    )?;
    Ok(row.get(0))
}

fn check_version(opts: &PgOptions, current: i32) -> Result<(), QueueError> {
    if current > SCHEMA_VERSION {
        return Err(QueueError::new(
            QueueErrorKind::Incompatible,
            format!(
                "{} (schema `{}`): the queue's schema is version {current}, written by a newer \
                 runyard; this build reads version {SCHEMA_VERSION}",
                opts.url, opts.schema
            ),
        ));
    }
    Ok(())
}

/// The schema version in the database (0 when it has none).
pub(crate) fn schema_version(opts: &PgOptions, c: &mut Client) -> Result<i32, QueueError> {
    let e = |e| pg_err("reading the schema version", e);
    let exists: bool = c
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("\"{}\".migrations", opts.schema)],
        )
        .map_err(e)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    version_in(c, &opts.schema).map_err(e)
}

/// Checks the schema is one this build can use, as `opts.mode` allows:
/// creating or upgrading it first, or (to inspect it) reading an older one
/// as it is. Returns its version.
pub(crate) fn prepare(opts: &PgOptions, c: &mut Client) -> Result<i32, QueueError> {
    let v = schema_version(opts, c)?;
    check_version(opts, v)?;
    if v == 0 && opts.mode != OpenMode::CreateOrOpen {
        return Err(QueueError::new(
            QueueErrorKind::InvalidInput,
            format!(
                "{} has no runyard queue in schema `{}`: name the schema of an existing queue \
                 (`?schema=NAME`), or create this one with `runyard migrate --queue URL` \
                 (submitting jobs or starting a worker creates it too)",
                opts.url, opts.schema
            ),
        ));
    }
    if v == SCHEMA_VERSION || opts.mode == OpenMode::Inspect {
        return Ok(v);
    }
    if !opts.migrate {
        return Err(QueueError::new(
            QueueErrorKind::Incompatible,
            format!(
                "{} (schema `{}`): the queue's schema is at version {v}, this build needs \
                 {SCHEMA_VERSION}; run `runyard migrate --queue URL`",
                opts.url, opts.schema
            ),
        ));
    }
    migrate(opts, c)?;
    Ok(SCHEMA_VERSION)
}

/// The advisory lock taken while migrating a schema.
fn lock_key(schema: &str) -> i64 {
    // FNV-1a: stable across builds and machines.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"runyard-migrate:".iter().chain(schema.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_names_every_table_the_migrations_create() {
        let mut created: Vec<&str> = super::MIGRATIONS
            .iter()
            .flat_map(|m| m.split("CREATE TABLE runyard.").skip(1))
            .map(|rest| {
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap()
            })
            .collect();
        created.push("migrations");
        created.sort_unstable();
        let mut named = super::TABLES.to_vec();
        named.sort_unstable();
        assert_eq!(created, named);
    }

    #[test]
    fn a_url_without_a_host_is_refused_when_read() {
        let e = PgOptions::from_url("postgres://u@/db").unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
        assert!(e.to_string().contains("names no host"), "{e}");
        assert!(PgOptions::from_url("postgres://u@/db?host=/tmp").is_ok());
        assert!(PgOptions::from_url("postgres://u@localhost/db").is_ok());
    }

    /// Every statement file renders whole and names its state codes.
    #[test]
    fn every_statement_names_its_states() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let text = with_frontier(&std::fs::read_to_string(&path).unwrap());
            runyard_queue::stored::check_statement(&path.display().to_string(), &text).unwrap();
            n += 1;
        }
        assert!(n > 30, "{n} files");
    }

    use super::*;

    #[test]
    fn schema_comes_off_the_url() {
        assert_eq!(
            take_ours("postgres://u@h/db?schema=abc"),
            (
                "postgres://u@h/db".to_string(),
                Ours {
                    schema: Some("abc".into()),
                    ..Ours::default()
                }
            )
        );
        assert_eq!(
            take_ours(
                "postgres://u@h/db?sslmode=verify-full&schema=x_1&migrate=false&reconnect=5s\
                 &target_session_attrs=read-write&sslrootcert=%2Fetc%2Fca%20x.pem"
            ),
            (
                "postgres://u@h/db?target_session_attrs=read-write".to_string(),
                Ours {
                    schema: Some("x_1".into()),
                    migrate: Some("false".into()),
                    reconnect: Some("5s".into()),
                    tls: TlsParams {
                        mode: Some("verify-full".into()),
                        rootcert: Some("/etc/ca x.pem".into()),
                        ..TlsParams::default()
                    },
                    passfile: None,
                    keys: vec!["target_session_attrs".into()],
                }
            )
        );
        let (rest, ours) =
            take_ours("host=db sslmode=require user=me sslcert='/a b/c.crt' schema=s");
        assert_eq!(rest, "host='db' user='me'");
        assert_eq!(ours.tls.mode.as_deref(), Some("require"));
        assert_eq!(ours.tls.cert.as_deref(), Some("/a b/c.crt"));
        assert_eq!(ours.schema.as_deref(), Some("s"));
        assert_eq!(take_ours("postgres://u@h/db").1, Ours::default());
        let o = PgOptions::from_url("postgres://u@h/db?reconnect=2s").unwrap();
        assert_eq!(o.reconnect_for, Duration::from_secs(2));
        assert!(PgOptions::from_url("postgres://u@h/db?reconnect=soon").is_err());
        assert!(
            !PgOptions::from_url("postgres://u@h/db?migrate=false")
                .unwrap()
                .migrate
        );
        let e = PgOptions::from_url("postgres://u@h/db?migrate=no").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected migrate=true or migrate=false"),
            "{e}"
        );
        let o = PgOptions::from_url("postgres://u@h/db?schema=t_9").unwrap();
        assert_eq!(o.schema, "t_9");
        assert_eq!(
            o.sql("SELECT * FROM runyard.jobs"),
            "SELECT * FROM \"t_9\".jobs"
        );
    }

    #[test]
    fn bad_urls_and_schemas_are_named() {
        let e = PgOptions::from_url("postgres://u@h/db?schema=Bad-Name").unwrap_err();
        assert!(
            e.to_string()
                .contains("`Bad-Name` is not a usable schema name"),
            "{e}"
        );
        let e = PgOptions::from_url("postgres://u@h:notaport/db").unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/q"),
            "postgres://me:***@db:5432/q"
        );
        assert_eq!(redact("postgres://me@db/q"), "postgres://me@db/q");
        assert_eq!(
            redact("postgres://me:p@ss?w/rd@db/q?password=secret&schema=x"),
            "postgres://me:***@db/q?password=***&schema=x"
        );
        assert_eq!(
            redact("host=db user=me password=secret dbname=q"),
            "host=db user=me password=*** dbname=q"
        );
        assert_eq!(
            redact("host=db password = 'sec ret\\' more' user=me"),
            "host=db password = *** user=me"
        );
        for url in [
            "host=db password=secret",
            "postgres://me:secret@db/q",
            "postgres://me@db/q?password=secret",
        ] {
            let o = PgOptions::from_url(url).unwrap();
            assert!(!o.url().contains("secret"), "{}", o.url());
            let e = PgOptions::from_url(&format!("{url} port=x")).map(|_| ());
            if let Err(e) = e {
                assert!(!e.to_string().contains("secret"), "{e}");
            }
        }
    }

    /// An environment of the given variables only.
    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_environment_fills_in_what_the_url_leaves_out() {
        let env = env_of(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6543"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envsecret"),
            ("PGDATABASE", "envdb"),
            ("PGSSLMODE", "require"),
            ("PGTARGETSESSIONATTRS", "read-write"),
            ("PGAPPNAME", "envapp"),
        ]);
        let o = PgOptions::from_url_and_env("postgres://", &env).unwrap();
        assert_eq!(o.server(), "envhost:6543");
        assert_eq!(o.config.get_user(), Some("envuser"));
        assert_eq!(o.config.get_password(), Some(&b"envsecret"[..]));
        assert_eq!(o.config.get_dbname(), Some("envdb"));
        assert_eq!(o.config.get_application_name(), Some("envapp"));
        assert_eq!(o.ssl_mode(), SslMode::Require);
        assert_eq!(
            o.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert!(!format!("{o:?}").contains("envsecret"));
        // A value in the URL beats the environment.
        let o = PgOptions::from_url_and_env(
            "postgres://me:urlsecret@urlhost:7000/urldb?sslmode=disable&target_session_attrs=any",
            &env,
        )
        .unwrap();
        assert_eq!(o.server(), "urlhost:7000");
        assert_eq!(o.config.get_user(), Some("me"));
        assert_eq!(o.config.get_password(), Some(&b"urlsecret"[..]));
        assert_eq!(o.config.get_dbname(), Some("urldb"));
        assert_eq!(o.ssl_mode(), SslMode::Disable);
        assert_eq!(
            o.config.get_target_session_attrs(),
            postgres::config::TargetSessionAttrs::Any
        );
        let o = PgOptions::from_url_and_env("postgres://u:p@a,b/db", &env).unwrap();
        assert_eq!(o.server(), "a:6543, b:6543");
        let o = PgOptions::from_url_and_env("postgres://u@a:1,b/db", &env).unwrap();
        assert_eq!(o.server(), "a:1, b:5432");
        // Without PGHOST nothing names a host.
        let e = PgOptions::from_url_and_env("postgres:///db", &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("set PGHOST"), "{e}");
        let e = PgOptions::from_url_and_env("postgres://h/db", &env_of(&[("PGPORT", "x")]))
            .unwrap_err();
        assert!(e.to_string().contains("PGPORT: `x` is not a port"), "{e}");
    }

    #[test]
    fn sslmodes_are_read_as_libpq_reads_them() {
        let none = env_of(&[]);
        let mode = |url: &str| PgOptions::from_url_and_env(url, &none).map(|o| o.ssl_mode());
        assert_eq!(mode("postgres://h/db").unwrap(), SslMode::Prefer);
        assert_eq!(
            mode("postgres://h/db?sslmode=require").unwrap(),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://h/db?sslrootcert=system").unwrap(),
            SslMode::VerifyFull
        );
        let e = mode("postgres://h/db?sslmode=require&sslrootcert=system").unwrap_err();
        assert!(e.to_string().contains("only sslmode=verify-full"), "{e}");
        let e = mode("postgres://me:pw@h/db?sslmode=strict").unwrap_err();
        assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .contains("expected disable, prefer, require, verify-ca or verify-full"),
            "{e}"
        );
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = mode("postgres://h/db?sslmode=verify-ca").unwrap_err();
        assert!(e.to_string().contains("set sslrootcert=FILE"), "{e}");
        let e =
            mode("postgres://h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem").unwrap_err();
        assert!(e.to_string().contains("/no/such/ca.pem"), "{e}");
        let e =
            mode("host=h sslmode=require sslcert=/no/such.crt sslkey=/no/such.key").unwrap_err();
        assert!(e.to_string().contains("sslcert /no/such.crt"), "{e}");
    }

    #[test]
    fn each_host_gets_its_password_from_the_password_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(&f, "a:5432:db:me:for-a\\:1\nb:5433:*:me:for-b\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = env_of(&[("PGPASSFILE", f.to_str().unwrap())]);
        let o = PgOptions::from_url_and_env("postgres://me@a:5432,b:5433,c/db", &env).unwrap();
        let pw: Vec<Option<&[u8]>> = o.targets.iter().map(|c| c.get_password()).collect();
        assert_eq!(pw, [Some(&b"for-a:1"[..]), Some(&b"for-b"[..]), None]);
        assert!(!format!("{o:?}").contains("for-a"));
        // A password given beats the file.
        let env = env_of(&[("PGPASSFILE", f.to_str().unwrap()), ("PGPASSWORD", "given")]);
        let o = PgOptions::from_url_and_env("postgres://me@a/db", &env).unwrap();
        assert_eq!(o.targets[0].get_password(), Some(&b"given"[..]));
    }

    #[test]
    fn a_vanished_server_is_noticed_unless_the_url_says_otherwise() {
        let o = PgOptions::from_url("postgres://u@h/db").unwrap();
        for c in std::iter::once(&o.config).chain(o.targets.iter()) {
            assert!(c.get_keepalives());
            assert_eq!(c.get_keepalives_idle(), Duration::from_secs(10));
            assert_eq!(c.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
            assert_eq!(c.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
            assert_eq!(c.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        }
        let o = PgOptions::from_url(
            "postgres://u@h/db?tcp_user_timeout=4&keepalives_interval=1&keepalives_retries=5",
        )
        .unwrap();
        for c in std::iter::once(&o.config).chain(o.targets.iter()) {
            assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(4)));
            assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(1)));
            assert_eq!(c.get_keepalives_retries(), Some(5));
        }
    }

    #[test]
    fn the_server_is_named_with_its_port() {
        let o = PgOptions::from_url("postgres://me:secret@db.internal/q").unwrap();
        assert_eq!(o.server(), "db.internal:5432");
        let o = PgOptions::from_url("postgres://me@a:6000,b:6001/q").unwrap();
        assert_eq!(o.server(), "a:6000, b:6001");
        let o = PgOptions::from_url("host=/run/postgresql port=5433 user=me").unwrap();
        assert_eq!(o.server(), "/run/postgresql/.s.PGSQL.5433");
    }
}
