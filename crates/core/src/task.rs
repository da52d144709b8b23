//! Tasks: named kinds of work. A [`Task`] runs on a thread; an
//! [`AsyncTask`] runs on tokio. Both erase to a [`TaskDef`], which is what
//! the registry, the executors and child processes handle. What a task's
//! jobs get unless they say otherwise is one value, [`TaskDefaults`], that
//! each trait gives through `defaults()` and a `TaskDef` keeps; its kind is
//! a constant of the trait instead, so that a sync task of kind `async` is
//! refused at compile time.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::{BoxFuture, Context};
use crate::defaults::TaskDefaults;
use crate::error::{ParamError, ParamProblem, TaskError};
use crate::job::JobSpec;
use crate::outcome::Output;
use crate::params::{JobParams, ParamSchema, Params};
use crate::retry::RetryPolicy;

/// What kind of work a task does, which decides where `auto` mode runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Computation: runs on the thread pool sized to the cores.
    Cpu,
    /// Sync code that mostly waits (files, sync clients, sleeps): runs on an
    /// elastic pool of threads.
    Blocking,
    /// An `async fn`: runs on tokio.
    Async,
}

impl TaskKind {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Cpu => "cpu",
            TaskKind::Blocking => "blocking",
            TaskKind::Async => "async",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;

    fn from_str(s: &str) -> Result<TaskKind, String> {
        match s {
            "cpu" => Ok(TaskKind::Cpu),
            "blocking" => Ok(TaskKind::Blocking),
            "async" => Ok(TaskKind::Async),
            other => Err(format!(
                "unknown task kind `{other}` (expected cpu, blocking or async)"
            )),
        }
    }
}

/// A sync task: runs on a thread (or in a child process).
///
/// Usually written with `#[runyard::task]` on a plain function; implement it
/// by hand when a task carries state:
///
/// ```
/// use std::time::Duration;
/// use runyard_core::{Context, Task, TaskDefaults, TaskError, TaskKind};
///
/// struct Double;
///
/// impl Task for Double {
///     const NAME: &'static str = "double";
///     const KIND: TaskKind = TaskKind::Cpu;
///     type Params = serde_json::Value;
///     type Output = i64;
///
///     // Every per-task setting in one place; what is not set is the
///     // engine's default.
///     fn defaults(&self) -> TaskDefaults {
///         TaskDefaults::new().timeout(Duration::from_secs(5)).worker_concurrency(8)
///     }
///
///     fn run(&self, p: serde_json::Value, _ctx: &Context) -> Result<i64, TaskError> {
///         let x = p["x"].as_i64().ok_or_else(|| TaskError::permanent("x must be an integer"))?;
///         Ok(2 * x)
///     }
/// }
///
/// // A job of it, by type: the name comes from `Double::NAME`.
/// let job = Double::job(serde_json::json!({"x": 21})).max_attempts(3);
/// assert_eq!(job.task, "double");
/// assert_eq!(job.params.as_json(), r#"{"x":21}"#);
/// ```
pub trait Task: Send + Sync + 'static {
    /// The registered name.
    const NAME: &'static str;
    /// [`TaskKind::Cpu`] or [`TaskKind::Blocking`] (a sync task cannot be
    /// `Async`; that is checked at compile time).
    const KIND: TaskKind = TaskKind::Cpu;
    /// One line for `runyard list`.
    const DESCRIPTION: &'static str = "";
    /// The parameter type.
    type Params: Params;
    /// The output type.
    type Output: Serialize + Send + 'static;

    /// What its jobs get unless they say otherwise (retry policy, timeout,
    /// isolation) and how the engine limits it (`worker_concurrency`).
    fn defaults(&self) -> TaskDefaults {
        TaskDefaults::new()
    }

    /// Runs one attempt.
    fn run(&self, params: Self::Params, ctx: &Context) -> Result<Self::Output, TaskError>;

    /// A job of this task: its name from the type, its parameters of the
    /// task's parameter type, options by [`JobSpec`]'s builder
    /// (`Double::job(p).max_attempts(3)`). Panics as [`JobSpec`]'s typed
    /// constructors do, if the parameters are not a JSON object.
    fn job(params: Self::Params) -> JobSpec
    where
        Self: Sized,
    {
        JobSpec::typed(Self::NAME, &params)
    }
}

/// An async task: runs on the engine's tokio runtime.
pub trait AsyncTask: Send + Sync + 'static {
    /// The registered name.
    const NAME: &'static str;
    /// One line for `runyard list`.
    const DESCRIPTION: &'static str = "";
    /// The parameter type.
    type Params: Params;
    /// The output type.
    type Output: Serialize + Send + 'static;

    /// What its jobs get unless they say otherwise (retry policy, timeout,
    /// isolation) and how the engine limits it (`worker_concurrency`).
    fn defaults(&self) -> TaskDefaults {
        TaskDefaults::new()
    }

    /// Runs one attempt.
    fn run(
        &self,
        params: Self::Params,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Output, TaskError>> + Send;

    /// A job of this task: its name from the type, its parameters of the
    /// task's parameter type, options by [`JobSpec`]'s builder. Panics as
    /// [`Task::job`] does, if the parameters are not a JSON object.
    fn job(params: Self::Params) -> JobSpec
    where
        Self: Sized,
    {
        JobSpec::typed(Self::NAME, &params)
    }
}

type SyncBody = dyn Fn(&JobParams, &Context) -> Result<Output, TaskError> + Send + Sync;
type AsyncBody =
    dyn Fn(JobParams, Context) -> BoxFuture<'static, Result<Output, TaskError>> + Send + Sync;

/// A task with its types erased: what the registry holds.
pub struct TaskDef {
    name: Cow<'static, str>,
    kind: TaskKind,
    description: Cow<'static, str>,
    defaults: TaskDefaults,
    schema: fn() -> ParamSchema,
    check: fn(&str) -> Result<(), ParamProblem>,
    sync_body: Option<Box<SyncBody>>,
    async_body: Option<Box<AsyncBody>>,
    origin: Cow<'static, str>,
}

fn check_params<P: Params>(json: &str) -> Result<(), ParamProblem> {
    let p = P::decode(json).map_err(ParamProblem::Decode)?;
    p.validate().map_err(ParamProblem::from)
}

fn decode_for_run<P: Params>(params: &JobParams) -> Result<P, TaskError> {
    let p = P::decode(params.as_json())
        .map_err(|m| TaskError::permanent(format!("invalid parameters: {m}")))?;
    p.validate().map_err(|v| {
        TaskError::permanent(format!("invalid parameters: {}", ParamProblem::from(v)))
    })?;
    Ok(p)
}

fn encode_output<O: Serialize + 'static>(out: &O) -> Result<Output, TaskError> {
    if std::any::TypeId::of::<O>() == std::any::TypeId::of::<()>() {
        return Ok(Output::none());
    }
    Output::from_serialize(out)
        .map_err(|e| TaskError::permanent(format!("the output could not be serialized: {e}")))
}

impl TaskDef {
    /// Erases a sync task.
    pub fn from_task<T: Task>(task: T) -> TaskDef {
        const {
            assert!(
                !matches!(T::KIND, TaskKind::Async),
                "a sync `Task` cannot have KIND = Async; implement `AsyncTask` instead"
            )
        };
        let task = Arc::new(task);
        let body = Arc::clone(&task);
        TaskDef {
            name: Cow::Borrowed(T::NAME),
            kind: T::KIND,
            description: Cow::Borrowed(T::DESCRIPTION),
            defaults: task.defaults(),
            schema: T::Params::schema,
            check: check_params::<T::Params>,
            sync_body: Some(Box::new(move |params, ctx| {
                let p = decode_for_run::<T::Params>(params)?;
                encode_output(&body.run(p, ctx)?)
            })),
            async_body: None,
            origin: Cow::Borrowed(std::any::type_name::<T>()),
        }
    }

    /// Erases an async task.
    pub fn from_async<T: AsyncTask>(task: T) -> TaskDef {
        let task = Arc::new(task);
        let body = Arc::clone(&task);
        TaskDef {
            name: Cow::Borrowed(T::NAME),
            kind: TaskKind::Async,
            description: Cow::Borrowed(T::DESCRIPTION),
            defaults: task.defaults(),
            schema: T::Params::schema,
            check: check_params::<T::Params>,
            sync_body: None,
            async_body: Some(Box::new(move |params, ctx| {
                let t = Arc::clone(&body);
                Box::pin(async move {
                    let p = decode_for_run::<T::Params>(&params)?;
                    encode_output(&t.run(p, ctx).await?)
                })
            })),
            origin: Cow::Borrowed(std::any::type_name::<T>()),
        }
    }

    /// Erases a task that has both bodies: it is `async` (tokio runs it in
    /// `auto` and `async` modes) and its sync body runs in `thread` and
    /// `process` modes. The built-in `sleep` is one.
    pub fn hybrid<T>(task: T) -> TaskDef
    where
        T: AsyncTask + Task<Params = <T as AsyncTask>::Params, Output = <T as AsyncTask>::Output>,
    {
        let task = Arc::new(task);
        let mut def = TaskDef::from_async(ArcAsync(Arc::clone(&task)));
        let body = Arc::clone(&task);
        def.sync_body = Some(Box::new(move |params, ctx| {
            let p = decode_for_run::<<T as Task>::Params>(params)?;
            encode_output(&Task::run(&*body, p, ctx)?)
        }));
        def.origin = Cow::Borrowed(std::any::type_name::<T>());
        def
    }

    /// Names where the task was defined, for error messages (`file:line`
    /// for tasks defined with the macro, the type's path otherwise).
    pub fn with_origin(mut self, origin: impl Into<Cow<'static, str>>) -> TaskDef {
        self.origin = origin.into();
        self
    }

    /// Gives the task another name (e.g. an alias).
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> TaskDef {
        self.name = name.into();
        self
    }

    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registered name as jobs carry it (free to clone).
    pub fn task_name(&self) -> crate::TaskName {
        crate::TaskName::from(self.name.clone())
    }

    /// The kind.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }

    /// The one-line description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Its defaults, as its [`Task::defaults`] or [`AsyncTask::defaults`]
    /// gave them.
    pub fn defaults(&self) -> &TaskDefaults {
        &self.defaults
    }

    /// The default retry policy (`defaults().policy`).
    pub fn policy(&self) -> RetryPolicy {
        self.defaults.policy
    }

    /// The default per-attempt timeout (`defaults().timeout`).
    pub fn timeout(&self) -> Option<Duration> {
        self.defaults.timeout
    }

    /// Whether `auto` mode isolates it in a child process
    /// (`defaults().isolate`).
    pub fn isolate(&self) -> bool {
        self.defaults.isolate
    }

    /// The most attempts of it that one engine runs at once, if limited
    /// (`defaults().worker_concurrency`).
    pub fn worker_concurrency(&self) -> Option<u32> {
        self.defaults.worker_concurrency
    }

    /// Where it was defined.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The parameters' description.
    pub fn schema(&self) -> ParamSchema {
        (self.schema)()
    }

    /// Checks a job's parameters against the parameter type and its
    /// constraints, without running anything.
    pub fn validate_params(&self, params: &JobParams) -> Result<(), ParamError> {
        (self.check)(params.as_json()).map_err(|problem| ParamError {
            task: self.name.to_string(),
            problem,
        })
    }

    /// Whether it can run on a thread.
    pub fn has_sync_body(&self) -> bool {
        self.sync_body.is_some()
    }

    /// Whether it can run on tokio.
    pub fn has_async_body(&self) -> bool {
        self.async_body.is_some()
    }

    /// Runs one attempt on the calling thread. A task without a sync body
    /// fails permanently (the worker never routes one here).
    pub fn run_sync(&self, params: &JobParams, ctx: &Context) -> Result<Output, TaskError> {
        match &self.sync_body {
            Some(body) => body(params, ctx),
            None => Err(TaskError::permanent(format!(
                "task `{}` is async and cannot run on a thread",
                self.name
            ))),
        }
    }

    /// Starts one attempt as a future. A task without an async body fails
    /// permanently (the worker never routes one here).
    pub fn run_async(
        &self,
        params: JobParams,
        ctx: Context,
    ) -> BoxFuture<'static, Result<Output, TaskError>> {
        match &self.async_body {
            Some(body) => body(params, ctx),
            None => {
                let msg = format!("task `{}` is sync and has no async body", self.name);
                Box::pin(async move { Err(TaskError::permanent(msg)) })
            }
        }
    }
}

impl fmt::Debug for TaskDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("defaults", &self.defaults)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Lets [`TaskDef::hybrid`] share one task value between both bodies.
struct ArcAsync<T>(Arc<T>);

impl<T: AsyncTask> AsyncTask for ArcAsync<T> {
    const NAME: &'static str = T::NAME;
    const DESCRIPTION: &'static str = T::DESCRIPTION;
    type Params = T::Params;
    type Output = T::Output;

    fn defaults(&self) -> TaskDefaults {
        self.0.defaults()
    }

    fn run(
        &self,
        params: T::Params,
        ctx: Context,
    ) -> impl Future<Output = Result<T::Output, TaskError>> + Send {
        self.0.run(params, ctx)
    }
}
