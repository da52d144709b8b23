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

/// When each of a durable queue's timers last fired.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timers {
    last_heartbeat: Instant,
    last_rescue: Instant,
    last_poll: Instant,
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
        }
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
        Due {
            heartbeat: fire(&mut self.last_heartbeat, lease / 3),
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
        };
        let held = [(10, lease(1, 1)), (11, lease(2, 3))];
        assert_eq!(tokens_of(&held, &[lease(2, 3), lease(2, 2)]), vec![11]);
    }
}
