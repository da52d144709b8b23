//! Conformance cases for pausing tasks, what holds jobs back, and the fair
//! order (`docs/backends.md` §8, "Pause", "Holds", "Fair order").
//!
//! Every case passes without doing anything on a queue that does not claim
//! [`Capability::Limits`](crate::Capability::Limits).

use std::collections::BTreeSet;
use std::time::Duration;

use runyard_core::{Hold, JobId, JobLimits, TaskName};

use super::limits::{
    claim, done, keeps_limits, key_target, keyed, limited, rate, rated, task, task_limited,
};
use super::support::{fresh, job, Factory};
use crate::{Capability, Paused};

fn name(t: &str) -> TaskName {
    TaskName::from(t)
}

pub fn a_paused_task_is_not_claimed_and_its_unstarted_claims_go_back(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let flow = q.flow().unwrap();
    q.enqueue((0..3).map(|_| job("a", 3, 0)).collect()).unwrap();
    let started = claim(&*q, "w", 1);
    q.started("w", &[(started[0].lease(), q.now())]).unwrap();
    let waiting = claim(&*q, "w", 1);
    q.enqueue((0..2).map(|_| job("b", 3, 0)).collect()).unwrap();
    assert_eq!(
        flow.pause(Some(&name("a"))).unwrap(),
        vec![waiting[0].id],
        "pause returns the claims that have not started"
    );
    assert_eq!(
        flow.paused().unwrap(),
        Paused {
            all: false,
            tasks: vec!["a".into()]
        }
    );
    assert_eq!(flow.unstarted().unwrap(), vec![waiting[0].id]);
    let c = claim(&*q, "w2", 10);
    assert_eq!(c.len(), 2, "only b");
    assert!(c.iter().all(|c| c.task.as_str() == "b"));
    let reply = q
        .heartbeat(
            "w",
            &[started[0].lease(), waiting[0].lease()],
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(
        reply.paused,
        vec![waiting[0].lease()],
        "only the unstarted claim"
    );
    assert!(reply.lost.is_empty());
    assert!(q.release("w", &[waiting[0].lease()]).unwrap()[0].is_ok());
    assert!(flow.unstarted().unwrap().is_empty(), "given back");
    // The running attempt finishes as usual.
    done(&*q, "w", &started[0]);
    assert!(claim(&*q, "w", 10).is_empty(), "a stays paused");
    let counts = q.counts().unwrap();
    assert_eq!(
        (counts.total(), counts.succeeded),
        (5, 1),
        "nothing is lost"
    );
    assert!(flow.resume(Some(&name("a"))).unwrap());
    assert!(!flow.resume(Some(&name("a"))).unwrap(), "no longer paused");
    assert_eq!(flow.paused().unwrap(), Paused::default());
    assert_eq!(claim(&*q, "w", 10).len(), 2, "resumed");
}

pub fn pausing_every_task_holds_every_job(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let flow = q.flow().unwrap();
    assert!(flow.pause(None).unwrap().is_empty());
    q.enqueue(vec![job("a", 3, 0), job("b", 3, 0)]).unwrap();
    assert!(flow.paused().unwrap().all);
    assert!(claim(&*q, "w", 10).is_empty());
    // A task paused by name as well is resumed with the rest.
    flow.pause(Some(&name("a"))).unwrap();
    assert!(flow.resume(None).unwrap());
    assert_eq!(flow.paused().unwrap(), Paused::default());
    assert_eq!(claim(&*q, "w", 10).len(), 2);
    assert!(!flow.resume(None).unwrap(), "nothing was paused");
}

pub fn holds_say_what_keeps_each_job_waiting(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let flow = q.flow().unwrap();
    let p = q.enqueue(vec![job("p", 3, 0), job("p", 3, 0)]).unwrap();
    let c = q
        .enqueue((0..3).map(|_| task_limited("c", 1)).collect())
        .unwrap();
    let rated_job = || {
        limited(
            "r",
            JobLimits {
                task_rate: Some(rate("1/h")),
                ..JobLimits::default()
            },
        )
    };
    let r = q.enqueue((0..3).map(|_| rated_job()).collect()).unwrap();
    let k = q
        .enqueue((0..2).map(|_| keyed("kt", "tenant:7", Some(1))).collect())
        .unwrap();
    let free = q.enqueue(vec![job("free", 3, 0)]).unwrap();
    flow.pause(Some(&name("p"))).unwrap();
    let got = claim(&*q, "w", 100);
    let ids: BTreeSet<JobId> = got.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 4, "one each of c, r and kt, and free");
    assert!(ids.contains(&free[0].id()));
    let held = flow.holds().unwrap().held;
    let want = [
        (Hold::Paused { task: "p".into() }, 2),
        (
            Hold::Concurrency {
                target: task("c"),
                limit: 1,
            },
            2,
        ),
        (
            Hold::Rate {
                target: task("r"),
                rate: rate("1/h"),
            },
            2,
        ),
        (
            Hold::Concurrency {
                target: key_target("tenant", Some("7")),
                limit: 1,
            },
            1,
        ),
    ];
    assert_eq!(held.len(), want.len(), "{held:?}");
    for w in &want {
        assert!(held.contains(w), "{w:?} in {held:?}");
    }
    assert!(
        held.windows(2).all(|w| w[0].1 >= w[1].1),
        "largest first: {held:?}"
    );
    // One job at a time: the one claimed holds nothing, the others say why.
    let waiting = |e: &[crate::Enqueued]| {
        e.iter()
            .map(|e| e.id())
            .find(|id| !ids.contains(id))
            .unwrap()
    };
    assert_eq!(
        flow.hold(p[0].id()).unwrap(),
        Some(Hold::Paused { task: "p".into() })
    );
    assert_eq!(
        flow.hold(waiting(&c)).unwrap(),
        Some(Hold::Concurrency {
            target: task("c"),
            limit: 1
        })
    );
    assert_eq!(
        flow.hold(waiting(&r)).unwrap(),
        Some(Hold::Rate {
            target: task("r"),
            rate: rate("1/h")
        })
    );
    assert_eq!(flow.hold(free[0].id()).unwrap(), None, "running");
    let kt = k
        .iter()
        .map(|e| e.id())
        .find(|id| ids.contains(id))
        .unwrap();
    assert_eq!(flow.hold(kt).unwrap(), None, "running");
    assert_eq!(flow.hold(JobId(9_999)).unwrap(), None, "unknown");
    // Paused comes first when several hold a job.
    flow.pause(Some(&name("c"))).unwrap();
    assert_eq!(
        flow.hold(waiting(&c)).unwrap(),
        Some(Hold::Paused { task: "c".into() })
    );
    // A job due later is held by nothing yet.
    let later = crate::NewJob {
        run_at: Some(q.now().saturating_add(Duration::from_secs(60))),
        ..job("p", 3, 0)
    };
    let later = q.enqueue(vec![later]).unwrap()[0].id();
    assert_eq!(flow.hold(later).unwrap(), None);
    // A blocked job waits for its parents.
    if q.capabilities().has(Capability::Dependencies) {
        let mut child = job("free", 1, 0);
        child.after.push(runyard_core::After::job(later));
        let child = q.enqueue(vec![child]).unwrap()[0].id();
        assert_eq!(flow.hold(child).unwrap(), Some(Hold::Dependencies));
    }
}

pub fn a_newcomer_key_is_not_held_back_by_a_backlog(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    q.enqueue((0..1000).map(|_| keyed("t", "tenant:a", None)).collect())
        .unwrap();
    // Some of A have run before B comes.
    for _ in 0..5 {
        let c = claim(&*q, "w", 1);
        done(&*q, "w", &c[0]);
    }
    let b: BTreeSet<JobId> = q
        .enqueue((0..10).map(|_| keyed("t", "tenant:b", None)).collect())
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let mut seen = 0;
    for n in 1..=20 {
        let c = claim(&*q, "w", 1);
        assert_eq!(c.len(), 1);
        if b.contains(&c[0].id) {
            seen += 1;
        }
        done(&*q, "w", &c[0]);
        if seen == b.len() {
            assert!(n <= 20);
            break;
        }
    }
    assert_eq!(
        seen, 10,
        "all of B within the first 20 claims after it came"
    );
    // Priority still comes first.
    let urgent = crate::NewJob {
        limits: JobLimits {
            concurrency_key: Some((super::limits::key("tenant:a"), None)),
            ..JobLimits::default()
        },
        ..job("t", 3, 5)
    };
    let urgent = q.enqueue(vec![urgent]).unwrap()[0].id();
    let c = claim(&*q, "w", 1);
    assert_eq!(c[0].id, urgent);
    // Within a key, jobs keep their order.
    let c = claim(&*q, "w", 5);
    let mut ids: Vec<JobId> = c.iter().map(|c| c.id).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted);
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

pub fn rate_keys_share_the_workers_fairly_too(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let a: Vec<JobId> = q
        .enqueue((0..50).map(|_| rated("t", "api:a", None)).collect())
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    q.enqueue((0..50).map(|_| rated("t", "api:b", None)).collect())
        .unwrap();
    let c = claim(&*q, "w", 10);
    let of_a = c.iter().filter(|c| a.contains(&c.id)).count();
    assert_eq!(of_a, 5, "the two keys alternate");
}

pub fn keyless_batches_stay_first_in_first_out(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let plain = |n: usize| -> Vec<JobId> {
        q.enqueue((0..n).map(|_| job("t", 3, 0)).collect())
            .unwrap()
            .iter()
            .map(|e| e.id())
            .collect()
    };
    // Jobs without a fairness key are one group: a second batch comes
    // after the first, it does not interleave with it.
    let a = plain(20);
    let b = plain(20);
    let mut keyless = Vec::new();
    for _ in 0..5 {
        let c = claim(&*q, "w", 1);
        assert_eq!(c.len(), 1);
        keyless.push(c[0].id);
        done(&*q, "w", &c[0]);
    }
    assert_eq!(keyless, a[..5], "the first batch comes first");
    // A keyed newcomer enters at the frontier: beside the head of the
    // keyless backlog, not behind it.
    let k = q.enqueue(vec![keyed("t", "tenant:a", None)]).unwrap()[0].id();
    let mut order = Vec::new();
    loop {
        let c = claim(&*q, "w", 1);
        let Some(c) = c.first() else { break };
        order.push(c.id);
        done(&*q, "w", c);
    }
    let at = order.iter().position(|&id| id == k);
    assert!(
        at.is_some_and(|at| at < 3),
        "the keyed job is claimed within the first few claims after it came, \
         not at {at:?} of {}",
        order.len()
    );
    keyless.extend(order.iter().filter(|&&id| id != k));
    let want: Vec<JobId> = a.iter().chain(&b).copied().collect();
    assert_eq!(keyless, want, "keyless batches are claimed in batch order");
    // A batch submitted once the others are done still goes in order.
    let c = plain(3);
    let got: Vec<JobId> = claim(&*q, "w", 10).iter().map(|c| c.id).collect();
    assert_eq!(got, c);
}

pub fn a_claim_looks_past_held_jobs(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let flow = q.flow().unwrap();
    flow.pause(Some(&name("p"))).unwrap();
    // One batch: the free jobs' tags come after the held ones'.
    let mut batch: Vec<_> = (0..200).map(|_| job("p", 3, 0)).collect();
    batch.extend((0..200).map(|_| keyed("k", "full", Some(1))));
    batch.extend((0..3).map(|_| job("free", 3, 0)));
    q.enqueue(batch).unwrap();
    let c = claim(&*q, "w", 10);
    let mut tasks: Vec<String> = c.iter().map(|c| c.task.to_string()).collect();
    tasks.sort();
    assert_eq!(
        tasks,
        vec!["free", "free", "free", "k"],
        "held jobs are passed over"
    );
    assert!(claim(&*q, "w", 10).is_empty(), "and never returned");
    flow.resume(None).unwrap();
    assert_eq!(
        claim(&*q, "w", 500).len(),
        200,
        "the held jobs kept their place"
    );
}

/// Each way of inserting jobs that are not yet due (a plain batch, a job
/// with an idempotency key, a large batch, a keyed job, a unique job, a
/// workflow) gives no tag, so it leaves the frontier where it was: a retry
/// due now, tagged at the frontier while nothing waits, keeps its place
/// before a keyless batch inserted after it.
pub fn inserting_jobs_not_yet_due_does_not_move_the_frontier(make: Factory<'_>) {
    type Insert = fn(&dyn crate::Queue, runyard_core::Timestamp);
    fn later(run_at: runyard_core::Timestamp, j: crate::NewJob) -> crate::NewJob {
        crate::NewJob {
            run_at: Some(run_at),
            ..j
        }
    }
    let inserts: [(&str, Insert); 7] = [
        ("nothing", |_, _| {}),
        ("a plain batch", |q, at| {
            q.enqueue(vec![later(at, job("x", 3, 0)), later(at, job("x", 3, 0))])
                .unwrap();
        }),
        ("a job with an idempotency key", |q, at| {
            let j = crate::NewJob {
                idempotency_key: Some("once".into()),
                ..later(at, job("x", 3, 0))
            };
            q.enqueue(vec![j]).unwrap();
        }),
        ("a large batch", |q, at| {
            q.enqueue((0..300).map(|_| later(at, job("x", 3, 0))).collect())
                .unwrap();
        }),
        ("a keyed job", |q, at| {
            q.enqueue(vec![later(at, keyed("x", "tenant:a", None))])
                .unwrap();
        }),
        ("a unique job", |q, at| {
            if q.capabilities().has(Capability::UniqueJobs) {
                let j = super::unique::unique("u", runyard_core::OnConflict::Skip, None);
                q.enqueue(vec![later(at, j)]).unwrap();
            }
        }),
        ("a workflow", |q, at| {
            if q.capabilities().has(Capability::Dependencies) {
                let first = later(at, job("x", 3, 0));
                let second = super::flow::after(job("x", 3, 0), 0, "first");
                q.enqueue(vec![first, second]).unwrap();
            }
        }),
    ];
    for (what, insert) in inserts {
        let (_, q) = fresh(make);
        if !keeps_limits(&*q) {
            return;
        }
        // Two keyless jobs take tags 0 and 1; once claimed, nothing waits.
        q.enqueue(vec![job("t", 3, 0), job("t", 3, 0)]).unwrap();
        let c = claim(&*q, "w", 2);
        assert_eq!(c.len(), 2, "{what}");
        insert(&*q, q.now().saturating_add(Duration::from_secs(3600)));
        // A retry due now, while nothing waits, is tagged one more than the
        // largest tag given: 2, the keyless group's next.
        let retry = crate::Completion {
            lease: c[0].lease(),
            record: super::support::record(&*q, c[0].lease(), runyard_core::OutcomeKind::Failed),
            verdict: crate::Verdict::Retry { at: q.now() },
        };
        q.complete("w", &[retry]).unwrap().results[0].expect("the lease is held");
        // The second job waits again (tag 1: the frontier), and a keyless
        // job comes after them: max(last('') + 1, frontier) = 2, tied with
        // the retry, which has the smaller id.
        q.release("w", &[c[1].lease()]).unwrap()[0].expect("the lease is held");
        let newcomer = q.enqueue(vec![job("t", 3, 0)]).unwrap()[0].id();
        let got: Vec<JobId> = claim(&*q, "w", 3).iter().map(|c| c.id).collect();
        assert_eq!(
            got,
            vec![c[1].id, c[0].id, newcomer],
            "after an insert of {what} not yet due: the released job, the retry, \
             then the job inserted after them"
        );
    }
}
