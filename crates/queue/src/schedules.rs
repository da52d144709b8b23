//! Schedules kept in a queue: the [`Schedules`] capability, which a queue
//! returns from [`Queue::as_schedules`](crate::Queue::as_schedules).
//!
//! A schedule is a [`Spec`] (when it ticks), a [`Policy`] (what to do with
//! late ticks and overlaps) and the submission each tick makes (one job, or
//! one workflow: a batch of [`NewJob`]s). Every worker of the queue calls
//! [`Schedules::fire_due`] now and then; the queue makes sure that each
//! tick is recorded as settled (fired, skipped or missed) exactly once, in
//! the transaction that inserts its jobs, so however many workers call it,
//! and whenever they die, each tick makes at most one submission, and a
//! settled tick never fires again. The rules are in `docs/backends.md` §9;
//! the conformance suite holds them.

use runyard_core::{
    check_schedule_name, format_duration, JobId, JobState, Parent, Policy, ScheduleError, Spec,
    Tick, Timestamp, EVERY_MIN,
};

use crate::capability::Capabilities;
use crate::error::{QueueError, QueueErrorKind};
use crate::queue::{admit, NewJob};

pub use template::{decode_jobs, encode_jobs};

mod template;

/// A schedule as it is added or changed.
#[derive(Debug, Clone)]
pub struct ScheduleDef {
    /// Its name, unique in the queue (see
    /// [`check_schedule_name`](runyard_core::check_schedule_name)).
    pub name: String,
    /// When it ticks.
    pub spec: Spec,
    /// Late ticks and overlaps.
    pub policy: Policy,
    /// What each tick submits: one job, or a workflow (a batch whose jobs
    /// may be after earlier ones of it). Their `run_at` is `None` and their
    /// `schedule` is set by the queue when it fires.
    pub jobs: Vec<NewJob>,
}

/// What [`Schedules::put_schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// There was no schedule of that name.
    Added,
    /// There was one and something differed. When its spec (or zone)
    /// changed, it ticks from now on: ticks of the old spec that had not
    /// come are dropped, and an `every` schedule's anchor is now.
    Changed,
    /// There was one, the same in every part.
    Unchanged,
}

/// A schedule as the queue holds it.
#[derive(Debug, Clone)]
pub struct ScheduleInfo {
    /// The definition.
    pub def: ScheduleDef,
    /// Whether it is paused (paused schedules settle no ticks; on resume,
    /// the ticks that passed meanwhile count as missed and follow the
    /// policy's catch-up).
    pub paused: bool,
    /// When it was added.
    pub created_at: Timestamp,
    /// When its definition last changed.
    pub updated_at: Timestamp,
    /// Every tick up to this one is settled. Starts at the time it was
    /// added (or its spec last changed).
    pub last_tick: Timestamp,
    /// Its next tick after `last_tick`, as the workers will fire it.
    pub next_tick: Option<Timestamp>,
    /// The last submission it made (by a tick or by `schedule run`): its
    /// tick and the id of its first job.
    pub last_fire: Option<(Timestamp, JobId)>,
    /// The state of that job, if it is still in the queue.
    pub last_state: Option<JobState>,
    /// Ticks fired, ticks skipped for overlap, ticks missed, in all.
    pub fired: u64,
    /// See `fired`.
    pub skipped: u64,
    /// See `fired`.
    pub missed: u64,
}

/// One submission a schedule made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The schedule.
    pub schedule: String,
    /// The tick (for [`Schedules::fire_now`], the time it ran).
    pub tick: Timestamp,
    /// The ids of its jobs, in the order of the definition's `jobs`.
    pub jobs: Vec<JobId>,
}

/// What one [`Schedules::fire_due`] call settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireReport {
    /// The submissions made, oldest tick first per schedule.
    pub fired: Vec<Fired>,
    /// Ticks skipped because the previous tick's job had not ended:
    /// (schedule, tick).
    pub skipped: Vec<(String, Timestamp)>,
    /// Ticks missed and not caught up: (schedule, how many, the last of them).
    pub missed: Vec<(String, u64)>,
    /// The earliest next tick of any schedule that is not paused, on the
    /// queue's clock: the caller need not call again before it (but should
    /// within a second or so, to see schedules added meanwhile).
    pub next: Option<Timestamp>,
    /// The queue's clock when the call read it.
    pub now: Timestamp,
}

/// Schedules kept in a queue.
pub trait Schedules: Send + Sync {
    /// Adds a schedule, or changes the one of that name (see [`Put`]).
    /// Refuses jobs the queue cannot keep, as `enqueue` would.
    fn put_schedule(&self, def: &ScheduleDef) -> Result<Put, QueueError>;

    /// Every schedule, by name.
    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>, QueueError>;

    /// One schedule.
    fn schedule(&self, name: &str) -> Result<Option<ScheduleInfo>, QueueError>;

    /// Pauses (`true`) or resumes (`false`) a schedule; `false` when there
    /// is none of that name.
    fn pause_schedule(&self, name: &str, paused: bool) -> Result<bool, QueueError>;

    /// Removes a schedule (its jobs stay); `false` when there is none.
    fn remove_schedule(&self, name: &str) -> Result<bool, QueueError>;

    /// Settles every due tick of every schedule that is not paused, on the
    /// queue's clock, by its policy ([`runyard_core::plan`], then
    /// [`runyard_core::Overlap`]): inserts the submissions of the ticks
    /// that fire and advances the schedule's last tick, in one transaction
    /// per schedule, so no tick is settled twice whoever else calls this.
    fn fire_due(&self) -> Result<FireReport, QueueError>;

    /// Fires a schedule now, outside its ticks (`schedule run`): one
    /// submission whose tick is the queue's time; its ticks are not
    /// changed. `None` when there is no schedule of that name.
    fn fire_now(&self, name: &str) -> Result<Option<Fired>, QueueError>;
}

/// Checks a schedule before a queue with `caps` stores it: its name, its
/// interval, and a submission the queue can keep, of at least one job, with
/// no run-at (its jobs run at its ticks) and no parent given by id (a
/// submission links only within itself). Every backend's
/// [`Schedules::put_schedule`] calls it first.
pub fn check_schedule(caps: &Capabilities, def: &ScheduleDef) -> Result<(), QueueError> {
    let invalid = |msg: String| QueueError::new(QueueErrorKind::InvalidInput, msg);
    check_schedule_name(&def.name).map_err(|e| invalid(e.to_string()))?;
    let name = &def.name;
    if let Spec::Every { every, .. } = &def.spec {
        if *every < EVERY_MIN || every.as_micros() > i64::MAX as u128 {
            return Err(invalid(format!(
                "schedule {name:?}: {}",
                ScheduleError::Every(format_duration(*every))
            )));
        }
    }
    if def.jobs.is_empty() {
        return Err(invalid(format!(
            "schedule {name:?} submits no job: give it one job, or one workflow"
        )));
    }
    admit(caps, &def.jobs)?;
    for (i, j) in def.jobs.iter().enumerate() {
        let which = || {
            if def.jobs.len() == 1 {
                format!("schedule {name:?}: its job (task `{}`)", j.task)
            } else {
                format!("schedule {name:?}: job {} (task `{}`)", i + 1, j.task)
            }
        };
        if j.run_at.is_some() {
            return Err(invalid(format!(
                "{} has a run-at: a schedule's jobs run at its ticks",
                which()
            )));
        }
        if j.after.iter().any(|a| matches!(a.parent, Parent::Job(_))) {
            return Err(invalid(format!(
                "{} is after a job given by id: a schedule's jobs may only be after jobs of \
                 its own submission",
                which()
            )));
        }
    }
    Ok(())
}

/// The jobs of one submission of a schedule for a tick: its stored jobs,
/// each with no run-at and marked with `tick`, as the firing inserts them.
pub fn submission_at(jobs: &[NewJob], tick: &Tick) -> Vec<NewJob> {
    jobs.iter()
        .map(|j| NewJob {
            run_at: None,
            schedule: Some(tick.clone()),
            ..j.clone()
        })
        .collect()
}
