//! runyard's operations surface over HTTP: a JSON API that reads a queue
//! through its capabilities ([`Inspect`](runyard_queue::Inspect),
//! [`Admin`](runyard_queue::Admin), [`FlowControl`](runyard_queue::FlowControl),
//! [`Schedules`](runyard_queue::Schedules)) and retries or cancels its
//! jobs, Prometheus metrics, and health checks. `runyard serve` runs it;
//! `runyard worker --listen` runs [`serve_worker`]: a worker's own
//! metrics ([`WorkerMetrics`]) and the health checks.
//!
//! # Where things are
//!
//! - `guard.rs`: who may ask what: the token, the dashboard's session and
//!   its CSRF token, `Host` and `Origin` checks, the read-only mode (and
//!   [`check_listen`], the rule on addresses);
//! - `dash.rs`: the web dashboard (its assets, under `assets/`, held in
//!   the binary) and its login;
//! - `api.rs`: the `/api/v1/` routes that read, and retry or cancel one
//!   job; `actions.rs`: the other actions (bulk, delete, pause, limits,
//!   schedules); `record.rs`: the record of them all; `views.rs`: what
//!   they answer with;
//! - `stats.rs`: `/api/v1/stats`, the attempts that ended per minute;
//! - `metrics.rs`: `/metrics` in the Prometheus text format;
//!   `worker_metrics.rs`: a worker's own counters and histograms, and its
//!   `/metrics`;
//! - `secret.rs`: comparing secrets in constant time;
//! - `error.rs`: every refusal as a status and `{"error": "..."}`.
//!
//! Every queue call is blocking; each runs on tokio's blocking pool, so a
//! slow queue never stalls the server's own threads, and at most
//! [`QUEUE_CALLS`] run at once, so a hung one never fills that pool.
#![forbid(unsafe_code)]

mod actions;
mod api;
mod body;
mod dash;
mod error;
mod guard;
mod metrics;
mod record;
mod secret;
mod stats;
mod views;
mod worker_metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post, put};
use axum::Router;
use runyard_queue::Queue;

pub use guard::{check_listen, check_token, TOKEN_MIN_LEN};
pub use secret::constant_time_eq;
pub use worker_metrics::WorkerMetrics;

/// How a server answers.
#[derive(Clone)]
pub struct Config {
    /// The address it is bound to (its port is the one `Host` must name).
    pub addr: SocketAddr,
    /// When set, every request but the health checks and the login form
    /// must carry `Authorization: Bearer TOKEN` or a dashboard session's
    /// cookie.
    pub token: Option<String>,
    /// Refuse every action (retry, cancel, delete, pause, limits,
    /// schedules).
    pub read_only: bool,
    /// The queue's name as it may be shown: never with a password.
    pub queue_name: String,
    /// How long `/readyz` waits for the queue before it answers 503.
    pub ready_timeout: Duration,
    /// How the server names itself in its log (`runyard serve`,
    /// `runyard worker`).
    pub program: &'static str,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("read_only", &self.read_only)
            .field("queue_name", &self.queue_name)
            .field("ready_timeout", &self.ready_timeout)
            .field("program", &self.program)
            .finish()
    }
}

/// The most queue calls under way at once (each holds a thread of the
/// blocking pool until the queue answers). Requests beyond them wait for a
/// place, `/readyz` no longer than its timeout: a queue that hangs holds
/// this many threads, never the whole pool.
pub const QUEUE_CALLS: usize = 8;

/// The largest request body read, in bytes (a bulk action's 10,000 ids
/// take far less); a larger one is refused 413.
pub const BODY_MAX: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) config: Arc<Config>,
    /// The places for queue calls ([`QUEUE_CALLS`]).
    pub(crate) calls: Arc<tokio::sync::Semaphore>,
    /// The dashboard's logged-in browsers.
    pub(crate) sessions: Arc<dash::Sessions>,
    /// A worker's metrics, served by a worker's server.
    pub(crate) worker: Option<Arc<WorkerMetrics>>,
}

impl AppState {
    fn new(queue: Arc<dyn Queue>, config: Config, worker: Option<Arc<WorkerMetrics>>) -> Self {
        AppState {
            queue,
            config: Arc::new(config),
            calls: Arc::new(tokio::sync::Semaphore::new(QUEUE_CALLS)),
            worker,
            sessions: Arc::default(),
        }
    }
}

/// The routes of a worker's server, with the guards of [`router`]:
/// `/metrics` (the worker's own, from `metrics`), `/healthz` and
/// `/readyz` (the worker's queue answers).
pub fn worker_router(queue: Arc<dyn Queue>, config: Config, metrics: Arc<WorkerMetrics>) -> Router {
    let state = AppState::new(queue, config, Some(metrics));
    Router::new()
        .route("/metrics", get(worker_metrics::metrics))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// The routes, with their guards, over `queue`.
pub fn router(queue: Arc<dyn Queue>, config: Config) -> Router {
    let state = AppState::new(queue, config, None);
    let api = Router::new()
        .route("/jobs", get(api::list_jobs))
        .route("/jobs/retry", post(actions::bulk_retry))
        .route("/jobs/cancel", post(actions::bulk_cancel))
        .route("/jobs/delete", post(actions::bulk_delete))
        .route("/jobs/{id}", get(api::get_job))
        .route("/jobs/{id}/retry", post(api::retry_job))
        .route("/jobs/{id}/cancel", post(api::cancel_job))
        .route("/jobs/{id}/delete", post(actions::delete_job))
        .route("/events", get(actions::events))
        .route("/tasks", get(api::tasks))
        .route("/tasks/pause", post(actions::pause_all))
        .route("/tasks/resume", post(actions::resume_all))
        .route("/tasks/{task}/pause", post(actions::pause_task))
        .route("/tasks/{task}/resume", post(actions::resume_task))
        .route("/stats", get(stats::stats))
        .route("/workers", get(api::workers))
        .route("/limits", get(api::limits))
        .route(
            "/limits/{kind}/{name}",
            put(actions::put_limit).delete(actions::delete_limit),
        )
        .route("/schedules", get(api::schedules))
        .route(
            "/schedules/{name}/pause",
            post(actions::pause_schedule_route),
        )
        .route(
            "/schedules/{name}/resume",
            post(actions::resume_schedule_route),
        )
        .route("/schedules/{name}/trigger", post(actions::trigger_schedule));
    Router::new()
        .route("/", get(dash::index))
        .route("/assets/app.js", get(dash::app_js))
        .route("/assets/style.css", get(dash::style_css))
        .route("/login", get(dash::login_form).post(dash::login))
        .route("/logout", post(dash::logout))
        .nest("/api/v1", api)
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_MAX))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Stops a [`serve`] from another thread (a signal handler's, say).
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<tokio::sync::Notify>);

impl Stop {
    /// A handle that has not stopped anything yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stops the server: it takes no new connection and ends once the
    /// requests under way are answered. Before `serve` starts, it makes
    /// `serve` end at once.
    pub fn stop(&self) {
        self.0.notify_one();
    }

    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let n = self.0.clone();
        async move { n.notified().await }
    }
}

/// Serves `queue` on `listener` until `stop` is stopped, then lets the
/// requests under way finish. Runs its own tokio runtime (two threads,
/// the queue's calls on its blocking pool).
pub fn serve(
    queue: Arc<dyn Queue>,
    listener: std::net::TcpListener,
    config: Config,
    stop: Stop,
) -> std::io::Result<()> {
    serve_routes(router(queue, config), listener, stop, 2)
}

/// Serves a worker's [`worker_router`] on `listener` until `stop` is
/// stopped. Runs its own tokio runtime of one thread (the queue's calls
/// of `/readyz` on its blocking pool), beside the worker's own threads.
pub fn serve_worker(
    queue: Arc<dyn Queue>,
    listener: std::net::TcpListener,
    config: Config,
    metrics: Arc<WorkerMetrics>,
    stop: Stop,
) -> std::io::Result<()> {
    serve_routes(worker_router(queue, config, metrics), listener, stop, 1)
}

fn serve_routes(
    routes: Router,
    listener: std::net::TcpListener,
    stop: Stop,
    threads: usize,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(16)
        .thread_name("runyard-serve")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = routes.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.stopped())
            .await
    })
}
