//! The property test of dependencies: random DAGs run to the end under
//! random claims, outcomes, cancels, retries and lost leases, checked
//! against the rules of `runyard_core::workflow`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use runyard_core::{After, JobId, JobState, Output, Parent, RunIf};

use super::flow::{end, keeps_dependencies, named, value};
use super::support::{fresh, ids, settings, view, Factory};
use crate::{CancelResult, Claimed, ListFilter, NewJob, Queue, Rescue, Verdict};

/// One job of a random DAG.
#[derive(Debug, Clone)]
struct Spec {
    /// Earlier jobs it is after, by index, distinct.
    parents: Vec<usize>,
    always: bool,
    /// Whether its attempts fail permanently (it ends dead when it runs).
    fails: bool,
    max_attempts: u32,
}

fn spec(i: usize) -> BoxedStrategy<Spec> {
    let parents = if i == 0 {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::vec(0..i, 0..=3)
            .prop_map(|mut v| {
                v.sort_unstable();
                v.dedup();
                v
            })
            .boxed()
    };
    (
        parents,
        proptest::bool::weighted(0.25),
        proptest::bool::weighted(0.25),
        1u32..=2,
    )
        .prop_map(|(parents, always, fails, max_attempts)| Spec {
            parents,
            always,
            fails,
            max_attempts,
        })
        .boxed()
}

/// A DAG of up to 25 jobs (edges from earlier to later), the index where
/// its second batch starts, and a seed for the operations.
fn dag() -> impl Strategy<Value = (Vec<Spec>, usize, u64)> {
    (1usize..=25).prop_flat_map(|n| {
        let jobs: Vec<BoxedStrategy<Spec>> = (0..n).map(spec).collect();
        (jobs, 0..=n, any::<u64>())
    })
}

/// The jobs as two batches: edges within a batch by index in it, edges
/// from the second batch into the first by id.
fn submit(q: &dyn Queue, jobs: &[Spec], split: usize) -> Vec<JobId> {
    let new = |i: usize, s: &Spec, first: &[JobId]| {
        let mut j = NewJob {
            settings: settings(s.max_attempts, 0),
            ..named(&format!("j{i}"))
        };
        j.run_if = if s.always {
            RunIf::Always
        } else {
            RunIf::Success
        };
        j.after = s
            .parents
            .iter()
            .map(|&p| After {
                parent: if p < first.len() {
                    Parent::Job(first[p])
                } else if i < split {
                    Parent::Batch(p)
                } else {
                    Parent::Batch(p - split)
                },
                key: format!("j{p}"),
                many: false,
            })
            .collect();
        j
    };
    let first: Vec<NewJob> = jobs[..split]
        .iter()
        .enumerate()
        .map(|(i, s)| new(i, s, &[]))
        .collect();
    let mut out = if first.is_empty() {
        Vec::new()
    } else {
        ids(&q.enqueue(first).unwrap())
    };
    let second: Vec<NewJob> = jobs[split..]
        .iter()
        .enumerate()
        .map(|(k, s)| new(split + k, s, &out))
        .collect();
    if !second.is_empty() {
        out.extend(ids(&q.enqueue(second).unwrap()));
    }
    out
}

/// Random DAGs run to the end, with a few retries by hand (refused
/// exactly when the job has not failed or a parent it needs to succeed
/// has): (a) no job is claimed before each parent
/// has ended as it needs, and it sees their outputs (checked at its first
/// claim and at the first after a retry gives it back); (b) the jobs
/// cancelled without running (and not by hand) are exactly the
/// `run_if = success` jobs with a parent that ended dead or cancelled,
/// each naming as its cause an ancestor that itself ended so; (c) a
/// `run_if = always` job runs, once all its parents have ended, unless
/// cancelled by hand; (d) every job ends in exactly one terminal state.
pub fn random_workflows_respect_every_edge(make: Factory<'_>) {
    {
        let (_, q) = fresh(make);
        if !keeps_dependencies(&*q) {
            return;
        }
    }
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&dag(), |(jobs, split, seed)| {
            run_one(make, &jobs, split, seed);
            Ok(())
        })
        .unwrap();
}

fn run_one(make: Factory<'_>, jobs: &[Spec], split: usize, seed: u64) {
    let (clock, q) = fresh(make);
    let q = &*q;
    let id = submit(q, jobs, split);
    let index: HashMap<JobId, usize> = id.iter().enumerate().map(|(i, &j)| (j, i)).collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut held: Vec<Claimed> = Vec::new();
    let mut ran: HashSet<usize> = HashSet::new();
    let mut by_hand: HashSet<usize> = HashSet::new();
    let mut asked: HashSet<usize> = HashSet::new();
    let mut retries = 0;
    // Jobs whose next claim is a first start (not the next attempt of a
    // run that began with its parents ended): all, and those given back
    // by a retry.
    let mut first: HashSet<usize> = (0..id.len()).collect();
    let lease = Duration::from_secs(10);
    for step in 0.. {
        if q.counts().unwrap().unfinished() == 0 {
            break;
        }
        assert!(step < 5000, "the workflow never finished");
        match rng.u8(0..20) {
            0 => {
                let i = rng.usize(0..id.len());
                match q.admin().unwrap().cancel(&[id[i]]).unwrap().results[0] {
                    CancelResult::Cancelled => {
                        by_hand.insert(i);
                    }
                    CancelResult::Requested => {
                        asked.insert(i);
                    }
                    _ => {}
                }
            }
            1 if retries < 8 => {
                retries += 1;
                let i = rng.usize(0..id.len());
                let all = q.inspect().unwrap().list(&ListFilter::default()).unwrap();
                let failed = |s: JobState| matches!(s, JobState::Dead | JobState::Cancelled);
                let blocked_by_a_parent =
                    !jobs[i].always && jobs[i].parents.iter().any(|&p| failed(all[p].state));
                let can = failed(all[i].state) && !blocked_by_a_parent;
                let r = q.admin().unwrap().retry(id[i]).unwrap();
                assert_eq!(r.is_some(), can, "retry of j{i} ({:?})", all[i]);
                if let Some(r) = r {
                    first.insert(i);
                    first.extend(r.reblocked.iter().map(|j| index[j]));
                    by_hand.remove(&i);
                    asked.remove(&i);
                }
            }
            2 => {
                clock.advance(lease + Duration::from_secs(1));
                q.rescue(Rescue::Expired).unwrap();
                held.clear();
            }
            3..=9 if !held.is_empty() => {
                let c = held.swap_remove(rng.usize(0..held.len()));
                let i = index[&c.id];
                let verdict = if asked.contains(&i) {
                    Verdict::Cancelled
                } else if jobs[i].fails {
                    Verdict::Dead
                } else {
                    Verdict::Succeeded(Output::from_serialize(&i).unwrap())
                };
                end(q, &c, verdict);
            }
            _ => {
                let got = q.claim("w", rng.usize(1..4), lease).unwrap();
                let starts: Vec<_> = got.iter().map(|c| (c.lease(), q.now())).collect();
                q.started("w", &starts).unwrap();
                if got.is_empty() && held.is_empty() {
                    let stuck = q.counts().unwrap();
                    assert_eq!(stuck.unfinished(), 0, "nothing to run, yet {stuck:?}");
                }
                for c in got {
                    let i = index[&c.id];
                    if first.remove(&i) {
                        check_claim(q, jobs, &id, i, &c);
                    }
                    ran.insert(i);
                    held.push(c);
                }
            }
        }
    }
    check_ends(q, jobs, &id, &ran, &by_hand);
}

/// (a) at a claim: each parent has ended as the job needs, and the job
/// sees each one's output (`null` for one that did not succeed).
fn check_claim(q: &dyn Queue, jobs: &[Spec], id: &[JobId], i: usize, c: &Claimed) {
    let seen = value(&c.parents);
    for &p in &jobs[i].parents {
        let s = view(q, id[p]).state;
        let met = s == JobState::Succeeded || (jobs[i].always && s.is_terminal());
        assert!(met, "job j{i} claimed while its parent j{p} is {s:?}");
        let want = if s == JobState::Succeeded {
            serde_json::json!(p)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(seen[format!("j{p}")], want, "j{i} sees j{p}'s output");
    }
    if jobs[i].parents.is_empty() {
        assert!(c.parents.is_none());
    }
}

/// (b), (c), (d) once nothing is unfinished.
fn check_ends(
    q: &dyn Queue,
    jobs: &[Spec],
    id: &[JobId],
    ran: &HashSet<usize>,
    by_hand: &HashSet<usize>,
) {
    let all = q.inspect().unwrap().list(&ListFilter::default()).unwrap();
    let listed: Vec<JobId> = all.iter().map(|v| v.id).collect();
    assert_eq!(listed, id, "every job once, in order");
    assert_eq!(q.counts().unwrap().total(), id.len() as u64);
    let failed = |s: JobState| matches!(s, JobState::Dead | JobState::Cancelled);
    for (i, v) in all.iter().enumerate() {
        assert!(v.state.is_terminal(), "j{i} ended {:?}", v.state);
        let spec = &jobs[i];
        let a_parent_failed = spec.parents.iter().any(|&p| failed(all[p].state));
        let cascaded = v.state == JobState::Cancelled && !ran.contains(&i) && !by_hand.contains(&i);
        let should = !spec.always && a_parent_failed && !by_hand.contains(&i);
        assert_eq!(cascaded, should, "j{i} ({v:?}) is cancelled by its parents");
        if !cascaded {
            assert_eq!(v.cancelled_by, None, "j{i} names no cause");
            assert!(
                ran.contains(&i) || by_hand.contains(&i),
                "j{i} ended {:?} without running",
                v.state
            );
            continue;
        }
        let cause = v.cancelled_by.clone().expect("a cause");
        let root = id.iter().position(|&j| j == cause.job).expect("a job");
        assert_eq!(cause.name, Some(format!("j{root}")));
        assert!(
            failed(all[root].state) && (ran.contains(&root) || by_hand.contains(&root)),
            "j{i} names j{root}, which ended {:?} by itself",
            all[root].state
        );
        assert!(
            ancestors(jobs, i).contains(&root),
            "j{i} names j{root}, an ancestor"
        );
    }
}

fn ancestors(jobs: &[Spec], i: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut todo = jobs[i].parents.clone();
    while let Some(p) = todo.pop() {
        if out.insert(p) {
            todo.extend(&jobs[p].parents);
        }
    }
    out
}
