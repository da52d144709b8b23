//! The actions of `/api/v1/`: retry, cancel and delete of one job or of
//! many (by ids or by the list's filters), pausing and resuming tasks,
//! setting and clearing stored limits, pausing, resuming and triggering
//! schedules, and the record of them all (`GET /api/v1/events`). Each
//! action that changed something is recorded in the queue as an event:
//! what, which jobs, when, from where (the client's address, `api`).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runyard_core::{FlowKey, JobId, JobState, LimitTarget, Rate};
use runyard_queue::{
    AdminEvent, CancelResult, Deleted, LimitChange, Queue, QueueErrorKind, TaskName,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{blocking, body_error, list_filter, query_pairs, Params, FILTERS};
use crate::body::Strict;
use crate::error::ApiError;
use crate::record::{record, Client};
use crate::AppState;

/// The most jobs one bulk action takes.
pub(crate) const MAX_BULK: usize = 10_000;
/// Events on a page when `limit` is not given, and the most.
const EVENTS_LIMIT: usize = 50;
const EVENTS_MAX: usize = 500;

/// Why a job a `run` is reporting may not be deleted: the run that holds
/// the queue, if one does (a `run` registers as a live worker named
/// `run:HOST:PID` while it runs; its report must show every job it ran).
fn reporting_run(q: &dyn Queue) -> Result<Option<String>, ApiError> {
    let live = q.inspect()?.live_workers()?;
    Ok(live
        .into_iter()
        .find(|w| w.worker.name.starts_with("run:"))
        .map(|w| {
            format!(
                "a `runyard run` (pid {} on {}) is running on this queue and reports every \
                 job in it when it ends: delete jobs once it has ended",
                w.worker.pid, w.worker.host
            )
        }))
}

/// What one action did with each job it was asked about.
#[derive(Debug, Default, Serialize)]
pub(crate) struct BulkView {
    /// The jobs asked about: the ids given, or those the filter matched.
    pub(crate) matched: usize,
    /// The jobs the action changed, by id.
    pub(crate) done: Vec<u64>,
    /// The others, each with why.
    pub(crate) skipped: Vec<Skipped>,
    /// The recorded event (`null` when nothing changed).
    pub(crate) event: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Skipped {
    pub(crate) id: u64,
    pub(crate) why: String,
}

/// Which jobs a bulk action is about: the body `{"ids": [...]}` or
/// `{"filter": {...}}`, read (the filter's jobs found) on the queue.
enum Which {
    Ids(Vec<JobId>),
    Filter(runyard_queue::ListFilter, Value),
}

fn which(body: Result<Json<Strict>, JsonRejection>) -> Result<Which, ApiError> {
    let shape = "give {\"ids\": [12, 13]} or {\"filter\": {\"state\": \"dead\", ...}} \
                 (the filter's names are those of GET /api/v1/jobs: state, task, key, q, \
                 since, until)";
    let Json(Strict(body)) = body.map_err(|e| body_error(e, shape))?;
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(format!(
            "the body is not a JSON object; {shape}"
        )));
    };
    let mut keys = map.keys();
    let (Some(k), None) = (keys.next(), keys.next()) else {
        return Err(ApiError::bad_request(format!(
            "the body must hold exactly one of `ids` and `filter`; {shape}"
        )));
    };
    match (k.as_str(), &map[k]) {
        ("ids", Value::Array(ids)) => {
            if ids.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "`ids` is empty: name at least one job; {shape}"
                )));
            }
            if ids.len() > MAX_BULK {
                return Err(ApiError::bad_request(format!(
                    "`ids` names {} jobs: one action takes at most {MAX_BULK}",
                    ids.len()
                )));
            }
            let mut out = Vec::with_capacity(ids.len());
            for (i, v) in ids.iter().enumerate() {
                match v.as_u64() {
                    Some(id) if !out.contains(&JobId(id)) => out.push(JobId(id)),
                    Some(id) => {
                        return Err(ApiError::bad_request(format!(
                            "`ids`: job {id} is named twice: name each job once"
                        )))
                    }
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "`ids`[{i}] is {v}, not a job id: ids are whole numbers"
                        )))
                    }
                }
            }
            Ok(Which::Ids(out))
        }
        ("filter", Value::Object(f)) => {
            let mut pairs = Vec::with_capacity(f.len());
            for (k, v) in f {
                let Some(v) = v.as_str() else {
                    return Err(ApiError::bad_request(format!(
                        "`filter.{k}` is {v}: give the value as a string, as in the query of \
                         GET /api/v1/jobs"
                    )));
                };
                pairs.push((k.clone(), v.to_string()));
            }
            let spec = Value::Object(f.clone());
            let pairs = crate::api::checked_pairs(pairs, FILTERS, "filter")?;
            Ok(Which::Filter(list_filter(pairs)?, spec))
        }
        ("ids" | "filter", v) => Err(ApiError::bad_request(format!("`{k}` is {v}; {shape}"))),
        (other, _) => Err(ApiError::bad_request(format!(
            "unknown field `{other}`; {shape}"
        ))),
    }
}

impl Which {
    /// The ids, the filter's read page by page (at most [`MAX_BULK`]), and
    /// what the event says it was asked.
    fn resolve(self, q: &dyn Queue) -> Result<(Vec<JobId>, Value), ApiError> {
        match self {
            Which::Ids(ids) => Ok((ids, json!({}))),
            Which::Filter(mut f, spec) => {
                let inspect = q.inspect()?;
                let mut out = Vec::new();
                f.limit = 1000;
                loop {
                    let page = inspect.list(&f)?;
                    out.extend(page.iter().map(|v| v.id));
                    if out.len() > MAX_BULK {
                        return Err(ApiError::bad_request(format!(
                            "the filter matches more than {MAX_BULK} jobs, the most one \
                             action takes: narrow it (state, task, key, q, since, until)"
                        )));
                    }
                    match page.last() {
                        Some(last) if page.len() == f.limit => f.after = Some(last.id),
                        _ => break,
                    }
                }
                Ok((out, json!({ "filter": spec })))
            }
        }
    }
}

fn no_such(id: JobId) -> String {
    format!("no job with the id {} in this queue", id.0)
}

/// Retries each job; what it did with each.
fn retry_each(q: &dyn Queue, ids: &[JobId]) -> Result<BulkView, ApiError> {
    let (inspect, admin) = (q.inspect()?, q.admin()?);
    let mut out = BulkView {
        matched: ids.len(),
        ..BulkView::default()
    };
    for &id in ids {
        let Some(before) = inspect.get(id)? else {
            out.skipped.push(Skipped {
                id: id.0,
                why: no_such(id),
            });
            continue;
        };
        match admin.retry(id)? {
            Some(_) => out.done.push(id.0),
            None => out.skipped.push(Skipped {
                id: id.0,
                why: if matches!(before.state, JobState::Dead | JobState::Cancelled) {
                    "a job it is after is still dead or cancelled: retry that one first".into()
                } else {
                    format!(
                        "it is {}: only dead or cancelled jobs are retried",
                        before.state
                    )
                },
            }),
        }
    }
    Ok(out)
}

/// Cancels the jobs; what it did with each (a running job's worker is
/// asked to stop it: it is among `done`).
fn cancel_each(q: &dyn Queue, ids: &[JobId]) -> Result<BulkView, ApiError> {
    let done = q.admin()?.cancel(ids)?;
    let mut out = BulkView {
        matched: ids.len(),
        ..BulkView::default()
    };
    for (&id, r) in ids.iter().zip(done.results) {
        let why = match r {
            CancelResult::Cancelled | CancelResult::Requested => {
                out.done.push(id.0);
                continue;
            }
            CancelResult::AlreadyFinished(s) => format!(
                "it has already finished ({s}): only queued, scheduled, blocked or running \
                 jobs are cancelled"
            ),
            CancelResult::NotFound => no_such(id),
        };
        out.skipped.push(Skipped { id: id.0, why });
    }
    Ok(out)
}

/// Deletes the jobs; what it did with each. Refused (409) while a `run`
/// reports the queue.
fn delete_each(q: &dyn Queue, ids: &[JobId]) -> Result<BulkView, ApiError> {
    let admin = q.admin()?;
    if let Some(why) = reporting_run(q)? {
        return Err(ApiError::conflict(why));
    }
    let results = admin.delete(ids).map_err(|e| {
        if e.kind() == QueueErrorKind::Unsupported {
            ApiError::new(StatusCode::CONFLICT, format!("cannot delete: {e}"))
        } else {
            e.into()
        }
    })?;
    let mut out = BulkView {
        matched: ids.len(),
        ..BulkView::default()
    };
    for (&id, r) in ids.iter().zip(results) {
        let why = match r {
            Deleted::Deleted => {
                out.done.push(id.0);
                continue;
            }
            Deleted::NotFinished(s) => {
                format!("it is {s}: only succeeded, dead or cancelled jobs are deleted")
            }
            Deleted::Awaited(c) => format!(
                "job {} is blocked after it: it waits on its record (cancel or finish that \
                 one first)",
                c.0
            ),
            Deleted::NotFound => no_such(id),
        };
        out.skipped.push(Skipped { id: id.0, why });
    }
    Ok(out)
}

type Each = fn(&dyn Queue, &[JobId]) -> Result<BulkView, ApiError>;

async fn bulk(
    s: AppState,
    action: &'static str,
    each: Each,
    client: Client,
    body: Result<Json<Strict>, JsonRejection>,
) -> Result<Response, ApiError> {
    let which = which(body)?;
    let view = blocking(&s, move |q| {
        let (ids, mut detail) = which.resolve(q)?;
        let mut view = each(q, &ids)?;
        if !view.done.is_empty() {
            detail["skipped"] = json!(view.skipped.len());
            let jobs = view.done.iter().map(|&i| JobId(i)).collect();
            view.event = record(q, action, jobs, detail, &client)?;
        }
        Ok(view)
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `POST /api/v1/jobs/retry`: dead or cancelled jobs, by ids or filter,
/// queued again.
pub(crate) async fn bulk_retry(
    State(s): State<AppState>,
    client: Client,
    body: Result<Json<Strict>, JsonRejection>,
) -> Result<Response, ApiError> {
    bulk(s, "retry", retry_each, client, body).await
}

/// `POST /api/v1/jobs/cancel`: jobs, by ids or filter, cancelled.
pub(crate) async fn bulk_cancel(
    State(s): State<AppState>,
    client: Client,
    body: Result<Json<Strict>, JsonRejection>,
) -> Result<Response, ApiError> {
    bulk(s, "cancel", cancel_each, client, body).await
}

/// `POST /api/v1/jobs/delete`: finished jobs, by ids or filter, deleted.
pub(crate) async fn bulk_delete(
    State(s): State<AppState>,
    client: Client,
    body: Result<Json<Strict>, JsonRejection>,
) -> Result<Response, ApiError> {
    bulk(s, "delete", delete_each, client, body).await
}

/// `POST /api/v1/jobs/{id}/delete`: one finished job deleted.
pub(crate) async fn delete_job(
    State(s): State<AppState>,
    client: Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = crate::api::parse_id(id)?;
    let view = blocking(&s, move |q| {
        let mut v = delete_each(q, &[id])?;
        if let Some(sk) = v.skipped.pop() {
            return Err(if sk.why == no_such(id) {
                ApiError::not_found(sk.why)
            } else {
                ApiError::conflict(format!("job {} is not deleted: {}", id.0, sk.why))
            });
        }
        let event = record(q, "delete", vec![id], json!({}), &client)?;
        Ok(json!({ "id": id.0, "action": "deleted", "event": event }))
    })
    .await?;
    Ok(Json(view).into_response())
}

#[derive(Serialize)]
struct EventPage {
    events: Vec<AdminEvent>,
    next_cursor: Option<String>,
}

/// `GET /api/v1/events?limit=&cursor=`: the recorded actions, newest first.
pub(crate) async fn events(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    let mut limit = EVENTS_LIMIT;
    let mut before = None;
    for (k, v) in query_pairs(q, &["limit", "cursor"])? {
        match k.as_str() {
            "limit" => {
                limit = match v.parse::<usize>() {
                    Ok(n) if (1..=EVENTS_MAX).contains(&n) => n,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "`limit`: {v:?} is not a number of events from 1 to {EVENTS_MAX}"
                        )))
                    }
                }
            }
            _ => {
                before = Some(
                    v.strip_prefix('e')
                        .and_then(|n| n.parse::<u64>().ok())
                        // Event ids are at most i64::MAX, as the stores keep them.
                        .filter(|&n| i64::try_from(n).is_ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "`cursor`: {v:?} is not a cursor this server gave: pass the \
                                 `next_cursor` of the page before, or leave it out for the \
                                 newest events"
                            ))
                        })?,
                )
            }
        }
    }
    let mut events = blocking(&s, move |q| {
        let admin = q.admin()?;
        admin.events(before, limit + 1).map_err(|e| {
            if e.kind() == QueueErrorKind::Unsupported {
                ApiError::not_found(format!("{e}"))
            } else {
                e.into()
            }
        })
    })
    .await?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| format!("e{}", e.id))
    } else {
        None
    };
    Ok(Json(EventPage {
        events,
        next_cursor,
    })
    .into_response())
}

fn no_flow() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "this queue keeps no limits and pauses no task (it lacks flow control): a SQLite state \
         file or a PostgreSQL queue does",
    )
}

/// Why `t` is not a task's name (`runyard_core::check_task_name`), if it
/// is not one.
fn bad_task_name(t: &str) -> Option<String> {
    runyard_core::check_task_name(t).err()
}

fn task_name(p: Result<Path<String>, PathRejection>) -> Result<TaskName, ApiError> {
    let Path(t) = p.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(why) = bad_task_name(&t) {
        return Err(ApiError::bad_request(format!(
            "{why}: give one, e.g. /api/v1/tasks/fetch/pause"
        )));
    }
    Ok(TaskName::from(t.as_str()))
}

async fn pause_or_resume(
    s: AppState,
    task: Option<TaskName>,
    pause: bool,
    client: Client,
) -> Result<Response, ApiError> {
    let view = blocking(&s, move |q| {
        let flow = q.as_flow().ok_or_else(no_flow)?;
        let (action, changed) = if pause {
            flow.pause(task.as_ref())?;
            ("pause", true)
        } else {
            ("resume", flow.resume(task.as_ref())?)
        };
        let task_s = task.as_ref().map(|t| t.as_str().to_string());
        let event = if changed {
            record(q, action, Vec::new(), json!({ "task": task_s }), &client)?
        } else {
            None
        };
        let paused = flow.paused()?;
        Ok(json!({
            "action": if pause { "paused" } else if changed { "resumed" } else { "nothing_paused" },
            "task": task_s,
            "paused_all": paused.all,
            "paused": paused.tasks,
            "event": event,
        }))
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `POST /api/v1/tasks/{task}/pause`: no claim takes a job of it.
pub(crate) async fn pause_task(
    State(s): State<AppState>,
    client: Client,
    task: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    pause_or_resume(s, Some(task_name(task)?), true, client).await
}

/// `POST /api/v1/tasks/{task}/resume`.
pub(crate) async fn resume_task(
    State(s): State<AppState>,
    client: Client,
    task: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    pause_or_resume(s, Some(task_name(task)?), false, client).await
}

/// `POST /api/v1/tasks/pause`: every task.
pub(crate) async fn pause_all(
    State(s): State<AppState>,
    client: Client,
) -> Result<Response, ApiError> {
    pause_or_resume(s, None, true, client).await
}

/// `POST /api/v1/tasks/resume`: every task, and the pause of all.
pub(crate) async fn resume_all(
    State(s): State<AppState>,
    client: Client,
) -> Result<Response, ApiError> {
    pause_or_resume(s, None, false, client).await
}

/// The target of `/api/v1/limits/task/{task}` or `/limits/key/{key}` (a
/// key's name for each of its values, or `NAME:VALUE`).
fn limit_target(p: Result<Path<(String, String)>, PathRejection>) -> Result<LimitTarget, ApiError> {
    let Path((kind, name)) = p.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let bad = |why: String| ApiError::bad_request(why);
    match kind.as_str() {
        "task" => match bad_task_name(&name) {
            Some(why) => Err(bad(format!(
                "{why}: give one, e.g. /api/v1/limits/task/fetch"
            ))),
            None => Ok(LimitTarget::Task(name)),
        },
        "key" => {
            let key: FlowKey = name
                .parse()
                .map_err(|e: runyard_core::FlowError| bad(format!("key {name:?}: {e}")))?;
            Ok(LimitTarget::Key {
                name: key.name().to_string(),
                value: (!key.value().is_empty()).then(|| key.value().to_string()),
            })
        }
        other => Err(bad(format!(
            "/api/v1/limits/{other}/...: a limit is of a task (/api/v1/limits/task/NAME) or \
             of a key (/api/v1/limits/key/NAME or /api/v1/limits/key/NAME:VALUE)"
        ))),
    }
}

/// `PUT /api/v1/limits/{task|key}/{name}` with `{"concurrency": N,
/// "rate": "N/s"}` (either or both): the stored limit set.
pub(crate) async fn put_limit(
    State(s): State<AppState>,
    client: Client,
    target: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<Strict>, JsonRejection>,
) -> Result<Response, ApiError> {
    let target = limit_target(target)?;
    let shape = "give {\"concurrency\": 3} or {\"rate\": \"10/s\"} or both \
                 (a rate is N/s, N/m or N/h)";
    let Json(Strict(body)) = body.map_err(|e| body_error(e, shape))?;
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(format!(
            "the body is not a JSON object; {shape}"
        )));
    };
    let mut change = LimitChange {
        target,
        concurrency: None,
        rate: None,
        clear: false,
    };
    for (k, v) in &map {
        match k.as_str() {
            "concurrency" => {
                change.concurrency = Some(
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "`concurrency` is {v}: give a whole number of at least 1"
                            ))
                        })?,
                )
            }
            "rate" => {
                let text = v.as_str().unwrap_or("");
                change.rate =
                    Some(text.parse::<Rate>().map_err(|e| {
                        ApiError::bad_request(format!("`rate` is {v}: {e}; {shape}"))
                    })?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown field `{other}`; {shape}"
                )))
            }
        }
    }
    if change.concurrency.is_none() && change.rate.is_none() {
        return Err(ApiError::bad_request(format!("nothing to set; {shape}")));
    }
    set_limit(s, change, client).await
}

/// `DELETE /api/v1/limits/{task|key}/{name}`: the stored limit cleared
/// (its jobs keep the limits they carry).
pub(crate) async fn delete_limit(
    State(s): State<AppState>,
    client: Client,
    target: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let change = LimitChange {
        target: limit_target(target)?,
        concurrency: None,
        rate: None,
        clear: true,
    };
    set_limit(s, change, client).await
}

async fn set_limit(s: AppState, change: LimitChange, client: Client) -> Result<Response, ApiError> {
    let view = blocking(&s, move |q| {
        let flow = q.as_flow().ok_or_else(no_flow)?;
        if change.clear && !flow.limits()?.iter().any(|l| l.target == change.target) {
            return Err(ApiError::not_found(format!(
                "no limit of {} is stored (GET /api/v1/limits lists them)",
                change.target
            )));
        }
        let now = flow.set_limit(&change)?;
        let action = if change.clear {
            "clear_limit"
        } else {
            "set_limit"
        };
        let event = record(
            q,
            action,
            Vec::new(),
            json!({ "target": change.target, "limit": now }),
            &client,
        )?;
        Ok(json!({ "target": change.target, "limit": now, "event": event }))
    })
    .await?;
    Ok(Json(view).into_response())
}

fn schedule_name(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = p.map_err(|e| ApiError::bad_request(e.body_text()))?;
    runyard_core::check_schedule_name(&name)
        .map_err(|e| ApiError::bad_request(format!("{name:?}: {e}")))?;
    Ok(name)
}

fn no_schedules() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "this queue keeps no schedules: a SQLite state file or a PostgreSQL queue does",
    )
}

fn no_such_schedule(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no schedule named {name:?} in this queue (GET /api/v1/schedules lists them)"
    ))
}

async fn pause_schedule(
    s: AppState,
    name: String,
    pause: bool,
    client: Client,
) -> Result<Response, ApiError> {
    let view = blocking(&s, move |q| {
        let sch = q.as_schedules().ok_or_else(no_schedules)?;
        if !sch.pause_schedule(&name, pause)? {
            return Err(no_such_schedule(&name));
        }
        let action = if pause {
            "pause_schedule"
        } else {
            "resume_schedule"
        };
        let event = record(q, action, Vec::new(), json!({ "schedule": name }), &client)?;
        Ok(json!({
            "schedule": name,
            "action": if pause { "paused" } else { "resumed" },
            "event": event,
        }))
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `POST /api/v1/schedules/{name}/pause`: it settles no tick until resumed.
pub(crate) async fn pause_schedule_route(
    State(s): State<AppState>,
    client: Client,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    pause_schedule(s, schedule_name(name)?, true, client).await
}

/// `POST /api/v1/schedules/{name}/resume`.
pub(crate) async fn resume_schedule_route(
    State(s): State<AppState>,
    client: Client,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    pause_schedule(s, schedule_name(name)?, false, client).await
}

/// `POST /api/v1/schedules/{name}/trigger`: one submission now, outside
/// its ticks (as `runyard schedule run`).
pub(crate) async fn trigger_schedule(
    State(s): State<AppState>,
    client: Client,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = schedule_name(name)?;
    let view = blocking(&s, move |q| {
        let sch = q.as_schedules().ok_or_else(no_schedules)?;
        let Some(fired) = sch.fire_now(&name)? else {
            return Err(no_such_schedule(&name));
        };
        let event = record(
            q,
            "trigger_schedule",
            fired.jobs.clone(),
            json!({ "schedule": name }),
            &client,
        )?;
        Ok(json!({
            "schedule": name,
            "action": "triggered",
            "tick": fired.tick,
            "jobs": fired.jobs.iter().map(|j| j.0).collect::<Vec<_>>(),
            "event": event,
        }))
    })
    .await?;
    Ok((StatusCode::OK, Json(view)).into_response())
}
