//! A large batch of unique jobs on PostgreSQL (the COPY straight from the
//! jobs, `flow::insert_unique`) answers as the memory queue, the
//! reference, does: new jobs, duplicates of a waiting holder or of an
//! earlier job of the batch, replacements, and jobs without a key.

use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    Backoff, JobId, JobParams, JobSettings, Mode, OnConflict, TaskName, Timestamp, Unique,
};
use runyard_postgres::{PgOptions, PgQueue};
use runyard_queue::{Enqueued, MemoryQueue, NewJob, Queue, SystemClock};

fn job(n: usize, key: Option<String>, replace: bool, later: Option<Timestamp>) -> NewJob {
    let settings = Arc::new(JobSettings {
        max_attempts: 2,
        backoff: Backoff::DEFAULT_EXPONENTIAL,
        timeout: Some(Duration::from_secs(5)),
        priority: 0,
        mode: Mode::Auto,
        isolate: false,
    });
    NewJob {
        unique: key.map(|key| Unique {
            key,
            within: None,
            on_conflict: if replace {
                OnConflict::Replace
            } else {
                OnConflict::Skip
            },
        }),
        run_at: later,
        ..NewJob::new(
            TaskName::from("t"),
            JobParams::from_json(&format!("{{\"n\":{n}}}")).unwrap(),
            settings,
        )
    }
}

/// The batch: 700 jobs, 300 keys, each key's first job new (some of them
/// scheduled an hour ahead); keys 0..40 already held before the batch,
/// every key's second job a skip or a replace, 100 jobs without a key.
fn batch(later: Timestamp) -> Vec<NewJob> {
    let mut v = Vec::new();
    for i in 0..300 {
        v.push(job(
            i,
            Some(format!("k-{i}")),
            false,
            (i % 7 == 0).then_some(later),
        ));
        if i % 3 == 0 {
            v.push(job(1000 + i, None, false, None));
        }
    }
    for i in 0..300 {
        v.push(job(2000 + i, Some(format!("k-{i}")), i % 2 == 0, None));
    }
    v
}

/// What a queue made of the batch: per job, its kind and where its id
/// points (`Some(at)`: the job the batch added at position `at`; `None`:
/// a job from before the batch), and each added or held job's
/// parameters, in batch order.
fn shape(q: &dyn Queue, out: &[Enqueued], held: &[JobId]) -> (Vec<String>, Vec<String>) {
    let new: Vec<(usize, JobId)> = out
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Enqueued::New(_)))
        .map(|(i, e)| (i, e.id()))
        .collect();
    let at = |id: JobId| new.iter().find(|(_, n)| *n == id).map(|(i, _)| *i);
    let kinds = out
        .iter()
        .map(|e| {
            let kind = match e {
                Enqueued::New(_) => "new",
                Enqueued::Duplicate(_) => "duplicate",
                Enqueued::Replaced(_) => "replaced",
            };
            let to = match at(e.id()) {
                Some(i) => format!("batch {i}"),
                None => format!("held {:?}", held.iter().position(|h| *h == e.id())),
            };
            format!("{kind} -> {to}")
        })
        .collect();
    let ins = q.inspect().unwrap();
    let params = held
        .iter()
        .copied()
        .chain(new.iter().map(|(_, id)| *id))
        .map(|id| {
            let v = ins.get(id).unwrap().expect("the job");
            format!("{:?} {}", v.state, v.params.as_json())
        })
        .collect();
    (kinds, params)
}

fn run(q: &dyn Queue) -> (Vec<String>, Vec<String>) {
    let later = Timestamp::from_micros(q.now().as_micros() + 3_600_000_000);
    let held: Vec<JobId> = q
        .enqueue(
            (0..40)
                .map(|i| job(500 + i, Some(format!("k-{i}")), false, None))
                .collect(),
        )
        .unwrap()
        .into_iter()
        .map(Enqueued::id)
        .collect();
    let out = q.enqueue(batch(later)).unwrap();
    shape(q, &out, &held)
}

#[test]
fn a_large_unique_batch_answers_as_the_memory_queue_does() {
    let url = runyard_postgres::testing::server().fresh_url("unique_batch");
    let pg = PgQueue::open(PgOptions::from_url(&url).unwrap(), Arc::new(SystemClock)).unwrap();
    let memory = MemoryQueue::new();
    let (pg_kinds, pg_params) = run(&pg);
    let (mem_kinds, mem_params) = run(&memory);
    assert_eq!(pg_kinds.len(), 700);
    assert_eq!(pg_kinds, mem_kinds);
    assert_eq!(pg_params, mem_params);
}
