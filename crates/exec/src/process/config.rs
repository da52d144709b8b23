//! How a process pool is started and kept: [`ProcessConfig`].

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// How a pool of child processes is started and kept. (The CLI's flags
/// keep the older word: `--max-jobs-per-worker`, `--max-worker-rss` and
/// `--worker-memory-limit` are about these child processes.)
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The executable to run as a child process (usually this one).
    pub program: PathBuf,
    /// Its arguments (the CLI adds a hidden subcommand; a library binary
    /// that calls `enter_if_child` first thing needs none).
    pub args: Vec<OsString>,
    /// How many child processes the pool keeps, one per supervisor.
    pub workers: usize,
    /// The most attempts sent to a child process at once.
    pub batch: usize,
    /// Replace a child process after it has run this many attempts.
    pub max_jobs_per_worker: Option<u64>,
    /// Replace a child process whose resident set grows above this many
    /// bytes.
    pub max_worker_rss: Option<u64>,
    /// Limit each child process's address space to this many bytes
    /// (RLIMIT_AS): an allocation past it fails, and the attempt with it.
    pub memory_limit: Option<u64>,
    /// After SIGTERM, how long a child process has before SIGKILL.
    pub kill_grace: Duration,
    /// How long a new child process may take to greet the engine.
    pub startup_timeout: Duration,
}

impl ProcessConfig {
    /// Child processes that run `program args`, with defaults: one per
    /// core, batches of up to 128, a grace of one second.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> ProcessConfig {
        ProcessConfig {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch: 128,
            max_jobs_per_worker: None,
            max_worker_rss: None,
            memory_limit: None,
            kill_grace: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(30),
        }
    }

    /// Child processes that run this executable with no arguments: for a
    /// binary that calls `enter_if_child` first thing in `main`.
    pub fn current_exe() -> io::Result<ProcessConfig> {
        Ok(ProcessConfig::new(
            std::env::current_exe()?,
            Vec::<OsString>::new(),
        ))
    }
}
