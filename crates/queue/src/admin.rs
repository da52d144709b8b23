//! Administration: the [`Admin`] capability (cancel, retry), which a queue
//! returns from [`Queue::as_admin`](crate::Queue::as_admin) when it has it.

use runyard_core::{JobId, JobState};

use crate::error::QueueError;

/// What `cancel` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It was queued or scheduled and is now cancelled.
    Cancelled,
    /// It is running; its worker is asked to stop it.
    Requested,
    /// It had already finished (in this state).
    AlreadyFinished(JobState),
    /// No such job.
    NotFound,
}

/// Changing jobs by hand: what `runyard cancel` and `runyard retry` do.
pub trait Admin: Send + Sync {
    /// Cancels jobs: queued and scheduled ones at once, running ones by
    /// asking their worker (see
    /// [`HeartbeatReply::cancel_requested`](crate::HeartbeatReply::cancel_requested)).
    fn cancel(&self, ids: &[JobId]) -> Result<Vec<CancelResult>, QueueError>;

    /// Cancels every queued and scheduled job; returns their ids.
    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError>;

    /// Puts a dead or cancelled job back to `queued` with a fresh set of
    /// attempts (its earlier attempts stay in its record).
    fn retry(&self, id: JobId) -> Result<bool, QueueError>;
}
