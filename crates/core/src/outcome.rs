//! How attempts end, and the record kept of each one.

use std::fmt;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::{ErrorIntent, TaskError};
use crate::time::Timestamp;

/// How an attempt ended, as named in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The task returned its output.
    Succeeded,
    /// The task returned an error.
    Failed,
    /// The task panicked.
    Panicked,
    /// The child process running it died (a signal or an exit code).
    Crashed,
    /// It ran past its timeout and was stopped (or, in thread mode, abandoned).
    TimedOut,
    /// It was stopped by a shutdown or a cancel request.
    Cancelled,
}

impl OutcomeKind {
    /// Every outcome.
    pub const ALL: [OutcomeKind; 6] = [
        OutcomeKind::Succeeded,
        OutcomeKind::Failed,
        OutcomeKind::Panicked,
        OutcomeKind::Crashed,
        OutcomeKind::TimedOut,
        OutcomeKind::Cancelled,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Panicked => "panicked",
            OutcomeKind::Crashed => "crashed",
            OutcomeKind::TimedOut => "timed_out",
            OutcomeKind::Cancelled => "cancelled",
        }
    }

    /// From [`OutcomeKind::as_str`]'s names.
    pub fn from_name(s: &str) -> Option<OutcomeKind> {
        OutcomeKind::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task's output as JSON; `null` is stored without allocating.
#[derive(Clone, Default)]
pub struct Output(Option<Box<RawValue>>);

impl Output {
    /// No output (`null`).
    pub const fn none() -> Output {
        Output(None)
    }

    /// Serializes a task's output.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Output, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        Ok(if raw.get() == "null" {
            Output(None)
        } else {
            Output(Some(raw))
        })
    }

    /// From JSON text (checked).
    pub fn from_json(text: &str) -> Result<Output, serde_json::Error> {
        if text == "null" {
            return Ok(Output(None));
        }
        RawValue::from_string(text.to_string()).map(|r| Output(Some(r)))
    }

    /// The JSON text (`null` when none).
    pub fn as_json(&self) -> &str {
        self.0.as_deref().map(RawValue::get).unwrap_or("null")
    }

    /// Whether the output is `null`.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl PartialEq for Output {
    fn eq(&self, other: &Output) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Output, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(if raw.get() == "null" {
            Output(None)
        } else {
            Output(Some(raw))
        })
    }
}

/// How one attempt ended, with what it produced.
#[derive(Debug)]
pub enum Outcome {
    /// It returned an output.
    Succeeded(Output),
    /// It returned an error.
    Failed(TaskError),
    /// It panicked, with this message.
    Panicked(String),
    /// Its child process died.
    Crashed {
        /// E.g. `killed by signal SIGSEGV` or `exited with code 3`.
        message: String,
        /// Structured data: the signal or exit code.
        detail: Option<Box<RawValue>>,
    },
    /// It ran past its timeout.
    TimedOut(Duration),
    /// It was stopped by a shutdown or cancel request.
    Cancelled,
}

impl Outcome {
    /// The outcome's name.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Succeeded(_) => OutcomeKind::Succeeded,
            Outcome::Failed(_) => OutcomeKind::Failed,
            Outcome::Panicked(_) => OutcomeKind::Panicked,
            Outcome::Crashed { .. } => OutcomeKind::Crashed,
            Outcome::TimedOut(_) => OutcomeKind::TimedOut,
            Outcome::Cancelled => OutcomeKind::Cancelled,
        }
    }

    /// What the retry policy should make of it. Panics, crashes and
    /// timeouts are retryable: the next attempt may well succeed. An
    /// attempt stopped by a shutdown asks to run again at once
    /// (`RetryAfter(0)`), if the policy has attempts left; one stopped by a
    /// cancel request is not retried at all, which the engine decides before
    /// it asks the policy.
    pub fn intent(&self) -> ErrorIntent {
        match self {
            Outcome::Failed(e) => e.intent(),
            Outcome::Cancelled => ErrorIntent::RetryAfter(Duration::ZERO),
            _ => ErrorIntent::Retryable,
        }
    }

    /// Splits into the output (on success) and the error record (otherwise).
    pub fn into_parts(self) -> (Output, Option<AttemptError>) {
        let err = |message: String, permanent, detail| {
            Some(AttemptError {
                message,
                permanent,
                detail,
            })
        };
        match self {
            Outcome::Succeeded(out) => (out, None),
            Outcome::Failed(e) => {
                let (intent, message, detail) = e.into_parts();
                (
                    Output::none(),
                    err(message, intent == ErrorIntent::Permanent, detail),
                )
            }
            Outcome::Panicked(m) => (Output::none(), err(m, false, None)),
            Outcome::Crashed { message, detail } => (Output::none(), err(message, false, detail)),
            Outcome::TimedOut(d) => (
                Output::none(),
                err(
                    format!("timed out after {}", crate::duration::format_duration(d)),
                    false,
                    None,
                ),
            ),
            Outcome::Cancelled => (Output::none(), err("cancelled".to_string(), false, None)),
        }
    }
}

/// The error part of an attempt record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptError {
    /// What went wrong.
    pub message: String,
    /// Whether the error was permanent (the job was not retried after it).
    #[serde(default)]
    pub permanent: bool,
    /// Structured data, e.g. an exit status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Box<RawValue>>,
}

impl PartialEq for AttemptError {
    fn eq(&self, other: &AttemptError) -> bool {
        self.message == other.message
            && self.permanent == other.permanent
            && self.detail.as_ref().map(|d| d.get()) == other.detail.as_ref().map(|d| d.get())
    }
}

/// The record of one attempt: when it started, how long it waited and ran,
/// how it ended.
///
/// In JSON: `{"attempt", "outcome", "started_at", "duration_ms", "queued_ms",
/// "error", "detail"}`; `error` is a string or null.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The attempt number, from 1.
    pub number: u32,
    /// How it ended.
    pub outcome: OutcomeKind,
    /// When it started.
    pub started_at: Timestamp,
    duration_us: u64,
    queued_us: u64,
    /// The error, unless it succeeded.
    pub error: Option<Box<AttemptError>>,
}

impl AttemptRecord {
    /// A record of attempt `number`.
    pub fn new(
        number: u32,
        outcome: OutcomeKind,
        started_at: Timestamp,
        duration: Duration,
        queued: Duration,
        error: Option<AttemptError>,
    ) -> AttemptRecord {
        AttemptRecord {
            number,
            outcome,
            started_at,
            duration_us: duration.as_micros().min(u64::MAX as u128) as u64,
            queued_us: queued.as_micros().min(u64::MAX as u128) as u64,
            error: error.map(Box::new),
        }
    }

    /// How long it ran.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }

    /// How long the job waited between becoming ready and this attempt starting.
    pub fn queued(&self) -> Duration {
        Duration::from_micros(self.queued_us)
    }

    /// The error message, if any.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_deref().map(|e| e.message.as_str())
    }
}

impl Serialize for AttemptRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let detail = self.error.as_ref().and_then(|e| e.detail.as_ref());
        let mut st = s.serialize_struct("AttemptRecord", 7)?;
        st.serialize_field("attempt", &self.number)?;
        st.serialize_field("outcome", &self.outcome)?;
        st.serialize_field("started_at", &self.started_at)?;
        st.serialize_field("duration_ms", &(self.duration_us as f64 / 1000.0))?;
        st.serialize_field("queued_ms", &(self.queued_us as f64 / 1000.0))?;
        st.serialize_field("error", &self.error_message())?;
        if let Some(d) = detail {
            st.serialize_field("detail", d)?;
        } else {
            st.skip_field("detail")?;
        }
        st.end()
    }
}

impl<'de> Deserialize<'de> for AttemptRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AttemptRecord, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            attempt: u32,
            outcome: OutcomeKind,
            started_at: Timestamp,
            duration_ms: f64,
            #[serde(default)]
            queued_ms: f64,
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            permanent: bool,
            #[serde(default)]
            detail: Option<Box<RawValue>>,
        }
        let w = Wire::deserialize(d)?;
        Ok(AttemptRecord {
            number: w.attempt,
            outcome: w.outcome,
            started_at: w.started_at,
            duration_us: (w.duration_ms * 1000.0).round().max(0.0) as u64,
            queued_us: (w.queued_ms * 1000.0).round().max(0.0) as u64,
            error: w.error.map(|message| {
                Box::new(AttemptError {
                    message,
                    permanent: w.permanent,
                    detail: w.detail,
                })
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_records_use_the_documented_names() {
        let r = AttemptRecord::new(
            2,
            OutcomeKind::TimedOut,
            Timestamp::from_micros(1_000_000),
            Duration::from_micros(1500),
            Duration::from_millis(3),
            Outcome::TimedOut(Duration::from_millis(250)).into_parts().1,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["outcome"], "timed_out");
        assert_eq!(v["started_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["queued_ms"], 3.0);
        assert_eq!(v["error"], "timed out after 250ms");
        let back: AttemptRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back.number, 2);
        assert_eq!(back.duration(), Duration::from_micros(1500));
        assert_eq!(back.error_message(), Some("timed out after 250ms"));
    }

    #[test]
    fn an_attempt_stopped_by_a_shutdown_asks_the_policy_for_a_retry_at_once() {
        use crate::retry::{Backoff, RetryDecision, RetryPolicy};
        let p = RetryPolicy::new(2, Backoff::Fixed(Duration::from_secs(5))).unwrap();
        let intent = Outcome::Cancelled.intent();
        assert_eq!(
            p.decide(1, intent, 0.5),
            RetryDecision::Retry(Duration::ZERO)
        );
        assert!(matches!(p.decide(2, intent, 0.5), RetryDecision::GiveUp(_)));
    }

    #[test]
    fn outputs_keep_their_json() {
        assert!(Output::from_serialize(&()).unwrap().is_none());
        assert_eq!(Output::from_serialize(&42u64).unwrap().as_json(), "42");
        assert_eq!(serde_json::to_string(&Output::none()).unwrap(), "null");
    }

    #[test]
    fn outcome_names_round_trip() {
        for o in OutcomeKind::ALL {
            assert_eq!(OutcomeKind::from_name(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
