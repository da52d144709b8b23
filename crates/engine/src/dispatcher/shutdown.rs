//! Shutdown: the phases of a run and what moves it from one to the next.
//!
//! A run is `Running` until its first interrupt. `Draining`: nothing more
//! is claimed, claims that have not started are given back, running
//! attempts may finish until the grace period ends (or none is left).
//! `Cancelling`: the executors stop running attempts and give back those
//! not started; each stopped attempt's report is awaited for
//! [`CANCEL_WAIT`]. Then the dispatcher gives up on the ones that never
//! reported (an async task that blocks its thread never does) and records
//! them as cancelled itself. Each further interrupt takes the next step at
//! once.

use std::time::{Duration, Instant};

/// How long a cancelled attempt's report is awaited before the dispatcher
/// records it as cancelled itself.
pub(super) const CANCEL_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Running,
    /// Interrupted: no new claims; running attempts may finish until the deadline.
    Draining {
        deadline: Instant,
    },
    /// Running attempts were told to stop; their reports are awaited until the deadline.
    Cancelling {
        deadline: Instant,
    },
}

/// A step of the shutdown, for the dispatcher to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Give back every claim that has not started (entering `Draining`).
    ReleaseUnstarted,
    /// Stop the running attempts (entering `Cancelling`).
    CancelRunning,
    /// Record what never reported as cancelled.
    GiveUp,
}

impl Phase {
    /// An interrupt: the next phase and the step that enters it.
    pub(super) fn interrupt(self, now: Instant, grace: Duration) -> (Phase, Step) {
        match self {
            Phase::Running => (
                Phase::Draining {
                    deadline: now + grace,
                },
                Step::ReleaseUnstarted,
            ),
            Phase::Draining { .. } => Phase::cancelling(now),
            Phase::Cancelling { .. } => (self, Step::GiveUp),
        }
    }

    fn cancelling(now: Instant) -> (Phase, Step) {
        (
            Phase::Cancelling {
                deadline: now + CANCEL_WAIT,
            },
            Step::CancelRunning,
        )
    }

    /// A deadline passed (or, draining, nothing is left to wait for).
    pub(super) fn on_time(self, now: Instant, nothing_running: bool) -> Option<(Phase, Step)> {
        match self {
            Phase::Draining { deadline } if now >= deadline || nothing_running => {
                Some(Phase::cancelling(now))
            }
            Phase::Cancelling { deadline } if now >= deadline => Some((self, Step::GiveUp)),
            _ => None,
        }
    }

    /// The deadline of a shutdown in progress.
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Running => None,
            Phase::Draining { deadline } | Phase::Cancelling { deadline } => Some(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_interrupt_takes_the_next_step() {
        let t = Instant::now();
        let grace = Duration::from_secs(5);
        let (p, s) = Phase::Running.interrupt(t, grace);
        assert_eq!(
            (p, s),
            (
                Phase::Draining {
                    deadline: t + grace
                },
                Step::ReleaseUnstarted
            )
        );
        let (p, s) = p.interrupt(t, grace);
        assert_eq!(s, Step::CancelRunning);
        assert_eq!(p.deadline(), Some(t + CANCEL_WAIT));
        assert_eq!(p.interrupt(t, grace).1, Step::GiveUp);
    }

    #[test]
    fn draining_ends_at_its_deadline_or_when_nothing_runs() {
        let t = Instant::now();
        let draining = Phase::Draining {
            deadline: t + Duration::from_secs(5),
        };
        assert_eq!(draining.on_time(t, false), None);
        assert_eq!(
            draining.on_time(t, true).map(|x| x.1),
            Some(Step::CancelRunning)
        );
        let late = t + Duration::from_secs(5);
        assert_eq!(
            draining.on_time(late, false).map(|x| x.1),
            Some(Step::CancelRunning)
        );
        let (cancelling, _) = draining.on_time(late, false).unwrap();
        assert_eq!(cancelling.on_time(late, false), None);
        assert_eq!(
            cancelling.on_time(late + CANCEL_WAIT, false).map(|x| x.1),
            Some(Step::GiveUp)
        );
        assert_eq!(Phase::Running.on_time(late, true), None);
    }
}
