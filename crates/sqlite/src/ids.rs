//! Job ids are never given twice: SQLite gives a new row the largest id
//! left plus one, so once jobs with ids above every job left are deleted
//! (a prune, a delete), the largest id deleted is kept and the next job
//! is given one above it.

use rusqlite::OptionalExtension;

use crate::sql::SQL;

type Tx<'a> = rusqlite::Transaction<'a>;

/// The id the first job `tx` adds must take, if jobs were deleted above
/// every job left (id_floor.sql): no id is ever given to two jobs.
pub(crate) fn id_floor(tx: &Tx<'_>) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(&SQL.id_floor)?
        .query_row([], |r| r.get(0))
        .optional()
}

/// Keeps `deleted`, the largest id `tx` deleted, as the floor of the ids
/// to come ([`id_floor`]).
pub(crate) fn raise_id_floor(tx: &Tx<'_>, deleted: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(&SQL.id_floor_raise)?.execute([deleted])?;
    Ok(())
}
