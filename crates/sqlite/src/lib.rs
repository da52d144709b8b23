//! runyard's SQLite queue: a run recorded in one file survives the process
//! (a crash, a SIGKILL, a reboot) and resumes where it stopped.
//!
//! The file is opened in WAL mode with `synchronous = NORMAL`: every
//! committed claim and outcome survives the process being killed; after a
//! power loss the last few transactions may be lost (they are re-run, never
//! double-recorded). Claims and outcomes are written in batches, one
//! transaction each. Before anything is written to an existing file it is
//! checked: not an SQLite file, an SQLite file that is not a runyard
//! queue, a schema from a newer runyard, a read-only file or directory are
//! each an error, and the file is left untouched.
//!
//! The file also keeps schedules (`Queue::as_schedules`): any process that
//! opens it may fire them, and each tick makes one submission, settled in
//! the write transaction that inserts its jobs.
#![forbid(unsafe_code)]

mod counts;
mod flow;
mod ids;
mod limits;
mod open;
mod queue;
mod schedules;
mod sql;

pub use open::{OpenMode, SCHEMA_VERSION};
pub use queue::SqliteQueue;
