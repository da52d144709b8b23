//! Conformance cases for the claim order through a drain: with many jobs
//! waiting and with few, and in a queue whose every earlier job has moved
//! on (a backend may look for its jobs differently by how many wait, as
//! PostgreSQL's does; the order must not change with it).

use std::time::Duration;

use runyard_core::JobId;

use super::support::{fresh, ids, job, succeed, Factory, LEASE};
use crate::{Claimed, NewJob, Queue};

/// Claims `n` at a time until nothing is left (ending each batch), and
/// returns the ids in claim order.
fn drain(q: &dyn Queue, n: usize) -> Vec<JobId> {
    let mut order = Vec::new();
    loop {
        let got = q.claim("w", n, LEASE).unwrap();
        if got.is_empty() {
            return order;
        }
        for c in &got {
            order.push(c.id);
            succeed(q, "w", c).unwrap();
        }
    }
}

fn ids_of(c: &[Claimed]) -> Vec<JobId> {
    c.iter().map(|c| c.id).collect()
}

/// 600 jobs of three priorities, in six batches, drained 37 at a time:
/// the claims go from many waiting to few, and every one follows priority,
/// then enqueue order. Then, in the drained queue: new jobs, one claimed
/// and given back (it keeps its place), one not yet due, one of another
/// task; each is claimed in its place, by priority, then age.
pub fn the_claim_order_holds_from_a_deep_queue_to_a_drained_one(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let mut want: Vec<(i32, usize, JobId)> = Vec::new();
    for b in 0..6 {
        let jobs: Vec<NewJob> = (0..100i32).map(|i| job("t", 1, i % 3)).collect();
        for (i, id) in ids(&q.enqueue(jobs).unwrap()).into_iter().enumerate() {
            want.push(((i % 3) as i32, b * 100 + i, id));
        }
    }
    want.sort_by_key(|&(p, n, _)| (std::cmp::Reverse(p), n));
    let want: Vec<JobId> = want.into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(drain(&*q, 37), want, "priority, then enqueue order");
    assert_eq!(q.counts().unwrap().succeeded, 600);
    assert_eq!(q.next_due().unwrap(), None, "nothing waits");

    let later = q.now() + Duration::from_secs(10);
    let mut not_yet = job("t", 1, 9);
    not_yet.run_at = Some(later);
    let e = ids(&q
        .enqueue(vec![
            job("t", 1, 0),
            job("t", 1, 5),
            not_yet,
            job("other", 1, 5),
            job("t", 1, -1),
            job("t", 1, 5),
        ])
        .unwrap());
    let (low, first, not_yet, other, lowest, second) = (e[0], e[1], e[2], e[3], e[4], e[5]);
    assert!(q.next_due().unwrap().is_some_and(|t| t <= q.now()));

    // Of task `t` only: the other task's job of the same priority is passed.
    let t = ["t".into()];
    let c = q.claim_tasks("w", 1, LEASE, Some(&t)).unwrap();
    assert_eq!(ids_of(&c), vec![first]);
    // Given back unstarted, it keeps its place ahead of those after it.
    let back = q.release("w", &[c[0].lease()]).unwrap();
    assert!(back.iter().all(|r| r.is_ok()));
    let c = q.claim("w", 2, LEASE).unwrap();
    assert_eq!(ids_of(&c), vec![first, other], "its place is kept");
    let c2 = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(ids_of(&c2), vec![second, low, lowest]);
    for x in c.iter().chain(&c2) {
        succeed(&*q, "w", x).unwrap();
    }
    assert!(q.claim("w", 10, LEASE).unwrap().is_empty(), "not due yet");
    assert_eq!(q.next_due().unwrap(), Some(later));

    // Once due, it is claimed.
    clock.advance(Duration::from_secs(11));
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(ids_of(&c), vec![not_yet]);
    succeed(&*q, "w", &c[0]).unwrap();
    assert_eq!(q.next_due().unwrap(), None, "nothing waits");
}
