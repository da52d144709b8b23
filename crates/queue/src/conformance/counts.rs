//! Conformance cases for the counts: whatever a backend keeps to answer
//! them quickly, they agree with the jobs it lists.

use std::time::Duration;

use runyard_core::{After, JobId, OnConflict, OutcomeKind, Unique};

use super::limits;
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

/// The counts agree with a scan after the ways of adding and claiming
/// jobs that the first case does not take: a duplicate by idempotency
/// key (adds nothing), a unique key held by a waiting job (adds nothing),
/// a claim of named tasks only, a claim of jobs that carry limits, and
/// the success of a job that had a parent. Backends may count these
/// changes apart from the others (the SQLite queue does, a batch at a
/// time), so each is checked.
pub fn counts_match_a_scan_after_duplicates_and_every_kind_of_claim(make: Factory<'_>) {
    let (_clock, q) = fresh(make);
    let q = &*q;
    let mut once = job("a", 1, 0);
    once.idempotency_key = Some("once".into());
    q.enqueue(vec![once.clone()]).unwrap();
    q.enqueue(vec![once]).unwrap();
    agree(q, "a duplicate by idempotency key");
    let unique = |t: &str| {
        let mut j = job(t, 1, 0);
        j.unique = Some(Unique {
            key: "u".into(),
            within: None,
            on_conflict: OnConflict::Skip,
        });
        j
    };
    if q.enqueue(vec![unique("a")]).is_ok() {
        q.enqueue(vec![unique("a")]).unwrap();
        agree(q, "a unique key held");
    }
    q.enqueue(vec![job("b", 1, 0), job("b", 1, 0), job("c", 1, 0)])
        .unwrap();
    agree(q, "more inserts");
    let only_c = q.claim_tasks("w", 10, LEASE, Some(&["c".into()])).unwrap();
    assert_eq!(only_c.len(), 1);
    agree(q, "a claim of named tasks");
    succeed(q, "w", &only_c[0]).unwrap();
    agree(q, "its success");
    if limits::keeps_limits(q) {
        q.enqueue(vec![
            limits::keyed("d", "k", Some(1)),
            limits::keyed("d", "k", Some(1)),
            limits::task_limited("e", 2),
        ])
        .unwrap();
        agree(q, "inserts of limited jobs");
        let held = q.claim("w", 10, LEASE).unwrap();
        assert!(!held.is_empty());
        agree(q, "a claim under limits");
        for c in &held {
            succeed(q, "w", c).unwrap();
        }
        agree(q, "their successes");
    }
    let parent = q.enqueue(vec![job("p", 1, 0)]).unwrap()[0].id();
    let mut child = job("q", 1, 0);
    child.after = vec![After::job(parent)];
    if q.enqueue(vec![child]).is_ok() {
        agree(q, "a child added");
        let mut all = q.claim("w", 100, LEASE).unwrap();
        agree(q, "a claim of everything due");
        while !all.is_empty() {
            for c in &all {
                succeed(q, "w", c).unwrap();
            }
            agree(q, "successes, a parent's releasing its child");
            all = q.claim("w", 100, LEASE).unwrap();
        }
    }
    let left = scanned(q).iter().fold(Counts::default(), |mut t, (_, c)| {
        t += c;
        t
    });
    assert_eq!(q.counts().unwrap(), left, "at the end");
}
