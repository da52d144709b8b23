//! Flow control on PostgreSQL held across handles (workers on other
//! machines) claiming and submitting at the same moment: per-key limits,
//! unique keys, rates on the database's clock, pausing, slots given back
//! by a rescue, and the fair order.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use runyard_core::{FlowKey, JobId, LimitTarget, OnConflict, OutcomeKind, Rate, Timestamp, Unique};
use runyard_postgres::{PgOptions, PgQueue};
use runyard_queue::conformance::{job, record};
use runyard_queue::{
    Claimed, Completion, Enqueued, LimitChange, ManualClock, NewJob, Queue, Rescue, SystemClock,
    Verdict,
};

const LEASE: Duration = Duration::from_secs(60);

fn url(name: &str) -> String {
    runyard_postgres::testing::server().fresh_url(name)
}

fn open(u: &str) -> PgQueue {
    PgQueue::open(PgOptions::from_url(u).unwrap(), Arc::new(SystemClock)).unwrap()
}

fn keyed(task: &str, key: &str, limit: Option<u32>) -> NewJob {
    let mut j = job(task, 3, 0);
    j.limits.concurrency_key = Some((key.parse::<FlowKey>().unwrap(), limit));
    j
}

fn unique(task: &str, key: &str, on_conflict: OnConflict) -> NewJob {
    let mut j = job(task, 3, 0);
    j.unique = Some(Unique {
        key: key.into(),
        within: None,
        on_conflict,
    });
    j
}

fn done(q: &PgQueue, c: &Claimed) -> Completion {
    Completion {
        lease: c.lease(),
        record: record(q, c.lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(runyard_core::Output::none()),
    }
}

fn key_of(id: JobId, keys: &HashMap<JobId, String>) -> String {
    keys[&id].clone()
}

/// Two handles claim from two threads each while their jobs run: at no
/// moment do more than 2 jobs of one key run, and every job ends.
#[test]
fn a_key_limit_holds_with_two_handles_claiming_from_threads() {
    let u = url("key_limit");
    let q = open(&u);
    let mut keys = HashMap::new();
    let batch: Vec<NewJob> = (0..160)
        .map(|i| keyed("t", &format!("tenant:{}", i % 4), Some(2)))
        .collect();
    for (i, e) in q.enqueue(batch).unwrap().iter().enumerate() {
        keys.insert(e.id(), format!("tenant:{}", i % 4));
    }
    let keys = Arc::new(keys);
    let running: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let most: Arc<Mutex<u32>> = Arc::default();
    let ended: Arc<Mutex<u32>> = Arc::default();
    let handles: Vec<Arc<PgQueue>> = (0..2).map(|_| Arc::new(open(&u))).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = handles[t % 2].clone();
            let (keys, running, most, ended) =
                (keys.clone(), running.clone(), most.clone(), ended.clone());
            thread::spawn(move || {
                let me = format!("w{t}");
                let mut idle = 0;
                while *ended.lock().unwrap() < 160 && idle < 20_000 {
                    let got = q.claim(&me, 3, LEASE).unwrap();
                    if got.is_empty() {
                        idle += 1;
                        thread::yield_now();
                        continue;
                    }
                    for c in &got {
                        let k = key_of(c.id, &keys);
                        let mut r = running.lock().unwrap();
                        let n = r.entry(k).or_default();
                        *n += 1;
                        let mut m = most.lock().unwrap();
                        *m = (*m).max(*n);
                    }
                    let starts: Vec<_> = got.iter().map(|c| (c.lease(), q.now())).collect();
                    q.started(&me, &starts).unwrap();
                    for c in &got {
                        *running
                            .lock()
                            .unwrap()
                            .get_mut(&key_of(c.id, &keys))
                            .unwrap() -= 1;
                    }
                    let recs: Vec<_> = got.iter().map(|c| done(&q, c)).collect();
                    let r = q.complete(&me, &recs).unwrap();
                    assert!(r.results.iter().all(Result::is_ok));
                    *ended.lock().unwrap() += got.len() as u32;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*ended.lock().unwrap(), 160, "every job ended");
    assert_eq!(*most.lock().unwrap(), 2, "at most 2 of a key at once");
    assert_eq!(q.counts().unwrap().succeeded, 160);
}

/// Eight handles submit one unique key at the same moment, round after
/// round: exactly one job each round, and every submitter is told its id.
#[test]
fn eight_threads_submitting_one_unique_key_make_one_job() {
    let u = url("unique_race");
    let handles: Vec<Arc<PgQueue>> = (0..8).map(|_| Arc::new(open(&u))).collect();
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = handles
            .iter()
            .cloned()
            .map(|q| {
                let b = barrier.clone();
                thread::spawn(move || {
                    b.wait();
                    q.enqueue_one(unique("t", &format!("k{round}"), OnConflict::Skip))
                        .unwrap()
                })
            })
            .collect();
        let out: Vec<Enqueued> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let new: Vec<_> = out.iter().filter(|e| !e.is_existing()).collect();
        assert_eq!(new.len(), 1, "round {round}: {out:?}");
        assert!(out.iter().all(|e| e.id() == new[0].id()), "{out:?}");
    }
    assert_eq!(handles[0].counts().unwrap().queued, 5);
}

/// A unique job waits behind a running one (at most one waiting), a
/// replace debounces the waiting one, and after the key's job ran a new
/// one is added.
#[test]
fn a_unique_key_allows_one_waiting_job_and_replace_takes_the_new_parameters() {
    let q = open(&url("unique_rules"));
    let first = q.enqueue_one(unique("t", "k", OnConflict::Skip)).unwrap();
    assert!(matches!(first, Enqueued::New(_)));
    let c = q.claim("w", 1, LEASE).unwrap();
    assert_eq!(c[0].id, first.id());
    let behind = q.enqueue_one(unique("t", "k", OnConflict::Skip)).unwrap();
    assert!(
        matches!(behind, Enqueued::New(_)),
        "one waits behind a running one"
    );
    let mut r = unique("t", "k", OnConflict::Replace);
    r.params = runyard_core::JobParams::from_json(r#"{"n":2}"#).unwrap();
    assert_eq!(
        q.enqueue_one(r).unwrap(),
        Enqueued::Replaced(behind.id()),
        "the waiting one takes the new parameters"
    );
    let again = q.enqueue_one(unique("t", "k", OnConflict::Skip)).unwrap();
    assert_eq!(again, Enqueued::Duplicate(behind.id()));
    q.complete("w", &[done(&q, &c[0])]).unwrap();
    let c2 = q.claim("w", 5, LEASE).unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].params.as_json(), r#"{"n":2}"#);
}

/// A rate counted on the queue's (manual) clock: a burst of its count,
/// nothing more until the window has passed the first starts.
#[test]
fn a_rate_admits_its_count_per_window_on_the_queues_clock() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000_000_000)));
    let opts = PgOptions::from_url(&url("rate_manual"))
        .unwrap()
        .limits_on_queue_clock(true);
    let q = PgQueue::open(opts, clock.clone()).unwrap();
    let rate: Rate = "3/s".parse().unwrap();
    let jobs: Vec<NewJob> = (0..10)
        .map(|_| {
            let mut j = job("t", 1, 0);
            j.limits.task_rate = Some(rate);
            j
        })
        .collect();
    q.enqueue(jobs).unwrap();
    let got = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|c| c.admitted_at == Some(q.now())));
    assert!(q.claim("w", 10, LEASE).unwrap().is_empty());
    clock.advance(Duration::from_millis(999));
    assert!(
        q.claim("w", 10, LEASE).unwrap().is_empty(),
        "still in the window"
    );
    clock.advance(Duration::from_millis(2));
    assert_eq!(q.claim("w", 10, LEASE).unwrap().len(), 3);
}

/// On the database's clock (the default), two handles together start no
/// more than a rate's count in its window, and the admitted start is the
/// database's time.
#[test]
fn a_rate_holds_across_handles_on_the_databases_clock() {
    let u = url("rate_db");
    let (a, b) = (open(&u), open(&u));
    let rate: Rate = "4/h".parse().unwrap();
    let jobs: Vec<NewJob> = (0..20)
        .map(|_| {
            let mut j = job("t", 1, 0);
            j.limits.rate_key = Some(("api".parse().unwrap(), Some(rate)));
            j
        })
        .collect();
    a.enqueue(jobs).unwrap();
    let before = Timestamp::now().as_micros() - 60_000_000;
    let mut n = 0;
    for _ in 0..5 {
        for q in [&a, &b] {
            let got = q.claim("w", 3, LEASE).unwrap();
            for c in &got {
                let at = c.admitted_at.expect("admitted").as_micros();
                assert!(at > before, "a start on the database's clock");
            }
            n += got.len();
        }
    }
    assert_eq!(n, 4);
    let h = a.flow().unwrap().holds().unwrap();
    assert_eq!(h.held.len(), 1, "{h:?}");
    assert_eq!(h.held[0].1, 16);
    assert!(matches!(h.held[0].0, runyard_core::Hold::Rate { .. }));
}

/// Pausing a task lists its unstarted claims, the heartbeat tells their
/// worker, no claim takes its jobs, and resuming lets them run.
#[test]
fn a_paused_task_is_not_claimed_and_its_unstarted_claims_are_given_back() {
    let q = open(&url("pause"));
    q.enqueue(vec![job("a", 1, 0), job("a", 1, 0), job("b", 1, 0)])
        .unwrap();
    let got = q.claim_tasks("w", 1, LEASE, Some(&["a".into()])).unwrap();
    assert_eq!(got.len(), 1);
    let flow = q.flow().unwrap();
    assert_eq!(flow.pause(Some(&"a".into())).unwrap(), vec![got[0].id]);
    assert!(flow.paused().unwrap().holds("a"));
    assert_eq!(flow.unstarted().unwrap(), vec![got[0].id]);
    let hb = q.heartbeat("w", &[got[0].lease()], LEASE).unwrap();
    assert_eq!(hb.paused, vec![got[0].lease()]);
    q.release("w", &[got[0].lease()]).unwrap();
    assert!(flow.unstarted().unwrap().is_empty());
    let more = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].task.as_str(), "b");
    assert!(flow.resume(Some(&"a".into())).unwrap());
    assert_eq!(q.claim("w", 10, LEASE).unwrap().len(), 2);
}

/// The slot of a claim whose worker died comes back when it is rescued;
/// a stored limit beats the one jobs carry.
#[test]
fn a_rescue_gives_the_slot_back_and_a_stored_limit_beats_the_carried_one() {
    let q = open(&url("rescue_slot"));
    q.enqueue((0..4).map(|_| keyed("t", "tenant:1", Some(3))).collect())
        .unwrap();
    q.flow()
        .unwrap()
        .set_limit(&LimitChange {
            target: LimitTarget::Key {
                name: "tenant".into(),
                value: None,
            },
            concurrency: Some(1),
            rate: None,
            clear: false,
        })
        .unwrap();
    assert_eq!(q.claim("dead", 10, LEASE).unwrap().len(), 1);
    assert!(
        q.claim("w", 10, LEASE).unwrap().is_empty(),
        "the slot is held"
    );
    q.rescue(Rescue::Worker("dead".into())).unwrap();
    let got = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(got.len(), 1, "the slot came back");
    q.release("w", &[got[0].lease()]).unwrap();
    assert_eq!(q.claim("w", 10, LEASE).unwrap().len(), 1, "and again");
}

/// A key whose few jobs come after another key's many starts before most
/// of the backlog has run.
#[test]
fn a_late_small_key_is_not_held_behind_a_large_backlog() {
    let q = open(&url("fair"));
    q.enqueue((0..300).map(|_| keyed("t", "big", None)).collect())
        .unwrap();
    let small: Vec<JobId> = q
        .enqueue((0..5).map(|_| keyed("t", "small", None)).collect())
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let mut order = Vec::new();
    while order.len() < 20 {
        let c = q.claim("w", 2, LEASE).unwrap();
        assert!(!c.is_empty());
        let recs: Vec<_> = c.iter().map(|c| done(&q, c)).collect();
        q.complete("w", &recs).unwrap();
        order.extend(c.iter().map(|c| c.id));
    }
    for s in &small {
        assert!(
            order.contains(s),
            "job {s} of the small key ran early: {order:?}"
        );
    }
}

/// Jobs without a fairness key are one group: a keyless insert still open
/// in its transaction does not hold up another submitter's (it holds no
/// lock until its commit), the two take tags of their own, and batches
/// are claimed in the order they took them, first in, first out.
#[test]
fn keyless_inserts_do_not_wait_for_each_other_and_stay_in_order() {
    let u = url("keyless_fifo");
    let (q, other) = (open(&u), open(&u));
    let plain = || (0..3).map(|_| job("t", 3, 0)).collect::<Vec<NewJob>>();
    let ids = |out: Vec<Enqueued>| out.iter().map(|e| e.id()).collect::<Vec<JobId>>();
    let mut c =
        postgres::Client::connect(runyard_postgres::testing::server().url(), postgres::NoTls)
            .unwrap();
    let mut tx = c.transaction().unwrap();
    let first = ids(q.enqueue_in(&mut tx, &plain()).unwrap());
    // Added and committed while the first batch's transaction is open.
    let second = ids(other.enqueue(plain()).unwrap());
    tx.commit().unwrap();
    let third = ids(other.enqueue(plain()).unwrap());
    let got: Vec<JobId> = q
        .claim("w", 20, LEASE)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let want: Vec<JobId> = first.iter().chain(&second).chain(&third).copied().collect();
    assert_eq!(
        got, want,
        "each batch after the one before, none interleaved"
    );
}

/// Four handles claim at once from a queue of jobs over six keys, with
/// carried limits, a stored limit for one value and a stored limit for
/// every value of another key's name, beside jobs that also carry a task
/// limit (the careful path) and jobs with no key: at no moment does a key
/// run more than its limit, the task limit holds, and every job ends.
#[test]
fn four_claimers_never_run_more_than_a_keys_limit_with_stored_limits() {
    let u = url("four_claimers");
    let q = open(&u);
    let flow = q.flow().unwrap();
    let stored = |name: &str, value: Option<&str>, c: u32| {
        flow.set_limit(&LimitChange {
            target: LimitTarget::Key {
                name: name.into(),
                value: value.map(Into::into),
            },
            concurrency: Some(c),
            rate: None,
            clear: false,
        })
        .unwrap();
    };
    // tenant:0 stored 1 (carried 3), tenant:1..2 carried 2, region:*
    // stored 3 (carried 1), plain jobs, and task `capped` limited to 2.
    stored("tenant", Some("0"), 1);
    stored("region", None, 3);
    let mut limit_of: HashMap<String, u32> = HashMap::new();
    limit_of.insert("tenant:0".into(), 1);
    limit_of.insert("tenant:1".into(), 2);
    limit_of.insert("tenant:2".into(), 2);
    limit_of.insert("region:a".into(), 3);
    limit_of.insert("region:b".into(), 3);
    limit_of.insert("task:capped".into(), 2);
    let mut keys = HashMap::new();
    let total = 360;
    let batch: Vec<NewJob> = (0..total)
        .map(|i| match i % 6 {
            0 => keyed("t", "tenant:0", Some(3)),
            1 => keyed("t", "tenant:1", Some(2)),
            2 => keyed("t", "tenant:2", Some(2)),
            3 => keyed("t", &format!("region:{}", ["a", "b"][i / 6 % 2]), Some(1)),
            4 => {
                let mut j = keyed("capped", "tenant:2", Some(2));
                j.limits.task_concurrency = Some(2);
                j
            }
            _ => job("t", 3, 0),
        })
        .collect();
    let names: Vec<String> = batch
        .iter()
        .map(|j| match (&j.limits.concurrency_key, j.task.as_str()) {
            (Some((k, _)), _) => format!("{}:{}", k.name(), k.value()),
            (None, _) => "none".into(),
        })
        .collect();
    let capped: Vec<bool> = batch.iter().map(|j| j.task.as_str() == "capped").collect();
    for (i, e) in q.enqueue(batch).unwrap().iter().enumerate() {
        keys.insert(e.id(), (names[i].clone(), capped[i]));
    }
    let keys = Arc::new(keys);
    let running: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let over: Arc<Mutex<Vec<String>>> = Arc::default();
    let ended: Arc<Mutex<usize>> = Arc::default();
    let limit_of = Arc::new(limit_of);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let q = Arc::new(open(&u));
            let (keys, running, over, ended, limit_of) = (
                keys.clone(),
                running.clone(),
                over.clone(),
                ended.clone(),
                limit_of.clone(),
            );
            thread::spawn(move || {
                let me = format!("w{t}");
                let mut idle = 0;
                while *ended.lock().unwrap() < total && idle < 50_000 {
                    let got = q.claim(&me, 4, LEASE).unwrap();
                    if got.is_empty() {
                        idle += 1;
                        thread::yield_now();
                        continue;
                    }
                    let targets = |c: &Claimed| {
                        let (k, capped) = &keys[&c.id];
                        let mut v = vec![k.clone()];
                        if *capped {
                            v.push("task:capped".into());
                        }
                        v
                    };
                    for c in &got {
                        let mut r = running.lock().unwrap();
                        for k in targets(c) {
                            let n = r.entry(k.clone()).or_default();
                            *n += 1;
                            if limit_of.get(&k).is_some_and(|l| *n > *l) {
                                over.lock().unwrap().push(format!("{k}: {n} running"));
                            }
                        }
                    }
                    let starts: Vec<_> = got.iter().map(|c| (c.lease(), q.now())).collect();
                    q.started(&me, &starts).unwrap();
                    thread::yield_now();
                    for c in &got {
                        let mut r = running.lock().unwrap();
                        for k in targets(c) {
                            *r.get_mut(&k).unwrap() -= 1;
                        }
                    }
                    let recs: Vec<_> = got.iter().map(|c| done(&q, c)).collect();
                    let r = q.complete(&me, &recs).unwrap();
                    assert!(r.results.iter().all(Result::is_ok));
                    *ended.lock().unwrap() += got.len();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        *over.lock().unwrap(),
        Vec::<String>::new(),
        "no limit exceeded"
    );
    assert_eq!(*ended.lock().unwrap(), total, "every job ended");
    assert_eq!(q.counts().unwrap().succeeded, total as u64);
    // Every slot was given back: each key runs its limit again at once.
    let again: Vec<NewJob> = [
        ("tenant:0", 1),
        ("tenant:1", 2),
        ("tenant:2", 2),
        ("region:a", 3),
    ]
    .iter()
    .flat_map(|&(k, n)| (0..n + 1).map(move |_| keyed("t", k, Some(2))))
    .collect();
    q.enqueue(again).unwrap();
    assert_eq!(q.claim("w", 100, LEASE).unwrap().len(), 1 + 2 + 2 + 3);
}

/// One claim over keys with free slots takes each key's first jobs up to
/// its free slots, in fair order (round-robin over the keys), and no more
/// while they run.
#[test]
fn a_claim_takes_each_keys_free_slots_in_fair_order() {
    let q = open(&url("set_claim_order"));
    let batch: Vec<NewJob> = (0..30)
        .map(|i| keyed("t", &format!("tenant:{}", i % 3), Some(2)))
        .collect();
    let ids: Vec<JobId> = q
        .enqueue(batch)
        .unwrap()
        .into_iter()
        .map(Enqueued::id)
        .collect();
    let got = q.claim("w", 100, LEASE).unwrap();
    let got_ids: Vec<JobId> = got.iter().map(|c| c.id).collect();
    assert_eq!(got_ids, ids[..6].to_vec(), "two of each key, round-robin");
    assert!(
        q.claim("w", 100, LEASE).unwrap().is_empty(),
        "every key full"
    );
    let recs: Vec<_> = got[..1].iter().map(|c| done(&q, c)).collect();
    q.complete("w", &recs).unwrap();
    let next: Vec<JobId> = q
        .claim("w", 100, LEASE)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        next,
        vec![ids[6]],
        "the freed slot goes to its key's next job"
    );
}

/// A rescue of a worker holding several slots of one key and one of
/// another gives every one of them back in one go.
#[test]
fn a_rescue_gives_back_every_slot_of_a_key_at_once() {
    let q = open(&url("rescue_slots"));
    let mut batch: Vec<NewJob> = (0..6).map(|_| keyed("t", "tenant:1", Some(3))).collect();
    batch.extend((0..2).map(|_| keyed("t", "tenant:2", Some(1))));
    q.enqueue(batch).unwrap();
    assert_eq!(q.claim("dead", 10, LEASE).unwrap().len(), 4);
    assert!(
        q.claim("w", 10, LEASE).unwrap().is_empty(),
        "both keys full"
    );
    let r = q.rescue(Rescue::Worker("dead".into())).unwrap();
    assert_eq!(r.ids.len(), 4);
    assert_eq!(
        q.claim("w", 10, LEASE).unwrap().len(),
        4,
        "three slots of tenant:1 and one of tenant:2 came back"
    );
}

/// One batch over many unique keys: those held by a waiting job name it,
/// those that succeeded within the window name the success, a key new to
/// the queue is added once and its later jobs in the batch name it.
#[test]
fn a_batch_resolves_all_its_unique_keys_at_once() {
    let q = open(&url("unique_batch"));
    let held: Vec<JobId> = q
        .enqueue(
            (0..10)
                .map(|i| unique("t", &format!("k{i}"), OnConflict::Skip))
                .collect(),
        )
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let ok: Vec<JobId> = q
        .enqueue(
            (0..5)
                .map(|i| unique("u", &format!("u{i}"), OnConflict::Skip))
                .collect(),
        )
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let got = q
        .claim_tasks("w", 10, LEASE, Some(&[runyard_core::TaskName::from("u")]))
        .unwrap();
    let recs: Vec<_> = got.iter().map(|c| done(&q, c)).collect();
    q.complete("w", &recs).unwrap();
    let within = |key: &str| {
        let mut j = unique("u", key, OnConflict::Skip);
        j.unique.as_mut().unwrap().within = Some(Duration::from_secs(3600));
        j
    };
    let mut batch: Vec<NewJob> = (0..10)
        .map(|i| unique("t", &format!("k{i}"), OnConflict::Skip))
        .collect();
    batch.extend((0..5).map(|i| within(&format!("u{i}"))));
    batch.push(within("u5"));
    batch.push(unique("t", "u5", OnConflict::Skip));
    batch.push(unique("t", "k10", OnConflict::Skip));
    let out = q.enqueue(batch).unwrap();
    for (i, id) in held.iter().enumerate() {
        assert_eq!(out[i], Enqueued::Duplicate(*id), "k{i} is held");
    }
    for (i, id) in ok.iter().enumerate() {
        assert_eq!(
            out[10 + i],
            Enqueued::Duplicate(*id),
            "u{i} succeeded within"
        );
    }
    let Enqueued::New(u5) = out[15] else {
        panic!("u5 is new: {:?}", out[15])
    };
    assert_eq!(out[16], Enqueued::Duplicate(u5), "the batch's own u5");
    assert!(matches!(out[17], Enqueued::New(_)), "k10 is new");
    assert_eq!(q.counts().unwrap().queued, 12);
}

/// Batches large enough to go in by `COPY` keep what a small one keeps:
/// their unique keys (the same batch again adds nothing), their key
/// limits, and the fair places of their keyed jobs, with or without
/// keyless jobs in the same batch.
#[test]
fn a_copied_batch_keeps_its_unique_keys_limits_and_fair_places() {
    let q = open(&url("copied_batch"));
    // 100 jobs of each of three keys, one key after the other; the last
    // key is limited to one at once.
    let batch = || -> Vec<NewJob> {
        (0..300)
            .map(|i| {
                let key = ["a", "b", "c"][i / 100];
                let limit = (key == "c").then_some(1);
                let mut j = keyed("t", &format!("tenant:{key}"), limit);
                j.unique = Some(Unique {
                    key: format!("u{i}"),
                    within: None,
                    on_conflict: OnConflict::Skip,
                });
                j
            })
            .collect()
    };
    let first = q.enqueue(batch()).unwrap();
    assert!(first.iter().all(|e| matches!(e, Enqueued::New(_))));
    let again = q.enqueue(batch()).unwrap();
    let held: Vec<Enqueued> = first.iter().map(|e| Enqueued::Duplicate(e.id())).collect();
    assert_eq!(again, held, "every unique key is held by the first batch");
    let group = |ids: &[Enqueued], id: JobId, sizes: &[usize]| {
        let mut at = ids.iter().position(|e| e.id() == id).unwrap();
        sizes
            .iter()
            .position(|s| {
                let inside = at < *s;
                at = at.saturating_sub(*s);
                inside
            })
            .unwrap()
    };
    let got = q.claim("w", 9, LEASE).unwrap();
    let groups: Vec<usize> = got
        .iter()
        .map(|c| group(&first, c.id, &[100, 100, 100]))
        .collect();
    assert_eq!(
        groups,
        vec![0, 1, 2, 0, 1, 0, 1, 0, 1],
        "round-robin over the keys, the third at its limit of one"
    );

    // Keyless jobs first, then two keys: the three groups share the claims.
    let q = open(&url("copied_mixed"));
    let mut batch: Vec<NewJob> = (0..150).map(|_| job("t", 3, 0)).collect();
    batch.extend((0..150).map(|i| keyed("t", ["tenant:a", "tenant:b"][i / 75], None)));
    let ids = q.enqueue(batch).unwrap();
    let got = q.claim("w", 9, LEASE).unwrap();
    let groups: Vec<usize> = got
        .iter()
        .map(|c| group(&ids, c.id, &[150, 75, 75]))
        .collect();
    assert_eq!(groups, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
}
