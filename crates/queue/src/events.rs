//! Operators' actions as a queue records them: [`AdminEvent`] (what was
//! done, to which jobs, when, from where), kept by queues whose
//! [`Admin`](crate::Admin) has [`Admin::record_event`](crate::Admin::record_event),
//! and read back newest first with [`Admin::events`](crate::Admin::events).

use runyard_core::{JobId, Timestamp};
use serde::{Deserialize, Serialize};

/// Where an action came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSource {
    /// `api` (`runyard serve`) or `cli` (a command such as `runyard retry`).
    pub via: String,
    /// The client's address, for an action over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// An action about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What was done: `retry`, `cancel`, `delete`, `pause`, `resume`,
    /// `set_limit`, `clear_limit`, `pause_schedule`, `resume_schedule`,
    /// `trigger_schedule`.
    pub action: String,
    /// The jobs it changed, by id (empty for an action on a task, a limit
    /// or a schedule).
    pub jobs: Vec<JobId>,
    /// What it was asked about besides jobs, as JSON: the task, the limit,
    /// the schedule, the filter of a bulk action, the jobs it skipped.
    pub detail: serde_json::Value,
    /// Where it came from.
    pub source: EventSource,
}

/// An action as the queue recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEvent {
    /// Its number: increasing in the order the queue recorded them.
    pub id: u64,
    /// When the queue recorded it, on its clock.
    pub at: Timestamp,
    /// See [`NewEvent::action`].
    pub action: String,
    /// See [`NewEvent::jobs`].
    pub jobs: Vec<JobId>,
    /// See [`NewEvent::detail`].
    pub detail: serde_json::Value,
    /// See [`NewEvent::source`].
    #[serde(flatten)]
    pub source: EventSource,
}

impl AdminEvent {
    /// The event recorded as number `id` at `at`.
    pub fn recorded(id: u64, at: Timestamp, e: &NewEvent) -> AdminEvent {
        AdminEvent {
            id,
            at,
            action: e.action.clone(),
            jobs: e.jobs.clone(),
            detail: e.detail.clone(),
            source: e.source.clone(),
        }
    }
}

/// The record of an event's jobs and source as stored in one text column
/// each (both SQL backends).
pub mod stored_event {
    use super::*;
    use crate::error::{QueueError, QueueErrorKind};

    /// The jobs as a JSON array of ids.
    pub fn jobs_json(jobs: &[JobId]) -> String {
        serde_json::to_string(&jobs.iter().map(|j| j.0).collect::<Vec<_>>()).expect("ids serialize")
    }

    /// An event read back from its columns.
    pub fn read(
        id: i64,
        at: i64,
        action: String,
        jobs: &str,
        detail: &str,
        via: String,
        client: Option<String>,
    ) -> Result<AdminEvent, QueueError> {
        let bad = |e: serde_json::Error| {
            QueueError::new(
                QueueErrorKind::Corrupt,
                format!("event {id}: a damaged record: {e}"),
            )
        };
        let jobs: Vec<u64> = serde_json::from_str(jobs).map_err(bad)?;
        Ok(AdminEvent {
            id: id as u64,
            at: Timestamp::from_micros(at),
            action,
            jobs: jobs.into_iter().map(JobId).collect(),
            detail: serde_json::from_str(detail).map_err(bad)?,
            source: EventSource { via, client },
        })
    }
}
