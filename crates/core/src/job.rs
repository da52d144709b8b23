//! Jobs: one instance of a task, with its parameters and options.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::defaults::TaskDefaults;
use crate::duration::serde_duration;
use crate::flow::{FlowKey, JobLimits, OnConflict, Rate, Unique, KEY_MAX};
use crate::params::JobParams;
use crate::retry::{Backoff, RetryPolicy};
use crate::time::Timestamp;

/// A job's id, unique within its queue.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where attempts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each task on its natural home: `cpu` tasks on the thread pool,
    /// `blocking` tasks on the elastic blocking pool, `async` tasks on tokio,
    /// and tasks or jobs that ask for isolation in child processes.
    #[default]
    Auto,
    /// Every attempt on one thread pool of `-j` threads.
    Thread,
    /// Every attempt in a pool of child processes.
    Process,
    /// Async tasks on tokio; sync tasks on tokio's blocking pool.
    Async,
}

impl Mode {
    /// Every mode, in the order the docs list them.
    pub const ALL: [Mode; 4] = [Mode::Auto, Mode::Thread, Mode::Process, Mode::Async];

    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Thread => "thread",
            Mode::Process => "process",
            Mode::Async => "async",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of `auto`, `thread`, `process`, `async`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown mode `{0}` (expected auto, thread, process or async)")]
pub struct ModeError(String);

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Mode, ModeError> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ModeError(s.to_string()))
    }
}

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to be claimed.
    Queued,
    /// Waiting for its run-at time (a retry's backoff, or a delayed job).
    Scheduled,
    /// Waiting for the jobs it is after (see [`RunIf`](crate::RunIf)).
    Blocked,
    /// An attempt is running.
    Running,
    /// Terminal: an attempt succeeded.
    Succeeded,
    /// Terminal: out of attempts, or a permanent error.
    Dead,
    /// Terminal: cancelled before it could succeed.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Scheduled,
        JobState::Blocked,
        JobState::Running,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// Whether the job is finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Scheduled => "scheduled",
            JobState::Blocked => "blocked",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<JobState, String> {
        JobState::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

/// A job's options. Every field is optional: what a job leaves out comes
/// from the run's defaults, then from the task's own defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// Attempts in all, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// The longest one attempt may run.
    #[serde(
        default,
        with = "serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Higher runs first; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<Timestamp>,
    /// A job whose key is already queued or done is not enqueued again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Where its attempts run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Run its attempts in a child process even in `auto` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolate: Option<bool>,
    /// While a job with this key is queued, scheduled or blocked, another
    /// is not added (see [`Unique`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Also while a job with the key succeeded at most this long ago.
    #[serde(
        default,
        with = "serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub unique_for: Option<Duration>,
    /// What a submit does to the waiting job with its unique key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnConflict>,
    /// Its concurrency key (`NAME` or `NAME:VALUE`, see [`FlowKey`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<FlowKey>,
    /// The most attempts at once of jobs with its concurrency key's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Its rate key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_key: Option<FlowKey>,
    /// The most starts per window of jobs with its rate key's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// An invalid job option: which one, what was wrong, what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid option `{option}`: {reason}")]
pub struct OptionError {
    /// The option's name.
    pub option: &'static str,
    /// What was wrong and what would be valid.
    pub reason: String,
}

impl JobOptions {
    /// Checks each option's bounds.
    pub fn validate(&self) -> Result<(), OptionError> {
        if let Some(0) = self.max_attempts {
            return Err(OptionError {
                option: "max_attempts",
                reason: "must be >= 1, got 0".into(),
            });
        }
        if let Some(t) = self.timeout {
            if t.is_zero() {
                return Err(OptionError {
                    option: "timeout",
                    reason: "must be greater than zero".into(),
                });
            }
            crate::duration::check_duration(t).map_err(|reason| OptionError {
                option: "timeout",
                reason,
            })?;
        }
        if let Some(b) = &self.backoff {
            RetryPolicy {
                max_attempts: 1,
                backoff: *b,
            }
            .validate()
            .map_err(|e| OptionError {
                option: "backoff",
                reason: e.to_string(),
            })?;
        }
        if let Some(k) = &self.idempotency_key {
            if k.is_empty() {
                return Err(OptionError {
                    option: "idempotency_key",
                    reason: "must not be empty".into(),
                });
            }
        }
        self.validate_flow()
    }

    fn validate_flow(&self) -> Result<(), OptionError> {
        let err = |option, reason: &str| {
            Err(OptionError {
                option,
                reason: reason.to_string(),
            })
        };
        match &self.unique_key {
            Some(k) if k.is_empty() => return err("unique_key", "must not be empty"),
            Some(k) if k.len() > KEY_MAX => {
                return Err(OptionError {
                    option: "unique_key",
                    reason: format!("is at most {KEY_MAX} bytes, got {}", k.len()),
                })
            }
            Some(_) => {}
            None if self.unique_for.is_some() => {
                return err(
                    "unique_for",
                    "needs a `unique_key` to say which jobs it holds for",
                )
            }
            None if self.on_conflict.is_some() => {
                return err(
                    "on_conflict",
                    "needs a `unique_key` to say which jobs conflict",
                )
            }
            None => {}
        }
        if let Some(d) = self.unique_for {
            if d.is_zero() {
                return err(
                    "unique_for",
                    "must be greater than zero (leave it out for none)",
                );
            }
            crate::duration::check_duration(d).map_err(|reason| OptionError {
                option: "unique_for",
                reason,
            })?;
        }
        if self.concurrency == Some(0) {
            return err(
                "concurrency",
                "must be >= 1, got 0 (to stop a task, pause it: `runyard task pause TASK`)",
            );
        }
        if self.concurrency.is_some() && self.concurrency_key.is_none() {
            return err(
                "concurrency",
                "limits the jobs of a `concurrency_key`, and this job has none \
                 (a task's limit goes in `[limits.TASK]`, or `runyard limit --task TASK`)",
            );
        }
        if self.rate.is_some() && self.rate_key.is_none() {
            return err(
                "rate",
                "limits the jobs of a `rate_key`, and this job has none \
                 (a task's rate goes in `[limits.TASK]`, or `runyard limit --task TASK`)",
            );
        }
        Ok(())
    }

    /// Its unique key, with `unique_for` and `on_conflict`, if it has one.
    pub fn unique(&self) -> Option<Unique> {
        unique_of(self.unique_key.clone(), self.unique_for, self.on_conflict)
    }

    /// The job these options make of a task with the defaults `task` (its
    /// own, with any limits a run sets for it in place) in an engine whose
    /// mode is `mode`: each option the job gives, else the task's default,
    /// else runyard's (priority 0). The one place every option lands: an
    /// option added to `JobOptions` does not compile until it is placed
    /// here. Checks nothing ([`JobOptions::validate`] does).
    pub fn over(self, task: &TaskDefaults, mode: Mode) -> Applied {
        let JobOptions {
            max_attempts,
            backoff,
            timeout,
            priority,
            run_at,
            idempotency_key,
            mode: asked,
            isolate,
            unique_key,
            unique_for,
            on_conflict,
            concurrency_key,
            concurrency,
            rate_key,
            rate,
        } = self;
        Applied {
            settings: JobSettings {
                max_attempts: max_attempts.unwrap_or(task.policy.max_attempts),
                backoff: backoff.unwrap_or(task.policy.backoff),
                timeout: timeout.or(task.timeout),
                priority: priority.unwrap_or(0),
                mode: asked.unwrap_or(mode),
                isolate: isolate.unwrap_or(task.isolate),
            },
            limits: JobLimits {
                task_concurrency: task.queue_concurrency,
                task_rate: task.rate,
                concurrency_key: concurrency_key.map(|k| (k, concurrency)),
                rate_key: rate_key.map(|k| (k, rate)),
            },
            unique: unique_of(unique_key, unique_for, on_conflict),
            run_at,
            idempotency_key,
        }
    }

    /// Each option of `self`, or else of `fallback`.
    pub fn or(&self, fallback: &JobOptions) -> JobOptions {
        JobOptions {
            max_attempts: self.max_attempts.or(fallback.max_attempts),
            backoff: self.backoff.or(fallback.backoff),
            timeout: self.timeout.or(fallback.timeout),
            priority: self.priority.or(fallback.priority),
            run_at: self.run_at.or(fallback.run_at),
            idempotency_key: self
                .idempotency_key
                .clone()
                .or_else(|| fallback.idempotency_key.clone()),
            mode: self.mode.or(fallback.mode),
            isolate: self.isolate.or(fallback.isolate),
            unique_key: self
                .unique_key
                .clone()
                .or_else(|| fallback.unique_key.clone()),
            unique_for: self.unique_for.or(fallback.unique_for),
            on_conflict: self.on_conflict.or(fallback.on_conflict),
            concurrency_key: self
                .concurrency_key
                .clone()
                .or_else(|| fallback.concurrency_key.clone()),
            concurrency: self.concurrency.or(fallback.concurrency),
            rate_key: self.rate_key.clone().or_else(|| fallback.rate_key.clone()),
            rate: self.rate.or(fallback.rate),
        }
    }
}

fn unique_of(
    key: Option<String>,
    within: Option<Duration>,
    on_conflict: Option<OnConflict>,
) -> Option<Unique> {
    key.map(|key| Unique {
        key,
        within,
        on_conflict: on_conflict.unwrap_or_default(),
    })
}

/// A job as its options and its task's defaults make it
/// ([`JobOptions::over`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Its settings.
    pub settings: JobSettings,
    /// The limits it carries to its queue.
    pub limits: JobLimits,
    /// Its unique key, if it has one.
    pub unique: Option<Unique>,
    /// Not before this time.
    pub run_at: Option<Timestamp>,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
}

/// A job to submit: a task name, parameters and options.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The task's registered name.
    pub task: String,
    /// Its parameters.
    pub params: JobParams,
    /// Its options.
    pub options: JobOptions,
}

impl JobSpec {
    /// A job of `task` with no parameters and default options.
    pub fn new(task: impl Into<String>) -> JobSpec {
        JobSpec {
            task: task.into(),
            params: JobParams::empty(),
            options: JobOptions::default(),
        }
    }

    /// A job of the task named `task` with these typed parameters: what
    /// [`Task::job`](crate::Task::job), [`AsyncTask::job`](crate::AsyncTask::job)
    /// and the `job` function `#[runyard::task]` gives each task build on.
    ///
    /// # Panics
    ///
    /// If the parameters do not serialize to a JSON object (or to `null`).
    /// A `#[derive(Params)]` struct and `()` always do; a hand-written
    /// `Serialize` or a `serde_json::Value` that is not an object does not.
    pub(crate) fn typed(task: &'static str, params: &impl Serialize) -> JobSpec {
        match JobSpec::new(task).params(params) {
            Ok(spec) => spec,
            Err(e) => panic!("the parameters of a `{task}` job are not a JSON object: {e}"),
        }
    }

    /// Sets the parameters from any serializable value that forms a JSON
    /// object: the string form, for jobs read from files. A job built in
    /// Rust is better built from its task's type (`resize::job(Resize { .. })`,
    /// [`Task::job`](crate::Task::job)): then neither the task's name nor
    /// its parameters can be misspelled.
    pub fn params(
        mut self,
        params: &impl Serialize,
    ) -> Result<JobSpec, crate::error::ParamProblem> {
        let v = serde_json::to_value(params)
            .map_err(|e| crate::error::ParamProblem::Decode(e.to_string()))?;
        self.params = JobParams::from_value(v)?;
        Ok(self)
    }

    /// Sets the parameters.
    pub fn with_params(mut self, params: JobParams) -> JobSpec {
        self.params = params;
        self
    }

    /// Sets the options.
    pub fn with_options(mut self, options: JobOptions) -> JobSpec {
        self.options = options;
        self
    }

    /// Sets `max_attempts`.
    pub fn max_attempts(mut self, n: u32) -> JobSpec {
        self.options.max_attempts = Some(n);
        self
    }

    /// Sets the backoff.
    pub fn backoff(mut self, b: Backoff) -> JobSpec {
        self.options.backoff = Some(b);
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> JobSpec {
        self.options.timeout = Some(d);
        self
    }

    /// Sets the priority (higher runs first).
    pub fn priority(mut self, p: i32) -> JobSpec {
        self.options.priority = Some(p);
        self
    }

    /// Sets the earliest start.
    pub fn run_at(mut self, t: Timestamp) -> JobSpec {
        self.options.run_at = Some(t);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, k: impl Into<String>) -> JobSpec {
        self.options.idempotency_key = Some(k.into());
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, m: Mode) -> JobSpec {
        self.options.mode = Some(m);
        self
    }

    /// Asks for process isolation.
    pub fn isolate(mut self, yes: bool) -> JobSpec {
        self.options.isolate = Some(yes);
        self
    }

    /// Sets the unique key (see [`Unique`]).
    pub fn unique_key(mut self, k: impl Into<String>) -> JobSpec {
        self.options.unique_key = Some(k.into());
        self
    }

    /// Keeps the unique key held this long after a job with it succeeded.
    pub fn unique_for(mut self, d: Duration) -> JobSpec {
        self.options.unique_for = Some(d);
        self
    }

    /// Sets what a submit does to the waiting job with the unique key.
    pub fn on_conflict(mut self, c: OnConflict) -> JobSpec {
        self.options.on_conflict = Some(c);
        self
    }

    /// Sets the concurrency key, and the limit the job gives each of its
    /// values (`None`: only a stored limit holds it).
    pub fn concurrency_key(mut self, key: FlowKey, limit: Option<u32>) -> JobSpec {
        self.options.concurrency_key = Some(key);
        self.options.concurrency = limit;
        self
    }

    /// Sets the rate key, and the rate the job gives it.
    pub fn rate_key(mut self, key: FlowKey, rate: Option<Rate>) -> JobSpec {
        self.options.rate_key = Some(key);
        self.options.rate = rate;
        self
    }
}

/// A job's options once every default has been applied: what a queue stores
/// and what workers on any machine act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    /// Attempts in all.
    pub max_attempts: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// The longest one attempt may run.
    #[serde(
        with = "serde_duration::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// The mode asked for.
    #[serde(default)]
    pub mode: Mode,
    /// Whether the job asked for process isolation.
    #[serde(default)]
    pub isolate: bool,
}

impl JobSettings {
    /// The retry policy these settings describe.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option lands in the job, and each one left out takes the
    /// task's default. (The literals name every field: an option added
    /// without a place in `over` fails here too.)
    #[test]
    fn options_over_a_tasks_defaults_land_each_in_its_place() {
        let task = TaskDefaults::new()
            .policy(RetryPolicy {
                max_attempts: 7,
                backoff: Backoff::Fixed(Duration::from_secs(7)),
            })
            .timeout(Duration::from_secs(70))
            .isolate(true)
            .queue_concurrency(4)
            .rate("9/m".parse().unwrap());
        let tenant: FlowKey = "tenant:7".parse().unwrap();
        let stripe: FlowKey = "stripe".parse().unwrap();
        let at = Timestamp::from_micros(1_000_000);
        let all = JobOptions {
            max_attempts: Some(2),
            backoff: Some(Backoff::None),
            timeout: Some(Duration::from_secs(3)),
            priority: Some(5),
            run_at: Some(at),
            idempotency_key: Some("once".into()),
            mode: Some(Mode::Process),
            isolate: Some(false),
            unique_key: Some("u".into()),
            unique_for: Some(Duration::from_secs(60)),
            on_conflict: Some(OnConflict::Replace),
            concurrency_key: Some(tenant.clone()),
            concurrency: Some(2),
            rate_key: Some(stripe.clone()),
            rate: Some("3/s".parse().unwrap()),
        };
        assert_eq!(
            all.over(&task, Mode::Thread),
            Applied {
                settings: JobSettings {
                    max_attempts: 2,
                    backoff: Backoff::None,
                    timeout: Some(Duration::from_secs(3)),
                    priority: 5,
                    mode: Mode::Process,
                    isolate: false,
                },
                limits: JobLimits {
                    task_concurrency: Some(4),
                    task_rate: Some("9/m".parse().unwrap()),
                    concurrency_key: Some((tenant, Some(2))),
                    rate_key: Some((stripe, Some("3/s".parse().unwrap()))),
                },
                unique: Some(Unique {
                    key: "u".into(),
                    within: Some(Duration::from_secs(60)),
                    on_conflict: OnConflict::Replace,
                }),
                run_at: Some(at),
                idempotency_key: Some("once".into()),
            }
        );
        assert_eq!(
            JobOptions::default().over(&task, Mode::Thread),
            Applied {
                settings: JobSettings {
                    max_attempts: 7,
                    backoff: Backoff::Fixed(Duration::from_secs(7)),
                    timeout: Some(Duration::from_secs(70)),
                    priority: 0,
                    mode: Mode::Thread,
                    isolate: true,
                },
                limits: JobLimits {
                    task_concurrency: Some(4),
                    task_rate: Some("9/m".parse().unwrap()),
                    concurrency_key: None,
                    rate_key: None,
                },
                unique: None,
                run_at: None,
                idempotency_key: None,
            }
        );
    }

    #[test]
    fn options_validate_their_bounds() {
        let e = JobOptions {
            max_attempts: Some(0),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid option `max_attempts`: must be >= 1, got 0"
        );
        let e = JobOptions {
            timeout: Some(Duration::ZERO),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.option, "timeout");
        assert!(JobOptions {
            max_attempts: Some(1),
            ..Default::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn options_fall_back_field_by_field() {
        let job = JobOptions {
            max_attempts: Some(5),
            ..Default::default()
        };
        let defaults = JobOptions {
            max_attempts: Some(2),
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let o = job.or(&defaults);
        assert_eq!(o.max_attempts, Some(5));
        assert_eq!(o.timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    fn options_read_durations_and_refuse_unknown_keys() {
        let o: JobOptions = serde_json::from_str(
            r#"{"timeout": "250ms", "backoff": "fixed:1s", "mode": "thread"}"#,
        )
        .unwrap();
        assert_eq!(o.timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.mode, Some(Mode::Thread));
        let e = serde_json::from_str::<JobOptions>(r#"{"retries": 3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `retries`"), "{e}");
        let e = serde_json::from_str::<JobOptions>(r#"{"mode": "fiber"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `fiber`"), "{e}");
    }

    #[test]
    fn typed_jobs_carry_their_parameters_as_an_object() {
        #[derive(Serialize)]
        struct P {
            width: u32,
        }
        let job = JobSpec::typed("resize", &P { width: 640 });
        assert_eq!(
            (job.task.as_str(), job.params.as_json()),
            ("resize", r#"{"width":640}"#)
        );
        assert!(JobSpec::typed("noop", &()).params.is_empty());
    }

    #[test]
    #[should_panic(expected = "the parameters of a `t` job are not a JSON object")]
    fn typed_jobs_refuse_parameters_that_are_not_an_object() {
        JobSpec::typed("t", &3);
    }

    #[test]
    fn mode_names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
        }
        assert_eq!(
            "fiber".parse::<Mode>().unwrap_err().to_string(),
            "unknown mode `fiber` (expected auto, thread, process or async)"
        );
    }
}
