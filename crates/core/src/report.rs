//! The report of a run: every job once, with every attempt, and a summary.
//!
//! As JSON (`runyard run --json FILE`):
//!
//! ```json
//! {
//!   "jobs": [
//!     {"id": 1, "task": "fail", "params": {"k": 1}, "state": "succeeded",
//!      "attempts": [
//!        {"attempt": 1, "outcome": "failed", "started_at": "2026-11-25T10:00:00.001Z",
//!         "duration_ms": 0.02, "queued_ms": 0.1, "error": "failing on purpose (attempt 1 of k=1)"},
//!        {"attempt": 2, "outcome": "succeeded", "started_at": "2026-11-25T10:00:00.105Z",
//!         "duration_ms": 0.01, "queued_ms": 0.2, "error": null}],
//!      "output": "succeeded on attempt 2"}
//!   ],
//!   "summary": {"jobs": 1, "succeeded": 1, "dead": 0, "cancelled": 0, "attempts": 2,
//!               "wall_ms": 105.2, "interrupted": false,
//!               "tasks": [{"task": "fail", "jobs": 1, "succeeded": 1, "dead": 0, "cancelled": 0,
//!                          "attempts": 2, "p50_ms": 0.01, "p95_ms": 0.02, "max_ms": 0.02}]}
//! }
//! ```
//!
//! `state` is one of `succeeded`, `dead`, `cancelled` (or `queued`,
//! `scheduled`, `running` for a job a durable queue still holds);
//! `outcome` is one of `succeeded`, `failed`, `panicked`, `crashed`,
//! `timed_out`, `cancelled`. An interrupted run's summary also says what
//! held the jobs it had not started, when something did:
//! `"held": [{"hold": {"kind": "concurrency", "target": {"task": "sleep"},
//! "limit": 1}, "jobs": 2}]` (see [`HeldJobs`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flow::Hold;
use crate::job::{JobId, JobSettings, JobState};
use crate::outcome::{AttemptRecord, Output};
use crate::params::JobParams;
use crate::schedule::Tick;
use crate::sketch::Sketch;
use crate::time::Timestamp;
use crate::workflow::{Cause, RunIf};

/// A job as a queue holds it: its state, every attempt, its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The id.
    pub id: JobId,
    /// The task's name.
    pub task: String,
    /// The parameters.
    pub params: JobParams,
    /// The state.
    pub state: JobState,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// The output of the attempt that succeeded (`null` otherwise).
    pub output: Output,
    /// When it was enqueued.
    pub enqueued_at: Timestamp,
    /// Its name in its workflow, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The ids of the jobs it is after, in the order it named them.
    #[serde(default)]
    pub after: Vec<JobId>,
    /// When it runs, if it is after other jobs.
    #[serde(default, skip_serializing_if = "is_success")]
    pub run_if: RunIf,
    /// For a job cancelled because a job it was after ended dead or
    /// cancelled: that job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<Box<Cause>>,
    /// For a job a schedule made: `schedule` (its name) and `tick` (its
    /// time).
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Tick>,
    /// The options it runs with: attempts, backoff, timeout, priority,
    /// mode (`None` where a view does not carry them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<JobSettings>,
    /// For a waiting job (queued or scheduled), when it may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<Timestamp>,
    /// The keys it carries (unique, concurrency, rate).
    #[serde(default, skip_serializing_if = "JobKeys::is_empty")]
    pub keys: JobKeys,
}

/// The keys a job carries, as written when it was submitted (a
/// concurrency or rate key as `NAME` or `NAME:VALUE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobKeys {
    /// Its unique key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<String>,
    /// Its concurrency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<String>,
    /// Its rate key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
}

impl JobKeys {
    /// Whether it carries none.
    pub fn is_empty(&self) -> bool {
        *self == JobKeys::default()
    }
}

fn is_success(r: &RunIf) -> bool {
    *r == RunIf::Success
}

impl JobView {
    /// The last attempt's error message, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.attempts.last().and_then(|a| a.error_message())
    }
}

/// Counts and attempt-time percentiles for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task.
    pub task: String,
    /// Jobs of it.
    pub jobs: u64,
    /// Of those, succeeded.
    pub succeeded: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Attempts in all.
    pub attempts: u64,
    /// Median attempt time (nearest rank, from a [`Sketch`]: within
    /// [`SKETCH_RELATIVE_ERROR`](crate::SKETCH_RELATIVE_ERROR) of the exact
    /// one).
    pub p50_ms: f64,
    /// 95th percentile attempt time (as `p50_ms`).
    pub p95_ms: f64,
    /// Longest attempt (exact).
    pub max_ms: f64,
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Jobs in the report.
    pub jobs: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Not finished (only a durable queue leaves jobs unfinished).
    #[serde(default)]
    pub unfinished: u64,
    /// Attempts in all.
    pub attempts: u64,
    /// Wall time of the run.
    pub wall_ms: f64,
    /// Whether the run was interrupted (Ctrl-C or SIGTERM).
    pub interrupted: bool,
    /// Per task, by name.
    pub tasks: Vec<TaskSummary>,
    /// For an interrupted run: what held the jobs it had not started, as
    /// they were at the first interrupt (each reason with how many jobs it
    /// held, largest first). Empty when nothing held a job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldJobs>,
}

/// Jobs that could have run but did not, and what held them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldJobs {
    /// The reason (the first that held each job).
    pub hold: Hold,
    /// How many jobs it held.
    pub jobs: u64,
}

impl Summary {
    /// Whether every job succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.succeeded == self.jobs
    }
}

/// Builds a [`Summary`] from job views, one at a time, so that a report of
/// a million jobs never needs them all in memory at once: per task, counts
/// and a [`Sketch`] of attempt times (memory bounded whatever the number
/// of attempts).
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    tasks: BTreeMap<String, TaskAcc>,
}

#[derive(Debug, Default)]
struct TaskAcc {
    jobs: u64,
    succeeded: u64,
    dead: u64,
    cancelled: u64,
    /// Attempt times in microseconds (the percentiles' sketch).
    attempt_us: Sketch,
}

impl SummaryBuilder {
    /// An empty builder.
    pub fn new() -> SummaryBuilder {
        SummaryBuilder::default()
    }

    /// Counts one job.
    pub fn add(&mut self, job: &JobView) {
        self.add_parts(
            &job.task,
            job.state,
            job.attempts.iter().map(|a| a.duration()),
        );
    }

    /// Counts one job given by its parts.
    pub fn add_parts(
        &mut self,
        task: &str,
        state: JobState,
        attempt_times: impl Iterator<Item = Duration>,
    ) {
        let acc = match self.tasks.get_mut(task) {
            Some(acc) => acc,
            None => self.tasks.entry(task.to_string()).or_default(),
        };
        acc.jobs += 1;
        match state {
            JobState::Succeeded => acc.succeeded += 1,
            JobState::Dead => acc.dead += 1,
            JobState::Cancelled => acc.cancelled += 1,
            _ => {}
        }
        for d in attempt_times {
            acc.attempt_us
                .add(d.as_micros().min(u64::MAX as u128) as u64);
        }
    }

    /// The summary, with the run's wall time.
    pub fn finish(self, wall: Duration, interrupted: bool) -> Summary {
        let mut s = Summary {
            jobs: 0,
            succeeded: 0,
            dead: 0,
            cancelled: 0,
            unfinished: 0,
            attempts: 0,
            wall_ms: wall.as_secs_f64() * 1e3,
            interrupted,
            tasks: Vec::with_capacity(self.tasks.len()),
            held: Vec::new(),
        };
        for (task, acc) in self.tasks {
            let pct = |p: f64| acc.attempt_us.percentile(p) as f64 / 1e3;
            s.jobs += acc.jobs;
            s.succeeded += acc.succeeded;
            s.dead += acc.dead;
            s.cancelled += acc.cancelled;
            s.unfinished += acc.jobs - acc.succeeded - acc.dead - acc.cancelled;
            s.attempts += acc.attempt_us.len();
            s.tasks.push(TaskSummary {
                task,
                jobs: acc.jobs,
                succeeded: acc.succeeded,
                dead: acc.dead,
                cancelled: acc.cancelled,
                attempts: acc.attempt_us.len(),
                p50_ms: pct(50.0),
                p95_ms: pct(95.0),
                max_ms: acc.attempt_us.max() as f64 / 1e3,
            });
        }
        s
    }
}

/// Nearest-rank percentile of sorted values; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 95.0), 95);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_counts_per_task() {
        let mut b = SummaryBuilder::new();
        b.add_parts(
            "cpu",
            JobState::Succeeded,
            [Duration::from_millis(10)].into_iter(),
        );
        b.add_parts(
            "fail",
            JobState::Dead,
            [Duration::from_millis(1), Duration::from_millis(3)].into_iter(),
        );
        b.add_parts("fail", JobState::Cancelled, std::iter::empty());
        let s = b.finish(Duration::from_secs(1), false);
        assert_eq!(
            (s.jobs, s.succeeded, s.dead, s.cancelled, s.attempts),
            (3, 1, 1, 1, 3)
        );
        assert_eq!(s.tasks[1].task, "fail");
        assert_eq!(s.tasks[1].max_ms, 3.0);
        assert!(!s.all_succeeded());
    }
}
