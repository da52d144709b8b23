//! The dispatcher: one thread that owns a run's state.
//!
//! Each turn it takes what arrived in its [`Inbox`] (finished attempts,
//! starts, written records, interrupts), records finished attempts after
//! applying the retry policy, hands claimed jobs to executors as their
//! lanes have room, and sleeps until something arrives or a timer is due.
//! Because one thread owns the claims, the retry decisions and the queue
//! writes, an attempt's end is applied exactly once; executors only run
//! attempts and report.
//!
//! # Who owns what
//!
//! - The **dispatcher thread** owns everything in [`Dispatcher`]: the
//!   claims ([`claims`]: every claimed job's [`Entry`], the lanes' waiting
//!   lists and slots), the records not yet written ([`record`]), the
//!   timers ([`leases`]) and the phase ([`shutdown`]). Only it claims,
//!   releases, heartbeats and rescues.
//! - The **writer thread** ([`writer`]), for a queue that takes writes
//!   beside claims, owns one batch of records at a time, from the hand-over
//!   to its return through the inbox; the dispatcher writes no record while
//!   a batch is with it.
//! - **Executors** own the attempts handed to them until they report an
//!   attempt's start and its end to the inbox (or give it back when asked).
//! - The **inbox** holds what others tell the dispatcher; the wake-up
//!   protocol is in [`crate::inbox`].
//!
//! # An entry's states
//!
//! ```text
//!  claim ──▶ Waiting ──(room in its lane and under its task's limit)──▶ Submitted ──(start)──▶ Started
//!              ▲   │                                                         │                  │
//!              └───┼──────────(the executor could not start)────────────────┘                  │
//!                  │                                                                            │
//!                  └──(interrupt: released) ──▶ gone ◀──(reported, lost, released, given up)────┘
//! ```
//!
//! `Waiting` holds the job's parameters and no slot; `Submitted` and
//! `Started` hold a running slot (the lane's `inflight`, the task's count),
//! which [`Claims::end`] gives back, whichever way the entry goes. An
//! executor that cannot start (no thread, pipe or process to be had) costs
//! no attempt: its attempts go back to the front of the lane's waiting
//! list, still claimed and unstarted, the lane is tried again after
//! [`lanes::EXEC_RETRY`], and meanwhile nothing more is claimed.
//!
//! # Phases
//!
//! `Running` claims and runs; the first interrupt moves to `Draining`
//! (waiting claims are given back, running attempts may finish within the
//! grace period), then `Cancelling` (running attempts are stopped, their
//! reports awaited a while), then the dispatcher gives up on what never
//! reported and records it as cancelled; see [`shutdown`]. An attempt
//! stopped this way is, on a durable queue, retried at once if its policy
//! has attempts left (the next run takes it); on a queue that ends with the
//! run it is cancelled, with the jobs that never ran.
//!
//! # Sleeping and waking
//!
//! The loop does not sleep while records wait to be written (and the writer
//! is free), nor while the queue may have jobs and the lanes have room. It
//! otherwise sleeps until the inbox has news (an executor's report, the
//! writer's batch, an enqueue in this process, an interrupt, the end of
//! submissions) or the first of: the queue's next scheduled job, a durable
//! queue's next heartbeat or poll (at most [`leases::POLL`]), a lane's
//! executor retry, the queue's return after it could not be reached, a
//! shutdown deadline.

mod claims;
mod emit;
mod entry;
mod executors;
mod lanes;
mod leases;
mod record;
mod shutdown;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_core::{
    AttemptError, AttemptRecord, Event, JobId, Outcome, OutcomeKind, QueuedReason, TaskIndex,
    Timestamp,
};
use runyard_exec::{AttemptReport, Executor, Spinner};
use runyard_queue::{Claimed, Completion, Lease, Queue, QueueError, Rescue, TaskName, Verdict};

use self::claims::{Batches, Claims};
use self::entry::{Entry, Stage};
use self::lanes::Lanes;
use self::leases::Timers;
use self::record::{Ending, Next, Recorder};
use self::shutdown::{Phase, Step};
use crate::events::Events;
use crate::inbox::{Inbox, InboxSink, Mail, Note, Written};
use crate::lane::{lane_for, Lane};
use crate::shared::{EngineInner, RunOutcome, Tally};

/// How long a long-running worker waits before it tries an unreachable
/// queue again (each try itself may reconnect for a while).
const QUEUE_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Dispatcher {
    engine: Arc<EngineInner>,
    queue: Arc<dyn Queue>,
    inbox: Arc<Inbox>,
    events: Events,
    tally: Arc<Tally>,
    claims: Claims,
    recorder: Recorder,
    /// The async lane's runtime, built with its executor.
    runtime: Option<tokio::runtime::Runtime>,
    phase: Phase,
    interrupted: bool,
    timers: Timers,
    /// The last claim found fewer jobs than it asked for.
    queue_idle: bool,
    /// Queue operations pause until then: the queue could not be reached.
    queue_down_until: Option<Instant>,
    rng: fastrand::Rng,
    durable: bool,
    last_task: Option<(TaskName, TaskIndex)>,
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
        let lanes = Lanes::new(&engine.config.sizes(), engine.config.prefetch);
        let limits = engine.registry.iter().map(|t| t.concurrency()).collect();
        let durable = queue.is_durable();
        let events_may_interrupt = !events.is_empty();
        Dispatcher {
            engine,
            queue,
            inbox,
            events,
            tally,
            claims: Claims::new(lanes, limits),
            recorder: Recorder::default(),
            runtime: None,
            phase: Phase::Running,
            interrupted: false,
            timers: Timers::new(Instant::now()),
            queue_idle: false,
            queue_down_until: None,
            rng: fastrand::Rng::new(),
            durable,
            last_task: None,
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
        let mut spinner = Spinner::default();
        let error = loop {
            if self.inbox.take(&mut mail) {
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
            if let Err(e) = self.flush_records().or_else(|e| self.ride_out(e)) {
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
                let batches = self.claims.take_all_ready(Instant::now());
                self.submit(batches);
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
        self.recorder.stop();
        for e in self.claims.lanes.executors() {
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

    /// The lane's executor, started on first use; `None` when it cannot
    /// start (see the module docs).
    fn executor(&mut self, lane: Lane) -> Option<Arc<dyn Executor>> {
        let now = Instant::now();
        let l = &self.claims.lanes[lane];
        if let Some(exec) = &l.exec {
            return Some(Arc::clone(exec));
        }
        if l.down(now) {
            return None;
        }
        let sink = Arc::new(InboxSink {
            inbox: Arc::clone(&self.inbox),
            // A durable queue is told when claims start (see `on_started`).
            wants_started: !self.events.is_empty() || self.durable,
        });
        let started = executors::start(lane, l.threads, &self.engine, sink, &mut self.runtime);
        let exec = self.claims.lanes[lane].on_start(lane, started, now)?;
        self.tally.add_executor(&exec);
        Some(exec)
    }

    /// Asks a running attempt's executor to stop it; gives back the attempt
    /// if it had not started.
    fn cancel_in_executor(&self, lane: Lane, token: u64) -> Option<runyard_exec::Attempt> {
        self.claims.lanes[lane].exec.as_ref()?.cancel(token)
    }

    // ---------------------------------------------------------------- claiming

    fn claim(&mut self) -> Result<(), QueueError> {
        if self.queue_idle || self.queue_down() {
            return Ok(());
        }
        let want = self.claims.claim_size();
        if want == 0 {
            return Ok(());
        }
        let cfg = &self.engine.config;
        let claimed =
            self.queue
                .claim_tasks(&cfg.worker_name, want, cfg.lease, cfg.tasks.as_deref())?;
        if claimed.len() < want {
            self.queue_idle = true;
        }
        let now = Instant::now();
        let mut batches = Batches::default();
        for c in claimed {
            self.route(c, now, &mut batches);
        }
        self.submit(batches);
        Ok(())
    }

    /// Takes a claimed job into its lane (or refuses it: a job this worker
    /// cannot run at all is dead, permanently).
    fn route(&mut self, c: Claimed, now: Instant, batches: &mut Batches) {
        let lease = c.lease();
        let Claimed {
            task,
            params,
            settings,
            ready_at,
            ..
        } = c;
        let Some(idx) = self.task_index(&task) else {
            let msg = format!("no task named `{task}` is registered in this worker");
            return self.refuse(lease, task, ready_at, msg);
        };
        let def = self.engine.registry.task(idx);
        let lane = match lane_for(settings.mode, def, settings.isolate) {
            Ok(Lane::Process) if !self.engine.process_available => {
                let msg = "worker processes are not available in this build".to_string();
                return self.refuse(lease, task, ready_at, msg);
            }
            Ok(l) => l,
            Err(e) => return self.refuse(lease, task, ready_at, e.to_string()),
        };
        self.claims.insert(Entry {
            lease,
            task: idx,
            lane,
            settings,
            ready_at,
            stage: Stage::Waiting { params },
            cancel_requested: false,
        });
        self.claims.take_ready(lane, now, batches);
    }

    /// Hands each lane's batch to its executor (or back to the lane's
    /// waiting list when the executor cannot start).
    fn submit(&mut self, batches: Batches) {
        for (lane, batch) in Lane::ALL.into_iter().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            match self.executor(lane) {
                Some(ex) => ex.submit(batch),
                None => self.claims.hand_back(lane, batch),
            }
        }
    }

    fn refuse(&mut self, lease: Lease, task: TaskName, ready_at: Timestamp, message: String) {
        let now = self.queue.now();
        let record = AttemptRecord::new(
            lease.attempt,
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
        let c = Completion {
            lease,
            record,
            verdict: Verdict::Dead,
        };
        self.recorder.push(c, Note { task });
    }

    // ---------------------------------------------------------------- reports

    /// Attempts that started: their `running` events, and for a durable
    /// queue a record that they started (claims are made ahead of time; a
    /// claim lost before it started does not cost an attempt), except for
    /// attempts that have already `finished`: their outcome, written next,
    /// records them whole.
    fn on_started(&mut self, started: Vec<(u64, Timestamp)>, finished: &[AttemptReport]) {
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
                let Some(e) = self.claims.started(token, at) else {
                    continue;
                };
                if self.durable && !done.contains(&token) {
                    marks.push((e.lease, at));
                }
                if !self.events.is_empty() {
                    self.events.emit(&Event::Running {
                        job: e.lease.job,
                        task: &self.engine.names[e.task.0 as usize],
                        at,
                        attempt: e.lease.attempt,
                        queued_ms: emit::ms(at.since(e.ready_at)),
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

    fn on_finished(&mut self, finished: Vec<AttemptReport>) {
        for f in finished {
            // `None`: an attempt already accounted for (lost lease, given up).
            if let Some(e) = self.claims.end(f.token) {
                self.end_attempt(e, f.started_at, f.duration, f.outcome);
            }
        }
    }

    /// Decides what comes after an attempt (see [`record::next`]) and
    /// queues its record.
    fn end_attempt(&mut self, e: Entry, started_at: Timestamp, duration: Duration, ended: Outcome) {
        let outcome = ended.kind();
        let intent = ended.intent();
        let (output, error) = ended.into_parts();
        if outcome != OutcomeKind::Succeeded {
            self.tally.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        let ending = Ending {
            cancel_requested: e.cancel_requested,
            durable: self.durable,
        };
        let policy = e.settings.policy();
        let next = record::next(
            outcome,
            intent,
            e.lease.attempt,
            policy,
            ending,
            self.rng.f64(),
        );
        let verdict = match next {
            Next::Succeeded => Verdict::Succeeded(output),
            Next::Retry(d) => Verdict::Retry {
                at: self.queue.now() + d,
            },
            Next::Dead => Verdict::Dead,
            Next::Cancelled => Verdict::Cancelled,
        };
        let record = AttemptRecord::new(
            e.lease.attempt,
            outcome,
            started_at,
            duration,
            started_at.since(e.ready_at),
            error,
        );
        let task = self.engine.names[e.task.0 as usize].clone();
        let c = Completion {
            lease: e.lease,
            record,
            verdict,
        };
        self.recorder.push(c, Note { task });
    }

    /// Writes the waiting records, here or by the writer thread.
    fn flush_records(&mut self) -> Result<(), QueueError> {
        if !self.recorder.has_pending() || self.recorder.writing() || self.queue_down() {
            return Ok(());
        }
        let worker = &self.engine.config.worker_name;
        match self.recorder.flush(&self.queue, worker, &self.inbox) {
            Some(w) => self.on_written(w),
            None => Ok(()),
        }
    }

    /// A batch of records was written (or failed to be): the events for
    /// those recorded. A fenced record belongs to an attempt whose lease
    /// was taken over; the job's new attempt will record its own outcome.
    /// Events follow the records, so a sink that reads the queue finds
    /// what the event announces.
    fn on_written(&mut self, w: Written) -> Result<(), QueueError> {
        let done = self.recorder.written(w)?;
        if !self.events.is_empty() {
            let _order = self.events.lock();
            for ((c, note), r) in done.records.iter().zip(&done.notes).zip(done.results) {
                if r.is_ok() {
                    let at = self.queue.now();
                    self.events.emit(&emit::end_event(&note.task, c, at));
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
        if let Some((phase, step)) = self.phase.on_time(now, self.claims.is_empty()) {
            self.phase = phase;
            self.take_step(step);
        }
        r
    }

    /// A long-running worker rides out a queue it cannot reach: queue
    /// operations pause for a while and are tried again, records wait in
    /// the recorder, attempts go on. A run that ends when drained stops
    /// instead.
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

    /// A durable queue's heartbeats and rescues, when due.
    fn queue_timers(&mut self, now: Instant) -> Result<(), QueueError> {
        if !self.durable {
            return Ok(());
        }
        let due = self.timers.due(now, self.engine.config.lease);
        if due.heartbeat {
            self.heartbeat()?;
        }
        if due.rescue {
            let rescued = self.queue.rescue(Rescue::Expired)?;
            if !rescued.is_empty() {
                self.queue_idle = false;
                emit::requeued(&self.events, &*self.queue, &rescued, QueuedReason::Rescued);
            }
        }
        Ok(())
    }

    /// Renews the leases held, and (with none, too) the worker's
    /// registration as a live worker, if it has one.
    fn heartbeat(&mut self) -> Result<(), QueueError> {
        let held = self.claims.leases();
        let leases: Vec<Lease> = held.iter().map(|(_, l)| *l).collect();
        let reply = self
            .queue
            .heartbeat(self.worker(), &leases, self.engine.config.lease)?;
        for token in leases::tokens_of(&held, &reply.lost) {
            // Its outcome can no longer be recorded: stop it and forget it.
            if let Some(e) = self.claims.end(token) {
                if e.holds_slot() {
                    self.cancel_in_executor(e.lane, token);
                }
            }
        }
        for token in leases::tokens_of(&held, &reply.cancel_requested) {
            self.cancel_one(token);
        }
        Ok(())
    }

    /// Someone asked to cancel this job: a running attempt is stopped (and
    /// reports `cancelled`); one that has not started is recorded as
    /// cancelled without running.
    fn cancel_one(&mut self, token: u64) {
        let Some(e) = self.claims.get_mut(token) else {
            return;
        };
        e.cancel_requested = true;
        let (lane, with_executor) = (e.lane, e.holds_slot());
        if with_executor && self.cancel_in_executor(lane, token).is_none() {
            return;
        }
        let e = self.claims.end(token).expect("present");
        let now = self.queue.now();
        self.end_attempt(e, now, Duration::ZERO, Outcome::Cancelled);
    }

    // ---------------------------------------------------------------- shutdown

    fn on_interrupt(&mut self) {
        self.interrupted = true;
        let (phase, step) = self
            .phase
            .interrupt(Instant::now(), self.engine.config.grace);
        self.phase = phase;
        self.take_step(step);
    }

    fn take_step(&mut self, step: Step) {
        match step {
            Step::ReleaseUnstarted => {
                let mut tokens = self.claims.take_waiting();
                for ex in self.claims.lanes.executors() {
                    tokens.extend(ex.take_unstarted().into_iter().map(|a| a.token));
                }
                self.release(tokens);
            }
            Step::CancelRunning => {
                let mut rest = Vec::new();
                for ex in self.claims.lanes.executors() {
                    rest.extend(ex.cancel_running().into_iter().map(|a| a.token));
                }
                self.release(rest);
            }
            Step::GiveUp => self.give_up_running(),
        }
    }

    /// Gives claims that never started back to the queue.
    fn release(&mut self, tokens: Vec<u64>) {
        let leases: Vec<Lease> = tokens
            .into_iter()
            .filter_map(|t| self.claims.end(t))
            .map(|e| e.lease)
            .collect();
        if leases.is_empty() {
            return;
        }
        // A release that fails leaves the leases to expire and be rescued.
        let _ = self.queue.release(self.worker(), &leases);
        if self.durable {
            let ids: Vec<JobId> = leases.iter().map(|l| l.job).collect();
            emit::requeued(&self.events, &*self.queue, &ids, QueuedReason::Released);
        }
    }

    /// Cancelled attempts that never reported: recorded as cancelled here.
    fn give_up_running(&mut self) {
        let now = self.queue.now();
        for token in self.claims.tokens() {
            let e = self.claims.end(token).expect("listed");
            if e.holds_slot() {
                self.cancel_in_executor(e.lane, token);
            }
            let started = e.started_at().unwrap_or(now);
            self.end_attempt(e, started, now.since(started), Outcome::Cancelled);
        }
    }

    // ---------------------------------------------------------------- the end

    fn done(&mut self, closed: bool) -> Result<bool, QueueError> {
        if self.recorder.has_pending() || self.recorder.writing() {
            return Ok(false);
        }
        match self.phase {
            Phase::Running => {
                let drained = closed
                    && self.engine.config.exit_when_drained
                    && self.claims.is_empty()
                    && self.queue_idle;
                if !drained {
                    return Ok(false);
                }
                Ok(self.queue.counts()?.unfinished() == 0)
            }
            Phase::Draining { .. } | Phase::Cancelling { .. } => Ok(self.claims.is_empty()),
        }
    }

    /// How long the loop may sleep (see the module docs); `None`: until
    /// the inbox has news.
    fn wait_time(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let down = self
            .queue_down_until
            .map(|t| t.saturating_duration_since(now))
            .filter(|d| !d.is_zero());
        if self.recorder.has_pending() && !self.recorder.writing() && down.is_none() {
            return Some(Duration::ZERO);
        }
        if let Some(d) = down {
            // The queue is out of reach: nothing to ask it before then.
            return Some(d);
        }
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        if let Some(deadline) = self.phase.deadline() {
            at_most(deadline.saturating_duration_since(now));
            return wait;
        }
        if !self.queue_idle && self.claims.lanes.room() > 0 && self.claims.waiting() == 0 {
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
                // A worker of some tasks: what is due may be another
                // task's; it polls (and wakes on enqueues).
            }
        }
        if self.durable {
            at_most(leases::POLL);
            at_most(self.engine.config.lease / 3);
        }
        // A lane whose executor could not start, with jobs for it.
        for (lane, l) in self.claims.lanes.iter() {
            if let Some(t) = l.down_until {
                if self.claims.has_waiting(lane) {
                    at_most(t.saturating_duration_since(now));
                }
            }
        }
        if self.durable && wait.is_none_or(|w| w >= leases::POLL) {
            // Another process may enqueue at any time.
            self.queue_idle = false;
        }
        wait
    }

    /// After the loop: an interrupted in-memory run cancels what never ran.
    fn finish(&mut self) -> Result<(), QueueError> {
        if self.interrupted && !self.durable {
            let ids = self.queue.cancel_pending()?;
            emit::cancelled(&self.events, &*self.queue, &ids);
        }
        Ok(())
    }
}
