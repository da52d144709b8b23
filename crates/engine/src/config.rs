//! How an engine runs: its mode, pool sizes, run-wide job defaults, grace period.

use std::time::Duration;

use runyard_core::{format_duration, JobOptions, Mode, MAX_DURATION};
use runyard_exec::limits::{self, Limit};
use runyard_exec::process::ProcessConfig;
use runyard_queue::TaskName;
use thiserror::Error;

/// Attempts in flight on the async executor at once, unless `-j` says otherwise.
pub const DEFAULT_ASYNC_LIMIT: usize = 10_000;
/// The most threads of the elastic blocking pool.
pub const DEFAULT_BLOCKING_THREADS: usize = 512;

/// An engine's configuration. `Default` gives `auto` mode with pools sized
/// to the machine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The mode jobs run in unless they ask for another.
    pub mode: Mode,
    /// `-j`: in `thread` mode the pool's size, in `process` mode the number
    /// of worker processes, in `async` mode the attempts in flight; in `auto`
    /// mode a cap on attempts in flight across every executor. Threads and
    /// worker processes are bounded by what the process can start (see
    /// [`EngineConfig::check`]).
    pub concurrency: Option<usize>,
    /// Threads of the `cpu` pool in `auto` mode.
    pub cpu_threads: usize,
    /// The most threads of the blocking pool.
    pub blocking_threads: usize,
    /// Defaults for every job of the run, below each job's own options and
    /// above each task's defaults.
    pub defaults: JobOptions,
    /// After an interrupt, how long running attempts may take to finish
    /// before they are cancelled.
    pub grace: Duration,
    /// The lease a claim holds; heartbeats renew it every third of it.
    pub lease: Duration,
    /// The worker's name in the queue (leases are held under it).
    pub worker_name: String,
    /// Claim only jobs of these tasks (all when `None`).
    pub tasks: Option<Vec<TaskName>>,
    /// Verdict when the queue has no unfinished jobs left and the run is
    /// closed; a long-running worker sets this to false.
    pub exit_when_drained: bool,
    /// Hand executors more attempts than they run at once, so a thread
    /// finds its next attempt waiting. Off, an attempt is claimed only when
    /// a place to run it is free: slower, but nothing starts after the
    /// worker loop has decided to stop (`runyard exec --halt`).
    pub prefetch: bool,
    /// How to start worker processes (for `process` mode and isolated
    /// tasks); without it, jobs that need them are refused at submit.
    pub process: Option<ProcessConfig>,
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
            worker_name: default_worker_name(),
            tasks: None,
            exit_when_drained: true,
            prefetch: true,
            process: None,
        }
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

/// A configuration that cannot run here; see [`EngineConfig::check`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `-j` asks for more threads or worker processes than this process
    /// can start.
    #[error("{}", concurrency_message(*mode, *asked, limit))]
    Concurrency {
        /// The mode.
        mode: Mode,
        /// The concurrency asked for.
        asked: usize,
        /// What this process can start, and why.
        limit: Limit,
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
        "-j {asked} is more than {mode} mode can start: it runs {runs}, and this process can \
         start at most {} {unit} ({})",
        limit.most, limit.bound
    )
}

impl EngineConfig {
    /// What each executor runs at once, from the mode and `-j`: in `thread`
    /// mode `-j` sizes the one pool; otherwise each executor runs at most
    /// `-j` attempts at once (the CPU pool and the worker processes keep
    /// their own defaults when those are smaller). Pools never get more
    /// threads, nor the worker pool more processes, than this process can
    /// start: a configuration that [`EngineConfig::check`] would refuse
    /// runs with what can start.
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
    /// runs: in `thread` mode `-j` threads, in `process` mode `-j` worker
    /// processes, each within what the process can start (runyard's cap of
    /// [`limits::MAX_POOL_THREADS`], `RLIMIT_NPROC`, and for worker processes
    /// `RLIMIT_NOFILE`; see [`runyard_exec::limits`]); and the grace period
    /// and lease within [`MAX_DURATION`]. `async` and `auto` modes start
    /// no thread per attempt: their `-j` is not bounded here.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (option, value) in [("grace period", self.grace), ("lease", self.lease)] {
            if value > MAX_DURATION {
                return Err(ConfigError::Duration { option, value });
            }
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

/// `host:pid`, unique among live workers.
fn default_worker_name() -> String {
    format!("{}:{}", runyard_queue::host_name(), std::process::id())
}
