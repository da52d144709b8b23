//! The watchdog: ends attempts that run past their timeout, and hands over
//! results that a thread busy with a long attempt is still holding.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use runyard_core::Ended;

use super::{lock, Inner, Slot};

/// How often results held by busy threads are swept.
const SWEEP: Duration = Duration::from_millis(20);

#[derive(Default)]
pub(super) struct Watchdog {
    state: Mutex<WatchState>,
    cond: Condvar,
}

#[derive(Default)]
struct WatchState {
    deadlines: BinaryHeap<Deadline>,
    stopped: bool,
}

struct Deadline {
    at: Instant,
    seq: u64,
    slot: Weak<Slot>,
}

impl PartialEq for Deadline {
    fn eq(&self, o: &Deadline) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Deadline {}
impl PartialOrd for Deadline {
    fn partial_cmp(&self, o: &Deadline) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Deadline {
    /// Earliest first in a max-heap.
    fn cmp(&self, o: &Deadline) -> Ordering {
        o.at.cmp(&self.at).then(o.seq.cmp(&self.seq))
    }
}

impl Watchdog {
    /// Starts the watchdog's thread, which holds the pool only weakly.
    pub(super) fn start(pool: &Arc<Inner>) {
        let name = format!("{}-watchdog", pool.cfg.name);
        let weak = Arc::downgrade(pool);
        if let Err(e) = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(weak))
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "runyard: could not start the watchdog of pool `{}`: {e}",
                pool.cfg.name
            );
        }
    }

    /// Ends attempt `seq` of `slot` at `at` unless it has finished by then.
    pub(super) fn watch(&self, slot: &Arc<Slot>, seq: u64, at: Instant) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let earliest = st.deadlines.peek().is_none_or(|d| at < d.at);
        st.deadlines.push(Deadline {
            at,
            seq,
            slot: Arc::downgrade(slot),
        });
        if earliest {
            self.cond.notify_one();
        }
    }

    pub(super) fn stop(&self) {
        lock(&self.state).stopped = true;
        self.cond.notify_one();
    }
}

fn run(pool: Weak<Inner>) {
    let mut last_sweep = Instant::now();
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let (expired, wait) = {
            let mut st = lock(&inner.watchdog.state);
            if st.stopped {
                return;
            }
            let now = Instant::now();
            let mut expired = Vec::new();
            while st.deadlines.peek().is_some_and(|d| d.at <= now) {
                expired.push(st.deadlines.pop().expect("peeked"));
            }
            let wait = (expired.is_empty() && now - last_sweep < SWEEP)
                .then(|| st.deadlines.peek().map_or(SWEEP, |d| d.at - now).min(SWEEP));
            (expired, wait)
        };
        if let Some(wait) = wait {
            drop(inner);
            if wd_wait(&pool, wait).is_none() {
                return;
            }
            continue;
        }
        for d in expired {
            if let Some(slot) = d.slot.upgrade() {
                if let Some(a) = Inner::abandon(&inner, &slot, Some(d.seq)) {
                    let limit = a.current.started.elapsed();
                    let timeout = d.at.saturating_duration_since(a.current.started);
                    inner.ended(
                        a,
                        Ended::TimedOut(if timeout.is_zero() { limit } else { timeout }),
                    );
                }
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            sweep(&inner);
        }
    }
}

/// Waits on the watchdog's condvar for up to `d`, without keeping the pool alive.
fn wd_wait(pool: &Weak<Inner>, d: Duration) -> Option<()> {
    let inner = pool.upgrade()?;
    let st = lock(&inner.watchdog.state);
    if st.stopped {
        return None;
    }
    let _ = inner.watchdog.cond.wait_timeout(st, d);
    Some(())
}

/// Hands over results held by threads that are busy with a long attempt.
fn sweep(inner: &Inner) {
    let slots = lock(&inner.shared).slots.clone();
    for s in slots {
        let batch = {
            let mut st = lock(&s.state);
            match &st.current {
                Some(c) if c.started.elapsed() >= SWEEP && !st.done.is_empty() => {
                    std::mem::take(&mut st.done)
                }
                _ => continue,
            }
        };
        inner.sink.finished(batch);
    }
}
