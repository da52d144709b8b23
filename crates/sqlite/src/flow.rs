//! Dependencies in the SQLite queue: adding a batch of jobs that have
//! names or parents, moving on the dependents of a job that ended, giving
//! them back their `blocked` state when that job is retried, and reading a
//! job's parents (its edges and their outputs).
//!
//! # Rows
//!
//! Schema 4 (`migrations/0004_workflows.sql`): a job's row has its `name`,
//! `run_if`, `pending` (its parents that have not yet ended as it needs:
//! it is blocked while that is above zero), `cause` (the job whose end
//! cancelled it) and the number of its edges each way (`parents`,
//! `children`: a plain job has none, and claiming or completing it reads
//! nothing more); `runyard_edges` has one row per edge, in the child's
//! order (`pos`).
//!
//! # Protocol
//!
//! The rules are the memory queue's (`runyard_queue::MemoryQueue`), step
//! for step, so that the two agree job for job and in the order of a
//! [`Cascade`]'s lists:
//! - a parent counts as met once it succeeded (or, for a `run_if =
//!   always` child, once it ended in any way); one that ended dead or
//!   cancelled cancels a `run_if = success` child, which names the parent's
//!   own cause if it has one (the root of a chain), the parent otherwise;
//! - every transition of a job into a terminal state calls [`settle`] in
//!   the same transaction: a blocked child whose last pending parent ended
//!   is waiting (queued, or scheduled for its own later run-at), one that a
//!   failed parent cancels is cancelled and its own children follow;
//! - a retry ([`retry`]) gives back their blocked state to the jobs whose
//!   cause is the retried job, transitively, and counts their pending
//!   parents afresh, as it does for the jobs after them that still wait.
//!
//! Every function here runs inside the write transaction of the operation
//! that calls it. A parent's end and its dependents' release or
//! cancellation commit together or not at all, so no crash can leave a
//! child blocked on a parent that has ended, nor released by an end that
//! was lost.

use std::collections::BTreeMap;

use runyard_core::{JobId, Output, Parent, Parents, RunIf, Timestamp};
use runyard_queue::stored::{BLOCKED, CANCELLED, DEAD, SUCCEEDED, WAITING};
use runyard_queue::{Cascade, Enqueued, NewJob, QueueError, QueueErrorKind};
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Statement, Transaction};

use crate::counts::Tally;
use crate::sql::SQL;

type Tx<'a> = Transaction<'a>;

/// What a parent's state means for a job after it.
enum Seen {
    /// Ended as the child needs.
    Met,
    /// Not ended yet.
    Pending,
    /// Ended dead or cancelled, and the child runs only on success: it is
    /// cancelled, naming this job.
    Fails(i64),
}

/// What parent `id` in state `state`, cancelled by `cause`, means for a
/// child with `run_if`.
fn seen(id: i64, state: i64, cause: Option<i64>, run_if: RunIf) -> Seen {
    match state {
        SUCCEEDED => Seen::Met,
        DEAD | CANCELLED if run_if == RunIf::Always => Seen::Met,
        DEAD | CANCELLED => Seen::Fails(cause.unwrap_or(id)),
        _ => Seen::Pending,
    }
}

/// Whether a batch must go the linked way ([`insert_linked`]): some job
/// has a name or parents. Others keep the plain path, one statement a job.
pub(crate) fn is_linked(jobs: &[NewJob]) -> bool {
    jobs.iter().any(NewJob::is_linked)
}

fn invalid(msg: String) -> QueueError {
    QueueError::new(QueueErrorKind::InvalidInput, msg)
}

/// Adds a batch in which some job has a name or parents, at time `now`,
/// in `tx`: each [`Parent::Batch`] is the job given to (or, for a duplicate
/// by idempotency key, found for) that entry; each [`Parent::Job`] must be
/// in the queue. Each new job starts blocked, cancelled (a parent already
/// failed it) or waiting. An `Err` inside means nothing may be committed.
pub(crate) fn insert_linked(
    tx: &Tx<'_>,
    jobs: &[NewJob],
    now: i64,
) -> rusqlite::Result<Result<Vec<Enqueued>, QueueError>> {
    let mut insert = tx.prepare_cached(&SQL.insert_linked_job)?;
    let mut find = tx.prepare_cached(&SQL.find_key)?;
    let mut edge = tx.prepare_cached(&SQL.insert_edge)?;
    let mut add_child = tx.prepare_cached(&SQL.add_child)?;
    let mut state_of = tx.prepare_cached(&SQL.flow_state)?;
    // A parent given by id is a job that was in the queue before the batch.
    let before: i64 = if jobs
        .iter()
        .any(|j| j.after.iter().any(|a| matches!(a.parent, Parent::Job(_))))
    {
        tx.query_row(&SQL.last_id, [], |r| r.get(0))?
    } else {
        0
    };
    let mut out: Vec<Enqueued> = Vec::with_capacity(jobs.len());
    // The first state and cause of each job this batch added (None for a
    // duplicate, whose row is read).
    let mut added: Vec<Option<(i64, Option<i64>)>> = Vec::with_capacity(jobs.len());
    let mut tags = crate::limits::Tagger::new();
    let mut unique = crate::limits::UniqueKeys::read(tx, jobs, now)?;
    let mut tally = Tally::default();
    let mut first_id = crate::ids::id_floor(tx)?;
    for (i, j) in jobs.iter().enumerate() {
        if let Some(existing) = unique.existing(tx, &mut find, j, now)? {
            added.push(None);
            out.push(existing);
            continue;
        }
        let mut parents = Vec::with_capacity(j.after.len());
        let mut pending = 0i64;
        let mut fails = None;
        for a in &j.after {
            let (p, known) = match a.parent {
                Parent::Batch(b) if b < i => (out[b].id().0 as i64, added[b]),
                Parent::Batch(b) => {
                    return Ok(Err(invalid(format!(
                        "job {} of the batch is after job {} of it, which does not come before it; nothing was enqueued",
                        i + 1,
                        b + 1
                    ))))
                }
                Parent::Job(id) => match i64::try_from(id.0) {
                    Ok(id) if id <= before => (id, None),
                    _ => (-1, None),
                },
            };
            let row = match known {
                Some(row) => Some(row),
                None => state_of
                    .query_row([p], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            };
            let Some((state, cause)) = row else {
                let id = match a.parent {
                    Parent::Job(id) => id,
                    Parent::Batch(_) => JobId(p as u64),
                };
                return Ok(Err(invalid(format!(
                    "a job of task `{}` is after job {id}, which is not in the queue; nothing was enqueued",
                    j.task
                ))));
            };
            match seen(p, state, cause, j.run_if) {
                Seen::Met => {}
                Seen::Pending => pending += 1,
                Seen::Fails(c) => fails = fails.or(Some(c)),
            }
            parents.push(p);
        }
        let (state, cause) = match fails {
            Some(c) => (CANCELLED, Some(c)),
            None if pending > 0 => (BLOCKED, None),
            None => (WAITING, None),
        };
        // A job with neither name nor parents keeps no run_if (it has
        // nothing to run after), as in the memory queue.
        let run_if = if j.is_linked() {
            j.run_if
        } else {
            RunIf::Success
        };
        let run_at = j.run_at.map_or(now, Timestamp::as_micros);
        let tag = if state == WAITING {
            tags.tag(tx, j, run_at, now)?
        } else {
            None
        };
        crate::limits::bind_job(&mut insert, j, run_at, now, tag, 18)?;
        insert.raw_bind_parameter(12, state)?;
        insert.raw_bind_parameter(13, j.name.as_deref())?;
        insert.raw_bind_parameter(14, run_if.code())?;
        insert.raw_bind_parameter(15, pending)?;
        insert.raw_bind_parameter(16, cause)?;
        insert.raw_bind_parameter(17, j.after.len() as i64)?;
        insert.raw_bind_parameter(29, first_id)?;
        let n = insert.raw_execute()?;
        if n == 1 {
            first_id = None;
            tags.taken(j, tag);
            let id = tx.last_insert_rowid();
            unique.added(j, id, state, tag);
            tally.moved(j.task.as_str(), None, state);
            for (pos, (a, p)) in j.after.iter().zip(parents).enumerate() {
                edge.execute(params![id, pos as i64, p, a.key, a.many])?;
                add_child.execute(params![p, 1])?;
            }
            added.push(Some((state, cause)));
            out.push(Enqueued::New(JobId(id as u64)));
        } else {
            // A duplicate: the job already there stays as it is, and the
            // edges to this entry point at it.
            let id: i64 = find.query_row([j.idempotency_key.as_deref()], |r| r.get(0))?;
            added.push(None);
            out.push(Enqueued::Duplicate(JobId(id as u64)));
        }
    }
    tags.finish(tx)?;
    tally.write(tx)?;
    Ok(Ok(out))
}

/// A job after another, as [`settle`] and [`reblock`] read it.
struct Child {
    id: i64,
    /// Its edges to the parent.
    edges: i64,
    state: i64,
    run_if: RunIf,
    cause: Option<i64>,
    pending: i64,
}

fn children(tx: &Tx<'_>, parent: i64) -> rusqlite::Result<Vec<Child>> {
    let mut st = tx.prepare_cached(&SQL.children)?;
    children_by(&mut st, parent)
}

/// The children of `parent`, by `st` (children.sql).
fn children_by(st: &mut Statement<'_>, parent: i64) -> rusqlite::Result<Vec<Child>> {
    let rows = st.query_map([parent], |r| {
        Ok(Child {
            id: r.get(0)?,
            edges: r.get(1)?,
            state: r.get(2)?,
            run_if: RunIf::from_code(r.get(3)?),
            cause: r.get(4)?,
            pending: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Moves on the dependents of jobs that have just ended, in the
/// transaction that ended them. Made once for an operation's whole batch
/// and kept: its statements stay prepared between jobs (a statement
/// handed back to rusqlite's cache has its bindings cleared, and SQLite
/// prepares again one whose plan read a bound value).
pub(crate) struct Settler<'t> {
    state_of: CachedStatement<'t>,
    children: CachedStatement<'t>,
    left: CachedStatement<'t>,
    release: CachedStatement<'t>,
    cancel: CachedStatement<'t>,
}

impl<'t> Settler<'t> {
    fn new(tx: &'t Tx<'_>) -> rusqlite::Result<Settler<'t>> {
        Ok(Settler {
            state_of: tx.prepare_cached(&SQL.flow_state)?,
            children: tx.prepare_cached(&SQL.children)?,
            left: tx.prepare_cached(&SQL.pending_left)?,
            release: tx.prepare_cached(&SQL.release_job)?,
            cancel: tx.prepare_cached(&SQL.cancel_blocked)?,
        })
    }

    /// The settler in `slot`, made there at first use.
    pub(crate) fn get<'s>(
        slot: &'s mut Option<Settler<'t>>,
        tx: &'t Tx<'_>,
    ) -> rusqlite::Result<&'s mut Settler<'t>> {
        if slot.is_none() {
            *slot = Some(Settler::new(tx)?);
        }
        Ok(slot.as_mut().expect("made above"))
    }

    /// Moves on the dependents of job `id`, which has just ended: each
    /// blocked child counts it as met (and is waiting from `now` once none
    /// is pending) or is cancelled by it, with its own children in turn
    /// (see the module's protocol).
    pub(crate) fn settle(
        &mut self,
        id: i64,
        now: i64,
        cascade: &mut Cascade,
    ) -> rusqlite::Result<()> {
        let mut ended = vec![id];
        while let Some(p) = ended.pop() {
            let (state, cause): (i64, Option<i64>) = self
                .state_of
                .query_row([p], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for c in children_by(&mut self.children, p)? {
                if c.state != BLOCKED {
                    continue;
                }
                match seen(p, state, cause, c.run_if) {
                    Seen::Pending => {}
                    Seen::Met if c.pending > c.edges => {
                        self.left.execute(params![c.id, c.pending - c.edges])?;
                    }
                    Seen::Met => {
                        self.release.execute(params![c.id, now])?;
                        cascade.unblocked.push(JobId(c.id as u64));
                    }
                    Seen::Fails(root) => {
                        self.cancel.execute(params![c.id, root, now])?;
                        cascade.cancelled.push(JobId(c.id as u64));
                        ended.push(c.id);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Job `id`'s parents not yet ended as it needs (with `run_if`), and the
/// cause that cancels it if a parent failed it.
fn count_parents(tx: &Tx<'_>, id: i64, run_if: RunIf) -> rusqlite::Result<(i64, Option<i64>)> {
    let mut st = tx.prepare_cached(&SQL.parent_states)?;
    let mut rows = st.query([id])?;
    let (mut pending, mut fails) = (0, None);
    while let Some(r) = rows.next()? {
        match seen(r.get(0)?, r.get(1)?, r.get(2)?, run_if) {
            Seen::Met => {}
            Seen::Pending => pending += 1,
            Seen::Fails(c) => fails = fails.or(Some(c)),
        }
    }
    Ok((pending, fails))
}

/// Retries dead or cancelled job `id` at `now`: waiting again, or blocked
/// while some parent has not ended; then [`reblock`]. `None` when it is not
/// dead or cancelled, or a parent it needs has failed (it would be
/// cancelled again at once).
pub(crate) fn retry(tx: &Tx<'_>, id: i64, now: i64) -> rusqlite::Result<Option<Cascade>> {
    let row: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached(&SQL.retry_row)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((state, run_if, parents, kids)) = row else {
        return Ok(None);
    };
    if state != DEAD && state != CANCELLED {
        return Ok(None);
    }
    let (pending, fails) = if parents > 0 {
        count_parents(tx, id, RunIf::from_code(run_if))?
    } else {
        (0, None)
    };
    if fails.is_some() {
        return Ok(None);
    }
    let to = if pending > 0 { BLOCKED } else { WAITING };
    tx.prepare_cached(&SQL.retry)?
        .execute(params![now, id, to, pending])?;
    let mut cascade = Cascade::default();
    if kids > 0 {
        reblock(tx, id, now, &mut cascade)?;
    }
    Ok(Some(cascade))
}

/// After job `id` was retried: the jobs its end cancelled (transitively,
/// those naming it as their cause) are blocked again, their pending
/// parents counted afresh, and listed in `reblocked` (and in `unblocked`
/// when none is pending). One that another failed parent still cancels
/// stays cancelled, naming that parent's root cause, and is listed
/// nowhere. Then every job after `id` or after one blocked again that
/// waits (a `run_if = always` job released and not yet claimed, or one
/// still blocked) counts its pending parents afresh; one released already
/// is blocked again and listed in `reblocked` too.
fn reblock(tx: &Tx<'_>, id: i64, now: i64, cascade: &mut Cascade) -> rusqlite::Result<()> {
    let mut found: BTreeMap<i64, RunIf> = BTreeMap::new();
    let mut todo = vec![id];
    while let Some(p) = todo.pop() {
        for c in children(tx, p)? {
            if c.state == CANCELLED && c.cause == Some(id) && found.insert(c.id, c.run_if).is_none()
            {
                todo.push(c.id);
            }
        }
    }
    // Ids follow insertion and a parent is inserted before its children:
    // in id order, each job is counted after its parents.
    let mut back = tx.prepare_cached(&SQL.reblock)?;
    let mut set_cause = tx.prepare_cached(&SQL.set_cause)?;
    let mut again = vec![id];
    for (c, run_if) in found {
        match count_parents(tx, c, run_if)? {
            (_, Some(cause)) => {
                set_cause.execute(params![c, cause])?;
            }
            (pending, None) => {
                back.execute(params![c, pending, now])?;
                cascade.reblocked.push(JobId(c as u64));
                again.push(c);
                if pending == 0 {
                    cascade.unblocked.push(JobId(c as u64));
                }
            }
        }
    }
    let mut recount = tx.prepare_cached(&SQL.recount)?;
    for p in again {
        for c in children(tx, p)? {
            if c.state == WAITING || c.state == BLOCKED {
                let (pending, _) = count_parents(tx, c.id, c.run_if)?;
                recount.execute(params![c.id, pending])?;
                if c.state == WAITING && pending > 0 {
                    cascade.reblocked.push(JobId(c.id as u64));
                }
            }
        }
    }
    Ok(())
}

/// The parents object of job `id` (see [`runyard_core::Parents`]), from
/// its edges in order and its parents' stored outputs, by `st`
/// (parent_outputs.sql, kept prepared for a claim's whole batch).
pub(crate) fn parents_of(st: &mut Statement<'_>, id: i64) -> rusqlite::Result<Output> {
    let mut rows = st.query([id])?;
    let mut p = Parents::new();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let output: Option<String> = r.get(2)?;
        let output = output
            .and_then(|o| Output::from_json(&o).ok())
            .unwrap_or_default();
        p.push(&key, r.get(1)?, &output);
    }
    Ok(p.finish())
}

/// Every job linked to `id` by edges, either way, by id.
pub(crate) fn workflow(conn: &Connection, id: i64) -> rusqlite::Result<Vec<JobId>> {
    let mut st = conn.prepare_cached(&SQL.workflow)?;
    let rows = st.query_map([id], |r| Ok(JobId(r.get::<_, i64>(0)? as u64)))?;
    rows.collect()
}

/// The jobs after `id`, by id.
pub(crate) fn dependents(conn: &Connection, id: i64) -> rusqlite::Result<Vec<JobId>> {
    let mut st = conn.prepare_cached(&SQL.dependents)?;
    let rows = st.query_map([id], |r| Ok(JobId(r.get::<_, i64>(0)? as u64)))?;
    rows.collect()
}

/// The edges of the jobs with ids from `first` to `last`: (child, parent),
/// by child and edge order.
pub(crate) fn edges_between(
    conn: &Connection,
    first: i64,
    last: i64,
) -> rusqlite::Result<Vec<(u64, JobId)>> {
    let mut st = conn.prepare_cached(&SQL.edges_between)?;
    let rows = st.query_map([first, last], edge)?;
    rows.collect()
}

/// The edges of the jobs whose ids are in the JSON array `ids`, as
/// [`edges_between`] gives them.
pub(crate) fn edges_of(conn: &Connection, ids: &str) -> rusqlite::Result<Vec<(u64, JobId)>> {
    let mut st = conn.prepare_cached(&SQL.edges_of)?;
    let rows = st.query_map([ids], edge)?;
    rows.collect()
}

fn edge(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, JobId)> {
    Ok((
        r.get::<_, i64>(0)? as u64,
        JobId(r.get::<_, i64>(1)? as u64),
    ))
}
