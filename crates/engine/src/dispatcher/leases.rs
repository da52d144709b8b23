//! Leases and the queue's timers: heartbeats that renew the leases held
//! (every third of the lease), rescues of other workers' expired leases
//! (every half), polls for jobs another process enqueued (a durable queue
//! wakes the dispatcher only for its own process's enqueues), and the pause
//! of queue operations while the queue cannot be reached.
//!
//! Each timer keeps its own time: the poll does not depend on how long the
//! dispatcher happens to sleep, so a short lease (down to 1 s, whose
//! heartbeats come more often than polls) does not keep an idle worker
//! from ever looking at the queue again.

use std::time::{Duration, Instant};

use runyard_queue::{Lease, QueueError};

/// How long a long-running worker waits before it tries an unreachable
/// queue again (each try itself may reconnect for a while).
const QUEUE_RETRY: Duration = Duration::from_secs(1);

/// How often an idle worker asks a durable queue for jobs another process
/// enqueued.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// When a lease last renewed at `renewed` (or claimed after it, at
/// `claimed_at`) is given up: a sixth of the lease before it would expire.
/// Its attempt is stopped then, as for a lost lease, so that a worker that
/// cannot renew never runs an attempt past its lease (whose slot the
/// queue's rescue frees once it expires).
pub(super) fn give_up_at(claimed_at: Instant, renewed: Instant, lease: Duration) -> Instant {
    claimed_at.max(renewed) + (lease - lease / 6)
}

/// When each of a durable queue's timers last fired.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timers {
    last_heartbeat: Instant,
    last_rescue: Instant,
    last_poll: Instant,
    /// A heartbeat failed: the next is tried then, not a third of the
    /// lease later.
    heartbeat_retry: Option<Instant>,
}

/// Which timers are due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Due {
    pub(super) heartbeat: bool,
    pub(super) rescue: bool,
    /// An idle worker asks the queue again.
    pub(super) poll: bool,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Timers {
        Timers {
            last_heartbeat: now,
            last_rescue: now,
            last_poll: now,
            heartbeat_retry: None,
        }
    }

    /// A heartbeat failed at `now`: the next is due [`QUEUE_RETRY`] later
    /// (or sooner, on its usual time).
    pub(super) fn heartbeat_failed(&mut self, now: Instant) {
        self.heartbeat_retry = Some(now + QUEUE_RETRY);
    }

    /// The timers due at `now` under `lease`, each restarted; `idle` says
    /// whether the worker found the queue empty (only then is a poll due).
    pub(super) fn due(&mut self, now: Instant, lease: Duration, idle: bool) -> Due {
        let fire = |last: &mut Instant, every: Duration| {
            let due = now.saturating_duration_since(*last) >= every;
            if due {
                *last = now;
            }
            due
        };
        let retry = self.heartbeat_retry.is_some_and(|t| now >= t);
        let heartbeat = fire(&mut self.last_heartbeat, lease / 3) || retry;
        if heartbeat {
            self.last_heartbeat = now;
            self.heartbeat_retry = None;
        }
        Due {
            heartbeat,
            rescue: fire(&mut self.last_rescue, lease / 2),
            poll: idle && fire(&mut self.last_poll, POLL),
        }
    }

    /// The queue was asked for jobs: the next poll is one [`POLL`] away.
    pub(super) fn polled(&mut self, now: Instant) {
        self.last_poll = now;
    }

    /// How long until the next heartbeat or rescue, or (when `idle`) the
    /// next poll.
    pub(super) fn until_next(&self, now: Instant, lease: Duration, idle: bool) -> Duration {
        let mut next = (self.last_heartbeat + lease / 3).min(self.last_rescue + lease / 2);
        if let Some(t) = self.heartbeat_retry {
            next = next.min(t);
        }
        if idle {
            next = next.min(self.last_poll + POLL);
        }
        next.saturating_duration_since(now)
    }
}

/// Whether queue operations are paused: a long-running worker rides out a
/// queue it cannot reach (operations pause for a while and are tried
/// again, records wait, attempts go on); a run that ends when drained stops
/// instead.
#[derive(Debug, Default)]
pub(super) struct Reach {
    down_until: Option<Instant>,
}

impl Reach {
    /// A queue operation failed with `e`: paused for a while if `e` is
    /// transient and the run `rides_out` failures, else the run's error.
    pub(super) fn ride_out(
        &mut self,
        e: QueueError,
        now: Instant,
        rides_out: bool,
    ) -> Result<(), QueueError> {
        if e.is_transient() && rides_out {
            self.down_until = Some(now + QUEUE_RETRY);
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Whether queue operations are paused at `now`.
    pub(super) fn is_down(&mut self, now: Instant) -> bool {
        match self.down_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.down_until = None;
                false
            }
            None => false,
        }
    }

    /// How long queue operations stay paused, if they are.
    pub(super) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.down_until
            .map(|t| t.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }
}

/// The tokens of the held leases named in `named` (a heartbeat's lost or
/// cancel-requested leases).
pub(super) fn tokens_of(held: &[(u64, Lease)], named: &[Lease]) -> Vec<u64> {
    named
        .iter()
        .filter_map(|l| held.iter().find(|(_, x)| x == l).map(|(t, _)| *t))
        .collect()
}

#[cfg(test)]
mod tests {
    use runyard_core::JobId;

    use super::*;

    /// The dispatcher's turns for an idle worker, on a simulated clock: it
    /// sleeps until the next timer, takes what is due and asks the queue
    /// again when a poll is. Returns when it first asks again.
    fn next_poll(lease: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let mut now = t0;
        while now - t0 < Duration::from_secs(30) {
            now += timers.until_next(now, lease, true).min(POLL);
            if timers.due(now, lease, true).poll {
                timers.polled(now);
                return Some(now - t0);
            }
        }
        None
    }

    #[test]
    fn an_idle_worker_polls_every_poll_interval_whatever_its_lease() {
        for lease in [30, 2, 1].map(Duration::from_secs) {
            let at = next_poll(lease);
            let on_time = at.is_some_and(|at| at <= POLL + Duration::from_millis(1));
            assert!(on_time, "{lease:?}: {at:?}");
        }
    }

    #[test]
    fn a_busy_worker_does_not_poll() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let lease = Duration::from_secs(1);
        assert!(timers.until_next(t0, lease, false) <= lease / 3);
        let due = timers.due(t0 + POLL, lease, false);
        assert!(due.heartbeat && !due.poll);
        assert!(timers.due(t0 + POLL, lease, true).poll, "idle, it does");
    }

    #[test]
    fn heartbeats_come_every_third_of_the_lease_and_rescues_every_half() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let lease = Duration::from_secs(3);
        assert_eq!(timers.due(t0, lease, false), Due::default());
        let due = timers.due(t0 + Duration::from_secs(1), lease, false);
        assert!(due.heartbeat && !due.rescue);
        let due = timers.due(t0 + Duration::from_millis(1500), lease, false);
        assert!(!due.heartbeat && due.rescue);
    }

    #[test]
    fn a_failed_heartbeat_is_tried_again_soon() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let lease = Duration::from_secs(30);
        assert!(timers.due(t0 + lease / 3, lease, false).heartbeat);
        timers.heartbeat_failed(t0 + lease / 3);
        let retry = t0 + lease / 3 + QUEUE_RETRY;
        assert_eq!(timers.until_next(t0 + lease / 3, lease, false), QUEUE_RETRY);
        assert!(
            !timers
                .due(retry - Duration::from_millis(1), lease, false)
                .heartbeat
        );
        assert!(timers.due(retry, lease, false).heartbeat);
        assert!(!timers.due(retry, lease, false).heartbeat, "once");
    }

    #[test]
    fn a_lease_not_renewed_is_given_up_a_sixth_of_it_before_it_expires() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(6);
        let s = Duration::from_secs;
        assert_eq!(give_up_at(t0, t0, lease), t0 + s(5));
        // Claimed after the last renewal: counted from its claim.
        assert_eq!(give_up_at(t0 + s(2), t0, lease), t0 + s(7));
        // Renewed after its claim: counted from the renewal.
        assert_eq!(give_up_at(t0, t0 + s(3), lease), t0 + s(8));
    }

    #[test]
    fn a_worker_rides_out_a_transient_failure_and_a_run_stops_on_it() {
        let t0 = Instant::now();
        let transient = || {
            QueueError::new(
                runyard_queue::QueueErrorKind::Unavailable,
                "connection refused",
            )
        };
        let mut r = Reach::default();
        assert!(r.ride_out(transient(), t0, false).is_err());
        assert!(!r.is_down(t0));
        assert!(r.ride_out(transient(), t0, true).is_ok());
        assert!(r.is_down(t0));
        assert_eq!(r.remaining(t0), Some(QUEUE_RETRY));
        assert!(!r.is_down(t0 + QUEUE_RETRY));
        assert_eq!(r.remaining(t0 + QUEUE_RETRY), None);
    }

    #[test]
    fn leases_named_by_the_queue_are_found_by_token() {
        let lease = |job, attempt| Lease {
            job: JobId(job),
            attempt,
            claim: u64::from(attempt),
        };
        let held = [(10, lease(1, 1)), (11, lease(2, 3))];
        assert_eq!(tokens_of(&held, &[lease(2, 3), lease(2, 2)]), vec![11]);
    }
}
