//! runyard runs many instances ("jobs") of named tasks concurrently, each on
//! the execution mode that fits it, with retry policies, timeouts that stop
//! work, a record of every attempt, and queues that survive crashes.
//!
//! # Defining tasks
//!
//! ```
//! use runyard::{task, Context, Params, TaskError};
//! use serde::{Deserialize, Serialize};
//!
//! /// Parameters of `resize`, checked before any job runs.
//! #[derive(Debug, Serialize, Deserialize, Params)]
//! #[serde(deny_unknown_fields)]
//! pub struct Resize {
//!     /// Width in pixels.
//!     #[param(min = 1, max = 10_000)]
//!     width: u32,
//!     /// Output format.
//!     #[serde(default = "png")]
//!     #[param(one_of = ["png", "jpeg"])]
//!     format: String,
//! }
//!
//! fn png() -> String {
//!     "png".to_string()
//! }
//!
//! /// Resizes an image (a stand-in for real work).
//! #[task(kind = "cpu", max_attempts = 3, backoff = "exponential:200ms,cap=10s", timeout = "30s")]
//! fn resize(p: Resize, ctx: &Context) -> Result<String, TaskError> {
//!     ctx.check()?; // stop early once the attempt is cancelled (a timeout)
//!     Ok(format!("{}px {}", p.width, p.format))
//! }
//!
//! /// Tasks may be async; they run on tokio.
//! #[task(worker_concurrency = 20)]
//! async fn ping(_: (), _ctx: runyard::Context) -> Result<(), TaskError> {
//!     Ok(())
//! }
//!
//! let registry = runyard::Registry::linked().unwrap();
//! let engine = runyard::Engine::new(registry, runyard::EngineConfig::default());
//! let report = engine
//!     .run([
//!         runyard::JobSpec::new("resize").params(&serde_json::json!({"width": 640})).unwrap(),
//!         runyard::JobSpec::new("ping"),
//!     ])
//!     .unwrap();
//! assert_eq!(report.summary.succeeded, 2);
//! assert_eq!(report.jobs[0].output.as_json(), r#""640px png""#);
//! ```
//!
//! `#[task]` takes: `name` (default: the function's name), `kind` (`"cpu"`,
//! the default for a plain function, or `"blocking"`; an `async fn` is
//! `async`), `description` (default: the doc comment's first line),
//! `max_attempts`, `backoff` (`none`, `fixed:DELAY`,
//! `exponential[:BASE][,cap=DELAY][,factor=N][,jitter=full|equal|none]`),
//! `timeout`, `isolate` (run in a child process in `auto` mode) and
//! `worker_concurrency` (the most attempts of this task one engine runs at
//! once; the older `concurrency` is refused with a message naming it). Specs are checked
//! at compile time. The function takes its parameters (any type that
//! implements [`Params`]; `()` for none), optionally followed by its context
//! (`&Context` for a plain function, `Context` for an `async fn`), and
//! returns `Result<T, E>` with `T: Serialize` and `E: Into<TaskError>`.
//!
//! A task defined with `#[task]` registers itself when the binary is linked:
//! [`Registry::linked`] finds every such task in the executable (one list
//! per process, whichever crate defined them). A registry can also be built
//! by hand with [`Registry::builder`] from [`TaskDef`]s.
//!
//! # Modes
//!
//! | mode | where attempts run | timeouts | use it for |
//! |---|---|---|---|
//! | `auto` (default) | `cpu` tasks on a pool sized to the cores, `blocking` tasks on an elastic pool, `async` tasks on tokio, isolated tasks in worker processes | per executor | mixed work |
//! | `thread` | one pool of `-j` threads | the context is cancelled; a task that ignores it is abandoned and reported `timed_out` | CPU-bound Rust code |
//! | `async` | tokio; sync tasks on the blocking pool | the future is dropped | massive IO |
//! | `process` | worker processes | the process group is killed | code that may crash, hang or leak |
//!
//! Code that cannot be interrupted (a C library call, a busy loop that never
//! checks its context) is only truly stopped in `process` mode: in `thread`
//! mode its thread is abandoned, still running, while the run goes on.

// A closed standard error must not panic a worker: no `eprintln!`.
#![warn(clippy::print_stdout, clippy::print_stderr)]

extern crate self as runyard;

// What users use: defining tasks, building jobs, running them, and the
// errors of each. Everything else is in a module named for its concern.
pub use runyard_core::{
    AsyncTask, Backoff, CancelGuard, CancelToken, Context, ErrorIntent, JobId, JobOptions, JobSpec,
    JobState, Mode, ModeError, OptionError, ParamError, ParamProblem, Params, Registry,
    RegistryBuilder, RegistryError, RetryPolicy, Task, TaskDef, TaskDefaults, TaskError, TaskKind,
    Timestamp, UnknownTask,
};
pub use runyard_engine::{
    ConfigError, Engine, EngineConfig, ModeRefused, Progress, Report, ReportError, Run, RunOutcome,
    SubmitError,
};
pub use runyard_macros::{task, Params};

/// What a task definition and a simple run need, in one import:
/// `use runyard::prelude::*;`.
pub mod prelude {
    pub use crate::{
        task, AsyncTask, Context, Engine, EngineConfig, JobSpec, Mode, Params, Registry, Task,
        TaskDefaults, TaskError, TaskKind,
    };
}

/// Parameters as jobs carry them (JSON objects) and as `runyard describe`
/// shows them; [`Violation`](params::Violation) is what a `#[param(check =
/// ...)]` function returns.
pub mod params {
    pub use runyard_core::{FieldSchema, JobParams, ParamSchema, Violation};
}

/// Retry policies and their decisions ([`RetryPolicy`](crate::RetryPolicy)
/// and [`Backoff`](crate::Backoff) are also at the root).
pub mod retry {
    pub use runyard_core::{
        Backoff, BackoffError, Jitter, RetryDecision, RetryPolicy, MAX_RETRY_AFTER,
    };
}

/// Durations as runyard writes and reads them (`250ms`, `1m30s`), and the
/// serde helpers for fields of that form.
pub mod duration {
    pub use runyard_core::{
        format_duration, human_duration, parse_duration, parse_positive_duration, serde_duration,
        DurationError, MAX_DURATION,
    };
}

/// What a run reports: each job with its attempts, and the summary.
pub mod report {
    pub use runyard_core::{
        percentile, AttemptError, AttemptRecord, JobView, Outcome, OutcomeKind, Output, Summary,
        SummaryBuilder, TaskSummary,
    };
    pub use runyard_engine::{write_report_json, Report, ReportError};
}

/// Events: what happens to each job as it happens, for a sink of your own
/// or as JSON lines.
pub mod event {
    pub use runyard_core::{Event, QueuedReason};
    pub use runyard_engine::{EventSink, JsonLines};
}

/// Queues: the trait, the in-memory queue, and what they exchange.
pub mod queue {
    pub use runyard_queue::{host_name, LiveWorker, NameTaken, WorkerInfo};
    pub use runyard_queue::{
        CancelResult, Claimed, Clock, Completion, Counts, Enqueued, Fenced, HeartbeatReply, Lease,
        ListFilter, ManualClock, MemoryQueue, NewJob, Queue, QueueError, QueueErrorKind, Rescue,
        SystemClock, TaskName, Verdict, Waker,
    };
}

/// The SQLite queue: runs recorded in one file, resumed after a crash
/// (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use runyard_sqlite::{OpenMode, SqliteQueue, SCHEMA_VERSION};
}

/// The PostgreSQL queue: workers on many machines drain one queue
/// (feature `postgres`).
#[cfg(feature = "postgres")]
pub mod postgres {
    // The driver crate itself is not re-exported: runyard's version must
    // not be tied to the `postgres` crate's.
    pub use runyard_postgres::{Activity, OpenMode, PgOptions, PgQueue, SCHEMA_VERSION};
}

/// Executors, for those who build their own engine loop, the lanes the
/// engine sorts attempts into, the process's limits, and commands run in
/// process groups of their own that never outlive the runner.
pub mod exec {
    pub use runyard_core::TaskIndex;
    pub use runyard_engine::{lane_for, Lane};
    pub use runyard_exec::{
        catch_panic, install_panic_hook, limits, os, start_reaper, AsyncExecutor, Attempt,
        AttemptReport, CommandGroup, Epoch, Executor, GroupStopper, PoolConfig, Sink, SpawnError,
        ThreadPool,
    };
}

/// Child processes, for `process` mode and isolated tasks.
///
/// A binary that runs jobs in `process` mode starts copies of itself as its
/// child processes; each must find the same tasks. So call
/// [`process::enter_if_child`] first thing in `main`:
///
/// ```no_run
/// // First thing in `main`:
/// runyard::process::enter_if_child();
/// // Then the program as usual; the engine needs a ProcessConfig:
/// let config = runyard::EngineConfig {
///     mode: runyard::Mode::Process,
///     process: Some(runyard::process::ProcessConfig::current_exe().unwrap()),
///     ..runyard::EngineConfig::default()
/// };
/// # let _ = config;
/// ```
pub mod process {
    pub use runyard_exec::process::{
        enter_if_child_with, is_child, run_child, ProcessConfig, CHILD_ENV,
    };

    /// In a child process of `process` mode, runs the child's role with the
    /// tasks linked into this binary (`Registry::linked()`) and exits;
    /// elsewhere returns at once.
    pub fn enter_if_child() {
        enter_if_child_with(|| match crate::Registry::linked() {
            Ok(r) => r,
            Err(e) => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "runyard child process: {e}");
                std::process::exit(2);
            }
        });
    }
}

/// What the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use runyard_core::__private::*;
    pub use runyard_core::{
        parse_duration, Backoff, FieldSchema, ParamSchema, Params, Registration, RetryPolicy,
        TaskDefaults, Violation,
    };
}
