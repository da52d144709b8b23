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
type Jobs = Arc<Mutex<HashMap<u64, Context>>>;

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
        }
    }

    /// Ends the job spans still open (their jobs go on elsewhere or later:
    /// they carry no `state`), then sends what is batched and stops the
    /// batch processor, waiting at most a few seconds.
    pub(crate) fn shutdown(self) {
        let open: Vec<Context> = lock(&self.jobs).drain().map(|(_, cx)| cx).collect();
        for cx in open {
            cx.span().end();
        }
        let _ = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
    }
}

fn lock(jobs: &Jobs) -> std::sync::MutexGuard<'_, HashMap<u64, Context>> {
    jobs.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `tracing` layer of the exporter (see the module's doc).
pub(crate) struct SpanLayer {
    tracer: SdkTracer,
    jobs: Jobs,
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
        let parent = lock(&self.jobs)
            .entry(job)
            .or_insert_with(|| {
                let mut job_attrs =
                    vec![KeyValue::new("job", i64::try_from(job).unwrap_or(i64::MAX))];
                if let Some(task) = fields.get("task") {
                    job_attrs.push(KeyValue::new("task", task.clone()));
                }
                let span = SpanBuilder::from_name(JOB_SPAN)
                    .with_attributes(job_attrs)
                    .start_with_context(&self.tracer, &Context::new());
                Context::new().with_span(span)
            })
            .clone();
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
        if let Some(end) = attempt.end {
            if let Some(cx) = lock(&self.jobs).remove(&attempt.job) {
                let job = cx.span();
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
