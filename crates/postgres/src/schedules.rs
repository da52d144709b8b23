//! Schedules on PostgreSQL (`docs/backends.md` §9): the [`Schedules`]
//! implementation over the `schedules` table (migration 0006).
//!
//! Ticks are counted on the database's clock (`clock_timestamp()`, as
//! rate limits are), so every worker agrees on which ticks are due however
//! the machines' clocks differ; [`PgOptions::schedules_on_queue_clock`]
//! puts them on the queue's clock instead, for tests.
//!
//! # Firing
//!
//! [`Schedules::fire_due`] reads the due schedules by the `schedules_due`
//! index, then settles each in a transaction of its own that locks its row
//! with `FOR UPDATE SKIP LOCKED`: a worker that finds the row locked goes
//! on to the next schedule, since the holder is firing it. The ticks are
//! planned ([`runyard_core::plan`]) from the row as read just before (a
//! schedule far behind may have many ticks to walk, and the transaction
//! must not sit idle meanwhile); under the lock the row must still be as
//! planned from, or it is read and planned again. Then the submissions of
//! the ticks that fire are inserted by the queue's own insert (unique
//! keys, limits and workflow links apply; the insert trigger notifies the
//! workers at commit) and the row's last tick is moved on, all in that
//! transaction: a tick is settled exactly once, and deleting or pruning
//! its jobs never makes it fire again.
//!
//! A worker stopped (SIGSTOP) or cut off inside a firing transaction must
//! not hold its schedule for long: the transaction sets
//! `idle_in_transaction_session_timeout` (the server then ends the session,
//! rolling it back and freeing the row), `lock_timeout` (an insert waiting
//! on another stopped worker's lock gives up) and `statement_timeout`, each
//! a few seconds ([`FIRING_IDLE`]), so another worker fires the ticks late,
//! well within the default misfire grace of a minute.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::{GenericClient, Row, Transaction};
use runyard_core::{plan, CatchUp, JobId, Overlap, Policy, Spec, Tick, Timestamp};
use runyard_queue::{
    check_schedule, decode_jobs, encode_jobs, stored, submission_at, Enqueued, FireReport, Fired,
    NewJob, Put, Queue, QueueError, QueueErrorKind, ScheduleDef, ScheduleInfo, Schedules,
};

use crate::queue::PgQueue;

/// How long a firing transaction may sit idle, or wait for a lock,
/// before it is given up: a worker stopped inside one frees its schedule
/// after this long.
pub(crate) const FIRING_IDLE: Duration = Duration::from_secs(5);

/// How long one statement of a firing transaction may run.
const FIRING_STATEMENT: Duration = Duration::from_secs(30);

/// The microseconds since the epoch on the database's clock.
const DB_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// The schema version that has schedules.
const SINCE: i32 = 6;

/// What every transaction that fires a schedule sets first (see
/// [`FIRING_IDLE`]).
pub(crate) fn firing_settings() -> String {
    let (idle, statement) = (FIRING_IDLE.as_millis(), FIRING_STATEMENT.as_millis());
    format!(
        "SET LOCAL idle_in_transaction_session_timeout = {idle}; \
         SET LOCAL lock_timeout = {idle}; SET LOCAL statement_timeout = {statement}"
    )
}

/// Begins a transaction as [`Schedules::fire_due`] does for each
/// schedule: its timeouts set.
fn begin_firing(c: &mut postgres::Client) -> Result<Transaction<'_>, postgres::Error> {
    let mut tx = c.transaction()?;
    tx.batch_execute(&firing_settings())?;
    Ok(tx)
}

/// A schedule's row (the columns of `schedules.sql`, in order).
struct Stored {
    name: String,
    spec: Spec,
    policy: Policy,
    jobs: String,
    paused: bool,
    created_at: i64,
    updated_at: i64,
    last_tick: i64,
    next_tick: Option<i64>,
    fire: Option<(i64, i64)>,
    fired: i64,
    skipped: i64,
    missed: i64,
    /// The spec's parts as stored: kind, cron expression, zone, interval.
    parts: SpecParts,
}

/// The parts of a spec that make it the same spec (not the anchor).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecParts {
    kind: &'static str,
    cron: Option<String>,
    zone: Option<String>,
    every_us: Option<i64>,
}

impl SpecParts {
    fn of(spec: &Spec) -> SpecParts {
        match spec {
            Spec::Cron(c) => SpecParts {
                kind: "cron",
                cron: Some(c.expr().to_string()),
                zone: Some(c.zone().to_string()),
                every_us: None,
            },
            Spec::Every { every, .. } => SpecParts {
                kind: "every",
                cron: None,
                zone: None,
                every_us: Some(i64::try_from(every.as_micros()).unwrap_or(i64::MAX)),
            },
        }
    }
}

fn corrupt(name: &str, what: String) -> QueueError {
    QueueError::new(
        QueueErrorKind::Corrupt,
        format!("schedule `{name}` as stored: {what}"),
    )
}

impl Stored {
    fn from_row(r: &Row) -> Result<Stored, QueueError> {
        let name: String = r.get(0);
        let kind: &str = r.get(1);
        let cron: Option<String> = r.get(2);
        let zone: Option<String> = r.get(3);
        let every_us: Option<i64> = r.get(4);
        let anchor: Option<i64> = r.get(5);
        let (spec, kind) = match (kind, &cron, every_us, anchor) {
            ("cron", Some(expr), _, _) => (
                Spec::cron(expr, zone.as_deref()).map_err(|e| corrupt(&name, e.to_string()))?,
                "cron",
            ),
            ("every", _, Some(us), Some(anchor)) if us > 0 => (
                Spec::Every {
                    every: Duration::from_micros(us as u64),
                    anchor: Timestamp::from_micros(anchor),
                },
                "every",
            ),
            (k, ..) => {
                return Err(corrupt(
                    &name,
                    format!("a spec of kind `{k}` without its parts"),
                ))
            }
        };
        let o = r.get::<_, &str>(6);
        let overlap =
            Overlap::from_name(o).ok_or_else(|| corrupt(&name, format!("overlap `{o}`")))?;
        let c = r.get::<_, &str>(8);
        let catch_up =
            CatchUp::from_name(c).ok_or_else(|| corrupt(&name, format!("catch_up `{c}`")))?;
        let policy = Policy {
            overlap,
            misfire_grace: Duration::from_micros(r.get::<_, i64>(7).max(0) as u64),
            catch_up,
            catch_up_max: r.get::<_, i32>(9).max(0) as u32,
        };
        let fire_tick: Option<i64> = r.get(16);
        let fire_job: Option<i64> = r.get(17);
        Ok(Stored {
            spec,
            policy,
            jobs: r.get(10),
            paused: r.get(11),
            created_at: r.get(12),
            updated_at: r.get(13),
            last_tick: r.get(14),
            next_tick: r.get(15),
            fire: fire_tick.zip(fire_job),
            fired: r.get(18),
            skipped: r.get(19),
            missed: r.get(20),
            parts: SpecParts {
                kind,
                cron,
                zone,
                every_us,
            },
            name,
        })
    }

    /// The submission, each job marked with `tick`.
    fn jobs_at(&self, jobs: &[NewJob], tick: i64) -> Vec<NewJob> {
        let mark = Tick {
            schedule: self.name.clone(),
            tick: Timestamp::from_micros(tick),
        };
        submission_at(jobs, &mark)
    }
}

/// The statements of a firing transaction.
struct FireSql {
    read: String,
    lock: String,
    unfinished: String,
    settle: String,
}

/// What one firing transaction settled.
struct Settled {
    fired: Vec<Fired>,
    skipped: Vec<Timestamp>,
    missed: u64,
    limited: bool,
}

impl PgQueue {
    /// The time schedules tick at: the database's clock, unless the queue
    /// was opened to tick them on its own.
    fn schedule_now(&self, c: &mut impl GenericClient) -> Result<i64, postgres::Error> {
        if self.options().schedules_on_queue_clock {
            Ok(self.clock_now_us())
        } else {
            Ok(c.query_one(DB_NOW, &[])?.get(0))
        }
    }

    /// Inserts one submission in `tx`: its ids, or `Ok(None)` when an
    /// idempotency key was taken at the same moment.
    #[allow(clippy::type_complexity)]
    fn submit_in(
        &self,
        tx: &mut Transaction<'_>,
        jobs: &[NewJob],
    ) -> Result<Result<Option<Vec<JobId>>, QueueError>, postgres::Error> {
        if let Err(e) = runyard_queue::admit(&self.capabilities(), jobs) {
            return Ok(Err(e));
        }
        Ok(self
            .insert_in(tx, jobs)?
            .map(|o| o.map(|out| out.into_iter().map(Enqueued::id).collect())))
    }

    /// Settles the due ticks of schedule `name`, in one transaction that
    /// holds its row; `None` when another transaction holds it, or it is
    /// paused, gone or not due.
    fn fire_one(&self, name: &str) -> Result<Option<Settled>, QueueError> {
        let sql = FireSql {
            read: self.q(include_str!("../sql/schedules.sql")),
            lock: self.q(include_str!("../sql/lock_due_schedule.sql")),
            unfinished: self.q(include_str!("../sql/unfinished.sql")),
            settle: self.q(include_str!("../sql/settle_schedule.sql")),
        };
        let out = self.pool_run("firing a schedule", |c, committing| {
            match self.fire_in(c, committing, &sql, name) {
                // A lock of the insert held by a worker stopped in its own
                // transaction: the ticks stay due, for the next call.
                Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Ok(Ok(None)),
                r => r,
            }
        })??;
        if let Some(s) = &out {
            if s.limited {
                self.flow_on
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if !s.fired.is_empty() {
                self.wake_local();
            }
        }
        Ok(out)
    }

    /// [`PgQueue::fire_one`] on connection `c`.
    #[allow(clippy::type_complexity)]
    fn fire_in(
        &self,
        c: &mut postgres::Client,
        committing: &std::cell::Cell<bool>,
        sql: &FireSql,
        name: &str,
    ) -> Result<Result<Option<Settled>, QueueError>, postgres::Error> {
        'again: loop {
            // Planned before the row is locked, from the row as it stands:
            // a schedule far behind may have many ticks to walk, and the
            // transaction must not sit idle that long (see FIRING_IDLE).
            // Under the lock the row must be as planned from, or it is
            // planned again.
            let Some(row) = c.query_opt(&sql.read, &[&name])? else {
                return Ok(Ok(None));
            };
            let seen = match Stored::from_row(&row) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let now = self.schedule_now(c)?;
            if seen.paused || seen.next_tick.is_none_or(|n| n > now) {
                return Ok(Ok(None));
            }
            let p = plan(
                &seen.spec,
                &seen.policy,
                Timestamp::from_micros(seen.last_tick),
                Timestamp::from_micros(now),
            );
            let mut tx = begin_firing(c)?;
            let Some(row) = tx.query_opt(&sql.lock, &[&name])? else {
                return Ok(Ok(None));
            };
            let s = match Stored::from_row(&row) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            if (&s.spec, &s.policy, s.last_tick) != (&seen.spec, &seen.policy, seen.last_tick) {
                tx.rollback()?;
                continue 'again;
            }
            let (fire, skipped) = s.policy.overlap.split(p.fire, || match s.fire {
                Some((_, job)) => tx.query_one(&sql.unfinished, &[&job]).map(|r| r.get(0)),
                None => Ok(false),
            })?;
            let jobs = if fire.is_empty() {
                Vec::new()
            } else {
                match decode_jobs(&s.jobs) {
                    Ok(j) => j,
                    Err(e) => return Ok(Err(corrupt(name, e.to_string()))),
                }
            };
            let mut fired = Vec::with_capacity(fire.len());
            for t in &fire {
                let batch = s.jobs_at(&jobs, t.as_micros());
                match self.submit_in(&mut tx, &batch)? {
                    Err(e) => return Ok(Err(e)),
                    Ok(None) => {
                        tx.rollback()?;
                        continue 'again;
                    }
                    Ok(Some(ids)) => fired.push(Fired {
                        schedule: s.name.clone(),
                        tick: *t,
                        jobs: ids,
                    }),
                }
            }
            let last = fired
                .last()
                .and_then(|f| Some((f.tick.as_micros(), f.jobs.first()?.0 as i64)));
            tx.execute(
                &sql.settle,
                &[
                    &name,
                    &p.last.as_micros(),
                    &p.next.map(Timestamp::as_micros),
                    &last.map(|l| l.0),
                    &last.map(|l| l.1),
                    &(fired.len() as i64),
                    &(skipped.len() as i64),
                    &(p.missed.min(i64::MAX as u64) as i64),
                ],
            )?;
            committing.set(true);
            tx.commit()?;
            return Ok(Ok(Some(Settled {
                limited: !fired.is_empty() && jobs.iter().any(|j| !j.limits.is_empty()),
                fired,
                skipped,
                missed: p.missed,
            })));
        }
    }

    /// The schedules (only `name`'s when given).
    fn read_schedules(&self, name: Option<&str>) -> Result<Vec<ScheduleInfo>, QueueError> {
        if self.schema_version() < SINCE {
            // A schema no build with schedules has used: none.
            return Ok(Vec::new());
        }
        let sql = self.q(include_str!("../sql/schedules.sql"));
        let rows = self.pool_run("reading schedules", |c, _| c.query(&sql, &[&name]))?;
        let now = self.clock_now_us();
        rows.iter()
            .map(|r| {
                let s = Stored::from_row(r)?;
                let jobs = decode_jobs(&s.jobs).map_err(|e| corrupt(&s.name, e.to_string()))?;
                let state: Option<i16> = r.get(21);
                let last_state = state.map(|code| {
                    let run_at: i64 = r.get(22);
                    let started: bool = r.get(23);
                    stored::view_state(i64::from(code), run_at, started, now)
                });
                Ok(ScheduleInfo {
                    def: ScheduleDef {
                        name: s.name.clone(),
                        spec: s.spec.clone(),
                        policy: s.policy,
                        jobs,
                    },
                    paused: s.paused,
                    created_at: Timestamp::from_micros(s.created_at),
                    updated_at: Timestamp::from_micros(s.updated_at),
                    last_tick: Timestamp::from_micros(s.last_tick),
                    next_tick: s.next_tick.map(Timestamp::from_micros),
                    last_fire: s
                        .fire
                        .map(|(t, j)| (Timestamp::from_micros(t), JobId(j as u64))),
                    last_state,
                    fired: s.fired.max(0) as u64,
                    skipped: s.skipped.max(0) as u64,
                    missed: s.missed.max(0) as u64,
                })
            })
            .collect()
    }

    /// Refuses to change schedules in a schema older than schedules (a
    /// queue opened to inspect it as it is).
    fn schedules_writable(&self) -> Result<(), QueueError> {
        let v = self.schema_version();
        if v < SINCE {
            return Err(QueueError::new(
                QueueErrorKind::ReadOnly,
                format!(
                    "{} (schema `{}`): a queue of schema version {v}, opened to inspect it, \
                     keeps no schedules (`runyard migrate --queue URL` upgrades it)",
                    self.options().url(),
                    self.options().schema_name()
                ),
            ));
        }
        Ok(())
    }
}

impl Schedules for PgQueue {
    fn put_schedule(&self, def: &ScheduleDef) -> Result<Put, QueueError> {
        check_schedule(&self.capabilities(), def)?;
        self.schedules_writable()?;
        let jobs = encode_jobs(&def.jobs);
        let parts = SpecParts::of(&def.spec);
        let p = &def.policy;
        let grace = i64::try_from(p.misfire_grace.as_micros()).unwrap_or(i64::MAX);
        let max = p.catch_up_max.min(i32::MAX as u32) as i32;
        let (overlap, catch_up) = (p.overlap.as_str(), p.catch_up.as_str());
        let lock = self.q(include_str!("../sql/lock_schedule.sql"));
        let insert = self.q(include_str!("../sql/insert_schedule.sql"));
        let update = self.q(include_str!("../sql/update_schedule.sql"));
        // The spec as it ticks from `now`: an interval is anchored there.
        let spec_from = |now: i64| match &def.spec {
            Spec::Every { every, .. } => Spec::Every {
                every: *every,
                anchor: Timestamp::from_micros(now),
            },
            s => s.clone(),
        };
        let anchor_of = |now: i64| parts.every_us.map(|_| now);
        self.tx_run("storing a schedule", |tx| loop {
            let now = self.schedule_now(tx)?;
            let Some(row) = tx.query_opt(&lock, &[&def.name])? else {
                let next = spec_from(now)
                    .next_after(Timestamp::from_micros(now))
                    .map(Timestamp::as_micros);
                let added = tx.query_opt(
                    &insert,
                    &[
                        &def.name,
                        &parts.kind,
                        &parts.cron,
                        &parts.zone,
                        &parts.every_us,
                        &anchor_of(now),
                        &overlap,
                        &grace,
                        &catch_up,
                        &max,
                        &jobs,
                        &now,
                        &next,
                    ],
                )?;
                if added.is_some() {
                    return Ok(Put::Added);
                }
                // Added by another transaction meanwhile: change that one.
                continue;
            };
            // A row this build cannot read is replaced whole.
            let old = Stored::from_row(&row).ok().filter(|o| o.parts == parts);
            let (spec, last, next) = if let Some(old) = old {
                if old.policy == *p && old.jobs == jobs {
                    return Ok(Put::Unchanged);
                }
                (old.spec, old.last_tick, old.next_tick)
            } else {
                let spec = spec_from(now);
                let next = spec
                    .next_after(Timestamp::from_micros(now))
                    .map(Timestamp::as_micros);
                (spec, now, next)
            };
            let anchor = match &spec {
                Spec::Every { anchor, .. } => Some(anchor.as_micros()),
                Spec::Cron(_) => None,
            };
            tx.execute(
                &update,
                &[
                    &def.name,
                    &parts.kind,
                    &parts.cron,
                    &parts.zone,
                    &parts.every_us,
                    &anchor,
                    &overlap,
                    &grace,
                    &catch_up,
                    &max,
                    &jobs,
                    &now,
                    &last,
                    &next,
                ],
            )?;
            return Ok(Put::Changed);
        })
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError> {
        self.read_schedules(None)
    }

    fn schedule(&self, name: &str) -> Result<Option<ScheduleInfo>, QueueError> {
        Ok(self.read_schedules(Some(name))?.pop())
    }

    fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, QueueError> {
        self.schedules_writable()?;
        let sql = self.q(include_str!("../sql/pause_schedule.sql"));
        let found = self.tx_run("pausing a schedule", |tx| {
            Ok(tx.query_opt(&sql, &[&name, &paused])?.is_some())
        })?;
        Ok(found)
    }

    fn remove_schedule(&self, name: &str) -> Result<bool, QueueError> {
        self.schedules_writable()?;
        let sql = self.q(include_str!("../sql/remove_schedule.sql"));
        let n = self.tx_run("removing a schedule", |tx| tx.execute(&sql, &[&name]))?;
        Ok(n > 0)
    }

    fn fire_due(&self) -> Result<FireReport, QueueError> {
        if self.schema_version() < SINCE {
            return Ok(FireReport {
                now: Timestamp::from_micros(self.clock_now_us()),
                ..FireReport::default()
            });
        }
        let due = self.q(include_str!("../sql/due_schedules.sql"));
        let next = self.q(include_str!("../sql/next_schedule_tick.sql"));
        let (now, names) = self.pool_run("reading due schedules", |c, _| {
            let now = self.schedule_now(&mut **c)?;
            let names: Vec<String> = c.query(&due, &[&now])?.iter().map(|r| r.get(0)).collect();
            Ok((now, names))
        })?;
        let mut report = FireReport {
            now: Timestamp::from_micros(now),
            ..FireReport::default()
        };
        // One schedule that cannot be fired (a submission refused, a row
        // unreadable) does not keep the others from firing; the first
        // such error is returned once they have.
        let mut failed = None;
        for name in &names {
            match self.fire_one(name) {
                Ok(None) => {}
                Ok(Some(s)) => {
                    report.fired.extend(s.fired);
                    report
                        .skipped
                        .extend(s.skipped.into_iter().map(|t| (name.clone(), t)));
                    if s.missed > 0 {
                        report.missed.push((name.clone(), s.missed));
                    }
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let t: Option<i64> = self.pool_run("reading the next tick", |c, _| {
            Ok(c.query_one(&next, &[])?.get(0))
        })?;
        report.next = t.map(Timestamp::from_micros);
        Ok(report)
    }

    fn fire_now(&self, name: &str) -> Result<Option<Fired>, QueueError> {
        self.schedules_writable()?;
        let lock = self.q(include_str!("../sql/lock_schedule.sql"));
        let record = self.q(include_str!("../sql/fired_now.sql"));
        let out = self.pool_run("running a schedule", |c, committing| 'again: loop {
            let mut tx = begin_firing(c)?;
            let Some(row) = tx.query_opt(&lock, &[&name])? else {
                return Ok(Ok(None));
            };
            let s = match Stored::from_row(&row) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let jobs = match decode_jobs(&s.jobs) {
                Ok(j) => j,
                Err(e) => return Ok(Err(corrupt(name, e.to_string()))),
            };
            let now = self.schedule_now(&mut tx)?;
            let batch = s.jobs_at(&jobs, now);
            let ids = match self.submit_in(&mut tx, &batch)? {
                Err(e) => return Ok(Err(e)),
                Ok(None) => {
                    tx.rollback()?;
                    continue 'again;
                }
                Ok(Some(ids)) => ids,
            };
            let first = ids.first().map(|i| i.0 as i64);
            tx.execute(&record, &[&name, &now, &first])?;
            committing.set(true);
            tx.commit()?;
            let limited = jobs.iter().any(|j| !j.limits.is_empty());
            return Ok(Ok(Some((
                Fired {
                    schedule: s.name,
                    tick: Timestamp::from_micros(now),
                    jobs: ids,
                },
                limited,
            ))));
        })??;
        Ok(out.map(|(fired, limited)| {
            if limited {
                self.flow_on
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            self.wake_local();
            fired
        }))
    }
}
