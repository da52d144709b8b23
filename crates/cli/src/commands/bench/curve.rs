//! `runyard bench curve` (B10 of docs/BENCHMARKS.md): cost as the work
//! grows. B1, B7 (on each queue given, SQLite always) and B6 at each of a
//! list of job counts, each (workload, count) in a `runyard bench` process
//! of its own, so that each one's peak RSS is its own and not the largest
//! of the runs before it. One JSON line per (workload, count), printed as
//! each ends; `scripts/plot_bench.py` turns them into a table and a plot.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::exit::{RunnerFailure, UsageError};
use crate::queues::{parse_queue_url, QueueUrl};

#[derive(Debug, Args)]
pub(super) struct CurveArgs {
    /// The job counts, comma-separated: whole numbers (10000) or powers
    /// written 1e4, 1e5, 2.5e5.
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        default_values_t = [10_000u64, 100_000, 1_000_000],
        value_parser = parse_count
    )]
    sizes: Vec<u64>,
    /// A queue for B7 beside the scratch SQLite file (repeat for more):
    /// postgres://... (a scratch schema, as for `bench queue`), or
    /// sqlite://PATH instead of a file in a temporary directory.
    #[arg(long = "queue", value_name = "URL", value_parser = parse_queue_url)]
    queues: Vec<QueueUrl>,
    /// Which workloads, comma-separated.
    #[arg(
        long,
        value_name = "W,W,..",
        value_delimiter = ',',
        default_values_t = [Curved::NoopThread, Curved::Queue, Curved::Shell]
    )]
    workloads: Vec<Curved>,
    /// The largest count of `shell` jobs (each one a process: 10^6 of them
    /// take a quarter of an hour); larger counts skip the shell workload.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = parse_count)]
    shell_max: u64,
    /// Rounds: each runs every (workload, count) once, in the same order,
    /// so that ratios can be taken within a round.
    #[arg(long, default_value_t = 1, value_parser = crate::flags::parse_at_least_one_u32)]
    runs: u32,
}

/// A workload the curve can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Curved {
    /// B1: `bench noop-thread`.
    NoopThread,
    /// B7: `bench queue`, on each queue.
    Queue,
    /// B6: `bench shell`.
    Shell,
}

impl std::fmt::Display for Curved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Curved::NoopThread => "noop-thread",
            Curved::Queue => "queue",
            Curved::Shell => "shell",
        })
    }
}

/// Reads a job count: `10000`, `1e4` or `2.5e5`, at least 1.
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a job count (expected e.g. 10000 or 1e4)");
    let t = s.trim();
    let n = match t.split_once(['e', 'E']) {
        None => t.parse::<u64>().map_err(|_| bad())?,
        Some((m, e)) => {
            let e: u32 = e.parse().map_err(|_| bad())?;
            let (whole, frac) = m.split_once('.').unwrap_or((m, ""));
            if whole.is_empty()
                || !whole.bytes().all(|b| b.is_ascii_digit())
                || !frac.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            // `m` times 10^e, exactly: the digits, shifted by what is left
            // of the exponent after the fraction's digits.
            let digits: u64 = format!("{whole}{frac}").parse().map_err(|_| bad())?;
            let shift = e.checked_sub(frac.len() as u32).ok_or_else(|| {
                format!("`{s}` is not a whole number of jobs (expected e.g. 10000 or 1e4)")
            })?;
            10u64
                .checked_pow(shift)
                .and_then(|p| digits.checked_mul(p))
                .ok_or_else(|| format!("`{s}` is too many jobs"))?
        }
    };
    if n == 0 {
        return Err(format!("`{s}`: a count must be at least 1"));
    }
    Ok(n)
}

/// One `runyard bench` process of the curve.
struct Step {
    workload: Curved,
    /// For B7: the queue's URL as given, and the backend's name.
    queue: Option<(String, &'static str)>,
    n: u64,
}

impl Step {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "bench".to_string(),
            self.workload.to_string(),
            "--n".into(),
            self.n.to_string(),
        ];
        if let Some((url, _)) = &self.queue {
            a.push("--queue".into());
            a.push(url.clone());
        }
        a
    }

    /// What the step is, without the queue's URL (it may hold a password).
    fn name(&self) -> String {
        match &self.queue {
            Some((_, backend)) => {
                format!("`bench {} --n {} --queue {backend}`", self.workload, self.n)
            }
            None => format!("`bench {} --n {}`", self.workload, self.n),
        }
    }

    /// What the line's `tasks_per_s` is the rate of.
    fn rate_of(&self) -> &'static str {
        match self.workload {
            Curved::Queue => "drain: N queued jobs run by one engine",
            Curved::NoopThread | Curved::Shell => {
                "N jobs submitted one by one and run, first submit to last end"
            }
        }
    }
}

/// The queue's URL as a child's `--queue` takes it, and its backend's name.
fn queue_arg(q: &QueueUrl) -> (String, &'static str) {
    match q {
        QueueUrl::Memory => ("memory".into(), "memory"),
        QueueUrl::Sqlite(p) => (format!("sqlite://{}", p.display()), "sqlite"),
        QueueUrl::Postgres(u) => (u.clone(), "postgres"),
    }
}

/// The load averages of the machine (1, 5 and 15 minutes), if known.
fn load_average() -> Option<Vec<f64>> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    s.split_whitespace()
        .take(3)
        .map(|x| x.parse().ok())
        .collect()
}

pub(super) fn main(args: CurveArgs) -> anyhow::Result<()> {
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut workloads: Vec<Curved> = Vec::new();
    for w in &args.workloads {
        if !workloads.contains(w) {
            workloads.push(*w);
        }
    }
    // A scratch SQLite file unless one was given; removed with the directory.
    let scratch = tempfile::Builder::new().prefix("runyard-curve").tempdir()?;
    let mut queues: Vec<(String, &'static str)> = Vec::new();
    if !args.queues.iter().any(|q| matches!(q, QueueUrl::Sqlite(_))) {
        let path: PathBuf = scratch.path().join("b7.db");
        queues.push(queue_arg(&QueueUrl::Sqlite(path)));
    }
    queues.extend(args.queues.iter().map(queue_arg));

    let mut steps = Vec::new();
    for &n in &sizes {
        for &w in &workloads {
            match w {
                Curved::Queue => steps.extend(queues.iter().map(|q| Step {
                    workload: w,
                    queue: Some(q.clone()),
                    n,
                })),
                Curved::Shell if n > args.shell_max => {}
                _ => steps.push(Step {
                    workload: w,
                    queue: None,
                    n,
                }),
            }
        }
    }
    if steps.is_empty() {
        return Err(UsageError(format!(
            "nothing to run: every count is above --shell-max {} and only `shell` was asked for",
            args.shell_max
        ))
        .into());
    }
    let exe = std::env::current_exe()
        .map_err(|e| RunnerFailure(format!("bench curve: cannot find this program: {e}")))?;
    let total = steps.len() * args.runs as usize;
    let mut done = 0;
    for run in 1..=args.runs {
        for step in &steps {
            done += 1;
            errln!("bench curve: {} ({done}/{total}, round {run})", step.name());
            let load = load_average();
            let out = Command::new(&exe)
                .args(step.args())
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| RunnerFailure(format!("bench curve: cannot start {exe:?}: {e}")))?;
            if !out.status.success() {
                return Err(RunnerFailure(format!(
                    "bench curve: {} failed ({}); its error is above",
                    step.name(),
                    out.status
                ))
                .into());
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
            let mut line: serde_json::Map<String, Value> = last
                .and_then(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| {
                    RunnerFailure(format!(
                        "bench curve: {} printed no JSON line at the end",
                        step.name()
                    ))
                })?;
            line.insert("curve_workload".into(), json!(step.workload.to_string()));
            line.insert("size".into(), json!(step.n));
            line.insert("run".into(), json!(run));
            line.insert("rate_of".into(), json!(step.rate_of()));
            line.insert(
                "peak_rss_of".into(),
                json!("the benchmark's own process (VmHWM), one per line; not a database server's"),
            );
            line.insert("loadavg".into(), json!(load));
            outln!("{}", Value::Object(line))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_are_whole_numbers_or_powers_of_ten() {
        assert_eq!(parse_count("10000"), Ok(10_000));
        assert_eq!(parse_count("1e4"), Ok(10_000));
        assert_eq!(parse_count("1E6"), Ok(1_000_000));
        assert_eq!(parse_count("2.5e5"), Ok(250_000));
        assert_eq!(parse_count("100"), Ok(100));
        for bad in [
            "", "x", "1e", "e4", "1.5", "-1e4", "1e-2", "1.5e0", "0", "0e3", "1e30",
        ] {
            assert!(parse_count(bad).is_err(), "{bad:?} was taken");
        }
        assert!(parse_count("x").unwrap_err().contains("1e4"));
        assert!(parse_count("1e30").unwrap_err().contains("too many"));
    }
}
