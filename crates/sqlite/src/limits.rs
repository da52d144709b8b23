//! Flow control in the SQLite queue (docs/backends.md §8): unique keys at
//! insert, fair tags, and claims under limits and pauses.
//!
//! # Rows
//!
//! Schema 5 (`migrations/0005_flow.sql`): a job's row keeps its unique key,
//! the limits it carries, whether it carries any (`limited`) and its fair
//! `tag` (NULL while it is not due). `runyard_limits` holds the stored
//! limits, `runyard_paused` the paused tasks, `runyard_fair` the last tag
//! of each fairness group (`k:KEY` for a key, `k:` for the jobs without
//! one) and, under `''`, the largest tag given, `runyard_starts` the
//! starts each rate target admitted.
//!
//! # Claims
//!
//! Every claim first gives the due jobs without a tag the frontier `V`
//! ([`promote`]). While no limit is stored, no task is paused and no
//! waiting job carries a limit ([`limited`]), a claim is the one statement
//! it always was, in fair order. Otherwise [`claim_limited`] walks a
//! bounded window of the due jobs in claim order in Rust, inside the
//! claim's write transaction, as it reads them from the fair index (which
//! schema 7 widened with what the walk reads: no table lookups), and
//! takes a job only while every limit in force for it has room; a job of
//! a full concurrency key is passed over by its key alone. Concurrency is counted from the running rows
//! themselves, in the same transaction: every transition out of running
//! (complete, release, rescue, a paused claim given back) frees its slot
//! by changing the row's state, with nothing else to keep in step.

use std::collections::HashMap;
use std::time::Duration;

use runyard_core::{FlowKey, Hold, JobLimits, LimitTarget, OnConflict, Rate, StoredLimit};
use runyard_queue::stored::{BLOCKED, WAITING};
use runyard_queue::{Enqueued, NewJob, QueueError, QueueErrorKind};
use runyard_queue::{Holds, LimitChange, Paused};
use rusqlite::{params, Connection, OptionalExtension, Row};
use rustc_hash::FxHashMap;

use crate::sql::SQL;

type Tx<'a> = rusqlite::Transaction<'a>;

/// The flow columns of a new job's row, in the order the insert
/// statements take them (after the columns they had before).
struct Columns {
    unique_key: Option<String>,
    task_concurrency: Option<u32>,
    task_rate: Option<String>,
    concurrency_key: Option<String>,
    key_concurrency: Option<u32>,
    rate_key: Option<String>,
    key_rate: Option<String>,
    limited: bool,
}

impl Columns {
    /// What `j` stores.
    fn of(j: &NewJob) -> Columns {
        let l = &j.limits;
        let (ck, kc) = match &l.concurrency_key {
            Some((k, c)) => (Some(k.to_string()), *c),
            None => (None, None),
        };
        let (rk, kr) = match &l.rate_key {
            Some((k, r)) => (Some(k.to_string()), r.map(|r| r.to_string())),
            None => (None, None),
        };
        Columns {
            unique_key: j.unique.as_ref().map(|u| u.key.clone()),
            task_concurrency: l.task_concurrency,
            task_rate: l.task_rate.map(|r| r.to_string()),
            limited: l.task_concurrency.is_some()
                || l.task_rate.is_some()
                || kc.is_some()
                || kr.is_some(),
            concurrency_key: ck,
            key_concurrency: kc,
            rate_key: rk,
            key_rate: kr,
        }
    }
}

/// Binds what insert_job.sql and insert_linked_job.sql share for job `j`
/// (run-at `run_at`, inserted at `now`, fair tag `tag`): its settings and
/// idempotency key as `?1` to `?11`, and from `?flow` on the eleven flow
/// parameters: its unique key, carried limits, whether it carries any, its
/// tag, and the schedule and tick that made it. The statement is then run
/// with `raw_execute`.
pub(crate) fn bind_job(
    st: &mut rusqlite::Statement<'_>,
    j: &NewJob,
    run_at: i64,
    now: i64,
    tag: Option<i64>,
    flow: usize,
) -> rusqlite::Result<()> {
    let s = &j.settings;
    st.raw_bind_parameter(1, j.task.as_str())?;
    st.raw_bind_parameter(2, j.params.as_json())?;
    st.raw_bind_parameter(3, s.priority)?;
    st.raw_bind_parameter(4, run_at)?;
    st.raw_bind_parameter(5, now)?;
    st.raw_bind_parameter(6, s.max_attempts)?;
    st.raw_bind_parameter(7, s.backoff.to_string())?;
    st.raw_bind_parameter(8, s.timeout.map(|t| t.as_micros() as i64))?;
    st.raw_bind_parameter(9, s.mode.as_str())?;
    st.raw_bind_parameter(10, s.isolate)?;
    st.raw_bind_parameter(11, j.idempotency_key.as_deref())?;
    let f = Columns::of(j);
    st.raw_bind_parameter(flow, f.unique_key)?;
    st.raw_bind_parameter(flow + 1, f.task_concurrency)?;
    st.raw_bind_parameter(flow + 2, f.task_rate)?;
    st.raw_bind_parameter(flow + 3, f.concurrency_key)?;
    st.raw_bind_parameter(flow + 4, f.key_concurrency)?;
    st.raw_bind_parameter(flow + 5, f.rate_key)?;
    st.raw_bind_parameter(flow + 6, f.key_rate)?;
    st.raw_bind_parameter(flow + 7, f.limited)?;
    st.raw_bind_parameter(flow + 8, tag)?;
    st.raw_bind_parameter(flow + 9, j.schedule.as_ref().map(|t| t.schedule.as_str()))?;
    st.raw_bind_parameter(flow + 10, j.schedule.as_ref().map(|t| t.tick.as_micros()))?;
    Ok(())
}

/// The name under which a fairness group keeps its last tag: `k:KEY` for
/// a fairness key, `k:` for the group of the jobs without one (a key's
/// name is never empty, and the row `''` keeps the largest tag given).
fn fair_name(k: Option<&FlowKey>) -> String {
    match k {
        Some(k) => format!("k:{k}"),
        None => "k:".to_string(),
    }
}

/// The frontier `V` at the start of a transaction: the tag at the head of
/// the claim order, or one more than the largest tag given; and that largest.
fn frontier(tx: &Tx<'_>) -> rusqlite::Result<(i64, i64)> {
    let max: i64 = tx
        .prepare_cached(&SQL.fair_get)?
        .query_row([""], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let head: Option<i64> = tx
        .prepare_cached(&SQL.fair_head)?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok((head.unwrap_or(max + 1), max))
}

/// Gives the tags of one insert's batch (see docs/backends.md §8, "Fair
/// order"): the frontier is read once, at the first due job. A due job
/// gets `max(last(g) + 1, V)` for its fairness group `g`: its fairness
/// key, or the one group of the jobs without a key (so successive keyless
/// batches stay first in, first out).
#[derive(Default)]
pub(crate) struct Tagger {
    /// The frontier and the largest tag given, once read.
    start: Option<(i64, i64)>,
    /// The last tag of each fairness group looked at, and whether the
    /// batch gave it one.
    last: HashMap<String, (i64, bool)>,
    /// The largest tag given in the batch.
    max: i64,
}

impl Tagger {
    /// A tagger for one batch.
    pub(crate) fn new() -> Tagger {
        Tagger::default()
    }

    /// The tag for job `j`, whose run-at is `run_at`, inserted at `now`
    /// (None when not due); [`Tagger::taken`] once it is added.
    pub(crate) fn tag(
        &mut self,
        tx: &Tx<'_>,
        j: &NewJob,
        run_at: i64,
        now: i64,
    ) -> rusqlite::Result<Option<i64>> {
        if run_at > now {
            return Ok(None);
        }
        let (v, _) = match self.start {
            Some(s) => s,
            None => {
                let s = frontier(tx)?;
                self.start = Some(s);
                s
            }
        };
        let name = fair_name(j.limits.fairness_key());
        let last = match self.last.get(&name) {
            Some(&(l, _)) => l,
            None => {
                let l = tx
                    .prepare_cached(&SQL.fair_get)?
                    .query_row([&name], |r| r.get(0))
                    .optional()?
                    .unwrap_or(i64::MIN + 1);
                self.last.insert(name, (l, false));
                l
            }
        };
        Ok(Some((last + 1).max(v)))
    }

    /// Job `j` was added with `tag` (none when it is not due, or not
    /// waiting).
    pub(crate) fn taken(&mut self, j: &NewJob, tag: Option<i64>) {
        let Some(tag) = tag else { return };
        self.last
            .insert(fair_name(j.limits.fairness_key()), (tag, true));
        self.max = self.max.max(tag);
    }

    /// Stores the last tags and the largest given.
    pub(crate) fn finish(self, tx: &Tx<'_>) -> rusqlite::Result<()> {
        let Some((_, max)) = self.start else {
            return Ok(());
        };
        let mut set = tx.prepare_cached(&SQL.fair_set)?;
        for (k, (last, given)) in &self.last {
            if *given {
                set.execute(params![k, last])?;
            }
        }
        if self.max > max {
            set.execute(params!["", self.max])?;
        }
        Ok(())
    }
}

/// The holders of a batch's unique keys, looked up for the whole batch at
/// once (one statement for the holders, one for the keys with a window),
/// then kept up to date as the batch adds and replaces jobs (jobs of one
/// batch see the earlier jobs of the batch). Runs in the insert's write
/// transaction, which holds the file's write lock from its start: no other
/// submitter can add a holder between the lookup and the inserts.
#[derive(Default)]
pub(crate) struct UniqueKeys {
    /// Each key's holder: its id, state and tag (for a replace).
    holders: HashMap<String, (i64, i64, Option<i64>)>,
    /// For each (key, since) of a job with a window: the latest job with
    /// the key that succeeded at `since` or later.
    succeeded: HashMap<(String, i64), i64>,
}

impl UniqueKeys {
    /// Looks up the holders (and, for keys with a window, the latest
    /// successes) of the unique keys of `jobs`, inserted at `now`.
    pub(crate) fn read(tx: &Tx<'_>, jobs: &[NewJob], now: i64) -> rusqlite::Result<UniqueKeys> {
        let mut out = UniqueKeys::default();
        let keys: Vec<&str> = jobs
            .iter()
            .filter_map(|j| j.unique.as_ref().map(|u| u.key.as_str()))
            .collect();
        if keys.is_empty() {
            return Ok(out);
        }
        let json = serde_json::to_string(&keys).unwrap_or_default();
        {
            let mut st = tx.prepare_cached(&SQL.unique_holders)?;
            let mut rows = st.query([json])?;
            while let Some(r) = rows.next()? {
                // By key and id: the first row of a key is its holder.
                let key: String = r.get(0)?;
                if let std::collections::hash_map::Entry::Vacant(e) = out.holders.entry(key) {
                    e.insert((r.get(1)?, r.get(2)?, r.get(3)?));
                }
            }
        }
        let windows: Vec<(&str, i64)> = jobs
            .iter()
            .filter_map(|j| j.unique.as_ref())
            .filter_map(|u| Some((u.key.as_str(), now.saturating_sub(micros(u.within?)))))
            .collect();
        if !windows.is_empty() {
            let json = serde_json::to_string(&windows).unwrap_or_default();
            let mut st = tx.prepare_cached(&SQL.unique_within)?;
            let mut rows = st.query([json])?;
            while let Some(r) = rows.next()? {
                if let Some(id) = r.get::<_, Option<i64>>(2)? {
                    out.succeeded.insert((r.get(0)?, r.get(1)?), id);
                }
            }
        }
        Ok(out)
    }

    /// What job `j`'s unique key finds: the job the submit names instead
    /// of a new one, if any (docs/backends.md §8, "Unique jobs"); a
    /// replaced holder takes `j`'s parameters and run-at here.
    fn find(&mut self, tx: &Tx<'_>, j: &NewJob, now: i64) -> rusqlite::Result<Option<Enqueued>> {
        let Some(u) = &j.unique else { return Ok(None) };
        if let Some((id, state, tag)) = self.holders.get_mut(&u.key) {
            let id_ = runyard_core::JobId(*id as u64);
            return Ok(Some(match u.on_conflict {
                OnConflict::Skip => Enqueued::Duplicate(id_),
                OnConflict::Replace => {
                    let run_at = j.run_at.map_or(now, |t| t.as_micros());
                    // A waiting holder due now keeps its place; one whose
                    // run-at moves ahead has no tag until it is due.
                    if !(*state == WAITING && run_at <= now) {
                        debug_assert!(*state == WAITING || *state == BLOCKED);
                        *tag = None;
                    }
                    tx.prepare_cached(&SQL.unique_replace)?.execute(params![
                        *id,
                        j.params.as_json(),
                        run_at,
                        *tag
                    ])?;
                    Enqueued::Replaced(id_)
                }
            }));
        }
        if let Some(d) = u.within {
            let since = now.saturating_sub(micros(d));
            if let Some(id) = self.succeeded.get(&(u.key.clone(), since)) {
                return Ok(Some(Enqueued::Duplicate(runyard_core::JobId(*id as u64))));
            }
        }
        Ok(None)
    }

    /// For a job with a unique key: the job already in the queue (or added
    /// earlier in the batch) that a submit of it names instead (its
    /// idempotency key is looked up first, with `find`, find_key.sql), if
    /// any.
    pub(crate) fn existing(
        &mut self,
        tx: &Tx<'_>,
        find: &mut rusqlite::CachedStatement<'_>,
        j: &NewJob,
        now: i64,
    ) -> rusqlite::Result<Option<Enqueued>> {
        if j.unique.is_none() {
            return Ok(None);
        }
        if let Some(k) = j.idempotency_key.as_deref() {
            let id: Option<i64> = find.query_row([k], |r| r.get(0)).optional()?;
            if let Some(id) = id {
                return Ok(Some(Enqueued::Duplicate(runyard_core::JobId(id as u64))));
            }
        }
        self.find(tx, j, now)
    }

    /// Job `j` was added as `id` in `state` with `tag`: it holds its key
    /// unless an earlier job does (the holder is the first by id).
    pub(crate) fn added(&mut self, j: &NewJob, id: i64, state: i64, tag: Option<i64>) {
        let Some(u) = &j.unique else { return };
        if state == WAITING || state == BLOCKED {
            self.holders
                .entry(u.key.clone())
                .or_insert((id, state, tag));
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Gives the due jobs that have no tag yet the frontier `V` (ties by id).
pub(crate) fn promote(tx: &Tx<'_>, now: i64) -> rusqlite::Result<()> {
    let any: bool = tx
        .prepare_cached(&SQL.untagged_due)?
        .query_row([now], |r| r.get(0))?;
    if !any {
        return Ok(());
    }
    let (v, max) = frontier(tx)?;
    tx.prepare_cached(&SQL.promote)?.execute(params![now, v])?;
    if v > max {
        tx.prepare_cached(&SQL.fair_set)?.execute(params!["", v])?;
    }
    Ok(())
}

/// Gives the jobs `ids` that are waiting and due at `now` without a tag
/// (a retry due now, a job released from its parents) the frontier.
pub(crate) fn tag_due(tx: &Tx<'_>, ids: &[i64], now: i64) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(&SQL.tag_job)?;
    for &id in ids {
        let (v, max) = frontier(tx)?;
        if st.execute(params![id, now, v])? == 1 && v > max {
            tx.prepare_cached(&SQL.fair_set)?.execute(params!["", v])?;
        }
    }
    Ok(())
}

/// Whether a claim must look at limits (see the module's opening).
pub(crate) fn limited(tx: &Tx<'_>) -> rusqlite::Result<bool> {
    tx.prepare_cached(&SQL.limited)?.query_row([], |r| r.get(0))
}

/// The stored limits and pauses, as a claim reads them.
struct Rules {
    stored: HashMap<LimitTarget, (Option<u32>, Option<Rate>)>,
    paused: Paused,
}

fn bad_row(what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("runyard_limits holds an unreadable {what} `{text}`").into(),
    )
}

fn stored_limits(conn: &Connection) -> rusqlite::Result<Vec<StoredLimit>> {
    let mut st = conn.prepare_cached(&SQL.limits_all)?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<u32>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (t, c, rate) = row?;
        let target: LimitTarget = serde_json::from_str(&t).map_err(|_| bad_row("target", &t))?;
        let rate = match rate {
            Some(r) => Some(r.parse::<Rate>().map_err(|_| bad_row("rate", &r))?),
            None => None,
        };
        out.push(StoredLimit {
            target,
            concurrency: c,
            rate,
        });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

fn paused_tasks(conn: &Connection) -> rusqlite::Result<Paused> {
    let mut st = conn.prepare_cached(&SQL.paused_tasks)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut p = Paused::default();
    for t in rows {
        let t = t?;
        if t.is_empty() {
            p.all = true;
        } else {
            p.tasks.push(t);
        }
    }
    Ok(p)
}

impl Rules {
    fn read(conn: &Connection) -> rusqlite::Result<Rules> {
        Ok(Rules {
            stored: stored_limits(conn)?
                .into_iter()
                .map(|l| (l.target, (l.concurrency, l.rate)))
                .collect(),
            paused: paused_tasks(conn)?,
        })
    }

    fn task(&self, task: &str) -> Option<&(Option<u32>, Option<Rate>)> {
        self.stored.get(&LimitTarget::Task(task.to_string()))
    }

    /// The stored limits of key `k`: its value's, then its name's, by part.
    fn key(&self, k: &FlowKey) -> (Option<u32>, Option<Rate>) {
        let one = self.stored.get(&LimitTarget::Key {
            name: k.name().to_string(),
            value: Some(k.value().to_string()),
        });
        let all = self.stored.get(&LimitTarget::Key {
            name: k.name().to_string(),
            value: None,
        });
        (
            one.and_then(|l| l.0).or(all.and_then(|l| l.0)),
            one.and_then(|l| l.1).or(all.and_then(|l| l.1)),
        )
    }
}

/// The target a key's holds name: its name and value (none for a key
/// without a value).
fn key_target(k: &FlowKey) -> LimitTarget {
    LimitTarget::Key {
        name: k.name().to_string(),
        value: (!k.value().is_empty()).then(|| k.value().to_string()),
    }
}

/// A due job as a claim sees it.
struct Candidate {
    id: i64,
    task: String,
    concurrency_key: Option<String>,
    key_concurrency: Option<u32>,
    rate_key: Option<String>,
    key_rate: Option<String>,
    task_concurrency: Option<u32>,
    task_rate: Option<String>,
}

fn candidate(r: &Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: r.get(0)?,
        task: r.get(1)?,
        concurrency_key: r.get(2)?,
        key_concurrency: r.get(3)?,
        rate_key: r.get(4)?,
        key_rate: r.get(5)?,
        task_concurrency: r.get(6)?,
        task_rate: r.get(7)?,
    })
}

/// What a job carries, read back from its row.
fn carried(c: &Candidate) -> JobLimits {
    let rate = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<Rate>().ok());
    JobLimits {
        task_concurrency: c.task_concurrency,
        task_rate: rate(&c.task_rate),
        concurrency_key: c
            .concurrency_key
            .as_deref()
            .and_then(|k| k.parse::<FlowKey>().ok())
            .map(|k| (k, c.key_concurrency)),
        rate_key: c
            .rate_key
            .as_deref()
            .and_then(|k| k.parse::<FlowKey>().ok())
            .map(|k| (k, rate(&c.key_rate))),
    }
}

/// One rate in force for a job: its target's name in `runyard_starts`,
/// the target, the rate.
type RateInForce = (String, LimitTarget, Rate);

/// The limits in force for one job.
struct InForce {
    concurrency: Vec<(CountOf, LimitTarget, u32)>,
    rates: Vec<RateInForce>,
}

/// What a concurrency limit counts.
#[derive(Clone, PartialEq, Eq, Hash)]
enum CountOf {
    Task(String),
    Key(String),
}

/// The limits, counts and starts one claim (or one look at the holds)
/// works with.
struct Walk {
    rules: Rules,
    /// The running jobs of each task, and of each concurrency key (by the
    /// key as its rows keep it).
    tasks_running: FxHashMap<String, u32>,
    keys_running: FxHashMap<String, u32>,
    /// Whether some stored limit names a key.
    key_limits: bool,
    /// For each key looked at by [`Walk::key_full`]: none when it does not
    /// parse, else its stored concurrency limit in force, if any.
    key_stored: FxHashMap<String, Option<Option<u32>>>,
    /// For each rate target and window (in µs), the starts in it.
    starts: HashMap<(String, i64), u32>,
    /// The widest window seen for each rate target.
    widest: HashMap<String, i64>,
    now: i64,
}

impl Walk {
    fn new(conn: &Connection, now: i64) -> rusqlite::Result<Walk> {
        let mut tasks_running: FxHashMap<String, u32> = FxHashMap::default();
        let mut keys_running: FxHashMap<String, u32> = FxHashMap::default();
        {
            let mut st = conn.prepare_cached(&SQL.running_counts)?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let task: String = r.get(0)?;
                let key: Option<String> = r.get(1)?;
                let n: u32 = r.get(2)?;
                *tasks_running.entry(task).or_insert(0) += n;
                if let Some(k) = key {
                    *keys_running.entry(k).or_insert(0) += n;
                }
            }
        }
        let rules = Rules::read(conn)?;
        Ok(Walk {
            key_limits: rules
                .stored
                .keys()
                .any(|t| matches!(t, LimitTarget::Key { .. })),
            rules,
            tasks_running,
            keys_running,
            key_stored: FxHashMap::default(),
            starts: HashMap::new(),
            widest: HashMap::new(),
            now,
        })
    }

    fn in_force(&self, c: &Candidate) -> InForce {
        let l = carried(c);
        let stored = self.rules.task(&c.task);
        let mut concurrency = Vec::new();
        let mut rates = Vec::new();
        let task_c = stored.and_then(|s| s.0).or(l.task_concurrency);
        if let Some(n) = task_c {
            concurrency.push((
                CountOf::Task(c.task.clone()),
                LimitTarget::Task(c.task.clone()),
                n,
            ));
        }
        if let Some((k, own)) = &l.concurrency_key {
            if let Some(n) = self.rules.key(k).0.or(*own) {
                concurrency.push((CountOf::Key(k.to_string()), key_target(k), n));
            }
        }
        if let Some(r) = stored.and_then(|s| s.1).or(l.task_rate) {
            rates.push((
                format!("t:{}", c.task),
                LimitTarget::Task(c.task.clone()),
                r,
            ));
        }
        if let Some((k, own)) = &l.rate_key {
            if let Some(r) = self.rules.key(k).1.or(*own) {
                rates.push((format!("k:{k}"), key_target(k), r));
            }
        }
        InForce { concurrency, rates }
    }

    /// The running jobs that `of` counts.
    fn running(&self, of: &CountOf) -> u32 {
        let n = match of {
            CountOf::Task(t) => self.tasks_running.get(t),
            CountOf::Key(k) => self.keys_running.get(k),
        };
        n.copied().unwrap_or(0)
    }

    /// Whether the row `r` of claim_window.sql is of a concurrency key
    /// that is full for it: passed over by its key, before anything else
    /// of it is read (a key full once stays full for the rest of a claim).
    fn key_full(&mut self, r: &Row<'_>) -> rusqlite::Result<bool> {
        let rusqlite::types::ValueRef::Text(k) = r.get_ref(2)? else {
            return Ok(false);
        };
        let Ok(k) = std::str::from_utf8(k) else {
            return Ok(false);
        };
        let Some(&running) = self.keys_running.get(k) else {
            return Ok(false);
        };
        // A key its rows keep is one that parses (a row whose key does not
        // is held by no key limit, see `carried`); its stored limit, once.
        let stored = match self.key_stored.get(k) {
            Some(l) => *l,
            None => {
                let l = k
                    .parse::<FlowKey>()
                    .ok()
                    .map(|f| self.key_limits.then(|| self.rules.key(&f).0).flatten());
                self.key_stored.insert(k.to_string(), l);
                l
            }
        };
        let Some(stored) = stored else {
            return Ok(false);
        };
        let limit = match stored {
            Some(l) => Some(l),
            None => r.get::<_, Option<u32>>(3)?,
        };
        Ok(limit.is_some_and(|l| running >= l))
    }

    fn used(&mut self, conn: &Connection, target: &str, per: i64) -> rusqlite::Result<u32> {
        let w = self.widest.entry(target.to_string()).or_insert(per);
        *w = (*w).max(per);
        if let Some(n) = self.starts.get(&(target.to_string(), per)) {
            return Ok(*n);
        }
        let n: u32 = conn
            .prepare_cached(&SQL.starts_count)?
            .query_row(params![target, self.now - per], |r| r.get(0))?;
        self.starts.insert((target.to_string(), per), n);
        Ok(n)
    }

    /// What holds `c` now, if anything; else the rates it takes.
    fn check(
        &mut self,
        conn: &Connection,
        c: &Candidate,
    ) -> rusqlite::Result<Result<InForce, Hold>> {
        if self.rules.paused.holds(&c.task) {
            return Ok(Err(Hold::Paused {
                task: c.task.clone(),
            }));
        }
        let f = self.in_force(c);
        for (of, target, n) in &f.concurrency {
            if self.running(of) >= *n {
                return Ok(Err(Hold::Concurrency {
                    target: target.clone(),
                    limit: *n,
                }));
            }
        }
        for (name, target, rate) in &f.rates {
            if self.used(conn, name, micros(rate.per))? >= rate.count {
                return Ok(Err(Hold::Rate {
                    target: target.clone(),
                    rate: *rate,
                }));
            }
        }
        Ok(Ok(f))
    }

    /// `c` is taken: its slots and rate permits are used (the starts
    /// recorded in `record`, when it is a claim's transaction).
    fn take(
        &mut self,
        record: Option<&Connection>,
        c: &Candidate,
        f: &InForce,
    ) -> rusqlite::Result<()> {
        *self.tasks_running.entry(c.task.clone()).or_insert(0) += 1;
        if let Some(k) = &c.concurrency_key {
            *self.keys_running.entry(k.clone()).or_insert(0) += 1;
        }
        for (name, _, _) in &f.rates {
            for ((t, _), n) in self.starts.iter_mut() {
                if t == name {
                    *n += 1;
                }
            }
            if let Some(conn) = record {
                conn.prepare_cached(&SQL.starts_add)?
                    .execute(params![name, self.now])?;
            }
        }
        Ok(())
    }
}

/// What a claim under limits took: each job with whether a rate admitted
/// its start; and, when it found due jobs and every one held, the earliest
/// time one of them could be admitted with nothing else changing
/// (`i64::MAX` when only a slot freed or a pause ended would do).
pub(crate) struct Taken {
    /// Each job taken: its id, whether a rate admitted its start, and
    /// whether it took a concurrency slot.
    pub jobs: Vec<(i64, bool, bool)>,
    pub stalled: Option<i64>,
}

/// The name of a rate target in `runyard_starts`.
fn rate_name(target: &LimitTarget) -> String {
    match target {
        LimitTarget::Task(t) => format!("t:{t}"),
        LimitTarget::Key { name, value: None } => format!("k:{name}"),
        LimitTarget::Key {
            name,
            value: Some(v),
        } => format!("k:{name}:{v}"),
    }
}

/// The jobs a claim under limits takes at `now`: at most `max`, walking
/// at most `max(1024, 16 × max)` due jobs in claim order. Records the
/// starts it admits.
pub(crate) fn claim_limited(
    tx: &Tx<'_>,
    max: usize,
    now: i64,
    tasks: Option<&str>,
) -> rusqlite::Result<Taken> {
    let mut walk = Walk::new(tx, now)?;
    let window = max.saturating_mul(16).max(1024) as i64;
    let mut out = Vec::new();
    let mut frees = i64::MAX;
    let mut seen = false;
    // Walked as it is read, up to `max` taken: a job of a full key is
    // passed over by its key alone.
    let mut st = tx.prepare_cached(&SQL.claim_window)?;
    let mut rows = st.query(params![now, window, tasks])?;
    while out.len() < max {
        let Some(r) = rows.next()? else { break };
        seen = true;
        if walk.key_full(r)? {
            continue;
        }
        let c = candidate(r)?;
        match walk.check(tx, &c)? {
            Ok(f) => {
                walk.take(Some(tx), &c, &f)?;
                out.push((c.id, !f.rates.is_empty(), !f.concurrency.is_empty()));
            }
            Err(Hold::Rate { target, rate }) if out.is_empty() => {
                let per = micros(rate.per);
                let oldest: Option<i64> = tx
                    .prepare_cached(&SQL.starts_oldest)?
                    .query_row(params![rate_name(&target), now - per], |r| r.get(0))?;
                frees = frees.min(oldest.map_or(now, |s| s.saturating_add(per)));
            }
            Err(_) => {}
        }
    }
    drop(rows);
    drop(st);
    let mut forget = tx.prepare_cached(&SQL.starts_drop)?;
    for (target, per) in &walk.widest {
        forget.execute(params![target, now - per])?;
    }
    let stalled = (out.is_empty() && seen).then_some(frees);
    Ok(Taken { jobs: out, stalled })
}

/// What holds each due waiting job a claim would pass over now, in
/// claim order: `(id, hold)`.
fn held(conn: &Connection, now: i64) -> rusqlite::Result<Vec<(i64, Hold)>> {
    let mut walk = Walk::new(conn, now)?;
    let jobs: Vec<Candidate> = {
        let mut st = conn.prepare_cached(&SQL.hold_window)?;
        let rows = st.query_map(params![now], candidate)?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for c in &jobs {
        match walk.check(conn, c)? {
            Ok(f) => walk.take(None, c, &f)?,
            Err(h) => out.push((c.id, h)),
        }
    }
    Ok(out)
}

/// [`runyard_queue::FlowControl::holds`].
pub(crate) fn holds(conn: &Connection, now: i64) -> rusqlite::Result<Holds> {
    let mut by: HashMap<Hold, u64> = HashMap::new();
    for (_, h) in held(conn, now)? {
        *by.entry(h).or_insert(0) += 1;
    }
    let mut held: Vec<(Hold, u64)> = by.into_iter().collect();
    held.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Holds { held })
}

/// [`runyard_queue::FlowControl::hold`].
pub(crate) fn hold(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<Option<Hold>> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached(&SQL.hold_job)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        Some((BLOCKED, _)) => Ok(Some(Hold::Dependencies)),
        Some((WAITING, run_at)) if run_at <= now => Ok(held(conn, now)?
            .into_iter()
            .find(|(j, _)| *j == id)
            .map(|(_, h)| h)),
        _ => Ok(None),
    }
}

fn invalid(msg: String) -> QueueError {
    QueueError::new(QueueErrorKind::InvalidInput, msg)
}

/// [`runyard_queue::FlowControl::set_limit`], in `tx`.
pub(crate) fn set_limit(
    tx: &Tx<'_>,
    change: &LimitChange,
) -> rusqlite::Result<Result<Option<StoredLimit>, QueueError>> {
    if change.concurrency == Some(0) {
        return Ok(Err(invalid(format!(
            "a concurrency limit for {} must be at least 1 (to stop a task, pause it)",
            change.target
        ))));
    }
    if let LimitTarget::Key { name, .. } = &change.target {
        if let Err(e) = runyard_core::check_key_name(name) {
            return Ok(Err(invalid(format!("a limit for key `{name}`: {e}"))));
        }
    }
    let target = serde_json::to_string(&change.target).unwrap_or_default();
    let now = stored_limits(tx)?
        .into_iter()
        .find(|l| l.target == change.target);
    let (mut c, mut r) = match (&now, change.clear) {
        (Some(l), false) => (l.concurrency, l.rate),
        _ => (None, None),
    };
    c = change.concurrency.or(c);
    r = change.rate.or(r);
    if c.is_none() && r.is_none() {
        tx.prepare_cached(&SQL.limit_clear)?.execute([&target])?;
        return Ok(Ok(None));
    }
    tx.prepare_cached(&SQL.limit_set)?
        .execute(params![target, c, r.map(|r| r.to_string())])?;
    Ok(Ok(Some(StoredLimit {
        target: change.target.clone(),
        concurrency: c,
        rate: r,
    })))
}

/// [`runyard_queue::FlowControl::limits`].
pub(crate) fn limits(conn: &Connection) -> rusqlite::Result<Vec<StoredLimit>> {
    stored_limits(conn)
}

/// [`runyard_queue::FlowControl::paused`].
pub(crate) fn paused(conn: &Connection) -> rusqlite::Result<Paused> {
    paused_tasks(conn)
}

/// The claims not started of `task` (every task when `None`) that a pause
/// holds back now.
pub(crate) fn unstarted(conn: &Connection, task: Option<&str>) -> rusqlite::Result<Vec<i64>> {
    let p = paused_tasks(conn)?;
    let mut st = conn.prepare_cached(&SQL.unstarted)?;
    let rows = st.query_map([task], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, t) = row?;
        if p.holds(&t) {
            out.push(id);
        }
    }
    Ok(out)
}

/// [`runyard_queue::FlowControl::pause`], in `tx`.
pub(crate) fn pause(tx: &Tx<'_>, task: Option<&str>) -> rusqlite::Result<Vec<i64>> {
    tx.prepare_cached(&SQL.pause)?
        .execute([task.unwrap_or("")])?;
    unstarted(tx, task)
}

/// [`runyard_queue::FlowControl::resume`], in `tx`.
pub(crate) fn resume(tx: &Tx<'_>, task: Option<&str>) -> rusqlite::Result<bool> {
    let n = match task {
        Some(t) => tx.prepare_cached(&SQL.resume)?.execute([t])?,
        None => tx.prepare_cached(&SQL.resume_all)?.execute([])?,
    };
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OpenMode, SqliteQueue};
    use runyard_queue::conformance::job;
    use runyard_queue::Queue;
    use rusqlite::StatementStatus;

    fn unique(key: &str, on_conflict: OnConflict) -> NewJob {
        let mut j = job("t", 1, 0);
        j.unique = Some(runyard_core::Unique {
            key: key.into(),
            within: Some(Duration::from_secs(60)),
            on_conflict,
        });
        j
    }

    /// A batch's unique keys find their holders (and their latest successes
    /// within a window) in one statement each, run once for the batch, not
    /// once a job.
    #[test]
    fn a_batch_looks_up_its_unique_keys_in_one_statement() {
        let d = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(&d.path().join("q.db"), OpenMode::CreateOrOpen).unwrap();
        let batch = |keys: std::ops::Range<u32>| {
            keys.map(|i| unique(&format!("k{i}"), OnConflict::Skip))
                .collect::<Vec<_>>()
        };
        let first = q.enqueue(batch(0..50)).unwrap();
        assert!(first.iter().all(|e| matches!(e, Enqueued::New(_))));
        let second = q.enqueue(batch(25..75)).unwrap();
        assert_eq!(
            &second[..25],
            &first[25..]
                .iter()
                .map(|e| Enqueued::Duplicate(e.id()))
                .collect::<Vec<_>>()[..]
        );
        assert!(second[25..].iter().all(|e| matches!(e, Enqueued::New(_))));
        let conn = q.lock();
        for sql in [&SQL.unique_holders, &SQL.unique_within] {
            let st = conn.prepare_cached(sql).unwrap();
            assert_eq!(
                st.get_status(StatementStatus::Run),
                2,
                "once a batch: {sql}"
            );
            assert_eq!(st.get_status(StatementStatus::RePrepare), 0, "{sql}");
        }
    }

    /// Jobs of one batch see the earlier jobs of the batch: the first with
    /// a key holds it for the later ones, which replace or skip.
    #[test]
    fn a_batch_sees_its_own_holders() {
        let d = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(&d.path().join("q.db"), OpenMode::CreateOrOpen).unwrap();
        let out = q
            .enqueue(vec![
                unique("a", OnConflict::Skip),
                unique("a", OnConflict::Replace),
                unique("b", OnConflict::Replace),
                unique("a", OnConflict::Skip),
            ])
            .unwrap();
        let a = out[0].id();
        assert!(matches!(out[0], Enqueued::New(_)));
        assert_eq!(out[1], Enqueued::Replaced(a));
        assert!(matches!(out[2], Enqueued::New(b) if b != a));
        assert_eq!(out[3], Enqueued::Duplicate(a));
    }

    /// A claim under limits reads its window as it walks and stops once it
    /// has taken `max`: claiming one of 2,000 due jobs reads a few rows of
    /// the fair index, not the whole window of 1,024.
    #[test]
    fn a_claim_under_limits_reads_only_as_far_as_it_takes() {
        let d = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(&d.path().join("q.db"), OpenMode::CreateOrOpen).unwrap();
        let jobs = (0..2000)
            .map(|i| {
                let mut j = job("t", 1, 0);
                let k = FlowKey::new("k", &i.to_string()).unwrap();
                j.limits.concurrency_key = Some((k, Some(1)));
                j
            })
            .collect();
        q.enqueue(jobs).unwrap();
        let steps = || {
            let conn = q.lock();
            let st = conn.prepare_cached(&SQL.claim_window).unwrap();
            st.get_status(StatementStatus::VmStep)
        };
        assert_eq!(steps(), 0);
        let c = q.claim("w", 1, Duration::from_secs(30)).unwrap();
        assert_eq!(c.len(), 1);
        let read = steps();
        assert!(read > 0 && read < 200, "{read} steps to take one job");
    }
}
