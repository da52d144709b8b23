//! What executors receive and report.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_core::{JobId, JobParams, Outcome, TaskIndex, Timestamp};

/// One attempt to run.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The worker loop's token for this attempt, given back in [`AttemptReport`].
    pub token: u64,
    /// The job.
    pub job: JobId,
    /// The attempt number, from 1.
    pub number: u32,
    /// The task, in the registry the executor was built with.
    pub task: TaskIndex,
    /// The parameters.
    pub params: JobParams,
    /// The per-attempt timeout.
    pub timeout: Option<Duration>,
    /// The JSON of the job's parents object (see `runyard_core::Parents`),
    /// shared; `None` for a job that is after none. The task's context
    /// gives it (`Context::parents_json`).
    pub parents: Option<Arc<str>>,
}

/// The end of one attempt.
#[derive(Debug)]
pub struct AttemptReport {
    /// The [`Attempt::token`].
    pub token: u64,
    /// When it started (or, for an attempt that never started, when it was given up).
    pub started_at: Timestamp,
    /// How long it ran.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// Where executors report.
pub trait Sink: Send + Sync + 'static {
    /// Attempts that ended. Called from executor threads, with batches.
    fn finished(&self, batch: Vec<AttemptReport>);

    /// One attempt that ended, reported on its own (an async attempt's
    /// end): the same as a batch of one, without making one.
    fn finished_one(&self, report: AttemptReport) {
        self.finished(vec![report]);
    }

    /// An attempt started (only called when [`Sink::wants_started`]).
    fn started(&self, token: u64, at: Timestamp) {
        let _ = (token, at);
    }

    /// Whether to call [`Sink::started`]; asked once per executor.
    fn wants_started(&self) -> bool {
        false
    }
}

/// Runs attempts.
///
/// Every attempt given to [`Executor::submit`] is either reported to the
/// sink exactly once, or handed back unstarted by [`Executor::take_unstarted`],
/// [`Executor::cancel`] or [`Executor::cancel_running`].
pub trait Executor: Send + Sync + fmt::Debug {
    /// Starts (or queues) these attempts; takes them all.
    fn submit(&self, batch: Vec<Attempt>);

    /// Gives back every attempt submitted but not yet started.
    fn take_unstarted(&self) -> Vec<Attempt>;

    /// Stops the attempt with this token: a running one is reported
    /// `cancelled`; one that has not started is given back.
    fn cancel(&self, token: u64) -> Option<Attempt>;

    /// Stops every running attempt, reporting each `cancelled`, and gives
    /// back those not started.
    fn cancel_running(&self) -> Vec<Attempt>;

    /// How many attempts are running now: started and not yet reported (a
    /// submitted attempt still waiting for a thread or a worker is not).
    /// For progress displays: read now and then, it costs the attempts
    /// nothing.
    fn running(&self) -> usize;

    /// Stops accepting work and lets idle threads go. Does not wait for
    /// abandoned attempts.
    fn shutdown(&self);
}

/// Converts monotonic instants to wall-clock timestamps from one reading of
/// each clock, so an attempt's start costs one clock read.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    instant: Instant,
    at: Timestamp,
}

impl Epoch {
    /// Now.
    pub fn now() -> Epoch {
        Epoch {
            instant: Instant::now(),
            at: Timestamp::now(),
        }
    }

    /// The wall-clock time of `i`.
    pub fn at(&self, i: Instant) -> Timestamp {
        match i.checked_duration_since(self.instant) {
            Some(d) => self.at + d,
            None => self.at - (self.instant - i),
        }
    }
}
