//! The SQLite queue: one concept, the `Queue`, `Admin` and `Inspect`
//! implementations over one file (its statements are in `sql/`, loaded by
//! `sql.rs`; opening and migrating the file is `open.rs`; what dependencies
//! between jobs add, `flow.rs`; schedules, which insert their jobs through
//! [`insert_jobs`], `schedules.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use runyard_core::{
    AttemptRecord, Backoff, Cause, Hold, JobId, JobKeys, JobParams, JobSettings, JobState, JobView,
    Mode, OutcomeKind, Output, RunIf, StoredLimit, TaskName, Tick, Timestamp,
};
use runyard_queue::{finished_from_rows, FinishedCount, FlowControl, Holds, LimitChange, Paused};
use runyard_queue::{
    stored_event, Admin, AdminEvent, CancelResult, Cancelled, Capabilities, Cascade, Claimed,
    Clock, Completion, Counts, Deleted, Durability, Enqueued, Fenced, HeartbeatReply, Inspect,
    LazySubmit, Lease, ListFilter, NewEvent, NewJob, Queue, QueueError, Recorded, Rescue, Rescued,
    Schedules, Submit, SystemClock, TaskNames, Verdict, Waker, WakerSlot, Writes,
};
use runyard_queue::{LiveWorker, NameTaken, WorkerInfo};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::counts::Tally;
use crate::flow;
use crate::ids::{id_floor, raise_id_floor};
use crate::limits;
use crate::open::{open, sql_err, OpenMode};
use crate::sql::{LIST_ONE_CODE, SQL};

use runyard_queue::stored::{
    attach_attempts, counted_state, counts_by_task, name_taken_over, state_of, view_state,
    Registered, Registrations, StoredAttempt, BLOCKED, CANCELLED, DEAD, RUNNING, SUCCEEDED,
    WAITING,
};

/// A [`Queue`] in an SQLite file.
pub struct SqliteQueue {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    waker: WakerSlot,
    names: TaskNames,
    /// The file's schema version (older than this build's only when the
    /// file was opened to inspect it).
    pub(crate) version: u32,
    registered: Registrations,
    /// Where async callers enqueue (see [`Queue::insert_async`]).
    submit: LazySubmit,
    /// Set when this handle's last claim found every due job held: the
    /// earliest time one could be admitted with nothing else changing
    /// (`i64::MAX`: only a change would do). Cleared by every change made
    /// through this handle; [`Queue::next_due`] answers it instead of now,
    /// so that a worker does not spin on held jobs (a change made by
    /// another process is seen at the worker's next poll).
    stalled: Mutex<Option<i64>>,
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

type Tx<'a> = rusqlite::Transaction<'a>;

impl SqliteQueue {
    /// Opens (or, with [`OpenMode::CreateOrOpen`], creates) the state file at `path`.
    pub fn open(path: &Path, mode: OpenMode) -> Result<SqliteQueue, QueueError> {
        SqliteQueue::open_with_clock(path, mode, Arc::new(SystemClock))
    }

    /// The same, on the given clock.
    pub fn open_with_clock(
        path: &Path,
        mode: OpenMode,
        clock: Arc<dyn Clock>,
    ) -> Result<SqliteQueue, QueueError> {
        let (conn, version) = open(path, mode)?;
        Ok(SqliteQueue {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            clock,
            waker: WakerSlot::new(),
            names: TaskNames::new(),
            version,
            registered: Registrations::new(),
            submit: LazySubmit::new(),
            stalled: Mutex::new(None),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one write transaction (see [`write_on`]).
    fn write<T>(&self, f: impl Fn(&Tx<'_>) -> rusqlite::Result<T>) -> Result<T, QueueError> {
        write_on(&mut self.lock(), f)
    }

    pub(crate) fn now_us(&self) -> i64 {
        self.clock.now().as_micros()
    }

    pub(crate) fn wake(&self) {
        self.unstall();
        self.waker.wake();
    }

    fn unstall(&self) {
        *self.stalled.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn stall(&self, until: Option<i64>) {
        *self.stalled.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    /// The workers holding leases now (for a resume to rescue those known dead).
    pub fn lease_holders(&self) -> Result<Vec<String>, QueueError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&SQL.lease_holders).map_err(sql_err)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    /// A value stored with the run (e.g. how it was started).
    pub fn meta(&self, key: &str) -> Result<Option<String>, QueueError> {
        self.lock()
            .query_row(&SQL.meta_get, [key], |r| r.get(0))
            .optional()
            .map_err(sql_err)
    }

    /// Stores a value with the run.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), QueueError> {
        self.write(|tx| tx.execute(&SQL.meta_set, [key, value]))
            .map(|_| ())
    }

    /// Deletes the jobs that finished (succeeded or cancelled, and with
    /// `dead` dead ones too) more than `older_than` ago, with their
    /// attempts and links; returns how many went. A job that an
    /// unfinished job is after stays (its output is still to be read).
    /// One transaction per range of ids, so a long prune lets a run or a
    /// worker writing the file go on between them. The file keeps its
    /// size: SQLite reuses the freed pages for new jobs.
    pub fn prune(&self, older_than: Duration, dead: bool) -> Result<u64, QueueError> {
        const RANGE: i64 = 10_000;
        let before = self
            .now_us()
            .saturating_sub(i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX));
        let (first, last): (Option<i64>, Option<i64>) = self
            .lock()
            .query_row(&SQL.id_bounds, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err)?;
        let (Some(mut from), Some(last)) = (first, last) else {
            return Ok(0);
        };
        let mut total = 0u64;
        while from <= last {
            total += self.write(|tx| {
                let ids: Vec<i64> = tx
                    .prepare_cached(&SQL.prune_ids)?
                    .query_map(params![from, RANGE, before, dead], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut attempts = tx.prepare_cached(&SQL.delete_attempts)?;
                let mut edges = tx.prepare_cached(&SQL.delete_edges)?;
                let mut job = tx.prepare_cached(&SQL.delete_job)?;
                for &id in &ids {
                    attempts.execute([id])?;
                    edges.execute([id])?;
                    job.execute([id])?;
                }
                if let Some(&max) = ids.iter().max() {
                    raise_id_floor(tx, max)?;
                }
                Ok(ids.len() as u64)
            })?;
            from = from.saturating_add(RANGE);
        }
        Ok(total)
    }
}

fn outcome_name(o: OutcomeKind) -> &'static str {
    o.as_str()
}

fn insert_attempt(tx: &Tx<'_>, job: JobId, r: &AttemptRecord) -> rusqlite::Result<usize> {
    let e = r.error.as_deref();
    tx.prepare_cached(&SQL.insert_attempt)?.execute(params![
        job.0 as i64,
        r.number,
        outcome_name(r.outcome),
        r.started_at.as_micros(),
        r.duration().as_micros() as i64,
        r.queued().as_micros() as i64,
        e.map(|e| e.message.as_str()),
        e.is_some_and(|e| e.permanent),
        e.and_then(|e| e.detail.as_deref()).map(|d| d.get()),
    ])
}

/// Adds jobs in `tx` at time `now`: a batch where some job has a name or
/// parents the linked way ([`flow::insert_linked`]), others one plain
/// statement a job. An `Err` inside means nothing may be committed.
pub(crate) fn insert_jobs(
    tx: &Tx<'_>,
    jobs: &[NewJob],
    now: i64,
) -> rusqlite::Result<Result<Vec<Enqueued>, QueueError>> {
    if flow::is_linked(jobs) {
        return flow::insert_linked(tx, jobs, now);
    }
    insert_plain(tx, jobs, now).map(Ok)
}

/// Adds jobs without names or parents in `tx` at time `now` (a job with a
/// unique key may name one already there instead, see
/// [`limits::UniqueKeys`]).
fn insert_plain(tx: &Tx<'_>, jobs: &[NewJob], now: i64) -> rusqlite::Result<Vec<Enqueued>> {
    let mut insert = tx.prepare_cached(&SQL.insert_job)?;
    let mut find = tx.prepare_cached(&SQL.find_key)?;
    let mut tags = limits::Tagger::new();
    let mut unique = limits::UniqueKeys::read(tx, jobs, now)?;
    let mut tally = Tally::default();
    let mut first_id = id_floor(tx)?;
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        if let Some(existing) = unique.existing(tx, &mut find, j, now)? {
            out.push(existing);
            continue;
        }
        let run_at = j.run_at.map_or(now, Timestamp::as_micros);
        let tag = tags.tag(tx, j, run_at, now)?;
        limits::bind_job(&mut insert, j, run_at, now, tag, 12)?;
        insert.raw_bind_parameter(23, first_id)?;
        let n = insert.raw_execute()?;
        out.push(if n == 1 {
            first_id = None;
            tags.taken(j, tag);
            let id = tx.last_insert_rowid();
            unique.added(j, id, WAITING, tag);
            tally.moved(j.task.as_str(), None, WAITING);
            Enqueued::New(JobId(id as u64))
        } else {
            let id: i64 = find.query_row([j.idempotency_key.as_deref()], |r| r.get(0))?;
            Enqueued::Duplicate(JobId(id as u64))
        });
    }
    tags.finish(tx)?;
    tally.write(tx)?;
    Ok(out)
}

/// Runs `f` in one write transaction (`BEGIN IMMEDIATE`), retrying while
/// another process holds the write lock.
fn write_on<T>(
    conn: &mut Connection,
    f: impl Fn(&Tx<'_>) -> rusqlite::Result<T>,
) -> Result<T, QueueError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let out = f(&tx).map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    Ok(out)
}

/// As [`write_on`], for work that may refuse its input: committed only
/// when `f` accepts it, rolled back (nothing written) otherwise.
pub(crate) fn write_checked_on<T>(
    conn: &mut Connection,
    f: impl Fn(&Tx<'_>) -> rusqlite::Result<Result<T, QueueError>>,
) -> Result<T, QueueError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let out = f(&tx).map_err(sql_err)?;
    if out.is_ok() {
        tx.commit().map_err(sql_err)?;
    }
    out
}

/// A claimed job from its row, whether it has parents (whose outputs it
/// is then given), and its fair tag.
fn claimed(q: &SqliteQueue, r: &Row<'_>) -> rusqlite::Result<(Claimed, bool, i64)> {
    let backoff: String = r.get(5)?;
    let mode: String = r.get(8)?;
    let priority: i32 = r.get(7)?;
    let run_at: i64 = r.get(10)?;
    let timeout: Option<i64> = r.get(6)?;
    let parents: i64 = r.get(12)?;
    let c = Claimed {
        schedule: tick_of(r.get(14)?, r.get(15)?),
        id: JobId(r.get::<_, i64>(0)? as u64),
        attempt: r.get(1)?,
        claim: r.get::<_, i64>(11)? as u64,
        task: q.names.get(r.get(2)?),
        params: JobParams::from_trusted_json(&r.get::<_, String>(3)?),
        settings: JobSettings {
            max_attempts: r.get(4)?,
            backoff: backoff.parse().unwrap_or(Backoff::DEFAULT_EXPONENTIAL),
            timeout: timeout.map(|t| Duration::from_micros(t as u64)),
            priority,
            mode: mode.parse().unwrap_or(Mode::Auto),
            isolate: r.get(9)?,
        },
        ready_at: Timestamp::from_micros(run_at),
        parents: Output::none(),
        admitted_at: None,
        slotted: false,
    };
    Ok((c, parents > 0, r.get::<_, Option<i64>>(13)?.unwrap_or(0)))
}

/// A listed job's settings and keys, from columns 15 to 23 of list.sql.
fn view_options(r: &Row<'_>) -> rusqlite::Result<(Option<JobSettings>, JobKeys)> {
    let backoff: String = r.get(16)?;
    let timeout: Option<i64> = r.get(17)?;
    let mode: String = r.get(19)?;
    let settings = JobSettings {
        max_attempts: r.get(15)?,
        backoff: backoff.parse().unwrap_or(Backoff::DEFAULT_EXPONENTIAL),
        timeout: timeout.map(|t| Duration::from_micros(t.max(0) as u64)),
        priority: r.get(18)?,
        mode: mode.parse().unwrap_or(Mode::Auto),
        isolate: r.get(20)?,
    };
    let keys = JobKeys {
        unique: r.get(21)?,
        concurrency: r.get(22)?,
        rate: r.get(23)?,
    };
    Ok((Some(settings), keys))
}

/// A job's schedule and tick from its row's columns.
pub(crate) fn tick_of(schedule: Option<String>, tick: Option<i64>) -> Option<Tick> {
    Some(Tick {
        schedule: schedule?,
        tick: Timestamp::from_micros(tick?),
    })
}

impl Queue for SqliteQueue {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(Durability::Durable, Writes::BetweenClaims).with_all()
    }

    fn as_flow(&self) -> Option<&dyn FlowControl> {
        Some(self)
    }

    fn as_admin(&self) -> Option<&dyn Admin> {
        Some(self)
    }

    fn as_inspect(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn Schedules> {
        Some(self)
    }

    fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.now_us();
        let out = write_checked_on(&mut self.lock(), |tx| insert_jobs(tx, &jobs, now))?;
        self.wake();
        Ok(out)
    }

    /// On a thread of its own with its own connection: the future waits
    /// for its answer (see [`LazySubmit`]).
    fn insert_async(&self, jobs: Vec<NewJob>) -> Submit<'_> {
        let (path, clock) = (self.path.clone(), self.clock.clone());
        let start = move || {
            let (mut conn, _) = open(&path, OpenMode::Existing)?;
            Ok(move |jobs: Vec<NewJob>| {
                let now = clock.now().as_micros();
                write_checked_on(&mut conn, |tx| insert_jobs(tx, &jobs, now))
            })
        };
        self.submit
            .submit("runyard-sqlite-enqueue", start, jobs, &self.waker)
    }

    fn claim_tasks(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
        tasks: Option<&[TaskName]>,
    ) -> Result<Vec<Claimed>, QueueError> {
        let now = self.now_us();
        let until = now.saturating_add(lease.as_micros() as i64);
        let filter = tasks.map(|t| {
            serde_json::to_string(&t.iter().map(|n| n.as_str()).collect::<Vec<_>>())
                .unwrap_or_default()
        });
        let stalled = std::cell::Cell::new(None);
        let mut rows = self.write(|tx| {
            stalled.set(None);
            let mut out = Vec::with_capacity(max.min(4096));
            let mut linked = Vec::new();
            let mut tags = Vec::with_capacity(max.min(4096));
            let mut tally = Tally::default();
            let mut take =
                |r: &Row<'_>, (admitted, slotted): (bool, bool)| -> rusqlite::Result<()> {
                    let (mut c, has_parents, tag) = claimed(self, r)?;
                    tally.moved(c.task.as_str(), Some(WAITING), RUNNING);
                    tags.push(tag);
                    if has_parents {
                        linked.push(out.len());
                    }
                    if admitted {
                        c.admitted_at = Some(Timestamp::from_micros(now));
                    }
                    c.slotted = slotted;
                    out.push(c);
                    Ok(())
                };
            // Due jobs without a tag get the frontier; then, while nothing
            // limits any waiting job, one statement claims.
            limits::promote(tx, now)?;
            let limited = limits::limited(tx)?;
            match &filter {
                _ if limited => {
                    let taken = limits::claim_limited(tx, max, now, filter.as_deref())?;
                    if filter.is_none() {
                        stalled.set(taken.stalled);
                    }
                    if !taken.jobs.is_empty() {
                        let ids: Vec<i64> = taken.jobs.iter().map(|j| j.0).collect();
                        let how: rustc_hash::FxHashMap<i64, (bool, bool)> =
                            taken.jobs.iter().map(|j| (j.0, (j.1, j.2))).collect();
                        let ids = serde_json::to_string(&ids).unwrap_or_default();
                        let mut st = tx.prepare_cached(&SQL.claim_ids)?;
                        let mut rows = st.query(params![worker, until, now, ids])?;
                        while let Some(r) = rows.next()? {
                            let id: i64 = r.get(0)?;
                            take(r, how.get(&id).copied().unwrap_or_default())?;
                        }
                    }
                }
                None => {
                    let mut st = tx.prepare_cached(&SQL.claim)?;
                    let mut rows = st.query(params![worker, until, now, max as i64])?;
                    while let Some(r) = rows.next()? {
                        take(r, (false, false))?;
                    }
                }
                Some(f) => {
                    let mut st = tx.prepare_cached(&SQL.claim_tasks)?;
                    let mut rows = st.query(params![worker, until, now, max as i64, f])?;
                    while let Some(r) = rows.next()? {
                        take(r, (false, false))?;
                    }
                }
            }
            tally.write(tx)?;
            // One more read only for the claimed jobs that have parents.
            if !linked.is_empty() {
                let mut st = tx.prepare_cached(&SQL.parent_outputs)?;
                for i in linked {
                    out[i].parents = flow::parents_of(&mut st, out[i].id.0 as i64)?;
                }
            }
            Ok(out.into_iter().zip(tags).collect::<Vec<_>>())
        })?;
        self.stall(stalled.get());
        // In claim order (`RETURNING` gives none): priority, tag, id.
        rows.sort_by_key(|(c, tag)| (std::cmp::Reverse(c.settings.priority), *tag, c.id));
        Ok(rows.into_iter().map(|(c, _)| c).collect())
    }

    fn started(&self, worker: &str, started: &[(Lease, Timestamp)]) -> Result<(), QueueError> {
        self.write(|tx| {
            let mut st = tx.prepare_cached(&SQL.started)?;
            for (l, at) in started {
                st.execute(params![
                    at.as_micros(),
                    l.job.0 as i64,
                    l.attempt,
                    worker,
                    l.claim as i64
                ])?;
            }
            Ok(())
        })
    }

    fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<HeartbeatReply, QueueError> {
        let now = self.now_us();
        let until = now.saturating_add(lease.as_micros() as i64);
        let me = self.registered.get(worker);
        if leases.is_empty() && me.is_none() {
            return Ok(HeartbeatReply::default());
        }
        let reply = self.write(|tx| {
            if let Some(me) = &me {
                if !renew(tx, me, now)? {
                    return Ok(None);
                }
            }
            let mut st = tx.prepare_cached(&SQL.heartbeat)?;
            let mut reply = HeartbeatReply::default();
            let paused = if leases.is_empty() {
                Paused::default()
            } else {
                limits::paused(tx)?
            };
            for l in leases {
                let row: Option<(bool, bool, String)> = st
                    .query_row(
                        params![until, l.job.0 as i64, l.attempt, worker, l.claim as i64],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                match row {
                    None => reply.lost.push(*l),
                    Some((true, _, _)) => reply.cancel_requested.push(*l),
                    Some((false, false, task)) if paused.holds(&task) => reply.paused.push(*l),
                    Some(_) => {}
                }
            }
            Ok(Some(reply))
        })?;
        reply.ok_or_else(|| name_taken_over(worker))
    }

    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError> {
        let now = self.now_us();
        // An end frees a slot: a held job may be claimed.
        self.unstall();
        let mut wake = false;
        let (out, cascade) = self.write(|tx| {
            let mut finish = tx.prepare_cached(&SQL.finish)?;
            let mut out = Vec::with_capacity(done.len());
            let mut cascade = Cascade::default();
            // The jobs that ended (true) or wait again due now (false), in order.
            let mut moved: Vec<(i64, bool)> = Vec::new();
            let mut succeeded = Vec::new();
            for c in done {
                let capped;
                let (state, run_at, output) = match &c.verdict {
                    Verdict::Succeeded(o) if o.as_json().len() > runyard_core::OUTPUT_CAP => {
                        capped = o.clone().capped();
                        (SUCCEEDED, now, Some(capped.as_json()))
                    }
                    Verdict::Succeeded(o) => (SUCCEEDED, now, (!o.is_none()).then(|| o.as_json())),
                    Verdict::Retry { at } => (WAITING, at.as_micros(), None),
                    Verdict::Dead => (DEAD, now, None),
                    Verdict::Cancelled => (CANCELLED, now, None),
                };
                let n = finish.execute(params![
                    state,
                    run_at,
                    output,
                    c.lease.job.0 as i64,
                    c.lease.attempt,
                    worker,
                    c.lease.claim as i64
                ])?;
                if n == 1 {
                    if state == SUCCEEDED {
                        succeeded.push(c.lease.job.0 as i64);
                    }
                    insert_attempt(tx, c.lease.job, &c.record)?;
                    if state != WAITING {
                        moved.push((c.lease.job.0 as i64, true));
                    } else if run_at <= now {
                        moved.push((c.lease.job.0 as i64, false));
                    }
                    out.push(Ok(()));
                } else {
                    out.push(Err(Fenced(c.lease)));
                }
            }
            crate::counts::succeeded(tx, &succeeded)?;
            // The dependents of the jobs that ended move on in this same
            // transaction: no crash can record an end without them. In the
            // order the jobs ended (settling one never reads the state of
            // another job of the batch, so after all their ends is the same),
            // with the retries due now: each takes the frontier as it
            // becomes due, as do the dependents a settle releases.
            if !moved.is_empty() {
                let ended: Vec<i64> = moved.iter().filter(|m| m.1).map(|m| m.0).collect();
                let linked: rustc_hash::FxHashSet<i64> = if ended.is_empty() {
                    Default::default()
                } else {
                    let ids = serde_json::to_string(&ended).unwrap_or_default();
                    tx.prepare_cached(&SQL.with_children)?
                        .query_map([ids], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                let mut settler = None;
                for (id, ended) in moved {
                    if !ended {
                        limits::tag_due(tx, &[id], now)?;
                    } else if linked.contains(&id) {
                        settle(&mut settler, tx, id, now, &mut cascade)?;
                    }
                }
            }
            Ok((out, cascade))
        })?;
        for (c, r) in done.iter().zip(&out) {
            wake |= r.is_ok() && matches!(c.verdict, Verdict::Retry { .. });
        }
        if wake || !cascade.unblocked.is_empty() {
            self.wake();
        }
        Ok(Recorded {
            results: out,
            cascade,
        })
    }

    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError> {
        let now = self.now_us();
        let out = self.write(|tx| {
            let mut st = tx.prepare_cached(&SQL.release)?;
            leases
                .iter()
                .map(|l| {
                    let n = st.execute(params![
                        now,
                        l.job.0 as i64,
                        l.attempt,
                        worker,
                        l.claim as i64
                    ])?;
                    Ok(if n == 1 { Ok(()) } else { Err(Fenced(*l)) })
                })
                .collect()
        })?;
        self.wake();
        Ok(out)
    }

    fn rescue(&self, which: Rescue) -> Result<Rescued, QueueError> {
        let now = self.now_us();
        let (out, cascade) = self.write(|tx| {
            type Lost = (i64, u32, u32, String, i64, i64, bool, u32, i64);
            let lost: Vec<Lost> = {
                let map = |r: &Row<'_>| -> rusqlite::Result<Lost> {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                };
                match &which {
                    Rescue::Expired => {
                        let mut st = tx.prepare_cached(&SQL.rescue_expired)?;
                        let rows = st.query_map([now], map)?;
                        rows.collect::<Result<_, _>>()?
                    }
                    Rescue::Worker(w) => {
                        let mut st = tx.prepare_cached(&SQL.rescue_worker)?;
                        let rows = st.query_map([w], map)?;
                        rows.collect::<Result<_, _>>()?
                    }
                }
            };
            let mut ids = Vec::with_capacity(lost.len());
            let mut cascade = Cascade::default();
            let mut settler = None;
            for (id, attempt, max, worker, claimed_at, run_at, started, lost_claims, children) in
                lost
            {
                if !started && lost_claims < max {
                    // Claimed ahead, never started: undone, not counted.
                    tx.execute(&SQL.undo_claim, params![now, id])?;
                } else {
                    let record = runyard_queue::lost_attempt(
                        attempt, &worker, started, claimed_at, run_at, now,
                    );
                    insert_attempt(tx, JobId(id as u64), &record)?;
                    let state = if attempt >= max { DEAD } else { WAITING };
                    tx.execute(&SQL.requeue, params![state, now, id])?;
                    if state == DEAD && children > 0 {
                        settle(&mut settler, tx, id, now, &mut cascade)?;
                    }
                }
                ids.push(JobId(id as u64));
            }
            Ok((ids, cascade))
        })?;
        if !out.is_empty() {
            self.wake();
        }
        Ok(Rescued { ids: out, cascade })
    }

    fn counts(&self) -> Result<Counts, QueueError> {
        if self.version >= 9 {
            let mut c = Counts::default();
            for (_, t) in self.counts_by_task()? {
                c += &t;
            }
            return Ok(c);
        }
        let now = self.now_us();
        let conn = self.lock();
        let mut st = conn.prepare_cached(&SQL.counts).map_err(sql_err)?;
        let mut c = Counts::default();
        let rows = st
            .query_map([now], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql_err)?;
        for row in rows {
            let (state, later, started, n) = row.map_err(sql_err)?;
            *c.get_mut(counted_state(state, later, started)) += n as u64;
        }
        Ok(c)
    }

    fn next_due(&self) -> Result<Option<Timestamp>, QueueError> {
        // A file read as it is, from before flow control, has no tags.
        let sql = if self.version >= 5 {
            &SQL.next_due
        } else {
            &SQL.next_due_v4
        };
        let held = *self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        let conn = self.lock();
        let t: Option<i64> = conn.query_row(sql, [], |r| r.get(0)).map_err(sql_err)?;
        let now = self.now_us();
        if let (Some(held), Some(due)) = (held, t) {
            if due <= now {
                // Every due job was held at this handle's last claim: they
                // wait for their window, a change, or a job due later.
                let later: Option<i64> = conn
                    .query_row(&SQL.next_later, [now], |r| r.get(0))
                    .map_err(sql_err)?;
                let held = (held < i64::MAX).then_some(held);
                let t = match (held, later) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                return Ok(t.map(Timestamp::from_micros));
            }
        }
        Ok(t.map(Timestamp::from_micros))
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn set_waker(&self, waker: Waker) {
        self.waker.set(waker);
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<Result<(), NameTaken>, QueueError> {
        let now = self.now_us();
        let lease_us = micros(worker.lease);
        let out = self.write(|tx| {
            tx.execute(&SQL.drop_lapsed_workers, [now])?;
            if let Some(holder) = live_workers(tx, now, Some(&worker.name))?.pop() {
                return Ok(Err(NameTaken(holder)));
            }
            tx.execute(
                &SQL.register_worker,
                params![worker.name, worker.host, worker.pid, now, lease_us],
            )?;
            Ok(Ok(()))
        })?;
        if out.is_ok() {
            self.registered.insert(worker, now);
        }
        Ok(out)
    }

    fn unregister_worker(&self, name: &str) -> Result<(), QueueError> {
        let Some(me) = self.registered.remove(name) else {
            return Ok(());
        };
        self.write(|tx| {
            tx.execute(
                &SQL.unregister_worker,
                params![me.worker.name, me.worker.host, me.worker.pid, me.started_at],
            )
        })
        .map(|_| ())
    }
}

impl Admin for SqliteQueue {
    fn cancel(&self, ids: &[JobId]) -> Result<Cancelled, QueueError> {
        let now = self.now_us();
        let (results, cascade) = self.write(|tx| {
            let mut get = tx.prepare_cached(&SQL.job_state)?;
            let mut out = Vec::with_capacity(ids.len());
            let mut cascade = Cascade::default();
            let mut settler = None;
            for id in ids {
                let row: Option<(i64, i64, i64)> = get
                    .query_row([id.0 as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                out.push(match row {
                    None => CancelResult::NotFound,
                    Some((WAITING | BLOCKED, _, children)) => {
                        tx.execute(&SQL.cancel_job, [id.0 as i64, now])?;
                        if children > 0 {
                            settle(&mut settler, tx, id.0 as i64, now, &mut cascade)?;
                        }
                        CancelResult::Cancelled
                    }
                    Some((RUNNING, _, _)) => {
                        tx.execute(&SQL.ask_cancel, [id.0 as i64])?;
                        CancelResult::Requested
                    }
                    Some((s, run_at, _)) => CancelResult::AlreadyFinished(state_of(s, run_at, now)),
                });
            }
            Ok((out, cascade))
        })?;
        if !cascade.unblocked.is_empty() {
            self.wake();
        }
        Ok(Cancelled { results, cascade })
    }

    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError> {
        let now = self.now_us();
        self.write(|tx| {
            let mut st = tx.prepare_cached(&SQL.cancel_pending)?;
            let rows = st.query_map([now], |r| r.get::<_, i64>(0))?;
            let mut ids: Vec<JobId> = rows
                .map(|r| r.map(|id| JobId(id as u64)))
                .collect::<Result<_, _>>()?;
            ids.sort();
            Ok(ids)
        })
    }

    fn retry(&self, id: JobId) -> Result<Option<Cascade>, QueueError> {
        let now = self.now_us();
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(None);
        };
        let out = self.write(|tx| {
            let out = flow::retry(tx, id, now)?;
            if let Some(c) = &out {
                limits::tag_due(tx, &[id], now)?;
                tag_unblocked(tx, c, 0, now)?;
            }
            Ok(out)
        })?;
        if out.is_some() {
            self.wake();
        }
        Ok(out)
    }

    fn workflow(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        if self.version < 4 {
            // A file read as it is, from before workflows: no edges.
            return Ok(self.get(id)?.map(|v| vec![v.id]).unwrap_or_default());
        }
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(Vec::new());
        };
        flow::workflow(&self.lock(), id).map_err(sql_err)
    }

    fn delete(&self, ids: &[JobId]) -> Result<Vec<Deleted>, QueueError> {
        let now = self.now_us();
        let linked = self.version >= 4;
        self.write(|tx| {
            let mut check = tx.prepare_cached(&SQL.delete_check)?;
            let mut out = Vec::with_capacity(ids.len());
            let mut deleted = 0i64;
            for id in ids {
                let Ok(id) = i64::try_from(id.0) else {
                    out.push(Deleted::NotFound);
                    continue;
                };
                let row: Option<(i64, Option<i64>, i64)> = check
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                out.push(match row {
                    None => Deleted::NotFound,
                    Some((s @ (WAITING | RUNNING | BLOCKED), _, run_at)) => {
                        Deleted::NotFinished(state_of(s, run_at, now))
                    }
                    Some((_, Some(child), _)) => Deleted::Awaited(JobId(child as u64)),
                    Some((_, None, _)) => {
                        tx.prepare_cached(&SQL.delete_attempts)?.execute([id])?;
                        if linked {
                            tx.prepare_cached(&SQL.delete_edges)?.execute([id])?;
                        }
                        tx.prepare_cached(&SQL.delete_job)?.execute([id])?;
                        deleted = deleted.max(id);
                        Deleted::Deleted
                    }
                });
            }
            if deleted > 0 {
                raise_id_floor(tx, deleted)?;
            }
            Ok(out)
        })
    }

    fn record_event(&self, e: &NewEvent) -> Result<AdminEvent, QueueError> {
        let now = self.now_us();
        let jobs = stored_event::jobs_json(&e.jobs);
        let detail = e.detail.to_string();
        let id: i64 = self.write(|tx| {
            tx.prepare_cached(&SQL.events_add)?.query_row(
                params![now, e.action, jobs, detail, e.source.via, e.source.client],
                |r| r.get(0),
            )
        })?;
        Ok(AdminEvent::recorded(
            id as u64,
            Timestamp::from_micros(now),
            e,
        ))
    }

    fn events(&self, before: Option<u64>, limit: usize) -> Result<Vec<AdminEvent>, QueueError> {
        if self.version < 8 {
            // A file read as it is, from before the record: none.
            return Ok(Vec::new());
        }
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.lock();
        let mut st = conn.prepare_cached(&SQL.events_page).map_err(sql_err)?;
        let rows = st
            .query_map(params![before, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(sql_err)?;
        let mut out = Vec::new();
        for r in rows {
            let (id, at, action, jobs, detail, via, client) = r.map_err(sql_err)?;
            out.push(stored_event::read(
                id, at, action, &jobs, &detail, via, client,
            )?);
        }
        Ok(out)
    }
}

impl FlowControl for SqliteQueue {
    fn set_limit(&self, change: &LimitChange) -> Result<Option<StoredLimit>, QueueError> {
        let out = write_checked_on(&mut self.lock(), |tx| limits::set_limit(tx, change))?;
        self.wake();
        Ok(out)
    }

    fn limits(&self) -> Result<Vec<StoredLimit>, QueueError> {
        if self.version < 5 {
            return Ok(Vec::new());
        }
        limits::limits(&self.lock()).map_err(sql_err)
    }

    fn pause(&self, task: Option<&TaskName>) -> Result<Vec<JobId>, QueueError> {
        let ids = self.write(|tx| limits::pause(tx, task.map(TaskName::as_str)))?;
        Ok(ids.into_iter().map(|id| JobId(id as u64)).collect())
    }

    fn resume(&self, task: Option<&TaskName>) -> Result<bool, QueueError> {
        let out = self.write(|tx| limits::resume(tx, task.map(TaskName::as_str)))?;
        if out {
            self.wake();
        }
        Ok(out)
    }

    fn paused(&self) -> Result<Paused, QueueError> {
        if self.version < 5 {
            return Ok(Paused::default());
        }
        limits::paused(&self.lock()).map_err(sql_err)
    }

    fn unstarted(&self) -> Result<Vec<JobId>, QueueError> {
        if self.version < 5 {
            return Ok(Vec::new());
        }
        let ids = limits::unstarted(&self.lock(), None).map_err(sql_err)?;
        Ok(ids.into_iter().map(|id| JobId(id as u64)).collect())
    }

    fn holds(&self) -> Result<Holds, QueueError> {
        if self.version < 5 {
            return Ok(Holds::default());
        }
        let now = self.now_us();
        limits::holds(&self.lock(), now).map_err(sql_err)
    }

    fn hold(&self, id: JobId) -> Result<Option<Hold>, QueueError> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(None);
        };
        if self.version < 5 {
            return Ok(None);
        }
        let now = self.now_us();
        limits::hold(&self.lock(), id, now).map_err(sql_err)
    }
}

impl Inspect for SqliteQueue {
    fn finished_per_minute(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<FinishedCount>, QueueError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(&SQL.finished_per_minute)
            .map_err(sql_err)?;
        let rows = st
            .query_map([since.as_micros(), until.as_micros()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(sql_err)?;
        let rows: Vec<_> = rows.collect::<Result<_, _>>().map_err(sql_err)?;
        Ok(finished_from_rows(rows))
    }

    fn counts_by_task(&self) -> Result<Vec<(String, Counts)>, QueueError> {
        let now = self.now_us();
        let conn = self.lock();
        // Schema 9 keeps the counts; a file read as it is, from before,
        // is counted by a scan.
        let sql = if self.version >= 9 {
            &SQL.counts_kept_by_task
        } else {
            &SQL.counts_by_task
        };
        let mut st = conn.prepare_cached(sql).map_err(sql_err)?;
        let rows = st
            .query_map([now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(sql_err)?;
        let rows: Vec<_> = rows.collect::<Result<_, _>>().map_err(sql_err)?;
        Ok(counts_by_task(rows))
    }

    fn dependents(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(Vec::new());
        };
        if self.version < 4 {
            return Ok(Vec::new());
        }
        flow::dependents(&self.lock(), id).map_err(sql_err)
    }

    fn get(&self, id: JobId) -> Result<Option<JobView>, QueueError> {
        let mut v = self.list(&ListFilter {
            after: Some(JobId(id.0.saturating_sub(1))),
            limit: 1,
            ..ListFilter::default()
        })?;
        Ok(v.pop().filter(|j| j.id == id))
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<JobView>, QueueError> {
        let now = self.now_us();
        let conn = self.lock();
        let limit = if filter.limit == 0 {
            i64::MAX
        } else {
            filter.limit as i64
        };
        // A file from before workflows, read as it is, has no workflow
        // columns; one from before schedules, no schedule columns.
        let linked = self.version >= 4;
        let scheduled = self.version >= 6;
        // One state of one code is read from the state index.
        let one_code = filter
            .state
            .filter(|s| *s != JobState::Queued)
            .map(|s| runyard_queue::stored::filter_of(s).0);
        let sql = match (self.version, one_code) {
            (..=3, _) => &SQL.list_v3,
            (4 | 5, _) => &SQL.list_v5,
            (_, Some(_)) => &*LIST_ONE_CODE,
            _ => &SQL.list,
        };
        let mut st = conn.prepare_cached(sql).map_err(sql_err)?;
        if let Some(code) = one_code.filter(|_| self.version > 5) {
            st.raw_bind_parameter(10, code).map_err(sql_err)?;
        }
        st.raw_bind_parameter(1, filter.after.map_or(0, |a| a.0) as i64)
            .and_then(|_| st.raw_bind_parameter(2, filter.state.map(JobState::as_str)))
            .and_then(|_| st.raw_bind_parameter(3, now))
            .and_then(|_| st.raw_bind_parameter(4, filter.task.as_deref()))
            .and_then(|_| st.raw_bind_parameter(5, limit))
            .and_then(|_| st.raw_bind_parameter(6, filter.key.as_deref()))
            .and_then(|_| {
                st.raw_bind_parameter(7, filter.text.as_deref().map(str::to_ascii_lowercase))
            })
            .and_then(|_| st.raw_bind_parameter(8, filter.since.map(Timestamp::as_micros)))
            .and_then(|_| st.raw_bind_parameter(9, filter.until.map(Timestamp::as_micros)))
            .map_err(sql_err)?;
        let mut jobs: Vec<JobView> = Vec::new();
        let mut with_parents = false;
        let mut rows = st.raw_query();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let (name, run_if, cancelled_by) = if linked {
                with_parents |= r.get::<_, i64>(10).map_err(sql_err)? > 0;
                let cause: Option<i64> = r.get(11).map_err(sql_err)?;
                let cause = match cause {
                    Some(c) => Some(Cause {
                        job: JobId(c as u64),
                        name: r.get(12).map_err(sql_err)?,
                    }),
                    None => None,
                };
                let run_if = RunIf::from_code(r.get(9).map_err(sql_err)?);
                (r.get(8).map_err(sql_err)?, run_if, cause)
            } else {
                (None, RunIf::Success, None)
            };
            let state: i64 = r.get(3).map_err(sql_err)?;
            let run_at: i64 = r.get(4).map_err(sql_err)?;
            let output: Option<String> = r.get(6).map_err(sql_err)?;
            let started: bool = r.get(7).map_err(sql_err)?;
            let schedule = if scheduled {
                tick_of(r.get(13).map_err(sql_err)?, r.get(14).map_err(sql_err)?)
            } else {
                None
            };
            // A file read as it is, from before schedules, lists no
            // settings or keys.
            let (settings, keys) = if scheduled {
                view_options(r).map_err(sql_err)?
            } else {
                (None, JobKeys::default())
            };
            let view_state = view_state(state, run_at, started, now);
            jobs.push(JobView {
                schedule,
                id: JobId(r.get::<_, i64>(0).map_err(sql_err)? as u64),
                task: r.get(1).map_err(sql_err)?,
                params: JobParams::from_trusted_json(&r.get::<_, String>(2).map_err(sql_err)?),
                state: view_state,
                settings,
                run_at: matches!(view_state, JobState::Queued | JobState::Scheduled)
                    .then(|| Timestamp::from_micros(run_at)),
                keys,
                attempts: Vec::new(),
                output: output
                    .and_then(|o| Output::from_json(&o).ok())
                    .unwrap_or_default(),
                enqueued_at: Timestamp::from_micros(r.get(5).map_err(sql_err)?),
                name,
                after: Vec::new(),
                run_if,
                cancelled_by: cancelled_by.map(Box::new),
            });
        }
        drop(rows);
        if let (Some(first), Some(last)) =
            (jobs.first().map(|j| j.id.0), jobs.last().map(|j| j.id.0))
        {
            // A filtered page's ids may lie far apart: its jobs' attempts
            // are then read by id, not by the range between them.
            let sparse = last - first >= 2 * jobs.len() as u64;
            let ids = sparse.then(|| {
                serde_json::to_string(&jobs.iter().map(|j| j.id.0).collect::<Vec<_>>())
                    .expect("ids serialize")
            });
            let mut st = conn
                .prepare_cached(if sparse {
                    &SQL.attempts_of
                } else {
                    &SQL.attempts
                })
                .map_err(sql_err)?;
            let bounds: &[&dyn rusqlite::ToSql] = params![first as i64, last as i64];
            let by_ids: &[&dyn rusqlite::ToSql] = params![ids];
            let rows = st
                .query_map(if sparse { by_ids } else { bounds }, |r| {
                    Ok(StoredAttempt {
                        job: r.get::<_, i64>(0)? as u64,
                        n: r.get(1)?,
                        outcome: r.get(2)?,
                        started_at: r.get(3)?,
                        duration_us: r.get(4)?,
                        queued_us: r.get(5)?,
                        error: r.get(6)?,
                        permanent: r.get(7)?,
                        detail: r.get(8)?,
                    })
                })
                .map_err(sql_err)?;
            let attempts: Vec<StoredAttempt> = rows.collect::<Result<_, _>>().map_err(sql_err)?;
            attach_attempts(&mut jobs, attempts);
            if with_parents {
                let edges = match &ids {
                    Some(ids) => flow::edges_of(&conn, ids),
                    None => flow::edges_between(&conn, first as i64, last as i64),
                }
                .map_err(sql_err)?;
                attach_parents(&mut jobs, edges);
            }
        }
        Ok(jobs)
    }

    fn live_workers(&self) -> Result<Vec<LiveWorker>, QueueError> {
        if self.version < 2 {
            // A file no worker of this build has used: none registered.
            return Ok(Vec::new());
        }
        let now = self.now_us();
        let conn = self.lock();
        live_workers(&conn, now, None).map_err(sql_err)
    }
}

/// Gives `jobs` (in id order) their parents, from (child, parent) pairs
/// in child and edge order.
fn attach_parents(jobs: &mut [JobView], edges: Vec<(u64, JobId)>) {
    let mut pos = 0;
    for (child, parent) in edges {
        while pos < jobs.len() && jobs[pos].id.0 < child {
            pos += 1;
        }
        match jobs.get_mut(pos) {
            Some(j) if j.id.0 == child => j.after.push(parent),
            Some(_) => {}
            None => return,
        }
    }
}

/// The jobs a cascade released that are due now take the frontier, from
/// the `from`th on.
fn tag_unblocked(tx: &Tx<'_>, cascade: &Cascade, from: usize, now: i64) -> rusqlite::Result<()> {
    if cascade.unblocked.len() <= from {
        return Ok(());
    }
    let ids: Vec<i64> = cascade.unblocked[from..]
        .iter()
        .map(|j| j.0 as i64)
        .collect();
    limits::tag_due(tx, &ids, now)
}

/// Settles the dependents of job `id`, which ended (see
/// [`flow::Settler::settle`]); those it releases take the frontier.
fn settle<'t>(
    settler: &mut Option<flow::Settler<'t>>,
    tx: &'t Tx<'_>,
    id: i64,
    now: i64,
    cascade: &mut Cascade,
) -> rusqlite::Result<()> {
    let from = cascade.unblocked.len();
    flow::Settler::get(settler, tx)?.settle(id, now, cascade)?;
    tag_unblocked(tx, cascade, from, now)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Renews `me`'s row, or puts it back if it was deleted while `me` was
/// away and nobody took the name; false when somebody did.
fn renew(tx: &Tx<'_>, me: &Registered, now: i64) -> rusqlite::Result<bool> {
    let w = &me.worker;
    let renewed = tx.prepare_cached(&SQL.renew_worker)?.execute(params![
        now,
        w.name,
        w.host,
        w.pid,
        me.started_at
    ])?;
    if renewed == 1 {
        return Ok(true);
    }
    let back = tx.execute(
        &SQL.restore_worker,
        params![w.name, w.host, w.pid, me.started_at, now, micros(w.lease)],
    )?;
    Ok(back == 1)
}

/// The live workers (only the one named `name`, if given), with their leases.
fn live_workers(
    conn: &Connection,
    now: i64,
    name: Option<&str>,
) -> rusqlite::Result<Vec<LiveWorker>> {
    let mut st = conn.prepare_cached(&SQL.live_workers)?;
    let rows = st.query_map(params![now, name], |r| {
        Ok(LiveWorker {
            worker: WorkerInfo {
                name: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                lease: Duration::from_micros(r.get::<_, i64>(5)?.max(0) as u64),
            },
            started_at: Timestamp::from_micros(r.get(3)?),
            last_heartbeat: Timestamp::from_micros(r.get(4)?),
            leases: r.get::<_, i64>(6)?.max(0) as u64,
        })
    })?;
    rows.collect()
}
