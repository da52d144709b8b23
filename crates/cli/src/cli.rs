//! The command line as clap reads it: the global flags and the
//! subcommands. Each command's own arguments live in its file under
//! `commands/`; flag groups several commands share, in `flags.rs`.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::flags::Color;
use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "runyard",
    version,
    about = "Run many jobs of named tasks concurrently, with retries, timeouts and a record of every attempt",
    after_help = "Run `runyard run --help` for the job syntax and job files.\n\n\
Exit codes:\n  \
0    every job succeeded\n  \
1    at least one job ended dead or cancelled\n  \
2    usage or input error (nothing ran)\n  \
3    the runner itself failed: a queue or an output it could not reach or write\n  \
130  interrupted"
)]
pub(crate) struct Cli {
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,

    /// Log lines on stderr as text or JSON; RUNYARD_LOG picks them (docs/tracing.md).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run jobs and report.
    Run(commands::run::RunArgs),
    /// Run a command for each input line, in parallel, with retries and timeouts (like xargs -P).
    Exec(commands::exec::ExecArgs),
    /// List the tasks this binary can run.
    List(commands::list::ListArgs),
    /// Describe a task: its parameters, their constraints, its default policy.
    Describe(commands::describe::DescribeArgs),
    /// Show a queue or a recorded run: counts per state and task, live workers, dead jobs and their last error.
    Status(commands::status::StatusArgs),
    /// Put jobs in a shared queue (PostgreSQL, or an SQLite file, created if missing) for workers to run; prints their ids.
    Submit(commands::submit::SubmitArgs),
    /// Run jobs from a shared queue until stopped (SIGTERM or Ctrl-C drains, then exits); waits for a database that is not up yet.
    #[command(name = "worker")]
    Worker(commands::worker::WorkerArgs),
    /// Set, clear or list the concurrency and rate limits stored in a shared queue (docs/flow-control.md).
    Limit(commands::limit::LimitArgs),
    /// Add, list, pause, resume, remove, run or sync the schedules of a shared queue, whose ticks every worker fires once each (docs/schedules.md).
    Schedule(commands::schedule::ScheduleArgs),
    /// Serve a queue's JSON API, Prometheus metrics and health checks over HTTP (docs/api.md).
    Serve(commands::serve_args::ServeArgs),
    /// Pause or resume a task on a shared queue.
    Task(commands::task::TaskArgs),
    /// Give dead or cancelled jobs a fresh set of attempts.
    Retry(commands::retry::RetryArgs),
    /// Cancel jobs: queued ones at once, running ones by asking their worker.
    Cancel(commands::cancel::CancelArgs),
    /// Delete jobs that finished long ago from a PostgreSQL queue or an SQLite state file.
    Prune(commands::prune::PruneArgs),
    /// Create or upgrade a PostgreSQL queue's schema.
    Migrate(commands::migrate::MigrateArgs),
    /// Run a benchmark workload (docs/BENCHMARKS.md says what each measures); prints one JSON line
    /// (`curve`: one per workload and job count).
    Bench(commands::bench::BenchArgs),
    /// The role of a child process of `--mode process` (started by runyard itself).
    #[command(name = "__child", hide = true)]
    Child,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}
