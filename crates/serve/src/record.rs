//! The record of every action: each one that changed something is written
//! as an event (what, which jobs, the rest, from where), for
//! `GET /api/v1/events`.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::Extension;
use runyard_core::JobId;
use runyard_queue::{AdminEvent, EventSource, NewEvent, Queue, QueueErrorKind};
use serde_json::{json, Value};

use crate::error::ApiError;

/// The client's address, when the server knows it.
pub(crate) type Client = Option<Extension<ConnectInfo<SocketAddr>>>;

fn source(client: &Client) -> EventSource {
    EventSource {
        via: "api".to_string(),
        client: client.as_ref().map(|c| c.0 .0.to_string()),
    }
}

/// Records `action` if it changed something (jobs, or `changed`); the
/// event's id. A queue that keeps no record of actions answers `None`.
pub(crate) fn record(
    q: &dyn Queue,
    action: &str,
    jobs: Vec<JobId>,
    detail: Value,
    client: &Client,
) -> Result<Option<u64>, ApiError> {
    let Some(admin) = q.as_admin() else {
        return Ok(None);
    };
    let e = NewEvent {
        action: action.to_string(),
        jobs,
        detail,
        source: source(client),
    };
    match admin.record_event(&e) {
        Ok(AdminEvent { id, .. }) => Ok(Some(id)),
        Err(e) if e.kind() == QueueErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records a single job's retry or cancel (called by their routes).
pub(crate) fn record_one(
    q: &dyn Queue,
    action: &str,
    id: JobId,
    client: &Client,
) -> Result<Option<u64>, ApiError> {
    record(q, action, vec![id], json!({}), client)
}
