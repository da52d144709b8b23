//! Flow control: the [`FlowControl`] capability (limits stored in the
//! queue, pausing tasks, what holds a job back), which a queue returns from
//! [`Queue::as_flow`](crate::Queue::as_flow) when it keeps
//! [`Capability::Limits`](crate::Capability::Limits).
//!
//! The rules every backend keeps are in `docs/backends.md` §8; the
//! conformance suite holds them.

use runyard_core::{Hold, JobId, LimitTarget, Rate, StoredLimit, TaskName};

use crate::error::QueueError;

/// A change to a stored limit (`runyard limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitChange {
    /// What it limits.
    pub target: LimitTarget,
    /// A new concurrency limit, if given.
    pub concurrency: Option<u32>,
    /// A new rate, if given.
    pub rate: Option<Rate>,
    /// Removes the stored limit (both parts) before applying the others.
    pub clear: bool,
}

/// Which tasks are paused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paused {
    /// Every task is paused.
    pub all: bool,
    /// These tasks are paused, by name.
    pub tasks: Vec<String>,
}

impl Paused {
    /// Whether jobs of `task` may not start.
    pub fn holds(&self, task: &str) -> bool {
        self.all || self.tasks.iter().any(|t| t == task)
    }
}

/// What holds the jobs that are due and not running: how many jobs each
/// reason holds (a job held by several is counted under the first of:
/// paused, concurrency, rate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    /// Each reason with the number of due jobs it holds, largest first.
    pub held: Vec<(Hold, u64)>,
}

/// Flow control on a queue that keeps limits.
pub trait FlowControl: Send + Sync {
    /// Changes a stored limit; returns it as it now is (`None` once
    /// cleared). In force for the next claim of every worker.
    fn set_limit(&self, change: &LimitChange) -> Result<Option<StoredLimit>, QueueError>;

    /// The stored limits, by target.
    fn limits(&self) -> Result<Vec<StoredLimit>, QueueError>;

    /// Pauses `task` (every task when `None`): from the end of this call
    /// no claim takes a job of it. Returns the claims of it that had not
    /// started: their workers give them back (see
    /// [`HeartbeatReply::paused`](crate::HeartbeatReply::paused)); a caller
    /// that must know that nothing more starts waits until
    /// [`FlowControl::unstarted`] is empty.
    fn pause(&self, task: Option<&TaskName>) -> Result<Vec<JobId>, QueueError>;

    /// Resumes `task` (every task, and the pause of all, when `None`).
    /// Returns whether anything was paused.
    fn resume(&self, task: Option<&TaskName>) -> Result<bool, QueueError>;

    /// Which tasks are paused.
    fn paused(&self) -> Result<Paused, QueueError>;

    /// The jobs of paused tasks that are claimed and not started.
    fn unstarted(&self) -> Result<Vec<JobId>, QueueError>;

    /// What holds the due jobs that are not running.
    fn holds(&self) -> Result<Holds, QueueError>;

    /// What holds one job, if it is due and held (or blocked).
    fn hold(&self, id: JobId) -> Result<Option<Hold>, QueueError>;
}
