//! The engine inside a caller's tokio runtime: submitting, finishing a run
//! and running a worker until its shutdown signal, on a `current_thread`
//! runtime, where a wait that blocked the runtime's one thread would
//! deadlock the test (a task of the test's runtime opens the gate the
//! jobs wait for).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_core::{Context, JobSpec, Mode, Registry, Task, TaskDef, TaskError, TaskKind};
use runyard_engine::{Engine, EngineConfig, Run};
use runyard_queue::{MemoryQueue, Queue};
use runyard_sqlite::{OpenMode, SqliteQueue};

/// Waits until its gate is open (or its attempt is cancelled).
struct Gate(Arc<AtomicBool>);

impl Task for Gate {
    const NAME: &'static str = "gate";
    const KIND: TaskKind = TaskKind::Blocking;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), ctx: &Context) -> Result<(), TaskError> {
        while !self.0.load(Ordering::SeqCst) {
            ctx.sleep(Duration::from_millis(1))?;
        }
        Ok(())
    }
}

fn engine(gate: &Arc<AtomicBool>) -> Engine {
    let registry = Registry::builder()
        .task(TaskDef::from_task(Gate(Arc::clone(gate))))
        .build()
        .unwrap();
    let config = EngineConfig::builder()
        .mode(Mode::Auto)
        .grace(Duration::from_millis(200))
        .build()
        .unwrap();
    Engine::new(registry, config)
}

/// Opens the gate from a task of the caller's runtime: it runs only if
/// whatever the test awaits meanwhile leaves the runtime's thread free.
fn open_later(gate: &Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let gate = Arc::clone(gate);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.store(true, Ordering::SeqCst);
    })
}

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Queue> {
    Arc::new(SqliteQueue::open(&dir.path().join("q.db"), OpenMode::CreateOrOpen).unwrap())
}

async fn submit_and_finish(queue: Arc<dyn Queue>) {
    let gate = Arc::new(AtomicBool::new(false));
    let engine = engine(&gate);
    let run = engine.start(queue).unwrap();
    for _ in 0..10 {
        run.submit_async(&JobSpec::new("gate")).await.unwrap();
    }
    let jobs = (0..5)
        .map(|_| engine.prepare(&JobSpec::new("gate")).unwrap())
        .collect();
    run.submit_prepared_async(jobs).await.unwrap();
    let opener = open_later(&gate);
    let report = run.finish().await.unwrap();
    opener.await.unwrap();
    assert_eq!(report.summary.succeeded, 15);
    assert!(!report.summary.interrupted);
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_in_memory_is_fed_and_finished_from_async_code() {
    submit_and_finish(Arc::new(MemoryQueue::new())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_on_sqlite_is_fed_and_finished_from_async_code() {
    let dir = tempfile::tempdir().unwrap();
    submit_and_finish(sqlite(&dir)).await;
}

/// A worker drains what others enqueue until its shutdown future
/// resolves, then ends.
async fn worker_until_shutdown(queue: Arc<dyn Queue>) {
    let gate = Arc::new(AtomicBool::new(false));
    let engine = engine(&gate);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = engine.worker(Arc::clone(&queue)).name("w1");
    let worker = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let job = engine.prepare(&JobSpec::new("gate")).unwrap();
    queue.enqueue(vec![job; 8]).unwrap();
    let opener = open_later(&gate);
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.counts().unwrap().succeeded < 8 {
        assert!(Instant::now() < deadline, "{:?}", queue.counts());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Drained, the worker waits for more rather than ending.
    assert!(!worker.is_finished());
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    opener.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_on_memory_drains_until_its_shutdown_signal() {
    worker_until_shutdown(Arc::new(MemoryQueue::new())).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_worker_on_sqlite_drains_until_its_shutdown_signal() {
    let dir = tempfile::tempdir().unwrap();
    worker_until_shutdown(sqlite(&dir)).await;
}

/// At shutdown, a running attempt gets the grace period; one that does
/// not end in it is cancelled, and the worker still ends.
#[tokio::test(flavor = "current_thread")]
async fn a_worker_shut_down_mid_attempt_ends_after_the_grace_period() {
    let gate = Arc::new(AtomicBool::new(false));
    let engine = engine(&gate);
    let queue: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
    queue
        .enqueue(vec![engine.prepare(&JobSpec::new("gate")).unwrap()])
        .unwrap();
    let t = Instant::now();
    // By then the attempt has started, and waits at the gate.
    let shutdown = tokio::time::sleep(Duration::from_millis(200));
    engine
        .worker(Arc::clone(&queue))
        .run(shutdown)
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(!gate.load(Ordering::SeqCst));
}

/// A service shares a run between its tasks.
#[test]
fn a_run_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Run>();
    let gate = Arc::new(AtomicBool::new(true));
    let engine = engine(&gate);
    let run = engine.start(Arc::new(MemoryQueue::new())).unwrap();
    let spec = JobSpec::new("gate");
    send(&run.submit_async(&spec));
    send(&engine.worker(Arc::new(MemoryQueue::new())).run(async {}));
    send(&run.finish());
}
