//! The in-memory queue: the default for `runyard run`. Nothing survives the
//! process, but every operation of the [`Queue`] trait behaves as in the
//! durable backends (leases, fencing, rescue, idempotency keys), so the
//! worker loop is the same everywhere.
//!
//! One concept, with its tests: the in-memory queue.
//!
//! # Two locks
//!
//! Submitters only take the *ingress* lock: they assign the next id, check
//! the idempotency key and append the job. Everything else takes the
//! *state* lock and first moves what the ingress holds into the state, in
//! one batch. So a thread submitting jobs one by one and the worker loop
//! claiming and completing them rarely wait for each other. Lock order:
//! state, then ingress.
//!
//! Jobs with a name, parents, a unique key or limits go another way: the
//! submitter takes the state lock too, so their parents and the holder of
//! their unique key can be found, their keys interned and their first
//! state (blocked, waiting or cancelled) set at once ([`flow`],
//! [`limits`]).
//!
//! Waiting jobs are claimed in the fair order of `docs/backends.md` §8:
//! by priority, then tag, then id ([`limits`] says how that stays cheap).
//!
//! Records live in fixed-size chunks that never move, so a million queued
//! jobs never pay for (or briefly double their memory in) a reallocation.
//!
//! # Forgetting
//!
//! A queue made with [`MemoryQueue::forgetting`] forgets each job once it
//! has ended and each of its readers (a report, a job log) has read it and
//! said so with [`MemoryQueue::reported`]; a long run then holds only the
//! records of the jobs not yet ended or read. A job that other jobs still
//! need stays: its children need its state and output, and a job cancelled
//! by its end names it, so each job is *pinned* by every job after it and
//! every job naming it as its cause until those are forgotten in turn. A
//! forgotten job's record keeps only its task and state (for the counts)
//! until every record of its chunk is forgotten, and then the chunk goes.
//! To every reader a forgotten job is not in the queue; a batch naming one
//! as a parent is refused.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use runyard_core::{
    AttemptRecord, Cause, Hold, JobId, JobParams, JobSettings, JobState, JobView, OnConflict,
    Output, Parent, Timestamp, Unique,
};
use rustc_hash::FxHashMap;

mod flow;
mod limits;

use crate::admin::{Admin, CancelResult, Cancelled};
use crate::capability::{Capabilities, Durability, Writes};
use crate::clock::{Clock, SystemClock};
use crate::counts::Counts;
use crate::error::QueueError;
use crate::inspect::{count_finished, FinishedCount, Inspect, ListFilter};
use crate::limits::{FlowControl, Holds, LimitChange, Paused};
use crate::queue::{
    Cascade, Claimed, Completion, Enqueued, Fenced, HeartbeatReply, Lease, NewJob, Queue, Recorded,
    Rescue, Rescued, Submit, TaskName, Verdict, Waker, WakerSlot,
};
use crate::workers::{LiveWorker, NameTaken, WorkerInfo};
use runyard_core::{LimitTarget, StoredLimit};

/// An in-memory [`Queue`].
pub struct MemoryQueue {
    ingress: Mutex<Ingress>,
    /// Jobs in the ingress, for `counts` without the ingress lock.
    arriving: AtomicU64,
    state: Mutex<State>,
    /// Notified when jobs are forgotten ([`MemoryQueue::wait_held_at_most`]).
    room: Condvar,
    waker: WakerSlot,
    clock: Arc<dyn Clock>,
    /// Registered workers by name (their `leases` counted when asked). A
    /// lock of its own, never held with the others.
    registered: Mutex<BTreeMap<String, LiveWorker>>,
}

/// Records per chunk: small enough that the chunks a forgetting queue
/// holds at the edge of what it forgot (one part forgotten, one being
/// filled) stay small, large enough that the list of chunks does not
/// matter (ten thousand for ten million jobs).
const CHUNK: usize = 1 << 10;

/// Jobs enqueued but not yet moved into the state.
#[derive(Default)]
struct Ingress {
    next: u64,
    /// New jobs with their run-at.
    fresh: Vec<(Rec, i64)>,
    keys: FxHashMap<String, JobId>,
    tasks: Vec<TaskName>,
    task_ids: FxHashMap<TaskName, u32>,
    /// The last task interned: most runs submit many jobs of one task in a row.
    last: Option<(TaskName, u32)>,
}

/// A job's attempts; the first one is stored inline (most jobs have one).
#[derive(Default)]
enum Attempts {
    #[default]
    None,
    One(AttemptRecord),
    Many(Vec<AttemptRecord>),
}

impl Attempts {
    fn push(&mut self, r: AttemptRecord) {
        *self = match std::mem::take(self) {
            Attempts::None => Attempts::One(r),
            Attempts::One(first) => Attempts::Many(vec![first, r]),
            Attempts::Many(mut v) => {
                v.push(r);
                Attempts::Many(v)
            }
        };
    }

    fn as_slice(&self) -> &[AttemptRecord] {
        match self {
            Attempts::None => &[],
            Attempts::One(r) => std::slice::from_ref(r),
            Attempts::Many(v) => v,
        }
    }

    fn to_vec(&self) -> Vec<AttemptRecord> {
        match self {
            Attempts::None => Vec::new(),
            Attempts::One(r) => vec![r.clone()],
            Attempts::Many(v) => v.clone(),
        }
    }
}

struct Rec {
    task: u32,
    state: JobState,
    /// Attempts claimed so far (the number of the current or last attempt).
    attempt: u32,
    /// Claims made so far, undone ones included: the fencing token.
    claims: u32,
    max_attempts: u32,
    worker: u32,
    cancel_requested: bool,
    /// Whether the current claim's attempt has started.
    started: bool,
    /// Claims undone because their worker died before they were seen
    /// starting (see [`Queue::rescue`]).
    lost: u8,
    /// Its place in the fair order (`docs/backends.md` §8), within its
    /// priority (its settings').
    tag: u32,
    lease_until: i64,
    claimed_at: i64,
    enqueued_at: i64,
    ready_at: i64,
    params: JobParams,
    settings: Arc<JobSettings>,
    attempts: Attempts,
    output: Output,
    /// Its name, parents and children, if it has any.
    flow: Option<Box<flow::Flow>>,
    /// How many readers released it since it ended, or [`GONE`]: forgotten.
    released: u8,
}

/// [`Rec::released`] of a forgotten job.
const GONE: u8 = u8::MAX;

/// What a forgotten job's place reads as once its chunk is gone: a job
/// that ended, forgotten.
struct Gone(Rec);

impl Default for Gone {
    fn default() -> Gone {
        Gone(Rec {
            task: 0,
            state: JobState::Succeeded,
            attempt: 0,
            claims: 0,
            max_attempts: 0,
            worker: 0,
            cancel_requested: false,
            started: false,
            lost: 0,
            tag: UNTAGGED,
            lease_until: 0,
            claimed_at: 0,
            enqueued_at: 0,
            ready_at: 0,
            params: JobParams::empty(),
            settings: Arc::new(JobSettings {
                max_attempts: 1,
                backoff: runyard_core::Backoff::None,
                timeout: None,
                priority: 0,
                mode: runyard_core::Mode::Auto,
                isolate: false,
            }),
            attempts: Attempts::None,
            output: Output::none(),
            flow: None,
            released: GONE,
        })
    }
}

impl Rec {
    /// The state a view shows: a claim that has not started is queued, as
    /// [`Counts`] counts it.
    fn shown(&self) -> JobState {
        match self.state {
            JobState::Running if !self.started => JobState::Queued,
            s => s,
        }
    }
}

#[derive(Default)]
struct State {
    chunks: Vec<Vec<Rec>>,
    len: usize,
    /// Ready jobs by priority (highest first), then (tag, index).
    ready: BTreeMap<Reverse<i32>, limits::Fair>,
    /// Scheduled jobs by run-at; entries whose job moved on are skipped.
    scheduled: BinaryHeap<Reverse<(i64, u32)>>,
    tasks: Vec<TaskName>,
    workers: Vec<String>,
    worker_ids: FxHashMap<String, u32>,
    /// Jobs per state, claimed ones as `running` whether they started or not.
    counts: Counts,
    /// Claimed jobs whose attempt has not started (within `counts.running`).
    unstarted: u64,
    spare: Vec<(Rec, i64)>,
    /// Limits, pauses, unique keys and tags.
    fl: limits::Flows,
    /// Jobs a reader found due, queued without a tag until the next claim.
    untagged: Vec<u32>,
    /// Set when the last claim found every due job held: none can be
    /// claimed before this time unless something changes (a job waits
    /// anew, a slot is freed, a limit or pause changes), which clears it.
    stalled: Option<i64>,
    /// An emptied priority's order, kept for the next one (its space).
    spare_fair: Option<limits::Fair>,
    /// How many readers release each ended job before it is forgotten
    /// (0: never; see the module comment).
    readers: u8,
    /// The record read in a chunk that is gone.
    gone: Gone,
    /// Forgotten jobs per chunk: a chunk all forgotten is freed.
    forgotten_in: Vec<u32>,
    /// Forgotten jobs in all, and per task by state (for the counts by task).
    forgotten: u64,
    forgotten_by_task: Vec<Counts>,
    /// The first index of the first chunk not freed: loops over the jobs
    /// start there.
    live_from: usize,
    /// The most records held at once (jobs not forgotten).
    most_held: u64,
}

/// The tag of a queued job that a reader found due: given at the next claim.
const UNTAGGED: u32 = u32::MAX;

/// Tags are moved down once the next one passes this.
const REBASE_AT: u32 = 1 << 31;

/// How far behind the frontier a rebase keeps tags apart.
const TAG_SPAN: u32 = 1 << 30;

/// Which tag a job that becomes due gets.
#[derive(Debug, Clone, Copy)]
enum Tag {
    /// The frontier (a job due later than it was submitted, retried or
    /// released from its parents).
    Frontier,
    /// The one it has (a claim given back or rescued).
    Keep,
    /// A new job's: after the last of its fairness key (`fair`; keyless
    /// jobs are the group of the empty key), not before the frontier `v`
    /// its batch saw.
    Insert { fair: Option<u32>, v: u32 },
}

impl MemoryQueue {
    /// An empty queue on the system clock.
    pub fn new() -> MemoryQueue {
        MemoryQueue::with_clock(Arc::new(SystemClock))
    }

    /// An empty queue on the given clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryQueue {
        MemoryQueue {
            ingress: Mutex::new(Ingress {
                next: 1,
                ..Ingress::default()
            }),
            arriving: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            room: Condvar::new(),
            waker: WakerSlot::new(),
            clock,
            registered: Mutex::new(BTreeMap::new()),
        }
    }

    /// This queue, forgetting each job once it has ended and `readers`
    /// readers have each released it ([`MemoryQueue::reported`]; see the
    /// module comment). With `readers` 0 it never forgets, as
    /// [`MemoryQueue::new`] makes it.
    pub fn forgetting(self, readers: u8) -> MemoryQueue {
        self.lock().readers = readers.min(GONE - 1);
        self
    }

    /// One reader is done with these jobs: each that has ended is
    /// forgotten once every reader has released it and no job still needs
    /// it (its children, the jobs it cancelled). Jobs not ended, or not in
    /// the queue, are passed over.
    pub fn reported(&self, ids: &[JobId]) {
        let mut st = self.lock();
        let before = st.forgotten;
        for &id in ids {
            if let Some(i) = st.get(id) {
                st.reported(i);
            }
        }
        if st.forgotten > before {
            self.room.notify_all();
        }
    }

    /// How many jobs the queue holds now, and the most it held at once
    /// (forgotten jobs are not held; jobs submitted are).
    pub fn held(&self) -> (u64, u64) {
        let st = self.lock();
        (st.len as u64 - st.forgotten, st.most_held)
    }

    /// Waits until the queue holds at most `most` jobs, for at most
    /// `timeout`; whether it does. A submitter that waits so before each
    /// batch keeps a forgetting queue's records bounded.
    pub fn wait_held_at_most(&self, most: u64, timeout: Duration) -> bool {
        let mut st = self.lock();
        if st.len as u64 - st.forgotten <= most {
            return true;
        }
        st = self
            .room
            .wait_timeout(st, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        st.len as u64 - st.forgotten + self.arriving.load(Ordering::Acquire) <= most
    }

    fn lock_registered(&self) -> MutexGuard<'_, BTreeMap<String, LiveWorker>> {
        self.registered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs each worker holds leases on.
    fn leases_by_worker(&self) -> FxHashMap<String, u64> {
        let st = self.lock();
        let mut by: FxHashMap<String, u64> = FxHashMap::default();
        if st.counts.running > 0 {
            for i in st.live() {
                let r = st.rec(i);
                if r.state == JobState::Running {
                    *by.entry(st.workers[r.worker as usize].clone()).or_default() += 1;
                }
            }
        }
        by
    }

    fn lock_ingress(&self) -> MutexGuard<'_, Ingress> {
        self.ingress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state as a reader should see it: scheduled jobs whose time has
    /// come are queued (their tags wait for the next claim).
    fn lock_due(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        st.promote_due(self.clock.now().as_micros(), false);
        st
    }

    /// The state, with every job of the ingress moved in.
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.arriving.load(Ordering::Acquire) > 0 {
            let mut fresh = std::mem::take(&mut st.spare);
            {
                let mut ing = self.lock_ingress();
                std::mem::swap(&mut fresh, &mut ing.fresh);
                let known = st.tasks.len();
                st.tasks.extend(ing.tasks[known..].iter().cloned());
                self.arriving.store(0, Ordering::Release);
            }
            st.tasks_known();
            let v = st.frontier();
            for (rec, at) in fresh.drain(..) {
                st.insert(rec, at, Tag::Insert { fair: None, v });
            }
            st.spare = fresh;
        }
        st
    }

    fn wake(&self) {
        self.waker.wake();
    }

    /// Adds a batch in which some job has a name, parents, a unique key or
    /// limits, under both locks: each job takes the next id and its first
    /// state at once, and sees the jobs before it.
    fn insert_linked(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.clock.now().as_micros();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut ing = self.lock_ingress();
        // What arrived before is moved in first: indices follow ids.
        let known = st.tasks.len();
        st.tasks.extend(ing.tasks[known..].iter().cloned());
        st.tasks_known();
        let v = st.frontier();
        for (rec, at) in std::mem::take(&mut ing.fresh) {
            st.insert(rec, at, Tag::Insert { fair: None, v });
        }
        flow::check_parents(&jobs, |id| st.get(id).is_some())?;
        let mut out: Vec<Enqueued> = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            if let Some(k) = &job.idempotency_key {
                if let Some(&existing) = ing.keys.get(k) {
                    out.push(Enqueued::Duplicate(existing));
                    continue;
                }
            }
            let mut unique = None;
            if let Some(u) = &job.unique {
                match st.unique_conflict(u, now) {
                    Some(Conflict::Holder(h)) if u.on_conflict == OnConflict::Replace => {
                        let at = job.run_at.map_or(now, Timestamp::as_micros);
                        st.replace(h, std::mem::take(&mut job.params), at, now);
                        out.push(Enqueued::Replaced(id_of(h)));
                        continue;
                    }
                    Some(Conflict::Holder(h)) | Some(Conflict::Recent(h)) => {
                        out.push(Enqueued::Duplicate(id_of(h)));
                        continue;
                    }
                    None => unique = Some(st.fl.unique_id(&u.key)),
                }
            }
            let lim = (unique.is_some() || !job.limits.is_empty())
                .then(|| st.fl.lim(&job.limits, unique));
            let unlinked = flow::Unlinked::take(&mut job);
            let e = ing.add(job, now);
            let known = st.tasks.len();
            st.tasks.extend(ing.tasks[known..].iter().cloned());
            st.tasks_known();
            if let Some((rec, at)) = ing.fresh.pop() {
                let fair = lim.as_ref().and_then(limits::Lim::fair);
                let tag = Tag::Insert { fair, v };
                let i = st.push(rec);
                if let Some(l) = lim {
                    if let Some(u) = l.unique {
                        st.fl.uniques[u as usize].live.push(i);
                    }
                    st.flow_mut(i).lim = Some(l);
                }
                match unlinked {
                    Some(u) => {
                        let parents = u
                            .after
                            .iter()
                            .map(|(p, _, _)| match *p {
                                Parent::Batch(b) => out[b].id().0 as u32 - 1,
                                Parent::Job(id) => id.0 as u32 - 1,
                            })
                            .collect();
                        st.link(i, u, parents, at, now, tag);
                    }
                    None => st.make_waiting_as(i, at, now, tag),
                }
            }
            out.push(e);
        }
        self.arriving.store(0, Ordering::Release);
        drop(ing);
        drop(st);
        self.wake();
        Ok(out)
    }
}

/// Why a job with a unique key is not added.
enum Conflict {
    /// This job with the key waits.
    Holder(u32),
    /// This job with the key succeeded within the new job's `within`.
    Recent(u32),
}

impl Default for MemoryQueue {
    fn default() -> MemoryQueue {
        MemoryQueue::new()
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("counts", &self.lock().counts)
            .finish_non_exhaustive()
    }
}

/// Whether a job is added under the state lock: it has a name, parents, a
/// unique key or limits (the others only take the ingress lock).
fn goes_locked(job: &NewJob) -> bool {
    job.is_linked() || job.unique.is_some() || !job.limits.is_empty()
}

fn idx(id: JobId) -> Option<usize> {
    (id.0 as usize).checked_sub(1)
}

fn id_of(i: u32) -> JobId {
    JobId(i as u64 + 1)
}

/// Counts as a reader sees them: `unstarted` of the running ones are claims
/// not yet started, counted queued.
fn counted(mut c: Counts, unstarted: u64) -> Counts {
    c.running -= unstarted;
    c.queued += unstarted;
    c
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Ingress {
    fn add(&mut self, job: NewJob, now: i64) -> Enqueued {
        if let Some(k) = &job.idempotency_key {
            if let Some(&existing) = self.keys.get(k) {
                return Enqueued::Duplicate(existing);
            }
        }
        let task = match &self.last {
            Some((name, t)) if *name == job.task => *t,
            _ => {
                let t = match self.task_ids.get(&job.task) {
                    Some(&t) => t,
                    None => {
                        let t = self.tasks.len() as u32;
                        self.tasks.push(job.task.clone());
                        self.task_ids.insert(job.task.clone(), t);
                        t
                    }
                };
                self.last = Some((job.task, t));
                t
            }
        };
        let id = JobId(self.next);
        self.next += 1;
        if let Some(k) = job.idempotency_key {
            self.keys.insert(k, id);
        }
        let rec = Rec {
            task,
            state: JobState::Queued,
            attempt: 0,
            claims: 0,
            max_attempts: job.settings.max_attempts,
            worker: 0,
            cancel_requested: false,
            started: false,
            lost: 0,
            tag: 0,
            lease_until: 0,
            claimed_at: 0,
            enqueued_at: now,
            ready_at: now,
            params: job.params,
            settings: job.settings,
            attempts: Attempts::None,
            output: Output::none(),
            flow: None,
            released: 0,
        };
        self.fresh
            .push((rec, job.run_at.map_or(now, Timestamp::as_micros)));
        Enqueued::New(id)
    }
}

impl State {
    /// Job `i`'s record; for a job whose chunk is gone, one that ended,
    /// forgotten.
    fn rec(&self, i: usize) -> &Rec {
        self.chunks[i / CHUNK]
            .get(i % CHUNK)
            .unwrap_or(&self.gone.0)
    }

    /// Job `i`'s record, which is not in a chunk that is gone: only
    /// forgotten jobs are, and none of them changes.
    fn rec_mut(&mut self, i: usize) -> &mut Rec {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    /// The index of a job that is in the queue (not forgotten).
    fn get(&self, id: JobId) -> Option<usize> {
        idx(id).filter(|&i| i < self.len && self.rec(i).released != GONE)
    }

    /// The indices of the jobs in chunks not freed (forgotten ones among them).
    fn live(&self) -> std::ops::Range<usize> {
        self.live_from..self.len
    }

    /// A reader is done with job `i`, which ended: forgotten once every
    /// reader is, and no job needs it.
    fn reported(&mut self, i: usize) {
        let readers = self.readers;
        let r = self.rec(i);
        if readers == 0 || r.released == GONE || !r.state.is_terminal() {
            return;
        }
        let r = self.rec_mut(i);
        r.released = r.released.saturating_add(1).min(GONE - 1);
        if r.released >= readers {
            self.forget(i as u32);
        }
    }

    /// Forgets job `i` if every reader released it and no job pins it,
    /// then the jobs it pinned that are free now.
    fn forget(&mut self, i: u32) {
        let mut todo = vec![i];
        while let Some(i) = todo.pop() {
            let r = self.rec(i as usize);
            if r.released == GONE
                || r.released < self.readers
                || r.flow.as_ref().is_some_and(|f| f.pins > 0)
            {
                continue;
            }
            let (task, state) = (r.task as usize, r.state);
            let r = self.rec_mut(i as usize);
            let flow = r.flow.take();
            r.params = JobParams::empty();
            r.attempts = Attempts::None;
            r.output = Output::none();
            r.released = GONE;
            if let Some(f) = flow {
                let pinned = f.after.iter().map(|a| a.0).chain(f.cause);
                for p in pinned {
                    if self.unpin(p) {
                        todo.push(p);
                    }
                }
            }
            if self.forgotten_by_task.len() <= task {
                self.forgotten_by_task.resize(task + 1, Counts::default());
            }
            *self.forgotten_by_task[task].get_mut(state) += 1;
            self.forgotten += 1;
            let c = i as usize / CHUNK;
            self.forgotten_in[c] += 1;
            if self.forgotten_in[c] as usize == CHUNK {
                self.chunks[c] = Vec::new();
                while self.live_from < self.len
                    && self.forgotten_in[self.live_from / CHUNK] as usize == CHUNK
                {
                    self.live_from += CHUNK;
                }
            }
        }
    }

    /// Notes the records held now, after one was added.
    fn note_held(&mut self) {
        let held = self.len as u64 - self.forgotten;
        self.most_held = self.most_held.max(held);
    }

    /// Files a job moved in from the ingress: due or not as it was when
    /// it was submitted (a job due later is tagged once it is due).
    fn insert(&mut self, rec: Rec, at: i64, tag: Tag) {
        let submitted = rec.enqueued_at;
        let i = self.push(rec);
        self.make_waiting_as(i, at, submitted, tag);
    }

    /// Brings the per-task flow state up to the known tasks.
    fn tasks_known(&mut self) {
        if self.fl.tasks.len() < self.tasks.len() {
            self.fl.tasks_known(&self.tasks);
        }
    }

    /// The frontier `V`: the smallest tag of a due, waiting job at the top
    /// priority, or (none waiting) one more than the largest tag given.
    fn frontier(&mut self) -> u32 {
        loop {
            let Some(mut b) = self.ready.first_entry() else {
                return self.fl.next_tag;
            };
            while let Some((t, i)) = b.get().peek() {
                // A job forgotten since is in a chunk that may be gone.
                let r = self.chunks[i as usize / CHUNK].get(i as usize % CHUNK);
                if r.is_some_and(|r| r.state == JobState::Queued && r.tag == t) {
                    return t;
                }
                b.get_mut().pop();
            }
            b.remove();
        }
    }

    /// The job that keeps a new job with unique key `u` from being added:
    /// a waiting holder of the key, else (with `within`) its latest
    /// success that recent.
    fn unique_conflict(&mut self, u: &Unique, now: i64) -> Option<Conflict> {
        let k = self.fl.find_unique(&u.key)? as usize;
        let mut live = std::mem::take(&mut self.fl.uniques[k].live);
        live.retain(|&j| !self.rec(j as usize).state.is_terminal());
        let holder = live.iter().copied().find(|&j| {
            let r = self.rec(j as usize);
            matches!(
                r.state,
                JobState::Queued | JobState::Scheduled | JobState::Blocked
            )
        });
        let entry = &mut self.fl.uniques[k];
        entry.live = live;
        if let Some(h) = holder {
            return Some(Conflict::Holder(h));
        }
        let d = u.within?;
        let (end, j) = entry.success?;
        (end >= now.saturating_sub(micros(d))).then_some(Conflict::Recent(j))
    }

    /// A waiting job `h` takes new parameters and run-at.
    fn replace(&mut self, h: u32, params: JobParams, at: i64, now: i64) {
        let rec = self.rec_mut(h as usize);
        rec.params = params;
        match rec.state {
            JobState::Queued if at <= now => {}
            JobState::Queued | JobState::Scheduled => self.make_waiting(h, at, now),
            // A blocked job takes its run-at once released.
            _ => rec.ready_at = at,
        }
    }

    /// Job `i`, with a unique key or not, succeeded at `end`.
    fn succeeded_unique(&mut self, i: u32, end: i64) {
        let Some(u) = self.lim(i).and_then(|l| l.unique) else {
            return;
        };
        let entry = &mut self.fl.uniques[u as usize];
        if entry.success.is_none_or(|(e, _)| e <= end) {
            entry.success = Some((end, i));
        }
    }

    /// What holds job `i`, queued and due, from being claimed now.
    fn hold_of(&self, i: u32, now: i64) -> Option<Hold> {
        let r = self.rec(i as usize);
        let lim = r.flow.as_ref().and_then(|f| f.lim.as_ref());
        let why = self.fl.check(r.task, lim, now).err()?;
        Some(self.fl.hold(why, &self.tasks[r.task as usize]))
    }

    /// Keeps tags within `u32`: once the next tag passes [`REBASE_AT`],
    /// every tag in use is moved down by the smallest one (by at most
    /// [`REBASE_AT`] less [`TAG_SPAN`], so that one job holding an old tag
    /// cannot make this happen at every claim: tags further behind the
    /// frontier than that become ties, ordered by id). Order is kept.
    fn rebase_tags(&mut self) {
        let next = self.fl.next_tag;
        let in_use =
            |r: &Rec| matches!(r.state, JobState::Queued | JobState::Running) && r.tag != UNTAGGED;
        let mut m = next;
        for i in self.live() {
            let r = self.rec(i);
            if in_use(r) {
                m = m.min(r.tag);
            }
        }
        let m = m.max(next.saturating_sub(TAG_SPAN));
        for i in self.live() {
            if in_use(self.rec(i)) {
                let r = self.rec_mut(i);
                r.tag = r.tag.saturating_sub(m);
            }
        }
        let old = std::mem::take(&mut self.ready);
        for (p, mut fair) in old {
            let mut run = Vec::new();
            while let Some((t, i)) = fair.pop() {
                let r = self.rec(i as usize);
                if r.state == JobState::Queued && r.tag == t.saturating_sub(m) {
                    run.push((r.tag, i));
                }
            }
            // Tags clamped to 0 tie, and ties go by index.
            run.sort_unstable();
            self.ready.entry(p).or_default().push_run(run);
        }
        self.fl.rebase(m);
    }

    /// The limits job `i` carries, if any.
    fn lim(&self, i: u32) -> Option<&limits::Lim> {
        self.rec(i as usize)
            .flow
            .as_ref()
            .and_then(|f| f.lim.as_ref())
    }

    /// Appends a record, counted queued until its state is set.
    fn push(&mut self, rec: Rec) -> u32 {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
            self.forgotten_in.push(0);
        }
        self.chunks.last_mut().expect("a chunk").push(rec);
        let i = self.len as u32;
        self.len += 1;
        self.counts.queued += 1;
        self.note_held();
        i
    }

    fn set_state(&mut self, i: u32, to: JobState) {
        let rec = &self.chunks[i as usize / CHUNK][i as usize % CHUNK];
        let from = rec.state;
        if from == JobState::Running {
            self.stalled = None;
            if !rec.started {
                self.unstarted -= 1;
            }
            let lim = rec.flow.as_ref().and_then(|f| f.lim.as_ref());
            self.fl.leave(rec.task, lim);
        }
        *self.counts.get_mut(from) -= 1;
        *self.counts.get_mut(to) += 1;
        self.rec_mut(i as usize).state = to;
    }

    /// Files job `i` as ready, in (tag, index) order within its priority.
    /// Entries of jobs that moved on since are skipped when popped, so a job
    /// may be listed more than once; only an entry matching its current
    /// tag, while it is queued, counts.
    fn push_ready(&mut self, i: u32) {
        self.stalled = None;
        let rec = self.rec(i as usize);
        let (p, key) = (rec.settings.priority, (rec.tag, i));
        let bucket = match self.ready.last_entry() {
            // Most jobs share one priority: skip the map lookup for it.
            Some(last) if last.key().0 == p => last.into_mut(),
            _ => {
                let spare = &mut self.spare_fair;
                self.ready
                    .entry(Reverse(p))
                    .or_insert_with(|| spare.take().unwrap_or_default())
            }
        };
        bucket.push(key);
    }

    /// Puts job `i` back to waiting: queued now (at the frontier of the
    /// fair order), or scheduled for `at`.
    fn make_waiting(&mut self, i: u32, at: i64, now: i64) {
        self.make_waiting_as(i, at, now, Tag::Frontier);
    }

    /// Puts job `i` back to waiting, with `tag` if it is due now.
    fn make_waiting_as(&mut self, i: u32, at: i64, now: i64, tag: Tag) {
        let rec = self.rec_mut(i as usize);
        rec.ready_at = at.max(rec.enqueued_at);
        if at > now {
            self.set_state(i, JobState::Scheduled);
            self.scheduled.push(Reverse((at, i)));
        } else {
            let t = match tag {
                Tag::Keep => None,
                Tag::Insert { fair, v } => Some(self.fl.insert_tag(fair, v)),
                Tag::Frontier => {
                    let v = self.frontier();
                    Some(self.fl.give(v))
                }
            };
            if let Some(t) = t {
                self.rec_mut(i as usize).tag = t;
            }
            self.set_state(i, JobState::Queued);
            self.push_ready(i);
        }
    }

    /// Queues the scheduled jobs whose run-at has come. A claim (`tag`)
    /// gives each the frontier as its tag, and files it; a reader leaves
    /// them untagged for the next claim, as the fair order wants them
    /// tagged by the first claim after their run-at.
    fn promote_due(&mut self, now: i64, tag: bool) {
        if tag && !self.untagged.is_empty() {
            let v = self.frontier();
            for i in std::mem::take(&mut self.untagged) {
                let rec = self.rec_mut(i as usize);
                if rec.state == JobState::Queued && rec.tag == UNTAGGED {
                    rec.tag = v;
                    self.fl.give(v);
                    self.push_ready(i);
                }
            }
        }
        while let Some(&Reverse((at, i))) = self.scheduled.peek() {
            if at > now {
                break;
            }
            self.scheduled.pop();
            let rec = self.rec(i as usize);
            if rec.state == JobState::Scheduled && rec.ready_at == at {
                self.set_state(i, JobState::Queued);
                if tag {
                    let v = self.frontier();
                    self.rec_mut(i as usize).tag = self.fl.give(v);
                    self.push_ready(i);
                } else {
                    self.rec_mut(i as usize).tag = UNTAGGED;
                    self.untagged.push(i);
                    self.stalled = None;
                }
            }
        }
    }

    fn intern_worker(&mut self, w: &str) -> u32 {
        if let Some(&i) = self.worker_ids.get(w) {
            return i;
        }
        let i = self.workers.len() as u32;
        self.workers.push(w.to_string());
        self.worker_ids.insert(w.to_string(), i);
        i
    }

    fn holds(&self, worker: Option<u32>, lease: &Lease) -> Option<u32> {
        let i = self.get(lease.job)?;
        let rec = self.rec(i);
        let ok = rec.state == JobState::Running
            && rec.attempt == lease.attempt
            && u64::from(rec.claims) == lease.claim
            && worker.is_some_and(|w| w == rec.worker);
        ok.then_some(i as u32)
    }

    fn view(&self, i: usize) -> JobView {
        let r = self.rec(i);
        let f = r.flow.as_deref();
        JobView {
            // The memory queue keeps no schedules: none of its jobs has a tick.
            schedule: None,
            name: f.and_then(|f| f.name.clone()),
            after: f.map_or_else(Vec::new, |f| f.after.iter().map(|a| id_of(a.0)).collect()),
            run_if: f.map_or_else(Default::default, |f| f.run_if),
            cancelled_by: f.and_then(|f| f.cause).map(|c| {
                Box::new(Cause {
                    job: id_of(c),
                    name: self
                        .rec(c as usize)
                        .flow
                        .as_ref()
                        .and_then(|f| f.name.clone()),
                })
            }),
            id: id_of(i as u32),
            task: self.tasks[r.task as usize].to_string(),
            params: r.params.clone(),
            state: r.shown(),
            attempts: r.attempts.to_vec(),
            output: r.output.clone(),
            enqueued_at: Timestamp::from_micros(r.enqueued_at),
            settings: Some((*r.settings).clone()),
            run_at: matches!(r.shown(), JobState::Queued | JobState::Scheduled)
                .then(|| Timestamp::from_micros(r.ready_at)),
            keys: f
                .and_then(|f| f.lim.as_ref())
                .map(|l| self.fl.keys_of(l))
                .unwrap_or_default(),
        }
    }
}

impl Queue for MemoryQueue {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(Durability::Process, Writes::BetweenClaims).with_all()
    }

    fn as_admin(&self) -> Option<&dyn Admin> {
        Some(self)
    }

    fn as_inspect(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    fn as_flow(&self) -> Option<&dyn FlowControl> {
        Some(self)
    }

    fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.iter().any(goes_locked) {
            return self.insert_linked(jobs);
        }
        let now = self.clock.now().as_micros();
        let out: Vec<Enqueued> = {
            let mut ing = self.lock_ingress();
            let out = jobs.into_iter().map(|job| ing.add(job, now)).collect();
            self.arriving
                .store(ing.fresh.len() as u64, Ordering::Release);
            out
        };
        self.wake();
        Ok(out)
    }

    fn insert_one(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        if goes_locked(&job) {
            return Ok(self.insert_linked(vec![job])?.remove(0));
        }
        let now = self.clock.now().as_micros();
        let e = {
            let mut ing = self.lock_ingress();
            let e = ing.add(job, now);
            self.arriving
                .store(ing.fresh.len() as u64, Ordering::Release);
            e
        };
        self.wake();
        Ok(e)
    }

    /// No I/O: the jobs are added as the future is made.
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
        let now = self.clock.now().as_micros();
        let until = now.saturating_add(micros(lease));
        let mut st = self.lock();
        if st.fl.next_tag >= REBASE_AT {
            st.rebase_tags();
        }
        st.promote_due(now, true);
        let w = st.intern_worker(worker);
        let only: Option<Vec<u32>> = tasks.map(|names| {
            names
                .iter()
                .filter_map(|n| st.tasks.iter().position(|t| t == n).map(|p| p as u32))
                .collect()
        });
        st.tasks_known();
        // Jobs passed over, by priority, in the order they came off.
        let mut skipped: Vec<(i32, Vec<(u32, u32)>)> = Vec::new();
        // Held jobs looked at: a claim looks at a bounded window of them.
        let mut held = 0usize;
        // The earliest time a held job may be claimed.
        let mut frees_at = i64::MAX;
        let window = max.saturating_mul(16).max(1024);
        // Claimed jobs that are after others: their parents' outputs, next.
        let mut linked_at: Vec<(usize, u32)> = Vec::new();
        let mut out = Vec::with_capacity(max.min(st.counts.queued as usize));
        let st = &mut *st;
        'buckets: while out.len() < max && held < window {
            let Some(mut bucket) = st.ready.first_entry() else {
                break;
            };
            let priority = bucket.key().0;
            while out.len() < max {
                let Some((tag, i)) = bucket.get_mut().pop() else {
                    st.spare_fair = Some(bucket.remove());
                    continue 'buckets;
                };
                let Some(rec) = st.chunks[i as usize / CHUNK].get_mut(i as usize % CHUNK) else {
                    // A job forgotten since: its chunk is gone.
                    continue;
                };
                if rec.state != JobState::Queued || rec.tag != tag {
                    continue;
                }
                let pass = only.as_ref().is_some_and(|o| !o.contains(&rec.task));
                let lim = rec.flow.as_ref().and_then(|f| f.lim.as_ref());
                let mut rated = false;
                let mut hold = false;
                if !pass && (st.fl.active || lim.is_some()) {
                    match st.fl.check(rec.task, lim, now) {
                        Ok(r) => rated = r,
                        Err(why) => {
                            hold = true;
                            held += 1;
                            frees_at = frees_at.min(st.fl.frees_at(why, rec.task, now));
                        }
                    }
                }
                if pass || hold {
                    match skipped.last_mut() {
                        Some((p, v)) if *p == priority => v.push((tag, i)),
                        _ => skipped.push((priority, vec![(tag, i)])),
                    }
                    if held >= window {
                        break 'buckets;
                    }
                    continue;
                }
                let slotted = st.fl.slotted(rec.task, lim);
                st.fl.take(rec.task, lim, now);
                rec.attempt += 1;
                rec.claims += 1;
                rec.worker = w;
                rec.lease_until = until;
                rec.claimed_at = now;
                rec.started = false;
                rec.state = JobState::Running;
                let mut settings = (*rec.settings).clone();
                settings.max_attempts = rec.max_attempts;
                let linked = rec.flow.as_ref().is_some_and(|f| !f.after.is_empty());
                out.push(Claimed {
                    id: id_of(i),
                    attempt: rec.attempt,
                    claim: u64::from(rec.claims),
                    task: st.tasks[rec.task as usize].clone(),
                    params: rec.params.clone(),
                    settings,
                    ready_at: Timestamp::from_micros(rec.ready_at),
                    parents: Output::none(),
                    admitted_at: rated.then(|| Timestamp::from_micros(now)),
                    slotted,
                    schedule: None,
                });
                if linked {
                    linked_at.push((out.len() - 1, i));
                }
                st.counts.queued -= 1;
                st.counts.running += 1;
                st.unstarted += 1;
            }
        }
        for (pos, i) in linked_at {
            out[pos].parents = st.parents_of(i);
        }
        // Skipped jobs came off in order: back they go, as a run each.
        let passed = skipped.iter().map(|(_, r)| r.len()).sum::<usize>() > held;
        for (p, run) in skipped {
            st.ready.entry(Reverse(p)).or_default().push_run(run);
        }
        // Every due job it saw was held (none of other tasks passed over,
        // the whole window or the whole queue seen): say when to come back.
        if out.is_empty() && held > 0 && !passed {
            st.stalled = Some(frees_at);
        }
        Ok(out)
    }

    fn started(&self, worker: &str, started: &[(Lease, Timestamp)]) -> Result<(), QueueError> {
        let mut st = self.lock();
        let w = st.worker_ids.get(worker).copied();
        for (l, at) in started {
            if let Some(i) = st.holds(w, l) {
                let rec = st.rec_mut(i as usize);
                let first = !rec.started;
                rec.started = true;
                rec.claimed_at = at.as_micros();
                if first {
                    st.unstarted -= 1;
                }
            }
        }
        Ok(())
    }

    fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<HeartbeatReply, QueueError> {
        let now = self.clock.now().as_micros();
        let mut st = self.lock();
        let w = st.worker_ids.get(worker).copied();
        let mut reply = HeartbeatReply::default();
        for l in leases {
            match st.holds(w, l) {
                Some(i) => {
                    let rec = st.rec_mut(i as usize);
                    rec.lease_until = now.saturating_add(micros(lease));
                    if rec.cancel_requested {
                        reply.cancel_requested.push(*l);
                    }
                    let (task, started) = (rec.task, rec.started);
                    if !started && st.fl.is_paused(task) {
                        reply.paused.push(*l);
                    }
                }
                None => reply.lost.push(*l),
            }
        }
        drop(st);
        if let Some(w) = self.lock_registered().get_mut(worker) {
            w.last_heartbeat = Timestamp::from_micros(now);
        }
        Ok(reply)
    }

    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError> {
        let now = self.clock.now().as_micros();
        let mut out = Vec::with_capacity(done.len());
        let mut cascade = Cascade::default();
        let mut wake = false;
        {
            let mut st = self.lock();
            let w = st.worker_ids.get(worker).copied();
            for c in done {
                let Some(i) = st.holds(w, &c.lease) else {
                    out.push(Err(Fenced(c.lease)));
                    continue;
                };
                let rec = st.rec_mut(i as usize);
                rec.attempts.push(c.record.clone());
                rec.cancel_requested = false;
                match &c.verdict {
                    Verdict::Succeeded(output) => {
                        rec.output = output.clone().capped();
                        st.set_state(i, JobState::Succeeded);
                        let end = c.record.started_at.as_micros() + micros(c.record.duration());
                        st.succeeded_unique(i, end);
                    }
                    Verdict::Retry { at } => {
                        st.make_waiting(i, at.as_micros(), now);
                        wake = true;
                    }
                    Verdict::Dead => st.set_state(i, JobState::Dead),
                    Verdict::Cancelled => st.set_state(i, JobState::Cancelled),
                }
                if st.rec(i as usize).state.is_terminal() {
                    st.settle(i, now, &mut cascade);
                }
                out.push(Ok(()));
            }
        }
        if wake || !cascade.unblocked.is_empty() {
            self.wake();
        }
        Ok(Recorded {
            results: out,
            cascade,
        })
    }

    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError> {
        let now = self.clock.now().as_micros();
        let mut out = Vec::with_capacity(leases.len());
        {
            let mut st = self.lock();
            let w = st.worker_ids.get(worker).copied();
            for l in leases {
                match st.holds(w, l) {
                    Some(i) => {
                        let rec = st.rec_mut(i as usize);
                        rec.attempt -= 1;
                        let ready_at = rec.ready_at;
                        st.make_waiting_as(i, ready_at.min(now), now, Tag::Keep);
                        out.push(Ok(()));
                    }
                    None => out.push(Err(Fenced(*l))),
                }
            }
        }
        self.wake();
        Ok(out)
    }

    fn rescue(&self, which: Rescue) -> Result<Rescued, QueueError> {
        let now = self.clock.now().as_micros();
        let mut out = Vec::new();
        let mut cascade = Cascade::default();
        {
            let mut st = self.lock();
            if st.counts.running == 0 {
                return Ok(Rescued::default());
            }
            let only = match &which {
                Rescue::Expired => None,
                Rescue::Worker(w) => match st.worker_ids.get(w.as_str()) {
                    Some(&w) => Some(w),
                    None => return Ok(Rescued::default()),
                },
            };
            for i in st.live() {
                let rec = st.rec(i);
                if rec.state != JobState::Running {
                    continue;
                }
                let hit = match only {
                    Some(w) => rec.worker == w,
                    None => rec.lease_until < now,
                };
                if !hit {
                    continue;
                }
                if !rec.started && u32::from(rec.lost) < rec.max_attempts {
                    // Claimed ahead, never started: undone, not counted.
                    let i = i as u32;
                    let ready_at = rec.ready_at;
                    let r = st.rec_mut(i as usize);
                    r.attempt -= 1;
                    r.lost = r.lost.saturating_add(1);
                    st.make_waiting_as(i, ready_at.min(now), now, Tag::Keep);
                    out.push(id_of(i));
                    continue;
                }
                let worker = &st.workers[rec.worker as usize];
                let record = crate::lost_attempt(
                    rec.attempt,
                    worker,
                    rec.started,
                    rec.claimed_at,
                    rec.ready_at,
                    now,
                );
                let exhausted = rec.attempt >= rec.max_attempts;
                st.rec_mut(i).attempts.push(record);
                if exhausted {
                    st.set_state(i as u32, JobState::Dead);
                    st.settle(i as u32, now, &mut cascade);
                } else {
                    st.make_waiting_as(i as u32, now, now, Tag::Keep);
                }
                out.push(id_of(i as u32));
            }
        }
        if !out.is_empty() {
            self.wake();
        }
        Ok(Rescued { ids: out, cascade })
    }

    fn counts(&self) -> Result<Counts, QueueError> {
        let st = self.lock_due();
        Ok(counted(st.counts, st.unstarted))
    }

    fn next_due(&self) -> Result<Option<Timestamp>, QueueError> {
        let mut st = self.lock_due();
        // Jobs held at the last claim wait for a change, or their window.
        let held = match st.stalled {
            Some(t) if st.counts.queued > 0 => Some(t),
            _ if st.counts.queued > 0 => return Ok(Some(self.clock.now())),
            _ => None,
        };
        let mut due = None;
        while let Some(&Reverse((at, i))) = st.scheduled.peek() {
            let rec = st.rec(i as usize);
            if rec.state == JobState::Scheduled && rec.ready_at == at {
                due = Some(at);
                break;
            }
            st.scheduled.pop();
        }
        let t = match (held.filter(|&t| t < i64::MAX), due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(t.map(Timestamp::from_micros))
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn set_waker(&self, waker: Waker) {
        self.waker.set(waker);
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<Result<(), NameTaken>, QueueError> {
        let now = self.clock.now();
        let holder = {
            let mut registered = self.lock_registered();
            match registered.get(&worker.name).filter(|w| !w.lapsed(now)) {
                Some(holder) => Some(holder.clone()),
                None => {
                    let me = LiveWorker {
                        worker: worker.clone(),
                        started_at: now,
                        last_heartbeat: now,
                        leases: 0,
                    };
                    registered.insert(worker.name.clone(), me);
                    None
                }
            }
        };
        Ok(match holder {
            None => Ok(()),
            Some(mut holder) => {
                holder.leases = self
                    .leases_by_worker()
                    .get(&worker.name)
                    .copied()
                    .unwrap_or(0);
                Err(NameTaken(holder))
            }
        })
    }

    fn unregister_worker(&self, name: &str) -> Result<(), QueueError> {
        self.lock_registered().remove(name);
        Ok(())
    }
}

impl Admin for MemoryQueue {
    fn cancel(&self, ids: &[JobId]) -> Result<Cancelled, QueueError> {
        let now = self.clock.now().as_micros();
        let mut st = self.lock();
        let mut cascade = Cascade::default();
        let results = ids
            .iter()
            .map(|&id| {
                let Some(i) = st.get(id) else {
                    return CancelResult::NotFound;
                };
                match st.rec(i).state {
                    JobState::Queued | JobState::Scheduled | JobState::Blocked => {
                        st.set_state(i as u32, JobState::Cancelled);
                        st.settle(i as u32, now, &mut cascade);
                        CancelResult::Cancelled
                    }
                    JobState::Running => {
                        st.rec_mut(i).cancel_requested = true;
                        CancelResult::Requested
                    }
                    s => CancelResult::AlreadyFinished(s),
                }
            })
            .collect();
        drop(st);
        if !cascade.unblocked.is_empty() {
            self.wake();
        }
        Ok(Cancelled { results, cascade })
    }

    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError> {
        let mut st = self.lock();
        let mut out = Vec::new();
        for i in st.live() {
            if matches!(
                st.rec(i).state,
                JobState::Queued | JobState::Scheduled | JobState::Blocked
            ) {
                st.set_state(i as u32, JobState::Cancelled);
                out.push(id_of(i as u32));
            }
        }
        Ok(out)
    }

    fn retry(&self, id: JobId) -> Result<Option<Cascade>, QueueError> {
        let now = self.clock.now().as_micros();
        let done = {
            let mut st = self.lock();
            let Some(i) = st.get(id) else {
                return Ok(None);
            };
            // A job released to a reader was read as it ended: it stays so.
            if !matches!(st.rec(i).state, JobState::Dead | JobState::Cancelled)
                || st.rec(i).released > 0
                || st.parents_fail(i as u32)
            {
                return Ok(None);
            }
            let rec = st.rec_mut(i);
            rec.max_attempts = rec.attempt + rec.settings.max_attempts;
            rec.cancel_requested = false;
            if !st.block_if_pending(i as u32) {
                st.make_waiting(i as u32, now, now);
            }
            let mut cascade = Cascade::default();
            st.reblock(i as u32, now, &mut cascade);
            cascade
        };
        self.wake();
        Ok(Some(done))
    }

    fn workflow(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let st = self.lock();
        Ok(st.get(id).map_or_else(Vec::new, |i| st.workflow(i as u32)))
    }
}

impl Inspect for MemoryQueue {
    fn counts_by_task(&self) -> Result<Vec<(String, Counts)>, QueueError> {
        let st = self.lock_due();
        let mut by = vec![(Counts::default(), 0u64); st.tasks.len()];
        for (t, c) in st.forgotten_by_task.iter().enumerate() {
            by[t].0 = *c;
        }
        for i in st.live() {
            let r = st.rec(i);
            if r.released == GONE {
                continue;
            }
            let (counts, unstarted) = &mut by[r.task as usize];
            *counts.get_mut(r.state) += 1;
            if r.state == JobState::Running && !r.started {
                *unstarted += 1;
            }
        }
        let mut out: Vec<(String, Counts)> = st
            .tasks
            .iter()
            .zip(by)
            .filter(|(_, (c, _))| c.total() > 0)
            .map(|(t, (c, u))| (t.to_string(), counted(c, u)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn get(&self, id: JobId) -> Result<Option<JobView>, QueueError> {
        let st = self.lock_due();
        Ok(st.get(id).map(|i| st.view(i)))
    }

    fn dependents(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let st = self.lock();
        Ok(st
            .get(id)
            .map_or_else(Vec::new, |i| st.dependents(i as u32)))
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<JobView>, QueueError> {
        let st = self.lock_due();
        let start = filter.after.map_or(0, |a| a.0 as usize).max(st.live_from);
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let task = match &filter.task {
            Some(t) => match st.tasks.iter().position(|n| n.as_str() == t.as_str()) {
                Some(p) => Some(p as u32),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let key = filter.key.as_deref().map(|k| st.fl.find_filter_key(k));
        let keyed = |r: &Rec| {
            key.is_none_or(|k| {
                r.flow
                    .as_ref()
                    .and_then(|f| f.lim.as_ref())
                    .is_some_and(|l| l.carries(k))
            })
        };
        // The key is checked here; the rest of the filter on the view.
        let rest = ListFilter {
            key: None,
            ..filter.clone()
        };
        Ok((start..st.len)
            .filter(|&i| {
                let r = st.rec(i);
                r.released != GONE
                    && filter.state.is_none_or(|s| s == r.shown())
                    && task.is_none_or(|t| t == r.task)
                    && keyed(r)
            })
            .map(|i| st.view(i))
            .filter(|v| rest.admits(v, &[]))
            .take(limit)
            .collect())
    }

    fn finished_per_minute(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<FinishedCount>, QueueError> {
        let st = self.lock();
        Ok(count_finished(
            st.live().flat_map(|i| st.rec(i).attempts.as_slice()),
            since,
            until,
        ))
    }

    fn live_workers(&self) -> Result<Vec<LiveWorker>, QueueError> {
        let now = self.clock.now();
        let mut live: Vec<LiveWorker> = self
            .lock_registered()
            .values()
            .filter(|w| !w.lapsed(now))
            .cloned()
            .collect();
        let leases = self.leases_by_worker();
        for w in &mut live {
            w.leases = leases.get(&w.worker.name).copied().unwrap_or(0);
        }
        Ok(live)
    }
}

impl MemoryQueue {
    fn task_index(st: &State, task: &str) -> Option<u32> {
        st.tasks
            .iter()
            .position(|t| t.as_str() == task)
            .map(|p| p as u32)
    }

    /// Claims not started of tasks that `paused` holds.
    fn unstarted_of(st: &State, task: Option<u32>) -> Vec<JobId> {
        let mut out = Vec::new();
        if st.unstarted == 0 {
            return out;
        }
        for i in st.live() {
            let r = st.rec(i);
            if r.state == JobState::Running
                && !r.started
                && task.is_none_or(|t| t == r.task)
                && st.fl.is_paused(r.task)
            {
                out.push(id_of(i as u32));
            }
        }
        out
    }
}

impl FlowControl for MemoryQueue {
    fn set_limit(&self, change: &LimitChange) -> Result<Option<StoredLimit>, QueueError> {
        check_change(change)?;
        let now = {
            let mut st = self.lock();
            let st = &mut *st;
            st.stalled = None;
            st.fl.set_limit(
                &change.target,
                change.concurrency,
                change.rate,
                change.clear,
                &st.tasks,
            )
        };
        self.wake();
        Ok(now)
    }

    fn limits(&self) -> Result<Vec<StoredLimit>, QueueError> {
        Ok(self.lock().fl.limits())
    }

    fn pause(&self, task: Option<&TaskName>) -> Result<Vec<JobId>, QueueError> {
        let mut st = self.lock();
        let st = &mut *st;
        st.fl.pause(task.map(TaskName::as_str), &st.tasks);
        let t = match task {
            Some(t) => match MemoryQueue::task_index(st, t.as_str()) {
                Some(t) => Some(t),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        Ok(MemoryQueue::unstarted_of(st, t))
    }

    fn resume(&self, task: Option<&TaskName>) -> Result<bool, QueueError> {
        let was = {
            let mut st = self.lock();
            let st = &mut *st;
            st.stalled = None;
            st.fl.resume(task.map(TaskName::as_str), &st.tasks)
        };
        self.wake();
        Ok(was)
    }

    fn paused(&self) -> Result<Paused, QueueError> {
        let (all, tasks) = self.lock().fl.paused();
        Ok(Paused { all, tasks })
    }

    fn unstarted(&self) -> Result<Vec<JobId>, QueueError> {
        let st = self.lock();
        Ok(MemoryQueue::unstarted_of(&st, None))
    }

    fn holds(&self) -> Result<Holds, QueueError> {
        let now = self.clock.now().as_micros();
        let st = self.lock_due();
        let mut by: BTreeMap<Hold, u64> = BTreeMap::new();
        if st.counts.queued > 0 {
            for i in st.live_from as u32..st.len as u32 {
                if st.rec(i as usize).state == JobState::Queued {
                    if let Some(h) = st.hold_of(i, now) {
                        *by.entry(h).or_default() += 1;
                    }
                }
            }
        }
        let mut held: Vec<(Hold, u64)> = by.into_iter().collect();
        held.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Holds { held })
    }

    fn hold(&self, id: JobId) -> Result<Option<Hold>, QueueError> {
        let now = self.clock.now().as_micros();
        let st = self.lock_due();
        let Some(i) = st.get(id) else {
            return Ok(None);
        };
        Ok(match st.rec(i).state {
            JobState::Blocked => Some(Hold::Dependencies),
            JobState::Queued => st.hold_of(i as u32, now),
            _ => None,
        })
    }
}

/// Refuses a limit change that no queue can store, saying what is valid.
pub(crate) fn check_change(change: &LimitChange) -> Result<(), QueueError> {
    let bad = |m: String| Err(QueueError::new(crate::QueueErrorKind::InvalidInput, m));
    if change.concurrency == Some(0) {
        return bad(format!(
            "a concurrency limit of {} is at least 1 (to stop a task, pause it)",
            change.target
        ));
    }
    match &change.target {
        LimitTarget::Task(t) if t.is_empty() => {
            return bad("a limit's task name must not be empty".into())
        }
        LimitTarget::Key { name, value } => {
            if let Err(e) = runyard_core::check_key_name(name) {
                return bad(format!("limit of key `{name}`: {e}"));
            }
            if let Some(v) = value {
                if let Err(e) = runyard_core::FlowKey::new(name, v) {
                    return bad(format!("limit of key `{name}:{v}`: {e}"));
                }
            }
        }
        LimitTarget::Task(_) => {}
    }
    if !change.clear && change.concurrency.is_none() && change.rate.is_none() {
        return bad(format!(
            "a change to the limit of {} gives a concurrency, a rate, or clear",
            change.target
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_moved_down_before_they_run_out_keeping_their_order() {
        let q = MemoryQueue::new();
        let job = |_| crate::conformance::job("t", 1, 0);
        let keyed = |_| NewJob {
            limits: runyard_core::JobLimits {
                concurrency_key: Some(("tenant:b".parse().unwrap(), None)),
                ..runyard_core::JobLimits::default()
            },
            ..crate::conformance::job("t", 1, 0)
        };
        // Keyless jobs, then a key's: their tags interleave (0, 0, 1, 1,
        // 2, 2).
        q.enqueue((0..3).map(job).collect()).unwrap();
        q.enqueue((3..6).map(keyed).collect()).unwrap();
        {
            let mut st = q.lock();
            // As if a billion tags had been given since: the jobs' tags
            // sit just below the next one.
            let shift = REBASE_AT - 10;
            for i in st.live() {
                st.rec_mut(i).tag += shift;
            }
            let old = std::mem::take(&mut st.ready);
            for (p, mut fair) in old {
                while let Some((t, i)) = fair.pop() {
                    st.ready.entry(p).or_default().push((t + shift, i));
                }
            }
            st.fl.lift(shift, REBASE_AT);
        }
        let c = q.claim("w", 2, Duration::from_secs(30)).unwrap();
        let ids: Vec<u64> = c.iter().map(|c| c.id.0).collect();
        assert_eq!(ids, vec![1, 4], "the fair order is kept");
        let st = q.lock();
        assert_eq!(st.fl.next_tag, 10, "moved down by the smallest tag in use");
        drop(st);
        // The keyless group's last tag (2) moved down too: a keyless
        // newcomer comes after it, not at the frontier (1) nor far ahead.
        q.enqueue(vec![job(6)]).unwrap();
        assert_eq!(q.lock().fl.next_tag, 10);
        q.enqueue(vec![keyed(7)]).unwrap();
        let c = q.claim("w", 10, Duration::from_secs(30)).unwrap();
        let ids: Vec<u64> = c.iter().map(|c| c.id.0).collect();
        assert_eq!(ids, vec![2, 5, 3, 6, 7, 8]);
    }

    #[test]
    fn plain_batches_stay_one_sorted_run() {
        let q = MemoryQueue::new();
        let lease = Duration::from_secs(30);
        let batch = || {
            (0..100)
                .map(|_| crate::conformance::job("t", 1, 0))
                .collect()
        };
        let mut claimed = Vec::new();
        for _ in 0..3 {
            q.enqueue(batch()).unwrap();
            claimed.extend(q.claim("w", 10, lease).unwrap().iter().map(|c| c.id.0));
        }
        let runs = |q: &MemoryQueue| {
            let st = q.lock();
            let fair = st.ready.values().collect::<Vec<_>>();
            assert_eq!(fair.len(), 1, "one priority");
            fair[0].runs()
        };
        assert_eq!(runs(&q), 1, "batches after a backlog join its run");
        // One submitted while another is in the ingress, drained together.
        q.enqueue(batch()).unwrap();
        q.enqueue(batch()).unwrap();
        assert_eq!(runs(&q), 1);
        claimed.extend(q.claim("w", 1_000, lease).unwrap().iter().map(|c| c.id.0));
        assert_eq!(
            claimed,
            (1..=500).collect::<Vec<u64>>(),
            "first in first out"
        );
    }

    #[test]
    fn next_due_waits_out_jobs_that_every_limit_holds() {
        use runyard_core::JobLimits;
        let q = MemoryQueue::with_clock(Arc::new(crate::ManualClock::default()));
        let lease = Duration::from_secs(30);
        let with = |limits: JobLimits| NewJob {
            limits,
            ..crate::conformance::job("t", 1, 0)
        };
        let one = JobLimits {
            task_concurrency: Some(1),
            ..JobLimits::default()
        };
        q.enqueue(vec![with(one.clone()), with(one)]).unwrap();
        let c = q.claim("w", 10, lease).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(q.next_due().unwrap(), Some(q.now()), "not claimed since");
        assert!(q.claim("w", 10, lease).unwrap().is_empty());
        assert_eq!(q.next_due().unwrap(), None, "held until a slot frees");
        q.release("w", &[c[0].lease()]).unwrap();
        assert_eq!(q.next_due().unwrap(), Some(q.now()), "a slot came back");
        // A used rate: due again when its oldest start leaves the window.
        let clock2 = Arc::new(crate::ManualClock::default());
        let q = MemoryQueue::with_clock(clock2.clone());
        let rated = JobLimits {
            task_rate: Some("1/s".parse().unwrap()),
            ..JobLimits::default()
        };
        q.enqueue(vec![with(rated.clone()), with(rated)]).unwrap();
        let t0 = q.now();
        assert_eq!(q.claim("w", 10, lease).unwrap().len(), 1);
        assert!(q.claim("w", 10, lease).unwrap().is_empty());
        assert_eq!(
            q.next_due().unwrap(),
            Some(t0.saturating_add(Duration::from_secs(1)))
        );
        clock2.advance(Duration::from_secs(1));
        assert_eq!(q.claim("w", 10, lease).unwrap().len(), 1);
    }

    /// Claims every ready job and ends each with `verdict`.
    fn end_all(q: &MemoryQueue, verdict: impl Fn(&Claimed) -> Verdict) -> Vec<JobId> {
        let c = q.claim("w", 100_000, Duration::from_secs(30)).unwrap();
        let starts: Vec<_> = c.iter().map(|c| (c.lease(), q.now())).collect();
        q.started("w", &starts).unwrap();
        let done: Vec<Completion> = c
            .iter()
            .map(|c| {
                let v = verdict(c);
                let kind = match v {
                    Verdict::Succeeded(_) => runyard_core::OutcomeKind::Succeeded,
                    _ => runyard_core::OutcomeKind::Failed,
                };
                Completion {
                    lease: c.lease(),
                    record: crate::conformance::record(q, c.lease(), kind),
                    verdict: v,
                }
            })
            .collect();
        q.complete("w", &done).unwrap();
        c.iter().map(|c| c.id).collect()
    }

    fn after(mut j: NewJob, parent: Parent, key: &str) -> NewJob {
        j.after.push(runyard_core::After {
            parent,
            key: key.to_string(),
            many: false,
        });
        j
    }

    #[test]
    fn a_forgetting_queue_holds_only_the_jobs_not_ended_or_not_read() {
        let q = MemoryQueue::new().forgetting(2);
        let n = 2 * CHUNK + 10;
        q.enqueue((0..n).map(|_| crate::conformance::job("t", 1, 0)).collect())
            .unwrap();
        let ids = end_all(&q, |_| Verdict::Succeeded(Output::none()));
        assert_eq!(ids.len(), n);
        let first: Vec<JobId> = ids[..CHUNK + 5].to_vec();
        // One reader of two: every job is still held.
        q.reported(&first);
        assert_eq!(q.held().0, n as u64);
        assert!(q.inspect().unwrap().get(JobId(1)).unwrap().is_some());
        q.reported(&first);
        assert_eq!(q.held(), ((n - first.len()) as u64, n as u64));
        // Forgotten: not in the queue for any reader, counted still.
        assert_eq!(q.inspect().unwrap().get(JobId(1)).unwrap(), None);
        let listed = q.inspect().unwrap().list(&ListFilter::default()).unwrap();
        assert_eq!(listed.len(), n - first.len());
        assert_eq!(listed[0].id, JobId(first.len() as u64 + 1));
        assert_eq!(q.counts().unwrap().succeeded, n as u64);
        let by_task = q.inspect().unwrap().counts_by_task().unwrap();
        assert_eq!(by_task[0].1.succeeded, n as u64);
        {
            let st = q.lock();
            assert_eq!(st.chunks[0].capacity(), 0, "a chunk all forgotten is freed");
            assert!(st.chunks[1].capacity() > 0);
            assert_eq!(st.live_from, CHUNK);
        }
        // A job not ended is not forgotten, whoever reads it.
        q.enqueue(vec![crate::conformance::job("t", 1, 0)]).unwrap();
        let last = JobId(n as u64 + 1);
        q.reported(&[last]);
        q.reported(&[last]);
        assert!(q.inspect().unwrap().get(last).unwrap().is_some());
        // Nor retried once read.
        assert_eq!(q.admin().unwrap().retry(first[0]).unwrap(), None);
    }

    #[test]
    fn a_forgetting_queue_keeps_a_job_while_a_job_after_it_or_cancelled_by_it_is_held() {
        let q = MemoryQueue::new().forgetting(1);
        let named = |name: &str, j: NewJob| NewJob {
            name: Some(name.to_string()),
            ..j
        };
        let j = || crate::conformance::job("t", 1, 0);
        // 1 ← 2 ← 3 (a chain), and 4 after 1 that waits.
        q.enqueue(vec![
            named("root", j()),
            after(j(), Parent::Batch(0), "root"),
            after(j(), Parent::Batch(1), "mid"),
            after(j(), Parent::Batch(0), "root"),
        ])
        .unwrap();
        // The root fails: 2 and 3 are cancelled naming it, 4 too.
        end_all(&q, |_| Verdict::Dead);
        let view = |id| q.inspect().unwrap().get(JobId(id)).unwrap();
        assert_eq!(view(3).unwrap().state, JobState::Cancelled);
        q.reported(&[JobId(1), JobId(2)]);
        // Job 1 is named by 3 and 4, which are held: it stays, and so does
        // the name they give; 2 stays while 3 is after it.
        assert!(view(1).is_some());
        assert!(view(2).is_some());
        let cause = view(3).unwrap().cancelled_by.unwrap();
        assert_eq!((cause.job, cause.name.as_deref()), (JobId(1), Some("root")));
        q.reported(&[JobId(3)]);
        assert_eq!(view(2), None);
        assert!(view(1).is_some(), "4 still names it");
        q.reported(&[JobId(4)]);
        assert_eq!(view(1), None);
        assert_eq!(q.held().0, 0);

        // A parent that succeeded stays, with its output, for a child
        // that has not run; a batch cannot be after a job forgotten.
        let q = MemoryQueue::new().forgetting(1);
        q.enqueue(vec![named("p", j()), after(j(), Parent::Batch(0), "p")])
            .unwrap();
        end_all(&q, |_| Verdict::Succeeded(Output::from_json("7").unwrap()));
        q.reported(&[JobId(1)]);
        let c = q.claim("w", 10, Duration::from_secs(30)).unwrap();
        assert_eq!(c[0].parents.as_json(), r#"{"p":7}"#);
        let starts = [(c[0].lease(), q.now())];
        q.started("w", &starts).unwrap();
        q.complete(
            "w",
            &[Completion {
                lease: c[0].lease(),
                record: crate::conformance::record(
                    &q,
                    c[0].lease(),
                    runyard_core::OutcomeKind::Succeeded,
                ),
                verdict: Verdict::Succeeded(Output::none()),
            }],
        )
        .unwrap();
        q.reported(&[JobId(2)]);
        assert_eq!(q.held().0, 0);
        let e = q
            .enqueue(vec![after(j(), Parent::Job(JobId(1)), "p")])
            .unwrap_err();
        assert!(e.to_string().contains("not in the queue"), "{e}");
    }

    #[test]
    fn a_job_record_stays_small() {
        // The report of a million jobs is kept in memory (BENCH.md B1: at most
        // 200 MB of peak RSS); this is the part that grows with them, and it
        // holds the first attempt inline. A job's place in a workflow is one
        // pointer, null for most jobs.
        assert!(
            std::mem::size_of::<Rec>() <= 152,
            "{}",
            std::mem::size_of::<Rec>()
        );
    }
}
