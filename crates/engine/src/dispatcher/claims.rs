//! The claimed jobs a dispatcher holds, and the decisions about them that
//! need no executor: how many to claim, which go to their executor now and
//! which wait (for room in their lane, or under their task's concurrency
//! limit), and the release of a running slot when an attempt ends.
//!
//! An entry waits in its lane's list until the lane has room; one whose
//! task is at its limit then waits in the task's blocked list until an
//! attempt of the task ends. Handing an attempt over takes a slot (the
//! lane's `inflight`, the task's count); [`Claims::end`] gives it back,
//! and is the one place that does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use runyard_core::{TaskIndex, Timestamp};
use runyard_exec::Attempt;
use runyard_queue::Lease;
use rustc_hash::FxHashMap;

use super::cutoff::Cutoff;
use super::entry::{Entry, Stage};
use super::lanes::Lanes;
use crate::lane::Lane;
use crate::slab::Slab;

/// The most jobs claimed in one call.
const MAX_CLAIM: usize = 4096;

/// Attempts handed over in one turn, per lane.
pub(super) type Batches = [Vec<Attempt>; 4];

pub(super) struct Claims {
    entries: Slab<Entry>,
    pub(super) lanes: Lanes,
    /// Per task: its attempts with executors.
    task_running: Vec<u32>,
    /// Per task: its concurrency limit, if it has one.
    task_limit: Vec<Option<u32>>,
    /// Claimed jobs waiting for their task's concurrency limit, per task.
    blocked: FxHashMap<u32, VecDeque<u64>>,
    /// Entries in the lanes' waiting lists and in `blocked`.
    waiting: usize,
    /// Entries whose attempt started (and has not ended).
    started: usize,
    /// For a durable queue, the cut-off watchdog, told of every attempt
    /// handed over and of its end (see [`super::cutoff`]).
    cutoff: Option<Arc<Cutoff>>,
}

impl Claims {
    /// `task_limit` holds each task's concurrency limit, by task index.
    pub(super) fn new(lanes: Lanes, task_limit: Vec<Option<u32>>) -> Claims {
        Claims {
            entries: Slab::new(),
            lanes,
            task_running: vec![0; task_limit.len()],
            task_limit,
            blocked: FxHashMap::default(),
            waiting: 0,
            started: 0,
            cutoff: None,
        }
    }

    /// Tells `cutoff` of every attempt handed over, and of its end.
    pub(super) fn watched_by(&mut self, cutoff: Arc<Cutoff>) {
        self.cutoff = Some(cutoff);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries waiting for room or for their task's limit.
    pub(super) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Entries whose attempt has started and not ended: attempts running.
    pub(super) fn started_count(&self) -> usize {
        self.started
    }

    /// How many jobs to claim now: as many as the lanes have room for, at
    /// most [`MAX_CLAIM`], and none while claimed jobs still wait (they
    /// take the room first).
    pub(super) fn claim_size(&self) -> usize {
        if self.waiting > 0 {
            return 0;
        }
        self.lanes.room().min(MAX_CLAIM)
    }

    /// Takes a claimed job: it waits in its lane's list.
    pub(super) fn insert(&mut self, entry: Entry) -> u64 {
        let lane = entry.lane;
        let token = self.entries.insert(entry);
        self.lanes[lane].waiting.push_back(token);
        self.waiting += 1;
        token
    }

    pub(super) fn get(&self, token: u64) -> Option<&Entry> {
        self.entries.get(token)
    }

    /// Every entry's token, lease and when it was claimed.
    pub(super) fn claim_times(&self) -> impl Iterator<Item = (u64, Instant)> + '_ {
        self.entries.iter().map(|(t, e)| (t, e.claimed_at))
    }

    /// Every entry's token and lease.
    pub(super) fn leases(&self) -> Vec<(u64, Lease)> {
        self.entries.iter().map(|(t, e)| (t, e.lease)).collect()
    }

    /// The token and lease of every entry whose attempt may not have
    /// started: waiting, or with an executor that can give it back
    /// unstarted (the async executor starts each attempt it is given, and
    /// a started one is known only when its executor reports starts).
    pub(super) fn unstarted_leases(&self) -> Vec<(u64, Lease)> {
        let unstarted = |e: &Entry| match e.stage {
            Stage::Waiting { .. } => true,
            Stage::Submitted => e.lane != Lane::Async,
            Stage::Started { .. } => false,
        };
        (self.entries.iter())
            .filter(|(_, e)| unstarted(e))
            .map(|(t, e)| (t, e.lease))
            .collect()
    }

    /// Every entry's token.
    pub(super) fn tokens(&self) -> Vec<u64> {
        self.entries.iter().map(|(t, _)| t).collect()
    }

    /// Moves jobs waiting in `lane` into its batch while the lane has room;
    /// those whose task is at its limit wait in the task's blocked list. A
    /// lane is refilled only once it drops to its low water mark (or when
    /// its batch already has attempts), and not while its executor is down.
    pub(super) fn take_ready(&mut self, lane: Lane, now: Instant, batches: &mut Batches) {
        let batch = &mut batches[lane.index()];
        let l = &self.lanes[lane];
        if (l.inflight > l.low_water && batch.is_empty()) || l.down(now) {
            return;
        }
        while self.lanes[lane].room() > 0 {
            let Some(token) = self.lanes[lane].waiting.pop_front() else {
                break;
            };
            let Some(task) = self.entries.get(token).map(|e| e.task) else {
                self.waiting -= 1;
                continue;
            };
            if self.task_has_room(task) {
                self.waiting -= 1;
                batch.push(self.hand_over(token));
            } else {
                self.blocked.entry(task.0).or_default().push_back(token);
            }
        }
    }

    /// Whether an attempt of `task` in `lane` would start at once if
    /// handed over now: the lane's executor has a free thread (not only
    /// room to queue it) and the task is under its limit in this engine.
    pub(super) fn can_start_now(&self, lane: Lane, task: TaskIndex, now: Instant) -> bool {
        let l = &self.lanes[lane];
        !l.down(now) && l.inflight < l.threads && self.task_has_room(task)
    }

    /// Takes a claimed job straight to its executor, past every waiting
    /// one (a rate-limited job admitted to start now, once
    /// [`Claims::can_start_now`] said it can).
    pub(super) fn insert_started_now(&mut self, entry: Entry) -> Attempt {
        let token = self.entries.insert(entry);
        self.hand_over(token)
    }

    /// [`Claims::take_ready`] for every lane.
    pub(super) fn take_all_ready(&mut self, now: Instant) -> Batches {
        let mut batches = Batches::default();
        if self.waiting > 0 {
            for lane in Lane::ALL {
                self.take_ready(lane, now, &mut batches);
            }
        }
        batches
    }

    fn task_has_room(&self, task: TaskIndex) -> bool {
        let i = task.0 as usize;
        self.task_limit[i].is_none_or(|l| self.task_running[i] < l)
    }

    /// Marks the entry as with its executor (taking a slot) and builds its
    /// attempt.
    fn hand_over(&mut self, token: u64) -> Attempt {
        let e = self.entries.get_mut(token).expect("entry exists");
        let Stage::Waiting { params } = std::mem::replace(&mut e.stage, Stage::Submitted) else {
            unreachable!("only waiting entries are in the waiting lists")
        };
        self.lanes[e.lane].inflight += 1;
        self.task_running[e.task.0 as usize] += 1;
        if let Some(c) = &self.cutoff {
            c.watch_attempt(token, e.lease, e.lane, e.claimed_at);
        }
        Attempt {
            token,
            job: e.lease.job,
            number: e.lease.attempt,
            task: e.task,
            params,
            timeout: e.settings.timeout,
            parents: e.take_parents(),
        }
    }

    /// Attempts whose executor could not start: they wait again, unstarted
    /// and uncounted, at the front of their lane's list and in their order.
    pub(super) fn hand_back(&mut self, lane: Lane, batch: Vec<Attempt>) {
        for a in batch.into_iter().rev() {
            let Some(e) = self.entries.get_mut(a.token) else {
                continue;
            };
            e.stage = Stage::Waiting { params: a.params };
            if let Some(p) = a.parents {
                e.rare.get_or_insert_with(Default::default).parents = Some(p);
            }
            let task = e.task;
            if let Some(c) = &self.cutoff {
                c.forget(a.token);
            }
            self.free_slot(lane, task);
            self.lanes[lane].waiting.push_front(a.token);
            self.waiting += 1;
        }
    }

    /// The executor said the attempt started.
    pub(super) fn started(&mut self, token: u64, at: Timestamp) -> Option<&Entry> {
        let e = self.entries.get_mut(token)?;
        if matches!(e.stage, Stage::Submitted) {
            self.started += 1;
        }
        if e.holds_slot() {
            e.stage = Stage::Started { at };
        }
        Some(e)
    }

    /// The entry is done with (its attempt ended, was given up or released,
    /// its lease was lost): removed, with its running slot freed or its
    /// place in the waiting lists dropped. `None` when it was already.
    pub(super) fn end(&mut self, token: u64) -> Option<Entry> {
        let e = self.entries.remove(token)?;
        if e.started_at().is_some() {
            self.started -= 1;
        }
        if e.holds_slot() {
            if let Some(c) = &self.cutoff {
                c.forget(token);
            }
            self.free_slot(e.lane, e.task);
        } else {
            self.drop_waiting(token, &e);
        }
        Some(e)
    }

    /// Gives back a running slot; the task's first blocked job (if any)
    /// goes to the front of its lane's list.
    fn free_slot(&mut self, lane: Lane, task: TaskIndex) {
        self.lanes[lane].inflight -= 1;
        self.task_running[task.0 as usize] -= 1;
        if let Some(q) = self.blocked.get_mut(&task.0) {
            if let Some(token) = q.pop_front() {
                let lane = self.entries.get(token).map_or(lane, |e| e.lane);
                self.lanes[lane].waiting.push_front(token);
            }
        }
    }

    /// Removes an entry that never reached its executor from the waiting lists.
    fn drop_waiting(&mut self, token: u64, e: &Entry) {
        let list = &mut self.lanes[e.lane].waiting;
        let before = list.len();
        list.retain(|t| *t != token);
        let mut removed = before - list.len();
        if let Some(q) = self.blocked.get_mut(&e.task.0) {
            let b = q.len();
            q.retain(|t| *t != token);
            removed += b - q.len();
        }
        self.waiting -= removed;
    }

    /// Empties the waiting lists: the tokens of every entry that has not
    /// reached its executor (still held here, for [`Claims::end`]).
    pub(super) fn take_waiting(&mut self) -> Vec<u64> {
        let mut tokens = Vec::with_capacity(self.waiting);
        for lane in Lane::ALL {
            tokens.extend(self.lanes[lane].waiting.drain(..));
        }
        tokens.extend(self.blocked.drain().flat_map(|(_, q)| q));
        self.waiting = 0;
        tokens
    }

    /// Asks the executor running `token`'s attempt to stop it; gives the
    /// attempt back if it had not started.
    fn stop(&self, lane: Lane, token: u64) -> Option<Attempt> {
        self.lanes[lane].exec.as_ref()?.cancel(token)
    }

    /// The entry's lease was lost (its outcome can no longer be recorded):
    /// its attempt is stopped and the entry forgotten.
    pub(super) fn lose(&mut self, token: u64) {
        if let Some(e) = self.end(token) {
            if e.holds_slot() {
                self.stop(e.lane, token);
            }
        }
    }

    /// Someone asked to cancel the job. A running attempt is stopped (it
    /// reports `cancelled`, and the entry stays until it does); an entry
    /// whose attempt had not started is ended and returned, to be recorded
    /// as cancelled without running.
    pub(super) fn cancel(&mut self, token: u64) -> Option<Entry> {
        let e = self.entries.get_mut(token)?;
        e.cancel_requested = true;
        let (lane, with_executor) = (e.lane, e.holds_slot());
        if with_executor && self.stop(lane, token).is_none() {
            return None;
        }
        self.end(token)
    }

    /// The tokens of every entry that has not started: those waiting, and
    /// those the executors give back unstarted.
    pub(super) fn take_unstarted(&mut self) -> Vec<u64> {
        let mut tokens = self.take_waiting();
        for ex in self.lanes.executors() {
            tokens.extend(ex.take_unstarted().into_iter().map(|a| a.token));
        }
        tokens
    }

    /// Stops every running attempt (each reports `cancelled`); the tokens
    /// of those the executors give back unstarted.
    pub(super) fn stop_running(&self) -> Vec<u64> {
        let mut tokens = Vec::new();
        for ex in self.lanes.executors() {
            tokens.extend(ex.cancel_running().into_iter().map(|a| a.token));
        }
        tokens
    }

    /// Ends every entry, stopping the attempts with executors (a shutdown
    /// no longer waits for their reports).
    pub(super) fn end_all(&mut self) -> Vec<Entry> {
        let mut ended = Vec::new();
        for token in self.tokens() {
            let e = self.end(token).expect("listed");
            if e.holds_slot() {
                self.stop(e.lane, token);
            }
            ended.push(e);
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::{Backoff, JobId, JobParams, JobSettings, Mode};

    use super::*;
    use crate::config::Sizes;

    /// Lanes without prefetch: 2 CPU threads, 1 blocking thread, 3 async
    /// permits, 1 worker process.
    fn claims(task_limit: Vec<Option<u32>>) -> Claims {
        let sizes = Sizes {
            cpu_threads: 2,
            blocking_threads: 1,
            async_limit: 3,
            process_workers: 1,
        };
        Claims::new(Lanes::new(&sizes, false), task_limit)
    }

    fn entry(job: u64, task: u32, lane: Lane) -> Entry {
        Entry {
            schedule: None,
            lease: Lease {
                job: JobId(job),
                attempt: 1,
                claim: 1,
            },
            task: TaskIndex(task),
            lane,
            settings: Arc::new(JobSettings {
                max_attempts: 3,
                backoff: Backoff::None,
                timeout: None,
                priority: 0,
                mode: Mode::Auto,
                isolate: false,
            }),
            ready_at: Timestamp::EPOCH,
            stage: Stage::Waiting {
                params: JobParams::default(),
            },
            cancel_requested: false,
            claimed_at: Instant::now(),
            span: None,
            rare: None,
        }
    }

    fn jobs(batch: &[Attempt]) -> Vec<u64> {
        batch.iter().map(|a| a.job.0).collect()
    }

    #[test]
    fn a_claim_asks_for_the_room_left_and_nothing_while_jobs_wait() {
        let mut c = claims(vec![None]);
        assert_eq!(c.claim_size(), 2 + 1 + 3 + 1);
        let now = Instant::now();
        let mut batches = Batches::default();
        for job in 1..=3 {
            c.insert(entry(job, 0, Lane::Cpu));
            c.take_ready(Lane::Cpu, now, &mut batches);
        }
        assert_eq!(jobs(&batches[Lane::Cpu.index()]), [1, 2]);
        assert_eq!(c.waiting(), 1, "the third waits for a CPU thread");
        assert_eq!(c.claim_size(), 0, "waiting jobs take the room first");
        let token = batches[Lane::Cpu.index()][0].token;
        assert!(c.end(token).is_some());
        assert!(c.end(token).is_none(), "ended once");
        let batches = c.take_all_ready(now);
        assert_eq!(jobs(&batches[Lane::Cpu.index()]), [3]);
        assert_eq!(c.claim_size(), 1 + 3 + 1, "the CPU lane is full again");
    }

    #[test]
    fn each_lane_is_held_to_its_own_cap() {
        let mut c = claims(vec![None]);
        let now = Instant::now();
        let mut batches = Batches::default();
        for job in 1..=4 {
            c.insert(entry(job, 0, Lane::Async));
            c.take_ready(Lane::Async, now, &mut batches);
        }
        c.insert(entry(5, 0, Lane::Blocking));
        c.take_ready(Lane::Blocking, now, &mut batches);
        assert_eq!(jobs(&batches[Lane::Async.index()]), [1, 2, 3]);
        assert_eq!(jobs(&batches[Lane::Blocking.index()]), [5]);
        assert_eq!(c.lanes[Lane::Async].inflight, 3);
        assert_eq!(c.lanes[Lane::Blocking].room(), 0);
        assert_eq!(c.lanes[Lane::Cpu].room(), 2);
    }

    #[test]
    fn a_task_at_its_limit_waits_until_one_of_its_attempts_ends() {
        // Task 0 runs one attempt at a time; task 1 has no limit.
        let mut c = claims(vec![Some(1), None]);
        let now = Instant::now();
        let mut batches = Batches::default();
        c.insert(entry(1, 0, Lane::Async));
        c.insert(entry(2, 0, Lane::Async));
        c.insert(entry(3, 1, Lane::Async));
        c.take_ready(Lane::Async, now, &mut batches);
        assert_eq!(jobs(&batches[Lane::Async.index()]), [1, 3]);
        assert_eq!(c.waiting(), 1, "job 2 is blocked by its task's limit");
        assert!(c.take_all_ready(now).iter().all(Vec::is_empty));
        let first = batches[Lane::Async.index()][0].token;
        c.end(first).expect("running");
        let batches = c.take_all_ready(now);
        assert_eq!(jobs(&batches[Lane::Async.index()]), [2]);
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn a_lost_lease_frees_its_slot_and_its_tasks_next_job() {
        let mut c = claims(vec![Some(1)]);
        let now = Instant::now();
        let mut batches = Batches::default();
        let running = c.insert(entry(1, 0, Lane::Cpu));
        let blocked = c.insert(entry(2, 0, Lane::Cpu));
        c.take_ready(Lane::Cpu, now, &mut batches);
        c.started(running, Timestamp::EPOCH).expect("present");
        // The queue says the lease of job 1 was lost.
        let lost = c.leases().into_iter().find(|(_, l)| l.job == JobId(1));
        assert_eq!(lost.map(|(t, _)| t), Some(running));
        let e = c.end(running).expect("held");
        assert!(e.holds_slot(), "the caller stops it in its executor");
        assert_eq!(e.started_at(), Some(Timestamp::EPOCH));
        assert_eq!(c.lanes[Lane::Cpu].inflight, 0);
        let batches = c.take_all_ready(now);
        assert_eq!(jobs(&batches[Lane::Cpu.index()]), [2]);
        assert!(c.get(blocked).is_some_and(Entry::holds_slot));
    }

    #[test]
    fn a_shutdown_releases_every_claim_that_has_not_reached_its_executor() {
        let mut c = claims(vec![Some(1), None]);
        let now = Instant::now();
        let mut batches = Batches::default();
        for job in 1..=3 {
            c.insert(entry(job, 1, Lane::Cpu));
        }
        c.insert(entry(4, 0, Lane::Async));
        c.insert(entry(5, 0, Lane::Async));
        for lane in Lane::ALL {
            c.take_ready(lane, now, &mut batches);
        }
        // Job 3 waits for room, job 5 for its task's limit.
        let waiting = c.take_waiting();
        assert_eq!(waiting.len(), 2);
        assert_eq!(c.waiting(), 0);
        let released: Vec<u64> = waiting
            .into_iter()
            .filter_map(|t| c.end(t))
            .map(|e| {
                assert!(!e.holds_slot());
                e.lease.job.0
            })
            .collect();
        assert_eq!(released.len(), 2);
        assert!(released.contains(&3) && released.contains(&5));
        assert_eq!(c.lanes[Lane::Cpu].inflight, 2);
        assert_eq!(c.lanes[Lane::Async].inflight, 1);
        assert!(c.take_all_ready(now).iter().all(Vec::is_empty));
    }

    #[test]
    fn attempts_an_executor_could_not_take_wait_again_in_their_order() {
        let mut c = claims(vec![None]);
        let now = Instant::now();
        let mut batches = Batches::default();
        for job in 1..=3 {
            c.insert(entry(job, 0, Lane::Cpu));
            c.take_ready(Lane::Cpu, now, &mut batches);
        }
        let [cpu, ..] = batches;
        c.hand_back(Lane::Cpu, cpu);
        assert_eq!(c.lanes[Lane::Cpu].inflight, 0);
        assert_eq!(c.waiting(), 3);
        assert_eq!(c.claim_size(), 0, "nothing more is claimed meanwhile");
        let batches = c.take_all_ready(now);
        assert_eq!(jobs(&batches[Lane::Cpu.index()]), [1, 2]);
    }

    #[test]
    fn a_lane_whose_executor_is_down_hands_nothing_over() {
        let mut c = claims(vec![None]);
        let now = Instant::now();
        let failed = |_| Err(std::io::Error::other("no threads"));
        assert!(c.lanes[Lane::Cpu]
            .executor(Lane::Cpu, now, failed)
            .is_none());
        c.insert(entry(1, 0, Lane::Cpu));
        assert!(c.take_all_ready(now).iter().all(Vec::is_empty));
        let later = now + super::super::lanes::EXEC_RETRY;
        assert_eq!(jobs(&c.take_all_ready(later)[Lane::Cpu.index()]), [1]);
    }
}
