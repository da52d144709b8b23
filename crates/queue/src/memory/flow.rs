//! Dependencies in the in-memory queue: a job's parents and children, when
//! a blocked job is released or cancelled, and how a retry gives the jobs
//! its end had cancelled back their `blocked` state.
//!
//! A job that has a name, parents or children carries a [`Flow`] (boxed:
//! most jobs have none, and the record stays small). `pending` counts the
//! parents that have not yet ended as the job needs: it is `blocked` while
//! that is above zero. Every transition into a terminal state goes through
//! [`State::settle`], which moves the dependents on.
//!
//! `pins` counts the jobs that still need this one (see "Forgetting" in
//! the queue's module comment): each job after it, and each job naming it
//! as its cause, until that job is forgotten. A cause is only ever set
//! through [`State::set_cause`], which keeps the count.

use runyard_core::{JobId, JobState, Output, Parent, Parents, RunIf};

use super::{id_of, State, Tag};
use crate::error::{QueueError, QueueErrorKind};
use crate::queue::{Cascade, NewJob};

/// A job's place in a workflow.
#[derive(Debug, Default)]
pub(super) struct Flow {
    pub(super) name: Option<String>,
    /// Parents, in the order the job named them: (index, key, many).
    pub(super) after: Vec<(u32, String, bool)>,
    /// Jobs after this one, by index, in the order they were added.
    pub(super) children: Vec<u32>,
    pub(super) run_if: RunIf,
    /// Parents that have not ended as this job needs.
    pub(super) pending: u32,
    /// The job whose end cancelled this one.
    pub(super) cause: Option<u32>,
    /// Its limits and unique key, if it has any.
    pub(super) lim: Option<super::limits::Lim>,
    /// Jobs not forgotten that are after this one or name it as their cause.
    pub(super) pins: u32,
}

/// A new job's flow before its parents are resolved to indices.
pub(super) struct Unlinked {
    pub(super) name: Option<String>,
    pub(super) after: Vec<(Parent, String, bool)>,
    pub(super) run_if: RunIf,
}

impl Unlinked {
    /// The flow part of a new job, if it has one.
    pub(super) fn take(job: &mut NewJob) -> Option<Unlinked> {
        if !job.is_linked() {
            return None;
        }
        Some(Unlinked {
            name: job.name.take(),
            after: std::mem::take(&mut job.after)
                .into_iter()
                .map(|a| (a.parent, a.key, a.many))
                .collect(),
            run_if: job.run_if,
        })
    }
}

/// What a parent's state means for a child that is after it.
enum Seen {
    /// Ended as the child needs.
    Met,
    /// Not ended yet.
    Pending,
    /// Ended dead or cancelled, and the child runs only on success: it is
    /// cancelled, naming this job.
    Fails(u32),
}

/// Checks that every parent given by id is in the queue (`known`; a job
/// forgotten is not).
pub(super) fn check_parents(
    jobs: &[NewJob],
    known: impl Fn(JobId) -> bool,
) -> Result<(), QueueError> {
    for j in jobs {
        for a in &j.after {
            if let Parent::Job(id) = a.parent {
                if !known(id) {
                    return Err(QueueError::new(
                        QueueErrorKind::InvalidInput,
                        format!(
                            "a job of task `{}` is after job {id}, which is not in the queue; nothing was enqueued",
                            j.task
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

impl State {
    fn flow(&self, i: u32) -> Option<&Flow> {
        self.rec(i as usize).flow.as_deref()
    }

    pub(super) fn flow_mut(&mut self, i: u32) -> &mut Flow {
        self.rec_mut(i as usize)
            .flow
            .get_or_insert_with(Box::default)
    }

    /// Sets (or clears) the cause of job `i`, keeping the pins of the
    /// old and the new cause; the old one may be forgotten then.
    pub(super) fn set_cause(&mut self, i: u32, cause: Option<u32>) {
        let old = std::mem::replace(&mut self.flow_mut(i).cause, cause);
        if old == cause {
            return;
        }
        if let Some(c) = cause {
            self.flow_mut(c).pins += 1;
        }
        if let Some(o) = old {
            if self.unpin(o) {
                self.forget(o);
            }
        }
    }

    /// One job fewer needs job `p`; whether none does now.
    pub(super) fn unpin(&mut self, p: u32) -> bool {
        let f = self.flow_mut(p);
        f.pins = f.pins.saturating_sub(1);
        f.pins == 0
    }

    /// The job that a child of `p` names as its cause when `p`'s end
    /// cancels it: the job that ended first.
    fn root_cause(&self, p: u32) -> u32 {
        self.flow(p).and_then(|f| f.cause).unwrap_or(p)
    }

    fn seen(&self, p: u32, run_if: RunIf) -> Seen {
        match self.rec(p as usize).state {
            JobState::Succeeded => Seen::Met,
            JobState::Dead | JobState::Cancelled if run_if == RunIf::Always => Seen::Met,
            JobState::Dead | JobState::Cancelled => Seen::Fails(self.root_cause(p)),
            _ => Seen::Pending,
        }
    }

    /// Links the job just inserted at `i` to its parents (given as
    /// indices) and puts it in its first state: blocked, cancelled (a
    /// parent already failed) or waiting until `at`.
    pub(super) fn link(
        &mut self,
        i: u32,
        flow: Unlinked,
        parents: Vec<u32>,
        at: i64,
        now: i64,
        tag: Tag,
    ) {
        let mut pending = 0;
        let mut fails = None;
        let mut after = Vec::with_capacity(parents.len());
        for (p, (_, key, many)) in parents.into_iter().zip(flow.after) {
            let pf = self.flow_mut(p);
            pf.children.push(i);
            pf.pins += 1;
            match self.seen(p, flow.run_if) {
                Seen::Met => {}
                Seen::Pending => pending += 1,
                Seen::Fails(c) => fails = fails.or(Some(c)),
            }
            after.push((p, key, many));
        }
        let f = self.flow_mut(i);
        f.name = flow.name;
        f.after = after;
        f.run_if = flow.run_if;
        f.pending = pending;
        self.rec_mut(i as usize).ready_at = at;
        if let Some(c) = fails {
            self.set_cause(i, Some(c));
            self.set_state(i, JobState::Cancelled);
        } else if pending > 0 {
            self.set_state(i, JobState::Blocked);
        } else {
            self.make_waiting_as(i, at, now, tag);
        }
    }

    /// Moves on the dependents of job `i`, which has just ended: released
    /// when it was their last pending parent, cancelled (with theirs,
    /// transitively) when it failed them.
    pub(super) fn settle(&mut self, i: u32, now: i64, cascade: &mut Cascade) {
        // Most jobs are in no workflow: nothing to settle, nothing allocated.
        if self.flow(i).is_none_or(|f| f.children.is_empty()) {
            return;
        }
        let mut ended = vec![i];
        while let Some(p) = ended.pop() {
            let Some(children) = self.flow(p).map(|f| f.children.clone()) else {
                continue;
            };
            for c in children {
                if self.rec(c as usize).state != JobState::Blocked {
                    continue;
                }
                let run_if = self.flow(c).map_or(RunIf::Success, |f| f.run_if);
                match self.seen(p, run_if) {
                    Seen::Pending => {}
                    Seen::Met => {
                        let f = self.flow_mut(c);
                        f.pending = f.pending.saturating_sub(1);
                        if f.pending == 0 {
                            let at = self.rec(c as usize).ready_at.max(now);
                            self.make_waiting(c, at, now);
                            cascade.unblocked.push(id_of(c));
                        }
                    }
                    Seen::Fails(cause) => {
                        self.set_cause(c, Some(cause));
                        self.set_state(c, JobState::Cancelled);
                        cascade.cancelled.push(id_of(c));
                        ended.push(c);
                    }
                }
            }
        }
    }

    /// What job `i`'s parents, as they are now, mean for it: how many have
    /// not ended as it needs, and the cause that cancels it, if one of
    /// them does.
    fn count(&self, i: u32) -> (u32, Option<u32>) {
        let Some(f) = self.flow(i) else {
            return (0, None);
        };
        let mut pending = 0;
        let mut fails = None;
        for a in &f.after {
            match self.seen(a.0, f.run_if) {
                Seen::Met => {}
                Seen::Pending => pending += 1,
                Seen::Fails(c) => fails = fails.or(Some(c)),
            }
        }
        (pending, fails)
    }

    /// After job `i` was retried: the jobs its end cancelled (transitively,
    /// those naming it as their cause) are blocked again, their pending
    /// parents counted afresh, and listed in `reblocked`. One that another
    /// failed parent still cancels stays cancelled, naming that parent's
    /// root cause instead (as its dependents do), and is listed nowhere.
    /// Then every job after `i` or after one blocked again that waits
    /// (blocked, queued or scheduled: a `run_if = always` job) counts its
    /// pending parents afresh; one released already is blocked again and
    /// listed in `reblocked` too.
    pub(super) fn reblock(&mut self, i: u32, now: i64, cascade: &mut Cascade) {
        let mut found = rustc_hash::FxHashSet::default();
        let mut todo = vec![i];
        while let Some(p) = todo.pop() {
            let Some(children) = self.flow(p).map(|f| f.children.clone()) else {
                continue;
            };
            for c in children {
                let ours = self.rec(c as usize).state == JobState::Cancelled
                    && self.flow(c).and_then(|f| f.cause) == Some(i);
                if ours && found.insert(c) {
                    todo.push(c);
                }
            }
        }
        // A parent is always inserted before its children: index order is
        // a topological order, so each job is counted after its parents.
        let mut found: Vec<u32> = found.into_iter().collect();
        found.sort_unstable();
        let mut again = vec![i];
        for c in found {
            match self.count(c) {
                (_, Some(cause)) => self.set_cause(c, Some(cause)),
                (pending, None) => {
                    self.set_cause(c, None);
                    self.flow_mut(c).pending = pending;
                    self.set_state(c, JobState::Blocked);
                    cascade.reblocked.push(id_of(c));
                    again.push(c);
                    if pending == 0 {
                        let at = self.rec(c as usize).ready_at.max(now);
                        self.make_waiting(c, at, now);
                        cascade.unblocked.push(id_of(c));
                    }
                }
            }
        }
        for p in again {
            let children = self.flow(p).map_or_else(Vec::new, |f| f.children.clone());
            for c in children {
                let s = self.rec(c as usize).state;
                if matches!(
                    s,
                    JobState::Blocked | JobState::Queued | JobState::Scheduled
                ) {
                    let pending = self.count(c).0;
                    self.flow_mut(c).pending = pending;
                    if s != JobState::Blocked && pending > 0 {
                        self.set_state(c, JobState::Blocked);
                        cascade.reblocked.push(id_of(c));
                    }
                }
            }
        }
    }

    /// Whether a retried job `i` would be cancelled again at once: a
    /// parent it needs to succeed has failed.
    pub(super) fn parents_fail(&self, i: u32) -> bool {
        self.count(i).1.is_some()
    }

    /// Blocks a retried job `i` again if some parent has not ended;
    /// otherwise it waits as usual. Returns whether it is blocked.
    pub(super) fn block_if_pending(&mut self, i: u32) -> bool {
        if self.flow(i).is_none() {
            return false;
        }
        let pending = self.count(i).0;
        self.flow_mut(i).pending = pending;
        self.set_cause(i, None);
        if pending > 0 {
            self.set_state(i, JobState::Blocked);
        }
        pending > 0
    }

    /// The parents object of job `i` (see [`runyard_core::Parents`]).
    pub(super) fn parents_of(&self, i: u32) -> Output {
        let Some(f) = self.flow(i) else {
            return Output::none();
        };
        let mut p = Parents::new();
        for (parent, key, many) in &f.after {
            p.push(key, *many, &self.rec(*parent as usize).output);
        }
        p.finish()
    }

    /// Every job linked to `i` by `after`, either way, by id.
    pub(super) fn workflow(&self, i: u32) -> Vec<JobId> {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut todo = vec![i];
        seen.insert(i);
        while let Some(j) = todo.pop() {
            if let Some(f) = self.flow(j) {
                for n in f
                    .after
                    .iter()
                    .map(|a| a.0)
                    .chain(f.children.iter().copied())
                {
                    if seen.insert(n) {
                        todo.push(n);
                    }
                }
            }
        }
        let mut ids: Vec<JobId> = seen.into_iter().map(id_of).collect();
        ids.sort();
        ids
    }

    /// The jobs after `i`, by id.
    pub(super) fn dependents(&self, i: u32) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self
            .flow(i)
            .map(|f| f.children.iter().map(|&c| id_of(c)).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }
}
