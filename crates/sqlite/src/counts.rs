//! The kept counts (`runyard_counts`, schema 9) of the changes that no
//! trigger counts (schema 11): jobs added, claimed and succeeded. Inserts
//! and claims tally what they changed, and the tally is written once per
//! transaction, a row for each task and state it moved, before the
//! transaction commits; a batch's successes are counted by one statement
//! over their ids.

use crate::sql::SQL;
use rusqlite::{params, Transaction};

/// Jobs moved in one transaction, by task and state code: `(task, state,
/// change)`. A batch names few tasks, so a list is searched.
#[derive(Debug, Default)]
pub(crate) struct Tally(Vec<(String, i64, i64)>);

impl Tally {
    /// One job of `task` left state `from` (if any) for state `to`.
    pub(crate) fn moved(&mut self, task: &str, from: Option<i64>, to: i64) {
        if let Some(from) = from {
            self.add(task, from, -1);
        }
        self.add(task, to, 1);
    }

    fn add(&mut self, task: &str, state: i64, by: i64) {
        match self.0.iter_mut().find(|(t, s, _)| *s == state && t == task) {
            Some(row) => row.2 += by,
            None => self.0.push((task.to_string(), state, by)),
        }
    }

    /// Writes the tally in `tx` (and empties it).
    pub(crate) fn write(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut st = tx.prepare_cached(&SQL.counts_add)?;
        for (task, state, by) in self.0.drain(..) {
            if by != 0 {
                st.execute(params![task, state, by])?;
            }
        }
        Ok(())
    }
}

/// Counts the successes `tx` recorded of the jobs `ids` (each running
/// until then), one statement for the batch (counts_succeeded.sql).
pub(crate) fn succeeded(tx: &Transaction<'_>, ids: &[i64]) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(ids).unwrap_or_default();
    tx.prepare_cached(&SQL.counts_succeeded)?.execute([ids])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_sums_each_task_and_state_once() {
        let mut t = Tally::default();
        t.moved("a", Some(0), 2);
        t.moved("a", Some(0), 2);
        t.moved("b", None, 0);
        t.moved("a", Some(2), 3);
        let mut rows = t.0.clone();
        rows.sort();
        assert_eq!(
            rows,
            vec![
                ("a".to_string(), 0, -2),
                ("a".to_string(), 2, 1),
                ("a".to_string(), 3, 1),
                ("b".to_string(), 0, 1),
            ]
        );
    }
}
