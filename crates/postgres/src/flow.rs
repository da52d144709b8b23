//! Workflows in the PostgreSQL queue: adding jobs that are after others,
//! moving dependents on when a job ends, giving a retried job's dependents
//! their blocked state back, and reading parents' outputs and edges.
//!
//! One concept: the dependencies of the PostgreSQL queue. The memory queue
//! (`runyard_queue::memory`, its `flow.rs`) is the reference; this is the
//! same, kept by many workers on many machines.
//!
//! # The rows
//!
//! A job with parents has an `edges` row per parent (child, parent, key,
//! many, position). While `pending`, the number of its parents that have
//! not yet ended as it needs, is above zero it is blocked. `children`
//! says that some edge names the job as its parent; `cause` is the job
//! whose end cancelled it (for a chain, the root: the job that ended first).
//! Ids only grow and a parent exists before its child, so a parent's id
//! is always below its children's: every statement locks rows in id order,
//! which keeps two transactions from waiting on each other in a circle
//! (one that does anyway is a deadlock the server breaks, and
//! [`crate::conn::Pool::run`] runs it again).
//!
//! # Why no release is lost
//!
//! All of it runs at READ COMMITTED: each statement sees what committed
//! before it started, and an `UPDATE` that waited for a row's lock
//! re-reads that row as it now is.
//!
//! - *Adding a child while a parent ends.* The insert first sets the
//!   parents' `children` flag (`lock_parents.sql`), which locks their rows
//!   until it commits, and reads their states in the same statement. A
//!   transaction ending that parent updates the same row. If the parent
//!   ended first, the insert waits for that commit and reads the ended
//!   state: the child counts the parent as met (or is cancelled). If the
//!   insert came first, the ending waits for it, then re-reads the row and
//!   finds `children` set, and settles in a later statement, which sees the
//!   committed edges. A completion that finds no `children` flag ends the
//!   job in one statement without reading the edges; one that finds it
//!   leaves the job to the transaction that settles (`complete.sql`).
//! - *Two parents of one child ending at once.* Each settling transaction
//!   updates the child with `pending = pending - n` under its row lock
//!   (`settle.sql`); the second waits for the first, re-reads the row and
//!   subtracts from what the first left, so exactly one of them sees zero
//!   and releases the child, and one that finds the child no longer blocked
//!   (cancelled by the other) leaves it.
//! - *A cascade.* Each round of settling is a statement of its own, after
//!   the rows of the previous round were updated (locked): an edge added
//!   under one of them by a transaction that held its lock committed before
//!   that, so the next round sees it.
//! - *A retry.* The retried job and the jobs it gives back their blocked
//!   state are locked first; their parents are read `FOR SHARE`
//!   (`share_parents.sql`), so a parent ending meanwhile either ended before
//!   (its state is read) or waits and then settles the rows as this
//!   transaction left them.
//!
//! Jobs released this way are announced on the queue's channel inside the
//! same transaction (delivered when it commits), as an enqueue is.

use postgres::GenericClient;
use runyard_core::{JobId, Output, Parent, Parents, RunIf, Timestamp};
use runyard_queue::stored;
use runyard_queue::{Cascade, Enqueued, NewJob, QueueError, QueueErrorKind};
use rustc_hash::FxHashMap;

use crate::conn::PgOptions;

const WAITING: i16 = stored::WAITING as i16;
const BLOCKED: i16 = stored::BLOCKED as i16;
const SUCCEEDED: i16 = stored::SUCCEEDED as i16;
const DEAD: i16 = stored::DEAD as i16;
const CANCELLED: i16 = stored::CANCELLED as i16;

/// The statements of workflows, rendered for the queue's schema.
pub(crate) struct FlowSql {
    find_keys: String,
    next_ids: String,
    lock_parents: String,
    share_parents: String,
    insert_linked: String,
    insert_edges: String,
    settle: String,
    reblock: String,
    recount: String,
    retry: String,
    lock_job: String,
    children_of: String,
    lock_waiting: String,
    edges_of: String,
    edges_between: String,
    parents: String,
    keyless_tags: String,
    gave_tags: String,
    frontier: String,
    tag_keyed: String,
    set_tags: String,
    copy_linked: String,
    copy_unique: String,
    notify: String,
    channel: String,
}

impl FlowSql {
    pub(crate) fn new(o: &PgOptions) -> FlowSql {
        FlowSql {
            find_keys: o.sql(include_str!("../sql/find_keys.sql")),
            next_ids: o.sql(include_str!("../sql/next_ids.sql")),
            lock_parents: o.sql(include_str!("../sql/lock_parents.sql")),
            share_parents: o.sql(include_str!("../sql/share_parents.sql")),
            insert_linked: o.sql(include_str!("../sql/insert_linked.sql")),
            insert_edges: o.sql(include_str!("../sql/insert_edges.sql")),
            settle: o.sql(include_str!("../sql/settle.sql")),
            reblock: o.sql(include_str!("../sql/reblock.sql")),
            recount: o.sql(include_str!("../sql/recount.sql")),
            retry: o.sql(include_str!("../sql/retry.sql")),
            lock_job: o.sql(include_str!("../sql/lock_job.sql")),
            children_of: o.sql(include_str!("../sql/children_of.sql")),
            lock_waiting: o.sql(include_str!("../sql/lock_waiting.sql")),
            edges_of: o.sql(include_str!("../sql/edges_of.sql")),
            edges_between: o.sql(include_str!("../sql/edges_between.sql")),
            parents: o.sql(include_str!("../sql/parents.sql")),
            keyless_tags: o.sql(include_str!("../sql/keyless_tags.sql")),
            gave_tags: o.sql(include_str!("../sql/gave_tags.sql")),
            frontier: o.sql(include_str!("../sql/frontier.sql")),
            tag_keyed: o.sql(include_str!("../sql/tag_keyed.sql")),
            set_tags: o.sql(include_str!("../sql/set_tags.sql")),
            copy_linked: o.sql(include_str!("../sql/copy_linked.sql")),
            copy_unique: o.sql(include_str!("../sql/copy_unique.sql")),
            notify: include_str!("../sql/notify.sql").to_string(),
            channel: o.channel(),
        }
    }
}

/// A job that has just ended, whose children are to be moved on: its id,
/// state code, and the job a failure of it names as the cause.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    pub(crate) id: i64,
    pub(crate) state: i16,
    pub(crate) cause: i64,
}

fn is_terminal(state: i16) -> bool {
    matches!(state, SUCCEEDED | DEAD | CANCELLED)
}

/// What a parent's state means for a child that is after it.
enum Seen {
    Met,
    Pending,
    /// Ended dead or cancelled, and the child runs only on success: it is
    /// cancelled, naming this job.
    Fails(i64),
}

fn seen(state: i16, cause: i64, run_if: RunIf) -> Seen {
    match state {
        SUCCEEDED => Seen::Met,
        DEAD | CANCELLED if run_if == RunIf::Always => Seen::Met,
        DEAD | CANCELLED => Seen::Fails(cause),
        _ => Seen::Pending,
    }
}

fn id_of(i: i64) -> JobId {
    JobId(i as u64)
}

/// Wakes every listening worker when the transaction commits.
fn notify(c: &mut impl GenericClient, sql: &FlowSql) -> Result<(), postgres::Error> {
    c.execute(&sql.notify, &[&sql.channel]).map(|_| ())
}

/// Moves on the dependents of the jobs in `ended` (those without children
/// may be left out), round by round down the graph, adding what moved to
/// `cascade`; announces released jobs. Inside the transaction that ended
/// them.
pub(crate) fn settle(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    mut ended: Vec<Ended>,
    now: i64,
    cascade: &mut Cascade,
) -> Result<(), postgres::Error> {
    let mut released = false;
    while !ended.is_empty() {
        ended.sort_by_key(|e| e.id);
        let id: Vec<i64> = ended.iter().map(|e| e.id).collect();
        let state: Vec<i16> = ended.iter().map(|e| e.state).collect();
        let cause: Vec<i64> = ended.iter().map(|e| e.cause).collect();
        let rows = c.query(&sql.settle, &[&id, &state, &cause, &now])?;
        let mut next = Vec::new();
        let mut moved: Vec<(i64, i16)> = rows
            .iter()
            .map(|r| {
                let (id, state): (i64, i16) = (r.get(0), r.get(1));
                if state == CANCELLED && r.get::<_, bool>(3) {
                    let cause: Option<i64> = r.get(2);
                    next.push(Ended {
                        id,
                        state,
                        cause: cause.unwrap_or(id),
                    });
                }
                (id, state)
            })
            .collect();
        moved.sort_unstable();
        for (id, state) in moved {
            match state {
                WAITING => {
                    released = true;
                    cascade.unblocked.push(id_of(id));
                }
                CANCELLED => cascade.cancelled.push(id_of(id)),
                _ => {}
            }
        }
        ended = next;
    }
    if released {
        notify(c, sql)?;
    }
    Ok(())
}

/// The jobs of `rows` (id, state, cause, children, as the statements that
/// end jobs return them) whose ends move dependents on.
pub(crate) fn ended_with_children(
    rows: impl IntoIterator<Item = (i64, i16, i64, bool)>,
) -> Vec<Ended> {
    rows.into_iter()
        .filter(|&(_, state, _, children)| children && is_terminal(state))
        .map(|(id, state, cause, _)| Ended { id, state, cause })
        .collect()
}

/// Where a new job's parent is.
#[derive(Clone, Copy)]
enum Resolved {
    /// A job already in the queue, by id.
    Existing(i64),
    /// A job added by this batch, by index.
    New(usize),
}

/// Adds a batch in which some job has a name or parents, in the caller's
/// transaction. `Ok(Err(..))` is bad input (nothing to commit);
/// `Ok(Ok(None))` means that an idempotency key was taken by another
/// transaction at the same moment: roll back and try again.
pub(crate) fn insert(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    jobs: &[NewJob],
    now: i64,
) -> Result<Result<Option<Vec<Enqueued>>, QueueError>, postgres::Error> {
    insert_resolved(c, sql, jobs, &vec![None; jobs.len()], now)
}

/// [`insert`], with some jobs already resolved to an existing job
/// (`Some(Ok(id))`) or to an earlier job of the batch (`Some(Err(i))`):
/// those are not added (unique keys, see `limits.rs`). The new jobs are
/// written with their flow columns, and those due with a fairness key
/// with their keys' tags.
pub(crate) fn insert_resolved(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    jobs: &[NewJob],
    resolved: &[Option<Result<i64, usize>>],
    now: i64,
) -> Result<Result<Option<Vec<Enqueued>>, QueueError>, postgres::Error> {
    let n = jobs.len();
    // Which jobs are new, and which are duplicates (of what).
    let keys: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.idempotency_key.as_deref())
        .collect();
    let mut taken: FxHashMap<String, i64> = FxHashMap::default();
    if !keys.is_empty() {
        for r in c.query(&sql.find_keys, &[&keys])? {
            taken.insert(r.get(0), r.get(1));
        }
    }
    // Per job: Ok(()) new, Err(where the existing job is).
    let mut slot: Vec<Result<(), Resolved>> = Vec::with_capacity(n);
    let mut first: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, j) in jobs.iter().enumerate() {
        slot.push(match j.idempotency_key.as_deref() {
            _ if resolved[i].is_some() => match resolved[i] {
                Some(Ok(id)) => Err(Resolved::Existing(id)),
                Some(Err(b)) => match slot[b] {
                    Ok(()) => Err(Resolved::New(b)),
                    Err(r) => Err(r),
                },
                None => Ok(()),
            },
            None => Ok(()),
            Some(k) => match (taken.get(k), first.get(k)) {
                (Some(&id), _) => Err(Resolved::Existing(id)),
                (None, Some(&b)) => Err(Resolved::New(b)),
                (None, None) => {
                    first.insert(k, i);
                    Ok(())
                }
            },
        });
    }
    // Each new job's parents.
    let mut parents: Vec<Vec<Resolved>> = vec![Vec::new(); n];
    let mut existing: Vec<i64> = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        if slot[i].is_err() {
            continue;
        }
        for a in &j.after {
            let r = match a.parent {
                Parent::Batch(b) if b >= i => {
                    return Ok(Err(QueueError::new(
                        QueueErrorKind::InvalidInput,
                        format!(
                            "job {} of the batch is after job {} of it, which does not come \
                             before it; nothing was enqueued",
                            i + 1,
                            b + 1
                        ),
                    )))
                }
                Parent::Batch(b) => match slot[b] {
                    Ok(()) => Resolved::New(b),
                    Err(r) => r,
                },
                Parent::Job(id) => Resolved::Existing(id.0 as i64),
            };
            if let Resolved::Existing(id) = r {
                existing.push(id);
            }
            parents[i].push(r);
        }
    }
    existing.sort_unstable();
    existing.dedup();
    let mut known: FxHashMap<i64, (i16, i64)> = FxHashMap::default();
    if !existing.is_empty() {
        for r in c.query(&sql.lock_parents, &[&existing])? {
            known.insert(r.get(0), (r.get(1), r.get(2)));
        }
    }
    if let Some(missing) = existing.iter().find(|id| !known.contains_key(id)) {
        let task = jobs
            .iter()
            .zip(&parents)
            .find(|(_, ps)| {
                ps.iter()
                    .any(|p| matches!(p, Resolved::Existing(id) if id == missing))
            })
            .map_or("?", |(j, _)| j.task.as_str());
        return Ok(Err(QueueError::new(
            QueueErrorKind::InvalidInput,
            format!(
                "a job of task `{task}` is after job {missing}, which is not in the queue; \
                 nothing was enqueued"
            ),
        )));
    }
    let fresh = slot.iter().filter(|s| s.is_ok()).count();
    let drawn: Vec<i64> = c
        .query(&sql.next_ids, &[&(fresh as i64)])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut id_at: Vec<i64> = vec![0; n];
    let mut drawn_iter = drawn.iter();
    for (i, s) in slot.iter().enumerate() {
        if s.is_ok() {
            id_at[i] = *drawn_iter.next().unwrap_or(&0);
        }
    }
    // First states, in batch order (a parent's before its children's).
    let mut state_at: Vec<(i16, i64)> = vec![(WAITING, 0); n];
    let mut has_children = vec![false; n];
    let mut rows = Rows::with_capacity(fresh);
    let mut edges = EdgeRows::default();
    let mut last: Option<(*const runyard_core::JobSettings, String)> = None;
    for (i, j) in jobs.iter().enumerate() {
        if slot[i].is_err() {
            continue;
        }
        let mut pending = 0i32;
        let mut fails = None;
        for (pos, (p, a)) in parents[i].iter().zip(&j.after).enumerate() {
            let (state, cause, pid) = match *p {
                Resolved::Existing(id) => {
                    let (s, c) = known[&id];
                    (s, c, id)
                }
                Resolved::New(b) => {
                    has_children[b] = true;
                    (state_at[b].0, state_at[b].1, id_at[b])
                }
            };
            match seen(state, cause, j.run_if) {
                Seen::Met => {}
                Seen::Pending => pending += 1,
                Seen::Fails(c) => fails = fails.or(Some(c)),
            }
            edges.child.push(id_at[i]);
            edges.parent.push(pid);
            edges.key.push(a.key.as_str());
            edges.many.push(a.many);
            edges.position.push(pos as i32);
        }
        let (state, cause) = match fails {
            Some(c) => (CANCELLED, Some(c)),
            None if pending > 0 => (BLOCKED, None),
            None => (WAITING, None),
        };
        state_at[i] = (state, cause.unwrap_or(id_at[i]));
        rows.push(j, id_at[i], state, pending, cause, now, &mut last);
    }
    // Due waiting jobs without a fairness key are the keyless group's
    // next tags, in batch order (those with one are tagged by key after).
    let keyless = |at: usize, j: &NewJob| {
        rows.state[at] == WAITING && rows.run_at[at] <= now && j.limits.fairness_key().is_none()
    };
    let due = slot
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_ok())
        .enumerate()
        .filter(|&(at, (i, _))| keyless(at, &jobs[i]))
        .count() as i64;
    // NULL when none is due: then no job takes a tag.
    let front: Option<i64> = c.query_one(&sql.keyless_tags, &[&due])?.get(0);
    let front = front.unwrap_or_default();
    let mut place = 0i64;
    let mut at = 0;
    // The due new jobs with a fairness key, by their place in `rows`.
    let mut fkeys: Vec<(usize, String)> = Vec::new();
    for (i, s) in slot.iter().enumerate() {
        if s.is_ok() {
            rows.children.push(has_children[i]);
            let j = &jobs[i];
            let tagged = keyless(at, j);
            rows.tag.push(tagged.then(|| {
                place += 1;
                front + place - 1
            }));
            if let Some(k) = j.limits.fairness_key() {
                if j.after.is_empty() && rows.run_at[at] <= now {
                    fkeys.push((at, k.to_string()));
                }
            }
            at += 1;
        }
    }
    // Jobs with a fairness key take their keys' next tags from the
    // frontier as it is with the batch in. When no keyless job of the
    // batch is due, the batch adds no tagged waiting job, so the frontier
    // read before the insert is that one, and the tags are written with
    // the rows; otherwise they are given after the insert, in a second
    // statement.
    let keyed_first = !fkeys.is_empty() && due == 0;
    if keyed_first {
        tag_keyed(c, sql, &fkeys, &mut rows.tag)?;
    }
    let added = if fresh >= COPY_FROM && rows.key.iter().all(Option::is_none) {
        copy_rows(c, sql, &rows, now)?
    } else {
        c.query(
            &sql.insert_linked,
            &[
                &now,
                &rows.id,
                &rows.task,
                &rows.params,
                &rows.priority,
                &rows.run_at,
                &rows.max,
                &rows.backoff,
                &rows.timeout,
                &rows.mode,
                &rows.isolate,
                &rows.key,
                &rows.state,
                &rows.name,
                &rows.run_if,
                &rows.pending,
                &rows.cause,
                &rows.children,
                &rows.tag,
                &rows.uk,
                &rows.tc,
                &rows.trn,
                &rows.trus,
                &rows.ckn,
                &rows.ckv,
                &rows.ckc,
                &rows.rkn,
                &rows.rkv,
                &rows.rrn,
                &rows.rrus,
            ],
        )?
        .len()
    };
    if added != fresh {
        return Ok(Ok(None));
    }
    if place > 0 {
        c.execute(&sql.gave_tags, &[&(front + place - 1)])?;
    }
    if !fkeys.is_empty() && !keyed_first {
        let mut tags = vec![None; rows.id.len()];
        tag_keyed(c, sql, &fkeys, &mut tags)?;
        let (ids, tags): (Vec<i64>, Vec<Option<i64>>) = fkeys
            .iter()
            .map(|(at, _)| (rows.id[*at], tags[*at]))
            .unzip();
        c.execute(&sql.set_tags, &[&ids, &tags])?;
    }
    if !edges.child.is_empty() {
        c.execute(
            &sql.insert_edges,
            &[
                &edges.child,
                &edges.parent,
                &edges.key,
                &edges.many,
                &edges.position,
            ],
        )?;
    }
    let ids: Vec<i64> = slot
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Ok(()) => id_at[i],
            Err(Resolved::Existing(id)) => *id,
            Err(Resolved::New(b)) => id_at[*b],
        })
        .collect();
    let out = slot
        .iter()
        .zip(&ids)
        .map(|(s, id)| match s {
            Ok(()) => Enqueued::New(id_of(*id)),
            Err(_) => Enqueued::Duplicate(id_of(*id)),
        })
        .collect();
    Ok(Ok(Some(out)))
}

/// Batches of at least this many new jobs, none with an idempotency key,
/// go in by `COPY` (as plain batches do, see `queue.rs`).
const COPY_FROM: usize = 256;

/// Whether [`insert_unique`] adds the new jobs of this batch (those not
/// `resolved`): at least [`COPY_FROM`] of them, and each a waiting job
/// whose only column beyond the plain insert's is its unique key (no
/// idempotency key, name, parents, `run_if` or limits).
pub(crate) fn unique_only(jobs: &[NewJob], resolved: &[Option<Result<i64, usize>>]) -> bool {
    let mut fresh = 0;
    for (j, r) in jobs.iter().zip(resolved) {
        if r.is_some() {
            continue;
        }
        if j.idempotency_key.is_some()
            || j.is_linked()
            || j.run_if != RunIf::Success
            || !j.limits.is_empty()
        {
            return false;
        }
        fresh += 1;
    }
    fresh >= COPY_FROM
}

/// [`insert_resolved`] for a batch that is [`unique_only`], straight from
/// the jobs: the new ones by a binary COPY of the plain columns and the
/// unique key (`copy_unique.sql`), their ids drawn first and the due ones
/// tagged as the keyless group's next, in batch order, as the plain
/// `COPY` does (`queue.rs`). `None` when fewer rows went in than were
/// sent (as [`insert_resolved`]'s `Ok(None)`).
pub(crate) fn insert_unique(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    jobs: &[NewJob],
    resolved: &[Option<Result<i64, usize>>],
    now: i64,
) -> Result<Option<Vec<Enqueued>>, postgres::Error> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let run_at = |j: &NewJob| j.run_at.map_or(now, Timestamp::as_micros);
    let fresh = resolved.iter().filter(|r| r.is_none()).count();
    let due = jobs
        .iter()
        .zip(resolved)
        .filter(|(j, r)| r.is_none() && run_at(j) <= now)
        .count() as i64;
    let ids: Vec<i64> = c
        .query(&sql.next_ids, &[&(fresh as i64)])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // NULL when none is due: then no job takes a tag.
    let front: Option<i64> = c.query_one(&sql.keyless_tags, &[&due])?.get(0);
    let front = front.unwrap_or_default();
    let mut place = 0i64;
    let mut types = [Type::TEXT; PLAIN_COPY_TYPES.len() + 1];
    types[..PLAIN_COPY_TYPES.len()].clone_from_slice(&PLAIN_COPY_TYPES);
    let mut w = BinaryCopyInWriter::new(c.copy_in(&sql.copy_unique)?, &types);
    let mut id_at: Vec<i64> = vec![0; jobs.len()];
    let mut drawn = ids.iter();
    // Settings are shared between copies: render each once.
    let mut last: Option<(*const runyard_core::JobSettings, String)> = None;
    for (i, j) in jobs.iter().enumerate() {
        if resolved[i].is_some() {
            continue;
        }
        let id = *drawn.next().unwrap_or(&0);
        id_at[i] = id;
        let s = &j.settings;
        let ptr = std::sync::Arc::as_ptr(s);
        if last.as_ref().is_none_or(|(p, _)| *p != ptr) {
            last = Some((ptr, s.backoff.to_string()));
        }
        let backoff = last.as_ref().map_or("", |l| l.1.as_str());
        let max = s.max_attempts as i32;
        let at = run_at(j);
        let tag = (at <= now).then(|| {
            place += 1;
            front + place - 1
        });
        w.write(&[
            &id,
            &j.task.as_str(),
            &j.params.as_json(),
            &WAITING,
            &s.priority,
            &at,
            &now,
            &max,
            &max,
            &backoff,
            &s.timeout.map(|t| t.as_micros() as i64),
            &s.mode.as_str(),
            &s.isolate,
            &tag,
            &j.unique.as_ref().map(|u| u.key.as_str()),
        ])?;
    }
    if w.finish()? as usize != fresh {
        return Ok(None);
    }
    if place > 0 {
        c.execute(&sql.gave_tags, &[&(front + place - 1)])?;
    }
    Ok(Some(
        (0..jobs.len())
            .map(|i| {
                // A job resolved to an earlier one of the batch takes that
                // one's id (its answer, when that one was resolved too).
                let mut at = i;
                loop {
                    match resolved[at] {
                        None if at == i => return Enqueued::New(id_of(id_at[i])),
                        None => return Enqueued::Duplicate(id_of(id_at[at])),
                        Some(Ok(id)) => return Enqueued::Duplicate(id_of(id)),
                        Some(Err(b)) => at = b,
                    }
                }
            })
            .collect(),
    ))
}

/// Moves the fairness keys of the due jobs `fkeys` (their places in the
/// batch's rows, with their keys) on by their numbers of jobs, from the
/// frontier as it is now, in one statement; each job takes its key's next
/// tag, in batch order, in `tags`.
fn tag_keyed(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    fkeys: &[(usize, String)],
    tags: &mut [Option<i64>],
) -> Result<(), postgres::Error> {
    let mut n: FxHashMap<&str, i64> = FxHashMap::default();
    for (_, k) in fkeys {
        *n.entry(k.as_str()).or_default() += 1;
    }
    let (keys, counts): (Vec<&str>, Vec<i64>) = n.iter().map(|(k, c)| (*k, *c)).unzip();
    let front: i64 = c.query_one(&sql.frontier, &[])?.get(0);
    let mut next: FxHashMap<String, i64> = FxHashMap::default();
    for r in c.query(&sql.tag_keyed, &[&keys, &counts, &front])? {
        let (k, last): (String, i64) = (r.get(0), r.get(1));
        let first = last - n[k.as_str()] + 1;
        next.insert(k, first);
    }
    for (at, k) in fkeys {
        if let Some(t) = next.get_mut(k) {
            tags[*at] = Some(*t);
            *t += 1;
        }
    }
    Ok(())
}

/// Adds `rows` (none with an idempotency key) by a binary `COPY`, their
/// flow columns with them; returns how many went in.
fn copy_rows(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    rows: &Rows<'_>,
    now: i64,
) -> Result<usize, postgres::Error> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::BOOL,
        Type::TEXT,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::BOOL,
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::INT4,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::INT8,
    ];
    let mut w = BinaryCopyInWriter::new(c.copy_in(&sql.copy_linked)?, &types);
    for i in 0..rows.id.len() {
        let finished = (rows.state[i] == CANCELLED).then_some(now);
        w.write(&[
            &rows.id[i],
            &rows.task[i],
            &rows.params[i],
            &rows.state[i],
            &rows.priority[i],
            &rows.run_at[i],
            &now,
            &finished,
            &rows.max[i],
            &rows.max[i],
            &rows.backoff[i],
            &rows.timeout[i],
            &rows.mode[i],
            &rows.isolate[i],
            &rows.name[i],
            &rows.run_if[i],
            &rows.pending[i],
            &rows.cause[i],
            &rows.children[i],
            &rows.tag[i],
            &rows.uk[i],
            &rows.tc[i],
            &rows.trn[i],
            &rows.trus[i],
            &rows.ckn[i],
            &rows.ckv[i],
            &rows.ckc[i],
            &rows.rkn[i],
            &rows.rkv[i],
            &rows.rrn[i],
            &rows.rrus[i],
        ])?;
    }
    Ok(w.finish()? as usize)
}

/// The types of the columns that `copy_jobs.sql` copies, in its order
/// (id, task, params, state, priority, run_at, enqueued_at, max_attempts,
/// attempts_per_round, backoff, timeout_us, mode, isolate, tag), the
/// first columns of `copy_unique.sql` too.
pub(crate) const PLAIN_COPY_TYPES: [postgres::types::Type; 14] = {
    use postgres::types::Type;
    [
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::BOOL,
        Type::INT8,
    ]
};

/// The new jobs of a linked batch as `insert_linked.sql` takes them.
#[derive(Default)]
struct Rows<'a> {
    id: Vec<i64>,
    task: Vec<&'a str>,
    params: Vec<&'a str>,
    priority: Vec<i32>,
    run_at: Vec<i64>,
    max: Vec<i32>,
    backoff: Vec<String>,
    timeout: Vec<Option<i64>>,
    mode: Vec<&'a str>,
    isolate: Vec<bool>,
    key: Vec<Option<&'a str>>,
    state: Vec<i16>,
    name: Vec<Option<&'a str>>,
    run_if: Vec<i16>,
    pending: Vec<i32>,
    cause: Vec<Option<i64>>,
    children: Vec<bool>,
    tag: Vec<Option<i64>>,
    // What flow control reads (see migration 0005): the unique key, the
    // task's limits, the concurrency key and the rate key with theirs.
    uk: Vec<Option<&'a str>>,
    tc: Vec<Option<i32>>,
    trn: Vec<Option<i32>>,
    trus: Vec<Option<i64>>,
    ckn: Vec<Option<&'a str>>,
    ckv: Vec<Option<&'a str>>,
    ckc: Vec<Option<i32>>,
    rkn: Vec<Option<&'a str>>,
    rkv: Vec<Option<&'a str>>,
    rrn: Vec<Option<i32>>,
    rrus: Vec<Option<i64>>,
}

/// A rate as its count and window in microseconds.
fn rate_parts(r: Option<runyard_core::Rate>) -> (Option<i32>, Option<i64>) {
    match r {
        Some(r) => (Some(r.count as i32), Some(r.per.as_micros() as i64)),
        None => (None, None),
    }
}

impl<'a> Rows<'a> {
    fn with_capacity(n: usize) -> Rows<'a> {
        Rows {
            id: Vec::with_capacity(n),
            task: Vec::with_capacity(n),
            params: Vec::with_capacity(n),
            ..Rows::default()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        j: &'a NewJob,
        id: i64,
        state: i16,
        pending: i32,
        cause: Option<i64>,
        now: i64,
        last: &mut Option<(*const runyard_core::JobSettings, String)>,
    ) {
        let s = &j.settings;
        let ptr = std::sync::Arc::as_ptr(s);
        if last.as_ref().is_none_or(|(p, _)| *p != ptr) {
            *last = Some((ptr, s.backoff.to_string()));
        }
        self.id.push(id);
        self.task.push(j.task.as_str());
        self.params.push(j.params.as_json());
        self.priority.push(s.priority);
        self.run_at.push(j.run_at.map_or(now, Timestamp::as_micros));
        self.max.push(s.max_attempts as i32);
        self.backoff
            .push(last.as_ref().map(|l| l.1.clone()).unwrap_or_default());
        self.timeout.push(s.timeout.map(|t| t.as_micros() as i64));
        self.mode.push(s.mode.as_str());
        self.isolate.push(s.isolate);
        self.key.push(j.idempotency_key.as_deref());
        self.state.push(state);
        self.name.push(j.name.as_deref());
        self.run_if.push(j.run_if.code() as i16);
        self.pending.push(pending);
        self.cause.push(cause);
        let l = &j.limits;
        self.uk.push(j.unique.as_ref().map(|u| u.key.as_str()));
        self.tc.push(l.task_concurrency.map(|c| c as i32));
        let (n, us) = rate_parts(l.task_rate);
        self.trn.push(n);
        self.trus.push(us);
        let ck = l.concurrency_key.as_ref();
        self.ckn.push(ck.map(|(k, _)| k.name()));
        self.ckv.push(ck.map(|(k, _)| k.value()));
        self.ckc.push(ck.and_then(|(_, c)| c.map(|c| c as i32)));
        let rk = l.rate_key.as_ref();
        self.rkn.push(rk.map(|(k, _)| k.name()));
        self.rkv.push(rk.map(|(k, _)| k.value()));
        let (n, us) = rate_parts(rk.and_then(|(_, r)| *r));
        self.rrn.push(n);
        self.rrus.push(us);
    }
}

/// Edges as `insert_edges.sql` takes them.
#[derive(Default)]
struct EdgeRows<'a> {
    child: Vec<i64>,
    parent: Vec<i64>,
    key: Vec<&'a str>,
    many: Vec<bool>,
    position: Vec<i32>,
}

/// The states of jobs `ids`, locked against ending (see the module): by
/// id, state code and the job a failure of it names.
fn share(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    ids: &mut Vec<i64>,
) -> Result<FxHashMap<i64, (i16, i64)>, postgres::Error> {
    ids.sort_unstable();
    ids.dedup();
    let mut out = FxHashMap::default();
    if ids.is_empty() {
        return Ok(out);
    }
    for r in c.query(&sql.share_parents, &[&*ids])? {
        out.insert(r.get(0), (r.get(1), r.get(2)));
    }
    Ok(out)
}

/// Parents by child, in position order, of the jobs `children`.
fn edges_of(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    children: &[i64],
) -> Result<FxHashMap<i64, Vec<i64>>, postgres::Error> {
    let mut by: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    for r in c.query(&sql.edges_of, &[&children])? {
        by.entry(r.get(0)).or_default().push(r.get(1));
    }
    Ok(by)
}

/// Counts a job's parents as `seen`: how many are pending, and the cause
/// of the first that fails it. A parent no longer in the queue (pruned)
/// counts as met.
fn count(
    parents: &[i64],
    states: &FxHashMap<i64, (i16, i64)>,
    run_if: RunIf,
) -> (i32, Option<i64>) {
    let mut pending = 0;
    let mut fails = None;
    for p in parents {
        if let Some(&(state, cause)) = states.get(p) {
            match seen(state, cause, run_if) {
                Seen::Met => {}
                Seen::Pending => pending += 1,
                Seen::Fails(c) => fails = fails.or(Some(c)),
            }
        }
    }
    (pending, fails)
}

/// Retries job `id` if it is dead or cancelled, in the caller's
/// transaction (`None` otherwise, and when a parent it needs has failed:
/// nothing is written then), as the memory queue does: a fresh round of
/// attempts, blocked again while some parent has not ended. The jobs its
/// end cancelled (transitively, those naming it as the cause) are counted
/// afresh in id order (a parent before its children): blocked again
/// (`reblocked`; released at once, `unblocked` too, when no parent is
/// pending), or, when another failed parent still cancels one, left
/// cancelled naming that parent's root. Then every waiting or blocked job
/// after the retried job or one blocked again counts its pending parents
/// afresh, and one that was waiting and now has some is blocked again
/// (`reblocked`). Announces what became ready.
pub(crate) fn retry(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    id: i64,
    now: i64,
) -> Result<Option<Cascade>, postgres::Error> {
    let Some(row) = c.query_opt(&sql.lock_job, &[&id])? else {
        return Ok(None);
    };
    let (state, run_if): (i16, i16) = (row.get(0), row.get(1));
    if !matches!(state, DEAD | CANCELLED) {
        return Ok(None);
    }
    let run_if = RunIf::from_code(i64::from(run_if));
    let mine = edges_of(c, sql, &[id])?.remove(&id).unwrap_or_default();
    let mut want = mine.clone();
    let mut states = share(c, sql, &mut want)?;
    let (pending, fails) = count(&mine, &states, run_if);
    if fails.is_some() {
        return Ok(None);
    }
    c.execute(&sql.retry, &[&now, &id, &pending])?;
    // From here on, `states` holds what this transaction decided.
    states.insert(id, (BLOCKED, id));
    let mut cascade = Cascade::default();
    // The jobs its end cancelled, level by level (each level locked before
    // its children are read).
    let mut found: Vec<(i64, RunIf)> = Vec::new();
    let mut level = vec![id];
    while !level.is_empty() {
        let rows = c.query(&sql.reblock, &[&level, &id])?;
        level = rows.iter().map(|r| r.get(0)).collect();
        found.extend(rows.iter().map(|r| {
            (
                r.get::<_, i64>(0),
                RunIf::from_code(i64::from(r.get::<_, i16>(1))),
            )
        }));
    }
    found.sort_unstable_by_key(|f| f.0);
    found.dedup_by_key(|f| f.0);
    let mut moved = Moved::default();
    let mut again = vec![id];
    if !found.is_empty() {
        let children: Vec<i64> = found.iter().map(|f| f.0).collect();
        let by = edges_of(c, sql, &children)?;
        let mut want: Vec<i64> = by
            .values()
            .flatten()
            .copied()
            .filter(|p| !states.contains_key(p) && children.binary_search(p).is_err())
            .collect();
        states.extend(share(c, sql, &mut want)?);
        for &(child, run_if) in &found {
            let parents = by.get(&child).map_or(&[][..], |v| &v[..]);
            match count(parents, &states, run_if) {
                (pending, Some(cause)) => {
                    states.insert(child, (CANCELLED, cause));
                    moved.push(child, CANCELLED, pending, Some(cause));
                }
                (pending, None) => {
                    let state = if pending == 0 { WAITING } else { BLOCKED };
                    states.insert(child, (state, child));
                    moved.push(child, state, pending, None);
                    cascade.reblocked.push(id_of(child));
                    if pending == 0 {
                        cascade.unblocked.push(id_of(child));
                    }
                    again.push(child);
                }
            }
        }
    }
    // Waiting jobs after the retried job or one blocked again count their
    // parents afresh (a `run_if = always` job had counted a failed one).
    let mut order: Vec<i64> = Vec::new();
    let mut by_parent: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    for r in c.query(&sql.children_of, &[&again])? {
        by_parent.entry(r.get(0)).or_default().push(r.get(1));
    }
    for p in &again {
        for &ch in by_parent.get(p).map_or(&[][..], |v| &v[..]) {
            if !order.contains(&ch) && found.binary_search_by_key(&ch, |f| f.0).is_err() {
                order.push(ch);
            }
        }
    }
    if !order.is_empty() {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        let waiting: FxHashMap<i64, (i16, RunIf)> = c
            .query(&sql.lock_waiting, &[&sorted])?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    (r.get(1), RunIf::from_code(i64::from(r.get::<_, i16>(2)))),
                )
            })
            .collect();
        let ids: Vec<i64> = order
            .iter()
            .copied()
            .filter(|ch| waiting.contains_key(ch))
            .collect();
        if !ids.is_empty() {
            let by = edges_of(c, sql, &ids)?;
            let mut want: Vec<i64> = by
                .values()
                .flatten()
                .copied()
                .filter(|p| !states.contains_key(p))
                .collect();
            states.extend(share(c, sql, &mut want)?);
            for ch in ids {
                let (state, run_if) = waiting[&ch];
                let parents = by.get(&ch).map_or(&[][..], |v| &v[..]);
                let pending = count(parents, &states, run_if).0;
                let to = if pending > 0 { BLOCKED } else { state };
                if state == WAITING && to == BLOCKED {
                    cascade.reblocked.push(id_of(ch));
                }
                moved.push(ch, to, pending, None);
            }
        }
    }
    if !moved.id.is_empty() {
        c.execute(
            &sql.recount,
            &[&moved.id, &moved.state, &moved.pending, &moved.cause, &now],
        )?;
    }
    notify(c, sql)?;
    Ok(Some(cascade))
}

/// Jobs a retry moved, as `recount.sql` takes them.
#[derive(Default)]
struct Moved {
    id: Vec<i64>,
    state: Vec<i16>,
    pending: Vec<i32>,
    cause: Vec<Option<i64>>,
}

impl Moved {
    fn push(&mut self, id: i64, state: i16, pending: i32, cause: Option<i64>) {
        self.id.push(id);
        self.state.push(state);
        self.pending.push(pending);
        self.cause.push(cause);
    }
}

/// The parents objects of claimed jobs `children` (those that have
/// parents), by id.
pub(crate) fn parents_of(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    children: &[i64],
) -> Result<FxHashMap<i64, Output>, postgres::Error> {
    let mut by: Vec<(i64, Parents)> = Vec::new();
    for r in c.query(&sql.parents, &[&children])? {
        let child: i64 = r.get(0);
        if by.last().is_none_or(|(c, _)| *c != child) {
            by.push((child, Parents::new()));
        }
        let output: Option<&str> = r.get(3);
        let output = output
            .and_then(|o| Output::from_json(o).ok())
            .unwrap_or_default();
        let key: &str = r.get(1);
        by.last_mut()
            .expect("pushed")
            .1
            .push(key, r.get(2), &output);
    }
    Ok(by.into_iter().map(|(c, p)| (c, p.finish())).collect())
}

/// The parents, in position order, of the jobs with ids from `first` to
/// `last`, by child.
pub(crate) fn after_between(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    first: i64,
    last: i64,
) -> Result<FxHashMap<i64, Vec<JobId>>, postgres::Error> {
    let mut by: FxHashMap<i64, Vec<JobId>> = FxHashMap::default();
    for r in c.query(&sql.edges_between, &[&first, &last])? {
        by.entry(r.get(0)).or_default().push(id_of(r.get(1)));
    }
    Ok(by)
}

/// The parents of the jobs `ids`, as [`after_between`] gives them.
pub(crate) fn after_of(
    c: &mut impl GenericClient,
    sql: &FlowSql,
    ids: &[i64],
) -> Result<FxHashMap<i64, Vec<JobId>>, postgres::Error> {
    Ok(edges_of(c, sql, ids)?
        .into_iter()
        .map(|(child, parents)| (child, parents.into_iter().map(id_of).collect()))
        .collect())
}
