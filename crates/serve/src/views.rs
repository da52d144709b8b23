//! What the routes answer with, as JSON (docs/api.md shows each).

use runyard_core::{Hold, JobState, JobView, OutcomeKind, StoredLimit, Tick, Timestamp};
use runyard_queue::{Counts, LiveWorker, ScheduleInfo};
use serde::Serialize;

/// One page of `GET /api/v1/jobs`.
#[derive(Debug, Serialize)]
pub(crate) struct JobPage {
    pub(crate) jobs: Vec<JobSummary>,
    /// The cursor of the next page (`null`: this is the last).
    pub(crate) next_cursor: Option<String>,
}

/// A job in a listing: what tells it apart, without its attempts.
#[derive(Debug, Serialize)]
pub(crate) struct JobSummary {
    pub(crate) id: u64,
    pub(crate) task: String,
    pub(crate) state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) enqueued_at: Timestamp,
    pub(crate) attempts: usize,
    /// How the last attempt ended.
    pub(crate) last_outcome: Option<OutcomeKind>,
    /// The last attempt's error message.
    pub(crate) last_error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) schedule: Option<Tick>,
}

impl From<&JobView> for JobSummary {
    fn from(v: &JobView) -> JobSummary {
        JobSummary {
            id: v.id.0,
            task: v.task.clone(),
            state: v.state,
            name: v.name.clone(),
            enqueued_at: v.enqueued_at,
            attempts: v.attempts.len(),
            last_outcome: v.attempts.last().map(|a| a.outcome),
            last_error: v.last_error().map(str::to_string),
            schedule: v.schedule.clone(),
        }
    }
}

/// `GET /api/v1/jobs/{id}`: the job as the queue keeps it, with the jobs
/// after it and what holds it.
#[derive(Debug, Serialize)]
pub(crate) struct JobDetail {
    #[serde(flatten)]
    pub(crate) job: JobView,
    /// The ids of the jobs directly after this one.
    pub(crate) dependents: Vec<u64>,
    /// What holds it, if it is due and held, or blocked (queues that keep
    /// limits only; `null` otherwise).
    pub(crate) hold: Option<Hold>,
}

/// The jobs an action moved besides the one it was asked about.
#[derive(Debug, Serialize)]
pub(crate) struct CascadeView {
    pub(crate) unblocked: Vec<u64>,
    pub(crate) cancelled: Vec<u64>,
    pub(crate) reblocked: Vec<u64>,
}

impl From<runyard_queue::Cascade> for CascadeView {
    fn from(c: runyard_queue::Cascade) -> CascadeView {
        let ids = |v: Vec<runyard_core::JobId>| v.into_iter().map(|i| i.0).collect();
        CascadeView {
            unblocked: ids(c.unblocked),
            cancelled: ids(c.cancelled),
            reblocked: ids(c.reblocked),
        }
    }
}

/// What `retry` or `cancel` did.
#[derive(Debug, Serialize)]
pub(crate) struct ActionView {
    pub(crate) id: u64,
    /// `retried`, `cancelled`, or `cancel_requested` (a running job: its
    /// worker is asked to stop it).
    pub(crate) action: &'static str,
    /// The job's state now.
    pub(crate) state: Option<JobState>,
    pub(crate) cascade: CascadeView,
    /// The recorded event (`null` on a queue that keeps no record).
    pub(crate) event: Option<u64>,
}

/// One task's counts.
#[derive(Debug, Serialize)]
pub(crate) struct TaskView {
    pub(crate) task: String,
    pub(crate) total: u64,
    #[serde(flatten)]
    pub(crate) counts: Counts,
}

/// A live worker.
#[derive(Debug, Serialize)]
pub(crate) struct WorkerView {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) started_at: Timestamp,
    pub(crate) last_heartbeat: Timestamp,
    /// Seconds since its last heartbeat, on the queue's clock.
    pub(crate) heartbeat_age_s: f64,
    /// Seconds after its last heartbeat that it counts as gone.
    pub(crate) lease_s: f64,
    /// Jobs it holds leases on.
    pub(crate) leases: u64,
}

impl WorkerView {
    pub(crate) fn new(w: LiveWorker, now: Timestamp) -> WorkerView {
        WorkerView {
            heartbeat_age_s: now.since(w.last_heartbeat).as_secs_f64(),
            name: w.worker.name,
            host: w.worker.host,
            pid: w.worker.pid,
            started_at: w.started_at,
            last_heartbeat: w.last_heartbeat,
            lease_s: w.worker.lease.as_secs_f64(),
            leases: w.leases,
        }
    }
}

/// `GET /api/v1/limits`.
#[derive(Debug, Serialize)]
pub(crate) struct LimitsView {
    pub(crate) limits: Vec<StoredLimit>,
    /// Every task is paused.
    pub(crate) paused_all: bool,
    /// The tasks paused by name.
    pub(crate) paused: Vec<String>,
    /// Each reason that holds due jobs, with how many it holds.
    pub(crate) held: Vec<HeldView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct HeldView {
    pub(crate) hold: Hold,
    pub(crate) jobs: u64,
    /// The reason in words.
    pub(crate) says: String,
}

/// A schedule.
#[derive(Debug, Serialize)]
pub(crate) struct ScheduleView {
    pub(crate) name: String,
    /// `cron "EXPR" in ZONE` or `every 15m`.
    pub(crate) spec: String,
    #[serde(flatten)]
    pub(crate) policy: runyard_core::Policy,
    pub(crate) paused: bool,
    pub(crate) next_tick: Option<Timestamp>,
    pub(crate) last_tick: Timestamp,
    pub(crate) last_fire: Option<LastFire>,
    pub(crate) fired: u64,
    pub(crate) skipped: u64,
    pub(crate) missed: u64,
    /// The tasks of each tick's jobs, in order.
    pub(crate) tasks: Vec<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

#[derive(Debug, Serialize)]
pub(crate) struct LastFire {
    pub(crate) tick: Timestamp,
    pub(crate) job: u64,
    /// `null` once the job is no longer in the queue.
    pub(crate) state: Option<JobState>,
}

impl From<ScheduleInfo> for ScheduleView {
    fn from(s: ScheduleInfo) -> ScheduleView {
        ScheduleView {
            spec: s.def.spec.to_string(),
            policy: s.def.policy,
            tasks: s
                .def
                .jobs
                .iter()
                .map(|j| j.task.as_str().to_string())
                .collect(),
            name: s.def.name,
            paused: s.paused,
            next_tick: s.next_tick,
            last_tick: s.last_tick,
            last_fire: s.last_fire.map(|(tick, job)| LastFire {
                tick,
                job: job.0,
                state: s.last_state,
            }),
            fired: s.fired,
            skipped: s.skipped,
            missed: s.missed,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}
