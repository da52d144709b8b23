//! Flow control: what keeps a queue from doing too much, or the same thing
//! twice. Unique jobs ([`Unique`]), concurrency and rate limits per task
//! and per key ([`FlowKey`], [`Rate`], [`JobLimits`]), and what holds a
//! job back ([`Hold`]).
//!
//! # Keys
//!
//! A key is `NAME` or `NAME:VALUE` (`tenant:42`, `stripe`). A key's name is
//! shared by every task whose jobs carry it: two tasks with jobs of
//! `concurrency_key = "tenant:42"` share that key's slots. A limit stored
//! for the name alone (`runyard limit --key tenant`) holds for each of its
//! values separately; one stored for a name and value
//! (`--key tenant --value 42`) holds for that value, and beats the first.
//!
//! # Which limit holds
//!
//! Each job carries the limits it was submitted with: its task's defaults
//! (or a run's `[limits.TASK]`) and its own key's default (`concurrency`,
//! `rate` beside the key). A limit stored in the queue beats what a job
//! carries: for a shared queue the stored limits are the one truth. A job
//! is claimed only when every limit that holds it has room.
//!
//! # Rates
//!
//! A rate is `COUNT/s`, `COUNT/m` or `COUNT/h`: at most COUNT attempts
//! start in any window of that length (a sliding window, kept as the times
//! of the last COUNT starts). A burst of up to COUNT starts is admitted at
//! once, and never more in any window.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest a key (name and value together) may be, in bytes.
pub const KEY_MAX: usize = 200;

/// A flow key: a name, and a value of it (empty for a key without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    name: String,
    value: String,
}

impl FlowKey {
    /// A key of `name` with `value` (empty for none), checked.
    pub fn new(name: &str, value: &str) -> Result<FlowKey, FlowError> {
        check_key_name(name)?;
        if name.len() + value.len() + 1 > KEY_MAX {
            return Err(FlowError(format!(
                "a key is at most {KEY_MAX} bytes, name and value together"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(FlowError(
                "a key's value must not hold control characters".into(),
            ));
        }
        Ok(FlowKey {
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    /// The key's name (before the `:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's value (after the `:`; empty when it has none).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Checks a key's name: letters, digits, `_`, `-` and `.`, 1 to 64 of them.
pub fn check_key_name(name: &str) -> Result<(), FlowError> {
    if name.is_empty() {
        return Err(FlowError(
            "a key's name must not be empty (a key is NAME or NAME:VALUE, e.g. `tenant:42`)".into(),
        ));
    }
    if name.len() > 64 {
        return Err(FlowError(format!(
            "a key's name is at most 64 bytes, `{name}` has {}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(FlowError(format!(
            "a key's name holds letters, digits, `_`, `-` and `.`; `{name}` has {c:?} \
             (a key is NAME or NAME:VALUE, e.g. `tenant:42`)"
        )));
    }
    Ok(())
}

impl FromStr for FlowKey {
    type Err = FlowError;

    /// `NAME` or `NAME:VALUE`: the value is everything after the first `:`.
    fn from_str(s: &str) -> Result<FlowKey, FlowError> {
        match s.split_once(':') {
            Some((n, v)) => {
                if v.is_empty() {
                    return Err(FlowError(format!(
                        "`{s}` has an empty value after `:` (write `{n}` for a key without one)"
                    )));
                }
                FlowKey::new(n, v)
            }
            None => FlowKey::new(s, ""),
        }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}:{}", self.name, self.value)
        }
    }
}

impl Serialize for FlowKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FlowKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FlowKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A rate: at most `count` starts in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rate {
    /// Starts per window, at least 1.
    pub count: u32,
    /// The window: a second, a minute or an hour.
    pub per: Duration,
}

impl Rate {
    /// The most starts a rate may allow per window.
    pub const MAX_COUNT: u32 = 1_000_000;

    /// `count` per `per`, checked.
    pub fn new(count: u32, per: Duration) -> Result<Rate, FlowError> {
        if count == 0 {
            return Err(FlowError(
                "a rate's count must be at least 1 (e.g. `1/s`; to stop a task, pause it)".into(),
            ));
        }
        if count > Rate::MAX_COUNT {
            return Err(FlowError(format!(
                "a rate's count is at most {}, got {count}",
                Rate::MAX_COUNT
            )));
        }
        if ![1, 60, 3600].contains(&per.as_secs()) || per.subsec_nanos() != 0 {
            return Err(FlowError(
                "a rate's window is a second, a minute or an hour (`/s`, `/m`, `/h`)".into(),
            ));
        }
        Ok(Rate { count, per })
    }

    fn unit(&self) -> &'static str {
        match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        }
    }
}

impl FromStr for Rate {
    type Err = FlowError;

    /// `COUNT/s`, `COUNT/m` or `COUNT/h`.
    fn from_str(s: &str) -> Result<Rate, FlowError> {
        let valid = "a rate is COUNT/s, COUNT/m or COUNT/h, e.g. `100/s`";
        let Some((n, unit)) = s.trim().split_once('/') else {
            return Err(FlowError(format!("`{s}` is not a rate: {valid}")));
        };
        let count: u32 = n.trim().parse().map_err(|_| {
            FlowError(format!(
                "`{s}`: the count `{}` is not a whole number: {valid}",
                n.trim()
            ))
        })?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            u => {
                return Err(FlowError(format!(
                    "`{s}`: the window `{u}` is not s, m or h: {valid}"
                )))
            }
        };
        Rate::new(count, per).map_err(|e| FlowError(format!("`{s}`: {}", e.0)))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit())
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a submit with a unique key does when a job with that key waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Keep the waiting job as it is; the submit creates nothing.
    #[default]
    Skip,
    /// The waiting job takes the new parameters and run-at (a debounce).
    Replace,
}

impl OnConflict {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Skip => "skip",
            OnConflict::Replace => "replace",
        }
    }
}

impl fmt::Display for OnConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnConflict {
    type Err = FlowError;

    fn from_str(s: &str) -> Result<OnConflict, FlowError> {
        match s {
            "skip" => Ok(OnConflict::Skip),
            "replace" => Ok(OnConflict::Replace),
            _ => Err(FlowError(format!(
                "unknown on_conflict `{s}` (expected skip or replace)"
            ))),
        }
    }
}

/// A job's unique key: while a job with the same key is queued, scheduled
/// or blocked (and, with `within`, one that succeeded that long ago or
/// less), a submit of another creates none. A running job does not count:
/// one job may wait behind it.
///
/// Beside it, the idempotency key is the "forever" case: a job whose
/// idempotency key was ever used, in any state, is not added again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unique {
    /// The key (any non-empty string of at most [`KEY_MAX`] bytes).
    pub key: String,
    /// Also a job with the key that succeeded at most this long ago.
    pub within: Option<Duration>,
    /// What the submit does to the waiting job.
    pub on_conflict: OnConflict,
}

/// The limits a job carries (see the module's opening): its task's, and
/// its keys' with the defaults it gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JobLimits {
    /// The most attempts of its task at once across the queue (its task's
    /// default; a limit stored for the task beats it).
    pub task_concurrency: Option<u32>,
    /// Its task's rate.
    pub task_rate: Option<Rate>,
    /// Its concurrency key, with the limit it gives each value of the key
    /// (a limit stored for the key beats it; with none anywhere the key
    /// only places the job for fairness).
    pub concurrency_key: Option<(FlowKey, Option<u32>)>,
    /// Its rate key, with the rate it gives it.
    pub rate_key: Option<(FlowKey, Option<Rate>)>,
}

impl JobLimits {
    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        *self == JobLimits::default()
    }

    /// The key that places the job among others for fairness: its
    /// concurrency key, or else its rate key.
    pub fn fairness_key(&self) -> Option<&FlowKey> {
        self.concurrency_key
            .as_ref()
            .map(|(k, _)| k)
            .or(self.rate_key.as_ref().map(|(k, _)| k))
    }
}

/// What a stored limit is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitTarget {
    /// The jobs of one task.
    Task(String),
    /// Each value of a key's name (`value: None`), or one value of it.
    Key {
        /// The key's name.
        name: String,
        /// One value, or every value when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
}

impl fmt::Display for LimitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitTarget::Task(t) => write!(f, "task `{t}`"),
            LimitTarget::Key { name, value: None } => write!(f, "key `{name}` (each value)"),
            LimitTarget::Key {
                name,
                value: Some(v),
            } => write!(f, "key `{name}:{v}`"),
        }
    }
}

/// A limit stored in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLimit {
    /// What it limits.
    pub target: LimitTarget,
    /// The most attempts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The most starts per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// Why a job that could run does not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Hold {
    /// Its task is paused (or every task is).
    Paused {
        /// The task.
        task: String,
    },
    /// A concurrency limit is full.
    Concurrency {
        /// Whose: `task` or the key.
        target: LimitTarget,
        /// The limit.
        limit: u32,
    },
    /// A rate limit has used its window.
    Rate {
        /// Whose.
        target: LimitTarget,
        /// The rate.
        rate: Rate,
    },
    /// It waits for the jobs it is after.
    Dependencies,
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Paused { task } => write!(f, "task `{task}` is paused"),
            Hold::Concurrency { target, limit } => {
                write!(f, "concurrency limit of {target} ({limit} at once) is full")
            }
            Hold::Rate { target, rate } => write!(f, "rate limit of {target} ({rate}) is used"),
            Hold::Dependencies => f.write_str("blocked on the jobs it is after"),
        }
    }
}

/// An invalid key, rate or limit: what was wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FlowError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        for (s, count, secs, shown) in [
            ("100/s", 100, 1, "100/s"),
            ("5/m", 5, 60, "5/m"),
            (" 7 / h ", 7, 3600, "7/h"),
            ("3/min", 3, 60, "3/m"),
        ] {
            let r: Rate = s.parse().unwrap();
            assert_eq!((r.count, r.per.as_secs()), (count, secs), "{s}");
            assert_eq!(r.to_string(), shown);
            assert_eq!(r.to_string().parse::<Rate>().unwrap(), r);
        }
    }

    #[test]
    fn bad_rates_say_what_is_valid() {
        for (s, says) in [
            ("0/s", "at least 1"),
            ("ten/s", "not a whole number"),
            ("10/d", "not s, m or h"),
            ("10", "not a rate"),
            ("-1/s", "not a whole number"),
            ("2000000/s", "at most"),
        ] {
            let e = s.parse::<Rate>().unwrap_err().to_string();
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn keys_split_at_the_first_colon() {
        let k: FlowKey = "tenant:42:eu".parse().unwrap();
        assert_eq!((k.name(), k.value()), ("tenant", "42:eu"));
        assert_eq!(k.to_string(), "tenant:42:eu");
        let k: FlowKey = "stripe".parse().unwrap();
        assert_eq!((k.name(), k.value()), ("stripe", ""));
        for bad in ["", ":x", "a b:1", "t:", &"n".repeat(65)] {
            assert!(bad.parse::<FlowKey>().is_err(), "{bad:?}");
        }
        assert!(FlowKey::new("t", &"v".repeat(KEY_MAX)).is_err());
    }

    #[test]
    fn the_fairness_key_is_the_concurrency_key_first() {
        let c: FlowKey = "tenant:1".parse().unwrap();
        let r: FlowKey = "api".parse().unwrap();
        let mut l = JobLimits {
            rate_key: Some((r.clone(), None)),
            ..JobLimits::default()
        };
        assert_eq!(l.fairness_key(), Some(&r));
        l.concurrency_key = Some((c.clone(), Some(2)));
        assert_eq!(l.fairness_key(), Some(&c));
        assert!(!l.is_empty());
        assert!(JobLimits::default().is_empty());
    }
}
