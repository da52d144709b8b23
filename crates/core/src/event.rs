//! Events: one per state transition of a job, with its timings.
//!
//! As JSON lines (`runyard run --events FILE`), each event is one object
//! `{"type": STATE, "data": {...}}` where `type` names the state the job
//! entered (`unblocked`: it left `blocked` for `queued`):
//!
//! | `type` | `data` fields |
//! |---|---|
//! | `queued` | `job`, `task`, `at`, `reason` (`submitted`, `rescued` after a lost lease, `released` at a shutdown) |
//! | `blocked` | `job`, `task`, `at`: submitted after jobs that have not all ended as it needs |
//! | `unblocked` | `job`, `task`, `at`: the jobs it was after ended as it needs; it is queued (or scheduled, until its own run-at) |
//! | `running` | `job`, `task`, `at`, `attempt`, `queued_ms` |
//! | `scheduled` | `job`, `task`, `at`, `attempt`, `outcome`, `duration_ms`, `error`, `delay_ms`, `run_at` |
//! | `succeeded` | `job`, `task`, `at`, `attempt`, `duration_ms` |
//! | `dead` | `job`, `task`, `at`, `attempt`, `outcome`, `duration_ms`, `error` |
//! | `cancelled` | `job`, `task`, `at`, `attempts`, and `cancelled_by` (`{"job": ID, "name": NAME}`, the job whose end cancelled it) when a job it was after ended dead or cancelled |
//! | `fired` | `schedule`, `tick`, `at`, `jobs` (ids): a schedule's tick made its submission |
//! | `skipped` | `schedule`, `tick`, `at`: a tick skipped, its previous job not ended (`overlap = "skip"`) |
//! | `missed` | `schedule`, `count`, `at`: ticks no worker fired within the grace, not caught up |
//!
//! The events of a job that a schedule made also carry `schedule` (its
//! name) and `tick` (its time, RFC 3339). A schedule's events come from
//! the worker that settled its ticks.
//!
//! `at` and `tick` are RFC 3339 timestamps; `attempt` counts from 1; `outcome` is one
//! of `failed`, `panicked`, `crashed`, `timed_out`, `cancelled`; the `*_ms`
//! fields are milliseconds to the microsecond (`0.338`).

use serde::{Serialize, Serializer};

use crate::job::JobId;
use crate::outcome::OutcomeKind;
use crate::schedule::Tick;
use crate::time::Timestamp;
use crate::workflow::Cause;

/// A job's state transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The job is waiting to be claimed.
    Queued {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// Why it is queued.
        reason: QueuedReason,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// The job was submitted after jobs that have not all ended as it
    /// needs: it waits for them.
    Blocked {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// A blocked job's parents all ended as it needs: it is queued (or
    /// scheduled until its run-at).
    Unblocked {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// An attempt started.
    Running {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// The attempt number.
        attempt: u32,
        /// How long the job waited since it became ready.
        #[serde(serialize_with = "micros")]
        queued_ms: f64,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// An attempt did not succeed and another is scheduled.
    Scheduled {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// The attempt that ended.
        attempt: u32,
        /// How it ended.
        outcome: OutcomeKind,
        /// How long it ran.
        #[serde(serialize_with = "micros")]
        duration_ms: f64,
        /// Its error.
        error: &'a str,
        /// The backoff delay.
        #[serde(serialize_with = "micros")]
        delay_ms: f64,
        /// When the next attempt may start.
        run_at: Timestamp,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// The job succeeded.
    Succeeded {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// The attempt that succeeded.
        attempt: u32,
        /// How long it ran.
        #[serde(serialize_with = "micros")]
        duration_ms: f64,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// The job is dead: out of attempts, or a permanent error.
    Dead {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// The last attempt.
        attempt: u32,
        /// How it ended.
        outcome: OutcomeKind,
        /// How long it ran.
        #[serde(serialize_with = "micros")]
        duration_ms: f64,
        /// Its error.
        error: &'a str,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// The job was cancelled.
    Cancelled {
        /// The job.
        job: JobId,
        /// Its task.
        task: &'a str,
        /// When.
        at: Timestamp,
        /// Attempts it had run.
        attempts: u32,
        /// The job whose end cancelled it, when a job it was after ended
        /// dead or cancelled.
        #[serde(skip_serializing_if = "Option::is_none")]
        cancelled_by: Option<&'a Cause>,
        /// For a job a schedule made: `schedule` (its name) and `tick`
        /// (its time), flattened into the event's data.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        schedule: Option<&'a Tick>,
    },
    /// A schedule's tick fired: the jobs of its submission were inserted
    /// (by the worker that settled the tick).
    Fired {
        /// The schedule.
        schedule: &'a str,
        /// The tick (for `schedule run`, the time it ran).
        tick: Timestamp,
        /// When it was settled.
        at: Timestamp,
        /// The submission's jobs.
        jobs: &'a [JobId],
    },
    /// A schedule's tick was skipped: the job of the previous tick had not
    /// ended, and the schedule does not overlap.
    Skipped {
        /// The schedule.
        schedule: &'a str,
        /// The tick.
        tick: Timestamp,
        /// When it was settled.
        at: Timestamp,
    },
    /// Ticks of a schedule that no worker fired within its grace, and that
    /// its catch-up did not fire late.
    Missed {
        /// The schedule.
        schedule: &'a str,
        /// How many.
        count: u64,
        /// When they were settled.
        at: Timestamp,
    },
}

/// Milliseconds written to the microsecond, a JSON number still: `0.338`,
/// not the `0.33799999999999997` of the float it was computed in.
fn micros<S: Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((ms * 1e3).round() / 1e3)
}

/// Why a job entered the `queued` state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedReason {
    /// It was submitted.
    Submitted,
    /// Its worker's lease expired (the worker died) and it was put back.
    Rescued,
    /// Its worker shut down and gave it back.
    Released,
}

impl Event<'_> {
    /// The job this event is about; `None` for a schedule's events
    /// (`fired`, `skipped`, `missed`).
    pub fn job(&self) -> Option<JobId> {
        match self {
            Event::Queued { job, .. }
            | Event::Blocked { job, .. }
            | Event::Unblocked { job, .. }
            | Event::Running { job, .. }
            | Event::Scheduled { job, .. }
            | Event::Succeeded { job, .. }
            | Event::Dead { job, .. }
            | Event::Cancelled { job, .. } => Some(*job),
            Event::Fired { .. } | Event::Skipped { .. } | Event::Missed { .. } => None,
        }
    }

    /// The schedule and tick of a job a schedule made.
    pub fn tick(&self) -> Option<&Tick> {
        match self {
            Event::Queued { schedule, .. }
            | Event::Blocked { schedule, .. }
            | Event::Unblocked { schedule, .. }
            | Event::Running { schedule, .. }
            | Event::Scheduled { schedule, .. }
            | Event::Succeeded { schedule, .. }
            | Event::Dead { schedule, .. }
            | Event::Cancelled { schedule, .. } => *schedule,
            Event::Fired { .. } | Event::Skipped { .. } | Event::Missed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_use_the_type_data_envelope() {
        let e = Event::Dead {
            job: JobId(7),
            task: "fail",
            at: Timestamp::from_micros(0),
            attempt: 3,
            outcome: OutcomeKind::Failed,
            duration_ms: 1.5,
            error: "boom",
            schedule: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "dead");
        assert_eq!(v["data"]["job"], 7);
        assert_eq!(v["data"]["outcome"], "failed");
        assert_eq!(v["data"]["error"], "boom");
        assert_eq!(e.job(), Some(JobId(7)));
        assert!(v["data"].get("schedule").is_none(), "{v}");
    }

    #[test]
    fn a_cancelled_event_names_its_cause_only_when_it_has_one() {
        let cause = Cause {
            job: JobId(3),
            name: Some("extract".into()),
        };
        let mut e = Event::Cancelled {
            job: JobId(7),
            task: "load",
            at: Timestamp::from_micros(0),
            attempts: 0,
            cancelled_by: Some(&cause),
            schedule: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["data"]["cancelled_by"]["job"], 3);
        assert_eq!(v["data"]["cancelled_by"]["name"], "extract");
        if let Event::Cancelled { cancelled_by, .. } = &mut e {
            *cancelled_by = None;
        }
        let v = serde_json::to_value(&e).unwrap();
        assert!(v["data"].get("cancelled_by").is_none(), "{v}");
        let u = Event::Unblocked {
            job: JobId(8),
            task: "load",
            at: Timestamp::from_micros(0),
            schedule: None,
        };
        assert_eq!(serde_json::to_value(&u).unwrap()["type"], "unblocked");
    }

    #[test]
    fn milliseconds_are_written_to_the_microsecond() {
        let e = Event::Scheduled {
            job: JobId(1),
            task: "fail",
            at: Timestamp::from_micros(0),
            attempt: 1,
            outcome: OutcomeKind::Failed,
            duration_ms: 0.33799999999999997,
            error: "boom",
            delay_ms: 1000.3539999999999,
            run_at: Timestamp::from_micros(0),
            schedule: None,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""duration_ms":0.338,"#), "{json}");
        assert!(json.contains(r#""delay_ms":1000.354,"#), "{json}");
        let running = Event::Running {
            job: JobId(1),
            task: "fail",
            at: Timestamp::from_micros(0),
            attempt: 1,
            queued_ms: 1.8439999999999999,
            schedule: None,
        };
        let json = serde_json::to_string(&running).unwrap();
        assert!(json.ends_with(r#""queued_ms":1.844}}"#), "{json}");
    }

    #[test]
    fn a_scheduled_jobs_events_carry_its_schedule_and_tick() {
        let tick = Tick {
            schedule: "nightly".into(),
            tick: Timestamp::from_micros(1_000_000),
        };
        let e = Event::Succeeded {
            job: JobId(4),
            task: "cpu",
            at: Timestamp::from_micros(2_000_000),
            attempt: 1,
            duration_ms: 1.0,
            schedule: Some(&tick),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "succeeded");
        assert_eq!(v["data"]["schedule"], "nightly");
        assert_eq!(v["data"]["tick"], "1970-01-01T00:00:01.000Z");
        assert_eq!(e.tick(), Some(&tick));
        let jobs = [JobId(4), JobId(5)];
        let fired = Event::Fired {
            schedule: "nightly",
            tick: tick.tick,
            at: tick.tick,
            jobs: &jobs,
        };
        let v = serde_json::to_value(&fired).unwrap();
        assert_eq!(v["type"], "fired");
        assert_eq!(v["data"]["jobs"], serde_json::json!([4, 5]));
        assert_eq!(fired.job(), None);
        let missed = Event::Missed {
            schedule: "nightly",
            count: 3,
            at: tick.tick,
        };
        assert_eq!(serde_json::to_value(&missed).unwrap()["data"]["count"], 3);
    }
}
