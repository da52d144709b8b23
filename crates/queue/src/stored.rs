//! How the SQL queues (SQLite, PostgreSQL) store a job's state: one code
//! per row, with queued and scheduled told apart by the run-at.

use std::cmp::Reverse;

use runyard_core::JobState;

use crate::Claimed;

/// Queued, or scheduled while the run-at is ahead.
pub const WAITING: i64 = 0;
/// Claimed by a worker.
pub const RUNNING: i64 = 2;
/// Succeeded.
pub const SUCCEEDED: i64 = 3;
/// Dead.
pub const DEAD: i64 = 4;
/// Cancelled.
pub const CANCELLED: i64 = 5;

/// The state of a row with this code and run-at, at `now` (microseconds).
pub fn state_of(code: i64, run_at: i64, now: i64) -> JobState {
    match code {
        WAITING if run_at > now => JobState::Scheduled,
        WAITING => JobState::Queued,
        RUNNING => JobState::Running,
        SUCCEEDED => JobState::Succeeded,
        DEAD => JobState::Dead,
        _ => JobState::Cancelled,
    }
}

/// The state of a row counted by code and whether its run-at is ahead.
pub fn counted_state(code: i64, later: bool) -> JobState {
    state_of(code, i64::from(later), 0)
}

/// The rows of a state: its code, and for the waiting ones whether the
/// run-at must be ahead (scheduled) or not (queued).
pub fn filter_of(state: JobState) -> (i64, Option<bool>) {
    match state {
        JobState::Queued => (WAITING, Some(false)),
        JobState::Scheduled => (WAITING, Some(true)),
        JobState::Running => (RUNNING, None),
        JobState::Succeeded => (SUCCEEDED, None),
        JobState::Dead => (DEAD, None),
        JobState::Cancelled => (CANCELLED, None),
    }
}

/// Puts claimed jobs in claim order (`RETURNING` gives none): highest
/// priority, then earliest run-at, then id.
pub fn sort_claims(claims: &mut [Claimed]) {
    claims.sort_by_key(|c| (Reverse(c.settings.priority), c.ready_at, c.id));
}
