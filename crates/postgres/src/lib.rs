//! runyard's PostgreSQL queue: jobs submitted on one machine, drained by
//! workers on many.
//!
//! [`PgQueue`] implements [`runyard_queue::Queue`] and passes its
//! conformance suite. The tables live in their own schema (`runyard`, or
//! `?schema=NAME` in the URL), created and upgraded by versioned
//! migrations ([`PgQueue::migrate`], `runyard migrate`; also on first use
//! unless [`PgOptions::migrate_on_connect`] says not to) under an advisory
//! lock. Delivery is at least once: a worker that dies mid-attempt has its
//! lease expire and its job rescued and run again, and an outcome is
//! recorded exactly once, fenced by the claim number, so a worker that
//! comes back after its lease was taken over cannot overwrite the new
//! attempt's outcome.
//!
//! The queue keeps schedules too ([`runyard_queue::Schedules`], from
//! `as_schedules()`): any worker fires them, each tick once, on the
//! database's clock (see `docs/backends.md` §9).
//!
//! A dropped connection or a restarting server is retried with backoff
//! (60 s by default, [`PgOptions::reconnect_for`]); an enqueue whose
//! commit was sent but not acknowledged is reported as an error rather than
//! retried, since it may have been applied.
#![forbid(unsafe_code)]

mod conn;
mod flow;
mod libpq;
mod limit_sql;
mod limits;
mod queue;
mod schedules;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use conn::{OpenMode, PgOptions, SCHEMA_VERSION, TABLES};
pub use queue::{Activity, PgQueue};
pub use tls::SslMode;
