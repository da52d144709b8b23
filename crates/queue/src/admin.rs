//! Administration: the [`Admin`] capability (cancel, retry, delete, and
//! the record of operators' actions), which a queue returns from
//! [`Queue::as_admin`](crate::Queue::as_admin) when it has it.

use runyard_core::{JobId, JobState};

use crate::error::{QueueError, QueueErrorKind};
use crate::events::{AdminEvent, NewEvent};
use crate::queue::Cascade;

/// What `delete` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// It was removed, with its attempts.
    Deleted,
    /// It has not finished (it is in this state): only succeeded, dead or
    /// cancelled jobs are deleted.
    NotFinished(JobState),
    /// A blocked job is after it (this one): it waits on its record.
    Awaited(JobId),
    /// No such job.
    NotFound,
}

fn unsupported(what: &str) -> QueueError {
    QueueError::new(
        QueueErrorKind::Unsupported,
        format!("this queue does not keep {what}"),
    )
}

/// What `cancel` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It was queued, scheduled or blocked and is now cancelled.
    Cancelled,
    /// It is running; its worker is asked to stop it.
    Requested,
    /// It had already finished (in this state).
    AlreadyFinished(JobState),
    /// No such job.
    NotFound,
}

/// What [`Admin::cancel`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancelled {
    /// One result per id asked for, in order.
    pub results: Vec<CancelResult>,
    /// The blocked dependents of the jobs cancelled at once, cancelled
    /// with them (those of a running job follow when its worker stops it).
    pub cascade: Cascade,
}

/// Changing jobs by hand: what `runyard cancel` and `runyard retry` do.
pub trait Admin: Send + Sync {
    /// Cancels jobs: queued, scheduled and blocked ones at once (with their
    /// blocked dependents, transitively, each naming its cause), running
    /// ones by asking their worker (see
    /// [`HeartbeatReply::cancel_requested`](crate::HeartbeatReply::cancel_requested)).
    fn cancel(&self, ids: &[JobId]) -> Result<Cancelled, QueueError>;

    /// Cancels every queued, scheduled and blocked job; returns their ids.
    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError>;

    /// Puts a dead or cancelled job back to `queued` (or `blocked`, for a
    /// job whose parents have not all ended as it needs) with a fresh set
    /// of attempts (its earlier attempts stay in its record), and gives
    /// the jobs its end had cancelled, transitively, back their `blocked`
    /// state (in [`Cascade::reblocked`], with the `run_if = always` jobs
    /// after them that were released and not yet claimed, which wait
    /// again). `None` when the job is not dead or cancelled, does not
    /// exist, or a parent it needs to succeed is still dead or cancelled.
    fn retry(&self, id: JobId) -> Result<Option<Cascade>, QueueError>;

    /// The ids of the jobs of `id`'s workflow: every job linked to it by
    /// `after`, either way, transitively, itself included, by id. Empty
    /// when there is no such job.
    fn workflow(&self, id: JobId) -> Result<Vec<JobId>, QueueError>;

    /// Deletes finished jobs (succeeded, dead, cancelled) with their
    /// attempts and their links to the jobs after them, each unless a
    /// blocked job is after it. One result per id, in order. The default
    /// deletes nothing: the queue does not offer it.
    fn delete(&self, ids: &[JobId]) -> Result<Vec<Deleted>, QueueError> {
        let _ = ids;
        Err(unsupported("deleting jobs"))
    }

    /// Records an operator's action, on the queue's clock; returns it as
    /// stored. The default records nothing: the queue keeps no events.
    fn record_event(&self, event: &NewEvent) -> Result<AdminEvent, QueueError> {
        let _ = event;
        Err(unsupported("a record of actions"))
    }

    /// The recorded actions, newest first: at most `limit` of those with
    /// an id below `before` (all when `None`).
    fn events(&self, before: Option<u64>, limit: usize) -> Result<Vec<AdminEvent>, QueueError> {
        let _ = (before, limit);
        Err(unsupported("a record of actions"))
    }
}
