//! Errors: what a task returns ([`TaskError`]) and what the engine refuses
//! before anything runs ([`ParamError`], [`UnknownTask`], [`RegistryError`]).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::duration::format_duration;

/// What the engine should do after an attempt failed with a [`TaskError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorIntent {
    /// Try again, per the job's retry policy (the default).
    Retryable,
    /// Never try again: the job is dead.
    Permanent,
    /// Try again no sooner than after this delay (e.g. an HTTP `Retry-After`),
    /// if the policy has attempts left.
    RetryAfter(Duration),
}

/// The error a task returns: a message, the intent (retry or not) and,
/// optionally, structured data that lands in the attempt record.
///
/// Any `std::error::Error` converts into a retryable `TaskError`, so `?` works
/// inside tasks. `TaskError` itself deliberately does not implement
/// `std::error::Error`, the same trade-off as `anyhow::Error`.
pub struct TaskError {
    intent: ErrorIntent,
    message: String,
    detail: Option<Box<RawValue>>,
}

impl TaskError {
    /// A retryable error.
    pub fn retryable(message: impl fmt::Display) -> TaskError {
        TaskError::with_intent(ErrorIntent::Retryable, message)
    }

    /// A permanent error: the job is not retried.
    pub fn permanent(message: impl fmt::Display) -> TaskError {
        TaskError::with_intent(ErrorIntent::Permanent, message)
    }

    /// A retryable error that asks to wait `delay` before the next attempt
    /// (honoured up to [`Backoff::retry_after_cap`](crate::Backoff::retry_after_cap)).
    pub fn retry_after(delay: Duration, message: impl fmt::Display) -> TaskError {
        TaskError::with_intent(ErrorIntent::RetryAfter(delay), message)
    }

    /// An error with the given intent.
    pub fn with_intent(intent: ErrorIntent, message: impl fmt::Display) -> TaskError {
        TaskError {
            intent,
            message: message.to_string(),
            detail: None,
        }
    }

    /// Attaches structured data (e.g. an exit status) to the attempt record.
    /// Data that cannot be serialized is dropped.
    pub fn with_detail(mut self, detail: &impl Serialize) -> TaskError {
        self.detail = serde_json::value::to_raw_value(detail).ok();
        self
    }

    /// Makes this error permanent.
    pub fn into_permanent(mut self) -> TaskError {
        self.intent = ErrorIntent::Permanent;
        self
    }

    /// The intent.
    pub fn intent(&self) -> ErrorIntent {
        self.intent
    }

    /// Whether the job must not be retried.
    pub fn is_permanent(&self) -> bool {
        self.intent == ErrorIntent::Permanent
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The structured data, if any.
    pub fn detail(&self) -> Option<&RawValue> {
        self.detail.as_deref()
    }

    /// Splits into its parts.
    pub fn into_parts(self) -> (ErrorIntent, String, Option<Box<RawValue>>) {
        (self.intent, self.message, self.detail)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match self.intent {
            ErrorIntent::Retryable => Ok(()),
            ErrorIntent::Permanent => f.write_str(" (permanent)"),
            ErrorIntent::RetryAfter(d) => write!(f, " (retry after {})", format_duration(d)),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("intent", &self.intent)
            .field("message", &self.message)
            .field("detail", &self.detail)
            .finish()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    /// A retryable error whose message is `e` and its sources, joined by `: `.
    fn from(e: E) -> TaskError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        TaskError::retryable(message)
    }
}

/// Parameters that a task refused, named with the task, the field, the
/// constraint and the value given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid parameters for task `{task}`: {problem}")]
pub struct ParamError {
    /// The task.
    pub task: String,
    /// What was wrong.
    pub problem: ParamProblem,
}

/// What was wrong with a job's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamProblem {
    /// A field broke a declared constraint.
    #[error("`{field}` must be {constraint}, got {value}")]
    Constraint {
        /// The field (a dotted path for nested fields).
        field: String,
        /// The constraint, e.g. `>= 1`.
        constraint: String,
        /// The value given, as JSON.
        value: String,
    },
    /// The parameters could not be read as the task's parameter type
    /// (a wrong type, an unknown field, a missing field).
    #[error("{0}")]
    Decode(String),
    /// The parameters were not a JSON object.
    #[error("parameters must be a table of name = value, got {0}")]
    NotAnObject(String),
}

/// A task name that no registered task has.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct UnknownTask {
    /// The name given.
    pub name: String,
    /// The closest registered names, best first.
    pub suggestions: Vec<String>,
}

impl fmt::Display for UnknownTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown task `{}`", self.name)?;
        match self.suggestions.as_slice() {
            [] => Ok(()),
            [one] => write!(f, "; did you mean `{one}`?"),
            many => {
                f.write_str("; did you mean ")?;
                for (i, s) in many.iter().enumerate() {
                    match i {
                        0 => write!(f, "`{s}`")?,
                        i if i + 1 == many.len() => write!(f, " or `{s}`")?,
                        _ => write!(f, ", `{s}`")?,
                    }
                }
                f.write_str("?")
            }
        }
    }
}

/// A registry that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// Two tasks have the same name.
    #[error("two tasks are named `{name}`: {first} and {second}; task names must be unique")]
    Duplicate {
        /// The name.
        name: String,
        /// Where the first was defined.
        first: String,
        /// Where the second was defined.
        second: String,
    },
    /// A task name that is empty, longer than
    /// [`TASK_NAME_MAX`](crate::TASK_NAME_MAX) bytes, or has characters
    /// other than letters, digits, `_`, `-`, `.` and `/`.
    #[error("invalid task name `{name}` ({origin}): {problem}")]
    InvalidName {
        /// The name (its first 64 characters).
        name: String,
        /// Where it was defined.
        origin: String,
        /// What is wrong with it.
        problem: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_to_retryable_with_their_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e: TaskError = io.into();
        assert_eq!(e.intent(), ErrorIntent::Retryable);
        assert_eq!(e.message(), "no such file");
    }

    #[test]
    fn intent_shows_in_display() {
        assert_eq!(TaskError::permanent("bad").to_string(), "bad (permanent)");
        assert_eq!(
            TaskError::retry_after(Duration::from_secs(2), "busy").to_string(),
            "busy (retry after 2s)"
        );
        let d = TaskError::retryable("x").with_detail(&serde_json::json!({"exit_code": 3}));
        assert_eq!(d.detail().unwrap().get(), r#"{"exit_code":3}"#);
    }

    #[test]
    fn unknown_task_lists_suggestions() {
        let one = UnknownTask {
            name: "cpuu".into(),
            suggestions: vec!["cpu".into()],
        };
        assert_eq!(one.to_string(), "unknown task `cpuu`; did you mean `cpu`?");
        let three = UnknownTask {
            name: "x".into(),
            suggestions: vec!["a".into(), "b".into(), "c".into()],
        };
        assert_eq!(
            three.to_string(),
            "unknown task `x`; did you mean `a`, `b` or `c`?"
        );
        let none = UnknownTask {
            name: "zzz".into(),
            suggestions: vec![],
        };
        assert_eq!(none.to_string(), "unknown task `zzz`");
    }

    #[test]
    fn param_errors_name_task_field_constraint_and_value() {
        let e = ParamError {
            task: "cpu".into(),
            problem: ParamProblem::Constraint {
                field: "n".into(),
                constraint: ">= 1".into(),
                value: "0".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "invalid parameters for task `cpu`: `n` must be >= 1, got 0"
        );
    }
}
