//! `runyard worker`'s flags, as clap reads them, and the defaults of those
//! that a config file or a variable may also set (merged by
//! `worker_config.rs` before the worker plans).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use runyard::Mode;

use crate::flags::{
    parse_at_least_one, parse_lease, parse_mode, parse_positive_duration, ProcessFlags,
};
use crate::queues::{QueueUrl, QueueUrlParser};

use super::serve_args::parse_listen;

#[derive(Debug, Args)]
#[command(
    after_help = "With --listen ADDR, the worker serves /metrics (its own counters and \
histograms: docs/metrics.md), /healthz and /readyz on ADDR (port 0: any free port; the address \
bound is said on standard error). A token (--token-file FILE, or $RUNYARD_SERVE_TOKEN) is needed \
to listen on an address other than a loopback one; with a token, /metrics requests must carry \
`Authorization: Bearer TOKEN`."
)]
pub(crate) struct WorkerArgs {
    /// Settings from this TOML file, its keys the long flags' names with `_`
    /// for `-` (queue, mode, jobs, tasks, lease, listen, ...); each is also a
    /// $RUNYARD_<KEY> variable. A flag beats the variable, which beats the
    /// file (docs/worker-config.md).
    #[arg(long, value_name = "FILE", env = "RUNYARD_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// The queue: postgres://USER@HOST/DB[?schema=NAME], or sqlite://PATH.
    #[arg(long, value_name = "URL", value_parser = QueueUrlParser, env = "RUNYARD_QUEUE")]
    pub(crate) queue: Option<QueueUrl>,

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
    /// and its name freed, after this long [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_lease)]
    pub(crate) lease: Option<Duration>,

    /// On SIGTERM or Ctrl-C, how long running attempts may take to finish
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) grace: Option<Duration>,

    #[command(flatten)]
    pub(crate) process: ProcessFlags,

    /// Write every job state transition as JSON lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) events: Option<PathBuf>,

    /// Fire no schedules: leave their ticks to the queue's other workers
    /// (by default every worker fires the due ticks; each makes one job).
    #[arg(long)]
    pub(crate) no_schedules: bool,

    /// Print only errors (no line per finished job).
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Serve this worker's metrics (/metrics) and health (/healthz, /readyz)
    /// on ADDR, e.g. 127.0.0.1:9464 (port 0: any free port; the address
    /// bound is said on standard error, even with --quiet).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub(crate) listen: Option<SocketAddr>,

    /// A file holding the token every /metrics request must carry (its
    /// first line; also $RUNYARD_SERVE_TOKEN); needed to --listen on an
    /// address other than a loopback one.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,

    /// Where `token_file` came from, as messages name it (set when the
    /// settings are merged).
    #[arg(skip)]
    pub(crate) token_from: Option<String>,
}

impl WorkerArgs {
    /// The queue (set once the settings are merged).
    pub(crate) fn queue(&self) -> &QueueUrl {
        self.queue.as_ref().expect("merged settings have a queue")
    }

    pub(crate) fn lease(&self) -> Duration {
        self.lease.unwrap_or(DEFAULT_LEASE)
    }

    pub(crate) fn grace(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }
}

/// The lease when none is given.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The grace period when none is given.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(30);
