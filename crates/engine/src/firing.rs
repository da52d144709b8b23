//! Firing schedules: a worker's thread that settles the due ticks of the
//! schedules its queue keeps ([`Schedules::fire_due`]) and emits their
//! events.
//!
//! # The protocol
//!
//! Every worker of a queue runs this loop; the queue makes sure that each
//! tick is settled once, whoever calls (`docs/backends.md` §9), so there is
//! no leader to elect and no tick is lost while one worker is alive.
//!
//! 1. Call `fire_due()`. Its report holds what this call settled (fired,
//!    skipped, missed ticks: their events), the earliest next tick of any
//!    schedule (`next`) and the queue's clock when it read it (`now`).
//! 2. Wait until `next`, turned into a wait on the queue's clock
//!    (`next - now`: this machine's clock may differ from the database's),
//!    but at most [`FIRE_POLL`], so that a schedule added or resumed
//!    meanwhile is seen within a second. A call that failed waits
//!    [`FIRE_RETRY`], doubling while the queue stays unreachable, up to
//!    [`FIRE_RETRY_MAX`].
//! 3. Stop at the run's first interrupt (a draining worker settles no more
//!    ticks: another worker, or this one's next start, does) or its end.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use runyard_core::{Event, JobState, QueuedReason, Tick};
use runyard_queue::{FireReport, Queue};

use crate::events::{Events, Meters};
use crate::inbox::Inbox;
use crate::trace::ENGINE;

/// The longest wait between two calls: schedules added meanwhile are seen
/// within it.
pub(crate) const FIRE_POLL: Duration = Duration::from_secs(1);
/// The first wait after a call failed.
const FIRE_RETRY: Duration = Duration::from_millis(250);
/// The longest wait after calls failed.
const FIRE_RETRY_MAX: Duration = Duration::from_secs(5);

/// The firing thread of a worker; stopped and joined when dropped.
pub(crate) struct Firing {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl Stop {
    /// Waits `d`, or less if stopped meanwhile; whether it was stopped.
    fn wait(&self, d: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = self
            .cond
            .wait_timeout_while(stopped, d, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

impl Firing {
    /// Starts firing the schedules of `queue`, if it keeps any; `None`
    /// otherwise (or when no thread could be started: the worker runs
    /// jobs all the same, and says why nothing fires).
    pub(crate) fn start(
        queue: Arc<dyn Queue>,
        events: Events,
        inbox: Arc<Inbox>,
        meter: Meters,
    ) -> Option<Firing> {
        queue.as_schedules()?;
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("runyard-schedules".into())
            .spawn(move || fire_loop(&*queue, &events, &meter, &inbox, &s));
        match thread {
            Ok(t) => Some(Firing {
                stop,
                thread: Some(t),
            }),
            Err(e) => {
                tracing::error!(
                    target: ENGINE,
                    "this worker fires no schedules: no thread could be started ({e})"
                );
                None
            }
        }
    }
}

impl Drop for Firing {
    fn drop(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fire_loop(queue: &dyn Queue, events: &Events, meter: &Meters, inbox: &Inbox, stop: &Stop) {
    let Some(schedules) = queue.as_schedules() else {
        return;
    };
    let mut retry = FIRE_RETRY;
    let mut reported = false;
    loop {
        if inbox.interrupts() > 0 {
            return;
        }
        let wait = match schedules.fire_due() {
            Ok(report) => {
                retry = FIRE_RETRY;
                reported = false;
                if let Some(m) = meter.get() {
                    let missed = report.missed.iter().map(|(_, n)| *n).sum();
                    if !report.fired.is_empty() || !report.skipped.is_empty() || missed > 0 {
                        m.ticks(report.fired.len(), report.skipped.len(), missed);
                    }
                }
                emit(events, queue, &report);
                wait_for(&report)
            }
            Err(e) => {
                if !reported {
                    tracing::warn!(
                        target: ENGINE,
                        "firing schedules failed ({e}); trying again"
                    );
                    reported = true;
                }
                let w = retry;
                retry = (retry * 2).min(FIRE_RETRY_MAX);
                w
            }
        };
        if stop.wait(wait) {
            return;
        }
    }
}

/// How long to wait after `report` (see the module's protocol, step 2).
pub(crate) fn wait_for(report: &FireReport) -> Duration {
    match report.next {
        Some(next) => next.since(report.now).min(FIRE_POLL),
        None => FIRE_POLL,
    }
}

/// The events of what one call settled: per fired tick `fired` and the
/// `queued` (or `blocked`) events of its jobs, then `skipped` and `missed`.
fn emit(events: &Events, queue: &dyn Queue, report: &FireReport) {
    if events.is_empty() {
        return;
    }
    if report.fired.is_empty() && report.skipped.is_empty() && report.missed.is_empty() {
        return;
    }
    let _order = events.lock();
    let at = report.now;
    for f in &report.fired {
        events.emit(&Event::Fired {
            schedule: &f.schedule,
            tick: f.tick,
            at,
            jobs: &f.jobs,
        });
        let tick = Tick {
            schedule: f.schedule.clone(),
            tick: f.tick,
        };
        for &job in &f.jobs {
            let Ok(Some(v)) = queue.inspect().and_then(|q| q.get(job)) else {
                continue;
            };
            let (task, schedule) = (&*v.task, Some(&tick));
            match v.state {
                JobState::Blocked => events.emit(&Event::Blocked {
                    job,
                    task,
                    at,
                    schedule,
                }),
                JobState::Queued | JobState::Scheduled => events.emit(&Event::Queued {
                    job,
                    task,
                    at,
                    reason: QueuedReason::Submitted,
                    schedule,
                }),
                // Claimed already, or cancelled at insert: their own
                // events say so.
                _ => {}
            }
        }
    }
    for (schedule, tick) in &report.skipped {
        events.emit(&Event::Skipped {
            schedule,
            tick: *tick,
            at,
        });
    }
    for (schedule, count) in &report.missed {
        events.emit(&Event::Missed {
            schedule,
            count: *count,
            at,
        });
    }
    events.flush();
}

#[cfg(test)]
mod tests {
    use runyard_core::Timestamp;

    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    #[test]
    fn the_wait_is_on_the_queues_clock_and_at_most_a_second() {
        let report = |next: Option<i64>, now: i64| FireReport {
            next: next.map(at),
            now: at(now),
            ..FireReport::default()
        };
        // The queue's clock, not this machine's: 300 ms from its now.
        assert_eq!(
            wait_for(&report(Some(10_300), 10_000)),
            Duration::from_millis(300)
        );
        assert_eq!(wait_for(&report(Some(60_000), 10_000)), FIRE_POLL);
        assert_eq!(wait_for(&report(None, 10_000)), FIRE_POLL);
        // A tick due already (settled by another worker meanwhile): at once.
        assert_eq!(wait_for(&report(Some(9_000), 10_000)), Duration::ZERO);
    }
}
