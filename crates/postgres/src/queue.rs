//! The PostgreSQL queue: one concept, the `Queue`, `Admin` and `Inspect`
//! implementations over one schema, with the listening thread that wakes
//! idle workers (statements in `sql/`; connections and migrations are
//! `conn.rs`).

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{GenericClient, Row, ToStatement};
use runyard_core::{
    AttemptRecord, Backoff, Cause, JobId, JobKeys, JobParams, JobSettings, JobState, JobView, Mode,
    Output, RunIf, TaskName, Tick, Timestamp,
};
use runyard_queue::stored::{self, Registered, Registrations};
use runyard_queue::PublishedTask;
use runyard_queue::{finished_from_rows, FinishedCount, LiveWorker, NameTaken, WorkerInfo};
use runyard_queue::{
    stored_event, Admin, AdminEvent, CancelResult, Cancelled, Capabilities, Cascade, Claimed,
    Clock, Completion, Counts, Deleted, Durability, Enqueued, Fenced, HeartbeatReply, Inspect,
    LazySubmit, Lease, ListFilter, NewEvent, NewJob, Queue, QueueError, QueueErrorKind, Recorded,
    Rescue, Rescued, Submit, SystemClock, TaskNames, Verdict, Waker, WakerSlot, Writes,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::conn::{self, pg_err, Conn, PgOptions, Pool};
use crate::flow::{self, FlowSql};
use crate::limit_sql::{needs_flow, LimitSql};

// The state codes of `runyard_queue::stored`, as the schema's smallint.
const WAITING: i16 = stored::WAITING as i16;
const BLOCKED: i16 = stored::BLOCKED as i16;
const RUNNING: i16 = stored::RUNNING as i16;
const SUCCEEDED: i16 = stored::SUCCEEDED as i16;
const DEAD: i16 = stored::DEAD as i16;
const CANCELLED: i16 = stored::CANCELLED as i16;

/// Batches without idempotency keys at least this large go in by `COPY`.
const COPY_FROM: usize = 256;

const CLAIM: &str = include_str!("../sql/claim.sql");
const COMPLETE: &str = include_str!("../sql/complete.sql");
const HEARTBEAT: &str = include_str!("../sql/heartbeat.sql");
const INSERT_JOBS: &str = include_str!("../sql/insert_jobs.sql");
const INSERT_PLAIN: &str = include_str!("../sql/insert_plain.sql");
const LIVE_WORKERS: &str = include_str!("../sql/live_workers.sql");
const REGISTER_WORKER: &str = include_str!("../sql/register_worker.sql");
const RELEASE: &str = include_str!("../sql/release.sql");
const RENEW_WORKER: &str = include_str!("../sql/renew_worker.sql");
const STARTED: &str = include_str!("../sql/started.sql");

/// The statements, rendered for the configured schema once.
struct Sql {
    claim: String,
    complete: String,
    heartbeat: String,
    insert_jobs: String,
    insert_plain: String,
    live_workers: String,
    register_worker: String,
    release: String,
    renew_worker: String,
    started: String,
    set_ticks: String,
    flow: FlowSql,
}

/// A [`Queue`] in a PostgreSQL database, shared by workers on any number
/// of machines.
///
/// Claims take ready jobs in batches with `FOR UPDATE SKIP LOCKED`, so
/// workers never wait on each other's rows; outcomes are written in
/// batches, each fenced by its claim number. Enqueues, releases, rescues
/// and retries send a notification that wakes idle workers at once (see
/// [`Queue::set_waker`]); workers poll slowly as well, for a notification
/// lost while their listening connection was down.
///
/// Times (run-at, leases) are read from the clock of the machine that
/// writes them: keep the workers' clocks synchronized (NTP), well within
/// the lease. Rate windows and schedule ticks are counted on the
/// database's clock.
///
/// Every call is a blocking one: call it from a thread, not from inside an
/// async runtime (the driver runs its own), except
/// [`Queue::enqueue_async`], which writes on a thread of its own.
pub struct PgQueue {
    pool: Pool,
    sql: Sql,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    names: TaskNames,
    /// The schema's version (older than this build's only when the queue
    /// was opened to inspect it).
    version: i32,
    registered: Registrations,
    /// Where async callers enqueue (see [`Queue::insert_async`]).
    submit: LazySubmit,
    /// The flow statements (see `limits.rs`).
    pub(crate) lsql: LimitSql,
    /// Whether the queue is known to need the limited claim (see
    /// `limits.rs`): once set, it stays.
    pub(crate) flow_on: AtomicBool,
}

/// What the listening thread shares with the queue.
struct Shared {
    waker: WakerSlot,
    listening: AtomicBool,
}

impl fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgQueue")
            .field("url", &self.pool.opts.url())
            .field("schema", &self.pool.opts.schema)
            .finish_non_exhaustive()
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        self.shared.listening.store(false, Ordering::SeqCst);
    }
}

/// Queue-wide figures for `runyard status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Jobs that reached a terminal state in the window.
    pub finished_in_window: u64,
    /// The window.
    pub window: Duration,
    /// When the oldest job ready to run (queued, not scheduled) became ready.
    pub oldest_ready: Option<Timestamp>,
    /// Workers running attempts now (claims that have started, as
    /// [`Queue::counts`] counts them), with how many.
    pub workers: Vec<(String, u64)>,
}

impl PgQueue {
    /// Connects to the queue at `url` (see [`PgOptions::from_url`]),
    /// migrating its schema if needed.
    pub fn connect(url: &str) -> Result<PgQueue, QueueError> {
        PgQueue::open(PgOptions::from_url(url)?, Arc::new(SystemClock))
    }

    /// Connects with the given options, on the given clock: one attempt to
    /// connect (an unreachable server is an error at once; a worker that
    /// should wait for it tries again).
    pub fn open(opts: PgOptions, clock: Arc<dyn Clock>) -> Result<PgQueue, QueueError> {
        let version = conn::prepare(&opts, &mut opts.connect_client()?)?;
        let pool = Pool::new(opts);
        let o = &pool.opts;
        let sql = Sql {
            claim: o.sql(CLAIM),
            complete: o.sql(COMPLETE),
            heartbeat: o.sql(HEARTBEAT),
            insert_jobs: o.sql(INSERT_JOBS),
            insert_plain: o.sql(INSERT_PLAIN),
            live_workers: o.sql(LIVE_WORKERS),
            register_worker: o.sql(REGISTER_WORKER),
            release: o.sql(RELEASE),
            renew_worker: o.sql(RENEW_WORKER),
            started: o.sql(STARTED),
            set_ticks: o.sql(include_str!("../sql/set_ticks.sql")),
            flow: FlowSql::new(o),
        };
        let lsql = LimitSql::new(o);
        Ok(PgQueue {
            pool,
            sql,
            clock,
            shared: Arc::new(Shared {
                waker: WakerSlot::new(),
                listening: AtomicBool::new(false),
            }),
            names: TaskNames::new(),
            version,
            registered: Registrations::new(),
            submit: LazySubmit::new(),
            lsql,
            flow_on: AtomicBool::new(false),
        })
    }

    /// Applies the missing migrations to the database at `opts`; returns
    /// the versions applied (none when it was current).
    pub fn migrate(opts: &PgOptions) -> Result<Vec<i32>, QueueError> {
        conn::migrate(opts, &mut opts.connect_client()?)
    }

    /// The options this queue was opened with.
    pub fn options(&self) -> &PgOptions {
        &self.pool.opts
    }

    fn now_us(&self) -> i64 {
        self.clock.now().as_micros()
    }

    pub(crate) fn q(&self, s: &str) -> String {
        self.pool.opts.sql(s)
    }

    /// The schema's version (older than this build's only when the queue
    /// was opened to inspect it).
    pub(crate) fn schema_version(&self) -> i32 {
        self.version
    }

    pub(crate) fn clock_now_us(&self) -> i64 {
        self.now_us()
    }

    pub(crate) fn flow_sql(&self) -> &FlowSql {
        &self.sql.flow
    }

    /// Runs `f` on a pooled connection (see [`Pool::run`]).
    pub(crate) fn pool_run<T>(
        &self,
        what: &str,
        f: impl FnMut(&mut Conn, &Cell<bool>) -> Result<T, postgres::Error>,
    ) -> Result<T, QueueError> {
        self.pool.run(what, f)
    }

    /// Runs `f` in one transaction (see [`PgQueue::tx`]).
    pub(crate) fn tx_run<T>(
        &self,
        what: &str,
        f: impl Fn(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, QueueError> {
        self.tx(what, f)
    }

    /// Wakes this process's worker.
    pub(crate) fn wake_local(&self) {
        self.shared.waker.wake();
    }

    /// Wakes this process's worker and every other.
    pub(crate) fn notify_all(&self) {
        self.notify();
    }

    /// Adds jobs inside the caller's own transaction: they exist (and wake
    /// workers) only if and when that transaction commits. `tx` must be on
    /// the queue's database. The transaction is the `postgres` crate's
    /// (version 0.19): this method follows that driver's versions.
    pub fn enqueue_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, QueueError> {
        runyard_queue::admit(&self.capabilities(), jobs)?;
        match self
            .insert_in(tx, jobs)
            .map_err(|e| pg_err("enqueueing jobs", e))??
        {
            Some(out) => Ok(out),
            None => Err(QueueError::new(
                QueueErrorKind::Conflict,
                "an idempotency key of the batch was taken by another transaction at the \
                 same moment; nothing was enqueued: roll back and enqueue again",
            )),
        }
    }

    /// Adds admitted jobs in `tx` by the way their batch needs (flow,
    /// linked or plain), and marks those a schedule made: `Ok(None)` when
    /// an idempotency key was taken at the same moment.
    #[allow(clippy::type_complexity)]
    pub(crate) fn insert_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        jobs: &[NewJob],
    ) -> Result<Result<Option<Vec<Enqueued>>, QueueError>, postgres::Error> {
        let out = if jobs.iter().any(needs_flow) {
            self.insert_flow_in(tx, jobs, self.now_us())?
        } else if linked(jobs) {
            flow::insert(tx, &self.sql.flow, jobs, self.now_us())?
        } else {
            let sql = [
                self.sql.insert_plain.as_str(),
                self.sql.insert_jobs.as_str(),
            ];
            Ok(Some(self.insert_rows(tx, sql, jobs)?))
        };
        if let Ok(Some(added)) = &out {
            self.mark_ticks(tx, jobs, added)?;
        }
        Ok(out)
    }

    /// Writes the schedule and tick of the new jobs that carry one.
    fn mark_ticks(
        &self,
        tx: &mut postgres::Transaction<'_>,
        jobs: &[NewJob],
        added: &[Enqueued],
    ) -> Result<(), postgres::Error> {
        let (mut ids, mut names, mut ticks) = (Vec::new(), Vec::new(), Vec::new());
        for (j, e) in jobs.iter().zip(added) {
            if let (Some(t), Enqueued::New(id)) = (&j.schedule, e) {
                ids.push(id.0 as i64);
                names.push(t.schedule.as_str());
                ticks.push(t.tick.as_micros());
            }
        }
        if !ids.is_empty() {
            tx.execute(&self.sql.set_ticks, &[&ids, &names, &ticks])?;
        }
        Ok(())
    }

    /// Adds a batch with jobs a schedule made, in one transaction (again
    /// when an idempotency key was taken meanwhile).
    fn insert_marked(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        let out = self.pool.run("enqueueing jobs", |c, committing| loop {
            let mut tx = c.transaction()?;
            match self.insert_in(&mut tx, jobs)? {
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
            self.shared.waker.wake();
        }
        Ok(out)
    }

    /// Adds `jobs` with `insert`: the statement for jobs without
    /// idempotency keys, then the one for a batch with some.
    fn insert_rows<S: ToStatement + ?Sized>(
        &self,
        c: &mut impl GenericClient,
        insert: [&S; 2],
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, postgres::Error> {
        let now = self.now_us();
        let n = jobs.len();
        let (mut task, mut params, mut prio, mut run_at, mut max, mut backoff) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut timeout, mut mode, mut isolate, mut key) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Settings are shared between copies: render each once.
        let mut last: Option<(*const JobSettings, String)> = None;
        for j in jobs {
            let s = &j.settings;
            task.push(j.task.as_str());
            params.push(j.params.as_json());
            prio.push(s.priority);
            run_at.push(j.run_at.map_or(now, Timestamp::as_micros));
            max.push(s.max_attempts as i32);
            let ptr = Arc::as_ptr(s);
            let b = match &last {
                Some((p, b)) if *p == ptr => b.clone(),
                _ => {
                    let b = s.backoff.to_string();
                    last = Some((ptr, b.clone()));
                    b
                }
            };
            backoff.push(b);
            timeout.push(s.timeout.map(|t| t.as_micros() as i64));
            mode.push(s.mode.as_str());
            isolate.push(s.isolate);
            key.push(j.idempotency_key.as_deref());
        }
        let rows = if key.iter().any(Option::is_some) {
            c.query(
                insert[1],
                &[
                    &now, &task, &params, &prio, &run_at, &max, &backoff, &timeout, &mode,
                    &isolate, &key,
                ],
            )?
        } else {
            c.query(
                insert[0],
                &[
                    &now, &task, &params, &prio, &run_at, &max, &backoff, &timeout, &mode, &isolate,
                ],
            )?
        };
        if let Some(top) = rows.iter().filter_map(|r| r.get::<_, Option<i64>>(2)).max() {
            c.execute(&self.lsql.gave_tags, &[&top])?;
        }
        // Rows come back in insertion order (the input's, skipping taken keys).
        let mut new_by_key: FxHashMap<String, i64> = FxHashMap::default();
        let mut unkeyed = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get(0);
            match r.get::<_, Option<String>>(1) {
                Some(k) => {
                    new_by_key.insert(k, id);
                }
                None => unkeyed.push(id),
            }
        }
        let mut existing: FxHashMap<String, i64> = FxHashMap::default();
        let missing: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.idempotency_key.as_deref())
            .filter(|k| !new_by_key.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            for r in c.query(&self.q(include_str!("../sql/find_keys.sql")), &[&missing])? {
                existing.insert(r.get(0), r.get(1));
            }
        }
        let mut unkeyed = unkeyed.into_iter();
        let mut seen = rustc_hash::FxHashSet::default();
        let mut out = Vec::with_capacity(n);
        for j in jobs {
            out.push(match j.idempotency_key.as_deref() {
                None => Enqueued::New(JobId(unkeyed.next().unwrap_or_default() as u64)),
                Some(k) => match new_by_key.get(k) {
                    // The first job with the key was added; later ones in
                    // the batch are its duplicates.
                    Some(&id) if seen.insert(k) => Enqueued::New(JobId(id as u64)),
                    Some(&id) => Enqueued::Duplicate(JobId(id as u64)),
                    None => {
                        let id = existing.get(k).copied().unwrap_or_default();
                        Enqueued::Duplicate(JobId(id as u64))
                    }
                },
            });
        }
        Ok(out)
    }

    /// Adds a large batch without keys by `COPY`: ids drawn from the
    /// sequence first, then the rows streamed in binary, in one transaction.
    fn copy_in(
        &self,
        c: &mut Conn,
        committing: &Cell<bool>,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>, postgres::Error> {
        use postgres::binary_copy::BinaryCopyInWriter;
        let now = self.now_us();
        let ids_st = c.st(&self.q(include_str!("../sql/next_ids.sql")))?;
        let copy = self.q(include_str!("../sql/copy_jobs.sql"));
        let mut tx = c.transaction()?;
        let n = jobs.len() as i64;
        let ids: Vec<i64> = tx.query(&ids_st, &[&n])?.iter().map(|r| r.get(0)).collect();
        // The due jobs are the keyless group's next tags, reserved at once.
        let due = jobs
            .iter()
            .filter(|j| j.run_at.is_none_or(|t| t.as_micros() <= now))
            .count() as i64;
        // NULL when none is due: then no job takes a tag.
        let front: Option<i64> = tx.query_one(&self.lsql.keyless_tags, &[&due])?.get(0);
        let front = front.unwrap_or_default();
        let mut place = 0i64;
        let mut w = BinaryCopyInWriter::new(tx.copy_in(&copy)?, &flow::PLAIN_COPY_TYPES);
        // Settings are shared between copies: render each once.
        let mut last: Option<(*const JobSettings, String)> = None;
        for (j, id) in jobs.iter().zip(&ids) {
            let s = &j.settings;
            let ptr = Arc::as_ptr(s);
            if last.as_ref().is_none_or(|(p, _)| *p != ptr) {
                last = Some((ptr, s.backoff.to_string()));
            }
            let backoff = &last.as_ref().expect("set above").1;
            let max = s.max_attempts as i32;
            let run_at = j.run_at.map_or(now, Timestamp::as_micros);
            let tag = (run_at <= now).then(|| {
                place += 1;
                front + place - 1
            });
            w.write(&[
                id,
                &j.task.as_str(),
                &j.params.as_json(),
                &WAITING,
                &s.priority,
                &run_at,
                &now,
                &max,
                &max,
                backoff,
                &s.timeout.map(|t| t.as_micros() as i64),
                &s.mode.as_str(),
                &s.isolate,
                &tag,
            ])?;
        }
        w.finish()?;
        if place > 0 {
            tx.execute(&self.lsql.gave_tags, &[&(front + place - 1)])?;
        }
        committing.set(true);
        tx.commit()?;
        Ok(ids
            .into_iter()
            .map(|id| Enqueued::New(JobId(id as u64)))
            .collect())
    }

    /// Adds a batch with names or parents (see [`flow::insert`]) in one
    /// transaction, again when an idempotency key was taken meanwhile.
    fn insert_linked(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        let now = self.now_us();
        let out = self.pool.run("enqueueing jobs", |c, committing| loop {
            let mut tx = c.transaction()?;
            match flow::insert(&mut tx, &self.sql.flow, jobs, now)? {
                Err(e) => return Ok(Err(e)),
                Ok(None) => tx.rollback()?,
                Ok(Some(out)) => {
                    committing.set(true);
                    tx.commit()?;
                    return Ok(Ok(out));
                }
            }
        })??;
        if out.iter().any(|e| matches!(e, Enqueued::New(_))) {
            self.shared.waker.wake();
        }
        Ok(out)
    }

    fn notify_on(&self, c: &mut Conn) -> Result<(), postgres::Error> {
        let st = c.st(include_str!("../sql/notify.sql"))?;
        c.execute(&st, &[&self.pool.opts.channel()]).map(|_| ())
    }

    /// Wakes this process's worker, and (through the database) every other.
    fn notify(&self) {
        self.shared.waker.wake();
        let _ = self.pool.run("notifying workers", |c, _| self.notify_on(c));
    }

    /// Renews `me`'s row of the workers table (see `runyard_queue::stored`);
    /// false when another worker has taken its name.
    fn renew(&self, c: &mut Conn, me: &Registered, now: i64) -> Result<bool, postgres::Error> {
        let w = &me.worker;
        let st = c.st(&self.sql.renew_worker)?;
        let pid = w.pid as i32;
        let row = c.query_one(
            &st,
            &[
                &w.name,
                &w.host,
                &pid,
                &me.started_at,
                &now,
                &micros(w.lease),
            ],
        )?;
        Ok(row.get(0))
    }

    /// Runs `f` in one transaction, reconnecting as [`Pool::run`] does.
    fn tx<T>(
        &self,
        what: &str,
        f: impl Fn(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, QueueError> {
        self.pool.run(what, |c, committing: &Cell<bool>| {
            let mut tx = c.transaction()?;
            let v = f(&mut tx)?;
            committing.set(true);
            tx.commit()?;
            Ok(v)
        })
    }

    /// Deletes succeeded and cancelled jobs (and dead ones, with
    /// `dead`) that finished more than `older_than` ago, with their
    /// attempts; returns how many jobs went. A job that an unfinished job
    /// is after stays (its output is still to be read). Deletes in
    /// batches, so a large backlog does not hold locks for long.
    pub fn prune(&self, older_than: Duration, dead: bool) -> Result<u64, QueueError> {
        let before = self.now_us() - older_than.as_micros() as i64;
        let states: Vec<i16> = if dead {
            vec![SUCCEEDED, DEAD, CANCELLED]
        } else {
            vec![SUCCEEDED, CANCELLED]
        };
        // One pass over the table by id, a range per transaction.
        const RANGE: i64 = 10_000;
        let sql = self.q(include_str!("../sql/prune.sql"));
        let lock = self.q(include_str!("../sql/prune_lock.sql"));
        let bounds = self.q(include_str!("../sql/id_bounds.sql"));
        let (first, last): (Option<i64>, Option<i64>) =
            self.pool.run("pruning finished jobs", |c, _| {
                let r = c.query_one(&bounds, &[])?;
                Ok((r.get(0), r.get(1)))
            })?;
        let (Some(mut from), Some(last)) = (first, last) else {
            return Ok(0);
        };
        let mut total = 0u64;
        while from <= last {
            // The rows first, then the delete in a statement of its own: see
            // prune_lock.sql.
            let n: i64 = self.tx("pruning finished jobs", |tx| {
                let args: [&(dyn ToSql + Sync); 4] = [&states, &before, &from, &RANGE];
                tx.execute(&lock, &args)?;
                Ok(tx.query_one(&sql, &args)?.get(0))
            })?;
            total += n as u64;
            from += RANGE;
        }
        self.fold_counts()?;
        Ok(total)
    }

    /// Folds the kept counts of connections that have ended into one row
    /// per task and state (schema 9; see `0009_counts.sql`), so that
    /// counting reads as few rows as there are live connections.
    pub(crate) fn fold_counts(&self) -> Result<(), QueueError> {
        if self.version < 9 {
            return Ok(());
        }
        let sql = self.q("SELECT runyard.fold_counts()");
        self.pool
            .run("folding the kept counts", |c, _| c.execute(&sql, &[]))?;
        Ok(())
    }

    /// Throughput, the oldest ready job and the workers holding leases.
    pub fn activity(&self, window: Duration) -> Result<Activity, QueueError> {
        let now = self.now_us();
        let since = now - window.as_micros() as i64;
        let finished_sql = self.q(include_str!("../sql/finished_since.sql"));
        let oldest_sql = self.q(include_str!("../sql/oldest_ready.sql"));
        let workers_sql = self.q(include_str!("../sql/running_by_worker.sql"));
        self.tx("reading activity", |c| {
            // Planned with its values, as a list is (see `list`): a generic
            // plan guesses a third of the table finished in the window and
            // scans it.
            c.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")?;
            let finished: i64 = c.query_one(&finished_sql, &[&since])?.get(0);
            let oldest: Option<i64> = c.query_one(&oldest_sql, &[&now])?.get(0);
            let workers = c
                .query(&workers_sql, &[])?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect();
            Ok(Activity {
                finished_in_window: finished as u64,
                window,
                oldest_ready: oldest.map(Timestamp::from_micros),
                workers,
            })
        })
    }

    /// Starts the thread that listens for notifications, once.
    fn listen(&self) {
        if self.shared.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        let opts = self.pool.opts.clone();
        let channel = self.pool.opts.channel();
        let spawned = std::thread::Builder::new()
            .name("runyard-pg-listen".into())
            .spawn(move || listen_loop(shared, opts, channel));
        if spawned.is_err() {
            // Workers poll as well; without the thread they only wake later.
            self.shared.listening.store(false, Ordering::SeqCst);
        }
    }
}

/// Holds a connection that `LISTEN`s on the queue's channel and calls the
/// waker on each notification; reconnects (waking once, for what was missed)
/// when the connection is lost. Ends once the queue is dropped.
fn listen_loop(shared: Weak<Shared>, opts: PgOptions, channel: String) {
    use postgres::fallible_iterator::FallibleIterator;
    let alive = || {
        shared
            .upgrade()
            .filter(|s| s.listening.load(Ordering::SeqCst))
    };
    let mut pause = Duration::from_millis(100);
    while alive().is_some() {
        let mut c = match opts.connect_raw() {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let quoted = channel.replace('"', "\"\"");
        if c.batch_execute(&format!("LISTEN \"{quoted}\"")).is_err() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            continue;
        }
        pause = Duration::from_millis(100);
        // Whatever was sent while not listening.
        if let Some(s) = alive() {
            s.waker.wake();
        }
        loop {
            let next = c
                .notifications()
                .timeout_iter(Duration::from_millis(500))
                .next();
            let Some(s) = alive() else { return };
            match next {
                Ok(Some(_)) => s.waker.wake(),
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}

fn state_of(code: i16, run_at: i64, now: i64) -> JobState {
    stored::state_of(i64::from(code), run_at, now)
}

/// Leases as the statements take them: jobs, attempts, claims.
fn lease_arrays(leases: &[Lease]) -> (Vec<i64>, Vec<i32>, Vec<i64>) {
    let mut out = (
        Vec::with_capacity(leases.len()),
        Vec::with_capacity(leases.len()),
        Vec::with_capacity(leases.len()),
    );
    for l in leases {
        out.0.push(l.job.0 as i64);
        out.1.push(l.attempt as i32);
        out.2.push(l.claim as i64);
    }
    out
}

/// A lease from columns `at..at + 3` of a row (job, attempt, claim).
fn lease_at(r: &Row, at: usize) -> Lease {
    Lease {
        job: JobId(r.get::<_, i64>(at) as u64),
        attempt: r.get::<_, i32>(at + 1) as u32,
        claim: r.get::<_, i64>(at + 2) as u64,
    }
}

/// The mark of a job a schedule made, from its `schedule` and `tick` columns.
fn tick_of(schedule: Option<String>, tick: Option<i64>) -> Option<Tick> {
    Some(Tick {
        schedule: schedule?,
        tick: Timestamp::from_micros(tick?),
    })
}

/// A listed job's settings and keys, from columns 14 to 22 of list.sql.
fn view_options(r: &Row) -> (Option<JobSettings>, JobKeys) {
    let backoff: String = r.get(15);
    let timeout: Option<i64> = r.get(16);
    let mode: String = r.get(18);
    let settings = JobSettings {
        max_attempts: r.get::<_, i32>(14).max(0) as u32,
        backoff: backoff.parse().unwrap_or(Backoff::DEFAULT_EXPONENTIAL),
        timeout: timeout.map(|t| Duration::from_micros(t.max(0) as u64)),
        priority: r.get(17),
        mode: mode.parse().unwrap_or(Mode::Auto),
        isolate: r.get(19),
    };
    let keys = JobKeys {
        unique: r.get(20),
        concurrency: r.get(21),
        rate: r.get(22),
    };
    (Some(settings), keys)
}

fn claimed(q: &PgQueue, r: &Row) -> Claimed {
    let backoff: String = r.get(5);
    let mode: String = r.get(8);
    let priority: i32 = r.get(7);
    let run_at: i64 = r.get(10);
    let timeout: Option<i64> = r.get(6);
    Claimed {
        schedule: tick_of(r.get(14), r.get(15)),
        id: JobId(r.get::<_, i64>(0) as u64),
        attempt: r.get::<_, i32>(1) as u32,
        claim: r.get::<_, i64>(11) as u64,
        task: q.names.get(r.get(2)),
        params: JobParams::from_trusted_json(r.get::<_, &str>(3)),
        settings: JobSettings {
            max_attempts: r.get::<_, i32>(4) as u32,
            backoff: backoff.parse().unwrap_or(Backoff::DEFAULT_EXPONENTIAL),
            timeout: timeout.map(|t| Duration::from_micros(t.max(0) as u64)),
            priority,
            mode: mode.parse().unwrap_or(Mode::Auto),
            isolate: r.get(9),
        },
        ready_at: Timestamp::from_micros(run_at),
        parents: Output::none(),
        admitted_at: None,
        // claimed_rows.sql says; claim.sql's jobs are under no limit.
        slotted: r.len() > 16 && r.get::<_, bool>(16),
    }
}

fn insert_attempt(
    q: &PgQueue,
    tx: &mut postgres::Transaction<'_>,
    job: i64,
    worker: &str,
    r: &AttemptRecord,
) -> Result<u64, postgres::Error> {
    let e = r.error.as_deref();
    tx.execute(
        &q.q(include_str!("../sql/insert_attempt.sql")),
        &[
            &job,
            &(r.number as i32),
            &r.outcome.as_str(),
            &r.started_at.as_micros(),
            &(r.duration().as_micros() as i64),
            &(r.queued().as_micros() as i64),
            &e.map(|e| e.message.as_str()),
            &e.is_some_and(|e| e.permanent),
            &e.and_then(|e| e.detail.as_deref()).map(|d| d.get()),
            &worker,
        ],
    )
}

impl Queue for PgQueue {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(Durability::Durable, Writes::Concurrent).with_all()
    }

    fn as_flow(&self) -> Option<&dyn runyard_queue::FlowControl> {
        Some(self)
    }

    fn as_admin(&self) -> Option<&dyn Admin> {
        Some(self)
    }

    fn as_inspect(&self) -> Option<&dyn Inspect> {
        Some(self)
    }

    fn as_schedules(&self) -> Option<&dyn runyard_queue::Schedules> {
        Some(self)
    }

    /// On a thread of its own with a connection of its own: the future
    /// waits for its answer (see [`LazySubmit`]).
    fn insert_async(&self, jobs: Vec<NewJob>) -> Submit<'_> {
        let (opts, clock) = (self.pool.opts.clone(), self.clock.clone());
        let start = move || {
            let q = PgQueue::open(opts, clock)?;
            Ok(move |jobs: Vec<NewJob>| q.insert(jobs))
        };
        self.submit
            .submit("runyard-pg-enqueue", start, jobs, &self.shared.waker)
    }

    fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        // Not retried once the commit was sent: its outcome is then unknown,
        // and enqueueing again could add the jobs twice. Jobs without keys
        // go in one statement (its own transaction); with keys, the
        // duplicates are looked up in the same transaction.
        if jobs.iter().any(|j| j.schedule.is_some()) {
            return self.insert_marked(&jobs);
        }
        if jobs.iter().any(needs_flow) {
            return self.insert_flow(&jobs);
        }
        if linked(&jobs) {
            return self.insert_linked(&jobs);
        }
        let keyed = jobs.iter().any(|j| j.idempotency_key.is_some());
        let out = self.pool.run("enqueueing jobs", |c, committing| {
            if !keyed && jobs.len() >= COPY_FROM {
                return self.copy_in(c, committing, &jobs);
            }
            let insert = [c.st(&self.sql.insert_plain)?, c.st(&self.sql.insert_jobs)?];
            if !keyed {
                committing.set(true);
                return self.insert_rows(&mut **c, [&insert[0], &insert[1]], &jobs);
            }
            let mut tx = c.transaction()?;
            let out = self.insert_rows(&mut tx, [&insert[0], &insert[1]], &jobs)?;
            committing.set(true);
            tx.commit()?;
            Ok(out)
        })?;
        if out.iter().any(|e| matches!(e, Enqueued::New(_))) {
            self.shared.waker.wake();
        }
        Ok(out)
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
        let filter: Option<Vec<&str>> = tasks.map(|t| t.iter().map(|n| n.as_str()).collect());
        let limit = max as i64;
        let mut plain = Vec::new();
        if !self.flow_on.load(Ordering::Relaxed) {
            plain = self.pool.run("claiming jobs", |c, _| {
                let promote = c.st(&self.lsql.promote)?;
                c.execute(&promote, &[&now])?;
                let st = c.st(&self.sql.claim)?;
                c.query(&st, &[&worker, &until, &now, &limit, &filter])
            })?;
            // Nothing found: perhaps because the queue needs the limited
            // claim now (see `limits.rs`).
            if plain.is_empty() && !self.read_flow_on()? {
                return Ok(Vec::new());
            }
        }
        let got: Vec<(Row, Option<i64>)> = if plain.is_empty() {
            self.claim_limited(worker, until, now, max, &filter)?
        } else {
            plain.into_iter().map(|r| (r, None)).collect()
        };
        let linked: Vec<i64> = got
            .iter()
            .filter(|(r, _)| r.get::<_, bool>(12))
            .map(|(r, _)| r.get(0))
            .collect();
        // In claim order: priority, tag, id (`RETURNING` keeps none).
        let mut got: Vec<(Claimed, Option<i64>)> = got
            .iter()
            .map(|(r, a)| {
                let mut c = claimed(self, r);
                c.admitted_at = a.map(Timestamp::from_micros);
                (c, r.get::<_, Option<i64>>(13))
            })
            .collect();
        got.sort_by_key(|(c, tag)| (std::cmp::Reverse(c.settings.priority), *tag, c.id));
        let mut rows: Vec<Claimed> = got.into_iter().map(|(c, _)| c).collect();
        if !linked.is_empty() {
            // Parents have ended and their outputs no longer change: read
            // after the claim, outside its statement.
            let mut by = self.pool.run("reading the outputs of parents", |c, _| {
                flow::parents_of(&mut **c, &self.sql.flow, &linked)
            })?;
            for r in &mut rows {
                if let Some(p) = by.remove(&(r.id.0 as i64)) {
                    r.parents = p;
                }
            }
        }
        Ok(rows)
    }

    fn started(&self, worker: &str, started: &[(Lease, Timestamp)]) -> Result<(), QueueError> {
        if started.is_empty() {
            return Ok(());
        }
        let leases: Vec<Lease> = started.iter().map(|(l, _)| *l).collect();
        let (ids, attempts, claims) = lease_arrays(&leases);
        let at: Vec<i64> = started.iter().map(|(_, t)| t.as_micros()).collect();
        self.pool.run("recording starts", |c, _| {
            let st = c.st(&self.sql.started)?;
            c.execute(&st, &[&worker, &ids, &attempts, &at, &claims])
                .map(|_| ())
        })
    }

    fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
        lease: Duration,
    ) -> Result<HeartbeatReply, QueueError> {
        let me = self.registered.get(worker);
        if leases.is_empty() && me.is_none() {
            return Ok(HeartbeatReply::default());
        }
        let now = self.now_us();
        let until = now.saturating_add(lease.as_micros() as i64);
        let (ids, attempts, claims) = lease_arrays(leases);
        let rows = self.pool.run("renewing leases", |c, _| {
            if let Some(me) = &me {
                if !self.renew(c, me, now)? {
                    return Ok(None);
                }
            }
            if leases.is_empty() {
                return Ok(Some(Vec::new()));
            }
            let st = c.st(&self.sql.heartbeat)?;
            c.query(&st, &[&worker, &until, &ids, &attempts, &claims])
                .map(Some)
        })?;
        let Some(rows) = rows else {
            return Err(stored::name_taken_over(worker));
        };
        let mut held: FxHashMap<Lease, (bool, bool)> = FxHashMap::default();
        for r in &rows {
            held.insert(lease_at(r, 0), (r.get(3), r.get(4)));
        }
        let mut reply = HeartbeatReply::default();
        for l in leases {
            match held.get(l) {
                None => reply.lost.push(*l),
                Some((true, _)) => reply.cancel_requested.push(*l),
                Some((false, true)) => reply.paused.push(*l),
                Some((false, false)) => {}
            }
        }
        Ok(reply)
    }

    fn complete(&self, worker: &str, done: &[Completion]) -> Result<Recorded, QueueError> {
        if done.is_empty() {
            return Ok(Recorded::default());
        }
        let now = self.now_us();
        let n = done.len();
        let mut ids = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut claims = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut run_ats = Vec::with_capacity(n);
        let mut outputs: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut outcomes = Vec::with_capacity(n);
        let mut started_at = Vec::with_capacity(n);
        let mut duration = Vec::with_capacity(n);
        let mut queued = Vec::with_capacity(n);
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut permanent = Vec::with_capacity(n);
        let mut detail: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut wake = false;
        // Outputs past the cap are stored as its marker (see `Output::capped`).
        let capped: Vec<Option<Output>> = done
            .iter()
            .map(|c| match &c.verdict {
                Verdict::Succeeded(o) if o.as_json().len() > runyard_core::OUTPUT_CAP => {
                    Some(o.clone().capped())
                }
                _ => None,
            })
            .collect();
        for (c, big) in done.iter().zip(&capped) {
            let (state, run_at, output) = match &c.verdict {
                Verdict::Succeeded(o) => {
                    let o = big.as_ref().unwrap_or(o);
                    (SUCCEEDED, now, (!o.is_none()).then(|| o.as_json()))
                }
                Verdict::Retry { at } => {
                    wake |= at.as_micros() <= now;
                    (WAITING, at.as_micros(), None)
                }
                Verdict::Dead => (DEAD, now, None),
                Verdict::Cancelled => (CANCELLED, now, None),
            };
            let r = &c.record;
            let e = r.error.as_deref();
            ids.push(c.lease.job.0 as i64);
            attempts.push(c.lease.attempt as i32);
            claims.push(c.lease.claim as i64);
            states.push(state);
            run_ats.push(run_at);
            outputs.push(output);
            outcomes.push(r.outcome.as_str());
            started_at.push(r.started_at.as_micros());
            duration.push(r.duration().as_micros() as i64);
            queued.push(r.queued().as_micros() as i64);
            errors.push(e.map(|e| e.message.as_str()));
            permanent.push(e.is_some_and(|e| e.permanent));
            detail.push(e.and_then(|e| e.detail.as_deref()).map(|d| d.get()));
        }
        // Jobs without children end in one statement; one that has some
        // is left, and ended again with its dependents settled in one
        // transaction (see `flow`).
        let args = |with_children: bool| -> Vec<&(dyn ToSql + Sync)> {
            let with_children: &'static bool = if with_children { &true } else { &false };
            vec![
                &worker,
                &ids,
                &attempts,
                &states,
                &run_ats,
                &outputs,
                &now,
                &outcomes,
                &started_at,
                &duration,
                &queued,
                &errors,
                &permanent,
                &detail,
                &claims,
                with_children,
            ]
        };
        let first = self.pool.run("recording outcomes", |c, _| {
            let st = c.st(&self.sql.complete)?;
            c.query(&st, &args(false))
        })?;
        let mut ended: rustc_hash::FxHashSet<(i64, i64)> =
            first.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut cascade = Cascade::default();
        if ended.len() < done.len() {
            let (more, settled) = self.tx("recording outcomes", |tx| {
                let rows = tx.query(&self.sql.complete, &args(true))?;
                let mut cascade = Cascade::default();
                let ends = flow::ended_with_children(
                    rows.iter()
                        .map(|r| (r.get(0), r.get(2), r.get(3), r.get(4))),
                );
                flow::settle(tx, &self.sql.flow, ends, now, &mut cascade)?;
                Ok((rows, cascade))
            })?;
            ended.extend(
                more.iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))),
            );
            cascade = settled;
        }
        if wake || !cascade.unblocked.is_empty() {
            self.shared.waker.wake();
        }
        let results = done
            .iter()
            .map(|c| {
                if ended.contains(&(c.lease.job.0 as i64, c.lease.claim as i64)) {
                    Ok(())
                } else {
                    Err(Fenced(c.lease))
                }
            })
            .collect();
        Ok(Recorded { results, cascade })
    }

    fn release(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<Vec<Result<(), Fenced>>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_us();
        let (ids, attempts, claims) = lease_arrays(leases);
        let rows = self.pool.run("releasing claims", |c, _| {
            let st = c.st(&self.sql.release)?;
            c.query(&st, &[&worker, &now, &ids, &attempts, &claims])
        })?;
        let back: rustc_hash::FxHashSet<Lease> = rows.iter().map(|r| lease_at(r, 0)).collect();
        if !back.is_empty() {
            self.notify();
        }
        Ok(leases
            .iter()
            .map(|l| {
                if back.contains(l) {
                    Ok(())
                } else {
                    Err(Fenced(*l))
                }
            })
            .collect())
    }

    fn rescue(&self, which: Rescue) -> Result<Rescued, QueueError> {
        let now = self.now_us();
        let (select, worker) = match &which {
            Rescue::Expired => (self.q(include_str!("../sql/rescue_expired.sql")), None),
            Rescue::Worker(w) => (
                self.q(include_str!("../sql/rescue_worker.sql")),
                Some(w.clone()),
            ),
        };
        let undo = self.q(include_str!("../sql/undo_claim.sql"));
        let free = &self.lsql.free_slots;
        let requeue = self.q(include_str!("../sql/requeue.sql"));
        let (out, cascade) = self.tx("rescuing expired leases", |tx| {
            let mut dead = Vec::new();
            let rows = match &worker {
                None => tx.query(&select, &[&now])?,
                Some(w) => tx.query(&select, &[w])?,
            };
            let mut ids = Vec::with_capacity(rows.len());
            // The slots of every rescued job, given back at once (they are
            // still running: their rows are locked).
            let all: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            if !all.is_empty() {
                tx.execute(free, &[&all])?;
            }
            for r in &rows {
                let id: i64 = r.get(0);
                let attempt = r.get::<_, i32>(1) as u32;
                let max = r.get::<_, i32>(2) as u32;
                let holder: Option<String> = r.get(3);
                let holder = holder.unwrap_or_default();
                let claimed_at: i64 = r.get::<_, Option<i64>>(4).unwrap_or(now);
                let run_at: i64 = r.get(5);
                let started: bool = r.get(6);
                let lost_claims = r.get::<_, i32>(7) as u32;
                if !started && lost_claims < max {
                    // Claimed ahead, never started: undone, not counted.
                    tx.execute(&undo, &[&now, &id])?;
                } else {
                    let record = runyard_queue::lost_attempt(
                        attempt, &holder, started, claimed_at, run_at, now,
                    );
                    insert_attempt(self, tx, id, &holder, &record)?;
                    let state = if attempt >= max { DEAD } else { WAITING };
                    let r = tx.query_one(&requeue, &[&state, &now, &id])?;
                    dead.push((id, state, r.get(0), r.get(1)));
                }
                ids.push(JobId(id as u64));
            }
            let mut cascade = Cascade::default();
            let ends = flow::ended_with_children(dead);
            flow::settle(tx, &self.sql.flow, ends, now, &mut cascade)?;
            Ok((ids, cascade))
        })?;
        if !out.is_empty() {
            self.notify();
        }
        Ok(Rescued { ids: out, cascade })
    }

    fn counts(&self) -> Result<Counts, QueueError> {
        let mut c = Counts::default();
        for (_, t) in self.counts_by_task()? {
            c += &t;
        }
        Ok(c)
    }

    fn next_due(&self) -> Result<Option<Timestamp>, QueueError> {
        let sql = self.q(include_str!("../sql/next_due.sql"));
        let t: Option<i64> = self.pool.run("reading the next run-at", |c, _| {
            let st = c.st(&sql)?;
            Ok(c.query_one(&st, &[])?.get(0))
        })?;
        Ok(t.map(Timestamp::from_micros))
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn set_waker(&self, waker: Waker) {
        self.shared.waker.set(waker);
        self.listen();
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<Result<(), NameTaken>, QueueError> {
        let now = self.now_us();
        let lease_us = micros(worker.lease);
        let pid = worker.pid as i32;
        let lapsed = self.q(include_str!("../sql/drop_lapsed_workers.sql"));
        let out = self.tx("registering the worker", |tx| {
            // The holder may stop between the insert and the read: then the
            // name is free, and inserting again takes it.
            loop {
                tx.execute(&lapsed, &[&now])?;
                let added = tx.query_opt(
                    &self.sql.register_worker,
                    &[&worker.name, &worker.host, &pid, &now, &lease_us],
                )?;
                if added.is_some() {
                    return Ok(Ok(()));
                }
                let holder = tx.query(&self.sql.live_workers, &[&now, &worker.name])?;
                if let Some(h) = holder.first() {
                    return Ok(Err(NameTaken(live_worker(h))));
                }
            }
        })?;
        if out.is_ok() {
            self.registered.insert(worker, now);
            // Connections of workers gone before it leave counts behind.
            self.fold_counts()?;
        }
        Ok(out)
    }

    /// Upserts the rows of `runyard.tasks` (migration 0010) that the
    /// `submit` SQL function reads, in one statement.
    fn publish_tasks(&self, worker: &str, tasks: &[PublishedTask]) -> Result<(), QueueError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let task: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
        let max: Vec<i32> = tasks
            .iter()
            .map(|t| t.settings.max_attempts as i32)
            .collect();
        let backoff: Vec<String> = tasks
            .iter()
            .map(|t| t.settings.backoff.to_string())
            .collect();
        let timeout: Vec<Option<i64>> = tasks
            .iter()
            .map(|t| t.settings.timeout.map(micros))
            .collect();
        let prio: Vec<i32> = tasks.iter().map(|t| t.settings.priority).collect();
        let mode: Vec<&str> = tasks.iter().map(|t| t.settings.mode.as_str()).collect();
        let isolate: Vec<bool> = tasks.iter().map(|t| t.settings.isolate).collect();
        let conc: Vec<Option<i32>> = tasks
            .iter()
            .map(|t| t.concurrency.map(|c| c.min(i32::MAX as u32) as i32))
            .collect();
        let rate_n: Vec<Option<i32>> = tasks
            .iter()
            .map(|t| t.rate.map(|r| r.count.min(i32::MAX as u32) as i32))
            .collect();
        let rate_us: Vec<Option<i64>> = tasks
            .iter()
            .map(|t| t.rate.map(|r| micros(r.per)))
            .collect();
        let sql = self.q(include_str!("../sql/publish_tasks.sql"));
        self.pool.run("publishing the worker's tasks", |c, _| {
            c.execute(
                &sql,
                &[
                    &worker, &task, &max, &backoff, &timeout, &prio, &mode, &isolate, &conc,
                    &rate_n, &rate_us,
                ],
            )
            .map(drop)
        })
    }

    fn unregister_worker(&self, name: &str) -> Result<(), QueueError> {
        let Some(me) = self.registered.remove(name) else {
            return Ok(());
        };
        let sql = self.q(include_str!("../sql/unregister_worker.sql"));
        let w = &me.worker;
        let pid = w.pid as i32;
        self.pool
            .run("unregistering the worker", |c, _| {
                c.execute(&sql, &[&w.name, &w.host, &pid, &me.started_at])
            })
            .map(|_| ())
    }
}

impl Admin for PgQueue {
    /// Cancels the jobs in order, each with its dependents (so a job that
    /// an earlier one's end cancelled is already finished when its turn
    /// comes), in one transaction that locks them all first.
    fn cancel(&self, ids: &[JobId]) -> Result<Cancelled, QueueError> {
        let now = self.now_us();
        let mut want: Vec<i64> = ids.iter().map(|i| i.0 as i64).collect();
        want.sort_unstable();
        want.dedup();
        let select = self.q(include_str!("../sql/lock_jobs.sql"));
        let cancel = self.q(include_str!("../sql/cancel_waiting.sql"));
        let ask = self.q(include_str!("../sql/ask_cancel.sql"));
        let (results, cascade) = self.tx("cancelling jobs", |tx| {
            let mut found: FxHashMap<i64, (i16, i64)> = tx
                .query(&select, &[&want])?
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            let mut cascade = Cascade::default();
            let mut results = Vec::with_capacity(ids.len());
            let mut asked = Vec::new();
            for id in ids {
                let i = id.0 as i64;
                let result = match found.get(&i).copied() {
                    None => CancelResult::NotFound,
                    Some((WAITING | BLOCKED, _)) => {
                        let r = tx.query_one(&cancel, &[&i, &now])?;
                        found.insert(i, (CANCELLED, now));
                        let ends = flow::ended_with_children([(i, CANCELLED, r.get(0), r.get(1))]);
                        let mut moved = Cascade::default();
                        flow::settle(tx, &self.sql.flow, ends, now, &mut moved)?;
                        for c in &moved.cancelled {
                            found.insert(c.0 as i64, (CANCELLED, now));
                        }
                        for c in &moved.unblocked {
                            if let Some(f) = found.get_mut(&(c.0 as i64)) {
                                f.0 = WAITING;
                            }
                        }
                        cascade.unblocked.extend(moved.unblocked);
                        cascade.cancelled.extend(moved.cancelled);
                        CancelResult::Cancelled
                    }
                    Some((RUNNING, _)) => {
                        asked.push(i);
                        CancelResult::Requested
                    }
                    Some((s, run_at)) => CancelResult::AlreadyFinished(state_of(s, run_at, now)),
                };
                results.push(result);
            }
            if !asked.is_empty() {
                tx.execute(&ask, &[&asked])?;
            }
            Ok((results, cascade))
        })?;
        if !cascade.unblocked.is_empty() {
            self.shared.waker.wake();
        }
        Ok(Cancelled { results, cascade })
    }

    fn cancel_pending(&self) -> Result<Vec<JobId>, QueueError> {
        let now = self.now_us();
        let sql = self.q(include_str!("../sql/cancel_pending.sql"));
        let mut ids = self.tx("cancelling queued jobs", |tx| {
            let rows = tx.query(&sql, &[&now])?;
            let mut ids: Vec<JobId> = rows
                .iter()
                .map(|r| JobId(r.get::<_, i64>(0) as u64))
                .collect();
            // Dependents added meanwhile by another transaction follow.
            let ends = flow::ended_with_children(
                rows.iter()
                    .map(|r| (r.get(0), CANCELLED, r.get(1), r.get(2))),
            );
            let mut cascade = Cascade::default();
            flow::settle(tx, &self.sql.flow, ends, now, &mut cascade)?;
            ids.extend(cascade.cancelled);
            Ok(ids)
        })?;
        ids.sort();
        Ok(ids)
    }

    fn retry(&self, id: JobId) -> Result<Option<Cascade>, QueueError> {
        let now = self.now_us();
        let out = self.tx("retrying a job", |tx| {
            flow::retry(tx, &self.sql.flow, id.0 as i64, now)
        })?;
        if out.is_some() {
            self.shared.waker.wake();
        }
        Ok(out)
    }

    fn workflow(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let sql = self.q(include_str!("../sql/workflow.sql"));
        self.ids("reading a workflow", &sql, id)
    }

    fn delete(&self, ids: &[JobId]) -> Result<Vec<Deleted>, QueueError> {
        let now = self.now_us();
        let want: Vec<i64> = ids.iter().filter_map(|i| i64::try_from(i.0).ok()).collect();
        let delete = self.q(include_str!("../sql/delete_jobs.sql"));
        let why = self.q(include_str!("../sql/delete_why.sql"));
        let (gone, left) = self.tx("deleting jobs", |tx| {
            let gone: FxHashSet<i64> = tx
                .query(&delete, &[&want])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let left: FxHashMap<i64, (i16, i64, Option<i64>)> = tx
                .query(&why, &[&want])?
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
                .collect();
            Ok((gone, left))
        })?;
        Ok(ids
            .iter()
            .map(|id| {
                let i = id.0 as i64;
                if gone.contains(&i) {
                    return Deleted::Deleted;
                }
                match left.get(&i) {
                    None => Deleted::NotFound,
                    Some(&(s, run_at, child)) => {
                        let state = stored::state_of(i64::from(s), run_at, now);
                        match child {
                            Some(c) if state.is_terminal() => Deleted::Awaited(JobId(c as u64)),
                            _ => Deleted::NotFinished(state),
                        }
                    }
                }
            })
            .collect())
    }

    fn record_event(&self, e: &NewEvent) -> Result<AdminEvent, QueueError> {
        let now = self.now_us();
        let jobs = stored_event::jobs_json(&e.jobs);
        let detail = e.detail.to_string();
        let sql = self.q(include_str!("../sql/events_add.sql"));
        let row = self.pool.run("recording an action", |c, _| {
            c.query_one(
                &sql,
                &[
                    &now,
                    &e.action,
                    &jobs,
                    &detail,
                    &e.source.via,
                    &e.source.client,
                ],
            )
        })?;
        Ok(AdminEvent::recorded(
            row.get::<_, i64>(0) as u64,
            Timestamp::from_micros(now),
            e,
        ))
    }

    fn events(&self, before: Option<u64>, limit: usize) -> Result<Vec<AdminEvent>, QueueError> {
        if self.version < 8 {
            // A schema read as it is, from before the record: none.
            return Ok(Vec::new());
        }
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = self.q(include_str!("../sql/events_page.sql"));
        let rows = self.pool.run("reading the actions", |c, _| {
            c.query(&sql, &[&before, &limit])
        })?;
        rows.iter()
            .map(|r| {
                stored_event::read(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }
}

impl PgQueue {
    /// The ids a statement about job `id` returns.
    fn ids(&self, what: &str, sql: &str, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let rows = self
            .pool
            .run(what, |c, _| c.query(sql, &[&(id.0 as i64)]))?;
        Ok(rows
            .iter()
            .map(|r| JobId(r.get::<_, i64>(0) as u64))
            .collect())
    }
}

impl Inspect for PgQueue {
    fn finished_per_minute(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<FinishedCount>, QueueError> {
        let sql = self.q(include_str!("../sql/finished_per_minute.sql"));
        let (a, b) = (since.as_micros(), until.as_micros());
        let rows = self.pool.run("counting finished attempts", |c, _| {
            c.query(&sql, &[&a, &b])
        })?;
        Ok(finished_from_rows(rows.iter().map(|r| {
            (
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, i64>(2),
            )
        })))
    }

    fn dependents(&self, id: JobId) -> Result<Vec<JobId>, QueueError> {
        let sql = self.q(include_str!("../sql/dependents.sql"));
        self.ids("reading a job's dependents", &sql, id)
    }

    fn counts_by_task(&self) -> Result<Vec<(String, Counts)>, QueueError> {
        let now = self.now_us();
        // Schema 9 keeps the counts; a schema read as it is, from before,
        // is counted by a scan.
        let sql = if self.version >= 9 {
            self.q(include_str!("../sql/counts_kept_by_task.sql"))
        } else {
            self.q(include_str!("../sql/counts_by_task.sql"))
        };
        let rows = self
            .pool
            .run("counting jobs", |c, _| c.query(&sql, &[&now]))?;
        Ok(stored::counts_by_task(rows.iter().map(|r| {
            (
                r.get::<_, String>(0),
                i64::from(r.get::<_, i16>(1)),
                r.get::<_, bool>(2),
                r.get::<_, bool>(3),
                r.get::<_, i64>(4),
            )
        })))
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
        let state = filter.state.map(JobState::as_str);
        let after = filter.after.map_or(0, |a| a.0) as i64;
        let limit: Option<i64> = (filter.limit > 0).then_some(filter.limit as i64);
        let flows = self.version >= 4;
        let ticks = self.version >= 6;
        let jobs_sql = if ticks {
            self.q(include_str!("../sql/list.sql"))
        } else if flows {
            self.q(include_str!("../sql/list_v5.sql"))
        } else {
            self.q(include_str!("../sql/list_v3.sql"))
        };
        let attempts_sql = self.q(include_str!("../sql/attempts.sql"));
        let task = filter.task.as_deref();
        let key = filter.key.as_deref();
        // A flow key is kept as its name and value.
        let (key_name, key_value) = match key {
            Some(k) => {
                let (n, v) = k.split_once(':').unwrap_or((k, ""));
                (Some(n), Some(v))
            }
            None => (None, None),
        };
        let text = filter.text.as_deref().map(str::to_ascii_lowercase);
        let since = filter.since.map(Timestamp::as_micros);
        let until = filter.until.map(Timestamp::as_micros);
        let params: [&(dyn ToSql + Sync); 11] = [
            &after, &state, &now, &task, &limit, &key, &key_name, &key_value, &text, &since, &until,
        ];
        let attempts_of_sql = self.q(include_str!("../sql/attempts_of.sql"));
        let (rows, attempts, mut after) = self.tx("listing jobs", |tx| {
            // Planned with its values: the pool's connections keep one
            // generic plan per statement (right for claims), which for a
            // list's optional filters walks the whole table by id (2.7 s
            // for 20 dead jobs of 10^7) where the state or task index
            // answers at once.
            tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")?;
            let rows = tx.query(&jobs_sql, &params)?;
            let (attempts, after) = match (rows.first(), rows.last()) {
                // A filtered page's ids may lie far apart: its jobs'
                // attempts and parents are then read by id.
                (Some(a), Some(b))
                    if b.get::<_, i64>(0) - a.get::<_, i64>(0) >= 2 * rows.len() as i64 =>
                {
                    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
                    let after = if flows {
                        flow::after_of(tx, &self.sql.flow, &ids)?
                    } else {
                        FxHashMap::default()
                    };
                    (tx.query(&attempts_of_sql, &[&ids])?, after)
                }
                (Some(a), Some(b)) => {
                    let (a, b) = (a.get::<_, i64>(0), b.get::<_, i64>(0));
                    let after = if flows {
                        flow::after_between(tx, &self.sql.flow, a, b)?
                    } else {
                        FxHashMap::default()
                    };
                    (tx.query(&attempts_sql, &[&a, &b])?, after)
                }
                _ => (Vec::new(), FxHashMap::default()),
            };
            Ok((rows, attempts, after))
        })?;
        let mut jobs: Vec<JobView> = rows
            .iter()
            .map(|r| {
                let state: i16 = r.get(3);
                let run_at: i64 = r.get(4);
                let output: Option<&str> = r.get(6);
                let started: bool = r.get(7);
                let id: i64 = r.get(0);
                let (name, run_if, cancelled_by) = if flows {
                    let cause: Option<i64> = r.get(10);
                    (
                        r.get(8),
                        RunIf::from_code(i64::from(r.get::<_, i16>(9))),
                        cause.map(|c| Cause {
                            job: JobId(c as u64),
                            name: r.get(11),
                        }),
                    )
                } else {
                    (None, RunIf::Success, None)
                };
                let view_state = stored::view_state(i64::from(state), run_at, started, now);
                // A schema read as it is, from before schedules, lists no
                // settings or keys.
                let (settings, keys) = if ticks {
                    view_options(r)
                } else {
                    (None, JobKeys::default())
                };
                JobView {
                    settings,
                    run_at: matches!(view_state, JobState::Queued | JobState::Scheduled)
                        .then(|| Timestamp::from_micros(run_at)),
                    keys,
                    schedule: if ticks {
                        tick_of(r.get(12), r.get(13))
                    } else {
                        None
                    },
                    id: JobId(id as u64),
                    task: r.get(1),
                    params: JobParams::from_trusted_json(r.get::<_, &str>(2)),
                    state: view_state,
                    attempts: Vec::new(),
                    output: output
                        .and_then(|o| Output::from_json(o).ok())
                        .unwrap_or_default(),
                    enqueued_at: Timestamp::from_micros(r.get(5)),
                    name,
                    after: after.remove(&id).unwrap_or_default(),
                    run_if,
                    cancelled_by: cancelled_by.map(Box::new),
                }
            })
            .collect();
        stored::attach_attempts(
            &mut jobs,
            attempts.iter().map(|r| stored::StoredAttempt {
                job: r.get::<_, i64>(0) as u64,
                n: r.get::<_, i32>(1) as u32,
                outcome: r.get(2),
                started_at: r.get(3),
                duration_us: r.get(4),
                queued_us: r.get(5),
                error: r.get(6),
                permanent: r.get(7),
                detail: r.get(8),
            }),
        );
        Ok(jobs)
    }

    fn live_workers(&self) -> Result<Vec<LiveWorker>, QueueError> {
        if self.version < 2 {
            // A schema no worker of this build has used: none registered.
            return Ok(Vec::new());
        }
        let now = self.now_us();
        let rows = self.pool.run("reading the live workers", |c, _| {
            c.query(&self.sql.live_workers, &[&now, &None::<&str>])
        })?;
        Ok(rows.iter().map(live_worker).collect())
    }
}

/// Whether some job of the batch has a name or parents: the batch then
/// goes in the linked way ([`flow::insert`]).
fn linked(jobs: &[NewJob]) -> bool {
    jobs.iter().any(NewJob::is_linked)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn live_worker(r: &Row) -> LiveWorker {
    LiveWorker {
        worker: WorkerInfo {
            name: r.get(0),
            host: r.get(1),
            pid: r.get::<_, i32>(2).max(0) as u32,
            lease: Duration::from_micros(r.get::<_, i64>(5).max(0) as u64),
        },
        started_at: Timestamp::from_micros(r.get(3)),
        last_heartbeat: Timestamp::from_micros(r.get(4)),
        leases: r.get::<_, i64>(6).max(0) as u64,
    }
}
