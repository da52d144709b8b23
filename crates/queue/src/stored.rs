//! How the SQL queues (SQLite, PostgreSQL) store a job's state: one code
//! per row, with queued and scheduled told apart by the run-at; and how
//! they keep their table of workers.
//!
//! # Workers
//!
//! A registered worker has a row: name (the key), host, pid, when it
//! started, its last heartbeat and its lease. Registering first deletes the
//! rows whose heartbeat has lapsed (their workers are gone), then inserts
//! its own, or is refused when a row of its name is left. Each heartbeat
//! renews the row that is still the worker's own (same host, pid and
//! start): if it was deleted meanwhile (the worker was paused past its
//! lease) the worker inserts it again, unless another worker has taken the
//! name, which ends the paused one ([`name_taken_over`]). Which rows are a
//! handle's own is kept in [`Registrations`].

use std::cmp::Reverse;
use std::time::Duration;

use runyard_core::{AttemptError, AttemptRecord, JobState, JobView, OutcomeKind, Timestamp};

use crate::{Claimed, Counts, QueueError, QueueErrorKind, WorkerInfo};

/// Queued, or scheduled while the run-at is ahead.
pub const WAITING: i64 = 0;
/// Blocked: waiting for the jobs it is after.
pub const BLOCKED: i64 = 1;
/// Claimed by a worker.
pub const RUNNING: i64 = 2;
/// Succeeded.
pub const SUCCEEDED: i64 = 3;
/// Dead.
pub const DEAD: i64 = 4;
/// Cancelled.
pub const CANCELLED: i64 = 5;

/// The state codes by the names SQL files write them in: a statement says
/// `state = {RUNNING}`, and [`render_states`] puts the code in when the
/// backend loads it.
pub const STATE_NAMES: [(&str, i64); 6] = [
    ("{WAITING}", WAITING),
    ("{BLOCKED}", BLOCKED),
    ("{RUNNING}", RUNNING),
    ("{SUCCEEDED}", SUCCEEDED),
    ("{DEAD}", DEAD),
    ("{CANCELLED}", CANCELLED),
];

/// An SQL file's text with each state's name in braces (see
/// [`STATE_NAMES`]) replaced by its code. A backend renders its files once
/// and checks, in a test, that none has a brace left ([`unrendered`]).
pub fn render_states(sql: &str) -> String {
    STATE_NAMES.iter().fold(sql.to_string(), |s, (name, code)| {
        s.replace(name, &code.to_string())
    })
}

/// The first placeholder left in a rendered statement (a misspelled state
/// name), if any.
pub fn unrendered(sql: &str) -> Option<&str> {
    let i = sql.find('{')?;
    let end = sql[i..].find('}').map_or(sql.len(), |e| i + e + 1);
    Some(&sql[i..end])
}

/// Checks one SQL file of a backend: every placeholder renders, and no
/// `state` is compared with a number (codes are written by name). For the
/// backends' tests of their `sql/` folders.
pub fn check_statement(file: &str, text: &str) -> Result<(), String> {
    if let Some(p) = unrendered(&render_states(text)) {
        return Err(format!("{file}: unknown placeholder {p}"));
    }
    let s: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<String>()
        .replace(char::is_whitespace, "");
    for op in ["state=", "state<>", "state>=", "stateIN("] {
        for (i, _) in s.match_indices(op) {
            if s[i + op.len()..].starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("{file}: a state code written as a number"));
            }
        }
    }
    Ok(())
}

/// The state of a row with this code and run-at, at `now` (microseconds).
pub fn state_of(code: i64, run_at: i64, now: i64) -> JobState {
    match code {
        WAITING if run_at > now => JobState::Scheduled,
        WAITING => JobState::Queued,
        BLOCKED => JobState::Blocked,
        RUNNING => JobState::Running,
        SUCCEEDED => JobState::Succeeded,
        DEAD => JobState::Dead,
        _ => JobState::Cancelled,
    }
}

/// The state a row is counted in, by its code, whether its run-at is ahead
/// and whether its attempt has started: a claim that has not started is
/// counted queued, never running (see [`Counts`]).
pub fn counted_state(code: i64, later: bool, started: bool) -> JobState {
    match state_of(code, i64::from(later), 0) {
        JobState::Running if !started => JobState::Queued,
        s => s,
    }
}

/// The state a job's view shows, by its row's code, run-at and whether its
/// attempt has started, at `now`: as [`counted_state`] counts it (a claim
/// that has not started is queued).
pub fn view_state(code: i64, run_at: i64, started: bool, now: i64) -> JobState {
    match state_of(code, run_at, now) {
        JobState::Running if !started => JobState::Queued,
        s => s,
    }
}

/// The rows of a state: its code, and for the waiting ones whether the
/// run-at must be ahead (scheduled) or not (queued).
pub fn filter_of(state: JobState) -> (i64, Option<bool>) {
    match state {
        JobState::Queued => (WAITING, Some(false)),
        JobState::Scheduled => (WAITING, Some(true)),
        JobState::Blocked => (BLOCKED, None),
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

/// Counts per task from rows of (task, state code, run-at ahead, started,
/// count), ordered by task.
pub fn counts_by_task(
    rows: impl IntoIterator<Item = (String, i64, bool, bool, i64)>,
) -> Vec<(String, Counts)> {
    let mut out: Vec<(String, Counts)> = Vec::new();
    for (task, code, later, started, n) in rows {
        if out.last().is_none_or(|(t, _)| *t != task) {
            out.push((task, Counts::default()));
        }
        *out.last_mut()
            .expect("pushed")
            .1
            .get_mut(counted_state(code, later, started)) += n as u64;
    }
    out
}

/// An attempt as its row stores it.
#[derive(Debug)]
pub struct StoredAttempt {
    /// The job.
    pub job: u64,
    /// The attempt's number.
    pub n: u32,
    /// Its outcome's name.
    pub outcome: String,
    /// When it started (microseconds since the epoch).
    pub started_at: i64,
    /// How long it ran.
    pub duration_us: i64,
    /// How long it waited.
    pub queued_us: i64,
    /// Its error's message.
    pub error: Option<String>,
    /// Whether the error was permanent.
    pub permanent: bool,
    /// The error's detail, as JSON.
    pub detail: Option<String>,
}

impl StoredAttempt {
    /// The attempt's record.
    pub fn record(self) -> AttemptRecord {
        let detail = self.detail;
        let permanent = self.permanent;
        AttemptRecord::new(
            self.n,
            OutcomeKind::from_name(&self.outcome).unwrap_or(OutcomeKind::Crashed),
            Timestamp::from_micros(self.started_at),
            Duration::from_micros(self.duration_us.max(0) as u64),
            Duration::from_micros(self.queued_us.max(0) as u64),
            self.error.map(|message| AttemptError {
                message,
                permanent,
                detail: detail.and_then(|d| serde_json::value::RawValue::from_string(d).ok()),
            }),
        )
    }
}

/// Gives `jobs` (in id order) their attempts, from rows in (job, number) order.
pub fn attach_attempts(jobs: &mut [JobView], attempts: impl IntoIterator<Item = StoredAttempt>) {
    let mut pos = 0;
    for a in attempts {
        while pos < jobs.len() && jobs[pos].id.0 < a.job {
            pos += 1;
        }
        if pos == jobs.len() {
            return;
        }
        if jobs[pos].id.0 == a.job {
            jobs[pos].attempts.push(a.record());
        }
    }
}

/// A worker registered through one handle of a queue, as its row identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The worker.
    pub worker: WorkerInfo,
    /// When it registered (microseconds since the epoch).
    pub started_at: i64,
}

/// The workers registered through one handle of a queue, by name.
#[derive(Debug, Default)]
pub struct Registrations(std::sync::Mutex<rustc_hash::FxHashMap<String, Registered>>);

impl Registrations {
    /// None yet.
    pub fn new() -> Registrations {
        Registrations::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rustc_hash::FxHashMap<String, Registered>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `worker` registered at `started_at`.
    pub fn insert(&self, worker: &WorkerInfo, started_at: i64) {
        let r = Registered {
            worker: worker.clone(),
            started_at,
        };
        self.lock().insert(worker.name.clone(), r);
    }

    /// The registration of `name`, if this handle made one.
    pub fn get(&self, name: &str) -> Option<Registered> {
        self.lock().get(name).cloned()
    }

    /// Forgets the registration of `name`; returns it.
    pub fn remove(&self, name: &str) -> Option<Registered> {
        self.lock().remove(name)
    }
}

/// The error of a heartbeat that found its worker's name taken over.
pub fn name_taken_over(name: &str) -> QueueError {
    QueueError::new(
        QueueErrorKind::Conflict,
        format!(
            "the worker name `{name}` was taken over by another worker while this one's \
             heartbeat had lapsed (it was paused, or cut off from the queue, for longer than \
             its lease); its leases are lost, and it stops"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_render_as_their_codes() {
        let sql = "state IN ({WAITING}, {RUNNING}, {SUCCEEDED}, {DEAD}, {CANCELLED})";
        let want = format!("state IN ({WAITING}, {RUNNING}, {SUCCEEDED}, {DEAD}, {CANCELLED})");
        assert_eq!(render_states(sql), want);
        assert_eq!(unrendered(&render_states(sql)), None);
        assert_eq!(unrendered("state = {RUNING} AND"), Some("{RUNING}"));
        assert!(check_statement("a.sql", "SELECT 1 WHERE state = {RUNNING}").is_ok());
        assert!(check_statement("b.sql", "SELECT 1 WHERE state = 2").is_err());
        assert!(check_statement("c.sql", "WHERE state IN (4, 5)").is_err());
        assert!(check_statement("d.sql", "WHERE state = {RUNING}").is_err());
    }
}
