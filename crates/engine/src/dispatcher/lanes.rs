//! The dispatcher's lanes: per lane, its executor and how many attempts it
//! takes, runs and has, and the claimed jobs waiting for room in it.

use std::collections::VecDeque;
use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runyard_exec::Executor;

use crate::config::Sizes;
use crate::lane::Lane;
use crate::trace::ENGINE;

/// Attempts handed to the CPU pool per thread: enough that a thread always
/// has a chunk waiting while the dispatcher records the last one.
const CPU_PREFETCH: usize = 256;
/// Attempts handed to the worker processes per worker: room for a batch
/// in flight and the next one waiting.
const PROCESS_PREFETCH: usize = 256;
/// The most attempts of jobs that take concurrency slots a lane holds per
/// thread, in flight and waiting (see the dispatcher's docs, "Flow
/// control"): for jobs much shorter than a claim.
pub(super) const SLOTTED_AHEAD: usize = 128;
/// The fewest: for jobs longer than a claim, one running and one ready
/// per thread; also the number before any job of the lane has ended.
pub(super) const SLOTTED_MIN: usize = 2;
/// How long a lane whose executor could not start waits before it is tried again.
pub(super) const EXEC_RETRY: Duration = Duration::from_secs(1);

/// One lane's state.
#[derive(Debug)]
pub(super) struct LaneState {
    /// Its executor, started when the lane first gets an attempt.
    pub(super) exec: Option<Arc<dyn Executor>>,
    /// The executor could not start: it is not tried again before then.
    pub(super) down_until: Option<Instant>,
    /// Attempts the executor runs at once: pool threads, async permits,
    /// worker processes.
    pub(super) threads: usize,
    /// The most attempts handed to the executor at once (those it runs and
    /// those waiting for one of its threads).
    pub(super) cap: usize,
    /// The lane is refilled once its attempts in flight drop to this (the
    /// CPU pool is refilled in bursts, so threads take whole chunks).
    pub(super) low_water: usize,
    /// Attempts handed to the executor and not yet ended.
    pub(super) inflight: usize,
    /// Claimed jobs waiting for room in the lane, by token, in order.
    pub(super) waiting: VecDeque<u64>,
    /// The lane runs rate-limited tasks: their claims ask for no more
    /// than its free threads (a rate-limited job starts when claimed, and
    /// one given back has used its rate's permit for nothing).
    pub(super) rated: bool,
    /// The lane runs tasks whose jobs take concurrency slots: their claims
    /// ask for no more than its slotted room.
    pub(super) slotted: bool,
    /// The mean length of its attempts, in µs (a moving average; 0 until
    /// one has ended).
    mean_run_us: f64,
}

impl LaneState {
    fn new(threads: usize, cap: usize, low_water: usize) -> LaneState {
        LaneState {
            exec: None,
            down_until: None,
            threads,
            cap,
            low_water,
            inflight: 0,
            waiting: VecDeque::new(),
            rated: false,
            slotted: false,
            mean_run_us: 0.0,
        }
    }

    /// How many more attempts the executor may be handed.
    pub(super) fn room(&self) -> usize {
        self.cap.saturating_sub(self.inflight)
    }

    /// Attempts the executor would start at once: its free threads.
    pub(super) fn free_threads(&self) -> usize {
        self.threads.saturating_sub(self.inflight)
    }

    /// How many jobs that take concurrency slots this lane holds per
    /// thread: enough to run for four claims' time, within
    /// [`SLOTTED_MIN`]..=[`SLOTTED_AHEAD`], given a claim's mean time.
    fn ahead(&self, claim_us: f64) -> usize {
        if self.mean_run_us <= 0.0 || claim_us <= 0.0 {
            return SLOTTED_MIN;
        }
        let n = (4.0 * claim_us / self.mean_run_us).ceil();
        (n as usize).clamp(SLOTTED_MIN, SLOTTED_AHEAD)
    }

    /// How many jobs that take concurrency slots a claim may bring for this
    /// lane: up to [`LaneState::ahead`] per thread, in flight and waiting,
    /// once it has fallen to half that (so claims come in batches, not one
    /// job at a time).
    fn slotted_room(&self, claim_us: f64) -> usize {
        let ahead = self.threads.saturating_mul(self.ahead(claim_us));
        let held = self.inflight + self.waiting.len();
        if held > ahead / 2 {
            return 0;
        }
        ahead - held
    }

    /// Whether the executor could not start and is not to be tried again yet.
    pub(super) fn down(&self, now: Instant) -> bool {
        self.exec.is_none() && self.down_until.is_some_and(|t| now < t)
    }

    /// The executor, started by `start` (given the threads it runs) on
    /// first use; `None` when it cannot start, and then it is not tried
    /// again for [`EXEC_RETRY`].
    pub(super) fn executor(
        &mut self,
        lane: Lane,
        now: Instant,
        start: impl FnOnce(usize) -> std::io::Result<Arc<dyn Executor>>,
    ) -> Option<Arc<dyn Executor>> {
        if let Some(exec) = &self.exec {
            return Some(Arc::clone(exec));
        }
        if self.down(now) {
            return None;
        }
        let started = start(self.threads);
        self.on_start(lane, started, now)
    }

    /// Takes the result of starting the executor: it is kept, or the lane
    /// waits [`EXEC_RETRY`] before the next try. Says so (a tracing event)
    /// once per change.
    fn on_start(
        &mut self,
        lane: Lane,
        started: std::io::Result<Arc<dyn Executor>>,
        now: Instant,
    ) -> Option<Arc<dyn Executor>> {
        match started {
            Ok(exec) => {
                if self.down_until.take().is_some() {
                    tracing::info!(target: ENGINE, "the {lane} started");
                }
                self.exec = Some(Arc::clone(&exec));
                Some(exec)
            }
            Err(e) => {
                if self.down_until.is_none() {
                    tracing::warn!(
                        target: ENGINE,
                        "the {lane} cannot start ({e}); its jobs wait, no attempt is counted, \
                         and it is tried again every {}s",
                        EXEC_RETRY.as_secs()
                    );
                }
                self.down_until = Some(now + EXEC_RETRY);
                None
            }
        }
    }
}

/// Every lane's state, indexed by [`Lane`], and a claim's mean time.
#[derive(Debug)]
pub(super) struct Lanes([LaneState; 4], f64);

/// The weight of the newest figure in the lanes' moving averages.
const EWMA: f64 = 1.0 / 8.0;

fn ewma(mean: &mut f64, us: f64) {
    *mean = if *mean <= 0.0 {
        us.max(1.0)
    } else {
        *mean + EWMA * (us.max(1.0) - *mean)
    };
}

impl Lanes {
    /// Lanes sized for `sizes`; with `prefetch`, an executor is handed more
    /// than it runs, so that a thread finds its next attempt waiting when
    /// one ends.
    pub(super) fn new(sizes: &Sizes, prefetch: bool) -> Lanes {
        let threads = [
            sizes.cpu_threads,
            sizes.blocking_threads,
            sizes.async_limit,
            sizes.process_workers,
        ];
        let cap = if prefetch {
            [
                threads[0] * CPU_PREFETCH,
                threads[1] * 2,
                threads[2],
                threads[3] * PROCESS_PREFETCH,
            ]
        } else {
            threads
        };
        let low_water = [cap[0] / 2, cap[1], cap[2], cap[3] / 2];
        Lanes(
            std::array::from_fn(|i| LaneState::new(threads[i], cap[i], low_water[i])),
            0.0,
        )
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (Lane, &LaneState)> {
        Lane::ALL.into_iter().zip(self.0.iter())
    }

    /// The executors started so far.
    pub(super) fn executors(&self) -> impl Iterator<Item = &Arc<dyn Executor>> {
        self.0.iter().filter_map(|l| l.exec.as_ref())
    }

    /// When the first lane whose executor could not start, and that has
    /// jobs waiting, is tried again.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        let waiting = self.0.iter().filter(|l| !l.waiting.is_empty());
        waiting.filter_map(|l| l.down_until).min()
    }

    /// How many more attempts the executors may be handed, over all lanes.
    pub(super) fn room(&self) -> usize {
        self.0.iter().map(LaneState::room).sum()
    }

    /// How many jobs that take concurrency slots a claim may bring: the
    /// slotted room of the lanes that run such tasks.
    pub(super) fn slotted_room(&self) -> usize {
        self.0
            .iter()
            .filter(|l| l.slotted)
            .map(|l| l.slotted_room(self.1))
            .sum()
    }

    /// How many jobs the first claim on a queue that keeps limits may
    /// bring: the room for jobs that take slots of the lanes `used`.
    pub(super) fn first_room(&self, used: &[bool; 4]) -> usize {
        (self.0.iter().zip(used))
            .filter(|(_, u)| **u)
            .map(|(l, _)| l.slotted_room(self.1))
            .sum()
    }

    /// An attempt in `lane` ran for `d`.
    pub(super) fn ran(&mut self, lane: Lane, d: Duration) {
        ewma(&mut self[lane].mean_run_us, d.as_secs_f64() * 1e6);
    }

    /// A claim took `d`.
    pub(super) fn claimed_in(&mut self, d: Duration) {
        ewma(&mut self.1, d.as_secs_f64() * 1e6);
    }

    /// How many rate-limited jobs a claim may bring: the free threads of
    /// the lanes that run rate-limited tasks.
    pub(super) fn rated_room(&self) -> usize {
        self.0
            .iter()
            .filter(|l| l.rated)
            .map(LaneState::free_threads)
            .sum()
    }
}

impl Index<Lane> for Lanes {
    type Output = LaneState;

    fn index(&self, lane: Lane) -> &LaneState {
        &self.0[lane.index()]
    }
}

impl IndexMut<Lane> for Lanes {
    fn index_mut(&mut self, lane: Lane) -> &mut LaneState {
        &mut self.0[lane.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Sizes {
        Sizes {
            cpu_threads: 4,
            blocking_threads: 8,
            async_limit: 100,
            process_workers: 2,
        }
    }

    #[test]
    fn with_prefetch_the_pools_are_handed_more_than_they_run() {
        let l = Lanes::new(&sizes(), true);
        assert_eq!(l[Lane::Cpu].cap, 4 * CPU_PREFETCH);
        assert_eq!(l[Lane::Cpu].low_water, 2 * CPU_PREFETCH);
        assert_eq!(l[Lane::Blocking].cap, 16);
        assert_eq!(l[Lane::Async].cap, 100);
        assert_eq!(l[Lane::Process].cap, 2 * PROCESS_PREFETCH);
        assert_eq!(l[Lane::Process].threads, 2);
    }

    #[test]
    fn without_prefetch_each_lane_takes_what_it_runs() {
        let l = Lanes::new(&sizes(), false);
        let caps: Vec<usize> = l.iter().map(|(_, s)| s.cap).collect();
        assert_eq!(caps, [4, 8, 100, 2]);
        assert_eq!(l.room(), 114);
    }

    #[test]
    fn rate_limited_jobs_are_claimed_for_the_free_threads_of_their_lanes() {
        let mut l = Lanes::new(&sizes(), true);
        assert_eq!(l.rated_room(), 0);
        l[Lane::Cpu].inflight = 3;
        l[Lane::Cpu].rated = true;
        assert_eq!(l.rated_room(), 1, "one CPU thread is free");
        assert_eq!(l[Lane::Cpu].room(), 4 * CPU_PREFETCH - 3);
        l[Lane::Blocking].rated = true;
        assert_eq!(l.rated_room(), 1 + 8);
    }

    #[test]
    fn jobs_that_take_slots_are_claimed_for_a_few_per_thread_in_batches() {
        let mut l = Lanes::new(&sizes(), true);
        assert_eq!(l.slotted_room(), 0, "no lane runs such tasks yet");
        l[Lane::Cpu].slotted = true;
        assert_eq!(l.slotted_room(), 4 * SLOTTED_MIN, "nothing has ended yet");
        l.claimed_in(Duration::from_millis(1));
        l.ran(Lane::Cpu, Duration::from_secs(1));
        assert_eq!(l.slotted_room(), 4 * SLOTTED_MIN, "long jobs: the fewest");
        l.ran(Lane::Blocking, Duration::from_micros(1));
        l[Lane::Cpu].mean_run_us = 100.0;
        assert_eq!(l.slotted_room(), 4 * 40, "four claims' time of 100 µs jobs");
        l[Lane::Cpu].mean_run_us = 1.0;
        let ahead = 4 * SLOTTED_AHEAD;
        assert_eq!(l.slotted_room(), ahead);
        assert!(ahead < l[Lane::Cpu].room(), "fewer than the prefetch");
        l[Lane::Cpu].inflight = ahead / 2;
        assert_eq!(l.slotted_room(), ahead / 2, "refilled at half");
        l[Lane::Cpu].inflight = ahead / 2 + 1;
        assert_eq!(l.slotted_room(), 0, "not one job at a time");
        l[Lane::Cpu].inflight = 1;
        l[Lane::Cpu].waiting.extend([1, 2]);
        assert_eq!(l.slotted_room(), ahead - 3, "waiting jobs count too");
        let blocking = l[Lane::Blocking].threads * SLOTTED_AHEAD;
        assert_eq!(
            l.first_room(&[true, true, false, false]),
            ahead - 3 + blocking
        );
    }

    #[test]
    fn a_lane_whose_executor_cannot_start_waits_before_the_next_try() {
        let mut l = Lanes::new(&sizes(), false);
        let t0 = Instant::now();
        let failed = |_| Err(std::io::Error::other("no threads"));
        assert!(l[Lane::Cpu].executor(Lane::Cpu, t0, failed).is_none());
        assert!(l[Lane::Cpu].down(t0));
        let tried = |_| -> std::io::Result<Arc<dyn Executor>> { panic!("tried while down") };
        assert!(l[Lane::Cpu].executor(Lane::Cpu, t0, tried).is_none());
        assert!(l[Lane::Cpu].down(t0 + EXEC_RETRY / 2));
        assert!(!l[Lane::Cpu].down(t0 + EXEC_RETRY));
        assert!(!l[Lane::Blocking].down(t0));
    }
}
