//! Leases and the durable queue's timers: heartbeats that renew the leases
//! held (every third of the lease) and rescues of other workers' expired
//! leases (every half).

use std::time::{Duration, Instant};

use runyard_queue::Lease;

/// How often a durable queue is polled for jobs another process enqueued.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// When each of a durable queue's timers last fired.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timers {
    last_heartbeat: Instant,
    last_rescue: Instant,
}

/// Which timers are due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Due {
    pub(super) heartbeat: bool,
    pub(super) rescue: bool,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Timers {
        Timers {
            last_heartbeat: now,
            last_rescue: now,
        }
    }

    /// The timers due at `now` under `lease`, each restarted.
    pub(super) fn due(&mut self, now: Instant, lease: Duration) -> Due {
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
        }
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

    #[test]
    fn heartbeats_come_every_third_of_the_lease_and_rescues_every_half() {
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let lease = Duration::from_secs(3);
        assert_eq!(timers.due(t0, lease), Due::default());
        let due = timers.due(t0 + Duration::from_secs(1), lease);
        assert!(due.heartbeat && !due.rescue);
        let due = timers.due(t0 + Duration::from_millis(1500), lease);
        assert!(!due.heartbeat && due.rescue);
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
