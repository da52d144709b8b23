//! The core of runyard: tasks, the registry, parameters and their
//! validation, jobs, retry policies, attempt outcomes, events and reports.
//!
//! This crate does no I/O. Executors, queues, the worker loop and the CLI
//! build on it; most users depend on the `runyard` facade instead.
#![forbid(unsafe_code)]

mod context;
mod defaults;
mod duration;
mod error;
mod event;
mod flow;
mod job;
mod name;
mod outcome;
mod params;
mod registry;
mod report;
mod retry;
mod schedule;
mod sketch;
mod task;
mod time;
mod workflow;

pub use context::{BoxFuture, CancelGuard, CancelToken, Context};
pub use defaults::TaskDefaults;
pub use duration::{
    format_duration, human_duration, parse_duration, parse_positive_duration, serde_duration,
    DurationError, MAX_DURATION,
};
pub use error::{ErrorIntent, ParamError, ParamProblem, RegistryError, TaskError, UnknownTask};
pub use event::{Event, QueuedReason};
pub use flow::{
    check_key_name, FlowError, FlowKey, Hold, JobLimits, LimitTarget, OnConflict, Rate,
    StoredLimit, Unique, KEY_MAX,
};
pub use job::{
    Applied, JobId, JobOptions, JobSettings, JobSpec, JobState, Mode, ModeError, OptionError,
};
pub use name::{check_task_name, TaskName, TASK_NAME_MAX};
pub use outcome::{AttemptError, AttemptRecord, Outcome, OutcomeKind, Output};
pub use params::{FieldSchema, JobParams, ParamSchema, Params, Violation};
pub use registry::{Registration, Registry, RegistryBuilder, TaskIndex};
pub use report::{percentile, HeldJobs, JobKeys, JobView, Summary, SummaryBuilder, TaskSummary};
pub use retry::{
    Backoff, BackoffError, GiveUpReason, Jitter, PolicyError, RetryDecision, RetryPolicy,
    MAX_RETRY_AFTER,
};
pub use schedule::{
    check_schedule_name, plan, CatchUp, CronSpec, Overlap, Plan, Policy, ScheduleError, Spec, Tick,
    EVERY_MIN, SCHEDULE_NAME_MAX,
};
pub use sketch::{Sketch, SKETCH_RELATIVE_ERROR};
pub use task::{AsyncTask, Task, TaskDef, TaskKind};
pub use time::Timestamp;
pub use workflow::{After, Cause, Parent, Parents, RunIf, OUTPUT_CAP, PARENTS_CAP};

/// What `#[runyard::task]` and `#[derive(Params)]` expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json;
}
