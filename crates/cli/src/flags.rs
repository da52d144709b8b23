//! Flags several commands share (job options, worker-process limits, the
//! required `--queue`, `--color`) and the readers of their values.

use std::time::Duration;

use clap::{Args, ValueEnum};
use runyard::process::ProcessConfig;
use runyard::{Backoff, Mode};

use crate::queues::{QueueUrl, QueueUrlParser};

// When to use colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Auto,
    Always,
    Never,
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

/// Flow-control options given on the command line (`run`, `submit`):
/// defaults for every job, as a job file's `[defaults]` (docs/flow-control.md).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct FlowFlags {
    /// A unique key for the jobs: while a job with it waits, another is not added.
    #[arg(long, value_name = "KEY")]
    pub(crate) unique_key: Option<String>,

    /// With --unique-key: also while a job with the key succeeded this long ago or less.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) unique_for: Option<Duration>,

    /// With --unique-key: `skip` keeps the waiting job (the default); `replace` gives it the new parameters.
    #[arg(long, value_name = "skip|replace", value_parser = parse_on_conflict)]
    pub(crate) on_conflict: Option<runyard_core::OnConflict>,

    /// The jobs' concurrency key: NAME or NAME:VALUE, e.g. tenant:42.
    #[arg(long, value_name = "KEY", value_parser = parse_flow_key)]
    pub(crate) concurrency_key: Option<runyard_core::FlowKey>,

    /// The most attempts at once of jobs with the --concurrency-key's value.
    #[arg(long, value_name = "N", value_parser = parse_at_least_one_u32)]
    pub(crate) key_concurrency: Option<u32>,

    /// The jobs' rate key: NAME or NAME:VALUE, e.g. stripe.
    #[arg(long, value_name = "KEY", value_parser = parse_flow_key)]
    pub(crate) rate_key: Option<runyard_core::FlowKey>,

    /// The most starts of jobs with the --rate-key's value: COUNT/s, COUNT/m or COUNT/h.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) key_rate: Option<runyard_core::Rate>,
}

impl FlowFlags {
    /// Adds the flags to `options`.
    pub(crate) fn add_to(&self, options: runyard::JobOptions) -> runyard::JobOptions {
        runyard::JobOptions {
            unique_key: self.unique_key.clone(),
            unique_for: self.unique_for,
            on_conflict: self.on_conflict,
            concurrency_key: self.concurrency_key.clone(),
            concurrency: self.key_concurrency,
            rate_key: self.rate_key.clone(),
            rate: self.key_rate,
            ..options
        }
    }
}

pub(crate) fn parse_rate(s: &str) -> Result<runyard_core::Rate, String> {
    s.parse()
        .map_err(|e: runyard_core::FlowError| e.to_string())
}

pub(crate) fn parse_flow_key(s: &str) -> Result<runyard_core::FlowKey, String> {
    s.parse()
        .map_err(|e: runyard_core::FlowError| e.to_string())
}

fn parse_on_conflict(s: &str) -> Result<runyard_core::OnConflict, String> {
    s.parse()
        .map_err(|e: runyard_core::FlowError| e.to_string())
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

/// A queue that outlives the process, required.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueueFlag {
    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH.
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser, env = "RUNYARD_QUEUE")]
    pub(crate) queue: QueueUrl,
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

    /// How this binary starts its child processes, with these limits
    /// (`workers` of them if given).
    pub(crate) fn config(&self, workers: Option<usize>) -> Option<ProcessConfig> {
        let exe = std::env::current_exe().ok()?;
        let mut pc = ProcessConfig::new(exe, ["__child"]);
        if let Some(w) = workers {
            pc.workers = w;
        }
        pc.max_jobs_per_worker = self.max_jobs_per_worker;
        pc.max_worker_rss = self.max_worker_rss;
        pc.memory_limit = self.worker_memory_limit;
        Some(pc)
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
