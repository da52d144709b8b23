//! The OpenTelemetry exporter of the `otlp` feature: the engine's
//! `runyard.attempt` spans, and a `runyard.job` span over each job's
//! attempts, sent over OTLP/HTTP (protobuf) to the collector that
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! names (docs/tracing.md, "OpenTelemetry").
//!
//! [`Exporter::from_env`] is `None` when neither variable is set: nothing
//! is exported and nothing is started. Otherwise [`Exporter::layer`] is a
//! `tracing` layer that turns each attempt span into an OpenTelemetry span,
//! child of its job's span, with the attempt's events as span events;
//! spans are batched by the SDK's batch processor on its own thread and
//! sent by a blocking HTTP client there, so the run never waits for the
//! collector. [`Exporter::shutdown`] ends the job spans still open and
//! flushes the batch, within a bounded time. An export that fails
//! (collector unreachable, an HTTP error) is one warning on standard
//! error, the first time; the run goes on.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanBuilder, Status, TraceContextExt};
use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::WithHttpConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The variables that enable the exporter (either one, not empty).
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The service name when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
const SERVICE: &str = "runyard";

/// The name of the engine's attempt span (docs/tracing.md).
const ATTEMPT_SPAN: &str = "runyard.attempt";

/// The name of the span over a job's attempts.
const JOB_SPAN: &str = "runyard.job";

/// How long one export may take at most, whatever
/// `OTEL_EXPORTER_OTLP_TIMEOUT` says (it is 10 s by default too).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the command waits, at its end, for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter: the tracer provider (its batch processor and OTLP
/// exporter) and the job spans still open.
#[derive(Debug)]
pub(crate) struct Exporter {
    provider: SdkTracerProvider,
    jobs: Jobs,
}

/// The span of each job whose attempt this process ran, until the job
/// ends (succeeded, dead, cancelled) or the command does.
type Jobs = Arc<Mutex<HashMap<u64, JobSpan>>>;

/// A job's open span, and how many of its attempts run here now.
#[derive(Debug)]
struct JobSpan {
    cx: Context,
    running: u32,
}

/// How many job spans stay open at most: past that, those with no attempt
/// running here (jobs waiting for a retry, or whose next attempt another
/// worker ran) are ended without a `state`, so that a long-lived worker's
/// memory does not grow with them.
const OPEN_JOBS: usize = 10_000;

impl Exporter {
    /// The exporter the standard variables configure, or `None` when no
    /// endpoint is set. The OTLP exporter reads the endpoint, the headers
    /// (`OTEL_EXPORTER_OTLP_HEADERS`) and the timeout from the environment;
    /// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the service.
    pub(crate) fn from_env() -> Result<Option<Exporter>, String> {
        let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
        if !ENDPOINT_VARS.iter().any(|v| set(v)) {
            return Ok(None);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("the OTLP exporter's HTTP client cannot start: {e}"))?;
        let otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(Client(client))
            .build()
            .map_err(|e| {
                format!(
                    "the OTLP exporter cannot start ({e}): OTEL_EXPORTER_OTLP_ENDPOINT and \
                     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT take an http:// or https:// URL, \
                     e.g. http://localhost:4318"
                )
            })?;
        // The SDK's default name when the environment gives none is
        // `unknown_service...`: the service is then `runyard`.
        let mut resource = Resource::builder().build();
        let named = resource
            .get(&Key::from_static_str("service.name"))
            .is_some_and(|v| !v.as_str().starts_with("unknown_service"));
        if !named {
            resource = Resource::builder().with_service_name(SERVICE).build();
        }
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(WarnOnce::new(otlp))
            .build();
        Ok(Some(Exporter {
            provider,
            jobs: Jobs::default(),
        }))
    }

    /// The layer that turns the engine's spans into OpenTelemetry spans.
    pub(crate) fn layer(&self) -> SpanLayer {
        SpanLayer {
            tracer: opentelemetry::trace::TracerProvider::tracer(&self.provider, "runyard"),
            jobs: Arc::clone(&self.jobs),
            open_jobs: OPEN_JOBS,
        }
    }

    /// Ends the job spans still open (their jobs go on elsewhere or later:
    /// they carry no `state`), then sends what is batched and stops the
    /// batch processor, waiting at most a few seconds.
    pub(crate) fn shutdown(self) {
        let open: Vec<JobSpan> = lock(&self.jobs).drain().map(|(_, j)| j).collect();
        for j in open {
            j.cx.span().end();
        }
        let _ = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
    }
}

fn lock(jobs: &Jobs) -> std::sync::MutexGuard<'_, HashMap<u64, JobSpan>> {
    jobs.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `tracing` layer of the exporter (see the module's doc).
pub(crate) struct SpanLayer {
    tracer: SdkTracer,
    jobs: Jobs,
    open_jobs: usize,
}

impl fmt::Debug for SpanLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanLayer").finish_non_exhaustive()
    }
}

/// What the layer keeps in an attempt span's extensions.
struct Attempt {
    span: opentelemetry_sdk::trace::Span,
    job: u64,
    // The job's end, once an event said it: `succeeded`, `dead`,
    // `cancelled`.
    end: Option<&'static str>,
}

/// A span's or an event's fields as OpenTelemetry attributes, and the
/// event's message.
#[derive(Default)]
struct Fields {
    attrs: Vec<KeyValue>,
    message: Option<String>,
    job: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "job" {
            self.job = Some(value);
        }
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        self.attrs.push(KeyValue::new(field.name(), v));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attrs.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attrs.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attrs.push(KeyValue::new(field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attrs
                .push(KeyValue::new(field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.attrs.push(KeyValue::new(field.name(), text));
        }
    }
}

impl Fields {
    fn get(&self, key: &str) -> Option<&Value> {
        self.attrs
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }
}

/// The job's end that an attempt's event says, if it says one.
fn job_end(message: &str) -> Option<&'static str> {
    match message {
        "succeeded" => Some("succeeded"),
        "dead: no attempt left" => Some("dead"),
        "cancelled" => Some("cancelled"),
        _ => None,
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if attrs.metadata().name() != ATTEMPT_SPAN {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let Some(job) = fields.job else { return };
        let mut jobs = lock(&self.jobs);
        if jobs.len() >= self.open_jobs && !jobs.contains_key(&job) {
            jobs.retain(|_, j| {
                if j.running > 0 {
                    return true;
                }
                j.cx.span().end();
                false
            });
        }
        let entry = jobs.entry(job).or_insert_with(|| {
            let mut job_attrs = vec![KeyValue::new("job", i64::try_from(job).unwrap_or(i64::MAX))];
            if let Some(task) = fields.get("task") {
                job_attrs.push(KeyValue::new("task", task.clone()));
            }
            let span = SpanBuilder::from_name(JOB_SPAN)
                .with_attributes(job_attrs)
                .start_with_context(&self.tracer, &Context::new());
            JobSpan {
                cx: Context::new().with_span(span),
                running: 0,
            }
        });
        entry.running += 1;
        let parent = entry.cx.clone();
        drop(jobs);
        let otel = SpanBuilder::from_name(ATTEMPT_SPAN)
            .with_attributes(fields.attrs)
            .start_with_context(&self.tracer, &parent);
        span.extensions_mut().insert(Attempt {
            span: otel,
            job,
            end: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(attempt) = ext.get_mut::<Attempt>() else {
            return;
        };
        let mut fields = Fields::default();
        values.record(&mut fields);
        for kv in fields.attrs {
            if kv.key.as_str() == "outcome"
                && !matches!(kv.value.as_str().as_ref(), "succeeded" | "cancelled")
            {
                attempt.span.set_status(Status::error(kv.value.to_string()));
            }
            attempt.span.set_attribute(kv);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(attempt) = ext.get_mut::<Attempt>() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message.take().unwrap_or_default();
        if let Some(end) = job_end(&message) {
            attempt.end = Some(end);
        }
        attempt.span.add_event(message, fields.attrs);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut attempt) = span.extensions_mut().remove::<Attempt>() else {
            return;
        };
        attempt.span.end();
        let mut jobs = lock(&self.jobs);
        let Some(j) = jobs.get_mut(&attempt.job) else {
            return;
        };
        j.running = j.running.saturating_sub(1);
        if let Some(end) = attempt.end {
            if let Some(j) = jobs.remove(&attempt.job) {
                let job = j.cx.span();
                job.set_attribute(KeyValue::new("state", end));
                if end == "dead" {
                    job.set_status(Status::error("dead: no attempt left"));
                }
                job.end();
            }
        }
    }
}

/// The OTLP exporter, saying once on standard error that an export failed
/// (the collector is unreachable, or answered an error); the spans of a
/// failed export are dropped and the run goes on.
#[derive(Debug)]
struct WarnOnce<E> {
    inner: E,
    warned: AtomicBool,
}

impl<E> WarnOnce<E> {
    fn new(inner: E) -> Self {
        WarnOnce {
            inner,
            warned: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for WarnOnce<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            if !self.warned.swap(true, Ordering::Relaxed) {
                errln!(
                    "runyard: warning: spans could not be sent to the OTLP collector ({e}); \
                     the run goes on, and spans that cannot be sent are dropped"
                );
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The HTTP client of the OTLP exporter: `reqwest`'s blocking client (the
/// batch processor sends from its own thread, outside any async runtime).
#[derive(Debug)]
struct Client(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let sent = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let status = sent.status();
        let headers = sent.headers().clone();
        let body = sent.bytes()?;
        let mut response = Response::builder().status(status).body(body)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Keeps every span it is given.
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    /// Runs `f` under a subscriber with the layer alone (at most
    /// `open_jobs` job spans open); the spans exported.
    fn exported(open_jobs: usize, f: impl FnOnce()) -> Vec<SpanData> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collect.clone())
            .build();
        let layer = SpanLayer {
            tracer: opentelemetry::trace::TracerProvider::tracer(&provider, "test"),
            jobs: Jobs::default(),
            open_jobs,
        };
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let spans = collect.0.lock().unwrap().clone();
        spans
    }

    fn attempt(job: u64, attempt: u32) -> tracing::Span {
        tracing::info_span!(
            target: "runyard::attempt",
            "runyard.attempt",
            job,
            task = "t",
            attempt,
            outcome = tracing::field::Empty,
        )
    }

    /// Ends `span` as the engine does: its outcome, then `message`.
    fn end(span: tracing::Span, job: u64, outcome: &str, message: &str) {
        span.record("outcome", outcome);
        tracing::info!(target: "runyard::attempt", parent: &span, job, "{message}");
    }

    fn attr(s: &SpanData, key: &str) -> Option<String> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    fn jobs(spans: &[SpanData]) -> Vec<(String, Option<String>)> {
        spans
            .iter()
            .filter(|s| s.name == JOB_SPAN)
            .map(|s| (attr(s, "job").unwrap(), attr(s, "state")))
            .collect()
    }

    #[test]
    fn a_jobs_attempts_are_children_of_one_job_span_that_ends_with_the_job() {
        let spans = exported(OPEN_JOBS, || {
            end(attempt(7, 1), 7, "failed", "retry scheduled");
            end(attempt(7, 2), 7, "succeeded", "succeeded");
        });
        assert_eq!(jobs(&spans), [("7".into(), Some("succeeded".into()))]);
        let job = spans.iter().find(|s| s.name == JOB_SPAN).unwrap();
        let attempts: Vec<_> = spans.iter().filter(|s| s.name == ATTEMPT_SPAN).collect();
        assert_eq!(attempts.len(), 2);
        for a in attempts {
            assert_eq!(a.parent_span_id, job.span_context.span_id());
            assert_eq!(a.span_context.trace_id(), job.span_context.trace_id());
        }
    }

    #[test]
    fn past_the_limit_the_job_spans_with_no_attempt_running_are_ended_without_a_state() {
        let spans = exported(2, || {
            end(attempt(1, 1), 1, "failed", "retry scheduled");
            let running = attempt(2, 1);
            // A third job: job 1 waits for its retry and its span ends;
            // job 2's attempt runs and its span stays open.
            end(attempt(3, 1), 3, "succeeded", "succeeded");
            end(running, 2, "succeeded", "succeeded");
        });
        assert_eq!(
            jobs(&spans),
            [
                ("1".into(), None),
                ("3".into(), Some("succeeded".into())),
                ("2".into(), Some("succeeded".into())),
            ]
        );
    }
}
