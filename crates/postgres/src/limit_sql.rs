//! The flow-control statements of the PostgreSQL queue, rendered once,
//! and which jobs need the flow insert: what both the queue
//! (`queue.rs`) and flow control (`limits.rs`) read, kept apart from both
//! so that neither module depends on the other for it.

use runyard_queue::NewJob;

use crate::conn::PgOptions;

/// The flow statements, rendered for the configured schema once.
pub(crate) struct LimitSql {
    pub(crate) claim_limited: String,
    pub(crate) claim_keyed: String,
    pub(crate) claimed_rows: String,
    pub(crate) free_slots: String,
    pub(crate) promote: String,
    pub(crate) gave_tags: String,
    pub(crate) keyless_tags: String,
    pub(crate) unique_holders: String,
    pub(crate) unique_recents: String,
    pub(crate) unique_replace: String,
    pub(crate) lock_unique: String,
    pub(crate) holds: String,
    pub(crate) flow_on: String,
    pub(crate) turn_on: String,
}

impl LimitSql {
    pub(crate) fn new(o: &PgOptions) -> LimitSql {
        LimitSql {
            claim_limited: o.sql(include_str!("../sql/claim_limited.sql")),
            claim_keyed: o.sql(include_str!("../sql/claim_keyed.sql")),
            claimed_rows: o.sql(include_str!("../sql/claimed_rows.sql")),
            free_slots: o.sql(include_str!("../sql/free_slots.sql")),
            promote: o.sql(include_str!("../sql/promote.sql")),
            gave_tags: o.sql(include_str!("../sql/gave_tags.sql")),
            keyless_tags: o.sql(include_str!("../sql/keyless_tags.sql")),
            unique_holders: o.sql(include_str!("../sql/unique_holders.sql")),
            unique_recents: o.sql(include_str!("../sql/unique_recents.sql")),
            unique_replace: o.sql(include_str!("../sql/unique_replace.sql")),
            lock_unique: o.sql(include_str!("../sql/lock_unique.sql")),
            holds: o.sql(include_str!("../sql/holds.sql")),
            flow_on: o.sql("SELECT EXISTS (SELECT 1 FROM runyard.meta WHERE key = 'flow')"),
            turn_on: o.sql(
                "INSERT INTO runyard.meta (key, value) VALUES ('flow', 'on') ON CONFLICT DO NOTHING",
            ),
        }
    }
}

/// Whether a job needs the flow insert: a unique key, or limits (or a
/// fairness key) to carry.
pub(crate) fn needs_flow(j: &NewJob) -> bool {
    j.unique.is_some() || !j.limits.is_empty()
}
