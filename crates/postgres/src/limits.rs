//! Flow control on PostgreSQL (`docs/backends.md` §8): unique keys at
//! insert, the limited claim, and the [`FlowControl`] administration.
//!
//! While no job of the queue is limited or keyed, no limit is stored and
//! no task was paused, claims take the plain statement (`claim.sql`). The
//! first of those writes the `flow` row of `meta`, in its own transaction;
//! from then on the plain statement finds nothing and every claim is the
//! limited one (`claim_limited`, migration 0007), which keeps the
//! counters: a row per target in `running`, locked by the claim that takes
//! a slot (`FOR UPDATE SKIP LOCKED`: claims never wait on each other) and
//! given back in the transaction of whatever moves the job out of running.
//! Jobs that carry only a concurrency key are claimed set-based: in one
//! statement (`claim_keyed.sql`) while no limit is stored, no task is
//! paused and every job of the claim's window carries at most a
//! concurrency key, otherwise by the function in a fixed number of
//! statements; jobs with a task limit or a rate one by one (see the
//! migration). Rate windows are counted on the database's clock. New jobs
//! are written with their flow columns and fair tags in the insert
//! (`flow::insert_resolved`; a batch of at least 256 new jobs that carry
//! a unique key and nothing else of flow control, straight from the jobs
//! by `flow::insert_unique`). A batch's unique keys are resolved in two
//! statements, under advisory locks on the keys' buckets (at most 128 a
//! batch, `lock_unique.sql`), taken in one order, so that concurrent
//! submitters of a key see each other's jobs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use postgres::GenericClient;
use runyard_core::{Hold, JobId, LimitTarget, OnConflict, Rate, StoredLimit, TaskName, Timestamp};
use runyard_queue::{
    Enqueued, FlowControl, Holds, LimitChange, NewJob, Paused, QueueError, QueueErrorKind,
};
use rustc_hash::FxHashMap;

use crate::flow;
use crate::queue::PgQueue;

fn rate_parts(r: Option<Rate>) -> (Option<i32>, Option<i64>) {
    match r {
        Some(r) => (Some(r.count as i32), Some(r.per.as_micros() as i64)),
        None => (None, None),
    }
}

fn rate_of(n: Option<i32>, us: Option<i64>) -> Option<Rate> {
    match (n, us) {
        (Some(n), Some(us)) if n > 0 && us > 0 => Some(Rate {
            count: n as u32,
            per: Duration::from_micros(us as u64),
        }),
        _ => None,
    }
}

/// The microseconds since the epoch on the database's clock.
const DB_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

impl PgQueue {
    /// The time limits are counted at: the database's clock, unless the
    /// queue was opened to count them on its own.
    pub(crate) fn limits_now(&self, c: &mut impl GenericClient) -> Result<i64, postgres::Error> {
        if self.options().limits_on_queue_clock {
            Ok(self.clock_now_us())
        } else {
            Ok(c.query_one(DB_NOW, &[])?.get(0))
        }
    }

    /// Writes the `flow` row (once per queue handle): from its commit on,
    /// every claim is the limited one.
    fn turn_flow_on(&self, c: &mut impl GenericClient) -> Result<(), postgres::Error> {
        if !self.flow_on.load(Ordering::Relaxed) {
            c.execute(&self.lsql.turn_on, &[])?;
        }
        Ok(())
    }

    /// Adds a batch with unique keys or limits, in one transaction (again
    /// when an idempotency key was taken meanwhile).
    pub(crate) fn insert_flow(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.clock_now_us();
        let out = self.pool_run("enqueueing jobs", |c, committing| loop {
            let mut tx = c.transaction()?;
            match self.insert_flow_in(&mut tx, jobs, now)? {
                Err(e) => return Ok(Err(e)),
                Ok(None) => tx.rollback()?,
                Ok(Some(out)) => {
                    committing.set(true);
                    tx.commit()?;
                    return Ok(Ok(out));
                }
            }
        })??;
        if jobs.iter().any(|j| !j.limits.is_empty()) {
            self.flow_on.store(true, Ordering::Relaxed);
        }
        if out
            .iter()
            .any(|e| matches!(e, Enqueued::New(_) | Enqueued::Replaced(_)))
        {
            self.wake_local();
        }
        Ok(out)
    }

    /// [`PgQueue::insert_flow`] in the caller's transaction: `Ok(None)`
    /// when an idempotency key was taken at the same moment.
    #[allow(clippy::type_complexity)]
    pub(crate) fn insert_flow_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<Result<Option<Vec<Enqueued>>, QueueError>, postgres::Error> {
        let n = jobs.len();
        if jobs.iter().any(|j| !j.limits.is_empty()) {
            self.turn_flow_on(tx)?;
        }
        let mut keys: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.unique.as_ref().map(|u| u.key.as_str()))
            .collect();
        let mut resolved: Vec<Option<Result<i64, usize>>> = vec![None; n];
        let mut replaced = vec![false; n];
        let mut batch = std::borrow::Cow::Borrowed(jobs);
        if !keys.is_empty() {
            // Each key once (the server sorts the buckets it locks); the
            // batch repeats a key only if that leaves fewer.
            let with_key = keys.len();
            let mut seen = rustc_hash::FxHashSet::default();
            seen.reserve(with_key);
            keys.retain(|k| seen.insert(*k));
            drop(seen);
            let repeats = keys.len() < with_key;
            tx.execute(
                &self.lsql.lock_unique,
                &[&self.options().schema_name(), &keys],
            )?;
            // Idempotency keys come first: a job whose key is taken is
            // left to the insert, which names the existing job.
            let idem: Vec<&str> = jobs
                .iter()
                .filter_map(|j| j.idempotency_key.as_deref())
                .collect();
            let mut idem_taken = rustc_hash::FxHashSet::default();
            if !idem.is_empty() {
                let st = self.q(include_str!("../sql/find_keys.sql"));
                for r in tx.query(&st, &[&idem])? {
                    idem_taken.insert(r.get::<_, String>(0));
                }
            }
            // The holders of the batch's keys, and the recent successes of
            // those without one, each read in one statement.
            let mut holder: FxHashMap<String, i64> = FxHashMap::default();
            for r in tx.query(&self.lsql.unique_holders, &[&keys])? {
                holder.entry(r.get(0)).or_insert(r.get(1));
            }
            let mut want: (Vec<&str>, Vec<i64>, Vec<usize>) = Default::default();
            for (i, j) in jobs.iter().enumerate() {
                let Some(u) = &j.unique else { continue };
                let Some(d) = u.within else { continue };
                if !holder.contains_key(u.key.as_str()) {
                    want.0.push(u.key.as_str());
                    want.1.push(now.saturating_sub(d.as_micros() as i64));
                    want.2.push(i);
                }
            }
            let mut recent: FxHashMap<usize, i64> = FxHashMap::default();
            if !want.0.is_empty() {
                for r in tx.query(&self.lsql.unique_recents, &[&want.0, &want.1])? {
                    let at: i64 = r.get(0);
                    recent.insert(want.2[(at - 1) as usize], r.get(1));
                }
            }
            let mut first: FxHashMap<&str, usize> = FxHashMap::default();
            for (i, j) in jobs.iter().enumerate() {
                let Some(u) = &j.unique else { continue };
                if j.idempotency_key
                    .as_deref()
                    .is_some_and(|k| idem_taken.contains(k))
                {
                    continue;
                }
                let earlier = if repeats {
                    first.get(u.key.as_str()).copied()
                } else {
                    None
                };
                if let Some(b) = earlier {
                    resolved[i] = Some(Err(b));
                    if u.on_conflict == OnConflict::Replace {
                        let jobs = batch.to_mut();
                        jobs[b].params = j.params.clone();
                        jobs[b].run_at = j.run_at;
                        replaced[i] = true;
                    }
                    continue;
                }
                if let Some(&id) = holder.get(u.key.as_str()) {
                    resolved[i] = Some(Ok(id));
                    if u.on_conflict == OnConflict::Replace {
                        let run_at = j.run_at.map_or(now, Timestamp::as_micros);
                        tx.execute(
                            &self.lsql.unique_replace,
                            &[&id, &j.params.as_json(), &run_at, &now],
                        )?;
                        replaced[i] = true;
                    }
                    continue;
                }
                if let Some(&id) = recent.get(&i) {
                    resolved[i] = Some(Ok(id));
                    continue;
                }
                if repeats {
                    first.insert(u.key.as_str(), i);
                }
            }
        }
        // A large batch of plain jobs with unique keys goes in straight
        // from the jobs; any other by the general insert.
        let added = if flow::unique_only(&batch, &resolved) {
            Ok(flow::insert_unique(
                tx,
                self.flow_sql(),
                &batch,
                &resolved,
                now,
            )?)
        } else {
            flow::insert_resolved(tx, self.flow_sql(), &batch, &resolved, now)?
        };
        let mut out = match added {
            Err(e) => return Ok(Err(e)),
            Ok(None) => return Ok(Ok(None)),
            Ok(Some(x)) => x,
        };
        for (i, o) in out.iter_mut().enumerate() {
            if replaced[i] {
                *o = Enqueued::Replaced(o.id());
            }
        }
        Ok(Ok(Some(out)))
    }

    /// The limited claim, in one transaction: the claimed jobs' rows with
    /// the start each rate admitted.
    pub(crate) fn claim_limited(
        &self,
        worker: &str,
        until: i64,
        now: i64,
        max: usize,
        filter: &Option<Vec<&str>>,
    ) -> Result<Vec<(postgres::Row, Option<i64>)>, QueueError> {
        let window = (16 * max).max(1024).min(i32::MAX as usize) as i32;
        // The first walk is short: while few keys are full, it finds its
        // jobs among the first, and the window's cost grows with its
        // length. Only when it finds too few does the full window follow,
        // in the same transaction (the jobs taken are no longer waiting,
        // so the two walk the fair order as one would).
        let short = (2 * max).max(64).min(window as usize) as i32;
        let max = max.min(i32::MAX as usize) as i32;
        let db_clock = !self.options().limits_on_queue_clock;
        self.tx_run("claiming jobs", |tx| {
            // The one-statement claim first (claim_keyed.sql); where it
            // does not apply, the function.
            let fast = |tx: &mut postgres::Transaction<'_>, max: i32, window: i32| {
                let rows = tx.query(
                    &self.lsql.claim_keyed,
                    &[&worker, &until, &now, &max, filter, &window, &db_clock],
                )?;
                let applied = rows.first().is_some_and(|r| r.get::<_, bool>(17));
                let got: Vec<(postgres::Row, Option<i64>)> = rows
                    .into_iter()
                    .filter(|r| r.get::<_, Option<i64>>(0).is_some())
                    .map(|r| (r, None))
                    .collect();
                Ok::<_, postgres::Error>(applied.then_some(got))
            };
            if let Some(mut got) = fast(tx, max, short)? {
                if (got.len() as i32) < max && short < window {
                    let more = max - got.len() as i32;
                    match fast(tx, more, window)? {
                        Some(rows) => got.extend(rows),
                        None => got.extend(self.claim_by_function(
                            tx, worker, until, now, more, filter, window, db_clock,
                        )?),
                    }
                }
                return Ok(got);
            }
            let mut got =
                self.claim_by_function(tx, worker, until, now, max, filter, short, db_clock)?;
            if (got.len() as i32) < max && short < window {
                let more = max - got.len() as i32;
                got.extend(
                    self.claim_by_function(tx, worker, until, now, more, filter, window, db_clock)?,
                );
            }
            Ok(got)
        })
    }

    /// The limited claim by `claim_limited` (migration 0007) over a window
    /// of `window` jobs, in the caller's transaction: the claimed jobs'
    /// rows with the start each rate admitted.
    #[allow(clippy::too_many_arguments)]
    fn claim_by_function(
        &self,
        tx: &mut postgres::Transaction<'_>,
        worker: &str,
        until: i64,
        now: i64,
        max: i32,
        filter: &Option<Vec<&str>>,
        window: i32,
        db_clock: bool,
    ) -> Result<Vec<(postgres::Row, Option<i64>)>, postgres::Error> {
        let got = tx.query(
            &self.lsql.claim_limited,
            &[&worker, &until, &now, &max, filter, &window, &db_clock],
        )?;
        if got.is_empty() {
            return Ok(Vec::new());
        }
        let admitted: FxHashMap<i64, Option<i64>> =
            got.iter().map(|r| (r.get(0), r.get(1))).collect();
        let ids: Vec<i64> = got.iter().map(|r| r.get(0)).collect();
        let rows = tx.query(&self.lsql.claimed_rows, &[&ids])?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let a = admitted.get(&r.get::<_, i64>(0)).copied().flatten();
                (r, a)
            })
            .collect())
    }

    /// Whether some claim must be the limited one (read from the queue).
    pub(crate) fn read_flow_on(&self) -> Result<bool, QueueError> {
        if self.flow_on.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let on: bool = self.pool_run("reading the queue's flow state", |c, _| {
            Ok(c.query_one(&self.lsql.flow_on, &[])?.get(0))
        })?;
        if on {
            self.flow_on.store(true, Ordering::Relaxed);
        }
        Ok(on)
    }

    /// The stored limits, by kind, name and value.
    fn stored(&self, c: &mut impl GenericClient) -> Result<Vec<StoredLimit>, postgres::Error> {
        let rows = c.query(
            &self.q(
                "SELECT kind, name, value, concurrency, rate_n, rate_us FROM runyard.limits \
                 ORDER BY kind, name, value",
            ),
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let kind: i16 = r.get(0);
                let name: String = r.get(1);
                let value: String = r.get(2);
                let conc: Option<i32> = r.get(3);
                StoredLimit {
                    target: if kind == 0 {
                        LimitTarget::Task(name)
                    } else {
                        LimitTarget::Key {
                            name,
                            value: (!value.is_empty()).then_some(value),
                        }
                    },
                    concurrency: conc.map(|c| c.max(0) as u32),
                    rate: rate_of(r.get(4), r.get(5)),
                }
            })
            .collect())
    }

    /// What holds each due job (or job `one`).
    fn hold_of(&self, one: Option<JobId>) -> Result<Vec<(i64, Option<Hold>)>, QueueError> {
        let now = self.clock_now_us();
        let one = one.map(|i| i.0 as i64);
        self.tx_run("reading what holds jobs", |tx| {
            let limits = self.stored(tx)?;
            let paused: Vec<String> = tx
                .query(&self.q("SELECT task FROM runyard.paused"), &[])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut running: FxHashMap<String, i32> = tx
                .query(&self.q("SELECT target, n FROM runyard.running"), &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            // A task's running jobs are counted from the jobs table.
            for r in tx.query(&self.q(include_str!("../sql/running_by_task.sql")), &[])? {
                running.insert(r.get(0), r.get(1));
            }
            let lnow = self.limits_now(tx)?;
            let mut starts: FxHashMap<String, Vec<i64>> = FxHashMap::default();
            for r in tx.query(
                &self.q("SELECT target, at FROM runyard.rate_starts WHERE at > $1"),
                &[&(lnow - 3_600_000_000)],
            )? {
                starts.entry(r.get(0)).or_default().push(r.get(1));
            }
            let rows = tx.query(&self.lsql.holds, &[&now, &one])?;
            let find = |kind: i16, name: &str, value: &str| {
                limits.iter().find(|l| match &l.target {
                    LimitTarget::Task(t) => kind == 0 && t == name,
                    LimitTarget::Key { name: n, value: v } => {
                        kind == 1 && n == name && v.as_deref().unwrap_or("") == value
                    }
                })
            };
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: i64 = r.get(0);
                let task: String = r.get(1);
                let state: i16 = r.get(2);
                let run_at: i64 = r.get(3);
                if state == runyard_queue::stored::BLOCKED as i16 {
                    out.push((id, Some(Hold::Dependencies)));
                    continue;
                }
                if state != runyard_queue::stored::WAITING as i16 || run_at > now {
                    out.push((id, None));
                    continue;
                }
                let hold = (|| {
                    if paused.iter().any(|p| p.is_empty() || *p == task) {
                        return Some(Hold::Paused { task: task.clone() });
                    }
                    let full = |target: &str, lim: Option<u32>| {
                        lim.filter(|l| running.get(target).copied().unwrap_or(0) >= *l as i32)
                    };
                    let tc = find(0, &task, "")
                        .and_then(|l| l.concurrency)
                        .or(r.get::<_, Option<i32>>(4).map(|c| c as u32));
                    if let Some(l) = full(&format!("t:{task}"), tc) {
                        return Some(Hold::Concurrency {
                            target: LimitTarget::Task(task.clone()),
                            limit: l,
                        });
                    }
                    let key_target = |name: &str, value: &str| LimitTarget::Key {
                        name: name.to_string(),
                        value: (!value.is_empty()).then(|| value.to_string()),
                    };
                    if let Some(name) = r.get::<_, Option<String>>(7) {
                        let value: String = r.get::<_, Option<String>>(8).unwrap_or_default();
                        let kc = find(1, &name, &value)
                            .and_then(|l| l.concurrency)
                            .or(find(1, &name, "").and_then(|l| l.concurrency))
                            .or(r.get::<_, Option<i32>>(9).map(|c| c as u32));
                        if let Some(l) = full(&format!("k:{name}:{value}"), kc) {
                            return Some(Hold::Concurrency {
                                target: key_target(&name, &value),
                                limit: l,
                            });
                        }
                    }
                    let used = |target: &str, rate: Option<Rate>| {
                        rate.filter(|rt| {
                            let from = lnow - rt.per.as_micros() as i64;
                            starts
                                .get(target)
                                .map_or(0, |s| s.iter().filter(|a| **a > from).count())
                                >= rt.count as usize
                        })
                    };
                    let tr = find(0, &task, "")
                        .and_then(|l| l.rate)
                        .or(rate_of(r.get(5), r.get(6)));
                    if let Some(rate) = used(&format!("r:t:{task}"), tr) {
                        return Some(Hold::Rate {
                            target: LimitTarget::Task(task.clone()),
                            rate,
                        });
                    }
                    if let Some(name) = r.get::<_, Option<String>>(10) {
                        let value: String = r.get::<_, Option<String>>(11).unwrap_or_default();
                        let kr = find(1, &name, &value)
                            .and_then(|l| l.rate)
                            .or(find(1, &name, "").and_then(|l| l.rate))
                            .or(rate_of(r.get(12), r.get(13)));
                        if let Some(rate) = used(&format!("r:k:{name}:{value}"), kr) {
                            return Some(Hold::Rate {
                                target: key_target(&name, &value),
                                rate,
                            });
                        }
                    }
                    None
                })();
                out.push((id, hold));
            }
            Ok(out)
        })
    }
}

fn bad(msg: String) -> QueueError {
    QueueError::new(QueueErrorKind::InvalidInput, msg)
}

/// A stored limit's row key: kind, name, value ('' for every value).
fn target_key(t: &LimitTarget) -> Result<(i16, &str, &str), QueueError> {
    match t {
        LimitTarget::Task(name) if name.is_empty() => {
            Err(bad("a limit's task must not be empty".into()))
        }
        LimitTarget::Task(name) => Ok((0, name, "")),
        LimitTarget::Key { name, value } => {
            runyard_core::check_key_name(name).map_err(|e| bad(e.0))?;
            match value.as_deref() {
                Some("") => Err(bad(format!(
                    "key `{name}` with an empty value: give a value, or none for every value \
                     of the key"
                ))),
                v => Ok((1, name, v.unwrap_or(""))),
            }
        }
    }
}

impl FlowControl for PgQueue {
    fn set_limit(&self, change: &LimitChange) -> Result<Option<StoredLimit>, QueueError> {
        let (kind, name, value) = target_key(&change.target)?;
        if change.concurrency == Some(0) {
            return Err(bad(format!(
                "a concurrency limit of 0 for {} (a limit is at least 1; to stop a task, \
                 pause it)",
                change.target
            )));
        }
        let conc = change.concurrency.map(|c| c as i32);
        let (rn, rus) = rate_parts(change.rate);
        let del = self.q("DELETE FROM runyard.limits WHERE kind = $1 AND name = $2 AND value = $3");
        let up = self.q(
            "INSERT INTO runyard.limits AS l (kind, name, value, concurrency, rate_n, rate_us) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name, value) DO UPDATE SET \
             concurrency = COALESCE(excluded.concurrency, l.concurrency), \
             rate_n = COALESCE(excluded.rate_n, l.rate_n), \
             rate_us = COALESCE(excluded.rate_us, l.rate_us)",
        );
        let out = self.tx_run("storing a limit", |tx| {
            self.turn_flow_on(tx)?;
            if change.clear {
                tx.execute(&del, &[&kind, &name, &value])?;
            }
            if conc.is_some() || rn.is_some() {
                tx.execute(&up, &[&kind, &name, &value, &conc, &rn, &rus])?;
            }
            let all = self.stored(tx)?;
            Ok(all.into_iter().find(|l| l.target == change.target))
        })?;
        self.flow_on.store(true, Ordering::Relaxed);
        Ok(out)
    }

    fn limits(&self) -> Result<Vec<StoredLimit>, QueueError> {
        let mut v = self.tx_run("reading the stored limits", |tx| self.stored(tx))?;
        v.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(v)
    }

    fn pause(&self, task: Option<&TaskName>) -> Result<Vec<JobId>, QueueError> {
        let t = task.map_or("", |t| t.as_str()).to_string();
        let ins = self.q("INSERT INTO runyard.paused (task) VALUES ($1) ON CONFLICT DO NOTHING");
        self.tx_run("pausing a task", |tx| {
            self.turn_flow_on(tx)?;
            tx.execute(&ins, &[&t])?;
            Ok(())
        })?;
        self.flow_on.store(true, Ordering::Relaxed);
        self.unstarted_of(task.map(|t| t.as_str()))
    }

    fn resume(&self, task: Option<&TaskName>) -> Result<bool, QueueError> {
        let n = match task {
            None => self.tx_run("resuming tasks", |tx| {
                tx.execute(&self.q("DELETE FROM runyard.paused"), &[])
            })?,
            Some(t) => {
                let t = t.as_str();
                self.tx_run("resuming a task", |tx| {
                    tx.execute(&self.q("DELETE FROM runyard.paused WHERE task = $1"), &[&t])
                })?
            }
        };
        if n > 0 {
            self.notify_all();
        }
        Ok(n > 0)
    }

    fn paused(&self) -> Result<Paused, QueueError> {
        let rows: Vec<String> = self.tx_run("reading paused tasks", |tx| {
            Ok(tx
                .query(
                    &self.q("SELECT task FROM runyard.paused ORDER BY task"),
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        Ok(Paused {
            all: rows.iter().any(String::is_empty),
            tasks: rows.into_iter().filter(|t| !t.is_empty()).collect(),
        })
    }

    fn unstarted(&self) -> Result<Vec<JobId>, QueueError> {
        self.unstarted_of(None)
    }

    fn holds(&self) -> Result<Holds, QueueError> {
        let mut by: FxHashMap<Hold, u64> = FxHashMap::default();
        for (_, h) in self.hold_of(None)? {
            if let Some(h) = h {
                *by.entry(h).or_default() += 1;
            }
        }
        let mut held: Vec<(Hold, u64)> = by.into_iter().collect();
        held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(Holds { held })
    }

    fn hold(&self, id: JobId) -> Result<Option<Hold>, QueueError> {
        Ok(self
            .hold_of(Some(id))?
            .into_iter()
            .find(|(i, _)| *i == id.0 as i64)
            .and_then(|(_, h)| h))
    }
}

impl PgQueue {
    /// The claimed, unstarted jobs of paused tasks (of `task` alone, or
    /// of every paused task when `None`).
    fn unstarted_of(&self, task: Option<&str>) -> Result<Vec<JobId>, QueueError> {
        let sql = self.q(
            "SELECT id FROM runyard.jobs j WHERE state = {RUNNING} AND NOT started \
             AND ($1::text IS NULL OR task = $1) \
             AND EXISTS (SELECT 1 FROM runyard.paused p WHERE p.task IN (j.task, '')) ORDER BY id",
        );
        let rows = self.tx_run("reading unstarted claims", |tx| tx.query(&sql, &[&task]))?;
        Ok(rows
            .iter()
            .map(|r| JobId(r.get::<_, i64>(0) as u64))
            .collect())
    }
}
