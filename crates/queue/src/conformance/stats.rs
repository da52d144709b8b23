//! Conformance case for counting finished attempts per minute
//! ([`Inspect::finished_per_minute`](crate::Inspect::finished_per_minute)).

use std::time::Duration;

use runyard_core::{OutcomeKind, Timestamp};

use super::support::{fresh, job, record, Factory, LEASE};
use crate::{minute_of, Completion, FinishedCount, Verdict};

/// Attempts are counted by the minute they ended in and their outcome,
/// within the window asked for and no further: a retried job's failed
/// attempt and its later success each count once, in their own minute,
/// and a job still running counts nothing.
pub fn finished_attempts_are_counted_per_minute_and_outcome(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    // Start 10 s into a minute, so that 2 ms attempts end within it.
    let t0 = minute_of(q.now()).saturating_add(Duration::from_secs(70));
    clock.set(t0);
    let inspect = q.inspect().unwrap();
    q.enqueue(vec![
        job("a", 2, 0),
        job("b", 1, 0),
        job("c", 1, 0),
        job("d", 1, 0),
    ])
    .unwrap();
    let mut claims = q.claim("w", 4, LEASE).unwrap();
    assert_eq!(claims.len(), 4);
    let running = claims.pop().unwrap();
    q.started("w", &[(running.lease(), q.now())]).unwrap();
    let complete = |c: &crate::Claimed, outcome: OutcomeKind, verdict: Verdict| {
        let done = Completion {
            lease: c.lease(),
            record: record(&*q, c.lease(), outcome),
            verdict,
        };
        q.complete("w", &[done]).unwrap().results[0].unwrap();
    };
    // Minute 1: one failure to retry, one success, one dead.
    complete(
        &claims[0],
        OutcomeKind::Failed,
        Verdict::Retry { at: q.now() },
    );
    complete(
        &claims[1],
        OutcomeKind::Succeeded,
        Verdict::Succeeded(Default::default()),
    );
    complete(&claims[2], OutcomeKind::TimedOut, Verdict::Dead);
    // Minute 3: the retried job succeeds.
    clock.advance(Duration::from_secs(120));
    let again = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(again.id, claims[0].id);
    complete(
        &again,
        OutcomeKind::Succeeded,
        Verdict::Succeeded(Default::default()),
    );
    let m1 = minute_of(t0);
    let m3 = m1.saturating_add(Duration::from_secs(120));
    let fc = |minute, outcome, attempts| FinishedCount {
        minute,
        outcome,
        attempts,
    };
    let all = inspect
        .finished_per_minute(
            m1.saturating_sub(Duration::from_secs(3600)),
            q.now().saturating_add(Duration::from_secs(1)),
        )
        .unwrap();
    assert_eq!(
        all,
        vec![
            fc(m1, OutcomeKind::Succeeded, 1),
            fc(m1, OutcomeKind::Failed, 1),
            fc(m1, OutcomeKind::TimedOut, 1),
            fc(m3, OutcomeKind::Succeeded, 1),
        ],
        "each finished attempt once, by its minute and outcome, in the order of OutcomeKind::ALL"
    );
    // The window is half-open and cuts within a minute.
    let late = inspect
        .finished_per_minute(m3, m3.saturating_add(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(late, vec![fc(m3, OutcomeKind::Succeeded, 1)]);
    let before = inspect.finished_per_minute(Timestamp::EPOCH, m1).unwrap();
    assert!(before.is_empty(), "{before:?}");
    let gap = inspect
        .finished_per_minute(m1.saturating_add(Duration::from_secs(60)), m3)
        .unwrap();
    assert!(gap.is_empty(), "nothing ended in minute 2: {gap:?}");
}
