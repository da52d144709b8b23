//! Opening a state file: checked before anything is written, then migrated.

use std::path::Path;

use runyard_queue::{QueueError, QueueErrorKind};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::sql::SQL;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 11;

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
    include_str!("../migrations/0010_attempt_ends.sql"),
    include_str!("../migrations/0011_counted_in_batches.sql"),
];

/// What opening a state file may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if it does not exist (and upgrade an older one).
    CreateOrOpen,
    /// The file must exist and be a runyard queue (an older one is upgraded).
    Existing,
    /// The file must exist and be a runyard queue, and opening writes
    /// nothing to it: a file of an older schema is read as it is, not
    /// upgraded (for reading it, as `runyard status` does).
    Inspect,
}

fn err(kind: QueueErrorKind, path: &Path, msg: impl std::fmt::Display) -> QueueError {
    QueueError::new(kind, format!("{}: {msg}", path.display()))
}

pub(crate) fn sql_err(e: rusqlite::Error) -> QueueError {
    use rusqlite::ErrorCode as C;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy | C::DatabaseLocked => QueueErrorKind::Unavailable,
            C::ReadOnly => QueueErrorKind::ReadOnly,
            C::NotADatabase | C::DatabaseCorrupt => QueueErrorKind::Corrupt,
            _ => QueueErrorKind::Storage,
        },
        _ => QueueErrorKind::Storage,
    };
    QueueError::with_source(kind, "SQLite", e)
}

/// Whether this process may write in `dir` (WAL mode needs two files next
/// to the database).
fn dir_writable(dir: &Path) -> bool {
    runyard_exec::os::may_write(dir).is_ok()
}

/// Opens (or creates) a state file, refusing anything that is not a
/// runyard queue this build can use, before writing to it. Returns the
/// connection and the file's schema version (this build's, unless the
/// file was inspected).
pub(crate) fn open(path: &Path, mode: OpenMode) -> Result<(Connection, u32), QueueError> {
    let exists = path.exists();
    if !exists && mode != OpenMode::CreateOrOpen {
        return Err(err(
            QueueErrorKind::InvalidInput,
            path,
            "no such state file",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(err(
            QueueErrorKind::InvalidInput,
            path,
            "its directory does not exist",
        ));
    }
    if exists {
        let meta = std::fs::metadata(path).map_err(|e| err(QueueErrorKind::Storage, path, e))?;
        if !meta.is_file() {
            return Err(err(QueueErrorKind::InvalidInput, path, "not a file"));
        }
        if meta.permissions().readonly() {
            return Err(err(QueueErrorKind::ReadOnly, path, "the file is read-only"));
        }
    }
    if !dir_writable(dir) {
        return Err(err(
            QueueErrorKind::ReadOnly,
            path,
            format!(
                "cannot write in {} (a state file needs its directory writable)",
                dir.display()
            ),
        ));
    }
    let flags = if exists {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| err(QueueErrorKind::Storage, path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql_err)?;
    // Read-only checks first: nothing below writes until the file is known.
    let tables: Vec<String> = {
        let mut st = conn.prepare(&SQL.tables).map_err(|e| not_ours(path, e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| not_ours(path, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| not_ours(path, e))?
    };
    let version: u32 = if tables.iter().any(|t| t == "runyard_meta") {
        let v: Option<String> = conn
            .query_row(&SQL.meta_get, ["schema_version"], |r| r.get(0))
            .optional()
            .map_err(sql_err)?;
        v.and_then(|v| v.parse().ok()).ok_or_else(|| {
            err(
                QueueErrorKind::Corrupt,
                path,
                "a runyard state file without a schema version (damaged?)",
            )
        })?
    } else if tables.is_empty() {
        0
    } else {
        return Err(err(
            QueueErrorKind::Corrupt,
            path,
            format!(
                "an SQLite database, but not a runyard state file (it has tables: {})",
                tables.join(", ")
            ),
        ));
    };
    if version > SCHEMA_VERSION {
        return Err(err(
            QueueErrorKind::Incompatible,
            path,
            format!("written by a newer runyard (schema {version}; this build reads up to {SCHEMA_VERSION})"),
        ));
    }
    if version == 0 && mode != OpenMode::CreateOrOpen {
        return Err(err(
            QueueErrorKind::InvalidInput,
            path,
            "holds no runyard queue",
        ));
    }
    if mode == OpenMode::Inspect {
        return Ok((conn, version));
    }
    // A file being created by another process at the same moment may
    // refuse the change of journal mode at once (SQLite does not wait for
    // it): try again for as long as the busy timeout.
    let mut waited = std::time::Duration::ZERO;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    && waited < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
                waited += std::time::Duration::from_millis(5);
            }
            r => break r.map_err(sql_err)?,
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql_err)?;
    migrate(&conn, version).map_err(sql_err)?;
    Ok((conn, SCHEMA_VERSION))
}

fn not_ours(path: &Path, e: rusqlite::Error) -> QueueError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            err(
                QueueErrorKind::Corrupt,
                path,
                "not an SQLite file (or a damaged one)",
            )
        }
        _ => err(QueueErrorKind::Storage, path, e),
    }
}

/// The schema version the file holds now (0 before the first migration).
fn stored_version(conn: &Connection) -> rusqlite::Result<u32> {
    let mut st = conn.prepare(&SQL.tables)?;
    let tables = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if !tables.iter().any(|t| t == "runyard_meta") {
        return Ok(0);
    }
    let v: Option<String> = conn
        .query_row(&SQL.meta_get, ["schema_version"], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Applies the migrations after `from`, each in its own transaction.
fn migrate(conn: &Connection, from: u32) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = i as u32 + 1;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        // Another process (two workers started at once on a new file) may
        // have migrated the file since this one read its version: under
        // the write lock, look again.
        match stored_version(conn) {
            Ok(v) if v >= to => {
                conn.execute_batch("COMMIT")?;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        let r = conn
            .execute_batch(&runyard_queue::stored::render_states(sql))
            .and_then(|_| conn.execute(&SQL.meta_set, ["schema_version", &to.to_string()]));
        match r {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
