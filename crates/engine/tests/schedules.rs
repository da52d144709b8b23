//! Schedules on the engine's side: a `Worker` fires the due ticks of its
//! queue's schedules and its events tell them (and carry each job's tick);
//! a worker told not to, and a run, fire none. On an SQLite queue with a
//! manual clock: ticks come due when the test moves the clock. A worker's
//! meter is told the ticks it fired, the leases it rescued and the
//! attempts it ran.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runyard_core::{
    Context, Event, JobSpec, OutcomeKind, Policy, Registry, Spec, Task, TaskDef, TaskError,
    TaskKind, Timestamp,
};
use runyard_engine::{Engine, EngineConfig, EventSink, Meter};
use runyard_queue::{ManualClock, Queue, ScheduleDef};
use runyard_sqlite::{OpenMode, SqliteQueue};

/// Returns at once.
struct Noop;

impl Task for Noop {
    const NAME: &'static str = "noop";
    const KIND: TaskKind = TaskKind::Cpu;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

fn engine(fire: bool) -> Engine {
    let registry = Registry::builder()
        .task(TaskDef::from_task(Noop))
        .build()
        .unwrap();
    let config = EngineConfig::builder()
        .grace(Duration::from_millis(200))
        .schedules(fire)
        .build()
        .unwrap();
    Engine::new(registry, config)
}

const START: i64 = 1_700_000_000_000_000;

/// A queue on a state file of its own, on a manual clock, with an
/// every-10s schedule `ten` of one `noop` job.
fn queue(dir: &tempfile::TempDir) -> (Arc<dyn Queue>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(START)));
    let q = SqliteQueue::open_with_clock(
        &dir.path().join("q.db"),
        OpenMode::CreateOrOpen,
        Arc::clone(&clock) as _,
    )
    .unwrap();
    let q: Arc<dyn Queue> = Arc::new(q);
    let job = engine(true).prepare(&JobSpec::new("noop")).unwrap();
    q.schedules()
        .unwrap()
        .put_schedule(&ScheduleDef {
            name: "ten".into(),
            spec: Spec::every(Duration::from_secs(10), Timestamp::EPOCH).unwrap(),
            policy: Policy::default(),
            jobs: vec![job],
        })
        .unwrap();
    (q, clock)
}

/// Keeps every event as JSON.
#[derive(Default)]
struct Kept(Mutex<Vec<serde_json::Value>>);

impl EventSink for Kept {
    fn event(&self, e: &Event<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_value(e).unwrap());
    }
}

impl Kept {
    fn of(&self, kind: &str) -> Vec<serde_json::Value> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|e| e["type"] == kind).cloned().collect()
    }
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_worker_fires_due_ticks_and_its_events_tell_them() {
    let dir = tempfile::tempdir().unwrap();
    let (q, clock) = queue(&dir);
    let kept = Arc::new(Kept::default());
    let run = engine(true)
        .worker(Arc::clone(&q))
        .sink(Arc::clone(&kept) as _)
        .start()
        .unwrap();
    // Two ticks come due at once: both fire (within the grace), each once.
    clock.advance(Duration::from_secs(20));
    wait_until(Duration::from_secs(30), "two jobs to succeed", || {
        kept.of("succeeded").len() == 2
    });
    run.interrupt();
    run.join().unwrap();
    let fired = kept.of("fired");
    assert_eq!(fired.len(), 2, "{fired:?}");
    let ticks: Vec<&str> = fired
        .iter()
        .map(|f| f["data"]["tick"].as_str().unwrap())
        .collect();
    assert_eq!(
        ticks,
        ["2023-11-14T22:13:30.000Z", "2023-11-14T22:13:40.000Z"]
    );
    // Each job's events carry its schedule and tick.
    for f in &fired {
        let job = &f["data"]["jobs"][0];
        let done = kept
            .of("succeeded")
            .into_iter()
            .find(|e| e["data"]["job"] == *job)
            .unwrap();
        assert_eq!(done["data"]["schedule"], "ten");
        assert_eq!(done["data"]["tick"], f["data"]["tick"]);
    }
    let info = q.schedules().unwrap().schedule("ten").unwrap().unwrap();
    assert_eq!(info.fired, 2);
}

#[test]
fn a_worker_told_not_to_and_a_run_fire_no_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (q, clock) = queue(&dir);
    clock.advance(Duration::from_secs(10));
    // Each drains a job of its own while the tick is due; then the tick is
    // still there to fire.
    let job = || engine(true).prepare(&JobSpec::new("noop")).unwrap();
    let run = engine(false).worker(Arc::clone(&q)).start().unwrap();
    let id = q.enqueue_one(job()).unwrap().id();
    wait_until(Duration::from_secs(30), "the worker's job", || {
        q.inspect()
            .unwrap()
            .get(id)
            .unwrap()
            .unwrap()
            .state
            .is_terminal()
    });
    run.interrupt();
    run.join().unwrap();
    let run = engine(true).start(Arc::clone(&q)).unwrap();
    run.submit_prepared(vec![job()]).unwrap();
    run.close();
    run.wait().unwrap();
    let s = q.schedules().unwrap();
    assert_eq!(s.schedule("ten").unwrap().unwrap().fired, 0);
    let report = s.fire_due().unwrap();
    assert_eq!(report.fired.len(), 1, "the tick was left due: {report:?}");
}

/// Counts what a worker's meter is told.
#[derive(Default)]
struct Counted {
    claimed: AtomicUsize,
    started: AtomicUsize,
    succeeded: AtomicUsize,
    other: AtomicUsize,
    running: AtomicUsize,
    rescued: AtomicUsize,
    fired: AtomicUsize,
}

impl Meter for Counted {
    fn claimed(&self, jobs: usize) {
        self.claimed.fetch_add(jobs, Ordering::SeqCst);
    }
    fn started(&self, task: &str, _: Duration) {
        assert_eq!(task, "noop");
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn finished(&self, _: &str, outcome: OutcomeKind, _: Duration) {
        match outcome {
            OutcomeKind::Succeeded => &self.succeeded,
            _ => &self.other,
        }
        .fetch_add(1, Ordering::SeqCst);
    }
    fn running(&self, attempts: usize) {
        self.running.store(attempts, Ordering::SeqCst);
    }
    fn rescued(&self, jobs: usize) {
        self.rescued.fetch_add(jobs, Ordering::SeqCst);
    }
    fn ticks(&self, fired: usize, _: usize, _: u64) {
        self.fired.fetch_add(fired, Ordering::SeqCst);
    }
}

#[test]
fn a_worker_meters_the_ticks_it_fires_the_leases_it_rescues_and_the_attempts_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (q, clock) = queue(&dir);
    // A job claimed by a worker that is gone: its lease expires once the
    // clock moves, and the metered worker's rescue puts it back.
    q.enqueue_one(engine(true).prepare(&JobSpec::new("noop")).unwrap())
        .unwrap();
    assert_eq!(
        q.claim_tasks("gone", 1, Duration::from_secs(2), None)
            .unwrap()
            .len(),
        1
    );
    let counted = Arc::new(Counted::default());
    let registry = Registry::builder()
        .task(TaskDef::from_task(Noop))
        .build()
        .unwrap();
    let config = EngineConfig::builder()
        .grace(Duration::from_millis(200))
        .lease(Duration::from_secs(1))
        .build()
        .unwrap();
    let run = Engine::new(registry, config)
        .worker(Arc::clone(&q))
        .meter(Arc::clone(&counted) as _)
        .start()
        .unwrap();
    clock.advance(Duration::from_secs(20));
    let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
    wait_until(Duration::from_secs(30), "three attempts", || {
        n(&counted.succeeded) == 3 && n(&counted.running) == 0
    });
    run.interrupt();
    run.join().unwrap();
    assert_eq!(n(&counted.fired), 2, "two ticks came due");
    assert_eq!(n(&counted.rescued), 1);
    assert_eq!(n(&counted.claimed), 3);
    assert_eq!(n(&counted.started), 3);
    assert_eq!(n(&counted.succeeded), 3);
    assert_eq!(n(&counted.other), 0);
}
