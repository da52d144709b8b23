//! `http`: one HTTP request, as an async task.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode, Url};
use runyard::params::Violation;
use runyard::{AsyncTask, Context, TaskError};
use serde::{Deserialize, Serialize};

/// Expected statuses: one code, or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// Exactly this status.
    One(u16),
    /// Any of these.
    Any(Vec<u16>),
}

impl Expect {
    fn codes(&self) -> &[u16] {
        match self {
            Expect::One(c) => std::slice::from_ref(c),
            Expect::Any(v) => v,
        }
    }
}

/// Parameters of `http`.
#[derive(Debug, Clone, Serialize, Deserialize, runyard::Params)]
#[serde(deny_unknown_fields)]
#[param(check = check)]
pub struct HttpParams {
    /// The method.
    #[serde(default = "get")]
    #[param(one_of = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]
    pub method: String,
    /// The URL (http:// or https://).
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body.
    #[serde(default)]
    pub body: Option<String>,
    /// The status (or list of statuses) that counts as success; any 2xx by default.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// The longest the request may take, connecting and reading the body included (the job's `timeout` applies too).
    #[serde(default, with = "runyard::duration::serde_duration::option")]
    pub timeout: Option<Duration>,
}

fn get() -> String {
    "GET".into()
}

fn check(p: &HttpParams) -> Result<(), Violation> {
    match Url::parse(&p.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            return Err(Violation::new(
                "url",
                "an absolute http:// or https:// URL",
                &p.url,
            ))
        }
    }
    for (k, v) in &p.headers {
        if HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(Violation::new(
                "headers",
                "header names of letters, digits and -",
                k,
            ));
        }
        if HeaderValue::from_str(v).is_err() {
            return Err(Violation::new(
                "headers",
                "header values of visible ASCII",
                v,
            ));
        }
    }
    if let Some(e) = &p.expect {
        if e.codes().is_empty() || e.codes().iter().any(|c| !(100..=599).contains(c)) {
            return Err(Violation::new("expect", "status codes from 100 to 599", e));
        }
    }
    if p.timeout.is_some_and(|t| t.is_zero()) {
        return Err(Violation::new("timeout", "a duration above zero", &"0s"));
    }
    Ok(())
}

/// What `http` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpOutput {
    /// The response status.
    pub status: u16,
    /// Bytes of the response body (read and counted, not kept).
    pub bytes: u64,
    /// From sending the request to the end of the body, in milliseconds.
    pub elapsed_ms: f64,
}

/// `http`: sends one request and reads the response. Connection errors,
/// timeouts, 5xx and 429 are retried (429 and 503 after their
/// `Retry-After`, when it gives seconds, up to the job's backoff cap: see
/// [`Backoff::retry_after_cap`](runyard::Backoff::retry_after_cap)); other
/// statuses that were not expected are permanent errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

thread_local! {
    /// One client (and connection pool) per runtime thread: its
    /// connections belong to the runtime that opened them.
    static CLIENT: Client = Client::builder()
        .user_agent(concat!("runyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with the built-in TLS roots");
}

impl AsyncTask for Http {
    const NAME: &'static str = "http";
    const DESCRIPTION: &'static str =
        "Sends an HTTP request (retries connection errors, 5xx and 429, honouring Retry-After)";
    type Params = HttpParams;
    type Output = HttpOutput;

    async fn run(&self, p: HttpParams, _ctx: Context) -> Result<HttpOutput, TaskError> {
        let client = CLIENT.with(Client::clone);
        let method = Method::from_bytes(p.method.as_bytes())
            .map_err(|_| TaskError::permanent(format!("unknown method {}", p.method)))?;
        let what = format!("{} {}", p.method, p.url);
        let mut headers = HeaderMap::new();
        for (k, v) in &p.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| TaskError::permanent(format!("header {k}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| TaskError::permanent(format!("header {k}: {e}")))?;
            headers.insert(name, value);
        }
        let mut req = client.request(method, &p.url).headers(headers);
        if let Some(b) = p.body {
            req = req.body(b);
        }
        if let Some(t) = p.timeout {
            req = req.timeout(t);
        }
        let start = Instant::now();
        let mut resp = req.send().await.map_err(|e| failed(&what, e))?;
        let status = resp.status();
        let mut bytes = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&what, e))? {
            bytes += chunk.len() as u64;
        }
        let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
        let expected = match &p.expect {
            Some(e) => e.codes().contains(&status.as_u16()),
            None => status.is_success(),
        };
        if expected {
            return Ok(HttpOutput {
                status: status.as_u16(),
                bytes,
                elapsed_ms,
            });
        }
        let msg = format!("{what}: {status}");
        Err(
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                match retry_after(resp.headers()) {
                    Some(d) if matches!(status.as_u16(), 429 | 503) => {
                        TaskError::retry_after(d, msg)
                    }
                    _ => TaskError::retryable(msg),
                }
            } else {
                TaskError::permanent(msg)
            },
        )
    }
}

/// A `Retry-After` given in seconds (the retry policy caps it).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let secs: u64 = h.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// A request that did not get its answer: worth another attempt, unless
/// the request itself cannot be built.
fn failed(what: &str, e: reqwest::Error) -> TaskError {
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("could not connect ({})", root_cause(&e))
    } else {
        root_cause(&e)
    };
    if e.is_builder() {
        TaskError::permanent(format!("{what}: {why}"))
    } else {
        TaskError::retryable(format!("{what}: {why}"))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
