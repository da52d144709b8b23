//! A property test of concurrency limits: random submits, claims by
//! several workers, starts, completions, releases, rescues and limit
//! changes; after every step no target holds more running jobs than its
//! limit in force (or than it held when its limit was lowered, which takes
//! nothing back), and no job is lost.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use runyard_core::{JobId, JobLimits, JobState, LimitTarget, OutcomeKind, Output};

use super::limits::{keeps_limits, key};
use super::support::{fresh, job, record, Factory};
use crate::{Completion, Lease, LimitChange, NewJob, Rescue, Verdict};

const LEASE: Duration = Duration::from_secs(10);
const TASKS: [&str; 2] = ["a", "b"];
/// The concurrency limit task `a` carries (`b` carries none).
const TASK_A: u32 = 3;
/// The limit each key value carries.
const KEY_DEFAULT: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Submit { task: usize, key: usize, n: usize },
    Claim { worker: usize, n: usize },
    Start(usize),
    Complete(usize, u8),
    Release(usize),
    Expire,
    RescueWorker(usize),
    SetLimit { target: usize, n: Option<u32> },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..4usize, 1..4usize).prop_map(|(task, key, n)| Op::Submit { task, key, n }),
        4 => (0..3usize, 1..5usize).prop_map(|(worker, n)| Op::Claim { worker, n }),
        2 => any::<usize>().prop_map(Op::Start),
        3 => (any::<usize>(), 0..3u8).prop_map(|(i, k)| Op::Complete(i, k)),
        1 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::Expire),
        1 => (0..3usize).prop_map(Op::RescueWorker),
        2 => (0..5usize, proptest::option::of(1..4u32)).prop_map(|(target, n)| Op::SetLimit { target, n }),
    ]
}

/// The targets a job of `task` with key value `key` (1 to 3, or none) counts in.
fn targets(task: usize, key: Option<usize>) -> Vec<LimitTarget> {
    let mut t = vec![LimitTarget::Task(TASKS[task].to_string())];
    if let Some(k) = key {
        t.push(LimitTarget::Key {
            name: "k".into(),
            value: Some(k.to_string()),
        });
    }
    t
}

/// The limit in force for a target, stored beating carried.
fn in_force(stored: &BTreeMap<LimitTarget, u32>, target: &LimitTarget) -> Option<u32> {
    match target {
        LimitTarget::Task(t) => stored.get(target).copied().or((t == "a").then_some(TASK_A)),
        LimitTarget::Key { name, .. } => stored
            .get(target)
            .or(stored.get(&LimitTarget::Key {
                name: name.clone(),
                value: None,
            }))
            .copied()
            .or(Some(KEY_DEFAULT)),
    }
}

fn stored_target(i: usize) -> LimitTarget {
    match i {
        0 => LimitTarget::Task("a".into()),
        1 => LimitTarget::Task("b".into()),
        2 => LimitTarget::Key {
            name: "k".into(),
            value: None,
        },
        v => LimitTarget::Key {
            name: "k".into(),
            value: Some((v - 2).to_string()),
        },
    }
}

/// Running jobs per target, from the leases held.
fn running_of(
    held: &[(String, Lease)],
    jobs: &BTreeMap<JobId, (usize, Option<usize>)>,
) -> BTreeMap<LimitTarget, u32> {
    let mut running: BTreeMap<LimitTarget, u32> = BTreeMap::new();
    for (_, l) in held {
        let (t, k) = jobs[&l.job];
        for target in targets(t, k) {
            *running.entry(target).or_default() += 1;
        }
    }
    running
}

pub fn limits_hold_under_random_operations(make: Factory<'_>) {
    {
        let (_, q) = fresh(make);
        if !keeps_limits(&*q) {
            return;
        }
    }
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let ops = proptest::collection::vec(op(), 1..80);
    runner
        .run(&ops, |ops| {
            let (clock, q) = fresh(make);
            let flow = q.flow().unwrap();
            // Each job's task and key value.
            let mut jobs: BTreeMap<JobId, (usize, Option<usize>)> = BTreeMap::new();
            let mut held: Vec<(String, Lease)> = Vec::new();
            let mut stored: BTreeMap<LimitTarget, u32> = BTreeMap::new();
            // Counts a lowered limit left above it, allowed until they drop.
            let mut over: BTreeMap<LimitTarget, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Submit { task, key: k, n } => {
                        let value = (k < 3).then_some(k + 1);
                        let batch: Vec<NewJob> = (0..n)
                            .map(|_| NewJob {
                                limits: JobLimits {
                                    task_concurrency: (task == 0).then_some(TASK_A),
                                    concurrency_key: value
                                        .map(|v| (key(&format!("k:{v}")), Some(KEY_DEFAULT))),
                                    ..JobLimits::default()
                                },
                                ..job(TASKS[task], 2, 0)
                            })
                            .collect();
                        for e in q.enqueue(batch).unwrap() {
                            prop_assert!(!e.is_existing());
                            jobs.insert(e.id(), (task, value));
                        }
                    }
                    Op::Claim { worker, n } => {
                        let w = format!("w{worker}");
                        for c in q.claim(&w, n, LEASE).unwrap() {
                            prop_assert!(jobs.contains_key(&c.id), "a known job");
                            prop_assert!(held.iter().all(|(_, l)| l.job != c.id), "claimed once");
                            held.push((w.clone(), c.lease()));
                        }
                    }
                    Op::Start(i) if !held.is_empty() => {
                        let (w, l) = &held[i % held.len()];
                        q.started(w, &[(*l, q.now())]).unwrap();
                    }
                    Op::Complete(i, kind) if !held.is_empty() => {
                        let (w, l) = held.remove(i % held.len());
                        let (outcome, verdict) = match kind {
                            0 => (OutcomeKind::Succeeded, Verdict::Succeeded(Output::none())),
                            1 if l.attempt < 2 => {
                                (OutcomeKind::Failed, Verdict::Retry { at: q.now() })
                            }
                            _ => (OutcomeKind::Failed, Verdict::Dead),
                        };
                        let done = Completion {
                            lease: l,
                            record: record(&*q, l, outcome),
                            verdict,
                        };
                        let r = q.complete(&w, &[done]).unwrap();
                        prop_assert!(r.results[0].is_ok(), "a held lease is recorded");
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let (w, l) = held.remove(i % held.len());
                        prop_assert!(q.release(&w, &[l]).unwrap()[0].is_ok());
                    }
                    Op::Expire => {
                        clock.advance(LEASE + Duration::from_secs(1));
                        let got = q.rescue(Rescue::Expired).unwrap().ids;
                        let mut want: Vec<JobId> = held.iter().map(|(_, l)| l.job).collect();
                        want.sort();
                        let mut got = got;
                        got.sort();
                        prop_assert_eq!(got, want, "every held lease expired");
                        held.clear();
                    }
                    Op::RescueWorker(worker) => {
                        let w = format!("w{worker}");
                        let mut got = q.rescue(Rescue::Worker(w.clone())).unwrap().ids;
                        got.sort();
                        let mut want: Vec<JobId> = held
                            .iter()
                            .filter(|(o, _)| *o == w)
                            .map(|(_, l)| l.job)
                            .collect();
                        want.sort();
                        prop_assert_eq!(got, want, "the worker's leases");
                        held.retain(|(o, _)| *o != w);
                    }
                    Op::SetLimit { target, n } => {
                        let target = stored_target(target);
                        flow.set_limit(&LimitChange {
                            target: target.clone(),
                            concurrency: n,
                            rate: None,
                            clear: n.is_none(),
                        })
                        .unwrap();
                        match n {
                            Some(n) => stored.insert(target, n),
                            None => stored.remove(&target),
                        };
                        // A lowered limit takes nothing back: what runs
                        // above it now may stay until it drops.
                        for (t, n) in running_of(&held, &jobs) {
                            if in_force(&stored, &t).is_some_and(|l| n > l) {
                                let e = over.entry(t).or_default();
                                *e = (*e).max(n);
                            }
                        }
                    }
                    _ => {}
                }
                let running = running_of(&held, &jobs);
                // What a lowered limit left above it may only drop.
                over.retain(|t, n| {
                    *n = (*n).min(running.get(t).copied().unwrap_or(0));
                    *n > 0
                });
                for (t, &n) in &running {
                    if let Some(limit) = in_force(&stored, t) {
                        if n > limit {
                            let allowed = over.get(t).copied().unwrap_or(0);
                            prop_assert!(n <= allowed, "{} running for {t}, limit {limit}", n);
                        }
                    }
                }
                let counts = q.counts().unwrap();
                prop_assert_eq!(counts.total(), jobs.len() as u64, "nothing is lost");
                prop_assert!(
                    counts.running <= held.len() as u64,
                    "running jobs are held claims"
                );
            }
            // Every job still ends: give the leases back and drain.
            for (w, l) in std::mem::take(&mut held) {
                q.release(&w, &[l]).unwrap();
            }
            for t in stored.keys() {
                flow.set_limit(&LimitChange {
                    target: t.clone(),
                    concurrency: None,
                    rate: None,
                    clear: true,
                })
                .unwrap();
            }
            for _ in 0..(jobs.len() * 3 + 10) {
                let c = q.claim("drain", 100, LEASE).unwrap();
                if c.is_empty() {
                    break;
                }
                for c in c {
                    let done = Completion {
                        lease: c.lease(),
                        record: record(&*q, c.lease(), OutcomeKind::Succeeded),
                        verdict: Verdict::Succeeded(Output::none()),
                    };
                    q.complete("drain", &[done]).unwrap();
                }
            }
            for &id in jobs.keys() {
                let s = q.inspect().unwrap().get(id).unwrap().expect("exists").state;
                prop_assert!(
                    matches!(s, JobState::Succeeded | JobState::Dead),
                    "job {} ended, not {:?}",
                    id,
                    s
                );
            }
            Ok(())
        })
        .unwrap();
}
