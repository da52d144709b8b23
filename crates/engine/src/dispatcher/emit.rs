//! The events the dispatcher emits: built from what it holds (the record
//! written, the delay the retry policy chose), so an event says what was
//! decided rather than what a clock reads when it is emitted. The moves a
//! recorded end caused among the jobs after it (the queue's [`Cascade`])
//! follow that end's event: `unblocked`, or `cancelled` naming the cause.

use std::time::Duration;

use runyard_core::{Event, JobId, QueuedReason, Tick, Timestamp};
use runyard_queue::{Cascade, Completion, Queue, Verdict};

use super::entry::Entry;
use super::record::Recorded;
use crate::events::Events;

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The event for a recorded attempt's end, at `at`; `delay` is the one the
/// retry policy chose for a retry.
pub(super) fn end_event<'a>(
    task: &'a str,
    c: &'a Completion,
    delay: Duration,
    at: Timestamp,
    schedule: Option<&'a Tick>,
) -> Event<'a> {
    let (job, attempt, r) = (c.lease.job, c.lease.attempt, &c.record);
    let error = r.error_message().unwrap_or("");
    match &c.verdict {
        Verdict::Succeeded(_) => Event::Succeeded {
            job,
            task,
            at,
            attempt,
            duration_ms: ms(r.duration()),
            schedule,
        },
        Verdict::Retry { at: run_at } => Event::Scheduled {
            job,
            task,
            at,
            attempt,
            outcome: r.outcome,
            duration_ms: ms(r.duration()),
            error,
            delay_ms: ms(delay),
            run_at: *run_at,
            schedule,
        },
        Verdict::Dead => Event::Dead {
            job,
            task,
            at,
            attempt,
            outcome: r.outcome,
            duration_ms: ms(r.duration()),
            error,
            schedule,
        },
        Verdict::Cancelled => Event::Cancelled {
            job,
            task,
            at,
            attempts: attempt,
            cancelled_by: None,
            schedule,
        },
    }
}

/// The events of a written batch's recorded ends.
pub(super) fn ends(events: &Events, queue: &dyn Queue, done: &Recorded) {
    if events.is_empty() {
        return;
    }
    let _order = events.lock();
    for ((c, note), r) in done.records.iter().zip(&done.notes).zip(&done.results) {
        if r.is_ok() {
            events.emit(&end_event(
                &note.task,
                c,
                note.delay,
                queue.now(),
                note.schedule.as_deref(),
            ));
        }
    }
    cascaded(events, queue, &done.cascade);
}

/// The events of a cascade the queue reported (see the module), when it
/// did not come with a written batch (a rescue).
pub(super) fn cascade(events: &Events, queue: &dyn Queue, cascade: &Cascade) {
    if events.is_empty() || cascade.unblocked.is_empty() && cascade.cancelled.is_empty() {
        return;
    }
    let _order = events.lock();
    cascaded(events, queue, cascade);
}

/// [`cascade`] with the event order held. Each job's task (and cause) is
/// read from the queue: a cascade names only ids.
fn cascaded(events: &Events, queue: &dyn Queue, cascade: &Cascade) {
    if cascade.unblocked.is_empty() && cascade.cancelled.is_empty() {
        return;
    }
    let at = queue.now();
    let view = |id| queue.inspect().and_then(|q| q.get(id)).ok().flatten();
    for &id in &cascade.unblocked {
        let v = view(id);
        events.emit(&Event::Unblocked {
            job: id,
            task: v.as_ref().map_or("", |v| &v.task),
            at,
            schedule: v.as_ref().and_then(|v| v.schedule.as_ref()),
        });
    }
    for &id in &cascade.cancelled {
        if let Some(v) = view(id) {
            events.emit(&Event::Cancelled {
                job: id,
                task: &v.task,
                at,
                attempts: v.attempts.len() as u32,
                cancelled_by: v.cancelled_by.as_deref(),
                schedule: v.schedule.as_ref(),
            });
        }
    }
}

/// The `running` event of `e`'s attempt, started at `at` (the caller
/// holds the event order).
pub(super) fn running(events: &Events, task: &str, e: &Entry, at: Timestamp) {
    events.emit(&Event::Running {
        job: e.lease.job,
        task,
        at,
        attempt: e.lease.attempt,
        queued_ms: ms(at.since(e.ready_at)),
        schedule: e.schedule.as_deref(),
    });
}

/// `queued` events for this run's claims given back (the caller holds the
/// event order).
pub(super) fn released(events: &Events, released: &[(&Entry, &str)], at: Timestamp) {
    for (e, task) in released {
        events.emit(&Event::Queued {
            job: e.lease.job,
            task,
            at,
            reason: QueuedReason::Released,
            schedule: e.schedule.as_deref(),
        });
    }
}

/// `queued` events for jobs put back in the queue (the task read from it).
pub(super) fn requeued(events: &Events, queue: &dyn Queue, ids: &[JobId], reason: QueuedReason) {
    if events.is_empty() {
        return;
    }
    let _order = events.lock();
    let at = queue.now();
    for &id in ids {
        let v = queue.inspect().and_then(|q| q.get(id)).ok().flatten();
        events.emit(&Event::Queued {
            job: id,
            task: v.as_ref().map_or("", |v| &v.task),
            at,
            reason,
            schedule: v.as_ref().and_then(|v| v.schedule.as_ref()),
        });
    }
}

/// `cancelled` events for jobs cancelled before they ran.
pub(super) fn cancelled(events: &Events, queue: &dyn Queue, ids: &[JobId]) {
    if events.is_empty() {
        return;
    }
    let _order = events.lock();
    let at = queue.now();
    for &id in ids {
        if let Ok(Some(v)) = queue.inspect().and_then(|q| q.get(id)) {
            events.emit(&Event::Cancelled {
                job: id,
                task: &v.task,
                at,
                attempts: v.attempts.len() as u32,
                cancelled_by: v.cancelled_by.as_deref(),
                schedule: v.schedule.as_ref(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::{AttemptRecord, OutcomeKind};
    use runyard_queue::Lease;

    use super::*;

    #[test]
    fn a_scheduled_event_carries_the_delay_chosen_not_the_time_left() {
        let chosen = Duration::from_millis(10);
        let decided = Timestamp::from_micros(1_000_000);
        let c = Completion {
            lease: Lease {
                job: JobId(7),
                attempt: 1,
                claim: 1,
            },
            record: AttemptRecord::new(
                1,
                OutcomeKind::Failed,
                decided,
                Duration::from_millis(2),
                Duration::ZERO,
                None,
            ),
            verdict: Verdict::Retry {
                at: decided + chosen,
            },
        };
        // Emitted 1 ms after the decision (the record was written first).
        let later = decided + Duration::from_millis(1);
        match end_event("flaky", &c, chosen, later, None) {
            Event::Scheduled {
                delay_ms, run_at, ..
            } => {
                assert_eq!(delay_ms, 10.0);
                assert_eq!(run_at, decided + chosen);
            }
            other => panic!("{other:?}"),
        }
    }
}
