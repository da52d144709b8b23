//! Workers as a queue knows them: [`WorkerInfo`] (as one registers),
//! [`LiveWorker`] (as one is listed), [`NameTaken`] (a refused name),
//! [`PublishedTask`] (a task it runs, as it publishes it).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{JobSettings, Rate, TaskName, Timestamp};

/// A worker process, as it registers with a queue (see
/// [`Queue::register_worker`](crate::Queue::register_worker)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its name: the one its leases are held under, unique among live workers.
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How long after its last heartbeat it counts as gone: its lease.
    pub lease: Duration,
}

impl WorkerInfo {
    /// This process, under `name`, heartbeating within `lease`.
    pub fn this_process(name: impl Into<String>, lease: Duration) -> WorkerInfo {
        WorkerInfo {
            name: name.into(),
            host: host_name(),
            pid: std::process::id(),
            lease,
        }
    }
}

/// A task a worker runs, with what its jobs get when a submit names only
/// the task: the settings the worker's engine gives such a job, and the
/// task's limits across the queue (see
/// [`Queue::publish_tasks`](crate::Queue::publish_tasks)).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedTask {
    /// The task.
    pub task: TaskName,
    /// The settings of a job that gives no option of its own.
    pub settings: Arc<JobSettings>,
    /// The most attempts of it at once across the queue.
    pub concurrency: Option<u32>,
    /// The most starts of it per window across the queue.
    pub rate: Option<Rate>,
}

/// This machine's host name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A registered worker whose heartbeat has not lapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorker {
    /// The worker, as it registered.
    pub worker: WorkerInfo,
    /// When it registered.
    pub started_at: Timestamp,
    /// Its last heartbeat (registering counts as the first).
    pub last_heartbeat: Timestamp,
    /// Jobs it holds leases on now.
    pub leases: u64,
}

impl LiveWorker {
    /// Whether its heartbeat has lapsed at `now`: it is gone.
    pub fn lapsed(&self, now: Timestamp) -> bool {
        self.last_heartbeat.saturating_add(self.worker.lease) < now
    }
}

/// A refused registration: a live worker holds the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTaken(pub LiveWorker);

impl fmt::Display for NameTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.0.worker;
        write!(
            f,
            "the worker name `{}` is held by a live worker: pid {} on {}, since {} \
             (its last heartbeat at {}; a worker that died frees its name once its \
             heartbeat has lapsed for its lease of {})",
            w.name,
            w.pid,
            w.host,
            self.0.started_at,
            self.0.last_heartbeat,
            runyard_core::format_duration(w.lease)
        )
    }
}
