//! Where a run is recorded: in memory (the default), or in a state file
//! that survives the process and can be resumed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runyard::queue::{Counts, Queue, QueueError, QueueErrorKind, Rescue};
use runyard::sqlite::{OpenMode, SqliteQueue};

use crate::UsageError;

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
    Err(format!(
        "`{s}` is not a queue URL (expected memory, sqlite://PATH or postgres://USER@HOST/DB)"
    ))
}

/// What a state file is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A new run: the file may not exist yet, and must hold no jobs.
    NewRun,
    /// Resuming the run the file holds.
    Resume,
    /// Reading it (`runyard status`), alongside a run that may be going on.
    Inspect,
}

/// Opens the state file at `path` for `purpose`. Files that are not a
/// runyard state this build can use are refused (exit 2) and left as they
/// were; a run and a resume hold the file exclusively until the process
/// ends.
pub(crate) fn open_state(path: &Path, purpose: Purpose) -> anyhow::Result<Arc<SqliteQueue>> {
    // A new run may start in an empty file (one a killed run was creating).
    let mode = match purpose {
        Purpose::NewRun => OpenMode::CreateOrOpen,
        _ => OpenMode::Existing,
    };
    let q = SqliteQueue::open(path, mode).map_err(|e| refused(path, e))?;
    if purpose == Purpose::Inspect {
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
fn refused(path: &Path, e: QueueError) -> anyhow::Error {
    match e.kind() {
        QueueErrorKind::Corrupt
        | QueueErrorKind::Incompatible
        | QueueErrorKind::ReadOnly
        | QueueErrorKind::InvalidInput => UsageError(format!(
            "cannot use {} as a state file: {e}",
            path.display()
        ))
        .into(),
        _ => anyhow::Error::new(e).context(format!("opening {}", path.display())),
    }
}

/// Takes an exclusive lock on the file for the rest of the process, or
/// says who is using it. (`flock`, which SQLite's own locks do not touch;
/// the descriptor is never closed, since closing any descriptor of the file
/// would drop SQLite's locks on it.)
fn hold(path: &Path) -> anyhow::Result<()> {
    let f = File::open(path)?;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(UsageError(format!(
                "{} is in use by another runyard run; wait for it to end (see it with `runyard status --state {}`)",
                path.display(),
                path.display()
            ))
            .into());
        }
        return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
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

/// The queue of a run: in memory, or the state file (opened for `purpose`).
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
            queue: connect_postgres(u)?,
            file: None,
        },
    })
}

/// Connects to a PostgreSQL queue (migrating its schema on first use).
pub(crate) fn connect_postgres(url: &str) -> anyhow::Result<Arc<runyard::postgres::PgQueue>> {
    match runyard::postgres::PgQueue::connect(url) {
        Ok(q) => Ok(Arc::new(q)),
        Err(e) => match e.kind() {
            QueueErrorKind::Incompatible | QueueErrorKind::InvalidInput => {
                Err(UsageError(e.to_string()).into())
            }
            _ => Err(anyhow::Error::new(e)),
        },
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
        assert_eq!(
            parse_queue_url("postgres://me@db/jobs?schema=q1"),
            Ok(QueueUrl::Postgres("postgres://me@db/jobs?schema=q1".into()))
        );
        assert!(parse_queue_url("postgres://me@db/jobs?schema=No-Good")
            .unwrap_err()
            .contains("not a usable schema name"));
    }
}
