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
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::{GapInfo, Tz};
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
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
///
/// # Expressions
///
/// Five fields as in crontab, `minute hour day-of-month month day-of-week`,
/// or six with `second` first; or one of the aliases `@yearly`
/// (`@annually`, `0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly`
/// (`0 0 * * 0`), `@daily` (`@midnight`, `0 0 * * *`) and `@hourly`
/// (`0 * * * *`). A field holds `*`, numbers, ranges (`1-5`), lists
/// (`1,15`), steps (`*/15`, `8-18/2`), and names of months and days
/// (`JAN`, `MON-FRI`, any case). Day of week runs from 0 (Sunday) to 7
/// (Sunday again). Beyond crontab, day of month takes `L` (the last day)
/// and `15W` (the weekday nearest the 15th), and day of week takes `5#2`
/// (the second Friday) and `5#L` (the last Friday); `?` is `*` in either.
///
/// Day of month and day of week combine as in Vixie cron: when both are
/// restricted (neither starts with `*`), a day matches when either field
/// does (`0 0 1,15 * MON`: the 1st, the 15th and every Monday); otherwise
/// it must match both (`0 0 */2 * MON`: odd days that are Mondays). A
/// `+` before the day of week (`0 0 1 * +MON`) asks for both always.
/// Seven fields (with a year) are refused.
///
/// # Time zone and daylight saving
///
/// Ticks are whole seconds. The expression is matched against the local
/// date and time (the wall clock) of the zone, an IANA name. Where the
/// zone's clock jumps, the rule depends on the hour field:
///
/// - An hour field that starts with `*` (`*`, `*/2`; `@hourly`) follows
///   real time: the ticks are the instants whose wall-clock reading
///   matches. A local time that a spring-forward gap skips has no tick,
///   so minute and second steps keep their spacing in real time
///   (`*/15 * * * *` in Europe/Berlin on 2026-03-29: 01:45 CET, then
///   03:00 CEST, 15 minutes later); a local time that falling back repeats
///   has a tick in each pass (`0 * * * *` in America/New_York on
///   2026-11-01: 01:00 EDT and 01:00 EST, an hour apart).
/// - Any other hour field is a fixed hour: each matching local time fires
///   once per local day. A repeated local time fires in its first pass
///   only; a skipped one fires at the first instant after the gap
///   (`30 2 * * *` in Europe/Berlin on 2026-03-29: at 03:00 CEST, which
///   is 01:00 UTC). Local times that land on the same instant this way
///   (`0,30 2 * * *` on that day) make one tick.
///
/// Ticks are found up to the year 5000 (croner's horizon) and follow the
/// zone rules of the IANA database that `chrono-tz` carries.
#[derive(Clone)]
pub struct CronSpec {
    expr: String,
    zone: String,
    /// Shared: a spec is cloned with each schedule it belongs to.
    cron: Arc<Cron>,
    tz: Tz,
    /// The hour field starts with `*`: ticks follow real time.
    real_time: bool,
}

impl fmt::Debug for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSpec")
            .field("expr", &self.expr)
            .field("zone", &self.zone)
            .finish()
    }
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &CronSpec) -> bool {
        self.expr == other.expr && self.zone == other.zone
    }
}

impl Eq for CronSpec {}

/// The names of the six fields, seconds first.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or a day with W (15W)"),
    ("month", "1-12 or JAN-DEC"),
    (
        "day-of-week",
        "0-7 (0 and 7 are Sunday) or SUN-SAT, with #N or #L for the nth or last",
    ),
];

/// The aliases and what they stand for.
const ALIASES: [(&str, &str); 8] = [
    ("yearly", "0 0 1 1 *"),
    ("annually", "0 0 1 1 *"),
    ("monthly", "0 0 1 * *"),
    ("weekly", "0 0 * * 0"),
    ("daily", "0 0 * * *"),
    ("midnight", "0 0 * * *"),
    ("hourly", "0 * * * *"),
    ("reboot", ""),
];

impl CronSpec {
    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The IANA zone it is evaluated in.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    fn parse(expr: &str, zone: &str) -> Result<CronSpec, ScheduleError> {
        let tz: Tz = zone
            .parse()
            .map_err(|_| ScheduleError::Zone(zone.to_owned()))?;
        let bad = |why: String| ScheduleError::Cron {
            expr: expr.to_owned(),
            why,
        };
        let given = fields_of(expr).map_err(bad)?;
        let mut fields = given.clone();
        // Vixie: a field that starts with `*` is unrestricted, even when
        // stepped; croner counts only a bare `*` as such. Where croner
        // would combine with OR and Vixie with AND, croner's `+` says AND.
        let star = |f: &str| f == "*" || f == "?";
        let starts = |f: &str| f.starts_with('*') || f.starts_with('?');
        if !star(&fields[3])
            && !star(&fields[5])
            && (starts(&fields[3]) || starts(&fields[5]))
            && !fields[5].starts_with('+')
        {
            fields[5].insert(0, '+');
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(&fields.join(" ")).map_err(|e| {
            // Name the field that is wrong: the first that fails alone.
            let why = (0..6).find_map(|i| {
                let mut probe = ["*"; 6];
                probe[i] = &fields[i];
                let e = parser.parse(&probe.join(" ")).err()?;
                let (name, valid) = FIELDS[i];
                Some(format!(
                    "the {name} field `{}` is not valid ({}); it takes {valid}",
                    given[i],
                    croner_why(&e)
                ))
            });
            bad(why.unwrap_or_else(|| croner_why(&e)))
        })?;
        let spec = CronSpec {
            expr: expr.to_owned(),
            zone: zone.to_owned(),
            cron: Arc::new(cron),
            tz,
            real_time: fields[2].starts_with('*'),
        };
        if !spec.matches_a_day() {
            return Err(bad(
                "it matches no day of the calendar (e.g. the 30th of February), so it would \
                 never tick"
                    .into(),
            ));
        }
        Ok(spec)
    }

    /// Whether some day matches the date fields. The Gregorian calendar,
    /// weekdays included, repeats every 400 years: looking through 400
    /// years is exact (a matching expression stops at its first day).
    fn matches_a_day(&self) -> bool {
        let p = &self.cron.pattern;
        (2000..2400).any(|year| {
            (1..=12u32).any(|month| {
                p.month_match(month).unwrap_or(false)
                    && (1..=days_in(year, month))
                        .any(|day| p.day_match(year, month, day).unwrap_or(false))
            })
        })
    }

    /// The first tick strictly after `t` (see the rules above).
    fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let utc = DateTime::from_timestamp_micros(t.as_micros())?.naive_utc();
        let offset = self
            .tz
            .offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc();
        let local = utc + TimeDelta::seconds(offset.into());
        // Inside a repeated hour: whether `t` is in its first pass, and
        // the offsets of the two passes.
        let pass = match self.offsets_at(&local) {
            LocalResult::Ambiguous(first, second) if first != second => {
                Some((i64::from(offset) == first, first, second))
            }
            _ => None,
        };
        if self.real_time {
            self.next_real(utc, local, pass)
        } else {
            self.next_fixed(utc, local, pass)
        }
    }

    /// A fixed hour: each matching local time once, at its first instant
    /// (the first pass of a repeated time, the end of a gap for a skipped
    /// one). That instant never decreases as the local time grows, so the
    /// tick is that of the first matching local time whose instant is
    /// after `t`: local times up to `t`'s reading ticked at or before it;
    /// in a second pass, so did the rest of the repeated ones, in the
    /// first pass.
    fn next_fixed(
        &self,
        utc: NaiveDateTime,
        local: NaiveDateTime,
        pass: Option<(bool, i64, i64)>,
    ) -> Option<Timestamp> {
        let mut from = local;
        if let Some((false, first, second)) = pass {
            let now = utc.and_utc().timestamp();
            if let Some(fall) = self.transition(now - (first - second), now, first) {
                // The repeated readings end at the fall-back's reading in
                // the first pass's offset.
                from = fall + TimeDelta::seconds(first - 1);
            }
        }
        loop {
            let l = self.naive_next(from)?;
            let at = match self.offsets_at(&l) {
                LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => l - TimeDelta::seconds(o),
                LocalResult::None => GapInfo::new(&l, &self.tz)?.end?.naive_utc(),
            };
            if at > utc {
                return timestamp(at);
            }
            from = l;
        }
    }

    /// Real time: every instant whose reading matches. Outside a repeated
    /// hour the readings grow with time (skipping gaps), so the tick is
    /// that of the next matching reading. In the first pass of a repeated
    /// hour, the rest of the first pass comes first, then the second pass
    /// from its start, then what follows it.
    fn next_real(
        &self,
        utc: NaiveDateTime,
        local: NaiveDateTime,
        pass: Option<(bool, i64, i64)>,
    ) -> Option<Timestamp> {
        let mut from = local;
        let mut after = utc;
        if let Some((true, first, second)) = pass {
            let now = utc.and_utc().timestamp();
            if let Some(fall) = self.transition(now, now + (first - second), first) {
                // The repeated readings are [start, end).
                let end = fall + TimeDelta::seconds(first);
                let start = fall + TimeDelta::seconds(second);
                let l = self.naive_next(local)?;
                if l < end {
                    return timestamp(l - TimeDelta::seconds(first));
                }
                let l = self.naive_next(start - TimeDelta::seconds(1))?;
                if l < end {
                    return timestamp(l - TimeDelta::seconds(second));
                }
                from = end - TimeDelta::seconds(1);
                after = fall;
            }
        }
        loop {
            let l = self.naive_next(from)?;
            let at = match self.offsets_at(&l) {
                LocalResult::Single(o) => l - TimeDelta::seconds(o),
                LocalResult::Ambiguous(first, second) => {
                    let at = l - TimeDelta::seconds(first);
                    if at > after {
                        at
                    } else {
                        l - TimeDelta::seconds(second)
                    }
                }
                LocalResult::None => {
                    // No tick in a gap: go on from its end.
                    from = GapInfo::new(&l, &self.tz)?.end?.naive_local() - TimeDelta::seconds(1);
                    continue;
                }
            };
            if at > after {
                return timestamp(at);
            }
            from = l;
        }
    }

    /// The instant (UTC) at which the offset changes from `offset`: the
    /// first whole second after `lo` (under `offset`) up to `hi` (under
    /// another), found by bisection; transitions fall on whole seconds.
    fn transition(&self, mut lo: i64, mut hi: i64, offset: i64) -> Option<NaiveDateTime> {
        let offset_at = |s: i64| {
            let at = DateTime::from_timestamp(s, 0)?.naive_utc();
            let o = self
                .tz
                .offset_from_utc_datetime(&at)
                .fix()
                .local_minus_utc();
            Some(i64::from(o))
        };
        if offset_at(lo)? != offset || offset_at(hi)? == offset {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(mid)? == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(DateTime::from_timestamp(hi, 0)?.naive_utc())
    }

    /// The offsets (seconds east of UTC) that a local time has: one, two
    /// (earlier instant first), or none in a gap.
    fn offsets_at(&self, local: &NaiveDateTime) -> LocalResult<i64> {
        self.tz
            .offset_from_local_datetime(local)
            .map(|o| i64::from(o.fix().local_minus_utc()))
    }

    /// The first whole-second local time strictly after `local` that the
    /// expression matches (a calendar without zones: croner on UTC).
    fn naive_next(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let from = local.with_nanosecond(0)?.and_utc();
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        Some(next.naive_utc())
    }
}

/// An expression's six fields (seconds first), aliases expanded.
fn fields_of(expr: &str) -> Result<Vec<String>, String> {
    let text = expr.trim();
    let text = match text.strip_prefix('@') {
        Some(alias) => match ALIASES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(alias))
        {
            Some(("reboot", _)) => {
                return Err("@reboot has no tick: a schedule fires at times".into())
            }
            Some((_, fields)) => fields,
            None => {
                return Err(format!(
                    "`@{alias}` is not an alias (they are @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight and @hourly)"
                ))
            }
        },
        None => text,
    };
    let mut fields: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_owned()),
        6 => {}
        0 => return Err("it is empty".into()),
        n => {
            return Err(format!(
                "it has {n} field{}; a cron expression has 5 (minute hour day-of-month month \
                 day-of-week) or 6 (second first)",
                if n == 1 { "" } else { "s" }
            ))
        }
    }
    Ok(fields)
}

/// The days of a month.
fn days_in(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Croner's message, as a clause.
fn croner_why(e: &CronError) -> String {
    let text = match e {
        CronError::ComponentError(m) | CronError::InvalidPattern(m) => m.clone(),
        CronError::IllegalCharacters(m) => format!("illegal characters: {m}"),
        other => other.to_string(),
    };
    let text = text.trim().trim_end_matches('.');
    // "Step cannot be zero" reads on as "step cannot be zero"; "L not
    // allowed" keeps its capital.
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some(d)) if d.is_lowercase() => {
            c.to_lowercase().chain([d]).chain(chars).collect()
        }
        (Some(_), _) => text.to_owned(),
        (None, _) => "croner refused it".into(),
    }
}

/// A UTC time as a timestamp, if it is within the range of one.
fn timestamp(utc: NaiveDateTime) -> Option<Timestamp> {
    let micros = utc.and_utc().timestamp_micros();
    (Timestamp::EPOCH.as_micros()..=Timestamp::MAX.as_micros())
        .contains(&micros)
        .then(|| Timestamp::from_micros(micros))
}

impl Spec {
    /// A cron expression: 5 fields as in crontab, 6 with seconds first, or
    /// `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
    /// (`@midnight`), `@hourly`, in `zone` (an IANA name; UTC when `None`).
    /// [`CronSpec`] has the syntax and the daylight-saving rules. An
    /// expression that no day matches (`0 0 30 2 *`) and `@reboot` are
    /// refused.
    pub fn cron(expr: &str, zone: Option<&str>) -> Result<Spec, ScheduleError> {
        CronSpec::parse(expr, zone.unwrap_or("UTC")).map(Spec::Cron)
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

impl Overlap {
    /// Its name, as stored and as job files and flags give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
        }
    }

    /// The policy of that name (`allow` or `skip`).
    pub fn from_name(name: &str) -> Option<Overlap> {
        [Overlap::Allow, Overlap::Skip]
            .into_iter()
            .find(|o| o.as_str() == name)
    }

    /// Splits the ticks of a [`Plan`] into those that fire and those that
    /// are skipped: under [`Overlap::Skip`] all are skipped while the last
    /// fire's job has not ended (`unfinished`, asked only then), else only
    /// the latest fires.
    pub fn split<E>(
        self,
        mut fire: Vec<Timestamp>,
        unfinished: impl FnOnce() -> Result<bool, E>,
    ) -> Result<(Vec<Timestamp>, Vec<Timestamp>), E> {
        if self == Overlap::Allow || fire.is_empty() {
            return Ok((fire, Vec::new()));
        }
        let keep = if unfinished()? { 0 } else { 1 };
        let skipped = fire.drain(..fire.len() - keep).collect();
        Ok((fire, skipped))
    }
}

impl CatchUp {
    /// Its name, as stored and as job files and flags give it.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::None => "none",
            CatchUp::Latest => "latest",
            CatchUp::All => "all",
        }
    }

    /// The policy of that name (`none`, `latest` or `all`).
    pub fn from_name(name: &str) -> Option<CatchUp> {
        [CatchUp::None, CatchUp::Latest, CatchUp::All]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
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

    /// A UTC time, written `2026-03-29T01:00:00Z`.
    fn z(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn cron(expr: &str, zone: &str) -> Spec {
        Spec::cron(expr, Some(zone)).unwrap_or_else(|e| panic!("{expr} in {zone}: {e}"))
    }

    /// The first `n` ticks after `from`.
    fn ticks(spec: &Spec, from: &str, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut t = z(from);
        while out.len() < n {
            t = spec.next_after(t).expect("a next tick");
            out.push(t);
        }
        out
    }

    fn zs(list: &[&str]) -> Vec<Timestamp> {
        list.iter().map(|s| z(s)).collect()
    }

    #[test]
    fn a_fixed_hour_skipped_by_spring_forward_fires_right_after_the_gap() {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z.
        let s = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-03-27T12:00:00Z", 3),
            zs(&[
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST: the gap's end
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ])
        );
        // Two skipped local times land on one instant: one tick.
        let s = cron("0,30 2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-03-28T12:00:00Z", 2),
            zs(&["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"])
        );
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z.
        let s = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-03-06T12:00:00Z", 3),
            zs(&[
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
            ])
        );
        // A time after the gap is not moved.
        let s = cron("15 3 * * *", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-03-08T00:00:00Z", 1),
            zs(&["2026-03-08T07:15:00Z"])
        );
    }

    #[test]
    fn a_fixed_hour_repeated_by_fall_back_fires_once_in_the_first_pass() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z.
        let s = cron("30 2 * * *", "Europe/Berlin");
        let expected = zs(&["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]);
        assert_eq!(ticks(&s, "2026-10-24T12:00:00Z", 2), expected);
        // From inside either pass, the next tick is the next day's.
        for from in [
            "2026-10-25T00:45:00Z",
            "2026-10-25T01:10:00Z",
            "2026-10-25T01:30:00Z",
        ] {
            assert_eq!(ticks(&s, from, 1), zs(&["2026-10-26T01:30:00Z"]), "{from}");
        }
        // From the second pass, a time just after the repeated hour comes
        // next (03:00 CET).
        let s = cron("0 3 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-10-25T01:10:00Z", 1),
            zs(&["2026-10-25T02:00:00Z"])
        );
        // Minutes that step inside a fixed hour: once each, first pass.
        let s = cron("*/20 2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-10-24T23:00:00Z", 4),
            zs(&[
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:20:00Z",
                "2026-10-25T00:40:00Z",
                "2026-10-26T01:00:00Z",
            ])
        );
        // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z.
        let s = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-10-31T12:00:00Z", 2),
            zs(&["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"])
        );
        assert_eq!(
            ticks(&s, "2026-11-01T06:10:00Z", 1),
            zs(&["2026-11-02T06:30:00Z"])
        );
    }

    #[test]
    fn stepped_hours_follow_real_time_across_both_transitions() {
        let s = cron("*/15 * * * *", "Europe/Berlin");
        // Through the gap: 01:45 CET, then 03:00 CEST, 15 minutes later.
        assert_eq!(
            ticks(&s, "2026-03-29T00:40:00Z", 3),
            zs(&[
                "2026-03-29T00:45:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z",
            ])
        );
        // Through the repeated hour: both passes.
        let s = cron("0 * * * *", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-11-01T04:30:00Z", 3),
            zs(&[
                "2026-11-01T05:00:00Z", // 01:00 EDT
                "2026-11-01T06:00:00Z", // 01:00 EST
                "2026-11-01T07:00:00Z", // 02:00 EST
            ])
        );
        let s = cron("*/20 * * * *", "America/New_York");
        // From late in the first pass: the second pass starts again at 01:00.
        assert_eq!(
            ticks(&s, "2026-11-01T05:50:00Z", 1),
            zs(&["2026-11-01T06:00:00Z"])
        );
        // From inside the second pass.
        assert_eq!(
            ticks(&s, "2026-11-01T06:25:00Z", 1),
            zs(&["2026-11-01T06:40:00Z"])
        );
        // Two-hour steps on the wall clock: 02:00 does not exist on the
        // spring day, so no tick for it.
        let s = cron("0 */2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-03-28T22:30:00Z", 2),
            zs(&["2026-03-28T23:00:00Z", "2026-03-29T02:00:00Z"])
        );
        // Seconds through the fall-back instant: every second.
        let s = cron("* * * * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-10-25T00:59:58.5Z", 3),
            zs(&[
                "2026-10-25T00:59:59Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:00:01Z",
            ])
        );
    }

    /// The ticks of a minute expression, from the definition: each whole
    /// minute whose wall-clock reading matches `keep` (real time).
    fn brute_force(
        zone: &str,
        from: &str,
        hours: i64,
        keep: impl Fn(u32, u32) -> bool,
    ) -> Vec<Timestamp> {
        let tz: Tz = zone.parse().unwrap();
        let start = z(from).as_micros() / 1_000_000;
        (1..=hours * 60)
            .filter_map(|m| {
                let s = start + m * 60;
                let local = tz.from_utc_datetime(&DateTime::from_timestamp(s, 0)?.naive_utc());
                keep(local.hour(), local.minute()).then(|| Timestamp::from_micros(s * 1_000_000))
            })
            .collect()
    }

    /// From points spread over `[from, to)` (at odd microseconds too), the
    /// next tick is the first of `expected` after the point.
    fn assert_next_from_anywhere(
        spec: &Spec,
        expected: &[Timestamp],
        from: Timestamp,
        to: Timestamp,
    ) {
        let mut t = from;
        while t < to {
            let i = expected.partition_point(|&e| e <= t);
            assert_eq!(
                spec.next_after(t),
                expected.get(i).copied(),
                "{spec} after {t:?}"
            );
            t = t + Duration::from_micros(173_000_317);
        }
    }

    #[test]
    fn real_time_ticks_are_every_matching_instant_around_each_transition() {
        let days = [
            ("Europe/Berlin", "2026-03-28T20:00:00Z"),
            ("Europe/Berlin", "2026-10-24T20:00:00Z"),
            ("America/New_York", "2026-03-08T00:00:00Z"),
            ("America/New_York", "2026-10-31T23:00:00Z"),
        ];
        for (zone, from) in days {
            for (expr, keep) in [
                ("*/15 * * * *", (|_, m| m % 15 == 0) as fn(u32, u32) -> bool),
                ("7 * * * *", |_, m| m == 7),
                ("*/20 */3 * * *", |h, m| h % 3 == 0 && m % 20 == 0),
            ] {
                let expected = brute_force(zone, from, 12, keep);
                let s = cron(expr, zone);
                let got = ticks(&s, from, expected.len());
                assert_eq!(got, expected, "{expr} in {zone} from {from}");
                assert_next_from_anywhere(&s, &expected, z(from), *expected.last().unwrap());
            }
        }
    }

    #[test]
    fn fixed_hour_ticks_are_each_local_time_once_around_each_transition() {
        // From the definition: each matching local time of each day, at
        // its first instant, or at the first whole minute after its gap.
        let expected = |zone: &str, day: &str| -> Vec<Timestamp> {
            let tz: Tz = zone.parse().unwrap();
            let day: chrono::NaiveDate = day.parse().unwrap();
            let mut out: Vec<Timestamp> = (-1..=1)
                .flat_map(|d| [(1, 0), (1, 30), (2, 0), (2, 30), (3, 0), (3, 30)].map(|hm| (d, hm)))
                .map(|(d, (h, m))| {
                    let mut local = (day + TimeDelta::days(d)).and_hms_opt(h, m, 0).unwrap();
                    loop {
                        if let Some(at) = tz.from_local_datetime(&local).earliest() {
                            break Timestamp::from_micros(at.timestamp() * 1_000_000);
                        }
                        local += TimeDelta::minutes(1);
                    }
                })
                .collect();
            out.sort();
            out.dedup();
            out
        };
        for (zone, day) in [
            ("Europe/Berlin", "2026-03-29"),
            ("Europe/Berlin", "2026-10-25"),
            ("America/New_York", "2026-03-08"),
            ("America/New_York", "2026-11-01"),
        ] {
            let want = expected(zone, day);
            let s = cron("0,30 1-3 * * *", zone);
            let from = Timestamp::from_micros(want[0].as_micros() - 1);
            let mut got = vec![s.next_after(from).unwrap()];
            while got.len() < want.len() {
                got.push(s.next_after(*got.last().unwrap()).unwrap());
            }
            assert_eq!(got, want, "in {zone} around {day}");
            assert_next_from_anywhere(&s, &want, from, *want.last().unwrap());
        }
    }

    #[test]
    fn ticks_move_forward_over_a_whole_year() {
        // Samples over 2026 in both zones: the next tick is later, and it
        // is also the next tick from just before it.
        for zone in ["Europe/Berlin", "America/New_York"] {
            for expr in [
                "*/7 * * * *",
                "0 */5 * * *",
                "45 1,2 * * *",
                "30 2 * * 0",
                "@daily",
            ] {
                let s = cron(expr, zone);
                let mut t = z("2026-01-01T00:00:00Z");
                while t < z("2027-01-01T00:00:00Z") {
                    let next = s.next_after(t).unwrap();
                    assert!(next > t, "{expr} in {zone} after {t:?}: {next:?}");
                    let just_before = Timestamp::from_micros(next.as_micros() - 1);
                    assert_eq!(s.next_after(just_before), Some(next), "{expr} in {zone}");
                    t = t + Duration::from_secs(23_767);
                }
            }
        }
    }

    #[test]
    fn the_next_tick_is_the_same_from_anywhere_before_it() {
        // For t in [tick - d, tick), the next tick after t is that tick:
        // nothing between is skipped, whatever the pass or the gap.
        for (expr, zone, from) in [
            ("*/10 * * * *", "America/New_York", "2026-11-01T04:00:00Z"),
            ("*/10 1 * * *", "America/New_York", "2026-11-01T04:00:00Z"),
            ("*/10 * * * *", "Europe/Berlin", "2026-03-28T23:00:00Z"),
            ("0,20 2 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z"),
            ("0,20 2,3 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z"),
            // Falls back half an hour, from 02:00 to 01:30.
            (
                "*/30 1,2 * * *",
                "Australia/Lord_Howe",
                "2026-04-04T12:00:00Z",
            ),
            (
                "*/30 * * * *",
                "Australia/Lord_Howe",
                "2026-04-04T12:00:00Z",
            ),
            // Springs forward at midnight: @daily fires at 01:00.
            ("@daily", "America/Santiago", "2026-09-04T12:00:00Z"),
        ] {
            let s = cron(expr, zone);
            let mut prev = z(from);
            for tick in ticks(&s, from, 20) {
                let mut t = prev;
                while t < tick {
                    assert_eq!(s.next_after(t), Some(tick), "{expr} in {zone} after {t:?}");
                    t = t + Duration::from_secs(97);
                }
                let just_before = Timestamp::from_micros(tick.as_micros() - 1);
                assert_eq!(s.next_after(just_before), Some(tick));
                prev = tick;
            }
        }
    }

    #[test]
    fn month_ends_skip_short_months_and_find_leap_days() {
        let s = cron("0 0 31 * *", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-31T00:00:00Z", 4),
            zs(&[
                "2026-03-31T00:00:00Z",
                "2026-05-31T00:00:00Z",
                "2026-07-31T00:00:00Z",
                "2026-08-31T00:00:00Z",
            ])
        );
        let s = cron("0 12 29 2 *", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 2),
            zs(&["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"])
        );
        let s = cron("0 0 L * *", "UTC");
        assert_eq!(
            ticks(&s, "2028-01-31T00:00:00Z", 3),
            zs(&[
                "2028-02-29T00:00:00Z",
                "2028-03-31T00:00:00Z",
                "2028-04-30T00:00:00Z",
            ])
        );
        assert_eq!(
            ticks(&s, "2026-02-01T00:00:00Z", 1),
            zs(&["2026-02-28T00:00:00Z"])
        );
        // The end of a month in a zone: local midnight.
        let s = cron("0 0 1 * *", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-02-15T00:00:00Z", 2),
            zs(&["2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"])
        );
        let s = cron("59 23 L 12 *", "Europe/Berlin");
        assert_eq!(
            ticks(&s, "2026-06-01T00:00:00Z", 1),
            zs(&["2026-12-31T22:59:00Z"])
        );
    }

    #[test]
    fn aliases_stand_for_their_expressions() {
        let from = "2026-06-01T10:30:00Z"; // a Monday
        for (alias, next) in [
            ("@yearly", "2027-01-01T00:00:00Z"),
            ("@annually", "2027-01-01T00:00:00Z"),
            ("@monthly", "2026-07-01T00:00:00Z"),
            ("@weekly", "2026-06-07T00:00:00Z"),
            ("@daily", "2026-06-02T00:00:00Z"),
            ("@midnight", "2026-06-02T00:00:00Z"),
            ("@hourly", "2026-06-01T11:00:00Z"),
            ("@DAILY", "2026-06-02T00:00:00Z"),
        ] {
            assert_eq!(ticks(&cron(alias, "UTC"), from, 1), zs(&[next]), "{alias}");
        }
        // @hourly steps hours: both passes of a repeated hour.
        let s = cron("@hourly", "America/New_York");
        assert_eq!(
            ticks(&s, "2026-11-01T05:30:00Z", 1),
            zs(&["2026-11-01T06:00:00Z"])
        );
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = cron("30 0 9 * * MON-FRI", "UTC");
        assert_eq!(
            ticks(&s, "2026-06-05T10:00:00Z", 2), // a Friday
            zs(&["2026-06-08T09:00:30Z", "2026-06-09T09:00:30Z"])
        );
        let s = cron("*/10 * * * * *", "UTC");
        assert_eq!(
            ticks(&s, "2026-06-05T10:00:05.25Z", 2),
            zs(&["2026-06-05T10:00:10Z", "2026-06-05T10:00:20Z"])
        );
        // Five fields tick at second 0.
        let s = cron("* * * * *", "UTC");
        assert_eq!(
            ticks(&s, "2026-06-05T10:00:00Z", 1),
            zs(&["2026-06-05T10:01:00Z"])
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_as_in_vixie_cron() {
        // Both restricted: either matches (Friday the 2nd, 9th; Tuesday the 13th).
        let s = cron("0 0 13 * FRI", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 4),
            zs(&[
                "2026-01-02T00:00:00Z",
                "2026-01-09T00:00:00Z",
                "2026-01-13T00:00:00Z",
                "2026-01-16T00:00:00Z",
            ])
        );
        // One of them `*`: the other alone.
        let s = cron("0 0 13 * *", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 1),
            zs(&["2026-01-13T00:00:00Z"])
        );
        let s = cron("0 0 ? * FRI", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-03T00:00:00Z", 1),
            zs(&["2026-01-09T00:00:00Z"])
        );
        // A field that starts with `*` is not restricted, even stepped:
        // odd days that are Mondays.
        let s = cron("0 0 */2 * MON", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 3),
            zs(&[
                "2026-01-05T00:00:00Z",
                "2026-01-19T00:00:00Z",
                "2026-02-09T00:00:00Z",
            ])
        );
        // Day names, the nth and the last weekday.
        let s = cron("0 9 * * 5#L", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 1),
            zs(&["2026-01-30T09:00:00Z"])
        );
        let s = cron("0 9 * * sun#2", "UTC");
        assert_eq!(
            ticks(&s, "2026-01-01T00:00:00Z", 1),
            zs(&["2026-01-11T09:00:00Z"])
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_wrong() {
        let why = |expr: &str| match Spec::cron(expr, None) {
            Err(ScheduleError::Cron { expr: e, why }) => {
                assert_eq!(e, expr);
                why
            }
            other => panic!("{expr}: {other:?}"),
        };
        assert_eq!(
            why("@reboot"),
            "@reboot has no tick: a schedule fires at times"
        );
        for (expr, says) in [
            ("0 25 * * *", "the hour field `25` is not valid"),
            ("0 25 * * *", "it takes 0-23"),
            ("61 * * * *", "the minute field `61`"),
            ("0 0 * * 8", "the day-of-week field `8`"),
            ("0 0 32 * *", "the day-of-month field `32`"),
            ("0 0 1 13 *", "the month field `13`"),
            ("0 0 1 FOO *", "the month field `FOO`"),
            ("61 0 0 1 1 *", "the second field `61`"),
            ("*/0 * * * *", "the minute field `*/0`"),
            ("* * * *", "it has 4 fields; a cron expression has 5"),
            ("0 0 1 1 * 2027 x", "it has 7 fields"),
            ("", "it is empty"),
            ("@fortnightly", "`@fortnightly` is not an alias"),
            ("0 0 30 2 *", "it matches no day of the calendar"),
            ("0 0 31 4,6,9,11 *", "it matches no day of the calendar"),
            ("0 0 L5 * *", "the day-of-month field `L5`"),
            ("0 0 * * MON#6", "the day-of-week field `MON#6`"),
        ] {
            let w = why(expr);
            assert!(w.contains(says), "{expr:?}: {w}");
        }
        let e = Spec::cron("0 25 * * *", None).unwrap_err().to_string();
        assert!(
            e.starts_with("cron expression \"0 25 * * *\" is not valid: the hour field"),
            "{e}"
        );
        assert!(e.contains("e.g. \"0 3 * * *\""), "{e}");
        for zone in ["Mars/Olympus", "", "europe/berlin", "CET+1"] {
            assert_eq!(
                Spec::cron("0 3 * * *", Some(zone)),
                Err(ScheduleError::Zone(zone.into())),
                "{zone:?}"
            );
        }
        let e = Spec::cron("0 3 * * *", Some("Mars/Olympus"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("e.g. \"UTC\", \"Europe/Berlin\""), "{e}");
    }

    #[test]
    fn a_cron_spec_keeps_its_text_and_zone() {
        let s = Spec::cron("0 3 * * *", None).unwrap();
        assert_eq!(s.zone(), Some("UTC"));
        assert_eq!(s.describe(), "cron \"0 3 * * *\"");
        assert_eq!(s, Spec::cron("0 3 * * *", Some("UTC")).unwrap());
        assert_ne!(s, cron("0 3 * * *", "Europe/Berlin"));
        assert_ne!(s, cron("0 4 * * *", "UTC"));
        let Spec::Cron(c) = cron(" @daily ", "Europe/Berlin") else {
            panic!("a cron spec");
        };
        assert_eq!((c.expr(), c.zone()), (" @daily ", "Europe/Berlin"));
        assert_eq!(
            format!("{c:?}"),
            "CronSpec { expr: \" @daily \", zone: \"Europe/Berlin\" }"
        );
    }

    /// Workers look every `step` from `from` to `to` (a manual clock), firing what `plan` says and
    /// recording `last` as the queue would. Returns every tick fired.
    fn run_plans(
        spec: &Spec,
        policy: &Policy,
        from: &str,
        to: &str,
        step: Duration,
    ) -> (Vec<Timestamp>, u64) {
        let (mut last, end) = (z(from), z(to));
        let mut now = last;
        let (mut fired, mut missed) = (Vec::new(), 0);
        while now < end {
            now = now + step;
            let p = plan(spec, policy, last, now);
            assert!(p.next.is_some_and(|n| n > now), "{p:?} at {now:?}");
            fired.extend(p.fire);
            missed += p.missed;
            last = p.last;
        }
        (fired, missed)
    }

    #[test]
    fn plan_over_a_dst_night_fires_each_tick_once() {
        let policy = Policy {
            misfire_grace: Duration::from_secs(15 * 60),
            ..Policy::default()
        };
        let step = Duration::from_secs(7 * 60);
        // The New York fall-back night: real time fires both passes.
        let s = cron("*/30 * * * *", "America/New_York");
        let (fired, missed) = run_plans(
            &s,
            &policy,
            "2026-11-01T04:10:00Z",
            "2026-11-01T08:10:00Z",
            step,
        );
        assert_eq!(
            fired,
            zs(&[
                "2026-11-01T04:30:00Z",
                "2026-11-01T05:00:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:30:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T07:30:00Z",
                "2026-11-01T08:00:00Z",
            ])
        );
        assert_eq!(missed, 0);
        // A fixed hour fires once.
        let s = cron("30 1 * * *", "America/New_York");
        let (fired, missed) = run_plans(
            &s,
            &policy,
            "2026-11-01T04:10:00Z",
            "2026-11-01T08:10:00Z",
            step,
        );
        assert_eq!((fired, missed), (zs(&["2026-11-01T05:30:00Z"]), 0));
        // The Berlin spring-forward night: the skipped 02:30 fires at 03:00 CEST.
        let s = cron("30 2 * * *", "Europe/Berlin");
        let (fired, missed) = run_plans(
            &s,
            &policy,
            "2026-03-28T22:00:00Z",
            "2026-03-29T03:00:00Z",
            step,
        );
        assert_eq!((fired, missed), (zs(&["2026-03-29T01:00:00Z"]), 0));
        // Every worker down over the night: the ticks are missed, and the
        // latest is caught up.
        let s = cron("*/30 * * * *", "America/New_York");
        let p = plan(
            &s,
            &Policy::default(),
            z("2026-11-01T04:10:00Z"),
            z("2026-11-01T07:50:00Z"),
        );
        assert_eq!(p.fire, zs(&["2026-11-01T07:30:00Z"]));
        assert_eq!(p.missed, 6);
        assert_eq!(p.last, z("2026-11-01T07:30:00Z"));
        assert_eq!(p.next, Some(z("2026-11-01T08:00:00Z")));
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
    fn overlap_skip_fires_only_the_latest_tick_and_none_while_the_last_job_runs() {
        let ticks = vec![at(10), at(20), at(30)];
        let ok = |b| Ok::<_, ()>(b);
        assert_eq!(
            Overlap::Allow.split(ticks.clone(), || ok(true)),
            Ok((ticks.clone(), vec![]))
        );
        assert_eq!(
            Overlap::Skip.split(ticks.clone(), || ok(false)),
            Ok((vec![at(30)], vec![at(10), at(20)]))
        );
        assert_eq!(
            Overlap::Skip.split(ticks.clone(), || ok(true)),
            Ok((vec![], ticks))
        );
        for o in [Overlap::Allow, Overlap::Skip] {
            assert_eq!(Overlap::from_name(o.as_str()), Some(o));
        }
        for c in [CatchUp::None, CatchUp::Latest, CatchUp::All] {
            assert_eq!(CatchUp::from_name(c.as_str()), Some(c));
        }
        assert_eq!(Overlap::from_name("never"), None);
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
