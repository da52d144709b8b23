//! runyard runs many instances ("jobs") of named tasks concurrently, each on
//! the execution mode that fits it, with retry policies, timeouts that stop
//! work, a record of every attempt, and queues that survive crashes.
//!
//! This page is a tour: [tasks](#tasks), [modes](#modes),
//! [queues](#queues), [workflows](#workflows), [events](#events) and
//! [errors](#errors), each with an
//! example that runs. `use runyard::prelude::*;` imports what a task
//! definition and a simple run need.
//!
//! # Tasks
//!
//! A task is a named kind of work; a job is one instance of it, with its
//! parameters. `#[task]` on a function defines one, and `#[derive(Params)]`
//! on its parameter type checks every job's parameters before anything
//! runs and describes them for `runyard describe`:
//!
//! ```
//! use runyard::prelude::*;
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
//! async fn ping(_: (), _ctx: Context) -> Result<(), TaskError> {
//!     Ok(())
//! }
//!
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//! let report = engine
//!     .run([
//!         // A job by type: a misspelled task or field does not compile.
//!         resize::job(Resize { width: 640, format: png() }).priority(1),
//!         ping::job(()),
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
//! once; the older `concurrency` is refused with a message naming it),
//! `queue_concurrency` (the most attempts of this task at once across
//! every worker of a queue, held by the queue) and `rate` (`"N/s"`,
//! `"N/m"` or `"N/h"`: the most starts per window across every worker of
//! a queue); see [`flow`]. The two concurrencies differ in who holds
//! them: `worker_concurrency = 4` lets each of three workers run 4 at
//! once (12 in all), `queue_concurrency = 4` lets the three together run 4.
//! Specs are checked at compile time. The function takes its parameters
//! (any type that implements [`Params`]; `()` for none), optionally
//! followed by its context (`&Context` for a plain function, `Context` for
//! an `async fn`), and returns `Result<T, E>` with `T: Serialize` and `E:
//! Into<TaskError>`. Each task gets `job(params)`, which builds a
//! [`JobSpec`] whose options are set by its builder (`max_attempts`,
//! `timeout`, `priority`, `run_at`, `mode`, ...).
//!
//! A task that carries state is a type that implements [`Task`] (or
//! [`AsyncTask`]); its defaults are one [`TaskDefaults`], and `X::job`
//! comes with the trait:
//!
//! ```
//! use std::time::Duration;
//! use runyard::prelude::*;
//!
//! struct Scale {
//!     factor: i64,
//! }
//!
//! impl Task for Scale {
//!     const NAME: &'static str = "scale";
//!     type Params = serde_json::Value;
//!     type Output = i64;
//!
//!     fn defaults(&self) -> TaskDefaults {
//!         TaskDefaults::new().timeout(Duration::from_secs(5))
//!     }
//!
//!     fn run(&self, p: serde_json::Value, _ctx: &Context) -> Result<i64, TaskError> {
//!         let x = p["x"].as_i64().ok_or_else(|| TaskError::permanent("x must be an integer"))?;
//!         Ok(self.factor * x)
//!     }
//! }
//!
//! let registry = Registry::builder().task(runyard::TaskDef::from_task(Scale { factor: 3 })).build().unwrap();
//! let report = Engine::new(registry, EngineConfig::default())
//!     .run([Scale::job(serde_json::json!({"x": 14}))])
//!     .unwrap();
//! assert_eq!(report.jobs[0].output.as_json(), "42");
//! ```
//!
//! Jobs read from files keep the string form,
//! `JobSpec::new("resize").params(&json)?`, checked against the task when
//! submitted.
//!
//! A task defined with `#[task]` registers itself when the binary is linked:
//! [`Registry::linked`] finds every such task in the executable (one list
//! per process, whichever crate defined them). A registry can also be built
//! by hand with [`Registry::builder`] from [`TaskDef`]s, as above.
//!
//! # Modes
//!
//! | mode | where attempts run | timeouts | use it for |
//! |---|---|---|---|
//! | `auto` (default) | `cpu` tasks on a pool sized to the cores, `blocking` tasks on an elastic pool, `async` tasks on tokio, isolated tasks in child processes | per executor | mixed work |
//! | `thread` | one pool of `-j` threads | the context is cancelled; a task that ignores it is abandoned and reported `timed_out` | CPU-bound Rust code |
//! | `async` | tokio; sync tasks on the blocking pool | the future is dropped | massive IO |
//! | `process` | child processes | the process group is killed | code that may crash, hang or leak |
//!
//! Code that cannot be interrupted (a C library call, a busy loop that never
//! checks its context) is only truly stopped in `process` mode: in `thread`
//! mode its thread is abandoned, still running, while the run goes on.
//!
//! A run has a mode, and a job may ask for another:
//!
//! ```
//! use runyard::prelude::*;
//!
//! /// Counts to `n`.
//! #[derive(serde::Serialize, serde::Deserialize, Params)]
//! struct Count {
//!     n: u64,
//! }
//!
//! #[task]
//! fn count(p: Count) -> Result<u64, TaskError> {
//!     Ok((0..p.n).sum())
//! }
//!
//! let config = EngineConfig::builder()
//!     .mode(Mode::Thread)
//!     .concurrency(2)
//!     .build()
//!     .unwrap();
//! let engine = Engine::new(Registry::linked().unwrap(), config);
//! let report = engine
//!     .run([
//!         count::job(Count { n: 10 }),
//!         count::job(Count { n: 100 }).mode(Mode::Async),
//!     ])
//!     .unwrap();
//! assert_eq!(report.jobs[1].output.as_json(), "4950");
//! ```
//!
//! `process` mode starts copies of the executable as its child processes:
//! see [`process`] for the one line `main` needs.
//!
//! # Queues
//!
//! An engine runs the jobs of a queue. [`Engine::run`] makes an in-memory
//! one for a batch of jobs; [`Engine::start`] runs on any queue and returns
//! the [`Run`], to which jobs are submitted while it goes; [`Run::wait`]
//! gives its [`Report`] (and [`Run::finish`] does the same from async code,
//! blocking no thread of the caller's runtime):
//!
//! ```
//! use std::sync::Arc;
//! use runyard::prelude::*;
//! use runyard::queue::{MemoryQueue, Queue};
//!
//! #[task]
//! fn hello(_: ()) -> Result<&'static str, TaskError> {
//!     Ok("hello")
//! }
//!
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//! let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
//! let run = engine.start(Arc::clone(&queue)).unwrap();
//! run.submit(&hello::job(())).unwrap();
//! run.close(); // no more jobs: the run ends once they are done
//! let report = run.wait().unwrap();
//! assert!(report.summary.all_succeeded());
//! ```
//!
//! The SQLite queue (feature `sqlite`) records a run in one file: every job
//! and attempt survives a crash, and a run started again on the file goes
//! on where it stopped (a job that was running when its worker died is
//! claimed again once its lease runs out).
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::sync::Arc;
//! use runyard::prelude::*;
//! use runyard::queue::Queue;
//! use runyard::sqlite::{OpenMode, SqliteQueue};
//!
//! #[task]
//! fn hello(_: ()) -> Result<&'static str, TaskError> {
//!     Ok("hello")
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.db");
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//! let queue: Arc<dyn Queue> = Arc::new(SqliteQueue::open(&path, OpenMode::CreateOrOpen).unwrap());
//! let run = engine.start(Arc::clone(&queue)).unwrap();
//! let id = run.submit(&hello::job(()).idempotency_key("hello-1")).unwrap();
//! run.close();
//! run.wait().unwrap();
//! drop(queue);
//!
//! // The file remembers: the job is done, and submitting it again under
//! // the same key does not enqueue a second one.
//! let queue: Arc<dyn Queue> = Arc::new(SqliteQueue::open(&path, OpenMode::Existing).unwrap());
//! let view = queue.inspect().unwrap().get(id).unwrap().unwrap();
//! assert_eq!(view.state, JobState::Succeeded);
//! let run = engine.start(Arc::clone(&queue)).unwrap();
//! assert_eq!(run.submit(&hello::job(()).idempotency_key("hello-1")).unwrap(), id);
//! run.close();
//! run.wait().unwrap();
//! # }
//! ```
//!
//! The PostgreSQL queue (feature `postgres`, `runyard::postgres`) lets workers on
//! many machines drain one queue, and a service enqueue a job inside its own
//! transaction. Every backend passes the same conformance suite
//! (`runyard_queue::conformance`).
//!
//! # Workflows
//!
//! Jobs can wait for other jobs and read their outputs. A [`Workflow`] is
//! built of named steps of typed jobs, each after steps added before it;
//! a step of several copies ([`Workflow::add_many`]) fans out, and a step
//! after it fans in: it waits for every copy and sees their outputs as a
//! list, in order. A task reads its parents' outputs from its context,
//! [`Context::parents`] as a type of its own (one field per step it is
//! after) or [`Context::parents_json`] as text. When a job ends dead or
//! cancelled, the jobs after it are cancelled, naming it as the cause;
//! a step with [`RunIf::Always`] runs once its parents have ended, however
//! they did (a cleanup step).
//!
//! ```
//! use runyard::prelude::*;
//! use runyard::queue::{MemoryQueue, Queue};
//! use std::sync::Arc;
//!
//! /// One shard's share of the work.
//! #[derive(serde::Serialize, serde::Deserialize, Params)]
//! struct Shard {
//!     n: u64,
//! }
//!
//! #[task]
//! fn square(p: Shard) -> Result<u64, TaskError> {
//!     Ok(p.n * p.n)
//! }
//!
//! /// What `total` is after: the `square` step's outputs, in order.
//! #[derive(serde::Deserialize)]
//! struct Squares {
//!     square: Vec<u64>,
//! }
//!
//! #[task]
//! fn total(_: (), ctx: &Context) -> Result<u64, TaskError> {
//!     Ok(ctx.parents::<Squares>()?.square.iter().sum())
//! }
//!
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//! let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
//! let run = engine.start(Arc::clone(&queue)).unwrap();
//!
//! let wf = Workflow::new();
//! let shards = wf.add_many("square", (1..=4).map(|n| square::job(Shard { n })));
//! let sum = wf.add("total", total::job(())).after(&[shards]);
//! let ids = run.submit_workflow(&wf).unwrap(); // every job checked first
//! run.close();
//! let report = run.wait().unwrap();
//!
//! let job = report.jobs.iter().find(|j| j.id == ids.of(sum)[0]).unwrap();
//! assert_eq!(job.output.as_json(), "30"); // 1 + 4 + 9 + 16
//! assert_eq!(job.after, ids.of(shards));
//! ```
//!
//! [`Engine::enqueue_workflow`] enqueues a workflow to a durable queue
//! without a run, for workers to drain.
//!
//! # Events
//!
//! Each job's transitions (queued, blocked and unblocked, running,
//! scheduled for a retry, succeeded, dead, cancelled) are events, given as they happen to every
//! [`EventSink`](event::EventSink) of a run; [`JsonLines`](event::JsonLines)
//! writes them as JSON lines:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use runyard::prelude::*;
//! use runyard::event::{Event, EventSink};
//! use runyard::queue::{MemoryQueue, Queue};
//!
//! /// Keeps the name of each event.
//! #[derive(Default)]
//! struct Names(Mutex<Vec<&'static str>>);
//!
//! impl EventSink for Names {
//!     fn event(&self, e: &Event<'_>) {
//!         let name = match e {
//!             Event::Queued { .. } => "queued",
//!             Event::Blocked { .. } => "blocked",
//!             Event::Unblocked { .. } => "unblocked",
//!             Event::Running { .. } => "running",
//!             Event::Scheduled { .. } => "scheduled",
//!             Event::Succeeded { .. } => "succeeded",
//!             Event::Dead { .. } => "dead",
//!             Event::Cancelled { .. } => "cancelled",
//!             // A schedule's events, from a worker that fires schedules.
//!             Event::Fired { .. } | Event::Skipped { .. } | Event::Missed { .. } => return,
//!         };
//!         self.0.lock().unwrap().push(name);
//!     }
//! }
//!
//! /// Fails once, then succeeds.
//! #[task(max_attempts = 2, backoff = "none")]
//! fn flaky(_: (), ctx: &Context) -> Result<(), TaskError> {
//!     if ctx.attempt() == 1 {
//!         return Err(TaskError::retryable("not yet"));
//!     }
//!     Ok(())
//! }
//!
//! let names = Arc::new(Names::default());
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//! let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
//! let run = engine
//!     .start_with_sinks(queue, vec![names.clone() as Arc<dyn EventSink>])
//!     .unwrap();
//! run.submit(&flaky::job(())).unwrap();
//! run.close();
//! run.wait().unwrap();
//! assert_eq!(
//!     *names.0.lock().unwrap(),
//!     ["queued", "running", "scheduled", "running", "succeeded"]
//! );
//! ```
//!
//! # Errors
//!
//! A job that cannot run is refused when it is submitted, before anything
//! runs: an unknown task, parameters that break their constraints, an
//! invalid option, a mode the task cannot run in ([`SubmitError`], whose
//! message names the task, the field and what would be valid). An attempt
//! that fails returns a [`TaskError`], which says whether to retry:
//! [`TaskError::retryable`] follows the retry policy,
//! [`TaskError::retry_after`] asks for a delay, [`TaskError::permanent`]
//! ends the job at once. A panic is caught and reported as the attempt's
//! outcome; it never takes the engine down.
//!
//! ```
//! use runyard::prelude::*;
//! use runyard::{RunError, SubmitError};
//!
//! /// Parameters of `fetch`.
//! #[derive(serde::Serialize, serde::Deserialize, Params)]
//! struct Fetch {
//!     #[param(min_len = 1)]
//!     url: String,
//! }
//!
//! #[task(max_attempts = 5)]
//! fn fetch(p: Fetch) -> Result<(), TaskError> {
//!     Err(TaskError::permanent(format!("{}: not found", p.url)))
//! }
//!
//! let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
//!
//! // Refused before anything runs.
//! let e = engine.run([fetch::job(Fetch { url: String::new() })]).unwrap_err();
//! assert!(matches!(e, RunError::Submit(SubmitError::Params(_))), "{e}");
//! let e = engine.run([JobSpec::new("fecth")]).unwrap_err();
//! assert!(e.to_string().contains("did you mean `fetch`?"), "{e}");
//!
//! // A permanent error is not retried: one attempt, and the job is dead.
//! let report = engine.run([fetch::job(Fetch { url: "a.example".into() })]).unwrap();
//! let job = &report.jobs[0];
//! assert_eq!((job.state, job.attempts.len()), (JobState::Dead, 1));
//! assert_eq!(job.last_error(), Some("a.example: not found"));
//! ```

#![forbid(unsafe_code)]
// A closed standard error must not panic a worker: no `eprintln!`.
#![warn(clippy::print_stdout, clippy::print_stderr)]

extern crate self as runyard;

// What users use: defining tasks, building jobs, running them, and the
// errors of each. Everything else is in a module named for its concern.
pub use runyard_core::{
    AsyncTask, Backoff, CancelGuard, CancelToken, Context, ErrorIntent, JobId, JobOptions, JobSpec,
    JobState, Mode, ModeError, OptionError, ParamError, ParamProblem, Params, Registry,
    RegistryBuilder, RegistryError, RetryPolicy, RunIf, Task, TaskDef, TaskDefaults, TaskError,
    TaskKind, Timestamp, UnknownTask,
};
pub use runyard_engine::{
    ConfigError, Engine, EngineConfig, EngineConfigBuilder, ModeRefused, Progress, Report,
    ReportError, ReportReader, Run, RunError, StartError, SubmitError, Worker, Workflow,
    WorkflowIds,
};
pub use runyard_macros::{task, Params};

/// What a task definition and a simple run need, in one import:
/// `use runyard::prelude::*;`.
pub mod prelude {
    pub use crate::{
        task, AsyncTask, Context, Engine, EngineConfig, JobSpec, JobState, Mode, Params, Registry,
        RunIf, Task, TaskDefaults, TaskError, TaskKind, Workflow,
    };
}

/// Parameters as jobs carry them (JSON objects) and as `runyard describe`
/// shows them; [`Violation`](params::Violation) is what a `#[param(check =
/// ...)]` function returns.
pub mod params {
    pub use runyard_core::{FieldSchema, JobParams, ParamSchema, Violation};
}

/// Retry policies and their decisions ([`RetryPolicy`]
/// and [`Backoff`] are also at the root).
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
        percentile, AttemptError, AttemptRecord, HeldJobs, JobView, Outcome, OutcomeKind, Output,
        Sketch, Summary, SummaryBuilder, TaskSummary, SKETCH_RELATIVE_ERROR,
    };
    pub use runyard_engine::{write_report_json, Report, ReportError};
}

/// Workflows: jobs after other jobs. [`Workflow`] builds
/// one from typed jobs; the rest is what its jobs carry and see (the
/// parents object a task reads with [`Context::parents`](crate::Context::parents),
/// the caps on stored outputs, the cause of a cancellation).
pub mod workflow {
    pub use runyard_core::{After, Cause, Parent, Parents, RunIf, OUTPUT_CAP, PARENTS_CAP};
    pub use runyard_engine::{Step, Workflow, WorkflowError, WorkflowIds};
}

/// Flow control: unique jobs, concurrency and rate limits held across
/// every worker of a queue, pausing a task, and what holds a job back.
///
/// A job carries its own flow options, set by its builder:
///
/// ```
/// use runyard::prelude::*;
/// use runyard::flow::{FlowKey, OnConflict, Rate};
///
/// #[task(queue_concurrency = 8, rate = "100/s")]
/// fn sync_account(_: ()) -> Result<(), TaskError> {
///     Ok(())
/// }
///
/// let job = sync_account::job(())
///     .unique_key("sync:42")
///     .on_conflict(OnConflict::Replace)
///     .concurrency_key("tenant:42".parse::<FlowKey>().unwrap(), Some(2))
///     .rate_key("stripe".parse::<FlowKey>().unwrap(), Some("25/s".parse::<Rate>().unwrap()));
/// let engine = Engine::new(Registry::linked().unwrap(), EngineConfig::default());
/// let new = engine.prepare(&job).unwrap();
/// assert_eq!(new.unique.unwrap().key, "sync:42");
/// assert_eq!(new.limits.task_concurrency, Some(8));
/// assert_eq!(new.limits.task_rate, Some("100/s".parse().unwrap()));
/// assert_eq!(new.limits.concurrency_key.unwrap().1, Some(2));
/// ```
///
/// A task's defaults (`#[task(queue_concurrency = N, rate = "R")]`) limit
/// its jobs across every worker of a queue; `worker_concurrency` caps only
/// what one engine runs at once. A run may override a task's limits with
/// [`EngineConfigBuilder::task_limits`](crate::EngineConfigBuilder::task_limits),
/// and a limit stored in the queue ([`FlowControl::set_limit`](flow::FlowControl::set_limit)) beats both.
/// Submitting a job whose unique key is held returns the id of the job
/// that holds it.
pub mod flow {
    pub use runyard_core::{
        check_key_name, FlowError, FlowKey, Hold, JobLimits, LimitTarget, OnConflict, Rate,
        StoredLimit, Unique, KEY_MAX,
    };
    pub use runyard_engine::TaskLimits;
    pub use runyard_queue::{FlowControl, Holds, LimitChange, Paused};
}

/// Events: what happens to each job as it happens, for a sink of your own
/// or as JSON lines.
pub mod event {
    pub use runyard_core::{Event, QueuedReason};
    pub use runyard_engine::{EventSink, JsonLines, Meter};
}

/// Queues: the core trait (the worker protocol), the capability traits
/// ([`Admin`](queue::Admin), [`Inspect`](queue::Inspect)) and job features
/// ([`Capabilities`](queue::Capabilities)) a queue may have, the in-memory
/// queue, and what they exchange.
pub mod queue {
    pub use runyard_queue::admit;
    pub use runyard_queue::{host_name, LiveWorker, NameTaken, WorkerInfo};
    pub use runyard_queue::{
        Admin, CancelResult, Cancelled, Capabilities, Capability, Cascade, Claimed, Clock,
        Completion, Counts, Durability, Enqueued, Fenced, HeartbeatReply, Inspect, Lease,
        ListFilter, ManualClock, MemoryQueue, NewJob, Queue, QueueError, QueueErrorKind, Recorded,
        Rescue, Rescued, Submit, SystemClock, TaskName, Verdict, Waker, Writes,
    };
}

/// Schedules kept in a queue (SQLite or PostgreSQL), whose ticks every
/// worker fires, each once: when they tick ([`Spec`](schedule::Spec)),
/// their policy, and the queue's side ([`Schedules`](schedule::Schedules),
/// from [`Queue::schedules`](queue::Queue::schedules)). A
/// [`Worker`] fires them unless told not to ([`Worker::schedules`]).
pub mod schedule {
    pub use runyard_core::{
        check_schedule_name, plan, CatchUp, CronSpec, Overlap, Plan, Policy, ScheduleError, Spec,
        Tick, EVERY_MIN, SCHEDULE_NAME_MAX,
    };
    pub use runyard_queue::{FireReport, Fired, Put, ScheduleDef, ScheduleInfo, Schedules};
}

/// The SQLite queue: runs recorded in one file, resumed after a crash
/// (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use runyard_sqlite::{OpenMode, SqliteQueue, SCHEMA_VERSION};
}

/// The PostgreSQL queue: workers on many machines drain one queue
/// (feature `postgres`).
///
/// [`PgQueue::enqueue_in`](postgres::PgQueue::enqueue_in) adds jobs inside
/// the caller's own transaction of the `postgres` crate (0.19): depend on
/// that crate yourself; the method follows that driver's versions.
#[cfg(feature = "postgres")]
pub mod postgres {
    // The driver crate itself is not re-exported: runyard's version must
    // not be tied to the `postgres` crate's.
    pub use runyard_postgres::{Activity, OpenMode, PgOptions, PgQueue, SCHEMA_VERSION, TABLES};
}

/// Executors, for those who build their own engine loop, the process's
/// limits, and commands run in process groups of their own that never
/// outlive the runner.
pub mod exec {
    pub use runyard_core::TaskIndex;
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
/// let config = runyard::EngineConfig::builder()
///     .mode(runyard::Mode::Process)
///     .process(runyard::process::ProcessConfig::current_exe().unwrap())
///     .build()
///     .unwrap();
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
        parse_duration, Backoff, FieldSchema, ParamSchema, Params, Rate, Registration, RetryPolicy,
        TaskDefaults, Violation,
    };
}
