//! Pruning a state file: jobs that finished before the cut-off go with
//! their attempts; a cancelled job counts from when it was cancelled; a job
//! whose dependent is still to run stays; the kept counts follow.

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{After, JobId, JobState, OutcomeKind, Timestamp};
use runyard_queue::conformance::{job, record};
use runyard_queue::{Completion, ManualClock, Queue, Verdict};
use runyard_sqlite::{OpenMode, SqliteQueue};

const LEASE: Duration = Duration::from_secs(30);

fn state(q: &SqliteQueue, id: JobId) -> Option<JobState> {
    q.inspect().unwrap().get(id).unwrap().map(|v| v.state)
}

#[test]
fn prune_deletes_what_ended_before_the_cut_off_and_keeps_what_is_still_read() {
    let d = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_700_000_000_000_000,
    )));
    let p = d.path().join("q.db");
    let q = SqliteQueue::open_with_clock(&p, OpenMode::CreateOrOpen, clock.clone()).unwrap();
    // A plain job and a parent, both to succeed now; a job queued now and
    // cancelled later; a dead job.
    let e = q
        .enqueue(vec![
            job("plain", 1, 2),
            job("parent", 1, 2),
            job("cancel-me", 1, 0),
            job("doomed", 1, 1),
        ])
        .unwrap();
    let (plain, parent, cancel_me, doomed) = (e[0].id(), e[1].id(), e[2].id(), e[3].id());
    let mut child = job("child", 1, 0);
    child.after = vec![After::job(parent)];
    let child = q.enqueue(vec![child]).unwrap()[0].id();
    let claimed = q
        .claim_tasks(
            "w",
            3,
            LEASE,
            Some(&["plain".into(), "parent".into(), "doomed".into()]),
        )
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let done: Vec<Completion> = claimed
        .iter()
        .map(|c| Completion {
            lease: c.lease(),
            record: record(&q, c.lease(), OutcomeKind::Succeeded),
            verdict: if c.id == doomed {
                Verdict::Dead
            } else {
                Verdict::Succeeded(runyard_core::Output::none())
            },
        })
        .collect();
    q.complete("w", &done).unwrap();
    clock.advance(Duration::from_secs(60));
    q.admin().unwrap().cancel(&[cancel_me]).unwrap();
    clock.advance(Duration::from_secs(1));

    // A cut-off 30 s back: the plain job (ended 61 s ago) goes; the parent
    // stays while its child waits; the job cancelled 1 s ago stays; the
    // dead one stays without `dead`.
    assert_eq!(q.prune(Duration::from_secs(30), false).unwrap(), 1);
    assert_eq!(state(&q, plain), None);
    assert_eq!(state(&q, parent), Some(JobState::Succeeded));
    assert_eq!(state(&q, cancel_me), Some(JobState::Cancelled));
    assert_eq!(state(&q, doomed), Some(JobState::Dead));
    assert_eq!(state(&q, child), Some(JobState::Queued));
    let c = q.counts().unwrap();
    assert_eq!((c.total(), c.succeeded, c.cancelled), (4, 1, 1));

    // With dead jobs: the dead one goes too, and its attempts with it.
    assert_eq!(q.prune(Duration::from_secs(30), true).unwrap(), 1);
    assert_eq!(state(&q, doomed), None);
    let attempts: i64 = rusqlite::Connection::open(&p)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM runyard_attempts WHERE job = ?1",
            [doomed.0 as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 0);

    // Once the child has run, its parent goes at the next prune.
    let c = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(c.id, child);
    let ok = Completion {
        lease: c.lease(),
        record: record(&q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(runyard_core::Output::none()),
    };
    q.complete("w", &[ok]).unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(q.prune(Duration::from_secs(30), false).unwrap(), 3);
    assert_eq!(q.counts().unwrap().total(), 0);
    assert!(q.inspect().unwrap().counts_by_task().unwrap().is_empty());
}

#[test]
fn after_a_prune_of_every_job_the_next_job_takes_a_new_id() {
    let d = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_700_000_000_000_000,
    )));
    let p = d.path().join("q.db");
    let q = SqliteQueue::open_with_clock(&p, OpenMode::CreateOrOpen, clock.clone()).unwrap();
    let e = q.enqueue(vec![job("a", 1, 0), job("a", 1, 0)]).unwrap();
    let last = e[1].id();
    let done: Vec<Completion> = q
        .claim("w", 2, LEASE)
        .unwrap()
        .iter()
        .map(|c| Completion {
            lease: c.lease(),
            record: record(&q, c.lease(), OutcomeKind::Succeeded),
            verdict: Verdict::Succeeded(runyard_core::Output::none()),
        })
        .collect();
    q.complete("w", &done).unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(q.prune(Duration::from_secs(60), false).unwrap(), 2);
    assert_eq!(q.counts().unwrap().total(), 0, "every job went");
    drop(q);
    // Another process opening the file gives the next job a new id too.
    let q = SqliteQueue::open(&p, OpenMode::Existing).unwrap();
    let next = q.enqueue(vec![job("a", 1, 0)]).unwrap()[0].id();
    assert!(next > last, "job {next:?} took an id a pruned job had");
}
