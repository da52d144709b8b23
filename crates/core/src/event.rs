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
//!
//! `at` is an RFC 3339 timestamp; `attempt` counts from 1; `outcome` is one
//! of `failed`, `panicked`, `crashed`, `timed_out`, `cancelled`; the `*_ms`
//! fields are milliseconds to the microsecond (`0.338`).

use serde::{Serialize, Serializer};

use crate::job::JobId;
use crate::outcome::OutcomeKind;
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
    /// The job this event is about.
    pub fn job(&self) -> JobId {
        match self {
            Event::Queued { job, .. }
            | Event::Blocked { job, .. }
            | Event::Unblocked { job, .. }
            | Event::Running { job, .. }
            | Event::Scheduled { job, .. }
            | Event::Succeeded { job, .. }
            | Event::Dead { job, .. }
            | Event::Cancelled { job, .. } => *job,
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
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "dead");
        assert_eq!(v["data"]["job"], 7);
        assert_eq!(v["data"]["outcome"], "failed");
        assert_eq!(v["data"]["error"], "boom");
        assert_eq!(e.job(), JobId(7));
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
        };
        let json = serde_json::to_string(&running).unwrap();
        assert!(json.ends_with(r#""queued_ms":1.844}}"#), "{json}");
    }
}
