//! Conformance cases for concurrency and rate limits (`docs/backends.md`
//! §8, "Limits"): per task and per key value, across tasks and workers,
//! slots given back on every way out of `running`, stored limits beating
//! carried ones, and sliding-window rates on the manual clock. Also the
//! helpers the pause, hold and fairness cases share.
//!
//! Every case passes without doing anything on a queue that does not claim
//! [`Capability::Limits`].

use std::time::Duration;

use runyard_core::{FlowKey, JobLimits, LimitTarget, Rate, StoredLimit};

use super::support::{fresh, job, Factory, LEASE};
use crate::{Capability, Claimed, LimitChange, NewJob, Queue, QueueErrorKind, Rescue};

pub(super) fn keeps_limits(q: &dyn Queue) -> bool {
    q.capabilities().has(Capability::Limits)
}

pub(super) fn key(s: &str) -> FlowKey {
    s.parse().expect("a valid key")
}

pub(super) fn rate(s: &str) -> Rate {
    s.parse().expect("a valid rate")
}

/// A job of `task` carrying `limits`.
pub(super) fn limited(task: &str, limits: JobLimits) -> NewJob {
    NewJob {
        limits,
        ..job(task, 3, 0)
    }
}

/// A job of `task` whose task allows `n` at once.
pub(super) fn task_limited(task: &str, n: u32) -> NewJob {
    limited(
        task,
        JobLimits {
            task_concurrency: Some(n),
            ..JobLimits::default()
        },
    )
}

/// A job of `task` with concurrency key `k` (giving it `n`, if any).
pub(super) fn keyed(task: &str, k: &str, n: Option<u32>) -> NewJob {
    limited(
        task,
        JobLimits {
            concurrency_key: Some((key(k), n)),
            ..JobLimits::default()
        },
    )
}

/// A job of `task` with rate key `k` (giving it `r`, if any).
pub(super) fn rated(task: &str, k: &str, r: Option<&str>) -> NewJob {
    limited(
        task,
        JobLimits {
            rate_key: Some((key(k), r.map(rate))),
            ..JobLimits::default()
        },
    )
}

pub(super) fn task(t: &str) -> LimitTarget {
    LimitTarget::Task(t.to_string())
}

pub(super) fn key_target(name: &str, value: Option<&str>) -> LimitTarget {
    LimitTarget::Key {
        name: name.to_string(),
        value: value.map(str::to_string),
    }
}

/// Stores a limit.
pub(super) fn set(
    q: &dyn Queue,
    target: LimitTarget,
    concurrency: Option<u32>,
    rate: Option<Rate>,
) -> Option<StoredLimit> {
    q.flow()
        .unwrap()
        .set_limit(&LimitChange {
            target,
            concurrency,
            rate,
            clear: false,
        })
        .unwrap()
}

/// Clears a stored limit.
pub(super) fn clear(q: &dyn Queue, target: LimitTarget) {
    let now = q
        .flow()
        .unwrap()
        .set_limit(&LimitChange {
            target,
            concurrency: None,
            rate: None,
            clear: true,
        })
        .unwrap();
    assert_eq!(now, None, "a cleared limit is gone");
}

pub(super) fn claim(q: &dyn Queue, worker: &str, max: usize) -> Vec<Claimed> {
    q.claim(worker, max, LEASE).unwrap()
}

pub(super) fn done(q: &dyn Queue, worker: &str, c: &Claimed) {
    super::support::succeed(q, worker, c).expect("the lease is held");
}

fn tasks_of(c: &[Claimed]) -> Vec<String> {
    c.iter().map(|c| c.task.to_string()).collect()
}

pub fn a_task_limit_holds_across_claims(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    q.enqueue((0..5).map(|_| task_limited("t", 2)).collect())
        .unwrap();
    q.enqueue(vec![job("free", 3, 0)]).unwrap();
    let first = claim(&*q, "w", 10);
    let mut t: Vec<_> = first.iter().filter(|c| c.task.as_str() == "t").collect();
    assert_eq!(t.len(), 2, "two of t at once: {:?}", tasks_of(&first));
    assert_eq!(first.len(), 3, "the other task is not held");
    assert!(claim(&*q, "w", 10).is_empty(), "t is full");
    assert!(claim(&*q, "w2", 10).is_empty(), "for every worker");
    done(&*q, "w", t.pop().unwrap());
    let next = claim(&*q, "w2", 10);
    assert_eq!(tasks_of(&next), vec!["t"], "one slot came back");
    assert!(claim(&*q, "w", 10).is_empty());
}

pub fn a_key_is_shared_by_tasks_and_workers(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(keyed("a", "tenant:1", Some(2)));
        jobs.push(keyed("b", "tenant:1", Some(2)));
        jobs.push(keyed("a", "tenant:2", Some(2)));
    }
    q.enqueue(jobs).unwrap();
    let w1 = claim(&*q, "w1", 1);
    let w2 = claim(&*q, "w2", 10);
    let all: Vec<&Claimed> = w1.iter().chain(&w2).collect();
    assert_eq!(all.len(), 4, "two of each value");
    let tenant1 = |c: &Claimed| c.id.0 % 3 != 0;
    // Jobs 1, 2, 4, 5, 7, 8 carry tenant:1 (both tasks); 3, 6, 9 tenant:2.
    assert_eq!(all.iter().filter(|c| tenant1(c)).count(), 2);
    let mut tasks: Vec<String> = all
        .iter()
        .filter(|c| tenant1(c))
        .map(|c| c.task.to_string())
        .collect();
    tasks.sort();
    assert_eq!(tasks, vec!["a", "b"], "both tasks share tenant:1");
    assert!(claim(&*q, "w3", 10).is_empty(), "both values are full");
    let one = all.iter().find(|c| tenant1(c)).unwrap();
    let owner = if w1.iter().any(|c| c.id == one.id) {
        "w1"
    } else {
        "w2"
    };
    done(&*q, owner, one);
    let next = claim(&*q, "w3", 10);
    assert_eq!(next.len(), 1);
    assert!(tenant1(&next[0]), "the slot of tenant:1 came back");
}

pub fn slots_come_back_on_complete_release_and_rescue(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    q.enqueue((0..4).map(|_| keyed("t", "k", Some(1))).collect())
        .unwrap();
    // Complete.
    let c = claim(&*q, "w", 10);
    assert_eq!(c.len(), 1);
    assert!(claim(&*q, "w", 10).is_empty());
    done(&*q, "w", &c[0]);
    // Release.
    let c = claim(&*q, "w", 10);
    assert_eq!(c.len(), 1, "complete gave the slot back");
    assert!(claim(&*q, "w", 10).is_empty());
    assert!(q.release("w", &[c[0].lease()]).unwrap()[0].is_ok());
    // Rescue of an expired lease, started.
    let c = claim(&*q, "w", 10);
    assert_eq!(c.len(), 1, "release gave the slot back");
    q.started("w", &[(c[0].lease(), q.now())]).unwrap();
    assert!(claim(&*q, "w2", 10).is_empty());
    clock.advance(LEASE + Duration::from_secs(1));
    assert!(
        claim(&*q, "w2", 10).is_empty(),
        "an expired lease holds its slot until rescued"
    );
    assert_eq!(q.rescue(Rescue::Expired).unwrap().ids, vec![c[0].id]);
    // Rescue of a dead worker's claim, not started.
    let c = claim(&*q, "w2", 10);
    assert_eq!(c.len(), 1, "rescue gave the slot back");
    assert!(claim(&*q, "w3", 10).is_empty());
    assert_eq!(
        q.rescue(Rescue::Worker("w2".into())).unwrap().ids,
        vec![c[0].id]
    );
    let c = claim(&*q, "w3", 10);
    assert_eq!(c.len(), 1, "a rescued worker's slot came back");
    // A retry verdict gives the slot back too.
    let retry = crate::Completion {
        lease: c[0].lease(),
        record: super::support::record(&*q, c[0].lease(), runyard_core::OutcomeKind::Failed),
        verdict: crate::Verdict::Retry { at: q.now() },
    };
    q.complete("w3", &[retry]).unwrap();
    assert_eq!(claim(&*q, "w3", 10).len(), 1);
}

pub fn a_stored_limit_beats_the_carried_one(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    q.enqueue((0..6).map(|_| task_limited("t", 5)).collect())
        .unwrap();
    let stored = set(&*q, task("t"), Some(1), None).expect("stored");
    assert_eq!(stored.concurrency, Some(1));
    assert_eq!(q.flow().unwrap().limits().unwrap(), vec![stored]);
    let c = claim(&*q, "w", 10);
    assert_eq!(c.len(), 1, "the stored limit of 1 beats the carried 5");
    clear(&*q, task("t"));
    assert!(q.flow().unwrap().limits().unwrap().is_empty());
    assert_eq!(claim(&*q, "w", 10).len(), 4, "cleared: the carried 5");
    // A stored limit holds jobs that carry none.
    let (_, q) = fresh(make);
    q.enqueue((0..3).map(|_| job("plain", 3, 0)).collect())
        .unwrap();
    set(&*q, task("plain"), Some(2), None);
    assert_eq!(claim(&*q, "w", 10).len(), 2);
    // And one stored for a task before its jobs came.
    set(&*q, task("later"), Some(1), None);
    q.enqueue((0..3).map(|_| job("later", 3, 0)).collect())
        .unwrap();
    assert_eq!(tasks_of(&claim(&*q, "w", 10)), vec!["later"]);
}

pub fn a_value_limit_beats_the_name_limit(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(keyed("t", "tenant:1", Some(5)));
        jobs.push(keyed("t", "tenant:2", Some(5)));
        jobs.push(keyed("t", "solo", Some(5)));
    }
    q.enqueue(jobs).unwrap();
    set(&*q, key_target("tenant", None), Some(2), None);
    set(&*q, key_target("tenant", Some("1")), Some(1), None);
    set(&*q, key_target("solo", None), Some(3), None);
    let c = claim(&*q, "w", 100);
    let count = |m: u64| c.iter().filter(|c| c.id.0 % 3 == m).count();
    assert_eq!(count(1), 1, "tenant:1 has its own limit of 1");
    assert_eq!(count(2), 2, "tenant:2 has the name's limit of 2");
    assert_eq!(count(0), 3, "a key without a value has the name's limit");
    let limits = q.flow().unwrap().limits().unwrap();
    assert_eq!(limits.len(), 3, "{limits:?}");
}

pub fn lowering_a_limit_takes_nothing_back(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    q.enqueue((0..6).map(|_| task_limited("t", 3)).collect())
        .unwrap();
    let c = claim(&*q, "w", 10);
    assert_eq!(c.len(), 3);
    set(&*q, task("t"), Some(1), None);
    assert!(claim(&*q, "w", 10).is_empty());
    done(&*q, "w", &c[0]);
    assert!(claim(&*q, "w", 10).is_empty(), "two running, limit 1");
    done(&*q, "w", &c[1]);
    assert!(claim(&*q, "w", 10).is_empty(), "one running, limit 1");
    done(&*q, "w", &c[2]);
    assert_eq!(claim(&*q, "w", 10).len(), 1, "under the limit again");
    // Raising it gives room at once.
    set(&*q, task("t"), Some(3), None);
    assert_eq!(claim(&*q, "w", 10).len(), 2);
}

pub fn bad_limit_changes_are_refused(make: Factory<'_>) {
    let (_, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let flow = q.flow().unwrap();
    let change = |target, concurrency| LimitChange {
        target,
        concurrency,
        rate: None,
        clear: false,
    };
    let e = flow.set_limit(&change(task("t"), Some(0))).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("at least 1"), "{e}");
    let e = flow
        .set_limit(&change(key_target("bad name", None), Some(2)))
        .unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::InvalidInput, "{e}");
    assert!(flow.limits().unwrap().is_empty(), "nothing was stored");
    // Rate and concurrency are kept apart: setting one keeps the other.
    set(&*q, task("t"), Some(2), None);
    let both = set(&*q, task("t"), None, Some(rate("5/s"))).unwrap();
    assert_eq!((both.concurrency, both.rate), (Some(2), Some(rate("5/s"))));
}

pub fn a_rate_admits_a_burst_then_waits_for_the_window(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let rated_task = |r: &str| {
        limited(
            "t",
            JobLimits {
                task_rate: Some(rate(r)),
                ..JobLimits::default()
            },
        )
    };
    q.enqueue((0..10).map(|_| rated_task("3/s")).collect())
        .unwrap();
    q.enqueue(vec![job("plain", 3, 0)]).unwrap();
    let t0 = q.now();
    let c = claim(&*q, "w", 20);
    let limited: Vec<&Claimed> = c.iter().filter(|c| c.task.as_str() == "t").collect();
    assert_eq!(limited.len(), 3, "a burst of the count");
    for l in &limited {
        assert_eq!(l.admitted_at, Some(t0), "admitted at the claim");
    }
    let plain = c.iter().find(|c| c.task.as_str() == "plain").unwrap();
    assert_eq!(plain.admitted_at, None, "no rate, no admission time");
    for l in &limited {
        done(&*q, "w", l);
    }
    assert!(
        claim(&*q, "w", 20).is_empty(),
        "completing gives no start back"
    );
    clock.advance(Duration::from_millis(999));
    assert!(
        claim(&*q, "w", 20).is_empty(),
        "the window still holds three"
    );
    clock.advance(Duration::from_millis(1));
    let c = claim(&*q, "w", 20);
    assert_eq!(c.len(), 3, "a second later the window has slid");
    assert!(c.iter().all(|c| c.admitted_at == Some(q.now())));
    // A release gives no start back either.
    q.release("w", &[c[0].lease()]).unwrap();
    assert!(claim(&*q, "w", 20).is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(claim(&*q, "w", 20).len(), 3);
}

pub fn a_key_rate_is_shared_and_a_stored_rate_beats_it(make: Factory<'_>) {
    let (clock, q) = fresh(make);
    if !keeps_limits(&*q) {
        return;
    }
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(rated("a", "api", Some("4/m")));
        jobs.push(rated("b", "api", Some("4/m")));
    }
    q.enqueue(jobs).unwrap();
    let c = claim(&*q, "w1", 3);
    assert_eq!(c.len(), 3);
    assert_eq!(
        claim(&*q, "w2", 10).len(),
        1,
        "four a minute, both tasks, all workers"
    );
    clock.advance(Duration::from_secs(60));
    set(&*q, key_target("api", None), None, Some(rate("2/m")));
    let c = claim(&*q, "w2", 10);
    assert_eq!(c.len(), 2, "the stored 2/m beats the carried 4/m");
    clock.advance(Duration::from_secs(30));
    assert!(claim(&*q, "w2", 10).is_empty());
    clock.advance(Duration::from_secs(30));
    assert_eq!(claim(&*q, "w2", 10).len(), 2);
}

/// Ends the attempt of `c`, by the worker's `turn`: a release every
/// seventh, a retry every fifth while attempts are left, else a success.
/// Whether the job finished.
fn end(q: &dyn Queue, worker: &str, c: &Claimed, turn: usize) -> Result<bool, String> {
    use runyard_core::{OutcomeKind, Output};
    if turn % 7 == 3 {
        let r = q
            .release(worker, &[c.lease()])
            .map_err(|e| format!("release: {e}"))?;
        r[0].map_err(|_| format!("the release of {} was fenced", c.id))?;
        return Ok(false);
    }
    let ends = !(turn % 5 == 1 && c.attempt < 3);
    let (verdict, outcome) = if ends {
        (
            crate::Verdict::Succeeded(Output::none()),
            OutcomeKind::Succeeded,
        )
    } else {
        (crate::Verdict::Retry { at: q.now() }, OutcomeKind::Failed)
    };
    let done = crate::Completion {
        lease: c.lease(),
        record: super::support::record(q, c.lease(), outcome),
        verdict,
    };
    let r = q
        .complete(worker, &[done])
        .map_err(|e| format!("complete: {e}"))?;
    r.results[0].map_err(|_| format!("the completion of {} was fenced", c.id))?;
    Ok(ends)
}

/// Four workers claim at once, round after round from the first claim on,
/// the jobs of three key values limited to two each, and hold what they
/// claimed until every worker's claim of the round has returned; then each
/// attempt ends by a success, a retry or a release. A job is counted from
/// when its claim returned until just before its attempt is ended, so the
/// count never exceeds the jobs truly running: at no moment may it exceed
/// a value's limit.
pub fn a_key_limit_holds_across_concurrent_workers_from_the_first_claim(make: Factory<'_>) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, Mutex};

    const LIMIT: usize = 2;
    const WORKERS: usize = 4;
    const VALUES: [&str; 3] = ["tenant:a", "tenant:b", "tenant:c"];
    for round in 0..3 {
        let (_, q) = fresh(make);
        if !keeps_limits(&*q) {
            return;
        }
        let mut jobs = Vec::new();
        for _ in 0..20 {
            for v in VALUES {
                jobs.push(keyed("t", v, Some(LIMIT as u32)));
            }
        }
        let total = jobs.len();
        let key_of: HashMap<runyard_core::JobId, &str> = q
            .enqueue(jobs)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id(), VALUES[i % VALUES.len()]))
            .collect();
        let q: Arc<dyn Queue> = Arc::from(q);
        // Per value: running now, and the most seen at once.
        let running: Mutex<HashMap<&str, (usize, usize)>> = Mutex::new(HashMap::new());
        let finished = AtomicUsize::new(0);
        let failed: Mutex<Option<String>> = Mutex::new(None);
        let (claimed, ended) = (Barrier::new(WORKERS), Barrier::new(WORKERS));
        std::thread::scope(|s| {
            for w in 0..WORKERS {
                let q = Arc::clone(&q);
                let (key_of, running, finished, failed) = (&key_of, &running, &finished, &failed);
                let (claimed, ended) = (&claimed, &ended);
                s.spawn(move || {
                    let name = format!("w{w}");
                    let mut turn = w;
                    let mut rounds = 0;
                    // `finished` and `failed` change only between the two barriers, so
                    // every worker reads the same values and all stop after the same
                    // round. A failure is reported once the threads end: a panic here
                    // would leave the others waiting at a barrier.
                    while finished.load(Ordering::SeqCst) < total
                        && failed.lock().unwrap().is_none()
                    {
                        rounds += 1;
                        let mut problem = None;
                        let got = q.claim(&name, 3, LEASE).unwrap_or_else(|e| {
                            problem = Some(format!("claim: {e}"));
                            Vec::new()
                        });
                        {
                            let mut r = running.lock().unwrap();
                            for c in &got {
                                let e = r.entry(key_of[&c.id]).or_default();
                                e.0 += 1;
                                e.1 = e.1.max(e.0);
                            }
                        }
                        claimed.wait();
                        if rounds >= 10_000 {
                            problem = Some("the jobs were not all run in 10,000 rounds".into());
                        }
                        for c in &got {
                            turn += 1;
                            running.lock().unwrap().get_mut(key_of[&c.id]).unwrap().0 -= 1;
                            match end(&*q, &name, c, turn) {
                                Ok(true) => {
                                    finished.fetch_add(1, Ordering::SeqCst);
                                }
                                Ok(false) => {}
                                Err(e) => problem = Some(e),
                            }
                        }
                        if let Some(p) = problem {
                            failed.lock().unwrap().get_or_insert(format!("{name}: {p}"));
                        }
                        ended.wait();
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap() {
            panic!("round {round}: {e}");
        }
        let seen = running.into_inner().unwrap();
        for v in VALUES {
            let (now, most) = seen.get(v).copied().unwrap_or_default();
            assert_eq!(now, 0, "round {round}: {v}");
            assert!(
                most <= LIMIT,
                "round {round}: {most} jobs of {v} ran at once, over its limit of {LIMIT}"
            );
        }
        assert_eq!(q.counts().unwrap().succeeded, total as u64, "round {round}");
    }
}
