//! The thread pool and the async executor against real tasks: every attempt
//! reported once, panics contained, timeouts that do not wait for the task.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runyard_core::{
    AsyncTask, Context, JobId, JobParams, Outcome, Registry, Task, TaskDef, TaskError, TaskIndex,
};
use runyard_exec::{AsyncExecutor, Attempt, AttemptReport, Executor, PoolConfig, Sink, ThreadPool};

struct Chan(Mutex<Sender<AttemptReport>>, Mutex<Option<Sender<u64>>>);

impl Sink for Chan {
    fn finished(&self, batch: Vec<AttemptReport>) {
        let tx = self.0.lock().unwrap();
        for f in batch {
            tx.send(f).unwrap();
        }
    }

    fn started(&self, token: u64, _: runyard_core::Timestamp) {
        if let Some(tx) = &*self.1.lock().unwrap() {
            tx.send(token).unwrap();
        }
    }

    fn wants_started(&self) -> bool {
        self.1.lock().unwrap().is_some()
    }
}

fn sink() -> (Arc<dyn Sink>, Receiver<AttemptReport>) {
    let (tx, rx) = channel();
    (Arc::new(Chan(Mutex::new(tx), Mutex::new(None))), rx)
}

fn sink_with_starts() -> (Arc<dyn Sink>, Receiver<AttemptReport>, Receiver<u64>) {
    let (tx, rx) = channel();
    let (stx, srx) = channel();
    (
        Arc::new(Chan(Mutex::new(tx), Mutex::new(Some(stx)))),
        rx,
        srx,
    )
}

/// Blocks, ignoring cancellation, until RELEASE is set.
static RELEASE: AtomicBool = AtomicBool::new(false);
static STUCK_STARTED: AtomicUsize = AtomicUsize::new(0);

struct Noop;
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Params = ();
    type Output = u64;
    fn run(&self, _: (), ctx: &Context) -> Result<u64, TaskError> {
        Ok(ctx.job_id().0)
    }
}

struct Panics;
impl Task for Panics {
    const NAME: &'static str = "panics";
    type Params = ();
    type Output = ();
    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        panic!("task blew up")
    }
}

struct Stuck;
impl Task for Stuck {
    const NAME: &'static str = "stuck";
    type Params = ();
    type Output = ();
    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        STUCK_STARTED.fetch_add(1, Ordering::SeqCst);
        while !RELEASE.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(5));
        }
        Ok(())
    }
}

struct Polite;
impl Task for Polite {
    const NAME: &'static str = "polite";
    type Params = ();
    type Output = ();
    fn run(&self, _: (), ctx: &Context) -> Result<(), TaskError> {
        ctx.sleep(Duration::from_secs(3600))
    }
}

struct AsyncSleep;
impl AsyncTask for AsyncSleep {
    const NAME: &'static str = "asleep";
    type Params = ();
    type Output = ();
    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

struct AsyncPanics;
impl AsyncTask for AsyncPanics {
    const NAME: &'static str = "apanics";
    type Params = ();
    type Output = ();
    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        tokio::task::yield_now().await;
        panic!("async blew up")
    }
}

/// Counts the futures of `aguarded` dropped (cancelled or timed out).
static GUARDS_DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        GUARDS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

struct AsyncGuarded;
impl AsyncTask for AsyncGuarded {
    const NAME: &'static str = "aguarded";
    type Params = ();
    type Output = ();
    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        let _g = Guard;
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        Ok(())
    }
}

/// Holds its runtime thread, ignoring cancellation, until ABLOCK_RELEASE is
/// set: an async task that blocks (a synchronous sleep or read).
static ABLOCK_RELEASE: AtomicBool = AtomicBool::new(false);
static ABLOCK_RETURNED: AtomicUsize = AtomicUsize::new(0);

struct AsyncBlocks;
impl AsyncTask for AsyncBlocks {
    const NAME: &'static str = "ablocks";
    type Params = ();
    type Output = ();
    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        while !ABLOCK_RELEASE.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(5));
        }
        ABLOCK_RETURNED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct AsyncNoop;
impl AsyncTask for AsyncNoop {
    const NAME: &'static str = "anoop";
    type Params = ();
    type Output = ();
    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        Ok(())
    }
}

fn registry() -> Arc<Registry> {
    Arc::new(
        Registry::builder()
            .task(TaskDef::from_async(AsyncBlocks))
            .task(TaskDef::from_async(AsyncNoop))
            .task(TaskDef::from_async(AsyncGuarded))
            .task(TaskDef::from_task(Noop))
            .task(TaskDef::from_task(Panics))
            .task(TaskDef::from_task(Stuck))
            .task(TaskDef::from_task(Polite))
            .task(TaskDef::from_async(AsyncSleep))
            .task(TaskDef::from_async(AsyncPanics))
            .build()
            .unwrap(),
    )
}

fn attempt(reg: &Registry, task: &str, token: u64, timeout: Option<Duration>) -> Attempt {
    Attempt {
        token,
        job: JobId(token),
        number: 1,
        task: reg.lookup(task).unwrap(),
        params: JobParams::empty(),
        timeout,
        parents: None,
    }
}

fn recv(rx: &Receiver<AttemptReport>) -> AttemptReport {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("an attempt was never reported")
}

/// Submits attempt 1 of `task`, with a 50 ms timeout, and checks that it
/// is reported timed out while `stuck` says the task still holds its thread.
fn times_out_while_stuck(
    ex: &dyn Executor,
    reg: &Registry,
    rx: &Receiver<AttemptReport>,
    task: &str,
    stuck: impl Fn() -> bool,
) {
    ex.submit(vec![attempt(reg, task, 1, Some(Duration::from_millis(50)))]);
    let f = recv(rx);
    assert_eq!(f.token, 1);
    assert!(
        matches!(f.outcome, Outcome::TimedOut(d) if d == Duration::from_millis(50)),
        "{:?}",
        f.outcome
    );
    assert!(stuck(), "reported while the task still holds its thread");
}

#[test]
fn every_attempt_is_reported_exactly_once() {
    let reg = registry();
    let (s, rx) = sink();
    let pool = ThreadPool::new(PoolConfig::fixed("t", 2), reg.clone(), s).unwrap();
    let n = 10_000u64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(333) {
        pool.submit(
            chunk
                .iter()
                .map(|&i| attempt(&reg, "noop", i, None))
                .collect(),
        );
    }
    let mut seen = vec![0u32; n as usize];
    for _ in 0..n {
        let f = recv(&rx);
        seen[f.token as usize] += 1;
        match f.outcome {
            Outcome::Succeeded(out) => assert_eq!(out.as_json(), f.token.to_string()),
            other => panic!("{other:?}"),
        }
    }
    assert!(seen.iter().all(|&c| c == 1));
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "nothing reported twice"
    );
}

#[test]
fn a_panic_is_an_outcome_and_the_pool_goes_on() {
    let reg = registry();
    let (s, rx) = sink();
    let pool = ThreadPool::new(PoolConfig::fixed("t", 1), reg.clone(), s).unwrap();
    pool.submit(vec![
        attempt(&reg, "panics", 1, None),
        attempt(&reg, "noop", 2, None),
    ]);
    let a = recv(&rx);
    let b = recv(&rx);
    match a.outcome {
        Outcome::Panicked(msg) => assert!(msg.starts_with("task blew up (at "), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(b.outcome, Outcome::Succeeded(_)));
    assert_eq!(pool.threads(), 1);
}

#[test]
fn a_timed_out_task_that_ignores_cancellation_is_abandoned_not_awaited() {
    let reg = registry();
    let (s, rx) = sink();
    let pool = ThreadPool::new(PoolConfig::fixed("t", 1), reg.clone(), s).unwrap();
    times_out_while_stuck(&pool, &reg, &rx, "stuck", || {
        STUCK_STARTED.load(Ordering::SeqCst) > 0 && !RELEASE.load(Ordering::SeqCst)
    });
    // The pool has a new thread: other work runs while the old one is stuck.
    pool.submit(vec![attempt(&reg, "noop", 2, None)]);
    let g = recv(&rx);
    assert_eq!(g.token, 2);
    assert!(matches!(g.outcome, Outcome::Succeeded(_)));
    RELEASE.store(true, Ordering::SeqCst);
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "the abandoned attempt is not reported again"
    );
}

#[test]
fn a_cooperative_task_stops_at_its_timeout() {
    let reg = registry();
    let (s, rx) = sink();
    let pool = ThreadPool::new(PoolConfig::fixed("t", 1), reg.clone(), s).unwrap();
    pool.submit(vec![attempt(
        &reg,
        "polite",
        1,
        Some(Duration::from_millis(20)),
    )]);
    assert!(matches!(recv(&rx).outcome, Outcome::TimedOut(_)));
}

#[test]
fn cancel_running_reports_each_running_attempt_and_returns_the_rest() {
    let reg = registry();
    let (s, rx, starts) = sink_with_starts();
    let pool = ThreadPool::new(PoolConfig::fixed("t", 2), reg.clone(), s).unwrap();
    pool.submit((1..=5).map(|i| attempt(&reg, "polite", i, None)).collect());
    // Wait until both threads are inside an attempt.
    let mut running = vec![
        starts.recv_timeout(Duration::from_secs(60)).unwrap(),
        starts.recv_timeout(Duration::from_secs(60)).unwrap(),
    ];
    running.sort();
    let rest = pool.cancel_running();
    let mut cancelled = [recv(&rx), recv(&rx)];
    cancelled.sort_by_key(|f| f.token);
    assert_eq!(
        cancelled.iter().map(|f| f.token).collect::<Vec<_>>(),
        running
    );
    assert!(cancelled
        .iter()
        .all(|f| matches!(f.outcome, Outcome::Cancelled)));
    let mut all: Vec<u64> = rest.iter().map(|a| a.token).chain(running).collect();
    all.sort();
    assert_eq!(
        all,
        vec![1, 2, 3, 4, 5],
        "every attempt is either reported or given back"
    );
}

#[test]
fn an_elastic_pool_grows_to_the_blocked_attempts() {
    let reg = registry();
    let (s, rx) = sink();
    let pool = ThreadPool::new(PoolConfig::elastic("b", 64), reg.clone(), s).unwrap();
    pool.submit(
        (1..=20)
            .map(|i| attempt(&reg, "polite", i, Some(Duration::from_millis(200))))
            .collect(),
    );
    for _ in 0..20 {
        assert!(matches!(recv(&rx).outcome, Outcome::TimedOut(_)));
    }
    let _ = TaskIndex(0);
}

#[test]
fn async_attempts_time_out_panic_and_cancel() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reg = registry();
    let (s, rx) = sink();
    let ex = AsyncExecutor::new(rt.handle().clone(), reg.clone(), s);
    ex.submit(vec![
        attempt(&reg, "asleep", 1, Some(Duration::from_millis(30))),
        attempt(&reg, "apanics", 2, None),
        attempt(&reg, "asleep", 3, None),
    ]);
    let mut got: Vec<AttemptReport> = vec![recv(&rx), recv(&rx)];
    got.sort_by_key(|f| f.token);
    assert!(
        matches!(got[0].outcome, Outcome::TimedOut(_)),
        "{:?}",
        got[0].outcome
    );
    assert!(
        matches!(&got[1].outcome, Outcome::Panicked(m) if m.starts_with("async blew up")),
        "{:?}",
        got[1].outcome
    );
    ex.cancel(3);
    let c = recv(&rx);
    assert_eq!(c.token, 3);
    assert!(matches!(c.outcome, Outcome::Cancelled));
}

/// An attempt cancelled before its task was first polled, and one whose
/// runtime shuts down under it, are each reported cancelled, once: the
/// attempt's task reports as it is dropped.
#[test]
fn async_attempts_cancelled_unpolled_or_dropped_with_their_runtime_are_reported_once() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reg = registry();
    let (s, rx) = sink();
    let ex = AsyncExecutor::new(rt.handle().clone(), reg.clone(), s);
    ex.submit(vec![
        attempt(&reg, "asleep", 1, None),
        attempt(&reg, "asleep", 2, None),
    ]);
    // Nothing has driven the runtime: neither task was polled.
    ex.cancel(1);
    let c = rt.block_on(async {
        loop {
            match rx.try_recv() {
                Ok(f) => break f,
                Err(_) => tokio::task::yield_now().await,
            }
        }
    });
    assert_eq!(c.token, 1);
    assert!(matches!(c.outcome, Outcome::Cancelled), "{:?}", c.outcome);
    assert_eq!(c.duration, Duration::ZERO, "it never ran");
    assert_eq!(ex.running(), 1, "the second one started");
    // The runtime's end drops the second attempt's task, here.
    drop(rt);
    let d = rx.try_recv().expect("reported as its task was dropped");
    assert_eq!(d.token, 2);
    assert!(matches!(d.outcome, Outcome::Cancelled), "{:?}", d.outcome);
    assert!(rx.try_recv().is_err(), "each once");
    assert_eq!(ex.running(), 0);
}

/// On tokio's paused clock: timeouts fire in the order of their deadlines,
/// a timed-out future is dropped (its guard runs), and hours of virtual
/// time pass without the test waiting for them.
#[test]
fn async_timeouts_drop_the_future_in_deadline_order_on_a_paused_clock() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let reg = registry();
    let (s, rx) = sink();
    let ex = AsyncExecutor::new(rt.handle().clone(), reg.clone(), s);
    let dropped_before = GUARDS_DROPPED.load(Ordering::SeqCst);
    let minutes = |m: u64| Some(Duration::from_secs(60 * m));
    ex.submit(vec![
        attempt(&reg, "aguarded", 1, minutes(30)),
        attempt(&reg, "aguarded", 2, minutes(10)),
        attempt(&reg, "aguarded", 3, minutes(20)),
        attempt(&reg, "aguarded", 4, None),
    ]);
    let got: Vec<AttemptReport> = rt.block_on(async {
        let mut got = Vec::new();
        while got.len() < 3 {
            match rx.try_recv() {
                Ok(f) => got.push(f),
                // Idle: the paused clock jumps to the next timer.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        got
    });
    let order: Vec<u64> = got.iter().map(|f| f.token).collect();
    assert_eq!(order, [2, 3, 1], "in the order of their deadlines");
    for f in &got {
        assert!(matches!(f.outcome, Outcome::TimedOut(_)), "{:?}", f.outcome);
    }
    assert!(matches!(got[0].outcome, Outcome::TimedOut(d) if d == Duration::from_secs(600)));
    assert_eq!(
        GUARDS_DROPPED.load(Ordering::SeqCst) - dropped_before,
        3,
        "each timed-out future was dropped, the fourth still runs"
    );
    // Cancelling the last drops it too.
    ex.cancel(4);
    let c = rt.block_on(async {
        loop {
            match rx.try_recv() {
                Ok(f) => break f,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    });
    assert_eq!(c.token, 4);
    assert!(matches!(c.outcome, Outcome::Cancelled));
    assert_eq!(GUARDS_DROPPED.load(Ordering::SeqCst) - dropped_before, 4);
}

/// A future that blocks its runtime thread never reaches an `.await`, and
/// with the runtime's only thread held its own timer cannot fire: it is
/// reported timed out at its deadline all the same (by the watchdog, on a
/// thread of its own, so this runs on the real clock), abandoned, and
/// never reported again when it finally returns.
#[test]
fn an_async_task_that_blocks_its_thread_is_timed_out_and_abandoned() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Dropped before the runtime (which waits for its thread), even when
    // an assertion fails.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            ABLOCK_RELEASE.store(true, Ordering::SeqCst);
        }
    }
    let _release = Release;
    let reg = registry();
    let (s, rx) = sink();
    let ex = AsyncExecutor::new(rt.handle().clone(), reg.clone(), s);
    times_out_while_stuck(&ex, &reg, &rx, "ablocks", || {
        ABLOCK_RETURNED.load(Ordering::SeqCst) == 0
    });
    assert_eq!(ex.running(), 0, "a reported attempt is not running");
    // The thread comes back: the abandoned future is dropped unreported,
    // and the runtime runs the next attempt.
    ABLOCK_RELEASE.store(true, Ordering::SeqCst);
    ex.submit(vec![attempt(&reg, "anoop", 2, None)]);
    let g = recv(&rx);
    assert_eq!(g.token, 2, "the abandoned attempt is not reported again");
    assert!(
        matches!(g.outcome, Outcome::Succeeded(_)),
        "{:?}",
        g.outcome
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing reported twice"
    );
}
