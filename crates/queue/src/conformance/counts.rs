//! Conformance cases for the counts: whatever a backend keeps to answer
//! them quickly, they agree with the jobs it lists.

use std::time::Duration;

use runyard_core::{After, JobId, OutcomeKind};

use super::support::{fresh, job, record, succeed, Factory, LEASE};
use crate::{Completion, Counts, ListFilter, Queue, QueueErrorKind, Rescue, Verdict};

/// The counts per task as a scan of every job's view gives them, by task.
fn scanned(q: &dyn Queue) -> Vec<(String, Counts)> {
    let all = q
        .inspect()
        .unwrap()
        .list(&ListFilter {
            limit: 0,
            ..ListFilter::default()
        })
        .unwrap();
    let mut by: std::collections::BTreeMap<String, Counts> = Default::default();
    for v in all {
        *by.entry(v.task.to_string()).or_default().get_mut(v.state) += 1;
    }
    by.into_iter().collect()
}

#[track_caller]
fn agree(q: &dyn Queue, step: &str) {
    let by = q.inspect().unwrap().counts_by_task().unwrap();
    assert_eq!(by, scanned(q), "after {step}: counts per task");
    let mut total = Counts::default();
    for (_, c) in &by {
        total += c;
    }
    assert_eq!(q.counts().unwrap(), total, "after {step}: counts");
}

/// After each kind of transition (insert due and later, blocked behind a
/// parent, claim, start, success, a retry with a backoff, the backoff
/// passing, death, a retry by hand, cancel, release, a rescued lease,
/// delete), the counts, in all and per task, equal those of a scan of the
/// jobs' views; a task whose jobs are all deleted is no longer counted.
pub fn counts_match_a_scan_after_every_transition(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let q = &*q;
    agree(q, "nothing");
    let mut later = job("b", 1, 0);
    later.run_at = Some(q.now() + Duration::from_secs(60));
    let first = q
        .enqueue(vec![job("a", 2, 0), job("a", 1, 0), job("a", 3, 0), later])
        .unwrap();
    agree(q, "insert");
    let parent = first[0].id();
    let mut child = job("c", 1, 0);
    child.after = vec![After::job(parent)];
    if q.enqueue(vec![child]).is_ok() {
        agree(q, "insert blocked");
    }
    let claimed = q.claim("w", 3, LEASE).unwrap();
    assert_eq!(claimed.len(), 3);
    agree(q, "claim");
    q.started(
        "w",
        &claimed
            .iter()
            .take(2)
            .map(|c| (c.lease(), q.now()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    agree(q, "start");
    succeed(q, "w", &claimed[0]).unwrap();
    agree(q, "success (the parent's: its child is released)");
    let retry = Completion {
        lease: claimed[1].lease(),
        record: record(q, claimed[1].lease(), OutcomeKind::Failed),
        verdict: Verdict::Dead,
    };
    q.complete("w", &[retry]).unwrap().results[0].unwrap();
    agree(q, "death");
    let backoff = Completion {
        lease: claimed[2].lease(),
        record: record(q, claimed[2].lease(), OutcomeKind::Failed),
        verdict: Verdict::Retry {
            at: q.now() + Duration::from_secs(30),
        },
    };
    q.complete("w", &[backoff]).unwrap().results[0].unwrap();
    agree(q, "a retry with a backoff");
    clock.advance(Duration::from_secs(31));
    agree(q, "the backoff passing");
    assert!(q.admin().unwrap().retry(claimed[1].id).unwrap().is_some());
    agree(q, "a retry by hand");
    let again = q.claim("w", 2, LEASE).unwrap();
    assert!(!again.is_empty());
    agree(q, "a second claim");
    q.release("w", &[again[0].lease()]).unwrap();
    agree(q, "release");
    let more = q.claim("w2", 10, Duration::from_secs(1)).unwrap();
    q.started(
        "w2",
        &more
            .iter()
            .map(|c| (c.lease(), q.now()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    agree(q, "a claim started");
    clock.advance(Duration::from_secs(5));
    q.rescue(Rescue::Expired).unwrap();
    agree(q, "rescue");
    let waiting: Vec<JobId> = q
        .inspect()
        .unwrap()
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .filter(|v| !v.state.is_terminal())
        .map(|v| v.id)
        .collect();
    q.admin().unwrap().cancel(&waiting).unwrap();
    agree(q, "cancel");
    let all: Vec<JobId> = q
        .inspect()
        .unwrap()
        .list(&ListFilter::default())
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    let tasks = scanned(q).len();
    match q.admin().unwrap().delete(&all) {
        Ok(_) => {
            agree(q, "delete");
            assert!(
                scanned(q).len() < tasks,
                "a task whose jobs were all deleted is counted no more"
            );
        }
        Err(e) => assert_eq!(e.kind(), QueueErrorKind::Unsupported, "{e}"),
    }
}
