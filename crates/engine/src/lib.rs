//! runyard's engine: the loop that claims jobs and runs them.
//!
//! An [`Engine`] holds a registry and an [`EngineConfig`] (made by
//! [`EngineConfig::builder`], checked when built); [`Engine::start`] starts
//! a [`Run`] on a queue: a dispatcher thread that claims jobs, routes each
//! attempt to the executor that runs it, applies the retry policy to every
//! attempt that did not succeed, records outcomes in the queue and emits
//! [`Event`](runyard_core::Event)s to [`EventSink`]s. [`Run::wait`] gives
//! the finished run's [`Report`] ([`Run::join`] a [`ReportReader`] for
//! large runs). [`Engine::worker`] starts a long-lived [`Worker`] on a
//! shared queue. Every wait has an async form that blocks no thread of the
//! caller's runtime ([`Run::submit_async`], [`Run::finish`],
//! [`Worker::run`]). A [`Workflow`] is jobs after other jobs, built by
//! step and submitted checked in one batch ([`Run::submit_workflow`],
//! [`Engine::enqueue_workflow`]).
#![forbid(unsafe_code)]

mod config;
mod dispatcher;
mod engine;
mod error;
mod events;
mod firing;
mod inbox;
mod lane;
mod offload;
mod report;
mod run;
mod shared;
mod slab;
mod trace;
mod worker;
mod workflow;

pub use config::{
    ConfigError, EngineConfig, EngineConfigBuilder, TaskLimits, DEFAULT_ASYNC_LIMIT,
    DEFAULT_BLOCKING_THREADS,
};
pub use engine::{Engine, Progress};
pub use error::{RunError, StartError, SubmitError, WorkflowError};
pub use events::{EventSink, JsonLines, Meter};
pub use lane::ModeRefused;
pub use report::{write_report_json, Report, ReportError, ReportReader};
pub use run::Run;
pub use worker::Worker;
pub use workflow::{Step, Workflow, WorkflowIds};
