//! The queue trait: what every backend (memory, SQLite, PostgreSQL) does.
//!
//! # Lifecycle and fencing
//!
//! `enqueue` puts a job in `queued` (or `scheduled` when it has a future
//! run-at). `claim` moves ready jobs to `running` under a lease owned by a
//! named worker and bumps the job's attempt number; that number is the
//! fencing token. Every later call about that attempt (`heartbeat`,
//! `complete`, `release`) carries a [`Lease`] = (job, attempt) and is refused
//! when the job is no longer running that attempt: a worker whose lease was
//! taken over can never record an outcome. A worker tells the queue when a
//! claimed attempt actually starts (`started`): claims are made ahead of
//! time, and one that never started did not cost an attempt. `rescue` puts
//! running jobs whose lease expired (or whose worker is known dead) back to
//! `queued`: an attempt that had started is recorded as `crashed` (and the
//! job is `dead` when that was its last attempt); a claim that had not
//! started is simply undone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use runyard_core::{
    AttemptRecord, JobId, JobParams, JobSettings, JobState, JobView, Output, Timestamp,
};

use crate::error::QueueError;

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
}

/// What `enqueue` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Added with this id.
    New(JobId),
    /// Not added: a job with the same idempotency key exists.
    Duplicate(JobId),
}

impl Enqueued {
    /// The job's id, new or existing.
    pub fn id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// A claimed job: one attempt to run.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job.
    pub id: JobId,
    /// This attempt's number (from 1): the fencing token.
    pub attempt: u32,
    /// The task.
    pub task: TaskName,
    /// The parameters.
    pub params: JobParams,
    /// The settings.
    pub settings: JobSettings,
    /// When the job became ready to run (enqueued, or its run-at).
    pub ready_at: Timestamp,
}

impl Claimed {
    /// The lease this claim holds.
    pub fn lease(&self) -> Lease {
        Lease {
            job: self.id,
            attempt: self.attempt,
        }
    }
}

/// A worker's hold on one attempt of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// The attempt number.
    pub attempt: u32,
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
}

/// Which running jobs `rescue` puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rescue {
    /// Jobs whose lease has expired.
    Expired,
    /// Every job leased by this worker (known to be dead), expired or not.
    Worker(String),
}

/// What `cancel` did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It was queued or scheduled and is now cancelled.
    Cancelled,
    /// It is running; its worker is asked to stop it.
    Requested,
    /// It had already finished (in this state).
    AlreadyFinished(JobState),
    /// No such job.
    NotFound,
}

/// Jobs per state.
///
/// A job claimed ahead of time whose attempt has not started (it waits for
/// a thread or a worker process) is counted `queued`, never `running`: as
/// far as a queue knows, an attempt starts when its worker says so
/// ([`Queue::started`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Waiting to be claimed, or claimed and not started.
    pub queued: u64,
    /// Waiting for their run-at.
    pub scheduled: u64,
    /// Running: claimed, and the attempt has started.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl Counts {
    /// Every job.
    pub fn total(&self) -> u64 {
        self.queued + self.scheduled + self.running + self.succeeded + self.dead + self.cancelled
    }

    /// Jobs not yet in a terminal state.
    pub fn unfinished(&self) -> u64 {
        self.queued + self.scheduled + self.running
    }

    /// The count for one state.
    pub fn get(&self, s: JobState) -> u64 {
        match s {
            JobState::Queued => self.queued,
            JobState::Scheduled => self.scheduled,
            JobState::Running => self.running,
            JobState::Succeeded => self.succeeded,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// The count for one state, to change it.
    pub fn get_mut(&mut self, s: JobState) -> &mut u64 {
        match s {
            JobState::Queued => &mut self.queued,
            JobState::Scheduled => &mut self.scheduled,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        }
    }
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        for s in JobState::ALL {
            *self.get_mut(s) += other.get(s);
        }
    }
}

/// Which jobs `list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Only jobs with a larger id (for paging).
    pub after: Option<JobId>,
    /// At most this many (0 = no limit).
    pub limit: usize,
}

/// A callback a queue calls when new work may be ready (a job was
/// enqueued, released, rescued or scheduled for retry).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A worker process, as it registers with a queue (see
/// [`Queue::register_worker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its name: the one its leases are held under, unique among live workers.
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How long after its last heartbeat it counts as gone: its lease.
    pub lease: Duration,
}

impl WorkerInfo {
    /// This process, under `name`, heartbeating within `lease`.
    pub fn this_process(name: impl Into<String>, lease: Duration) -> WorkerInfo {
        WorkerInfo {
            name: name.into(),
            host: host_name(),
            pid: std::process::id(),
            lease,
        }
    }
}

/// This machine's host name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A registered worker whose heartbeat has not lapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorker {
    /// The worker, as it registered.
    pub worker: WorkerInfo,
    /// When it registered.
    pub started_at: Timestamp,
    /// Its last heartbeat (registering counts as the first).
    pub last_heartbeat: Timestamp,
    /// Jobs it holds leases on now.
    pub leases: u64,
}

impl LiveWorker {
    /// Whether its heartbeat has lapsed at `now`: it is gone.
    pub fn lapsed(&self, now: Timestamp) -> bool {
        self.last_heartbeat.saturating_add(self.worker.lease) < now
    }
}

/// A refused registration: a live worker holds the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTaken(pub LiveWorker);

impl fmt::Display for NameTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.0.worker;
        write!(
            f,
            "the worker name `{}` is held by a live worker: pid {} on {}, since {} \
             (its last heartbeat at {}; a worker that died frees its name once its \
             heartbeat has lapsed for its lease of {})",
            w.name,
            w.pid,
            w.host,
            self.0.started_at,
            self.0.last_heartbeat,
            runyard_core::format_duration(w.lease)
        )
    }
}

/// A queue of jobs. Every operation is atomic; batches are all-or-nothing.
///
/// Implementations: the in-memory [`crate::MemoryQueue`], and the SQLite
/// and PostgreSQL queues in their own crates. Each passes
/// the conformance suite (the `conformance` module, feature `conformance`).
pub trait Queue: Send + Sync + fmt::Debug + 'static {
    /// Adds jobs, in order.
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>;

    /// Adds one job.
    fn enqueue_one(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        Ok(self.enqueue(vec![job])?.remove(0))
    }

    /// Whether jobs outlive this process (workers then heartbeat and rescue
    /// on a schedule; an in-process queue has no other worker to lose).
    fn is_durable(&self) -> bool {
        true
    }

    /// Whether outcomes are best written from a thread of their own while
    /// the worker claims (a server with a connection each), rather than
    /// between claims (a file with one writer at a time).
    fn writes_concurrently(&self) -> bool {
        false
    }

    /// Claims up to `max` ready jobs for `worker` (highest priority first,
    /// then earliest run-at, then id), each under a lease of `lease`.
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
    /// was recorded, and the same batch may be given again.
    fn complete(
        &self,
        worker: &str,
        done: &[Completion],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError>;

    /// Gives claimed jobs back unstarted: they return to `queued` and the
    /// claim does not count as an attempt.
    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError>;

    /// Cancels jobs: queued and scheduled ones at once, running ones by
    /// asking their worker (see [`HeartbeatReply::cancel_requested`]).
    fn cancel(&self, ids: &[JobId]) -> Result<Vec<CancelResult>, QueueError>;

    /// Cancels every queued and scheduled job; returns their ids.
    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError>;

    /// Puts running jobs back (see [`Rescue`]); returns their ids. A lost
    /// attempt that had started is recorded as `crashed`, and a job that
    /// has used all its attempts becomes `dead`; a claim that had not
    /// started goes back as if it had never been made, except that a job
    /// can lose as many unseen claims as it has attempts: the next lost
    /// claim counts (a job that kills its worker before its start is
    /// recorded ends dead rather than being retried for ever).
    fn rescue(&self, which: Rescue) -> Result<Vec<JobId>, QueueError>;

    /// Puts a dead or cancelled job back to `queued` with a fresh set of
    /// attempts (its earlier attempts stay in its record).
    fn retry(&self, id: JobId) -> Result<bool, QueueError>;

    /// Jobs per state (see [`Counts`] for how a claim that has not started
    /// is counted).
    fn counts(&self) -> Result<Counts, QueueError>;

    /// One job with its attempts.
    fn get(&self, id: JobId) -> Result<Option<JobView>, QueueError>;

    /// Jobs by id, filtered and paged.
    fn list(&self, filter: &ListFilter) -> Result<Vec<JobView>, QueueError>;

    /// Counts per state for each task, by task name, as [`Queue::counts`]
    /// counts them. The default reads every job a page at a time and counts
    /// it by its view's state, so it counts a claim not yet started as
    /// running: a backend that records starts overrides it.
    fn counts_by_task(&self) -> Result<Vec<(String, Counts)>, QueueError> {
        let mut by: std::collections::BTreeMap<String, Counts> = Default::default();
        let mut after = None;
        loop {
            let page = self.list(&ListFilter {
                after,
                limit: 1024,
                ..ListFilter::default()
            })?;
            after = page.last().map(|v| v.id);
            for v in &page {
                *by.entry(v.task.clone()).or_default().get_mut(v.state) += 1;
            }
            if page.len() < 1024 {
                return Ok(by.into_iter().collect());
            }
        }
    }

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

    /// The registered workers whose heartbeat has not lapsed, by name.
    fn live_workers(&self) -> Result<Vec<LiveWorker>, QueueError> {
        Ok(Vec::new())
    }
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
