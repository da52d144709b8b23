//! Conformance cases for dependencies under administration (cancel,
//! `cancel_pending`, retry, a workflow's members, a job's dependents) and
//! for the rest of their rules: a run-at after release, an edge to an
//! idempotency-key duplicate, counts and views.

use std::time::Duration;

use runyard_core::{JobId, JobState, RunIf};

use super::flow::{
    after, after_id, always, cause, claim_all, claim_ids, dead, end, find, keeps_dependencies,
    named, ok, sorted, unblocked, value,
};
use super::support::{fresh, ids, state, view, Factory, LEASE};
use crate::{CancelResult, Cascade, Enqueued, Verdict};

/// Cancelling a blocked job cancels it and, in the cascade, its
/// dependents (naming it); its parent is untouched, and its success later
/// releases nothing.
pub fn cancelling_a_blocked_job_cancels_its_dependents(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 1, "b"),
            always(after(named("d"), 1, "b")),
        ])
        .unwrap());
    let [a, b, c, d] = e[..] else {
        panic!("four ids")
    };
    let r = q.admin().unwrap().cancel(&[b]).unwrap();
    assert_eq!(r.results, vec![CancelResult::Cancelled]);
    assert_eq!(
        r.cascade,
        Cascade {
            cancelled: vec![c],
            unblocked: vec![d],
            ..Cascade::default()
        },
        "c is cancelled; d runs always"
    );
    assert_eq!(view(&*q, b).cancelled_by, None, "cancelled by hand");
    assert_eq!(view(&*q, c).cancelled_by, cause(b, "b"));
    assert_eq!(state(&*q, d), JobState::Queued);
    assert_eq!(state(&*q, a), JobState::Queued);
    let got = claim_all(&*q);
    assert_eq!(sorted(got.iter().map(|c| c.id).collect()), vec![a, d]);
    assert_eq!(
        value(&find(&got, d).parents),
        serde_json::json!({"b": null})
    );
    assert_eq!(ok(&*q, find(&got, a), "1").cascade, Cascade::default());
}

/// Cancelling a running job only asks its worker; its dependents are
/// cancelled when the worker records the attempt as cancelled.
pub fn a_running_job_cancels_its_dependents_when_its_worker_stops_it(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![named("a"), after(named("b"), 0, "a")])
        .unwrap());
    let [a, b] = e[..] else { panic!("two ids") };
    let got = claim_all(&*q);
    let r = q.admin().unwrap().cancel(&[a]).unwrap();
    assert_eq!(r.results, vec![CancelResult::Requested]);
    assert_eq!(r.cascade, Cascade::default());
    assert_eq!(state(&*q, b), JobState::Blocked);
    let hb = q.heartbeat("w", &[got[0].lease()], LEASE).unwrap();
    assert_eq!(hb.cancel_requested, vec![got[0].lease()]);
    let r = end(&*q, &got[0], Verdict::Cancelled);
    assert_eq!(
        r.cascade,
        Cascade {
            cancelled: vec![b],
            ..Cascade::default()
        }
    );
    assert_eq!(view(&*q, b).cancelled_by, cause(a, "a"));
}

/// `cancel_pending` cancels blocked jobs with the queued and scheduled.
pub fn cancel_pending_includes_blocked_jobs(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 1, "b"),
            crate::conformance::job("plain", 1, 0),
        ])
        .unwrap());
    let got = sorted(q.admin().unwrap().cancel_pending().unwrap());
    assert_eq!(got, e);
    let n = q.counts().unwrap();
    assert_eq!((n.cancelled, n.unfinished()), (4, 0));
    assert!(claim_ids(&*q).is_empty());
}

/// Retrying the dead root gives every job its end cancelled,
/// transitively, back its `blocked` state (in `reblocked`, with no cause
/// any more); the whole chain then runs through. A job whose parent is
/// still dead cannot be retried; a retry that cancelled nothing has an
/// empty cascade.
pub fn retrying_the_dead_root_gives_back_what_it_cancelled(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 1, "b"),
            after(named("d"), 1, "b"),
            named("other"),
        ])
        .unwrap());
    let [a, b, c, d, other] = e[..] else {
        panic!("five ids")
    };
    let got = claim_all(&*q);
    let r = dead(&*q, find(&got, a));
    assert_eq!(sorted(r.cascade.cancelled), vec![b, c, d]);
    dead(&*q, find(&got, other));
    let admin = q.admin().unwrap();
    assert_eq!(admin.retry(b).unwrap(), None, "its parent is still dead");
    assert_eq!(state(&*q, b), JobState::Cancelled);
    assert_eq!(view(&*q, b).cancelled_by, cause(a, "a"));
    let cascade = admin.retry(a).unwrap().expect("retried");
    assert_eq!(sorted(cascade.reblocked), vec![b, c, d]);
    assert!(cascade.unblocked.is_empty() && cascade.cancelled.is_empty());
    assert_eq!(state(&*q, a), JobState::Queued);
    for id in [b, c, d] {
        let v = view(&*q, id);
        assert_eq!(v.state, JobState::Blocked, "job {id}");
        assert_eq!(v.cancelled_by, None, "job {id}");
    }
    assert_eq!(q.counts().unwrap().blocked, 3);
    assert_eq!(
        admin.retry(other).unwrap(),
        Some(Cascade::default()),
        "it cancelled nothing"
    );
    let mut order = vec![];
    loop {
        let got = claim_all(&*q);
        if got.is_empty() {
            break;
        }
        for c in &got {
            ok(&*q, c, "1");
            order.push(c.id);
        }
    }
    assert_eq!(order, vec![a, other, b, c, d]);
    let n = q.counts().unwrap();
    assert_eq!((n.succeeded, n.unfinished()), (5, 0));
    assert_eq!(view(&*q, a).attempts.len(), 2);
    assert_eq!(view(&*q, c).attempts.len(), 1, "c ran once");
}

/// A retry puts the jobs it gives back, and the retried job, back among
/// what a waiting `run_if = always` job counts: one after a retried job
/// and another job waits again for both to end.
pub fn a_retry_makes_an_always_job_wait_again(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            named("x"),
            after(named("b"), 0, "a"),
            always(after(after(named("g"), 2, "b"), 1, "x")),
            always(after(after(named("h"), 0, "a"), 1, "x")),
        ])
        .unwrap());
    let [a, x, b, g, h] = e[..] else {
        panic!("five ids")
    };
    let got = claim_all(&*q);
    let r = dead(&*q, find(&got, a));
    assert_eq!(r.cascade.cancelled, vec![b]);
    assert_eq!(state(&*q, g), JobState::Blocked, "x has not ended");
    let r = q.admin().unwrap().retry(a).unwrap().expect("retried");
    assert_eq!(r.reblocked, vec![b]);
    // x ends: g and h still wait, for b and for a.
    assert_eq!(ok(&*q, find(&got, x), "0").cascade, Cascade::default());
    assert_eq!(state(&*q, g), JobState::Blocked);
    assert_eq!(state(&*q, h), JobState::Blocked);
    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(ok(&*q, &got[0], "1").cascade, unblocked(&[b, h]));
    let got = claim_all(&*q);
    assert_eq!(sorted(got.iter().map(|c| c.id).collect()), vec![b, h]);
    assert_eq!(ok(&*q, find(&got, b), "2").cascade, unblocked(&[g]));
    let got = claim_all(&*q);
    assert_eq!(value(&got[0].parents), serde_json::json!({"b": 2, "x": 0}));
}

/// A job given back by a retry that another dead parent still cancels
/// stays cancelled, now naming that parent's root; it and its dependents
/// are in none of the cascade's lists.
pub fn a_retry_leaves_cancelled_what_another_parent_still_cancels(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            named("y"),
            after(after(named("d"), 0, "a"), 1, "y"),
            after(named("e"), 2, "d"),
            after(named("f"), 0, "a"),
        ])
        .unwrap());
    let [a, y, d, e, f] = e[..] else {
        panic!("five ids")
    };
    let got = claim_all(&*q);
    assert_eq!(
        sorted(dead(&*q, find(&got, a)).cascade.cancelled),
        vec![d, e, f]
    );
    dead(&*q, find(&got, y));
    let r = q.admin().unwrap().retry(a).unwrap().expect("retried");
    assert_eq!(
        r,
        Cascade {
            reblocked: vec![f],
            ..Cascade::default()
        }
    );
    for id in [d, e] {
        let v = view(&*q, id);
        assert_eq!(v.state, JobState::Cancelled, "job {id}");
        assert_eq!(v.cancelled_by, cause(y, "y"), "job {id}");
    }
    assert_eq!(state(&*q, f), JobState::Blocked);
}

/// `workflow` gives the connected component of any member, by edges
/// either way; `dependents` a job's direct children.
pub fn a_workflow_is_found_from_any_member(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 0, "a"),
            after(named("d"), 2, "c"),
            named("x"),
            after(named("y"), 4, "x"),
            named("z"),
        ])
        .unwrap());
    let [a, b, c, d, x, y, z] = e[..] else {
        panic!("seven ids")
    };
    let late = q.enqueue_one(after_id(named("late"), b)).unwrap().id();
    let admin = q.admin().unwrap();
    for m in [a, b, c, d, late] {
        assert_eq!(
            admin.workflow(m).unwrap(),
            vec![a, b, c, d, late],
            "from {m}"
        );
    }
    assert_eq!(admin.workflow(y).unwrap(), vec![x, y]);
    assert_eq!(admin.workflow(z).unwrap(), vec![z]);
    assert_eq!(admin.workflow(JobId(late.0 + 1000)).unwrap(), vec![]);
    let inspect = q.inspect().unwrap();
    assert_eq!(inspect.dependents(a).unwrap(), vec![b, c]);
    assert_eq!(inspect.dependents(b).unwrap(), vec![late]);
    assert_eq!(inspect.dependents(d).unwrap(), vec![]);
    assert_eq!(inspect.dependents(z).unwrap(), vec![]);
}

/// A job whose own run-at is later than its parents' end is scheduled
/// when released, and claimable only at its run-at; one whose run-at has
/// passed is queued.
pub fn a_released_job_waits_for_its_own_run_at(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let mut late = after(named("late"), 0, "a");
    late.run_at = Some(q.now().saturating_add(Duration::from_secs(60)));
    let mut soon = after(named("soon"), 0, "a");
    soon.run_at = Some(q.now().saturating_add(Duration::from_secs(5)));
    let e = ids(&q.enqueue(vec![named("a"), late, soon]).unwrap());
    let [a, late, soon] = e[..] else {
        panic!("three ids")
    };
    assert_eq!(state(&*q, late), JobState::Blocked);
    let got = claim_all(&*q);
    clock.advance(Duration::from_secs(10));
    let r = ok(&*q, &got[0], "null");
    assert_eq!(sorted(r.cascade.unblocked), vec![late, soon]);
    assert_eq!(state(&*q, late), JobState::Scheduled);
    assert_eq!(state(&*q, soon), JobState::Queued);
    assert_eq!(claim_ids(&*q), vec![soon]);
    assert!(claim_ids(&*q).is_empty());
    clock.advance(Duration::from_secs(51));
    assert_eq!(claim_ids(&*q), vec![late]);
    assert_eq!(state(&*q, a), JobState::Succeeded);
}

/// An edge to a job of the batch that was a duplicate by idempotency key
/// waits on the job that already existed.
pub fn an_edge_to_a_duplicate_waits_on_the_existing_job(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let keyed = || crate::NewJob {
        idempotency_key: Some("k".to_string()),
        ..named("k")
    };
    let k = q.enqueue_one(keyed()).unwrap().id();
    let e = q
        .enqueue(vec![keyed(), after(named("child"), 0, "k")])
        .unwrap();
    assert_eq!(e[0], Enqueued::Duplicate(k));
    let child = e[1].id();
    assert_eq!(view(&*q, child).after, vec![k]);
    assert_eq!(state(&*q, child), JobState::Blocked);
    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![k]);
    assert_eq!(ok(&*q, &got[0], "3").cascade, unblocked(&[child]));
    let got = claim_all(&*q);
    assert_eq!(value(&got[0].parents), serde_json::json!({"k": 3}));
}

/// Counts treat blocked jobs as unfinished; a view lists the parents' ids
/// in the order named and keeps the name and `run_if`.
pub fn views_and_counts_of_a_workflow(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q.enqueue(vec![named("p1"), named("p2")]).unwrap());
    let [p1, p2] = e[..] else { panic!("two ids") };
    let fin = always(after_id(after_id(named("fin"), p2), p1));
    let fin = q.enqueue_one(fin).unwrap().id();
    let plain = q
        .enqueue_one(crate::conformance::job("t", 1, 0))
        .unwrap()
        .id();
    let n = q.counts().unwrap();
    assert_eq!(
        (n.queued, n.blocked, n.unfinished(), n.total()),
        (3, 1, 4, 4)
    );
    let v = view(&*q, fin);
    assert_eq!(v.after, vec![p2, p1]);
    assert_eq!(v.name.as_deref(), Some("fin"));
    assert_eq!(v.run_if, RunIf::Always);
    assert_eq!(v.state, JobState::Blocked);
    let v = view(&*q, plain);
    assert_eq!((v.name, v.after, v.run_if), (None, vec![], RunIf::Success));
    assert_eq!(view(&*q, p1).name.as_deref(), Some("p1"));
}

/// A `run_if = always` job released by its parent's death but not yet
/// claimed waits again when that parent is retried (listed in
/// `reblocked`), and is released again by the parent's new end.
pub fn a_retry_blocks_again_a_released_always_job(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![named("a"), always(after(named("cleanup"), 0, "a"))])
        .unwrap());
    let [a, cleanup] = e[..] else {
        panic!("two ids")
    };
    let got = claim_all(&*q);
    assert_eq!(dead(&*q, &got[0]).cascade, unblocked(&[cleanup]));
    assert_eq!(state(&*q, cleanup), JobState::Queued);
    let r = q.admin().unwrap().retry(a).unwrap().expect("retried");
    assert_eq!(
        r,
        Cascade {
            reblocked: vec![cleanup],
            ..Cascade::default()
        }
    );
    assert_eq!(state(&*q, cleanup), JobState::Blocked);
    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(ok(&*q, &got[0], "4").cascade, unblocked(&[cleanup]));
    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![cleanup]);
    assert_eq!(value(&got[0].parents), serde_json::json!({"a": 4}));
}
