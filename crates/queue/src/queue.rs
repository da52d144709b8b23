//! The core queue trait: the worker protocol every backend (memory, SQLite,
//! PostgreSQL) implements, and the types it speaks in. What a backend may
//! have beyond it is in `capability.rs` (job features), `admin.rs` and
//! `inspect.rs` (capability traits).
//!
//! # Lifecycle and fencing
//!
//! `enqueue` puts a job in `queued` (or `scheduled` when it has a future
//! run-at). `claim` moves ready jobs to `running` under a lease owned by a
//! named worker, bumps the job's attempt number and its claim number; the
//! claim number is the fencing token. It only grows: a claim that is undone
//! (released, or rescued before it started) gives its attempt number back,
//! so the next claim may carry the same attempt number, but never the same
//! claim number. Every later call about that attempt (`started`,
//! `heartbeat`, `complete`, `release`) carries a [`Lease`] = (job, attempt,
//! claim) and is refused when the job is no longer running under that
//! claim: a worker whose lease was taken over can never record an outcome,
//! even when the job was claimed again under the same attempt number. A
//! worker tells the queue when a claimed attempt actually starts
//! (`started`): claims are made ahead of time, and one that never started
//! did not cost an attempt. `rescue` puts running jobs whose lease expired
//! (or whose worker is known dead) back to `queued`: an attempt that had
//! started is recorded as `crashed` (and the job is `dead` when that was
//! its last attempt); a claim that had not started is simply undone.
//!
//! # Submitting
//!
//! `enqueue` (and `enqueue_async`, for async code) first checks what each
//! job needs ([`NewJob::needs`]) against the queue's [`Capabilities`], in
//! [`admit`]: a batch with a job the queue cannot keep is refused whole,
//! naming the capability, before the backend sees it. Backends implement
//! `insert` and `insert_async`, which take admitted jobs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    After, AttemptRecord, JobId, JobLimits, JobParams, JobSettings, Output, Parent, RunIf, Tick,
    Timestamp, Unique,
};

use crate::admin::Admin;
use crate::capability::{Capabilities, Capability};
use crate::counts::Counts;
use crate::error::{QueueError, QueueErrorKind};
use crate::inspect::Inspect;
use crate::limits::FlowControl;
use crate::schedules::Schedules;
use crate::workers::{NameTaken, PublishedTask, WorkerInfo};

pub use runyard_core::TaskName;

/// A job to enqueue, with every default already applied.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The task.
    pub task: TaskName,
    /// Its parameters.
    pub params: JobParams,
    /// Its settings (shared between copies).
    pub settings: Arc<JobSettings>,
    /// Not before this time.
    pub run_at: Option<Timestamp>,
    /// A job whose key is already in the queue (in any state) is not added again.
    pub idempotency_key: Option<String>,
    /// Its name in its workflow (kept, shown, and named as the cause of
    /// the cancellations its end brings).
    pub name: Option<String>,
    /// The jobs it is after: it is `blocked` until they have ended (see
    /// [`RunIf`]). A [`Parent::Batch`] names an earlier job of the same
    /// batch.
    pub after: Vec<After>,
    /// When it runs, once its parents have ended.
    pub run_if: RunIf,
    /// Its unique key: while a job with the key waits, this one is not
    /// added (see [`Unique`] and `docs/backends.md` §8).
    pub unique: Option<Unique>,
    /// The limits it carries and its fairness key (see
    /// [`runyard_core::JobLimits`]).
    pub limits: JobLimits,
    /// For a job a schedule made: the schedule and the tick (set by the
    /// queue when it fires a schedule; kept and shown).
    pub schedule: Option<Tick>,
}

impl NewJob {
    /// A job of `task` with these parameters and settings, and nothing
    /// else: no run-at, key, name or parents.
    pub fn new(task: TaskName, params: JobParams, settings: Arc<JobSettings>) -> NewJob {
        NewJob {
            task,
            params,
            settings,
            run_at: None,
            idempotency_key: None,
            name: None,
            after: Vec::new(),
            run_if: RunIf::Success,
            unique: None,
            limits: JobLimits::default(),
            schedule: None,
        }
    }
}

impl NewJob {
    /// Whether the job takes part in a workflow (it has a name or parents):
    /// a backend stores such jobs the linked way, the others as before.
    pub fn is_linked(&self) -> bool {
        self.name.is_some() || !self.after.is_empty()
    }

    /// The capabilities a queue needs to keep this job.
    pub fn needs(&self) -> impl Iterator<Item = Capability> {
        [
            self.run_at.is_some().then_some(Capability::RunAt),
            self.idempotency_key
                .is_some()
                .then_some(Capability::IdempotencyKeys),
            (!self.after.is_empty()).then_some(Capability::Dependencies),
            self.unique.is_some().then_some(Capability::UniqueJobs),
            (!self.limits.is_empty()).then_some(Capability::Limits),
        ]
        .into_iter()
        .flatten()
    }
}

/// Checks that a queue with `caps` can keep every job of a batch: the one
/// place a job is refused for what it needs. It also checks that each
/// [`Parent::Batch`] names an earlier job of the batch.
pub fn admit(caps: &Capabilities, jobs: &[NewJob]) -> Result<(), QueueError> {
    for (i, j) in jobs.iter().enumerate() {
        if let Some(p) = j.after.iter().find_map(|a| match a.parent {
            Parent::Batch(p) if p >= i => Some(p),
            _ => None,
        }) {
            return Err(QueueError::new(
                QueueErrorKind::InvalidInput,
                format!(
                    "job {} of the batch is after job {} of it, which does not come before it; nothing was enqueued",
                    i + 1,
                    p + 1
                ),
            ));
        }
        if j.unique.is_some() && !j.after.is_empty() {
            return Err(QueueError::new(
                QueueErrorKind::InvalidInput,
                format!(
                    "job {} of the batch (task `{}`) has both a unique key and parents: a job \
                     after others cannot be unique (give the key to a job before it); \
                     nothing was enqueued",
                    i + 1,
                    j.task
                ),
            ));
        }
        let l = &j.limits;
        if l.task_concurrency == Some(0) || matches!(l.concurrency_key, Some((_, Some(0)))) {
            return Err(QueueError::new(
                QueueErrorKind::InvalidInput,
                format!(
                    "job {} of the batch (task `{}`) has a concurrency limit of 0 (a limit is \
                     at least 1; to stop a task, pause it); nothing was enqueued",
                    i + 1,
                    j.task
                ),
            ));
        }
        if let Some(c) = j.needs().find(|c| !caps.has(*c)) {
            let which = if jobs.len() == 1 {
                String::new()
            } else {
                format!(" (job {} of {} in the batch)", i + 1, jobs.len())
            };
            return Err(QueueError::new(
                QueueErrorKind::Unsupported,
                format!(
                    "this queue does not keep {c}: a job of task `{}` needs them{which}; nothing was enqueued",
                    j.task
                ),
            ));
        }
    }
    Ok(())
}

/// What `enqueue` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Added with this id.
    New(JobId),
    /// Not added: a job with the same idempotency key exists, or one with
    /// the same unique key waits (or succeeded within `unique_for`) and
    /// was kept as it is.
    Duplicate(JobId),
    /// Not added: the waiting job with the same unique key took this one's
    /// parameters and run-at (`on_conflict = replace`).
    Replaced(JobId),
}

impl Enqueued {
    /// The job's id, new or existing.
    pub fn id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) | Enqueued::Replaced(id) => id,
        }
    }

    /// Whether it names a job that was already in the queue.
    pub fn is_existing(self) -> bool {
        !matches!(self, Enqueued::New(_))
    }
}

/// A claimed job: one attempt to run.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job.
    pub id: JobId,
    /// This attempt's number (from 1), as records show it.
    pub attempt: u32,
    /// This claim's number: the fencing token (see the module's opening).
    pub claim: u64,
    /// The task.
    pub task: TaskName,
    /// The parameters.
    pub params: JobParams,
    /// The settings.
    pub settings: JobSettings,
    /// When the job became ready to run (enqueued, or its run-at).
    pub ready_at: Timestamp,
    /// Its parents' outputs (see [`runyard_core::Parents`]); `null` for a
    /// job that is after none.
    pub parents: Output,
    /// For a job under a rate limit: when the queue admitted its start (the
    /// claim, on the queue's clock). Its attempt's record starts at this
    /// time: the rate counts these (see `docs/backends.md` §8).
    pub admitted_at: Option<Timestamp>,
    /// Whether the claim took a slot of a concurrency limit (its task's or
    /// a key's) for this job: the slot is held, and other workers cannot
    /// use it, until the attempt ends. A worker claims such jobs for the
    /// threads it can start them on, not ahead (see `docs/backends.md` §8).
    pub slotted: bool,
    /// For a job a schedule made: the schedule and the tick.
    pub schedule: Option<Tick>,
}

impl Claimed {
    /// The lease this claim holds.
    pub fn lease(&self) -> Lease {
        Lease {
            job: self.id,
            attempt: self.attempt,
            claim: self.claim,
        }
    }
}

/// A worker's hold on one attempt of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// The attempt number (what records show).
    pub attempt: u32,
    /// The claim number, the fencing token: it never repeats for a job.
    pub claim: u64,
}

/// How an attempt ends the job's `running` state.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The job succeeded with this output.
    Succeeded(Output),
    /// Another attempt may start at this time.
    Retry {
        /// The earliest start of the next attempt.
        at: Timestamp,
    },
    /// The job is dead.
    Dead,
    /// The job is cancelled.
    Cancelled,
}

/// An attempt's end, to record.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Whose attempt.
    pub lease: Lease,
    /// The attempt's record.
    pub record: AttemptRecord,
    /// What becomes of the job.
    pub verdict: Verdict,
}

/// Jobs that an operation moved besides those it was asked about: the
/// dependents that a job's end (or a cancel, or a retry) released,
/// cancelled or blocked again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cascade {
    /// Blocked jobs that became queued (or scheduled): every job they were
    /// after has ended as they need.
    pub unblocked: Vec<JobId>,
    /// Blocked jobs cancelled because a job they were after (directly or
    /// not) ended dead or cancelled.
    pub cancelled: Vec<JobId>,
    /// Jobs a retry gave back their `blocked` state: those cancelled that
    /// way, and `run_if = always` jobs that were released but had not been
    /// claimed, which wait again for the retried jobs.
    pub reblocked: Vec<JobId>,
}

impl Cascade {
    /// Whether it moved no job.
    pub fn is_empty(&self) -> bool {
        self.unblocked.is_empty() && self.cancelled.is_empty() && self.reblocked.is_empty()
    }

    /// Adds another cascade's jobs to this one's.
    pub fn extend(&mut self, other: Cascade) {
        self.unblocked.extend(other.unblocked);
        self.cancelled.extend(other.cancelled);
        self.reblocked.extend(other.reblocked);
    }
}

/// What [`Queue::complete`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// One result per completion, in order: recorded, or fenced.
    pub results: Vec<Result<(), Fenced>>,
    /// The dependents that the recorded ends moved.
    pub cascade: Cascade,
}

/// What [`Queue::rescue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescued {
    /// The jobs put back (or ended dead, out of attempts).
    pub ids: Vec<JobId>,
    /// The dependents of those that ended dead: cancelled.
    pub cascade: Cascade,
}

/// A refused record: the lease was no longer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenced(pub Lease);

impl fmt::Display for Fenced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} attempt {}: the lease was taken over; the outcome was not recorded",
            self.0.job, self.0.attempt
        )
    }
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Leases this worker no longer holds (expired and rescued, or taken over):
    /// stop those attempts, their outcome will not be recorded.
    pub lost: Vec<Lease>,
    /// Leases whose job someone asked to cancel: stop those attempts and
    /// complete them as cancelled.
    pub cancel_requested: Vec<Lease>,
    /// Claims of this worker that have not started and whose task is
    /// paused: give them back unstarted ([`Queue::release`]).
    pub paused: Vec<Lease>,
}

/// Which running jobs `rescue` puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rescue {
    /// Jobs whose lease has expired.
    Expired,
    /// Every job leased by this worker (known to be dead), expired or not.
    Worker(String),
}

/// What [`Queue::enqueue_async`] returns: a future that blocks no thread
/// polling it on I/O.
pub type Submit<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<Enqueued>, QueueError>> + Send + 'a>,
>;

/// A callback a queue calls when new work may be ready (a job was
/// enqueued, released, rescued or scheduled for retry).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A queue of jobs: the worker protocol. Every operation is atomic; batches
/// are all-or-nothing.
///
/// Implementations: the in-memory [`crate::MemoryQueue`], and the SQLite
/// and PostgreSQL queues in their own crates. Each passes the conformance
/// suite (the `conformance` module, feature `conformance`);
/// `docs/backends.md` says how to write another.
pub trait Queue: Send + Sync + fmt::Debug + 'static {
    /// What this queue is and which job features it keeps.
    fn capabilities(&self) -> Capabilities;

    /// Administration (cancel, retry), if the queue has it.
    fn as_admin(&self) -> Option<&dyn Admin> {
        None
    }

    /// Inspection (jobs, counts per task, live workers), if the queue has it.
    fn as_inspect(&self) -> Option<&dyn Inspect> {
        None
    }

    /// Administration, or an error naming it when the queue has none.
    fn admin(&self) -> Result<&dyn Admin, QueueError> {
        self.as_admin()
            .ok_or_else(|| missing("administration (cancel, retry)"))
    }

    /// Flow control (stored limits, pausing tasks, what holds jobs), if
    /// the queue has it: every queue that keeps [`Capability::Limits`] does.
    fn as_flow(&self) -> Option<&dyn FlowControl> {
        None
    }

    /// Flow control, or an error naming it when the queue has none.
    fn flow(&self) -> Result<&dyn FlowControl, QueueError> {
        self.as_flow()
            .ok_or_else(|| missing("flow control (limits, pausing tasks)"))
    }

    /// Schedules, if the queue keeps them.
    fn as_schedules(&self) -> Option<&dyn Schedules> {
        None
    }

    /// Schedules, or an error naming them when the queue has none.
    fn schedules(&self) -> Result<&dyn Schedules, QueueError> {
        self.as_schedules()
            .ok_or_else(|| missing("schedules (use a SQLite state file or PostgreSQL)"))
    }

    /// Inspection, or an error naming it when the queue has none.
    fn inspect(&self) -> Result<&dyn Inspect, QueueError> {
        self.as_inspect()
            .ok_or_else(|| missing("inspection (jobs, their attempts, workers)"))
    }

    /// Adds jobs, in order, once [`admit`] has found that the queue keeps
    /// what each needs. Not to be overridden: backends implement
    /// [`Queue::insert`].
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        admit(&self.capabilities(), &jobs)?;
        self.insert(jobs)
    }

    /// Adds one job (see [`Queue::enqueue`]).
    fn enqueue_one(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        admit(&self.capabilities(), std::slice::from_ref(&job))?;
        self.insert_one(job)
    }

    /// [`Queue::enqueue`] for async code: the future never blocks the
    /// thread that polls it on I/O (a backend that writes with a blocking
    /// driver does so on a thread of its own).
    fn enqueue_async(&self, jobs: Vec<NewJob>) -> Submit<'_> {
        match admit(&self.capabilities(), &jobs) {
            Ok(()) => self.insert_async(jobs),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Adds admitted jobs, in order (see [`Queue::enqueue`]).
    fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>;

    /// Adds one admitted job.
    fn insert_one(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        Ok(self.insert(vec![job])?.remove(0))
    }

    /// Adds admitted jobs from async code, blocking no thread that polls
    /// the future (see [`Queue::enqueue_async`]).
    fn insert_async(&self, jobs: Vec<NewJob>) -> Submit<'_>;

    /// Claims up to `max` ready jobs for `worker` (highest priority first,
    /// then in fair order over their fairness keys, then id: see
    /// `docs/backends.md` §8), each under a lease of `lease`. A job is
    /// claimed only while its task is not paused and every limit that holds
    /// it has room; a claim takes its slots and its rate permits.
    fn claim(&self, worker: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, QueueError> {
        self.claim_tasks(worker, max, lease, None)
    }

    /// Like [`Queue::claim`], but only jobs of the given tasks (all when `None`).
    fn claim_tasks(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
        tasks: Option<&[TaskName]>,
    ) -> Result<Vec<Claimed>, QueueError>;

    /// Records that these claimed attempts have started (at the given
    /// times). Leases no longer held are ignored.
    fn started(&self, worker: &str, started: &[(Lease, Timestamp)]) -> Result<(), QueueError>;

    /// Extends `worker`'s leases by `lease` from now, and renews its
    /// registration if it has one (see [`Queue::register_worker`]): a
    /// registered worker heartbeats even when it holds no leases. Fails
    /// with [`QueueErrorKind::Conflict`](crate::QueueErrorKind::Conflict)
    /// when another worker has taken the name over meanwhile.
    fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<HeartbeatReply, QueueError>;

    /// Records the end of attempts. Each is recorded only if its lease is
    /// still held; the others come back as [`Fenced`]. On an error nothing
    /// was recorded, and the same batch may be given again. In the same
    /// transaction, the blocked dependents of each job that ended move on
    /// (see [`runyard_core::RunIf`]): those released are queued, and a
    /// waker is called for them; those cancelled name the job that ended
    /// first as their cause, and their own dependents follow.
    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError>;

    /// Gives claimed jobs back unstarted: they return to `queued` and the
    /// claim does not count as an attempt.
    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError>;

    /// Puts running jobs back (see [`Rescue`]); returns their ids. A lost
    /// attempt that had started is recorded as `crashed`, and a job that
    /// has used all its attempts becomes `dead`; a claim that had not
    /// started goes back as if it had never been made, except that a job
    /// can lose as many unseen claims as it has attempts: the next lost
    /// claim counts (a job that kills its worker before its start is
    /// recorded ends dead rather than being retried for ever). The
    /// dependents of a job that ends dead are cancelled, as by
    /// [`Queue::complete`].
    fn rescue(&self, which: Rescue) -> Result<Rescued, QueueError>;

    /// Jobs per state (see [`Counts`] for how a claim that has not started
    /// is counted).
    fn counts(&self) -> Result<Counts, QueueError>;

    /// When a claim can next find a job: a time not after now if some job
    /// is queued, the earliest run-at of the scheduled ones otherwise, and
    /// `None` if no job waits. For a worker with nothing to do until then.
    fn next_due(&self) -> Result<Option<Timestamp>, QueueError>;

    /// The queue's clock.
    fn now(&self) -> Timestamp;

    /// Registers a callback for work that may be ready, replacing the one
    /// before (the worker loop of each run sets its own). Queues that cannot
    /// notify (another process enqueued) leave it uncalled; workers poll too.
    fn set_waker(&self, waker: Waker);

    /// Registers a worker under its name, so that no two live workers share
    /// one. A registered worker stays live by heartbeating (see
    /// [`Queue::heartbeat`]; the engine's worker loop heartbeats every third
    /// of its lease, idle or not) and ends its registration with
    /// [`Queue::unregister_worker`] when it stops. A name is refused, with
    /// its holder, while a worker holds it whose last heartbeat is at most
    /// its lease ago; a holder whose heartbeat has lapsed is gone, and its
    /// name is taken over (so a worker restarted after a crash gets its name
    /// back once its lease has passed). The default keeps no table of
    /// workers: every registration succeeds.
    fn register_worker(&self, worker: &WorkerInfo) -> Result<Result<(), NameTaken>, QueueError> {
        let _ = worker;
        Ok(Ok(()))
    }

    /// Ends a registration made through this queue: the name is free at once.
    fn unregister_worker(&self, name: &str) -> Result<(), QueueError> {
        let _ = name;
        Ok(())
    }

    /// Records the tasks worker `worker` runs, each with what its jobs
    /// get when a submit names only the task, replacing what an earlier
    /// worker published for them: called by a worker when it starts, so
    /// that the queue knows its tasks (the PostgreSQL queue's `submit` SQL
    /// function applies them). The default keeps nothing.
    fn publish_tasks(&self, worker: &str, tasks: &[PublishedTask]) -> Result<(), QueueError> {
        let _ = (worker, tasks);
        Ok(())
    }
}

fn missing(what: &str) -> QueueError {
    QueueError::new(
        QueueErrorKind::Unsupported,
        format!("this queue has no {what}"),
    )
}

/// Where a queue keeps its [`Waker`]: set (and replaced) rarely, called on
/// every enqueue.
#[derive(Default)]
pub struct WakerSlot(std::sync::RwLock<Option<Waker>>);

impl WakerSlot {
    /// An empty slot.
    pub fn new() -> WakerSlot {
        WakerSlot::default()
    }

    /// Replaces the waker.
    pub fn set(&self, w: Waker) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(w);
    }

    /// Calls the waker, if one is set.
    pub fn wake(&self) {
        if let Some(w) = &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            w();
        }
    }
}

impl std::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WakerSlot")
    }
}

/// The error of an attempt whose worker died: `started` if it was seen
/// starting (otherwise its job outlived as many unseen claims as it has
/// attempts, and the claim is counted: a job that kills its worker before
/// the start can be recorded must not run for ever).
pub fn lost_attempt_message(worker: &str, started: bool) -> String {
    if started {
        format!("lost: worker `{worker}` stopped before recording this attempt")
    } else {
        format!(
            "lost: worker `{worker}` stopped before this attempt was seen starting, \
             as often as the job has attempts"
        )
    }
}

/// The record of an attempt lost with its worker (see [`Queue::rescue`]):
/// `crashed`, from its claim (microseconds since the epoch) until `now`,
/// having waited since the job was ready.
pub fn lost_attempt(
    attempt: u32,
    worker: &str,
    started: bool,
    claimed_at: i64,
    ready_at: i64,
    now: i64,
) -> AttemptRecord {
    AttemptRecord::new(
        attempt,
        runyard_core::OutcomeKind::Crashed,
        Timestamp::from_micros(claimed_at),
        Duration::from_micros(now.saturating_sub(claimed_at).max(0) as u64),
        Duration::from_micros(claimed_at.saturating_sub(ready_at).max(0) as u64),
        Some(runyard_core::AttemptError {
            message: lost_attempt_message(worker, started),
            permanent: false,
            detail: None,
        }),
    )
}

/// Task names as a store returns them, shared rather than allocated per
/// claimed job.
#[derive(Debug, Default)]
pub struct TaskNames(std::sync::Mutex<rustc_hash::FxHashMap<String, TaskName>>);

impl TaskNames {
    /// No names yet.
    pub fn new() -> TaskNames {
        TaskNames::default()
    }

    /// The shared name equal to `name`.
    pub fn get(&self, name: String) -> TaskName {
        let mut names = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match names.get(&name) {
            Some(n) => n.clone(),
            None => {
                let n = TaskName::from(name.as_str());
                names.insert(name, n.clone());
                n
            }
        }
    }
}
