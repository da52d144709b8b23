//! The dispatcher: one thread that owns a run's state.
//!
//! One concept: the dispatcher's loop, composing the files of this folder.
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
//!   lists and slots; [`route`] makes an entry of a claimed job, and
//!   [`lanes`] sizes the lanes and starts their [`executors`]), the
//!   records not yet written ([`record`]), the timers ([`leases`]) and the
//!   phase ([`shutdown`]); [`emit`] builds its events. Only it claims,
//!   releases, heartbeats and rescues.
//! - The **writer thread** ([`writer`]), for a queue that takes writes
//!   beside claims, owns one batch of records at a time, from the hand-over
//!   to its return through the inbox; the dispatcher writes no record while
//!   a batch is with it.
//! - The **cut-off watchdog** ([`cutoff`]), for a durable queue, watches
//!   the attempts handed to executors and the time of the last renewal,
//!   and stops those whose leases it is time to give up; the dispatcher
//!   ends their entries.
//! - **Executors** own the attempts handed to them until they report an
//!   attempt's start and its end to the inbox (or give it back when asked).
//! - The **inbox** holds what others tell the dispatcher; the wake-up
//!   protocol is in [`crate::inbox`].
//!
//! # An entry's states
//!
//! A claimed job enters as `Waiting`, and then:
//!
//! - `Waiting` → `Submitted`: its lane has room and its task is under its
//!   concurrency limit ([`Claims::take_ready`]);
//! - `Submitted` → `Waiting`: its executor could not start
//!   ([`Claims::hand_back`]);
//! - `Submitted` → `Started`: the executor says the attempt started;
//! - any → ended ([`Claims::end`]): the attempt reported its end; a
//!   shutdown gave the claim back (waiting, or not started by its
//!   executor); its lease was lost; it was cancelled before it started; a
//!   shutdown gave up waiting for its report.
//!
//! `Waiting` holds the job's parameters and no slot; `Submitted` and
//! `Started` hold a running slot (the lane's `inflight`, the task's count),
//! which [`Claims::end`] gives back, whichever way the entry goes. An
//! executor that cannot start (no thread, pipe or process to be had) costs
//! no attempt: its attempts go back to the front of the lane's waiting
//! list, still claimed and unstarted, the lane is tried again after
//! [`lanes::EXEC_RETRY`], and meanwhile nothing more is claimed.
//!
//! # Flow control
//!
//! A claim of a rate-limited job says when the queue admitted its start
//! (`Claimed::admitted_at`): the job goes to its executor at once, past
//! every waiting one, and its record starts at that time; when it cannot
//! start at once (no free thread in its lane, its task at its limit in
//! this engine, its executor down) it goes back to the queue, and no claim
//! is made until an attempt ends (or [`leases::POLL`] has passed). The
//! jobs of rate-limited tasks (by their defaults or the run's limits, or
//! once a claim of theirs was admitted) are claimed apart from the others,
//! for no more than the free threads of their lanes: claimed with the
//! others, they would come in prefetched numbers and most would go back,
//! each having used a permit of its rate.
//!
//! A claimed job that took a slot of a concurrency limit
//! (`Claimed::slotted`) holds that slot, for every worker of the queue,
//! until its attempt ends. Once some task's jobs take slots (by its
//! defaults or the run's limits, or once a claim of its took one), claims
//! bring no more than [`lanes::SLOTTED_AHEAD`] attempts per thread of the
//! lanes of such tasks, in flight and waiting: prefetched by the
//! thousand like others, a worker would sit on the slots that idle
//! workers could run, and a claim would walk past ever more jobs of full
//! keys. Until a claim has brought a job, a queue that keeps limits is
//! asked for no more than that room either: the first claim cannot know
//! whether its jobs take slots. A mark its claims gave a task is dropped
//! once [`SLOTTED_FORGET`] of its claimed jobs in a row took no slot (its
//! limit was cleared, its jobs no longer carry a key), so that the claims
//! of a worker that once saw a limited job are not held small for good.
//!
//! A heartbeat's `paused` claims go back to the queue unless they have
//! started: waiting ones, and those their executor gives back unstarted.
//! Queues that keep limits are heartbeaten for that even when they are
//! not durable; such a heartbeat names only the claims that have not
//! started.
//!
//! When heartbeats fail, a lease that was last renewed (or claimed) five
//! sixths of a lease ago is given up as if it had been lost: its attempt
//! is stopped and its outcome never recorded, so that no attempt runs
//! past its lease while the queue's rescue frees its slot.
//!
//! When a queue operation neither answers nor fails (a connection whose
//! traffic is swallowed keeps the dispatcher's thread waiting in a
//! heartbeat, a claim or a record), the dispatcher cannot look at the
//! time; the cut-off watchdog, a thread that needs no queue, stops those
//! attempts at the same time instead, and the dispatcher gives their
//! entries up (unrecorded, counted lost once, their slots freed) at the
//! top of its next turn, before it reads their reports (see [`cutoff`]
//! for the protocol). A watchdog was chosen over heartbeats on a thread
//! and a connection of their own: those would still fail to reach a
//! queue that cannot be reached, and the give-up must not wait on any
//! queue operation; only the stop needs another thread, and it costs the
//! dispatcher one uncontended lock per attempt handed over and ended, on
//! durable queues only.
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
//! Claims also wait for the queue to take outcomes: no more are claimed
//! while [`record::UNWRITTEN_MAX`] ended attempts wait for their records to
//! be written (waiting, or with the writer), so that a queue slow to write
//! never has its backlog claimed and run ahead of its recorded ends.
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
//! shutdown deadline. On a queue that keeps limits, due jobs that a claim
//! passed over (held by limits) are asked for again after a short wait
//! that doubles, up to [`leases::POLL`], while they stay held.

mod claims;
mod cutoff;
mod emit;
mod entry;
mod executors;
mod lanes;
mod leases;
mod record;
mod route;
mod shutdown;
mod trace;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_core::{Outcome, OutcomeKind, QueuedReason, TaskIndex, Timestamp};
use runyard_exec::{AttemptReport, Executor, Spinner};
use runyard_queue::{Capability, Claimed, Durability, Lease, Queue, QueueError, Rescue};

use self::claims::{Batches, Claims};
use self::cutoff::Cutoff;
use self::entry::Entry;
use self::lanes::Lanes;
use self::leases::{Reach, Timers};
use self::record::{End, Recorder};
use self::route::Router;
use self::shutdown::{Phase, Step};
use crate::config::RunSettings;
use crate::events::Events;
use crate::inbox::{Inbox, InboxSink, Mail, Note, Written};
use crate::lane::{lane_for, Lane};
use crate::shared::{EngineInner, RunOutcome, Tally};
use crate::trace::ENGINE;

pub(crate) use self::trace::AttemptSpan;

/// The first wait before asking again for due jobs that limits held (it
/// doubles, up to [`leases::POLL`], while they stay held).
const HELD_POLL: Duration = Duration::from_millis(10);

/// A task marked as taking slots by its claims (not by its defaults or the
/// run's limits) loses the mark once this many of its claimed jobs in a
/// row took none: its claims are then prefetched again.
const SLOTTED_FORGET: usize = 256;

pub(crate) struct Dispatcher {
    engine: Arc<EngineInner>,
    /// This run's worker name and whether it ends once drained.
    settings: RunSettings,
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
    /// Queue operations pause while the queue cannot be reached.
    reach: Reach,
    rng: fastrand::Rng,
    durable: bool,
    /// Whether the queue is heartbeaten: a durable one, to renew leases;
    /// one that keeps limits, to hear of paused tasks.
    heartbeats: bool,
    /// When the last heartbeat that renewed every lease held was sent (or
    /// the run started): each lease runs a lease from then, or from its
    /// claim if later.
    renewed: Instant,
    /// Rate-limited claims had to be given back (no thread was free): no
    /// claim until an attempt ends, or until then. Each claim of such a
    /// job uses a permit of its rate.
    claims_held_until: Option<Instant>,
    /// Per task: whether it is rate-limited (by its defaults or the run's
    /// limits, or as its claims have shown).
    rated: Vec<bool>,
    /// Per task: whether its jobs take slots of concurrency limits (by its
    /// defaults or the run's limits, or as its claims have shown).
    slotted: Vec<bool>,
    /// Per task marked slotted as its claims have shown: the lane it was
    /// marked in, and how many of its claimed jobs in a row have taken no
    /// slot since (at [`SLOTTED_FORGET`] the mark is dropped). `None` for
    /// the tasks marked by their defaults or the run's limits, and for
    /// those not marked.
    slotted_learned: Vec<Option<(Lane, usize)>>,
    /// Some claim has brought a job (see the module docs, "Flow control").
    claimed_any: bool,
    /// Per task this engine claims: its lane, by its defaults.
    task_lanes: Vec<Option<Lane>>,
    /// No claim for the other lanes (see [`Dispatcher::claim_other_lanes`])
    /// before then: the last one found nothing.
    others_after: Option<Instant>,
    /// Whether the queue keeps limits (a claim may pass over due jobs).
    limits: bool,
    /// How long the loop last waited before asking again for due jobs
    /// that limits held; zero once a claim finds jobs.
    held_backoff: Duration,
    /// No lease is due to be given up before then (see
    /// [`leases::give_up_at`]).
    give_up_check: Instant,
    /// For a durable queue, what the cut-off watchdog shares (see
    /// [`cutoff`]).
    cutoff: Option<Arc<Cutoff>>,
    router: Router,
    /// Whether event sinks are present (and so might interrupt the run).
    events_may_interrupt: bool,
    /// The running attempts the meter was last told of.
    metered_running: usize,
}

impl Dispatcher {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        settings: RunSettings,
        queue: Arc<dyn Queue>,
        inbox: Arc<Inbox>,
        events: Events,
        tally: Arc<Tally>,
    ) -> Dispatcher {
        let lanes = Lanes::new(&engine.config.sizes(), engine.config.prefetch);
        let limits = engine
            .registry
            .iter()
            .map(|t| t.worker_concurrency())
            .collect();
        let caps = queue.capabilities();
        let durable = caps.durability() == Durability::Durable;
        let heartbeats = durable || caps.has(Capability::Limits);
        let now = Instant::now();
        let give_up_check = leases::give_up_at(now, now, engine.config.lease);
        let events_may_interrupt = !events.is_empty();
        let tasks = engine.names.len();
        let cutoff = durable.then(|| Arc::new(Cutoff::new(now, engine.config.lease)));
        let mut claims = Claims::new(lanes, limits);
        if let Some(c) = &cutoff {
            claims.watched_by(Arc::clone(c));
        }
        let mut d = Dispatcher {
            engine,
            settings,
            queue,
            inbox,
            events,
            tally,
            claims,
            recorder: Recorder::default(),
            runtime: None,
            phase: Phase::Running,
            interrupted: false,
            timers: Timers::new(now),
            queue_idle: false,
            reach: Reach::default(),
            rng: fastrand::Rng::new(),
            durable,
            heartbeats,
            renewed: now,
            give_up_check,
            cutoff,
            claims_held_until: None,
            limits: caps.has(Capability::Limits),
            rated: vec![false; tasks],
            slotted: vec![false; tasks],
            slotted_learned: vec![None; tasks],
            claimed_any: false,
            task_lanes: vec![None; tasks],
            others_after: None,
            held_backoff: Duration::ZERO,
            router: Router::default(),
            events_may_interrupt,
            metered_running: 0,
        };
        // The lanes of the tasks this engine claims, and the tasks
        // rate-limited or taking slots by their defaults or the run's
        // limits, in the lane their jobs run in unless they ask for
        // another mode.
        let claimed_here = |i: usize| {
            let names = &d.engine.names;
            (d.engine.config.tasks.as_ref()).is_none_or(|t| t.iter().any(|n| *n == names[i]))
        };
        let claimed_here: Vec<bool> = (0..tasks).map(claimed_here).collect();
        for i in (0..tasks).filter(|i| claimed_here[*i]) {
            let def = d.engine.registry.task(TaskIndex(i as u32));
            if let Ok(lane) = lane_for(d.engine.config.mode, def, def.isolate()) {
                d.task_lanes[i] = Some(lane);
            }
        }
        for i in (0..tasks).filter(|i| claimed_here[*i]) {
            let defaults = &d.engine.defaults[i];
            let (rated, slotted) = (
                defaults.rate.is_some(),
                defaults.queue_concurrency.is_some(),
            );
            if !d.limits || !(rated || slotted) {
                continue;
            }
            let def = d.engine.registry.task(TaskIndex(i as u32));
            if let Ok(lane) = lane_for(d.engine.config.mode, def, def.isolate()) {
                if rated {
                    d.mark_rated(TaskIndex(i as u32), lane);
                }
                if slotted {
                    d.mark_slotted(TaskIndex(i as u32), lane);
                }
            }
        }
        d
    }

    fn worker(&self) -> &str {
        &self.settings.worker_name
    }

    pub(crate) fn run(mut self) -> RunOutcome {
        let start = Instant::now();
        let mut mail = Mail::default();
        let mut seen_interrupts = 0;
        let mut spinner = Spinner::default();
        let watchdog = (self.cutoff.as_ref()).and_then(|c| c.start(Arc::clone(&self.inbox)));
        let error = loop {
            if self.inbox.take(&mut mail) {
                self.queue_idle = false;
            }
            // Before the reports taken: those of attempts the watchdog
            // stopped are not recorded.
            self.give_up_stopped();
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
            self.meter_running();
            if wait != Some(Duration::ZERO) {
                self.inbox
                    .wait(&mut spinner, wait, seen_interrupts, mail.closed);
            }
        };
        let error = error.or_else(|| self.finish().err());
        if let Some(c) = &self.cutoff {
            c.close();
        }
        if let Some(t) = watchdog {
            let _ = t.join();
        }
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

    /// Tells the meter how many attempts run, when that changed.
    fn meter_running(&mut self) {
        if let Some(m) = self.settings.meter.get() {
            let n = self.claims.started_count();
            if n != self.metered_running {
                self.metered_running = n;
                m.running(n);
            }
        }
    }

    /// The lane's executor, started on first use; `None` when it cannot
    /// start (see the module docs).
    fn executor(&mut self, lane: Lane) -> Option<Arc<dyn Executor>> {
        let (engine, runtime, tally) = (&self.engine, &mut self.runtime, &self.tally);
        let cutoff = &self.cutoff;
        let sink = Arc::new(InboxSink {
            inbox: Arc::clone(&self.inbox),
            // A durable queue is told when claims start (see `on_started`),
            // and so are a subscriber of `started` events and a meter.
            wants_started: !self.events.is_empty()
                || self.durable
                || self.settings.meter.is_some()
                || trace::wants_started(),
        });
        self.claims.lanes[lane].executor(lane, Instant::now(), |threads| {
            let exec = executors::start(lane, threads, engine, sink, runtime)?;
            tally.add_executor(&exec);
            if let Some(c) = cutoff {
                c.add_executor(lane, &exec);
            }
            Ok(exec)
        })
    }

    // ---------------------------------------------------------------- claiming

    fn claim(&mut self) -> Result<(), QueueError> {
        if self.queue_idle || self.queue_down() || self.claims_held(Instant::now()) {
            return Ok(());
        }
        // While the queue writes outcomes more slowly than it hands out
        // jobs, no more are claimed than the unwritten records leave room
        // for: a claim waits for a written batch.
        let unwritten = self.recorder.unwritten();
        let mut want = self
            .claims
            .claim_size()
            .min(record::UNWRITTEN_MAX.saturating_sub(unwritten));
        if self.limits && !self.claimed_any {
            // (No lane of its own tasks: the claim is not held back, its
            // jobs are routed or refused as they come.)
            let mut used = [false; 4];
            for lane in self.task_lanes.iter().flatten() {
                used[lane.index()] = true;
            }
            let first = self.claims.lanes.first_room(&used);
            if first > 0 {
                want = want.min(first);
            }
        }
        if want == 0 {
            return Ok(());
        }
        let asked = Instant::now();
        self.timers.polled(asked);
        let (claimed, asked_for) = self.claim_batch(want)?;
        if asked_for > 0 {
            self.claims.lanes.claimed_in(asked.elapsed());
        }
        if asked_for == 0 {
            // The lanes have room, but not for the jobs of limited tasks
            // (their threads are busy): nothing is asked until an attempt
            // ends, or a poll's time has passed.
            self.claims_held_until = Some(asked + leases::POLL);
            return Ok(());
        }
        if claimed.len() < asked_for {
            self.queue_idle = true;
        }
        if !claimed.is_empty() {
            self.held_backoff = Duration::ZERO;
            self.claimed_any = true;
            if let Some(m) = self.settings.meter.get() {
                m.claimed(claimed.len());
            }
        }
        let now = Instant::now();
        let mut batches = Batches::default();
        let mut unstartable = Vec::new();
        for c in claimed {
            self.route(c, asked, now, &mut batches, &mut unstartable);
        }
        self.submit(batches);
        if !unstartable.is_empty() {
            // Claimed again at once, they would be given back again: the
            // next claim waits for an attempt's end (or a poll's time).
            self.claims_held_until = Some(Instant::now() + leases::POLL);
            self.release_entries(unstartable);
        }
        Ok(())
    }

    /// Claims up to `want` jobs; returns them and how many were asked for.
    /// Jobs of rate-limited tasks are claimed apart, for no more than the
    /// free threads of their lanes; once some task's jobs take concurrency
    /// slots, the others are claimed for no more than the slotted room of
    /// the lanes (see the module docs).
    fn claim_batch(&mut self, want: usize) -> Result<(Vec<Claimed>, usize), QueueError> {
        let cfg = &self.engine.config;
        let (worker, lease) = (&self.settings.worker_name, cfg.lease);
        let lanes = &self.claims.lanes;
        let others_room = if self.slotted.contains(&true) {
            lanes.slotted_room()
        } else {
            usize::MAX
        };
        if !self.rated.contains(&true) {
            let w = want.min(others_room);
            if w == 0 {
                return self.claim_other_lanes(want);
            }
            let claimed = self
                .queue
                .claim_tasks(worker, w, lease, cfg.tasks.as_deref())?;
            return Ok((claimed, w));
        }
        let names = &self.engine.names;
        let allowed = |i: usize| {
            cfg.tasks
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| *n == names[i]))
        };
        let (mut rated, mut others) = (Vec::new(), Vec::new());
        for (i, name) in names.iter().enumerate().filter(|(i, _)| allowed(*i)) {
            if self.rated[i] {
                rated.push(name.clone());
            } else {
                others.push(name.clone());
            }
        }
        let rated_want = lanes.rated_room().min(want);
        let mut claimed = Vec::new();
        if rated_want > 0 && !rated.is_empty() {
            claimed = self
                .queue
                .claim_tasks(worker, rated_want, lease, Some(&rated))?;
        }
        let mut asked_for = rated_want;
        let others_want = (want - claimed.len()).min(others_room);
        if others_want > 0 && !others.is_empty() {
            asked_for += others_want;
            claimed.extend(
                self.queue
                    .claim_tasks(worker, others_want, lease, Some(&others))?,
            );
        } else if others_room == 0 && want > claimed.len() {
            let (more, n) = self.claim_other_lanes(want - claimed.len())?;
            asked_for += n;
            claimed.extend(more);
        }
        Ok((claimed, asked_for))
    }

    /// While the lanes of tasks whose jobs take slots are full, the jobs of
    /// the other tasks this engine claims, for the free threads of their
    /// lanes (a claim without a filter would bring more of the first).
    /// One that finds nothing is not made again for a poll's time.
    /// Asked-for is what it brought, so that an empty one waits for an
    /// attempt's end.
    fn claim_other_lanes(&mut self, want: usize) -> Result<(Vec<Claimed>, usize), QueueError> {
        let now = Instant::now();
        if self.others_after.is_some_and(|t| now < t) {
            return Ok((Vec::new(), 0));
        }
        let lanes = &self.claims.lanes;
        let free = |l: Lane| !lanes[l].slotted && lanes[l].free_threads() > 0;
        let mut tasks = Vec::new();
        let mut seen = [false; 4];
        let mut room = 0;
        for (i, lane) in self.task_lanes.iter().enumerate() {
            let Some(lane) = *lane else { continue };
            if self.slotted[i] || self.rated[i] || !free(lane) {
                continue;
            }
            tasks.push(self.engine.names[i].clone());
            if !std::mem::replace(&mut seen[lane.index()], true) {
                room += lanes[lane].free_threads();
            }
        }
        let w = want.min(room).min(lanes::SLOTTED_AHEAD);
        if w == 0 || tasks.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let cfg = &self.engine.config;
        let claimed =
            (self.queue).claim_tasks(&self.settings.worker_name, w, cfg.lease, Some(&tasks))?;
        if claimed.is_empty() {
            self.others_after = Some(now + leases::POLL);
        }
        let n = claimed.len();
        Ok((claimed, n))
    }

    /// Marks `task` (in `lane`) as one whose jobs take concurrency slots:
    /// they are claimed for the lane's slotted room only.
    fn mark_slotted(&mut self, task: TaskIndex, lane: Lane) {
        self.slotted[task.0 as usize] = true;
        self.claims.lanes[lane].slotted = true;
    }

    /// Drops the mark of `task`, whose claims showed it takes slots but
    /// whose last [`SLOTTED_FORGET`] claimed jobs took none; its lane stays
    /// marked while another task marked in it is.
    fn forget_slotted(&mut self, task: TaskIndex) {
        let t = task.0 as usize;
        let Some((lane, _)) = self.slotted_learned[t].take() else {
            return;
        };
        self.slotted[t] = false;
        let by_defaults = |i: usize| self.slotted[i] && self.slotted_learned[i].is_none();
        let still = (0..self.slotted.len()).any(|i| {
            self.slotted_learned[i].is_some_and(|(l, _)| l == lane)
                || (by_defaults(i) && self.task_lanes[i] == Some(lane))
        });
        self.claims.lanes[lane].slotted = still;
    }

    /// Marks `task` (in `lane`) as rate-limited: its jobs are claimed for
    /// free threads only.
    fn mark_rated(&mut self, task: TaskIndex, lane: Lane) {
        self.rated[task.0 as usize] = true;
        self.claims.lanes[lane].rated = true;
    }

    /// Whether claims wait for an attempt's end (see `claims_held_until`).
    fn claims_held(&mut self, now: Instant) -> bool {
        match self.claims_held_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.claims_held_until = None;
                false
            }
            None => false,
        }
    }

    /// Takes a claimed job into its lane, or records it as refused. A
    /// rate-limited job (admitted to start at its claim) goes to its
    /// executor at once, or, when it cannot start now, into `unstartable`
    /// to be given back: it never waits in this worker's hands.
    fn route(
        &mut self,
        c: Claimed,
        asked: Instant,
        now: Instant,
        batches: &mut Batches,
        unstartable: &mut Vec<Entry>,
    ) {
        let slotted = c.slotted;
        let routed = self.router.route(&self.engine, c, asked).map(|mut e| {
            let task = &self.engine.names[e.task.0 as usize];
            e.span = trace::claimed(&e, task, &self.settings.worker_name);
            e
        });
        match routed {
            Ok(e) if e.admitted_at().is_some() => {
                let (lane, task) = (e.lane, e.task);
                self.mark_rated(task, lane);
                let startable =
                    self.claims.can_start_now(lane, task, now) && self.executor(lane).is_some();
                if startable {
                    batches[lane.index()].push(self.claims.insert_started_now(e));
                } else {
                    unstartable.push(e);
                }
            }
            Ok(e) => {
                let lane = e.lane;
                let t = e.task.0 as usize;
                if slotted && !self.slotted[t] {
                    self.mark_slotted(e.task, lane);
                    self.slotted_learned[t] = Some((lane, 0));
                } else if let Some((_, since)) = &mut self.slotted_learned[t] {
                    *since = if slotted { 0 } else { *since + 1 };
                    if *since >= SLOTTED_FORGET {
                        self.forget_slotted(e.task);
                    }
                }
                self.claims.insert(e);
                self.claims.take_ready(lane, now, batches);
            }
            Err(r) => {
                trace::refused(r.lease.job, &r.task, r.lease.attempt, &r.message);
                if let Some(m) = self.settings.meter.get() {
                    m.finished(&r.task, OutcomeKind::Failed, Duration::ZERO);
                }
                let c = record::refusal(r.lease, r.ready_at, self.queue.now(), r.message);
                let note = Note {
                    task: r.task,
                    delay: Duration::ZERO,
                    schedule: None,
                    span: None,
                };
                self.recorder.push(c, note);
            }
        }
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
                // A rate-limited attempt starts when the queue admitted it.
                let at = self
                    .claims
                    .get(token)
                    .and_then(|e| e.admitted_at())
                    .unwrap_or(at);
                let Some(e) = self.claims.started(token, at) else {
                    continue;
                };
                if self.durable && !done.contains(&token) {
                    marks.push((e.lease, at));
                }
                trace::started(e, emit::ms(at.since(e.ready_at)));
                if let Some(m) = self.settings.meter.get() {
                    m.started(&self.engine.names[e.task.0 as usize], at.since(e.ready_at));
                }
                if !self.events.is_empty() {
                    let task = &self.engine.names[e.task.0 as usize];
                    emit::running(&self.events, task, e, at);
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
        if !finished.is_empty() {
            self.claims_held_until = None;
        }
        for f in finished {
            // `None`: an attempt already accounted for (lost lease, given up).
            if let Some(e) = self.claims.end(f.token) {
                self.claims.lanes.ran(e.lane, f.duration);
                let end = End {
                    started_at: e.admitted_at().unwrap_or(f.started_at),
                    duration: f.duration,
                    outcome: f.outcome,
                };
                self.end_attempt(e, end);
            }
        }
    }

    /// Decides what comes after an attempt (see [`record::next`]) and
    /// queues its record.
    fn end_attempt(&mut self, e: Entry, end: End) {
        if end.outcome.kind() != OutcomeKind::Succeeded {
            self.tally.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(m) = self.settings.meter.get() {
            let task = &self.engine.names[e.task.0 as usize];
            m.finished(task, end.outcome.kind(), end.duration);
        }
        let queue = &self.queue;
        let (c, delay) = record::completion(&e, end, self.durable, self.rng.f64(), || queue.now());
        let task = self.engine.names[e.task.0 as usize].clone();
        let (schedule, span) = (e.schedule, e.span);
        self.recorder.push(
            c,
            Note {
                task,
                delay,
                schedule,
                span,
            },
        );
    }

    /// Writes the waiting records, here or by the writer thread.
    fn flush_records(&mut self) -> Result<(), QueueError> {
        if !self.recorder.has_pending() || self.recorder.writing() || self.queue_down() {
            return Ok(());
        }
        let worker = &self.settings.worker_name;
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
        trace::ends(&done);
        emit::ends(&self.events, &*self.queue, &done);
        self.queue_idle = false;
        Ok(())
    }

    // ---------------------------------------------------------------- timers

    fn on_timers(&mut self) -> Result<(), QueueError> {
        let now = Instant::now();
        self.give_up_unrenewed(now);
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
        let rides_out = !self.settings.exit_when_drained;
        self.reach.ride_out(e, Instant::now(), rides_out)
    }

    /// Whether queue operations are paused (see `ride_out`).
    fn queue_down(&mut self) -> bool {
        self.reach.is_down(Instant::now())
    }

    /// A durable queue's heartbeats, rescues and polls, when due (and the
    /// heartbeats of a queue that keeps limits).
    fn queue_timers(&mut self, now: Instant) -> Result<(), QueueError> {
        if !self.heartbeats {
            return Ok(());
        }
        let due = self.timers.due(now, self.timer_lease(), self.queue_idle);
        if due.poll && self.durable {
            self.queue_idle = false;
        }
        if due.heartbeat {
            if let Err(e) = self.heartbeat() {
                self.timers.heartbeat_failed(Instant::now());
                return Err(e);
            }
        }
        if due.rescue && self.durable {
            let rescued = self.queue.rescue(Rescue::Expired)?;
            if !rescued.ids.is_empty() {
                self.queue_idle = false;
                trace::rescued(&rescued.ids);
                if let Some(m) = self.settings.meter.get() {
                    m.rescued(rescued.ids.len());
                }
                emit::requeued(
                    &self.events,
                    &*self.queue,
                    &rescued.ids,
                    QueuedReason::Rescued,
                );
                emit::cascade(&self.events, &*self.queue, &rescued.cascade);
            }
        }
        Ok(())
    }

    /// The lease the timers are kept by: the engine's, or for an
    /// in-process queue (heartbeaten only to hear of pauses) at most 3 s,
    /// so that a paused task's claims go back within a second.
    fn timer_lease(&self) -> Duration {
        let lease = self.engine.config.lease;
        if self.durable {
            lease
        } else {
            lease.min(Duration::from_secs(3))
        }
    }

    /// Renews the leases held, and (with none, too) the worker's
    /// registration as a live worker, if it has one.
    fn heartbeat(&mut self) -> Result<(), QueueError> {
        // Stopped attempts are not renewed.
        self.give_up_stopped();
        // An in-process queue's leases do not expire: it is heartbeaten to
        // hear of paused tasks, and only claims that have not started go
        // back for a pause (a hundred thousand running attempts are not
        // sent each time).
        let held = if self.durable {
            self.claims.leases()
        } else {
            self.claims.unstarted_leases()
        };
        let leases: Vec<Lease> = held.iter().map(|(_, l)| *l).collect();
        let sent = Instant::now();
        let reply = self
            .queue
            .heartbeat(self.worker(), &leases, self.engine.config.lease);
        // The heartbeat may have waited past leases' give-up times: what
        // the watchdog stopped meanwhile is given up before the reply is
        // applied to the entries.
        self.give_up_stopped();
        let reply = reply?;
        self.give_back_paused(leases::tokens_of(&held, &reply.paused));
        if !self.durable {
            // An in-process queue's leases are not held against other
            // workers: only its pauses are news.
            return Ok(());
        }
        self.renewed = sent;
        if let Some(c) = &self.cutoff {
            c.renewed(sent);
        }
        self.give_up_check = leases::give_up_at(sent, sent, self.engine.config.lease);
        for token in leases::tokens_of(&held, &reply.lost) {
            self.lose(token);
        }
        for token in leases::tokens_of(&held, &reply.cancel_requested) {
            // Not started: recorded as cancelled without running.
            if let Some(e) = self.claims.cancel(token) {
                let end = End {
                    started_at: self.queue.now(),
                    duration: Duration::ZERO,
                    outcome: Outcome::Cancelled,
                };
                self.end_attempt(e, end);
            }
        }
        Ok(())
    }

    /// Claims of a paused task: those that have not started here go back
    /// to the queue (waiting ones, and those their executor gives back
    /// unstarted); started attempts finish.
    fn give_back_paused(&mut self, tokens: Vec<u64>) {
        if tokens.is_empty() {
            return;
        }
        let paused: rustc_hash::FxHashSet<u64> = tokens.iter().copied().collect();
        let mut back = Vec::new();
        let mut lanes = [false; 4];
        for t in tokens {
            match self.claims.get(t) {
                Some(e) if !e.holds_slot() => back.push(t),
                Some(e) if e.started_at().is_none() => lanes[e.lane.index()] = true,
                _ => {}
            }
        }
        for lane in Lane::ALL.into_iter().filter(|l| lanes[l.index()]) {
            let Some(ex) = self.claims.lanes[lane].exec.clone() else {
                continue;
            };
            let (mine, others): (Vec<_>, Vec<_>) = ex
                .take_unstarted()
                .into_iter()
                .partition(|a| paused.contains(&a.token));
            back.extend(mine.iter().map(|a| a.token));
            if !others.is_empty() {
                ex.submit(others);
            }
        }
        self.release(back);
    }

    /// Stops the attempts whose leases could not be renewed (heartbeats
    /// failed) and would expire within a sixth of the lease: as for a lost
    /// lease, their outcome is not recorded, and the queue's rescue frees
    /// their slots once the leases expire, so that no moment holds more
    /// attempts than a limit.
    fn give_up_unrenewed(&mut self, now: Instant) {
        if !self.durable || now < self.give_up_check {
            return;
        }
        let (renewed, lease) = (self.renewed, self.engine.config.lease);
        let mut next = leases::give_up_at(now, now, lease);
        let mut lost = Vec::new();
        for (token, claimed_at) in self.claims.claim_times() {
            let at = leases::give_up_at(claimed_at, renewed, lease);
            if at <= now {
                lost.push(token);
            } else {
                next = next.min(at);
            }
        }
        self.give_up_check = next;
        if lost.is_empty() {
            return;
        }
        tracing::warn!(
            target: ENGINE,
            "{} lease(s) could not be renewed (the queue did not answer heartbeats) and would \
             soon expire: their attempts are stopped, their outcomes not recorded, and their \
             jobs go back to the queue once the leases expire",
            lost.len()
        );
        for token in lost {
            self.lose(token);
        }
    }

    /// The attempts the cut-off watchdog stopped (their leases could not
    /// be renewed in time while a queue operation waited): given up as
    /// lost, once, if still held under the lease the watchdog stopped.
    fn give_up_stopped(&mut self) {
        let Some(c) = &self.cutoff else { return };
        for (token, lease) in c.take_stopped() {
            let Some(e) = self.claims.get(token).filter(|e| e.lease == lease) else {
                continue;
            };
            trace::lost(e);
            if let Some(m) = self.settings.meter.get() {
                m.lost(1);
            }
            // Already stopped: only the entry ends.
            self.claims.end(token);
        }
    }

    /// A lease lost (or given up): its attempt is stopped, its outcome
    /// never recorded.
    fn lose(&mut self, token: u64) {
        if let Some(e) = self.claims.get(token) {
            trace::lost(e);
            if let Some(m) = self.settings.meter.get() {
                m.lost(1);
            }
        }
        self.claims.lose(token);
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
                let tokens = self.claims.take_unstarted();
                self.release(tokens);
            }
            Step::CancelRunning => {
                let tokens = self.claims.stop_running();
                self.release(tokens);
            }
            Step::GiveUp => self.give_up_running(),
        }
    }

    /// Gives claims that never started back to the queue.
    fn release(&mut self, tokens: Vec<u64>) {
        let ended: Vec<Entry> = tokens
            .into_iter()
            .filter_map(|t| self.claims.end(t))
            .collect();
        self.release_entries(ended);
    }

    /// Gives back the claims of entries already ended here (unstarted).
    fn release_entries(&mut self, ended: Vec<Entry>) {
        if ended.is_empty() {
            return;
        }
        let leases: Vec<Lease> = ended.iter().map(|e| e.lease).collect();
        ended.iter().for_each(trace::released);
        // A release that fails leaves the leases to expire and be rescued.
        let _ = self.queue.release(self.worker(), &leases);
        if self.durable && !self.events.is_empty() {
            let names = &self.engine.names;
            let released: Vec<_> = ended
                .iter()
                .map(|e| (e, names[e.task.0 as usize].as_ref()))
                .collect();
            let _order = self.events.lock();
            emit::released(&self.events, &released, self.queue.now());
        }
    }

    /// Cancelled attempts that never reported: recorded as cancelled here.
    fn give_up_running(&mut self) {
        // Those the watchdog stopped are lost, not cancelled.
        self.give_up_stopped();
        let now = self.queue.now();
        for e in self.claims.end_all() {
            let started = e.started_at().unwrap_or(now);
            let end = End {
                started_at: started,
                duration: now.since(started),
                outcome: Outcome::Cancelled,
            };
            self.end_attempt(e, end);
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
                    && self.settings.exit_when_drained
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
        let down = self.reach.remaining(now);
        if self.recorder.has_pending() && !self.recorder.writing() && down.is_none() {
            return Some(Duration::ZERO);
        }
        if self.durable && !self.claims.is_empty() {
            // Leases that cannot be renewed are given up on time, even
            // while the queue is out of reach.
            let d = self.give_up_check.saturating_duration_since(now);
            if down.is_some_and(|x| d < x) {
                return Some(d);
            }
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
        let held = self.claims_held(now);
        if let Some(t) = self.claims_held_until {
            at_most(t.saturating_duration_since(now));
        }
        if !self.queue_idle && !held && self.claims.lanes.room() > 0 && self.claims.waiting() == 0 {
            return Some(Duration::ZERO);
        }
        if self.queue_idle {
            if let Ok(Some(due)) = self.queue.next_due() {
                let d = due.since(self.queue.now());
                if !d.is_zero() {
                    at_most(d);
                } else if self.limits {
                    // Due jobs the claim passed over are held by limits
                    // (or a pause): an attempt's end here wakes the loop,
                    // and a slot freed or a rate's window passed elsewhere
                    // is found by asking again, less often while nothing
                    // comes.
                    self.held_backoff = (self.held_backoff * 2).clamp(HELD_POLL, leases::POLL);
                    self.queue_idle = false;
                    at_most(self.held_backoff);
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
            if !self.claims.is_empty() {
                at_most(self.give_up_check.saturating_duration_since(now));
            }
        }
        if self.heartbeats {
            let lease = self.timer_lease();
            let idle = self.queue_idle && self.durable;
            at_most(self.timers.until_next(now, lease, idle));
        }
        // A lane whose executor could not start, with jobs for it.
        if let Some(t) = self.claims.lanes.next_retry() {
            at_most(t.saturating_duration_since(now));
        }
        wait
    }

    /// After the loop: an interrupted in-memory run cancels what never ran.
    fn finish(&mut self) -> Result<(), QueueError> {
        if self.interrupted && !self.durable {
            let ids = self.queue.admin()?.cancel_pending()?;
            emit::cancelled(&self.events, &*self.queue, &ids);
        }
        Ok(())
    }
}
