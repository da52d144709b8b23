//! How an engine runs: its mode, pool sizes, run-wide job defaults, grace
//! period, lease. An [`EngineConfig`] is made by an [`EngineConfigBuilder`],
//! whose [`build`](EngineConfigBuilder::build) checks every setting against
//! what this process can start: a configuration that exists can run.

use std::collections::BTreeMap;
use std::time::Duration;

use runyard_core::{format_duration, JobOptions, Mode, Rate, MAX_DURATION};
use runyard_exec::limits::{self, Limit};
use runyard_exec::process::ProcessConfig;
use runyard_queue::TaskName;
use thiserror::Error;

/// Attempts in flight on the async executor at once, unless the
/// concurrency says otherwise.
pub const DEFAULT_ASYNC_LIMIT: usize = 10_000;
/// The most threads of the elastic blocking pool.
pub const DEFAULT_BLOCKING_THREADS: usize = 512;

/// An engine's configuration, checked when it was built.
///
/// ```
/// use runyard_core::Mode;
/// use runyard_engine::EngineConfig;
///
/// let config = EngineConfig::builder()
///     .mode(Mode::Thread)
///     .concurrency(4)
///     .build()
///     .unwrap();
/// assert_eq!(config.mode(), Mode::Thread);
/// // `Default` is `auto` mode with pools sized to the machine.
/// assert_eq!(EngineConfig::default().mode(), Mode::Auto);
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub(crate) mode: Mode,
    pub(crate) concurrency: Option<usize>,
    pub(crate) cpu_threads: usize,
    pub(crate) blocking_threads: usize,
    pub(crate) defaults: JobOptions,
    pub(crate) grace: Duration,
    pub(crate) lease: Duration,
    pub(crate) tasks: Option<Vec<TaskName>>,
    pub(crate) prefetch: bool,
    pub(crate) process: Option<ProcessConfig>,
    pub(crate) task_limits: BTreeMap<String, TaskLimits>,
    pub(crate) schedules: bool,
}

/// A run's limits for one task's jobs across every worker of a queue (a
/// job file's `[limits.TASK]`), in place of the task's own defaults
/// (`#[task(queue_concurrency = N, rate = "R")]`). A limit stored in the
/// queue for the task still beats them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskLimits {
    /// The most attempts of the task at once; `None` keeps the task's
    /// default.
    pub concurrency: Option<u32>,
    /// The most starts of the task per window; `None` keeps the task's
    /// default.
    pub rate: Option<Rate>,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            mode: Mode::Auto,
            concurrency: None,
            cpu_threads: cores(),
            blocking_threads: DEFAULT_BLOCKING_THREADS,
            defaults: JobOptions::default(),
            grace: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            tasks: None,
            prefetch: true,
            process: None,
            task_limits: BTreeMap::new(),
            schedules: true,
        }
    }
}

/// Builds an [`EngineConfig`]; every setting has a default (those of
/// [`EngineConfig::default`]), and [`build`](EngineConfigBuilder::build)
/// checks them all.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until it is built"]
pub struct EngineConfigBuilder {
    config: EngineConfig,
}

impl EngineConfigBuilder {
    /// The mode jobs run in unless they ask for another (default `auto`).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The concurrency: in `thread` mode the pool's size, in `process` mode
    /// the number of child processes, in `async` mode the attempts in
    /// flight; in `auto` mode a cap on attempts in flight across every
    /// executor. Threads and child processes are bounded by what the
    /// process can start (checked by [`build`](Self::build)). By default,
    /// the number of cores.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = Some(n);
        self
    }

    /// Threads of the `cpu` pool in `auto` mode (default: the cores).
    pub fn cpu_threads(mut self, n: usize) -> Self {
        self.config.cpu_threads = n;
        self
    }

    /// The most threads of the blocking pool (default
    /// [`DEFAULT_BLOCKING_THREADS`]).
    pub fn blocking_threads(mut self, n: usize) -> Self {
        self.config.blocking_threads = n;
        self
    }

    /// Defaults for every job of the engine's runs, below each job's own
    /// options and above each task's defaults (checked when jobs are
    /// submitted).
    pub fn defaults(mut self, defaults: JobOptions) -> Self {
        self.config.defaults = defaults;
        self
    }

    /// After an interrupt, how long running attempts may take to finish
    /// before they are cancelled (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// The lease a claim holds; heartbeats renew it every third of it
    /// (default 30 s). When heartbeats fail or do not return, an attempt
    /// whose lease has gone unrenewed for five sixths of it is stopped,
    /// its outcome not recorded: no attempt runs past its lease, and the
    /// queue's rescue gives its job (and its limit's slot) to another
    /// worker.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// Claim only jobs of these tasks (default: every task).
    pub fn tasks(mut self, tasks: impl IntoIterator<Item = TaskName>) -> Self {
        self.config.tasks = Some(tasks.into_iter().collect());
        self
    }

    /// Hand executors more attempts than they run at once, so a thread
    /// finds its next attempt waiting (default on). Off, an attempt is
    /// claimed only when a place to run it is free: slower, but nothing
    /// starts after the run has been interrupted (a halt on the first
    /// dead job).
    pub fn prefetch(mut self, on: bool) -> Self {
        self.config.prefetch = on;
        self
    }

    /// How to start child processes (for `process` mode and isolated
    /// tasks); without it, jobs that need them are refused at submit.
    pub fn process(mut self, process: ProcessConfig) -> Self {
        self.config.process = Some(process);
        self
    }

    /// Limits for the jobs of `task` across every worker of a queue, in
    /// place of the task's defaults (`None` keeps the task's own); set
    /// again for the same task, the last one holds. A concurrency of 0 is
    /// refused by [`build`](Self::build); a task the engine's registry does
    /// not have is refused when a run starts, before any job runs.
    ///
    /// ```
    /// use runyard_engine::EngineConfig;
    ///
    /// let config = EngineConfig::builder()
    ///     .task_limits("fetch", Some(4), Some("50/s".parse()?))
    ///     .build()?;
    /// assert_eq!(config.task_limits()["fetch"].concurrency, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_limits(
        mut self,
        task: impl Into<String>,
        concurrency: Option<u32>,
        rate: Option<Rate>,
    ) -> Self {
        self.config
            .task_limits
            .insert(task.into(), TaskLimits { concurrency, rate });
        self
    }

    /// Whether workers of this engine fire the due ticks of the schedules
    /// their queue keeps (default on; see [`Worker::schedules`](crate::Worker::schedules)).
    /// Runs ([`Engine::start`](crate::Engine::start)) never fire schedules.
    pub fn schedules(mut self, on: bool) -> Self {
        self.config.schedules = on;
        self
    }

    /// The configuration, once what it asks of the process has been
    /// checked: in `thread` mode the concurrency in threads, in `process`
    /// mode in child processes, each within what the process can start
    /// (runyard's cap of [`limits::MAX_POOL_THREADS`], `RLIMIT_NPROC`, and
    /// for child processes `RLIMIT_NOFILE`; see [`runyard_exec::limits`]);
    /// the grace period and lease within [`MAX_DURATION`]; every task
    /// limit's concurrency at least 1. `async` and
    /// `auto` modes start no thread per attempt: their concurrency is not
    /// bounded here.
    pub fn build(self) -> Result<EngineConfig, ConfigError> {
        self.config.check()?;
        Ok(self.config)
    }
}

impl EngineConfig {
    /// A builder, starting from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder::default()
    }

    /// The mode jobs run in unless they ask for another.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The concurrency asked for, if any (see
    /// [`EngineConfigBuilder::concurrency`]).
    pub fn concurrency(&self) -> Option<usize> {
        self.concurrency
    }

    /// Threads of the `cpu` pool in `auto` mode.
    pub fn cpu_threads(&self) -> usize {
        self.cpu_threads
    }

    /// The most threads of the blocking pool.
    pub fn blocking_threads(&self) -> usize {
        self.blocking_threads
    }

    /// Defaults for every job.
    pub fn defaults(&self) -> &JobOptions {
        &self.defaults
    }

    /// The grace period after an interrupt.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The lease a claim holds.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The tasks whose jobs are claimed (all when `None`).
    pub fn tasks(&self) -> Option<&[TaskName]> {
        self.tasks.as_deref()
    }

    /// Whether executors are handed more attempts than they run at once.
    pub fn prefetch(&self) -> bool {
        self.prefetch
    }

    /// How child processes are started, if they can be.
    pub fn process(&self) -> Option<&ProcessConfig> {
        self.process.as_ref()
    }

    /// The run's limits per task name (see
    /// [`EngineConfigBuilder::task_limits`]).
    pub fn task_limits(&self) -> &BTreeMap<String, TaskLimits> {
        &self.task_limits
    }

    /// Whether workers fire schedules (see [`EngineConfigBuilder::schedules`]).
    pub fn schedules(&self) -> bool {
        self.schedules
    }
}

/// Attempts each executor runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// Threads of the CPU pool (the one pool of `thread` mode).
    pub(crate) cpu_threads: usize,
    /// The most threads of the blocking pool.
    pub(crate) blocking_threads: usize,
    /// Attempts in flight on the async executor.
    pub(crate) async_limit: usize,
    /// Worker processes.
    pub(crate) process_workers: usize,
}

/// A configuration that cannot run here; see [`EngineConfigBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The concurrency asks for more threads or child processes than this
    /// process can start.
    #[error("{}", concurrency_message(*mode, *asked, limit))]
    Concurrency {
        /// The mode.
        mode: Mode,
        /// The concurrency asked for.
        asked: usize,
        /// What this process can start, and why.
        limit: Limit,
    },
    /// A task limit of no attempts at once.
    #[error(
        "the concurrency limit of task `{task}` must be at least 1 (the most attempts of it at \
         once across the queue; to stop a task, pause it)"
    )]
    TaskConcurrency {
        /// The task.
        task: String,
    },
    /// A duration past [`MAX_DURATION`].
    #[error("the {option} of {} is longer than the maximum of 100 years", format_duration(*value))]
    Duration {
        /// Which duration.
        option: &'static str,
        /// Its value.
        value: Duration,
    },
}

fn concurrency_message(mode: Mode, asked: usize, limit: &Limit) -> String {
    let (runs, unit) = match mode {
        Mode::Process => (
            "each attempt in a worker process of its own",
            "worker processes",
        ),
        _ => ("each attempt on a thread of its own", "threads"),
    };
    format!(
        "a concurrency of {asked} is more than {mode} mode can start: it runs {runs}, and this process can \
         start at most {} {unit} ({})",
        limit.most, limit.bound
    )
}

impl EngineConfig {
    /// What each executor runs at once, from the mode and the concurrency:
    /// in `thread` mode it sizes the one pool; otherwise each executor runs
    /// at most that many attempts at once (the CPU pool and the child
    /// processes keep their own defaults when those are smaller). Pools
    /// never get more threads, nor the process pool more processes, than
    /// this process can start.
    pub(crate) fn sizes(&self) -> Sizes {
        let n = cores();
        let j = self.concurrency;
        let at_most = |default: usize| j.map_or(default, |j| j.min(default)).max(1);
        let (cpu_threads, blocking_threads, async_limit, process_workers) = match self.mode {
            Mode::Thread => (
                j.unwrap_or(n).max(1),
                self.blocking_threads,
                DEFAULT_ASYNC_LIMIT,
                n,
            ),
            Mode::Process => (
                self.cpu_threads,
                self.blocking_threads,
                DEFAULT_ASYNC_LIMIT,
                j.unwrap_or(n).max(1),
            ),
            Mode::Async | Mode::Auto => (
                at_most(self.cpu_threads),
                at_most(self.blocking_threads),
                j.unwrap_or(DEFAULT_ASYNC_LIMIT).max(1),
                at_most(n),
            ),
        };
        let threads = limits::pool_threads().most;
        Sizes {
            cpu_threads: cpu_threads.min(threads),
            blocking_threads: blocking_threads.min(threads),
            async_limit,
            process_workers: process_workers.min(limits::worker_processes().most),
        }
    }

    /// Checks what this configuration asks of the process before anything
    /// runs; see [`EngineConfigBuilder::build`].
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        for (option, value) in [("grace period", self.grace), ("lease", self.lease)] {
            if value > MAX_DURATION {
                return Err(ConfigError::Duration { option, value });
            }
        }
        if let Some((task, _)) = self
            .task_limits
            .iter()
            .find(|(_, l)| l.concurrency == Some(0))
        {
            return Err(ConfigError::TaskConcurrency { task: task.clone() });
        }
        let asked = self.concurrency.unwrap_or_else(cores);
        let limit = match self.mode {
            Mode::Thread => limits::pool_threads(),
            Mode::Process => limits::worker_processes(),
            Mode::Async | Mode::Auto => return Ok(()),
        };
        if asked > limit.most {
            return Err(ConfigError::Concurrency {
                mode: self.mode,
                asked,
                limit,
            });
        }
        Ok(())
    }
}

/// The number of cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What differs between the runs of one engine: the name leases are held
/// under, and whether the run ends once it is closed and drained (a
/// worker's does not: it drains until it is interrupted).
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    /// The worker's name in the queue (leases are held under it).
    pub(crate) worker_name: String,
    /// Whether the run ends when the queue has no unfinished jobs left and
    /// the run is closed.
    pub(crate) exit_when_drained: bool,
    /// Whether it fires the due ticks of the queue's schedules (a worker's
    /// run, unless turned off).
    pub(crate) fire_schedules: bool,
    /// What it counts of its own work, if anything does.
    pub(crate) meter: crate::events::Meters,
}

impl RunSettings {
    /// A run that ends once closed and drained, under this process's name.
    pub(crate) fn run() -> RunSettings {
        RunSettings {
            worker_name: default_worker_name(),
            exit_when_drained: true,
            fire_schedules: false,
            meter: crate::events::Meters::default(),
        }
    }
}

/// `host:pid`, unique among live workers.
pub(crate) fn default_worker_name() -> String {
    format!("{}:{}", runyard_queue::host_name(), std::process::id())
}
