//! Conformance cases for submitting (what a queue lacks is refused at
//! submit; enqueueing from async code) and for the fencing token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{JobId, JobState, OutcomeKind, Output, Timestamp};

use super::support::{fresh, job, record, view, Factory, LEASE};
use crate::{
    Capabilities, Capability, Claimed, Completion, Enqueued, Fenced, NewJob, Queue, QueueError,
    QueueErrorKind, Rescue, Verdict,
};

/// A backend as it is, but keeping one capability fewer.
#[derive(Debug)]
struct Lacking {
    inner: Box<dyn Queue>,
    lacks: Capability,
}

impl Queue for Lacking {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities().without(self.lacks)
    }
    crate::forward_queue!(inner: as_admin, as_inspect, insert, insert_async, claim_tasks,
        started, heartbeat, complete, release, rescue, counts, next_due, now, set_waker,
        register_worker, unregister_worker);
}

/// A job that needs `c`.
fn needing(c: Capability, n: u32) -> NewJob {
    let mut j = job("needy", 1, 0);
    match c {
        Capability::RunAt => j.run_at = Some(Timestamp::from_micros(i64::MAX / 2)),
        Capability::IdempotencyKeys => j.idempotency_key = Some(format!("key-{n}")),
        Capability::Dependencies => j.after = vec![runyard_core::After::job(JobId(1))],
        Capability::UniqueJobs => {
            j.unique = Some(runyard_core::Unique {
                key: format!("unique-{n}"),
                within: None,
                on_conflict: runyard_core::OnConflict::Skip,
            })
        }
        Capability::Limits => j.limits.task_concurrency = Some(1),
    }
    assert!(j.needs().any(|x| x == c));
    j
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn assert_refused(r: Result<impl std::fmt::Debug, QueueError>, c: Capability) {
    let e = r.expect_err("refused");
    assert_eq!(e.kind(), QueueErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains(c.name()), "names {c}: {e}");
}

/// A queue lacking a capability refuses, at submit and before writing
/// anything, each job that needs it (alone or in a batch, sync or async),
/// naming the capability, and takes the others. Checked for each
/// capability the backend keeps by hiding it; one the backend does not
/// keep (yet) it must refuse itself.
pub fn a_job_needing_what_the_queue_lacks_is_refused_at_submit(make: Factory<'_>) {
    for c in Capability::ALL {
        let (_, q) = fresh(make);
        assert!(q.as_admin().is_some() && q.as_inspect().is_some());
        if !q.capabilities().has(c) {
            assert_refused(q.enqueue_one(needing(c, 1)), c);
            assert_refused(q.enqueue(vec![job("plain", 1, 0), needing(c, 2)]), c);
            assert_eq!(q.counts().unwrap().total(), 0, "nothing was enqueued");
            continue;
        }
        let q = Lacking { inner: q, lacks: c };
        assert_refused(q.enqueue_one(needing(c, 1)), c);
        assert_refused(q.enqueue(vec![job("plain", 1, 0), needing(c, 2)]), c);
        assert_refused(
            current_thread().block_on(q.enqueue_async(vec![needing(c, 3)])),
            c,
        );
        assert_eq!(q.counts().unwrap().total(), 0, "nothing was enqueued");
        q.enqueue(vec![job("plain", 1, 0)]).unwrap();
        assert_eq!(q.counts().unwrap().queued, 1);
        // The backend itself takes it.
        q.inner.enqueue_one(needing(c, 4)).unwrap();
    }
}

/// Enqueueing from async code on a current-thread runtime: the jobs are
/// added (idempotency keys honoured), the waker is called, and the future
/// completes without blocking the runtime's only thread on I/O.
pub fn enqueue_async_adds_jobs_from_a_current_thread_runtime(make: Factory<'_>) {
    let (_, q) = fresh(make);
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    q.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    let rt = current_thread();
    let keyed = |k: &str| NewJob {
        idempotency_key: Some(k.to_string()),
        ..job("t", 1, 0)
    };
    let out = rt.block_on(async {
        // Another task on the same thread makes progress meanwhile.
        let ticker = tokio::spawn(async { tokio::task::yield_now().await });
        let first = q
            .enqueue_async(vec![job("t", 1, 0), keyed("k")])
            .await
            .unwrap();
        let again = q.enqueue_async(vec![keyed("k")]).await.unwrap();
        ticker.await.unwrap();
        (first, again)
    });
    assert_eq!(out.0.len(), 2);
    assert!(matches!(out.0[0], Enqueued::New(_)));
    assert_eq!(out.1, vec![Enqueued::Duplicate(out.0[1].id())]);
    assert!(woken.load(Ordering::SeqCst) >= 1, "the waker was called");
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(c.len(), 2);
}

/// A claim undone (rescued before it started, or released) gives its
/// attempt number back, but the next claim carries a new fencing token:
/// the old lease is refused everywhere, even held by the same worker and
/// under the same attempt number, and a batch with both copies' outcomes
/// records only the live one.
pub fn an_undone_claim_never_shares_its_fencing_token(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    let id = q.enqueue_one(job("t", 3, 0)).unwrap().id();
    let first = q.claim("w", 1, Duration::from_secs(1)).unwrap().remove(0);
    clock.advance(Duration::from_secs(2));
    assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![id]);
    let second = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(
        second.attempt, first.attempt,
        "the undone claim cost no attempt"
    );
    assert_ne!(second.lease(), first.lease(), "but its token is new");
    // The stale copy's start is ignored, its heartbeat lost.
    q.started("w", &[(first.lease(), q.now())]).unwrap();
    assert_eq!(q.counts().unwrap().running, 0);
    let hb = q.heartbeat("w", &[first.lease()], LEASE).unwrap();
    assert_eq!(hb.lost, vec![first.lease()]);
    q.started("w", &[(second.lease(), q.now())]).unwrap();
    let done = |c: &Claimed| Completion {
        lease: c.lease(),
        record: record(&*q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(Output::none()),
    };
    let r = q
        .complete("w", &[done(&first), done(&second)])
        .unwrap()
        .results;
    assert_eq!(r, vec![Err(Fenced(first.lease())), Ok(())]);
    let v = view(&*q, id);
    assert_eq!(v.state, JobState::Succeeded);
    assert_eq!(v.attempts.len(), 1);

    // The same after a release.
    let id = q.enqueue_one(job("t", 3, 0)).unwrap().id();
    let first = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!(q.release("w", &[first.lease()]).unwrap(), vec![Ok(())]);
    let second = q.claim("w", 1, LEASE).unwrap().remove(0);
    assert_eq!((second.id, second.attempt), (id, first.attempt));
    assert_eq!(
        q.release("w", &[first.lease()]).unwrap(),
        vec![Err(Fenced(first.lease()))]
    );
    let r = q
        .complete("w", &[done(&first), done(&second)])
        .unwrap()
        .results;
    assert_eq!(r, vec![Err(Fenced(first.lease())), Ok(())]);
}
