//! Recording attempts: what comes after an attempt (every decision through
//! the job's [`RetryPolicy`]), and the records waiting to be written, here
//! or by the [writer thread](super::writer).

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    AttemptError, AttemptRecord, ErrorIntent, GiveUpReason, Outcome, OutcomeKind, RetryDecision,
    RetryPolicy, Timestamp,
};
use runyard_queue::{Cascade, Completion, Fenced, Lease, Queue, QueueError, Verdict, Writes};

use super::entry::Entry;
use super::writer::Writer;
use crate::inbox::{Inbox, Note, Written};

/// What comes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Next {
    Succeeded,
    /// Another attempt after this delay.
    Retry(Duration),
    Dead,
    Cancelled,
}

/// How an attempt came to end, beside its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ending {
    /// Someone asked to cancel the job.
    pub(super) cancel_requested: bool,
    /// The queue keeps jobs across runs: one stopped by a shutdown (not by
    /// a cancel request) is run again by the next run.
    pub(super) durable: bool,
}

/// What comes after attempt `attempt`, which ended as `outcome` with
/// `intent` (the outcome's [`Outcome::intent`]): a cancelled job is
/// cancelled, and every other end that did not succeed is the retry
/// policy's decision. An attempt stopped by a shutdown asks to be run again
/// at once (its intent is a retry after no delay) and counts as an
/// attempt; on a queue that does not outlive the run it is cancelled
/// instead.
pub(super) fn next(
    outcome: OutcomeKind,
    intent: ErrorIntent,
    attempt: u32,
    policy: RetryPolicy,
    ending: Ending,
    random: f64,
) -> Next {
    match outcome {
        OutcomeKind::Succeeded => Next::Succeeded,
        OutcomeKind::Cancelled if ending.cancel_requested || !ending.durable => Next::Cancelled,
        _ => match policy.decide(attempt, intent, random) {
            RetryDecision::Retry(d) => Next::Retry(d),
            RetryDecision::GiveUp(GiveUpReason::Permanent | GiveUpReason::Exhausted) => Next::Dead,
        },
    }
}

/// A written batch: each record, its note, and whether it was recorded (a
/// fenced record belongs to an attempt whose lease was taken over).
pub(super) struct Recorded {
    pub(super) records: Vec<Completion>,
    pub(super) notes: Vec<Note>,
    pub(super) results: Vec<Result<(), Fenced>>,
    /// The jobs after these that the recorded ends moved.
    pub(super) cascade: Cascade,
}

/// How an attempt ended, as its executor (or the dispatcher) reports it.
pub(super) struct End {
    pub(super) started_at: Timestamp,
    pub(super) duration: Duration,
    pub(super) outcome: Outcome,
}

/// The completion of `e`'s attempt: its record, and the verdict [`next`]
/// decides (`now` is read for a retry's time), with the delay chosen for a
/// retry (zero otherwise).
pub(super) fn completion(
    e: &Entry,
    end: End,
    durable: bool,
    random: f64,
    now: impl FnOnce() -> Timestamp,
) -> (Completion, Duration) {
    let outcome = end.outcome.kind();
    let intent = end.outcome.intent();
    let (output, error) = end.outcome.into_parts();
    let ending = Ending {
        cancel_requested: e.cancel_requested,
        durable,
    };
    let policy = e.settings.policy();
    let (verdict, delay) = match next(outcome, intent, e.lease.attempt, policy, ending, random) {
        // Every queue stores at most `OUTPUT_CAP` of an output.
        Next::Succeeded => (Verdict::Succeeded(output.capped()), Duration::ZERO),
        Next::Retry(d) => (Verdict::Retry { at: now() + d }, d),
        Next::Dead => (Verdict::Dead, Duration::ZERO),
        Next::Cancelled => (Verdict::Cancelled, Duration::ZERO),
    };
    let record = AttemptRecord::new(
        e.lease.attempt,
        outcome,
        end.started_at,
        end.duration,
        end.started_at.since(e.ready_at),
        error,
    );
    let c = Completion {
        lease: e.lease,
        record,
        verdict,
    };
    (c, delay)
}

/// The completion of a claimed job this worker cannot run at all (an
/// unknown task, a lane it does not have): dead, permanently, at `now`.
pub(super) fn refusal(
    lease: Lease,
    ready_at: Timestamp,
    now: Timestamp,
    message: String,
) -> Completion {
    let error = AttemptError {
        message,
        permanent: true,
        detail: None,
    };
    Completion {
        lease,
        record: AttemptRecord::new(
            lease.attempt,
            OutcomeKind::Failed,
            now,
            Duration::ZERO,
            now.since(ready_at),
            Some(error),
        ),
        verdict: Verdict::Dead,
    }
}

/// The most ended attempts whose records are not yet written (waiting, or
/// with the writer) before the dispatcher claims more: claims stop while
/// the queue takes outcomes more slowly than it hands out jobs. Without
/// it, a queue slow to write (a deep PostgreSQL table) saw hundreds of
/// thousands of jobs claimed and run ahead of their recorded ends, whose
/// leases then ran out before the ends were written.
pub(super) const UNWRITTEN_MAX: usize = 16_384;

/// The most records a new batch has room for before its first push.
const BATCH_ROOM: usize = 4096;

/// Records waiting to be written, and the writer thread if there is one.
#[derive(Default)]
pub(super) struct Recorder {
    pending: Vec<Completion>,
    notes: Vec<Note>,
    writer: Option<Writer>,
    /// A batch is with the writer.
    writing: bool,
    /// How many records the batch with the writer holds.
    writing_len: usize,
}

impl Recorder {
    /// Queues a record for the next write.
    pub(super) fn push(&mut self, c: Completion, note: Note) {
        self.pending.push(c);
        self.notes.push(note);
    }

    /// Records wait to be written.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A batch is with the writer thread.
    pub(super) fn writing(&self) -> bool {
        self.writing
    }

    /// Records of ended attempts not yet written: waiting, and with the
    /// writer.
    pub(super) fn unwritten(&self) -> usize {
        self.pending.len() + self.writing_len
    }

    /// Takes the waiting records; the next batch starts with room for as
    /// many, up to [`BATCH_ROOM`] (a batch grown from nothing reallocates
    /// and copies its records a dozen times).
    fn take(pending: &mut Vec<Completion>, notes: &mut Vec<Note>) -> Written {
        let room = pending.len().min(BATCH_ROOM);
        Written {
            records: std::mem::replace(pending, Vec::with_capacity(room)),
            notes: std::mem::replace(notes, Vec::with_capacity(room)),
            results: Ok(Vec::new()),
            cascade: None,
        }
    }

    /// Writes the waiting records: hands them to the writer thread (started
    /// on first use when the queue takes writes beside claims) or writes
    /// them here and returns the written batch. Nothing while a batch is
    /// with the writer.
    pub(super) fn flush(
        &mut self,
        queue: &Arc<dyn Queue>,
        worker: &str,
        inbox: &Arc<Inbox>,
    ) -> Option<Written> {
        if self.pending.is_empty() || self.writing {
            return None;
        }
        if self.writer.is_none() && queue.capabilities().writes() == Writes::Concurrent {
            self.writer = Writer::start(Arc::clone(queue), worker.to_string(), Arc::clone(inbox));
        }
        if let Some(w) = &self.writer {
            let len = self.pending.len();
            match w.send(Recorder::take(&mut self.pending, &mut self.notes)) {
                Ok(()) => {
                    self.writing = true;
                    self.writing_len = len;
                    return None;
                }
                Err(back) => {
                    // The thread is gone: write here from now on.
                    self.pending = back.records;
                    self.notes = back.notes;
                    self.writer = None;
                }
            }
        }
        let mut w = Recorder::take(&mut self.pending, &mut self.notes);
        w.write(&**queue, worker);
        Some(w)
    }

    /// A batch was written (or failed to be): the records with their
    /// results, or the error, with the records queued again.
    pub(super) fn written(&mut self, w: Written) -> Result<Recorded, QueueError> {
        self.writing = false;
        self.writing_len = 0;
        match w.results {
            Ok(results) => Ok(Recorded {
                records: w.records,
                notes: w.notes,
                results,
                cascade: w.cascade.map(|c| *c).unwrap_or_default(),
            }),
            Err(e) => {
                self.pending = w.records;
                self.notes = w.notes;
                Err(e)
            }
        }
    }

    /// Stops the writer thread, after what it has.
    pub(super) fn stop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::Backoff;

    use super::*;

    const SHUTDOWN: Ending = Ending {
        cancel_requested: false,
        durable: true,
    };

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy::new(max_attempts, Backoff::Fixed(Duration::from_secs(5))).unwrap()
    }

    #[test]
    fn an_attempt_stopped_by_a_shutdown_runs_again_at_once_while_attempts_remain() {
        let stopped = runyard_core::Outcome::Cancelled.intent();
        let c = OutcomeKind::Cancelled;
        assert_eq!(
            next(c, stopped, 1, policy(3), SHUTDOWN, 0.5),
            Next::Retry(Duration::ZERO)
        );
        assert_eq!(next(c, stopped, 3, policy(3), SHUTDOWN, 0.5), Next::Dead);
    }

    #[test]
    fn a_cancel_request_or_a_queue_that_ends_with_the_run_cancels() {
        let stopped = runyard_core::Outcome::Cancelled.intent();
        let c = OutcomeKind::Cancelled;
        let requested = Ending {
            cancel_requested: true,
            ..SHUTDOWN
        };
        let memory = Ending {
            durable: false,
            ..SHUTDOWN
        };
        assert_eq!(
            next(c, stopped, 1, policy(3), requested, 0.5),
            Next::Cancelled
        );
        assert_eq!(next(c, stopped, 1, policy(3), memory, 0.5), Next::Cancelled);
    }

    #[test]
    fn other_ends_follow_the_policy() {
        let failed = OutcomeKind::Failed;
        assert_eq!(
            next(failed, ErrorIntent::Retryable, 1, policy(3), SHUTDOWN, 0.5),
            Next::Retry(Duration::from_secs(5))
        );
        assert_eq!(
            next(failed, ErrorIntent::Permanent, 1, policy(3), SHUTDOWN, 0.5),
            Next::Dead
        );
        assert_eq!(
            next(
                OutcomeKind::TimedOut,
                ErrorIntent::Retryable,
                3,
                policy(3),
                SHUTDOWN,
                0.5
            ),
            Next::Dead
        );
        assert_eq!(
            next(
                OutcomeKind::Succeeded,
                ErrorIntent::Retryable,
                3,
                policy(3),
                SHUTDOWN,
                0.5
            ),
            Next::Succeeded
        );
    }
}
