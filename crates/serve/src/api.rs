//! The `/api/v1/` routes and the health checks. Each reads or changes the
//! queue through one of its capabilities, on the blocking pool, and
//! answers JSON; every refusal is an [`ApiError`].

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

use runyard_core::{JobId, JobState, Timestamp};
use runyard_queue::{CancelResult, ListFilter, Queue};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::record::{record_one, Client};
use crate::views::{
    ActionView, HeldView, JobDetail, JobPage, JobSummary, LimitsView, ScheduleView, TaskView,
    WorkerView,
};
use crate::AppState;

/// Jobs on a page when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The most jobs on a page.
const MAX_LIMIT: usize = 500;

/// How long a request waits for one of the [`QUEUE_CALLS`](crate::QUEUE_CALLS)
/// places before it is answered 503.
const CALL_WAIT: Duration = Duration::from_secs(30);

/// Runs `f` on the queue on the blocking pool, once one of the server's
/// places for queue calls is free (503 when none frees within
/// [`CALL_WAIT`]). The place is held until `f` returns, even when the
/// request has been answered meanwhile: a hung queue holds at most
/// [`QUEUE_CALLS`](crate::QUEUE_CALLS) threads, and the requests beyond
/// them are answered without calling it.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&dyn Queue) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking_within(s, CALL_WAIT, f).await
}

/// [`blocking`], waiting at most `wait` for a place.
pub(crate) async fn blocking_within<T: Send + 'static>(
    s: &AppState,
    wait: Duration,
    f: impl FnOnce(&dyn Queue) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(place) = place(s, wait).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the queue is busy: {} calls to it are under way and none ended within \
                 {} s; try again later",
                crate::QUEUE_CALLS,
                wait.as_secs_f64()
            ),
        ));
    };
    call(s, place, f).await
}

/// One of the places for queue calls, if one frees within `wait`.
async fn place(s: &AppState, wait: Duration) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout(wait, s.calls.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Runs `f` on the blocking pool, holding `place` until it returns.
async fn call<T: Send + 'static>(
    s: &AppState,
    place: OwnedSemaphorePermit,
    f: impl FnOnce(&dyn Queue) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let q = s.queue.clone();
    tokio::task::spawn_blocking(move || {
        let out = f(&*q);
        drop(place);
        out
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the queue failed: {e}"),
        )
    })?
}

pub(crate) type Params = RawQuery;

/// The query's pairs, each key among `known` and given once, each name
/// and value UTF-8 once decoded, no value holding a NUL (no name, key or
/// text in a queue holds one).
pub(crate) fn query_pairs(q: Params, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = decode_query(q.0.as_deref().unwrap_or(""))?;
    check_pairs(&pairs, known, "query parameter")?;
    Ok(pairs)
}

/// The pairs of a query string `NAME=VALUE&...` (`+` a space, `%XX` a
/// byte): refused when a name or value is not UTF-8 once decoded, where a
/// lenient decoding would look for U+FFFD instead.
fn decode_query(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let Some(k) = decode_component(k) else {
            return Err(ApiError::bad_request(format!(
                "a query parameter's name ({k}) is not UTF-8 once its %XX escapes are \
                 decoded: the query parameters are ASCII names"
            )));
        };
        let Some(v) = decode_component(v) else {
            return Err(ApiError::bad_request(format!(
                "`{}` is not UTF-8 once its %XX escapes are decoded ({v}): give text in \
                 UTF-8, e.g. %C3%A9 for é",
                k.escape_debug()
            )));
        };
        out.push((k, v));
    }
    Ok(out)
}

/// One name or value of a query, decoded (`+` a space, `%XX` a byte, a
/// `%` not followed by two hex digits kept as it is); `None` when the
/// bytes are not UTF-8.
fn decode_component(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&h| hex(h)),
                b.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The refusal of a JSON body that could not be read: too large (413,
/// naming the most read), or not JSON (400); `shape` says what to send.
pub(crate) fn body_error(e: JsonRejection, shape: &str) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes, the most this server reads; {shape}",
                crate::BODY_MAX
            ),
        );
    }
    ApiError::bad_request(format!("the body is not JSON: {}; {shape}", e.body_text()))
}

/// `pairs` (of a bulk action's filter, say), checked as [`query_pairs`]
/// checks a query's.
pub(crate) fn checked_pairs(
    pairs: Vec<(String, String)>,
    known: &[&str],
    what: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    check_pairs(&pairs, known, what)?;
    Ok(pairs)
}

fn check_pairs(pairs: &[(String, String)], known: &[&str], what: &str) -> Result<(), ApiError> {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if !known.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown {what} `{}`: the {what}s are {}",
                k.escape_debug(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        if pairs[..i].iter().any(|(j, _)| j == k) {
            return Err(ApiError::bad_request(format!(
                "the {what} `{k}` is given twice: give it once"
            )));
        }
        if v.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "`{k}` holds a NUL character (%00): no name, key or text in a queue holds one"
            )));
        }
    }
    Ok(())
}

/// The names of the list's filters (`GET /api/v1/jobs` and the bulk
/// actions' `filter`).
pub(crate) const FILTERS: &[&str] = &["state", "task", "key", "q", "since", "until"];

/// A list filter from its pairs (each among [`FILTERS`], or `limit` and
/// `cursor` for a page).
pub(crate) fn list_filter(pairs: Vec<(String, String)>) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter {
        limit: DEFAULT_LIMIT,
        ..ListFilter::default()
    };
    let empty = |k: &str, what: &str| {
        ApiError::bad_request(format!(
            "`{k}` is empty: give {what}, or leave it out for every job"
        ))
    };
    for (k, v) in pairs {
        match k.as_str() {
            "state" => filter.state = Some(parse_state(&v)?),
            "task" if v.is_empty() => return Err(empty("task", "a task's name")),
            "task" => filter.task = Some(v),
            "key" if v.is_empty() => return Err(empty("key", "a key, e.g. tenant:42")),
            "key" => filter.key = Some(v),
            "q" if v.is_empty() => return Err(empty("q", "some text to look for")),
            "q" => filter.text = Some(v),
            "since" => filter.since = Some(parse_time("since", &v)?),
            "until" => filter.until = Some(parse_time("until", &v)?),
            "limit" => filter.limit = parse_limit(&v)?,
            "cursor" => filter.after = Some(parse_cursor(&v)?),
            _ => unreachable!("the pairs are checked against the known names"),
        }
    }
    if let (Some(a), Some(b)) = (filter.since, filter.until) {
        if a >= b {
            return Err(ApiError::bad_request(format!(
                "`since` ({a}) is not before `until` ({b}): no job was submitted in between"
            )));
        }
    }
    Ok(filter)
}

fn parse_time(k: &str, v: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(v).map_err(|_| {
        ApiError::bad_request(format!(
            "`{k}`: {v:?} is not a time in RFC 3339 from 1970 to 9999: give e.g. \
             2026-12-01T10:00:00Z"
        ))
    })
}

/// The cursor of the page after the job `last`: opaque to clients.
fn cursor_after(last: JobId) -> String {
    format!("v1:{}", last.0)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_cursor(s: &str) -> Result<JobId, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "`cursor`: {s:?} is not a cursor this server gave: pass the `next_cursor` of \
             the page before, or leave it out for the first page"
        ))
    };
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let id = text.strip_prefix("v1:").ok_or_else(bad)?;
    // Ids are those of the stores, at most i64::MAX: a larger one was
    // never a job's.
    match id.parse::<u64>() {
        Ok(n) if i64::try_from(n).is_ok() => Ok(JobId(n)),
        _ => Err(bad()),
    }
}

fn parse_state(s: &str) -> Result<JobState, ApiError> {
    s.parse::<JobState>().map_err(|_| {
        let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!(
            "`state`: {s:?} is not a job state: give one of {}",
            all.join(", ")
        ))
    })
}

fn parse_limit(s: &str) -> Result<usize, ApiError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "`limit`: {s:?} is not a number of jobs from 1 to {MAX_LIMIT}"
        ))),
    }
}

pub(crate) fn parse_id(p: Result<Path<String>, PathRejection>) -> Result<JobId, ApiError> {
    let Path(raw) = p.map_err(|e| ApiError::bad_request(e.body_text()))?;
    match raw.parse::<u64>() {
        Ok(id) => Ok(JobId(id)),
        Err(_) => Err(ApiError::bad_request(format!(
            "{raw:?} is not a job id: ids are whole numbers, e.g. /api/v1/jobs/42"
        ))),
    }
}

fn no_such_job(id: JobId) -> ApiError {
    ApiError::not_found(format!("no job with the id {} in this queue", id.0))
}

/// `GET /api/v1/jobs?state=&task=&key=&q=&since=&until=&limit=&cursor=`:
/// jobs by id.
pub(crate) async fn list_jobs(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    let mut known = FILTERS.to_vec();
    known.extend(["limit", "cursor"]);
    let mut filter = list_filter(query_pairs(q, &known)?)?;
    let limit = filter.limit;
    // One more than asked: whether there is a next page.
    filter.limit += 1;
    let mut views = blocking(&s, move |q| Ok(q.inspect()?.list(&filter)?)).await?;
    let next_cursor = if views.len() > limit {
        views.truncate(limit);
        views.last().map(|v| cursor_after(v.id))
    } else {
        None
    };
    let jobs = views.iter().map(JobSummary::from).collect();
    Ok(Json(JobPage { jobs, next_cursor }).into_response())
}

/// `GET /api/v1/jobs/{id}`: one job with every attempt.
pub(crate) async fn get_job(
    State(s): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let detail = blocking(&s, move |q| {
        let inspect = q.inspect()?;
        let Some(job) = inspect.get(id)? else {
            return Err(no_such_job(id));
        };
        let dependents = inspect.dependents(id)?.into_iter().map(|i| i.0).collect();
        let hold = match q.as_flow() {
            Some(f) if !job.state.is_terminal() && job.state != JobState::Running => f.hold(id)?,
            _ => None,
        };
        Ok(JobDetail {
            job,
            dependents,
            hold,
        })
    })
    .await?;
    Ok(Json(detail).into_response())
}

/// `POST /api/v1/jobs/{id}/retry`: a dead or cancelled job queued again.
pub(crate) async fn retry_job(
    State(s): State<AppState>,
    client: Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let view = blocking(&s, move |q| {
        let inspect = q.inspect()?;
        let Some(before) = inspect.get(id)? else {
            return Err(no_such_job(id));
        };
        match q.admin()?.retry(id)? {
            Some(cascade) => Ok(ActionView {
                event: record_one(q, "retry", id, &client)?,
                id: id.0,
                action: "retried",
                state: inspect.get(id)?.map(|v| v.state),
                cascade: cascade.into(),
            }),
            None if !matches!(before.state, JobState::Dead | JobState::Cancelled) => {
                Err(ApiError::conflict(format!(
                    "job {} is {}: only dead or cancelled jobs can be retried",
                    id.0, before.state
                )))
            }
            None => Err(ApiError::conflict(format!(
                "job {} cannot be retried now: a job it is after is still dead or cancelled \
                 (retry that one first; its jobs come back with it)",
                id.0
            ))),
        }
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `POST /api/v1/jobs/{id}/cancel`: a waiting job cancelled, a running
/// one's worker asked to stop it.
pub(crate) async fn cancel_job(
    State(s): State<AppState>,
    client: Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let (status, view) = blocking(&s, move |q| {
        let done = q.admin()?.cancel(&[id])?;
        let (status, action) = match done.results.first() {
            Some(CancelResult::Cancelled) => (StatusCode::OK, "cancelled"),
            Some(CancelResult::Requested) => (StatusCode::ACCEPTED, "cancel_requested"),
            Some(CancelResult::AlreadyFinished(state)) => {
                return Err(ApiError::conflict(format!(
                    "job {} has already finished ({state}): only queued, scheduled, blocked \
                     or running jobs can be cancelled",
                    id.0
                )))
            }
            Some(CancelResult::NotFound) | None => return Err(no_such_job(id)),
        };
        let state = q.inspect()?.get(id)?.map(|v| v.state);
        Ok((
            status,
            ActionView {
                event: record_one(q, "cancel", id, &client)?,
                id: id.0,
                action,
                state,
                cascade: done.cascade.into(),
            },
        ))
    })
    .await?;
    Ok((status, Json(view)).into_response())
}

#[derive(serde::Serialize)]
struct Tasks {
    tasks: Vec<TaskView>,
}

#[derive(serde::Serialize)]
struct Workers {
    workers: Vec<WorkerView>,
}

#[derive(serde::Serialize)]
struct Schedules {
    schedules: Vec<ScheduleView>,
}

/// `GET /api/v1/tasks`: counts per state for each task.
pub(crate) async fn tasks(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    query_pairs(q, &[])?;
    let tasks = blocking(&s, |q| Ok(q.inspect()?.counts_by_task()?)).await?;
    let tasks: Vec<TaskView> = tasks
        .into_iter()
        .map(|(task, counts)| TaskView {
            task,
            total: counts.total(),
            counts,
        })
        .collect();
    Ok(Json(Tasks { tasks }).into_response())
}

/// `GET /api/v1/workers`: live workers, their leases and last heartbeat.
pub(crate) async fn workers(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    query_pairs(q, &[])?;
    let workers = blocking(&s, |q| {
        let now = q.now();
        let live = q.inspect()?.live_workers()?;
        Ok(live
            .into_iter()
            .map(|w| WorkerView::new(w, now))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(Workers { workers }).into_response())
}

/// `GET /api/v1/limits`: stored limits, paused tasks, what holds due jobs.
pub(crate) async fn limits(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    query_pairs(q, &[])?;
    let view = blocking(&s, |q| {
        let Some(flow) = q.as_flow() else {
            return Err(ApiError::not_found(
                "this queue keeps no limits (it lacks flow control)",
            ));
        };
        let paused = flow.paused()?;
        Ok(LimitsView {
            limits: flow.limits()?,
            paused_all: paused.all,
            paused: paused.tasks,
            held: flow
                .holds()?
                .held
                .into_iter()
                .map(|(hold, jobs)| HeldView {
                    says: hold.to_string(),
                    hold,
                    jobs,
                })
                .collect(),
        })
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `GET /api/v1/schedules`: every schedule, by name.
pub(crate) async fn schedules(State(s): State<AppState>, q: Params) -> Result<Response, ApiError> {
    query_pairs(q, &[])?;
    let list = blocking(&s, |q| {
        let Some(sch) = q.as_schedules() else {
            return Err(ApiError::not_found("this queue keeps no schedules"));
        };
        Ok(sch
            .list_schedules()?
            .into_iter()
            .map(ScheduleView::from)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(Schedules { schedules: list }).into_response())
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the queue answers (503 when it does not, or not in
/// time: waiting for a place among the queue calls counts too).
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let wait = s.config.ready_timeout;
    let late = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the queue did not answer within {} s",
                wait.as_secs_f64()
            ),
        )
        .into_response()
    };
    let asked = async {
        match place(&s, wait).await {
            Some(p) => Some(call(&s, p, |q| Ok(q.counts()?)).await),
            None => None,
        }
    };
    match tokio::time::timeout(wait, asked).await {
        Ok(Some(Ok(_))) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(None) | Err(_) => late(),
        Ok(Some(Err(e))) => {
            // Open to probes even when a token guards the rest: the cause
            // (which names the database's host, user and name) goes to the
            // server's own log, not to whoever asks.
            eprintln!("{}: not ready: {}", s.config.program, e.message);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the queue does not answer (the server's log says why)".to_string(),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do_and_refuse_what_is_not_utf8() {
        let pairs = decode_query("q=a+b%20c&key=tenant%3A42&&task&x=100%&y=%zz%C3%A9").unwrap();
        let want = [
            ("q", "a b c"),
            ("key", "tenant:42"),
            ("task", ""),
            ("x", "100%"),
            ("y", "%zzé"),
        ];
        let got: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(got, want);
        let e = decode_query("q=%FF").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("`q` is not UTF-8"), "{}", e.message);
        let e = decode_query("%C3=1").unwrap_err();
        assert!(
            e.message.contains("name (%C3) is not UTF-8"),
            "{}",
            e.message
        );
    }

    #[test]
    fn cursors_read_back_and_others_are_refused() {
        for id in [0, 1, 42, i64::MAX as u64] {
            assert_eq!(parse_cursor(&cursor_after(JobId(id))).unwrap(), JobId(id));
        }
        let beyond = cursor_after(JobId(i64::MAX as u64 + 1));
        for bad in ["", "zz", "7631", "42", "v1:42", "é1", "76313a78", &beyond] {
            let e = parse_cursor(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains("next_cursor"), "{}", e.message);
        }
    }
}
