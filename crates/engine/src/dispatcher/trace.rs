//! The `runyard.attempt` span of each claimed attempt, and its events
//! (docs/tracing.md lists them).
//!
//! The span opens when the job is claimed, with the job's id, task,
//! attempt number, execution mode and worker, and closes once the
//! attempt's outcome is written (or its claim is given back or lost), with
//! the outcome and the attempt's duration recorded on it. The dispatcher
//! thread owns it, as it owns the entry: its events name the span as their
//! parent rather than entering it. Every event also carries the job's id,
//! for a subscriber that keeps the events and not the spans.
//!
//! With no subscriber interested, [`claimed`] returns `None` after one
//! check of the span's level and callsite, and nothing is allocated; every
//! event below costs the same check.

use runyard_core::{JobId, OutcomeKind};
use runyard_queue::Verdict;
use tracing::field::Empty;
use tracing::{Id, Span};

use super::emit::ms;
use super::entry::Entry;
use super::record::Recorded;
use crate::trace::ATTEMPT;

/// An attempt's span, if a subscriber wanted it (boxed: an entry stays
/// small, and without a subscriber nothing is allocated).
pub(crate) type AttemptSpan = Option<Box<Span>>;

/// The parent an event names: the attempt's span, if there is one.
fn id(span: Option<&Span>) -> Option<Id> {
    span.and_then(Span::id)
}

/// Opens the span of a claimed attempt, with its `claimed` event.
pub(super) fn claimed(e: &Entry, task: &str, worker: &str) -> AttemptSpan {
    let (job, attempt) = (e.lease.job.0, e.lease.attempt);
    let span = tracing::info_span!(
        target: ATTEMPT,
        "runyard.attempt",
        job,
        task,
        attempt,
        mode = e.lane.mode(),
        worker,
        outcome = Empty,
        duration_ms = Empty,
    );
    let span = (!span.is_disabled()).then(|| Box::new(span));
    tracing::debug!(target: ATTEMPT, parent: id(span.as_deref()), job, attempt, "claimed");
    span
}

/// Whether a subscriber listens for `started` events: executors then
/// report each attempt's start, which they do not otherwise when no one
/// needs it.
pub(super) fn wants_started() -> bool {
    tracing::enabled!(target: ATTEMPT, tracing::Level::DEBUG)
}

/// The attempt started, `queued_ms` after its job became ready.
pub(super) fn started(e: &Entry, queued_ms: f64) {
    tracing::debug!(
        target: ATTEMPT,
        parent: id(e.span.as_deref()),
        job = e.lease.job.0,
        queued_ms,
        "started"
    );
}

/// The claim was given back to the queue unstarted (a shutdown, a pause,
/// an executor that could not take it).
pub(super) fn released(e: &Entry) {
    tracing::debug!(
        target: ATTEMPT,
        parent: id(e.span.as_deref()),
        job = e.lease.job.0,
        "released: the claim went back to the queue unstarted"
    );
}

/// The claim's lease was lost (taken over, or given up unrenewed): the
/// attempt is stopped and its outcome will not be recorded.
pub(super) fn lost(e: &Entry) {
    tracing::warn!(
        target: ATTEMPT,
        parent: id(e.span.as_deref()),
        job = e.lease.job.0,
        "lease lost: the attempt is stopped and its outcome not recorded"
    );
}

/// The queue refused to run a claimed job here (a mode it cannot run in,
/// a task this worker does not have).
pub(super) fn refused(job: JobId, task: &str, attempt: u32, error: &str) {
    tracing::warn!(
        target: ATTEMPT,
        job = job.0,
        task,
        attempt,
        error,
        "refused: the job cannot run here"
    );
}

/// Jobs whose leases expired, put back in the queue by a rescue.
pub(super) fn rescued(ids: &[JobId]) {
    for id in ids {
        tracing::warn!(
            target: ATTEMPT,
            job = id.0,
            "lease expired: the job was rescued back to the queue"
        );
    }
}

/// The ends of a written batch: each attempt's outcome and duration go on
/// its span, then the event of what follows (succeeded, retry scheduled,
/// dead, cancelled), and the span closes as the batch is dropped. One
/// check for the batch when no one listens: the least verbose of these
/// events is a warning, and a span is kept only at a more verbose level.
pub(super) fn ends(done: &Recorded) {
    if !tracing::enabled!(target: ATTEMPT, tracing::Level::WARN) {
        return;
    }
    for ((c, note), r) in done.records.iter().zip(&done.notes).zip(&done.results) {
        let span = note.span.as_deref();
        let job = c.lease.job.0;
        if r.is_err() {
            tracing::warn!(
                target: ATTEMPT,
                parent: id(span),
                job,
                "not recorded: the lease was taken over, and the job's new attempt records its own outcome"
            );
            continue;
        }
        let rec = &c.record;
        let outcome = rec.outcome.as_str();
        let duration_ms = ms(rec.duration());
        if let Some(span) = span {
            span.record("outcome", outcome);
            span.record("duration_ms", duration_ms);
        }
        if rec.outcome == OutcomeKind::TimedOut {
            tracing::warn!(
                target: ATTEMPT,
                parent: id(span),
                job,
                duration_ms,
                "timed out: the attempt was stopped"
            );
        }
        let error = rec.error_message().unwrap_or("");
        match &c.verdict {
            Verdict::Succeeded(_) => tracing::info!(
                target: ATTEMPT,
                parent: id(span),
                job,
                outcome,
                duration_ms,
                "succeeded"
            ),
            Verdict::Retry { .. } => tracing::warn!(
                target: ATTEMPT,
                parent: id(span),
                job,
                outcome,
                duration_ms,
                error,
                delay_ms = ms(note.delay),
                "retry scheduled"
            ),
            Verdict::Dead => tracing::warn!(
                target: ATTEMPT,
                parent: id(span),
                job,
                outcome,
                duration_ms,
                error,
                "dead: no attempt left"
            ),
            Verdict::Cancelled => tracing::info!(
                target: ATTEMPT,
                parent: id(span),
                job,
                outcome,
                duration_ms,
                "cancelled"
            ),
        }
    }
}
