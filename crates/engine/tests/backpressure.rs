//! A queue that writes outcomes more slowly than it hands out jobs: the
//! dispatcher stops claiming while too many ended attempts wait for their
//! records to be written, instead of running the queue's whole backlog
//! ahead of its recorded ends (whose leases would then run out).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use runyard_core::{Context, JobSpec, Mode, Registry, Task, TaskDef, TaskError};
use runyard_engine::{Engine, EngineConfig};
use runyard_queue::{
    Capabilities, Claimed, Completion, Durability, MemoryQueue, Queue, QueueError, Recorded,
    TaskName, Writes,
};

const JOBS: usize = 60_000;

/// The most jobs a worker may hold claimed beyond the records written:
/// the dispatcher's bound on unwritten records (16,384), one claim (4,096)
/// and its lanes' room.
const AHEAD_MAX: usize = 16_384 + 4_096 + 64;

struct Noop;

impl Task for Noop {
    const NAME: &'static str = "noop";
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// A memory queue whose first write waits until the worker has claimed
/// more than [`AHEAD_MAX`] jobs beyond what was written (the fault), or
/// until 2 s have passed (the worker stopped claiming, as it should).
#[derive(Debug, Default)]
struct SlowWrites {
    inner: MemoryQueue,
    claimed: AtomicUsize,
    written: AtomicUsize,
    /// The most jobs claimed beyond those written, at any claim.
    most_ahead: AtomicUsize,
    /// Set once the first write may go on.
    open: Mutex<bool>,
    opened: Condvar,
}

impl Queue for SlowWrites {
    fn capabilities(&self) -> Capabilities {
        // Durable, with a writer thread: as the PostgreSQL queue is.
        let mut c = Capabilities::new(Durability::Durable, Writes::Concurrent);
        for k in self.inner.capabilities().kept() {
            c = c.with(k);
        }
        c
    }

    runyard_queue::forward_queue!(inner: as_inspect, as_admin, insert, insert_async, started, heartbeat, release,
        rescue, counts, next_due, now, set_waker);

    fn claim_tasks(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
        tasks: Option<&[TaskName]>,
    ) -> Result<Vec<Claimed>, QueueError> {
        let got = self.inner.claim_tasks(worker, max, lease, tasks)?;
        let claimed = self.claimed.fetch_add(got.len(), Ordering::SeqCst) + got.len();
        let ahead = claimed - self.written.load(Ordering::SeqCst);
        self.most_ahead.fetch_max(ahead, Ordering::SeqCst);
        if ahead > AHEAD_MAX {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
        Ok(got)
    }

    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut open = self.open.lock().unwrap();
        while !*open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                *open = true;
                break;
            }
            open = self.opened.wait_timeout(open, left).unwrap().0;
        }
        drop(open);
        let r = self.inner.complete(worker, done)?;
        self.written.fetch_add(done.len(), Ordering::SeqCst);
        Ok(r)
    }
}

#[test]
fn claims_wait_while_too_many_ends_are_not_yet_written() {
    let registry = Registry::builder()
        .task(TaskDef::from_task(Noop))
        .build()
        .unwrap();
    let config = EngineConfig::builder()
        .mode(Mode::Thread)
        .concurrency(2)
        .build()
        .unwrap();
    let engine = Engine::new(registry, config);
    let queue = Arc::new(SlowWrites::default());
    let run = engine.start(Arc::clone(&queue) as Arc<dyn Queue>).unwrap();
    for _ in 0..JOBS / 5_000 {
        let batch = (0..5_000)
            .map(|_| engine.prepare(&JobSpec::new("noop")).unwrap())
            .collect();
        run.submit_prepared(batch).unwrap();
    }
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded as usize, JOBS);
    let ahead = queue.most_ahead.load(Ordering::SeqCst);
    assert!(
        ahead <= AHEAD_MAX,
        "{ahead} jobs were claimed beyond the ends written (at most {AHEAD_MAX})"
    );
}
