//! Conformance cases for jobs that wait for other jobs: the `blocked`
//! state, release on the parents' success, the parents object, the
//! cascade of a failure, and what is checked when such jobs are inserted.
//! Also the helpers the other dependency cases (`flow_admin`,
//! `flow_random`) share.
//!
//! Every case first checks that the queue claims
//! [`Capability::Dependencies`] and passes without doing anything when it
//! does not: a backend keeps the capability only once it passes them all.

use std::time::Duration;

use runyard_core::{After, Cause, JobId, JobState, OutcomeKind, Output, Parent, RunIf};

use super::support::{fresh, ids, job, record, state, view, Factory, LEASE};
use crate::{
    Capability, Cascade, Claimed, Completion, ListFilter, NewJob, Queue, QueueErrorKind, Recorded,
    Rescue, Verdict,
};

/// Whether the queue keeps dependencies (each case runs only then).
pub(super) fn keeps_dependencies(q: &dyn Queue) -> bool {
    q.capabilities().has(Capability::Dependencies)
}

/// A job of task `t` (one attempt) with this name.
pub(super) fn named(name: &str) -> NewJob {
    NewJob {
        name: Some(name.to_string()),
        ..job("t", 1, 0)
    }
}

/// `j`, after an earlier job of its batch, seen under `key`.
pub(super) fn after(mut j: NewJob, index: usize, key: &str) -> NewJob {
    j.after.push(After {
        parent: Parent::Batch(index),
        key: key.to_string(),
        many: false,
    });
    j
}

/// `j`, after a job already in the queue.
pub(super) fn after_id(mut j: NewJob, id: JobId) -> NewJob {
    j.after.push(After::job(id));
    j
}

/// `j` with `run_if = always`.
pub(super) fn always(mut j: NewJob) -> NewJob {
    j.run_if = RunIf::Always;
    j
}

pub(super) fn json(text: &str) -> Output {
    Output::from_json(text).expect("valid JSON")
}

/// An output as a JSON value (backends may store JSON normalised).
pub(super) fn value(o: &Output) -> serde_json::Value {
    serde_json::from_str(o.as_json()).expect("an output is JSON")
}

/// Claims everything ready, for worker `w`, started.
pub(super) fn claim_all(q: &dyn Queue) -> Vec<Claimed> {
    let c = q.claim("w", 1000, LEASE).unwrap();
    let starts: Vec<_> = c.iter().map(|c| (c.lease(), q.now())).collect();
    q.started("w", &starts).unwrap();
    c
}

/// Claims everything ready and returns their ids.
pub(super) fn claim_ids(q: &dyn Queue) -> Vec<JobId> {
    claim_all(q).iter().map(|c| c.id).collect()
}

/// Ends the claimed attempt `c` (worker `w`) with `verdict`.
pub(super) fn end(q: &dyn Queue, c: &Claimed, verdict: Verdict) -> Recorded {
    let outcome = match verdict {
        Verdict::Succeeded(_) => OutcomeKind::Succeeded,
        Verdict::Cancelled => OutcomeKind::Cancelled,
        Verdict::Retry { .. } | Verdict::Dead => OutcomeKind::Failed,
    };
    let done = Completion {
        lease: c.lease(),
        record: record(q, c.lease(), outcome),
        verdict,
    };
    let r = q.complete("w", &[done]).unwrap();
    assert_eq!(r.results, vec![Ok(())], "job {} was recorded", c.id);
    r
}

/// Succeeds `c` with the output given as JSON.
pub(super) fn ok(q: &dyn Queue, c: &Claimed, output: &str) -> Recorded {
    end(q, c, Verdict::Succeeded(json(output)))
}

/// Ends `c` dead.
pub(super) fn dead(q: &dyn Queue, c: &Claimed) -> Recorded {
    end(q, c, Verdict::Dead)
}

/// The claim of job `id` among `claimed`.
pub(super) fn find(claimed: &[Claimed], id: JobId) -> &Claimed {
    claimed
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("job {id} was claimed"))
}

/// Sorted, to compare sets of ids.
pub(super) fn sorted(mut v: Vec<JobId>) -> Vec<JobId> {
    v.sort();
    v
}

/// A cascade with only these jobs unblocked.
pub(super) fn unblocked(ids: &[JobId]) -> Cascade {
    Cascade {
        unblocked: ids.to_vec(),
        ..Cascade::default()
    }
}

/// The ids of the jobs `list` shows in state `s`.
pub(super) fn listed(q: &dyn Queue, s: JobState) -> Vec<JobId> {
    let filter = ListFilter {
        state: Some(s),
        ..ListFilter::default()
    };
    let all = q.inspect().unwrap().list(&filter).unwrap();
    all.iter().map(|v| v.id).collect()
}

/// The cause a job names when `id` (named `name`) cancelled it.
pub(super) fn cause(id: JobId, name: &str) -> Option<Box<Cause>> {
    Some(Box::new(Cause {
        job: id,
        name: Some(name.to_string()),
    }))
}

/// A chain a → b → c: the later ones are blocked (in views, counts and
/// lists) until the one before succeeds; each release is in the cascade
/// of that success, and each job sees its parent's output under its name.
pub fn a_chain_runs_in_order_and_passes_outputs_on(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 1, "b"),
        ])
        .unwrap();
    let [a, b, c] = ids(&e)[..] else {
        panic!("three ids")
    };
    assert_eq!(state(&*q, a), JobState::Queued);
    assert_eq!(state(&*q, b), JobState::Blocked);
    assert_eq!(state(&*q, c), JobState::Blocked);
    let n = q.counts().unwrap();
    assert_eq!((n.queued, n.blocked, n.unfinished()), (1, 2, 3));
    assert_eq!(listed(&*q, JobState::Blocked), vec![b, c]);
    assert_eq!(q.inspect().unwrap().counts_by_task().unwrap()[0].1, n);

    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
    assert!(got[0].parents.is_none(), "a job after none sees null");
    assert_eq!(ok(&*q, &got[0], r#"{"rows":3}"#).cascade, unblocked(&[b]));
    assert_eq!(state(&*q, b), JobState::Queued);
    assert_eq!(state(&*q, c), JobState::Blocked);

    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);
    assert_eq!(
        value(&got[0].parents),
        serde_json::json!({"a": {"rows": 3}})
    );
    assert_eq!(ok(&*q, &got[0], "7").cascade, unblocked(&[c]));

    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(value(&got[0].parents), serde_json::json!({"b": 7}));
    assert_eq!(ok(&*q, &got[0], "null").cascade, Cascade::default());

    let n = q.counts().unwrap();
    assert_eq!((n.succeeded, n.unfinished()), (3, 0));
    let v = view(&*q, c);
    assert_eq!(v.name.as_deref(), Some("c"));
    assert_eq!(v.after, vec![b]);
    assert_eq!(v.run_if, RunIf::Success);
    assert_eq!(v.cancelled_by, None);
    assert_eq!(view(&*q, a).after, Vec::<JobId>::new());
}

/// Five copies of one name, then a job after all of them and after a job
/// given by id: it stays blocked until the last of them succeeds, and sees
/// the copies' outputs as a list in submission order (whatever order they
/// ended in) and the other under its id.
pub fn a_fan_in_waits_for_every_copy(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let x = q.enqueue_one(named("x")).unwrap().id();
    let mut batch: Vec<NewJob> = (0..5).map(|_| named("shard")).collect();
    let mut fan_in = after_id(named("load"), x);
    for i in 0..5 {
        fan_in.after.push(After {
            parent: Parent::Batch(i),
            key: "shard".to_string(),
            many: true,
        });
    }
    batch.push(fan_in);
    let e = ids(&q.enqueue(batch).unwrap());
    let (shards, load) = (&e[..5], e[5]);
    assert_eq!(state(&*q, load), JobState::Blocked);
    let mut after = vec![x];
    after.extend_from_slice(shards);
    assert_eq!(view(&*q, load).after, after, "parents in the order named");

    let got = claim_all(&*q);
    assert_eq!(got.len(), 6, "x and the shards, not the fan-in");
    assert!(got.iter().all(|c| c.id != load));
    assert_eq!(ok(&*q, find(&got, x), r#""x""#).cascade, Cascade::default());
    // The shards end in reverse order; the fan-in is released by the last.
    for (n, &s) in shards.iter().enumerate().rev() {
        let r = ok(&*q, find(&got, s), &n.to_string());
        if n > 0 {
            assert_eq!(r.cascade, Cascade::default(), "shard {n} was not the last");
            assert_eq!(state(&*q, load), JobState::Blocked);
        } else {
            assert_eq!(r.cascade, unblocked(&[load]));
        }
    }
    let got = claim_all(&*q);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, load);
    let mut want = serde_json::Map::new();
    want.insert(x.to_string(), serde_json::json!("x"));
    want.insert("shard".to_string(), serde_json::json!([0, 1, 2, 3, 4]));
    assert_eq!(value(&got[0].parents), serde_json::Value::Object(want));
}

/// A job that ends dead after its last attempt (a retry before it moves
/// nothing) cancels every job after it that needs it to succeed,
/// transitively, each naming it (the root, for grandchildren too); a job
/// after it with `run_if = always` runs once its other parent has ended,
/// seeing `null` for the dead one.
pub fn a_dead_parent_cancels_its_dependents_naming_the_root(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let mut a = named("a");
    a.settings = super::support::settings(2, 0);
    let mut cleanup = always(after(named("cleanup"), 0, "a"));
    cleanup = after(cleanup, 1, "x");
    let e = ids(&q
        .enqueue(vec![
            a,
            named("x"),
            after(named("b"), 0, "a"),
            after(named("c"), 2, "b"),
            cleanup,
        ])
        .unwrap());
    let [a, x, b, c, cleanup] = e[..] else {
        panic!("five ids")
    };
    let got = claim_all(&*q);
    assert_eq!(sorted(got.iter().map(|c| c.id).collect()), vec![a, x]);
    let retry = Verdict::Retry {
        at: q.now().saturating_add(Duration::from_secs(1)),
    };
    assert_eq!(end(&*q, find(&got, a), retry).cascade, Cascade::default());
    assert_eq!(state(&*q, b), JobState::Blocked, "a retry is no end");
    clock.advance(Duration::from_secs(2));
    let again = claim_all(&*q);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempt), (a, 2));
    let r = dead(&*q, &again[0]);
    assert_eq!(sorted(r.cascade.cancelled.clone()), vec![b, c]);
    assert!(r.cascade.unblocked.is_empty() && r.cascade.reblocked.is_empty());
    for id in [b, c] {
        let v = view(&*q, id);
        assert_eq!(v.state, JobState::Cancelled);
        assert_eq!(v.cancelled_by, cause(a, "a"), "job {id} names the root");
        assert!(v.attempts.is_empty(), "never ran");
    }
    assert_eq!(state(&*q, cleanup), JobState::Blocked, "x has not ended");
    assert_eq!(view(&*q, a).cancelled_by, None);

    assert_eq!(ok(&*q, find(&got, x), "5").cascade, unblocked(&[cleanup]));
    let got = claim_all(&*q);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, cleanup);
    assert_eq!(
        value(&got[0].parents),
        serde_json::json!({"a": null, "x": 5})
    );
    ok(&*q, &got[0], "null");
    let n = q.counts().unwrap();
    assert_eq!(
        (n.succeeded, n.dead, n.cancelled, n.unfinished()),
        (2, 1, 2, 0)
    );
}

/// A job lost on its last attempt (its lease expired, or its worker
/// rescued by name) ends dead through `rescue`, whose cascade cancels its
/// dependents, naming it.
pub fn a_parent_lost_on_its_last_attempt_cancels_its_dependents(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 1, "b"),
        ])
        .unwrap());
    let [a, b, c] = e[..] else {
        panic!("three ids")
    };
    let got = q.claim("w", 10, Duration::from_secs(5)).unwrap();
    q.started("w", &[(got[0].lease(), q.now())]).unwrap();
    clock.advance(Duration::from_secs(10));
    let r = q.rescue(Rescue::Expired).unwrap();
    assert_eq!(r.ids, vec![a]);
    assert_eq!(sorted(r.cascade.cancelled), vec![b, c]);
    assert_eq!(state(&*q, a), JobState::Dead);
    assert_eq!(view(&*q, c).cancelled_by, cause(a, "a"));
    assert_eq!(q.counts().unwrap().unfinished(), 0);

    // The same when the worker is rescued by name.
    let e = ids(&q
        .enqueue(vec![named("p"), after(named("q"), 0, "p")])
        .unwrap());
    let got = q.claim("gone", 10, LEASE).unwrap();
    q.started("gone", &[(got[0].lease(), q.now())]).unwrap();
    let r = q.rescue(Rescue::Worker("gone".to_string())).unwrap();
    assert_eq!(r.ids, vec![e[0]]);
    assert_eq!(r.cascade.cancelled, vec![e[1]]);
    assert_eq!(view(&*q, e[1]).cancelled_by, cause(e[0], "p"));
}

/// A diamond a → (b, c) → d, with a cleanup after b and c: b dies, so d is
/// cancelled at once (though c has not ended), naming b; the cleanup runs
/// once c succeeds, and c's success releases nothing else.
pub fn a_diamond_with_a_failed_branch(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![
            named("a"),
            after(named("b"), 0, "a"),
            after(named("c"), 0, "a"),
            after(after(named("d"), 1, "b"), 2, "c"),
            always(after(after(named("e"), 1, "b"), 2, "c")),
        ])
        .unwrap());
    let [a, b, c, d, cleanup] = e[..] else {
        panic!("five ids")
    };
    let got = claim_all(&*q);
    assert_eq!(ok(&*q, &got[0], "1").cascade, unblocked(&[b, c]));
    let got = claim_all(&*q);
    assert_eq!(sorted(got.iter().map(|c| c.id).collect()), vec![b, c]);
    assert_eq!(value(&got[0].parents), serde_json::json!({"a": 1}));
    let r = dead(&*q, find(&got, b));
    assert_eq!(
        r.cascade,
        Cascade {
            cancelled: vec![d],
            ..Cascade::default()
        }
    );
    assert_eq!(view(&*q, d).cancelled_by, cause(b, "b"));
    assert_eq!(state(&*q, cleanup), JobState::Blocked);
    assert_eq!(ok(&*q, find(&got, c), "2").cascade, unblocked(&[cleanup]));
    let got = claim_all(&*q);
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![cleanup]);
    assert_eq!(
        value(&got[0].parents),
        serde_json::json!({"b": null, "c": 2})
    );
    assert_eq!(state(&*q, a), JobState::Succeeded);
}

/// A job inserted after jobs that have already ended: queued at once when
/// they succeeded; cancelled at once, naming the root, when one it needs
/// ended dead (its own dependents in the same batch with it); queued at
/// once when it runs always.
pub fn parents_that_already_ended_count_at_insert(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q.enqueue(vec![named("p"), named("f")]).unwrap());
    let [p, f] = e[..] else { panic!("two ids") };
    let got = claim_all(&*q);
    ok(&*q, find(&got, p), r#"{"k":1}"#);
    dead(&*q, find(&got, f));

    let ran = q.enqueue_one(after_id(named("ran"), p)).unwrap().id();
    assert_eq!(state(&*q, ran), JobState::Queued);
    let e = ids(&q
        .enqueue(vec![
            after_id(named("g"), f),
            after(named("h"), 0, "g"),
            always(after_id(named("i"), f)),
        ])
        .unwrap());
    let [g, h, i] = e[..] else {
        panic!("three ids")
    };
    for id in [g, h] {
        let v = view(&*q, id);
        assert_eq!(v.state, JobState::Cancelled, "job {id}");
        assert_eq!(v.cancelled_by, cause(f, "f"), "job {id} names the root");
    }
    assert_eq!(state(&*q, i), JobState::Queued);
    let got = claim_all(&*q);
    assert_eq!(sorted(got.iter().map(|c| c.id).collect()), vec![ran, i]);
    let mut want = serde_json::Map::new();
    want.insert(p.to_string(), serde_json::json!({"k": 1}));
    assert_eq!(
        value(&find(&got, ran).parents),
        serde_json::Value::Object(want)
    );
    let mut want = serde_json::Map::new();
    want.insert(f.to_string(), serde_json::Value::Null);
    assert_eq!(
        value(&find(&got, i).parents),
        serde_json::Value::Object(want)
    );
}

/// A parent id not in the queue, or a batch parent that does not come
/// earlier, is refused with an error naming it, and nothing of the batch
/// is enqueued.
pub fn a_missing_or_later_parent_is_refused_and_nothing_enqueued(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let p = q.enqueue_one(named("p")).unwrap().id();
    let before = q.counts().unwrap();
    let missing = JobId(p.0 + 1000);
    let err = q
        .enqueue(vec![named("ok"), after_id(named("bad"), missing)])
        .unwrap_err();
    assert_eq!(err.kind(), QueueErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let err = q.enqueue_one(after_id(named("bad"), missing)).unwrap_err();
    assert_eq!(err.kind(), QueueErrorKind::InvalidInput, "{err}");
    for index in [1, 2] {
        let err = q
            .enqueue(vec![named("ok"), after(named("bad"), index, "x")])
            .unwrap_err();
        assert_eq!(err.kind(), QueueErrorKind::InvalidInput, "{err}");
    }
    let err = q.enqueue_one(after(named("bad"), 0, "x")).unwrap_err();
    assert_eq!(err.kind(), QueueErrorKind::InvalidInput, "{err}");
    assert_eq!(q.counts().unwrap(), before, "nothing was enqueued");
    assert_eq!(claim_ids(&*q), vec![p]);
}

/// An output larger than [`runyard_core::OUTPUT_CAP`] is stored as the
/// marker that counts it (`Output::capped`), in the job's view and in its
/// dependents' parents object; a small one is stored whole.
pub fn a_large_output_is_stored_capped(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_dependencies(&*q) {
        return;
    }
    let e = ids(&q
        .enqueue(vec![named("big"), after(named("next"), 0, "big")])
        .unwrap());
    let [big, next] = e[..] else {
        panic!("two ids")
    };
    let huge = Output::from_serialize(&"x".repeat(runyard_core::OUTPUT_CAP + 10)).unwrap();
    let bytes = huge.as_json().len();
    let got = claim_all(&*q);
    end(&*q, &got[0], Verdict::Succeeded(huge.clone()));
    let stored = view(&*q, big).output;
    assert!(stored.as_json().len() <= runyard_core::OUTPUT_CAP);
    assert_eq!(value(&stored), value(&huge.capped()));
    assert_eq!(value(&stored)["truncated"]["bytes"], bytes);
    let got = claim_all(&*q);
    assert_eq!(got[0].id, next);
    assert_eq!(value(&got[0].parents)["big"]["truncated"]["bytes"], bytes);
    ok(&*q, &got[0], r#"{"small": [1, 2]}"#);
    assert_eq!(
        value(&view(&*q, next).output),
        serde_json::json!({"small": [1, 2]})
    );
}
