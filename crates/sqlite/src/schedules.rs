//! Schedules in the SQLite queue: the [`Schedules`] capability over the
//! `runyard_schedules` table (schema 6, `migrations/0006_schedules.sql`).
//!
//! # Protocol
//!
//! The rules are those of `docs/backends.md` §9; here is how this queue
//! keeps them.
//!
//! - A schedule's row holds its definition, `last_tick` (every tick up to
//!   it is settled: fired, skipped or missed) and `next_tick` (the first
//!   tick after it, or NULL): `next_tick` is only ever
//!   `spec.next_after(last_tick)`, so a worker finds the schedules it may
//!   have to fire from an index, without computing a tick.
//! - [`Schedules::fire_due`] reads the names of the schedules due on the
//!   queue's clock, then settles each one in a write transaction of its
//!   own (`BEGIN IMMEDIATE`: one writer at a time, across every process
//!   on the file). Inside it, the row is read again: a schedule that
//!   another handle settled meanwhile (or paused, changed or removed) is
//!   seen as it is now, and is left alone when it is no longer due. The
//!   ticks come from [`plan`], computed before the transaction from the
//!   row as it was read then (walking the ticks of a cron schedule far
//!   behind holds no lock), and used only if the row in the transaction
//!   has the same last tick and definition (planned again otherwise: a few
//!   ticks at most); [`Overlap::Skip`] reads the state of the last
//!   submission's first job in the transaction, with the row. The
//!   jobs of each tick that fires are inserted by the queue's own insert
//!   path (so unique keys, limits and workflow links apply as to any
//!   batch), marked with the schedule and the tick, and the row advances
//!   to the plan's last tick, before the commit. The insert and the
//!   advance commit together or not at all: a crash never leaves a tick
//!   fired and unsettled, nor settled and not fired, and a settled tick is
//!   never looked at again, whatever happens to its jobs later.
//! - [`Schedules::fire_now`] inserts one submission marked with the
//!   queue's time, and records it as the last submission; the ticks are
//!   not touched.
//! - [`Schedules::put_schedule`] stores the anchor of an `every` schedule
//!   (the queue's time when it was added, or when its spec changed) and
//!   settles the ticks up to then, so the ticks every handle computes are
//!   the same, whatever anchor the caller's spec had.

use std::convert::Infallible;
use std::time::Duration;

use runyard_core::{plan, CatchUp, JobId, Overlap, Plan, Policy, Spec, Tick, Timestamp, EVERY_MIN};
use runyard_queue::stored::{view_state, BLOCKED, RUNNING, WAITING};
use runyard_queue::{
    check_schedule, decode_jobs, encode_jobs, submission_at, Enqueued, FireReport, Fired, NewJob,
    Put, Queue, QueueError, QueueErrorKind, ScheduleDef, ScheduleInfo, Schedules,
};
use rusqlite::{params, Connection, Row};

use crate::open::sql_err;
use crate::queue::{insert_jobs, write_checked_on, SqliteQueue};
use crate::sql::SQL;

type Tx<'a> = rusqlite::Transaction<'a>;

/// A schedule's row as `schedule_get.sql` reads it.
struct Stored {
    name: String,
    cols: Columns,
    paused: bool,
    created_at: i64,
    updated_at: i64,
    last_tick: i64,
    next_tick: Option<i64>,
    fire_tick: Option<i64>,
    fire_job: Option<i64>,
    fired: i64,
    skipped: i64,
    missed: i64,
    /// The state code, run-at and start of the last submission's first
    /// job, while it is in the queue.
    last: Option<(i64, i64, bool)>,
}

/// A schedule's definition as its columns hold it.
#[derive(Clone, PartialEq, Eq)]
struct Columns {
    kind: String,
    cron: Option<String>,
    zone: Option<String>,
    every_us: Option<i64>,
    anchor: Option<i64>,
    overlap: String,
    grace_us: i64,
    catch_up: String,
    catch_up_max: i64,
    jobs: String,
}

impl Columns {
    /// The columns of `def`, an `every` spec anchored at `anchor`.
    fn of(def: &ScheduleDef, anchor: i64) -> Columns {
        let (kind, cron, zone, every_us, anchor) = match &def.spec {
            Spec::Cron(c) => (
                "cron",
                Some(c.expr().to_owned()),
                Some(c.zone().to_owned()),
                None,
                None,
            ),
            Spec::Every { every, .. } => ("every", None, None, Some(micros(*every)), Some(anchor)),
        };
        let p = &def.policy;
        Columns {
            kind: kind.to_owned(),
            cron,
            zone,
            every_us,
            anchor,
            overlap: p.overlap.as_str().to_owned(),
            grace_us: micros(p.misfire_grace),
            catch_up: p.catch_up.as_str().to_owned(),
            catch_up_max: i64::from(p.catch_up_max),
            jobs: encode_jobs(&def.jobs),
        }
    }

    /// Whether the two specs tick alike: the same kind, expression, zone
    /// and interval (the anchor is the queue's, not the definition's).
    fn same_spec(&self, other: &Columns) -> bool {
        (&self.kind, &self.cron, &self.zone, self.every_us)
            == (&other.kind, &other.cron, &other.zone, other.every_us)
    }

    /// Whether everything but the anchor is the same.
    fn same_definition(&self, other: &Columns) -> bool {
        self.same_spec(other)
            && (
                &self.overlap,
                self.grace_us,
                &self.catch_up,
                self.catch_up_max,
                &self.jobs,
            ) == (
                &other.overlap,
                other.grace_us,
                &other.catch_up,
                other.catch_up_max,
                &other.jobs,
            )
    }

    /// The spec these columns hold.
    fn spec(&self, name: &str) -> Result<Spec, QueueError> {
        match (self.kind.as_str(), &self.cron, self.every_us, self.anchor) {
            ("cron", Some(expr), _, _) => Spec::cron(expr, self.zone.as_deref())
                .map_err(|e| corrupt(name, format!("its cron spec: {e}"))),
            ("every", _, Some(us), Some(anchor)) if us >= micros(EVERY_MIN) => Ok(Spec::Every {
                every: Duration::from_micros(us as u64),
                anchor: Timestamp::from_micros(anchor),
            }),
            (kind, ..) => Err(corrupt(
                name,
                format!("its spec (kind {kind:?}) is not a cron expression nor an interval of a second or more"),
            )),
        }
    }

    /// The policy these columns hold.
    fn policy(&self, name: &str) -> Result<Policy, QueueError> {
        let o = &self.overlap;
        let overlap = Overlap::from_name(o)
            .ok_or_else(|| corrupt(name, format!("overlap {o:?} is not allow or skip")))?;
        let c = &self.catch_up;
        let catch_up = CatchUp::from_name(c)
            .ok_or_else(|| corrupt(name, format!("catch_up {c:?} is not none, latest or all")))?;
        Ok(Policy {
            overlap,
            misfire_grace: Duration::from_micros(self.grace_us.max(0) as u64),
            catch_up,
            catch_up_max: u32::try_from(self.catch_up_max.max(0)).unwrap_or(u32::MAX),
        })
    }
}

impl Stored {
    fn read(r: &Row<'_>) -> rusqlite::Result<Stored> {
        let state: Option<i64> = r.get(21)?;
        let last = match state {
            Some(s) => Some((s, r.get(22)?, r.get(23)?)),
            None => None,
        };
        Ok(Stored {
            name: r.get(0)?,
            cols: Columns {
                kind: r.get(1)?,
                cron: r.get(2)?,
                zone: r.get(3)?,
                every_us: r.get(4)?,
                anchor: r.get(5)?,
                overlap: r.get(6)?,
                grace_us: r.get(7)?,
                catch_up: r.get(8)?,
                catch_up_max: r.get(9)?,
                jobs: r.get(10)?,
            },
            paused: r.get(11)?,
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
            last_tick: r.get(14)?,
            next_tick: r.get(15)?,
            fire_tick: r.get(16)?,
            fire_job: r.get(17)?,
            fired: r.get(18)?,
            skipped: r.get(19)?,
            missed: r.get(20)?,
            last,
        })
    }

    /// Whether the last submission's first job is in the queue and has
    /// not ended (queued, waiting for a retry or its run-at, running,
    /// blocked).
    fn last_unfinished(&self) -> bool {
        self.last
            .is_some_and(|(s, _, _)| matches!(s, WAITING | BLOCKED | RUNNING))
    }

    fn info(self, now: i64) -> Result<ScheduleInfo, QueueError> {
        let spec = self.cols.spec(&self.name)?;
        let policy = self.cols.policy(&self.name)?;
        let jobs = decode_jobs(&self.cols.jobs)
            .map_err(|e| corrupt(&self.name, format!("its submission: {e}")))?;
        let count = |n: i64| n.max(0) as u64;
        Ok(ScheduleInfo {
            paused: self.paused,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
            last_tick: Timestamp::from_micros(self.last_tick),
            next_tick: self.next_tick.map(Timestamp::from_micros),
            last_fire: self
                .fire_tick
                .zip(self.fire_job)
                .map(|(t, j)| (Timestamp::from_micros(t), JobId(j as u64))),
            last_state: self
                .last
                .map(|(s, run_at, started)| view_state(s, run_at, started, now)),
            fired: count(self.fired),
            skipped: count(self.skipped),
            missed: count(self.missed),
            def: ScheduleDef {
                name: self.name,
                spec,
                policy,
                jobs,
            },
        })
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn corrupt(name: &str, what: String) -> QueueError {
    QueueError::new(
        QueueErrorKind::Corrupt,
        format!("schedule {name:?} as stored: {what} (the state file is damaged?)"),
    )
}

/// Schedule `name` (every schedule when `None`).
fn read(conn: &Connection, name: Option<&str>) -> rusqlite::Result<Vec<Stored>> {
    let mut st = conn.prepare_cached(&SQL.schedule_get)?;
    let rows = st.query_map([name], Stored::read)?;
    rows.collect()
}

fn read_one(conn: &Connection, name: &str) -> rusqlite::Result<Option<Stored>> {
    Ok(read(conn, Some(name))?.pop())
}

/// The spec a stored `every` schedule ticks by: `spec` from `anchor`.
fn anchored(spec: &Spec, anchor: i64) -> Spec {
    match spec {
        Spec::Every { every, .. } => Spec::Every {
            every: *every,
            anchor: Timestamp::from_micros(anchor),
        },
        cron => cron.clone(),
    }
}

/// The jobs of one submission of schedule `name` for `tick`, inserted in
/// `tx` at `now` by the queue's insert path.
fn submit(
    tx: &Tx<'_>,
    name: &str,
    template: &[NewJob],
    tick: i64,
    now: i64,
) -> rusqlite::Result<Result<Fired, QueueError>> {
    let mark = Tick {
        schedule: name.to_owned(),
        tick: Timestamp::from_micros(tick),
    };
    let jobs = submission_at(template, &mark);
    Ok(insert_jobs(tx, &jobs, now)?.map(|e| Fired {
        schedule: name.to_owned(),
        tick: mark.tick,
        jobs: e.into_iter().map(Enqueued::id).collect(),
    }))
}

/// A schedule's ticks planned from its row as read before the firing
/// transaction, at `now`: walking many ticks (a cron schedule far behind)
/// holds no lock. The transaction uses the plan only if the row it reads
/// has the same last tick and definition.
struct Planned {
    last_tick: i64,
    cols: Columns,
    plan: Plan,
}

impl Planned {
    fn of(row: &Stored, now: i64) -> Result<Planned, QueueError> {
        let spec = row.cols.spec(&row.name)?;
        let policy = row.cols.policy(&row.name)?;
        Ok(Planned {
            last_tick: row.last_tick,
            cols: row.cols.clone(),
            plan: plan(
                &spec,
                &policy,
                Timestamp::from_micros(row.last_tick),
                Timestamp::from_micros(now),
            ),
        })
    }
}

/// What one schedule's firing transaction settled.
#[derive(Default)]
struct Settled {
    fired: Vec<Fired>,
    skipped: Vec<Timestamp>,
    missed: u64,
}

/// Settles the due ticks of schedule `name` at `now`, in `tx` (see the
/// protocol above): nothing when it is not due (any more), paused or gone.
fn fire_one(
    tx: &Tx<'_>,
    name: &str,
    now: i64,
    planned: Option<&Planned>,
) -> rusqlite::Result<Result<Settled, QueueError>> {
    let Some(row) = read_one(tx, name)? else {
        return Ok(Ok(Settled::default()));
    };
    if row.paused || row.next_tick.is_none_or(|t| t > now) {
        return Ok(Ok(Settled::default()));
    }
    let policy = match row.cols.policy(name) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let p = match planned {
        Some(pl) if pl.last_tick == row.last_tick && pl.cols == row.cols => pl.plan.clone(),
        // Settled or changed since it was planned: planned again (from a
        // later last tick, or for a new spec: a few ticks at most).
        _ => match Planned::of(&row, now) {
            Ok(pl) => pl.plan,
            Err(e) => return Ok(Err(e)),
        },
    };
    let Ok((fire, skipped)) = policy
        .overlap
        .split(p.fire, || Ok::<_, Infallible>(row.last_unfinished()));
    let mut out = Settled {
        fired: Vec::with_capacity(fire.len()),
        skipped,
        missed: p.missed,
    };
    if !fire.is_empty() {
        let template = match decode_jobs(&row.cols.jobs) {
            Ok(t) => t,
            Err(e) => return Ok(Err(corrupt(name, format!("its submission: {e}")))),
        };
        for t in fire {
            match submit(tx, name, &template, t.as_micros(), now)? {
                Ok(f) => out.fired.push(f),
                Err(e) => return Ok(Err(e)),
            }
        }
    }
    let last = out.fired.last();
    tx.prepare_cached(&SQL.schedule_settle)?.execute(params![
        name,
        p.last.as_micros(),
        p.next.map(Timestamp::as_micros),
        last.map(|f| f.tick.as_micros()),
        last.and_then(|f| f.jobs.first()).map(|j| j.0 as i64),
        out.fired.len() as i64,
        out.skipped.len() as i64,
        i64::try_from(out.missed).unwrap_or(i64::MAX),
    ])?;
    Ok(Ok(out))
}

impl SqliteQueue {
    /// A file of an older schema, opened to inspect it, has no schedules:
    /// changing them is refused.
    fn schedules_writable(&self) -> Result<(), QueueError> {
        if self.version < 6 {
            return Err(QueueError::new(
                QueueErrorKind::ReadOnly,
                format!(
                    "{}: a state file of schema {}, opened to inspect it, keeps no schedules",
                    self.path().display(),
                    self.version
                ),
            ));
        }
        Ok(())
    }
}

impl Schedules for SqliteQueue {
    fn put_schedule(&self, def: &ScheduleDef) -> Result<Put, QueueError> {
        self.schedules_writable()?;
        check_schedule(&self.capabilities(), def)?;
        let now = self.now_us();
        let given = Columns::of(def, now);
        write_checked_on(&mut self.lock(), |tx| {
            let (put, cols, last_tick) = match read_one(tx, &def.name)? {
                None => (Put::Added, given.clone(), now),
                Some(old) if old.cols.same_definition(&given) => return Ok(Ok(Put::Unchanged)),
                // The same ticks: they go on from where they were, on the
                // anchor they had.
                Some(old) if old.cols.same_spec(&given) => (
                    Put::Changed,
                    Columns {
                        anchor: old.cols.anchor,
                        ..given.clone()
                    },
                    old.last_tick,
                ),
                // Other ticks: from now on.
                Some(_) => (Put::Changed, given.clone(), now),
            };
            let next = anchored(&def.spec, cols.anchor.unwrap_or(now))
                .next_after(Timestamp::from_micros(last_tick))
                .map(Timestamp::as_micros);
            let sql = if put == Put::Added {
                &SQL.schedule_add
            } else {
                &SQL.schedule_change
            };
            tx.prepare_cached(sql)?.execute(params![
                def.name,
                cols.kind,
                cols.cron,
                cols.zone,
                cols.every_us,
                cols.anchor,
                cols.overlap,
                cols.grace_us,
                cols.catch_up,
                cols.catch_up_max,
                cols.jobs,
                now,
                next,
                last_tick,
            ])?;
            Ok(Ok(put))
        })
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError> {
        if self.version < 6 {
            return Ok(Vec::new());
        }
        let now = self.now_us();
        let rows = read(&self.lock(), None).map_err(sql_err)?;
        rows.into_iter().map(|r| r.info(now)).collect()
    }

    fn schedule(&self, name: &str) -> Result<Option<ScheduleInfo>, QueueError> {
        if self.version < 6 {
            return Ok(None);
        }
        let now = self.now_us();
        let row = read_one(&self.lock(), name).map_err(sql_err)?;
        row.map(|r| r.info(now)).transpose()
    }

    fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, QueueError> {
        self.schedules_writable()?;
        let n = write_checked_on(&mut self.lock(), |tx| {
            Ok(Ok(tx
                .prepare_cached(&SQL.schedule_pause)?
                .execute(params![name, paused])?))
        })?;
        Ok(n == 1)
    }

    fn remove_schedule(&self, name: &str) -> Result<bool, QueueError> {
        self.schedules_writable()?;
        let n = write_checked_on(&mut self.lock(), |tx| {
            Ok(Ok(tx
                .prepare_cached(&SQL.schedule_remove)?
                .execute([name])?))
        })?;
        Ok(n == 1)
    }

    fn fire_due(&self) -> Result<FireReport, QueueError> {
        let now = self.now_us();
        let mut report = FireReport {
            now: Timestamp::from_micros(now),
            ..FireReport::default()
        };
        if self.version < 6 {
            return Ok(report);
        }
        let due: Vec<String> = {
            let conn = self.lock();
            let mut st = conn.prepare_cached(&SQL.schedules_due).map_err(sql_err)?;
            let rows = st.query_map([now], |r| r.get(0)).map_err(sql_err)?;
            rows.collect::<Result<_, _>>().map_err(sql_err)?
        };
        // A schedule whose row cannot be read (a damaged file) does not
        // keep the others from firing: its error is returned after them.
        let mut failed = None;
        for name in due {
            // Read, then planned with the connection free.
            let row = read_one(&self.lock(), &name).map_err(sql_err)?;
            let planned = row.and_then(|row| Planned::of(&row, now).ok());
            let fired = write_checked_on(&mut self.lock(), |tx| {
                fire_one(tx, &name, now, planned.as_ref())
            });
            let s = match fired {
                Ok(s) => s,
                Err(e) if e.kind() == QueueErrorKind::Corrupt => {
                    failed = failed.or(Some(e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !s.fired.is_empty() {
                self.wake();
            }
            report.fired.extend(s.fired);
            report
                .skipped
                .extend(s.skipped.into_iter().map(|t| (name.clone(), t)));
            if s.missed > 0 {
                report.missed.push((name, s.missed));
            }
        }
        let next: Option<i64> = self
            .lock()
            .query_row(&SQL.schedules_next, [], |r| r.get(0))
            .map_err(sql_err)?;
        report.next = next.map(Timestamp::from_micros);
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn fire_now(&self, name: &str) -> Result<Option<Fired>, QueueError> {
        self.schedules_writable()?;
        let now = self.now_us();
        let fired = write_checked_on(&mut self.lock(), |tx| {
            let Some(row) = read_one(tx, name)? else {
                return Ok(Ok(None));
            };
            let template = match decode_jobs(&row.cols.jobs) {
                Ok(t) => t,
                Err(e) => return Ok(Err(corrupt(name, format!("its submission: {e}")))),
            };
            let f = match submit(tx, name, &template, now, now)? {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            tx.prepare_cached(&SQL.schedule_fired_now)?
                .execute(params![name, now, f.jobs.first().map(|j| j.0 as i64)])?;
            Ok(Ok(Some(f)))
        })?;
        if fired.is_some() {
            self.wake();
        }
        Ok(fired)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use runyard_queue::{Clock, ManualClock};

    use super::*;
    use crate::OpenMode;

    const START: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

    fn every(name: &str, s: u64) -> ScheduleDef {
        ScheduleDef {
            name: name.into(),
            spec: Spec::every(Duration::from_secs(s), START).unwrap(),
            policy: Policy::default(),
            jobs: vec![runyard_queue::conformance::job("t", 1, 0)],
        }
    }

    /// A plan made before another handle settled the ticks, or changed
    /// the schedule, is not used: the firing transaction plans again.
    #[test]
    fn a_stale_plan_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let clock = Arc::new(ManualClock::new(START));
        let a = SqliteQueue::open_with_clock(&path, OpenMode::CreateOrOpen, clock.clone()).unwrap();
        let b = SqliteQueue::open_with_clock(&path, OpenMode::Existing, clock.clone()).unwrap();
        a.put_schedule(&every("s", 10)).unwrap();
        clock.advance(Duration::from_secs(10));
        let now = clock.now().as_micros();
        let stale = || {
            let row = read_one(&a.lock(), "s").unwrap().unwrap();
            Planned::of(&row, now).unwrap()
        };
        let fire_with = |planned: &Planned| {
            write_checked_on(&mut a.lock(), |tx| fire_one(tx, "s", now, Some(planned))).unwrap()
        };

        // Settled by the other handle meanwhile: nothing fires twice.
        let planned = stale();
        assert_eq!(planned.plan.fire.len(), 1);
        assert_eq!(b.fire_due().unwrap().fired.len(), 1);
        assert!(fire_with(&planned).fired.is_empty());

        // Changed meanwhile (another interval, from now): the old ticks
        // are not fired.
        clock.advance(Duration::from_secs(10));
        let now = clock.now().as_micros();
        let row = read_one(&a.lock(), "s").unwrap().unwrap();
        let planned = Planned::of(&row, now).unwrap();
        assert_eq!(planned.plan.fire.len(), 1, "tick 20 was due");
        b.put_schedule(&every("s", 7)).unwrap();
        let s =
            write_checked_on(&mut a.lock(), |tx| fire_one(tx, "s", now, Some(&planned))).unwrap();
        assert!(s.fired.is_empty(), "ticks of the old spec are dropped");
        assert_eq!(a.counts().unwrap().total(), 1);
    }
}
