//! Events: one per state transition of a job, with its timings.
//!
//! As JSON lines (`runyard run --events FILE`), each event is one object
//! `{"type": STATE, "data": {...}}` where `type` names the state the job
//! entered:
//!
//! | `type` | `data` fields |
//! |---|---|
//! | `queued` | `job`, `task`, `at`, `reason` (`submitted`, `rescued` after a lost lease, `released` at a shutdown) |
//! | `running` | `job`, `task`, `at`, `attempt`, `queued_ms` |
//! | `scheduled` | `job`, `task`, `at`, `attempt`, `outcome`, `duration_ms`, `error`, `delay_ms`, `run_at` |
//! | `succeeded` | `job`, `task`, `at`, `attempt`, `duration_ms` |
//! | `dead` | `job`, `task`, `at`, `attempt`, `outcome`, `duration_ms`, `error` |
//! | `cancelled` | `job`, `task`, `at`, `attempts` |
//!
//! `at` is an RFC 3339 timestamp; `attempt` counts from 1; `outcome` is one
//! of `failed`, `panicked`, `crashed`, `timed_out`, `cancelled`; the `*_ms`
//! fields are milliseconds to the microsecond (`0.338`).

use serde::{Serialize, Serializer};

use crate::job::JobId;
use crate::outcome::OutcomeKind;
use crate::time::Timestamp;

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
