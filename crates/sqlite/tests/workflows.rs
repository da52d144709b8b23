//! Dependencies in the SQLite queue, step for step against the memory
//! queue, which is the reference: random workflows (names, fan-in, copies,
//! `run_if`, parents given by id, duplicates by idempotency key) under
//! random claims, ends, cancels, retries and rescues, with the same views,
//! cascades and parents objects from both after every step.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use runyard_core::{After, JobId, OutcomeKind, Output, Parent, RunIf};
use runyard_queue::conformance::{job, record};
use runyard_queue::{
    Admin, Claimed, Completion, Inspect, Lease, ListFilter, ManualClock, MemoryQueue, NewJob,
    Queue, QueueErrorKind, Rescue, Verdict,
};
use runyard_sqlite::{OpenMode, SqliteQueue};

const LEASE: Duration = Duration::from_secs(30);

/// One job of a generated batch.
#[derive(Debug, Clone)]
struct Spec {
    named: bool,
    /// Earlier entries of the batch (by index) or, in a later batch, jobs
    /// already in the queue (by id): (which, as a list of copies).
    after: Vec<(usize, bool)>,
    always: bool,
    /// A small key, so that some jobs are duplicates of others.
    key: Option<u8>,
    max_attempts: u32,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        prop::collection::vec((0usize..64, prop::bool::weighted(0.2)), 0..4),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.15, 0u8..4),
        1u32..3,
    )
        .prop_map(|(named, after, always, key, max_attempts)| Spec {
            named,
            after,
            always,
            key,
            max_attempts,
        })
}

#[derive(Debug, Clone)]
enum Op {
    Claim(usize),
    /// End the n-th lease held: 0 success, 1 dead, 2 cancelled, 3 retry.
    End(usize, u8),
    Cancel(usize),
    Retry(usize),
    /// Leases run out and are rescued.
    Expire,
    CancelPending,
    /// Another batch, after jobs already in the queue.
    Batch(Vec<Spec>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1usize..4).prop_map(Op::Claim),
        8 => (0usize..8, prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)])
            .prop_map(|(i, v)| Op::End(i, v)),
        1 => (0usize..64).prop_map(Op::Cancel),
        3 => (0usize..64).prop_map(Op::Retry),
        1 => Just(Op::Expire),
        1 => Just(Op::CancelPending),
        1 => prop::collection::vec(spec(), 1..4).prop_map(Op::Batch),
    ]
}

/// The jobs of a batch; `known` jobs are in the queue before it (parents
/// of a later batch are given by id).
fn batch(specs: &[Spec], known: usize, serial: &mut usize) -> Vec<NewJob> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut j = job("t", s.max_attempts, 0);
            *serial += 1;
            if s.named {
                j.name = Some(format!("j{serial}"));
            }
            j.idempotency_key = s.key.map(|k| format!("k{k}"));
            j.run_if = if s.always {
                RunIf::Always
            } else {
                RunIf::Success
            };
            for &(p, many) in &s.after {
                let (parent, key) = if known == 0 {
                    if i == 0 {
                        continue;
                    }
                    (Parent::Batch(p % i), format!("b{}", p % i))
                } else if i > 0 && p % 2 == 0 {
                    (Parent::Batch(p % i), format!("b{}", p % i))
                } else if p % 13 == 3 {
                    // Not in the queue before the batch (perhaps in it): refused.
                    let id = JobId((known + 1 + p % 3) as u64);
                    (Parent::Job(id), id.to_string())
                } else {
                    let id = JobId((p % known) as u64 + 1);
                    (Parent::Job(id), id.to_string())
                };
                j.after.push(After { parent, key, many });
            }
            j
        })
        .collect()
}

struct Pair {
    clock: Arc<ManualClock>,
    mem: MemoryQueue,
    sql: SqliteQueue,
    _dir: tempfile::TempDir,
    /// Leases held (the same in both).
    held: Vec<Claimed>,
}

impl Pair {
    fn new() -> Pair {
        let clock = Arc::new(ManualClock::default());
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let sql = SqliteQueue::open_with_clock(
            &dir.path().join("q.db"),
            OpenMode::CreateOrOpen,
            clock.clone(),
        )
        .unwrap();
        Pair {
            mem: MemoryQueue::with_clock(clock.clone()),
            sql,
            clock,
            _dir: dir,
            held: Vec::new(),
        }
    }

    fn total(&self) -> usize {
        self.mem.counts().unwrap().total() as usize
    }

    fn insert(&self, jobs: Vec<NewJob>) {
        let m = self.mem.insert(jobs.clone());
        let s = self.sql.insert(jobs);
        match (s, m) {
            (Ok(s), Ok(m)) => assert_eq!(s, m, "enqueued"),
            (Err(s), Err(m)) => {
                assert_eq!(s.kind(), QueueErrorKind::InvalidInput);
                assert_eq!(s.to_string(), m.to_string());
            }
            (s, m) => panic!("sqlite {s:?}, memory {m:?}"),
        }
    }

    fn step(&mut self, op: &Op, serial: &mut usize) {
        let (mem, sql): (&dyn Queue, &dyn Queue) = (&self.mem, &self.sql);
        match op {
            Op::Claim(n) => {
                let m = mem.claim("w", *n, LEASE).unwrap();
                let s = sql.claim("w", *n, LEASE).unwrap();
                let key = |c: &[Claimed]| -> Vec<(JobId, u32, u64, String)> {
                    c.iter()
                        .map(|c| (c.id, c.attempt, c.claim, c.parents.as_json().to_string()))
                        .collect()
                };
                assert_eq!(key(&s), key(&m), "claimed, with parents");
                let starts: Vec<(Lease, _)> = m.iter().map(|c| (c.lease(), mem.now())).collect();
                mem.started("w", &starts).unwrap();
                sql.started("w", &starts).unwrap();
                self.held.extend(m);
            }
            Op::End(i, v) => {
                if self.held.is_empty() {
                    return;
                }
                let c = self.held.remove(i % self.held.len());
                let (outcome, verdict) = match v {
                    0 => (
                        OutcomeKind::Succeeded,
                        Verdict::Succeeded(
                            Output::from_json(&format!("{{\"by\":{}}}", c.id)).unwrap(),
                        ),
                    ),
                    1 => (OutcomeKind::Failed, Verdict::Dead),
                    2 => (OutcomeKind::Cancelled, Verdict::Cancelled),
                    _ => (OutcomeKind::Failed, Verdict::Retry { at: mem.now() }),
                };
                let done = Completion {
                    lease: c.lease(),
                    record: record(mem, c.lease(), outcome),
                    verdict,
                };
                let m = mem.complete("w", std::slice::from_ref(&done)).unwrap();
                let s = sql.complete("w", &[done]).unwrap();
                assert_eq!(s, m, "recorded, with the cascade");
            }
            Op::Cancel(j) => {
                let id = JobId((j % self.total().max(1)) as u64 + 1);
                let m = mem.as_admin().unwrap().cancel(&[id]).unwrap();
                let s = sql.as_admin().unwrap().cancel(&[id]).unwrap();
                assert_eq!(s, m, "cancel {id}");
            }
            Op::Retry(j) => {
                let id = JobId((j % self.total().max(1)) as u64 + 1);
                let m = mem.as_admin().unwrap().retry(id).unwrap();
                let s = sql.as_admin().unwrap().retry(id).unwrap();
                assert_eq!(s, m, "retry {id}");
            }
            Op::Expire => {
                self.clock.advance(LEASE * 2);
                let m = mem.rescue(Rescue::Expired).unwrap();
                let s = sql.rescue(Rescue::Expired).unwrap();
                assert_eq!(s, m, "rescued");
                self.held.clear();
            }
            Op::CancelPending => {
                let m = mem.as_admin().unwrap().cancel_pending().unwrap();
                let s = sql.as_admin().unwrap().cancel_pending().unwrap();
                assert_eq!(s, m, "cancel pending");
            }
            Op::Batch(specs) => {
                let known = self.total();
                self.insert(batch(specs, known, serial));
            }
        }
        self.clock.advance(Duration::from_millis(1));
    }

    /// Both queues hold the same jobs, seen the same way.
    fn agree(&self) {
        let all = ListFilter::default();
        let m = self.mem.list(&all).unwrap();
        let s = self.sql.list(&all).unwrap();
        assert_eq!(s, m, "views");
        assert_eq!(self.sql.counts().unwrap(), self.mem.counts().unwrap());
        assert_eq!(
            self.sql.counts_by_task().unwrap(),
            self.mem.counts_by_task().unwrap()
        );
        for v in &m {
            let id = v.id;
            assert_eq!(
                self.sql.dependents(id).unwrap(),
                self.mem.dependents(id).unwrap(),
                "dependents of {id}"
            );
            assert_eq!(
                self.sql.workflow(id).unwrap(),
                self.mem.workflow(id).unwrap(),
                "workflow of {id}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_the_memory_queue(
        first in prop::collection::vec(spec(), 1..10),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut p = Pair::new();
        let mut serial = 0;
        p.insert(batch(&first, 0, &mut serial));
        p.agree();
        for op in &ops {
            p.step(op, &mut serial);
            p.agree();
        }
    }
}

#[test]
fn a_parent_given_by_an_unknown_id_is_refused_and_nothing_is_written() {
    let p = Pair::new();
    p.insert(vec![job("t", 1, 0)]);
    let mut a = job("t", 1, 0);
    a.name = Some("a".into());
    let mut b = job("t", 1, 0);
    b.after = vec![After::job(JobId(9))];
    let e = p.sql.insert(vec![a, b]).unwrap_err();
    assert_eq!(e.kind(), QueueErrorKind::InvalidInput);
    assert!(e.to_string().contains("after job 9"), "{e}");
    assert!(e.to_string().contains("nothing was enqueued"), "{e}");
    assert_eq!(p.sql.counts().unwrap().total(), 1, "nothing written");
}

#[test]
fn a_chain_moves_on_as_its_parents_end() {
    let p = Pair::new();
    let q: &dyn Queue = &p.sql;
    let mut a = job("t", 1, 0);
    a.name = Some("a".into());
    let mut b = job("t", 1, 0);
    b.name = Some("b".into());
    b.after = vec![After {
        parent: Parent::Batch(0),
        key: "a".into(),
        many: false,
    }];
    let e = q.insert(vec![a, b]).unwrap();
    let (a, b) = (e[0].id(), e[1].id());
    assert_eq!(q.counts().unwrap().blocked, 1);
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(c.len(), 1, "only the parent is ready");
    assert!(c[0].parents.is_none());
    let done = Completion {
        lease: c[0].lease(),
        record: record(q, c[0].lease(), OutcomeKind::Succeeded),
        verdict: Verdict::Succeeded(Output::from_json("[1,2]").unwrap()),
    };
    let r = q.complete("w", &[done]).unwrap();
    assert_eq!(r.cascade.unblocked, vec![b]);
    let c = q.claim("w", 10, LEASE).unwrap();
    assert_eq!(c[0].id, b);
    assert_eq!(c[0].parents.as_json(), r#"{"a":[1,2]}"#);
    let v = q.inspect().unwrap().get(b).unwrap().unwrap();
    assert_eq!(v.after, vec![a]);
    assert_eq!(v.name.as_deref(), Some("b"));
}
