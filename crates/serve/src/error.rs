//! Every refusal as an HTTP status and a JSON body `{"error": "..."}`
//! that says what was wrong and what would be valid.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use runyard_queue::{QueueError, QueueErrorKind};

/// A refusal or a failure, as the client gets it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// Sent as `WWW-Authenticate` (a 401's challenge).
    pub(crate) challenge: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            challenge: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            challenge: true,
            ..ApiError::new(StatusCode::UNAUTHORIZED, message)
        }
    }
}

impl From<QueueError> for ApiError {
    /// A queue's error: the request's fault (400), something the queue
    /// does not keep (404), or the queue's own (503, or 500 for a store
    /// that failed in another way). Queue errors never hold a password.
    fn from(e: QueueError) -> ApiError {
        let status = match e.kind() {
            QueueErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            QueueErrorKind::Unsupported => StatusCode::NOT_FOUND,
            QueueErrorKind::Conflict => StatusCode::CONFLICT,
            QueueErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, format!("the queue: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.challenge {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"runyard\""),
            );
        }
        r
    }
}

/// The answer to a path that names no route.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}: the routes are /api/v1/jobs, /api/v1/jobs/ID, \
         /api/v1/jobs/ID/retry|cancel|delete, /api/v1/jobs/retry|cancel|delete, \
         /api/v1/events, /api/v1/stats, /api/v1/tasks, /api/v1/tasks[/TASK]/pause|resume, /api/v1/workers, \
         /api/v1/limits, /api/v1/limits/task/NAME, /api/v1/limits/key/KEY, \
         /api/v1/schedules, /api/v1/schedules/NAME/pause|resume|trigger, /metrics, /healthz, \
         /readyz, and the dashboard at / (with /login)",
        uri.path()
    ))
}

/// The answer to a route asked with a method it does not take.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    let action = [
        "/retry", "/cancel", "/delete", "/pause", "/resume", "/trigger",
    ];
    let allowed = if path.starts_with("/api/v1/limits/") {
        "PUT or DELETE"
    } else if action.iter().any(|a| path.ends_with(a)) {
        "POST"
    } else {
        "GET"
    };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} does not take {method}: use {allowed}"),
    )
}
