//! Schedules: when they tick ([`Spec`]), what a worker does with the ticks
//! it finds due ([`Policy`], [`plan`]), and the mark a fired job carries
//! ([`Tick`]).
//!
//! Everything here is a pure function of its inputs: the schedule as
//! stored, the last tick recorded as fired, and the time on the queue's
//! clock. Every worker that reads the same row computes the same ticks, so
//! the queue only has to make sure that one of them records each tick
//! (`docs/backends.md` §9).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The longest a schedule's name may be, in bytes.
pub const SCHEDULE_NAME_MAX: usize = 200;

/// The shortest interval of an `every` schedule.
pub const EVERY_MIN: Duration = Duration::from_secs(1);

/// The mark of a job that a schedule made: which schedule and which tick.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tick {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's time (for `schedule run`, the time it was run).
    pub tick: Timestamp,
}

/// A bad schedule: what was wrong, and an example of what is valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The name is empty, too long, or has characters outside
    /// `[A-Za-z0-9_.:-]`.
    #[error("schedule name {0:?} is not valid: use 1 to {SCHEDULE_NAME_MAX} of A-Z a-z 0-9 _ . : - (e.g. \"nightly-report\")")]
    Name(String),
    /// A cron expression that does not parse.
    #[error("cron expression {expr:?} is not valid: {why}; e.g. \"0 3 * * *\" (03:00 every day), \"*/15 * * * *\", \"30 0 9 * * MON-FRI\" (with seconds), \"@daily\"")]
    Cron {
        /// The expression.
        expr: String,
        /// Why.
        why: String,
    },
    /// A time zone that is not an IANA zone name.
    #[error("time zone {0:?} is not an IANA zone; e.g. \"UTC\", \"Europe/Berlin\", \"America/New_York\"")]
    Zone(String),
    /// An interval below [`EVERY_MIN`].
    #[error("interval {0:?} is too short: an `every` schedule ticks at most once a second (e.g. \"30s\", \"15m\", \"1h\")")]
    Every(String),
}

/// Checks a schedule's name.
pub fn check_schedule_name(name: &str) -> Result<(), ScheduleError> {
    let ok = !name.is_empty()
        && name.len() <= SCHEDULE_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::Name(name.to_owned()))
    }
}

/// When a schedule ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A cron expression in a time zone.
    Cron(CronSpec),
    /// Every `every`, from `anchor` (the moment the schedule was added):
    /// ticks at `anchor + k × every`, k ≥ 1.
    Every {
        /// The interval.
        every: Duration,
        /// The first tick is one interval after it.
        anchor: Timestamp,
    },
}

/// A parsed cron expression and its zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    expr: String,
    zone: String,
    // The parsed forms are added with the cron implementation.
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &CronSpec) -> bool {
        self.expr == other.expr && self.zone == other.zone
    }
}

impl Eq for CronSpec {}

impl CronSpec {
    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The IANA zone it is evaluated in.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    fn next_after(&self, _t: Timestamp) -> Option<Timestamp> {
        todo!("cron ticks")
    }
}

impl Spec {
    /// A cron expression: 5 fields as in crontab, 6 with seconds first, or
    /// `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
    /// (`@midnight`), `@hourly`, in `zone` (an IANA name; UTC when `None`).
    pub fn cron(expr: &str, zone: Option<&str>) -> Result<Spec, ScheduleError> {
        let _ = (expr, zone);
        todo!("cron parsing")
    }

    /// Every `every` from `anchor`.
    pub fn every(every: Duration, anchor: Timestamp) -> Result<Spec, ScheduleError> {
        if every < EVERY_MIN {
            return Err(ScheduleError::Every(crate::format_duration(every)));
        }
        Ok(Spec::Every { every, anchor })
    }

    /// The first tick strictly after `t`, if there is one before
    /// [`Timestamp::MAX`].
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Spec::Cron(c) => c.next_after(t),
            Spec::Every { every, anchor } => {
                let step = i64::try_from(every.as_micros()).ok()?;
                let (a, t) = (anchor.as_micros(), t.as_micros());
                let k = if t < a { 1 } else { (t - a) / step + 1 };
                let next = a.checked_add(k.checked_mul(step)?)?;
                (next <= Timestamp::MAX.as_micros()).then(|| Timestamp::from_micros(next))
            }
        }
    }

    /// The spec as `schedule list` shows it: `cron "0 3 * * *"` or
    /// `every 15m`.
    pub fn describe(&self) -> String {
        match self {
            Spec::Cron(c) => format!("cron {:?}", c.expr),
            Spec::Every { every, .. } => format!("every {}", crate::format_duration(*every)),
        }
    }

    /// The zone of a cron spec (`None` for `every`).
    pub fn zone(&self) -> Option<&str> {
        match self {
            Spec::Cron(c) => Some(&c.zone),
            Spec::Every { .. } => None,
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Whether a tick fires while the previous tick's job has not ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// It fires.
    #[default]
    Allow,
    /// It is skipped (recorded as skipped, never fired later).
    Skip,
}

/// Which missed ticks are fired late.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// None.
    None,
    /// The latest one.
    #[default]
    Latest,
    /// All of them, up to [`Policy::catch_up_max`] (the latest ones).
    All,
}

/// What a schedule does with ticks that were not fired on time, and with
/// ticks whose previous job is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policy {
    /// See [`Overlap`].
    pub overlap: Overlap,
    /// A tick not fired within this long of its time is missed.
    #[serde(with = "crate::serde_duration")]
    pub misfire_grace: Duration,
    /// See [`CatchUp`].
    pub catch_up: CatchUp,
    /// At most this many missed ticks are fired under [`CatchUp::All`].
    pub catch_up_max: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            overlap: Overlap::Allow,
            misfire_grace: Duration::from_secs(60),
            catch_up: CatchUp::Latest,
            catch_up_max: 100,
        }
    }
}

/// What a worker does with a schedule's due ticks: the outcome of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The ticks to fire, oldest first (before [`Overlap`] is applied: that
    /// needs the state of the previous job, which the queue knows).
    pub fire: Vec<Timestamp>,
    /// Ticks that are not fired: missed (older than the grace) and not
    /// caught up.
    pub missed: u64,
    /// The last tick up to `now`: what the schedule records as its last
    /// tick (every tick up to it is settled, fired or missed, for good).
    pub last: Timestamp,
    /// The first tick after `now`.
    pub next: Option<Timestamp>,
}

/// The ticks of `spec` after `last` up to `now`, sorted by `policy`: those
/// within the grace fire; the older ones are missed and fire only as
/// [`CatchUp`] says. With no due tick, `fire` is empty and `last` is
/// unchanged.
pub fn plan(spec: &Spec, policy: &Policy, last: Timestamp, now: Timestamp) -> Plan {
    let grace_start = now.saturating_sub(policy.misfire_grace);
    let keep = match policy.catch_up {
        CatchUp::None => 0,
        CatchUp::Latest => 1,
        CatchUp::All => policy.catch_up_max as usize,
    };
    // Missed ticks: only the latest `keep` are remembered.
    let mut missed_kept = std::collections::VecDeque::with_capacity(keep.min(128));
    let mut missed = 0u64;
    let mut on_time = Vec::new();
    let mut settled = last;
    let mut cursor = last;
    // An interval far behind: step over the ticks that can only be missed
    // and not caught up, counting them (a cron expression is walked: its
    // ticks have no arithmetic).
    if let Spec::Every { every, anchor } = spec {
        let step = every.as_micros() as i128;
        let index =
            |t: Timestamp| (t.as_micros() as i128 - anchor.as_micros() as i128).div_euclid(step);
        // Ticks k with anchor + k·step <= cursor are done; the first
        // within the grace is the first k with anchor + k·step >= grace_start.
        let done = index(cursor).max(0);
        let first_on_time = index(grace_start.saturating_sub(Duration::from_micros(1))).max(0);
        let skip = first_on_time - done - keep as i128;
        if skip > 0 {
            missed += skip as u64;
            let k = done + skip;
            cursor = Timestamp::from_micros((anchor.as_micros() as i128 + k * step) as i64);
            settled = cursor;
        }
    }
    let next = loop {
        let Some(t) = spec.next_after(cursor) else {
            break None;
        };
        if t > now {
            break Some(t);
        }
        if t >= grace_start {
            on_time.push(t);
        } else {
            missed += 1;
            if keep > 0 {
                if missed_kept.len() == keep {
                    missed_kept.pop_front();
                }
                missed_kept.push_back(t);
            }
        }
        settled = t;
        cursor = t;
    };
    missed -= missed_kept.len() as u64;
    let mut fire: Vec<Timestamp> = missed_kept.into_iter().collect();
    fire.extend(on_time);
    Plan {
        fire,
        missed,
        last: settled,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::EPOCH.saturating_add(Duration::from_secs(s))
    }

    #[test]
    fn every_ticks_at_whole_intervals_from_its_anchor() {
        let s = Spec::every(Duration::from_secs(10), at(1000)).unwrap();
        assert_eq!(s.next_after(at(0)), Some(at(1010)));
        assert_eq!(s.next_after(at(1000)), Some(at(1010)));
        assert_eq!(s.next_after(at(1010)), Some(at(1020)));
        assert_eq!(s.next_after(at(1015)), Some(at(1020)));
        assert!(Spec::every(Duration::from_millis(500), at(0)).is_err());
    }

    #[test]
    fn on_time_ticks_fire_and_old_ones_follow_catch_up() {
        let s = Spec::every(Duration::from_secs(10), at(0)).unwrap();
        let mut p = Policy {
            misfire_grace: Duration::from_secs(25),
            ..Policy::default()
        };
        // Last fired at 0, now 100: ticks 10..=100; 80, 90, 100 are within
        // the grace (75..=100).
        let plan_of = |p: &Policy| plan(&s, p, at(0), at(100));
        let latest = plan_of(&p);
        assert_eq!(latest.fire, vec![at(70), at(80), at(90), at(100)]);
        assert_eq!(latest.missed, 6);
        assert_eq!(latest.last, at(100));
        assert_eq!(latest.next, Some(at(110)));
        p.catch_up = CatchUp::None;
        let none = plan_of(&p);
        assert_eq!(none.fire, vec![at(80), at(90), at(100)]);
        assert_eq!(none.missed, 7);
        p.catch_up = CatchUp::All;
        p.catch_up_max = 3;
        let all = plan_of(&p);
        assert_eq!(
            all.fire,
            vec![at(50), at(60), at(70), at(80), at(90), at(100)]
        );
        assert_eq!(all.missed, 4);
    }

    #[test]
    fn nothing_due_changes_nothing() {
        let s = Spec::every(Duration::from_secs(10), at(0)).unwrap();
        let p = plan(&s, &Policy::default(), at(10), at(19));
        assert!(p.fire.is_empty());
        assert_eq!((p.missed, p.last, p.next), (0, at(10), Some(at(20))));
    }

    #[test]
    fn a_schedule_far_behind_is_planned_without_walking_every_tick() {
        let s = Spec::every(Duration::from_secs(1), at(0)).unwrap();
        let p = plan(&s, &Policy::default(), at(0), at(10_000_000));
        assert_eq!(p.last, at(10_000_000));
        // The grace of 60 s holds 61 ticks (9_999_940..=10_000_000); the
        // latest missed one is caught up.
        assert_eq!(p.fire.len(), 62);
        assert_eq!(p.missed + p.fire.len() as u64, 10_000_000);
    }
}
