//! How an engine runs: its mode, pool sizes, run-wide job defaults, grace period.

use std::time::Duration;

use runyard_core::{JobOptions, Mode};
use runyard_exec::process::ProcessConfig;
use runyard_queue::TaskName;

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
    /// mode a cap on attempts in flight across every executor.
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
    /// Finish when the queue has no unfinished jobs left and the run is
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

/// The number of cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `host:pid`, unique among live workers.
fn default_worker_name() -> String {
    format!("{}:{}", runyard_queue::host_name(), std::process::id())
}
