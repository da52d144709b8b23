//! The dispatcher: one thread that owns a run's state.
//!
//! Each turn it takes what arrived in its [`Inbox`] (finished attempts,
//! starts, interrupts), records finished attempts in the queue after
//! applying the retry policy, hands claimed jobs to executors as capacity
//! allows, and sleeps until something arrives or a timer is due. Because
//! one thread owns the running table, the retry decision and the queue
//! writes, an attempt's end is applied exactly once; executors only run
//! attempts and report.
//!
//! An executor is started when its lane first gets an attempt. One that
//! cannot start (no thread, pipe or process to be had) costs no attempt:
//! the attempts handed to it go back to the front of the lane's waiting
//! list, still claimed and unstarted, the lane is tried again after
//! `EXEC_RETRY`, and meanwhile nothing more is claimed. An interrupt gives
//! the waiting claims back as usual.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_core::{
    AttemptError, AttemptRecord, Event, GiveUpReason, JobId, JobSettings, Outcome, OutcomeKind,
    QueuedReason, RetryDecision, TaskIndex, Timestamp,
};
use runyard_exec::process::ProcessPool;
use runyard_exec::{AsyncExecutor, Attempt, Executor, PoolConfig, ThreadPool};
use runyard_queue::{Claimed, Completion, Lease, Queue, QueueError, Rescue, TaskName, Verdict};

use crate::config::cores;
use crate::engine::{EngineInner, RunOutcome, Tally};
use crate::events::Events;
use crate::inbox::{Inbox, InboxSink, Mail, Written};
use crate::lane::{lane_for, Lane};
use crate::slab::Slab;

/// A claimed job the dispatcher is responsible for.
struct Entry {
    id: JobId,
    attempt: u32,
    task: TaskIndex,
    lane: Lane,
    settings: JobSettings,
    ready_at: Timestamp,
    /// Held until the attempt is handed to an executor.
    params: Option<runyard_core::JobParams>,
    started_at: Option<Timestamp>,
    cancel_requested: bool,
}

impl Entry {
    fn lease(&self) -> Lease {
        Lease {
            job: self.id,
            attempt: self.attempt,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Running,
    /// Interrupted: no new claims; running attempts may finish until the deadline.
    Draining {
        deadline: Instant,
    },
    /// Running attempts were told to stop; their reports are awaited until the deadline.
    Cancelling {
        deadline: Instant,
    },
}

/// How long a cancelled attempt's report is awaited before the dispatcher
/// records it as cancelled itself (an async task that blocks its thread
/// never reports).
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// Attempts handed to the CPU pool per thread: enough that a thread always
/// has a chunk waiting while the dispatcher records the last one.
const CPU_PREFETCH: usize = 256;
/// Attempts handed to the worker processes per worker: room for a batch
/// in flight and the next one waiting.
const PROCESS_PREFETCH: usize = 256;
/// The most jobs claimed in one call.
const MAX_CLAIM: usize = 4096;
/// How long a long-running worker waits before it tries an unreachable
/// queue again (each try itself may reconnect for a while).
const QUEUE_RETRY: Duration = Duration::from_secs(1);
/// How often a durable queue is polled for jobs another process enqueued.
const POLL: Duration = Duration::from_millis(500);
/// How long a lane whose executor could not start waits before it is tried again.
const EXEC_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Dispatcher {
    engine: Arc<EngineInner>,
    queue: Arc<dyn Queue>,
    inbox: Arc<Inbox>,
    events: Events,
    tally: Arc<Tally>,
    execs: [Option<Arc<dyn Executor>>; 4],
    runtime: Option<tokio::runtime::Runtime>,
    inflight: [usize; 4],
    cap: [usize; 4],
    /// A lane is refilled once its attempts in flight drop to this (the CPU
    /// pool is refilled in bursts, so threads take whole chunks).
    low_water: [usize; 4],
    /// Attempts each lane runs at once: pool threads, async permits, workers.
    threads: [usize; 4],
    global_cap: usize,
    global_inflight: usize,
    running: Slab<Entry>,
    task_running: Vec<u32>,
    /// Claimed jobs waiting for room in their lane, per lane.
    deferred: [VecDeque<u64>; 4],
    /// Claimed jobs waiting for their task's concurrency limit, per task.
    blocked: rustc_hash::FxHashMap<u32, VecDeque<u64>>,
    /// Jobs in `deferred` and `blocked`.
    waiting: usize,
    pending: Vec<Completion>,
    /// The task of each record in `pending`.
    pending_tasks: Vec<TaskName>,
    /// Writes records on a thread of its own, for a queue that can take
    /// them while the dispatcher claims (one batch in flight at a time).
    writer: Option<Writer>,
    /// A batch is with the writer.
    writing: bool,
    /// Queue operations pause until then: the queue could not be reached.
    queue_down_until: Option<Instant>,
    phase: Phase,
    interrupted: bool,
    rng: fastrand::Rng,
    durable: bool,
    last_heartbeat: Instant,
    last_rescue: Instant,
    last_task: Option<(TaskName, TaskIndex)>,
    queue_idle: bool,
    /// Lanes whose executor could not start: not tried again before then.
    exec_down: [Option<Instant>; 4],
    /// Whether event sinks are present (and so might interrupt the run).
    events_may_interrupt: bool,
}

impl Dispatcher {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        queue: Arc<dyn Queue>,
        inbox: Arc<Inbox>,
        events: Events,
        tally: Arc<Tally>,
    ) -> Dispatcher {
        let cfg = &engine.config;
        let sizes = cfg.sizes();
        let (cpu_threads, blocking_threads, async_limit, process_workers) = (
            sizes.cpu_threads,
            sizes.blocking_threads,
            sizes.async_limit,
            sizes.process_workers,
        );
        let global_cap = usize::MAX;
        // What may be handed to each executor beyond what it runs: enough
        // that a thread finds its next attempt waiting when one ends.
        let cap = if cfg.prefetch {
            [
                cpu_threads * CPU_PREFETCH,
                blocking_threads * 2,
                async_limit,
                process_workers * PROCESS_PREFETCH,
            ]
        } else {
            [cpu_threads, blocking_threads, async_limit, process_workers]
        };
        let low_water = [cap[0] / 2, cap[1], cap[2], cap[3] / 2];
        let threads = [cpu_threads, blocking_threads, async_limit, process_workers];
        let durable = queue.is_durable();
        let tasks = engine.registry.len();
        let events_may_interrupt = !events.is_empty();
        Dispatcher {
            engine,
            queue,
            inbox,
            events,
            tally,
            execs: [None, None, None, None],
            runtime: None,
            inflight: [0; 4],
            cap,
            low_water,
            threads,
            global_cap,
            global_inflight: 0,
            running: Slab::new(),
            task_running: vec![0; tasks],
            deferred: Default::default(),
            blocked: Default::default(),
            waiting: 0,
            pending: Vec::new(),
            pending_tasks: Vec::new(),
            writer: None,
            writing: false,
            queue_down_until: None,
            phase: Phase::Running,
            interrupted: false,
            rng: fastrand::Rng::new(),
            durable,
            last_heartbeat: Instant::now(),
            last_rescue: Instant::now(),
            last_task: None,
            queue_idle: false,
            exec_down: [None; 4],
            events_may_interrupt,
        }
    }

    fn worker(&self) -> &str {
        &self.engine.config.worker_name
    }

    pub(crate) fn run(mut self) -> RunOutcome {
        let start = Instant::now();
        let mut mail = Mail::default();
        let mut seen_interrupts = 0;
        let mut spinner = runyard_exec::Spinner::default();
        let error = loop {
            let work = self.inbox.take(&mut mail);
            if work {
                self.queue_idle = false;
            }
            let started = std::mem::take(&mut mail.started);
            let finished = std::mem::take(&mut mail.finished);
            self.on_started(started, &finished);
            self.on_finished(finished);
            if let Some(w) = mail.written.take() {
                if let Err(e) = self.on_written(w).or_else(|e| self.ride_out(e)) {
                    break Some(e);
                }
            }
            if let Err(e) = self.flush_completions().or_else(|e| self.ride_out(e)) {
                break Some(e);
            }
            // Writing records emits events, and a sink may interrupt (a
            // halt on the first dead job): look again before claiming.
            if self.events_may_interrupt {
                mail.interrupts = mail.interrupts.max(self.inbox.interrupts());
            }
            while seen_interrupts < mail.interrupts {
                seen_interrupts += 1;
                self.on_interrupt();
            }
            if let Err(e) = self.on_timers().or_else(|e| self.ride_out(e)) {
                break Some(e);
            }
            if self.phase == Phase::Running {
                self.submit_deferred();
                if let Err(e) = self.claim().or_else(|e| self.ride_out(e)) {
                    break Some(e);
                }
            }
            match self.done(mail.closed) {
                Ok(true) => break None,
                Ok(false) => {}
                Err(e) => break Some(e),
            }
            let wait = self.wait_time();
            self.events.flush_if_dirty();
            if wait != Some(Duration::ZERO) {
                self.inbox
                    .wait(&mut spinner, wait, seen_interrupts, mail.closed);
            }
        };
        let error = error.or_else(|| self.finish().err());
        if let Some(w) = self.writer.take() {
            w.stop();
        }
        for e in self.execs.iter().flatten() {
            e.shutdown();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        RunOutcome {
            wall: start.elapsed(),
            interrupted: self.interrupted,
            error,
        }
    }

    fn task_index(&mut self, name: &TaskName) -> Option<TaskIndex> {
        if let Some((n, i)) = &self.last_task {
            if n == name {
                return Some(*i);
            }
        }
        let i = self.engine.registry.lookup(name).ok()?;
        self.last_task = Some((name.clone(), i));
        Some(i)
    }

    /// Whether the lane's executor could not start and is not to be tried
    /// again yet.
    fn lane_down(&self, lane: Lane) -> bool {
        self.exec_down[lane.index()].is_some_and(|t| Instant::now() < t)
    }

    /// The lane's executor, started on first use; `None` when it cannot
    /// start (see the module docs).
    fn executor(&mut self, lane: Lane) -> Option<&Arc<dyn Executor>> {
        if self.execs[lane.index()].is_none() {
            if self.lane_down(lane) {
                return None;
            }
            match self.start_executor(lane) {
                Ok(exec) => {
                    if self.exec_down[lane.index()].take().is_some() {
                        eprintln!("runyard: the {lane} started");
                    }
                    self.tally.add_executor(&exec);
                    self.execs[lane.index()] = Some(exec);
                }
                Err(e) => {
                    if self.exec_down[lane.index()].is_none() {
                        eprintln!(
                            "runyard: the {lane} cannot start ({e}); its jobs wait, no attempt \
                             is counted, and it is tried again every {}s",
                            EXEC_RETRY.as_secs()
                        );
                    }
                    self.exec_down[lane.index()] = Some(Instant::now() + EXEC_RETRY);
                    return None;
                }
            }
        }
        self.execs[lane.index()].as_ref()
    }

    fn start_executor(&mut self, lane: Lane) -> std::io::Result<Arc<dyn Executor>> {
        {
            let sink = Arc::new(InboxSink {
                inbox: Arc::clone(&self.inbox),
                // A durable queue is told when claims start (see `on_started`).
                wants_started: !self.events.is_empty() || self.durable,
            });
            let reg = Arc::clone(&self.engine.registry);
            let cfg = &self.engine.config;
            Ok(match lane {
                Lane::Cpu => {
                    let threads = self.threads[Lane::Cpu.index()];
                    Arc::new(ThreadPool::new(
                        PoolConfig::fixed("runyard-cpu", threads),
                        reg,
                        sink,
                    )?)
                }
                Lane::Blocking => Arc::new(ThreadPool::new(
                    PoolConfig::elastic("runyard-blocking", self.threads[Lane::Blocking.index()]),
                    reg,
                    sink,
                )?),
                Lane::Async => {
                    let rt = match &self.runtime {
                        Some(rt) => rt,
                        None => self.runtime.insert(
                            tokio::runtime::Builder::new_multi_thread()
                                .worker_threads(cores())
                                .thread_name("runyard-async")
                                .enable_all()
                                .build()?,
                        ),
                    };
                    Arc::new(AsyncExecutor::new(rt.handle().clone(), reg, sink))
                }
                Lane::Process => {
                    let mut pc = cfg
                        .process
                        .clone()
                        .expect("process lane refused at submit without a ProcessConfig");
                    pc.workers = self.threads[Lane::Process.index()];
                    Arc::new(ProcessPool::new(pc, reg, sink)?)
                }
            })
        }
    }

    // ---------------------------------------------------------------- claiming

    fn free(&self) -> usize {
        let lanes: usize = (0..4)
            .map(|i| self.cap[i].saturating_sub(self.inflight[i]))
            .sum();
        lanes.min(self.global_cap.saturating_sub(self.global_inflight))
    }

    fn claim(&mut self) -> Result<(), QueueError> {
        if self.waiting > 0 || self.queue_idle || self.queue_down() {
            return Ok(());
        }
        let want = self.free().min(MAX_CLAIM);
        if want == 0 {
            return Ok(());
        }
        let tasks = self.engine.config.tasks.clone();
        let claimed = self.queue.claim_tasks(
            self.worker(),
            want,
            self.engine.config.lease,
            tasks.as_deref(),
        )?;
        if claimed.len() < want {
            self.queue_idle = true;
        }
        let mut batches: [Vec<Attempt>; 4] = Default::default();
        for c in claimed {
            self.route(c, &mut batches);
        }
        self.submit_batches(batches);
        Ok(())
    }

    fn route(&mut self, c: Claimed, batches: &mut [Vec<Attempt>; 4]) {
        let Claimed {
            id,
            attempt,
            task,
            params,
            settings,
            ready_at,
        } = c;
        let Some(idx) = self.task_index(&task) else {
            let msg = format!("no task named `{task}` is registered in this worker");
            self.refuse(id, attempt, task, ready_at, msg);
            return;
        };
        let def = self.engine.registry.task(idx);
        let lane = match lane_for(settings.mode, def, settings.isolate) {
            Ok(Lane::Process) if !self.engine.process_available => {
                let msg = "worker processes are not available in this build".to_string();
                self.refuse(id, attempt, task, ready_at, msg);
                return;
            }
            Ok(l) => l,
            Err(e) => {
                self.refuse(id, attempt, task, ready_at, e.to_string());
                return;
            }
        };
        let token = self.running.insert(Entry {
            id,
            attempt,
            task: idx,
            lane,
            settings,
            ready_at,
            params: Some(params),
            started_at: None,
            cancel_requested: false,
        });
        self.waiting += 1;
        self.deferred[lane.index()].push_back(token);
        self.start_waiting(lane, batches);
    }

    fn lane_has_room(&self, lane: Lane) -> bool {
        self.inflight[lane.index()] < self.cap[lane.index()]
            && self.global_inflight < self.global_cap
    }

    fn task_has_room(&self, task: TaskIndex) -> bool {
        let limit = self.engine.registry.task(task).worker_concurrency();
        limit.is_none_or(|l| self.task_running[task.0 as usize] < l)
    }

    /// Moves jobs waiting in `lane` into its batch while the lane has room;
    /// those whose task is at its limit wait in `blocked`.
    fn start_waiting(&mut self, lane: Lane, batches: &mut [Vec<Attempt>; 4]) {
        if self.inflight[lane.index()] > self.low_water[lane.index()]
            && batches[lane.index()].is_empty()
        {
            return;
        }
        if self.execs[lane.index()].is_none() && self.lane_down(lane) {
            return;
        }
        while self.lane_has_room(lane) {
            let Some(token) = self.deferred[lane.index()].pop_front() else {
                break;
            };
            let Some(task) = self.running.get(token).map(|e| e.task) else {
                self.waiting -= 1;
                continue;
            };
            if self.task_has_room(task) {
                self.waiting -= 1;
                let a = self.take_attempt(token);
                batches[lane.index()].push(a);
            } else {
                self.blocked.entry(task.0).or_default().push_back(token);
            }
        }
    }

    /// A task's attempt ended: one job held back by its limit may go.
    fn unblock(&mut self, task: TaskIndex, lane: Lane) {
        if let Some(q) = self.blocked.get_mut(&task.0) {
            if let Some(token) = q.pop_front() {
                self.deferred[lane.index()].push_front(token);
            }
        }
    }

    /// Marks the entry as handed to its executor and builds its attempt.
    fn take_attempt(&mut self, token: u64) -> Attempt {
        let e = self.running.get_mut(token).expect("entry exists");
        self.inflight[e.lane.index()] += 1;
        self.global_inflight += 1;
        self.task_running[e.task.0 as usize] += 1;
        Attempt {
            token,
            job: e.id,
            number: e.attempt,
            task: e.task,
            params: e.params.take().unwrap_or_default(),
            timeout: e.settings.timeout,
        }
    }

    fn submit_batches(&mut self, batches: [Vec<Attempt>; 4]) {
        for (lane, batch) in Lane::ALL.into_iter().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            match self.executor(lane) {
                Some(ex) => ex.submit(batch),
                None => {
                    // The executor cannot start: the attempts wait for it,
                    // unstarted and uncounted, in their order.
                    for a in batch.into_iter().rev() {
                        if let Some(e) = self.running.get_mut(a.token) {
                            e.params = Some(a.params);
                            self.inflight[lane.index()] -= 1;
                            self.global_inflight -= 1;
                            self.task_running[e.task.0 as usize] -= 1;
                            self.deferred[lane.index()].push_front(a.token);
                            self.waiting += 1;
                        }
                    }
                }
            }
        }
    }

    fn submit_deferred(&mut self) {
        if self.waiting == 0 {
            return;
        }
        let mut batches: [Vec<Attempt>; 4] = Default::default();
        for lane in Lane::ALL {
            self.start_waiting(lane, &mut batches);
        }
        self.submit_batches(batches);
    }

    /// A claimed job this worker cannot run at all: dead, permanently.
    fn refuse(
        &mut self,
        id: JobId,
        attempt: u32,
        task: TaskName,
        ready_at: Timestamp,
        message: String,
    ) {
        let now = self.queue.now();
        let record = AttemptRecord::new(
            attempt,
            OutcomeKind::Failed,
            now,
            Duration::ZERO,
            now.since(ready_at),
            Some(AttemptError {
                message,
                permanent: true,
                detail: None,
            }),
        );
        self.record(
            task,
            Completion {
                lease: Lease { job: id, attempt },
                record,
                verdict: Verdict::Dead,
            },
        );
    }

    /// Queues a record for the next write to the queue.
    fn record(&mut self, task: TaskName, c: Completion) {
        self.pending.push(c);
        self.pending_tasks.push(task);
    }

    // ---------------------------------------------------------------- reports

    /// Attempts that started: their `running` events, and for a durable
    /// queue a record that they started (claims are made ahead of time; a
    /// claim lost before it started does not cost an attempt), except for
    /// attempts that have already `finished`: their outcome, written next,
    /// records them whole.
    fn on_started(
        &mut self,
        started: Vec<(u64, Timestamp)>,
        finished: &[runyard_exec::AttemptReport],
    ) {
        if started.is_empty() {
            return;
        }
        let done: rustc_hash::FxHashSet<u64> = if self.durable {
            finished.iter().map(|f| f.token).collect()
        } else {
            Default::default()
        };
        let mut marks = Vec::new();
        {
            let _order = self.events.lock();
            for (token, at) in started {
                let Some(e) = self.running.get_mut(token) else {
                    continue;
                };
                e.started_at = Some(at);
                let (id, attempt, task, ready_at) = (e.id, e.attempt, e.task, e.ready_at);
                if self.durable && !done.contains(&token) {
                    marks.push((Lease { job: id, attempt }, at));
                }
                if !self.events.is_empty() {
                    self.events.emit(&Event::Running {
                        job: id,
                        task: &self.engine.names[task.0 as usize],
                        at,
                        attempt,
                        queued_ms: ms(at.since(ready_at)),
                    });
                }
            }
        }
        // A failure here only loses precision: a claim not known to have
        // started is undone on rescue instead of counted.
        if !marks.is_empty() {
            let _ = self.queue.started(self.worker(), &marks);
        }
    }

    fn on_finished(&mut self, finished: Vec<runyard_exec::AttemptReport>) {
        for f in finished {
            let Some(e) = self.running.remove(f.token) else {
                // An attempt already accounted for (lost lease, given up).
                continue;
            };
            self.inflight[e.lane.index()] -= 1;
            self.global_inflight -= 1;
            self.task_running[e.task.0 as usize] -= 1;
            if !self.blocked.is_empty() {
                self.unblock(e.task, e.lane);
            }
            self.end_attempt(e, f.started_at, f.duration, f.outcome);
        }
    }

    /// Applies the retry policy to an attempt's end and queues its record.
    fn end_attempt(&mut self, e: Entry, started_at: Timestamp, duration: Duration, ended: Outcome) {
        let outcome = ended.kind();
        let intent = ended.intent();
        let (output, error) = ended.into_parts();
        if outcome != OutcomeKind::Succeeded {
            self.tally.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        let verdict = match outcome {
            OutcomeKind::Succeeded => Verdict::Succeeded(output),
            OutcomeKind::Cancelled if e.cancel_requested || !self.durable => Verdict::Cancelled,
            OutcomeKind::Cancelled => {
                // Stopped by a shutdown: a durable queue keeps the job for the
                // next run; the interrupted attempt counts.
                if e.attempt < e.settings.max_attempts {
                    Verdict::Retry {
                        at: self.queue.now(),
                    }
                } else {
                    Verdict::Dead
                }
            }
            _ => match e
                .settings
                .policy()
                .decide(e.attempt, intent, self.rng.f64())
            {
                RetryDecision::Retry(d) => Verdict::Retry {
                    at: self.queue.now() + d,
                },
                RetryDecision::GiveUp(GiveUpReason::Permanent | GiveUpReason::Exhausted) => {
                    Verdict::Dead
                }
            },
        };
        let record = AttemptRecord::new(
            e.attempt,
            outcome,
            started_at,
            duration,
            started_at.since(e.ready_at),
            error,
        );
        let task = self.engine.names[e.task.0 as usize].clone();
        self.record(
            task,
            Completion {
                lease: e.lease(),
                record,
                verdict,
            },
        );
    }

    /// The event for a recorded attempt's end (the caller holds the event order).
    fn emit_end(&self, task: &str, c: &Completion) {
        let (job, attempt, r) = (c.lease.job, c.lease.attempt, &c.record);
        let at = self.queue.now();
        let error = r.error_message().unwrap_or("");
        let ev = match &c.verdict {
            Verdict::Succeeded(_) => Event::Succeeded {
                job,
                task,
                at,
                attempt,
                duration_ms: ms(r.duration()),
            },
            Verdict::Retry { at: run_at } => Event::Scheduled {
                job,
                task,
                at,
                attempt,
                outcome: r.outcome,
                duration_ms: ms(r.duration()),
                error,
                delay_ms: ms(run_at.since(at)),
                run_at: *run_at,
            },
            Verdict::Dead => Event::Dead {
                job,
                task,
                at,
                attempt,
                outcome: r.outcome,
                duration_ms: ms(r.duration()),
                error,
            },
            Verdict::Cancelled => Event::Cancelled {
                job,
                task,
                at,
                attempts: attempt,
            },
        };
        self.events.emit(&ev);
    }

    /// Writes queued records to the queue: here, or by handing them to the
    /// writer thread when the queue takes writes beside claims.
    fn flush_completions(&mut self) -> Result<(), QueueError> {
        if self.pending.is_empty() || self.writing || self.queue_down() {
            return Ok(());
        }
        if self.writer.is_none() && self.queue.writes_concurrently() {
            self.writer = Writer::start(
                Arc::clone(&self.queue),
                self.worker().to_string(),
                Arc::clone(&self.inbox),
            );
        }
        if let Some(w) = &self.writer {
            let batch = Written {
                records: std::mem::take(&mut self.pending),
                tasks: std::mem::take(&mut self.pending_tasks),
                results: Ok(Vec::new()),
            };
            match w.send(batch) {
                Ok(()) => {
                    self.writing = true;
                    return Ok(());
                }
                Err(back) => {
                    // The thread is gone: write here from now on.
                    self.pending = back.records;
                    self.pending_tasks = back.tasks;
                    self.writer = None;
                }
            }
        }
        let results = write_records(&*self.queue, self.worker(), &self.pending);
        let batch = Written {
            records: std::mem::take(&mut self.pending),
            tasks: std::mem::take(&mut self.pending_tasks),
            results,
        };
        self.on_written(batch)
    }

    /// A batch of records was written (or failed to be): the events for
    /// those recorded.
    fn on_written(&mut self, w: Written) -> Result<(), QueueError> {
        self.writing = false;
        let results = match w.results {
            Ok(r) => r,
            Err(e) => {
                self.pending = w.records;
                self.pending_tasks = w.tasks;
                return Err(e);
            }
        };
        // A fenced record belongs to an attempt whose lease was taken
        // over; the job's new attempt will record its own outcome.
        // Events follow the records, so a sink that reads the queue
        // finds what the event announces.
        if !self.events.is_empty() {
            let _order = self.events.lock();
            for ((c, task), r) in w.records.iter().zip(&w.tasks).zip(results) {
                if r.is_ok() {
                    self.emit_end(task, c);
                }
            }
        }
        self.queue_idle = false;
        Ok(())
    }

    // ---------------------------------------------------------------- timers

    fn on_timers(&mut self) -> Result<(), QueueError> {
        let now = Instant::now();
        let r = if self.queue_down() {
            Ok(())
        } else {
            self.queue_timers(now)
        };
        match self.phase {
            Phase::Draining { deadline } if now >= deadline || self.running.is_empty() => {
                self.cancel_running()
            }
            Phase::Cancelling { deadline } if now >= deadline => self.give_up_running(),
            _ => {}
        }
        r
    }

    /// A long-running worker rides out a queue it cannot reach: queue
    /// operations pause for a while and are tried again, outcomes wait in
    /// `pending`, attempts go on. A run that ends when drained stops instead.
    fn ride_out(&mut self, e: QueueError) -> Result<(), QueueError> {
        if e.is_transient() && !self.engine.config.exit_when_drained {
            self.queue_down_until = Some(Instant::now() + QUEUE_RETRY);
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Whether queue operations are paused (see `ride_out`).
    fn queue_down(&mut self) -> bool {
        match self.queue_down_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.queue_down_until = None;
                false
            }
            None => false,
        }
    }

    /// Heartbeats and rescues, when due.
    fn queue_timers(&mut self, now: Instant) -> Result<(), QueueError> {
        let lease = self.engine.config.lease;
        if self.durable && now - self.last_heartbeat >= lease / 3 {
            self.last_heartbeat = now;
            self.heartbeat()?;
        }
        if self.durable && now - self.last_rescue >= lease / 2 {
            self.last_rescue = now;
            let rescued = self.queue.rescue(Rescue::Expired)?;
            if !rescued.is_empty() {
                self.queue_idle = false;
                self.emit_requeued(&rescued, QueuedReason::Rescued);
            }
        }
        Ok(())
    }

    /// Renews the leases held, and (with none, too) the worker's
    /// registration as a live worker, if it has one.
    fn heartbeat(&mut self) -> Result<(), QueueError> {
        let leases: Vec<(u64, Lease)> = self.running.iter().map(|(t, e)| (t, e.lease())).collect();
        let only: Vec<Lease> = leases.iter().map(|(_, l)| *l).collect();
        let reply = self
            .queue
            .heartbeat(self.worker(), &only, self.engine.config.lease)?;
        for lost in reply.lost {
            if let Some((token, _)) = leases.iter().find(|(_, l)| *l == lost) {
                // Its outcome can no longer be recorded: stop it and forget it.
                if let Some(e) = self.running.remove(*token) {
                    self.forget(*token, &e);
                }
            }
        }
        for l in reply.cancel_requested {
            if let Some((token, _)) = leases.iter().find(|(_, x)| *x == l) {
                self.cancel_one(*token);
            }
        }
        Ok(())
    }

    /// Stops tracking an entry that was removed from the running table.
    fn forget(&mut self, token: u64, e: &Entry) {
        if e.params.is_none() {
            self.inflight[e.lane.index()] -= 1;
            self.global_inflight -= 1;
            self.task_running[e.task.0 as usize] -= 1;
            if let Some(ex) = &self.execs[e.lane.index()] {
                ex.cancel(token);
            }
        } else {
            self.drop_waiting(token, e);
        }
    }

    /// Removes a job that never reached its executor from the waiting lists.
    fn drop_waiting(&mut self, token: u64, e: &Entry) {
        let before = self.deferred[e.lane.index()].len();
        self.deferred[e.lane.index()].retain(|t| *t != token);
        let mut removed = before - self.deferred[e.lane.index()].len();
        if let Some(q) = self.blocked.get_mut(&e.task.0) {
            let b = q.len();
            q.retain(|t| *t != token);
            removed += b - q.len();
        }
        self.waiting -= removed;
    }

    fn cancel_one(&mut self, token: u64) {
        let Some(e) = self.running.get_mut(token) else {
            return;
        };
        e.cancel_requested = true;
        let (lane, submitted) = (e.lane, e.params.is_none());
        let unstarted = if submitted {
            self.execs[lane.index()]
                .as_ref()
                .and_then(|ex| ex.cancel(token))
        } else {
            let e = self.running.remove(token).expect("present");
            self.drop_waiting(token, &e);
            let now = self.queue.now();
            self.end_attempt(e, now, Duration::ZERO, Outcome::Cancelled);
            return;
        };
        if unstarted.is_some() {
            // Never started: recorded as cancelled without running.
            let e = self.running.remove(token).expect("present");
            self.inflight[e.lane.index()] -= 1;
            self.global_inflight -= 1;
            self.task_running[e.task.0 as usize] -= 1;
            let now = self.queue.now();
            self.end_attempt(e, now, Duration::ZERO, Outcome::Cancelled);
        }
    }

    // ---------------------------------------------------------------- interrupts

    fn on_interrupt(&mut self) {
        self.interrupted = true;
        match self.phase {
            Phase::Running => {
                self.phase = Phase::Draining {
                    deadline: Instant::now() + self.engine.config.grace,
                };
                self.release_unstarted();
            }
            Phase::Draining { .. } => self.cancel_running(),
            Phase::Cancelling { .. } => self.give_up_running(),
        }
    }

    /// Gives back every claimed job that has not started.
    fn release_unstarted(&mut self) {
        let mut tokens: Vec<u64> = self.deferred.iter_mut().flat_map(|d| d.drain(..)).collect();
        tokens.extend(self.blocked.drain().flat_map(|(_, q)| q));
        self.waiting = 0;
        for ex in self.execs.iter().flatten() {
            tokens.extend(ex.take_unstarted().into_iter().map(|a| a.token));
        }
        self.release(tokens);
    }

    fn release(&mut self, tokens: Vec<u64>) {
        let mut leases = Vec::new();
        for token in tokens {
            if let Some(e) = self.running.remove(token) {
                if e.params.is_none() {
                    self.inflight[e.lane.index()] -= 1;
                    self.global_inflight -= 1;
                    self.task_running[e.task.0 as usize] -= 1;
                }
                leases.push(e.lease());
            }
        }
        if leases.is_empty() {
            return;
        }
        // A release that fails leaves the leases to expire and be rescued.
        let _ = self.queue.release(self.worker(), &leases);
        if self.durable {
            let ids: Vec<JobId> = leases.iter().map(|l| l.job).collect();
            self.emit_requeued(&ids, QueuedReason::Released);
        }
    }

    fn cancel_running(&mut self) {
        let mut rest = Vec::new();
        for ex in self.execs.iter().flatten() {
            rest.extend(ex.cancel_running().into_iter().map(|a| a.token));
        }
        self.release(rest);
        self.phase = Phase::Cancelling {
            deadline: Instant::now() + CANCEL_WAIT,
        };
    }

    /// Cancelled attempts that never reported: recorded as cancelled here.
    fn give_up_running(&mut self) {
        let tokens: Vec<u64> = self.running.iter().map(|(t, _)| t).collect();
        let now = self.queue.now();
        for token in tokens {
            let e = self.running.remove(token).expect("listed");
            self.forget(token, &e);
            let started = e.started_at.unwrap_or(now);
            self.end_attempt(e, started, now.since(started), Outcome::Cancelled);
        }
    }

    fn emit_requeued(&self, ids: &[JobId], reason: QueuedReason) {
        if self.events.is_empty() {
            return;
        }
        let _order = self.events.lock();
        let at = self.queue.now();
        for &id in ids {
            let task = self
                .queue
                .get(id)
                .ok()
                .flatten()
                .map(|v| v.task)
                .unwrap_or_default();
            self.events.emit(&Event::Queued {
                job: id,
                task: &task,
                at,
                reason,
            });
        }
    }

    // ---------------------------------------------------------------- the end

    fn done(&mut self, closed: bool) -> Result<bool, QueueError> {
        if !self.pending.is_empty() || self.writing {
            return Ok(false);
        }
        match self.phase {
            Phase::Running => {
                let drained = closed
                    && self.engine.config.exit_when_drained
                    && self.running.is_empty()
                    && self.queue_idle;
                if !drained {
                    return Ok(false);
                }
                Ok(self.queue.counts()?.unfinished() == 0)
            }
            Phase::Draining { .. } | Phase::Cancelling { .. } => Ok(self.running.is_empty()),
        }
    }

    fn wait_time(&mut self) -> Option<Duration> {
        let down = self
            .queue_down_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero());
        if !self.pending.is_empty() && !self.writing && down.is_none() {
            return Some(Duration::ZERO);
        }
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        if let Some(d) = down {
            // The queue is out of reach: nothing to ask it before then.
            at_most(d);
            return wait;
        }
        match self.phase {
            Phase::Running => {
                if !self.queue_idle && self.free() > 0 && self.waiting == 0 {
                    return Some(Duration::ZERO);
                }
                if self.queue_idle {
                    if let Ok(Some(due)) = self.queue.next_due() {
                        let d = due.since(self.queue.now());
                        if !d.is_zero() {
                            at_most(d);
                        } else if self.engine.config.tasks.is_none() {
                            self.queue_idle = false;
                            return Some(Duration::ZERO);
                        }
                        // A worker of some tasks: what is due may be
                        // another task's; it polls (and wakes on enqueues).
                    }
                }
                if self.durable {
                    at_most(POLL);
                    at_most(self.engine.config.lease / 3);
                }
                // A lane whose executor could not start, with jobs for it.
                for lane in Lane::ALL {
                    if let Some(t) = self.exec_down[lane.index()] {
                        if !self.deferred[lane.index()].is_empty() {
                            at_most(t.saturating_duration_since(Instant::now()));
                        }
                    }
                }
            }
            Phase::Draining { deadline } | Phase::Cancelling { deadline } => {
                at_most(deadline.saturating_duration_since(Instant::now()));
            }
        }
        if self.durable && wait.is_none_or(|w| w >= POLL) {
            // Another process may enqueue at any time.
            self.queue_idle = false;
        }
        wait
    }

    /// After the loop: an interrupted in-memory run cancels what never ran.
    fn finish(&mut self) -> Result<(), QueueError> {
        if self.interrupted && !self.durable {
            let ids = self.queue.cancel_pending()?;
            if !self.events.is_empty() {
                let _order = self.events.lock();
                let at = self.queue.now();
                for id in ids {
                    if let Ok(Some(v)) = self.queue.get(id) {
                        self.events.emit(&Event::Cancelled {
                            job: id,
                            task: &v.task,
                            at,
                            attempts: v.attempts.len() as u32,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Writes records, retrying while the queue is unavailable.
fn write_records(
    queue: &dyn Queue,
    worker: &str,
    records: &[Completion],
) -> Result<Vec<Result<(), runyard_queue::Fenced>>, QueueError> {
    let mut delay = Duration::from_millis(10);
    let mut tries = 0;
    loop {
        match queue.complete(worker, records) {
            Err(e) if e.is_transient() && tries < 50 => {
                tries += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

/// The thread that writes records while the dispatcher goes on claiming
/// and starting attempts; it hands each written batch back through the
/// inbox.
struct Writer {
    tx: std::sync::mpsc::Sender<Written>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    fn start(queue: Arc<dyn Queue>, worker: String, inbox: Arc<Inbox>) -> Option<Writer> {
        let (tx, rx) = std::sync::mpsc::channel::<Written>();
        let thread = std::thread::Builder::new()
            .name("runyard-writer".into())
            .spawn(move || {
                for mut w in rx {
                    w.results = write_records(&*queue, &worker, &w.records);
                    inbox.written(w);
                }
            })
            .ok()?;
        Some(Writer { tx, thread })
    }

    /// Hands a batch over; gives it back if the thread is gone.
    fn send(&self, w: Written) -> Result<(), Written> {
        self.tx.send(w).map_err(|e| e.0)
    }

    fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}
