//! Flow control on the engine's side: the limits and unique keys a job
//! carries to its queue, a run's task limits, and what the dispatcher does
//! with rate-limited claims, paused tasks and leases it cannot renew.
//!
//! The dispatcher's cases run on [`Shim`], an in-memory queue that answers
//! claims and heartbeats as a queue with limits would (a claim of a
//! rate-limited task says when it was admitted; a heartbeat lists the
//! claims of a paused task, or fails, or waits, on demand).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use runyard_core::{
    AsyncTask, Context, Event, FlowKey, Hold, JobId, JobSpec, JobState, Mode, OnConflict,
    OutcomeKind, Rate, Registry, Task, TaskDef, TaskDefaults, TaskError, TaskKind, Timestamp,
};
use runyard_engine::{ConfigError, Engine, EngineConfig, EventSink, Meter, Run};
use runyard_queue::{
    Capabilities, Capability, Claimed, Clock, Completion, Durability, Enqueued, Fenced,
    HeartbeatReply, Lease, ManualClock, MemoryQueue, NewJob, PublishedTask, Queue, QueueError,
    QueueErrorKind, Recorded, Submit, TaskName,
};

// ------------------------------------------------------------------ tasks

/// Waits until its gate is open, or its attempt is cancelled (then says so).
struct Gate {
    open: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Task for Gate {
    const NAME: &'static str = "gate";
    const KIND: TaskKind = TaskKind::Cpu;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), ctx: &Context) -> Result<(), TaskError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut r = Ok(());
        while !self.open.load(Ordering::SeqCst) {
            if let Err(e) = ctx.sleep(Duration::from_millis(1)) {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                r = Err(e);
                break;
            }
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

/// The gate as an async task: waits until its gate is open; a future
/// dropped before (its attempt stopped) counts as cancelled.
struct AsyncGate(Switches);

/// Counts an async gate's end: cancelled unless it saw the gate open.
struct GateEnd<'a> {
    s: &'a Switches,
    opened: bool,
}

impl Drop for GateEnd<'_> {
    fn drop(&mut self) {
        if !self.opened {
            self.s.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        self.s.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncTask for AsyncGate {
    const NAME: &'static str = "async_gate";
    type Params = ();
    type Output = ();

    async fn run(&self, _: (), _: Context) -> Result<(), TaskError> {
        let s = &self.0;
        let now = s.running.fetch_add(1, Ordering::SeqCst) + 1;
        s.most.fetch_max(now, Ordering::SeqCst);
        s.started.fetch_add(1, Ordering::SeqCst);
        let mut end = GateEnd { s, opened: false };
        while !s.open.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        end.opened = true;
        Ok(())
    }
}

/// Returns at once; its defaults limit it across the queue.
struct Limited;

impl Task for Limited {
    const NAME: &'static str = "limited";
    type Params = ();
    type Output = ();

    fn defaults(&self) -> TaskDefaults {
        TaskDefaults::new()
            .queue_concurrency(3)
            .rate("10/s".parse().unwrap())
            .worker_concurrency(2)
    }

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Returns at once, with no defaults.
struct Plain;

impl Task for Plain {
    const NAME: &'static str = "plain";
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Returns at once, on the blocking pool.
struct Quick;

impl Task for Quick {
    const NAME: &'static str = "quick";
    const KIND: TaskKind = TaskKind::Blocking;
    type Params = ();
    type Output = ();

    fn run(&self, _: (), _: &Context) -> Result<(), TaskError> {
        Ok(())
    }
}

/// The gate's switches, shared with the test.
#[derive(Default, Clone)]
struct Switches {
    open: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

fn registry(s: &Switches) -> Registry {
    Registry::builder()
        .task(TaskDef::from_task(Gate {
            open: Arc::clone(&s.open),
            started: Arc::clone(&s.started),
            cancelled: Arc::clone(&s.cancelled),
            running: Arc::clone(&s.running),
            most: Arc::clone(&s.most),
        }))
        .task(TaskDef::from_async(AsyncGate(s.clone())))
        .task(TaskDef::from_task(Limited))
        .task(TaskDef::from_task(Plain))
        .task(TaskDef::from_task(Quick))
        .build()
        .unwrap()
}

/// Waits (at most a minute: a failure, not a timing) until `what` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ------------------------------------------------------------------ the shim

/// A call to the shim that a test can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Heartbeat,
    Claim,
}

/// An in-memory queue answering as a queue with flow control would.
#[derive(Debug)]
struct Shim {
    inner: MemoryQueue,
    durable: bool,
    /// Claims of this task are rate-limited: admitted at their claim, an
    /// hour before the queue's now (so that a record starting then is
    /// told apart from one starting when the executor ran it).
    rated: Option<&'static str>,
    /// Every admitted claim: the job, and when it was admitted.
    admitted: Mutex<Vec<(JobId, Timestamp)>>,
    /// This task is paused: claims skip it, heartbeats list its claims.
    paused: Mutex<Option<&'static str>>,
    /// Heartbeats fail while set.
    fail_heartbeats: AtomicBool,
    failed_heartbeats: AtomicUsize,
    /// The calls that wait while held, as on a connection that neither
    /// answers nor fails, until let go (and `unheld` notified).
    hold: Mutex<Option<Call>>,
    unheld: Condvar,
    /// Calls waiting now.
    held_calls: AtomicUsize,
    /// The task of each lease claimed.
    claimed: Mutex<HashMap<Lease, TaskName>>,
    released: Mutex<Vec<Lease>>,
    completed: Mutex<Vec<Lease>>,
    /// The leases each heartbeat named, in order.
    heartbeats: Mutex<Vec<Vec<Lease>>>,
    /// Unique keys seen, with their job.
    unique: Mutex<HashMap<String, JobId>>,
}

impl Shim {
    fn new(durable: bool) -> Shim {
        Shim {
            inner: MemoryQueue::new(),
            durable,
            rated: None,
            admitted: Mutex::default(),
            paused: Mutex::default(),
            fail_heartbeats: AtomicBool::new(false),
            failed_heartbeats: AtomicUsize::new(0),
            hold: Mutex::new(None),
            unheld: Condvar::new(),
            held_calls: AtomicUsize::new(0),
            claimed: Mutex::default(),
            released: Mutex::default(),
            completed: Mutex::default(),
            heartbeats: Mutex::default(),
            unique: Mutex::default(),
        }
    }

    /// The shim, its claims of `task` rate-limited.
    fn rating(mut self, task: &'static str) -> Shim {
        self.rated = Some(task);
        self
    }

    /// Calls of this kind wait from now on (`Some`), or none does.
    fn hold(&self, call: Option<Call>) {
        *self.hold.lock().unwrap() = call;
        self.unheld.notify_all();
    }

    /// Waits while calls of this kind are held.
    fn wait_if_held(&self, call: Call) {
        let mut hold = self.hold.lock().unwrap();
        if *hold == Some(call) {
            self.held_calls.fetch_add(1, Ordering::SeqCst);
            while *hold == Some(call) {
                hold = self.unheld.wait(hold).unwrap();
            }
            self.held_calls.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn released_jobs(&self) -> Vec<JobId> {
        self.released
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.job)
            .collect()
    }
}

impl Queue for Shim {
    fn capabilities(&self) -> Capabilities {
        let d = if self.durable {
            Durability::Durable
        } else {
            Durability::Process
        };
        let inner = self.inner.capabilities();
        let mut c = Capabilities::new(d, inner.writes());
        for k in inner.kept() {
            c = c.with(k);
        }
        c.with(Capability::UniqueJobs).with(Capability::Limits)
    }

    runyard_queue::forward_queue!(inner: as_admin, as_inspect, started, rescue, counts, next_due,
        now, set_waker);

    fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        let mut out = Vec::new();
        for mut job in jobs {
            let unique = job.unique.take();
            let mut seen = self.unique.lock().unwrap();
            if let Some(u) = &unique {
                if let Some(&id) = seen.get(&u.key) {
                    out.push(match u.on_conflict {
                        OnConflict::Skip => Enqueued::Duplicate(id),
                        OnConflict::Replace => Enqueued::Replaced(id),
                    });
                    continue;
                }
            }
            job.limits = Default::default();
            let e = self.inner.insert(vec![job])?.remove(0);
            if let Some(u) = unique {
                seen.insert(u.key, e.id());
            }
            out.push(e);
        }
        Ok(out)
    }

    fn insert_async(&self, jobs: Vec<NewJob>) -> Submit<'_> {
        Box::pin(std::future::ready(self.insert(jobs)))
    }

    fn claim_tasks(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
        tasks: Option<&[TaskName]>,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.wait_if_held(Call::Claim);
        if self.paused.lock().unwrap().is_some() {
            return Ok(Vec::new());
        }
        let mut claimed = self.inner.claim_tasks(worker, max, lease, tasks)?;
        let at = self.now() - Duration::from_secs(3600);
        for c in &mut claimed {
            self.claimed
                .lock()
                .unwrap()
                .insert(c.lease(), c.task.clone());
            if self.rated == Some(&*c.task) {
                c.admitted_at = Some(at);
                self.admitted.lock().unwrap().push((c.id, at));
            }
        }
        Ok(claimed)
    }

    fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<HeartbeatReply, QueueError> {
        self.wait_if_held(Call::Heartbeat);
        self.heartbeats.lock().unwrap().push(leases.to_vec());
        if self.fail_heartbeats.load(Ordering::SeqCst) {
            self.failed_heartbeats.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError::new(
                QueueErrorKind::Unavailable,
                "the queue does not answer (on purpose)",
            ));
        }
        let mut reply = self.inner.heartbeat(worker, leases, lease)?;
        if let Some(task) = *self.paused.lock().unwrap() {
            let claimed = self.claimed.lock().unwrap();
            reply.paused = leases
                .iter()
                .filter(|l| claimed.get(l).is_some_and(|t| &**t == task))
                .copied()
                .collect();
        }
        Ok(reply)
    }

    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError> {
        self.completed
            .lock()
            .unwrap()
            .extend(done.iter().map(|c| c.lease));
        self.inner.complete(worker, done)
    }

    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError> {
        self.released.lock().unwrap().extend_from_slice(leases);
        self.inner.release(worker, leases)
    }
}

/// Keeps each event's name and job.
#[derive(Default)]
struct Names(Mutex<Vec<(&'static str, JobId)>>);

impl EventSink for Names {
    fn event(&self, e: &Event<'_>) {
        let name = match e {
            Event::Queued { .. } => "queued",
            Event::Running { .. } => "running",
            Event::Succeeded { .. } => "succeeded",
            _ => "other",
        };
        if let Some(job) = e.job() {
            self.0.lock().unwrap().push((name, job));
        }
    }
}

// ------------------------------------------------------------------ what jobs carry

#[test]
fn a_job_carries_its_tasks_limits_and_its_own_keys_and_unique_key() {
    let engine = Engine::new(registry(&Switches::default()), EngineConfig::default());
    let tenant: FlowKey = "tenant:42".parse().unwrap();
    let api: FlowKey = "stripe".parse().unwrap();
    let rate: Rate = "25/m".parse().unwrap();
    let spec = JobSpec::new("limited")
        .unique_key("sync:42")
        .unique_for(Duration::from_secs(60))
        .on_conflict(OnConflict::Replace)
        .concurrency_key(tenant.clone(), Some(2))
        .rate_key(api.clone(), Some(rate));
    let job = engine.prepare(&spec).unwrap();
    let unique = job.unique.expect("a unique key");
    assert_eq!(unique.key, "sync:42");
    assert_eq!(unique.within, Some(Duration::from_secs(60)));
    assert_eq!(unique.on_conflict, OnConflict::Replace);
    assert_eq!(job.limits.task_concurrency, Some(3));
    assert_eq!(job.limits.task_rate, Some("10/s".parse().unwrap()));
    assert_eq!(job.limits.concurrency_key, Some((tenant, Some(2))));
    assert_eq!(job.limits.rate_key, Some((api, Some(rate))));

    let plain = engine.prepare(&JobSpec::new("plain")).unwrap();
    assert!(plain.unique.is_none());
    assert!(plain.limits.is_empty(), "{:?}", plain.limits);
}

#[test]
fn a_jobs_flow_options_are_checked_when_it_is_prepared() {
    let engine = Engine::new(registry(&Switches::default()), EngineConfig::default());
    let e = engine
        .prepare(&JobSpec::new("plain").unique_for(Duration::from_secs(5)))
        .unwrap_err();
    assert!(e.to_string().contains("unique_for"), "{e}");
    assert!(e.to_string().contains("`plain`"), "{e}");
    let e = engine
        .prepare(&JobSpec::new("plain").unique_key(""))
        .unwrap_err();
    assert!(e.to_string().contains("unique_key"), "{e}");
    // An option of neither the settings nor flow control is checked too.
    let e = engine
        .prepare(&JobSpec::new("plain").idempotency_key(""))
        .unwrap_err();
    assert!(e.to_string().contains("idempotency_key"), "{e}");
}

/// Every option a job gives reaches the job the engine makes; those it
/// leaves out come from its task's defaults.
#[test]
fn a_prepared_job_carries_each_option_over_its_tasks_defaults() {
    let engine = Engine::new(registry(&Switches::default()), EngineConfig::default());
    let tenant: FlowKey = "tenant:1".parse().unwrap();
    let job = engine
        .prepare(
            &JobSpec::new("limited")
                .max_attempts(4)
                .priority(3)
                .idempotency_key("once")
                .unique_key("u")
                .concurrency_key(tenant.clone(), Some(2)),
        )
        .unwrap();
    assert_eq!((job.settings.max_attempts, job.settings.priority), (4, 3));
    assert_eq!(job.idempotency_key.as_deref(), Some("once"));
    assert_eq!(job.unique.map(|u| u.key), Some("u".to_string()));
    assert_eq!(job.limits.concurrency_key, Some((tenant, Some(2))));
    assert_eq!(job.limits.task_concurrency, Some(3), "the task's default");
    let plain = engine.prepare(&JobSpec::new("limited")).unwrap();
    assert!(
        Arc::ptr_eq(
            &plain.settings,
            &engine.prepare(&JobSpec::new("limited")).unwrap().settings
        ),
        "jobs with the task's settings share them"
    );
}

#[test]
fn a_runs_task_limits_beat_the_tasks_defaults() {
    let config = EngineConfig::builder()
        .task_limits("limited", Some(7), None)
        .task_limits("plain", None, Some("5/h".parse().unwrap()))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&Switches::default()), config);
    engine.check_task_limits().unwrap();
    let limited = engine.prepare(&JobSpec::new("limited")).unwrap().limits;
    assert_eq!(limited.task_concurrency, Some(7), "the run's");
    assert_eq!(
        limited.task_rate,
        Some("10/s".parse().unwrap()),
        "the task's"
    );
    let plain = engine.prepare(&JobSpec::new("plain")).unwrap().limits;
    assert_eq!(plain.task_concurrency, None);
    assert_eq!(plain.task_rate, Some("5/h".parse().unwrap()));
    let gate = engine.prepare(&JobSpec::new("gate")).unwrap().limits;
    assert!(gate.is_empty());
}

#[test]
fn task_limits_for_an_unknown_task_keep_every_run_from_starting() {
    let config = EngineConfig::builder()
        .task_limits("limitd", Some(2), None)
        .build()
        .unwrap();
    let engine = Engine::new(registry(&Switches::default()), config);
    let unknown = engine.check_task_limits().unwrap_err();
    assert_eq!(unknown.name, "limitd");
    assert_eq!(
        unknown.suggestions.first().map(String::as_str),
        Some("limited")
    );

    let queue = Arc::new(MemoryQueue::new());
    let e = engine
        .start(Arc::clone(&queue) as Arc<dyn Queue>)
        .unwrap_err();
    assert_eq!(e.unknown_task().map(|u| u.name.as_str()), Some("limitd"));
    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        chain.contains("limits") && chain.contains("did you mean `limited`"),
        "{chain}"
    );
    let e = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .start()
        .unwrap_err();
    assert!(e.unknown_task().is_some(), "{e}");
    let e = engine.run([JobSpec::new("plain")]).unwrap_err();
    assert!(matches!(e, runyard_engine::RunError::Start(_)), "{e}");
    assert_eq!(
        queue.counts().unwrap().unfinished(),
        0,
        "nothing was enqueued"
    );
}

#[test]
fn a_task_limit_of_no_attempts_is_refused_when_the_config_is_built() {
    let e = EngineConfig::builder()
        .task_limits("plain", Some(0), None)
        .build()
        .unwrap_err();
    assert!(matches!(&e, ConfigError::TaskConcurrency { task } if task == "plain"));
    assert!(e.to_string().contains("at least 1"), "{e}");
}

#[test]
fn a_duplicate_or_replaced_submit_gives_the_existing_id_and_no_queued_event() {
    let s = Switches::default();
    s.open.store(true, Ordering::SeqCst);
    let engine = Engine::new(registry(&s), EngineConfig::default());
    let queue = Arc::new(Shim::new(false));
    let names = Arc::new(Names::default());
    let run = engine
        .start_with_sinks(
            Arc::clone(&queue) as Arc<dyn Queue>,
            vec![Arc::clone(&names) as Arc<dyn EventSink>],
        )
        .unwrap();
    let first = run.submit(&JobSpec::new("plain").unique_key("k")).unwrap();
    let again = run.submit(&JobSpec::new("plain").unique_key("k")).unwrap();
    let replaced = run
        .submit(
            &JobSpec::new("plain")
                .unique_key("k")
                .on_conflict(OnConflict::Replace),
        )
        .unwrap();
    let other = run.submit(&JobSpec::new("plain").unique_key("j")).unwrap();
    assert_eq!((again, replaced), (first, first));
    assert_ne!(other, first);
    let batch = vec![
        engine
            .prepare(&JobSpec::new("plain").unique_key("k"))
            .unwrap(),
        engine.prepare(&JobSpec::new("plain")).unwrap(),
    ];
    let out = run.submit_prepared(batch).unwrap();
    assert_eq!(out[0], Enqueued::Duplicate(first));
    assert!(matches!(out[1], Enqueued::New(_)));
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 3);
    let queued: Vec<JobId> = names
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n == "queued")
        .map(|(_, j)| *j)
        .collect();
    assert_eq!(queued, [first, other, out[1].id()], "one per job made");
}

// ------------------------------------------------------------------ the dispatcher

/// A run of `engine` on `shim`, and the shim to look at.
fn start_on(engine: &Engine, shim: Shim) -> (Arc<Shim>, Run) {
    let queue = Arc::new(shim);
    let run = engine.start(Arc::clone(&queue) as Arc<dyn Queue>).unwrap();
    (queue, run)
}

fn thread_engine(s: &Switches, lease: Duration) -> Engine {
    let config = EngineConfig::builder()
        .mode(Mode::Thread)
        .concurrency(1)
        .lease(lease)
        .grace(Duration::from_millis(100))
        .build()
        .unwrap();
    Engine::new(registry(s), config)
}

#[test]
fn a_rate_limited_attempt_starts_when_its_claim_was_admitted() {
    let s = Switches::default();
    let engine = thread_engine(&s, Duration::from_secs(30));
    let (queue, run) = start_on(&engine, Shim::new(false).rating("plain"));
    let id = run.submit(&JobSpec::new("plain")).unwrap();
    run.close();
    let report = run.wait().unwrap();
    let admitted = queue.admitted.lock().unwrap().clone();
    assert_eq!(admitted.len(), 1, "{admitted:?}");
    let job = report.jobs.iter().find(|j| j.id == id).unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts.len(), 1);
    assert_eq!(job.attempts[0].started_at, admitted[0].1);
    assert!(queue.released.lock().unwrap().is_empty());
}

#[test]
fn a_rate_limited_claim_that_cannot_start_at_once_is_given_back() {
    let s = Switches::default();
    let engine = thread_engine(&s, Duration::from_secs(30));
    let (queue, run) = start_on(&engine, Shim::new(false).rating("plain"));
    // The one thread runs the gate; the rated job cannot start beside it.
    let gate = run.submit(&JobSpec::new("gate")).unwrap();
    wait_for("the gate runs", || s.started.load(Ordering::SeqCst) == 1);
    let rated = run.submit(&JobSpec::new("plain")).unwrap();
    wait_for("the rated job is given back", || {
        queue.released_jobs().contains(&rated)
    });
    assert!(
        !queue.released_jobs().contains(&gate),
        "the running gate is kept"
    );
    s.open.store(true, Ordering::SeqCst);
    run.close();
    let report = run.wait().unwrap();
    let job = report.jobs.iter().find(|j| j.id == rated).unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts.len(), 1, "a claim given back is no attempt");
    let admitted = queue.admitted.lock().unwrap().clone();
    let last = admitted.iter().rev().find(|(j, _)| *j == rated).unwrap();
    assert!(admitted.iter().filter(|(j, _)| *j == rated).count() >= 2);
    assert_eq!(job.attempts[0].started_at, last.1);
}

#[test]
fn claims_of_a_paused_task_go_back_unless_they_started() {
    let s = Switches::default();
    // Heartbeats every 100 ms.
    let engine = thread_engine(&s, Duration::from_millis(300));
    let (queue, run) = start_on(&engine, Shim::new(false));
    let running = run.submit(&JobSpec::new("gate")).unwrap();
    wait_for("the first gate runs", || {
        s.started.load(Ordering::SeqCst) == 1
    });
    // Claimed and handed to the busy thread's pool, not started.
    let waiting = run.submit(&JobSpec::new("gate")).unwrap();
    wait_for("the second gate is claimed", || {
        queue
            .claimed
            .lock()
            .unwrap()
            .keys()
            .any(|l| l.job == waiting)
    });
    *queue.paused.lock().unwrap() = Some("gate");
    wait_for("the unstarted claim goes back", || {
        queue.released_jobs().contains(&waiting)
    });
    assert!(!queue.released_jobs().contains(&running));
    assert_eq!(s.started.load(Ordering::SeqCst), 1);
    assert_eq!(
        s.cancelled.load(Ordering::SeqCst),
        0,
        "the running one goes on"
    );
    *queue.paused.lock().unwrap() = None;
    s.open.store(true, Ordering::SeqCst);
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 2);
    for j in &report.jobs {
        assert_eq!(j.attempts.len(), 1, "{:?}", j.id);
    }
}

/// An in-process queue's leases never expire: its heartbeats are for
/// pauses, which send back only claims that have not started, so they do
/// not name the running attempts (a hundred thousand of them, each time).
#[test]
fn an_in_process_queues_heartbeats_name_only_claims_that_have_not_started() {
    let s = Switches::default();
    // Heartbeats every 100 ms.
    let config = EngineConfig::builder()
        .mode(Mode::Async)
        .concurrency(4)
        .lease(Duration::from_millis(300))
        .grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&s), config);
    let (queue, run) = start_on(&engine, Shim::new(false));
    for _ in 0..3 {
        run.submit(&JobSpec::new("async_gate")).unwrap();
    }
    wait_for("the gates run", || s.started.load(Ordering::SeqCst) == 3);
    let seen = queue.heartbeats.lock().unwrap().len();
    wait_for("two heartbeats while they run", || {
        queue.heartbeats.lock().unwrap().len() >= seen + 2
    });
    let last = queue.heartbeats.lock().unwrap().last().cloned().unwrap();
    assert!(last.is_empty(), "running attempts were named: {last:?}");
    s.open.store(true, Ordering::SeqCst);
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 3);
}

#[test]
fn attempts_whose_leases_cannot_be_renewed_are_stopped_before_they_expire() {
    let s = Switches::default();
    // Heartbeats every 400 ms; a lease not renewed for 1 s is given up.
    let engine = thread_engine(&s, Duration::from_millis(1200));
    let queue = Arc::new(Shim::new(true));
    let run = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .start()
        .unwrap();
    let id = queue
        .enqueue_one(engine.prepare(&JobSpec::new("gate")).unwrap())
        .unwrap()
        .id();
    wait_for("the gate runs", || s.started.load(Ordering::SeqCst) == 1);
    queue.fail_heartbeats.store(true, Ordering::SeqCst);
    wait_for("a heartbeat fails", || {
        queue.failed_heartbeats.load(Ordering::SeqCst) > 0
    });
    assert_eq!(
        s.cancelled.load(Ordering::SeqCst),
        0,
        "not before they fail"
    );
    wait_for("the attempt is stopped", || {
        s.cancelled.load(Ordering::SeqCst) == 1
    });
    let first = queue
        .claimed
        .lock()
        .unwrap()
        .keys()
        .find(|l| l.job == id)
        .copied()
        .unwrap();
    // The queue answers again: the job's expired lease is rescued and the
    // job runs again; the stopped attempt's outcome was never recorded.
    queue.fail_heartbeats.store(false, Ordering::SeqCst);
    s.open.store(true, Ordering::SeqCst);
    wait_for("the job succeeds", || {
        queue
            .inner
            .inspect()
            .unwrap()
            .get(id)
            .unwrap()
            .unwrap()
            .state
            == JobState::Succeeded
    });
    assert!(!queue.completed.lock().unwrap().contains(&first));
    let view = queue.inner.inspect().unwrap().get(id).unwrap().unwrap();
    let kinds: Vec<OutcomeKind> = view.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(kinds.last(), Some(&OutcomeKind::Succeeded), "{kinds:?}");
    assert!(!kinds.contains(&OutcomeKind::Cancelled), "{kinds:?}");
    run.interrupt();
    run.wait().unwrap();
}

/// Counts the leases a worker says it lost.
#[derive(Default)]
struct Lost(AtomicUsize);

impl Meter for Lost {
    fn lost(&self, leases: usize) {
        self.0.fetch_add(leases, Ordering::SeqCst);
    }
}

/// Lets the shim's heartbeats go when dropped.
struct Unhold<'a>(&'a Shim);

impl Drop for Unhold<'_> {
    fn drop(&mut self) {
        self.0.hold(None);
    }
}

/// A queue call (`held`) that neither answers nor fails holds the
/// dispatcher's thread: the attempt of `task` (run in `mode`, on one
/// thread) is stopped all the same before its lease expires, while the
/// call still waits; its outcome is never recorded, its loss counted once,
/// and its slot freed: the job, rescued, runs again there, and so does
/// another.
fn stopped_before_expiry_while_a_call_waits(mode: Mode, task: &str, held: Call) {
    let s = Switches::default();
    // Heartbeats every 400 ms; a lease not renewed for 1 s is given up.
    let config = EngineConfig::builder()
        .mode(mode)
        .concurrency(1)
        .lease(Duration::from_millis(1200))
        .grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&s), config);
    let queue = Arc::new(Shim::new(true));
    let lost = Arc::new(Lost::default());
    let run = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .meter(Arc::clone(&lost) as Arc<dyn Meter>)
        .start()
        .unwrap();
    // A failed test lets heartbeats go, so that its run can end.
    let _unhold = Unhold(&queue);
    let job = || engine.prepare(&JobSpec::new(task)).unwrap();
    let id = queue.enqueue_one(job()).unwrap().id();
    wait_for("the gate runs", || s.started.load(Ordering::SeqCst) == 1);
    queue.hold(Some(held));
    wait_for("a call waits", || {
        queue.held_calls.load(Ordering::SeqCst) == 1
    });
    wait_for("the attempt is stopped", || {
        s.cancelled.load(Ordering::SeqCst) == 1
    });
    assert_eq!(
        queue.held_calls.load(Ordering::SeqCst),
        1,
        "stopped while the call waits"
    );
    assert_eq!(s.running.load(Ordering::SeqCst), 0);
    let first = queue
        .claimed
        .lock()
        .unwrap()
        .keys()
        .find(|l| l.job == id)
        .copied()
        .unwrap();
    // The call returns: the job's lease expires and is rescued, and the
    // job runs again on the one thread, whose slot was given back.
    queue.hold(None);
    s.open.store(true, Ordering::SeqCst);
    let state = |id| {
        let view = queue.inner.inspect().unwrap().get(id).unwrap().unwrap();
        view.state
    };
    wait_for("the job succeeds", || state(id) == JobState::Succeeded);
    let other = queue.enqueue_one(job()).unwrap().id();
    wait_for("another job succeeds", || {
        state(other) == JobState::Succeeded
    });
    assert!(!queue.completed.lock().unwrap().contains(&first));
    let view = queue.inner.inspect().unwrap().get(id).unwrap().unwrap();
    let kinds: Vec<OutcomeKind> = view.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(kinds.last(), Some(&OutcomeKind::Succeeded), "{kinds:?}");
    assert!(!kinds.contains(&OutcomeKind::Cancelled), "{kinds:?}");
    assert_eq!(lost.0.load(Ordering::SeqCst), 1, "given up once");
    run.interrupt();
    run.wait().unwrap();
}

#[test]
fn a_thread_attempt_is_stopped_before_its_lease_expires_while_a_heartbeat_waits() {
    stopped_before_expiry_while_a_call_waits(Mode::Thread, "gate", Call::Heartbeat);
}

#[test]
fn an_async_attempt_is_stopped_before_its_lease_expires_while_a_heartbeat_waits() {
    stopped_before_expiry_while_a_call_waits(Mode::Async, "async_gate", Call::Heartbeat);
}

#[test]
fn an_attempt_is_stopped_before_its_lease_expires_while_a_claim_waits() {
    stopped_before_expiry_while_a_call_waits(Mode::Thread, "gate", Call::Claim);
}

// ------------------------------------------------------------------ on the memory queue

#[test]
fn a_rate_on_the_memory_queue_admits_starts_by_its_clock() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_000_000_000_000_000,
    )));
    let t0 = clock.now();
    let queue = Arc::new(MemoryQueue::with_clock(Arc::clone(&clock) as Arc<dyn Clock>));
    let config = EngineConfig::builder()
        .task_limits("plain", None, Some("3/m".parse().unwrap()))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&Switches::default()), config);
    let run = engine.start(Arc::clone(&queue) as Arc<dyn Queue>).unwrap();
    for _ in 0..5 {
        run.submit(&JobSpec::new("plain")).unwrap();
    }
    let flow = || queue.as_flow().expect("the memory queue keeps limits");
    wait_for("three start and two are held by the rate", || {
        let held = flow().holds().unwrap().held;
        queue.counts().unwrap().succeeded == 3
            && held
                .iter()
                .any(|(h, n)| matches!(h, Hold::Rate { .. }) && *n == 2)
    });
    clock.advance(Duration::from_secs(61));
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 5);
    let mut starts: Vec<Timestamp> = report
        .jobs
        .iter()
        .map(|j| j.attempts[0].started_at)
        .collect();
    starts.sort();
    // Each record starts when the queue admitted it, on the queue's clock.
    assert_eq!(&starts[..3], &[t0; 3]);
    assert_eq!(&starts[3..], &[t0 + Duration::from_secs(61); 2]);
}

#[test]
fn a_task_limit_holds_across_two_workers_on_one_queue() {
    let s = Switches::default();
    let config = EngineConfig::builder()
        .task_limits("gate", Some(1), None)
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&s), config);
    let queue = Arc::new(MemoryQueue::new());
    let a = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .name("a")
        .start()
        .unwrap();
    let b = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .name("b")
        .start()
        .unwrap();
    let jobs: Vec<NewJob> = (0..3)
        .map(|_| engine.prepare(&JobSpec::new("gate")).unwrap())
        .collect();
    let ids: Vec<JobId> = queue
        .enqueue(jobs)
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let flow = || queue.as_flow().unwrap();
    wait_for("one runs and two are held by the task's limit", || {
        let held = flow().holds().unwrap().held;
        s.started.load(Ordering::SeqCst) == 1
            && held
                .iter()
                .any(|(h, n)| matches!(h, Hold::Concurrency { .. }) && *n == 2)
    });
    s.open.store(true, Ordering::SeqCst);
    wait_for("all three succeed", || {
        queue.counts().unwrap().succeeded == 3
    });
    assert_eq!(s.most.load(Ordering::SeqCst), 1, "never two at once");
    for id in ids {
        let v = queue.inspect().unwrap().get(id).unwrap().unwrap();
        assert_eq!(v.attempts.len(), 1);
    }
    a.interrupt();
    b.interrupt();
    a.wait().unwrap();
    b.wait().unwrap();
}

/// An engine of 2 CPU threads in `mode`, and a memory queue holding `n`
/// `gate` jobs, each of a key of its own with a limit of 1 (so each
/// claimed one holds a slot).
fn keyed_gates(mode: Mode, n: usize) -> (Switches, Engine, Arc<MemoryQueue>) {
    let s = Switches::default();
    let config = EngineConfig::builder()
        .mode(mode)
        .cpu_threads(2)
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&s), config);
    let queue = Arc::new(MemoryQueue::new());
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            let key = FlowKey::new("tenant", &i.to_string()).unwrap();
            let spec = JobSpec::new("gate").concurrency_key(key, Some(1));
            engine.prepare(&spec).unwrap()
        })
        .collect();
    queue.enqueue(jobs).unwrap();
    (s, engine, queue)
}

#[test]
fn a_worker_claims_jobs_that_take_slots_for_its_threads_not_by_the_thousand() {
    // 400 jobs, each of its own key with a limit of 1: no limit is ever
    // full, yet each claimed job holds its key's slot. Worker `a` (2
    // threads) must leave most of them for worker `b`, started after it.
    let (s, engine, queue) = keyed_gates(Mode::Thread, 400);
    let a = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .name("a")
        .start()
        .unwrap();
    wait_for("a runs two", || s.started.load(Ordering::SeqCst) == 2);
    let b = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .name("b")
        .start()
        .unwrap();
    wait_for("b runs two as well", || {
        s.started.load(Ordering::SeqCst) == 4
    });
    s.open.store(true, Ordering::SeqCst);
    wait_for("all succeed", || queue.counts().unwrap().succeeded == 400);
    a.interrupt();
    b.interrupt();
    a.wait().unwrap();
    b.wait().unwrap();
}

#[test]
fn jobs_of_other_lanes_are_claimed_while_the_lane_of_jobs_that_take_slots_is_full() {
    let (s, engine, queue) = keyed_gates(Mode::Auto, 100);
    let w = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .start()
        .unwrap();
    wait_for("two gates run", || s.started.load(Ordering::SeqCst) == 2);
    let quick: Vec<NewJob> = (0..5)
        .map(|_| engine.prepare(&JobSpec::new("quick")).unwrap())
        .collect();
    let ids: Vec<JobId> = (queue.enqueue(quick).unwrap().iter())
        .map(|e| e.id())
        .collect();
    wait_for(
        "the quick jobs succeed while the gates hold the CPU lane",
        || {
            ids.iter().all(|id| {
                let v = queue.inspect().unwrap().get(*id).unwrap().unwrap();
                v.state == JobState::Succeeded
            })
        },
    );
    let claimed = 100 - queue.counts().unwrap().queued;
    assert!(
        claimed <= 4,
        "the gates claimed stay few: {claimed} of 100 taken"
    );
    s.open.store(true, Ordering::SeqCst);
    wait_for("all succeed", || queue.counts().unwrap().succeeded == 105);
    w.interrupt();
    w.wait().unwrap();
}

#[test]
fn pausing_a_task_on_the_memory_queue_gives_its_unstarted_claims_back() {
    let s = Switches::default();
    // A long lease: an in-process queue is heartbeaten every second all
    // the same, for its pauses.
    let engine = thread_engine(&s, Duration::from_secs(600));
    let queue = Arc::new(MemoryQueue::new());
    let run = engine.start(Arc::clone(&queue) as Arc<dyn Queue>).unwrap();
    let running = run.submit(&JobSpec::new("gate")).unwrap();
    wait_for("the first gate runs", || {
        s.started.load(Ordering::SeqCst) == 1
    });
    let waiting = run.submit(&JobSpec::new("gate")).unwrap();
    let flow = queue.as_flow().unwrap();
    let gate = TaskName::from("gate");
    let state = |id| queue.inspect().unwrap().get(id).unwrap().unwrap().state;
    // Paused once the second gate is claimed (and not started: the one
    // thread runs the first): `pause` names the claims it holds back.
    wait_for("the second gate is claimed when the task is paused", || {
        if flow.pause(Some(&gate)).unwrap().contains(&waiting) {
            return true;
        }
        flow.resume(Some(&gate)).unwrap();
        false
    });
    // An in-process queue is not told of starts: it lists the running
    // attempt as unstarted too, and the worker, which knows, keeps it.
    wait_for("the worker gives it back", || {
        !flow.unstarted().unwrap().contains(&waiting)
    });
    assert_eq!(state(waiting), JobState::Queued);
    assert!(flow.unstarted().unwrap().contains(&running));
    assert_eq!(s.started.load(Ordering::SeqCst), 1);
    assert!(flow.resume(Some(&gate)).unwrap());
    s.open.store(true, Ordering::SeqCst);
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 2);
    assert!(report.jobs.iter().all(|j| j.attempts.len() == 1));
}

#[test]
fn a_unique_key_on_the_memory_queue_makes_one_job_whether_it_skips_or_replaces() {
    let s = Switches::default();
    s.open.store(true, Ordering::SeqCst);
    let engine = Engine::new(registry(&s), EngineConfig::default());
    let queue = Arc::new(MemoryQueue::new());
    // Held back, so that the first job still waits when the others come.
    let flow = queue.as_flow().unwrap();
    let plain = TaskName::from("plain");
    flow.pause(Some(&plain)).unwrap();
    let names = Arc::new(Names::default());
    let run = engine
        .start_with_sinks(
            Arc::clone(&queue) as Arc<dyn Queue>,
            vec![Arc::clone(&names) as Arc<dyn EventSink>],
        )
        .unwrap();
    let job = || JobSpec::new("plain").unique_key("nightly");
    let first = run.submit(&job()).unwrap();
    assert_eq!(run.submit(&job()).unwrap(), first);
    let replaced = run.submit(&job().on_conflict(OnConflict::Replace)).unwrap();
    assert_eq!(replaced, first);
    flow.resume(Some(&plain)).unwrap();
    run.close();
    let report = run.wait().unwrap();
    assert_eq!(report.summary.succeeded, 1, "one job in all");
    let queued = names
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n == "queued")
        .count();
    assert_eq!(queued, 1, "the duplicates were never queued");
}

/// A memory queue that records what workers publish, or refuses it.
#[derive(Debug, Default)]
struct Publishing {
    inner: MemoryQueue,
    refuse: bool,
    published: Mutex<Vec<(String, Vec<PublishedTask>)>>,
}

impl Queue for Publishing {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    runyard_queue::forward_queue!(inner: as_admin, as_inspect, as_flow, insert, insert_async,
        claim_tasks, started, heartbeat, complete, release, rescue, counts, next_due, now,
        set_waker);

    fn publish_tasks(&self, worker: &str, tasks: &[PublishedTask]) -> Result<(), QueueError> {
        if self.refuse {
            return Err(QueueError::new(
                QueueErrorKind::ReadOnly,
                "permission denied for table tasks",
            ));
        }
        self.published
            .lock()
            .unwrap()
            .push((worker.to_string(), tasks.to_vec()));
        Ok(())
    }
}

#[test]
fn a_worker_publishes_the_tasks_it_claims_with_what_their_jobs_get() {
    let config = EngineConfig::builder()
        .mode(Mode::Thread)
        .task_limits("plain", None, Some("5/h".parse().unwrap()))
        .tasks([TaskName::from("limited"), TaskName::from("plain")])
        .build()
        .unwrap();
    let engine = Engine::new(registry(&Switches::default()), config);
    let queue = Arc::new(Publishing::default());
    let run = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .name("w1")
        .start()
        .unwrap();
    let published = queue.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1, "once, at start");
    let (worker, tasks) = &published[0];
    assert_eq!(worker, "w1");
    let names: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(
        names,
        ["limited", "plain"],
        "the tasks it claims, and no other"
    );
    for t in tasks {
        let job = engine.prepare(&JobSpec::new(t.task.as_str())).unwrap();
        assert_eq!(t.settings, job.settings, "{}", t.task);
        assert_eq!(t.concurrency, job.limits.task_concurrency, "{}", t.task);
        assert_eq!(t.rate, job.limits.task_rate, "{}", t.task);
    }
    assert_eq!(
        tasks[1].rate,
        Some("5/h".parse().unwrap()),
        "the run's limit"
    );
    run.interrupt();
    run.join().unwrap();

    // A queue that cannot record them: the worker does not start.
    let queue = Arc::new(Publishing {
        refuse: true,
        ..Publishing::default()
    });
    let e = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .start()
        .unwrap_err();
    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        chain.contains("could not publish its tasks") && chain.contains("permission denied"),
        "{chain}"
    );
}

/// Three workers of 4 CPU threads each on `queue`, holding 12 `gate` jobs
/// of one key whose jobs carry a limit of 2: two run and the others are
/// held by the key's limit, and at no moment, from the first claim to the
/// last attempt, do more than two run.
fn a_carried_key_limit_holds_three_workers_to_it(queue: Arc<dyn Queue>) {
    let s = Switches::default();
    let config = EngineConfig::builder()
        .mode(Mode::Thread)
        .cpu_threads(4)
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&s), config);
    let key = FlowKey::new("tenant", "42").unwrap();
    let jobs: Vec<NewJob> = (0..12)
        .map(|_| {
            let spec = JobSpec::new("gate").concurrency_key(key.clone(), Some(2));
            engine.prepare(&spec).unwrap()
        })
        .collect();
    queue.enqueue(jobs).unwrap();
    let workers: Vec<Run> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            engine
                .worker(Arc::clone(&queue))
                .name(*name)
                .start()
                .unwrap()
        })
        .collect();
    let flow = queue.as_flow().unwrap();
    wait_for("two run and ten are held by the key's limit", || {
        let most = s.most.load(Ordering::SeqCst);
        assert!(most <= 2, "{most} ran at once, over the key's limit of 2");
        let held = flow.holds().unwrap().held;
        s.started.load(Ordering::SeqCst) == 2
            && held
                .iter()
                .any(|(h, n)| matches!(h, Hold::Concurrency { .. }) && *n == 10)
    });
    assert_eq!(s.most.load(Ordering::SeqCst), 2, "two at once so far");
    s.open.store(true, Ordering::SeqCst);
    wait_for("all twelve succeed", || {
        queue.counts().unwrap().succeeded == 12
    });
    assert_eq!(
        s.most.load(Ordering::SeqCst),
        2,
        "never more than two at once"
    );
    for w in &workers {
        w.interrupt();
    }
    for w in workers {
        w.wait().unwrap();
    }
}

#[test]
fn a_carried_key_limit_holds_three_workers_to_it_on_the_memory_queue() {
    a_carried_key_limit_holds_three_workers_to_it(Arc::new(MemoryQueue::new()));
}

#[test]
fn a_carried_key_limit_holds_three_workers_to_it_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = runyard_sqlite::SqliteQueue::open(&path, runyard_sqlite::OpenMode::CreateOrOpen);
    a_carried_key_limit_holds_three_workers_to_it(Arc::new(q.unwrap()));
}

/// A memory queue that notes how many jobs each claim asked for.
#[derive(Debug, Default)]
struct Asking {
    inner: MemoryQueue,
    asked: Mutex<Vec<usize>>,
}

impl Queue for Asking {
    runyard_queue::forward_queue!(inner: capabilities, as_admin, as_inspect, as_flow, insert,
        insert_async, started, heartbeat, complete, release, rescue, counts, next_due, now,
        set_waker);

    fn claim_tasks(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
        tasks: Option<&[TaskName]>,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.asked.lock().unwrap().push(max);
        self.inner.claim_tasks(worker, max, lease, tasks)
    }
}

#[test]
fn claims_are_prefetched_again_once_a_tasks_jobs_stop_taking_slots() {
    // Only `plain`, which has no limits of its own (`limited`'s defaults
    // would hold the claims small for good).
    let config = EngineConfig::builder()
        .mode(Mode::Thread)
        .concurrency(2)
        .tasks([TaskName::from("plain")])
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let engine = Engine::new(registry(&Switches::default()), config);
    let queue = Arc::new(Asking::default());
    let plain = |n: usize| -> Vec<NewJob> {
        (0..n)
            .map(|_| engine.prepare(&JobSpec::new("plain")).unwrap())
            .collect()
    };
    // Jobs of `plain` that take slots (each of a key of its own, limited
    // to 1): the worker learns that the task's jobs take slots.
    let keyed: Vec<NewJob> = (0..8)
        .map(|i| {
            let key = FlowKey::new("tenant", &i.to_string()).unwrap();
            let spec = JobSpec::new("plain").concurrency_key(key, Some(1));
            engine.prepare(&spec).unwrap()
        })
        .collect();
    queue.enqueue(keyed).unwrap();
    let run = engine
        .worker(Arc::clone(&queue) as Arc<dyn Queue>)
        .start()
        .unwrap();
    wait_for("the keyed jobs succeed", || {
        queue.counts().unwrap().succeeded == 8
    });
    // Then more jobs of `plain` that take none than the worker waits for
    // before it drops the mark, and, once they are done, as many again.
    queue.enqueue(plain(300)).unwrap();
    wait_for("the first plain jobs succeed", || {
        queue.counts().unwrap().succeeded == 308
    });
    let before = queue.asked.lock().unwrap().len();
    queue.enqueue(plain(300)).unwrap();
    wait_for("the others succeed", || {
        queue.counts().unwrap().succeeded == 608
    });
    run.interrupt();
    run.wait().unwrap();
    // While the task is marked, a claim asks for at most what two threads
    // hold of jobs that take slots (2 × 128); an idle worker that
    // prefetches asks for its lanes' room (2 × 256 in the CPU lane alone).
    let asked = queue.asked.lock().unwrap();
    let most = asked[before..].iter().copied().max().unwrap_or(0);
    assert!(
        most > 256,
        "claims stayed as small as for jobs that take slots, though the last 300 took none \
         (at most {most} asked for, in {} claims)",
        asked.len() - before
    );
}
