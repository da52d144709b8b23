//! What the conformance cases share: the queue factory, a fresh queue on
//! a manual clock, jobs and records to test with.

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    AttemptError, AttemptRecord, Backoff, JobId, JobParams, JobSettings, JobState, JobView, Mode,
    OutcomeKind, Output,
};

use crate::{Claimed, Clock, Completion, Enqueued, Lease, ManualClock, NewJob, Queue, Verdict};

/// Makes a fresh, empty queue reading the given clock.
pub type Factory<'a> = &'a (dyn Fn(Arc<dyn Clock>) -> Box<dyn Queue> + Sync);

pub(crate) const LEASE: Duration = Duration::from_secs(30);

pub(crate) fn fresh(make: Factory<'_>) -> (Arc<ManualClock>, Box<dyn Queue>) {
    let clock = Arc::new(ManualClock::default());
    let q = make(clock.clone());
    (clock, q)
}

pub fn settings(max_attempts: u32, priority: i32) -> Arc<JobSettings> {
    Arc::new(JobSettings {
        max_attempts,
        backoff: Backoff::Fixed(Duration::from_secs(1)),
        timeout: Some(Duration::from_millis(1500)),
        priority,
        mode: Mode::Auto,
        isolate: false,
    })
}

pub fn job(task: &str, max_attempts: u32, priority: i32) -> NewJob {
    NewJob::new(
        task.into(),
        JobParams::empty(),
        settings(max_attempts, priority),
    )
}

pub(crate) fn ids(e: &[Enqueued]) -> Vec<JobId> {
    e.iter().map(|e| e.id()).collect()
}

pub fn record(q: &dyn Queue, lease: Lease, outcome: OutcomeKind) -> AttemptRecord {
    let err = (outcome != OutcomeKind::Succeeded).then(|| AttemptError {
        message: format!("{outcome} on attempt {}", lease.attempt),
        permanent: false,
        detail: None,
    });
    AttemptRecord::new(
        lease.attempt,
        outcome,
        q.now(),
        Duration::from_millis(2),
        Duration::from_millis(1),
        err,
    )
}

pub(crate) fn succeed(q: &dyn Queue, worker: &str, c: &Claimed) -> Result<(), crate::Fenced> {
    let done = Completion {
        lease: c.lease(),
        record: record(q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(Output::none()),
    };
    q.complete(worker, &[done]).unwrap().results.pop().unwrap()
}

pub(crate) fn state(q: &dyn Queue, id: JobId) -> JobState {
    view(q, id).state
}

/// The job's view, which must exist.
pub(crate) fn view(q: &dyn Queue, id: JobId) -> JobView {
    q.inspect().unwrap().get(id).unwrap().expect("job exists")
}
