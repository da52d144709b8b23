//! The watchdog: a thread of its own that ends attempts which run past
//! their deadline, whatever their task is doing.
//!
//! # Protocol
//!
//! An executor owns a [`Watchdog`] and implements [`Watched`]. When an
//! attempt with a timeout starts, the executor calls [`Watchdog::watch`]
//! with a key of its choosing. At the deadline the watchdog's thread hands
//! the key to [`Watched::expired`], which reports the attempt `timed_out`
//! only if it can still take it: each executor has one rule for who reports
//! an attempt (whoever takes it out of its running state), so a deadline
//! that comes after the attempt ended changes nothing, and an attempt that
//! ends after its deadline was reported is dropped by the one that ran it.
//!
//! The watchdog does not run on the threads that run attempts, so a task
//! that holds its thread (a loop that never checks its context, an async
//! task that blocks its runtime thread) is timed out all the same.
//!
//! The thread holds its executor only weakly between turns, and ends when
//! [`Watchdog::stop`] is called (the executor's shutdown or drop).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long the thread sleeps at most with nothing to do, before it looks
/// whether its executor is still there.
const IDLE: Duration = Duration::from_secs(1);

/// An executor whose attempts a [`Watchdog`] watches.
pub(crate) trait Watched: Send + Sync + Sized + 'static {
    /// What identifies a watched attempt.
    type Key: Send + 'static;

    /// How often [`Watched::sweep`] runs, if at all.
    const SWEEP: Option<Duration> = None;

    /// The executor's watchdog.
    fn watchdog(&self) -> &Watchdog<Self::Key>;

    /// The deadline `at` of the attempt `key` has passed: report it timed
    /// out, unless it has been reported already.
    fn expired(self: &Arc<Self>, key: Self::Key, at: Instant);

    /// Periodic work, every [`Watched::SWEEP`].
    fn sweep(self: &Arc<Self>) {}
}

/// Deadlines, earliest first, and the thread that acts on them.
pub(crate) struct Watchdog<K> {
    state: Mutex<WatchState<K>>,
    cond: Condvar,
}

struct WatchState<K> {
    deadlines: BinaryHeap<Deadline<K>>,
    /// Orders deadlines that fall on the same instant by their watch.
    next: u64,
    stopped: bool,
}

struct Deadline<K> {
    at: Instant,
    n: u64,
    key: K,
}

impl<K> PartialEq for Deadline<K> {
    fn eq(&self, o: &Deadline<K>) -> bool {
        self.at == o.at && self.n == o.n
    }
}
impl<K> Eq for Deadline<K> {}
impl<K> PartialOrd for Deadline<K> {
    fn partial_cmp(&self, o: &Deadline<K>) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K> Ord for Deadline<K> {
    /// Earliest first in a max-heap.
    fn cmp(&self, o: &Deadline<K>) -> Ordering {
        o.at.cmp(&self.at).then(o.n.cmp(&self.n))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K> Default for Watchdog<K> {
    fn default() -> Watchdog<K> {
        Watchdog {
            state: Mutex::new(WatchState {
                deadlines: BinaryHeap::new(),
                next: 0,
                stopped: false,
            }),
            cond: Condvar::new(),
        }
    }
}

impl<K: Send + 'static> Watchdog<K> {
    /// Starts the watchdog's thread for `pool`.
    pub(crate) fn start<W: Watched<Key = K>>(pool: &Arc<W>, name: String) -> io::Result<()> {
        let weak = Arc::downgrade(pool);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run(weak))
            .map(drop)
    }

    /// Calls [`Watched::expired`] with `key` at `at`.
    pub(crate) fn watch(&self, key: K, at: Instant) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let earliest = st.deadlines.peek().is_none_or(|d| at < d.at);
        let n = st.next;
        st.next += 1;
        st.deadlines.push(Deadline { at, n, key });
        if earliest {
            self.cond.notify_one();
        }
    }

    /// Ends the thread; deadlines not yet reached are dropped.
    pub(crate) fn stop(&self) {
        let mut st = lock(&self.state);
        st.stopped = true;
        st.deadlines.clear();
        self.cond.notify_one();
    }
}

fn run<W: Watched>(pool: Weak<W>) {
    let mut last_sweep = Instant::now();
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let expired = {
            let wd = inner.watchdog();
            let mut st = lock(&wd.state);
            let mut waited = false;
            loop {
                if st.stopped {
                    return;
                }
                let now = Instant::now();
                let mut expired = Vec::new();
                while st.deadlines.peek().is_some_and(|d| d.at <= now) {
                    expired.push(st.deadlines.pop().expect("peeked"));
                }
                let sweep_in = W::SWEEP.map(|s| (last_sweep + s).saturating_duration_since(now));
                if !expired.is_empty() || sweep_in == Some(Duration::ZERO) {
                    break expired;
                }
                if waited && st.deadlines.is_empty() && W::SWEEP.is_none() {
                    // Idle: let go of the executor for a moment, so that
                    // one dropped without `stop` is noticed.
                    break expired;
                }
                let wait = [
                    st.deadlines.peek().map(|d| d.at - now),
                    sweep_in,
                    Some(IDLE),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(IDLE);
                // Waiting under the lock: a deadline watched meanwhile
                // notifies after this wait has begun, never before.
                st = wd
                    .cond
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                waited = true;
            }
        };
        for d in expired {
            inner.expired(d.key, d.at);
        }
        if let Some(s) = W::SWEEP {
            if last_sweep.elapsed() >= s {
                last_sweep = Instant::now();
                inner.sweep();
            }
        }
    }
}
