//! The cut-off watchdog: a thread of its own that stops the attempts whose
//! leases could not be renewed, a sixth of a lease before they would
//! expire, whatever the dispatcher thread is doing.
//!
//! The dispatcher gives up unrenewed leases itself on its timers (see
//! [`super::leases::give_up_at`]), but only between queue operations: a
//! heartbeat, claim or record that waits on a connection that neither
//! answers nor fails (a black-holed network path, a frozen server) keeps
//! its thread waiting, and attempts would run past their leases while
//! another worker runs the same jobs and their slots are counted twice.
//! The watchdog runs beside it and needs no queue.
//!
//! # Protocol
//!
//! The shared [`Cutoff`] holds, under one lock, the time of the last
//! heartbeat that renewed every lease held (as the dispatcher's
//! `renewed`), each attempt handed to an executor (its token, lease, lane
//! and claim time: [`Claims`](super::claims::Claims) adds it when it hands
//! the attempt over and removes it when the entry ends or comes back
//! unstarted), and the lanes' executors.
//!
//! At an attempt's give-up time the watchdog removes it from the watched
//! ones, adds its `(token, lease)` to `stopped`, and only then, outside the
//! lock, asks its executor to stop it: the same cancellation as for a lost
//! lease or a timeout (a worker process and its group killed, an async
//! future dropped, a thread's context cancelled and the attempt
//! abandoned). So any report the stop causes reaches the inbox after the
//! attempt is in `stopped`; the dispatcher, at the top of each turn (before
//! it reads the reports it took) and after each heartbeat, takes `stopped`
//! and ends those entries still held under the same lease as lost: their
//! outcomes are never recorded, their slots and lanes are freed once, and
//! the queue's rescue puts their jobs back after the leases expire. An
//! entry the dispatcher ended first (its own give-up, a report, a lost
//! lease) is no longer held, or is held under another lease if its token
//! was reused, and is skipped.
//!
//! Attempts waiting in the dispatcher's hands (not with an executor) run
//! nothing: the dispatcher gives them up on its own timers before it hands
//! anything over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runyard_exec::Executor;
use runyard_queue::Lease;
use rustc_hash::FxHashMap;

use super::leases::give_up_at;
use crate::inbox::Inbox;
use crate::lane::Lane;
use crate::trace::ENGINE;

/// What the watchdog and the dispatcher share.
pub(crate) struct Cutoff {
    state: Mutex<State>,
    wake: Condvar,
    /// `stopped` is not empty (read without the lock each turn).
    any_stopped: AtomicBool,
    lease: Duration,
}

/// An attempt with its executor, as the watchdog sees it.
#[derive(Debug, Clone, Copy)]
struct Watched {
    lease: Lease,
    lane: Lane,
    claimed_at: Instant,
}

struct State {
    /// When the last heartbeat that renewed every lease held was sent.
    renewed: Instant,
    watched: FxHashMap<u64, Watched>,
    executors: [Option<Arc<dyn Executor>>; 4],
    /// Attempts stopped by the watchdog, not yet taken by the dispatcher.
    stopped: Vec<(u64, Lease)>,
    /// When the watchdog looks next (`None`: when told).
    next: Option<Instant>,
    closed: bool,
}

impl Cutoff {
    /// Shared state for leases of `lease`, renewed (or begun) at `now`.
    pub(crate) fn new(now: Instant, lease: Duration) -> Cutoff {
        Cutoff {
            state: Mutex::new(State {
                renewed: now,
                watched: FxHashMap::default(),
                executors: Default::default(),
                stopped: Vec::new(),
                next: None,
                closed: false,
            }),
            wake: Condvar::new(),
            any_stopped: AtomicBool::new(false),
            lease,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the watchdog thread; it wakes `inbox` when it stopped
    /// attempts. `None` if no thread can be had (the dispatcher's own
    /// give-up remains).
    pub(crate) fn start(self: &Arc<Cutoff>, inbox: Arc<Inbox>) -> Option<JoinHandle<()>> {
        let me = Arc::clone(self);
        let started = std::thread::Builder::new()
            .name("runyard-cutoff".into())
            .spawn(move || me.watch(&inbox));
        match started {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(
                    target: ENGINE,
                    "could not start the thread that stops attempts whose leases cannot be \
                     renewed ({e}): they are stopped between queue operations only"
                );
                None
            }
        }
    }

    /// Ends the watchdog thread.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// The lane's executor, started: the watchdog stops its attempts.
    pub(crate) fn add_executor(&self, lane: Lane, exec: &Arc<dyn Executor>) {
        self.lock().executors[lane.index()] = Some(Arc::clone(exec));
    }

    /// A heartbeat sent at `sent` renewed every lease held.
    pub(crate) fn renewed(&self, sent: Instant) {
        let mut st = self.lock();
        st.renewed = st.renewed.max(sent);
    }

    /// The attempt `token` (of `lease`, in `lane`, claimed at
    /// `claimed_at`) was handed to its executor.
    pub(crate) fn watch_attempt(&self, token: u64, lease: Lease, lane: Lane, claimed_at: Instant) {
        let mut st = self.lock();
        let at = give_up_at(claimed_at, st.renewed, self.lease);
        st.watched.insert(
            token,
            Watched {
                lease,
                lane,
                claimed_at,
            },
        );
        // Claims come in time order, so a new attempt is rarely due before
        // the others: the watchdog is woken only when it is.
        if st.next.is_none_or(|n| at < n) {
            st.next = Some(at);
            drop(st);
            self.wake.notify_one();
        }
    }

    /// The attempt `token` is no longer with its executor (it ended, was
    /// given up, or came back unstarted).
    pub(crate) fn forget(&self, token: u64) {
        self.lock().watched.remove(&token);
    }

    /// The attempts the watchdog stopped since the last call (none, most
    /// turns, without taking the lock).
    pub(crate) fn take_stopped(&self) -> Vec<(u64, Lease)> {
        if !self.any_stopped.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let mut st = self.lock();
        self.any_stopped.store(false, Ordering::SeqCst);
        std::mem::take(&mut st.stopped)
    }

    /// The watchdog thread's loop.
    fn watch(&self, inbox: &Inbox) {
        let mut st = self.lock();
        loop {
            if st.closed {
                return;
            }
            let now = Instant::now();
            let (due, next) = self.due(&mut st, now);
            st.next = next;
            if due.is_empty() {
                st = match next {
                    Some(at) => {
                        let wait = at.saturating_duration_since(now);
                        (self.wake.wait_timeout(st, wait))
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
                };
                continue;
            }
            st.stopped.extend(due.iter().map(|(t, w)| (*t, w.lease)));
            self.any_stopped.store(true, Ordering::SeqCst);
            let executors = st.executors.clone();
            drop(st);
            tracing::warn!(
                target: ENGINE,
                "{} lease(s) could not be renewed (the queue has not answered heartbeats for \
                 five sixths of a lease) and would soon expire: their attempts are stopped, \
                 their outcomes not recorded, and their jobs go back to the queue once the \
                 leases expire",
                due.len()
            );
            for (token, w) in due {
                if let Some(ex) = &executors[w.lane.index()] {
                    // An attempt given back unstarted is dropped: the
                    // dispatcher ends its entry as lost.
                    let _ = ex.cancel(token);
                }
            }
            inbox.notify_work();
            st = self.lock();
        }
    }

    /// Takes the watched attempts due to be given up at `now` out of the
    /// watched ones; returns them and when the next one is due.
    fn due(&self, st: &mut State, now: Instant) -> (Vec<(u64, Watched)>, Option<Instant>) {
        let renewed = st.renewed;
        let mut next: Option<Instant> = None;
        let mut due = Vec::new();
        for (token, w) in &st.watched {
            let at = give_up_at(w.claimed_at, renewed, self.lease);
            if at <= now {
                due.push((*token, *w));
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for (token, _) in &due {
            st.watched.remove(token);
        }
        (due, next)
    }
}

#[cfg(test)]
mod tests {
    use runyard_core::JobId;

    use super::*;

    fn lease(job: u64) -> Lease {
        Lease {
            job: JobId(job),
            attempt: 1,
            claim: job,
        }
    }

    #[test]
    fn attempts_are_due_a_sixth_of_a_lease_before_it_expires_from_their_claim_or_renewal() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let c = Cutoff::new(t0, s(6));
        c.watch_attempt(1, lease(1), Lane::Cpu, t0);
        c.watch_attempt(2, lease(2), Lane::Cpu, t0 + s(2));
        let mut st = c.lock();
        let (due, next) = c.due(&mut st, t0 + s(4));
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + s(5)));
        let (due, next) = c.due(&mut st, t0 + s(5));
        assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [1]);
        assert_eq!(next, Some(t0 + s(7)), "the later claim, from its claim");
        st.renewed = t0 + s(3);
        let (due, next) = c.due(&mut st, t0 + s(7));
        assert!(due.is_empty(), "renewed after its claim");
        assert_eq!(next, Some(t0 + s(8)));
        drop(st);
        c.forget(2);
        let (due, next) = c.due(&mut c.lock(), t0 + s(60));
        assert!(due.is_empty() && next.is_none(), "forgotten");
    }

    #[test]
    fn stopped_attempts_are_taken_once() {
        let t0 = Instant::now();
        let c = Arc::new(Cutoff::new(t0, Duration::from_millis(60)));
        let inbox = Arc::new(Inbox::default());
        c.watch_attempt(7, lease(7), Lane::Cpu, t0);
        let thread = c.start(inbox).expect("a thread");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut stopped = Vec::new();
        while stopped.is_empty() {
            assert!(Instant::now() < deadline, "never stopped");
            stopped = c.take_stopped();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(stopped, [(7, lease(7))]);
        assert!(c.take_stopped().is_empty());
        c.close();
        thread.join().unwrap();
    }
}
