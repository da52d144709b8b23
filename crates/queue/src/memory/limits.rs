//! Flow control in the in-memory queue (`docs/backends.md` §8): unique
//! keys, concurrency and rate limits per task and per key value, paused
//! tasks, and the fair order of waiting jobs.
//!
//! # What a claim pays
//!
//! Every task has a [`TaskFlow`] (its running count, its stored limits, its
//! pause); a job that carries limits or a unique key has a [`Lim`] in its
//! flow box, with its keys interned as [`KeyState`] indices. A plain job of
//! a task with no stored limit, on a queue where nothing is paused, is
//! claimed after one look at `active`: no lookup by name, no allocation.
//!
//! # The fair order
//!
//! Waiting jobs of one priority are ordered by (tag, index). Most jobs
//! arrive in that order, so a priority's jobs are kept as a few sorted
//! *runs* ([`Fair`]), merged by a heap of their heads: a queue of plain
//! jobs is one run, and a claim pops its front.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use runyard_core::{FlowKey, Hold, JobLimits, LimitTarget, Rate, StoredLimit};
use rustc_hash::FxHashMap;

use super::micros;

/// A job's limits and unique key, with its keys interned.
#[derive(Debug, Default, Clone)]
pub(super) struct Lim {
    pub(super) task_conc: Option<u32>,
    pub(super) task_rate: Option<Rate>,
    /// Its concurrency key (a [`KeyState`] index) and the default it gives.
    pub(super) conc: Option<(u32, Option<u32>)>,
    /// Its rate key and the default it gives.
    pub(super) rate: Option<(u32, Option<Rate>)>,
    /// Its unique key (an index into [`Flows::uniques`]).
    pub(super) unique: Option<u32>,
}

impl Lim {
    /// Whether it carries the unique key `unique` or the flow key `flow`
    /// as its concurrency or rate key (see [`Flows::find_filter_key`]).
    pub(super) fn carries(&self, (unique, flow): (Option<u32>, Option<u32>)) -> bool {
        (unique.is_some() && self.unique == unique)
            || flow.is_some_and(|k| {
                self.conc.is_some_and(|c| c.0 == k) || self.rate.is_some_and(|r| r.0 == k)
            })
    }

    /// Its fairness key: the concurrency key, else the rate key.
    pub(super) fn fair(&self) -> Option<u32> {
        self.conc.map(|c| c.0).or(self.rate.map(|r| r.0))
    }
}

/// One value of a key: what it counts and what is stored for it.
#[derive(Debug)]
pub(super) struct KeyState {
    key: FlowKey,
    /// Running jobs that carry it as their concurrency key.
    running: u32,
    /// Starts of jobs that carry it as their rate key, oldest first.
    starts: VecDeque<i64>,
    stored_conc: Option<u32>,
    stored_rate: Option<Rate>,
    /// The tag last given to a job inserted with it as fairness key.
    last_tag: Option<u32>,
}

/// One task: its running count, stored limits and pause.
#[derive(Debug, Default, Clone)]
pub(super) struct TaskFlow {
    pub(super) running: u32,
    starts: VecDeque<i64>,
    stored_conc: Option<u32>,
    stored_rate: Option<Rate>,
    paused: bool,
}

/// The jobs with one unique key that may still hold it, and its latest
/// success.
#[derive(Debug, Default)]
pub(super) struct UniqueEntry {
    /// The key.
    pub(super) key: String,
    /// Jobs with the key not known to have ended (pruned on lookup).
    pub(super) live: Vec<u32>,
    /// The end of the latest success with the key, and whose.
    pub(super) success: Option<(i64, u32)>,
}

/// The queue's flow-control state.
#[derive(Debug, Default)]
pub(super) struct Flows {
    /// One more than the largest tag given so far.
    pub(super) next_tag: u32,
    /// The tag last given to a job inserted due without a fairness key:
    /// such jobs are one group, the empty key's.
    keyless_last: Option<u32>,
    keys: Vec<KeyState>,
    key_ids: FxHashMap<FlowKey, u32>,
    pub(super) tasks: Vec<TaskFlow>,
    stored: BTreeMap<LimitTarget, StoredLimit>,
    pub(super) paused_all: bool,
    paused: BTreeSet<String>,
    pub(super) uniques: Vec<UniqueEntry>,
    unique_ids: FxHashMap<String, u32>,
    /// Whether a limit is stored or a task paused: without, a plain job
    /// needs no check at claim.
    pub(super) active: bool,
}

/// Why a job is held, before it is said as a [`Hold`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Why {
    Paused,
    TaskConcurrency(u32),
    /// A key (index) and its limit.
    KeyConcurrency(u32, u32),
    TaskRate(Rate),
    KeyRate(u32, Rate),
}

/// A job's target for a hold, as [`Hold`] names it.
fn key_target(k: &FlowKey) -> LimitTarget {
    LimitTarget::Key {
        name: k.name().to_string(),
        value: (!k.value().is_empty()).then(|| k.value().to_string()),
    }
}

/// Starts within `(now - per, now]`.
fn used(starts: &VecDeque<i64>, rate: Rate, now: i64) -> usize {
    let cutoff = now.saturating_sub(micros(rate.per));
    starts.len() - starts.partition_point(|&s| s <= cutoff)
}

fn record_start(starts: &mut VecDeque<i64>, rate: Rate, now: i64) {
    let cutoff = now.saturating_sub(micros(rate.per));
    while starts.front().is_some_and(|&s| s <= cutoff) {
        starts.pop_front();
    }
    starts.push_back(now);
}

impl Flows {
    /// Gives a tag: the next one is above it.
    pub(super) fn give(&mut self, tag: u32) -> u32 {
        self.next_tag = self.next_tag.max(tag.saturating_add(1));
        tag
    }

    /// The tag of a due job inserted with fairness key `fair` (a key
    /// index; `None` is the group of the empty key, every job without
    /// one), the frontier being `v`: `max(last + 1, v)`, which becomes the
    /// group's last. So a group's jobs keep their order, and a queue of
    /// keyless jobs stays one sorted run.
    pub(super) fn insert_tag(&mut self, fair: Option<u32>, v: u32) -> u32 {
        let last = match fair {
            Some(k) => &mut self.keys[k as usize].last_tag,
            None => &mut self.keyless_last,
        };
        let tag = last.map_or(v, |l| l.saturating_add(1).max(v));
        *last = Some(tag);
        self.give(tag)
    }

    /// Every tag in use moved down by `m` (see `State::rebase_tags`).
    pub(super) fn rebase(&mut self, m: u32) {
        self.next_tag -= m;
        self.keyless_last = self.keyless_last.and_then(|t| t.checked_sub(m));
        for ks in &mut self.keys {
            ks.last_tag = ks.last_tag.and_then(|t| t.checked_sub(m));
        }
    }

    /// Every last tag moved up by `by` and the next one set to `next`, as
    /// if that many tags had been given since.
    #[cfg(test)]
    pub(super) fn lift(&mut self, by: u32, next: u32) {
        self.next_tag = next;
        self.keyless_last = self.keyless_last.map(|t| t + by);
        for ks in &mut self.keys {
            ks.last_tag = ks.last_tag.map(|t| t + by);
        }
    }

    /// Brings the per-task state up to `n` tasks.
    pub(super) fn tasks_known(&mut self, names: &[runyard_core::TaskName]) {
        while self.tasks.len() < names.len() {
            let name = names[self.tasks.len()].as_str();
            let stored = self.stored.get(&LimitTarget::Task(name.to_string()));
            self.tasks.push(TaskFlow {
                stored_conc: stored.and_then(|s| s.concurrency),
                stored_rate: stored.and_then(|s| s.rate),
                paused: self.paused.contains(name),
                ..TaskFlow::default()
            });
        }
    }

    fn intern(&mut self, key: &FlowKey) -> u32 {
        if let Some(&k) = self.key_ids.get(key) {
            return k;
        }
        let k = self.keys.len() as u32;
        let mut ks = KeyState {
            key: key.clone(),
            running: 0,
            starts: VecDeque::new(),
            stored_conc: None,
            stored_rate: None,
            last_tag: None,
        };
        resolve_key(&self.stored, &mut ks);
        self.keys.push(ks);
        self.key_ids.insert(key.clone(), k);
        k
    }

    /// A job's limits and unique key, interned.
    pub(super) fn lim(&mut self, limits: &JobLimits, unique: Option<u32>) -> Lim {
        Lim {
            task_conc: limits.task_concurrency,
            task_rate: limits.task_rate,
            conc: limits
                .concurrency_key
                .as_ref()
                .map(|(k, n)| (self.intern(k), *n)),
            rate: limits.rate_key.as_ref().map(|(k, r)| (self.intern(k), *r)),
            unique,
        }
    }

    /// The index of a unique key.
    pub(super) fn unique_id(&mut self, key: &str) -> u32 {
        if let Some(&u) = self.unique_ids.get(key) {
            return u;
        }
        let u = self.uniques.len() as u32;
        self.uniques.push(UniqueEntry {
            key: key.to_string(),
            ..UniqueEntry::default()
        });
        self.unique_ids.insert(key.to_string(), u);
        u
    }

    /// The keys a job with these limits carries, as a view shows them.
    pub(super) fn keys_of(&self, lim: &Lim) -> runyard_core::JobKeys {
        runyard_core::JobKeys {
            unique: lim.unique.map(|u| self.uniques[u as usize].key.clone()),
            concurrency: lim.conc.map(|(k, _)| self.keys[k as usize].key.to_string()),
            rate: lim.rate.map(|(k, _)| self.keys[k as usize].key.to_string()),
        }
    }

    /// The index of a unique key, if a job ever had it.
    pub(super) fn find_unique(&self, key: &str) -> Option<u32> {
        self.unique_ids.get(key).copied()
    }

    /// What a list's key filter `key` names here: the unique key of that
    /// text and the flow key of it, where jobs carry them.
    pub(super) fn find_filter_key(&self, key: &str) -> (Option<u32>, Option<u32>) {
        let (name, value) = key.split_once(':').unwrap_or((key, ""));
        let flow = FlowKey::new(name, value)
            .ok()
            .and_then(|k| self.key_ids.get(&k).copied());
        (self.find_unique(key), flow)
    }

    /// What holds a due job of task `task` with limits `lim` now, if
    /// anything: paused, then a full concurrency limit (task, key), then a
    /// used rate (task, key). `Ok(true)` when it may be claimed under a
    /// rate. Allocates nothing: a claim asks this of every job it looks at.
    pub(super) fn check(&self, task: u32, lim: Option<&Lim>, now: i64) -> Result<bool, Why> {
        let tf = self.tasks.get(task as usize);
        if self.paused_all || tf.is_some_and(|t| t.paused) {
            return Err(Why::Paused);
        }
        let running = tf.map_or(0, |t| t.running);
        let task_conc = tf
            .and_then(|t| t.stored_conc)
            .or(lim.and_then(|l| l.task_conc));
        if let Some(limit) = task_conc {
            if running >= limit {
                return Err(Why::TaskConcurrency(limit));
            }
        }
        if let Some((k, own)) = lim.and_then(|l| l.conc) {
            let ks = &self.keys[k as usize];
            if let Some(limit) = ks.stored_conc.or(own) {
                if ks.running >= limit {
                    return Err(Why::KeyConcurrency(k, limit));
                }
            }
        }
        let mut rated = false;
        let task_rate = tf
            .and_then(|t| t.stored_rate)
            .or(lim.and_then(|l| l.task_rate));
        if let Some(rate) = task_rate {
            let starts = tf.map(|t| &t.starts);
            if starts.is_some_and(|s| used(s, rate, now) >= rate.count as usize) {
                return Err(Why::TaskRate(rate));
            }
            rated = true;
        }
        if let Some((k, own)) = lim.and_then(|l| l.rate) {
            let ks = &self.keys[k as usize];
            if let Some(rate) = ks.stored_rate.or(own) {
                if used(&ks.starts, rate, now) >= rate.count as usize {
                    return Err(Why::KeyRate(k, rate));
                }
                rated = true;
            }
        }
        Ok(rated)
    }

    /// Whether a job of task `task` with limits `lim` takes a slot of a
    /// concurrency limit in force when it is claimed.
    pub(super) fn slotted(&self, task: u32, lim: Option<&Lim>) -> bool {
        let tf = self.tasks.get(task as usize);
        let task_conc = tf
            .and_then(|t| t.stored_conc)
            .or(lim.and_then(|l| l.task_conc));
        let key_conc = lim
            .and_then(|l| l.conc)
            .and_then(|(k, own)| self.keys[k as usize].stored_conc.or(own));
        task_conc.is_some() || key_conc.is_some()
    }

    /// The earliest time a job held for `why` may be claimed, with nothing
    /// else changing: when the oldest start in a used window leaves it
    /// (never, for a pause or a full concurrency limit).
    pub(super) fn frees_at(&self, why: Why, task: u32, now: i64) -> i64 {
        let (starts, rate) = match why {
            Why::TaskRate(r) => match self.tasks.get(task as usize) {
                Some(t) => (&t.starts, r),
                None => return now,
            },
            Why::KeyRate(k, r) => (&self.keys[k as usize].starts, r),
            _ => return i64::MAX,
        };
        let cutoff = now.saturating_sub(micros(rate.per));
        let first = starts.partition_point(|&s| s <= cutoff);
        starts
            .get(first)
            .map_or(now, |&s| s.saturating_add(micros(rate.per)))
    }

    /// A reason, as [`Hold`] says it.
    pub(super) fn hold(&self, why: Why, task_name: &str) -> Hold {
        let task = || LimitTarget::Task(task_name.to_string());
        match why {
            Why::Paused => Hold::Paused {
                task: task_name.to_string(),
            },
            Why::TaskConcurrency(limit) => Hold::Concurrency {
                target: task(),
                limit,
            },
            Why::KeyConcurrency(k, limit) => Hold::Concurrency {
                target: key_target(&self.keys[k as usize].key),
                limit,
            },
            Why::TaskRate(rate) => Hold::Rate {
                target: task(),
                rate,
            },
            Why::KeyRate(k, rate) => Hold::Rate {
                target: key_target(&self.keys[k as usize].key),
                rate,
            },
        }
    }

    /// Takes a claimed job's slots and, where a rate is in force, records
    /// its start at `now`.
    pub(super) fn take(&mut self, task: u32, lim: Option<&Lim>, now: i64) {
        if self.tasks.len() <= task as usize {
            self.tasks.resize(task as usize + 1, TaskFlow::default());
        }
        let tf = &mut self.tasks[task as usize];
        tf.running += 1;
        if let Some(rate) = tf.stored_rate.or(lim.and_then(|l| l.task_rate)) {
            record_start(&mut tf.starts, rate, now);
        }
        let Some(lim) = lim else {
            return;
        };
        if let Some((k, _)) = lim.conc {
            self.keys[k as usize].running += 1;
        }
        if let Some((k, own)) = lim.rate {
            let ks = &mut self.keys[k as usize];
            if let Some(rate) = ks.stored_rate.or(own) {
                record_start(&mut ks.starts, rate, now);
            }
        }
    }

    /// A job left running: its slots are free.
    pub(super) fn leave(&mut self, task: u32, lim: Option<&Lim>) {
        if let Some(tf) = self.tasks.get_mut(task as usize) {
            tf.running = tf.running.saturating_sub(1);
        }
        if let Some((k, _)) = lim.and_then(|l| l.conc) {
            let ks = &mut self.keys[k as usize];
            ks.running = ks.running.saturating_sub(1);
        }
    }

    /// Whether jobs of task `task` may not start.
    pub(super) fn is_paused(&self, task: u32) -> bool {
        self.paused_all || self.tasks.get(task as usize).is_some_and(|t| t.paused)
    }

    fn refresh_active(&mut self) {
        self.active = self.paused_all || !self.paused.is_empty() || !self.stored.is_empty();
    }

    /// Stores a change; returns the limit as it now is.
    pub(super) fn set_limit(
        &mut self,
        target: &LimitTarget,
        concurrency: Option<u32>,
        rate: Option<Rate>,
        clear: bool,
        tasks: &[runyard_core::TaskName],
    ) -> Option<StoredLimit> {
        if clear {
            self.stored.remove(target);
        }
        if concurrency.is_some() || rate.is_some() {
            let s = self
                .stored
                .entry(target.clone())
                .or_insert_with(|| StoredLimit {
                    target: target.clone(),
                    concurrency: None,
                    rate: None,
                });
            if concurrency.is_some() {
                s.concurrency = concurrency;
            }
            if rate.is_some() {
                s.rate = rate;
            }
        }
        let now = self.stored.get(target).cloned();
        match target {
            LimitTarget::Task(t) => {
                if let Some(p) = tasks.iter().position(|n| n.as_str() == t) {
                    if let Some(tf) = self.tasks.get_mut(p) {
                        tf.stored_conc = now.as_ref().and_then(|s| s.concurrency);
                        tf.stored_rate = now.as_ref().and_then(|s| s.rate);
                    }
                }
            }
            LimitTarget::Key { name, .. } => {
                for ks in self.keys.iter_mut().filter(|k| k.key.name() == name) {
                    resolve_key(&self.stored, ks);
                }
            }
        }
        self.refresh_active();
        now
    }

    /// The stored limits, by target.
    pub(super) fn limits(&self) -> Vec<StoredLimit> {
        self.stored.values().cloned().collect()
    }

    /// Pauses a task (every task when `None`).
    pub(super) fn pause(&mut self, task: Option<&str>, tasks: &[runyard_core::TaskName]) {
        match task {
            None => self.paused_all = true,
            Some(t) => {
                self.paused.insert(t.to_string());
                if let Some(p) = tasks.iter().position(|n| n.as_str() == t) {
                    if let Some(tf) = self.tasks.get_mut(p) {
                        tf.paused = true;
                    }
                }
            }
        }
        self.refresh_active();
    }

    /// Resumes a task (every one when `None`); whether it was paused.
    pub(super) fn resume(&mut self, task: Option<&str>, tasks: &[runyard_core::TaskName]) -> bool {
        let was = match task {
            None => {
                let was = self.paused_all || !self.paused.is_empty();
                self.paused_all = false;
                self.paused.clear();
                for tf in &mut self.tasks {
                    tf.paused = false;
                }
                was
            }
            Some(t) => {
                let was = self.paused.remove(t);
                if let Some(p) = tasks.iter().position(|n| n.as_str() == t) {
                    if let Some(tf) = self.tasks.get_mut(p) {
                        tf.paused = false;
                    }
                }
                was
            }
        };
        self.refresh_active();
        was
    }

    /// The tasks paused by name, and whether every task is.
    pub(super) fn paused(&self) -> (bool, Vec<String>) {
        (self.paused_all, self.paused.iter().cloned().collect())
    }
}

/// Resolves what is stored for one key value: its own value's limit, else
/// its name's, per kind.
fn resolve_key(stored: &BTreeMap<LimitTarget, StoredLimit>, ks: &mut KeyState) {
    let own = (!ks.key.value().is_empty())
        .then(|| {
            stored.get(&LimitTarget::Key {
                name: ks.key.name().to_string(),
                value: Some(ks.key.value().to_string()),
            })
        })
        .flatten();
    let name = stored.get(&LimitTarget::Key {
        name: ks.key.name().to_string(),
        value: None,
    });
    ks.stored_conc = own
        .and_then(|s| s.concurrency)
        .or(name.and_then(|s| s.concurrency));
    ks.stored_rate = own.and_then(|s| s.rate).or(name.and_then(|s| s.rate));
}

/// The waiting jobs of one priority, in (tag, index) order: sorted runs
/// merged by a heap of their heads.
#[derive(Debug, Default)]
pub(super) struct Fair {
    runs: Vec<VecDeque<(u32, u32)>>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(u32, u32, u32)>>,
    /// The run that takes entries at its back.
    last: Option<u32>,
}

impl Fair {
    /// Adds an entry.
    pub(super) fn push(&mut self, e: (u32, u32)) {
        if let Some(r) = self.last {
            let run = &mut self.runs[r as usize];
            if run.back().is_some_and(|b| *b <= e) {
                run.push_back(e);
                return;
            }
        }
        let r = self.new_run(std::iter::once(e));
        self.last = Some(r);
    }

    /// Adds entries already in order, as a run of their own.
    pub(super) fn push_run(&mut self, run: Vec<(u32, u32)>) {
        if !run.is_empty() {
            self.new_run(run);
        }
    }

    /// A run of these entries (at least one), in a freed run's space when
    /// there is one: a queue that empties and fills again allocates nothing.
    fn new_run(&mut self, entries: impl IntoIterator<Item = (u32, u32)>) -> u32 {
        let r = match self.free.pop() {
            Some(r) => r,
            None => {
                self.runs.push(VecDeque::new());
                self.runs.len() as u32 - 1
            }
        };
        let run = &mut self.runs[r as usize];
        run.extend(entries);
        let (t, i) = run[0];
        self.heap.push(Reverse((t, i, r)));
        r
    }

    /// How many runs hold entries.
    #[cfg(test)]
    pub(super) fn runs(&self) -> usize {
        self.heap.len()
    }

    /// The first entry.
    pub(super) fn peek(&self) -> Option<(u32, u32)> {
        self.heap.peek().map(|Reverse((t, i, _))| (*t, *i))
    }

    /// Takes the first entry.
    pub(super) fn pop(&mut self) -> Option<(u32, u32)> {
        let mut top = self.heap.peek_mut()?;
        let r = top.0 .2;
        let run = &mut self.runs[r as usize];
        let e = run.pop_front().expect("a run in the heap has entries");
        match run.front() {
            Some(&(t, i)) => top.0 = (t, i, r),
            None => {
                PeekMut::pop(top);
                self.free.push(r);
                if self.last == Some(r) {
                    self.last = None;
                }
            }
        }
        Some(e)
    }
}
