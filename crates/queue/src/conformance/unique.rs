//! Conformance cases for unique jobs (`docs/backends.md` §8, "Unique
//! jobs"): the holder of a key, skip and replace, `within`, a running job
//! that holds nothing, keys within one batch, racing submitters, and the
//! idempotency key checked first.
//!
//! Every case passes without doing anything on a queue that does not claim
//! [`Capability::UniqueJobs`].

use std::time::Duration;

use runyard_core::{JobParams, JobState, OnConflict, Unique};

use super::support::{fresh, job, state, succeed, view, Factory, LEASE};
use crate::{Capability, Enqueued, NewJob, Queue, QueueErrorKind};

pub(super) fn keeps_unique(q: &dyn Queue) -> bool {
    q.capabilities().has(Capability::UniqueJobs)
}

/// A job of task `t` with unique key `key`.
pub(super) fn unique(key: &str, on_conflict: OnConflict, within: Option<Duration>) -> NewJob {
    NewJob {
        unique: Some(Unique {
            key: key.to_string(),
            within,
            on_conflict,
        }),
        ..job("t", 3, 0)
    }
}

fn skip(key: &str) -> NewJob {
    unique(key, OnConflict::Skip, None)
}

fn params(n: u32) -> JobParams {
    JobParams::from_json(&format!(r#"{{"n": {n}}}"#)).unwrap()
}

fn one(q: &dyn Queue, j: NewJob) -> Enqueued {
    q.enqueue(vec![j]).unwrap().remove(0)
}

pub fn a_waiting_job_holds_its_unique_key(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let Enqueued::New(a) = one(&*q, skip("k")) else {
        panic!("the first job with a key is added")
    };
    assert_eq!(one(&*q, skip("k")), Enqueued::Duplicate(a));
    let other = one(&*q, skip("other"));
    assert!(matches!(other, Enqueued::New(_)), "another key is free");
    assert_eq!(q.counts().unwrap().queued, 2);
    // A scheduled job holds its key too.
    let later = NewJob {
        run_at: Some(q.now().saturating_add(Duration::from_secs(60))),
        ..skip("s")
    };
    let Enqueued::New(s) = one(&*q, later) else {
        panic!("added")
    };
    assert_eq!(state(&*q, s), JobState::Scheduled);
    assert_eq!(one(&*q, skip("s")), Enqueued::Duplicate(s));
    // Without a key nothing is held back.
    assert!(matches!(one(&*q, job("t", 3, 0)), Enqueued::New(_)));
    assert_eq!(q.counts().unwrap().total(), 4);
}

pub fn replace_gives_the_waiting_job_new_parameters_and_run_at(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let first = NewJob {
        params: params(1),
        ..unique("k", OnConflict::Replace, None)
    };
    let Enqueued::New(a) = one(&*q, first) else {
        panic!("added")
    };
    let later = q.now().saturating_add(Duration::from_secs(10));
    let second = NewJob {
        params: params(2),
        run_at: Some(later),
        ..unique("k", OnConflict::Replace, None)
    };
    assert_eq!(one(&*q, second), Enqueued::Replaced(a));
    let v = view(&*q, a);
    assert_eq!(v.params, params(2), "the holder takes the new parameters");
    assert_eq!(v.state, JobState::Scheduled, "and the new run-at");
    assert!(q.claim("w", 10, LEASE).unwrap().is_empty());
    // A replace without a run-at makes it due now (a debounce that fires).
    let third = NewJob {
        params: params(3),
        ..unique("k", OnConflict::Replace, None)
    };
    assert_eq!(one(&*q, third), Enqueued::Replaced(a));
    assert_eq!(state(&*q, a), JobState::Queued);
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(c.len(), 1, "one job, not three");
    assert_eq!((c[0].id, c[0].params.clone()), (a, params(3)));
    assert_eq!(c[0].attempt, 1, "its attempts stay");
    // A skip keeps the holder as it is.
    let fourth = NewJob {
        params: params(4),
        ..skip("k2")
    };
    let Enqueued::New(b) = one(&*q, fourth) else {
        panic!("added")
    };
    let fifth = NewJob {
        params: params(5),
        ..skip("k2")
    };
    assert_eq!(one(&*q, fifth), Enqueued::Duplicate(b));
    assert_eq!(view(&*q, b).params, params(4));
}

pub fn within_holds_the_key_after_a_success(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let within = Some(Duration::from_secs(60));
    let Enqueued::New(a) = one(&*q, unique("k", OnConflict::Skip, within)) else {
        panic!("added")
    };
    let c = q.claim("w", 1, LEASE).unwrap();
    q.started("w", &[(c[0].lease(), q.now())]).unwrap();
    succeed(&*q, "w", &c[0]).unwrap();
    assert_eq!(
        one(&*q, unique("k", OnConflict::Skip, within)),
        Enqueued::Duplicate(a),
        "a success within the minute holds the key"
    );
    assert_eq!(
        one(&*q, unique("k", OnConflict::Replace, within)),
        Enqueued::Duplicate(a),
        "a succeeded job is not replaced"
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        one(&*q, unique("k", OnConflict::Skip, within)),
        Enqueued::Duplicate(a)
    );
    clock.advance(Duration::from_secs(31));
    let Enqueued::New(b) = one(&*q, unique("k", OnConflict::Skip, within)) else {
        panic!("a success more than a minute ago holds nothing")
    };
    assert_ne!(a, b);
    // Without `within`, a success holds nothing at all.
    let Enqueued::New(c2) = one(&*q, skip("j")) else {
        panic!("added")
    };
    let c = q.claim("w", 10, LEASE).unwrap();
    let mine = c.iter().find(|c| c.id == c2).expect("claimed");
    succeed(&*q, "w", mine).unwrap();
    assert!(matches!(one(&*q, skip("j")), Enqueued::New(_)));
    // A job that ended dead holds nothing, even with `within`.
    let Enqueued::New(d) = one(&*q, unique("dead", OnConflict::Skip, within)) else {
        panic!("added")
    };
    loop {
        let c = q.claim("w", 10, LEASE).unwrap();
        let Some(mine) = c.iter().find(|c| c.id == d) else {
            break;
        };
        let done = crate::Completion {
            lease: mine.lease(),
            record: super::support::record(&*q, mine.lease(), runyard_core::OutcomeKind::Failed),
            verdict: crate::Verdict::Dead,
        };
        q.complete("w", &[done]).unwrap();
    }
    assert_eq!(state(&*q, d), JobState::Dead);
    assert!(matches!(
        one(&*q, unique("dead", OnConflict::Skip, within)),
        Enqueued::New(_)
    ));
}

pub fn a_running_job_holds_no_key_and_one_waits_behind_it(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let Enqueued::New(a) = one(&*q, skip("k")) else {
        panic!("added")
    };
    let c = q.claim("w", 1, LEASE).unwrap();
    assert_eq!(c[0].id, a);
    // Claimed, not started: already not a holder.
    let Enqueued::New(b) = one(&*q, skip("k")) else {
        panic!("a claimed job is not a holder")
    };
    q.started("w", &[(c[0].lease(), q.now())]).unwrap();
    assert_eq!(one(&*q, skip("k")), Enqueued::Duplicate(b), "one waits");
    assert_eq!(
        one(&*q, unique("k", OnConflict::Replace, None)),
        Enqueued::Replaced(b),
        "the waiting one is replaced, not the running one"
    );
    succeed(&*q, "w", &c[0]).unwrap();
    assert_eq!(one(&*q, skip("k")), Enqueued::Duplicate(b));
    let counts = q.counts().unwrap();
    assert_eq!((counts.succeeded, counts.queued), (1, 1));
}

pub fn jobs_of_one_batch_see_the_keys_before_them(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let replace = NewJob {
        params: params(2),
        ..unique("k", OnConflict::Replace, None)
    };
    let e = q
        .enqueue(vec![
            NewJob {
                params: params(1),
                ..skip("k")
            },
            skip("k"),
            skip("other"),
            replace,
            skip("other"),
        ])
        .unwrap();
    let a = e[0].id();
    let o = e[2].id();
    assert!(matches!(e[0], Enqueued::New(_)));
    assert_eq!(e[1], Enqueued::Duplicate(a));
    assert!(matches!(e[2], Enqueued::New(_)));
    assert_ne!(a, o);
    assert_eq!(e[3], Enqueued::Replaced(a));
    assert_eq!(e[4], Enqueued::Duplicate(o));
    assert_eq!(q.counts().unwrap().total(), 2);
    assert_eq!(view(&*q, a).params, params(2));
}

pub fn racing_submitters_of_one_key_make_one_job(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let q: &dyn Queue = &*q;
    let barrier = std::sync::Barrier::new(8);
    let got: Vec<Enqueued> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    one(q, skip("race"))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let new: Vec<_> = got.iter().filter(|e| !e.is_existing()).collect();
    assert_eq!(new.len(), 1, "exactly one job: {got:?}");
    let id = new[0].id();
    assert!(got.iter().all(|e| e.id() == id), "{got:?}");
    assert_eq!(q.counts().unwrap().total(), 1);
}

pub fn the_idempotency_key_is_checked_before_the_unique_key(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) {
        return;
    }
    let with = |idem: &str, key: &str| NewJob {
        idempotency_key: Some(idem.to_string()),
        ..skip(key)
    };
    let Enqueued::New(a) = one(&*q, with("i", "k")) else {
        panic!("added")
    };
    let c = q.claim("w", 1, LEASE).unwrap();
    succeed(&*q, "w", &c[0]).unwrap();
    // `k` has no holder now, but the idempotency key is used for ever.
    assert_eq!(one(&*q, with("i", "k")), Enqueued::Duplicate(a));
    assert_eq!(one(&*q, with("i", "fresh")), Enqueued::Duplicate(a));
    // A fresh idempotency key with a held unique key: the holder.
    let Enqueued::New(b) = one(&*q, skip("k")) else {
        panic!("added")
    };
    assert_eq!(one(&*q, with("j", "k")), Enqueued::Duplicate(b));
    // The idempotency key of a job that was not added is not taken.
    let c = q.claim("w", 1, LEASE).unwrap();
    succeed(&*q, "w", &c[0]).unwrap();
    let Enqueued::New(j) = one(&*q, with("j", "k")) else {
        panic!("`j` was never taken")
    };
    assert_ne!(j, b);
}

pub fn a_unique_job_after_others_is_refused(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_unique(&*q) || !q.capabilities().has(Capability::Dependencies) {
        return;
    }
    let mut child = skip("k");
    child.after.push(runyard_core::After {
        parent: runyard_core::Parent::Batch(0),
        key: "p".into(),
        many: false,
    });
    let err = q.enqueue(vec![job("t", 1, 0), child]).unwrap_err();
    assert_eq!(err.kind(), QueueErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("unique"), "{err}");
    assert_eq!(q.counts().unwrap().total(), 0, "nothing was enqueued");
}
