//! Inspection: the [`Inspect`] capability (jobs, their attempts, counts per
//! task, live workers), which a queue returns from
//! [`Queue::as_inspect`](crate::Queue::as_inspect) when it has it.

use runyard_core::{JobId, JobState, JobView, OutcomeKind, Timestamp};

use crate::counts::Counts;
use crate::error::{QueueError, QueueErrorKind};
use crate::workers::LiveWorker;

/// Which jobs `list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Only jobs that carry this key as their unique key, their
    /// concurrency key or their rate key (the key's whole value, e.g.
    /// `tenant:42`).
    pub key: Option<String>,
    /// Only jobs whose parameters (as JSON) or one of whose attempts' error
    /// messages hold this text, compared without regard to ASCII case.
    pub text: Option<String>,
    /// Only jobs submitted at or after this time.
    pub since: Option<Timestamp>,
    /// Only jobs submitted before this time.
    pub until: Option<Timestamp>,
    /// Only jobs with a larger id (for paging).
    pub after: Option<JobId>,
    /// At most this many (0 = no limit).
    pub limit: usize,
}

impl ListFilter {
    /// Whether a job with this view, submitted under these keys, passes
    /// the filters other than state, task and paging: the rule every
    /// backend keeps, written once for queues that filter in memory.
    pub fn admits(&self, view: &JobView, keys: &[Option<&str>]) -> bool {
        if let Some(k) = &self.key {
            if !keys.contains(&Some(k.as_str())) {
                return false;
            }
        }
        if self.since.is_some_and(|t| view.enqueued_at < t)
            || self.until.is_some_and(|t| view.enqueued_at >= t)
        {
            return false;
        }
        match &self.text {
            None => true,
            Some(t) => {
                let t = t.to_ascii_lowercase();
                let holds = |s: &str| s.to_ascii_lowercase().contains(&t);
                holds(view.params.as_json())
                    || view
                        .attempts
                        .iter()
                        .any(|a| a.error_message().is_some_and(holds))
            }
        }
    }
}

/// The microseconds of a minute, the width of the buckets of
/// [`Inspect::finished_per_minute`].
pub const MINUTE_US: i64 = 60_000_000;

/// How many attempts ended with one outcome in one minute (see
/// [`Inspect::finished_per_minute`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedCount {
    /// The minute's start: a whole minute of UTC.
    pub minute: Timestamp,
    /// How they ended.
    pub outcome: OutcomeKind,
    /// How many.
    pub attempts: u64,
}

/// The whole minute of UTC that holds `t`.
pub fn minute_of(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.as_micros().div_euclid(MINUTE_US) * MINUTE_US)
}

/// Counts attempts by the minute they ended in (their start plus their
/// duration) and their outcome, keeping those that ended in
/// `[since, until)`: the rule every backend keeps, written once for
/// queues that count in memory. Sorted by minute, then outcome.
pub fn count_finished<'a>(
    attempts: impl IntoIterator<Item = &'a runyard_core::AttemptRecord>,
    since: Timestamp,
    until: Timestamp,
) -> Vec<FinishedCount> {
    let mut by: std::collections::BTreeMap<(Timestamp, usize), u64> = Default::default();
    for a in attempts {
        let end = a.started_at.saturating_add(a.duration());
        if end >= since && end < until {
            *by.entry((minute_of(end), outcome_rank(a.outcome)))
                .or_default() += 1;
        }
    }
    by.into_iter()
        .map(|((minute, rank), attempts)| FinishedCount {
            minute,
            outcome: OutcomeKind::ALL[rank],
            attempts,
        })
        .collect()
}

/// Counts read from a store as rows (the minute's number since the epoch,
/// the outcome's name, the count), sorted by minute then outcome; a name
/// this build does not know is left out.
pub fn finished_from_rows(
    rows: impl IntoIterator<Item = (i64, String, i64)>,
) -> Vec<FinishedCount> {
    let mut out: Vec<FinishedCount> = rows
        .into_iter()
        .filter_map(|(minute, outcome, n)| {
            Some(FinishedCount {
                minute: Timestamp::from_micros(minute.saturating_mul(MINUTE_US)),
                outcome: OutcomeKind::from_name(&outcome)?,
                attempts: u64::try_from(n).unwrap_or(0),
            })
        })
        .collect();
    out.sort_by_key(|c| (c.minute, outcome_rank(c.outcome)));
    out
}

/// Where `o` is in [`OutcomeKind::ALL`]: the order of outcomes within a
/// minute of [`Inspect::finished_per_minute`].
pub fn outcome_rank(o: OutcomeKind) -> usize {
    OutcomeKind::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

/// Reading jobs: what `runyard status`, `list` and reports read.
///
/// A job's view and a listing by state say `running` only for an attempt
/// that has started, as [`Queue::counts`](crate::Queue::counts) counts it:
/// a claim made ahead of time and not started is `queued`.
pub trait Inspect: Send + Sync {
    /// One job with its attempts.
    fn get(&self, id: JobId) -> Result<Option<JobView>, QueueError>;

    /// Jobs by id, filtered and paged.
    fn list(&self, filter: &ListFilter) -> Result<Vec<JobView>, QueueError>;

    /// The ids of the jobs after `id` (its direct dependents), by id.
    fn dependents(&self, id: JobId) -> Result<Vec<JobId>, QueueError>;

    /// Counts per state for each task, by task name, as
    /// [`Queue::counts`](crate::Queue::counts) counts them. The default
    /// reads every job a page at a time and counts it by its view's state.
    fn counts_by_task(&self) -> Result<Vec<(String, Counts)>, QueueError> {
        let mut by: std::collections::BTreeMap<String, Counts> = Default::default();
        let mut after = None;
        loop {
            let page = self.list(&ListFilter {
                after,
                limit: 1024,
                ..ListFilter::default()
            })?;
            after = page.last().map(|v| v.id);
            for v in &page {
                *by.entry(v.task.clone()).or_default().get_mut(v.state) += 1;
            }
            if page.len() < 1024 {
                return Ok(by.into_iter().collect());
            }
        }
    }

    /// The attempts that ended (their start plus their duration) at or
    /// after `since` and before `until`, counted per whole minute of UTC
    /// and outcome, sorted by minute then outcome, each count above zero:
    /// what a dashboard draws throughput and failure rates from. A
    /// durable queue reads them by an index on the attempts' ends, not by
    /// a scan. The default says the queue cannot count them.
    fn finished_per_minute(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<FinishedCount>, QueueError> {
        let _ = (since, until);
        Err(QueueError::new(
            QueueErrorKind::Unsupported,
            "this queue does not count finished attempts per minute",
        ))
    }

    /// The registered workers whose heartbeat has not lapsed, by name (see
    /// [`Queue::register_worker`](crate::Queue::register_worker)).
    fn live_workers(&self) -> Result<Vec<LiveWorker>, QueueError>;
}
