//! Opening a queue from its URL: in memory (a run's default), a state
//! file (SQLite, which survives the process and can be resumed), or a
//! PostgreSQL queue shared by workers on many machines. Every command
//! opens its queue here, for a [`Purpose`] that says what may be created.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard::queue::{Counts, Queue, QueueError, QueueErrorKind, Rescue};
use runyard::sqlite::{OpenMode, SqliteQueue};

use crate::exit::{RunnerFailure, UsageError};

/// A queue named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueueUrl {
    /// `memory`: nothing outlives the process.
    Memory,
    /// `sqlite://PATH`: a state file.
    Sqlite(PathBuf),
    /// `postgres://...`: a queue shared by workers on many machines.
    Postgres(String),
}

impl QueueUrl {
    /// The queue of `--state PATH` (the same as `--queue sqlite://PATH`)
    /// or `--queue URL`, if either was given.
    pub(crate) fn from_flags(
        state: &Option<PathBuf>,
        queue: &Option<QueueUrl>,
    ) -> Option<QueueUrl> {
        match (state, queue) {
            (Some(p), _) => Some(QueueUrl::Sqlite(p.clone())),
            (None, q) => q.clone(),
        }
    }

    /// Refuses a queue in memory for `command`, which needs one that
    /// outlives the process.
    pub(crate) fn require_lasting(&self, command: &str) -> Result<(), UsageError> {
        match self {
            QueueUrl::Memory => Err(UsageError(format!(
                "`runyard {command}` needs a queue that outlives the process: --queue postgres://... \
                 (or sqlite://PATH on one machine)"
            ))),
            _ => Ok(()),
        }
    }

    /// The PostgreSQL URL, or a refusal for `command`, which is for
    /// PostgreSQL queues only.
    pub(crate) fn require_postgres(&self, command: &str) -> Result<&str, UsageError> {
        match self {
            QueueUrl::Postgres(u) => Ok(u),
            _ => Err(UsageError(format!(
                "`runyard {command}` is for PostgreSQL queues (--queue postgres://...)"
            ))),
        }
    }

    /// The URL, as given (without a password).
    pub(crate) fn display(&self) -> String {
        match self {
            QueueUrl::Memory => "memory".into(),
            QueueUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            QueueUrl::Postgres(u) => runyard::postgres::PgOptions::from_url(u)
                .map(|o| o.url().to_string())
                .unwrap_or_else(|_| u.clone()),
        }
    }
}

/// Reads `memory`, `sqlite://PATH` (`sqlite:PATH` too) or a PostgreSQL URL.
pub(crate) fn parse_queue_url(s: &str) -> Result<QueueUrl, String> {
    if s == "memory" || s == "memory://" {
        return Ok(QueueUrl::Memory);
    }
    if let Some(rest) = s
        .strip_prefix("sqlite://")
        .or_else(|| s.strip_prefix("sqlite:"))
    {
        if rest.is_empty() {
            return Err("`sqlite://` needs a path, e.g. sqlite://run.db".into());
        }
        return Ok(QueueUrl::Sqlite(PathBuf::from(rest)));
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        runyard::postgres::PgOptions::from_url(s).map_err(|e| e.to_string())?;
        return Ok(QueueUrl::Postgres(s.to_string()));
    }
    // Not echoed whole: it may hold a password.
    let shown = match s.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => format!("{scheme}://…"),
        _ if s.contains("password") => "…".to_string(),
        _ => s.to_string(),
    };
    Err(format!(
        "`{shown}` is not a queue URL (expected memory, sqlite://PATH or postgres://USER@HOST/DB)"
    ))
}

/// Reads `--queue` (or `RUNYARD_QUEUE`) with [`parse_queue_url`]: clap's own
/// message would repeat the value, and with it any password.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueUrlParser;

impl clap::builder::TypedValueParser for QueueUrlParser {
    type Value = QueueUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<QueueUrl, clap::Error> {
        let flag = arg.map_or_else(|| "--queue".to_string(), |a| a.to_string());
        let refuse = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{flag}': {why}\n"),
            )
            .with_cmd(cmd)
        };
        let s = value
            .to_str()
            .ok_or_else(|| refuse("the URL is not UTF-8".into()))?;
        parse_queue_url(s).map_err(refuse)
    }
}

/// What a queue is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A new run: the file may not exist yet, and must hold no jobs.
    NewRun,
    /// Resuming the run the file holds.
    Resume,
    /// Putting jobs in or running them (`submit`, `worker`), beside other
    /// processes: a missing state file or schema is created.
    Share,
    /// Changing jobs already there (`retry`, `cancel`, `prune`): the queue
    /// must exist.
    Change,
    /// Reading it (`status`), alongside a run that may be going on: the
    /// queue must exist, and nothing is created, upgraded or written.
    Inspect,
}

impl Purpose {
    fn sqlite_mode(self) -> OpenMode {
        match self {
            Purpose::NewRun | Purpose::Share => OpenMode::CreateOrOpen,
            Purpose::Resume | Purpose::Change => OpenMode::Existing,
            Purpose::Inspect => OpenMode::Inspect,
        }
    }

    fn postgres_mode(self) -> runyard::postgres::OpenMode {
        use runyard::postgres::OpenMode as Pg;
        match self {
            Purpose::NewRun | Purpose::Share => Pg::CreateOrOpen,
            Purpose::Resume | Purpose::Change => Pg::Existing,
            Purpose::Inspect => Pg::Inspect,
        }
    }
}

/// Opens the state file at `path` for `purpose`. Files that are not a
/// runyard state this build can use are refused (exit 2) and left as they
/// were; a run and a resume hold the file exclusively until the process
/// ends.
pub(crate) fn open_state(path: &Path, purpose: Purpose) -> anyhow::Result<Arc<SqliteQueue>> {
    // A new run may start in an empty file (one a killed run was creating).
    let mode = purpose.sqlite_mode();
    if mode != OpenMode::CreateOrOpen && !path.exists() {
        let p = path.display();
        return Err(UsageError(format!(
            "{p}: no such state file (`runyard run --state {p}` records a run in a new one; \
             `runyard submit --queue sqlite://{p}` creates one for workers to drain)"
        ))
        .into());
    }
    let q = SqliteQueue::open(path, mode).map_err(|e| refused(path, e))?;
    if !matches!(purpose, Purpose::NewRun | Purpose::Resume) {
        return Ok(Arc::new(q));
    }
    hold(path)?;
    let counts = q.counts().map_err(|e| refused(path, e))?;
    match purpose {
        Purpose::NewRun if counts.total() > 0 => Err(UsageError(format!(
            "{} already holds a run ({}); resume it with `runyard run --state {} --resume`, \
             see it with `runyard status --state {}`, or give a new path",
            path.display(),
            describe(&counts),
            path.display(),
            path.display(),
        ))
        .into()),
        Purpose::Resume => {
            // The file is ours alone: whoever holds a lease in it is gone.
            for worker in q.lease_holders().map_err(|e| refused(path, e))? {
                q.rescue(Rescue::Worker(worker))?;
            }
            Ok(Arc::new(q))
        }
        _ => Ok(Arc::new(q)),
    }
}

/// A queue error met while opening: the file's fault is the user's input.
/// The message names the file once (the backend's own starts with it).
fn refused(path: &Path, e: QueueError) -> anyhow::Error {
    let text = e.to_string();
    let why = text
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(&text);
    match e.kind() {
        QueueErrorKind::Corrupt
        | QueueErrorKind::Incompatible
        | QueueErrorKind::ReadOnly
        | QueueErrorKind::InvalidInput => UsageError(format!(
            "cannot use {} as a state file: {why}",
            path.display()
        ))
        .into(),
        _ => RunnerFailure(format!("opening {}: {why}", path.display())).into(),
    }
}

/// Takes an exclusive lock on the file for the rest of the process, or
/// says who is using it. (`flock`, which SQLite's own locks do not touch;
/// the descriptor is never closed, since closing any descriptor of the file
/// would drop SQLite's locks on it.)
fn hold(path: &Path) -> anyhow::Result<()> {
    let f = File::open(path)?;
    match runyard::exec::os::try_lock_exclusive(&f) {
        Ok(true) => {}
        Ok(false) => {
            return Err(UsageError(format!(
                "{} is in use by another runyard run; wait for it to end (see it with `runyard status --state {}`)",
                path.display(),
                path.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
        }
    }
    std::mem::forget(f);
    Ok(())
}

/// "5000 jobs: 4990 succeeded, 3 dead, 7 unfinished", or "no jobs".
pub(crate) fn describe(c: &Counts) -> String {
    if c.total() == 0 {
        return "no jobs".to_string();
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (c.succeeded, "succeeded"),
        (c.dead, "dead"),
        (c.cancelled, "cancelled"),
        (c.unfinished(), "unfinished"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("{} jobs: {}", c.total(), parts.join(", "))
}

/// The queue of a run: in memory, a state file or a PostgreSQL queue
/// (opened for `purpose`).
pub(crate) fn open(url: &QueueUrl, purpose: Purpose) -> anyhow::Result<Opened> {
    Ok(match url {
        QueueUrl::Memory => Opened {
            queue: Arc::new(runyard::queue::MemoryQueue::new()),
            file: None,
        },
        QueueUrl::Sqlite(p) => {
            let q = open_state(p, purpose)?;
            Opened {
                queue: q.clone(),
                file: Some((p.clone(), q)),
            }
        }
        QueueUrl::Postgres(u) => Opened {
            queue: connect_postgres(u, purpose)?,
            file: None,
        },
    })
}

/// Connects to a PostgreSQL queue for `purpose` (creating or upgrading its
/// schema when that may).
pub(crate) fn connect_postgres(
    url: &str,
    purpose: Purpose,
) -> anyhow::Result<Arc<runyard::postgres::PgQueue>> {
    try_postgres(url, purpose)
        .map(Arc::new)
        .map_err(postgres_refused)
}

/// One attempt to connect to a PostgreSQL queue for `purpose`.
pub(crate) fn try_postgres(
    url: &str,
    purpose: Purpose,
) -> Result<runyard::postgres::PgQueue, QueueError> {
    let opts = runyard::postgres::PgOptions::from_url(url)?.open_mode(purpose.postgres_mode());
    runyard::postgres::PgQueue::open(opts, Arc::new(runyard::queue::SystemClock))
}

/// A PostgreSQL queue's refusal: the URL or the schema is the user's input.
pub(crate) fn postgres_refused(e: QueueError) -> anyhow::Error {
    match e.kind() {
        QueueErrorKind::Incompatible | QueueErrorKind::InvalidInput => {
            UsageError(e.to_string()).into()
        }
        _ => anyhow::Error::new(e),
    }
}

/// How often a worker tries again a queue it cannot reach at start-up (as
/// the engine does once it runs).
const QUEUE_RETRY: Duration = Duration::from_secs(1);
/// How often a worker waiting for its queue says so again.
const STILL_WAITING: Duration = Duration::from_secs(60);

/// Opens a worker's queue (for [`Purpose::Share`]). A PostgreSQL server the worker cannot reach is
/// waited for, as a running worker waits for one that went away: tried
/// again every second, for as long as it takes, and said on stderr when the
/// wait begins, each minute it lasts, and when it ends. (An interrupt
/// meanwhile ends the worker at once: it holds nothing yet.)
pub(crate) fn open_waiting(url: &QueueUrl) -> anyhow::Result<Arc<dyn Queue>> {
    let QueueUrl::Postgres(u) = url else {
        return Ok(open(url, Purpose::Share)?.queue);
    };
    let start = Instant::now();
    let mut said: Option<Duration> = None;
    loop {
        let e = match try_postgres(u, Purpose::Share) {
            Ok(q) => {
                if said.is_some() {
                    errln!(
                        "runyard worker: the queue answers (after {}); starting",
                        runyard::duration::human_duration(start.elapsed())
                    );
                }
                return Ok(Arc::new(q));
            }
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(postgres_refused(e)),
        };
        let waited = start.elapsed();
        match said {
            None => errln!(
                "runyard worker: cannot reach the queue: {e}; trying again every {} until it answers",
                runyard::duration::format_duration(QUEUE_RETRY)
            ),
            Some(at) if waited - at >= STILL_WAITING => errln!(
                "runyard worker: still cannot reach the queue after {}: {e}",
                runyard::duration::human_duration(waited)
            ),
            Some(_) => {}
        }
        if said.is_none_or(|at| waited - at >= STILL_WAITING) {
            said = Some(waited);
        }
        std::thread::sleep(QUEUE_RETRY);
    }
}

/// An open queue.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) queue: Arc<dyn Queue>,
    /// The state file, if the run has one.
    pub(crate) file: Option<(PathBuf, Arc<SqliteQueue>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_described_in_words() {
        assert_eq!(describe(&Counts::default()), "no jobs");
        let c = Counts {
            succeeded: 4990,
            dead: 3,
            queued: 7,
            ..Counts::default()
        };
        assert_eq!(
            describe(&c),
            "5000 jobs: 4990 succeeded, 3 dead, 7 unfinished"
        );
    }

    #[test]
    fn queue_urls() {
        assert_eq!(parse_queue_url("memory"), Ok(QueueUrl::Memory));
        assert_eq!(
            parse_queue_url("sqlite://run.db"),
            Ok(QueueUrl::Sqlite("run.db".into()))
        );
        assert_eq!(
            parse_queue_url("sqlite:///tmp/x.db"),
            Ok(QueueUrl::Sqlite("/tmp/x.db".into()))
        );
        assert!(parse_queue_url("sqlite://")
            .unwrap_err()
            .contains("needs a path"));
        assert!(parse_queue_url("redis://x")
            .unwrap_err()
            .contains("expected memory, sqlite://PATH or postgres://"));
        let e = parse_queue_url("mysql://me:secret@db/x").unwrap_err();
        assert!(e.starts_with("`mysql://…` is not a queue URL"), "{e}");
        let e = parse_queue_url("postgres://me:secret@db/x?schema=No-Good").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(
            parse_queue_url("postgres://me@db/jobs?schema=q1"),
            Ok(QueueUrl::Postgres("postgres://me@db/jobs?schema=q1".into()))
        );
        assert!(parse_queue_url("postgres://me@db/jobs?schema=No-Good")
            .unwrap_err()
            .contains("not a usable schema name"));
    }
}
