//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use runyard::{Backoff, Mode};

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

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run jobs and report.
    Run(RunArgs),
    /// Run a command for each input line, in parallel, with retries and timeouts (like xargs -P).
    Exec(crate::exec::ExecArgs),
    /// List the tasks this binary can run.
    List(ListArgs),
    /// Describe a task: its parameters, their constraints, its default policy.
    Describe(DescribeArgs),
    /// Show a queue or a recorded run: counts per state and task, live workers, dead jobs and their last error.
    Status(StatusArgs),
    /// Put jobs in a shared queue (PostgreSQL, or an SQLite file, created if missing) for workers to run; prints their ids.
    Submit(SubmitArgs),
    /// Run jobs from a shared queue until stopped (SIGTERM or Ctrl-C drains, then exits); waits for a database that is not up yet.
    #[command(name = "worker")]
    QueueWorker(WorkerArgs),
    /// Give dead or cancelled jobs a fresh set of attempts.
    Retry(RetryArgs),
    /// Cancel jobs: queued ones at once, running ones by asking their worker.
    Cancel(CancelArgs),
    /// Delete jobs that finished long ago from a PostgreSQL queue.
    Prune(PruneArgs),
    /// Create or upgrade a PostgreSQL queue's schema.
    Migrate(MigrateArgs),
    /// Run a benchmark workload (docs/BENCHMARKS.md says what each measures); prints one JSON line.
    Bench(crate::bench::BenchArgs),
    /// The worker role of `--mode process` (started by runyard itself).
    #[command(name = "__child", hide = true)]
    Worker,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Job options given on the command line: defaults for every job of the run.
#[derive(Debug, Clone, Args)]
pub(crate) struct JobFlags {
    /// Where attempts run: auto, thread, process or async.
    #[arg(long, value_parser = parse_mode)]
    pub(crate) mode: Option<Mode>,

    /// Attempts per job, at least 1.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one_u32)]
    pub(crate) max_attempts: Option<u32>,

    #[arg(
        long,
        value_name = "SPEC",
        value_parser = parse_backoff,
        help = "Wait between attempts: none, fixed:DELAY, or exponential[:BASE][,cap=DELAY][,factor=N][,jitter=full|equal|none]"
    )]
    pub(crate) backoff: Option<Backoff>,

    /// The longest one attempt may run, e.g. 250ms, 30s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) timeout: Option<Duration>,
}

impl JobFlags {
    /// The flags as job options (each unset one left to the job, its file
    /// or its task).
    pub(crate) fn options(&self) -> runyard::JobOptions {
        runyard::JobOptions {
            mode: self.mode,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout: self.timeout,
            ..runyard::JobOptions::default()
        }
    }
}

/// Jobs named on the command line and in job files.
#[derive(Debug, Args)]
pub(crate) struct JobInput {
    #[arg(
        value_name = "JOB",
        help = "Jobs: TASK[:KEY=VALUE[,KEY=VALUE...]][*COUNT], e.g. `cpu`, `cpu:n=5000`, `sleep:duration=250ms*4`"
    )]
    pub(crate) jobs: Vec<String>,

    /// A TOML job file (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

/// How worker processes (`--mode process`, isolated tasks) are kept. For
/// a run in which no job runs in a worker process these do nothing, and
/// `run` refuses them.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ProcessFlags {
    /// Replace a worker process after it has run N attempts (worker processes only).
    #[arg(long, value_name = "N", value_parser = parse_at_least_one)]
    pub(crate) max_jobs_per_worker: Option<u64>,

    /// Replace a worker process whose resident memory grows above SIZE (e.g. 512M, 2G; worker processes only).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_worker_rss: Option<u64>,

    /// Limit each worker process's memory to SIZE (its address space): an
    /// allocation past it fails the attempt, not the run (worker processes only).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) worker_memory_limit: Option<u64>,
}

#[derive(Debug, Args)]
#[command(after_long_help = crate::jobs::SYNTAX_HELP)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) input: JobInput,

    #[command(flatten)]
    pub(crate) flags: JobFlags,

    #[command(flatten)]
    pub(crate) process: ProcessFlags,

    /// Attempts running at once (in thread mode, the pool's size); default: the cores.
    ///
    /// In thread mode (a thread per attempt) and process mode (a worker
    /// process per attempt) at most 4096, and what the process's limits
    /// leave: RLIMIT_NPROC (`ulimit -u`, threads and processes of the user,
    /// 3 per worker process) and, for worker processes, RLIMIT_NOFILE
    /// (`ulimit -n`, 10 descriptors each); more is refused before anything
    /// runs. In async and auto modes it caps the attempts in flight (async
    /// mode's default is 10,000).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_at_least_one)]
    pub(crate) concurrency: Option<u64>,

    /// After Ctrl-C, how long running attempts may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) grace: Duration,

    /// Write the full report as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Write every job state transition as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) events: Option<PathBuf>,

    /// Print only errors (no progress, no job lines, no summary).
    #[arg(short, long)]
    pub(crate) quiet: bool,

    #[command(flatten)]
    pub(crate) store: StoreFlags,

    /// Resume the run recorded in the state file: run its unfinished jobs
    /// (an interrupted attempt counts as one), then report on every job.
    #[arg(long, requires = "store")]
    pub(crate) resume: bool,

    /// With --resume: give dead and cancelled jobs a fresh set of attempts too.
    #[arg(long, requires = "resume")]
    pub(crate) retry_dead: bool,
}

/// Where a run is recorded.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "store", multiple = false)]
pub(crate) struct StoreFlags {
    /// Record the run in this SQLite file, so that it survives a crash and
    /// can be resumed (the same as --queue sqlite://PATH).
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,

    /// The queue: memory (the default) or sqlite://PATH. (A PostgreSQL
    /// queue is filled by `runyard submit` and drained by `runyard worker`.)
    #[arg(long, value_name = "URL", value_parser = crate::state::QueueUrlParser)]
    pub(crate) queue: Option<crate::state::QueueUrl>,
}

impl StoreFlags {
    /// The queue named, if any.
    pub(crate) fn url(&self) -> Option<crate::state::QueueUrl> {
        queue_url(&self.state, &self.queue)
    }
}

/// The queue or recorded run that `status` shows.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "store", multiple = false)]
pub(crate) struct ShownStore {
    /// Show the run recorded in this SQLite file (the same as --queue sqlite://PATH).
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,

    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH
    /// (default: $RUNYARD_QUEUE).
    #[arg(long, value_name = "URL", value_parser = crate::state::QueueUrlParser)]
    pub(crate) queue: Option<crate::state::QueueUrl>,
}

impl ShownStore {
    /// The queue named, if any.
    pub(crate) fn url(&self) -> Option<crate::state::QueueUrl> {
        queue_url(&self.state, &self.queue)
    }
}

/// `--state PATH` is `--queue sqlite://PATH`.
fn queue_url(
    state: &Option<PathBuf>,
    queue: &Option<crate::state::QueueUrl>,
) -> Option<crate::state::QueueUrl> {
    match (state, queue) {
        (Some(p), _) => Some(crate::state::QueueUrl::Sqlite(p.clone())),
        (None, q) => q.clone(),
    }
}

/// A queue that outlives the process, required.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueueFlag {
    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH.
    #[arg(long, value_name = "URL", value_parser = crate::state::QueueUrlParser, env = "RUNYARD_QUEUE")]
    pub(crate) queue: crate::state::QueueUrl,
}

#[derive(Debug, Args)]
#[command(after_long_help = crate::jobs::SYNTAX_HELP)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    #[command(flatten)]
    pub(crate) input: JobInput,

    #[command(flatten)]
    pub(crate) flags: JobFlags,

    /// Wait until every submitted job has ended, then report on them (exit 1 if any did not succeed).
    #[arg(long)]
    pub(crate) wait: bool,

    /// With --wait: print only errors.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// Where attempts run unless a job says otherwise: auto, thread, process or async.
    #[arg(long, value_parser = parse_mode)]
    pub(crate) mode: Option<Mode>,

    /// Attempts running at once, bounded in thread and process modes by the
    /// process's limits (see `runyard run --help`); default: the cores.
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_at_least_one)]
    pub(crate) concurrency: Option<u64>,

    /// Run only jobs of these tasks (comma-separated); others stay for other workers.
    #[arg(long, value_name = "TASK,...")]
    pub(crate) tasks: Option<String>,

    /// This worker's name in the queue (default HOST:PID). A name held by a
    /// live worker is refused; one whose holder died is taken over once the
    /// holder's heartbeat has lapsed for its lease.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// How long a claim is held without a heartbeat, at least 1s (heartbeats
    /// go every third of it): a worker that dies has its jobs run elsewhere,
    /// and its name freed, after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_lease)]
    pub(crate) lease: Duration,

    /// On SIGTERM or Ctrl-C, how long running attempts may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub(crate) grace: Duration,

    #[command(flatten)]
    pub(crate) process: ProcessFlags,

    /// Write every job state transition as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) events: Option<PathBuf>,

    /// Print only errors (no line per finished job).
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the jobs were queued again, or there was nothing to do (a job neither dead nor cancelled); 2 an id names no job (nothing is retried then)."
)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The jobs.
    #[arg(value_name = "ID")]
    pub(crate) ids: Vec<u64>,

    /// Every dead job.
    #[arg(long)]
    pub(crate) dead: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the jobs were cancelled (or their workers asked to stop them), or there was nothing to do (a job that had ended); 2 an id names no job (nothing is cancelled then)."
)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// The jobs.
    #[arg(value_name = "ID", required = true)]
    pub(crate) ids: Vec<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,

    /// Delete jobs that finished longer ago than this, e.g. 7d, 12h.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) older_than: Duration,

    /// Delete dead jobs too (kept by default, for inspection and retry).
    #[arg(long)]
    pub(crate) dead: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) queue: QueueFlag,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) store: ShownStore,

    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,

    /// Dead jobs to list, at most.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) dead: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The task.
    pub(crate) task: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|e: runyard::ModeError| e.to_string())
}

pub(crate) fn parse_backoff(s: &str) -> Result<Backoff, String> {
    s.parse::<Backoff>().map_err(|e| e.to_string())
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    runyard::duration::parse_positive_duration(s).map_err(|e| e.to_string())
}

/// The shortest lease a worker may hold: heartbeats renew it every third
/// of it, and each must reach the queue in time.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(1);

pub(crate) fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = parse_positive_duration(s)?;
    if d < MIN_LEASE {
        return Err(format!(
            "a lease of {} is too short: it must be at least {} (its heartbeats go every third \
             of it; a shorter one would let the worker's own jobs be rescued from under it), \
             e.g. --lease 10s",
            runyard::duration::format_duration(d),
            runyard::duration::format_duration(MIN_LEASE)
        ));
    }
    Ok(d)
}

pub(crate) fn parse_at_least_one(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number (expected 1 or more)")),
    }
}

pub(crate) fn parse_at_least_one_u32(s: &str) -> Result<u32, String> {
    let expected = || format!("expected a whole number from 1 to {}", u32::MAX);
    match s.parse::<u32>() {
        Ok(0) => Err(format!("must be at least 1 ({})", expected())),
        Ok(n) => Ok(n),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("{s} is too large ({})", expected()))
        }
        Err(_) => Err(format!("`{s}` is not a whole number ({})", expected())),
    }
}

impl ProcessFlags {
    /// No limits, no recycling.
    pub(crate) fn none() -> ProcessFlags {
        ProcessFlags::default()
    }
}

/// Reads a size: a number of bytes, or with a unit K, M, G (powers of 1024;
/// `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB` too).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (expected e.g. 512M or 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (expected K, M or G)"
            ))
        }
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("`{s}` must be a size above zero")),
        Some(b) => Ok(b),
    }
}
