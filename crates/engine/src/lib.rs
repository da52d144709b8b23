//! runyard's worker loop.
//!
//! An [`Engine`] holds a registry and a configuration; [`Engine::start`]
//! starts a [`Run`] on a queue: a dispatcher thread that claims jobs, routes
//! each attempt to the executor for its [`Lane`], applies the retry policy to
//! every attempt that did not succeed, records outcomes in the queue and
//! emits [`Event`](runyard_core::Event)s to [`EventSink`]s. [`Report`] reads
//! the finished run back from the queue.
#![forbid(unsafe_code)]

mod config;
mod dispatcher;
mod engine;
mod events;
mod inbox;
mod lane;
mod report;
mod shared;
mod slab;

pub use config::{ConfigError, EngineConfig, DEFAULT_ASYNC_LIMIT, DEFAULT_BLOCKING_THREADS};
pub use engine::{Engine, Progress, Run, RunOutcome, SubmitError};
pub use events::{EventSink, JsonLines};
pub use lane::{lane_for, Lane, ModeRefused};
pub use report::{write_report_json, Report, ReportError};
